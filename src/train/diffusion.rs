//! Diffusion's side of the shared trainer: one Adam step on Ho et al.'s simple loss, then the
//! EMA of the weights moved towards the new ones. The EMA is what is evaluated, pictured, exported
//! and sampled; a checkpoint holds the network, its optimizer, the EMA and the step count (the
//! stream the time steps are drawn from), so a resumed run continues exactly.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::data::ImageShape;
use crate::data::{Batch, Batches, Dataset, PixelScale};
use crate::degrade::Task;
use crate::error::Result;
use crate::models::autoencoder_kl::ScaledAutoencoder;
use crate::models::denoiser::Denoiser;
use crate::models::diffusion::{
    DEFAULT_GUIDANCE, DiffusionConfig, DiffusionPipeline, LossDraws, NoiseSchedule, Sampler,
    condition_of, with_condition,
};
use crate::models::save_safetensors;
use crate::optim::AdamSettings;
use crate::rng::{mix, stream};
use crate::run::FirstStage;
use crate::sample::{DiffusionSampling, Generative, LatentDiffusion, Trained, to_unit};
use crate::train::checkpoint::{counters_blob, module_blob, restore_counters, restore_module};
use crate::train::codes::CodeMoments;
use crate::train::ema::ema_update;
use crate::train::latent::{save_class_grid, save_grid};
use crate::train::parallel::BatchSplit;
use crate::train::trainee::Trainee;
use crate::train::trainer::{DeviceParts, Learner, PassParts, PendingParts};
use crate::viz::ImageGrid;

/// The sampler of the epoch's pictures: cheap enough to run every epoch.
pub(crate) const EPOCH_SAMPLER: Sampler = Sampler::Ddim {
    steps: 20,
    eta: 0.0,
};

/// The seed the test split's time steps are drawn from: the same for every run.
const TEST_TIME_SEED: u64 = 0;

/// What makes a resumed run draw the same time steps.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DiffusionCounters {
    /// Optimizer steps done.
    pub steps: u64,
}

pub(crate) struct DiffusionLearner {
    model: Trainee<Denoiser>,
    /// The weights' moving average on the same (autodiff) device, its values detached.
    ema: Option<Denoiser>,
    adam: AdamSettings,
    config: DiffusionConfig,
    schedule: NoiseSchedule,
    seed: u64,
    /// x_T of the epoch's sample grid, `[64, c·h·w]`, on the inner device.
    fixed_noise: Tensor<2>,
    /// An image-conditioned model's pictured test images, `[n, c, h, w]` in [−1, 1], inner device.
    fixed_images: Option<Tensor<4>>,
    pub counters: DiffusionCounters,
    progress: f64,
    split: BatchSplit,
    /// Latent diffusion: the codes the denoiser learns instead of pixels.
    latent: Option<LatentData>,
}

/// Latent diffusion's data: every image of both splits encoded once by the frozen first stage
/// (the moments of q(z|x), scaled), so a step draws its batch's codes without running the
/// encoder; the first stage itself, for pictures and export.
struct LatentData {
    /// On the inner device.
    first_stage: ScaledAutoencoder,
    /// The images it decodes to.
    shape: ImageShape,
    /// On the autodiff device (what steps draw from) and on the inner one (evaluation, which
    /// reads the test split).
    train: CodeMoments,
    test: CodeMoments,
}

impl DiffusionLearner {
    /// `model` lives on an autodiff device, `fixed_noise` on its inner one.
    pub fn new(
        config: DiffusionConfig,
        model: Denoiser,
        adam: AdamSettings,
        seed: u64,
        fixed_noise: Tensor<2>,
        fixed_images: Option<Tensor<4>>,
    ) -> Self {
        crate::train::parallel::materialize(&model);
        Self {
            ema: Some(model.clone()),
            model: Trainee::new(model, &adam),
            adam,
            schedule: config.noise_schedule(),
            config,
            seed,
            fixed_noise,
            fixed_images,
            counters: DiffusionCounters::default(),
            progress: 0.0,
            split: BatchSplit::default(),
            latent: None,
        }
    }

    /// Makes it latent diffusion on the codes `first_stage` (on the inner device) gives the
    /// images of `dataset`, encoded now; the train split's codes land on `autodiff`.
    pub fn with_first_stage(
        mut self,
        first_stage: ScaledAutoencoder,
        dataset: &Dataset,
        autodiff: &Device,
    ) -> Self {
        let inner = first_stage.model.devices()[0].clone();
        let scale = PixelScale::MinusOneOne;
        let moments = |images: Tensor<4>| {
            let (mean, std) = first_stage.moments(images);
            (mean.flatten(1, 3), std.flatten(1, 3)) // [n, z·s·s] each
        };
        self.latent = Some(LatentData {
            train: CodeMoments::encode(&dataset.train, scale, &inner, autodiff, moments),
            test: CodeMoments::encode(&dataset.test, scale, &inner, &inner, moments),
            first_stage,
            shape: dataset.shape(),
        });
        self
    }

