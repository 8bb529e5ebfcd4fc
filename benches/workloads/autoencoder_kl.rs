//! W9: one training step of latent diffusion's first stage (`models/autoencoder_kl.rs`: 28x28
//! gray padded to 32, f = 4, 4 latent channels, width 16, L1 + 10⁻⁶·KL, batch 128, Adam) on
//! random images in [−1, 1]: the step `train/autoencoder_kl.rs` takes.
//! Reference: `bench/autoencoder_kl_torch.py`, the same network and step.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use latentlab::data::ImageShape;
use latentlab::models::autoencoder_kl::AutoencoderKlConfig;
use latentlab::optim::AdamSettings;

const BATCH: usize = 128;
const LR: f64 = 1e-3;

/// Images per second of `steps` steps after 3 of warm-up.
pub fn images_per_second(steps: usize, device: &Device) -> f64 {
    let autodiff = device.clone().autodiff();
    autodiff.seed(0);
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let config = AutoencoderKlConfig::new(shape).with_width(16);
    let mut model = Some(config.init(&autodiff));
    let mut optimizer = AdamSettings::pytorch(LR).init();
    let images = Tensor::<4>::random(
        [BATCH, 1, 28, 28],
        Distribution::Uniform(-1.0, 1.0),
        &autodiff,
    );
    let mut run = |count: usize| {
        let mut last = None;
        for _ in 0..count {
            let network = model.take().expect("the model between steps");
            let loss = network.objective(images.clone(), &config).loss;
            let grads = GradientsParams::from_grads(loss.backward(), &network);
            model = Some(optimizer.step(LR, network, grads));
            last = Some(loss.detach());
        }
        last.map(|loss| loss.into_scalar::<f32>())
    };
    run(3);
    let start = std::time::Instant::now();
    let loss = run(steps);
    assert!(loss.is_some_and(f32::is_finite), "W9's loss went {loss:?}");
    (steps * BATCH) as f64 / start.elapsed().as_secs_f64()
}
