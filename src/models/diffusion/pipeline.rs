//! What goes together to turn noise into images, named once (diffusers' pipeline): the network,
//! its noise schedule, the sampler, classifier-free guidance for class-conditional models and the
//! image an image-conditioned model (SR3, Palette) is shown. Sampling, the editing methods and
//! training's epoch samples all run a [`DiffusionPipeline`].

use burn::prelude::*;

use super::sampler::{Sampler, sample};
use super::schedule::NoiseSchedule;
use super::with_condition;
use crate::models::denoiser::Denoiser;

/// A trained denoiser with what it is sampled with.
pub struct DiffusionPipeline<'a> {
    pub denoiser: &'a Denoiser,
    pub schedule: &'a NoiseSchedule,
    pub sampler: Sampler,
    /// Classifier-free guidance weight w (class-conditional models only; 1: the plain
    /// conditional ε).
    pub guidance: f64,
    /// What an image-conditioned model is shown, `[n, k, h, w]` in [−1, 1].
    pub condition: Option<Tensor<4>>,
}

impl<'a> DiffusionPipeline<'a> {
    /// `denoiser` sampled by `sampler` under `schedule`, unguided and shown nothing.
    pub fn new(denoiser: &'a Denoiser, schedule: &'a NoiseSchedule, sampler: Sampler) -> Self {
        Self {
            denoiser,
            schedule,
            sampler,
            guidance: 1.0,
            condition: None,
        }
    }

    /// With classifier-free guidance weight `w`.
    pub fn with_guidance(self, w: f64) -> Self {
        Self {
            guidance: w,
            ..self
        }
    }

    /// Shown `condition` `[n, k, h, w]` (an image-conditioned model).
    pub fn with_condition(self, condition: Tensor<4>) -> Self {
        Self {
            condition: Some(condition),
            ..self
        }
    }

    /// Images from `x_t` `[n, c, h, w]` (pixels in [−1, 1], not clamped), of `labels` for a
    /// class-conditional model (guided by the weight), `visit(t, x_t)` shown every state as in
    /// [`sample`].
    pub fn generate(
        &self,
        x_t: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
        visit: impl FnMut(usize, &Tensor<4>),
    ) -> Tensor<4> {
        let [n, ..] = x_t.dims();
        let model = self.denoiser;
        let predict = |x: Tensor<4>, t: usize| {
            let input = with_condition(x, self.condition.as_ref()); // [n, c + k, h, w]
            match &labels {
                Some(labels) if model.num_classes > 0 => {
                    model.guided(input, &vec![t; n], labels.clone(), self.guidance)
                }
                _ => model.forward(input, &vec![t; n], None),
            }
        };
        sample(self.schedule, self.sampler, x_t, predict, visit)
    }
}