    /// What the denoiser learns of a batch: its images (in [−1, 1]), or for latent diffusion
    /// codes drawn from q(z|x) of each of them; `test`: the batch is of the test split.
    fn data_of(&self, batch: &Batch, test: bool) -> Tensor<4> {
        let Some(latent) = &self.latent else {
            return batch.images.clone();
        };
        let codes = match test {
            true => latent.test.draw(&batch.indices),
            false => latent.train.draw(&batch.indices),
        }; // [n, z·s·s]
        let shape = self.config.denoiser.shape;
        codes.reshape([
            batch.indices.len(),
            shape.channels,
            shape.height,
            shape.width,
        ])
    }

    /// Splits each batch as `split` says.
    pub fn with_split(mut self, split: BatchSplit) -> Self {
        self.split = split;
        self
    }

    pub fn model(&self) -> &Denoiser {
        self.model.network()
    }

    /// The moving average of the weights, for inference.
    pub fn ema(&self) -> Denoiser {
        self.ema.as_ref().expect("taken only inside a step").valid()
    }

    /// The EMA as a generator with `sampler` and the default guidance.
    pub fn generator(&self, sampler: Sampler) -> Trained<DiffusionSampling, Denoiser> {
        Trained {
            config: DiffusionSampling {
                config: self.config.clone(),
                sampler,
                guidance: DEFAULT_GUIDANCE,
            },
            model: self.ema(),
        }
    }

    /// `labels` with each replaced by "no class" with probability `label_dropout`, drawn from the
    /// device's generator (seeded per step by the trainer).
    fn drop_labels(&self, labels: Tensor<1, Int>) -> Tensor<1, Int> {
        let [n] = labels.dims();
        let dropped = Tensor::<1>::random([n], Distribution::Default, &labels.device())
            .lower_elem(self.config.label_dropout);
        labels.mask_fill(dropped, self.config.denoiser.num_classes as i64)
    }

    /// The simple loss of `model` on `images` (shown what its task sees, told `labels`), the
    /// time steps drawn from `seed`: `[1]`.
    fn loss(
        &self,
        model: &Denoiser,
        images: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
        seed: u64,
    ) -> Tensor<1> {
        let draws = LossDraws::new(&self.schedule, images.dims(), seed, &images.device());
        self.loss_of_rows(model, &draws, images, labels, 0)
    }

    /// The simple loss of `model` on `images`, rows `[start, ..)` of the batch `draws` were
    /// drawn for: `[1]`.
    fn loss_of_rows(
        &self,
        model: &Denoiser,
        draws: &LossDraws,
        images: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
        start: usize,
    ) -> Tensor<1> {
        let condition = self
            .config
            .task
            .map(|task| condition_of(task, images.clone()));
        draws.loss_of_rows(&self.schedule, images, start, |x_t, t| {
            model.forward(with_condition(x_t, condition.as_ref()), t, labels)
        })
    }

    /// An image-conditioned model's restorations of `images` `[n, c, h, w]` (in [−1, 1]): rows
    /// of originals, what the model was shown, and its outputs made to agree with it.
    fn write_edits(&self, task: Task, images: Tensor<4>, path: &Path) -> Result<()> {
        let [n, c, h, w] = images.dims();
        let shape = ImageShape {
            channels: c,
            height: h,
            width: w,
        };
        let x_t = self
            .fixed_noise
            .clone()
            .narrow(0, 0, n)
            .reshape([n, c, h, w]);
        let condition = condition_of(task, images.clone());
        let ema = self.ema();
        let output = DiffusionPipeline::new(&ema, &self.schedule, EPOCH_SAMPLER)
            .with_condition(condition)
            .generate(x_t, None, |_, _| {});
        let unit = |t: Tensor<4>| -> Vec<f32> {
            to_unit(t.clamp(-1.0, 1.0))
                .into_data()
                .iter::<f32>()
                .collect()
        };
        let (originals, outputs) = (unit(images), unit(output));
        let degradation = task.random_degradation(shape, 0);
        let mut grid = ImageGrid::new(shape);
        let originals: Vec<&[f32]> = originals.chunks(shape.len()).collect();
        for original in &originals {
            grid.push(original.to_vec());
        }
        for original in &originals {
            grid.push(degradation.picture(original, shape));
        }
        for (original, proposal) in originals.iter().zip(outputs.chunks(shape.len())) {
            grid.push(degradation.project(original, proposal, shape));
        }
        grid.save_labelled_rows(
            n,
            &["original".into(), "input".into(), "output".into()],
            path,
        )
    }
}

