//! `latentlab train gan`: any generator with any discriminator (`models/gan.rs`) on the shared
//! trainer, Algorithm 1 in `train/gan.rs`. `--resume RUN` continues a GAN run exactly.

use std::path::Path;

use crate::commands::run_folder::{DataArgs, TrainingConfig, read_run_config};
use crate::commands::train::{TrainArgs, TrainReport, check_training, prior_noise, run_trainer};
use crate::commands::{RunInfo, default_out};
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::fsutil::{check_out_dir, prepare_out_dir, write_json};
use crate::models::gan::{DiscriminatorArch, GanConfig, GeneratorArch};
use crate::models::patchgan;
use crate::train::Outcome;
use crate::train::gan::GanLearner;
use crate::train::trainer::{self, mix, stream};

/// GAN options of `latentlab train gan`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "GAN (train gan)")]
pub struct GanArgs {
    /// Generator: mlp (Goodfellow et al. 2014) or dcgan (transposed convolutions) [default: dcgan].
    #[arg(long, value_parser = ["mlp", "dcgan"])]
    pub generator: Option<String>,
    /// Discriminator: mlp, dcgan (strided convolutions, one logit) or patchgan (a logit per
    /// patch) [default: dcgan].
    #[arg(long, value_parser = ["mlp", "dcgan", "patchgan"])]
    pub discriminator: Option<String>,
    /// Discriminator steps per generator step (Algorithm 1's k) [default: 1].
    #[arg(long)]
    pub k: Option<usize>,
    /// Generator loss: non-saturating (-log D(G(z))) or minimax (log(1 - D(G(z))))
    /// [default: non-saturating].
    #[arg(long, value_parser = ["non-saturating", "minimax"])]
    pub g_loss: Option<String>,
    /// DCGAN generator width (channels of its last hidden layer) [default: 64].
    #[arg(long)]
    pub ngf: Option<usize>,
    /// Discriminator width (channels of its first layer) [default: 64].
    #[arg(long)]
    pub ndf: Option<usize>,
    /// PatchGAN stride-2 layers [default: 1 below 64 px, else 2].
    #[arg(long)]
    pub patch_layers: Option<usize>,
    /// Condition on the class label: p(x|y).
    #[arg(long)]
    pub conditional: bool,
}

