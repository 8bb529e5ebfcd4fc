//! pix2pix's side of the shared trainer. Each step draws what every image of the batch loses
//! (a mask, a side, or its colour) from the run's seed and a count of images seen, so a resumed
//! run draws the same masks; then one PatchGAN step on real and generated pairs (when there is a
//! discriminator) and one U-Net step on λ·L1 (+ the adversarial term). Two Adam optimizers; a
//! checkpoint holds both networks, both optimizers and the count.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;

use crate::data::{Batch, Batches, ImageShape, PixelScale};
use crate::degrade::Degradation;
use crate::error::Result;
use crate::models::gan::mean_probability;
use crate::models::gan::patchgan::PatchDiscriminator;
use crate::models::pix2pix::{
    Generator, Pix2pix, Pix2pixConfig, conditioning, discriminator_objective, generator_objective,
    judge, unknown_entries,
};
use crate::models::save_safetensors;
use crate::optim::AdamSettings;
use crate::rng::{mix, stream};
use crate::train::checkpoint::{counters_blob, restore_counters};
use crate::train::parallel::{BatchSplit, Share};
use crate::train::trainee::Trainee;
use crate::train::trainer::{DeviceParts, Learner, PassParts, PendingParts};
use crate::viz::ImageGrid;

/// The seed the test split's masks are drawn from: the same for every run, so runs compare.
const TEST_MASK_SEED: u64 = 0;

/// What makes a resumed run draw the same masks.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pix2pixCounters {
    /// Training images seen: the stream position of the next image's mask.
    pub images_seen: u64,
}

pub struct Pix2pixLearner {
    generator: Trainee<Generator>,
    /// The PatchGAN, when trained against one.
    discriminator: Option<Trainee<PatchDiscriminator>>,
    adam: AdamSettings,
    config: Pix2pixConfig,
    seed: u64,
    /// Test images shown every epoch, pixels in [0, 1], and what each loses.
    fixed: Vec<(Vec<f32>, Degradation)>,
    pub counters: Pix2pixCounters,
    progress: f64,
    split: BatchSplit,
}

/// What test image `index` loses, the same in every run.
pub(crate) fn test_degradation(config: &Pix2pixConfig, index: usize) -> Degradation {
    config.task.random_degradation(
        config.shape(),
        mix(TEST_MASK_SEED, stream::EVAL, index as u64),
    )
}

impl Pix2pixLearner {
    /// The networks live on an autodiff device; `fixed` are the pictured test images.
    pub fn new(
        config: Pix2pixConfig,
        generator: Generator,
        discriminator: Option<PatchDiscriminator>,
        adam: AdamSettings,
        seed: u64,
        fixed: Vec<Vec<f32>>,
    ) -> Self {
        crate::train::parallel::materialize(&generator);
        if let Some(discriminator) = &discriminator {
            crate::train::parallel::materialize(discriminator);
        }
        let fixed = fixed
            .into_iter()
            .enumerate()
            .map(|(i, image)| (image, test_degradation(&config, i)))
            .collect();
        Self {
            generator: Trainee::new(generator, &adam),
            discriminator: discriminator.map(|d| Trainee::new(d, &adam)),
            adam,
            config,
            seed,
            fixed,
            counters: Pix2pixCounters::default(),
            progress: 0.0,
            split: BatchSplit::default(),
        }
    }

    /// Splits each batch (both networks' steps) as `split` says.
    pub fn with_split(mut self, split: BatchSplit) -> Self {
        self.split = split;
        self
    }

    pub fn generator(&self) -> &Generator {
        self.generator.network()
    }

    pub fn discriminator(&self) -> Option<&PatchDiscriminator> {
        self.discriminator.as_ref().map(Trainee::network)
    }

    /// Both networks, for inference.
    pub fn model(&self) -> Pix2pix {
        Pix2pix {
            generator: self.generator().valid(),
            discriminator: self.discriminator().map(|d| d.valid()),
        }
    }

    fn shape(&self) -> ImageShape {
        self.config.shape()
    }
}

impl Learner for Pix2pixLearner {
    fn set_progress(&mut self, progress: f64) {
        self.progress = progress;
    }

