//! Sampling: every generative model maps a code z (and, when conditional, a class y) to images.
//!
//! An autoencoder's or VAE's decoder and a GAN's generator are used the same way once trained:
//! draw z ~ N(0, I), decode. [`Generative`] is that one view, so `sample`, `eval-samples`, the
//! tour and the editing commands need not know which model they hold. Images come out in [0, 1]
//! whatever range the network works in (a GAN's tanh gives [-1, 1]; `to_unit` maps it).

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, StandardNormal};

use crate::data::ImageShape;
use crate::models::autoencoder_kl::ScaledAutoencoder;
use crate::models::denoiser::Denoiser;
use crate::models::diffusion::{DiffusionConfig, DiffusionPipeline, Sampler};
use crate::models::gan::{Gan, GanConfig};
use crate::models::two_stage::SecondStage;
use crate::models::{LatentModel, LatentModelConfig};

/// A trained model that turns codes into images.
pub trait Generative {
    /// Dimensions of z.
    fn latent(&self) -> usize;
    /// Classes the model is conditioned on (0: unconditional).
    fn num_classes(&self) -> usize;
    /// The shape of one image.
    fn image_shape(&self) -> ImageShape;
    /// What maps z to images, for messages: "vae decoder", "dcgan generator".
    fn describe(&self) -> String;
    /// Images for `z` `[n, latent]` (and `labels` `[n]` when conditional), pixels in [0, 1],
    /// `[n, c, h, w]`.
    fn generate(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4>;
    /// A diffusion model, whose walk from noise can be watched step by step.
    fn as_diffusion(&self) -> Option<&Trained<DiffusionSampling, Denoiser>> {
        None
    }
}

/// A trained network beside the config that built it (the network alone does not know its
/// image shape).
pub struct Trained<C, M> {
    pub config: C,
    pub model: M,
}

impl Generative for Trained<LatentModelConfig, LatentModel> {
    fn latent(&self) -> usize {
        self.config.latent()
    }
    fn num_classes(&self) -> usize {
        self.model.num_classes()
    }
    fn image_shape(&self) -> ImageShape {
        self.config.shape()
    }
    fn describe(&self) -> String {
        format!("{} decoder", self.config.kind())
    }
    fn generate(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        self.model.decode_mean(z, labels) // [n, c, h, w] in [0, 1]
    }
}

impl Generative for Trained<GanConfig, Gan> {
    fn latent(&self) -> usize {
        self.config.latent
    }
    fn num_classes(&self) -> usize {
        self.config.num_classes
    }
    fn image_shape(&self) -> ImageShape {
        self.config.shape
    }
    fn describe(&self) -> String {
        format!("{} generator", self.config.generator)
    }
    fn generate(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        to_unit(self.model.generator.forward(z, labels)) // [n, c, h, w] in [0, 1]
    }
}

/// A two-stage VAE (Dai & Wipf 2019): u ~ N(0, I) through the second stage's decoder gives a
/// code z of the first VAE, whose decoder gives the image.
pub struct TwoStageVae {
    pub second_stage: SecondStage,
    pub first_stage: LatentModel,
    pub first_stage_config: LatentModelConfig,
    pub latent: usize,
}

impl Generative for TwoStageVae {
    fn latent(&self) -> usize {
        self.latent
    }
    fn num_classes(&self) -> usize {
        0
    }
    fn image_shape(&self) -> ImageShape {
        self.first_stage_config.shape()
    }
    fn describe(&self) -> String {
        "second-stage VAE decoder, then the first VAE's decoder".into()
    }
    fn generate(&self, u: Tensor<2>, _labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        let z = self.second_stage.decode(u); // [n, first latent]
        self.first_stage.decode_mean(z, None) // [n, c, h, w] in [0, 1]
    }
}

/// How a diffusion model is sampled: z is x_T, the image-shaped noise the sampler starts from.
#[derive(Debug, Clone)]
pub struct DiffusionSampling {
    pub config: DiffusionConfig,
    pub sampler: Sampler,
    /// Classifier-free guidance weight w for conditional models (1: plain conditional).
    pub guidance: f64,
}

impl Trained<DiffusionSampling, Denoiser> {
    /// [`Generative::generate`] with `visit(t, x_t)` shown every state, x_T to x₀, in [−1, 1].
    pub fn generate_visiting(
        &self,
        z: Tensor<2>,
        labels: Option<Tensor<1, Int>>,
        visit: impl FnMut(usize, &Tensor<4>),
    ) -> Tensor<4> {
        let x0 = self.denoise(z, labels, visit);
        to_unit(x0.clamp(-1.0, 1.0)) // [n, c, h, w] in [0, 1]
    }

