//! `latentlab train ae|vae`: train an autoencoder or a VAE on the shared trainer, or continue a
//! run with `--resume RUN`.

use std::path::PathBuf;

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, StandardNormal};

use crate::commands::run_folder::{DataArgs, LatentRunConfig, RunFolder, TrainingConfig};
use crate::commands::{CommonArgs, RunInfo, default_out};
use crate::data::{BatchConfig, Batches, Dataset, PixelScale};
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::fsutil::{check_out_dir, prepare_out_dir, write_json};
use crate::models::autoencoder::{Arch, AutoencoderConfig, BodyConfig};
use crate::models::likelihood::Likelihood;
use crate::models::vae::VaeConfig;
use crate::models::{LatentModelConfig, ModelKind};
use crate::train::latent::LatentLearner;
use crate::train::metrics::EpochRow;
use crate::train::trainer::{self, install_interrupt_handler, mix, stream};
use crate::train::{Outcome, TrainOptions};

/// Arguments of `latentlab train`.
///
/// Losses are in nats per image: `recon` is -log p(x|z) summed over pixels, `kl` is
/// KL(q(z|x) ‖ N(0, I)), and the VAE's `loss` is recon + β·kl (the negative ELBO at β = 1).
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Model: ae (autoencoder), vae, gan, or classifier (a small CNN). Not needed with --resume.
    #[arg(value_parser = ["ae", "vae", "gan", "classifier"], required_unless_present = "resume")]
    pub model: Option<String>,
    /// Encoder/decoder: mlp (fully connected) or conv (strided convolutions).
    #[arg(long, default_value = "mlp", value_parser = ["mlp", "conv"])]
    pub arch: String,
    /// Dimensions of the latent code z [default: 20; gan 100].
    #[arg(long)]
    pub latent: Option<usize>,
    /// MLP hidden widths, input side first [default: ae 512,256; vae 400 (pytorch/examples);
    /// classifier 256 (one layer)].
    #[arg(long, value_delimiter = ',', value_name = "W,W")]
    pub hidden: Option<Vec<usize>>,
    /// Conv channels, one stride-2 layer each (classifier: one conv + 2x2 max-pool block each)
    /// [default: 32,64; classifier 64,128].
    #[arg(long, value_delimiter = ',', value_name = "C,C")]
    pub conv_channels: Option<Vec<usize>>,
    /// p(x|z): bernoulli (BCE from logits) or gaussian.
    #[arg(long, default_value = "bernoulli", value_parser = ["bernoulli", "gaussian"])]
    pub likelihood: String,
    /// σ of the gaussian likelihood: a number, or `learned`.
    #[arg(long, default_value = "0.1")]
    pub sigma: String,
    /// Weight of the VAE's KL term (1 = the ELBO).
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Epochs in all [default: 10; with --resume, the run's own].
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Adam learning rate [default: 1e-3 with β1 0.9, β2 0.999, eps 1e-8 as in PyTorch; gan
    /// 2e-4 with β1 0.5, as DCGAN].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule over the run: constant, or cosine decay to 0.
    #[arg(long, value_enum, default_value = "constant")]
    pub lr_schedule: crate::train::optim::LrSchedule,
    /// classifier: flip training images left-right at random (keeps Fashion-MNIST's and
    /// CIFAR-10's labels; not for digits).
    #[arg(long)]
    pub hflip: bool,
    /// Use only the first N images of each split (smoke runs).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output folder [default: runs/ae or runs/vae].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its checkpoint (its config.json gives the model
    /// and data; --epochs may raise the total).
    #[arg(long, value_name = "RUN", conflicts_with_all = ["model", "out"])]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    // Last: its help heading applies to every option after it.
    #[command(flatten)]
    pub gan: crate::commands::train_gan::GanArgs,
}

impl TrainArgs {
    /// `--lr`, or the default of an autoencoder, VAE or classifier.
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(1e-3)
    }

    /// `--latent`, or the autoencoder's and VAE's default.
    pub fn latent(&self) -> usize {
        self.latent.unwrap_or(20)
    }
}

/// What a finished or interrupted training returns.
pub struct TrainReport {
    pub out: PathBuf,
    pub outcome: Outcome,
}

