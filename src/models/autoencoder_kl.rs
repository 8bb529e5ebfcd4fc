//! The first stage of latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis
//! with Latent Diffusion Models", §3.1 and appendix G): an autoencoder whose code is a small
//! *image* — `latent_channels` maps of side/f — rather than a vector, so a U-Net can denoise it
//! as it would pixels, at f² times fewer positions.
//!
//! Encoder: 3x3 conv in; per level a residual block (`models/resblock.rs`) and a 3x3 stride-2
//! conv halving the side; a residual block at the bottom; GroupNorm → SiLU → 3x3 conv to
//! 2·latent_channels maps: the mean μ and the log-variance log σ² of a diagonal Gaussian
//! q(z|x) per latent pixel. The decoder mirrors it with 4x4 stride-2 transposed convs. f = 2^levels
//! ∈ {2, 4, 8}; widths `width`·(1, 2, 4). Images are padded to a side that divides by
//! max(4f, 16) (28 px → 32, so f = 4 gives an 8x8 latent), with black (−1), and the output cropped
//! back: a latent side that divides by 4 leaves the latent U-Net two levels.
//!
//! Loss per image, pixels in [−1, 1]: reconstruction Σ|x − x̂| (L1, LDM's choice; or Σ(x − x̂)²)
//! over the image's pixels, plus a small weight (LDM: 10⁻⁶) times KL(q(z|x) ‖ N(0, I)) in nats.
//! The KL term is a "regularizer", not a VAE's prior fit: it keeps the code's scale bounded
//! without blurring the reconstructions the way a full-weight ELBO does. The code's spread is
//! then whatever training gave it, so the run measures it: the latent scale is 1/std of codes of
//! training images (`LatentScale`), by which latent diffusion multiplies every code so that its
//! data have unit variance, as the noise it is mixed with does.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;

use crate::data::ImageShape;
use crate::error::Error;
use crate::models::resblock::{GROUPS, ResBlock, ResBlockConfig};
use crate::ops::{FastConv, FusedGroupNormSilu};

/// How a reconstruction's error is counted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ReconstructionLoss {
    /// Σ|x − x̂|: sharper edges than L2 (LDM's first stage).
    L1,
    /// Σ(x − x̂)².
    L2,
}

impl ReconstructionLoss {
    /// The error of `reconstruction` against `images` (`[n, c, h, w]`), summed over each
    /// image's pixels, batch mean: `[1]`.
    pub fn per_image(self, reconstruction: Tensor<4>, images: Tensor<4>) -> Tensor<1> {
        let [n, ..] = images.dims();
        let error = reconstruction - images;
        let error = match self {
            ReconstructionLoss::L1 => error.abs(),
            ReconstructionLoss::L2 => error.powi_scalar(2),
        };
        error.reshape([n as i32, -1]).sum_dim(1).mean().reshape([1])
    }
}

/// An autoencoder with a spatial latent for images of `shape`.
#[derive(Config, Debug)]
pub struct AutoencoderKlConfig {
    pub shape: ImageShape,
    /// f: how many times smaller the latent's side is than the (padded) image's.
    #[config(default = 4)]
    pub downsample: usize,
    #[config(default = 4)]
    pub latent_channels: usize,
    /// Channels of the first level; deeper ones have 2x and 4x.
    #[config(default = 32)]
    pub width: usize,
    #[config(default = "ReconstructionLoss::L1")]
    pub reconstruction: ReconstructionLoss,
    /// Weight of the KL term against the reconstruction's.
    #[config(default = 1e-6)]
    pub kl_weight: f64,
}

