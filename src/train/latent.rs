//! The autoencoder's and the VAE's side of the shared trainer: one Adam step on the model's
//! objective, evaluation, the epoch's sample and reconstruction grids, checkpoints.

use std::collections::BTreeMap;
use std::path::Path;

use crate::train::trainee::Trainee;
use burn::prelude::*;

use crate::data::{Batch, Batches, ImageShape, PixelScale};
use crate::error::Result;
use crate::models::{LatentModel, save_safetensors};
use crate::optim::AdamSettings;
use crate::train::parallel::BatchSplit;
use crate::train::trainer::{DeviceParts, Learner, PassParts, PendingParts};
use crate::viz::grid::{Colormap, GridOptions, ImageGrid};

/// Trains an autoencoder or a VAE.
pub struct LatentLearner {
    model: Trainee<LatentModel>,
    adam: AdamSettings,
    shape: ImageShape,
    /// Prior draws decoded into the sample grid every epoch, `[64, latent]`.
    fixed_noise: Tensor<2>,
    /// Test images reconstructed every epoch, `[32, c, h, w]`, and their labels `[32]`.
    fixed_images: Tensor<4>,
    fixed_labels: Tensor<1, Int>,
    /// Fraction of the run done, for the learning-rate schedule.
    progress: f64,
    /// How each batch is split over replicas or MPI ranks (`train::parallel`).
    split: BatchSplit,
}

impl LatentLearner {
    /// `model` must live on an autodiff device; `fixed_noise` and `fixed_images` on its inner one.
    pub fn new(
        model: LatentModel,
        adam: AdamSettings,
        shape: ImageShape,
        fixed_noise: Tensor<2>,
        fixed_images: Tensor<4>,
        fixed_labels: Tensor<1, Int>,
    ) -> Self {
        // Drawn now from the initialization seed, not lazily inside the first (split) step.
        crate::train::parallel::materialize(&model);
        Self {
            model: Trainee::new(model, &adam),
            adam,
            shape,
            fixed_noise,
            fixed_images,
            fixed_labels,
            progress: 0.0,
            split: BatchSplit::default(),
        }
    }

    /// Splits each batch over replicas or MPI ranks.
    pub fn with_split(mut self, split: BatchSplit) -> Self {
        self.split = split;
        self
    }

    pub fn model(&self) -> &LatentModel {
        self.model.network()
    }
}

impl Learner for LatentLearner {
    fn set_progress(&mut self, progress: f64) {
        self.progress = progress;
    }

    fn train_step(&mut self, batch: Batch) -> DeviceParts {
        let (grads, parts) = self
            .split
            .gradients(self.model.network(), batch, |model, share| {
                let labels = model.condition(&share.labels);
                let objective = model.objective(share.images, labels);
                (objective.loss, objective.parts)
            });
        self.model.step(self.adam.lr_at(self.progress), grads);
        parts
    }

    fn evaluate(&self, batches: Batches<'_>) -> PassParts {
        let model = self.model().valid();
        let mut pending = PendingParts::default();
        for batch in batches {
            let n = batch.images.dims()[0];
            let labels = model.condition(&batch.labels);
            let mut parts = model.objective(batch.images.clone(), labels.clone()).parts;
            // Squared error per pixel of the deterministic reconstruction (the mean of q(z|x)
            // decoded to the mean image): the number to hold against PCA's.
            let recon = model.decode_mean(
                model.encode_mean(batch.images.clone(), labels.clone()),
                labels,
            );
            parts.push(("mse", (recon - batch.images).powi_scalar(2).mean()));
            pending.push(n, parts);
        }
        pending.means()
    }

    fn scale(&self) -> PixelScale {
        PixelScale::ZeroOne
    }

