//! Denoising diffusion: the forward process and the samplers that run it backwards.
//!
//! Ho et al. 2020, "Denoising Diffusion Probabilistic Models" (DDPM): a fixed Markov chain adds
//! Gaussian noise to an image x₀ over T steps, q(x_t | x_{t−1}) = N(√(1 − β_t)·x_{t−1}, β_t·I),
//! so that in closed form
//!
//!   q(x_t | x₀) = N(√ᾱ_t·x₀, (1 − ᾱ_t)·I),   ᾱ_t = Π_{s ≤ t} (1 − β_s),
//!
//! i.e. x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε with ε ~ N(0, I). A network ε_θ(x_t, t) learns to predict ε
//! (the "simple" loss ‖ε − ε_θ‖²), which gives x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t, and sampling
//! walks from x_T ~ N(0, I) back to x₀:
//!
//! - DDPM (ancestral): x_{t−1} ~ q(x_{t−1} | x_t, x̂₀) = N(μ̃_t, β̃_t·I), every one of the T steps;
//!   μ̃_t = √ᾱ_{t−1}·β_t/(1 − ᾱ_t)·x̂₀ + √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t,
//!   β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t.
//! - DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models"): from t to any s < t,
//!   x_s = √ᾱ_s·x̂₀ + √(1 − ᾱ_s − σ²)·ε̂ + σ·z with σ = η·√((1 − ᾱ_s)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_s).
//!   η = 0 is deterministic and may skip steps (10-100 instead of 1,000); η = 1 over consecutive
//!   steps is DDPM's step, the same mean and variance.
//!
//! Schedules: DDPM's linear β from 10⁻⁴ to 0.02 over T = 1,000, both ends scaled by 1000/T for
//! other T as improved-diffusion does (unscaled, T = 50 would end at ᾱ_T = 0.60, far from the
//! N(0, I) every sampler starts from), and the cosine schedule of Nichol & Dhariwal 2021
//! ("Improved DDPM"), ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2), s = 0.008, which
//! destroys the image more evenly over t. β is capped at 0.999 in both.
//! Time steps count from 1 (t = 0 is the data, ᾱ₀ = 1). Pixels live in [−1, 1] for diffusion.

pub mod pipeline;
pub mod sampler;
pub mod schedule;

pub use pipeline::DiffusionPipeline;
pub use sampler::{Sampler, sample};
pub use schedule::{NoiseSchedule, Schedule};

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::data::ImageShape;
use crate::degrade::Task;
use crate::degrade::upsample_nearest;
use crate::degrade::{box_downsample_tensor, luma_tensor};
use crate::error::Error;
use crate::models::denoiser::DenoiserConfig;

/// Ho et al.'s simple loss on a batch `x0` `[n, c, h, w]` (pixels in [−1, 1]): for each image a
/// time step t uniform in 1..=T and noise ε ~ N(0, I), the mean over images and pixels of
/// (ε − ε̂(x_t, t))², with `predict_noise(x_t, t)` the network's ε̂. `seed` draws the time steps
/// (the noise comes from the device's generator); `[1]`.
pub fn simple_loss(
    schedule: &NoiseSchedule,
    x0: Tensor<4>,
    seed: u64,
    predict_noise: impl FnOnce(Tensor<4>, &[usize]) -> Tensor<4>,
) -> Tensor<1> {
    let draws = LossDraws::new(schedule, x0.shape().dims(), seed, &x0.device());
    draws.loss(schedule, x0, predict_noise)
}

/// What the simple loss draws for a batch: each image's time step and noise. Drawn for the
/// whole batch before it is split over replicas or ranks, so a split batch sees the same.
#[derive(Clone)]
pub(crate) struct LossDraws {
    /// t of each image, in 1..=T.
    pub t: Vec<usize>,
    /// ε, `[n, c, h, w]`.
    pub noise: Tensor<4>,
}

impl LossDraws {
    /// Time steps from `seed`, noise from `device`'s generator, for a batch of `shape`.
    pub fn new(schedule: &NoiseSchedule, shape: [usize; 4], seed: u64, device: &Device) -> Self {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let t = (0..shape[0])
            .map(|_| rng.random_range(1..=schedule.steps()))
            .collect();
        let noise = Tensor::random(shape, Distribution::Normal(0.0, 1.0), device);
        Self { t, noise }
    }

    /// The simple loss of `x0`, rows `[start, start + n)` of the batch drawn for: `[1]`.
    pub fn loss_of_rows(
        &self,
        schedule: &NoiseSchedule,
        x0: Tensor<4>,
        start: usize,
        predict_noise: impl FnOnce(Tensor<4>, &[usize]) -> Tensor<4>,
    ) -> Tensor<1> {
        let [n, ..] = x0.dims();
        let t = &self.t[start..start + n];
        let noise = if n == self.t.len() {
            self.noise.clone()
        } else {
            self.noise.clone().narrow(0, start, n)
        };
        let noise = noise.to_device(&x0.device());
        let x_t = schedule.q_sample(x0, t, noise.clone()); // [n, c, h, w]
        (predict_noise(x_t, t) - noise).square().mean() // [1]
    }

    /// The simple loss of the whole batch `x0`: `[1]`.
    pub fn loss(
        &self,
        schedule: &NoiseSchedule,
        x0: Tensor<4>,
        predict_noise: impl FnOnce(Tensor<4>, &[usize]) -> Tensor<4>,
    ) -> Tensor<1> {
        self.loss_of_rows(schedule, x0, 0, predict_noise)
    }
}

