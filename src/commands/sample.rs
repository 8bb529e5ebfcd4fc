//! `latentlab sample RUN`: decode draws from the prior N(0, I). A VAE was trained to make these
//! look like data; an autoencoder was not, and its samples show it. A GAN's generator maps the
//! same kind of noise to images; a conditional model's samples are of `--class N`, or one row per
//! class.

use std::path::PathBuf;

use burn::prelude::*;

use crate::commands::run_args::RunArgs;
use crate::error::{Error, Result};
use crate::run::Run;
use crate::sample::prior_noise;
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
    let device = args.run.runtime.device.device()?;
    let run = Run::open(&args.run.run)?;
    let model = run.load_generative(&device)?;
    device.seed(args.run.runtime.seed);
    let shape = model.image_shape();
    let z = prior_noise(args.n, model.latent(), args.run.runtime.seed, &device); // [n, latent]
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
            let names = run.class_names()?;
            let index = class_index(class, &names, classes)?;
            let labels = Tensor::<1, Int>::full([args.n], index as i64, &device);
            save_grid(model.generate(z, Some(labels)), shape, &out)?;
            let name = names
                .get(index)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            format!("{} samples of class {index}{name}", args.n)
        }
        (None, 0) => {
            save_grid(model.generate(z, None), shape, &out)?; // [n, c, h, w]
            format!("{} samples", args.n)
        }
        (None, classes) => {
            let columns = args.n.min(16);
            save_class_grid(
                |z, y| model.generate(z, Some(y)),
                z.narrow(0, 0, columns),
                classes,
                shape,
                &out,
            )?;
            format!("{columns} samples of each of {classes} classes, one row per class")
        }
    };
    crate::ui::say(&format!(
        "{what} from N(0, I) through the {}: {}",
        model.describe(),
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
