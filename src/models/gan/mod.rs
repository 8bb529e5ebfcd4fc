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
//! This file holds the GAN's configuration and the pairing of any generator (`mlp.rs`,
//! `dcgan.rs`) with any discriminator (`mlp.rs`, `dcgan.rs`, `patchgan.rs`), each network with
//! its own config; the losses are in `loss.rs`, the layers they share in `blocks.rs`, the
//! training step in `train/gan.rs`.

use burn::prelude::*;

use crate::data::ImageShape;
use crate::error::Error;

pub mod blocks;
pub mod dcgan;
pub mod loss;
pub mod mlp;
pub mod patchgan;

pub use loss::{GeneratorLoss, discriminator_loss, generator_loss, mean_probability};

use dcgan::{DcganDiscriminator, DcganDiscriminatorConfig, DcganGenerator, DcganGeneratorConfig};
use mlp::{MlpDiscriminator, MlpDiscriminatorConfig, MlpGenerator, MlpGeneratorConfig};
use patchgan::{PatchDiscriminator, PatchDiscriminatorConfig};

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
            dcgan::plan(self.shape)?;
        }
        if self.discriminator == DiscriminatorArch::Patchgan {
            patchgan::check(self.shape, self.patch_layers())?;
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
            GeneratorArch::Mlp => Generator::Mlp(
                MlpGeneratorConfig::new(self.shape, self.latent, self.mlp_hidden.clone())
                    .with_num_classes(self.num_classes)
                    .init(device),
            ),
            GeneratorArch::Dcgan => Generator::Dcgan(
                DcganGeneratorConfig::new(self.shape, self.latent, self.ngf)
                    .with_num_classes(self.num_classes)
                    .init(device),
            ),
        }
    }

    pub fn init_discriminator(&self, device: &Device) -> Discriminator {
        match self.discriminator {
            // The MLP discriminator mirrors the generator: its widths reversed.
            DiscriminatorArch::Mlp => Discriminator::Mlp(
                MlpDiscriminatorConfig::new(
                    self.shape,
                    self.mlp_hidden.iter().rev().copied().collect(),
                )
                .with_num_classes(self.num_classes)
                .init(device),
            ),
            DiscriminatorArch::Dcgan => Discriminator::Dcgan(
                DcganDiscriminatorConfig::new(self.shape, self.ndf)
                    .with_num_classes(self.num_classes)
                    .init(device),
            ),
            DiscriminatorArch::Patchgan => Discriminator::Patchgan(
                PatchDiscriminatorConfig::new(self.shape, self.ndf, self.patch_layers())
                    .with_num_classes(self.num_classes)
                    .init(device),
            ),
        }
    }

    pub fn init(&self, device: &Device) -> Gan {
        Gan {
            generator: self.init_generator(device),
            discriminator: self.init_discriminator(device),
        }
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
