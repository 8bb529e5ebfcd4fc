//! The fully connected generator and discriminator of the first GAN paper (Goodfellow et al.,
//! 2014): G is z → ReLU layers → Tanh, D is the image flattened → LeakyReLU(0.2) layers → one
//! logit. (The paper's D used maxout units and dropout; LeakyReLU is what later MLP GANs use and
//! trains as well here without the extra width maxout needs.)

use burn::nn::{Embedding, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

use crate::data::ImageShape;
use crate::models::gan::blocks::{
    append_label_map, dcgan_weights, join_label, label_embedding, label_map,
};

fn linear(inputs: usize, outputs: usize, device: &Device) -> Linear {
    LinearConfig::new(inputs, outputs)
        .with_initializer(dcgan_weights())
        .init(device)
}

/// Each width in turn, from `inputs` to `outputs`.
fn layers(inputs: usize, hidden: &[usize], outputs: usize, device: &Device) -> Vec<Linear> {
    let mut widths = vec![inputs];
    widths.extend(hidden);
    widths.push(outputs);
    widths
        .windows(2)
        .map(|pair| linear(pair[0], pair[1], device))
        .collect()
}

/// The MLP generator: z (and a class) through ReLU layers of `hidden` widths to an image.
#[derive(Config, Debug)]
pub(crate) struct MlpGeneratorConfig {
    pub shape: ImageShape,
    /// Dimensions of z.
    pub latent: usize,
    /// Hidden widths, z side first.
    pub hidden: Vec<usize>,
    /// Classes it is conditioned on (0: unconditional).
    #[config(default = 0)]
    pub num_classes: usize,
}

#[derive(Module, Debug)]
pub struct MlpGenerator {
    label: Option<Embedding>,
    layers: Vec<Linear>,
    #[module(skip)]
    shape: ImageShape,
}

impl MlpGeneratorConfig {
    pub fn init(&self, device: &Device) -> MlpGenerator {
        MlpGenerator {
            label: label_embedding(self.num_classes, device),
            layers: layers(
                self.latent + self.num_classes,
                &self.hidden,
                self.shape.len(),
                device,
            ),
            shape: self.shape,
        }
    }
}

impl MlpGenerator {
    pub fn forward(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        let mut h = join_label(z, &self.label, labels); // [batch, latent (+ classes)]
        let last = self.layers.len() - 1;
        for layer in &self.layers[..last] {
            h = relu(layer.forward(h)); // [batch, width]
        }
        let [batch, _] = h.dims();
        let ImageShape {
            channels,
            height,
            width,
        } = self.shape;
        self.layers[last]
            .forward(h) // [batch, c·h·w]
            .tanh()
            .reshape([batch, channels, height, width]) // [batch, c, h, w] in [-1, 1]
    }
}

/// The MLP discriminator: an image (and a class) through LeakyReLU layers of `hidden` widths to
/// one logit.
#[derive(Config, Debug)]
pub(crate) struct MlpDiscriminatorConfig {
    pub shape: ImageShape,
    /// Hidden widths, image side first.
    pub hidden: Vec<usize>,
    /// Classes it is conditioned on (0: unconditional): one more input channel.
    #[config(default = 0)]
    pub num_classes: usize,
}

#[derive(Module, Debug)]
pub struct MlpDiscriminator {
    label: Option<Embedding>,
    layers: Vec<Linear>,
}

impl MlpDiscriminatorConfig {
    pub fn init(&self, device: &Device) -> MlpDiscriminator {
        let channels = self.shape.channels + usize::from(self.num_classes > 0);
        let inputs = channels * self.shape.height * self.shape.width;
        MlpDiscriminator {
            label: label_map(self.num_classes, self.shape, device),
            layers: layers(inputs, &self.hidden, 1, device),
        }
    }
}

impl MlpDiscriminator {
    /// One logit per image, `[batch, 1]`.
    pub fn forward(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Tensor<2> {
        let mut h = append_label_map(images, &self.label, labels).flatten::<2>(1, 3); // [batch, (c + 1)·h·w]
        let last = self.layers.len() - 1;
        for layer in &self.layers[..last] {
            h = leaky_relu(layer.forward(h), 0.2); // [batch, width]
        }
        self.layers[last].forward(h) // [batch, 1]
    }
}
