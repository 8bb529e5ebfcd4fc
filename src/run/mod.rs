//! The run folder as a type: the contract between `train` and every command that reads a run.
//!
//! ```text
//! runs/<name>/
//!   config.json        RunConfig: the header (run, data_args, training) and the model, tagged
//!                      {"kind": "ae"|"vae"|"gan"|"classifier"|"pix2pix"|"diffusion"|
//!                      "autoencoder-kl"|"two-stage-vae", …}
//!   metrics.jsonl      one row per epoch (GANs add per-step rows)
//!   checkpoint/        the latest complete checkpoint: weights, optimizer state, RNG
//!   model.safetensors  final weights, PyTorch's names
//!   latent_scale.json  autoencoder-kl: the spread of its codes (LatentScale)
//! ```
//!
//! [`Run::open`] reads a folder and says what it holds: its [`ModelConfig`], whose [`ModelSpec`]
//! checks it and whose `crate::kinds::Kind` trains, samples and edits with it. Folders written
//! before `kind` existed still open: [`RunConfig::from_json`] recognises them by the field that
//! held the model.

mod header;

pub use header::{DataArgs, DatasetInfo, RunInfo, TrainingConfig};

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::models::autoencoder_kl::{
    AutoencoderKl, AutoencoderKlConfig, LatentScale, ScaledAutoencoder,
};
use crate::models::classifier::{Classifier, ClassifierConfig};
use crate::models::denoiser::Denoiser;
use crate::models::diffusion::DiffusionConfig;
use crate::models::gan::{Gan, GanConfig};
use crate::models::pix2pix::{Pix2pix, Pix2pixConfig};
use crate::models::two_stage::{SecondStage, SecondStageConfig};
use crate::models::{LatentModel, LatentModelConfig, ModelKind, load_safetensors, load_weights};
use crate::sample::{DiffusionSampling, SamplingRequest, Trained};

/// A run folder's `config.json`: one header every run has (what made it, on what data, how it
/// trained) and the model's own config, tagged by `kind`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    pub run: RunInfo,
    pub data_args: DataArgs,
    #[serde(flatten)]
    pub model: ModelConfig,
    pub training: TrainingConfig,
}

/// The model a run trained, as `kind` names it: the one place a new kind of model is
/// registered in config.json.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelConfig {
    Ae(LatentRun),
    Vae(LatentRun),
    Gan(GanRun),
    Classifier(ClassifierRun),
    Pix2pix(Pix2pixRun),
    Diffusion(DiffusionRun),
    #[serde(rename = "autoencoder-kl")]
    AutoencoderKl(AutoencoderKlRun),
    #[serde(rename = "two-stage-vae")]
    TwoStageVae(TwoStageVaeRun),
}

/// An autoencoder or a VAE.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LatentRun {
    pub model: LatentModelConfig,
}

/// A GAN.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GanRun {
    pub gan: GanConfig,
    /// Names of the classes, index order (empty when the data have none).
    #[serde(default)]
    pub class_names: Vec<String>,
}

/// A classifier.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClassifierRun {
    pub classifier: ClassifierConfig,
    /// Names of the classes, index order (empty when the data have none).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Random left-right flips of training images.
    #[serde(default)]
    pub hflip: bool,
}

/// A pix2pix (or ESPCN) editing model.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Pix2pixRun {
    pub pix2pix: Pix2pixConfig,
}

/// A diffusion model.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DiffusionRun {
    pub diffusion: DiffusionConfig,
    /// Names of the classes, index order (empty when the data have none).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Latent diffusion: the first stage whose codes it denoises (`None`: it denoises pixels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_stage: Option<FirstStage>,
}

/// Latent diffusion's first stage as its diffusion run records it. The weights are copied into
/// the run (`first_stage.safetensors`), so it samples without the run they came from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FirstStage {
    /// The autoencoder-kl run they came from, as given to `--latent-of`.
    pub source: String,
    pub autoencoder: AutoencoderKlConfig,
    /// The codes' spread, as that run measured it.
    pub scale: LatentScale,
}

impl FirstStage {
    /// The copy of the first stage's weights in a latent diffusion run.
    pub const FILE: &'static str = "first_stage.safetensors";
}

