//! The two-stage VAE's second stage on the shared trainer (`models/two_stage.rs`): its data are
//! the frozen first VAE's codes of the batch's images, drawn from q(z|x) each step
//! (`train/codes.rs`); its pictures are its samples decoded through the first stage.
//!
//! The trainer's batch splitting (replicas, MPI ranks) cuts image batches, so a batch of codes
//! `[n, d]` travels through it as `[n, d, 1, 1]`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;

use crate::data::{Batch, Batches, Dataset, ImageShape, PixelScale};
use crate::error::Result;
use crate::models::two_stage::SecondStage;
use crate::models::{LatentModel, save_safetensors};
use crate::optim::AdamSettings;
use crate::run::FirstStage;
use crate::train::codes::CodeMoments;
use crate::train::latent::save_grid;
use crate::train::parallel::BatchSplit;
use crate::train::trainee::Trainee;
use crate::train::trainer::{DeviceParts, Learner, PassParts, PendingParts};

pub(crate) struct SecondStageLearner {
    model: Trainee<SecondStage>,
    adam: AdamSettings,
    /// The first VAE, on the inner device, and the shape of its images.
    first_stage: LatentModel,
    shape: ImageShape,
    /// Its codes of the train split (autodiff device) and of the test split (inner device).
    train: CodeMoments,
    test: CodeMoments,
    /// u of the epoch's sample grid, `[64, latent]`, inner device.
    fixed_noise: Tensor<2>,
    progress: f64,
    split: BatchSplit,
}

impl SecondStageLearner {
    /// `model` lives on `autodiff`, `first_stage` and `fixed_noise` on its inner device; the
    /// first stage's codes of `dataset` are encoded now.
    pub fn new(
        model: SecondStage,
        adam: AdamSettings,
        first_stage: LatentModel,
        dataset: &Dataset,
        fixed_noise: Tensor<2>,
        autodiff: &Device,
    ) -> Self {
        crate::train::parallel::materialize(&model);
        let inner = fixed_noise.device();
        let moments = |images: Tensor<4>| match &first_stage {
            LatentModel::Vae(vae) => {
                let (mean, log_variance) = vae.encode(images, None);
                (mean, (log_variance * 0.5).exp())
            }
            LatentModel::Ae(ae) => {
                let code = ae.encode(images);
                let none = code.zeros_like();
                (code, none)
            }
        };
        let (train, test) = (
            CodeMoments::encode(
                &dataset.train,
                PixelScale::ZeroOne,
                &inner,
                autodiff,
                moments,
            ),
            CodeMoments::encode(&dataset.test, PixelScale::ZeroOne, &inner, &inner, moments),
        );
        Self {
            model: Trainee::new(model, &adam),
            adam,
            first_stage,
            shape: dataset.shape(),
            train,
            test,
            fixed_noise,
            progress: 0.0,
            split: BatchSplit::default(),
        }
    }

    pub fn with_split(mut self, split: BatchSplit) -> Self {
        self.split = split;
        self
    }

    pub fn model(&self) -> &SecondStage {
        self.model.network()
    }
}

impl Learner for SecondStageLearner {
    fn set_progress(&mut self, progress: f64) {
        self.progress = progress;
    }

    fn train_step(&mut self, batch: Batch) -> DeviceParts {
        let codes = self.train.draw(&batch.indices); // [n, d]
        let [n, d] = codes.dims();
        let batch = Batch {
            images: codes.reshape([n, d, 1, 1]),
            ..batch
        };
        let (grads, parts) = self
            .split
            .gradients(self.model.network(), batch, |model, share| {
                let [n, d, ..] = share.images.dims();
                let objective = model.objective(share.images.reshape([n, d]));
                let parts = vec![
                    ("loss", objective.loss.clone()),
                    ("recon", objective.recon),
                    ("kl", objective.kl),
                    ("gamma", objective.gamma),
                ];
                (objective.loss, parts)
            });
        self.model.step(self.adam.lr_at(self.progress), grads);
        parts
    }

    fn evaluate(&self, batches: Batches<'_>) -> PassParts {
        let model = self.model().valid();
        let mut pending = PendingParts::default();
        for batch in batches {
            let codes = self.test.draw(&batch.indices);
            let objective = model.objective(codes);
            pending.push(
                batch.indices.len(),
                vec![
                    ("loss", objective.loss),
                    ("recon", objective.recon),
                    ("kl", objective.kl),
                    ("gamma", objective.gamma),
                ],
            );
        }
        pending.means()
    }

    fn scale(&self) -> PixelScale {
        PixelScale::ZeroOne
    }

    /// Samples: u ~ N(0, I) → the second decoder's z → the first decoder's image.
    fn write_images(&self, out: &Path, epoch: usize) -> Result<()> {
        let z = self.model().valid().decode(self.fixed_noise.clone());
        save_grid(
            self.first_stage.decode_mean(z, None),
            self.shape,
            &out.join("samples").join(format!("epoch_{epoch:03}.png")),
        )
    }

    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        self.model.blobs(["model", "optimizer"])
    }

    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        self.model.restore(blobs, ["model", "optimizer"])
    }

    /// The second stage; the first beside it.
    fn export(&self, path: &Path) -> Result<()> {
        save_safetensors(&self.model().valid(), path)?;
        save_safetensors(&self.first_stage, &path.with_file_name(FirstStage::FILE))
    }
}
