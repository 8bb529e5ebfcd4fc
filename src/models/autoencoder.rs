//! The deep autoencoder (Hinton & Salakhutdinov, 2006): an encoder squeezes an image into a
//! low-dimensional code z, a decoder rebuilds the image from z, and both are trained to make the
//! rebuilt image match the input. With one linear layer each way and squared error it learns what
//! PCA learns; the non-linear layers are what let it beat PCA at the same size of z.
//!
//! The encoder and decoder bodies defined here are also the VAE's (see `vae.rs`): the two models
//! differ only in what sits between them, a point z here, a Gaussian q(z|x) there.
//!
//! Two architectures:
//! - `mlp`: fully connected, 784-512-256-z by default, mirrored in the decoder;
//! - `conv`: 4x4 convolutions with stride 2 halve the image at each layer (28 → 14 → 7), the
//!   decoder's 4x4 transposed convolutions with stride 2 double it back.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::data::ImageShape;
use crate::error::Error;
use crate::models::likelihood::{Likelihood, ReconstructionHead};
use crate::ops::{Activation, FastConv};

/// Fully connected or convolutional bodies.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Mlp,
    Conv,
}

/// The encoder and decoder bodies, shared by the autoencoder and the VAE.
#[derive(Config, Debug)]
pub struct BodyConfig {
    pub arch: Arch,
    pub shape: ImageShape,
    /// Hidden widths of the MLP encoder, input side first; the decoder mirrors them.
    #[config(default = "vec![512, 256]")]
    pub hidden: Vec<usize>,
    /// Channels of the conv encoder, one stride-2 layer each; the decoder mirrors them.
    #[config(default = "vec![32, 64]")]
    pub channels: Vec<usize>,
}

impl BodyConfig {
    /// Checks that the image fits the architecture (conv layers halve the side each time).
    pub fn validate(&self) -> crate::Result<()> {
        match self.arch {
            Arch::Mlp if self.hidden.is_empty() || self.hidden.contains(&0) => Err(
                Error::bad_input("--hidden: the MLP needs at least one positive width"),
            ),
            Arch::Conv => {
                let factor = 1usize << self.channels.len();
                if self.channels.is_empty() || self.channels.contains(&0) {
                    Err(Error::bad_input(
                        "--channels: the conv body needs at least one positive width",
                    ))
                } else if !self.shape.height.is_multiple_of(factor)
                    || !self.shape.width.is_multiple_of(factor)
                {
                    Err(Error::bad_input(format!(
                        "the conv architecture with {} layers needs image sides divisible by {factor}; \
                         these images are {}x{} (use --arch mlp or --image-size)",
                        self.channels.len(),
                        self.shape.height,
                        self.shape.width
                    )))
                } else {
                    Ok(())
                }
            }
            Arch::Mlp => Ok(()),
        }
    }

    /// Width of the encoder's output: what the latent head reads.
    pub fn features(&self) -> usize {
        match self.arch {
            Arch::Mlp => *self.hidden.last().expect("validated"),
            Arch::Conv => {
                let (c, h, w) = self.bottleneck();
                c * h * w
            }
        }
    }

    /// Channels, height and width at the conv bottleneck.
    fn bottleneck(&self) -> (usize, usize, usize) {
        let factor = 1usize << self.channels.len();
        (
            *self.channels.last().expect("validated"),
            self.shape.height / factor,
            self.shape.width / factor,
        )
    }

    pub fn init_encoder(&self, device: &Device) -> Encoder {
        match self.arch {
            Arch::Mlp => {
                let mut widths = vec![self.shape.len()];
                widths.extend(&self.hidden);
                Encoder::Mlp(MlpEncoder {
                    layers: linear_stack(&widths, device),
                })
            }
            Arch::Conv => {
                let mut channels = vec![self.shape.channels];
                channels.extend(&self.channels);
                Encoder::Conv(ConvEncoder {
                    layers: channels
                        .windows(2)
                        .map(|pair| {
                            Conv2dConfig::new([pair[0], pair[1]], [4, 4])
                                .with_stride([2, 2])
                                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                                .init(device)
                        })
                        .collect(),
                })
            }
        }
    }