    fn write_images(&self, out: &Path, epoch: usize) -> Result<()> {
        let model = self.model().valid();
        let samples_path = out.join("samples").join(format!("epoch_{epoch:03}.png"));
        match model.num_classes() {
            0 => save_grid(
                model.decode_mean(self.fixed_noise.clone(), None),
                self.shape,
                &samples_path,
            )?,
            // A conditional VAE: one row per class, the same prior draws in each column.
            classes => save_class_grid(
                |z, y| model.decode_mean(z, Some(y)),
                self.fixed_noise.clone().narrow(0, 0, 8),
                classes,
                self.shape,
                &samples_path,
            )?,
        }
        let labels = model.condition(&self.fixed_labels);
        let reconstructions = model.decode_mean(
            model.encode_mean(self.fixed_images.clone(), labels.clone()),
            labels,
        );
        save_grid(
            interleave_rows(self.fixed_images.clone(), reconstructions, 8),
            self.shape,
            &out.join("reconstructions")
                .join(format!("epoch_{epoch:03}.png")),
        )
    }

    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        self.model.blobs(["model", "optimizer"])
    }

    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        self.model.restore(blobs, ["model", "optimizer"])?;
        Ok(())
    }

    fn export(&self, path: &Path) -> Result<()> {
        save_safetensors(&self.model().valid(), path)
    }
}

/// Puts rows of `a` and rows of `b` (each `columns` images) one under the other: a row of
/// originals, then their reconstructions, and so on.
pub(crate) fn interleave_rows(a: Tensor<4>, b: Tensor<4>, columns: usize) -> Tensor<4> {
    let n = a.dims()[0];
    let mut pieces = Vec::new();
    for start in (0..n).step_by(columns) {
        let end = (start + columns).min(n);
        pieces.push(a.clone().slice(start..end));
        pieces.push(b.clone().slice(start..end));
    }
    Tensor::cat(pieces, 0)
}

/// One row per class, one column per noise vector (the same noise down each column), so a row
/// shows what the label controls and a column what z does. `generate` maps z `[n, latent]` and
/// labels `[n]` to images in [0, 1].
pub(crate) fn save_class_grid(
    generate: impl Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<4>,
    noise: Tensor<2>,
    classes: usize,
    shape: ImageShape,
    path: &Path,
) -> Result<()> {
    let [columns, latent] = noise.dims();
    let device = noise.device();
    let z = noise
        .unsqueeze_dim::<3>(0)
        .repeat_dim(0, classes)
        .reshape([classes * columns, latent]); // [classes · columns, latent]
    let labels: Vec<i64> = (0..classes * columns)
        .map(|i| (i / columns) as i64)
        .collect();
    let labels = Tensor::from_data(TensorData::new(labels, [classes * columns]), &device);
    save_grid_with_columns(generate(z, labels), shape, columns, path) // [classes · columns, c, h, w]
}

/// Writes images in [0, 1] (`[n, c, h, w]`) as an 8-column grid, each pixel drawn 2x2.
pub(crate) fn save_grid(images: Tensor<4>, shape: ImageShape, path: &Path) -> Result<()> {
    save_grid_with_columns(images, shape, 8, path)
}

/// [`save_grid`] with `columns` images per row.
pub(crate) fn save_grid_with_columns(
    images: Tensor<4>,
    shape: ImageShape,
    columns: usize,
    path: &Path,
) -> Result<()> {
    let mut grid = ImageGrid::new(shape);
    push_images(&mut grid, images);
    save_unit_grid(&grid, columns, path)
}

/// Appends images in [0, 1] (`[n, c, h, w]`) to `grid`.
pub(crate) fn push_images(grid: &mut ImageGrid, images: Tensor<4>) {
    let shape = images.dims();
    let values: Vec<f32> = images.into_data().iter::<f32>().collect();
    for image in values.chunks(shape[1] * shape[2] * shape[3]) {
        grid.push(image.to_vec());
    }
}

/// Writes a grid of images in [0, 1], `columns` per row, each pixel drawn 2x2.
pub(crate) fn save_unit_grid(grid: &ImageGrid, columns: usize, path: &Path) -> Result<()> {
    grid.save(
        path,
        Colormap::Linear {
            low: 0.0,
            high: 1.0,
        },
        &GridOptions {
            scale: 2,
            columns,
            ..GridOptions::default()
        },
    )
}
