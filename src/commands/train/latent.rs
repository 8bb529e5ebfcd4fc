//! `latentlab train ae|vae`: the autoencoder's and the VAE's options, config and learner.

use super::new_run::NewRun;
use crate::commands::train::job::TrainingArgs;
use crate::data::Dataset;
use crate::error::Result;
use crate::models::LatentModelConfig;
use crate::models::autoencoder::{Arch, AutoencoderConfig, BodyConfig};
use crate::models::likelihood::Likelihood;
use crate::models::vae::VaeConfig;
use crate::run::ModelConfig;

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
        vae_config(self, dataset)
    }
}
