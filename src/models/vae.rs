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
//! The encoder and decoder bodies are the autoencoder's (`autoencoder.rs`); what changes is the
//! head between them, two linear maps to μ and log σ² instead of one to z. The MLP default is
//! pytorch/examples' layout (784-400-20, 20-400-784), so the numbers compare.
//!
//! The conditional VAE (Sohn, Lee & Yan, 2015) models p(x|y): the label's one-hot vector is
//! joined to the encoder's features before the μ and log σ² heads, q(z|x, y), and to z before
//! the decoder, p(x|z, y). The prior stays N(0, I), so z is free to hold what the label does
//! not say (style, thickness), and sampling a class means decoding prior draws with its label.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;

use crate::error::Error;
use crate::models::autoencoder::{BodyConfig, Decoder, Encoder};
use crate::models::likelihood::{Likelihood, ReconstructionHead};

/// A VAE: encoder and decoder bodies, a Gaussian head, a likelihood and the KL weight β.
#[derive(Config, Debug)]
pub struct VaeConfig {
    pub body: BodyConfig,
    /// Dimensions of z.
    #[config(default = 20)]
    pub latent: usize,
    #[config(default = "Likelihood::Bernoulli")]
    pub likelihood: Likelihood,
    /// Weight of the KL term (β-VAE, Higgins et al. 2017); 1 is the ELBO.
    #[config(default = 1.0)]
    pub beta: f64,
    /// Classes to condition on (a CVAE); `None` for the plain VAE. (An `Option` so that configs
    /// written before CVAEs existed, without the field, still load.)
    #[config(default = "None")]
    pub num_classes: Option<usize>,
}

#[derive(Module, Debug)]
pub struct Vae {
    encoder: Encoder,
    to_mean: Linear,
    to_log_variance: Linear,
    decoder: Decoder,
    pub head: ReconstructionHead,
    #[module(skip)]
    pub beta: f64,
    #[module(skip)]
    pub num_classes: usize,
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct VaeOutput {
    /// Decoder output for the sampled z (logits for a Bernoulli likelihood), `[batch, c, h, w]`.
    pub output: Tensor<4>,
    /// Mean of q(z|x), `[batch, latent]`.
    pub mean: Tensor<2>,
    /// Log-variance of q(z|x), `[batch, latent]`.
    pub log_variance: Tensor<2>,
    /// The sampled latent code, `[batch, latent]`.
    pub z: Tensor<2>,
}

/// The two parts of the negative ELBO, per image in nats, `[batch]` each.
#[derive(Debug, Clone)]
pub struct VaeLoss {
    /// -E_q[log p(x|z)], estimated with the one sampled z.
    pub reconstruction: Tensor<1>,
    /// KL(q(z|x) ‖ N(0, I)), exact.
    pub kl: Tensor<1>,
}

impl VaeConfig {
    pub fn validate(&self) -> crate::Result<()> {
        self.body.validate()?;
        if self.latent == 0 {
            return Err(Error::bad_input("--latent must be at least 1"));
        }
        if self.num_classes == Some(1) || self.num_classes == Some(0) {
            return Err(Error::bad_input(
                "--conditional needs data with at least two classes",
            ));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(Error::bad_input(format!(
                "--beta {}: must be a non-negative number",
                self.beta
            )));
        }
        self.likelihood.validate()
    }

