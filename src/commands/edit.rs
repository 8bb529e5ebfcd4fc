//! `latentlab inpaint`, `uncrop`, `colorize` and `superres`: restore images with one of the
//! editing methods of `crate::edit`, then write an original / input / edited grid and the edited
//! images; `latentlab eval-edit` scores a method on a test set as JSON. A mask marks missing
//! pixels (white in a mask file); what is seen (visible pixels, the luma, the block means) is
//! kept exactly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::commands::TaskName;
use crate::commands::{CommonArgs, default_out};
use crate::data::{ImageShape, Split, limit_split};
use crate::degrade::{EditJob, MaskKind, Side, Task};
use crate::edit::invert::InversionSettings;
use crate::edit::method::{BuildOptions, Method};
use crate::edit::methods::Editor;
use crate::edit::repaint::RePaintSettings;
use crate::edit::score::{EditScores, pixel_scores};
use crate::error::{Error, Result};
use crate::eval::image_metrics::{psnr_where, ssim};
use crate::eval::predict::classifier_scores;
use crate::fsutil::{check_out_dir, prepare_out_dir, write_json};
use crate::rng::{mix, stream};
use crate::run::Run;
use crate::viz::ImageGrid;

/// The method and its knobs, as every editing command and eval-edit take them.
#[derive(Debug, Clone, clap::Args)]
pub struct MethodArgs {
    /// The method that restores the images: mean, nearest (the closest training image; for
    /// superres, nearest-neighbour upsampling), bicubic (superres), gray (colorize), pca (fitted
    /// here) or the folder `latentlab pca` wrote, a trained autoencoder, VAE or GAN run folder,
    /// whose latent space is searched for the code that best explains what is seen, a
    /// diffusion run (RePaint), or a pix2pix or ESPCN run of the task.
    #[arg(long = "with", value_parser = Method::parse, value_name = "mean|nearest|bicubic|gray|pca|RUN")]
    pub method: Method,
    /// Principal components for `--with pca`, fitted on the training split (with a `latentlab
    /// pca` folder: the first k it kept). Their codes get probabilistic PCA's prior, so more
    /// components keep helping (500 embedded test images, centre hole: 14.6 dB at 20, 15.8 at
    /// 100).
    #[arg(long, default_value_t = 100)]
    pub k: usize,
    /// Adam steps of the latent search for `--with RUN`.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Starting draws per image for a GAN run; the best fit is kept.
    #[arg(long, default_value_t = 4)]
    pub restarts: usize,
    /// A diffusion run: time steps of its walk (RePaint; DDIM for a run trained for the job).
    #[arg(long, default_value_t = RePaintSettings::default().steps)]
    pub repaint_steps: usize,
    /// RePaint: steps walked forward and back at each resampling.
    #[arg(long, default_value_t = RePaintSettings::default().jump)]
    pub jump: usize,
    /// RePaint: times each stretch is walked (1: none).
    #[arg(long, default_value_t = RePaintSettings::default().resamples)]
    pub resamples: usize,
}

impl MethodArgs {
    /// The method, fitted or loaded for images like `train`'s.
    pub fn build(
        &self,
        train: &Split,
        task: Task,
        runtime: &crate::commands::DeviceArgs,
    ) -> Result<Editor> {
        if self.repaint_steps == 0 || self.jump == 0 || self.resamples == 0 {
            return Err(Error::bad_input(
                "--repaint-steps, --jump and --resamples must be at least 1",
            ));
        }
        crate::kinds::editor(
            &self.method,
            &BuildOptions {
                train,
                k: self.k,
                inversion: InversionSettings {
                    steps: self.steps,
                    restarts: self.restarts,
                    seed: mix(runtime.seed, stream::SAMPLE, 0),
                    ..Default::default()
                },
                repaint: RePaintSettings {
                    steps: self.repaint_steps,
                    jump: self.jump,
                    resamples: self.resamples,
                },
                device: runtime.device.device()?,
                task,
            },
        )
    }
}

