//! The residual block of the diffusion U-Net and of latent diffusion's autoencoder (He et al.
//! 2016 as DDPM and LDM use it): GroupNorm → SiLU → 3x3 conv, (+ the time step's shift per
//! channel), GroupNorm → SiLU → 3x3 conv, added to the input (through a 1x1 conv where the
//! widths differ). Normalizing before each convolution keeps the sum's scale steady however
//! many blocks are stacked.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::ops::{FastConv, FusedGroupNormSilu};

/// Channels per group of every GroupNorm divide by this many groups.
pub(crate) const GROUPS: usize = 8;

#[derive(Config, Debug)]
pub(crate) struct ResBlockConfig {
    in_channels: usize,
    out_channels: usize,
    /// Width of the time embedding it reads (0: none, as in an autoencoder).
    #[config(default = 0)]
    time: usize,
}

impl ResBlockConfig {
    pub fn init(&self, device: &Device) -> ResBlock {
        let conv3 = |channels: [usize; 2]| {
            Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        ResBlock {
            norm1: GroupNormConfig::new(GROUPS, self.in_channels).init(device),
            conv1: conv3([self.in_channels, self.out_channels]),
            time: (self.time > 0)
                .then(|| LinearConfig::new(self.time, self.out_channels).init(device)),
            norm2: GroupNormConfig::new(GROUPS, self.out_channels).init(device),
            conv2: conv3([self.out_channels, self.out_channels]),
            shortcut: (self.in_channels != self.out_channels).then(|| {
                Conv2dConfig::new([self.in_channels, self.out_channels], [1, 1]).init(device)
            }),
        }
    }
}

/// Two 3x3 convolutions (with the time added between them, where it has one) around a
/// shortcut.
#[derive(Module, Debug)]
pub(crate) struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl ResBlock {
    /// `x` `[n, in, h, w]` (and the time embedding `[n, time]` of a block that reads one):
    /// `[n, out, h, w]`.
    pub fn forward(&self, x: Tensor<4>, time: Option<Tensor<2>>) -> Tensor<4> {
        let h = self.conv1.forward_fast(self.norm1.forward_silu(x.clone())); // [n, out, h, w]
        let h = match (&self.time, time) {
            (Some(linear), Some(time)) => {
                let shift = linear.forward(silu(time)); // [n, out]
                // h + the time's shift per image and channel, normalized in one pass.
                self.norm2.forward_silu_shifted(h, shift)
            }
            _ => self.norm2.forward_silu(h),
        };
        let h = self.conv2.forward_fast(h); // [n, out, h, w]
        let skip = match &self.shortcut {
            Some(conv) => conv.forward_fast(x), // [n, out, h, w]
            None => x,
        };
        h + skip
    }
}