    /// A decoder from `latent` dimensions to one value per pixel (logits or means).
    pub fn init_decoder(&self, latent: usize, device: &Device) -> Decoder {
        let shape = self.shape;
        match self.arch {
            Arch::Mlp => {
                let mut widths = vec![latent];
                widths.extend(self.hidden.iter().rev());
                widths.push(shape.len());
                Decoder::Mlp(MlpDecoder {
                    layers: linear_stack(&widths, device),
                    shape: [shape.channels, shape.height, shape.width],
                })
            }
            Arch::Conv => {
                let (c, h, w) = self.bottleneck();
                let mut channels: Vec<usize> = self.channels.iter().rev().copied().collect();
                channels.push(shape.channels);
                Decoder::Conv(ConvDecoder {
                    project: LinearConfig::new(latent, c * h * w).init(device),
                    layers: channels
                        .windows(2)
                        .map(|pair| {
                            ConvTranspose2dConfig::new([pair[0], pair[1]], [4, 4])
                                .with_stride([2, 2])
                                .with_padding([1, 1])
                                .init(device)
                        })
                        .collect(),
                    bottleneck: [c, h, w],
                })
            }
        }
    }
}

fn linear_stack(widths: &[usize], device: &Device) -> Vec<Linear> {
    widths
        .windows(2)
        .map(|pair| LinearConfig::new(pair[0], pair[1]).init(device))
        .collect()
}

/// Image → feature vector (the latent head sits on top).
#[derive(Module, Debug)]
pub enum Encoder {
    Mlp(MlpEncoder),
    Conv(ConvEncoder),
}

#[derive(Module, Debug)]
pub struct MlpEncoder {
    layers: Vec<Linear>,
}

#[derive(Module, Debug)]
pub struct ConvEncoder {
    layers: Vec<Conv2d>,
}

impl Encoder {
    /// `[batch, channels, height, width]` → `[batch, features]`, after a ReLU.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Encoder::Mlp(mlp) => {
                let mut h = images.flatten::<2>(1, 3); // [batch, pixels]
                for layer in &mlp.layers {
                    h = relu(layer.forward(h)); // [batch, hidden_i]
                }
                h
            }
            Encoder::Conv(conv) => {
                let mut h = images;
                for layer in &conv.layers {
                    h = layer.forward_fast_relu(h); // [batch, channels_i, side/2^i, side/2^i]
                }
                h.flatten::<2>(1, 3) // [batch, c * h * w]
            }
        }
    }
}

/// z → one value per pixel, before any output non-linearity.
#[derive(Module, Debug)]
pub enum Decoder {
    Mlp(MlpDecoder),
    Conv(ConvDecoder),
}

#[derive(Module, Debug)]
pub struct MlpDecoder {
    layers: Vec<Linear>,
    #[module(skip)]
    shape: [usize; 3],
}

#[derive(Module, Debug)]
pub struct ConvDecoder {
    project: Linear,
    layers: Vec<ConvTranspose2d>,
    #[module(skip)]
    bottleneck: [usize; 3],
}

impl Decoder {
    /// `[batch, latent]` → `[batch, channels, height, width]` (no activation on the last layer).
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let batch = z.dims()[0];
        match self {
            Decoder::Mlp(mlp) => {
                let mut h = z;
                let last = mlp.layers.len() - 1;
                for (i, layer) in mlp.layers.iter().enumerate() {
                    h = layer.forward(h); // [batch, width_i]
                    if i < last {
                        h = relu(h);
                    }
                }
                let [c, height, width] = mlp.shape;
                h.reshape([batch, c, height, width]) // [batch, c, h, w]
            }
            Decoder::Conv(conv) => {
                let [c, height, width] = conv.bottleneck;
                let h = relu(conv.project.forward(z)); // [batch, c * h * w]
                let mut h = h.reshape([batch, c, height, width]); // [batch, 64, 7, 7]
                let last = conv.layers.len() - 1;
                for (i, layer) in conv.layers.iter().enumerate() {
                    // [batch, channels_i, 2·side, 2·side], through a ReLU but the last
                    let activation = if i < last {
                        Activation::Relu
                    } else {
                        Activation::Identity
                    };
                    h = layer.forward_fused(h, activation);
                }
                h
            }
        }
    }
}