/// Options every editing command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub method: MethodArgs,
    /// Images to edit: a folder of image files of the data's size [default: --n test images of
    /// --data, the classes in turn].
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// How many images.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Output folder: edits.png (rows: originals, input, edited) and edited/NNNNNN.png
    /// [default: runs/inpaint, runs/uncrop or runs/colorize].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn parse_mask(value: &str) -> std::result::Result<MaskKind, String> {
    match value {
        "center" => Ok(MaskKind::Center),
        "free" => Ok(MaskKind::Free),
        path if Path::new(path).is_file() => Ok(MaskKind::File(path.into())),
        other => Err(format!(
            "'{other}' is neither center, free nor a mask image file"
        )),
    }
}

/// Arguments of `latentlab inpaint`.
#[derive(Debug, Clone, clap::Args)]
pub struct InpaintArgs {
    /// Which pixels are missing (the hole to fill; the rest is kept exactly): center, free, or
    /// a gray image file of the images' size, white where pixels are missing.
    #[arg(long, default_value = "center", value_parser = parse_mask, value_name = "center|free|PATH")]
    pub mask: MaskKind,
    #[command(flatten)]
    pub edit: EditArgs,
}

/// Arguments of `latentlab uncrop`.
#[derive(Debug, Clone, clap::Args)]
pub struct UncropArgs {
    /// The half that is missing and must be made up.
    #[arg(long, value_enum)]
    pub side: Side,
    #[command(flatten)]
    pub edit: EditArgs,
}

/// Arguments of `latentlab colorize`.
#[derive(Debug, Clone, clap::Args)]
pub struct ColorizeArgs {
    #[command(flatten)]
    pub edit: EditArgs,
}

/// Arguments of `latentlab superres`.
#[derive(Debug, Clone, clap::Args)]
pub struct SuperresArgs {
    /// The factor: each input image is first averaged over s×s blocks (area downsampling),
    /// then restored to its size.
    #[arg(long, default_value_t = 2)]
    pub scale: usize,
    #[command(flatten)]
    pub edit: EditArgs,
}

/// What an editing command measured on its images.
#[derive(Debug, Clone)]
pub struct EditReport {
    pub out: PathBuf,
    /// Mean PSNR on the unknown part (the hole; every entry for colorization), dB.
    pub hole_psnr: f64,
    /// Mean SSIM of the whole image.
    pub ssim: f64,
}

pub fn inpaint(args: &InpaintArgs) -> Result<EditReport> {
    let seed = args.edit.common.runtime.seed;
    edit(
        &args.edit,
        EditJob::new(Task::Inpaint, &args.mask, Side::Left, seed),
    )
}

pub fn uncrop(args: &UncropArgs) -> Result<EditReport> {
    let seed = args.edit.common.runtime.seed;
    edit(
        &args.edit,
        EditJob::new(Task::Uncrop, &MaskKind::Center, args.side, seed),
    )
}

pub fn colorize(args: &ColorizeArgs) -> Result<EditReport> {
    let seed = args.edit.common.runtime.seed;
    edit(
        &args.edit,
        EditJob::new(Task::Colorize, &MaskKind::Center, Side::Left, seed),
    )
}

pub fn superres(args: &SuperresArgs) -> Result<EditReport> {
    let seed = args.edit.common.runtime.seed;
    edit(
        &args.edit,
        EditJob::new(
            Task::Superres(args.scale),
            &MaskKind::Center,
            Side::Left,
            seed,
        ),
    )
}

/// Colorization and super-resolution make up every entry: there is no hole.
fn whole_image(task: Task) -> bool {
    matches!(task, Task::Colorize | Task::Superres(_))
}

fn to_bytes(images: &[Vec<f32>], shape: ImageShape) -> Split {
    let bytes: Vec<u8> = images
        .iter()
        .flatten()
        .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    Split::new(shape, bytes, vec![0; images.len()])
}

