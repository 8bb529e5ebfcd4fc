//! Generative adversarial networks (Goodfellow et al., 2014).
//!
//! A generator G maps noise z ~ N(0, I) to an image; a discriminator D maps an image to a logit,
//! the log-odds that it came from the data. They play
//!
//! ```text
//! min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]
//! ```
//!
//! Algorithm 1 of the paper alternates `k` ascent steps on D, each on a fresh minibatch of data
//! and of noise, with one step on G. Early in training D rejects G's samples easily and
//! log(1 - D(G(z))) saturates, so the paper suggests that G ascend log D(G(z)) instead: the
//! non-saturating loss, our default. Both are computed from logits with softplus, never as a
//! sigmoid followed by a log, which underflows to log 0 exactly when D is confident.
//!
//! This file holds the losses, the configuration and the pairing of any generator
//! (`mlp_gan.rs`, `dcgan.rs`) with any discriminator (`mlp_gan.rs`, `dcgan.rs`, `patchgan.rs`);
//! the training step lives in `train/gan.rs`.

use burn::nn::{BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::data::ImageShape;
use crate::error::Error;
use crate::models::dcgan::{DcganDiscriminator, DcganGenerator};
use crate::models::mlp_gan::{MlpDiscriminator, MlpGenerator};
use crate::models::patchgan::PatchDiscriminator;

/// What the generator minimizes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorLoss {
    /// log(1 - D(G(z))), the minimax game as written.
    Minimax,
    /// -log D(G(z)): same fixed point, strong gradients while D wins.
    NonSaturating,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorArch {
    Mlp,
    Dcgan,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DiscriminatorArch {
    Mlp,
    Dcgan,
    Patchgan,
}

impl std::fmt::Display for GeneratorArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mlp => "mlp",
            Self::Dcgan => "dcgan",
        })
    }
}

impl std::fmt::Display for DiscriminatorArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mlp => "mlp",
            Self::Dcgan => "dcgan",
            Self::Patchgan => "patchgan",
        })
    }
}

/// A GAN: which networks, how wide, and the game's settings.
#[derive(Config, Debug)]
pub struct GanConfig {
    pub shape: ImageShape,
    pub generator: GeneratorArch,
    pub discriminator: DiscriminatorArch,
    /// Dimensions of z (DCGAN: 100).
    #[config(default = 100)]
    pub latent: usize,
    /// DCGAN generator width: channels of its last hidden layer.
    #[config(default = 64)]
    pub ngf: usize,
    /// DCGAN and PatchGAN discriminator width: channels of the first layer.
    #[config(default = 64)]
    pub ndf: usize,
    /// Hidden widths of the MLP generator, z side first; the MLP discriminator uses them reversed.
    #[config(default = "vec![256, 512, 1024]")]
    pub mlp_hidden: Vec<usize>,
    /// PatchGAN: stride-2 layers (default 1 below 64 px, else 2).
    #[config(default = "None")]
    pub patch_layers: Option<usize>,
    /// Classes to condition on (p(x|y)); 0 for an unconditional GAN.
    #[config(default = 0)]
    pub num_classes: usize,
    /// Discriminator steps per generator step (Algorithm 1's k).
    #[config(default = 1)]
    pub k: usize,
    #[config(default = "GeneratorLoss::NonSaturating")]
    pub g_loss: GeneratorLoss,
}

impl GanConfig {
    pub fn conditional(&self) -> bool {
        self.num_classes > 0
    }

    pub fn validate(&self) -> crate::Result<()> {
        if self.latent == 0 || self.ngf == 0 || self.ndf == 0 || self.mlp_hidden.contains(&0) {
            return Err(Error::bad_input("GAN widths must be positive"));
        }
        if self.k == 0 {
            return Err(Error::bad_input("--k must be at least 1"));
        }
        if self.num_classes == 1 {
            return Err(Error::bad_input(
                "--conditional needs data with at least two classes",
            ));
        }
        if self.generator == GeneratorArch::Dcgan || self.discriminator == DiscriminatorArch::Dcgan
        {
            crate::models::dcgan::plan(self.shape)?;
        }
        if self.discriminator == DiscriminatorArch::Patchgan {
            crate::models::patchgan::check(self.shape, self.patch_layers())?;
        }
        Ok(())
    }

