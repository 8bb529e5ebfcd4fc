//! pix2pix (Isola et al. 2017): a trained conditional model for image editing. A U-Net G reads
//! what the image lost (the image with its hole zeroed plus the mask as one more channel, the
//! luma alone, or the small image blown up) and outputs the whole image; for super-resolution
//! G can instead be an ESPCN that reads the small image itself (`models/espcn.rs`). It is
//! trained with
//!
//! ```text
//! L_G = λ·‖G(x) − y‖₁  (+ −log D(x, G(x)) with a discriminator)
//! L_D = −log D(x, y) − log(1 − D(x, G(x)))
//! ```
//!
//! where D is a PatchGAN that sees the input x and an output side by side (channels joined): its
//! original use, judging whether each patch of the output fits the input. L1 alone gives the mean
//! of what could fill the hole (blurry); the PatchGAN term pushes towards one sharp answer.
//! λ = 100 as in the paper; L1 is the mean absolute error per unknown entry of pixels in [0, 1]
//! (the hole, for inpainting: an edit copies the visible pixels back, as Pathak et al.'s context
//! encoders' masked loss does), and D judges outputs with the visible pixels put back.

use burn::prelude::*;

use crate::data::ImageShape;
use crate::degrade::upsample_nearest;
use crate::degrade::{Degradation, Task};
use crate::degrade::{box_downsample_tensor, luma_tensor};
use crate::error::Error;
use crate::models::espcn::{Espcn, EspcnConfig};
use crate::models::gan::patchgan::{self, PatchDiscriminator, PatchDiscriminatorConfig};
use crate::models::gan::{GeneratorLoss, discriminator_loss, generator_loss};
use crate::models::unet::{Unet, UnetConfig};

/// G's architecture. Untagged in `config.json`: an ESPCN's has a `scale`, a U-Net's has not
/// (runs saved before the ESPCN existed hold a bare U-Net config).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum GeneratorConfig {
    Espcn(EspcnConfig),
    Unet(UnetConfig),
}

impl GeneratorConfig {
    pub fn shape(&self) -> ImageShape {
        match self {
            GeneratorConfig::Espcn(c) => c.shape,
            GeneratorConfig::Unet(c) => c.shape,
        }
    }

    pub fn init(&self, device: &Device) -> Generator {
        match self {
            GeneratorConfig::Espcn(c) => Generator::Espcn(c.init(device)),
            GeneratorConfig::Unet(c) => Generator::Unet(c.init(device)),
        }
    }

    /// For run descriptions: "U-Net of 5 levels", "ESPCN x4".
    pub fn describe(&self) -> String {
        match self {
            GeneratorConfig::Espcn(c) => format!("ESPCN x{} of width {}", c.scale, c.width),
            GeneratorConfig::Unet(c) => format!("U-Net of {} levels", c.levels()),
        }
    }
}

/// G: a U-Net reading the image-sized input, or an ESPCN reading the small image.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Generator {
    Unet(Unet),
    Espcn(Espcn),
}

impl Generator {
    /// The whole image for what a batch lost, `[n, c, h, w]`.
    pub fn forward(&self, conditioned: &Conditioned) -> Tensor<4> {
        match self {
            Generator::Unet(unet) => unet.forward(conditioned.input.clone()),
            // The input is the small image blown up: the base ESPCN adds its detail to.
            Generator::Espcn(espcn) => {
                let small = conditioned.small.clone();
                espcn.detail(small.expect("an ESPCN is validated to super-resolve"))
                    + conditioned.input.clone()
            }
        }
    }
}

/// A pix2pix model for one task.
#[derive(Config, Debug)]
pub struct Pix2pixConfig {
    pub task: Task,
    pub generator: GeneratorConfig,
    /// The PatchGAN; `None` trains with L1 alone.
    pub discriminator: Option<PatchDiscriminatorConfig>,
    /// λ, the weight of L1 against the adversarial term.
    #[config(default = 100.0)]
    pub l1_weight: f64,
}

/// Channels of what G reads for `task` on images of `shape`.
pub(crate) fn input_channels(task: Task, shape: ImageShape) -> usize {
    match task {
        Task::Colorize => 1,
        Task::Inpaint | Task::Uncrop => shape.channels + 1,
        Task::Superres(_) => shape.channels,
    }
}

