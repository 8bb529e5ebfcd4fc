//! DCGAN (Radford, Metz & Chintala, 2016): the convolutional generator and discriminator.
//!
//! Generator: project z to a small feature map and reshape it, then fractionally-strided
//! (transposed) 4x4 convolutions with stride 2 that double the side at each layer, batch norm and
//! ReLU between them, Tanh on the last. Discriminator: the mirror image, strided 4x4 convolutions
//! that halve the side, LeakyReLU(0.2), batch norm on every layer but the first, and one
//! convolution over the whole last map to a single logit. No pooling and no fully connected
//! hidden layers, as the paper prescribes.
//!
//! The side is 7·2ⁿ (28 → 7, 14, 28) or 4·2ⁿ (32 → 4, 8, 16, 32; 64 adds a layer); the widest
//! layer has `ngf`·2ⁿ⁻¹ channels, halving to `ngf` before the image.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, Embedding, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::data::ImageShape;
use crate::error::Error;
use crate::models::gan::blocks::{
    append_label_map, dcgan_batch_norm, dcgan_weights, join_label, label_embedding, label_map,
};
use crate::ops::{Activation, FastConv, FusedNormAct, leaky_relu};

/// The feature-map sides of a DCGAN for `shape`: the base side and the number of doublings.
pub fn plan(shape: ImageShape) -> crate::Result<(usize, usize)> {
    let side = shape.height;
    let doublings = |base: usize| {
        (side.is_multiple_of(base) && (side / base).is_power_of_two() && side / base >= 2)
            .then(|| (side / base).trailing_zeros() as usize)
    };
    if shape.width != side {
        return Err(Error::bad_input(format!(
            "DCGAN needs square images, not {}x{}",
            shape.height, shape.width
        )));
    }
    doublings(7)
        .map(|n| (7, n))
        .or_else(|| doublings(4).map(|n| (4, n)))
        .ok_or_else(|| {
            Error::bad_input(format!(
                "DCGAN makes 7·2ⁿ or 4·2ⁿ px images (28, 32, 64, …), not {side}; pass --image-size"
            ))
        })
}

/// The DCGAN generator: z (and a class) to an image of `shape`.
#[derive(Config, Debug)]
pub(crate) struct DcganGeneratorConfig {
    pub shape: ImageShape,
    /// Dimensions of z.
    pub latent: usize,
    /// Channels of the last hidden layer; the widest has `ngf`·2ⁿ⁻¹.
    pub ngf: usize,
    /// Classes it is conditioned on (0: unconditional).
    #[config(default = 0)]
    pub num_classes: usize,
}

#[derive(Module, Debug)]
pub struct DcganGenerator {
    label: Option<Embedding>,
    project: Linear,
    project_norm: BatchNorm,
    /// All but the last up-sampling layer, each followed by batch norm and ReLU.
    ups: Vec<ConvTranspose2d>,
    norms: Vec<BatchNorm>,
    to_image: ConvTranspose2d,
    #[module(skip)]
    base: usize,
    #[module(skip)]
    base_channels: usize,
}

