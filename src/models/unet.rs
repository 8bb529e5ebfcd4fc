//! The U-Net generator of pix2pix (Ronneberger et al. 2015; Isola et al. 2017): an encoder of
//! stride-2 convolutions down to a small map, a decoder of stride-2 transposed convolutions back
//! up, and a skip connection from each encoder level to the decoder level of the same size, so
//! detail the bottleneck cannot hold (edges, the visible pixels) passes straight across.
//!
//! Layers, all 4x4 with padding 1 as in pix2pix: down blocks conv → batch norm → LeakyReLU(0.2)
//! (no norm on the first; no bias where batch norm follows, as its mean cancels it), up blocks transposed conv → batch norm → ReLU on the concatenation of
//! the previous up block and the matching down block, and a last transposed conv to the image's
//! channels with a sigmoid (pixels in [0, 1]). pix2pix's 256 px U-Net has 8 levels, down to a 1x1
//! bottleneck, so every output pixel sees the whole input: a hole's centre is far from any
//! visible pixel. Here likewise: ⌈log₂ side⌉ levels (at most `depth`), the input zero-padded to a
//! multiple of 2^levels and the output cropped back (28 px: padded to 32, 5 levels, 32 → 1).
//! Widths double per level up to 8× the first, as in pix2pix.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::data::ImageShape;
use crate::error::Error;
use crate::models::gan::blocks::{dcgan_batch_norm, dcgan_weights};
use crate::ops::{FastConv, FusedNormAct, leaky_relu};

/// A U-Net from `in_channels` to an image of `shape`.
#[derive(Config, Debug)]
pub struct UnetConfig {
    /// The image it outputs.
    pub shape: ImageShape,
    /// Channels it reads (the masked image and its mask, or the luma).
    pub in_channels: usize,
    /// Channels of the first level, doubling at each.
    #[config(default = 32)]
    pub width: usize,
    /// Most down-sampling levels.
    #[config(default = 5)]
    pub depth: usize,
}

impl UnetConfig {
    /// Levels used for this image size: ⌈log₂ side⌉, at most `depth`.
    pub fn levels(&self) -> usize {
        let side = self.shape.height.max(self.shape.width);
        let log2 = usize::BITS - side.saturating_sub(1).leading_zeros();
        (log2 as usize).min(self.depth)
    }

    /// The side the input is padded to: a multiple of 2^levels.
    pub fn padded_side(&self) -> usize {
        let step = 1 << self.levels();
        self.shape.height.max(self.shape.width).div_ceil(step) * step
    }

