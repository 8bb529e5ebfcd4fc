//! Samplers: how to walk from x_T ~ N(0, I) back to an image with a network's ε̂, DDPM's ancestral
//! steps or DDIM's (Song et al. 2021) deterministic or partly noisy skips.

use burn::prelude::*;
use burn::tensor::Distribution;

use super::schedule::NoiseSchedule;

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
