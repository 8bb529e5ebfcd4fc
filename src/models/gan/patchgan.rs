//! The PatchGAN discriminator (Isola et al., 2017, pix2pix): a fully convolutional net whose
//! output is a grid of logits, one per overlapping patch of the input, each judging only the
//! pixels it sees. The loss is averaged over patches, so D asks "is every patch real?", which
//! pushes G towards sharp local texture rather than a plausible whole.
//!
//! Layers, all 4x4 with padding 1: a stride-2 conv to `ndf` channels without batch norm, more
//! stride-2 convs doubling the channels (`--patch-layers` stride-2 layers in all), one stride-1
//! conv doubling them again, and a stride-1 conv to one logit per position; LeakyReLU(0.2) and
//! batch norm between, as in DCGAN. pix2pix's 70x70 PatchGAN for 256 px images is 3 stride-2
//! layers; for 28-32 px images one stride-2 layer gives 16x16 patches.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, Embedding, PaddingConfig2d};
use burn::prelude::*;

use crate::data::ImageShape;
use crate::error::Error;
use crate::models::gan::blocks::{
    append_label_map, dcgan_batch_norm, dcgan_weights, label_map, receptive_field,
};
use crate::ops::{FastConv, FusedNormAct, leaky_relu};

/// (kernel, stride) of each convolution, input side first.
pub(crate) fn layer_geometry(stride_2_layers: usize) -> Vec<(usize, usize)> {
    let mut layers = vec![(4, 2); stride_2_layers];
    layers.extend([(4, 1), (4, 1)]);
    layers
}

/// Side of the logit grid for a `side`-px input: each stride-2 layer halves (⌊n/2⌋), each
/// stride-1 layer takes one off (4x4 kernel, padding 1).
pub(crate) fn grid_side(side: usize, stride_2_layers: usize) -> usize {
    layer_geometry(stride_2_layers)
        .iter()
        .fold(side, |n, &(kernel, stride)| {
            (n + 2).saturating_sub(kernel) / stride + 1
        })
}

/// Pixels each logit sees.
pub(crate) fn patch_size(stride_2_layers: usize) -> usize {
    receptive_field(&layer_geometry(stride_2_layers))
}

pub fn check(shape: ImageShape, stride_2_layers: usize) -> crate::Result<()> {
    if stride_2_layers == 0 {
        return Err(Error::bad_input("--patch-layers must be at least 1"));
    }
    let side = shape.height.min(shape.width);
    // Each stride-1 layer needs a map of at least 3 to leave one logit.
    let smallest = side >> stride_2_layers;
    if smallest < 3 {
        return Err(Error::bad_input(format!(
            "{side} px images are too small for {stride_2_layers} PatchGAN stride-2 layers"
        )));
    }
    Ok(())
}

/// The PatchGAN discriminator: an image of `shape` (and a class) to a grid of logits.
#[derive(Config, Debug)]
pub struct PatchDiscriminatorConfig {
    pub shape: ImageShape,
    /// Channels of the first layer, doubling at each.
    pub ndf: usize,
    /// Stride-2 layers: each doubles the patch each logit sees.
    pub layers: usize,
    /// Classes it is conditioned on (0: unconditional): one more input channel.
    #[config(default = 0)]
    pub num_classes: usize,
}

#[derive(Module, Debug)]
pub struct PatchDiscriminator {
    label: Option<Embedding>,
    first: Conv2d,
    /// The later convolutions but the last, each with batch norm.
    middle: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    to_logits: Conv2d,
}

fn conv(channels: [usize; 2], stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new(channels, [4, 4])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .with_initializer(dcgan_weights())
        .init(device)
}

impl PatchDiscriminatorConfig {
    pub fn init(&self, device: &Device) -> PatchDiscriminator {
        let config = self;
        let layers = config.layers;
        let widths: Vec<usize> = (0..=layers).map(|i| config.ndf << i).collect();
        let middle = widths
            .windows(2)
            .enumerate()
            .map(|(i, pair)| {
                conv(
                    [pair[0], pair[1]],
                    if i + 1 < layers { 2 } else { 1 },
                    device,
                )
            })
            .collect();
        let in_channels = config.shape.channels + usize::from(config.num_classes > 0);
        PatchDiscriminator {
            label: label_map(config.num_classes, config.shape, device),
            first: conv([in_channels, widths[0]], 2, device),
            middle,
            norms: widths[1..]
                .iter()
                .map(|&w| dcgan_batch_norm(w, device))
                .collect(),
            to_logits: Conv2dConfig::new([*widths.last().unwrap(), 1], [4, 4])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(dcgan_weights())
                .init(device),
        }
    }
}

impl PatchDiscriminator {
    /// One logit per patch, `[batch, 1, grid, grid]`.
    pub fn forward(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        let x = append_label_map(images, &self.label, labels); // [batch, c (+1), h, w]
        let mut h = leaky_relu(self.first.forward_fast(x), 0.2); // [batch, ndf, h/2, w/2]
        for (conv, norm) in self.middle.iter().zip(&self.norms) {
            h = norm.forward_leaky_relu(conv.forward_fast(h), 0.2); // [batch, 2·channels, side/2 or side-1, …]
        }
        self.to_logits.forward_fast(h) // [batch, 1, grid, grid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logit_grid_for_28_32_and_64_px() {
        let device = Device::flex();
        // By hand: 28 → 14 (stride 2) → 13 → 12 (stride 1); 32 → 16 → 15 → 14;
        // 64 with two stride-2 layers → 32 → 16 → 15 → 14.
        for (channels, side, grid) in [(1, 28, 12), (3, 32, 14), (3, 64, 14)] {
            let shape = ImageShape {
                channels,
                height: side,
                width: side,
            };
            // The default: one stride-2 layer below 64 px, two from 64.
            let layers = if side >= 64 { 2 } else { 1 };
            check(shape, layers).unwrap();
            assert_eq!(grid_side(side, layers), grid);
            let d = PatchDiscriminatorConfig::new(shape, 4, layers).init(&device);
            let logits = d.forward(Tensor::zeros([2, channels, side, side], &device), None);
            assert_eq!(logits.dims(), [2, 1, grid, grid], "{side} px");
        }
        assert_eq!(patch_size(1), 16);
        assert_eq!(patch_size(2), 34);
        assert_eq!(patch_size(3), 70, "pix2pix's 70x70 PatchGAN");
    }
}
