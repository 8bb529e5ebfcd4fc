//! Zero-shot editing by a trained decoder: the code whose image best explains what is seen,
//! found by Adam ([`crate::edit::invert`]): an autoencoder's or VAE's (started from the
//! encoding of the image with the training mean in the hole) or a GAN's generator.

use burn::prelude::*;

use super::{EditMethod, batch_of, unbatch};
use crate::data::ImageShape;
use crate::degrade::{Degradation, ObservedBatch};
use crate::edit::invert::{InversionSettings, invert_generator, invert_latent};
use crate::error::Result;
use crate::models::LatentModel;
use crate::sample::Generative;

/// An autoencoder's or VAE's decoder, inverted.
pub(crate) struct LatentInversion {
    pub model: Box<LatentModel>,
    /// The training mean: the unknown part of the encoder's input.
    pub mean: Vec<f32>,
    pub settings: InversionSettings,
    pub device: Device,
}

impl EditMethod for LatentInversion {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        let starts: Vec<Vec<f32>> = originals
            .iter()
            .zip(degradations)
            .map(|(o, d)| d.project(o, &self.mean, shape))
            .collect();
        let starts = batch_of(&starts, shape, &self.device);
        let observed = ObservedBatch::new(originals, degradations, shape, &self.device);
        Ok(unbatch(
            invert_latent(&self.model, starts, &observed, &self.settings),
            shape,
        ))
    }
}

/// A generator (a GAN's), inverted from several starting codes.
pub(crate) struct GeneratorInversion {
    pub generator: Box<dyn Generative>,
    pub settings: InversionSettings,
    pub device: Device,
}

impl EditMethod for GeneratorInversion {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        let observed = ObservedBatch::new(originals, degradations, shape, &self.device);
        let filled = invert_generator(
            self.generator.as_ref(),
            originals.len(),
            &observed,
            &self.settings,
            &self.device,
        );
        Ok(unbatch(filled, shape))
    }
}
