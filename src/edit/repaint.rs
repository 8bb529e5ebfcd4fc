//! Editing with an unconditional diffusion model, no training for the task: RePaint (Lugmayr et
//! al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic Models").
//!
//! Sampling runs backwards from x_T as usual, but after every step the part of x_{t−1} that the
//! input shows is replaced by the input itself noised to the same level,
//!
//!   x_{t−1} = m ⊙ (√ᾱ_{t−1}·y + √(1 − ᾱ_{t−1})·ε) + (1 − m) ⊙ x_{t−1}^model,
//!
//! so the model only ever makes up the hole, in agreement with what surrounds it. Because one
//! step sees the known pixels only through x_t, RePaint also *resamples*: every `jump` steps it
//! noises x forward again by q(x_{t+j} | x_t) and walks the stretch back, `resamples` times,
//! which lets the known pixels' information spread into the hole.
//!
//! The same replacement works for any linear view A of the image (Choi et al. 2021's ILVR for
//! super-resolution): x ← x + B(y_t − A·x), with B the nearest upsampling for block means (A's
//! pseudo-inverse) and the copy to R, G and B for the luma (a right-inverse that keeps chroma:
//! BT.601's weights sum to 1).
//!
//! Steps run on a subsequence of the T time steps (`steps` of them, the samplers' trailing
//! spacing) with DDPM's noise between them (DDIM η = 1), so an edit costs about steps ×
//! resamples network evaluations instead of T × resamples.

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::degrade::ObservedBatch;
use crate::models::denoiser::Denoiser;
use crate::models::diffusion::NoiseSchedule;

/// How long RePaint walks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RePaintSettings {
    /// Time steps of the walk (a subsequence of the T of training).
    pub steps: usize,
    /// Steps walked forward and back again at each resampling.
    pub jump: usize,
    /// Times each stretch of `jump` steps is walked (1: no resampling).
    pub resamples: usize,
}

impl Default for RePaintSettings {
    /// 50 steps, stretches of 5 walked 5 times: ~250 network evaluations per edit (the paper's
    /// 250 steps with j = 10 and r = 10 cost ~4,500).
    fn default() -> Self {
        Self {
            steps: 50,
            jump: 5,
            resamples: 5,
        }
    }
}

/// The levels RePaint visits, as indices into the walk's time steps (level `steps` is x_T, 0 the
/// image): down one at a time, and at every `jump`-th level above the image back up `jump`
/// levels, `resamples − 1` times (the paper's `get_schedule_jump`).
pub fn levels(settings: RePaintSettings) -> Vec<usize> {
    let RePaintSettings {
        steps,
        jump,
        resamples,
    } = settings;
    let jump = jump.clamp(1, steps.max(1));
    let mut jumps_left: Vec<usize> = (0..=steps)
        .map(|level| {
            let jumps = level + jump <= steps && level.is_multiple_of(jump);
            if jumps {
                resamples.saturating_sub(1)
            } else {
                0
            }
        })
        .collect();
    let mut level = steps;
    let mut path = vec![level];
    while level > 0 {
        level -= 1;
        path.push(level);
        if level > 0 && jumps_left[level] > 0 {
            jumps_left[level] -= 1;
            for _ in 0..jump {
                level += 1;
                path.push(level);
            }
        }
    }
    path
}

/// What `observed` (the batch's views of pixels in [0, 1], as the other editing methods take
/// them) knows on a pixel diffusion's scale [−1, 1]: every view here is affine with weights
/// summing to 1, so it commutes with x → 2x − 1.
pub fn known_pixels(observed: &ObservedBatch) -> Tensor<4> {
    observed.targets.clone() * 2.0 - 1.0
}

