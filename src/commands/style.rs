//! `latentlab style --content IMG --style IMG`: neural style transfer (`crate::style`). Writes
//! `result.png`, `strip.png` (content | style | result at one height) and `style.json` (the
//! settings and the losses at the start and the end).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use image::RgbImage;
use image::imageops::FilterType;

use crate::commands::{DeviceArgs, default_out};
use crate::error::{Error, Result};
use crate::fsutil::{check_out_dir, prepare_out_dir, write_json};
use crate::style::StyleReport;
use crate::style::{FeatureNet, FeatureSpec, Start, StepLosses, StyleSettings, Targets, transfer};

/// Arguments of `latentlab style`.
#[derive(Debug, Clone, clap::Args)]
pub struct StyleArgs {
    /// The image whose layout is kept (PNG, JPEG, …), or embedded:NAME, one of the photographs
    /// the colour tiles come from (astronaut, cat, coffee, rocket, hubble, ihc, retina).
    #[arg(long, value_name = "IMG")]
    pub content: PathBuf,
    /// The image whose texture and colours are taken (a file or embedded:NAME).
    #[arg(long, value_name = "IMG")]
    pub style: PathBuf,
    /// The network that measures content and style: random (seeded convolutions, offline), a
    /// trained RGB classifier run folder, or vgg19:PATH (torchvision's VGG-19 `features` as a
    /// safetensors file).
    #[arg(long, value_parser = FeatureSpec::parse, default_value = "random", value_name = "random|RUN|vgg19:PATH")]
    pub features: FeatureSpec,
    /// The longer side both images are resized to, in pixels.
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Adam steps on the pixels.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Adam's learning rate on pixels in [0, 1].
    #[arg(long, default_value_t = 0.02)]
    pub lr: f64,
    /// w in L = L_content + w·L_style (both relative to their targets' size): 0 keeps the
    /// content image; larger gives more of the style's texture.
    #[arg(long, default_value_t = 10.0)]
    pub style_weight: f64,
    /// Where the pixels start.
    #[arg(long, value_enum, default_value = "content")]
    pub start: Start,
    /// Output folder [default: runs/style].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite an output folder that already holds results.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub runtime: DeviceArgs,
}

/// An image file (or `embedded:NAME`, a photograph compiled in) as RGB, its longer side
/// resized to `size`.
fn read_image(path: &Path, size: u32) -> Result<RgbImage> {
    let text = path.to_string_lossy();
    let picture = match text.strip_prefix("embedded:") {
        Some(name) => {
            let bytes = crate::data::embedded::photo(name).ok_or_else(|| {
                let names: Vec<&str> = crate::data::embedded::PHOTOS.iter().map(|p| p.0).collect();
                Error::bad_input(format!(
                    "no embedded photograph '{name}'; there are {}",
                    names.join(", ")
                ))
            })?;
            image::load_from_memory(bytes)
                .map_err(|e| Error::Internal(format!("embedded photograph {name}: {e}")))?
        }
        None => crate::data::folder::open_image(path).map_err(|e| {
            Error::bad_input(format!("{}: not a readable image ({e})", path.display()))
        })?,
    };
    let (w, h) = (picture.width(), picture.height());
    let scale = size as f64 / w.max(h) as f64;
    let (w, h) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    Ok(image::imageops::resize(
        &picture.to_rgb8(),
        w,
        h,
        FilterType::Lanczos3,
    ))
}

/// `[1, 3, h, w]` in [0, 1].
fn to_tensor(image: &RgbImage, device: &Device) -> Tensor<4> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let values: Vec<f32> = crate::data::folder::channel_major(image)
        .into_iter()
        .map(|v| v as f32 / 255.0)
        .collect();
    Tensor::from_data(TensorData::new(values, [1, 3, h, w]), device)
}

fn to_image(tensor: Tensor<4>) -> RgbImage {
    let [_, _, h, w] = tensor.dims();
    let values: Vec<f32> = tensor.into_data().iter::<f32>().collect();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let p = y as usize * w + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            (values[c * h * w + p] * 255.0).round().clamp(0.0, 255.0) as u8
        }))
    })
}

