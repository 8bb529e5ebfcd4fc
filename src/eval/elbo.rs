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
//! `binarize` does that with a seeded generator.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::models::vae::Vae;

/// log (1/K) Σ exp(log_w), stable for log weights of any size.
pub(crate) fn log_mean_exp(log_weights: &[f64]) -> f64 {
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
pub(crate) fn binarize(pixels: &[f32], seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    pixels
        .iter()
        .map(|&p| if rng.random::<f32>() < p { 1.0 } else { 0.0 })
        .collect()
}

/// log p(z) - log q(z|x) for z = μ + σ·ε: with log N(z; μ, σ²) = -½ε² - ½ log σ² - ½ log 2π and
/// log N(z; 0, I) = -½z² - ½ log 2π, the ½ log 2π terms cancel. `[rows, latent]` → `[rows]`.
pub(crate) fn log_prior_over_posterior(
    z: Tensor<2>,
    noise: Tensor<2>,
    log_variance: Tensor<2>,
) -> Tensor<1> {
    let log_prior = z.powi_scalar(2) * -0.5; // [rows, latent]
    let log_posterior = noise.powi_scalar(2) * -0.5 - log_variance * 0.5; // [rows, latent]
    (log_prior - log_posterior).sum_dim(1).squeeze_dim::<1>(1)
}

/// The IWAE estimate of -log p(x) for each image of `images` (`[n, c, h, w]`, already binarized
/// for a Bernoulli decoder), with `k` importance samples, at most `rows` decoder rows per pass.
/// Image `i`'s noise comes from a generator seeded with `seeds(i)`, so the result does not depend
/// on how the images are split into batches or threads; images run in parallel. Nats per image.
pub(crate) fn iwae_nll(
    model: &Vae,
    images: Tensor<4>,
    labels: Option<&[u8]>,
    k: usize,
    rows: usize,
    seeds: impl Fn(usize) -> u64 + Sync,
) -> Vec<f64> {
    use rayon::prelude::*;
    let n = images.dims()[0];
    (0..n)
        .into_par_iter()
        .map(|i| {
            let image = images.clone().slice(i..i + 1); // [1, c, h, w]
            let label = labels.map(|l| l[i]);
            -log_mean_exp(&log_weights(model, image, label, k, rows, seeds(i)))
        })
        .collect()
}

/// log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) for `k` draws z_k ~ q(z|x) of one image.
/// With a `label` (a conditional VAE), the same for log p(x|y): q(z|x, y) and p(x|z, y).
fn log_weights(
    model: &Vae,
    image: Tensor<4>,
    label: Option<u8>,
    k: usize,
    rows: usize,
    seed: u64,
) -> Vec<f64> {
    use rand_distr::{Distribution as _, StandardNormal};
    let [_, c, h, w] = image.dims();
    let device = image.device();
    let labels = |n: usize| label.map(|l| Tensor::<1, Int>::full([n], l as i64, &device));
    let (mean, log_variance) = model.encode(image.clone(), labels(1)); // [1, latent]
    let latent = mean.dims()[1];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log_weights = Vec::with_capacity(k);
    while log_weights.len() < k {
        let s = rows.max(1).min(k - log_weights.len());
        let noise: Vec<f32> = (0..s * latent)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let noise = Tensor::<2>::from_data(TensorData::new(noise, [s, latent]), &device);
        let log_var = log_variance.clone().expand([s, latent]); // [s, latent]
        let z = mean.clone().expand([s, latent]) + (log_var.clone() * 0.5).exp() * noise.clone(); // [s, latent]
        let x = image.clone().expand([s, c, h, w]); // [s, c, h, w]
        let log_likelihood = model.head.nll(model.decode(z.clone(), labels(s)), x).neg(); // [s]
        let log_w = log_likelihood + log_prior_over_posterior(z, noise, log_var); // [s]
        log_weights.extend(log_w.into_data().iter::<f32>().map(f64::from));
    }
    log_weights
}

/// Bits per dimension of a negative log-likelihood in nats over `dimensions` values.
pub(crate) fn bits_per_dim(nll_nats: f64, dimensions: usize) -> f64 {
    nll_nats / (dimensions as f64 * std::f64::consts::LN_2)
}

/// Means over the test set, per image in nats unless named otherwise.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ElboParts {
    /// -log p(x|z) with one z ~ q(z|x) per image (for an autoencoder, z = its code).
    pub recon: f64,
    /// KL(q(z|x) ‖ N(0, I)), exact; absent for an autoencoder.
    pub kl: Option<f64>,
    /// recon + kl: the negative ELBO.
    pub neg_elbo: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IwaeResult {
    pub k: usize,
    /// -log p(x) estimated with the importance-weighted bound, nats per image.
    pub nll: f64,
    pub bits_per_dim: f64,
    /// The negative ELBO on the same (binarized) data: the IWAE bound is tighter.
    pub neg_elbo_same_data: f64,
    /// What the likelihood was evaluated on.
    pub data: String,
    pub seconds: f64,
    pub images: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EvalReport {
    pub model: String,
    pub likelihood: String,
    pub dataset: String,
    pub test_images: usize,
    /// A conditional VAE is scored given each test image's label: the ELBO and IWAE bound
    /// log p(x|y), not log p(x).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conditional_on_labels: bool,
    /// Mean squared error per pixel (pixels in [0, 1]) of the reconstruction through the code
    /// (the mean of q(z|x) for a VAE).
    pub reconstruction_mse: f64,
    /// On the test pixels as trained (intensities in [0, 1]); nats per image.
    pub elbo: ElboParts,
    pub iwae: Option<IwaeResult>,
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
        let noise = Tensor::<2>::random(
            [4, 3],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
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
            let (loss, _) = model.loss(images.clone(), None);
            neg_elbo += (loss.reconstruction + loss.kl).mean().into_scalar::<f32>() as f64 / 200.0;
        }
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let seeds = |i: usize| 100 + i as u64;
        let k1 = mean(iwae_nll(&model, images.clone(), None, 1, 64, seeds));
        let k1000 = mean(iwae_nll(&model, images.clone(), None, 1000, 512, seeds));
        let k4000 = mean(iwae_nll(&model, images.clone(), None, 4000, 4096, seeds));
        // Batching and threads do not change the draws.
        let one_by_one: Vec<f64> = (0..3)
            .flat_map(|i| {
                iwae_nll(
                    &model,
                    images.clone().slice(i..i + 1),
                    None,
                    1000,
                    300,
                    |_| seeds(i),
                )
            })
            .collect();
        assert_eq!(mean(one_by_one), k1000);
        // K = 1 is a one-draw ELBO; more draws give a bound at or below the ELBO and converge.
        assert!((k1 - neg_elbo).abs() < 2.0, "k=1 {k1} vs ELBO {neg_elbo}");
        assert!(
            k1000 <= neg_elbo + 1e-3,
            "k=1000 {k1000} vs ELBO {neg_elbo}"
        );
        assert!((k1000 - k4000).abs() < 0.05, "{k1000} vs {k4000}");
    }
}
