//! `latentlab train diffusion`: a denoiser (`models/denoiser.rs`) learns the noise of the forward
//! process (`models/diffusion.rs`) on the shared trainer (`train/diffusion.rs`). `--resume RUN`
//! continues a diffusion run exactly, its EMA included. `--latent-of RUN` makes it latent
//! diffusion: the denoiser works on the scaled codes of an autoencoder-kl run.

use super::new_run::NewRun;
use crate::commands::TaskName;
use crate::commands::train::job::TrainingArgs;
use crate::data::Dataset;
use crate::error::Error;
use crate::error::Result;
use crate::models::attention::AttentionConfig;
use crate::models::denoiser::DenoiserConfig;
use crate::models::diffusion::{DiffusionConfig, Schedule, condition_channels};
use crate::run::{DiffusionRun, FirstStage, ModelConfig, ModelSpec, Run};
use std::path::{Path, PathBuf};

/// Options of `latentlab train diffusion`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffusionArgs {
    /// Condition on the class label, with label dropout for classifier-free guidance.
    #[arg(long)]
    pub conditional: bool,
    /// Noise schedule: cosine (Nichol & Dhariwal) or linear β (Ho et al.).
    #[arg(long, value_enum, default_value = "cosine")]
    pub schedule: Schedule,
    /// T, the steps of the forward process.
    #[arg(long, default_value_t = 1000)]
    pub timesteps: usize,
    /// Channels of the U-Net's first level (a multiple of 8); deeper levels have twice as many.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// U-Net down-sampling levels.
    #[arg(long, default_value_t = 2)]
    pub levels: usize,
    /// Self-attention blocks at these map sides, comma-separated (e.g. 8 for the 8x8 level;
    /// the sides are the image's halved per level).
    #[arg(long, value_delimiter = ',', value_name = "SIDES")]
    pub attention: Vec<usize>,
    /// Heads of each attention block.
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Conditional: probability a training label is hidden, so the network also learns p(x).
    #[arg(long, default_value_t = 0.1)]
    pub label_dropout: f64,
    /// Decay of the weights' moving average that is sampled.
    #[arg(long, default_value_t = 0.999)]
    pub ema_decay: f64,
    /// Condition on what an editing job sees instead of generating from noise: superres (SR3:
    /// the small image, blown up) or colorize (Palette: the luma). Its run restores images with
    /// `superres|colorize --with RUN`.
    #[arg(long, value_enum)]
    pub task: Option<TaskName>,
    /// --task superres: the factor.
    #[arg(long, default_value_t = 4)]
    pub scale: usize,
    /// Latent diffusion: denoise the codes of this autoencoder-kl run (`latentlab train
    /// autoencoder-kl`) instead of pixels; samples are decoded through it.
    #[arg(long, value_name = "RUN")]
    pub latent_of: Option<PathBuf>,
    #[command(flatten)]
    pub training: TrainingArgs,
}

/// The config of a new diffusion run.
pub fn config(args: &DiffusionArgs, dataset: &Dataset) -> Result<ModelConfig> {
    let task = args.task.map(|name| name.with_scale(args.scale));
    let first_stage = match &args.latent_of {
        Some(path) => Some(first_stage(path, dataset)?),
        None => None,
    };
    if first_stage.is_some() && task.is_some() {
        return Err(Error::bad_input(
            "--latent-of with --task: an editing model conditions on pixels; drop one",
        ));
    }
    let shape = first_stage
        .as_ref()
        .map_or(dataset.shape(), |stage| stage.autoencoder.latent_shape());
    let denoiser = DenoiserConfig::new(shape)
        .with_width(args.width)
        .with_levels(args.levels)
        .with_num_classes(if args.conditional {
            dataset.num_classes()
        } else {
            0
        })
        .with_condition_channels(task.map_or(0, |t| condition_channels(t, dataset.shape())))
        .with_attention(
            (!args.attention.is_empty())
                .then(|| AttentionConfig::new(args.attention.clone()).with_heads(args.heads)),
        );
    let diffusion = DiffusionConfig::new(denoiser)
        .with_schedule(args.schedule)
        .with_timesteps(args.timesteps)
        .with_label_dropout(args.label_dropout)
        .with_ema_decay(args.ema_decay)
        .with_task(task)
        // x̂₀ is clipped to the codes' measured range, rounded up to a tenth.
        .with_x0_range(
            first_stage
                .as_ref()
                .map(|stage| (stage.scale.max_abs * 10.0).ceil() / 10.0),
        );
    let run = DiffusionRun {
        diffusion,
        class_names: dataset.class_names.clone(),
        first_stage,
    };
    run.validate()?;
    Ok(ModelConfig::Diffusion(run))
}

/// The first stage `--latent-of path` names: a trained autoencoder-kl run of the same data.
fn first_stage(path: &Path, dataset: &Dataset) -> Result<FirstStage> {
    let run = Run::open(path)?;
    let config = match &run.config.model {
        ModelConfig::AutoencoderKl(c) => c,
        other => {
            return Err(Error::bad_input(format!(
                "--latent-of {}: {}; latent diffusion needs an autoencoder-kl run \
                 (latentlab train autoencoder-kl)",
                path.display(),
                other.a_run()
            )));
        }
    };
    run.weights()?;
    let scale = run.latent_scale()?;
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
    Ok(FirstStage {
        source: path.display().to_string(),
        autoencoder: config.autoencoder.clone(),
        scale,
    })
}

impl NewRun for DiffusionArgs {
    fn name(&self) -> &'static str {
        "diffusion"
    }
    fn training(&self) -> &TrainingArgs {
        &self.training
    }
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig> {
        config(self, dataset)
    }
}
