//! The noise-predicting network ε_θ(x_t, t, y) of diffusion (see `diffusion.rs`): a U-Net as in
//! Ho et al. 2020, small enough for a CPU.
//!
//! The time step enters as a sinusoidal embedding (Vaswani et al. 2017's positional encoding of
//! t) through a two-layer MLP, added to the features of every residual block, so one network
//! serves all noise levels. A class, for conditional models, is one more learned embedding added
//! to the time's; index `num_classes` is "no class", which training draws with some probability
//! (label dropout) so that the same network also predicts the unconditional noise, for
//! classifier-free guidance (Ho & Salimans 2022): ε̃ = ε(x, ∅) + w·(ε(x, y) − ε(x, ∅)).
//!
//! Layers: 3x3 conv in; per level a residual block (GroupNorm → SiLU → 3x3 conv, + time, →
//! GroupNorm → SiLU → 3x3 conv, + the input through a 1x1 conv where the widths differ) and a
//! 4x4 stride-2 conv down; a residual block at the bottom; per level back up a 4x4 stride-2
//! transposed conv, the skip from the same level joined, a residual block; GroupNorm → SiLU → 3x3
//! conv out. No activation at the end: ε is a Gaussian's draw. 28 px: 28 → 14 → 7 and back.
//!
//! Attention (`models/attention.rs`), where asked: a self-attention block after the residual
//! block of each level whose side is listed (down and up) and after the middle one, as the
//! U-Nets of DDPM (16x16) and latent diffusion do; with a context width, each block also
//! cross-attends to a sequence of context vectors (a caption's tokens).

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::data::ImageShape;
use crate::error::Error;
use crate::models::attention::{AttentionConfig, SpatialAttention};
use crate::models::resblock::{GROUPS, ResBlock, ResBlockConfig};
use crate::ops::{FastConv, FusedGroupNormSilu};

/// A denoiser for images of `shape`.
#[derive(Config, Debug)]
pub struct DenoiserConfig {
    pub shape: ImageShape,
    /// Channels of the first level; the others have twice as many.
    #[config(default = 32)]
    pub width: usize,
    /// Down-sampling levels (each halves the side, which must stay even).
    #[config(default = 2)]
    pub levels: usize,
    /// Classes it can be told (0: unconditional).
    #[config(default = 0)]
    pub num_classes: usize,
    /// Channels of an image it is conditioned on, joined to x_t's (SR3's blown-up small image,
    /// Palette's luma; 0: none).
    #[config(default = 0)]
    pub condition_channels: usize,
    /// Attention blocks (`None`: none, as in runs written before they existed).
    #[config(default = "None")]
    pub attention: Option<AttentionConfig>,
}