fn model_config(args: &TrainArgs, kind: ModelKind, dataset: &Dataset) -> Result<LatentModelConfig> {
    let arch: Arch = args.arch.parse()?;
    let hidden = args.hidden.clone().unwrap_or(match kind {
        ModelKind::Ae => vec![512, 256],
        ModelKind::Vae => vec![400],
    });
    let body = BodyConfig::new(arch, dataset.shape())
        .with_hidden(hidden)
        .with_channels(args.conv_channels.clone().unwrap_or(vec![32, 64]));
    let likelihood = Likelihood::parse(&args.likelihood, &args.sigma)?;
    let config = match kind {
        ModelKind::Ae => LatentModelConfig::Ae(
            AutoencoderConfig::new(body)
                .with_latent(args.latent())
                .with_likelihood(likelihood),
        ),
        ModelKind::Vae => LatentModelConfig::Vae(
            VaeConfig::new(body)
                .with_latent(args.latent())
                .with_likelihood(likelihood)
                .with_beta(args.beta)
                .with_num_classes(args.gan.conditional.then(|| dataset.num_classes())),
        ),
    };
    config.validate()?;
    Ok(config)
}

pub(crate) fn check_training(epochs: usize, batch_size: usize, lr: f64) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::bad_input("--batch-size must be at least 1"));
    }
    if epochs == 0 {
        return Err(Error::bad_input("--epochs must be at least 1"));
    }
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(Error::bad_input(format!(
            "--lr {lr}: must be a positive number"
        )));
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: &TrainArgs) -> Result<TrainReport> {
    run_with(args, None)
}

/// Runs the command; `stop_after_steps` interrupts as Ctrl-C would (for tests).
pub fn run_with(args: &TrainArgs, stop_after_steps: Option<u64>) -> Result<TrainReport> {
    let classifier = match &args.resume {
        Some(run) => crate::commands::train_classifier::is_classifier_run(run),
        None => args.model.as_deref() == Some("classifier"),
    };
    if classifier {
        return crate::commands::train_classifier::run_with(args, stop_after_steps);
    }
    let gan = match &args.resume {
        Some(run) => crate::commands::train_gan::is_gan_run(run),
        None => args.model.as_deref() == Some("gan"),
    };
    if gan {
        return crate::commands::train_gan::run_with(args, stop_after_steps);
    }
    let common = &args.common;
    let (config, dataset, out, resume) = match &args.resume {
        Some(run) => {
            let folder = RunFolder::open(run)?;
            let mut config = folder.config.clone();
            config.training.epochs = args.epochs.unwrap_or(config.training.epochs);
            check_training(
                config.training.epochs,
                config.training.batch_size,
                config.training.lr,
            )?;
            let dataset = folder.load_data()?;
            (config, dataset, run.clone(), true)
        }
        None => {
            let kind = match args.model.as_deref() {
                Some("ae") => ModelKind::Ae,
                Some("vae") => ModelKind::Vae,
                _ => return Err(Error::bad_input("name a model: ae or vae")),
            };
            if args.hflip {
                return Err(Error::bad_input("--hflip is a classifier option"));
            }
            if let Some(option) = args.gan.first_given()
                && !(option == "--conditional" && kind == ModelKind::Vae)
            {
                return Err(Error::bad_input(format!(
                    "{option} is a gan option{}",
                    if option == "--conditional" {
                        " (and a vae one: a conditional VAE)"
                    } else {
                        ""
                    }
                )));
            }
            let epochs = args.epochs.unwrap_or(10);
            check_training(epochs, args.batch_size, args.lr())?;
            if args.limit == Some(0) {
                return Err(Error::bad_input("--limit must be at least 1"));
            }
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| default_out(&kind.to_string()));
            common.device_choice()?.device()?;
            check_out_dir(&out, common.force)?;
            let data_args = DataArgs::of(common, args.limit);
            let mut dataset = common.load_data()?;
            dataset.train = trainer::limit_split(&dataset.train, args.limit);
            dataset.test = trainer::limit_split(&dataset.test, args.limit);
            let model = model_config(args, kind, &dataset)?;
            let config = LatentRunConfig {
                run: RunInfo::new(&format!("train {kind}"), &dataset, common),
                data_args,
                model,
                training: TrainingConfig {
                    lr_schedule: args.lr_schedule,
                    ..TrainingConfig::adam(epochs, args.batch_size, args.lr())
                },
            };
            (config, dataset, out, false)
        }
    };
    let device_choice: DeviceChoice = config.run.device.parse()?;
    let device = device_choice.device()?;

    let seed = config.run.seed;
    let autodiff = device.clone().autodiff();
    autodiff.seed(mix(seed, stream::INIT, 0));
    let model = config.model.init(&autodiff);
    let shape = dataset.shape();
    let fixed_noise = prior_noise(
        64,
        config.model.latent(),
        mix(seed, stream::SAMPLE, 0),
        &device,
    );
    let fixed = Batches::new(
        &dataset.test,
        BatchConfig {
            batch_size: 32,
            shuffle_seed: None,
            drop_last: false,
            scale: PixelScale::ZeroOne,
        },
        &device,
    )
    .next()
    .ok_or_else(|| Error::bad_input("the test split is empty"))?;
    let adam = config.training.adam_settings();
    let mut learner =
        LatentLearner::new(model, adam, shape, fixed_noise, fixed.images, fixed.labels);
    // Restored before anything is logged or written, so a checkpoint that does not fit is the
    // only line the user sees.
    let resumed = if resume {
        Some(trainer::resume(&mut learner, &out)?)
    } else {
        prepare_out_dir(&out, common.force)?;
        None
    };
    write_json(&out.join("config.json"), &config)?;
    if !common.quiet {
        crate::train::progress::log(&format!("data: {}", dataset.summary()));
        crate::train::progress::log(&format!(
            "model: {} {} ({} parameters), latent {}; {} epochs of batch {}, Adam lr {}",
            config.model.kind(),
            arch_name(&config.model),
            learner.model().num_params(),
            config.model.latent(),
            config.training.epochs,
            config.training.batch_size,
            config.training.lr
        ));
    }
    let outcome = run_trainer(
        &mut learner,
        &dataset,
        &config.training,
        seed,
        &out,
        common.quiet,
        &autodiff,
        resumed,
        stop_after_steps,
    )?;
    match &outcome {
        Outcome::Finished { rows } => {
            if let Some(last) = rows.last() {
                crate::train::progress::say(&final_line(&config, last, &out));
            }
        }
        Outcome::Interrupted { .. } => {}
    }
    Ok(TrainReport { out, outcome })
}

