//! Sampling: every generative model maps a code z (and, when conditional, a class y) to images.
//!
//! An autoencoder's or VAE's decoder and a GAN's generator are used the same way once trained:
//! draw z ~ N(0, I), decode. [`Generative`] is that one view, so `sample`, `eval-samples`, the
//! tour and the editing commands need not know which model they hold. Images come out in [0, 1]
//! whatever range the network works in (a GAN's tanh gives [-1, 1]; [`to_unit`] maps it).

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, StandardNormal};

use crate::data::ImageShape;
use crate::models::gan::{Gan, GanConfig};
use crate::models::{LatentModel, LatentModelConfig};

/// A trained model that turns codes into images.
pub trait Generative {
    /// Dimensions of z.
    fn latent(&self) -> usize;
    /// Classes the model is conditioned on (0: unconditional).
    fn num_classes(&self) -> usize;
    /// The shape of one image.
    fn image_shape(&self) -> ImageShape;
    /// What maps z to images, for messages: "vae decoder", "dcgan generator".
    fn describe(&self) -> String;
    /// Images for `z` `[n, latent]` (and `labels` `[n]` when conditional), pixels in [0, 1],
    /// `[n, c, h, w]`.
    fn generate(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4>;
}

/// A trained network beside the config that built it (the network alone does not know its
/// image shape).
pub struct Trained<C, M> {
    pub config: C,
    pub model: M,
}

impl Generative for Trained<LatentModelConfig, LatentModel> {
    fn latent(&self) -> usize {
        self.config.latent()
    }
    fn num_classes(&self) -> usize {
        self.model.num_classes()
    }
    fn image_shape(&self) -> ImageShape {
        self.config.shape()
    }
    fn describe(&self) -> String {
        format!("{} decoder", self.config.kind())
    }
    fn generate(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        self.model.decode_mean(z, labels) // [n, c, h, w] in [0, 1]
    }
}

impl Generative for Trained<GanConfig, Gan> {
    fn latent(&self) -> usize {
        self.config.latent
    }
    fn num_classes(&self) -> usize {
        self.config.num_classes
    }
    fn image_shape(&self) -> ImageShape {
        self.config.shape
    }
    fn describe(&self) -> String {
        format!("{} generator", self.config.generator)
    }
    fn generate(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        to_unit(self.model.generator.forward(z, labels)) // [n, c, h, w] in [0, 1]
    }
}

/// `n` draws from the prior N(0, I) in `latent` dimensions, from a seeded CPU generator so the
/// same seed gives the same points on any device.
pub fn prior_noise(n: usize, latent: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..n * latent)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_data(TensorData::new(values, [n, latent]), device)
}

/// Images in [-1, 1] mapped to [0, 1] for pictures.
pub fn to_unit(images: Tensor<4>) -> Tensor<4> {
    (images + 1.0) / 2.0
}

/// Class labels as a `[n]` tensor.
pub fn label_tensor(labels: &[u8], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(values, [labels.len()]), device)
}
