//! The two players' losses from D's logits, in nats: Goodfellow et al.'s minimax game and its
//! non-saturating generator loss, both through softplus so a confident D gives finite losses.

use burn::prelude::*;
use burn::tensor::activation::relu;

/// What the generator minimizes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorLoss {
    /// log(1 - D(G(z))), the minimax game as written.
    Minimax,
    /// -log D(G(z)): same fixed point, strong gradients while D wins.
    NonSaturating,
}

/// softplus(x) = log(1 + eˣ), as max(x, 0) + log1p(e^-|x|): finite for any finite x.
pub(crate) fn softplus(x: Tensor<2>) -> Tensor<2> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

/// D's loss, to minimize: -log D(x) - log(1 - D(G(z))), each the mean over images (and patches),
/// in nats. With D = σ(logit): -log σ(a) = softplus(-a) and -log(1 - σ(a)) = softplus(a).
pub fn discriminator_loss(real_logits: Tensor<2>, fake_logits: Tensor<2>) -> Tensor<1> {
    softplus(real_logits.neg()).mean() + softplus(fake_logits).mean() // [1]
}

/// G's loss, to minimize, from D's logits on G's samples: log(1 - D(G(z))) = -softplus(a) for
/// the minimax game, -log D(G(z)) = softplus(-a) for the non-saturating one.
pub fn generator_loss(fake_logits: Tensor<2>, loss: GeneratorLoss) -> Tensor<1> {
    match loss {
        GeneratorLoss::Minimax => softplus(fake_logits).mean().neg(), // [1]
        GeneratorLoss::NonSaturating => softplus(fake_logits.neg()).mean(), // [1]
    }
}

/// Mean D(·) = mean σ(logit): how sure D is that its inputs are real.
pub fn mean_probability(logits: Tensor<2>) -> Tensor<1> {
    burn::tensor::activation::sigmoid(logits).mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(values: &[f32]) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len(), 1]),
            &Device::flex(),
        )
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    fn sigmoid(a: f64) -> f64 {
        1.0 / (1.0 + (-a).exp())
    }

    #[test]
    fn losses_match_hand_computed_values() {
        // D(x) = σ(2) for the reals, D(G(z)) = σ(-1), σ(0.5) for the fakes.
        let fake = [-1.0f64, 0.5];
        let expected_d =
            -sigmoid(2.0).ln() - ((1.0 - sigmoid(-1.0)).ln() + (1.0 - sigmoid(0.5)).ln()) / 2.0;
        let d = scalar(discriminator_loss(logits(&[2.0]), logits(&[-1.0, 0.5])));
        assert!((d - expected_d).abs() < 1e-6, "{d} vs {expected_d}");

        let ns = scalar(generator_loss(
            logits(&[-1.0, 0.5]),
            GeneratorLoss::NonSaturating,
        ));
        let expected_ns = -(sigmoid(fake[0]).ln() + sigmoid(fake[1]).ln()) / 2.0;
        assert!((ns - expected_ns).abs() < 1e-6, "{ns} vs {expected_ns}");

        let minimax = scalar(generator_loss(logits(&[-1.0, 0.5]), GeneratorLoss::Minimax));
        let expected_minimax =
            ((1.0 - sigmoid(fake[0])).ln() + (1.0 - sigmoid(fake[1])).ln()) / 2.0;
        assert!(
            (minimax - expected_minimax).abs() < 1e-6,
            "{minimax} vs {expected_minimax}"
        );
    }

    #[test]
    fn losses_stay_finite_where_sigmoid_then_log_would_not() {
        // σ(-200) is 0 in f32, so log σ would be -inf; softplus gives 200.
        let d = scalar(discriminator_loss(logits(&[-200.0]), logits(&[200.0])));
        assert!((d - 400.0).abs() < 1e-3, "{d}");
        let g = scalar(generator_loss(
            logits(&[-200.0]),
            GeneratorLoss::NonSaturating,
        ));
        assert!((g - 200.0).abs() < 1e-3, "{g}");
    }
}
