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

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::data::ImageShape;
use crate::degrade::Task;
use crate::degrade::upsample_nearest;
use crate::degrade::{box_downsample_tensor, luma_tensor};
use crate::error::Error;
use crate::models::denoiser::{Denoiser, DenoiserConfig};

/// How the noise level grows with t.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// β_t linear from 10⁻⁴ to 0.02 at T = 1000 (Ho et al.), both ends times 1000/T.
    Linear,
    /// ᾱ_t from a squared cosine (Nichol & Dhariwal).
    Cosine,
}

/// The largest β_t of either schedule: a step that keeps some of x_{t−1}, so ᾱ_t never reaches 0
/// and x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t stays defined.
const MAX_BETA: f64 = 0.999;

/// β_t and ᾱ_t for t = 1..=T, in f64: ᾱ_T of the linear schedule is 4·10⁻⁵, whose square root
/// f32 products would round.
#[derive(Debug, Clone)]
pub struct NoiseSchedule {
    /// β_t at index t − 1.
    betas: Vec<f64>,
    /// ᾱ_t at index t (ᾱ₀ = 1 first).
    alpha_bars: Vec<f64>,
}

impl NoiseSchedule {
    /// `kind` over `steps` = T steps.
    pub fn new(kind: Schedule, steps: usize) -> Self {
        assert!(steps >= 1, "a schedule needs at least one step");
        match kind {
            Schedule::Linear => {
                let scale = 1000.0 / steps as f64;
                Self::linear(1e-4 * scale, 0.02 * scale, steps)
            }
            Schedule::Cosine => Self::cosine(steps),
        }
    }

    /// β_t linear from `first` (t = 1) to `last` (t = T), capped at 0.999.
    pub fn linear(first: f64, last: f64, steps: usize) -> Self {
        assert!(steps >= 1, "a schedule needs at least one step");
        let span = (steps - 1).max(1) as f64;
        Self::from_betas(
            (0..steps)
                .map(|i| (first + (last - first) * i as f64 / span).min(MAX_BETA))
                .collect(),
        )
    }

    fn cosine(steps: usize) -> Self {
        const OFFSET: f64 = 0.008;
        let f = |t: usize| {
            let phase = (t as f64 / steps as f64 + OFFSET) / (1.0 + OFFSET);
            (phase * std::f64::consts::FRAC_PI_2).cos().powi(2)
        };
        Self::from_betas(
            (1..=steps)
                .map(|t| (1.0 - f(t) / f(t - 1)).min(MAX_BETA))
                .collect(),
        )
    }

    fn from_betas(betas: Vec<f64>) -> Self {
        let mut alpha_bars = Vec::with_capacity(betas.len() + 1);
        alpha_bars.push(1.0);
        for beta in &betas {
            let last = alpha_bars[alpha_bars.len() - 1];
            alpha_bars.push(last * (1.0 - beta));
        }
        Self { betas, alpha_bars }
    }

    /// T.
    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// β_t, t in 1..=T.
    pub fn beta(&self, t: usize) -> f64 {
        self.betas[t - 1]
    }