/// Latent diffusion's first stage: an autoencoder with a spatial latent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AutoencoderKlRun {
    pub autoencoder: AutoencoderKlConfig,
}

/// A two-stage VAE (Dai & Wipf 2019): a second VAE fitted to a trained VAE's codes. Its
/// weights are the second stage's; the first stage's are copied beside them
/// (`first_stage.safetensors`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TwoStageVaeRun {
    pub second_stage: SecondStageConfig,
    /// The VAE run whose codes it learned, as given to `--latent-of`, and its model.
    pub first_stage_source: String,
    pub first_stage: LatentModelConfig,
}

/// What every kind's model config says of itself.
pub trait ModelSpec {
    /// `kind` in config.json.
    fn kind(&self) -> &'static str;
    /// Checks the model's own settings (a hand-edited file may break them).
    fn validate(&self) -> Result<()>;
    /// Names of the classes of its data, index order, when the run recorded them.
    fn class_names(&self) -> Option<&[String]> {
        None
    }
}

impl ModelSpec for LatentRun {
    fn kind(&self) -> &'static str {
        match self.model.kind() {
            ModelKind::Ae => "ae",
            ModelKind::Vae => "vae",
        }
    }
    fn validate(&self) -> Result<()> {
        self.model.validate()
    }
}

impl ModelSpec for GanRun {
    fn kind(&self) -> &'static str {
        "gan"
    }
    fn validate(&self) -> Result<()> {
        self.gan.validate()
    }
    fn class_names(&self) -> Option<&[String]> {
        Some(&self.class_names)
    }
}

impl ModelSpec for ClassifierRun {
    fn kind(&self) -> &'static str {
        "classifier"
    }
    fn validate(&self) -> Result<()> {
        self.classifier.validate()
    }
    fn class_names(&self) -> Option<&[String]> {
        Some(&self.class_names)
    }
}

impl ModelSpec for Pix2pixRun {
    fn kind(&self) -> &'static str {
        "pix2pix"
    }
    fn validate(&self) -> Result<()> {
        self.pix2pix.validate()
    }
}

impl ModelSpec for DiffusionRun {
    fn kind(&self) -> &'static str {
        "diffusion"
    }
    fn validate(&self) -> Result<()> {
        self.diffusion.validate()?;
        if let Some(stage) = &self.first_stage {
            stage.autoencoder.validate()?;
            if stage.autoencoder.latent_shape() != self.diffusion.denoiser.shape {
                return Err(Error::bad_input(format!(
                    "the denoiser works on {} codes, its first stage gives {}",
                    self.diffusion.denoiser.shape,
                    stage.autoencoder.latent_shape()
                )));
            }
            if self.diffusion.task.is_some() {
                return Err(Error::bad_input(
                    "--task conditions a pixel-space diffusion model; drop --latent-of",
                ));
            }
        }
        Ok(())
    }
    fn class_names(&self) -> Option<&[String]> {
        Some(&self.class_names)
    }
}

impl ModelSpec for AutoencoderKlRun {
    fn kind(&self) -> &'static str {
        "autoencoder-kl"
    }
    fn validate(&self) -> Result<()> {
        self.autoencoder.validate()
    }
}

impl ModelSpec for TwoStageVaeRun {
    fn kind(&self) -> &'static str {
        "two-stage-vae"
    }
    fn validate(&self) -> Result<()> {
        self.second_stage.validate()?;
        self.first_stage.validate()?;
        if self.second_stage.dims != self.first_stage.latent() {
            return Err(Error::bad_input(format!(
                "the second stage reads {} dimensions, the first stage's codes have {}",
                self.second_stage.dims,
                self.first_stage.latent()
            )));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// What the model says of itself.
    pub fn spec(&self) -> &dyn ModelSpec {
        match self {
            ModelConfig::Ae(c) | ModelConfig::Vae(c) => c,
            ModelConfig::Gan(c) => c,
            ModelConfig::Classifier(c) => c,
            ModelConfig::Pix2pix(c) => c,
            ModelConfig::Diffusion(c) => c,
            ModelConfig::AutoencoderKl(c) => c,
            ModelConfig::TwoStageVae(c) => c,
        }
    }

    /// An autoencoder's or VAE's, tagged by the model.
    pub fn latent(model: LatentModelConfig) -> Self {
        match model.kind() {
            ModelKind::Ae => ModelConfig::Ae(LatentRun { model }),
            ModelKind::Vae => ModelConfig::Vae(LatentRun { model }),
        }
    }

    /// Checks the model's own settings, and that an autoencoder is tagged `ae` and a VAE `vae`.
    pub fn validate(&self) -> Result<()> {
        if let Some(contradiction) = self.contradiction() {
            return Err(Error::bad_input(contradiction));
        }
        self.spec().validate()
    }

    /// "a gan run", "an autoencoder-kl run": for messages.
    pub fn a_run(&self) -> String {
        let kind = self.spec().kind();
        match kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            true => format!("an {kind} run"),
            false => format!("a {kind} run"),
        }
    }

    /// An autoencoder tagged `vae` or a VAE tagged `ae`: the file contradicts itself.
    fn contradiction(&self) -> Option<String> {
        let (tag, model) = match self {
            ModelConfig::Ae(c) => ("ae", c.model.kind()),
            ModelConfig::Vae(c) => ("vae", c.model.kind()),
            _ => return None,
        };
        (model.to_string() != tag).then(|| format!("kind {tag} but a {model} model"))
    }
}