impl Learner for DiffusionLearner {
    fn set_progress(&mut self, progress: f64) {
        self.progress = progress;
    }

    fn train_step(&mut self, batch: Batch) -> DeviceParts {
        let step = self.counters.steps;
        self.counters.steps += 1;
        let model = self.model.network();
        let images = self.data_of(&batch, false);
        let labels = (model.num_classes > 0).then(|| self.drop_labels(batch.labels));
        let seed = mix(self.seed, stream::TIME, step);
        let device = images.device();
        let draws = LossDraws::new(&self.schedule, images.dims(), seed, &device);
        let [size, ..] = images.dims();
        let mut sum = self.split.sum(model);
        for share in self.split.shares(size, &device) {
            let replica = share.place(model);
            let images = share.rows(images.clone());
            let labels = labels.clone().map(|labels| share.rows(labels));
            let loss = self.loss_of_rows(&replica, &draws, images, labels, share.start); // [1]
            sum.add(model, &replica, &share, loss.clone(), vec![("loss", loss)]);
        }
        let (grads, parts) = sum.finish(model);
        self.model.step(self.adam.lr_at(self.progress), grads);
        let ema = self.ema.take().expect("present between steps");
        let model = self.model.network();
        self.ema = Some(ema_update(ema, model, self.config.ema_decay_at(step)));
        parts
    }

    fn evaluate(&self, batches: Batches<'_>) -> PassParts {
        let model = self.ema();
        let mut pending = PendingParts::default();
        for (index, batch) in batches.enumerate() {
            let [n, ..] = batch.images.dims();
            let images = self.data_of(&batch, true);
            let labels = (model.num_classes > 0).then_some(batch.labels);
            let seed = mix(TEST_TIME_SEED, stream::TIME, index as u64);
            let loss = self.loss(&model, images, labels, seed); // [1]
            pending.push(n, vec![("loss", loss)]);
        }
        pending.means()
    }

    fn scale(&self) -> PixelScale {
        PixelScale::MinusOneOne
    }

    fn write_images(&self, out: &Path, epoch: usize) -> Result<()> {
        if let (Some(task), Some(images)) = (self.config.task, &self.fixed_images) {
            let path = out.join("edits").join(format!("epoch_{epoch:03}.png"));
            return self.write_edits(task, images.clone(), &path);
        }
        let generator: Box<dyn Generative> = match &self.latent {
            Some(latent) => Box::new(LatentDiffusion {
                diffusion: self.generator(EPOCH_SAMPLER),
                first_stage: latent.first_stage.clone(),
                shape: latent.shape,
            }),
            None => Box::new(self.generator(EPOCH_SAMPLER)),
        };
        let path = out.join("samples").join(format!("epoch_{epoch:03}.png"));
        let shape = generator.image_shape();
        match generator.num_classes() {
            0 => save_grid(
                generator.generate(self.fixed_noise.clone(), None),
                shape,
                &path,
            ),
            classes => save_class_grid(
                |z, y| generator.generate(z, Some(y)),
                self.fixed_noise.clone().narrow(0, 0, 8),
                classes,
                shape,
                &path,
            ),
        }
    }

    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let mut blobs = self.model.blobs(["model", "optimizer"])?;
        blobs.push(module_blob(
            self.ema.as_ref().expect("present between steps"),
            "ema",
        )?);
        blobs.push(counters_blob(&self.counters)?);
        Ok(blobs)
    }

    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        self.model.restore(blobs, ["model", "optimizer"])?;
        let ema = self.ema.take().expect("present");
        self.ema = Some(restore_module(ema, blobs, "ema")?);
        self.counters = restore_counters(blobs, "diffusion")?;
        Ok(())
    }

    /// The EMA's weights: what `sample` draws from; latent diffusion's first stage beside them.
    fn export(&self, path: &Path) -> Result<()> {
        save_safetensors(&self.ema(), path)?;
        if let Some(latent) = &self.latent {
            save_safetensors(
                &latent.first_stage.model,
                &path.with_file_name(FirstStage::FILE),
            )?;
        }
        Ok(())
    }
}
