//! The GAN's side of the shared trainer: Algorithm 1 of Goodfellow et al. (2014).
//!
//! Every trainer step is one discriminator step on its minibatch of data and a fresh minibatch
//! of noise; after every `k`-th one comes a generator step on another fresh minibatch of noise.
//! So `k` D steps per G step, each D step on new data, as the algorithm has it. Two Adam
//! optimizers, one per network; a checkpoint holds both networks, both optimizers and the step
//! counters, so `--resume` continues exactly.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::data::{Batch, Batches, PixelScale};
use crate::error::Result;
use crate::models::gan::{
    Discriminator, Gan, GanConfig, Generator, discriminator_loss, generator_loss, mean_probability,
};
use crate::models::save_safetensors;
use crate::optim::AdamSettings;
use crate::sample::to_unit;
use crate::train::checkpoint::{counters_blob, restore_counters};
use crate::train::latent::{save_class_grid, save_grid};
use crate::train::parallel::BatchSplit;
use crate::train::trainee::Trainee;
use crate::train::trainer::{DeviceParts, Learner, Parts, PassParts, PendingParts};

/// Steps in a row that D must win before the run is stopped as failed.
pub(crate) const FAILURE_PATIENCE: u64 = 300;

/// Watches for the failure where D wins outright and G's gradient carries nothing: mean D(x)
/// near 1 and mean D(G(z)) near 0 for `FAILURE_PATIENCE` steps in a row while G's loss rises.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FailureWatch {
    /// Consecutive steps D has won.
    pub streak: u64,
    /// G's loss when the streak began.
    pub g_loss_at_start: f64,
    pub patience: u64,
}

impl FailureWatch {
    pub fn new(patience: u64) -> Self {
        Self {
            patience,
            ..Self::default()
        }
    }

    /// Takes one step's numbers; returns the symptom once the failure is certain.
    pub fn observe(&mut self, d_real: f64, d_fake: f64, g_loss: f64) -> Option<String> {
        if d_real > 0.99 && d_fake < 0.01 {
            if self.streak == 0 {
                self.g_loss_at_start = g_loss;
            }
            self.streak += 1;
        } else {
            self.streak = 0;
        }
        (self.streak >= self.patience && g_loss > self.g_loss_at_start).then(|| {
            format!(
                "the discriminator wins and the generator learns nothing: mean D(x) > 0.99 and \
                 mean D(G(z)) < 0.01 for {} steps while G's loss rose from {:.3} to {:.3} \
                 (G's samples are noise to D). Usual remedies: the non-saturating --g-loss, \
                 --k 1, a lower --lr, a narrower discriminator (--ndf), or a different --seed",
                self.streak, self.g_loss_at_start, g_loss
            )
        })
    }
}

/// Counters that make a resumed run continue exactly.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GanCounters {
    pub d_updates: u64,
    pub g_updates: u64,
    pub watch: FailureWatch,
}

pub struct GanLearner {
    generator: Trainee<Generator>,
    discriminator: Trainee<Discriminator>,
    adam: AdamSettings,
    config: GanConfig,
    /// Noise decoded into the sample grid every epoch, `[64, latent]`, on the inner device.
    fixed_noise: Tensor<2>,
    pub counters: GanCounters,
    progress: f64,
    split: BatchSplit,
}