/// The classifier-free guidance weight w of samples by default (Ho & Salimans' w' = 1, their
/// ε = (1 + w')·ε(x, y) − w'·ε(x, ∅), in the form ε(x, ∅) + w·(ε(x, y) − ε(x, ∅))).
pub(crate) const DEFAULT_GUIDANCE: f64 = 2.0;

/// A diffusion model: its denoiser, its noise schedule, and how it is trained.
#[derive(Config, Debug)]
pub struct DiffusionConfig {
    pub denoiser: DenoiserConfig,
    #[config(default = "Schedule::Cosine")]
    pub schedule: Schedule,
    /// T, the steps of the forward process.
    #[config(default = 1000)]
    pub timesteps: usize,
    /// Whether the linear schedule's β endpoints are scaled by 1000/T. `None` in runs written
    /// before they were: those were trained with 10⁻⁴ and 0.02 at any T, and keep them.
    #[config(default = "Some(true)")]
    pub linear_betas_scaled: Option<bool>,
    /// Conditional models: the probability a training label is replaced by "no class", which
    /// teaches the same network the unconditional ε for guidance (Ho & Salimans: 0.1-0.2).
    #[config(default = 0.1)]
    pub label_dropout: f64,
    /// The EMA's decay per step (warmed up as min(d, (1 + s)/(10 + s)) so short runs sample
    /// from their recent weights, not their initialization).
    #[config(default = 0.999)]
    pub ema_decay: f64,
    /// An image-conditioned model's job (SR3 for super-resolution, Palette for colorization):
    /// what it is shown of each image, as extra input channels. `None`: it generates from noise.
    #[config(default = "None")]
    pub task: Option<Task>,
    /// The range x̂₀ is clipped to while sampling: `None` is pixels' [−1, 1]; latent diffusion
    /// records its codes' (scaled) range.
    #[config(default = "None")]
    pub x0_range: Option<f64>,
}

impl DiffusionConfig {
    pub fn validate(&self) -> crate::Result<()> {
        self.denoiser.validate()?;
        if self.timesteps < 2 {
            return Err(Error::bad_input("--timesteps must be at least 2"));
        }
        if !(0.0..1.0).contains(&self.label_dropout) {
            return Err(Error::bad_input("--label-dropout must be in [0, 1)"));
        }
        if let Some(range) = self.x0_range
            && !(range.is_finite() && range > 0.0)
        {
            return Err(Error::bad_input(format!(
                "x0_range {range} must be above 0"
            )));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::bad_input("--ema-decay must be in [0, 1)"));
        }
        if self.denoiser.num_classes == 1 {
            return Err(Error::bad_input(
                "--conditional needs data with at least two classes",
            ));
        }
        let shape = self.denoiser.shape;
        let want = match self.task {
            None => 0,
            Some(task @ (Task::Superres(_) | Task::Colorize)) => {
                task.random_degradation(shape, 0).check(shape)?;
                condition_channels(task, shape)
            }
            Some(task) => {
                return Err(Error::bad_input(format!(
                    "--task {}: a diffusion model conditions on a small or a gray image \
                     (superres, colorize); for {} use an unconditional run, which edits by RePaint",
                    task.name(),
                    task.name()
                )));
            }
        };
        if self.denoiser.condition_channels != want {
            return Err(Error::bad_input(format!(
                "the denoiser takes {} condition channels, its task {want}",
                self.denoiser.condition_channels
            )));
        }
        Ok(())
    }

    pub fn noise_schedule(&self) -> NoiseSchedule {
        let schedule = match (self.schedule, self.linear_betas_scaled) {
            (Schedule::Linear, None | Some(false)) => {
                NoiseSchedule::linear(1e-4, 0.02, self.timesteps)
            }
            (kind, _) => NoiseSchedule::new(kind, self.timesteps),
        };
        schedule.with_x0_range(self.x0_range.unwrap_or(1.0))
    }

    /// The EMA decay after `step` optimizer steps.
    pub fn ema_decay_at(&self, step: u64) -> f64 {
        self.ema_decay
            .min((1.0 + step as f64) / (10.0 + step as f64))
    }
}

/// The condition channels of `task` for images of `shape`.
pub(crate) fn condition_channels(task: Task, shape: ImageShape) -> usize {
    match task {
        Task::Colorize => 1,
        _ => shape.channels,
    }
}

/// What an image-conditioned model is shown of images `[n, c, h, w]` in [−1, 1]: SR3's small
/// image blown up to full size by pixel replication, Palette's luma `[n, 1, h, w]` (both views
/// commute with x → 2x − 1). Only super-resolution and colorization pass validation.
pub(crate) fn condition_of(task: Task, images: Tensor<4>) -> Tensor<4> {
    match task {
        Task::Superres(s) => upsample_nearest(box_downsample_tensor(images, s), s), // [n, c, h, w]
        Task::Colorize => luma_tensor(images),                                      // [n, 1, h, w]
        other => unreachable!("{other:?} is refused by DiffusionConfig::validate"),
    }
}

/// `x` `[n, c, h, w]` joined to an image-conditioned model's `condition` channels: the
/// network's input.
pub(crate) fn with_condition(x: Tensor<4>, condition: Option<&Tensor<4>>) -> Tensor<4> {
    match condition {
        Some(condition) => Tensor::cat(vec![x, condition.clone()], 1), // [n, c + k, h, w]
        None => x,
    }
}

#[cfg(test)]
mod tests;
