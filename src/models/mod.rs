//! The neural models of the lecture, one file each. A model file holds the model, its config and
//! its loss; training, sampling and evaluation live elsewhere.

pub mod attention;
pub mod autoencoder;
pub mod autoencoder_kl;
pub mod classifier;
pub mod denoiser;
pub mod diffusion;
pub mod espcn;
pub mod gan;
pub mod inception;
pub mod likelihood;
pub mod pix2pix;
pub(crate) mod resblock;
pub mod two_stage;
pub mod unet;
pub mod vae;

use burn::prelude::*;

use crate::data::ImageShape;
use crate::error::{Error, Result};
use autoencoder::{Autoencoder, AutoencoderConfig};
use vae::{Vae, VaeConfig};

/// Which latent-variable model a run trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The deterministic autoencoder.
    Ae,
    /// The variational autoencoder.
    Vae,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Ae => "ae",
            ModelKind::Vae => "vae",
        })
    }
}

/// A model's whole configuration, as `config.json` stores it: enough to rebuild it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LatentModelConfig {
    Ae(AutoencoderConfig),
    Vae(VaeConfig),
}

impl LatentModelConfig {
    pub fn kind(&self) -> ModelKind {
        match self {
            LatentModelConfig::Ae(_) => ModelKind::Ae,
            LatentModelConfig::Vae(_) => ModelKind::Vae,
        }
    }

    pub fn latent(&self) -> usize {
        match self {
            LatentModelConfig::Ae(c) => c.latent,
            LatentModelConfig::Vae(c) => c.latent,
        }
    }

    pub fn shape(&self) -> ImageShape {
        match self {
            LatentModelConfig::Ae(c) => c.body.shape,
            LatentModelConfig::Vae(c) => c.body.shape,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            LatentModelConfig::Ae(c) => c.validate(),
            LatentModelConfig::Vae(c) => c.validate(),
        }
    }

    pub fn init(&self, device: &Device) -> LatentModel {
        match self {
            LatentModelConfig::Ae(c) => LatentModel::Ae(c.init(device)),
            LatentModelConfig::Vae(c) => LatentModel::Vae(c.init(device)),
        }
    }
}

/// An autoencoder or a VAE: what the trainer trains and the latent-space commands read.
#[derive(Module, Debug)]
pub enum LatentModel {
    Ae(Autoencoder),
    Vae(Vae),
}

/// A loss to minimize and its parts per image, as the metrics name them.
pub struct Objective {
    /// The batch mean of what training minimizes, `[1]`.
    pub loss: Tensor<1>,
    /// Named parts, each the batch mean per image, `[1]` each; "loss" first.
    pub parts: Vec<(&'static str, Tensor<1>)>,
}

impl LatentModel {
    /// Classes a conditional VAE reads (0: unconditional).
    pub fn num_classes(&self) -> usize {
        match self {
            LatentModel::Ae(_) => 0,
            LatentModel::Vae(m) => m.num_classes,
        }
    }

    /// `labels` if the model reads them, else `None`: what its methods take.
    pub fn condition(&self, labels: &Tensor<1, Int>) -> Option<Tensor<1, Int>> {
        (self.num_classes() > 0).then(|| labels.clone())
    }

