//! Zero-shot editing with a trained decoder or generator: search its latent space for the code z
//! whose image agrees with what was seen, y = A·x ([`super::Degradation`]), then decode it.
//!
//! - VAE (and autoencoder): minimise −log p(y | z) + ½‖z‖², the likelihood the decoder was
//!   trained with restricted to the observed entries, plus the prior's −log N(z; 0, I) (a MAP
//!   estimate; the autoencoder has no prior, so only the first term). The search starts at the
//!   encoder's μ for the input with its unknown part taken from the training mean.
//! - GAN (Zhu et al. 2016, "generative visual manipulation"; Yeh et al. 2017 for inpainting):
//!   minimise ‖A·G(z) − y‖² from several draws of the prior and keep, per image, the draw that
//!   ends lowest: the loss is not convex in z and one start often stalls. The draws race for a
//!   quarter of the steps and only each image's leader runs the rest (successive halving in one
//!   cut), which costs 4·50 + 150 generator passes per image instead of 4·200.
//!
//! Both descend with Adam on z alone; the network is frozen (batch norm uses its running
//! statistics, so an image does not depend on the others in its batch).

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::degrade::ObservedBatch;
use crate::models::LatentModel;
use crate::models::likelihood::Likelihood;
use crate::optim::AdamSettings;
use crate::sample::{Generative, prior_noise};

/// How long and how widely the search looks.
#[derive(Debug, Clone, Copy)]
pub struct InversionSettings {
    /// Adam steps on z.
    pub steps: usize,
    /// Adam's learning rate on z (z ~ N(0, I), so 0.05 moves a code across the prior's bulk in
    /// about a hundred steps).
    pub lr: f64,
    /// Starting draws per image for a GAN.
    pub restarts: usize,
    /// Seeds the GAN's starting draws.
    pub seed: u64,
}

impl Default for InversionSettings {
    fn default() -> Self {
        Self {
            steps: 200,
            lr: 0.05,
            restarts: 4,
            seed: 0,
        }
    }
}

/// The code a search optimises, as a module so burn's optimizer can step it.
#[derive(Module, Debug)]
struct Code {
    z: Param<Tensor<2>>,
}

/// Adam on z from `start` (`[rows, latent]` on an autodiff device), minimising the sum over
/// rows of `objective(z)` (`[rows]`); rows do not interact, so each row is its own search.
/// Returns the final z and its objective, detached.
pub(crate) fn descend(
    start: Tensor<2>,
    settings: &InversionSettings,
    objective: impl Fn(Tensor<2>) -> Tensor<1>,
) -> (Tensor<2>, Tensor<1>) {
    let mut code = Code {
        z: Param::from_tensor(start.detach()),
    };
    let mut optimizer = AdamSettings::pytorch(settings.lr).init();
    for _ in 0..settings.steps {
        let loss = objective(code.z.val()).sum(); // [1]
        let grads = GradientsParams::from_grads(loss.backward(), &code);
        code = optimizer.step(settings.lr, code, grads);
    }
    let z = code.z.val().detach();
    let end = objective(z.clone()).detach(); // [rows]
    (z, end)
}

/// −log p(y | z) (+ ½‖z‖² for a VAE) per image: the objective of the latent-model search.
/// `model` must be frozen on an autodiff device.
pub(crate) fn latent_objective(
    model: &LatentModel,
    observed: &ObservedBatch,
    z: Tensor<2>,
) -> Tensor<1> {
    let mean = model.decode_mean(z.clone(), None); // [n, c, h, w] in [0, 1]
    let likelihood = model.head().likelihood;
    let nll = match likelihood {
        Likelihood::Bernoulli => observed.cross_entropy(mean),
        Likelihood::Gaussian { sigma } => {
            let sigma = sigma
                .or_else(|| model.head().learned_sigma())
                .expect("a Gaussian head has a fixed or a learned σ");
            observed.squared_error(mean) / (2.0 * sigma * sigma)
        }
    }; // [n]
    match model {
        LatentModel::Ae(_) => nll,
        LatentModel::Vae(_) => nll + z.powi_scalar(2).sum_dim(1).squeeze_dim::<1>(1) * 0.5,
    }
}

/// The VAE's (autoencoder's) fill for a batch: decode the code found from the encoder's μ of
/// `starts` (`[n, c, h, w]`, the inputs with their unknown part from the training mean).
pub(crate) fn invert_latent(
    model: &LatentModel,
    starts: Tensor<4>,
    observed: &ObservedBatch,
    settings: &InversionSettings,
) -> Tensor<4> {
    let start = model.encode_mean(starts, None).detach(); // [n, latent]
    let (z, _) = descend(start, settings, |z| latent_objective(model, observed, z));
    model.decode_mean(z, None).detach() // [n, c, h, w]
}