fn edit(args: &EditArgs, job: EditJob) -> Result<EditReport> {
    let common = &args.common;
    let command = job.name();
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    let out = args.out.clone().unwrap_or_else(|| default_out(command));
    check_out_dir(&out, common.force)?;
    let dataset = common.load_data()?;
    let shape = dataset.shape();
    let job = &job.for_images(shape)?;
    let inputs = match &args.images {
        Some(dir) => {
            let files = crate::data::folder::load_image_files(dir)?;
            if files.shape != shape {
                return Err(Error::bad_input(format!(
                    "{}: images of {}, but the data's are {}",
                    dir.display(),
                    files.shape,
                    shape
                )));
            }
            limit_split(&files, Some(args.n))
        }
        None => dataset.test.select(&dataset.test.spread(args.n)),
    };
    // Checked before the first log line, so that a bad mask is the only line printed.
    let (originals, degradations) = job.degrade(&inputs)?;
    let whole = whole_image(job.task);
    let editor = args
        .method
        .build(&dataset.train, job.task, &common.runtime)?;
    common.log_data(&dataset);
    let out = prepare_out_dir(&out, common.force)?;
    let edited = editor.edit(&originals, &degradations, shape)?;

    let n = originals.len();
    let (mut hole_psnr, mut ssim_sum) = (0.0, 0.0);
    let mut grid = ImageGrid::new(shape);
    for original in &originals {
        grid.push(original.clone());
    }
    for (original, degradation) in originals.iter().zip(&degradations) {
        grid.push(degradation.picture(original, shape));
    }
    for ((original, degradation), result) in originals.iter().zip(&degradations).zip(&edited) {
        hole_psnr += psnr_where(original, result, &degradation.unknown(shape));
        ssim_sum += ssim(original, result, shape);
        grid.push(result.clone());
    }
    let method = args.method.method.label();
    let input_row = match job.task {
        Task::Colorize => "gray",
        Task::Superres(_) => "low-res",
        Task::Inpaint | Task::Uncrop => "masked",
    };
    grid.save_labelled_rows(
        n,
        &["original".into(), input_row.into(), method.clone()],
        &out.join("edits.png"),
    )?;
    crate::data::folder::save_image_files(&to_bytes(&edited, shape), &out.join("edited"))?;
    let report = EditReport {
        out: out.clone(),
        hole_psnr: hole_psnr / n as f64,
        ssim: ssim_sum / n as f64,
    };
    let region = if whole { "" } else { "hole " };
    crate::ui::say(&format!(
        "{command}: {n} images ({}) restored with {method}: {region}PSNR {:.2} dB, SSIM {:.4}; wrote {}",
        job.describe(),
        report.hole_psnr,
        report.ssim,
        out.display()
    ));
    Ok(report)
}

