//! A frozen first stage's codes of every image of a split, encoded once: the data of the models
//! trained on another model's codes (latent diffusion on an autoencoder-kl's, the two-stage
//! VAE's second stage on the first VAE's). Each step draws fresh codes z = μ + σ·ε of its
//! batch's images from the stored moments of q(z|x), so it never runs the encoder, and the
//! draws still vary from epoch to epoch as they would through the encoder.

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::data::{BatchConfig, Batches, PixelScale, Split};

/// Means and standard deviations of the codes of a split's images, row i for image i:
/// `[n, code]` each.
pub(crate) struct CodeMoments {
    mean: Tensor<2>,
    std: Tensor<2>,
}

impl CodeMoments {
    /// Encodes `split` in order, 256 images at a time (pixels scaled as `scale` says) on
    /// `inner`, where `moments(images)` gives the mean and standard deviation of each image's
    /// code `[n, code]`; the moments land on `device`.
    pub fn encode(
        split: &Split,
        scale: PixelScale,
        inner: &Device,
        device: &Device,
        moments: impl Fn(Tensor<4>) -> (Tensor<2>, Tensor<2>),
    ) -> Self {
        let batches = Batches::new(split, BatchConfig::in_order(256, scale), inner);
        let (mut means, mut stds) = (Vec::new(), Vec::new());
        for batch in batches {
            let (mean, std) = moments(batch.images);
            means.push(mean);
            stds.push(std);
        }
        let on_device = |parts: Vec<Tensor<2>>| {
            let all = Tensor::cat(parts, 0);
            Tensor::from_data(all.into_data(), device)
        };
        Self {
            mean: on_device(means),
            std: on_device(stds),
        }
    }

    /// Codes drawn for images `indices` of the split: mean + std·ε, ε from the device's
    /// generator, `[n, code]`.
    pub fn draw(&self, indices: &[usize]) -> Tensor<2> {
        assert!(
            !indices.is_empty(),
            "codes are drawn for batches of a split"
        );
        let device = self.mean.device();
        let rows: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [indices.len()]), &device);
        let mean = self.mean.clone().select(0, rows.clone());
        let std = self.std.clone().select(0, rows);
        let noise = Tensor::random(mean.shape(), Distribution::Normal(0.0, 1.0), &device);
        mean + std * noise
    }
}