impl RunConfig {
    /// Parses `config.json`. Files without `kind` (written before it existed) are recognised by
    /// the field naming the model: `model` (ae/vae), `gan`, `classifier`.
    pub fn from_json(text: &str) -> std::result::Result<Self, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        if let Some(fields) = value.as_object_mut()
            && !fields.contains_key("kind")
        {
            let kind = if fields.contains_key("gan") {
                "gan"
            } else if fields.contains_key("classifier") {
                "classifier"
            } else {
                let model: LatentModelConfig =
                    serde_json::from_value(fields.get("model").cloned().unwrap_or_default())?;
                match model.kind() {
                    ModelKind::Ae => "ae",
                    ModelKind::Vae => "vae",
                }
            };
            fields.insert("kind".into(), kind.into());
        }
        let config: RunConfig = serde_json::from_value(value)?;
        match config.model.contradiction() {
            Some(contradiction) => Err(serde::de::Error::custom(contradiction)),
            None => Ok(config),
        }
    }

    /// The model's kind, as `kind` spells it.
    pub fn kind(&self) -> &'static str {
        self.model.spec().kind()
    }

    /// Checks the model's own settings (a hand-edited file may break them).
    pub fn validate(&self) -> Result<()> {
        self.model.validate()
    }
}

/// Whether a `config.json`'s text is the one `latentlab pca` writes (`"model": "pca"`).
fn names_pca(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|config| config.get("model").and_then(|m| m.as_str()) == Some("pca"))
}

/// An opened run folder.
#[derive(Debug, Clone)]
pub struct Run {
    pub path: PathBuf,
    pub config: RunConfig,
}