fn up(channels: [usize; 2], device: &Device) -> ConvTranspose2d {
    // Kernel 4, stride 2, padding 1: exactly doubles the side.
    ConvTranspose2dConfig::new(channels, [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_bias(false)
        .with_initializer(dcgan_weights())
        .init(device)
}

fn down(channels: [usize; 2], device: &Device) -> Conv2d {
    // Kernel 4, stride 2, padding 1: exactly halves an even side.
    Conv2dConfig::new(channels, [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .with_initializer(dcgan_weights())
        .init(device)
}

impl DcganGeneratorConfig {
    pub fn init(&self, device: &Device) -> DcganGenerator {
        let config = self;
        let (base, doublings) = plan(config.shape).expect("validated");
        // Widths from the projection down: ngf·2^(n-1), …, ngf, then the image's channels.
        let widths: Vec<usize> = (0..doublings).rev().map(|i| config.ngf << i).collect();
        let base_channels = widths[0];
        // z, then the label's embedding.
        let inputs = config.latent + config.num_classes;
        let project = LinearConfig::new(inputs, base_channels * base * base)
            .with_bias(false)
            .with_initializer(dcgan_weights())
            .init(device);
        let ups = widths
            .windows(2)
            .map(|pair| up([pair[0], pair[1]], device))
            .collect();
        let norms = widths[1..]
            .iter()
            .map(|&w| dcgan_batch_norm(w, device))
            .collect();
        DcganGenerator {
            label: label_embedding(config.num_classes, device),
            project,
            project_norm: dcgan_batch_norm(base_channels, device),
            ups,
            norms,
            to_image: up([*widths.last().unwrap(), config.shape.channels], device),
            base,
            base_channels,
        }
    }
}

impl DcganGenerator {
    pub fn forward(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        let input = join_label(z, &self.label, labels); // [batch, latent (+ classes)]
        let [batch, _] = input.dims();
        let h = self
            .project
            .forward(input) // [batch, ngf·2^(n-1) · base · base]
            .reshape([batch, self.base_channels, self.base, self.base]); // [batch, ngf·2^(n-1), base, base]
        let mut h = self.project_norm.forward_relu(h);
        for (up, norm) in self.ups.iter().zip(&self.norms) {
            h = norm.forward_relu(up.forward_fast(h)); // [batch, channels / 2, 2·side, 2·side]
        }
        self.to_image.forward_fused(h, Activation::Tanh) // [batch, c, h, w] in [-1, 1]
    }
}

/// The DCGAN discriminator: an image of `shape` (and a class) to one logit.
#[derive(Config, Debug)]
pub(crate) struct DcganDiscriminatorConfig {
    pub shape: ImageShape,
    /// Channels of the first layer, doubling at each.
    pub ndf: usize,
    /// Classes it is conditioned on (0: unconditional): one more input channel.
    #[config(default = 0)]
    pub num_classes: usize,
}

#[derive(Module, Debug)]
pub struct DcganDiscriminator {
    label: Option<Embedding>,
    first: Conv2d,
    /// The later strided layers, each with batch norm.
    downs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    /// One convolution over the whole base-side map: the logit.
    to_logit: Conv2d,
}

impl DcganDiscriminatorConfig {
    pub fn init(&self, device: &Device) -> DcganDiscriminator {
        let config = self;
        let (base, doublings) = plan(config.shape).expect("validated");
        let widths: Vec<usize> = (0..doublings).map(|i| config.ndf << i).collect();
        let in_channels = config.shape.channels + usize::from(config.num_classes > 0);
        DcganDiscriminator {
            label: label_map(config.num_classes, config.shape, device),
            first: down([in_channels, widths[0]], device),
            downs: widths
                .windows(2)
                .map(|pair| down([pair[0], pair[1]], device))
                .collect(),
            norms: widths[1..]
                .iter()
                .map(|&w| dcgan_batch_norm(w, device))
                .collect(),
            to_logit: Conv2dConfig::new([*widths.last().unwrap(), 1], [base, base])
                .with_bias(false)
                .with_initializer(dcgan_weights())
                .init(device),
        }
    }
}

impl DcganDiscriminator {
    /// One logit per image, `[batch, 1]`.
    pub fn forward(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Tensor<2> {
        let x = append_label_map(images, &self.label, labels); // [batch, c (+1), h, w]
        let mut h = leaky_relu(self.first.forward_fast(x), 0.2); // [batch, ndf, h/2, w/2]
        for (down, norm) in self.downs.iter().zip(&self.norms) {
            h = norm.forward_leaky_relu(down.forward_fast(h), 0.2); // [batch, 2·channels, side/2, side/2]
        }
        self.to_logit.forward_fast(h).flatten::<2>(1, 3) // [batch, 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn shape(channels: usize, side: usize) -> ImageShape {
        ImageShape {
            channels,
            height: side,
            width: side,
        }
    }

    #[test]
    fn plans_for_the_sizes_users_ask_for() {
        assert_eq!(plan(shape(1, 28)).unwrap(), (7, 2));
        assert_eq!(plan(shape(3, 32)).unwrap(), (4, 3));
        assert_eq!(plan(shape(3, 64)).unwrap(), (4, 4));
        assert!(plan(shape(1, 30)).is_err());
        assert!(plan(shape(1, 7)).is_err());
    }

    #[test]
    fn generator_makes_images_in_range_and_discriminator_one_logit() {
        let device = Device::flex();
        device.seed(0);
        for (channels, side) in [(1, 28), (3, 32), (3, 64)] {
            let generator = DcganGeneratorConfig::new(shape(channels, side), 8, 4).init(&device);
            // Large z pushes the pre-activations far out: Tanh must still bound them.
            let z = Tensor::<2>::random([3, 8], Distribution::Normal(0.0, 50.0), &device);
            let images = generator.forward(z, None);
            assert_eq!(images.dims(), [3, channels, side, side]);
            let values: Vec<f32> = images.clone().into_data().iter::<f32>().collect();
            assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
            assert!(values.iter().any(|v| *v != values[0]), "not constant");
            let discriminator =
                DcganDiscriminatorConfig::new(shape(channels, side), 4).init(&device);
            assert_eq!(discriminator.forward(images, None).dims(), [3, 1]);
        }
    }
}