    pub fn validate(&self) -> crate::Result<()> {
        if self.width == 0 || self.in_channels == 0 {
            return Err(Error::bad_input("--width must be at least 1"));
        }
        if self.shape.height != self.shape.width {
            return Err(Error::bad_input(format!(
                "the U-Net takes square images, not {}",
                self.shape
            )));
        }
        if self.levels() == 0 {
            return Err(Error::bad_input(format!(
                "{} px images are too small for the U-Net (at least 2 px)",
                self.shape.height
            )));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Unet {
        let levels = self.levels();
        let widths: Vec<usize> = (0..levels)
            .map(|i| (self.width << i).min(8 * self.width))
            .collect();
        let mut downs = Vec::new();
        let mut down_norms = Vec::new();
        let mut previous = self.in_channels;
        for (i, &w) in widths.iter().enumerate() {
            // A bias before batch norm is cancelled by its mean: only the first layer has one.
            downs.push(down([previous, w], i == 0, device));
            if i > 0 {
                down_norms.push(dcgan_batch_norm(w, device));
            }
            previous = w;
        }
        // Up blocks from the bottleneck: level i reads the deeper level's output joined with
        // the skip of level i (for the deepest, the bottleneck alone).
        let mut ups = Vec::new();
        let mut up_norms = Vec::new();
        for i in (1..levels).rev() {
            let input = if i == levels - 1 {
                widths[i]
            } else {
                2 * widths[i]
            };
            ups.push(up([input, widths[i - 1]], false, device));
            up_norms.push(dcgan_batch_norm(widths[i - 1], device));
        }
        let last_input = if levels == 1 {
            widths[0]
        } else {
            2 * widths[0]
        };
        Unet {
            downs,
            down_norms,
            ups,
            up_norms,
            to_image: up([last_input, self.shape.channels], true, device),
            side: self.shape.height,
            padded: self.padded_side(),
        }
    }
}

fn down(channels: [usize; 2], bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new(channels, [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .with_initializer(dcgan_weights())
        .init(device)
}

fn up(channels: [usize; 2], bias: bool, device: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new(channels, [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_bias(bias)
        .with_initializer(dcgan_weights())
        .init(device)
}

#[derive(Module, Debug)]
pub struct Unet {
    downs: Vec<Conv2d>,
    /// Batch norms of the down blocks after the first.
    down_norms: Vec<BatchNorm>,
    ups: Vec<ConvTranspose2d>,
    up_norms: Vec<BatchNorm>,
    to_image: ConvTranspose2d,
    /// The images' side, and the side the input is zero-padded to.
    #[module(skip)]
    side: usize,
    #[module(skip)]
    padded: usize,
}

impl Unet {
    /// The image for `input` `[batch, in_channels, side, side]`: `[batch, c, side, side]` in
    /// [0, 1].
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let (side, padded) = (self.side, self.padded);
        let offset = (padded - side) / 2;
        let input = if padded > side {
            let rest = padded - side - offset;
            input.pad(
                (offset, rest, offset, rest),
                burn::tensor::ops::PadMode::Constant(0.0),
            ) // [batch, in, padded, padded]
        } else {
            input
        };
        let mut skips = Vec::with_capacity(self.downs.len());
        let mut h = leaky_relu(self.downs[0].forward_fast(input), 0.2); // [batch, width, side/2, side/2]
        skips.push(h.clone());
        for (conv, norm) in self.downs[1..].iter().zip(&self.down_norms) {
            h = norm.forward_leaky_relu(conv.forward_fast(h), 0.2); // [batch, 2·channels, side/2, side/2]
            skips.push(h.clone());
        }
        // Deepest level first; each up block doubles the side back to its skip's.
        let levels = skips.len();
        for (i, (conv, norm)) in self.ups.iter().zip(&self.up_norms).enumerate() {
            if i > 0 {
                h = Tensor::cat(vec![h, skips[levels - 1 - i].clone()], 1); // [batch, 2·channels, side, side]
            }
            h = norm.forward_relu(conv.forward_fast(h)); // [batch, channels / 2, 2·side, 2·side]
        }
        if levels > 1 {
            h = Tensor::cat(vec![h, skips[0].clone()], 1); // [batch, 2·width, side/2, side/2]
        }
        let image = sigmoid(self.to_image.forward_fast(h)); // [batch, c, padded, padded]
        if padded > side {
            let [batch, channels, ..] = image.dims();
            image.slice([
                0..batch,
                0..channels,
                offset..offset + side,
                offset..offset + side,
            ]) // [batch, c, side, side]
        } else {
            image
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_for_28_32_and_64_px_gray_and_rgb() {
        let device = Device::flex();
        for (side, levels, padded) in [(28, 5, 32), (32, 5, 32), (64, 5, 64)] {
            for channels in [1, 3] {
                let shape = ImageShape {
                    channels,
                    height: side,
                    width: side,
                };
                // Inpainting reads the image and its mask; colorization the luma.
                for in_channels in [channels + 1, 1] {
                    let config = UnetConfig::new(shape, in_channels).with_width(4);
                    config.validate().unwrap();
                    assert_eq!(config.levels(), levels, "{side} px");
                    assert_eq!(config.padded_side(), padded, "{side} px");
                    let unet = config.init(&device);
                    let out = unet.forward(Tensor::ones([2, in_channels, side, side], &device));
                    assert_eq!(out.dims(), [2, channels, side, side]);
                    let values: Vec<f32> = out.into_data().iter::<f32>().collect();
                    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
                }
            }
        }
        let one = ImageShape {
            channels: 1,
            height: 1,
            width: 1,
        };
        assert!(UnetConfig::new(one, 2).validate().is_err());
    }

    #[test]
    fn a_skip_carries_the_input_to_the_output() {
        // Changing one input pixel changes the output near it even through a one-level U-Net.
        let device = Device::flex();
        let shape = ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let unet = UnetConfig::new(shape, 1)
            .with_width(4)
            .init(&device)
            .valid();
        let base = Tensor::<4>::zeros([1, 1, 8, 8], &device);
        let mut poked = vec![0.0f32; 64];
        poked[3 * 8 + 3] = 1.0;
        let poked = Tensor::<4>::from_data(TensorData::new(poked, [1, 1, 8, 8]), &device);
        let difference = (unet.forward(base) - unet.forward(poked)).abs().sum();
        assert!(difference.into_scalar::<f32>() > 0.0);
    }
}
