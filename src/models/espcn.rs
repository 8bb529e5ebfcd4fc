//! ESPCN (Shi et al. 2016, "Real-time single image and video super-resolution using an efficient
//! sub-pixel convolutional neural network"): every convolution runs on the low-resolution image,
//! and the last one outputs c·s² channels that a sub-pixel shuffle rearranges into the s× larger
//! image, instead of upsampling first and convolving at full size (s² times the work).
//!
//! Layers as in the paper: 5×5 conv to `width` channels, tanh; 3×3 conv to width/2, tanh; 3×3 conv
//! to c·s²; shuffle. One change: the network predicts the residual over the nearest-neighbour
//! upsampled input (a global skip, as VDSR, Kim et al. 2016), so it starts at pixel replication
//! instead of noise and only learns the detail. Pixels in [0, 1]; the output is not clamped (an
//! edit's projection clips it).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

use crate::data::ImageShape;
use crate::degrade::upsample_nearest;
use crate::error::Error;
use crate::ops::{Activation, FastConv};

/// An ESPCN that upscales images by `scale` to `shape`.
#[derive(Config, Debug)]
pub struct EspcnConfig {
    /// The image it outputs.
    pub shape: ImageShape,
    /// The upscaling factor s.
    pub scale: usize,
    /// Channels of the first layer (the second has half).
    #[config(default = 64)]
    pub width: usize,
}

impl EspcnConfig {
    pub fn validate(&self) -> crate::Result<()> {
        if self.width < 2 {
            return Err(Error::bad_input("--width must be at least 2"));
        }
        let s = self.scale;
        if s < 2 || !self.shape.height.is_multiple_of(s) || !self.shape.width.is_multiple_of(s) {
            return Err(Error::bad_input(format!(
                "--scale {s} must be at least 2 and divide the images' size ({})",
                self.shape
            )));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Espcn {
        let c = self.shape.channels;
        let conv = |channels: [usize; 2], kernel: usize| {
            Conv2dConfig::new(channels, [kernel, kernel])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Espcn {
            features: conv([c, self.width], 5),
            mapping: conv([self.width, self.width / 2], 3),
            to_subpixels: conv([self.width / 2, c * self.scale * self.scale], 3),
            scale: self.scale,
        }
    }
}

#[derive(Module, Debug)]
pub struct Espcn {
    features: Conv2d,
    mapping: Conv2d,
    to_subpixels: Conv2d,
    #[module(skip)]
    scale: usize,
}

impl Espcn {
    /// The upscaled image for `small` `[batch, c, h/s, w/s]`: `[batch, c, h, w]`.
    pub fn forward(&self, small: Tensor<4>) -> Tensor<4> {
        let replicated = upsample_nearest(small.clone(), self.scale); // [batch, c, h, w]
        self.detail(small) + replicated
    }

    /// What the network adds to the nearest-upsampled `small`, `[batch, c, h, w]`.
    pub fn detail(&self, small: Tensor<4>) -> Tensor<4> {
        let h = self.features.forward_fused(small, Activation::Tanh); // [batch, width, h/s, w/s]
        let h = self.mapping.forward_fused(h, Activation::Tanh); // [batch, width/2, h/s, w/s]
        pixel_shuffle(self.to_subpixels.forward_fast(h), self.scale) // [batch, c, h, w]
    }
}

/// The sub-pixel shuffle (PyTorch's `pixel_shuffle`): `[n, c·s², h, w]` → `[n, c, h·s, w·s]`,
/// input channel c·s² + i·s + j going to the output pixels (y·s + i, x·s + j).
pub(crate) fn pixel_shuffle(x: Tensor<4>, s: usize) -> Tensor<4> {
    let [n, channels, h, w] = x.dims();
    let c = channels / (s * s);
    x.reshape([n, c, s, s, h, w]) // [n, c, i, j, h, w]
        .permute([0, 1, 4, 2, 5, 3]) // [n, c, h, i, w, j]
        .reshape([n, c, h * s, w * s])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shuffle_places_channels_as_pytorch_does() {
        let device = Device::flex();
        // [1, 8, 2, 3] → [1, 2, 4, 6] with s = 2.
        let values: Vec<f32> = (0..48).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, 8, 2, 3]), &device);
        let out: Vec<f32> = pixel_shuffle(x, 2).into_data().iter::<f32>().collect();
        for c in 0..2 {
            for y in 0..4 {
                for x in 0..6 {
                    let (i, j) = (y % 2, x % 2);
                    let channel = c * 4 + i * 2 + j;
                    let want = (channel * 6 + (y / 2) * 3 + x / 2) as f32;
                    assert_eq!(out[c * 24 + y * 6 + x], want, "c {c} y {y} x {x}");
                }
            }
        }
    }

    #[test]
    fn espcn_upscales_and_starts_near_pixel_replication() {
        let device = Device::flex();
        // Flex's generator is global: the draws depend on tests running beside this one.
        device.seed(0);
        for (channels, side, scale) in [(1, 28, 2), (1, 28, 4), (3, 32, 4)] {
            let shape = ImageShape {
                channels,
                height: side,
                width: side,
            };
            let config = EspcnConfig::new(shape, scale).with_width(8);
            config.validate().unwrap();
            let espcn = config.init(&device);
            let small = Tensor::<4>::ones([2, channels, side / scale, side / scale], &device) * 0.5;
            let out = espcn.forward(small);
            assert_eq!(out.dims(), [2, channels, side, side]);
            // The residual starts small: the output stays near the replicated 0.5 (over 200
            // seeds the mean deviation was at most 0.15; the largest single pixel's, 0.67).
            let mean = (out - 0.5).abs().mean().into_scalar::<f32>();
            assert!(mean < 0.3, "{mean}");
        }
        let shape = ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        assert!(EspcnConfig::new(shape, 3).validate().is_err());
        assert!(EspcnConfig::new(shape, 1).validate().is_err());
    }
}