impl GanArgs {
    /// The first GAN option given, for the error a non-GAN model gives.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.generator.is_some(), "--generator"),
            (self.discriminator.is_some(), "--discriminator"),
            (self.k.is_some(), "--k"),
            (self.g_loss.is_some(), "--g-loss"),
            (self.ngf.is_some(), "--ngf"),
            (self.ndf.is_some(), "--ndf"),
            (self.patch_layers.is_some(), "--patch-layers"),
            (self.conditional, "--conditional"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

/// `config.json` of a GAN run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GanRunConfig {
    pub run: RunInfo,
    pub data_args: DataArgs,
    pub gan: GanConfig,
    /// Names of the classes, index order (empty when the data have none).
    #[serde(default)]
    pub class_names: Vec<String>,
    pub training: TrainingConfig,
}

/// Whether `run`'s config.json is a GAN's.
pub fn is_gan_run(run: &Path) -> bool {
    std::fs::read_to_string(run.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<GanRunConfig>(&text).ok())
        .is_some()
}

/// A GAN run's config.
pub fn open_gan_config(run: &Path) -> Result<GanRunConfig> {
    let config: GanRunConfig = read_run_config(run, "a GAN")?;
    config.gan.validate()?;
    Ok(config)
}

/// A GAN run's config and trained networks, loaded onto `device`.
pub fn open_gan_run(
    run: &Path,
    device: &burn::tensor::Device,
) -> Result<(GanRunConfig, crate::models::gan::Gan)> {
    let config = open_gan_config(run)?;
    let weights = run.join("model.safetensors");
    if !weights.is_file() {
        return Err(Error::bad_input(format!(
            "{}: no model.safetensors yet (has an epoch finished?)",
            run.display()
        )));
    }
    let gan = crate::models::load_weights(config.gan.init(device), "GAN", &weights)?;
    Ok((config, gan))
}

fn gan_config(args: &TrainArgs, dataset: &crate::data::Dataset) -> Result<GanConfig> {
    let gan = &args.gan;
    let generator = match gan.generator.as_deref() {
        Some("mlp") => GeneratorArch::Mlp,
        _ => GeneratorArch::Dcgan,
    };
    let discriminator = match gan.discriminator.as_deref() {
        Some("mlp") => DiscriminatorArch::Mlp,
        Some("patchgan") => DiscriminatorArch::Patchgan,
        _ => DiscriminatorArch::Dcgan,
    };
    let mut config = GanConfig::new(dataset.shape(), generator, discriminator)
        .with_latent(args.latent.unwrap_or(100))
        .with_patch_layers(gan.patch_layers);
    if let Some(k) = gan.k {
        config.k = k;
    }
    if let Some(loss) = &gan.g_loss {
        config.g_loss = loss.parse()?;
    }
    if let Some(ngf) = gan.ngf {
        config.ngf = ngf;
    }
    if let Some(ndf) = gan.ndf {
        config.ndf = ndf;
    }
    if let Some(hidden) = &args.hidden {
        config.mlp_hidden = hidden.clone();
    }
    if gan.conditional {
        config.num_classes = dataset.num_classes();
    }
    config.validate()?;
    Ok(config)
}

pub fn run_with(args: &TrainArgs, stop_after_steps: Option<u64>) -> Result<TrainReport> {
    let common = &args.common;
    let (config, dataset, out, resume) = match &args.resume {
        Some(run) => {
            let mut config = open_gan_config(run)?;
            config.training.epochs = args.epochs.unwrap_or(config.training.epochs);
            check_training(
                config.training.epochs,
                config.training.batch_size,
                config.training.lr,
            )?;
            let dataset = config.data_args.load()?;
            (config, dataset, run.clone(), true)
        }
        None => {
            let epochs = args.epochs.unwrap_or(10);
            let lr = args.lr.unwrap_or(2e-4);
            check_training(epochs, args.batch_size, lr)?;
            if args.limit == Some(0) {
                return Err(Error::bad_input("--limit must be at least 1"));
            }
            if args.hflip {
                return Err(Error::bad_input("--hflip is a classifier option"));
            }
            let out = args.out.clone().unwrap_or_else(|| default_out("gan"));
            common.device_choice()?.device()?;
            check_out_dir(&out, common.force)?;
            let data_args = DataArgs::of(common, args.limit);
            let dataset = data_args.load()?;
            let gan = gan_config(args, &dataset)?;
            let mut training = TrainingConfig {
                lr_schedule: args.lr_schedule,
                ..TrainingConfig::adam(epochs, args.batch_size, lr)
            };
            // Radford et al.: β1 = 0.5 steadies the game.
            training.adam_beta_1 = 0.5;
            let config = GanRunConfig {
                run: RunInfo::new("train gan", &dataset, common),
                data_args,
                gan,
                class_names: dataset.class_names.clone(),
                training,
            };
            (config, dataset, out, false)
        }
    };
    let device = config.run.device.parse::<DeviceChoice>()?.device()?;
    let seed = config.run.seed;
    let autodiff = device.clone().autodiff();
    autodiff.seed(mix(seed, stream::INIT, 0));
    let generator = config.gan.init_generator(&autodiff);
    let discriminator = config.gan.init_discriminator(&autodiff);
    let fixed_noise = prior_noise(64, config.gan.latent, mix(seed, stream::SAMPLE, 0), &device);
    let mut learner = GanLearner::new(
        config.gan.clone(),
        generator,
        discriminator,
        config.training.adam_settings(),
        fixed_noise,
    );
    let resumed = if resume {
        Some(trainer::resume(&mut learner, &out)?)
    } else {
        prepare_out_dir(&out, common.force)?;
        None
    };
    write_json(&out.join("config.json"), &config)?;
    if !common.quiet {
        use burn::module::Module;
        let gan = &config.gan;
        crate::train::progress::log(&format!("data: {}", dataset.summary()));
        crate::train::progress::log(&format!(
            "model: gan, {} generator ({} parameters) vs {} discriminator ({} parameters){}; \
             z of {}, k = {}, {} G loss",
            gan.generator,
            learner.generator().num_params(),
            gan.discriminator,
            learner.discriminator().num_params(),
            if gan.conditional() {
                format!(", conditioned on {} classes", gan.num_classes)
            } else {
                String::new()
            },
            gan.latent,
            gan.k,
            match gan.g_loss {
                crate::models::gan::GeneratorLoss::Minimax => "minimax",
                crate::models::gan::GeneratorLoss::NonSaturating => "non-saturating",
            }
        ));
        if gan.discriminator == DiscriminatorArch::Patchgan {
            let layers = gan.patch_layers();
            let grid = patchgan::grid_side(gan.shape.height, layers);
            let patch = patchgan::patch_size(layers);
            crate::train::progress::log(&format!(
                "patchgan: {layers} stride-2 layer(s): a {grid}x{grid} grid of logits, each \
                 seeing a {patch}x{patch} patch of the {}x{} image",
                gan.shape.height, gan.shape.width
            ));
        }
        crate::train::progress::log(&format!(
            "training: {} epochs of batch {}, Adam lr {} (β1 {}, β2 {})",
            config.training.epochs,
            config.training.batch_size,
            config.training.lr,
            config.training.adam_beta_1,
            config.training.adam_beta_2
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
    if let Outcome::Finished { rows } = &outcome
        && let Some(last) = rows.last()
    {
        let parts = crate::train::metrics::format_parts(&last.test);
        crate::train::progress::say(&format!(
            "trained gan ({} G, {} D) for {} epochs: test {parts}; wrote {}",
            config.gan.generator,
            config.gan.discriminator,
            last.epoch,
            out.display()
        ));
    }
    Ok(TrainReport { out, outcome })
}
