//! `latentlab sample RUN`: decode draws from the prior N(0, I). A VAE was trained to make these
//! look like data; an autoencoder was not, and its samples show it. A GAN's generator maps the
//! same kind of noise to images; a conditional model's samples are of `--class N`, or one row per
//! class.

use std::path::PathBuf;

use burn::prelude::*;

use crate::commands::run_args::RunArgs;
use crate::error::{Error, Result};
use crate::models::denoiser::Denoiser;
use crate::models::diffusion::Sampler;
use crate::run::{Run, RunConfig};
use crate::sample::{DiffusionSampling, Generative, SamplingArgs, Trained, prior_noise, to_unit};
use crate::train::latent::{save_class_grid, save_grid, save_grid_with_columns};

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
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: &SampleArgs) -> Result<PathBuf> {
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    let device = args.run.runtime.device.device()?;
    let run = Run::open(&args.run.run)?;
    // A diffusion run is loaded once, for its samples and its denoising strip.
    let diffusion = match &run.config {
        RunConfig::Diffusion(_) => Some(run.load_diffusion(&device, &args.sampling)?),
        _ => None,
    };
    let other;
    let model: &dyn Generative = match &diffusion {
        Some(diffusion) => diffusion,
        None => {
            other = run.load_generative(&device, &args.sampling)?;
            other.as_ref()
        }
    };
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
    if let Some(model) = &diffusion {
        let strip = out.with_file_name(format!(
            "{}_denoising.png",
            out.file_stem().unwrap_or_default().to_string_lossy()
        ));
        let labels = match (&args.class, classes) {
            (_, 0) => None,
            (Some(class), classes) => {
                let index = class_index(class, &run.class_names()?, classes)?;
                Some(Tensor::<1, Int>::full([STRIP_ROWS], index as i64, &device))
            }
            (None, classes) => Some(Tensor::<1, Int>::from_data(
                TensorData::new(
                    (0..STRIP_ROWS)
                        .map(|i| (i % classes) as i64)
                        .collect::<Vec<_>>(),
                    [STRIP_ROWS],
                ),
                &device,
            )),
        };
        let z = prior_noise(STRIP_ROWS, model.latent(), args.run.runtime.seed, &device);
        save_denoising_strip(model, z, labels, &strip)?;
        crate::ui::say(&format!(
            "the walk from x_T (left) to x_0 (right) of {STRIP_ROWS} of them: {}",
            strip.display()
        ));
    }
    Ok(out)
}

/// Rows of the denoising strip, and states shown along each.
const STRIP_ROWS: usize = 8;
const STRIP_STATES: usize = 11;

/// Writes `STRIP_ROWS` walks from x_T = `z` to x₀, `STRIP_STATES` evenly spaced states of each.
fn save_denoising_strip(
    model: &Trained<DiffusionSampling, Denoiser>,
    z: Tensor<2>,
    labels: Option<Tensor<1, Int>>,
    path: &std::path::Path,
) -> Result<()> {
    let schedule = model.config.config.noise_schedule();
    let visits = 1 + match model.config.sampler {
        Sampler::Ddpm => schedule.steps(),
        Sampler::Ddim { steps, .. } => schedule.timesteps(steps).len(),
    };
    let shown: Vec<usize> = (0..STRIP_STATES)
        .map(|j| (j * (visits - 1)).div_ceil(STRIP_STATES - 1))
        .collect();
    let mut states = Vec::new();
    let mut index = 0;
    model.generate_visiting(z, labels, |_, x| {
        if shown.contains(&index) && states.len() < shown.len() {
            states.push(to_unit(x.clone().clamp(-1.0, 1.0)));
        }
        index += 1;
    });
    let columns = states.len();
    let shape = model.image_shape();
    let images = Tensor::stack::<5>(states, 1).reshape([
        STRIP_ROWS * columns,
        shape.channels,
        shape.height,
        shape.width,
    ]); // [rows · states, c, h, w]
    save_grid_with_columns(images, shape, columns, path)
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
