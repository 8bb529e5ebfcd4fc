//! The autoencoder's and the VAE's side of the shared trainer: one Adam step on the model's
//! objective, evaluation, the epoch's sample and reconstruction grids, checkpoints.

use std::collections::BTreeMap;
use std::path::Path;

use crate::train::checkpoint::{model_blobs, restore_model};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use crate::data::{Batch, Batches, ImageShape, PixelScale};
use crate::distributed::World;
use crate::error::Result;
use crate::models::{LatentModel, save_safetensors};
use crate::train::optim::AdamSettings;
use crate::train::parallel;
use crate::train::trainer::{DeviceParts, Learner, PassParts, PendingParts};
use crate::viz::grid::{Colormap, GridOptions, ImageGrid};
use std::sync::Arc;

/// Trains an autoencoder or a VAE.
pub struct LatentLearner {
    model: Option<LatentModel>,
    optimizer: ModuleOptimizer,
    adam: AdamSettings,
    shape: ImageShape,
    /// Prior draws decoded into the sample grid every epoch, `[64, latent]`.
    fixed_noise: Tensor<2>,
    /// Test images reconstructed every epoch, `[32, c, h, w]`, and their labels `[32]`.
    fixed_images: Tensor<4>,
    fixed_labels: Tensor<1, Int>,
    /// Fraction of the run done, for the learning-rate schedule.
    progress: f64,
    /// Data-parallel replicas' devices (autodiff), the first the model's; empty for one device.
    replicas: Vec<burn::tensor::Device>,
    /// The MPI ranks sharing each batch (one process: this one alone).
    world: Arc<World>,
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
        Self {
            model: Some(model),
            optimizer: adam.init(),
            adam,
            shape,
            fixed_noise,
            fixed_images,
            fixed_labels,
            progress: 0.0,
            replicas: Vec::new(),
            world: Arc::new(World::single()),
        }
    }

    /// Shares each batch among `world`'s ranks: see `train::parallel::all_reduce_gradients`.
    pub fn with_world(mut self, world: Arc<World>) -> Self {
        self.world = world;
        self
    }

    /// Splits each batch across `devices` (autodiff, the model's first): see `train::parallel`.
    pub fn with_replicas(mut self, devices: Vec<burn::tensor::Device>) -> Self {
        self.replicas = devices;
        self
    }

    pub fn model(&self) -> &LatentModel {
        self.model
            .as_ref()
            .expect("model is only taken inside a step")
    }
}

impl LatentLearner {
    /// This rank's share of `batch`, its gradient weighted by the share, summed over the ranks;
    /// the loss parts summed the same way, as batch means.
    fn distributed_gradients(
        &self,
        model: &LatentModel,
        batch: Batch,
    ) -> (GradientsParams, DeviceParts) {
        let n = batch.images.dims()[0];
        let (start, len) = parallel::shares(n, self.world.size())
            .get(self.world.rank())
            .copied()
            .unwrap_or((0, 0));
        let device = batch.images.device();
        // A last batch smaller than the ranks leaves some without a share: they take one image
        // at weight 0, so every rank sends the same parts and a gradient of zeros.
        let (start, len, weight) = match len {
            0 => (0, 1, 0.0),
            len => (start, len, len as f64 / n as f64),
        };
        let images = batch.images.narrow(0, start, len);
        let labels = model.condition(&batch.labels.narrow(0, start, len));
        let objective = model.objective(images, labels);
        let grads = GradientsParams::from_grads((objective.loss * weight).backward(), model);
        let names: Vec<&'static str> = objective.parts.iter().map(|(name, _)| *name).collect();
        let mut values: Vec<f64> = objective
            .parts
            .into_iter()
            .map(|(_, value)| value.into_scalar::<f32>() as f64 * weight)
            .collect();
        let grads = parallel::all_reduce_gradients(model, grads, &mut values, &self.world);
        (grads, rebuild_parts(&names, &values, &device))
    }
}

/// Loss parts from host values, as `[1]` tensors on `device`.
fn rebuild_parts(
    names: &[&'static str],
    values: &[f64],
    device: &burn::tensor::Device,
) -> DeviceParts {
    names
        .iter()
        .zip(values)
        .map(|(name, &value)| (*name, Tensor::<1>::from_floats([value as f32], device)))
        .collect()
}

impl Learner for LatentLearner {
    fn set_progress(&mut self, progress: f64) {
        self.progress = progress;
    }

    fn train_step(&mut self, batch: Batch) -> DeviceParts {
        let model = self
            .model
            .take()
            .expect("model is only taken inside a step");
        let (grads, parts) = if self.world.size() > 1 {
            self.distributed_gradients(&model, batch)
        } else if self.replicas.len() > 1 {
            parallel::gradients(
                &model,
                batch.images,
                batch.labels,
                &self.replicas,
                |replica, share| {
                    let labels = replica.condition(&share.labels);
                    let objective = replica.objective(share.images, labels);
                    (objective.loss, objective.parts)
                },
            )
        } else {
            let labels = model.condition(&batch.labels);
            let objective = model.objective(batch.images, labels);
            let grads = GradientsParams::from_grads(objective.loss.backward(), &model);
            (grads, objective.parts)
        };
        self.model = Some(
            self.optimizer
                .step(self.adam.lr_at(self.progress), model, grads),
        );
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
        model_blobs(self.model(), &self.optimizer)
    }

    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        let model = self.model.take().expect("model present");
        let optimizer = std::mem::replace(&mut self.optimizer, self.adam.init());
        let (model, optimizer) = restore_model(model, optimizer, blobs)?;
        self.model = Some(model);
        self.optimizer = optimizer;
        Ok(())
    }

    fn export(&self, path: &Path) -> Result<()> {
        save_safetensors(&self.model().valid(), path)
    }
}

/// Puts rows of `a` and rows of `b` (each `columns` images) one under the other: a row of
/// originals, then their reconstructions, and so on.
pub fn interleave_rows(a: Tensor<4>, b: Tensor<4>, columns: usize) -> Tensor<4> {
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
pub fn save_class_grid(
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
pub fn save_grid(images: Tensor<4>, shape: ImageShape, path: &Path) -> Result<()> {
    save_grid_with_columns(images, shape, 8, path)
}

/// [`save_grid`] with `columns` images per row.
pub fn save_grid_with_columns(
    images: Tensor<4>,
    shape: ImageShape,
    columns: usize,
    path: &Path,
) -> Result<()> {
    let values: Vec<f32> = images.into_data().iter::<f32>().collect();
    let mut grid = ImageGrid::new(shape);
    for image in values.chunks(shape.len()) {
        grid.push(image.to_vec());
    }
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
