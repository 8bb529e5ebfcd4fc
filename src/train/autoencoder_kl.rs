//! The first stage's side of the shared trainer (`models/autoencoder_kl.rs`): one Adam step on
//! reconstruction + a small KL, evaluation by the reconstruction of the posterior mean (with its
//! PSNR), reconstruction pictures, and at every export the latent scale beside the weights.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;

use crate::data::{Batch, Batches, ImageShape, PixelScale};
use crate::error::Result;
use crate::fsutil::write_json;
use crate::models::autoencoder_kl::{AutoencoderKl, AutoencoderKlConfig, LatentScale};
use crate::models::save_safetensors;
use crate::optim::AdamSettings;
use crate::sample::to_unit;
use crate::train::latent::{interleave_rows, save_grid};
use crate::train::parallel::BatchSplit;
use crate::train::trainee::Trainee;
use crate::train::trainer::{DeviceParts, Learner, PassParts, PendingParts};

/// Images the latent scale is measured on: the first of the training split.
pub(crate) const SCALE_IMAGES: usize = 1024;

pub(crate) struct AutoencoderKlLearner {
    model: Trainee<AutoencoderKl>,
    adam: AdamSettings,
    config: AutoencoderKlConfig,
    /// Test images reconstructed every epoch, `[32, c, h, w]` in [−1, 1], inner device.
    fixed_images: Tensor<4>,
    /// Training images whose codes give the latent scale, `[n, c, h, w]` in [−1, 1], inner device.
    scale_images: Tensor<4>,
    progress: f64,
    split: BatchSplit,
}

impl AutoencoderKlLearner {
    /// `model` lives on an autodiff device, the images on its inner one.
    pub fn new(
        config: AutoencoderKlConfig,
        model: AutoencoderKl,
        adam: AdamSettings,
        fixed_images: Tensor<4>,
        scale_images: Tensor<4>,
    ) -> Self {
        crate::train::parallel::materialize(&model);
        Self {
            model: Trainee::new(model, &adam),
            adam,
            config,
            fixed_images,
            scale_images,
            progress: 0.0,
            split: BatchSplit::default(),
        }
    }

    pub fn with_split(mut self, split: BatchSplit) -> Self {
        self.split = split;
        self
    }

    pub fn model(&self) -> &AutoencoderKl {
        self.model.network()
    }

    fn shape(&self) -> ImageShape {
        self.config.shape
    }
}

/// PSNR in dB of each reconstruction of images in [−1, 1] (peak 1 on the [0, 1] scale), batch
/// mean: `[1]`.
fn psnr(reconstruction: Tensor<4>, images: Tensor<4>) -> Tensor<1> {
    let [n, ..] = images.dims();
    let mse01 = (reconstruction.clamp(-1.0, 1.0) - images)
        .powi_scalar(2)
        .reshape([n as i32, -1])
        .mean_dim(1)
        / 4.0; // [n, 1]
    (mse01.clamp_min(1e-10).log() * (-10.0 / std::f64::consts::LN_10))
        .mean()
        .reshape([1])
}

impl Learner for AutoencoderKlLearner {
    fn set_progress(&mut self, progress: f64) {
        self.progress = progress;
    }

    fn train_step(&mut self, batch: Batch) -> DeviceParts {
        let config = &self.config;
        let (grads, parts) = self
            .split
            .gradients(self.model.network(), batch, |model, share| {
                let objective = model.objective(share.images, config);
                let parts = vec![
                    ("loss", objective.loss.clone()),
                    ("recon", objective.recon),
                    ("kl", objective.kl),
                ];
                (objective.loss, parts)
            });
        self.model.step(self.adam.lr_at(self.progress), grads);
        parts
    }

    /// The reconstruction of each image's posterior mean: its error per image (L1 or L2 as
    /// trained), its PSNR, and the KL.
    fn evaluate(&self, batches: Batches<'_>) -> PassParts {
        let model = self.model().valid();
        let mut pending = PendingParts::default();
        for batch in batches {
            let [n, ..] = batch.images.dims();
            let posterior = model.encode(batch.images.clone());
            let reconstruction = model.decode(posterior.mean.clone());
            let recon = self
                .config
                .reconstruction
                .per_image(reconstruction.clone(), batch.images.clone());
            let kl = posterior.kl().mean();
            let parts = vec![
                ("loss", recon.clone() + kl.clone() * self.config.kl_weight),
                ("recon", recon),
                ("kl", kl),
                ("psnr", psnr(reconstruction, batch.images)),
            ];
            pending.push(n, parts);
        }
        pending.means()
    }

    fn scale(&self) -> PixelScale {
        PixelScale::MinusOneOne
    }

    fn write_images(&self, out: &Path, epoch: usize) -> Result<()> {
        let model = self.model().valid();
        let reconstruction = model.decode(model.encode(self.fixed_images.clone()).mean);
        save_grid(
            to_unit(interleave_rows(
                self.fixed_images.clone(),
                reconstruction.clamp(-1.0, 1.0),
                8,
            )),
            self.shape(),
            &out.join("reconstructions")
                .join(format!("epoch_{epoch:03}.png")),
        )
    }

    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        self.model.blobs(["model", "optimizer"])
    }

    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        self.model.restore(blobs, ["model", "optimizer"])
    }

    /// The weights, and the latent scale of those weights beside them.
    fn export(&self, path: &Path) -> Result<()> {
        let model = self.model().valid();
        save_safetensors(&model, path)?;
        let scale = LatentScale::measure(&model, self.scale_images.clone());
        write_json(&path.with_file_name(LatentScale::FILE), &scale)
    }
}
