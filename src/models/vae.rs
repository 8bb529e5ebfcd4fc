//! The variational autoencoder (Kingma & Welling, 2014).
//!
//! The encoder maps an image x to the mean μ and the log-variance log σ² of a diagonal Gaussian
//! q(z|x). A latent code is drawn as z = μ + σ·ε with ε ~ N(0, I) (the reparameterization, so the
//! gradient reaches μ and σ), and the decoder gives p(x|z): one Bernoulli logit per pixel. Training
//! maximizes the ELBO, that is minimizes
//!
//! ```text
//! reconstruction + KL = -E_q[log p(x|z)] + KL(q(z|x) ‖ N(0, I))
//! ```
//!
//! both in nats per image. Sampling decodes z ~ N(0, I) from the prior.
//!
//! The MLP is pytorch/examples' layout (784-400-20, 20-400-784), so the numbers compare.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::relu;

/// An MLP VAE.
#[derive(Config, Debug)]
pub struct MlpVaeConfig {
    /// Pixels per image.
    #[config(default = 784)]
    pub input: usize,
    #[config(default = 400)]
    pub hidden: usize,
    /// Dimensions of z.
    #[config(default = 20)]
    pub latent: usize,
}

#[derive(Module, Debug)]
pub struct MlpVae {
    encoder_hidden: Linear,
    encoder_mean: Linear,
    encoder_log_variance: Linear,
    decoder_hidden: Linear,
    decoder_logits: Linear,
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct VaeOutput {
    /// Bernoulli logits of p(x|z), `[batch, pixels]`.
    pub logits: Tensor<2>,
    /// Mean of q(z|x), `[batch, latent]`.
    pub mean: Tensor<2>,
    /// Log-variance of q(z|x), `[batch, latent]`.
    pub log_variance: Tensor<2>,
    /// The sampled latent code, `[batch, latent]`.
    pub z: Tensor<2>,
}

impl MlpVaeConfig {
    pub fn init(&self, device: &Device) -> MlpVae {
        MlpVae {
            encoder_hidden: LinearConfig::new(self.input, self.hidden).init(device),
            encoder_mean: LinearConfig::new(self.hidden, self.latent).init(device),
            encoder_log_variance: LinearConfig::new(self.hidden, self.latent).init(device),
            decoder_hidden: LinearConfig::new(self.latent, self.hidden).init(device),
            decoder_logits: LinearConfig::new(self.hidden, self.input).init(device),
        }
    }
}

impl MlpVae {
    /// q(z|x): mean and log-variance.
    pub fn encode(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let h = relu(self.encoder_hidden.forward(x)); // [batch, hidden]
        let mean = self.encoder_mean.forward(h.clone()); // [batch, latent]
        let log_variance = self.encoder_log_variance.forward(h); // [batch, latent]
        (mean, log_variance)
    }

    /// p(x|z) as Bernoulli logits; `sigmoid` of them is the mean image.
    pub fn decode(&self, z: Tensor<2>) -> Tensor<2> {
        let h = relu(self.decoder_hidden.forward(z)); // [batch, hidden]
        self.decoder_logits.forward(h) // [batch, pixels]
    }

    pub fn forward(&self, x: Tensor<2>) -> VaeOutput {
        let (mean, log_variance) = self.encode(x);
        let z = reparameterize(mean.clone(), log_variance.clone()); // [batch, latent]
        VaeOutput {
            logits: self.decode(z.clone()),
            mean,
            log_variance,
            z,
        }
    }
}

/// z = μ + σ·ε, ε ~ N(0, I): the sample is a differentiable function of μ and log σ².
pub fn reparameterize(mean: Tensor<2>, log_variance: Tensor<2>) -> Tensor<2> {
    let noise = Tensor::random(mean.shape(), Distribution::Normal(0.0, 1.0), &mean.device());
    mean + (log_variance * 0.5).exp() * noise
}

/// KL(N(μ, σ²) ‖ N(0, I)) per image, in nats: -½ Σ (1 + log σ² - μ² - σ²). `[batch]`.
pub fn kl_divergence(mean: Tensor<2>, log_variance: Tensor<2>) -> Tensor<1> {
    let terms = log_variance.clone() + 1.0 - mean.powi_scalar(2) - log_variance.exp();
    terms.sum_dim(1).squeeze_dim::<1>(1) * -0.5
}

/// -log p(x|z) for Bernoulli pixels given logits, per image, in nats: the binary cross-entropy
/// summed over pixels. Computed as max(l, 0) - l·x + log(1 + e^-|l|), which never overflows,
/// where the naive -x log σ(l) - (1-x) log(1-σ(l)) gives inf for large |l|. `[batch]`.
pub fn bernoulli_nll_from_logits(logits: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
    let stable =
        logits.clone().clamp_min(0.0) - logits.clone() * x + logits.abs().neg().exp().log1p();
    stable.sum_dim(1).squeeze_dim::<1>(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn kl_matches_its_closed_form() {
        let device = Device::flex();
        let mean = [0.0f32, 1.0, -2.0, 0.5];
        let sigma = [1.0f32, 0.5, 2.0, 0.1];
        let log_variance: Vec<f32> = sigma.iter().map(|s| 2.0 * s.ln()).collect();
        let to_tensor =
            |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [2, 2]), &device);
        let kl = values(kl_divergence(to_tensor(&mean), to_tensor(&log_variance)));
        // KL(N(μ,σ²) ‖ N(0,1)) = log(1/σ) + (σ² + μ²)/2 - 1/2 per dimension.
        let closed = |m: f32, s: f32| -s.ln() + (s * s + m * m) / 2.0 - 0.5;
        let want = [
            closed(mean[0], sigma[0]) + closed(mean[1], sigma[1]),
            closed(mean[2], sigma[2]) + closed(mean[3], sigma[3]),
        ];
        for (got, want) in kl.iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        assert!(kl.iter().all(|v| *v >= 0.0), "KL is never negative");
    }