impl GanLearner {
    /// `generator` and `discriminator` live on an autodiff device, `fixed_noise` on its inner one.
    pub fn new(
        config: GanConfig,
        generator: Generator,
        discriminator: Discriminator,
        adam: AdamSettings,
        fixed_noise: Tensor<2>,
    ) -> Self {
        crate::train::parallel::materialize(&generator);
        crate::train::parallel::materialize(&discriminator);
        Self {
            generator: Trainee::new(generator, &adam),
            discriminator: Trainee::new(discriminator, &adam),
            adam,
            config,
            fixed_noise,
            counters: GanCounters {
                d_updates: 0,
                g_updates: 0,
                watch: FailureWatch::new(FAILURE_PATIENCE),
            },
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

    pub fn discriminator(&self) -> &Discriminator {
        self.discriminator.network()
    }

    /// Both networks, for inference.
    pub fn gan(&self) -> Gan {
        Gan {
            generator: self.generator().valid(),
            discriminator: self.discriminator().valid(),
        }
    }

    fn labels(&self, batch: &Batch) -> Option<Tensor<1, Int>> {
        self.config.conditional().then(|| batch.labels.clone())
    }

    fn noise(&self, batch: usize, device: &Device) -> Tensor<2> {
        Tensor::random(
            [batch, self.config.latent],
            Distribution::Normal(0.0, 1.0),
            device,
        )
    }
}

impl Learner for GanLearner {
    fn set_progress(&mut self, progress: f64) {
        self.progress = progress;
    }

    fn train_step(&mut self, batch: Batch) -> DeviceParts {
        let lr = self.adam.lr_at(self.progress);
        let [size, ..] = batch.images.dims();
        let device = batch.images.device();
        let labels = self.labels(&batch);
        // Both steps' noise is drawn before any batch is split: MPI ranks reseed their
        // generators for what each share draws itself, and every rank must see the same noise.
        let noise = self.noise(size, &device); // [batch, latent]
        let g_step = (self.counters.d_updates + 1).is_multiple_of(self.config.k as u64);
        let g_noise = g_step.then(|| self.noise(size, &device)); // [batch, latent]

        // Discriminator step: ascend log D(x) + log(1 - D(G(z))) on fresh noise and this batch,
        // each share of the batch on its replica.
        let (generator, discriminator) = (self.generator.network(), self.discriminator.network());
        let mut d_sum = self.split.sum(discriminator);
        for share in self.split.shares(size, &device) {
            let (g, d) = (share.place(generator), share.place(discriminator));
            let labels = labels.clone().map(|labels| share.rows(labels));
            let fake = g
                .forward(share.rows(noise.clone()), labels.clone())
                .detach(); // [share, c, h, w]
            let real_logits = d.forward(share.rows(batch.images.clone()), labels.clone()); // [share, patches]
            let fake_logits = d.forward(fake, labels); // [share, patches]
            let d_real = mean_probability(real_logits.clone().detach());
            let d_fake = mean_probability(fake_logits.clone().detach());
            // G's loss on this step's noise, as D judged it before its update: what a D-only
            // step (k > 1) reports as g_loss.
            let g_loss_seen = generator_loss(fake_logits.clone().detach(), self.config.g_loss);
            let d_loss = discriminator_loss(real_logits, fake_logits); // [1]
            let parts = vec![
                ("d_loss", d_loss.clone()),
                ("g_loss", g_loss_seen),
                ("d_real", d_real),
                ("d_fake", d_fake),
            ];
            d_sum.add(discriminator, &d, &share, d_loss, parts);
        }
        let (grads, mut parts) = d_sum.finish(discriminator);
        self.discriminator.step(lr, grads);
        self.counters.d_updates += 1;

        // Generator step after every k-th D step, on another fresh minibatch of noise.
        if let Some(noise) = g_noise {
            // The gradient flows through D to G's samples, but D's weights need none: a no-grad
            // copy (sharing D's batch-norm running statistics) skips their gradients. Same
            // numbers to the bit, 3 % faster per iteration on 28 px DCGAN.
            let judge = self.discriminator.network().clone().no_grad();
            let generator = self.generator.network();
            let mut g_sum = self.split.sum(generator);
            for share in self.split.shares(size, &device) {
                let (g, judge) = (share.place(generator), share.place(&judge));
                let labels = labels.clone().map(|labels| share.rows(labels));
                let fake = g.forward(share.rows(noise.clone()), labels.clone()); // [share, c, h, w]
                let g_loss = generator_loss(judge.forward(fake, labels), self.config.g_loss); // [1]
                g_sum.add(
                    generator,
                    &g,
                    &share,
                    g_loss.clone(),
                    vec![("g_loss", g_loss)],
                );
            }
            let (grads, g_parts) = g_sum.finish(generator);
            self.generator.step(lr, grads);
            self.counters.g_updates += 1;
            let [(_, g_loss)] = <[_; 1]>::try_from(g_parts).expect("one part: g_loss");
            parts[1].1 = g_loss;
        }
        parts
    }

    fn observe(&mut self, parts: &Parts) -> Option<String> {
        let [_, (_, g_loss), (_, d_real), (_, d_fake)] = parts[..] else {
            unreachable!("a step's parts are d_loss, g_loss, d_real, d_fake")
        };
        self.counters.watch.observe(d_real, d_fake, g_loss)
    }

    fn logs_steps(&self) -> bool {
        true
    }

    fn evaluate(&self, batches: Batches<'_>) -> PassParts {
        let (generator, discriminator) = (self.generator().valid(), self.discriminator().valid());
        let mut pending = PendingParts::default();
        for batch in batches {
            let [size, ..] = batch.images.dims();
            let labels = self.labels(&batch);
            let fake = generator.forward(self.noise(size, &batch.images.device()), labels.clone());
            let real_logits = discriminator.forward(batch.images, labels.clone()); // [batch, patches]
            let fake_logits = discriminator.forward(fake, labels); // [batch, patches]
            let parts = vec![
                (
                    "d_loss",
                    discriminator_loss(real_logits.clone(), fake_logits.clone()),
                ),
                ("d_real", mean_probability(real_logits)),
                ("d_fake", mean_probability(fake_logits.clone())),
                ("g_loss", generator_loss(fake_logits, self.config.g_loss)),
            ];
            pending.push(size, parts);
        }
        pending.means()
    }

    fn scale(&self) -> PixelScale {
        PixelScale::MinusOneOne
    }

    fn write_images(&self, out: &Path, epoch: usize) -> Result<()> {
        let generator = self.generator().valid();
        let shape = self.config.shape;
        let noise = self.fixed_noise.clone();
        let labels = self.config.conditional().then(|| {
            // Fixed noise with labels cycling through the classes.
            let [n, _] = noise.dims();
            class_labels(n, self.config.num_classes, &noise.device())
        });
        save_grid(
            to_unit(generator.forward(noise.clone(), labels)),
            shape,
            &out.join("samples").join(format!("epoch_{epoch:03}.png")),
        )?;
        if self.config.conditional() {
            save_class_grid(
                |z, y| to_unit(generator.forward(z, Some(y))),
                noise.narrow(0, 0, 8),
                self.config.num_classes,
                shape,
                &out.join("classes").join(format!("epoch_{epoch:03}.png")),
            )?;
        }
        Ok(())
    }

    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let mut blobs = self.generator.blobs(["generator", "g_optimizer"])?;
        blobs.extend(self.discriminator.blobs(["discriminator", "d_optimizer"])?);
        blobs.push(counters_blob(&self.counters)?);
        Ok(blobs)
    }

    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        self.generator
            .restore(blobs, ["generator", "g_optimizer"])?;
        self.discriminator
            .restore(blobs, ["discriminator", "d_optimizer"])?;
        self.counters = restore_counters(blobs, "GAN")?;
        Ok(())
    }