    /// ᾱ_t, t in 0..=T.
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.alpha_bars[t]
    }

    /// x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε for a batch `x0` `[n, c, h, w]`, image i at time `t[i]`.
    pub fn q_sample(&self, x0: Tensor<4>, t: &[usize], noise: Tensor<4>) -> Tensor<4> {
        let [n, ..] = x0.dims();
        assert_eq!(t.len(), n, "one time step per image");
        let device = x0.device();
        let per_image = |f: &dyn Fn(f64) -> f64| {
            let values: Vec<f32> = t.iter().map(|&t| f(self.alpha_bar(t)) as f32).collect();
            Tensor::<1>::from_data(TensorData::new(values, [n]), &device).reshape([n, 1, 1, 1])
        };
        let signal = per_image(&|a: f64| a.sqrt()); // [n, 1, 1, 1]
        let spread = per_image(&|a: f64| (1.0 - a).sqrt()); // [n, 1, 1, 1]
        x0 * signal + noise * spread // [n, c, h, w]
    }

    /// x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t: the image a predicted noise implies.
    pub fn predict_x0(&self, x_t: Tensor<4>, eps: Tensor<4>, t: usize) -> Tensor<4> {
        let a = self.alpha_bar(t);
        (x_t - eps * (1.0 - a).sqrt()) / a.sqrt()
    }

    /// The mean μ̃_t and variance β̃_t of q(x_{t−1} | x_t, x₀).
    pub fn posterior(&self, x_t: Tensor<4>, x0: Tensor<4>, t: usize) -> (Tensor<4>, f64) {
        let (a, a_prev, beta) = (self.alpha_bar(t), self.alpha_bar(t - 1), self.beta(t));
        let x0_weight = a_prev.sqrt() * beta / (1.0 - a);
        let xt_weight = (1.0 - beta).sqrt() * (1.0 - a_prev) / (1.0 - a);
        let mean = x0 * x0_weight + x_t * xt_weight;
        (mean, (1.0 - a_prev) / (1.0 - a) * beta)
    }

    /// One DDIM step from time `t` to `s` < t (`s` = 0: the image) given the predicted noise
    /// `eps` at x_t: the mean of x_s and the standard deviation σ of the noise to add to it.
    ///
    /// x̂₀ is clipped to the pixels' range [−1, 1] and ε̂ recomputed from it (Ho et al.'s
    /// `clip_denoised`): near t = T, 1/√ᾱ_t reaches 2·10⁴ under the cosine schedule, and an
    /// unclipped x̂₀ would carry the network's error times that into the next state.
    pub fn ddim_step(
        &self,
        x_t: Tensor<4>,
        eps: Tensor<4>,
        t: usize,
        s: usize,
        eta: f64,
    ) -> (Tensor<4>, f64) {
        assert!(s < t, "DDIM steps go back in time");
        let (a_t, a_s) = (self.alpha_bar(t), self.alpha_bar(s));
        let sigma = eta * ((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s)).sqrt();
        let x0 = self.predict_x0(x_t.clone(), eps, t).clamp(-1.0, 1.0);
        let eps = (x_t - x0.clone() * a_t.sqrt()) / (1.0 - a_t).sqrt();
        let direction = (1.0 - a_s - sigma * sigma).max(0.0).sqrt();
        (x0 * a_s.sqrt() + eps * direction, sigma)
    }

    /// The time steps a sampler of `count` steps visits, from T down: T·k/count rounded up for
    /// k = count..1, all of 1..=T when `count` ≥ T. This is "trailing" spacing (Lin et al. 2024,
    /// "Common diffusion noise schedules and sample steps are flawed"): it always starts at T,
    /// where x_T ~ N(0, I) holds, unlike DDIM's own uniform skip 1, 1 + T/count, … which starts
    /// below T.
    pub fn timesteps(&self, count: usize) -> Vec<usize> {
        let steps = self.steps();
        let count = count.clamp(1, steps);
        let mut visited: Vec<usize> = (1..=count)
            .rev()
            .map(|k| (k * steps).div_ceil(count))
            .collect();
        visited.dedup();
        visited
    }
}

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
pub struct LossDraws {
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

/// How to walk from noise back to an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// Ancestral sampling over all T steps (DDIM with η = 1 over consecutive steps).
    Ddpm,
    /// DDIM over `steps` evenly spaced steps with noise scale `eta` (0: deterministic).
    Ddim { steps: usize, eta: f64 },
}

/// Runs `sampler` from `x_t` (x_T, usually N(0, I) draws) to an image, with `predict_noise(x_t,
/// t)` the network's ε̂ for the batch at time t. `visit(t, x_t)` sees each state on the way,
/// x_T first and the image (t = 0) last, and keeps what a denoising strip needs: DDPM's 1,001
/// states of a batch of 64 would hold 200 MB.
pub fn sample(
    schedule: &NoiseSchedule,
    sampler: Sampler,
    x_t: Tensor<4>,
    mut predict_noise: impl FnMut(Tensor<4>, usize) -> Tensor<4>,
    mut visit: impl FnMut(usize, &Tensor<4>),
) -> Tensor<4> {
    let (visited, eta) = match sampler {
        Sampler::Ddpm => (schedule.timesteps(schedule.steps()), 1.0),
        Sampler::Ddim { steps, eta } => (schedule.timesteps(steps), eta),
    };
    visit(visited[0], &x_t);
    let mut x = x_t;
    for (i, &t) in visited.iter().enumerate() {
        let s = visited.get(i + 1).copied().unwrap_or(0);
        let eps = predict_noise(x.clone(), t);
        let (mean, sigma) = schedule.ddim_step(x, eps, t, s, eta);
        x = if sigma > 0.0 && s > 0 {
            let noise =
                Tensor::random(mean.shape(), Distribution::Normal(0.0, 1.0), &mean.device());
            mean + noise * sigma
        } else {
            mean
        };
        visit(s, &x);
    }
    x
}