impl AutoencoderKlConfig {
    pub fn validate(&self) -> crate::Result<()> {
        if ![2, 4, 8].contains(&self.downsample) {
            return Err(Error::bad_input(format!(
                "--downsample {}: 2, 4 or 8",
                self.downsample
            )));
        }
        if self.latent_channels == 0 {
            return Err(Error::bad_input("--latent-channels must be at least 1"));
        }
        if self.width < GROUPS || !self.width.is_multiple_of(GROUPS) {
            return Err(Error::bad_input(format!(
                "--width must be a multiple of {GROUPS}"
            )));
        }
        if self.shape.height != self.shape.width {
            return Err(Error::bad_input(format!(
                "autoencoder-kl takes square images, not {}",
                self.shape
            )));
        }
        if !(self.kl_weight >= 0.0 && self.kl_weight.is_finite()) {
            return Err(Error::bad_input("--kl-weight must be 0 or more"));
        }
        Ok(())
    }

    /// Down-sampling levels: log₂ f.
    pub fn levels(&self) -> usize {
        self.downsample.trailing_zeros() as usize
    }

    /// The side images are padded to: a multiple of max(4f, 16).
    pub fn padded_side(&self) -> usize {
        let step = (4 * self.downsample).max(16);
        self.shape.height.div_ceil(step) * step
    }

    /// The shape of one image's code: `[latent_channels, side/f, side/f]` of the padded side.
    pub fn latent_shape(&self) -> ImageShape {
        let side = self.padded_side() / self.downsample;
        ImageShape {
            channels: self.latent_channels,
            height: side,
            width: side,
        }
    }

    fn widths(&self) -> Vec<usize> {
        (0..self.levels())
            .map(|l| self.width * (1 << l).min(4))
            .collect()
    }