    pub fn init(&self, device: &Device) -> Vae {
        let classes = self.num_classes.unwrap_or(0);
        let features = self.body.features() + classes;
        Vae {
            encoder: self.body.init_encoder(device),
            to_mean: LinearConfig::new(features, self.latent).init(device),
            to_log_variance: LinearConfig::new(features, self.latent).init(device),
            decoder: self.body.init_decoder(self.latent + classes, device),
            head: self.likelihood.init(device),
            beta: self.beta,
            num_classes: classes,
        }
    }
}

impl Vae {
    /// `[h, one_hot(y)]`, `[batch, width + classes]`; `h` alone for the plain VAE.
    fn join_label(&self, h: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<2> {
        match (self.num_classes, labels) {
            (0, _) => h,
            (classes, Some(labels)) => {
                let one_hot = labels.one_hot::<2>(classes).float(); // [batch, classes]
                Tensor::cat(vec![h, one_hot], 1)
            }
            (_, None) => panic!("a conditional VAE needs labels"),
        }
    }

    /// q(z|x) (q(z|x, y) when conditional): mean and log-variance, `[batch, latent]` each.
    pub fn encode(
        &self,
        images: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
    ) -> (Tensor<2>, Tensor<2>) {
        let features = self.encoder.forward(images); // [batch, features]
        let features = self.join_label(features, labels); // [batch, features (+ classes)]
        let mean = self.to_mean.forward(features.clone()); // [batch, latent]
        let log_variance = self.to_log_variance.forward(features); // [batch, latent]
        (mean, log_variance)
    }

    /// p(x|z) (p(x|z, y)): the decoder output `[batch, c, h, w]`; `head.mean` of it is the mean
    /// image.
    pub fn decode(&self, z: Tensor<2>, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        self.decoder.forward(self.join_label(z, labels)) // [batch, c, h, w]
    }

    pub fn forward(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> VaeOutput {
        let (mean, log_variance) = self.encode(images, labels.clone());
        let z = reparameterize(mean.clone(), log_variance.clone()); // [batch, latent]
        VaeOutput {
            output: self.decode(z.clone(), labels), // [batch, c, h, w]
            mean,
            log_variance,
            z,
        }
    }

    /// The negative ELBO's parts on a batch; training minimizes mean(reconstruction + β·kl).
    pub fn loss(&self, images: Tensor<4>, labels: Option<Tensor<1, Int>>) -> (VaeLoss, VaeOutput) {
        let out = self.forward(images.clone(), labels);
        let loss = VaeLoss {
            reconstruction: self.head.nll(out.output.clone(), images),
            kl: kl_divergence(out.mean.clone(), out.log_variance.clone()),
        };
        (loss, out)
    }
}

/// z = μ + σ·ε, ε ~ N(0, I): the sample is a differentiable function of μ and log σ².
pub(crate) fn reparameterize(mean: Tensor<2>, log_variance: Tensor<2>) -> Tensor<2> {
    let noise = Tensor::random(mean.shape(), Distribution::Normal(0.0, 1.0), &mean.device());
    mean + (log_variance * 0.5).exp() * noise
}

/// KL(N(μ, σ²) ‖ N(0, I)) per image, in nats: -½ Σ (1 + log σ² - μ² - σ²). `[batch]`.
pub(crate) fn kl_divergence(mean: Tensor<2>, log_variance: Tensor<2>) -> Tensor<1> {
    let terms = log_variance.clone() + 1.0 - mean.powi_scalar(2) - log_variance.exp();
    terms.sum_dim(1).squeeze_dim::<1>(1) * -0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn a_conditional_vae_reads_the_label_in_encoder_and_decoder() {
        use crate::data::ImageShape;
        use crate::models::autoencoder::{Arch, BodyConfig};
        let device = Device::flex();
        device.seed(1);
        let shape = ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        let body = BodyConfig::new(Arch::Mlp, shape).with_hidden(vec![8]);
        let model = VaeConfig::new(body)
            .with_latent(2)
            .with_num_classes(Some(3))
            .init(&device);
        let label = |c: i64| {
            Some(Tensor::<1, Int>::from_data(
                TensorData::new(vec![c], [1]),
                &device,
            ))
        };
        let x = Tensor::<4>::random([1, 1, 4, 4], Distribution::Default, &device);
        let z = Tensor::<2>::zeros([1, 2], &device);
        let decoded = |c| values(model.decode(z.clone(), label(c)));
        let encoded = |c| values(model.encode(x.clone(), label(c)).0);
        assert_ne!(decoded(0), decoded(2), "p(x|z, y) depends on y");
        assert_ne!(encoded(0), encoded(1), "q(z|x, y) depends on y");
        // The one-hot sits after z: exactly one of the three extra decoder inputs is 1.
        let joined = values(model.join_label(z.clone(), label(2)));
        assert_eq!(joined, vec![0.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn configs_written_before_conditional_vaes_still_load() {
        use crate::data::ImageShape;
        use crate::models::autoencoder::{Arch, BodyConfig};
        let shape = ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let mut json =
            serde_json::to_value(VaeConfig::new(BodyConfig::new(Arch::Mlp, shape))).unwrap();
        json.as_object_mut().unwrap().remove("num_classes");
        let config: VaeConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config.num_classes, None);
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
        let shape = crate::data::ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let body =
            BodyConfig::new(crate::models::autoencoder::Arch::Mlp, shape).with_hidden(vec![400]);
        let model = VaeConfig::new(body).init(&device);
        let x = Tensor::<4>::random([5, 1, 28, 28], Distribution::Default, &device);
        let (loss, out) = model.loss(x, None);
        assert_eq!(out.output.dims(), [5, 1, 28, 28]);
        assert_eq!(out.mean.dims(), [5, 20]);
        assert_eq!(out.z.dims(), [5, 20]);
        assert_eq!(loss.reconstruction.dims(), [5]);
        assert_eq!(loss.kl.dims(), [5]);
        // 784·400 + 400 + 2·(400·20 + 20) + 20·400 + 400 + 400·784 + 784 parameters.
        assert_eq!(model.num_params(), 652_824);
    }

    #[test]
    fn conv_vae_shapes() {
        let device = Device::flex();
        let shape = crate::data::ImageShape {
            channels: 3,
            height: 32,
            width: 32,
        };
        let body = BodyConfig::new(crate::models::autoencoder::Arch::Conv, shape);
        let model = VaeConfig::new(body).with_latent(4).init(&device);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let (loss, out) = model.loss(x, None);
        assert_eq!(out.output.dims(), [2, 3, 32, 32]);
        assert_eq!(loss.kl.dims(), [2]);
    }
}