/// The classifier-free guidance weight w of samples by default (Ho & Salimans' w' = 1, their
/// ε = (1 + w')·ε(x, y) − w'·ε(x, ∅), in the form ε(x, ∅) + w·(ε(x, y) − ε(x, ∅))).
pub const DEFAULT_GUIDANCE: f64 = 2.0;

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
        match (self.schedule, self.linear_betas_scaled) {
            (Schedule::Linear, None | Some(false)) => {
                NoiseSchedule::linear(1e-4, 0.02, self.timesteps)
            }
            (kind, _) => NoiseSchedule::new(kind, self.timesteps),
        }
    }

    /// The EMA decay after `step` optimizer steps.
    pub fn ema_decay_at(&self, step: u64) -> f64 {
        self.ema_decay
            .min((1.0 + step as f64) / (10.0 + step as f64))
    }
}

impl Sampler {
    /// "DDPM-T", "DDIM-50" or "DDIM-50 (η 0.5)", with the steps it takes under `schedule`.
    pub fn label(&self, schedule: &NoiseSchedule) -> String {
        match self {
            Sampler::Ddpm => format!("DDPM-{}", schedule.steps()),
            Sampler::Ddim { steps, eta } => {
                let steps = schedule.timesteps(*steps).len();
                match *eta == 0.0 {
                    true => format!("DDIM-{steps}"),
                    false => format!("DDIM-{steps} (η {eta})"),
                }
            }
        }
    }
}

/// The condition channels of `task` for images of `shape`.
pub fn condition_channels(task: Task, shape: ImageShape) -> usize {
    match task {
        Task::Colorize => 1,
        _ => shape.channels,
    }
}

/// What an image-conditioned model is shown of images `[n, c, h, w]` in [−1, 1]: SR3's small
/// image blown up to full size by pixel replication, Palette's luma `[n, 1, h, w]` (both views
/// commute with x → 2x − 1). Only super-resolution and colorization pass validation.
pub fn condition_of(task: Task, images: Tensor<4>) -> Tensor<4> {
    match task {
        Task::Superres(s) => upsample_nearest(box_downsample_tensor(images, s), s), // [n, c, h, w]
        Task::Colorize => luma_tensor(images),                                      // [n, 1, h, w]
        other => unreachable!("{other:?} is refused by DiffusionConfig::validate"),
    }
}

/// `x` `[n, c, h, w]` joined to an image-conditioned model's `condition` channels: the
/// network's input.
pub fn with_condition(x: Tensor<4>, condition: Option<&Tensor<4>>) -> Tensor<4> {
    match condition {
        Some(condition) => Tensor::cat(vec![x, condition.clone()], 1), // [n, c + k, h, w]
        None => x,
    }
}