    fn export(&self, path: &Path) -> Result<()> {
        save_safetensors(&self.gan(), path)
    }
}

/// Labels 0, 1, …, classes - 1, 0, 1, … for `n` images.
pub(crate) fn class_labels(n: usize, classes: usize, device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    Tensor::from_data(TensorData::new(labels, [n]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;
    use crate::models::gan::{DiscriminatorArch, GeneratorArch};

    /// A module's weights as bytes.
    fn flat<M: burn::module::Module>(module: &M) -> Vec<u8> {
        module.clone().into_record().into_bytes().unwrap().to_vec()
    }

    #[test]
    fn k_discriminator_updates_per_generator_update() {
        let device = Device::flex().autodiff();
        device.seed(0);
        let shape = ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        let config = GanConfig::new(shape, GeneratorArch::Mlp, DiscriminatorArch::Mlp)
            .with_latent(3)
            .with_mlp_hidden(vec![8])
            .with_k(3);
        let mut learner = GanLearner::new(
            config.clone(),
            config.init_generator(&device),
            config.init_discriminator(&device),
            AdamSettings::pytorch(1e-2),
            Tensor::zeros([8, 3], &device.clone().inner()),
        );
        let batch = || Batch {
            images: Tensor::random([4, 1, 4, 4], Distribution::Uniform(-1.0, 1.0), &device),
            labels: Tensor::zeros([4], &device),
            indices: Vec::new(),
        };
        let mut generator_moved = Vec::new();
        let mut discriminator_moved = Vec::new();
        for _ in 0..7 {
            let (g, d) = (flat(learner.generator()), flat(learner.discriminator()));
            let parts = learner.train_step(batch());
            assert_eq!(
                parts.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                ["d_loss", "g_loss", "d_real", "d_fake"]
            );
            generator_moved.push(flat(learner.generator()) != g);
            discriminator_moved.push(flat(learner.discriminator()) != d);
        }
        assert_eq!(discriminator_moved, [true; 7], "D updates every step");
        assert_eq!(
            generator_moved,
            [false, false, true, false, false, true, false],
            "G updates after every third D step"
        );
        assert_eq!(
            (learner.counters.d_updates, learner.counters.g_updates),
            (7, 2)
        );
    }

    #[test]
    fn failure_needs_a_long_streak_of_d_winning_with_g_loss_rising() {
        let mut watch = FailureWatch::new(5);
        // D wins, but G's loss falls: no failure.
        for i in 0..10 {
            assert_eq!(watch.observe(0.999, 0.001, 5.0 - i as f64 * 0.1), None);
        }
        // A step where D is unsure breaks the streak.
        assert_eq!(watch.observe(0.7, 0.3, 1.0), None);
        assert_eq!(watch.streak, 0);
        let mut stopped = None;
        for i in 0..5 {
            stopped = watch.observe(0.999, 0.001, 6.0 + i as f64);
            if i < 4 {
                assert_eq!(stopped, None, "step {i}");
            }
        }
        let message = stopped.expect("five winning steps with G's loss rising");
        assert!(message.contains("discriminator wins"), "{message}");
        assert!(message.contains("from 6.000 to 10.000"), "{message}");
    }
}