/// A deterministic autoencoder.
#[derive(Config, Debug)]
pub struct AutoencoderConfig {
    pub body: BodyConfig,
    /// Dimensions of z.
    #[config(default = 20)]
    pub latent: usize,
    #[config(default = "Likelihood::Bernoulli")]
    pub likelihood: Likelihood,
}

#[derive(Module, Debug)]
pub struct Autoencoder {
    encoder: Encoder,
    to_latent: Linear,
    decoder: Decoder,
    pub head: ReconstructionHead,
}

impl AutoencoderConfig {
    pub fn validate(&self) -> crate::Result<()> {
        self.body.validate()?;
        if self.latent == 0 {
            return Err(Error::bad_input("--latent must be at least 1"));
        }
        self.likelihood.validate()
    }

    pub fn init(&self, device: &Device) -> Autoencoder {
        Autoencoder {
            encoder: self.body.init_encoder(device),
            to_latent: LinearConfig::new(self.body.features(), self.latent).init(device),
            decoder: self.body.init_decoder(self.latent, device),
            head: self.likelihood.init(device),
        }
    }
}

impl Autoencoder {
    /// `[batch, c, h, w]` → z `[batch, latent]`.
    pub fn encode(&self, images: Tensor<4>) -> Tensor<2> {
        let features = self.encoder.forward(images); // [batch, features]
        self.to_latent.forward(features) // [batch, latent]
    }

    /// z → decoder output `[batch, c, h, w]` (logits for a Bernoulli likelihood).
    pub fn decode(&self, z: Tensor<2>) -> Tensor<4> {
        self.decoder.forward(z)
    }

    /// Reconstruction loss per image in nats, `[batch]`, and the decoder output.
    pub fn reconstruction_loss(&self, images: Tensor<4>) -> (Tensor<1>, Tensor<4>) {
        let output = self.decode(self.encode(images.clone())); // [batch, c, h, w]
        (self.head.nll(output.clone(), images), output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn shape(c: usize, side: usize) -> ImageShape {
        ImageShape {
            channels: c,
            height: side,
            width: side,
        }
    }

    #[test]
    fn mlp_and_conv_round_trip_shapes() {
        let device = Device::flex();
        for (arch, s) in [
            (Arch::Mlp, shape(1, 28)),
            (Arch::Conv, shape(1, 28)),
            (Arch::Conv, shape(3, 32)),
        ] {
            let config = AutoencoderConfig::new(BodyConfig::new(arch, s)).with_latent(8);
            config.validate().unwrap();
            let model = config.init(&device);
            let x = Tensor::<4>::random(
                [3, s.channels, s.height, s.width],
                Distribution::Default,
                &device,
            );
            let z = model.encode(x.clone());
            assert_eq!(z.dims(), [3, 8]);
            let (loss, output) = model.reconstruction_loss(x);
            assert_eq!(output.dims(), [3, s.channels, s.height, s.width]);
            assert_eq!(loss.dims(), [3]);
        }
    }

    #[test]
    fn default_mlp_is_784_512_256_z() {
        let model =
            AutoencoderConfig::new(BodyConfig::new(Arch::Mlp, shape(1, 28))).init(&Device::flex());
        let encoder = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 20 + 20;
        let decoder = 20 * 256 + 256 + 256 * 512 + 512 + 512 * 784 + 784;
        assert_eq!(model.num_params(), encoder + decoder);
    }

    #[test]
    fn conv_needs_sides_divisible_by_its_stride() {
        let config = BodyConfig::new(Arch::Conv, shape(1, 30));
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("divisible by 4"), "{message}");
        assert!(BodyConfig::new(Arch::Mlp, shape(1, 30)).validate().is_ok());
    }
}