    /// The code the model gives an image: z for the autoencoder, the mean of q(z|x) (q(z|x, y))
    /// for the VAE. `labels`: see [`LatentModel::condition`].
    pub fn encode_mean(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Tensor<2> {
        match self {
            LatentModel::Ae(m) => m.encode(images),
            LatentModel::Vae(m) => m.encode(images, labels).0,
        }
    }

    /// The mean image the decoder gives for z (and y), in [0, 1], `[batch, c, h, w]`.
    pub fn decode_mean(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        match self {
            LatentModel::Ae(m) => m.head.mean(m.decode(z)),
            LatentModel::Vae(m) => m.head.mean(m.decode(z, labels)),
        }
    }

    /// What training minimizes on `images` (pixels in [0, 1]), with its parts in nats per image:
    /// `recon` for both, `kl` for the VAE, whose `loss` is recon + β·kl.
    pub fn objective(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> Objective {
        match self {
            LatentModel::Ae(m) => {
                let (recon, _) = m.reconstruction_loss(images);
                let recon = recon.mean(); // [1]
                Objective {
                    loss: recon.clone(),
                    parts: vec![("loss", recon.clone()), ("recon", recon)],
                }
            }
            LatentModel::Vae(m) => {
                let (parts, _) = m.loss(images, labels);
                let recon = parts.reconstruction.mean(); // [1]
                let kl = parts.kl.mean(); // [1]
                let loss = recon.clone() + kl.clone() * m.beta; // [1]
                // With β ≠ 1 the minimized loss is not the negative ELBO; report both.
                let mut named = vec![("loss", loss.clone()), ("recon", recon), ("kl", kl)];
                if m.beta != 1.0 {
                    let elbo = named[1].1.clone() + named[2].1.clone();
                    named.push(("neg_elbo", elbo));
                }
                Objective { loss, parts: named }
            }
        }
    }

    /// The likelihood p(x|z) the decoder was trained with.
    pub fn head(&self) -> &likelihood::ReconstructionHead {
        match self {
            LatentModel::Ae(m) => &m.head,
            LatentModel::Vae(m) => &m.head,
        }
    }

    /// Checks that a stored config describes this kind of model.
    pub fn kind(&self) -> ModelKind {
        match self {
            LatentModel::Ae(_) => ModelKind::Ae,
            LatentModel::Vae(_) => ModelKind::Vae,
        }
    }
}

/// Reads a model's weights from a safetensors file written by [`save_safetensors`].
pub(crate) fn load_safetensors(
    config: &LatentModelConfig,
    path: &std::path::Path,
    device: &Device,
) -> Result<LatentModel> {
    load_weights(config.init(device), &config.kind().to_string(), path)
}

/// Loads `path` into `model` (a freshly initialized model of the right config); `what` names the
/// model in errors.
pub(crate) fn load_weights<M: Module>(model: M, what: &str, path: &std::path::Path) -> Result<M> {
    if !path.is_file() {
        return Err(Error::bad_input(format!(
            "{}: no such file",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_weights_from_bytes(model, what, bytes, &path.display().to_string())
}

/// `load_weights` on a file's bytes; `name` names the file in errors.
pub fn load_weights_from_bytes<M: Module>(
    mut model: M,
    what: &str,
    bytes: Vec<u8>,
    name: &str,
) -> Result<M> {
    use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
    crate::checksum::verify_safetensors(&bytes, name)?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .skip_enum_variants(true);
    let result = model.load_from(&mut store).map_err(|e| {
        // burn's message ends in a table of every tensor; its first sentence says what failed.
        let detail: String = e.to_string().chars().take(120).collect();
        Error::bad_input(format!("{name}: not a usable weights file ({detail}…)"))
    })?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(Error::bad_input(format!(
            "{name}: weights do not fit a {} model of this config (missing {:?}, unexpected {:?}, errors {:?})",
            what, result.missing, result.unused, result.errors
        )));
    }
    Ok(model)
}

/// Writes a model's weights as safetensors with PyTorch's names and layouts (linear weights as
/// `[out, in]`), so `safetensors.torch.load_file` reads them into the equivalent torch module.
pub fn save_safetensors<M: Module>(model: &M, path: &std::path::Path) -> Result<()> {
    use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .metadata("producer", concat!("latentlab ", env!("CARGO_PKG_VERSION")));
    model
        .save_into(&mut store)
        .map_err(|e| Error::Internal(format!("serializing weights: {e}")))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| Error::Internal(format!("serializing weights: {e}")))?;
    crate::fsutil::write_atomic(path, &crate::checksum::seal_safetensors(&bytes)?)
}