/// Runs the shared trainer for a train command. A real Ctrl-C comes back as the exit-130 error
/// carrying the trainer's message; a stop asked for by `stop_after_steps` (tests) is a result.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_trainer(
    learner: &mut dyn crate::train::Learner,
    dataset: &Dataset,
    training: &TrainingConfig,
    seed: u64,
    out: &std::path::Path,
    quiet: bool,
    device: &Device,
    resumed: Option<crate::train::checkpoint::TrainState>,
    stop_after_steps: Option<u64>,
) -> Result<Outcome> {
    install_interrupt_handler();
    let options = TrainOptions {
        epochs: training.epochs,
        batch_size: training.batch_size,
        seed,
        out: out.to_path_buf(),
        quiet,
        stop_after_steps,
    };
    match trainer::train(learner, dataset, &options, device, resumed)? {
        Outcome::Interrupted { message, .. } if stop_after_steps.is_none() => {
            Err(Error::Interrupted(message))
        }
        outcome => Ok(outcome),
    }
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

fn final_line(config: &LatentRunConfig, last: &EpochRow, out: &std::path::Path) -> String {
    let parts = crate::train::metrics::format_parts(&last.test);
    format!(
        "trained {} for {} epochs: test {parts} (nats per image; mse per pixel); wrote {}",
        config.model.kind(),
        last.epoch,
        out.display()
    )
}

/// `n` draws from the prior N(0, I) in `latent` dimensions, from a seeded CPU generator so the
/// same seed gives the same points on any device.
pub fn prior_noise(n: usize, latent: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..n * latent)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_data(TensorData::new(values, [n, latent]), device)
}
