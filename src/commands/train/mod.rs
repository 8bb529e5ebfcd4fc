//! `latentlab train ae|vae|gan|classifier`, or `train --resume RUN`: one skeleton for every
//! model. A new run checks its options, loads the data and records a [`RunConfig`]; a resumed one
//! reads it back. Then the model's file makes its learner and the shared trainer runs it.
//!
//! Losses are in nats per image: `recon` is -log p(x|z) summed over pixels, `kl` is
//! KL(q(z|x) ‖ N(0, I)), and the VAE's `loss` is recon + β·kl (the negative ELBO at β = 1).

pub mod classifier;
pub mod gan;
pub mod latent;

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::commands::{CommonArgs, default_out};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil::{check_out_dir, prepare_out_dir, write_json};
use crate::run::{Run, RunConfig, TrainingConfig};
use crate::train::optim::LrSchedule;
use crate::train::trainer::{self, install_interrupt_handler, mix, stream};
use crate::train::{Learner, Outcome, TrainOptions};
use crate::ui::spinner;

/// Arguments of `latentlab train`: a model to train, or `--resume RUN`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    arg_required_else_help = true
)]
pub struct TrainArgs {
    #[command(subcommand)]
    pub model: Option<ModelArgs>,
    /// Continue the run in this folder from its checkpoint (its config.json gives the model
    /// and data).
    #[arg(long, value_name = "RUN", required = true)]
    pub resume: Option<PathBuf>,
    /// With --resume: epochs in all [default: the run's own]; may raise it.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// No progress bars or log lines; results only.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The model to train, with its options.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ModelArgs {
    /// A deterministic autoencoder: encode to z, decode back.
    Ae(latent::AeArgs),
    /// A variational autoencoder: loss = reconstruction + β·KL, in nats per image.
    Vae(latent::VaeArgs),
    /// A GAN: any generator against any discriminator (Goodfellow et al.'s Algorithm 1).
    Gan(gan::GanArgs),
    /// A small CNN classifier (also the feature network of quick FD scores).
    Classifier(classifier::ClassifierArgs),
}

impl ModelArgs {
    fn kind(&self) -> &'static str {
        match self {
            ModelArgs::Ae(_) => "ae",
            ModelArgs::Vae(_) => "vae",
            ModelArgs::Gan(_) => "gan",
            ModelArgs::Classifier(_) => "classifier",
        }
    }

    fn training(&self) -> &TrainingArgs {
        match self {
            ModelArgs::Ae(a) => &a.training,
            ModelArgs::Vae(a) => &a.training,
            ModelArgs::Gan(a) => &a.training,
            ModelArgs::Classifier(a) => &a.training,
        }
    }

    /// The optimizer a new run of this model records.
    fn training_config(&self) -> TrainingConfig {
        let args = self.training();
        let lr = args.lr.unwrap_or(match self {
            ModelArgs::Gan(_) => 2e-4,
            _ => 1e-3,
        });
        let mut config = TrainingConfig {
            lr_schedule: args.lr_schedule,
            ..TrainingConfig::adam(args.epochs, args.batch_size, lr)
        };
        if let ModelArgs::Gan(_) = self {
            // Radford et al.: β1 = 0.5 steadies the game.
            config.adam_beta_1 = 0.5;
        }
        config
    }
}

/// Options every model's training takes.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainingArgs {
    /// Epochs in all.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Adam learning rate [default: 1e-3 with β1 0.9, β2 0.999, eps 1e-8 as in PyTorch; gan
    /// 2e-4 with β1 0.5, as DCGAN].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule over the run: constant, or cosine decay to 0.
    #[arg(long, value_enum, default_value = "constant")]
    pub lr_schedule: LrSchedule,
    /// Use only the first N images of each split (smoke runs).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output folder [default: runs/<model>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What a finished or interrupted training returns.
pub struct TrainReport {
    pub out: PathBuf,
    pub outcome: Outcome,
}

/// A training about to start: the run's config, its data and folder.
pub struct Job {
    pub config: RunConfig,
    pub dataset: Dataset,
    pub out: PathBuf,
    /// Continue from the folder's checkpoint instead of starting it.
    pub resume: bool,
    pub force: bool,
    pub quiet: bool,
    /// Interrupt as Ctrl-C would after this many steps (tests).
    pub stop_after_steps: Option<u64>,
}