    #[test]
    fn stable_bce_matches_the_naive_formula_where_both_are_finite() {
        let device = Device::flex();
        let logits = [-30.0f32, -5.0, -0.3, 0.0, 0.7, 4.0, 12.0, 25.0];
        let targets = [0.0f32, 0.2, 1.0, 0.5, 0.0, 1.0, 0.9, 1.0];
        let t = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [8, 1]), &device);
        let got = values(bernoulli_nll_from_logits(t(&logits), t(&targets)));
        for i in 0..8 {
            let (l, x) = (logits[i] as f64, targets[i] as f64);
            let p = 1.0 / (1.0 + (-l).exp());
            let naive = -(x * p.ln() + (1.0 - x) * (1.0 - p).ln());
            if naive.is_finite() {
                assert!(
                    (got[i] as f64 - naive).abs() < 1e-4 * naive.max(1.0),
                    "logit {l}: {} vs {naive}",
                    got[i]
                );
            }
        }
        // Where the naive formula overflows (σ(40) rounds to 1), the stable one stays finite.
        let extreme = values(bernoulli_nll_from_logits(t(&[40.0; 8]), t(&[0.0; 8])));
        assert!(extreme.iter().all(|v| (v - 40.0).abs() < 1e-3));
    }

    #[test]
    fn reparameterization_gradient_reaches_mean_and_variance() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let mean =
            Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0], [1, 3]), &device)
                .require_grad();
        let log_variance =
            Tensor::<2>::from_data(TensorData::new(vec![0.0f32, -1.0, 1.0], [1, 3]), &device)
                .require_grad();
        let z = reparameterize(mean.clone(), log_variance.clone());
        let grads = z.clone().sum().backward();
        // dz/dμ = 1 and dz/dlog σ² = ½ σ ε = ½ (z - μ).
        let d_mean = values(mean.grad(&grads).expect("gradient reaches μ"));
        let d_log_variance = values(log_variance.grad(&grads).expect("gradient reaches log σ²"));
        let z = values(z.inner());
        let mu = [0.5f32, -1.0, 2.0];
        for i in 0..3 {
            assert!((d_mean[i] - 1.0).abs() < 1e-6);
            assert!((d_log_variance[i] - 0.5 * (z[i] - mu[i])).abs() < 1e-5);
            assert!(d_log_variance[i] != 0.0, "ε is almost surely non-zero");
        }
    }

    #[test]
    fn shapes_follow_the_pytorch_examples_layout() {
        let device = Device::flex();
        let model = MlpVaeConfig::new().init(&device);
        let x = Tensor::<2>::random([5, 784], Distribution::Default, &device);
        let out = model.forward(x.clone());
        assert_eq!(out.logits.dims(), [5, 784]);
        assert_eq!(out.mean.dims(), [5, 20]);
        assert_eq!(out.z.dims(), [5, 20]);
        let loss =
            bernoulli_nll_from_logits(out.logits, x) + kl_divergence(out.mean, out.log_variance);
        assert_eq!(loss.dims(), [5]);
        // 784·400 + 400 + 2·(400·20 + 20) + 20·400 + 400 + 400·784 + 784 parameters.
        assert_eq!(model.num_params(), 652_824);
    }
}
