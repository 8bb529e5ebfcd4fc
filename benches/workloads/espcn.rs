//! W7: one ESPCN training step for ×4 super-resolution of 28x28 gray images (area downsampling
//! to 7x7 in the step, 5x5 conv to 64, 3x3 to 32, 3x3 to 16, sub-pixel shuffle, plus the
//! nearest-upsampled input; L1, no discriminator, batch 64, Adam), as `latentlab train espcn`
//! runs it, on random images in [0, 1]. Reference: `bench/espcn_torch.py`, the same network and
//! step.

use burn::prelude::*;
use latentlab::data::ImageShape;
use latentlab::degrade::Task;
use latentlab::models::espcn::EspcnConfig;
use latentlab::models::pix2pix::{GeneratorConfig, Pix2pixConfig};
use latentlab::optim::AdamSettings;

const SCALE: usize = 4;
const WIDTH: usize = 64;

fn config() -> Pix2pixConfig {
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let espcn = EspcnConfig::new(shape, SCALE).with_width(WIDTH);
    Pix2pixConfig::with_generator(
        Task::Superres(SCALE),
        GeneratorConfig::Espcn(espcn),
        None,
        None,
    )
}

/// Images per second of `steps` steps after 5 of warm-up.
pub fn images_per_second(steps: usize, device: &Device) -> f64 {
    crate::unet::learner_rate(config(), AdamSettings::pytorch(1e-3), steps, device)
}

/// Multiply-adds of one step per image: each convolution's forward product, weight gradient
/// and input gradient (none for the first, which reads the data), at 7x7.
pub fn multiply_adds() -> u64 {
    let pixels = ((28 / SCALE) * (28 / SCALE)) as u64;
    let (w, c) = (WIDTH as u64, 1u64);
    let first = c * w * 25 * pixels;
    let rest = w * (w / 2) * 9 * pixels + (w / 2) * c * (SCALE * SCALE) as u64 * 9 * pixels;
    2 * first + 3 * rest
}
