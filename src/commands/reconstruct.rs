//! `latentlab reconstruct RUN`: test images and their reconstructions, row by row, with the
//! squared error per pixel. For an autoencoder-kl, the rows between them are the code's channels,
//! each latent pixel drawn over the block of pixels it stands for: image → latent → image.

use std::path::PathBuf;

use crate::commands::run_args::RunArgs;
use crate::data::test_images;
use crate::error::{Error, Result};
use crate::run::Run;
use crate::sample::label_tensor;
use crate::sample::to_unit;
use crate::train::latent::{interleave_rows, save_grid};
use crate::viz::ImageGrid;

/// An autoencoder-kl's reconstructions of the first `--n` test images (at most 8): a row of
/// originals, one row per latent channel, a row of reconstructions (of the codes' means).
/// Returns the squared error per pixel (pixels in [0, 1]).
fn first_stage(args: &ReconstructArgs, run: &Run) -> Result<f64> {
    let device = args.run.runtime.device.device()?;
    let config = run.autoencoder_kl_config()?.autoencoder.clone();
    let model = run.load_autoencoder_kl(&device)?;
    let dataset = run.load_data()?;
    let n = args.n.min(8);
    let (images, _) = test_images(&dataset, n, &device); // [n, c, h, w] in [0, 1]
    let [n, c, side, _] = images.dims();
    let posterior = model.encode(images.clone() * 2.0 - 1.0);
    let reconstructions = to_unit(model.decode(posterior.mean.clone()).clamp(-1.0, 1.0));
    let mse = (reconstructions.clone() - images.clone())
        .powi_scalar(2)
        .mean()
        .into_scalar::<f32>() as f64;
    // Each channel of the mean code, its values over these images mapped to [0, 1], blown up by
    // f to the padded side and cropped as the image was padded.
    let codes = posterior.mean; // [n, z, s, s]
    let [_, channels, s, _] = codes.dims();
    let padded = s * config.downsample;
    let offset = (padded - side) / 2;
    let mut rows = vec![images];
    let mut labels = vec!["image".to_string()];
    for channel in 0..channels {
        let map = codes
            .clone()
            .slice([0..n, channel..channel + 1, 0..s, 0..s]);
        let (low, high) = (
            map.clone().min().into_scalar::<f32>(),
            map.clone().max().into_scalar::<f32>(),
        );
        let map = (map - low) / (high - low).max(1e-6);
        let map = crate::degrade::upsample_nearest(map, config.downsample).slice([
            0..n,
            0..1,
            offset..offset + side,
            offset..offset + side,
        ]); // [n, 1, side, side]
        rows.push(map.repeat_dim(1, c));
        labels.push(format!("z{}", channel + 1));
    }
    rows.push(reconstructions);
    labels.push("decoded".into());
    let mut grid = ImageGrid::new(dataset.shape());
    for row in rows {
        crate::train::latent::push_images(&mut grid, row);
    }
    let out = args.run.out_path(&args.out, "reconstructions.png");
    grid.save_labelled_rows(n, &labels, &out)?;
    if let Some(dir) = &args.save_images {
        save_all(&dataset, dir, &device, |images, _| {
            let codes = model.encode(images * 2.0 - 1.0).mean;
            to_unit(model.decode(codes).clamp(-1.0, 1.0))
        })?;
    }
    let psnr = -10.0 * mse.max(1e-12).log10();
    crate::ui::say(&format!(
        "{n} test images, their {} code ({channels} channels of {s}x{s}, each drawn over the \
         {f}x{f} pixels it stands for) and its decoding: mse {mse:.5} per pixel (PSNR {psnr:.2} dB): {}",
        config.latent_shape(),
        out.display(),
        f = config.downsample,
    ));
    Ok(mse)
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// How many test images (the first n).
    #[arg(long, default_value_t = 32)]
    pub n: usize,
    /// Output PNG [default: RUN/reconstructions.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the reconstruction of every test image as a PNG file here (000000.png, …),
    /// so `eval-samples --fake DIR` scores the reconstructions against the test set.
    #[arg(long, value_name = "DIR")]
    pub save_images: Option<PathBuf>,
}

/// Writes `reconstruct(images, labels)` (batches of `[n, c, h, w]` in [0, 1] and their labels →
/// images like them) of every test image of `dataset` to `dir` as PNG files.
fn save_all(
    dataset: &crate::data::Dataset,
    dir: &std::path::Path,
    device: &burn::tensor::Device,
    reconstruct: impl Fn(
        burn::tensor::Tensor<4>,
        burn::tensor::Tensor<1, burn::tensor::Int>,
    ) -> burn::tensor::Tensor<4>,
) -> Result<()> {
    use crate::data::{BatchConfig, Batches, PixelScale, Split};
    let batches = Batches::new(
        &dataset.test,
        BatchConfig::in_order(250, PixelScale::ZeroOne),
        device,
    );
    let mut written = 0;
    for batch in batches {
        let [n, ..] = batch.images.dims();
        let pixels: Vec<u8> = reconstruct(batch.images, batch.labels)
            .clamp(0.0, 1.0)
            .into_data()
            .iter::<f32>()
            .map(|v| (v * 255.0).round() as u8)
            .collect();
        let split = Split::new(dataset.shape(), pixels, vec![0; n]);
        crate::data::folder::save_image_files_from(&split, dir, written)?;
        written += n;
    }
    crate::ui::say(&format!(
        "reconstructions of all {written} test images: {}",
        dir.display()
    ));
    Ok(())
}

/// Writes the grid and returns the mean squared error per pixel of the shown images.
pub fn run(args: &ReconstructArgs) -> Result<f64> {
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    let opened = Run::open(&args.run.run)?;
    if opened.autoencoder_kl_config().is_ok() {
        return first_stage(args, &opened);
    }
    let (folder, model, device) = args.run.open()?;
    let dataset = folder.load_data()?;
    let (images, labels) = test_images(&dataset, args.n, &device); // [n, c, h, w]
    let labels = model.condition(&label_tensor(&labels, &device));
    // The code of the mean of q(z|x) for a VAE: the reconstruction without sampling noise.
    let reconstructions =
        model.decode_mean(model.encode_mean(images.clone(), labels.clone()), labels); // [n, c, h, w]
    let mse = (reconstructions.clone() - images.clone())
        .powi_scalar(2)
        .mean()
        .into_scalar::<f32>() as f64;
    if let Some(dir) = &args.save_images {
        save_all(&dataset, dir, &device, |images, labels| {
            let labels = model.condition(&labels);
            model.decode_mean(model.encode_mean(images, labels.clone()), labels)
        })?;
    }
    let out = args.run.out_path(&args.out, "reconstructions.png");
    save_grid(
        interleave_rows(images, reconstructions, 8),
        dataset.shape(),
        &out,
    )?;
    crate::ui::say(&format!(
        "reconstructions of {} test images (rows: originals, then reconstructions), mse {mse:.5} per pixel: {}",
        args.n.min(dataset.test.len()),
        out.display()
    ));
    Ok(mse)
}