/// Content, style and result side by side at the content's height, 4 white pixels apart.
fn strip(images: [&RgbImage; 3]) -> RgbImage {
    let height = images[0].height();
    let scaled: Vec<RgbImage> = images
        .iter()
        .map(|image| {
            let width = (image.width() as f64 * height as f64 / image.height() as f64).round();
            image::imageops::resize(*image, width.max(1.0) as u32, height, FilterType::Triangle)
        })
        .collect();
    let gap = 4;
    let width = scaled.iter().map(|i| i.width()).sum::<u32>() + gap * 2;
    let mut out = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let mut left = 0;
    for image in &scaled {
        image::imageops::replace(&mut out, image, left as i64, 0);
        left += image.width() + gap;
    }
    out
}

pub fn run(args: &StyleArgs) -> Result<StyleReport> {
    if args.size < 8 {
        return Err(Error::bad_input("--size must be at least 8 pixels"));
    }
    if !(args.style_weight >= 0.0 && args.style_weight.is_finite()) {
        return Err(Error::bad_input("--style-weight must be a number ≥ 0"));
    }
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        return Err(Error::bad_input("--lr must be a positive number"));
    }
    let out = args.out.clone().unwrap_or_else(|| default_out("style"));
    check_out_dir(&out, args.force)?;
    let content_image = read_image(&args.content, args.size)?;
    let style_image = read_image(&args.style, args.size)?;
    let device = args.runtime.device.device()?.autodiff();
    let net = FeatureNet::build(&args.features, args.runtime.seed, &device)?;
    let out = prepare_out_dir(&out, args.force)?;

    let content = to_tensor(&content_image, &device);
    let style = to_tensor(&style_image, &device);
    let targets = Targets::new(&net, content.clone(), style);
    let settings = StyleSettings {
        steps: args.steps,
        lr: args.lr,
        style_weight: args.style_weight,
        start: args.start,
        seed: args.runtime.seed,
    };
    let bar = crate::ui::new_bar(Some(args.steps as u64), args.runtime.quiet);
    bar.set_style(
        indicatif::ProgressStyle::with_template("style {bar:30} {pos}/{len} {msg} ({eta})")
            .expect("static template"),
    );
    let (mut first, mut last) = (None, None);
    let started = Instant::now();
    let result = transfer(&net, &targets, content, &settings, |step, losses| {
        if step == 0 {
            first = Some(losses);
        }
        last = Some(losses);
        bar.set_position(step as u64 + 1);
        bar.set_message(format!(
            "loss {:.4} (content {:.4}, style {:.4})",
            losses.total, losses.content, losses.style
        ));
    });
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let result = to_image(result);
    crate::viz::png::save_png(&result, &out.join("result.png"))?;
    crate::viz::png::save_png(
        &strip([&content_image, &style_image, &result]),
        &out.join("strip.png"),
    )?;
    let features = match &args.features {
        FeatureSpec::Random => "random".to_string(),
        FeatureSpec::Run(path) => path.display().to_string(),
        FeatureSpec::Vgg19(path) => format!("vgg19:{}", path.display()),
    };
    let report = StyleReport {
        content: args.content.display().to_string(),
        style: args.style.display().to_string(),
        features,
        size: [result.height() as usize, result.width() as usize],
        steps: args.steps,
        lr: args.lr,
        style_weight: args.style_weight,
        first,
        last,
        seconds,
        out: out.clone(),
    };
    write_json(&out.join("style.json"), &report)?;
    let loss = |l: Option<StepLosses>| l.map_or("-".into(), |l| format!("{:.4}", l.total));
    crate::ui::say(&format!(
        "style: {} steps on {}x{} in {:.1} s, loss {} -> {}; wrote {}",
        args.steps,
        result.width(),
        result.height(),
        seconds,
        loss(first),
        loss(last),
        out.display()
    ));
    Ok(report)
}