impl Pix2pixConfig {
    /// A U-Net G of `width` and, unless `patchgan_width` is `None`, a PatchGAN of that width
    /// with `patch_layers` stride-2 layers (default: 1 below 64 px, else 2), for `task` on
    /// `shape`.
    pub fn for_task(
        task: Task,
        shape: ImageShape,
        width: usize,
        patchgan_width: Option<usize>,
        patch_layers: Option<usize>,
    ) -> Self {
        let inputs = input_channels(task, shape);
        let unet = GeneratorConfig::Unet(UnetConfig::new(shape, inputs).with_width(width));
        Self::with_generator(task, unet, patchgan_width, patch_layers)
    }

    /// `task` with G given and the PatchGAN as in [`Self::for_task`].
    pub fn with_generator(
        task: Task,
        generator: GeneratorConfig,
        patchgan_width: Option<usize>,
        patch_layers: Option<usize>,
    ) -> Self {
        let shape = generator.shape();
        let layers = patch_layers.unwrap_or(if shape.height >= 64 { 2 } else { 1 });
        let judged = ImageShape {
            channels: input_channels(task, shape) + shape.channels,
            ..shape
        };
        Pix2pixConfig::new(task, generator).with_discriminator(
            patchgan_width.map(|ndf| PatchDiscriminatorConfig::new(judged, ndf, layers)),
        )
    }

    pub fn shape(&self) -> ImageShape {
        self.generator.shape()
    }

    pub fn validate(&self) -> crate::Result<()> {
        match (&self.generator, self.task) {
            (GeneratorConfig::Unet(c), _) => c.validate()?,
            (GeneratorConfig::Espcn(c), Task::Superres(s)) if c.scale == s => c.validate()?,
            (GeneratorConfig::Espcn(c), _) => {
                return Err(Error::bad_input(format!(
                    "an ESPCN x{} super-resolves by its own factor; it cannot {}",
                    c.scale,
                    self.task.label()
                )));
            }
        }
        if let Task::Superres(_) = self.task {
            self.task
                .random_degradation(self.shape(), 0)
                .check(self.shape())?;
        }
        if self.task == Task::Colorize && self.shape().channels != 3 {
            return Err(Error::bad_input(format!(
                "colorization needs colour images, but these are {}; use --data embedded-rgb or \
                 CIFAR-10",
                self.shape()
            )));
        }
        if let Some(d) = &self.discriminator {
            if d.ndf == 0 {
                return Err(Error::bad_input("--ndf must be at least 1"));
            }
            patchgan::check(d.shape, d.layers)?;
        }
        if !(self.l1_weight >= 0.0 && self.l1_weight.is_finite()) {
            return Err(Error::bad_input("--l1-weight must be a number ≥ 0"));
        }
        Ok(())
    }

    pub fn init_generator(&self, device: &Device) -> Generator {
        self.generator.init(device)
    }

    pub fn init_discriminator(&self, device: &Device) -> Option<PatchDiscriminator> {
        self.discriminator.as_ref().map(|d| d.init(device))
    }
}

/// What G reads for a batch, and where it must make pixels up.
pub struct Conditioned {
    /// The image with its hole zeroed and the mask (1 = missing) as one more channel,
    /// `[n, c + 1, h, w]`; the luma, `[n, 1, h, w]`; or the small image blown up (each pixel an
    /// s×s block), `[n, c, h, w]`. What a U-Net reads and what the PatchGAN sees beside the
    /// output.
    pub input: Tensor<4>,
    /// For super-resolution, the small image `[n, c, h/s, w/s]` (what an ESPCN reads).
    pub small: Option<Tensor<4>>,
    /// `[n, 1, h, w]`, 1 where pixels are missing; `None` for colorization (all of every pixel's
    /// colour is unknown).
    pub missing: Option<Tensor<4>>,
}

