//! How well a VAE explains held-out images: the ELBO, and the tighter importance-weighted bound
//! of Burda et al. (2016) that papers report as the test negative log-likelihood.
//!
//! For K draws z_k ~ q(z|x) with weights w_k = p(x|z_k) p(z_k) / q(z_k|x),
//!
//! ```text
//! log p(x) ≥ log (1/K) Σ_k w_k   (the IWAE bound; K = 1 is the ELBO, K → ∞ is log p(x))
//! ```
//!
//! computed with a log-sum-exp in f64. Papers evaluate Bernoulli decoders on dynamically
//! binarized images (each pixel drawn as Bernoulli(intensity)), so that p(x|z) is a probability;
//! [`binarize`] does that with a seeded generator.

use burn::prelude::*;
use burn::tensor::Distribution;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::models::vae::Vae;

/// log (1/K) Σ exp(log_w), stable for log weights of any size.
pub fn log_mean_exp(log_weights: &[f64]) -> f64 {
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = log_weights.iter().map(|w| (w - max).exp()).sum();
    max + (sum / log_weights.len() as f64).ln()
}

/// Draws each pixel (intensities in [0, 1]) as 0 or 1 with probability its intensity.
pub fn binarize(pixels: &[f32], seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    pixels
        .iter()
        .map(|&p| if rng.random::<f32>() < p { 1.0 } else { 0.0 })
        .collect()
}

/// log p(z) - log q(z|x) for z = μ + σ·ε: with log N(z; μ, σ²) = -½ε² - ½ log σ² - ½ log 2π and
/// log N(z; 0, I) = -½z² - ½ log 2π, the ½ log 2π terms cancel. `[rows, latent]` → `[rows]`.
pub fn log_prior_over_posterior(
    z: Tensor<2>,
    noise: Tensor<2>,
    log_variance: Tensor<2>,
) -> Tensor<1> {
    let log_prior = z.powi_scalar(2) * -0.5; // [rows, latent]
    let log_posterior = noise.powi_scalar(2) * -0.5 - log_variance * 0.5; // [rows, latent]
    (log_prior - log_posterior).sum_dim(1).squeeze_dim::<1>(1)
}

/// The IWAE estimate of -log p(x) for each image of `images` (`[n, c, h, w]`, already binarized
/// for a Bernoulli decoder), with `k` importance samples, `rows` decoder rows per pass.
/// Returns nats per image.
pub fn iwae_nll(model: &Vae, images: Tensor<4>, k: usize, rows: usize) -> Vec<f64> {
    let [n, c, h, w] = images.dims();
    let device = images.device();
    let (mean, log_variance) = model.encode(images.clone()); // [n, latent]
    let latent = mean.dims()[1];
    let chunk = (rows / n.max(1)).clamp(1, k);
    let mut log_weights = vec![Vec::with_capacity(k); n];
    let mut done = 0;
    while done < k {
        let s = chunk.min(k - done);
        // Row i·s + j is sample j of image i.
        let repeat = |t: Tensor<2>| {
            t.unsqueeze_dim::<3>(1)
                .expand([n, s, latent])
                .reshape([n * s, latent])
        };
        let mu = repeat(mean.clone()); // [n·s, latent]
        let log_var = repeat(log_variance.clone()); // [n·s, latent]
        let noise = Tensor::<2>::random([n * s, latent], Distribution::Normal(0.0, 1.0), &device);
        let z = mu + (log_var.clone() * 0.5).exp() * noise.clone(); // [n·s, latent]
        let x = images
            .clone()
            .unsqueeze_dim::<5>(1)
            .expand([n, s, c, h, w])
            .reshape([n * s, c, h, w]); // [n·s, c, h, w]
        let log_likelihood = model.head.nll(model.decode(z.clone()), x).neg(); // [n·s]
        let log_w = log_likelihood + log_prior_over_posterior(z, noise, log_var); // [n·s]
        let values: Vec<f32> = log_w.into_data().iter::<f32>().collect();
        for (i, weights) in log_weights.iter_mut().enumerate() {
            weights.extend(values[i * s..(i + 1) * s].iter().map(|&v| v as f64));
        }
        done += s;
    }
    log_weights.iter().map(|lw| -log_mean_exp(lw)).collect()
}