    fn train_step(&mut self, batch: Batch) -> DeviceParts {
        let lr = self.adam.lr_at(self.progress);
        let [size, ..] = batch.images.dims();
        let first = self.counters.images_seen;
        let degradations: Vec<Degradation> = (0..size as u64)
            .map(|i| {
                self.config
                    .task
                    .random_degradation(self.shape(), mix(self.seed, stream::MASK, first + i))
            })
            .collect();
        self.counters.images_seen += size as u64;
        let generator = self.generator.network();
        let device = batch.images.device();
        let [_, channels, ..] = batch.images.dims();
        let batch_unknown = unknown_entries(&degradations, channels);

        // G's output on each share of the batch, on the share's replica: graphs kept for G's
        // step, which comes after D's.
        struct ShareWork {
            share: Share,
            replica: Generator,
            target: Tensor<4>,
            input: Tensor<4>,
            output: Tensor<4>,
            l1: Tensor<1>,
        }
        let work: Vec<ShareWork> = self
            .split
            .shares(size, &device)
            .into_iter()
            .map(|share| {
                let replica = share.place(generator);
                let target = share.rows(batch.images.clone()); // [share, c, h, w]
                let conditioned = conditioning(target.clone(), share.items(&degradations));
                let output = replica.forward(&conditioned); // [share, c, h, w]
                // (A rank without rows computes one at weight 0: its plain L1 keeps it finite.)
                let l1 = if self.split.splits() && share.weight > 0.0 {
                    conditioned.share_l1(
                        output.clone(),
                        target.clone(),
                        batch_unknown,
                        share.weight,
                    )
                } else {
                    conditioned.l1(output.clone(), target.clone())
                }; // [1]
                // What D judges, like what an edit keeps: the visible pixels put back.
                let output = conditioned.composite(output, target.clone()); // [share, c, h, w]
                ShareWork {
                    share,
                    replica,
                    target,
                    input: conditioned.input,
                    output,
                    l1,
                }
            })
            .collect();

        let mut d_parts = Vec::new();
        let judge_of_g = match &mut self.discriminator {
            Some(trainee) => {
                // D step on this batch's real pairs and G's outputs, detached.
                let discriminator = trainee.network();
                let mut d_sum = self.split.sum(discriminator);
                for w in &work {
                    let d = w.share.place(discriminator);
                    let real_logits = judge(&d, w.input.clone(), w.target.clone()); // [share, patches]
                    let fake_logits = judge(&d, w.input.clone(), w.output.clone().detach()); // [share, patches]
                    let (d_real, d_fake) = (
                        mean_probability(real_logits.clone().detach()),
                        mean_probability(fake_logits.clone().detach()),
                    );
                    let d_loss = discriminator_objective(real_logits, fake_logits); // [1]
                    let parts = vec![
                        ("d_real", d_real),
                        ("d_fake", d_fake),
                        ("d_loss", d_loss.clone()),
                    ];
                    d_sum.add(discriminator, &d, &w.share, d_loss, parts);
                }
                let (grads, parts) = d_sum.finish(discriminator);
                d_parts = parts;
                trainee.step(lr, grads);
                // G's gradient flows through D to the output; D's weights need none.
                Some(trainee.network().clone().no_grad())
            }
            None => None,
        };
        let generator = self.generator.network();
        let mut g_sum = self.split.sum(generator);
        for w in work {
            let fake_logits = judge_of_g.as_ref().map(|d| {
                judge(&w.share.place(d), w.input.clone(), w.output.clone()) // [share, patches]
            });
            let (loss, l1, adversarial) =
                generator_objective(self.config.l1_weight, w.l1, fake_logits);
            let mut parts = vec![("loss", loss.clone()), ("l1", l1)];
            if let Some(adversarial) = adversarial {
                parts.push(("g_adv", adversarial));
            }
            g_sum.add(generator, &w.replica, &w.share, loss, parts);
        }
        let (grads, mut named) = g_sum.finish(generator);
        self.generator.step(lr, grads);
        named.extend(d_parts);
        named
    }

    fn evaluate(&self, batches: Batches<'_>) -> PassParts {
        let generator = self.generator().valid();
        let mut pending = PendingParts::default();
        let mut index = 0;
        for batch in batches {
            let [size, ..] = batch.images.dims();
            let degradations: Vec<Degradation> = (index..index + size)
                .map(|i| test_degradation(&self.config, i))
                .collect();
            index += size;
            let conditioned = conditioning(batch.images.clone(), &degradations);
            let output = generator.forward(&conditioned);
            let l1 = conditioned.l1(output, batch.images); // [1]
            pending.push(
                size,
                vec![("loss", l1.clone() * self.config.l1_weight), ("l1", l1)],
            );
        }
        pending.means()
    }

    fn scale(&self) -> PixelScale {
        PixelScale::ZeroOne
    }

    fn write_images(&self, out: &Path, epoch: usize) -> Result<()> {
        if self.fixed.is_empty() {
            return Ok(());
        }
        let shape = self.shape();
        let generator = self.generator().valid();
        let device = self.generator().devices()[0].clone().inner();
        let n = self.fixed.len();
        let pixels: Vec<f32> = self
            .fixed
            .iter()
            .flat_map(|(image, _)| image.clone())
            .collect();
        let images = Tensor::<4>::from_data(
            TensorData::new(pixels, [n, shape.channels, shape.height, shape.width]),
            &device,
        );
        let degradations: Vec<Degradation> = self.fixed.iter().map(|(_, d)| d.clone()).collect();
        let output: Vec<f32> = generator
            .forward(&conditioning(images, &degradations))
            .into_data()
            .iter::<f32>()
            .collect();
        let mut grid = ImageGrid::new(shape);
        for (image, _) in &self.fixed {
            grid.push(image.clone());
        }
        for (image, degradation) in &self.fixed {
            grid.push(degradation.picture(image, shape));
        }
        for ((image, degradation), proposal) in self.fixed.iter().zip(output.chunks(shape.len())) {
            grid.push(degradation.project(image, proposal, shape));
        }
        grid.save_labelled_rows(
            n,
            &["original".into(), "input".into(), "output".into()],
            &out.join("edits").join(format!("epoch_{epoch:03}.png")),
        )
    }

    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let mut blobs = self.generator.blobs(["generator", "g_optimizer"])?;
        if let Some(discriminator) = &self.discriminator {
            blobs.extend(discriminator.blobs(["discriminator", "d_optimizer"])?);
        }
        blobs.push(counters_blob(&self.counters)?);
        Ok(blobs)
    }

    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        self.generator
            .restore(blobs, ["generator", "g_optimizer"])?;
        if let Some(discriminator) = &mut self.discriminator {
            discriminator.restore(blobs, ["discriminator", "d_optimizer"])?;
        }
        self.counters = restore_counters(blobs, "pix2pix")?;
        Ok(())
    }

    fn export(&self, path: &Path) -> Result<()> {
        save_safetensors(&self.model(), path)
    }
}