/// The GAN's fill for a batch of `n` images (`observed` holds one row each): every image starts
/// from `settings.restarts` prior draws, searched together for a quarter of the steps; each
/// image's lowest then continues alone for the rest.
pub(crate) fn invert_generator(
    generator: &dyn Generative,
    n: usize,
    observed: &ObservedBatch,
    settings: &InversionSettings,
    device: &Device,
) -> Tensor<4> {
    let restarts = settings.restarts.max(1);
    let screening = if restarts > 1 { settings.steps / 4 } else { 0 };
    let start = prior_noise(n * restarts, generator.latent(), settings.seed, device); // [n·r, latent]
    let repeated = observed.repeat(restarts);
    let race = InversionSettings {
        steps: screening,
        ..*settings
    };
    let (z, end) = descend(start, &race, |z| {
        repeated.squared_error(generator.generate(z, None))
    });
    let end: Vec<f32> = end.into_data().iter::<f32>().collect();
    let leaders: Vec<i64> = (0..n)
        .map(|i| {
            (0..restarts)
                .map(|r| r * n + i)
                .min_by(|&a, &b| end[a].total_cmp(&end[b]))
                .expect("at least one restart") as i64
        })
        .collect();
    let rows = Tensor::<1, Int>::from_data(TensorData::new(leaders, [n]), device);
    let rest = InversionSettings {
        steps: settings.steps - screening,
        ..*settings
    };
    let (z, _) = descend(z.select(0, rows), &rest, |z| {
        observed.squared_error(generator.generate(z, None))
    });
    generator.generate(z, None).detach() // [n, c, h, w]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;
    use crate::degrade::{Degradation, Mask};
    use crate::models::LatentModelConfig;
    use crate::models::autoencoder::{Arch, BodyConfig};
    use crate::models::gan::{DiscriminatorArch, GanConfig, GeneratorArch};
    use crate::models::vae::VaeConfig;
    use crate::sample::Trained;

    fn shape() -> ImageShape {
        ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        }
    }

    fn targets(n: usize) -> Vec<Vec<f32>> {
        let data = crate::data::embedded::load_embedded().unwrap();
        (0..n).map(|i| data.test.unit_image(i)).collect()
    }

    fn observed(images: &[Vec<f32>], device: &Device) -> ObservedBatch {
        let degradations: Vec<Degradation> = (0..images.len())
            .map(|i| Degradation::Mask(Mask::free(28, 28, i as u64)))
            .collect();
        ObservedBatch::new(images, &degradations, shape(), device)
    }

    #[test]
    fn vae_inversion_closes_most_of_the_gap_to_a_planted_code() {
        let device = Device::flex().autodiff();
        let config = LatentModelConfig::Vae(
            VaeConfig::new(BodyConfig::new(Arch::Mlp, shape()).with_hidden(vec![64]))
                .with_latent(4),
        );
        let model = config.init(&device).freeze();
        // Images the decoder makes from known codes, seen through free-form masks.
        let planted = Tensor::<2>::from_data(
            TensorData::new(vec![1.5f32, -1.0, 0.5, 2.0, -2.0, 1.0, -0.5, 1.0], [2, 4]),
            &device,
        );
        let images: Vec<Vec<f32>> = model
            .decode_mean(planted.clone(), None)
            .into_data()
            .iter::<f32>()
            .collect::<Vec<f32>>()
            .chunks(784)
            .map(<[f32]>::to_vec)
            .collect();
        let observed = observed(&images, &device);
        let objective = |z: Tensor<2>| {
            latent_objective(&model, &observed, z)
                .sum()
                .into_scalar::<f32>()
        };
        let start = Tensor::<2>::zeros([2, 4], &device);
        let (before, best) = (objective(start.clone()), objective(planted));
        let settings = InversionSettings {
            steps: 100,
            ..Default::default()
        };
        let (_, end) = descend(start, &settings, |z| latent_objective(&model, &observed, z));
        let after = end.sum().into_scalar::<f32>();
        assert!(
            before - after > 0.5 * (before - best),
            "objective {before} -> {after}; at the planted codes {best}"
        );
    }

    #[test]
    fn gan_inversion_lowers_the_visible_error_and_keeps_the_best_restart() {
        let device = Device::flex().autodiff();
        let config = GanConfig::new(shape(), GeneratorArch::Mlp, DiscriminatorArch::Mlp)
            .with_latent(8)
            .with_mlp_hidden(vec![32]);
        let generator = Trained {
            config: config.clone(),
            model: config.init(&device).freeze(),
        };
        let images = targets(2);
        let settings = InversionSettings {
            steps: 30,
            restarts: 3,
            ..Default::default()
        };
        let single = observed(&images, &device);
        let start = prior_noise(2 * 3, 8, settings.seed, &device);
        let before = single
            .repeat(3)
            .squared_error(generator.generate(start, None));
        let before: Vec<f32> = before.into_data().iter::<f32>().collect();
        let filled = invert_generator(&generator, 2, &single, &settings, &device);
        let after: Vec<f32> = single
            .squared_error(filled)
            .into_data()
            .iter::<f32>()
            .collect();
        for i in 0..2 {
            let best_start = (0..3)
                .map(|r| before[r * 2 + i])
                .fold(f32::INFINITY, f32::min);
            assert!(
                after[i] < best_start,
                "image {i}: {best_start} -> {}",
                after[i]
            );
        }
    }
}
