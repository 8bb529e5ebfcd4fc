//! `latentlab inpaint` and `latentlab uncrop`: fill the missing pixels of images with one of the
//! editing methods of `crate::edit`, then write a before / masked / after grid and the edited
//! images. A mask marks missing pixels; visible pixels are kept exactly.

use std::path::{Path, PathBuf};

use crate::commands::{CommonArgs, default_out};
use crate::data::{ImageShape, Split, limit_split};
use crate::edit::invert::InversionSettings;
use crate::edit::method::{BuildOptions, Method};
use crate::edit::{Degradation, Mask, Side};
use crate::error::{Error, Result};
use crate::eval::image_metrics::{psnr_where, ssim};
use crate::fsutil::{check_out_dir, prepare_out_dir};
use crate::rng::{mix, stream};
use crate::viz::ImageGrid;

/// Options every editing command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct EditArgs {
    /// The method that restores the images: mean, nearest, pca (inpaint, uncrop, colorize),
    /// gray (colorize), or a trained autoencoder, VAE or GAN run folder, whose latent space is
    /// searched for the code that best explains what is seen.
    #[arg(long = "with", value_parser = Method::parse, value_name = "mean|nearest|gray|pca|RUN")]
    pub method: Method,
    /// Principal components for `--with pca`, fitted on the training split. Their codes get
    /// probabilistic PCA's prior, so more components keep helping (500 embedded test images,
    /// centre hole: 14.6 dB at 20, 15.8 at 100).
    #[arg(long, default_value_t = 100)]
    pub k: usize,
    /// Adam steps of the latent search for `--with RUN`.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Starting draws per image for a GAN run; the best fit is kept.
    #[arg(long, default_value_t = 4)]
    pub restarts: usize,
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

/// The masks `inpaint` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskKind {
    /// The central square of half the side.
    Center,
    /// Seeded brush strokes covering 25-50 % of each image (--seed).
    Free,
    /// One mask for every image, read from a gray image file (white: missing).
    File(PathBuf),
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

/// What an editing command measured on its images.
#[derive(Debug, Clone)]
pub struct EditReport {
    pub out: PathBuf,
    /// Mean PSNR on the hole, dB.
    pub hole_psnr: f64,
    /// Mean SSIM of the whole image.
    pub ssim: f64,
}

pub fn inpaint(args: &InpaintArgs) -> Result<EditReport> {
    let seed = args.edit.common.runtime.seed;
    // Read once, before anything is written; its size is checked against the data's.
    let file_mask = match &args.mask {
        MaskKind::File(path) => Some(Mask::read(path)?),
        _ => None,
    };
    let mask = |i: usize, shape: ImageShape| {
        Degradation::Mask(match &args.mask {
            MaskKind::Center => Mask::center(shape.height, shape.width),
            MaskKind::Free => {
                Mask::free(shape.height, shape.width, mix(seed, stream::MASK, i as u64))
            }
            MaskKind::File(_) => file_mask.clone().expect("read above"),
        })
    };
    let what = match &args.mask {
        MaskKind::Center => "center mask".to_string(),
        MaskKind::Free => "free-form masks".to_string(),
        MaskKind::File(path) => format!("mask {}", path.display()),
    };
    edit(&args.edit, "inpaint", &what, mask)
}

pub fn uncrop(args: &UncropArgs) -> Result<EditReport> {
    let side = args.side;
    let what = match side {
        Side::Left => "left half missing",
        Side::Right => "right half missing",
        Side::Top => "top half missing",
        Side::Bottom => "bottom half missing",
    };
    edit(&args.edit, "uncrop", what, |_, shape: ImageShape| {
        Degradation::Mask(Mask::uncrop(shape.height, shape.width, side))
    })
}

pub fn colorize(args: &ColorizeArgs) -> Result<EditReport> {
    edit(&args.edit, "colorize", "luma only", |_, _| {
        Degradation::Gray
    })
}

fn to_unit(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&b| b as f32 / 255.0).collect()
}

fn edit(
    args: &EditArgs,
    command: &str,
    what: &str,
    degradation_of: impl Fn(usize, ImageShape) -> Degradation,
) -> Result<EditReport> {
    let common = &args.common;
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    let out = args.out.clone().unwrap_or_else(|| default_out(command));
    check_out_dir(&out, common.force)?;
    let dataset = common.load_data()?;
    let shape = dataset.shape();
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
    let originals: Vec<Vec<f32>> = (0..inputs.len())
        .map(|i| to_unit(inputs.image(i)))
        .collect();
    let degradations: Vec<Degradation> = (0..originals.len())
        .map(|i| degradation_of(i, shape))
        .collect();
    // Checked before the first log line, so that a bad mask is the only line printed.
    for degradation in &degradations {
        degradation.check(shape)?;
    }
    let editor = args.method.build(&BuildOptions {
        train: &dataset.train,
        k: args.k,
        inversion: InversionSettings {
            steps: args.steps,
            restarts: args.restarts,
            seed: mix(common.runtime.seed, stream::SAMPLE, 0),
            ..Default::default()
        },
        device: common.runtime.device.device()?,
        colorize: command == "colorize",
    })?;
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
    let method = args.method.label();
    let input_row = if command == "colorize" {
        "gray"
    } else {
        "masked"
    };
    grid.save_labelled_rows(
        n,
        &["original".into(), input_row.into(), method.clone()],
        &out.join("edits.png"),
    )?;
    let bytes: Vec<u8> = edited
        .iter()
        .flatten()
        .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    crate::data::folder::save_image_files(
        &Split::new(shape, bytes, vec![0; n]),
        &out.join("edited"),
    )?;
    let report = EditReport {
        out: out.clone(),
        hole_psnr: hole_psnr / n as f64,
        ssim: ssim_sum / n as f64,
    };
    let region = if command == "colorize" { "" } else { "hole " };
    crate::ui::say(&format!(
        "{command}: {n} images ({what}) restored with {method}: {region}PSNR {:.2} dB, SSIM {:.4}; wrote {}",
        report.hole_psnr,
        report.ssim,
        out.display()
    ));
    Ok(report)
}
