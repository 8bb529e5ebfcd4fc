//! `latentlab train ae|vae|gan|classifier|pix2pix|espcn|diffusion|autoencoder-kl`, or `train --resume RUN`: one skeleton for every
//! model. A new run checks its options, loads the data and records a [`RunConfig`]; a resumed one
//! reads it back. Then the model's file makes its learner and the shared trainer runs it.
//!
//! Losses are in nats per image: `recon` is -log p(x|z) summed over pixels, `kl` is
//! KL(q(z|x) ‖ N(0, I)), and the VAE's `loss` is recon + β·kl (the negative ELBO at β = 1).

pub mod autoencoder_kl;
pub mod classifier;
pub mod diffusion;
pub mod gan;
pub mod job;
pub mod latent;
pub mod new_run;
pub mod pix2pix;

pub use crate::train::job::Job;
pub use job::TrainingArgs;
pub use new_run::NewRun;

use std::path::PathBuf;
use std::sync::Arc;

use crate::commands::default_out;
use crate::distributed::{DistributedChoice, World};
use crate::error::{Error, Result};
use crate::fsutil::check_out_dir;
use crate::rng::{mix, stream};
use crate::run::{RunConfig, TrainingConfig};
use crate::train::{Outcome, parallel};
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
    /// With --resume: the ranks of an MPI run, started again by `mpirun -n N`.
    #[arg(long, value_enum, default_value = "none")]
    pub distributed: DistributedChoice,
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
    /// pix2pix for image editing: a U-Net restoring what an image lost, with L1 (+ PatchGAN).
    Pix2pix(pix2pix::Pix2pixArgs),
    /// ESPCN for super-resolution: convolutions on the small image, then a sub-pixel shuffle.
    Espcn(pix2pix::EspcnArgs),
    /// A diffusion model (DDPM): a U-Net learns the noise added to images; loss = ε's squared
    /// error per pixel.
    Diffusion(diffusion::DiffusionArgs),
    /// Latent diffusion's first stage: an autoencoder with a spatial latent (L1 + a small KL).
    AutoencoderKl(autoencoder_kl::AutoencoderKlArgs),
}

impl ModelArgs {
    fn new_run(&self) -> &dyn NewRun {
        match self {
            ModelArgs::Ae(a) => a,
            ModelArgs::Vae(a) => a,
            ModelArgs::Gan(a) => a,
            ModelArgs::Classifier(a) => a,
            ModelArgs::Pix2pix(a) => a,
            ModelArgs::Espcn(a) => a,
            ModelArgs::Diffusion(a) => a,
            ModelArgs::AutoencoderKl(a) => a,
        }
    }
}

/// The optimizer a new run of `model` records.
fn training_config(model: &dyn NewRun) -> Result<TrainingConfig> {
    let args = model.training();
    let lr = args.lr.unwrap_or(model.default_lr());
    let mut config = TrainingConfig {
        lr_schedule: args.lr_schedule,
        ..TrainingConfig::adam(args.epochs, args.batch_size, lr)
    };
    config.devices = match &args.devices {
        Some(list) => parallel::parse_devices(list)?,
        None => Vec::new(),
    };
    if model.adversarial() {
        // Radford et al.: β1 = 0.5 steadies the game (pix2pix keeps it, at a higher rate:
        // see TrainingArgs::lr).
        config.adam_beta_1 = 0.5;
    }
    Ok(config)
}

/// What a finished or interrupted training returns.
pub struct TrainReport {
    pub out: PathBuf,
    pub outcome: Outcome,
}

/// Runs the command.
pub fn run(args: &TrainArgs) -> Result<TrainReport> {
    run_with(args, None)
}

/// Runs the command; `stop_after_steps` interrupts as Ctrl-C would (for tests).
pub fn run_with(args: &TrainArgs, stop_after_steps: Option<u64>) -> Result<TrainReport> {
    let mut job = match (&args.resume, &args.model) {
        (Some(run), _) => {
            let mut job = Job::resume(run, args.epochs, args.quiet)?;
            job.world = Arc::new(World::join(args.distributed)?);
            let (trained, now) = (job.config.training.ranks, job.world.size());
            if trained != now {
                return Err(Error::bad_input(format!(
                    "{}: trained on {trained} rank(s), resumed on {now}; resume it with \
                     `mpirun -n {trained} latentlab train --resume RUN{}`",
                    run.display(),
                    if trained > 1 {
                        " --distributed mpi"
                    } else {
                        ""
                    }
                )));
            }
            job
        }
        (None, Some(model)) => start(model)?,
        (None, None) => {
            return Err(Error::bad_input(
                "name a model (ae, vae, gan, classifier, pix2pix, espcn, diffusion or autoencoder-kl) or --resume RUN",
            ));
        }
    };
    job.stop_after_steps = stop_after_steps;
    let device = job
        .config
        .run
        .device
        .parse::<crate::device::DeviceChoice>()?
        .device()?;
    let autodiff = device.clone().autodiff();
    autodiff.seed(mix(job.seed(), stream::INIT, 0));
    let outcome = crate::kinds::of(&job.config.model).train(&job, &device, &autodiff)?;
    Ok(TrainReport {
        out: job.out,
        outcome,
    })
}

/// The job of a new run of `model`: options checked, data loaded, config recorded.
fn start(model: &ModelArgs) -> Result<Job> {
    let model = model.new_run();
    let args = model.training();
    let common = &args.common;
    let mut training = training_config(model)?;
    training.validate()?;
    let world = Arc::new(World::join(args.distributed)?);
    if world.size() > 1 {
        if !training.devices.is_empty() {
            return Err(Error::bad_input(
                "--distributed mpi with --devices: choose one way to split batches",
            ));
        }
        // Each rank takes --batch-size images of every batch.
        training.batch_size *= world.size();
        training.ranks = world.size();
    }
    if !training.devices.is_empty() {
        let device = args.common.runtime.device;
        if training.devices[0].kind != device {
            return Err(Error::bad_input(format!(
                "--devices {}: the replicas' kind must be --device's ({device}); pass --device {} too",
                args.devices.as_deref().unwrap_or_default(),
                training.devices[0].kind
            )));
        }
    }
    if args.limit == Some(0) {
        return Err(Error::bad_input("--limit must be at least 1"));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(model.name()));
    common.runtime.device.device()?;
    check_out_dir(&out, common.force)?;
    let data_args = common.data_args(args.limit);
    let loading = spinner("loading data", common.runtime.quiet);
    let dataset = data_args.load();
    loading.finish_and_clear();
    let dataset = dataset?;
    let run = common.run_info(&format!("train {}", model.name()), &dataset);
    let model = model.model_config(&dataset)?;
    let config = RunConfig {
        run,
        data_args,
        model,
        training,
    };
    Ok(Job {
        config,
        dataset,
        out,
        resume: false,
        force: common.force,
        quiet: common.runtime.quiet,
        stop_after_steps: None,
        world,
    })
}
