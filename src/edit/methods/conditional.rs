//! Editing by a network trained for the job (pix2pix's U-Net, ESPCN): one forward pass on what
//! is seen.

use burn::prelude::*;

use super::{EditMethod, batch_of, unbatch};
use crate::data::ImageShape;
use crate::degrade::Degradation;
use crate::error::Result;
use crate::models::pix2pix::{Generator, conditioning};

/// A trained pix2pix generator or ESPCN.
pub(crate) struct ConditionalEdit {
    pub generator: Box<Generator>,
    pub device: Device,
}

impl EditMethod for ConditionalEdit {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        let images = batch_of(originals, shape, &self.device);
        Ok(unbatch(
            self.generator.forward(&conditioning(images, degradations)),
            shape,
        ))
    }
}