/// A trained denoiser's images: `sampler` from `x_t` `[n, c, h, w]` (pixels in [−1, 1]), shown
/// `condition` (image-conditioned models) and `labels` guided by weight `guidance`
/// (class-conditional models); `visit` as in [`sample`].
#[allow(clippy::too_many_arguments)]
pub fn generate(
    model: &Denoiser,
    schedule: &NoiseSchedule,
    sampler: Sampler,
    x_t: Tensor<4>,
    condition: Option<&Tensor<4>>,
    labels: Option<Tensor<1, Int>>,
    guidance: f64,
    visit: impl FnMut(usize, &Tensor<4>),
) -> Tensor<4> {
    let [n, ..] = x_t.dims();
    let predict = |x: Tensor<4>, t: usize| {
        let input = with_condition(x, condition); // [n, c + k, h, w]
        match &labels {
            Some(labels) if model.num_classes > 0 => {
                model.guided(input, &vec![t; n], labels.clone(), guidance)
            }
            _ => model.forward(input, &vec![t; n], None),
        }
    };
    sample(schedule, sampler, x_t, predict, visit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: usize = 1000;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    fn image(device: &Device, seed: u32) -> Tensor<4> {
        let v: Vec<f32> = (0..2 * 4 * 4u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        Tensor::from_data(TensorData::new(v, [2, 1, 4, 4]), device)
    }

    #[test]
    fn alpha_bar_falls_from_one_to_pure_noise_at_any_t() {
        for steps in [50, 100, 250, T] {
            for kind in [Schedule::Linear, Schedule::Cosine] {
                let s = NoiseSchedule::new(kind, steps);
                assert_eq!(s.alpha_bar(0), 1.0);
                for t in 1..=steps {
                    assert!(
                        s.beta(t) > 0.0 && s.beta(t) < 1.0,
                        "{kind:?} T {steps} β_{t}"
                    );
                    assert!(s.alpha_bar(t) < s.alpha_bar(t - 1), "{kind:?} at {t}");
                    assert!(s.alpha_bar(t) > 0.0, "{kind:?} at {t}");
                }
                // Samplers start from N(0, I): x_T must be nearly pure noise.
                let last = s.alpha_bar(steps);
                assert!(last < 1e-3, "{kind:?} T {steps}: ᾱ_T {last}");
            }
        }
        // Ho et al.'s linear schedule: ᾱ_T ≈ 4.0·10⁻⁵.
        let linear = NoiseSchedule::new(Schedule::Linear, T).alpha_bar(T);
        assert!((linear - 4.04e-5).abs() < 0.1e-5, "{linear}");
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let close =
            |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-12, "{what}: {a} vs {b}");
        // Linear: β_t = (1000/T)·(10⁻⁴ + (0.02 − 10⁻⁴)·(t − 1)/(T − 1)).
        for steps in [50, 250, T] {
            let s = NoiseSchedule::new(Schedule::Linear, steps);
            let scale = 1000.0 / steps as f64;
            for t in [1, steps / 2, steps] {
                let want = scale * (1e-4 + (0.02 - 1e-4) * (t - 1) as f64 / (steps - 1) as f64);
                close(s.beta(t), want, &format!("linear T {steps} β_{t}"));
            }
            let product: f64 = (1..=7).map(|t| 1.0 - s.beta(t)).product();
            close(s.alpha_bar(7), product, "ᾱ_7 = Π (1 − β)");
        }
        // Cosine: ᾱ_t = f(t)/f(0) where β is not capped.
        let f = |t: f64, steps: f64| {
            (((t / steps + 0.008) / 1.008) * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        for steps in [100, T] {
            let s = NoiseSchedule::new(Schedule::Cosine, steps);
            for t in [1, steps / 4, steps / 2, 3 * steps / 4] {
                let want = f(t as f64, steps as f64) / f(0.0, steps as f64);
                close(s.alpha_bar(t), want, &format!("cosine T {steps} ᾱ_{t}"));
            }
            assert!(s.beta(steps) <= 0.999);
        }
    }

    #[test]
    fn runs_trained_before_the_scaling_keep_their_schedule() {
        let shape = ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let config = DiffusionConfig::new(DenoiserConfig::new(shape))
            .with_schedule(Schedule::Linear)
            .with_timesteps(100);
        assert_eq!(config.linear_betas_scaled, Some(true));
        assert!((config.noise_schedule().beta(100) - 0.2).abs() < 1e-12);
        // What an older config.json holds: no field, unscaled endpoints.
        let mut json: serde_json::Value = serde_json::to_value(&config).unwrap();
        json.as_object_mut().unwrap().remove("linear_betas_scaled");
        let old: DiffusionConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.linear_betas_scaled, None);
        let schedule = old.noise_schedule();
        assert!(
            (schedule.beta(1) - 1e-4).abs() < 1e-15 && (schedule.beta(100) - 0.02).abs() < 1e-15
        );
        // Its ᾱ_T is the 0.36 it was trained with.
        assert!(
            (schedule.alpha_bar(100) - 0.36).abs() < 0.01,
            "{}",
            schedule.alpha_bar(100)
        );
    }

    #[test]
    fn q_sample_has_the_closed_form_mean_and_variance() {
        let device = Device::flex();
        device.seed(1);
        let schedule = NoiseSchedule::new(Schedule::Cosine, T);
        let draws = 20_000;
        for t in [1, 250, 700] {
            // One pixel value, many independent draws of ε.
            let x0 = Tensor::<4>::ones([draws, 1, 1, 1], &device) * 0.6;
            let noise = Tensor::random([draws, 1, 1, 1], Distribution::Normal(0.0, 1.0), &device);
            let xt = values(schedule.q_sample(x0, &vec![t; draws], noise));
            let mean = xt.iter().map(|&v| v as f64).sum::<f64>() / draws as f64;
            let var = xt.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / draws as f64;
            let a = schedule.alpha_bar(t);
            let (want_mean, want_var) = (a.sqrt() * 0.6, 1.0 - a);
            // 5 standard errors of each estimate.
            let se_mean = (want_var / draws as f64).sqrt();
            let se_var = want_var * (2.0 / draws as f64).sqrt();
            assert!(
                (mean - want_mean).abs() < 5.0 * se_mean + 1e-6,
                "t {t}: mean {mean} vs {want_mean}"
            );
            assert!(
                (var - want_var).abs() < 5.0 * se_var + 1e-6,
                "t {t}: var {var} vs {want_var}"
            );
        }
    }

    #[test]
    fn the_predicted_image_inverts_the_forward_process() {
        let device = Device::flex();
        let schedule = NoiseSchedule::new(Schedule::Linear, T);
        let (x0, eps) = (image(&device, 3), image(&device, 7));
        for t in [1, 500, 1000] {
            let xt = schedule.q_sample(x0.clone(), &[t, t], eps.clone());
            let back = values(schedule.predict_x0(xt, eps.clone(), t));
            // 1/√ᾱ_T ≈ 160 magnifies f32 rounding at t = T.
            let tolerance = if t == T { 2e-3 } else { 1e-5 };
            for (b, x) in back.iter().zip(values(x0.clone())) {
                assert!((b - x).abs() < tolerance, "t {t}: {b} vs {x}");
            }
        }
    }

    /// ε̂ that is exactly right for images whose x₀ is `x0`: what a perfect network predicts.
    fn oracle(
        schedule: &NoiseSchedule,
        x0: Tensor<4>,
    ) -> impl FnMut(Tensor<4>, usize) -> Tensor<4> {
        let schedule = schedule.clone();
        move |x_t, t| {
            let a = schedule.alpha_bar(t);
            (x_t - x0.clone() * a.sqrt()) / (1.0 - a).sqrt()
        }
    }

    #[test]
    fn a_perfect_noise_prediction_recovers_the_image() {
        let device = Device::flex();
        device.seed(2);
        for kind in [Schedule::Linear, Schedule::Cosine] {
            let schedule = NoiseSchedule::new(kind, T);
            let x0 = image(&device, 11);
            let x_t = Tensor::random([2, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
            for sampler in [
                Sampler::Ddim {
                    steps: 10,
                    eta: 0.0,
                },
                Sampler::Ddim {
                    steps: 50,
                    eta: 0.5,
                },
                Sampler::Ddpm,
            ] {
                let mut path = Vec::new();
                let out = sample(
                    &schedule,
                    sampler,
                    x_t.clone(),
                    oracle(&schedule, x0.clone()),
                    |t, _| path.push(t),
                );
                let expected_len = match sampler {
                    Sampler::Ddpm => T + 1,
                    Sampler::Ddim { steps, .. } => steps + 1,
                };
                assert_eq!(path.len(), expected_len);
                assert_eq!((path[0], path[expected_len - 1]), (T, 0));
                for (o, x) in values(out).iter().zip(values(x0.clone())) {
                    assert!((o - x).abs() < 1e-4, "{kind:?} {sampler:?}: {o} vs {x}");
                }
            }
        }
    }

    /// With the oracle ε, deterministic DDIM keeps the noise x_T started with: every state it
    /// visits is √ᾱ_s·x₀ + √(1 − ᾱ_s)·ε (Song et al., eq. 12 with σ = 0).
    #[test]
    fn deterministic_ddim_visits_the_forward_marginals_of_its_noise() {
        let device = Device::flex();
        for kind in [Schedule::Linear, Schedule::Cosine] {
            let schedule = NoiseSchedule::new(kind, T);
            let (x0, eps) = (image(&device, 11), image(&device, 23));
            let x_t = schedule.q_sample(x0.clone(), &[T, T], eps.clone());
            let sampler = Sampler::Ddim {
                steps: 20,
                eta: 0.0,
            };
            let mut visited = 0;
            sample(
                &schedule,
                sampler,
                x_t,
                oracle(&schedule, x0.clone()),
                |s, x| {
                    let a = schedule.alpha_bar(s);
                    let want = values(x0.clone() * a.sqrt() + eps.clone() * (1.0 - a).sqrt());
                    for (got, want) in values(x.clone()).iter().zip(want) {
                        assert!((got - want).abs() < 2e-4, "{kind:?} s {s}: {got} vs {want}");
                    }
                    visited += 1;
                },
            );
            assert_eq!(visited, 21);
        }
    }

    /// A stochastic DDIM step from t to s adds noise of Song et al.'s
    /// σ = η·√((1 − ᾱ_s)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_s) around √ᾱ_s·x₀ + √(1 − ᾱ_s − σ²)·ε.
    #[test]
    fn a_stochastic_ddim_step_adds_song_et_als_variance() {
        let device = Device::flex();
        device.seed(3);
        let schedule = NoiseSchedule::new(Schedule::Cosine, T);
        let draws = 20_000;
        let (x0_value, eps_value) = (0.3f32, -0.8f32);
        let x0 = Tensor::<4>::full([draws, 1, 1, 1], x0_value, &device);
        let eps = Tensor::<4>::full([draws, 1, 1, 1], eps_value, &device);
        let x_t = schedule.q_sample(x0.clone(), &vec![T; draws], eps);
        for eta in [1.0, 0.5] {
            // Two steps: T → T/2 adds noise, T/2 → 0 returns x̂₀.
            let sampler = Sampler::Ddim { steps: 2, eta };
            let (t, s) = (T, T / 2);
            let (a_t, a_s) = (schedule.alpha_bar(t), schedule.alpha_bar(s));
            let sigma = eta * ((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s)).sqrt();
            let mut middle = None;
            sample(
                &schedule,
                sampler,
                x_t.clone(),
                oracle(&schedule, x0.clone()),
                |at, x| {
                    if at == s {
                        middle = Some(values(x.clone()));
                    }
                },
            );
            let xs = middle.expect("the sampler visits T/2");
            let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / draws as f64;
            let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / draws as f64;
            let want_mean = a_s.sqrt() * x0_value as f64
                + (1.0 - a_s - sigma * sigma).sqrt() * eps_value as f64;
            let se_mean = (sigma * sigma / draws as f64).sqrt();
            let se_var = sigma * sigma * (2.0 / draws as f64).sqrt();
            assert!(
                (mean - want_mean).abs() < 5.0 * se_mean,
                "η {eta}: mean {mean} vs {want_mean}"
            );
            assert!(
                (var - sigma * sigma).abs() < 5.0 * se_var,
                "η {eta}: var {var} vs {}",
                sigma * sigma
            );
        }
    }

    #[test]
    fn ddim_without_noise_is_deterministic() {
        let device = Device::flex();
        let schedule = NoiseSchedule::new(Schedule::Cosine, T);
        let x_t = image(&device, 5);
        // A network that is wrong in a fixed way: the outcome depends on it, never on the RNG.
        let predict = |x: Tensor<4>, t: usize| x * (0.5 + t as f64 / 4000.0);
        let sampler = Sampler::Ddim {
            steps: 20,
            eta: 0.0,
        };
        device.seed(1);
        let first = sample(&schedule, sampler, x_t.clone(), predict, |_, _| {});
        device.seed(99);
        let second = sample(&schedule, sampler, x_t, predict, |_, _| {});
        assert_eq!(values(first), values(second));
    }

    #[test]
    fn a_ddim_step_with_eta_one_is_the_ddpm_posterior() {
        let device = Device::flex();
        let schedule = NoiseSchedule::new(Schedule::Linear, T);
        let (x_t, eps) = (image(&device, 13), image(&device, 17));
        for t in [2, 100, 999] {
            let (mean, sigma) = schedule.ddim_step(x_t.clone(), eps.clone(), t, t - 1, 1.0);
            // Through the same clipped x̂₀.
            let x0 = schedule
                .predict_x0(x_t.clone(), eps.clone(), t)
                .clamp(-1.0, 1.0);
            let (posterior_mean, variance) = schedule.posterior(x_t.clone(), x0, t);
            assert!(
                (sigma * sigma - variance).abs() < 1e-12 * variance.max(1.0),
                "t {t}"
            );
            for (a, b) in values(mean).iter().zip(values(posterior_mean)) {
                assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "t {t}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn adam_on_the_simple_loss_learns_to_predict_the_noise() {
        use crate::models::denoiser::DenoiserConfig;
        use crate::optim::AdamSettings;
        use burn::optim::GradientsParams;
        let device = Device::flex();
        let autodiff = device.clone().autodiff();
        autodiff.seed(0);
        let shape = crate::data::ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let mut denoiser = DenoiserConfig::new(shape)
            .with_width(8)
            .with_levels(1)
            .init(&autodiff);
        let schedule = NoiseSchedule::new(Schedule::Cosine, T);
        // One constant image: x_t − √ᾱ_t·x₀ reveals the noise, once the network has learnt x₀.
        let x0 = Tensor::<4>::ones([8, 1, 8, 8], &autodiff) * 0.5;
        let loss_at = |denoiser: &crate::models::denoiser::Denoiser| {
            autodiff.seed(7); // the same ε and t every time
            simple_loss(&schedule, x0.clone(), 7, |x, t| {
                denoiser.forward(x, t, None)
            })
        };
        let first = loss_at(&denoiser).into_scalar::<f32>();
        let mut optimizer = AdamSettings::pytorch(2e-3).init();
        for _ in 0..40 {
            let loss = loss_at(&denoiser);
            let grads = GradientsParams::from_grads(loss.backward(), &denoiser);
            denoiser = optimizer.step(2e-3, denoiser, grads);
        }
        let last = loss_at(&denoiser).into_scalar::<f32>();
        // An untrained network predicts ε with an error near Var(ε) = 1.
        assert!(last < 0.5 * first, "{first} → {last}");
    }

    /// What `generate` samples with guidance w = 2 is the sampler run on ε_u + w·(ε_c − ε_u)
    /// of the same network, computed here by hand.
    #[test]
    fn guided_generation_follows_the_classifier_free_combination() {
        let device = Device::flex();
        device.seed(4);
        let shape = ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let model = DenoiserConfig::new(shape)
            .with_width(8)
            .with_levels(1)
            .with_num_classes(3)
            .init(&device);
        let schedule = NoiseSchedule::new(Schedule::Cosine, 100);
        let x_t = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let labels = || Tensor::<1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
        let sampler = Sampler::Ddim { steps: 4, eta: 0.0 };
        let w = 2.0;
        let at = |w: f64| {
            let images = generate(
                &model,
                &schedule,
                sampler,
                x_t.clone(),
                None,
                Some(labels()),
                w,
                |_, _| {},
            );
            values(images)
        };
        let guided = at(w);
        let by_hand = sample(
            &schedule,
            sampler,
            x_t.clone(),
            |x, t| {
                let unconditional = model.forward(x.clone(), &[t, t], None);
                let conditional = model.forward(x, &[t, t], Some(labels()));
                unconditional.clone() + (conditional - unconditional) * w
            },
            |_, _| {},
        );
        let by_hand = values(by_hand);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&guided, &by_hand), "{guided:?} vs {by_hand:?}");
        // The weight matters: w = 1 (the plain conditional ε) lands elsewhere.
        assert!(!close(&at(1.0), &by_hand));
    }

    #[test]
    fn a_sampler_names_the_steps_it_takes() {
        let short = NoiseSchedule::new(Schedule::Cosine, 100);
        assert_eq!(Sampler::Ddpm.label(&short), "DDPM-100");
        assert_eq!(
            Sampler::Ddpm.label(&NoiseSchedule::new(Schedule::Cosine, T)),
            "DDPM-1000"
        );
        let ddim = |steps, eta| Sampler::Ddim { steps, eta };
        assert_eq!(ddim(50, 0.0).label(&short), "DDIM-50");
        assert_eq!(ddim(500, 0.0).label(&short), "DDIM-100");
        assert_eq!(ddim(20, 0.5).label(&short), "DDIM-20 (η 0.5)");
    }

    #[test]
    fn sampler_time_steps_run_from_t_down_evenly() {
        let schedule = NoiseSchedule::new(Schedule::Linear, T);
        assert_eq!(schedule.timesteps(4), vec![1000, 750, 500, 250]);
        assert_eq!(schedule.timesteps(T).len(), T);
        assert_eq!(schedule.timesteps(5000).len(), T);
        let ten = schedule.timesteps(10);
        assert_eq!((ten[0], ten[9], ten.len()), (1000, 100, 10));
    }
}
