//! W6: one pix2pix U-Net training step (28x28 gray inpainting: the masked image and its mask in,
//! padded to 32, 5 levels of width 32 to 256, L1 on the hole, no discriminator, batch 64, Adam),
//! as `train/pix2pix.rs` runs it, masks drawn per image included, on random images in [0, 1].
//! Reference: `bench/unet_torch.py`, the same network and step.

use burn::prelude::*;
use burn::tensor::Distribution;
use latentlab::data::{Batch, ImageShape};
use latentlab::degrade::Task;
use latentlab::models::pix2pix::{GeneratorConfig, Pix2pixConfig};
use latentlab::optim::AdamSettings;
use latentlab::train::pix2pix::Pix2pixLearner;

pub const BATCH: usize = 64;
const WIDTH: usize = 32;

fn config() -> Pix2pixConfig {
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    Pix2pixConfig::for_task(Task::Inpaint, shape, WIDTH, None, None)
}

/// Images per second of `steps` steps after 5 of warm-up.
pub fn images_per_second(steps: usize, device: &Device) -> f64 {
    let mut adam = AdamSettings::pytorch(1e-3);
    adam.beta_1 = 0.5;
    learner_rate(config(), adam, steps, device)
}

/// Images per second of `steps` steps of `config`'s learner (no discriminator) after 5 of
/// warm-up, on random gray 28x28 images in [0, 1].
pub fn learner_rate(
    config: Pix2pixConfig,
    adam: AdamSettings,
    steps: usize,
    device: &Device,
) -> f64 {
    let autodiff = device.clone().autodiff();
    autodiff.seed(0);
    let mut learner = Pix2pixLearner::new(
        config.clone(),
        config.init_generator(&autodiff),
        None,
        adam,
        0,
        vec![],
    );
    let batch = Batch {
        images: Tensor::random(
            [BATCH, 1, 28, 28],
            Distribution::Uniform(0.0, 1.0),
            &autodiff,
        ),
        labels: Tensor::zeros([BATCH], &autodiff),
        indices: Vec::new(),
    };
    crate::train_rate(&mut learner, |_| batch.clone(), BATCH, 5, steps)
}

/// Multiply-adds of one step per image: each convolution's forward product, weight gradient
/// and input gradient (none for the first, which reads the data), at the padded 32 px.
pub fn multiply_adds() -> u64 {
    let GeneratorConfig::Unet(config) = config().generator else {
        unreachable!("W6 times a U-Net")
    };
    let levels = config.levels();
    let widths: Vec<u64> = (0..levels)
        .map(|i| ((WIDTH << i).min(8 * WIDTH)) as u64)
        .collect();
    let side = config.padded_side() as u64;
    // A 4x4 stride-2 convolution between c_a channels at side s and c_b at s/2, either way.
    let layer = |c_a: u64, c_b: u64, small: u64| c_a * c_b * 16 * small * small;
    let mut first = 0;
    let mut total = 0;
    let mut previous = config.in_channels as u64;
    for (i, &w) in widths.iter().enumerate() {
        let macs = layer(previous, w, side >> (i + 1));
        if i == 0 {
            first = macs;
        }
        total += macs;
        previous = w;
    }
    for i in (1..levels).rev() {
        let inputs = if i == levels - 1 {
            widths[i]
        } else {
            2 * widths[i]
        };
        total += layer(inputs, widths[i - 1], side >> (i + 1));
    }
    total += layer(2 * widths[0], config.shape.channels as u64, side >> 1);
    3 * total - first
}