    pub fn init(&self, device: &Device) -> AutoencoderKl {
        let widths = self.widths();
        let bottom = *widths.last().expect("at least one level");
        let conv3 = |channels: [usize; 2], stride: usize| {
            Conv2dConfig::new(channels, [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let (c, z) = (self.shape.channels, self.latent_channels);
        let mut encoder_blocks = Vec::new();
        let mut down_samples = Vec::new();
        let mut previous = self.width;
        for &w in &widths {
            encoder_blocks.push(ResBlockConfig::new(previous, w).init(device));
            down_samples.push(conv3([w, w], 2));
            previous = w;
        }
        let mut up_samples = Vec::new();
        let mut decoder_blocks = Vec::new();
        for level in (0..widths.len()).rev() {
            let w = widths[level];
            up_samples.push(
                ConvTranspose2dConfig::new([w, w], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(device),
            );
            let next = if level == 0 {
                self.width
            } else {
                widths[level - 1]
            };
            decoder_blocks.push(ResBlockConfig::new(w, next).init(device));
        }
        let norm = |channels: usize| GroupNormConfig::new(GROUPS, channels).init(device);
        AutoencoderKl {
            encoder_in: conv3([c, self.width], 1),
            encoder_blocks,
            down_samples,
            encoder_middle: ResBlockConfig::new(bottom, bottom).init(device),
            encoder_norm: norm(bottom),
            encoder_out: conv3([bottom, 2 * z], 1),
            decoder_in: conv3([z, bottom], 1),
            decoder_middle: ResBlockConfig::new(bottom, bottom).init(device),
            up_samples,
            decoder_blocks,
            decoder_norm: norm(self.width),
            decoder_out: conv3([self.width, c], 1),
            side: self.shape.height,
            padded: self.padded_side(),
        }
    }
}

#[derive(Module, Debug)]
pub struct AutoencoderKl {
    encoder_in: Conv2d,
    encoder_blocks: Vec<ResBlock>,
    down_samples: Vec<Conv2d>,
    encoder_middle: ResBlock,
    encoder_norm: GroupNorm,
    encoder_out: Conv2d,
    decoder_in: Conv2d,
    decoder_middle: ResBlock,
    up_samples: Vec<ConvTranspose2d>,
    decoder_blocks: Vec<ResBlock>,
    decoder_norm: GroupNorm,
    decoder_out: Conv2d,
    /// The images' side, and the side they are padded to.
    #[module(skip)]
    side: usize,
    #[module(skip)]
    padded: usize,
}

/// q(z|x) for a batch: a diagonal Gaussian per latent pixel.
pub struct Posterior {
    /// μ, `[n, latent_channels, s, s]`.
    pub mean: Tensor<4>,
    /// log σ², clamped to [−30, 20] as LDM does, `[n, latent_channels, s, s]`.
    pub log_var: Tensor<4>,
}

impl Posterior {
    /// z = μ + σ·ε with ε from the device's generator.
    pub fn sample(&self) -> Tensor<4> {
        let noise = Tensor::random(
            self.mean.shape(),
            Distribution::Normal(0.0, 1.0),
            &self.mean.device(),
        );
        self.sample_with(noise)
    }

    /// z = μ + σ·ε for a given ε of the mean's shape.
    pub fn sample_with(&self, noise: Tensor<4>) -> Tensor<4> {
        self.mean.clone() + (self.log_var.clone() * 0.5).exp() * noise
    }

    /// KL(q(z|x) ‖ N(0, I)) of each image in nats: ½·Σ(μ² + σ² − 1 − log σ²), `[n]`.
    pub fn kl(&self) -> Tensor<1> {
        let [n, ..] = self.mean.dims();
        let terms = self.mean.clone().powi_scalar(2) + self.log_var.clone().exp()
            - self.log_var.clone()
            - 1.0;
        terms.reshape([n as i32, -1]).sum_dim(1).reshape([n]) * 0.5
    }
}

/// The loss of a batch and its parts, per image.
pub struct KlObjective {
    /// reconstruction + kl_weight · KL, batch mean: `[1]`.
    pub loss: Tensor<1>,
    /// The reconstruction term per image (Σ over pixels in [−1, 1]), batch mean: `[1]`.
    pub recon: Tensor<1>,
    /// KL per image in nats, batch mean: `[1]`.
    pub kl: Tensor<1>,
}

impl AutoencoderKl {
    /// q(z|x) for `images` `[n, c, side, side]` in [−1, 1].
    pub fn encode(&self, images: Tensor<4>) -> Posterior {
        let (side, padded) = (self.side, self.padded);
        let offset = (padded - side) / 2;
        let x = if padded > side {
            let rest = padded - side - offset;
            images.pad(
                (offset, rest, offset, rest),
                burn::tensor::ops::PadMode::Constant(-1.0),
            ) // [n, c, padded, padded]
        } else {
            images
        };
        let mut h = self.encoder_in.forward_fast(x); // [n, width, padded, padded]
        for (block, down) in self.encoder_blocks.iter().zip(&self.down_samples) {
            h = down.forward_fast(block.forward(h, None)); // [n, w_l, s_l/2, s_l/2]
        }
        h = self.encoder_middle.forward(h, None); // [n, bottom, s, s]
        let moments = self
            .encoder_out
            .forward_fast(self.encoder_norm.forward_silu(h)); // [n, 2·z, s, s]
        let [n, two_z, s, _] = moments.dims();
        let z = two_z / 2;
        Posterior {
            mean: moments.clone().slice([0..n, 0..z, 0..s, 0..s]),
            log_var: moments
                .slice([0..n, z..two_z, 0..s, 0..s])
                .clamp(-30.0, 20.0),
        }
    }

    /// The image of codes `z` `[n, latent_channels, s, s]`: `[n, c, side, side]`, unbounded (in
    /// [−1, 1] where it has learned well).
    pub fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        let mut h = self
            .decoder_middle
            .forward(self.decoder_in.forward_fast(z), None); // [n, bottom, s, s]
        for (up, block) in self.up_samples.iter().zip(&self.decoder_blocks) {
            h = block.forward(up.forward_fast(h), None); // [n, w_{l−1}, 2·s_l, 2·s_l]
        }
        let image = self
            .decoder_out
            .forward_fast(self.decoder_norm.forward_silu(h)); // [n, c, padded, padded]
        let (side, padded) = (self.side, self.padded);
        if padded > side {
            let offset = (padded - side) / 2;
            let [n, c, ..] = image.dims();
            image.slice([0..n, 0..c, offset..offset + side, offset..offset + side])
        } else {
            image
        }
    }

    /// The loss of `images` `[n, c, h, w]` in [−1, 1] reconstructed from a draw of q(z|x).
    pub fn objective(&self, images: Tensor<4>, config: &AutoencoderKlConfig) -> KlObjective {
        let posterior = self.encode(images.clone());
        let recon = config
            .reconstruction
            .per_image(self.decode(posterior.sample()), images); // [1]
        let kl = posterior.kl().mean(); // [1]
        KlObjective {
            loss: recon.clone() + kl.clone() * config.kl_weight,
            recon,
            kl,
        }
    }
}

/// How spread a trained first stage's codes are: LDM's scale factor 1/std, by which latent
/// diffusion multiplies every code so its data have unit variance like the noise. Measured on
/// the codes z = μ + σ·ε of a fixed set of training images, ε from a fixed seed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatentScale {
    /// 1/std of the codes.
    pub scale: f64,
    /// Mean and standard deviation of the codes' values, all channels together.
    pub mean: f64,
    pub std: f64,
    /// The largest |z|·scale: the range latent diffusion clips its x̂₀ to.
    pub max_abs: f64,
    /// Images measured.
    pub images: usize,
}

impl LatentScale {
    /// File name in the run folder, beside `model.safetensors`.
    pub const FILE: &'static str = "latent_scale.json";

    /// Measures `model`'s codes of `images` `[n, c, h, w]` in [−1, 1], a batch of 256 at a time.
    pub fn measure(model: &AutoencoderKl, images: Tensor<4>) -> Self {
        use rand::SeedableRng;
        use rand_distr::{Distribution as _, StandardNormal};
        let [n, ..] = images.dims();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut values: Vec<f32> = Vec::new();
        for start in (0..n).step_by(256) {
            let batch = images.clone().narrow(0, start, 256.min(n - start));
            let posterior = model.encode(batch);
            let shape = posterior.mean.shape();
            let noise: Vec<f32> = (0..shape.num_elements())
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            let noise = Tensor::from_data(TensorData::new(noise, shape), &posterior.mean.device());
            values.extend(posterior.sample_with(noise).into_data().iter::<f32>());
        }
        let count = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / count;
        let variance = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / count;
        let std = variance.sqrt().max(1e-12);
        let max_abs = values.iter().map(|v| v.abs() as f64).fold(0.0, f64::max) / std;
        Self {
            scale: 1.0 / std,
            mean,
            std,
            max_abs,
            images: n,
        }
    }
}

/// A trained first stage with its latent scale: what latent diffusion encodes to and decodes
/// from, its codes multiplied by the scale so they have unit variance.
#[derive(Debug, Clone)]
pub struct ScaledAutoencoder {
    pub model: AutoencoderKl,
    pub scale: f64,
}

impl ScaledAutoencoder {
    /// The mean and standard deviation of the scaled codes of `images` in [−1, 1]: a draw is
    /// mean + std·ε. Both `[n, z, s, s]`.
    pub fn moments(&self, images: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let posterior = self.model.encode(images);
        (
            posterior.mean * self.scale,
            (posterior.log_var * 0.5).exp() * self.scale,
        )
    }

    /// Images `[n, c, h, w]` (about [−1, 1]) of scaled codes `z`.
    pub fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        self.model.decode(z / self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(side: usize) -> ImageShape {
        ImageShape {
            channels: 1,
            height: side,
            width: side,
        }
    }

    #[test]
    fn latent_shapes_for_f_2_4_8() {
        let device = Device::flex();
        device.seed(0);
        for (side, f, latent, channels) in [
            (28, 2, 16, 4),
            (28, 4, 8, 4),
            (28, 8, 4, 3),
            (32, 4, 8, 4),
            (64, 8, 8, 4),
        ] {
            let config = AutoencoderKlConfig::new(shape(side))
                .with_downsample(f)
                .with_latent_channels(channels)
                .with_width(8);
            config.validate().unwrap();
            let expected = ImageShape {
                channels,
                height: latent,
                width: latent,
            };
            assert_eq!(config.latent_shape(), expected, "{side} px, f = {f}");
            let model = config.init(&device);
            let images = Tensor::<4>::random([2, 1, side, side], Distribution::Default, &device);
            let posterior = model.encode(images.clone());
            assert_eq!(posterior.mean.dims(), [2, channels, latent, latent]);
            assert_eq!(model.decode(posterior.mean).dims(), [2, 1, side, side]);
        }
        for bad in [1, 3, 16] {
            let config = AutoencoderKlConfig::new(shape(28)).with_downsample(bad);
            assert!(config.validate().is_err(), "f = {bad}");
        }
    }

    #[test]
    fn the_latent_scale_is_one_over_the_std_of_the_codes() {
        let device = Device::flex();
        device.seed(2);
        let config = AutoencoderKlConfig::new(shape(16)).with_width(8);
        let model = config.init(&device);
        let images =
            Tensor::<4>::random([300, 1, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
        let measured = LatentScale::measure(&model, images.clone());
        assert_eq!(measured.images, 300);
        // The same codes, drawn here in one batch with the same noise stream.
        use rand::SeedableRng;
        use rand_distr::{Distribution as _, StandardNormal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let posterior = model.encode(images);
        let shape = posterior.mean.shape();
        let noise: Vec<f32> = (0..shape.num_elements())
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let z = posterior.sample_with(Tensor::from_data(TensorData::new(noise, shape), &device));
        let values: Vec<f32> = z.into_data().iter::<f32>().collect();
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        let pooled =
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32).sqrt();
        assert!(
            (measured.std - pooled as f64).abs() < 1e-4 * pooled as f64,
            "{} vs {pooled}",
            measured.std
        );
        assert!((measured.scale * pooled as f64 - 1.0).abs() < 1e-4);
        let scaled_max = values.iter().map(|v| v.abs()).fold(0.0, f32::max) / pooled;
        assert!((measured.max_abs - scaled_max as f64).abs() < 1e-3);
    }

    #[test]
    fn the_kl_of_a_standard_normal_posterior_is_zero_and_grows_with_the_mean() {
        let device = Device::flex();
        let zeros = Tensor::<4>::zeros([2, 4, 2, 2], &device);
        let posterior = Posterior {
            mean: zeros.clone(),
            log_var: zeros.clone(),
        };
        assert_eq!(
            posterior.kl().into_data().iter::<f32>().collect::<Vec<_>>(),
            [0.0, 0.0]
        );
        // μ = 1 in each of 16 latent pixels: ½·16 nats.
        let posterior = Posterior {
            mean: zeros.clone() + 1.0,
            log_var: zeros,
        };
        let kl: Vec<f32> = posterior.kl().into_data().iter::<f32>().collect();
        assert!((kl[0] - 8.0).abs() < 1e-6, "{kl:?}");
    }

    #[test]
    fn eighty_steps_halve_the_reconstruction_error() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = Device::flex().autodiff();
        device.seed(1);
        let config = AutoencoderKlConfig::new(shape(16)).with_width(8);
        let mut model = config.init(&device);
        let mut optimizer = AdamConfig::new().init();
        // Images a 4x4x4 code can hold: each a flat gray level.
        let images = Tensor::<4>::random([8, 1, 1, 1], Distribution::Uniform(-1.0, 1.0), &device)
            .repeat_dim(2, 16)
            .repeat_dim(3, 16);
        let mut first = None;
        let mut last = 0.0;
        for _ in 0..80 {
            let objective = model.objective(images.clone(), &config);
            last = objective.recon.clone().into_scalar::<f32>();
            first.get_or_insert(last);
            let grads = GradientsParams::from_grads(objective.loss.backward(), &model);
            model = optimizer.step(2e-3, model, grads);
        }
        let first = first.unwrap();
        assert!(last < 0.5 * first, "recon {first} → {last}");
    }
}