impl Job {
    fn resume(run: &Path, epochs: Option<usize>, quiet: bool) -> Result<Self> {
        let run = Run::open(run)?;
        let mut config = run.config.clone();
        if let Some(epochs) = epochs {
            config.training_mut().epochs = epochs;
        }
        config.training().validate()?;
        let dataset = run.load_data()?;
        Ok(Self {
            config,
            dataset,
            out: run.path,
            resume: true,
            force: false,
            quiet,
            stop_after_steps: None,
        })
    }

    fn start(model: &ModelArgs) -> Result<Self> {
        let args = model.training();
        let common = &args.common;
        let training = model.training_config();
        training.validate()?;
        if args.limit == Some(0) {
            return Err(Error::bad_input("--limit must be at least 1"));
        }
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| default_out(model.kind()));
        common.runtime.device.device()?;
        check_out_dir(&out, common.force)?;
        let data_args = common.data_args(args.limit);
        let loading = spinner("loading data", common.runtime.quiet);
        let dataset = data_args.load();
        loading.finish_and_clear();
        let dataset = dataset?;
        let run = common.run_info(&format!("train {}", model.kind()), &dataset);
        let config = match model {
            ModelArgs::Ae(a) => latent::ae_config(a, &dataset, run, data_args, training)?,
            ModelArgs::Vae(a) => latent::vae_config(a, &dataset, run, data_args, training)?,
            ModelArgs::Gan(a) => gan::config(a, &dataset, run, data_args, training)?,
            ModelArgs::Classifier(a) => classifier::config(a, &dataset, run, data_args, training)?,
        };
        Ok(Self {
            config,
            dataset,
            out,
            resume: false,
            force: common.force,
            quiet: common.runtime.quiet,
            stop_after_steps: None,
        })
    }

    pub fn seed(&self) -> u64 {
        self.config.run().seed
    }

    /// Restores the checkpoint or prepares the folder, writes `config.json`, logs the data and
    /// `description`, and runs the shared trainer on `device` (an autodiff one). A real Ctrl-C
    /// comes back as the exit-130 error carrying the trainer's message; a stop asked for by
    /// `stop_after_steps` (tests) is a result.
    pub fn fit(
        &self,
        learner: &mut dyn Learner,
        description: &[String],
        device: &Device,
    ) -> Result<Outcome> {
        // Restored before anything is logged or written, so a checkpoint that does not fit is
        // the only line the user sees.
        let resumed = if self.resume {
            Some(trainer::resume(learner, &self.out)?)
        } else {
            prepare_out_dir(&self.out, self.force)?;
            None
        };
        write_json(&self.out.join("config.json"), &self.config)?;
        if !self.quiet {
            crate::ui::log(&format!("data: {}", self.dataset.summary()));
            for line in description {
                crate::ui::log(line);
            }
        }
        install_interrupt_handler();
        let training = self.config.training();
        let options = TrainOptions {
            epochs: training.epochs,
            batch_size: training.batch_size,
            seed: self.seed(),
            out: self.out.clone(),
            quiet: self.quiet,
            stop_after_steps: self.stop_after_steps,
        };
        match trainer::train(learner, &self.dataset, &options, device, resumed)? {
            Outcome::Interrupted { message, .. } if self.stop_after_steps.is_none() => {
                Err(Error::Interrupted(message))
            }
            outcome => Ok(outcome),
        }
    }
}

/// Runs the command.
pub fn run(args: &TrainArgs) -> Result<TrainReport> {
    run_with(args, None)
}

/// Runs the command; `stop_after_steps` interrupts as Ctrl-C would (for tests).
pub fn run_with(args: &TrainArgs, stop_after_steps: Option<u64>) -> Result<TrainReport> {
    let mut job = match (&args.resume, &args.model) {
        (Some(run), _) => Job::resume(run, args.epochs, args.quiet)?,
        (None, Some(model)) => Job::start(model)?,
        (None, None) => {
            return Err(Error::bad_input(
                "name a model (ae, vae, gan or classifier) or --resume RUN",
            ));
        }
    };
    job.stop_after_steps = stop_after_steps;
    let device = job
        .config
        .run()
        .device
        .parse::<crate::device::DeviceChoice>()?
        .device()?;
    let autodiff = device.clone().autodiff();
    autodiff.seed(mix(job.seed(), stream::INIT, 0));
    let outcome = match &job.config {
        RunConfig::Ae(config) | RunConfig::Vae(config) => {
            latent::train(config, &job, &device, &autodiff)?
        }
        RunConfig::Gan(config) => gan::train(config, &job, &device, &autodiff)?,
        RunConfig::Classifier(config) => classifier::train(config, &job, &device, &autodiff)?,
    };
    Ok(TrainReport {
        out: job.out,
        outcome,
    })
}
