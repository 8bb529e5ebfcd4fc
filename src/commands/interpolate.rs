//! `latentlab interpolate RUN`: walk the latent space. Rows of the first picture go from one test
//! image to another through z (linear between their codes, the two originals at the ends; for
//! autoencoders and VAEs, which have an encoder); rows of the second go between two draws from
//! the prior along the great circle (slerp), which keeps the path where a Gaussian's mass is
//! (White, 2016). Every generative run has the second: a GAN's z, a two-stage VAE's u, and a
//! diffusion model's x_T, which DDIM at η = 0 maps to an image deterministically (Song et al.
//! 2021, §5.3: slerp between two x_T gives a smooth path of images); a conditional model's row
//! p holds class p.

use std::path::PathBuf;

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::commands::SamplingArgs;
use crate::commands::run_args::RunArgs;
use crate::data::{BatchConfig, Batches, PixelScale};
use crate::error::{Error, Result};
use crate::run::Run;
use crate::sample::{Generative, label_tensor, prior_noise};
use crate::train::latent::save_grid_with_columns;

#[derive(Debug, Clone, clap::Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Rows: pairs of test images (each of two different classes), and pairs of prior draws.
    #[arg(long, default_value_t = 8)]
    pub pairs: usize,
    /// Decoded points per row, ends included.
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Output folder [default: RUN]; writes interpolation.png (autoencoders and VAEs) and
    /// interpolation_prior.png.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Diffusion runs: DDIM steps (at η = 0, so each x_T gives one image) [default: 50].
    #[arg(long, value_name = "N")]
    pub ddim_steps: Option<usize>,
    /// Conditional diffusion runs: classifier-free guidance weight [default: 2].
    #[arg(long, value_name = "W")]
    pub guidance: Option<f64>,
}

/// Spherical interpolation between `a` and `b` at `t` (linear when they are parallel).
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let cos = a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b)).max(1e-12);
    let omega = cos.clamp(-1.0, 1.0).acos();
    let (wa, wb) = if omega.sin().abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * omega).sin() / omega.sin(),
            (t * omega).sin() / omega.sin(),
        )
    };
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

pub fn run(args: &InterpolateArgs) -> Result<Vec<PathBuf>> {
    if args.pairs == 0 || args.steps < 2 {
        return Err(Error::bad_input(
            "--pairs must be at least 1 and --steps at least 2",
        ));
    }
    let run = Run::open(&args.run.run)?;
    if (args.ddim_steps.is_some() || args.guidance.is_some())
        && !matches!(run.config.model, crate::run::ModelConfig::Diffusion(_))
    {
        return Err(Error::bad_input(format!(
            "{}: --ddim-steps and --guidance walk diffusion runs; this is {}",
            run.path.display(),
            run.config.model.a_run()
        )));
    }
    let request = SamplingArgs {
        sampler: None,
        steps: args.ddim_steps,
        eta: None,
        guidance: args.guidance,
    }
    .request()?;
    let out_dir = args.out.clone().unwrap_or_else(|| args.run.run.clone());
    let ts: Vec<f32> = (0..args.steps)
        .map(|i| i as f32 / (args.steps - 1) as f32)
        .collect();
    let test = match run.latent_config() {
        Ok(_) => Some(between_test_images(args, &ts, &out_dir)?),
        Err(_) => None,
    };
    let device = args.run.runtime.device.device()?;
    let model = crate::kinds::generative(&run, &device, &request)?;
    device.seed(args.run.runtime.seed);
    let prior = between_prior_draws(args, model.as_ref(), &ts, &out_dir, &device)?;
    crate::ui::say(&match &test {
        Some(test) => format!(
            "interpolations: {} (test pairs, originals at the ends), {} (slerp between prior draws)",
            test.display(),
            prior.display()
        ),
        None => format!(
            "interpolation: {} (slerp between prior draws; {})",
            prior.display(),
            model.describe(),
        ),
    });
    Ok(test.into_iter().chain([prior]).collect())
}