    /// PatchGAN stride-2 layers: one for small images, two from 64 px.
    pub fn patch_layers(&self) -> usize {
        self.patch_layers
            .unwrap_or(if self.shape.height.min(self.shape.width) >= 64 {
                2
            } else {
                1
            })
    }

    pub fn init_generator(&self, device: &Device) -> Generator {
        match self.generator {
            GeneratorArch::Mlp => Generator::Mlp(MlpGenerator::new(self, device)),
            GeneratorArch::Dcgan => Generator::Dcgan(DcganGenerator::new(self, device)),
        }
    }

    pub fn init_discriminator(&self, device: &Device) -> Discriminator {
        match self.discriminator {
            DiscriminatorArch::Mlp => Discriminator::Mlp(MlpDiscriminator::new(self, device)),
            DiscriminatorArch::Dcgan => Discriminator::Dcgan(DcganDiscriminator::new(self, device)),
            DiscriminatorArch::Patchgan => {
                Discriminator::Patchgan(PatchDiscriminator::new(self, device))
            }
        }
    }

    pub fn init(&self, device: &Device) -> Gan {
        Gan {
            generator: self.init_generator(device),
            discriminator: self.init_discriminator(device),
        }
    }

    /// Channels the discriminator reads: the image's, plus one label map when conditional.
    pub fn discriminator_channels(&self) -> usize {
        self.shape.channels + usize::from(self.conditional())
    }

    /// Inputs of the generator: z, plus a label embedding when conditional.
    pub fn generator_inputs(&self) -> usize {
        self.latent + self.num_classes
    }
}

/// Radford et al.'s initialization: weights from N(0, 0.02).
pub fn dcgan_weights() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// Batch norm with γ from N(1, 0.02) and β = 0 (Radford et al.).
pub fn dcgan_batch_norm(features: usize, device: &Device) -> BatchNorm {
    let mut norm = BatchNormConfig::new(features).init(device);
    norm.gamma = Initializer::Normal {
        mean: 1.0,
        std: 0.02,
    }
    .init([features], device);
    norm
}

/// The label embedding a conditional generator joins to z: one learned vector per class.
pub fn label_embedding(config: &GanConfig, device: &Device) -> Option<Embedding> {
    config.conditional().then(|| {
        EmbeddingConfig::new(config.num_classes, config.num_classes)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            })
            .init(device)
    })
}

/// The projected label map a conditional discriminator reads as one more image channel: one
/// learned h×w map per class.
pub fn label_map(config: &GanConfig, device: &Device) -> Option<Embedding> {
    config.conditional().then(|| {
        EmbeddingConfig::new(config.num_classes, config.shape.height * config.shape.width)
            .with_initializer(dcgan_weights())
            .init(device)
    })
}

/// `[z, embed(y)]`, `[batch, latent + classes]`; z alone when the generator is unconditional.
pub fn join_label(
    z: Tensor<2>,
    embedding: &Option<Embedding>,
    labels: Option<Tensor<1, Int>>,
) -> Tensor<2> {
    match (embedding, labels) {
        (Some(embedding), Some(labels)) => {
            let [batch] = labels.dims();
            let codes = embedding.forward(labels.reshape([batch, 1])); // [batch, 1, classes]
            Tensor::cat(vec![z, codes.flatten::<2>(1, 2)], 1) // [batch, latent + classes]
        }
        (None, _) => z,
        (Some(_), None) => panic!("a conditional generator needs labels"),
    }
}

