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
use crate::run::Run;
use crate::sample::{DiffusionSampling, PriorDraws, Trained, label_tensor, to_unit};
use crate::train::latent::{push_images, save_grid_with_columns, save_unit_grid};
use crate::viz::ImageGrid;

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
    pub sampling: crate::commands::SamplingArgs,
}

/// Images one grid may hold: a 64-column PNG of more would be too large to look at, and larger
/// sample sets are `eval-samples --save-images`' job.
pub const MAX_GRID_IMAGES: usize = 4096;

/// Images generated per pass through the network.
const BATCH: usize = 128;

/// Rows of the denoising strip at most, and states shown along each.
const STRIP_ROWS: usize = 8;
const STRIP_STATES: usize = 11;

pub fn run(args: &SampleArgs) -> Result<PathBuf> {
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    if args.n > MAX_GRID_IMAGES {
        return Err(Error::bad_input(format!(
            "--n {}: a sample grid holds at most {MAX_GRID_IMAGES} images; for more samples \
             use eval-samples --n N --save-images DIR",
            args.n
        )));
    }
    let device = args.run.runtime.device.device()?;
    let run = Run::open(&args.run.run)?;
    let model = crate::kinds::generative(&run, &device, &args.sampling.request()?)?;
    // A diffusion model's walk also gives the denoising strip.
    let diffusion = model.as_diffusion();
    let model = model.as_ref();
    device.seed(args.run.runtime.seed);
    let shape = model.image_shape();
    let out = args.run.out_path(&args.out, "samples.png");
    let classes = model.num_classes();
    let mut draws = PriorDraws::new(model.latent(), args.run.runtime.seed);
    // What each image of the grid is drawn from: its z (streamed, or one of a few shared by
    // every class row) and its class.
    let plan = match (&args.class, classes) {
        (Some(_), 0) => {
            return Err(Error::bad_input(format!(
                "--class: {} is not conditional (train gan or vae with --conditional)",
                args.run.run.display()
            )));
        }
        (Some(class), classes) => {
            let names = run.class_names()?;
            let index = class_index(class, &names, classes)?;
            let name = names
                .get(index)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            Plan {
                count: args.n,
                columns: 8,
                draw: Draw::OfClass(index),
                walk: (0..args.n.min(STRIP_ROWS)).collect(),
                what: format!("{} samples of class {index}{name}", args.n),
            }
        }
        (None, 0) => Plan {
            count: args.n,
            columns: 8,
            draw: Draw::Unconditional,
            walk: (0..args.n.min(STRIP_ROWS)).collect(),
            what: format!("{} samples", args.n),
        },
        (None, classes) => {
            // One row per class, one column per z: a row shows what the label controls, a
            // column what z does.
            let columns = args.n.min(16);
            Plan {
                count: classes * columns,
                columns,
                draw: Draw::RowPerClass(draws.next(columns, &device)),
                walk: (0..classes.min(STRIP_ROWS)).map(|c| c * columns).collect(),
                what: format!("{columns} samples of each of {classes} classes, one row per class"),
            }
        }
    };
    let mut grid = ImageGrid::new(shape);
    let mut strip = diffusion.map(|d| Strip::new(d, plan.walk.clone()));
    for start in (0..plan.count).step_by(BATCH) {
        let rows = BATCH.min(plan.count - start);
        let images = start..start + rows;
        let (z, labels): (_, Option<Vec<usize>>) = match &plan.draw {
            Draw::Unconditional => (draws.next(rows, &device), None),
            Draw::OfClass(class) => (draws.next(rows, &device), Some(vec![*class; rows])),
            Draw::RowPerClass(shared) => {
                let picks: Vec<i64> = images.clone().map(|i| (i % plan.columns) as i64).collect();
                let picks = Tensor::from_data(TensorData::new(picks, [rows]), &device);
                let classes = images.map(|i| i / plan.columns).collect();
                (shared.clone().select(0, picks), Some(classes))
            }
        }; // z: [rows, latent]
        let labels = labels.map(|classes| {
            let classes: Vec<u8> = classes.into_iter().map(|c| c as u8).collect();
            label_tensor(&classes, &device)
        });
        let images = match (&diffusion, &mut strip) {
            (Some(diffusion), Some(strip)) => {
                let mut visit = strip.visitor(start, rows, &device);
                diffusion.generate_visiting(z, labels, |_, x| visit(x))
            }
            _ => model.generate(z, labels),
        }; // [rows, c, h, w] in [0, 1]
        push_images(&mut grid, images);
    }
    save_unit_grid(&grid, plan.columns, &out)?;
    crate::ui::say(&format!(
        "{} from N(0, I) through the {}: {}",
        plan.what,
        model.describe(),
        out.display()
    ));
    if let Some(strip) = strip {
        let path = out.with_file_name(format!(
            "{}_denoising.png",
            out.file_stem().unwrap_or_default().to_string_lossy()
        ));
        let whose = match (&args.class, classes) {
            (None, classes) if classes > 0 => format!(
                "the first sample of each of {} classes",
                classes.min(STRIP_ROWS)
            ),
            _ => format!("the first {} of them", plan.walk.len()),
        };
        strip.save(shape, &path)?;
        crate::ui::say(&format!(
            "the walk from x_T (left) to x_0 (right) of {whose}: {}",
            path.display()
        ));
    }
    Ok(out)
}