    /// x₀ as the sampler leaves it, from x_T = `z` `[n, c·h·w]` of the denoiser's shape:
    /// `[n, c, h, w]`, unclipped (pixels in about [−1, 1], or a latent diffusion's codes).
    pub fn denoise(
        &self,
        z: Tensor<2>,
        labels: Option<Tensor<1, Int>>,
        visit: impl FnMut(usize, &Tensor<4>),
    ) -> Tensor<4> {
        let [n, _] = z.dims();
        let shape = self.config.config.denoiser.shape;
        let x_t = z.reshape([n, shape.channels, shape.height, shape.width]); // [n, c, h, w]
        let settings = &self.config;
        let schedule = settings.config.noise_schedule();
        DiffusionPipeline::new(&self.model, &schedule, settings.sampler)
            .with_guidance(settings.guidance)
            .generate(x_t, labels, visit)
    }
}

/// Latent diffusion (Rombach et al. 2022): the denoiser draws a first stage's scaled code from
/// noise, and the first stage's decoder turns it into an image. z is the code's x_T.
pub struct LatentDiffusion {
    pub diffusion: Trained<DiffusionSampling, Denoiser>,
    pub first_stage: ScaledAutoencoder,
    /// The decoded images' shape.
    pub shape: ImageShape,
}

impl Generative for LatentDiffusion {
    fn latent(&self) -> usize {
        self.diffusion.latent()
    }
    fn num_classes(&self) -> usize {
        self.diffusion.num_classes()
    }
    fn image_shape(&self) -> ImageShape {
        self.shape
    }
    fn describe(&self) -> String {
        let latent = self.diffusion.image_shape();
        format!(
            "{} on {latent} autoencoder-kl codes, then its decoder",
            self.diffusion.describe()
        )
    }
    fn generate(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        let codes = self.diffusion.denoise(z, labels, |_, _| {}); // [n, z, s, s]
        to_unit(self.first_stage.decode(codes).clamp(-1.0, 1.0)) // [n, c, h, w] in [0, 1]
    }
}

impl Generative for Trained<DiffusionSampling, Denoiser> {
    fn latent(&self) -> usize {
        self.image_shape().len()
    }
    fn num_classes(&self) -> usize {
        self.model.num_classes
    }
    fn image_shape(&self) -> ImageShape {
        self.config.config.denoiser.shape
    }
    fn describe(&self) -> String {
        let guidance = match self.num_classes() {
            0 => String::new(),
            _ => format!(", guidance {}", self.config.guidance),
        };
        let sampler = self
            .config
            .sampler
            .label(&self.config.config.noise_schedule());
        format!("denoiser ({sampler}{guidance})")
    }
    fn generate(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        self.generate_visiting(z, labels, |_, _| {})
    }
    fn as_diffusion(&self) -> Option<&Trained<DiffusionSampling, Denoiser>> {
        Some(self)
    }
}

/// How a diffusion run is to be sampled, as a command asked: `None` takes the default (DDIM-50
/// at η 0; guidance weight `DEFAULT_GUIDANCE`). Other kinds of run refuse anything else.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplingRequest {
    pub sampler: Option<Sampler>,
    /// Classifier-free guidance weight w for conditional models.
    pub guidance: Option<f64>,
}

impl SamplingRequest {
    pub fn sampler(&self) -> Sampler {
        self.sampler.unwrap_or(Sampler::Ddim {
            steps: 50,
            eta: 0.0,
        })
    }

    pub fn guidance(&self) -> f64 {
        self.guidance
            .unwrap_or(crate::models::diffusion::DEFAULT_GUIDANCE)
    }

    /// Refuses a request for a run of `kind` (not diffusion) unless it asks for nothing.
    pub fn refuse_for(&self, run: &std::path::Path, kind: &str) -> crate::Result<()> {
        match *self == Self::default() {
            true => Ok(()),
            false => Err(crate::Error::bad_input(format!(
                "{}: --sampler, --steps, --eta and --guidance sample diffusion runs, not a {kind} run",
                run.display()
            ))),
        }
    }
}

/// `n` draws from the prior N(0, I) in `latent` dimensions, from a seeded CPU generator so the
/// same seed gives the same points on any device.
pub(crate) fn prior_noise(n: usize, latent: usize, seed: u64, device: &Device) -> Tensor<2> {
    PriorDraws::new(latent, seed).next(n, device)
}

/// [`prior_noise`] a batch at a time: the batches of one seed, taken in turn, are the rows of
/// one `prior_noise` of their total, so many samples need no more memory than one batch.
pub(crate) struct PriorDraws {
    rng: StdRng,
    latent: usize,
}

impl PriorDraws {
    pub fn new(latent: usize, seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            latent,
        }
    }

    /// The next `n` draws, `[n, latent]`.
    pub fn next(&mut self, n: usize, device: &Device) -> Tensor<2> {
        let values: Vec<f32> = (0..n * self.latent)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        Tensor::from_data(TensorData::new(values, [n, self.latent]), device)
    }
}

/// Images in [-1, 1] mapped to [0, 1] for pictures.
pub(crate) fn to_unit(images: Tensor<4>) -> Tensor<4> {
    (images + 1.0) / 2.0
}

/// Class labels as a `[n]` tensor.
pub(crate) fn label_tensor(labels: &[u8], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(values, [labels.len()]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prior_draws_in_batches_are_one_draw_of_them_all() {
        let device = Device::flex();
        let whole: Vec<f32> = prior_noise(10, 3, 7, &device)
            .into_data()
            .iter::<f32>()
            .collect();
        let mut draws = PriorDraws::new(3, 7);
        let parts: Vec<f32> = [4, 1, 5]
            .iter()
            .flat_map(|&n| {
                draws
                    .next(n, &device)
                    .into_data()
                    .iter::<f32>()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(whole, parts);
    }
}