/// The images with the label's map appended as one more channel, `[batch, c + 1, h, w]`; the
/// images alone when the discriminator is unconditional.
pub fn append_label_map(
    images: Tensor<4>,
    map: &Option<Embedding>,
    labels: Option<Tensor<1, Int>>,
) -> Tensor<4> {
    match (map, labels) {
        (Some(map), Some(labels)) => {
            let [batch, _, height, width] = images.dims();
            let maps = map
                .forward(labels.reshape([batch, 1])) // [batch, 1, h * w]
                .reshape([batch, 1, height, width]); // [batch, 1, h, w]
            Tensor::cat(vec![images, maps], 1) // [batch, c + 1, h, w]
        }
        (None, _) => images,
        (Some(_), None) => panic!("a conditional discriminator needs labels"),
    }
}

/// Any generator: noise (and a label) to images in [-1, 1].
// One per run; burn's Module derive does not see through a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Generator {
    Mlp(MlpGenerator),
    Dcgan(DcganGenerator),
}

impl Generator {
    /// Images in [-1, 1], `[batch, c, h, w]`, from z `[batch, latent]`.
    pub fn forward(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        match self {
            Generator::Mlp(g) => g.forward(z, labels),
            Generator::Dcgan(g) => g.forward(z, labels),
        }
    }
}

/// Any discriminator: images (and a label) to logits, one per image or one per patch.
#[derive(Module, Debug)]
pub enum Discriminator {
    Mlp(MlpDiscriminator),
    Dcgan(DcganDiscriminator),
    Patchgan(PatchDiscriminator),
}