/// Fills in what `observed` does not show, for samples `[n, c, h, w]` of the diffusion (pixels
/// in [−1, 1], or a latent diffusion's codes): `known` is what the view shows on that scale
/// ([`known_pixels`], or the codes of the visible part). The device's generator draws the
/// noise. Returns samples whose view equals `known`. `visit(t, x)` sees each state the walk
/// reaches on its way down, t its time step.
pub fn repaint(
    model: &Denoiser,
    schedule: &NoiseSchedule,
    observed: &ObservedBatch,
    known: Tensor<4>,
    x_t: Tensor<4>,
    settings: RePaintSettings,
    mut visit: impl FnMut(usize, &Tensor<4>),
) -> Tensor<4> {
    let [n, ..] = x_t.dims();
    let device = x_t.device();
    // Level k's time step: 0 for the image, then the sampler's (trailing) spacing ascending.
    let mut times = schedule.timesteps(settings.steps);
    times.push(0);
    times.reverse();
    let path = levels(RePaintSettings {
        steps: times.len() - 1,
        ..settings
    });
    let gaussian =
        |like: &Tensor<4>| Tensor::random(like.shape(), Distribution::Normal(0.0, 1.0), &device);
    let mut x = x_t;
    for pair in path.windows(2) {
        let (from, to) = (times[pair[0]], times[pair[1]]);
        if to > from {
            // Back up: x_to ~ q(x_to | x_from) = N(√(ᾱ_to/ᾱ_from)·x, (1 − ᾱ_to/ᾱ_from)·I).
            let ratio = schedule.alpha_bar(to) / schedule.alpha_bar(from);
            x = x.clone() * ratio.sqrt() + gaussian(&x) * (1.0 - ratio).sqrt();
            continue;
        }
        let eps = model.forward(x.clone(), &vec![from; n], None);
        let (mean, sigma) = schedule.ddim_step(x, eps, from, to, 1.0);
        let unknown = if to > 0 {
            mean.clone() + gaussian(&mean) * sigma
        } else {
            mean
        };
        let a = schedule.alpha_bar(to);
        // The input noised to time `to`: A(q(x_to | x₀)) for any x₀ that A shows as the input.
        let noise = observed.observe(gaussian(&unknown));
        let known_t = known.clone() * a.sqrt() + noise * (1.0 - a).sqrt();
        x = observed.replace(unknown, known_t);
        visit(to, &x);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;
    use crate::degrade::{Degradation, Mask};
    use crate::models::denoiser::DenoiserConfig;
    use crate::models::diffusion::Schedule;

    #[test]
    fn the_walk_goes_down_with_jumps_back_and_ends_at_the_image() {
        let path = levels(RePaintSettings {
            steps: 6,
            jump: 2,
            resamples: 3,
        });
        assert_eq!(path.first(), Some(&6));
        assert_eq!(path.last(), Some(&0));
        for pair in path.windows(2) {
            assert_eq!(pair[0].abs_diff(pair[1]), 1, "{path:?}");
        }
        // Jumps at levels 4 and 2 (not 0: the image is final), two each of 2 levels up.
        let ups = path.windows(2).filter(|p| p[1] > p[0]).count();
        assert_eq!(ups, 2 * 2 * 2, "{path:?}");
        assert_eq!(path.len(), 1 + 6 + 2 * ups);
        // No resampling: straight down.
        let straight = levels(RePaintSettings {
            steps: 4,
            jump: 2,
            resamples: 1,
        });
        assert_eq!(straight, vec![4, 3, 2, 1, 0]);
    }

    fn shape(channels: usize) -> ImageShape {
        ImageShape {
            channels,
            height: 8,
            width: 8,
        }
    }

    fn images(shape: ImageShape, n: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                (0..shape.len())
                    .map(|p| ((p * 7 + i * 13) % 17) as f32 / 16.0)
                    .collect()
            })
            .collect()
    }

    /// An untrained denoiser: RePaint's guarantee does not depend on what the model makes up.
    fn run(shape: ImageShape, degradations: &[Degradation]) -> (Vec<Vec<f32>>, Vec<f32>) {
        let device = Device::flex();
        device.seed(3);
        let model = DenoiserConfig::new(shape).with_width(8).init(&device);
        let schedule = NoiseSchedule::new(Schedule::Cosine, 100);
        let originals = images(shape, degradations.len());
        let observed = ObservedBatch::new(&originals, degradations, shape, &device);
        let n = originals.len();
        let x_t = Tensor::random(
            [n, shape.channels, shape.height, shape.width],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let settings = RePaintSettings {
            steps: 6,
            jump: 2,
            resamples: 2,
        };
        let known = known_pixels(&observed);
        let out = repaint(
            &model,
            &schedule,
            &observed,
            known,
            x_t,
            settings,
            |_, _| {},
        );
        (originals, out.into_data().iter::<f32>().collect())
    }

    /// Each state on the way down shows the known pixels noised to its own level:
    /// √ᾱ_t·(2y − 1) + √(1 − ᾱ_t)·ε (Lugmayr et al., eq. 8), not to the level it came from.
    #[test]
    fn the_known_region_is_noised_to_the_level_of_each_state() {
        let shape = ImageShape {
            channels: 1,
            height: 32,
            width: 32,
        };
        let device = Device::flex();
        device.seed(5);
        let model = DenoiserConfig::new(shape).with_width(8).init(&device);
        let schedule = NoiseSchedule::new(Schedule::Cosine, 100);
        let n = 8;
        let value = 0.8f32; // every known pixel; 0.6 on the diffusion's scale
        let originals = vec![vec![value; shape.len()]; n];
        let mask = Mask::center(32, 32);
        let degradations = vec![Degradation::Mask(mask.clone()); n];
        let observed = ObservedBatch::new(&originals, &degradations, shape, &device);
        let x_t = Tensor::random([n, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let settings = RePaintSettings {
            steps: 5,
            jump: 2,
            resamples: 2,
        };
        let mut checked = 0;
        let known = known_pixels(&observed);
        repaint(
            &model,
            &schedule,
            &observed,
            known,
            x_t,
            settings,
            |t, x| {
                if t == 0 {
                    return;
                }
                let values: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
                let known: Vec<f64> = values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !mask.missing()[i % shape.len()])
                    .map(|(_, &v)| v as f64)
                    .collect();
                let m = known.len() as f64;
                let mean = known.iter().sum::<f64>() / m;
                let var = known.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
                let a = schedule.alpha_bar(t);
                let (want_mean, want_var) = (a.sqrt() * (2.0 * value as f64 - 1.0), 1.0 - a);
                assert!(
                    (mean - want_mean).abs() < 5.0 * (want_var / m).sqrt(),
                    "t {t}: mean {mean} vs {want_mean}"
                );
                assert!(
                    (var - want_var).abs() < 5.0 * want_var * (2.0 / m).sqrt(),
                    "t {t}: variance {var} vs {want_var}"
                );
                checked += 1;
            },
        );
        assert!(checked >= 5, "{checked} states");
    }

    #[test]
    fn repaint_keeps_the_known_pixels_exactly() {
        let shape = shape(1);
        let masks = [
            Mask::center(8, 8),
            Mask::uncrop(8, 8, crate::degrade::Side::Left),
        ];
        let degradations: Vec<Degradation> = masks.into_iter().map(Degradation::Mask).collect();
        let (originals, out) = run(shape, &degradations);
        let mut changed = 0;
        for (i, (original, degradation)) in originals.iter().zip(&degradations).enumerate() {
            let Degradation::Mask(mask) = degradation else {
                unreachable!()
            };
            let out = &out[i * shape.len()..(i + 1) * shape.len()];
            for p in 0..shape.len() {
                let want = original[p] * 2.0 - 1.0;
                if mask.missing()[p] {
                    changed += usize::from(out[p] != want);
                } else {
                    assert_eq!(out[p], want, "image {i} pixel {p}");
                }
            }
        }
        assert!(changed > 0, "the hole is made up, not copied");
    }

    #[test]
    fn the_linear_views_are_kept_too() {
        for (degradation, channels) in [(Degradation::Downsample(2), 1), (Degradation::Gray, 3)] {
            let shape = shape(channels);
            let (originals, out) = run(shape, std::slice::from_ref(&degradation));
            let unit: Vec<f32> = out.iter().map(|v| (v + 1.0) / 2.0).collect();
            let (want, got) = (
                degradation.observe(&originals[0], shape),
                degradation.observe(&unit, shape),
            );
            for (w, g) in want.iter().zip(&got) {
                assert!((w - g).abs() < 1e-4, "{degradation:?}: {g} vs {w}");
            }
        }
    }
}
