//! `latentlab reconstruct RUN`: test images and their reconstructions, row by row, with the
//! squared error per pixel.

use std::path::PathBuf;

use crate::commands::run_args::RunArgs;
use crate::data::test_images;
use crate::error::{Error, Result};
use crate::sample::label_tensor;
use crate::train::latent::{interleave_rows, save_grid};

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
}

/// Writes the grid and returns the mean squared error per pixel of the shown images.
pub fn run(args: &ReconstructArgs) -> Result<f64> {
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
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