/// Arguments of `latentlab eval-edit`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalEditArgs {
    /// The job: inpaint (--mask), uncrop (--side), colorize or superres (--scale).
    #[arg(long, value_enum)]
    pub task: TaskName,
    /// Super-resolution's factor.
    #[arg(long, default_value_t = 2)]
    pub scale: usize,
    /// Inpainting's missing pixels: center, free (seeded strokes, 25-50 %), or a gray mask file
    /// (white: missing).
    #[arg(long, default_value = "center", value_parser = parse_mask, value_name = "center|free|PATH")]
    pub mask: MaskKind,
    /// Uncropping's missing half.
    #[arg(long, value_enum, default_value = "left")]
    pub side: Side,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Test images scored (the classes in turn; all of them if the split has fewer).
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// A trained classifier run of the same data: class accuracy of the edited images (Palette's
    /// CA) and the Fréchet distance of its features, edited vs original.
    #[arg(long, value_name = "RUN")]
    pub classifier: Option<PathBuf>,
    /// Output JSON [default: runs/eval-edit/<task>-<mask|side>-<method>.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the first K images as PNG files under the folder the JSON file names without
    /// its extension: original/, input/ (what the method saw) and edited/ (the first images are
    /// the same for every --n: the classes in turn).
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub save_edited: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn eval_edit(args: &EvalEditArgs) -> Result<EditScores> {
    let common = &args.common;
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    let task = args.task.with_scale(args.scale);
    let dataset = common.load_data()?;
    let shape = dataset.shape();
    let job = EditJob::new(task, &args.mask, args.side, common.runtime.seed).for_images(shape)?;
    let test = dataset.test.select(&dataset.test.spread(args.n));
    let (originals, degradations) = job.degrade(&test)?;
    let device = common.runtime.device.device()?;
    let classifier = match &args.classifier {
        Some(path) => {
            let run = Run::open(path)?;
            let config = run.classifier_config()?;
            if config.classifier.shape != shape {
                return Err(Error::bad_input(format!(
                    "{}: the classifier takes images of {}, these are {shape}",
                    path.display(),
                    config.classifier.shape
                )));
            }
            Some(run.load_classifier(&device)?)
        }
        None => None,
    };
    let started = Instant::now();
    let editor = args
        .method
        .build(&dataset.train, job.task, &common.runtime)?;
    let seconds_setup = started.elapsed().as_secs_f64();
    common.log_data(&dataset);
    let started = Instant::now();
    let edited = editor.edit(&originals, &degradations, shape)?;
    let seconds = started.elapsed().as_secs_f64();

    let n = originals.len();
    let pixels = pixel_scores(&originals, &edited, &degradations, shape);
    let mut scores = EditScores {
        task,
        degradation: job.variant(),
        method: args.method.method.label(),
        dataset: dataset.name.clone(),
        n,
        psnr_hole: pixels.psnr_hole,
        psnr_whole: pixels.psnr_whole,
        ssim: pixels.ssim,
        l1: pixels.l1,
        classifier_accuracy: None,
        classifier_accuracy_original: None,
        classifier_fd: None,
        classifier: args.classifier.as_ref().map(|p| p.display().to_string()),
        seconds_setup,
        seconds,
        seconds_per_image: seconds / n as f64,
    };
    if let Some(model) = classifier {
        let edited = Split::new(shape, to_bytes(&edited, shape).pixels, test.labels.clone());
        let verdict = classifier_scores(model, &test, &edited, &device, common.runtime.quiet)?;
        scores.classifier_accuracy = Some(verdict.accuracy);
        scores.classifier_accuracy_original = Some(verdict.accuracy_original);
        scores.classifier_fd = Some(verdict.fd);
    }
    let out = args.out.clone().unwrap_or_else(|| {
        default_out("eval-edit").join(format!(
            "{}-{}-{}.json",
            job.name(),
            scores.degradation,
            scores.method
        ))
    });
    write_json(&out, &scores)?;
    if args.save_edited > 0 {
        let keep = args.save_edited.min(n);
        let folder = out.with_extension("");
        let inputs: Vec<Vec<f32>> = (0..keep)
            .map(|i| degradations[i].picture(&originals[i], shape))
            .collect();
        for (name, images) in [
            ("original", &originals[..keep]),
            ("input", &inputs[..]),
            ("edited", &edited[..keep]),
        ] {
            crate::data::folder::save_image_files(&to_bytes(images, shape), &folder.join(name))?;
        }
    }
    crate::ui::say(&format!(
        "{} ({}) with {}: {}PSNR {:.2} dB, SSIM {:.4}{}, {:.1} ms per image; wrote {}",
        job.name(),
        job.describe(),
        scores.method,
        if whole_image(task) { "" } else { "hole " },
        scores.psnr_hole,
        scores.ssim,
        scores
            .classifier_accuracy
            .map(|a| format!(", CA {:.1} %", 100.0 * a))
            .unwrap_or_default(),
        1000.0 * scores.seconds_per_image,
        out.display()
    ));
    Ok(scores)
}