impl Discriminator {
    /// Logits `[batch, patches]` (one patch for the MLP and DCGAN discriminators).
    pub fn forward(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Tensor<2> {
        match self {
            Discriminator::Mlp(d) => d.forward(images, labels),
            Discriminator::Dcgan(d) => d.forward(images, labels),
            Discriminator::Patchgan(d) => d.forward(images, labels).flatten::<2>(1, 3),
        }
    }
}

/// Both networks: what `model.safetensors` holds.
#[derive(Module, Debug)]
pub struct Gan {
    pub generator: Generator,
    pub discriminator: Discriminator,
}

/// softplus(x) = log(1 + eˣ), as max(x, 0) + log1p(e^-|x|): finite for any finite x.
pub fn softplus(x: Tensor<2>) -> Tensor<2> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

/// D's loss, to minimize: -log D(x) - log(1 - D(G(z))), each the mean over images (and patches),
/// in nats. With D = σ(logit): -log σ(a) = softplus(-a) and -log(1 - σ(a)) = softplus(a).
pub fn discriminator_loss(real_logits: Tensor<2>, fake_logits: Tensor<2>) -> Tensor<1> {
    softplus(real_logits.neg()).mean() + softplus(fake_logits).mean() // [1]
}

/// G's loss, to minimize, from D's logits on G's samples: log(1 - D(G(z))) = -softplus(a) for
/// the minimax game, -log D(G(z)) = softplus(-a) for the non-saturating one.
pub fn generator_loss(fake_logits: Tensor<2>, loss: GeneratorLoss) -> Tensor<1> {
    match loss {
        GeneratorLoss::Minimax => softplus(fake_logits).mean().neg(), // [1]
        GeneratorLoss::NonSaturating => softplus(fake_logits.neg()).mean(), // [1]
    }
}

/// Mean D(·) = mean σ(logit): how sure D is that its inputs are real.
pub fn mean_probability(logits: Tensor<2>) -> Tensor<1> {
    burn::tensor::activation::sigmoid(logits).mean()
}

/// The receptive field, in pixels, of a stack of convolutions given as (kernel, stride), input
/// side first: how much of the image one output logit sees.
pub fn receptive_field(layers: &[(usize, usize)]) -> usize {
    layers
        .iter()
        .rev()
        .fold(1, |field, &(kernel, stride)| (field - 1) * stride + kernel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(values: &[f32]) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len(), 1]),
            &Device::flex(),
        )
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    fn sigmoid(a: f64) -> f64 {
        1.0 / (1.0 + (-a).exp())
    }

    #[test]
    fn losses_match_hand_computed_values() {
        // D(x) = σ(2) for the reals, D(G(z)) = σ(-1), σ(0.5) for the fakes.
        let fake = [-1.0f64, 0.5];
        let expected_d =
            -sigmoid(2.0).ln() - ((1.0 - sigmoid(-1.0)).ln() + (1.0 - sigmoid(0.5)).ln()) / 2.0;
        let d = scalar(discriminator_loss(logits(&[2.0]), logits(&[-1.0, 0.5])));
        assert!((d - expected_d).abs() < 1e-6, "{d} vs {expected_d}");

        let ns = scalar(generator_loss(
            logits(&[-1.0, 0.5]),
            GeneratorLoss::NonSaturating,
        ));
        let expected_ns = -(sigmoid(fake[0]).ln() + sigmoid(fake[1]).ln()) / 2.0;
        assert!((ns - expected_ns).abs() < 1e-6, "{ns} vs {expected_ns}");

        let minimax = scalar(generator_loss(logits(&[-1.0, 0.5]), GeneratorLoss::Minimax));
        let expected_minimax =
            ((1.0 - sigmoid(fake[0])).ln() + (1.0 - sigmoid(fake[1])).ln()) / 2.0;
        assert!(
            (minimax - expected_minimax).abs() < 1e-6,
            "{minimax} vs {expected_minimax}"
        );
    }

    #[test]
    fn losses_stay_finite_where_sigmoid_then_log_would_not() {
        // σ(-200) is 0 in f32, so log σ would be -inf; softplus gives 200.
        let d = scalar(discriminator_loss(logits(&[-200.0]), logits(&[200.0])));
        assert!((d - 400.0).abs() < 1e-3, "{d}");
        let g = scalar(generator_loss(
            logits(&[-200.0]),
            GeneratorLoss::NonSaturating,
        ));
        assert!((g - 200.0).abs() < 1e-3, "{g}");
    }

    #[test]
    fn receptive_fields_of_known_stacks() {
        // pix2pix's 70x70 PatchGAN: three 4x4 stride-2 convs, then two 4x4 stride-1 convs.
        assert_eq!(
            receptive_field(&[(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]),
            70
        );
        assert_eq!(receptive_field(&[(3, 1), (3, 1)]), 5);
    }

    #[test]
    fn labels_are_joined_where_the_networks_read_them() {
        let device = Device::flex();
        let shape = ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        let config = GanConfig::new(shape, GeneratorArch::Mlp, DiscriminatorArch::Mlp)
            .with_latent(3)
            .with_num_classes(5);
        let embedding = label_embedding(&config, &device);
        let table: Vec<f32> = embedding
            .as_ref()
            .unwrap()
            .weight
            .val()
            .into_data()
            .iter::<f32>()
            .collect(); // [5, 5]
        let z = Tensor::<2>::zeros([2, 3], &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![4i64, 1], [2]), &device);
        let joined: Vec<f32> = join_label(z, &embedding, Some(labels.clone()))
            .into_data()
            .iter::<f32>()
            .collect(); // [2, 8]
        assert_eq!(&joined[0..3], &[0.0; 3]);
        assert_eq!(&joined[3..8], &table[20..25], "class 4's vector after z");
        assert_eq!(&joined[11..16], &table[5..10], "class 1's vector after z");

        let map = label_map(&config, &device);
        let maps: Vec<f32> = map
            .as_ref()
            .unwrap()
            .weight
            .val()
            .into_data()
            .iter::<f32>()
            .collect(); // [5, 16]
        let images = Tensor::<4>::ones([2, 1, 4, 4], &device);
        let joined = append_label_map(images, &map, Some(labels));
        assert_eq!(joined.dims(), [2, 2, 4, 4]);
        let joined: Vec<f32> = joined.into_data().iter::<f32>().collect();
        assert_eq!(&joined[0..16], &[1.0; 16]);
        assert_eq!(&joined[16..32], &maps[64..80], "class 4's map as channel 2");
        assert_eq!(&joined[48..64], &maps[16..32], "class 1's map as channel 2");
    }
}
