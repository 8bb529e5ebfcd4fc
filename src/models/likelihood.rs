//! p(x|z): how a decoder's output scores an image. The reconstruction term of the autoencoder and
//! of the VAE's ELBO is -log p(x|z), in nats per image (summed over pixels, not averaged, so it
//! adds to the KL term in the same units).
//!
//! - `bernoulli`: each pixel in [0, 1] is the probability of a Bernoulli variable; the decoder
//!   outputs logits and the loss is the binary cross-entropy, computed from the logits so it never
//!   overflows (pytorch/examples' VAE uses this on pixels in [0, 1]).
//! - `gaussian`: each pixel is N(mean, σ²) with mean = sigmoid(output); σ fixed, or one σ learned
//!   with the model. σ = 1/√2 would make the loss the plain squared error plus a constant.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::error::{Error, Result};

/// The decoder's likelihood.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Likelihood {
    Bernoulli,
    /// `sigma: None` learns one σ for all pixels, starting at 1.
    Gaussian {
        sigma: Option<f64>,
    },
}

impl std::fmt::Display for Likelihood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Likelihood::Bernoulli => f.write_str("bernoulli"),
            Likelihood::Gaussian { sigma: Some(s) } => write!(f, "gaussian (σ = {s})"),
            Likelihood::Gaussian { sigma: None } => f.write_str("gaussian (learned σ)"),
        }
    }
}

impl Likelihood {
    /// From `--likelihood` and `--sigma` (a number or `learned`).
    pub fn parse(name: &str, sigma: &str) -> Result<Self> {
        match name {
            "bernoulli" => Ok(Likelihood::Bernoulli),
            "gaussian" if sigma == "learned" => Ok(Likelihood::Gaussian { sigma: None }),
            "gaussian" => {
                let value: f64 = sigma.parse().map_err(|_| {
                    Error::bad_input(format!(
                        "--sigma '{sigma}': expected a positive number or 'learned'"
                    ))
                })?;
                let likelihood = Likelihood::Gaussian { sigma: Some(value) };
                likelihood.validate()?;
                Ok(likelihood)
            }
            other => Err(Error::bad_input(format!(
                "unknown likelihood '{other}' (expected bernoulli or gaussian)"
            ))),
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            Likelihood::Gaussian { sigma: Some(s) } if !(*s > 0.0 && s.is_finite()) => Err(
                Error::bad_input(format!("--sigma {s}: must be a positive number")),
            ),
            _ => Ok(()),
        }
    }

    pub fn init(&self, device: &Device) -> ReconstructionHead {
        let log_sigma = match self {
            Likelihood::Gaussian { sigma: None } => {
                Some(Param::from_tensor(Tensor::zeros([1], device)))
            }
            _ => None,
        };
        ReconstructionHead {
            likelihood: *self,
            log_sigma,
        }
    }
}

/// The likelihood as part of a model: holds the learned σ when there is one.
#[derive(Module, Debug)]
pub struct ReconstructionHead {
    #[module(skip)]
    pub likelihood: Likelihood,
    log_sigma: Option<Param<Tensor<1>>>,
}

impl ReconstructionHead {
    /// -log p(x|output) per image, in nats. `output`, `images`: `[batch, c, h, w]` → `[batch]`.
    pub fn nll(&self, output: Tensor<4>, images: Tensor<4>) -> Tensor<1> {
        let output = output.flatten::<2>(1, 3); // [batch, pixels]
        let images = images.flatten::<2>(1, 3); // [batch, pixels]
        match (self.likelihood, &self.log_sigma) {
            (Likelihood::Bernoulli, _) => bernoulli_nll_from_logits(output, images),
            (Likelihood::Gaussian { sigma: Some(sigma) }, _) => {
                let pixels = images.dims()[1] as f64;
                let squared = (images - sigmoid(output)).powi_scalar(2).sum_dim(1); // [batch, 1]
                let constant = pixels * (sigma.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln());
                (squared / (2.0 * sigma * sigma) + constant).squeeze_dim::<1>(1)
            }
            (Likelihood::Gaussian { sigma: None }, Some(log_sigma)) => {
                let pixels = images.dims()[1] as f64;
                let batch = images.dims()[0];
                let log_sigma = log_sigma.val().unsqueeze_dim::<2>(0); // [1, 1]
                let squared = (images - sigmoid(output)).powi_scalar(2).sum_dim(1); // [batch, 1]
                let scaled = squared * (log_sigma.clone() * -2.0).exp() * 0.5; // [batch, 1]
                let log_normalizer = (log_sigma + 0.5 * (2.0 * std::f64::consts::PI).ln()) * pixels; // [1, 1]
                (scaled + log_normalizer.expand([batch, 1])).squeeze_dim::<1>(1)
            }
            (Likelihood::Gaussian { sigma: None }, None) => {
                unreachable!("a learned σ is created with the head")
            }
        }
    }

