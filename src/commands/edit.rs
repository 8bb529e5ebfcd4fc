//! `latentlab inpaint` and `latentlab uncrop`: fill the missing pixels of images with one of the
//! editing methods of `crate::edit`, then write a before / masked / after grid and the edited
//! images. A mask marks missing pixels; visible pixels are kept exactly.

use std::path::{Path, PathBuf};

use crate::commands::{CommonArgs, default_out};
use crate::data::{ImageShape, Split, limit_split};
use crate::edit::{Mask, Side, check_mask, composite, mean_image, nearest_image, pca_fill};
use crate::error::{Error, Result};
use crate::eval::image_metrics::{psnr_on_hole, ssim};
use crate::fsutil::{check_out_dir, prepare_out_dir};
use crate::pca::{Components, Pca, PcaConfig, Solver};
use crate::rng::{mix, stream};
use crate::viz::ImageGrid;

/// How the hole is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EditMethod {
    /// The training set's mean image.
    Mean,
    /// The training image closest to the input on its visible pixels.
    Nearest,
    /// The principal components' codes that best explain the visible pixels (least squares,
    /// closed form), then PCA's reconstruction.
    Pca,
}

/// Options every editing command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct EditArgs {
    /// The method that fills the missing pixels.
    #[arg(long = "with", value_enum, value_name = "METHOD")]
    pub method: EditMethod,
    /// Principal components for `--with pca`, fitted on the training split. More explain the
    /// visible pixels better but extrapolate worse into a large hole (500 embedded test images,
    /// centre hole: 14.2 dB at 20, 13.1 at 50).
    #[arg(long, default_value_t = 20)]
    pub k: usize,
    /// Images to edit: a folder of image files of the data's size [default: the first --n test
    /// images of --data].
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// How many images (the first n).
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Output folder: edits.png (rows: originals, masked, edited) and edited/NNNNNN.png
    /// [default: runs/inpaint or runs/uncrop].
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
    let mask = |i: usize, shape: ImageShape| match &args.mask {
        MaskKind::Center => Ok(Mask::center(shape.height, shape.width)),
        MaskKind::Free => Ok(Mask::free(
            shape.height,
            shape.width,
            mix(seed, stream::MASK, i as u64),
        )),
        MaskKind::File(_) => Ok(file_mask.clone().expect("read above")),
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
        Ok(Mask::uncrop(shape.height, shape.width, side))
    })
}

fn to_unit(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&b| b as f32 / 255.0).collect()
}

fn edit(
    args: &EditArgs,
    command: &str,
    what: &str,
    mask_of: impl Fn(usize, ImageShape) -> Result<Mask>,
) -> Result<EditReport> {
    let common = &args.common;
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    if args.method == EditMethod::Pca && args.k == 0 {
        return Err(Error::bad_input("--k must be at least 1"));
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
        None => limit_split(&dataset.test, Some(args.n)),
    };
    // Checked before the first log line, so that a bad mask is the only line printed.
    check_mask(&mask_of(0, shape)?, shape)?;
    common.log_data(&dataset);
    let pca = match args.method {
        EditMethod::Pca => {
            let k = args.k.min(shape.len());
            let config = PcaConfig::new(Components::Count(k), Solver::Eigen);
            let train = &dataset.train;
            Some(Pca::fit_bytes(&train.pixels, train.len(), 255.0, &config)?)
        }
        _ => None,
    };
    let mean = (args.method == EditMethod::Mean).then(|| mean_image(&dataset.train));
    let out = prepare_out_dir(&out, common.force)?;

    let (mut originals, mut masked, mut edited) = (Vec::new(), Vec::new(), Vec::new());
    let (mut hole_psnr, mut ssim_sum) = (0.0, 0.0);
    for i in 0..inputs.len() {
        let image = to_unit(inputs.image(i));
        let mask = mask_of(i, shape)?;
        check_mask(&mask, shape)?;
        let owned;
        let fill: &[f32] = match args.method {
            EditMethod::Mean => mean.as_deref().expect("computed for mean"),
            EditMethod::Nearest => {
                owned = nearest_image(&dataset.train, &image, &mask);
                &owned
            }
            EditMethod::Pca => {
                owned = pca_fill(pca.as_ref().expect("fitted"), &image, &mask, shape)?;
                &owned
            }
        };
        let result = composite(&image, fill, &mask, shape);
        hole_psnr += psnr_on_hole(&image, &result, &mask, shape);
        ssim_sum += ssim(&image, &result, shape);
        // The hole shown mid-grey in the masked row.
        masked.push(composite(&image, &vec![0.5; shape.len()], &mask, shape));
        originals.push(image);
        edited.push(result);
    }
    let n = originals.len();
    let mut grid = ImageGrid::new(shape);
    for image in originals.iter().chain(&masked).chain(&edited) {
        grid.push(image.clone());
    }
    let method = format!("{:?}", args.method).to_lowercase();
    grid.save_labelled_rows(
        n,
        &["original".into(), "masked".into(), method.clone()],
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
    crate::ui::say(&format!(
        "{command}: {n} images ({what}) filled with {method}: hole PSNR {:.2} dB, SSIM {:.4}; wrote {}",
        report.hole_psnr,
        report.ssim,
        out.display()
    ));
    Ok(report)
}
