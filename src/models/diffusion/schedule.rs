//! The forward process q(x_t | x₀) and its noise schedules (the "scheduler" of diffusers): β_t,
//! ᾱ_t, the closed-form x_t, the posterior q(x_{t−1} | x_t, x₀), one DDIM step and the time steps
//! a sampler visits. The formulas are in the module's opening doc ([`super`]).

use burn::prelude::*;

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
    /// x̂₀ is clipped to [−r, r]: 1 for pixels in [−1, 1], the codes' range in latent diffusion.
    x0_range: f64,
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
        Self {
            betas,
            alpha_bars,
            x0_range: 1.0,
        }
    }

    /// The schedule with x̂₀ clipped to [−`range`, `range`] while sampling.
    pub fn with_x0_range(self, range: f64) -> Self {
        Self {
            x0_range: range,
            ..self
        }
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
    /// x̂₀ is clipped to the data's range (pixels: [−1, 1]) and ε̂ recomputed from it (Ho et
    /// al.'s `clip_denoised`): near t = T, 1/√ᾱ_t reaches 2·10⁴ under the cosine schedule, and
    /// an unclipped x̂₀ would carry the network's error times that into the next state.
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
        let x0 = self
            .predict_x0(x_t.clone(), eps, t)
            .clamp(-self.x0_range, self.x0_range);
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
