//! The fully connected generator and discriminator of the first GAN paper (Goodfellow et al.,
//! 2014): G is z → ReLU layers → Tanh, D is the image flattened → LeakyReLU(0.2) layers → one
//! logit. (The paper's D used maxout units and dropout; LeakyReLU is what later MLP GANs use and
//! trains as well here without the extra width maxout needs.)

use burn::nn::{Embedding, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

use crate::data::ImageShape;
use crate::models::gan::{
    GanConfig, append_label_map, dcgan_weights, join_label, label_embedding, label_map,
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

#[derive(Module, Debug)]
pub struct MlpGenerator {
    label: Option<Embedding>,
    layers: Vec<Linear>,
    #[module(skip)]
    shape: ImageShape,
}

impl MlpGenerator {
    pub fn new(config: &GanConfig, device: &Device) -> Self {
        Self {
            label: label_embedding(config, device),
            layers: layers(
                config.generator_inputs(),
                &config.mlp_hidden,
                config.shape.len(),
                device,
            ),
            shape: config.shape,
        }
    }

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

#[derive(Module, Debug)]
pub struct MlpDiscriminator {
    label: Option<Embedding>,
    layers: Vec<Linear>,
}

impl MlpDiscriminator {
    pub fn new(config: &GanConfig, device: &Device) -> Self {
        let hidden: Vec<usize> = config.mlp_hidden.iter().rev().copied().collect();
        let inputs = config.discriminator_channels() * config.shape.height * config.shape.width;
        Self {
            label: label_map(config, device),
            layers: layers(inputs, &hidden, 1, device),
        }
    }

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
