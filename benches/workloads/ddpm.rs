//! W8: one DDPM training step of the diffusion denoiser (28x28 gray, width 32, 2 levels, the
//! simple loss at uniform t over the cosine schedule, batch 64, Adam), on random images in
//! [−1, 1]: the step `train/diffusion.rs` takes, without its EMA. W8-sample: DDIM sampling with
//! the same network (η = 0, x̂₀ clipped), in network evaluations of one image per second.
//! W10: the same step for latent diffusion's U-Net (4x8x8 codes, width 64, self-attention at
//! 4x4 with 4 heads). Reference: `bench/ddpm_torch.py` (`--latent`), the same networks, step and
//! sampler.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use latentlab::data::ImageShape;
use latentlab::models::attention::AttentionConfig;
use latentlab::models::denoiser::DenoiserConfig;
use latentlab::models::diffusion::{NoiseSchedule, Sampler, Schedule, sample, simple_loss};
use latentlab::optim::AdamSettings;

const BATCH: usize = 64;
const WIDTH: usize = 32;
const LR: f64 = 2e-4;

/// Images per second of `steps` steps after 3 of warm-up.
pub fn images_per_second(steps: usize, device: &Device) -> f64 {
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    step_rate(DenoiserConfig::new(shape).with_width(WIDTH), steps, device)
}

/// W10: codes per second of latent diffusion's U-Net, `steps` steps after 3 of warm-up.
pub fn latent_images_per_second(steps: usize, device: &Device) -> f64 {
    let shape = ImageShape {
        channels: 4,
        height: 8,
        width: 8,
    };
    let config = DenoiserConfig::new(shape)
        .with_width(64)
        .with_attention(Some(AttentionConfig::new(vec![4]).with_heads(4)));
    step_rate(config, steps, device)
}

fn step_rate(config: DenoiserConfig, steps: usize, device: &Device) -> f64 {
    let autodiff = device.clone().autodiff();
    autodiff.seed(0);
    let shape = config.shape;
    let mut model = Some(config.init(&autodiff));
    let schedule = NoiseSchedule::new(Schedule::Cosine, 1000);
    let mut optimizer = AdamSettings::pytorch(LR).init();
    let x0 = Tensor::<4>::random(
        [BATCH, shape.channels, shape.height, shape.width],
        Distribution::Uniform(-1.0, 1.0),
        &autodiff,
    );
    let mut run = |count: usize, first: usize| {
        let mut last = None;
        for i in first..first + count {
            let denoiser = model.take().expect("the model between steps");
            let loss = simple_loss(&schedule, x0.clone(), i as u64, |x, t| {
                denoiser.forward(x, t, None)
            });
            let grads = GradientsParams::from_grads(loss.backward(), &denoiser);
            model = Some(optimizer.step(LR, denoiser, grads));
            last = Some(loss.detach());
        }
        last.map(|loss| loss.into_scalar::<f32>())
    };
    run(3, 0);
    let start = std::time::Instant::now();
    let loss = run(steps, 3);
    assert!(loss.is_some_and(f32::is_finite), "W8's loss went {loss:?}");
    (steps * BATCH) as f64 / start.elapsed().as_secs_f64()
}

/// Evaluations of the network on one image per second while DDIM samples a batch of 64 in
/// `steps` steps (after a warm-up walk of 3 steps), untrained weights: the arithmetic is the same.
pub fn sampling_evaluations_per_second(steps: usize, device: &Device) -> f64 {
    device.seed(0);
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let model = DenoiserConfig::new(shape).with_width(WIDTH).init(device);
    let schedule = NoiseSchedule::new(Schedule::Cosine, 1000);
    let walk = |steps: usize| {
        let x_t = Tensor::<4>::random([BATCH, 1, 28, 28], Distribution::Normal(0.0, 1.0), device);
        let sampler = Sampler::Ddim { steps, eta: 0.0 };
        let predict = |x: Tensor<4>, t: usize| model.forward(x, &[t; BATCH], None);
        let images = sample(&schedule, sampler, x_t, predict, |_, _| {});
        images.into_data().iter::<f32>().all(f32::is_finite)
    };
    walk(3);
    let start = std::time::Instant::now();
    assert!(walk(steps), "W8-sample's images went non-finite");
    (steps * BATCH) as f64 / start.elapsed().as_secs_f64()
}

/// Multiply-adds of one step per image: each convolution's forward product, weight gradient and
/// input gradient (no input gradient for the first, which reads the data). The time MLPs are
/// a few thousand and left out.
pub fn multiply_adds() -> u64 {
    let w = WIDTH as u64;
    let (big, mid, small) = (28 * 28, 14 * 14, 7 * 7);
    // (c_in, c_out, kernel taps, pixels) per convolution; a stride-2 one (either way) at its
    // smaller side, where each tap is one multiply-add per pixel.
    let layers = [
        (w, w, 9, big),         // level 0 block, first conv
        (w, w, 9, big),         // level 0 block, second conv
        (w, 2 * w, 16, mid),    // down 28 → 14
        (2 * w, 2 * w, 9, mid), // level 1 block
        (2 * w, 2 * w, 9, mid),
        (2 * w, 2 * w, 16, small), // down 14 → 7
        (2 * w, 2 * w, 9, small),  // middle block
        (2 * w, 2 * w, 9, small),
        (2 * w, 2 * w, 16, small), // up 7 → 14
        (4 * w, 2 * w, 9, mid),    // up level 1 block (skip joined)
        (2 * w, 2 * w, 9, mid),
        (4 * w, 2 * w, 1, mid), // its 1x1 shortcut
        (2 * w, w, 16, mid),    // up 14 → 28
        (2 * w, w, 9, big),     // up level 0 block
        (w, w, 9, big),
        (2 * w, w, 1, big), // its shortcut
        (w, 1, 9, big),     // out
    ];
    let rest: u64 = layers.iter().map(|&(i, o, k, p)| i * o * k * p).sum();
    let first = w * 9 * big; // conv in, 1 → w
    2 * first + 3 * rest
}