/// What `sample` draws.
struct Plan {
    /// Images in the grid.
    count: usize,
    columns: usize,
    draw: Draw,
    /// The images whose walk from noise the strip shows, in order.
    walk: Vec<usize>,
    what: String,
}

/// Where each image's z and class come from (one per command: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Draw {
    /// A fresh z each.
    Unconditional,
    /// A fresh z each, all of one class.
    OfClass(usize),
    /// One row per class, one column per z of these `[columns, latent]`: image i is class
    /// i / columns with z i % columns.
    RowPerClass(Tensor<2>),
}

/// A diffusion model's walks from x_T to x₀ for some of the images it draws, gathered while they
/// are drawn: `STRIP_STATES` evenly spaced states of each.
struct Strip {
    rows: Vec<usize>,
    /// The indices of the states shown among those the sampler visits (x_T is 0).
    shown: Vec<usize>,
    /// Per shown state, the walked images' pieces from each batch, in order.
    states: Vec<Vec<Tensor<4>>>,
}

impl Strip {
    fn new(model: &Trained<DiffusionSampling, Denoiser>, rows: Vec<usize>) -> Self {
        let schedule = model.config.config.noise_schedule();
        let visits = 1 + match model.config.sampler {
            Sampler::Ddpm => schedule.steps(),
            Sampler::Ddim { steps, .. } => schedule.timesteps(steps).len(),
        };
        let mut shown: Vec<usize> = (0..STRIP_STATES)
            .map(|j| (j * (visits - 1)).div_ceil(STRIP_STATES - 1))
            .collect();
        shown.dedup();
        let states = vec![Vec::new(); shown.len()];
        Self {
            rows,
            shown,
            states,
        }
    }

    /// What the sampler of the batch of `rows` images from `start` shows each state to.
    fn visitor<'a>(
        &'a mut self,
        start: usize,
        rows: usize,
        device: &Device,
    ) -> impl FnMut(&Tensor<4>) + 'a {
        let picks: Vec<i64> = self
            .rows
            .iter()
            .filter(|&&i| (start..start + rows).contains(&i))
            .map(|&i| (i - start) as i64)
            .collect();
        let picks = (!picks.is_empty()).then(|| {
            Tensor::<1, Int>::from_data(TensorData::new(picks.clone(), [picks.len()]), device)
        });
        let mut index = 0;
        move |x| {
            if let (Some(picks), Some(j)) = (&picks, self.shown.iter().position(|&s| s == index)) {
                let state = x.clone().select(0, picks.clone()).clamp(-1.0, 1.0);
                self.states[j].push(to_unit(state));
            }
            index += 1;
        }
    }

    /// Writes one row per walked image, x_T on the left.
    fn save(self, shape: crate::data::ImageShape, path: &std::path::Path) -> Result<()> {
        let columns = self.states.len();
        let rows = self.rows.len();
        let states: Vec<Tensor<4>> = self
            .states
            .into_iter()
            .map(|pieces| Tensor::cat(pieces, 0)) // [rows, c, h, w]
            .collect();
        let images = Tensor::stack::<5>(states, 1).reshape([
            rows * columns,
            shape.channels,
            shape.height,
            shape.width,
        ]); // [rows · states, c, h, w]
        save_grid_with_columns(images, shape, columns, path)
    }
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
