//! `latentlab sample RUN`: decode draws from the prior N(0, I). A VAE was trained to make these
//! look like data; an autoencoder was not, and its samples show it. A GAN's generator maps the
//! same kind of noise to images; a conditional GAN's samples are of `--class N`, or one row per
//! class.

use std::path::PathBuf;

use crate::commands::run_folder::RunArgs;
use crate::commands::train::prior_noise;
use crate::commands::train_gan::{is_gan_run, open_gan_run};
use crate::error::{Error, Result};
use crate::train::gan::to_unit;
use crate::train::latent::{save_class_grid, save_grid};

#[derive(Debug, Clone, clap::Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// How many samples.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Output PNG [default: RUN/samples.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Conditional GAN or VAE: samples of this class (index, or name as the data call it);
    /// without it, one row per class.
    #[arg(long, value_name = "N")]
    pub class: Option<String>,
}

pub fn run(args: &SampleArgs) -> Result<PathBuf> {
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    if is_gan_run(&args.run.run) {
        return sample_gan(args);
    }
    let (folder, model, device) = args.run.open()?;
    let config = &folder.config.model;
    let z = prior_noise(args.n, config.latent(), args.run.seed, &device); // [n, latent]
    let out = args.run.out_path(&args.out, "samples.png");
    let classes = model.num_classes();
    let what = match (&args.class, classes) {
        (Some(_), 0) => {
            return Err(Error::bad_input(format!(
                "--class: {} is not conditional (train gan or vae with --conditional)",
                args.run.run.display()
            )));
        }
        (Some(class), classes) => {
            let index = class_index(class, &folder.load_data()?.class_names, classes)?;
            let labels =
                burn::Tensor::<1, burn::tensor::Int>::full([args.n], index as i64, &device);
            save_grid(model.decode_mean(z, Some(labels)), config.shape(), &out)?;
            format!("{} samples of class {index}", args.n)
        }
        (None, 0) => {
            save_grid(model.decode_mean(z, None), config.shape(), &out)?; // [n, c, h, w]
            format!("{} samples", args.n)
        }
        (None, classes) => {
            let columns = args.n.min(16);
            save_class_grid(
                |z, y| model.decode_mean(z, Some(y)),
                z.narrow(0, 0, columns),
                classes,
                config.shape(),
                &out,
            )?;
            format!("{columns} samples of each of {classes} classes, one row per class")
        }
    };
    crate::train::progress::say(&format!(
        "{what} from N(0, I) through the {} decoder: {}",
        config.kind(),
        out.display()
    ));
    Ok(out)
}

/// Parses `--class` as an index or a class name of the run's data.
fn class_index(class: &str, names: &[String], classes: usize) -> Result<usize> {
    let index = class
        .parse::<usize>()
        .ok()
        .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(class)));
    match index {
        Some(i) if i < classes => Ok(i),
        _ => Err(Error::bad_input(format!(
            "--class {class}: expected 0..{} or one of: {}",
            classes - 1,
            names.join(", ")
        ))),
    }
}

fn sample_gan(args: &SampleArgs) -> Result<PathBuf> {
    use burn::prelude::*;
    let device = args
        .run
        .device
        .parse::<crate::device::DeviceChoice>()?
        .device()?;
    let (config, gan) = open_gan_run(&args.run.run, &device)?;
    let gan_config = &config.gan;
    let out = args.run.out_path(&args.out, "samples.png");
    let z = prior_noise(args.n, gan_config.latent, args.run.seed, &device); // [n, latent]
    let what = match (&args.class, gan_config.conditional()) {
        (Some(_), false) => {
            return Err(Error::bad_input(format!(
                "--class: {} is an unconditional GAN (train with --conditional)",
                args.run.run.display()
            )));
        }
        (Some(class), true) => {
            let index = class_index(class, &config.class_names, gan_config.num_classes)?;
            let labels = Tensor::<1, Int>::full([args.n], index as i64, &device);
            let images = to_unit(gan.generator.forward(z, Some(labels)));
            save_grid(images, gan_config.shape, &out)?;
            let name = config
                .class_names
                .get(index)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            format!("{} samples of class {index}{name}", args.n)
        }
        (None, true) => {
            let columns = args.n.min(16);
            save_class_grid(
                |z, y| to_unit(gan.generator.forward(z, Some(y))),
                z.narrow(0, 0, columns),
                gan_config.num_classes,
                gan_config.shape,
                &out,
            )?;
            format!(
                "{columns} samples of each of {} classes, one row per class",
                gan_config.num_classes
            )
        }
        (None, false) => {
            let images = to_unit(gan.generator.forward(z, None));
            save_grid(images, gan_config.shape, &out)?;
            format!("{} samples", args.n)
        }
    };
    crate::train::progress::say(&format!(
        "{what} from the {} generator: {}",
        gan_config.generator,
        out.display()
    ));
    Ok(out)
}