/// G's input for a batch `[n, c, h, w]` (pixels in [0, 1]) that lost what `degradations` say
/// (one per image, all of one task).
pub(crate) fn conditioning(images: Tensor<4>, degradations: &[Degradation]) -> Conditioned {
    let [n, _, h, w] = images.dims();
    let device = images.device();
    match degradations.first() {
        Some(Degradation::Gray) => {
            return Conditioned {
                input: luma_tensor(images), // [n, 1, h, w]
                small: None,
                missing: None,
            };
        }
        Some(&Degradation::Downsample(s)) => {
            let small = box_downsample_tensor(images, s); // [n, c, h/s, w/s]
            return Conditioned {
                input: upsample_nearest(small.clone(), s), // [n, c, h, w]
                small: Some(small),
                missing: None,
            };
        }
        _ => {}
    }
    let missing: Vec<f32> = degradations
        .iter()
        .flat_map(|d| match d {
            Degradation::Mask(mask) => mask.missing().iter().map(|&m| f32::from(u8::from(m))),
            other => unreachable!("a batch is all masks, not {other:?}"),
        })
        .collect();
    let mask = Tensor::<4>::from_data(TensorData::new(missing, [n, 1, h, w]), &device); // [n, 1, h, w]
    let visible = images * (mask.clone().neg() + 1.0); // [n, c, h, w]
    Conditioned {
        input: Tensor::cat(vec![visible, mask.clone()], 1), // [n, c + 1, h, w]
        small: None,
        missing: Some(mask),
    }
}

impl Conditioned {
    /// G's output with the visible pixels put back (what an edit keeps), `[n, c, h, w]`.
    pub fn composite(&self, output: Tensor<4>, images: Tensor<4>) -> Tensor<4> {
        match &self.missing {
            Some(m) => output * m.clone() + images * (m.clone().neg() + 1.0),
            None => output,
        }
    }

    /// Mean absolute error per unknown entry (the hole's pixels, every channel; every entry for
    /// colorization), `[1]`: the L1 term. The visible pixels are copied back in every edit, so
    /// fitting them would only dilute the signal.
    pub fn l1(&self, output: Tensor<4>, images: Tensor<4>) -> Tensor<1> {
        let [_, channels, ..] = images.dims();
        let error = (output - images).abs(); // [n, c, h, w]
        match &self.missing {
            Some(m) => {
                let unknown = m.clone().sum() * channels as f64 + 1e-6; // [1]
                (error * m.clone()).sum() / unknown
            }
            None => error.mean(),
        }
    }

    /// The L1 term of rows that are `fraction` of a batch whose masks hide `batch_unknown`
    /// entries (see `unknown_entries`): scaled so that the fraction-weighted sum over the
    /// batch's shares is the batch's L1, however the holes' sizes differ between shares.
    pub fn share_l1(
        &self,
        output: Tensor<4>,
        images: Tensor<4>,
        batch_unknown: f64,
        fraction: f64,
    ) -> Tensor<1> {
        let error = (output - images).abs(); // [n, c, h, w]
        match &self.missing {
            Some(m) => (error * m.clone()).sum() / (batch_unknown * fraction),
            None => error.mean(),
        }
    }
}

/// The entries (pixels × `channels`) the masks among `degradations` hide, as
/// [`Conditioned::l1`] counts them.
pub(crate) fn unknown_entries(degradations: &[Degradation], channels: usize) -> f64 {
    let missing: usize = degradations
        .iter()
        .map(|d| match d {
            Degradation::Mask(mask) => mask.missing().iter().filter(|&&m| m).count(),
            _ => 0,
        })
        .sum();
    (missing * channels) as f64 + 1e-6
}

/// The PatchGAN's view of an (input, output) pair: their channels joined.
pub fn pair(input: Tensor<4>, output: Tensor<4>) -> Tensor<4> {
    Tensor::cat(vec![input, output], 1) // [n, inputs + c, h, w]
}

/// The PatchGAN's logits for a pair, one per patch, `[n, patches]`.
pub(crate) fn judge(
    discriminator: &PatchDiscriminator,
    input: Tensor<4>,
    output: Tensor<4>,
) -> Tensor<2> {
    discriminator
        .forward(pair(input, output), None)
        .flatten::<2>(1, 3) // [n, grid²]
}