/// Rows from one test image to another, linear between their codes: interpolation.png.
fn between_test_images(
    args: &InterpolateArgs,
    ts: &[f32],
    out_dir: &std::path::Path,
) -> Result<PathBuf> {
    let (folder, model, device) = args.run.open()?;
    crate::commands::run_args::unconditional_only(&model, &args.run.run, "interpolate")?;
    let dataset = folder.load_data()?;
    let shape = dataset.shape();
    let latent = folder.latent_config()?.model.latent();
    // Pairs of test images from different classes, chosen with the seed.
    let mut rng = StdRng::seed_from_u64(args.run.runtime.seed);
    let mut indices: Vec<usize> = (0..dataset.test.len()).collect();
    indices.shuffle(&mut rng);
    let mut pairs = Vec::new();
    let mut rest = indices.into_iter();
    while pairs.len() < args.pairs {
        let (Some(a), Some(b)) = (rest.next(), rest.next()) else {
            break;
        };
        if dataset.test.labels[a] != dataset.test.labels[b] || dataset.num_classes() < 2 {
            pairs.push((a, b));
        }
    }
    if pairs.is_empty() {
        return Err(Error::bad_input(
            "the test split has too few images to pair",
        ));
    }
    let chosen: Vec<usize> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
    let subset = crate::data::Split::new(
        shape,
        chosen
            .iter()
            .flat_map(|&i| dataset.test.image(i).to_vec())
            .collect(),
        chosen.iter().map(|&i| dataset.test.labels[i]).collect(),
    );
    let images = Batches::new(
        &subset,
        BatchConfig::in_order(chosen.len(), PixelScale::ZeroOne),
        &device,
    )
    .next()
    .expect("pairs are not empty")
    .images; // [2·pairs, c, h, w]
    let codes: Vec<f32> = model
        .encode_mean(images.clone(), None)
        .into_data()
        .iter::<f32>()
        .collect(); // 2·pairs codes of `latent` values
    let mut path_codes = Vec::new();
    for p in 0..pairs.len() {
        let (za, zb) = (
            &codes[2 * p * latent..(2 * p + 1) * latent],
            &codes[(2 * p + 1) * latent..(2 * p + 2) * latent],
        );
        for &t in ts {
            path_codes.extend(za.iter().zip(zb).map(|(a, b)| a + t * (b - a)));
        }
    }
    let decoded = decode(&model, path_codes, latent, &device); // [pairs·steps, c, h, w]
    let mut rows = Vec::new();
    for p in 0..pairs.len() {
        rows.push(images.clone().slice(2 * p..2 * p + 1));
        rows.push(decoded.clone().slice(p * args.steps..(p + 1) * args.steps));
        rows.push(images.clone().slice(2 * p + 1..2 * p + 2));
    }
    let test_path = out_dir.join("interpolation.png");
    save_grid_with_columns(Tensor::cat(rows, 0), shape, args.steps + 2, &test_path)?;
    Ok(test_path)
}

/// Rows between two draws of the model's prior along the great circle: interpolation_prior.png.
fn between_prior_draws(
    args: &InterpolateArgs,
    model: &dyn Generative,
    ts: &[f32],
    out_dir: &std::path::Path,
    device: &Device,
) -> Result<PathBuf> {
    let latent = model.latent();
    let ends: Vec<f32> = prior_noise(
        2 * args.pairs,
        latent,
        args.run.runtime.seed ^ 0x5EED,
        device,
    )
    .into_data()
    .iter::<f32>()
    .collect();
    let mut prior_codes = Vec::new();
    for p in 0..args.pairs {
        let (za, zb) = (
            &ends[2 * p * latent..(2 * p + 1) * latent],
            &ends[(2 * p + 1) * latent..(2 * p + 2) * latent],
        );
        for &t in ts {
            prior_codes.extend(slerp(za, zb, t));
        }
    }
    let n = prior_codes.len() / latent;
    let classes = model.num_classes();
    let labels = (classes > 0).then(|| {
        let rows: Vec<u8> = (0..n).map(|i| ((i / args.steps) % classes) as u8).collect();
        label_tensor(&rows, device)
    });
    let images = model.generate(
        Tensor::from_data(TensorData::new(prior_codes, [n, latent]), device),
        labels,
    ); // [pairs·steps, c, h, w] in [0, 1]
    let prior_path = out_dir.join("interpolation_prior.png");
    save_grid_with_columns(images, model.image_shape(), args.steps, &prior_path)?;
    Ok(prior_path)
}

fn decode(
    model: &crate::models::LatentModel,
    codes: Vec<f32>,
    latent: usize,
    device: &Device,
) -> Tensor<4> {
    let n = codes.len() / latent;
    model.decode_mean(
        Tensor::from_data(TensorData::new(codes, [n, latent]), device),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::slerp;

    #[test]
    fn slerp_keeps_the_ends_and_the_norm_between_equal_norm_points() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 1.0];
        assert_eq!(slerp(&a, &b, 0.0), vec![1.0, 0.0]);
        let end = slerp(&a, &b, 1.0);
        assert!((end[0]).abs() < 1e-6 && (end[1] - 1.0).abs() < 1e-6);
        let mid = slerp(&a, &b, 0.5);
        let norm = (mid[0] * mid[0] + mid[1] * mid[1]).sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-6,
            "slerp stays on the circle: {norm}"
        );
        // Linear interpolation would cut the corner: |(0.5, 0.5)| ≈ 0.707.
    }
}
