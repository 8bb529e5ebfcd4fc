//! `latentlab train ae|vae`: the autoencoder's and the VAE's options, config and learner.

use super::new_run::NewRun;
use crate::commands::train::job::TrainingArgs;
use crate::data::Dataset;
use crate::error::Error;
use crate::error::Result;
use crate::models::LatentModelConfig;
use crate::models::autoencoder::{Arch, AutoencoderConfig, BodyConfig};
use crate::models::likelihood::Likelihood;
use crate::models::two_stage::SecondStageConfig;
use crate::models::vae::VaeConfig;
use crate::run::{ModelConfig, ModelSpec, Run, TwoStageVaeRun};

/// The encoder/decoder options an autoencoder and a VAE share.
#[derive(Debug, Clone, clap::Args)]
pub struct LatentArgs {
    /// Encoder/decoder: mlp (fully connected) or conv (strided convolutions).
    #[arg(long, value_enum, default_value = "mlp")]
    pub arch: Arch,
    /// Dimensions of the latent code z.
    #[arg(long, default_value_t = 20)]
    pub latent: usize,
    /// MLP hidden widths, input side first [default: ae 512,256; vae 400 (pytorch/examples)].
    #[arg(long, value_delimiter = ',', value_name = "W,W")]
    pub hidden: Option<Vec<usize>>,
    /// Conv channels, one stride-2 layer each.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "C,C",
        default_value = "32,64"
    )]
    pub conv_channels: Vec<usize>,
    /// p(x|z): bernoulli (BCE from logits) or gaussian.
    #[arg(long, default_value = "bernoulli", value_parser = ["bernoulli", "gaussian"])]
    pub likelihood: String,
    /// σ of the gaussian likelihood: a number, or `learned`.
    #[arg(long, default_value = "0.1")]
    pub sigma: String,
}

impl LatentArgs {
    fn body(&self, default_hidden: &[usize], dataset: &Dataset) -> BodyConfig {
        BodyConfig::new(self.arch, dataset.shape())
            .with_hidden(self.hidden.clone().unwrap_or(default_hidden.to_vec()))
            .with_channels(self.conv_channels.clone())
    }

    fn likelihood(&self) -> Result<Likelihood> {
        Likelihood::parse(&self.likelihood, &self.sigma)
    }
}

/// Options of `latentlab train ae`.
#[derive(Debug, Clone, clap::Args)]
pub struct AeArgs {
    #[command(flatten)]
    pub model: LatentArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
}

/// Options of `latentlab train vae`.
#[derive(Debug, Clone, clap::Args)]
pub struct VaeArgs {
    #[command(flatten)]
    pub model: LatentArgs,
    /// Weight of the KL term (1 = the ELBO).
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Condition encoder and decoder on the class label: q(z|x, y), p(x|z, y).
    #[arg(long)]
    pub conditional: bool,
    /// A two-stage VAE (Dai & Wipf 2019): fit a second VAE (latent size the first's, --hidden
    /// layers, default 1024,1024,1024) to the codes of this VAE run; sampling decodes through
    /// both.
    #[arg(long, value_name = "RUN")]
    pub latent_of: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub training: TrainingArgs,
}

/// The config of a new autoencoder run.
pub fn ae_config(args: &AeArgs, dataset: &Dataset) -> Result<ModelConfig> {
    let model = LatentModelConfig::Ae(
        AutoencoderConfig::new(args.model.body(&[512, 256], dataset))
            .with_latent(args.model.latent)
            .with_likelihood(args.model.likelihood()?),
    );
    latent_config(model)
}

/// The config of a new VAE run.
pub fn vae_config(args: &VaeArgs, dataset: &Dataset) -> Result<ModelConfig> {
    let model = LatentModelConfig::Vae(
        VaeConfig::new(args.model.body(&[400], dataset))
            .with_latent(args.model.latent)
            .with_likelihood(args.model.likelihood()?)
            .with_beta(args.beta)
            .with_num_classes(args.conditional.then(|| dataset.num_classes())),
    );
    latent_config(model)
}

/// The config of a second-stage VAE on the codes of the VAE run at `path`, trained on the same
/// data.
fn second_stage_config(
    args: &VaeArgs,
    path: &std::path::Path,
    dataset: &Dataset,
) -> Result<ModelConfig> {
    let run = Run::open(path)?;
    let first = match &run.config.model {
        ModelConfig::Vae(c) => c.model.clone(),
        other => {
            return Err(Error::bad_input(format!(
                "--latent-of {}: {}; a two-stage VAE's first stage is a VAE run \
                 (latentlab train vae)",
                path.display(),
                other.a_run()
            )));
        }
    };
    if let LatentModelConfig::Vae(vae) = &first
        && vae.num_classes.is_some()
    {
        return Err(Error::bad_input(format!(
            "--latent-of {}: a conditional VAE; the second stage learns codes without labels",
            path.display()
        )));
    }
    run.weights()?;
    let trained = &run.config.run.dataset;
    if trained.shape != dataset.shape() || trained.name != dataset.name {
        return Err(Error::bad_input(format!(
            "--latent-of {}: trained on {} ({}), this run's data are {} ({})",
            path.display(),
            trained.name,
            trained.shape,
            dataset.name,
            dataset.shape()
        )));
    }
    let mut second = SecondStageConfig::new(first.latent(), first.latent());
    if let Some(hidden) = &args.model.hidden {
        second = second.with_hidden(hidden.clone());
    }
    let config = TwoStageVaeRun {
        second_stage: second,
        first_stage_source: path.display().to_string(),
        first_stage: first,
    };
    config.validate()?;
    Ok(ModelConfig::TwoStageVae(config))
}

fn latent_config(model: LatentModelConfig) -> Result<ModelConfig> {
    model.validate()?;
    Ok(ModelConfig::latent(model))
}

impl NewRun for AeArgs {
    fn name(&self) -> &'static str {
        "ae"
    }
    fn training(&self) -> &TrainingArgs {
        &self.training
    }
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig> {
        ae_config(self, dataset)
    }
}

impl NewRun for VaeArgs {
    fn name(&self) -> &'static str {
        "vae"
    }
    fn training(&self) -> &TrainingArgs {
        &self.training
    }
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig> {
        match &self.latent_of {
            Some(path) => second_stage_config(self, path, dataset),
            None => vae_config(self, dataset),
        }
    }
}