/// G's loss and its parts: (λ·L1 + adversarial, L1, adversarial) given the L1 term and D's
/// logits on G's pairs.
pub(crate) fn generator_objective(
    l1_weight: f64,
    l1: Tensor<1>,
    fake_logits: Option<Tensor<2>>,
) -> (Tensor<1>, Tensor<1>, Option<Tensor<1>>) {
    let adversarial = fake_logits.map(|l| generator_loss(l, GeneratorLoss::NonSaturating)); // [1]
    let mut loss = l1.clone() * l1_weight;
    if let Some(a) = &adversarial {
        loss = loss + a.clone();
    }
    (loss, l1, adversarial)
}

/// D's loss on real and generated pairs, the mean over patches, in nats.
pub(crate) fn discriminator_objective(real_logits: Tensor<2>, fake_logits: Tensor<2>) -> Tensor<1> {
    discriminator_loss(real_logits, fake_logits)
}

/// A trained pix2pix model: G, and D when it had one.
#[derive(Module, Debug)]
pub struct Pix2pix {
    pub generator: Generator,
    pub discriminator: Option<PatchDiscriminator>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::degrade::Mask;

    #[test]
    fn the_conditioning_zeroes_the_hole_and_adds_the_mask() {
        let device = Device::flex();
        let images = Tensor::<4>::ones([2, 1, 4, 4], &device);
        let masks = [
            Degradation::Mask(Mask::center(4, 4)),
            Degradation::Mask(Mask::uncrop(4, 4, crate::degrade::Side::Left)),
        ];
        let x: Vec<f32> = conditioning(images, &masks)
            .input
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(x.len(), 2 * 2 * 16);
        // Image 0: channel 0 is 0 in the centre, 1 elsewhere; channel 1 the reverse.
        for p in 0..16 {
            let missing = Mask::center(4, 4).missing()[p];
            assert_eq!(x[p], if missing { 0.0 } else { 1.0 });
            assert_eq!(x[16 + p], if missing { 1.0 } else { 0.0 });
        }
        let rgb = Tensor::<4>::ones([1, 3, 4, 4], &device);
        let gray: Vec<f32> = conditioning(rgb, &[Degradation::Gray])
            .input
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(gray.len(), 16);
        assert!(gray.iter().all(|v| (v - 1.0).abs() < 1e-6));
    }

    #[test]
    fn shares_l1_terms_weighted_by_rows_sum_to_the_batchs() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        device.seed(3);
        let (images, output) = (
            Tensor::<4>::random([5, 2, 8, 8], Distribution::Default, &device),
            Tensor::<4>::random([5, 2, 8, 8], Distribution::Default, &device),
        );
        // Holes of different sizes, so rows are the wrong weights.
        let masks: Vec<Degradation> = (0..5)
            .map(|i| Degradation::Mask(Mask::free(8, 8, i)))
            .collect();
        let whole: f32 = conditioning(images.clone(), &masks)
            .l1(output.clone(), images.clone())
            .into_scalar();
        let unknown = unknown_entries(&masks, 2);
        let mut summed = 0.0;
        for (start, len) in [(0, 2), (2, 3)] {
            let fraction = len as f64 / 5.0;
            let rows = |t: Tensor<4>| t.narrow(0, start, len);
            let share: f32 = conditioning(rows(images.clone()), &masks[start..start + len])
                .share_l1(
                    rows(output.clone()),
                    rows(images.clone()),
                    unknown,
                    fraction,
                )
                .into_scalar();
            summed += share * fraction as f32;
        }
        assert!((whole - summed).abs() < 1e-6, "{whole} vs {summed}");
    }

    #[test]
    fn the_patchgan_judges_input_and_output_together() {
        let device = Device::flex();
        let shape = ImageShape {
            channels: 3,
            height: 32,
            width: 32,
        };
        let config = Pix2pixConfig::for_task(Task::Inpaint, shape, 4, Some(4), None);
        config.validate().unwrap();
        let d = config.init_discriminator(&device).unwrap();
        let input = Tensor::<4>::zeros([2, 4, 32, 32], &device);
        let output = Tensor::<4>::zeros([2, 3, 32, 32], &device);
        assert_eq!(judge(&d, input, output).dims(), [2, 14 * 14]);
        let gray = ImageShape {
            channels: 1,
            ..shape
        };
        assert!(
            Pix2pixConfig::for_task(Task::Colorize, gray, 4, None, None)
                .validate()
                .is_err()
        );
    }
}