impl DenoiserConfig {
    pub fn validate(&self) -> crate::Result<()> {
        if self.width < GROUPS || !self.width.is_multiple_of(GROUPS) {
            return Err(Error::bad_input(format!(
                "--width must be a multiple of {GROUPS}"
            )));
        }
        let side = self.shape.height;
        if self.shape.width != side || self.levels == 0 || !side.is_multiple_of(1 << self.levels) {
            return Err(Error::bad_input(format!(
                "the denoiser takes square images whose side {} divides by 2^levels ({})",
                self.shape, self.levels
            )));
        }
        if let Some(attention) = &self.attention {
            let sides: Vec<usize> = (0..=self.levels).map(|l| side >> l).collect();
            if let Some(r) = attention.resolutions.iter().find(|r| !sides.contains(r)) {
                return Err(Error::bad_input(format!(
                    "--attention {r}: the U-Net's maps are {} px",
                    sides
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            attention.validate(&self.widths())?;
        }
        Ok(())
    }

    /// The attention block for maps of `side` px and `channels` channels, where one is asked.
    fn attention_at(
        &self,
        side: usize,
        channels: usize,
        device: &Device,
    ) -> Option<SpatialAttention> {
        let attention = self.attention.as_ref()?;
        attention
            .resolutions
            .contains(&side)
            .then(|| attention.block(channels, device))
    }

    fn widths(&self) -> Vec<usize> {
        (0..=self.levels)
            .map(|i| if i == 0 { self.width } else { 2 * self.width })
            .collect()
    }

    pub fn init(&self, device: &Device) -> Denoiser {
        let c = self.shape.channels;
        let time = 4 * self.width;
        let widths = self.widths();
        let conv3 = |channels: [usize; 2]| {
            Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let side = |level: usize| self.shape.height >> level;
        let mut downs = Vec::new();
        let mut down_attention = Vec::new();
        let mut down_samples = Vec::new();
        for level in 0..self.levels {
            downs.push(
                ResBlockConfig::new(widths[level], widths[level])
                    .with_time(time)
                    .init(device),
            );
            down_attention.push(self.attention_at(side(level), widths[level], device));
            down_samples.push(
                Conv2dConfig::new([widths[level], widths[level + 1]], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
        }
        let bottom = widths[self.levels];
        let middle = ResBlockConfig::new(bottom, bottom)
            .with_time(time)
            .init(device);
        let middle_attention = self.attention_at(side(self.levels), bottom, device);
        let mut up_samples = Vec::new();
        let mut ups = Vec::new();
        let mut up_attention = Vec::new();
        for level in (0..self.levels).rev() {
            up_samples.push(
                ConvTranspose2dConfig::new([widths[level + 1], widths[level]], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(device),
            );
            // The up-sampled features and the skip from the same level, joined.
            ups.push(
                ResBlockConfig::new(2 * widths[level], widths[level])
                    .with_time(time)
                    .init(device),
            );
            up_attention.push(self.attention_at(side(level), widths[level], device));
        }
        Denoiser {
            conv_in: conv3([c + self.condition_channels, self.width]),
            time_hidden: LinearConfig::new(self.width, time).init(device),
            time_out: LinearConfig::new(time, time).init(device),
            classes: (self.num_classes > 0)
                .then(|| EmbeddingConfig::new(self.num_classes + 1, time).init(device)),
            downs,
            down_attention,
            down_samples,
            middle,
            middle_attention,
            up_samples,
            ups,
            up_attention,
            norm_out: GroupNormConfig::new(GROUPS, self.width).init(device),
            conv_out: conv3([self.width, c]),
            num_classes: self.num_classes,
        }
    }
}

#[derive(Module, Debug)]
pub struct Denoiser {
    conv_in: Conv2d,
    time_hidden: Linear,
    time_out: Linear,
    /// `num_classes` + 1 vectors, the last for "no class".
    classes: Option<Embedding>,
    downs: Vec<ResBlock>,
    /// Per level, the attention block after its residual block, where asked.
    down_attention: Vec<Option<SpatialAttention>>,
    down_samples: Vec<Conv2d>,
    middle: ResBlock,
    middle_attention: Option<SpatialAttention>,
    up_samples: Vec<ConvTranspose2d>,
    ups: Vec<ResBlock>,
    up_attention: Vec<Option<SpatialAttention>>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    #[module(skip)]
    pub num_classes: usize,
}

impl Denoiser {
    /// ε̂ for `x_t` `[n, c + k, h, w]` (the noisy image, then the k condition channels of an
    /// image-conditioned model) at time steps `t` (one per image) and, for a class-conditional
    /// model, `labels` `[n]` (`num_classes` for "no class"; `None`: no class for any):
    /// `[n, c, h, w]`.
    pub fn forward(
        &self,
        x_t: Tensor<4>,
        t: &[usize],
        labels: Option<Tensor<1, Int>>,
    ) -> Tensor<4> {
        self.forward_in_context(x_t, t, labels, None)
    }

    /// [`Denoiser::forward`] with the attention blocks that cross-attend reading `context`
    /// `[n, L, context_dim]`.
    pub fn forward_in_context(
        &self,
        x_t: Tensor<4>,
        t: &[usize],
        labels: Option<Tensor<1, Int>>,
        context: Option<&Tensor<3>>,
    ) -> Tensor<4> {
        let attend = |block: &Option<SpatialAttention>, h: Tensor<4>| match block {
            Some(block) => block.forward(h, context),
            None => h,
        };
        let [n, ..] = x_t.dims();
        let device = x_t.device();
        let [embedding, _] = self.time_hidden.weight.dims();
        let time = sinusoidal_embedding(t, embedding, &device); // [n, width]
        let mut time = self.time_out.forward(silu(self.time_hidden.forward(time))); // [n, 4·width]
        if let Some(classes) = &self.classes {
            let labels = labels
                .unwrap_or_else(|| Tensor::<1, Int>::full([n], self.num_classes as i64, &device));
            let [_, dims] = time.dims();
            let class = classes.forward(labels.reshape([n, 1])).reshape([n, dims]); // [n, 4·width]
            time = time + class;
        }
        let mut h = self.conv_in.forward_fast(x_t); // [n, width, side, side]
        let mut skips = Vec::new();
        for ((block, attention), down) in self
            .downs
            .iter()
            .zip(&self.down_attention)
            .zip(&self.down_samples)
        {
            h = attend(attention, block.forward(h, Some(time.clone()))); // [n, w_l, s_l, s_l]
            skips.push(h.clone());
            h = down.forward_fast(h); // [n, w_{l+1}, s_l/2, s_l/2]
        }
        h = attend(
            &self.middle_attention,
            self.middle.forward(h, Some(time.clone())),
        ); // [n, 2·width, side/2^L, side/2^L]
        for ((up, block), attention) in self
            .up_samples
            .iter()
            .zip(&self.ups)
            .zip(&self.up_attention)
        {
            let skip = skips.pop().expect("one skip per level");
            h = up.forward_fast(h); // [n, w_l, s_l, s_l]
            h = block.forward(Tensor::cat(vec![h, skip], 1), Some(time.clone())); // [n, w_l, s_l, s_l]
            h = attend(attention, h);
        }
        self.conv_out.forward_fast(self.norm_out.forward_silu(h)) // [n, c, side, side]
    }

    /// Classifier-free guidance: ε(x, ∅) + w·(ε(x, y) − ε(x, ∅)). w = 0 is the unconditional
    /// prediction, w = 1 the conditional one, w > 1 pushes further towards the class.
    pub fn guided(&self, x_t: Tensor<4>, t: &[usize], labels: Tensor<1, Int>, w: f64) -> Tensor<4> {
        let unconditional = self.forward(x_t.clone(), t, None);
        if w == 0.0 {
            return unconditional;
        }
        let conditional = self.forward(x_t, t, Some(labels));
        unconditional.clone() + (conditional - unconditional) * w
    }
}

/// [sin(t·f_0), …, sin(t·f_{d/2−1}), cos(t·f_0), …] with f_i = 10000^(−i/(d/2)): `[n, d]`.
pub(crate) fn sinusoidal_embedding(t: &[usize], dims: usize, device: &Device) -> Tensor<2> {
    let half = dims / 2;
    let mut values = Vec::with_capacity(t.len() * dims);
    for &step in t {
        let angle = |i: usize| step as f64 * (-(10_000f64.ln()) * i as f64 / half as f64).exp();
        values.extend((0..half).map(|i| angle(i).sin() as f32));
        values.extend((0..dims - half).map(|i| angle(i).cos() as f32));
    }
    Tensor::from_data(TensorData::new(values, [t.len(), dims]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(num_classes: usize) -> DenoiserConfig {
        let shape = ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        DenoiserConfig::new(shape)
            .with_width(8)
            .with_num_classes(num_classes)
    }

    #[test]
    fn the_denoiser_keeps_the_image_shape_and_reads_the_time() {
        let device = Device::flex();
        device.seed(0);
        let config = config(0);
        config.validate().unwrap();
        let denoiser = config.init(&device);
        let x = Tensor::<4>::random([2, 1, 28, 28], burn::tensor::Distribution::Default, &device);
        let early = denoiser.forward(x.clone(), &[1, 1], None);
        let late = denoiser.forward(x, &[900, 900], None);
        assert_eq!(early.dims(), [2, 1, 28, 28]);
        let differ = (early - late).abs().max().into_scalar::<f32>();
        assert!(differ > 1e-6, "the time step changes nothing: {differ}");
        let mut bad = config.clone();
        bad.width = 12;
        assert!(bad.validate().is_err());
        bad = config;
        bad.levels = 3; // 28 is not a multiple of 8
        assert!(bad.validate().is_err());
    }

    #[test]
    fn guidance_weight_zero_is_the_unconditional_prediction_and_one_the_conditional() {
        let device = Device::flex();
        device.seed(0);
        let denoiser = config(10).init(&device);
        let x = Tensor::<4>::random([3, 1, 28, 28], burn::tensor::Distribution::Default, &device);
        let t = [10, 500, 999];
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 4, 7], [3]), &device);
        let values = |t: Tensor<4>| -> Vec<f32> { t.into_data().iter::<f32>().collect() };
        let unconditional = values(denoiser.forward(x.clone(), &t, None));
        let conditional = values(denoiser.forward(x.clone(), &t, Some(labels.clone())));
        assert_ne!(unconditional, conditional, "the class changes nothing");
        let zero = values(denoiser.guided(x.clone(), &t, labels.clone(), 0.0));
        assert_eq!(zero, unconditional);
        let one = values(denoiser.guided(x, &t, labels, 1.0));
        for (a, b) in one.iter().zip(&conditional) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn attention_blocks_sit_at_the_sides_asked_and_read_the_context() {
        let device = Device::flex();
        device.seed(0);
        let shape = ImageShape {
            channels: 4,
            height: 8,
            width: 8,
        };
        let attention = AttentionConfig::new(vec![8, 2]).with_context_dim(6);
        let config = DenoiserConfig::new(shape)
            .with_width(8)
            .with_attention(Some(attention.clone()));
        config.validate().unwrap();
        let denoiser = config.init(&device);
        // 8 px: the first level's down and up blocks; 2 px: the middle.
        let blocks = denoiser.down_attention.iter().flatten().count()
            + denoiser.up_attention.iter().flatten().count()
            + denoiser.middle_attention.iter().count();
        assert_eq!(blocks, 3);
        let x = Tensor::<4>::random([2, 4, 8, 8], burn::tensor::Distribution::Default, &device);
        let context = Tensor::<3>::random([2, 3, 6], burn::tensor::Distribution::Default, &device);
        let with = denoiser.forward_in_context(x.clone(), &[5, 5], None, Some(&context));
        assert_eq!(with.dims(), [2, 4, 8, 8]);
        let without = denoiser.forward(x, &[5, 5], None);
        let differ = (with - without).abs().max().into_scalar::<f32>();
        assert!(differ > 1e-6, "the context changes nothing: {differ}");
        // A side the U-Net does not have, or heads that do not split the widths, are refused.
        let bad = config
            .clone()
            .with_attention(Some(AttentionConfig::new(vec![3])));
        assert!(bad.validate().is_err());
        let bad = config.with_attention(Some(AttentionConfig::new(vec![8]).with_heads(3)));
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_time_embedding_is_sines_then_cosines() {
        let device = Device::flex();
        let e: Vec<f32> = sinusoidal_embedding(&[0, 3], 8, &device)
            .into_data()
            .iter::<f32>()
            .collect();
        // t = 0: all sines 0, all cosines 1.
        assert_eq!(&e[..8], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        // t = 3, frequency 1 and 10000^(-1/4) = 0.1.
        assert!((e[8] - 3f32.sin()).abs() < 1e-6 && (e[12] - 3f32.cos()).abs() < 1e-6);
        assert!((e[9] - 0.3f32.sin()).abs() < 1e-6 && (e[13] - 0.3f32.cos()).abs() < 1e-6);
    }
}
