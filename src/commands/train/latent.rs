//! `latentlab train ae|vae`: the autoencoder's and the VAE's options, config and learner.

use burn::module::Module;

use crate::commands::train::job::{Job, TrainingArgs};
use crate::data::{BatchConfig, Batches, Dataset, PixelScale};
use crate::error::{Error, Result};
use crate::models::LatentModelConfig;
use crate::models::autoencoder::{Arch, AutoencoderConfig, BodyConfig};
use crate::models::likelihood::Likelihood;
use crate::models::vae::VaeConfig;
use crate::rng::{mix, stream};
use crate::run::{LatentRun, ModelConfig};
use crate::sample::prior_noise;
use crate::train::Outcome;
use crate::train::latent::LatentLearner;
use crate::train::metrics::EpochRow;
use crate::train::parallel::BatchSplit;

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

/// Trains an autoencoder or VAE run on `autodiff` (`device` with autodiff, already seeded).
pub fn train(
    config: &LatentRun,
    job: &Job,
    device: &burn::tensor::Device,
    autodiff: &burn::tensor::Device,
) -> Result<Outcome> {
    let seed = job.seed();
    let model = config.model.init(autodiff);
    let fixed_noise = prior_noise(
        64,
        config.model.latent(),
        mix(seed, stream::SAMPLE, 0),
        device,
    );
    let fixed = Batches::new(
        &job.dataset.test,
        BatchConfig::in_order(32, PixelScale::ZeroOne),
        device,
    )
    .next()
    .ok_or_else(|| Error::bad_input("the test split is empty"))?;
    let mut learner = LatentLearner::new(
        model,
        job.config.training.adam_settings(),
        job.dataset.shape(),
        fixed_noise,
        fixed.images,
        fixed.labels,
    )
    .with_split(BatchSplit::for_run(
        &job.config.training.devices,
        job.world.clone(),
    )?);
    let description = format!(
        "model: {} {} ({} parameters), latent {}; {} epochs of batch {}, Adam lr {}",
        config.model.kind(),
        arch_name(&config.model),
        learner.model().num_params(),
        config.model.latent(),
        job.config.training.epochs,
        job.config.training.batch_size,
        job.config.training.lr
    );
    let outcome = job.fit(&mut learner, &[description], autodiff)?;
    if let Outcome::Finished { rows } = &outcome
        && let Some(last) = rows.last()
        && job.world.writes()
    {
        crate::ui::say(&final_line(config, last, &job.out));
    }
    Ok(outcome)
}

fn arch_name(config: &LatentModelConfig) -> String {
    let body = match config {
        LatentModelConfig::Ae(c) => &c.body,
        LatentModelConfig::Vae(c) => &c.body,
    };
    match body.arch {
        Arch::Mlp => format!(
            "mlp {}-{}-{}",
            body.shape.len(),
            body.hidden
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            config.latent()
        ),
        Arch::Conv => format!(
            "conv {}",
            body.channels
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("-")
        ),
    }
}

fn final_line(config: &LatentRun, last: &EpochRow, out: &std::path::Path) -> String {
    let parts = crate::train::metrics::format_parts(&last.test);
    format!(
        "trained {} for {} epochs: test {parts} (nats per image; mse per pixel); wrote {}",
        config.model.kind(),
        last.epoch,
        out.display()
    )
}