    /// The image the decoder means: sigmoid of its output, in [0, 1] for both likelihoods.
    pub fn mean(&self, output: Tensor<4>) -> Tensor<4> {
        sigmoid(output)
    }

    /// The learned σ, if this head learns one.
    pub fn learned_sigma(&self) -> Option<f64> {
        self.log_sigma
            .as_ref()
            .map(|p| (p.val().into_scalar::<f32>() as f64).exp())
    }
}

/// -log p(x|z) for Bernoulli pixels given logits, per image, in nats: the binary cross-entropy
/// summed over pixels. Computed as max(l, 0) - l·x + log(1 + e^-|l|), which never overflows,
/// where the naive -x log σ(l) - (1-x) log(1-σ(l)) gives inf for large |l|. `[batch]`.
///
/// `log(1 + e)` rather than `log1p(e)`: with 1 + e in (1, 2] the plain log loses at most ~6e-8
/// nats per pixel (where e < 2^-24 rounds away), and burn's CPU log1p costs three times log.
///
/// One operation with its own backward pass ([`crate::ops::bce`]); `tests/fast_ops.rs` checks it
/// against this formula in burn's operations.
pub(crate) fn bernoulli_nll_from_logits(logits: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
    crate::ops::bce::bernoulli_nll(logits, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
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
    fn gaussian_nll_matches_the_normal_density_fixed_and_learned() {
        let device = Device::flex();
        let output = [0.3f32, -1.2, 2.0, 0.0];
        let pixels = [0.5f32, 0.1, 0.9, 0.7];
        let t =
            |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 1, 2, 2]), &device);
        let want = |sigma: f64| -> f64 {
            output
                .iter()
                .zip(pixels)
                .map(|(o, x)| {
                    let mean = 1.0 / (1.0 + (-*o as f64).exp());
                    let d = x as f64 - mean;
                    d * d / (2.0 * sigma * sigma)
                        + sigma.ln()
                        + 0.5 * (2.0 * std::f64::consts::PI).ln()
                })
                .sum()
        };
        let fixed = Likelihood::Gaussian { sigma: Some(0.1) }.init(&device);
        let got = values(fixed.nll(t(&output), t(&pixels)))[0] as f64;
        assert!(
            (got - want(0.1)).abs() < 1e-3 * want(0.1).abs(),
            "{got} vs {}",
            want(0.1)
        );
        // A learned σ starts at 1.
        let learned = Likelihood::Gaussian { sigma: None }.init(&device);
        assert_eq!(learned.learned_sigma(), Some(1.0));
        let got = values(learned.nll(t(&output), t(&pixels)))[0] as f64;
        assert!((got - want(1.0)).abs() < 1e-4, "{got} vs {}", want(1.0));
    }

    #[test]
    fn parse_rejects_bad_sigma() {
        assert!(Likelihood::parse("gaussian", "-1").is_err());
        assert!(Likelihood::parse("gaussian", "abc").is_err());
        assert!(Likelihood::parse("poisson", "1").is_err());
        assert_eq!(
            Likelihood::parse("gaussian", "learned").unwrap(),
            Likelihood::Gaussian { sigma: None }
        );
    }
}
