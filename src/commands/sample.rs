//! `latentlab sample RUN`: decode draws from the prior N(0, I). A VAE was trained to make these
//! look like data; an autoencoder was not, and its samples show it.

use std::path::PathBuf;

use crate::commands::run_folder::RunArgs;
use crate::commands::train::prior_noise;
use crate::error::{Error, Result};
use crate::train::latent::save_grid;

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
}

pub fn run(args: &SampleArgs) -> Result<PathBuf> {
    if args.n == 0 {
        return Err(Error::bad_input("--n must be at least 1"));
    }
    let (folder, model, device) = args.run.open()?;
    let config = &folder.config.model;
    let z = prior_noise(args.n, config.latent(), args.run.seed, &device); // [n, latent]
    let images = model.decode_mean(z); // [n, c, h, w]
    let out = args.run.out_path(&args.out, "samples.png");
    save_grid(images, config.shape(), &out)?;
    println!(
        "{} samples from N(0, I) through the {} decoder: {}",
        args.n,
        config.kind(),
        out.display()
    );
    Ok(out)
}