impl Run {
    /// Opens `path`, with one-line errors for a missing folder, a folder that is not a run and a
    /// config that does not parse.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            return Err(Error::bad_input(format!(
                "{}: no such run folder",
                path.display()
            )));
        }
        let config_path = path.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|_| {
            Error::bad_input(format!(
                "{}: not a run folder (no config.json)",
                path.display()
            ))
        })?;
        let config = RunConfig::from_json(&text).map_err(|e| match names_pca(&text) {
            true => Error::bad_input(format!(
                "{}: a PCA folder (latentlab pca), not a trained model's run; editing takes it \
                 as --with {}",
                path.display(),
                path.display()
            )),
            false => Error::bad_input(format!(
                "{}: not the config of a latentlab run ({})",
                config_path.display(),
                crate::error::json_problem(&e)
            )),
        })?;
        config.validate()?;
        Ok(Self {
            path: path.to_path_buf(),
            config,
        })
    }

    /// Whether `path` is what `latentlab pca` writes: its config names the model `pca`.
    pub fn is_pca(path: &Path) -> bool {
        std::fs::read_to_string(path.join("config.json")).is_ok_and(|text| names_pca(&text))
    }

    /// Whether `path` holds a `config.json` (a run, or a folder that claims to be one).
    pub fn is_run(path: &Path) -> bool {
        path.join("config.json").is_file()
    }

    /// The data the run was trained on, loaded again; checked against what config.json records.
    pub fn load_data(&self) -> Result<Dataset> {
        let dataset = self.config.data_args.load()?;
        let recorded = &self.config.run.dataset;
        if dataset.shape() != recorded.shape
            || dataset.train.len() != recorded.train
            || dataset.test.len() != recorded.test
        {
            return Err(Error::bad_input(format!(
                "{}: trained on {} ({} + {} images of {}), but that data now loads as {}",
                self.path.display(),
                recorded.name,
                recorded.train,
                recorded.test,
                recorded.shape,
                dataset.summary()
            )));
        }
        Ok(dataset)
    }

    /// `model.safetensors`, which exists once an epoch has finished.
    pub fn weights(&self) -> Result<PathBuf> {
        let weights = self.path.join("model.safetensors");
        if !weights.is_file() {
            return Err(Error::bad_input(format!(
                "{}: no model.safetensors yet (has an epoch finished?)",
                self.path.display()
            )));
        }
        Ok(weights)
    }

    /// The config of an autoencoder or VAE run; `command` names what needs an encoder.
    pub fn latent_config(&self) -> Result<&LatentRun> {
        match &self.config.model {
            ModelConfig::Ae(c) | ModelConfig::Vae(c) => Ok(c),
            ModelConfig::Gan(_) => Err(Error::bad_input(format!(
                "{}: a GAN run has no encoder, so this command does not apply; \
                 `latentlab sample` and `eval-samples` read GAN runs",
                self.path.display()
            ))),
            _ => Err(Error::bad_input(format!(
                "{}: a {} run has no latent space; this command reads autoencoder and VAE runs",
                self.path.display(),
                self.config.kind()
            ))),
        }
    }

    /// The trained autoencoder or VAE, on `device`.
    pub fn load_latent(&self, device: &Device) -> Result<LatentModel> {
        let config = self.latent_config()?;
        load_safetensors(&config.model, &self.weights()?, device)
    }

    /// The config of a GAN run.
    pub fn gan_config(&self) -> Result<&GanRun> {
        match &self.config.model {
            ModelConfig::Gan(c) => Ok(c),
            other => Err(self.not_a("a GAN", other)),
        }
    }

    /// The trained GAN, on `device`.
    pub fn load_gan(&self, device: &Device) -> Result<Gan> {
        let config = self.gan_config()?;
        load_weights(config.gan.init(device), "GAN", &self.weights()?)
    }

    /// The config of a classifier run.
    pub fn classifier_config(&self) -> Result<&ClassifierRun> {
        match &self.config.model {
            ModelConfig::Classifier(c) => Ok(c),
            other => Err(self.not_a("a classifier", other)),
        }
    }

    /// The trained classifier, on `device`.
    pub fn load_classifier(&self, device: &Device) -> Result<Classifier> {
        let config = self.classifier_config()?;
        load_weights(
            config.classifier.init(device),
            "classifier",
            &self.weights()?,
        )
    }

    /// The config of a pix2pix run.
    pub fn pix2pix_config(&self) -> Result<&Pix2pixRun> {
        match &self.config.model {
            ModelConfig::Pix2pix(c) => Ok(c),
            other => Err(self.not_a("a pix2pix", other)),
        }
    }

    /// The trained pix2pix model, on `device`.
    pub fn load_pix2pix(&self, device: &Device) -> Result<Pix2pix> {
        let config = &self.pix2pix_config()?.pix2pix;
        let model = Pix2pix {
            generator: config.init_generator(device),
            discriminator: config.init_discriminator(device),
        };
        load_weights(model, "pix2pix", &self.weights()?)
    }

    /// The config of a diffusion run.
    pub fn diffusion_config(&self) -> Result<&DiffusionRun> {
        match &self.config.model {
            ModelConfig::Diffusion(c) => Ok(c),
            other => Err(self.not_a("a diffusion", other)),
        }
    }

    /// The trained diffusion model (its EMA weights) sampled as `sampling` asks, on `device`; a
    /// run trained for an editing task generates nothing from noise.
    pub fn load_diffusion(
        &self,
        device: &Device,
        sampling: &SamplingRequest,
    ) -> Result<Trained<DiffusionSampling, Denoiser>> {
        let config = &self.diffusion_config()?.diffusion;
        if let Some(task) = config.task {
            return Err(Error::bad_input(format!(
                "{}: a diffusion run trained to {} restores images, it does not generate \
                 them from noise; pass it to `{} --with RUN`",
                self.path.display(),
                task.label(),
                task.name()
            )));
        }
        if sampling.guidance.is_some() && config.denoiser.num_classes == 0 {
            return Err(Error::bad_input(format!(
                "{}: --guidance weighs the class against no class, and this diffusion run is \
                 unconditional (train diffusion --conditional)",
                self.path.display()
            )));
        }
        let (sampler, guidance) = (sampling.sampler(), sampling.guidance());
        let model = load_weights(config.denoiser.init(device), "denoiser", &self.weights()?)?;
        Ok(Trained {
            config: DiffusionSampling {
                config: config.clone(),
                sampler,
                guidance,
            },
            model,
        })
    }

    /// The config of an autoencoder-kl run.
    pub fn autoencoder_kl_config(&self) -> Result<&AutoencoderKlRun> {
        match &self.config.model {
            ModelConfig::AutoencoderKl(c) => Ok(c),
            other => Err(self.not_a("an autoencoder-kl", other)),
        }
    }

    /// The trained autoencoder-kl, on `device`.
    pub fn load_autoencoder_kl(&self, device: &Device) -> Result<AutoencoderKl> {
        let config = &self.autoencoder_kl_config()?.autoencoder;
        load_weights(config.init(device), "autoencoder-kl", &self.weights()?)
    }

    /// The spread of an autoencoder-kl run's codes, measured when its weights were written.
    pub fn latent_scale(&self) -> Result<LatentScale> {
        self.autoencoder_kl_config()?;
        let path = self.path.join(LatentScale::FILE);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            Error::bad_input(format!(
                "{}: no {} yet (has an epoch finished?)",
                self.path.display(),
                LatentScale::FILE
            ))
        })?;
        let scale: LatentScale = serde_json::from_str(&text).map_err(|e| {
            Error::bad_input(format!(
                "{}: not a latent scale ({})",
                path.display(),
                crate::error::json_problem(&e)
            ))
        })?;
        if !(scale.scale.is_finite() && scale.scale > 0.0 && scale.max_abs.is_finite()) {
            return Err(Error::bad_input(format!(
                "{}: scale {} and range {} are not usable",
                path.display(),
                scale.scale,
                scale.max_abs
            )));
        }
        Ok(scale)
    }

    /// A latent diffusion run's first stage, from its copy in the run (`None`: a pixel-space
    /// run).
    pub fn load_first_stage(&self, device: &Device) -> Result<Option<ScaledAutoencoder>> {
        let Some(stage) = &self.diffusion_config()?.first_stage else {
            return Ok(None);
        };
        let path = self.path.join(FirstStage::FILE);
        if !path.is_file() {
            return Err(Error::bad_input(format!(
                "{}: no {} yet (has an epoch finished?)",
                self.path.display(),
                FirstStage::FILE
            )));
        }
        let model = load_weights(stage.autoencoder.init(device), "autoencoder-kl", &path)?;
        Ok(Some(ScaledAutoencoder {
            model,
            scale: stage.scale.scale,
        }))
    }

    /// A two-stage VAE's second stage and (from its copy in the run) first stage, on `device`.
    pub fn load_two_stage(&self, device: &Device) -> Result<(SecondStage, LatentModel)> {
        let config = match &self.config.model {
            ModelConfig::TwoStageVae(c) => c,
            other => return Err(self.not_a("a two-stage-vae", other)),
        };
        let second = load_weights(
            config.second_stage.init(device),
            "second-stage VAE",
            &self.weights()?,
        )?;
        let first = load_safetensors(
            &config.first_stage,
            &self.path.join(FirstStage::FILE),
            device,
        )?;
        Ok((second, first))
    }

    /// Names of the classes of the run's data, index order (empty when the data have none).
    pub fn class_names(&self) -> Result<Vec<String>> {
        match self.config.model.spec().class_names() {
            Some(names) => Ok(names.to_vec()),
            None => Ok(self.load_data()?.class_names),
        }
    }

    fn not_a(&self, what: &str, config: &ModelConfig) -> Error {
        Error::bad_input(format!(
            "{}: {}, not {what} run",
            self.path.display(),
            config.a_run()
        ))
    }
}

#[cfg(test)]
mod tests;