/// Bits per dimension of a negative log-likelihood in nats over `dimensions` values.
pub fn bits_per_dim(nll_nats: f64, dimensions: usize) -> f64 {
    nll_nats / (dimensions as f64 * std::f64::consts::LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;
    use crate::models::autoencoder::{Arch, BodyConfig};
    use crate::models::vae::VaeConfig;

    #[test]
    fn log_mean_exp_is_stable_and_exact() {
        assert!((log_mean_exp(&[0.0, 0.0]) - 0.0).abs() < 1e-12);
        let want = ((1f64.exp() + 2f64.exp() + 3f64.exp()) / 3.0).ln();
        assert!((log_mean_exp(&[1.0, 2.0, 3.0]) - want).abs() < 1e-12);
        // exp(-1000) underflows; the shifted sum does not.
        assert!((log_mean_exp(&[-1000.0, -1000.0]) + 1000.0).abs() < 1e-9);
    }

    #[test]
    fn prior_over_posterior_is_zero_when_q_is_the_prior() {
        let device = Device::flex();
        let noise = Tensor::<2>::random([4, 3], Distribution::Normal(0.0, 1.0), &device);
        let zeros = Tensor::<2>::zeros([4, 3], &device);
        // μ = 0, σ = 1: z = ε and q(z|x) = p(z).
        let ratio = log_prior_over_posterior(noise.clone(), noise, zeros);
        assert!(ratio.abs().max().into_scalar::<f32>() < 1e-6);
    }

    #[test]
    fn binarize_keeps_the_mean_and_only_zeros_and_ones() {
        let pixels = vec![0.3f32; 20_000];
        let bits = binarize(&pixels, 1);
        assert!(bits.iter().all(|b| *b == 0.0 || *b == 1.0));
        let mean = bits.iter().sum::<f32>() / bits.len() as f32;
        assert!((mean - 0.3).abs() < 0.01, "{mean}");
        assert_eq!(bits, binarize(&pixels, 1), "seeded");
    }

    #[test]
    fn iwae_bound_tightens_with_k_and_sits_below_the_elbo() {
        let device = Device::flex();
        device.seed(5);
        let shape = ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        let model = VaeConfig::new(BodyConfig::new(Arch::Mlp, shape).with_hidden(vec![8]))
            .with_latent(2)
            .init(&device);
        let pixels: Vec<f32> = (0..3 * 16).map(|i| ((i * 7) % 5) as f32 / 4.0).collect();
        let images =
            Tensor::<4>::from_data(TensorData::new(binarize(&pixels, 2), [3, 1, 4, 4]), &device);
        // The negative ELBO, averaged over many draws of z.
        let mut neg_elbo = 0.0;
        for _ in 0..200 {
            let (loss, _) = model.loss(images.clone());
            neg_elbo += (loss.reconstruction + loss.kl).mean().into_scalar::<f32>() as f64 / 200.0;
        }
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let k1 = mean(iwae_nll(&model, images.clone(), 1, 64));
        let k1000 = mean(iwae_nll(&model, images.clone(), 1000, 512));
        let k4000 = mean(iwae_nll(&model, images, 4000, 4096));
        // K = 1 is a one-draw ELBO; more draws give a bound at or below the ELBO and converge.
        assert!((k1 - neg_elbo).abs() < 2.0, "k=1 {k1} vs ELBO {neg_elbo}");
        assert!(
            k1000 <= neg_elbo + 1e-3,
            "k=1000 {k1000} vs ELBO {neg_elbo}"
        );
        assert!((k1000 - k4000).abs() < 0.05, "{k1000} vs {k4000}");
    }
}
