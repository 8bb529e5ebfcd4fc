//! Editing with a diffusion model: shown what is seen when it was trained for the job (SR3 for
//! super-resolution, Palette for colorization), else RePaint's walk with an unconditional model
//! (the unconditional prediction of a class-conditional one).

use burn::prelude::*;
use burn::tensor::Distribution;

use super::{EditMethod, batch_of, unbatch};
use crate::data::ImageShape;
use crate::degrade::{Degradation, ObservedBatch, Task};
use crate::edit::repaint::{RePaintSettings, known_pixels, repaint};
use crate::error::Result;
use crate::models::denoiser::Denoiser;
use crate::models::diffusion::{DiffusionPipeline, NoiseSchedule, Sampler, condition_of};
use crate::sample::to_unit;

/// A trained denoiser and how it edits.
pub(crate) struct DiffusionEdit {
    pub model: Box<Denoiser>,
    /// The job it was trained for (image-conditioned), or `None` (RePaint).
    pub task: Option<Task>,
    pub schedule: NoiseSchedule,
    pub settings: RePaintSettings,
    pub device: Device,
}

impl EditMethod for DiffusionEdit {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        let dims = [originals.len(), shape.channels, shape.height, shape.width];
        let x_t = Tensor::random(dims, Distribution::Normal(0.0, 1.0), &self.device);
        let filled = match self.task {
            Some(task) => {
                let images = batch_of(originals, shape, &self.device);
                let condition = condition_of(task, images * 2.0 - 1.0);
                let sampler = Sampler::Ddim {
                    steps: self.settings.steps,
                    eta: 0.0,
                };
                DiffusionPipeline::new(&self.model, &self.schedule, sampler)
                    .with_condition(condition)
                    .generate(x_t, None, |_, _| {})
            }
            None => {
                let observed = ObservedBatch::new(originals, degradations, shape, &self.device);
                repaint(
                    &self.model,
                    &self.schedule,
                    &observed,
                    known_pixels(&observed),
                    x_t,
                    self.settings,
                    |_, _| {},
                )
            }
        };
        Ok(unbatch(to_unit(filled.clamp(-1.0, 1.0)), shape))
    }
}
