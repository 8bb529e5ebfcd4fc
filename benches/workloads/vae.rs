//! W1 and W3: one VAE training step (forward, backward, Adam) at batch 128 on Fashion-MNIST,
//! Bernoulli likelihood, z of 20: W1 the pytorch/examples MLP (784-400-20), W3 our default conv
//! body (two 4x4 stride-2 convolutions, 32 and 64 channels, mirrored by transposed ones).
//! Reference: `bench/vae_torch.py throughput --arch mlp|conv`.

use std::path::Path;

use burn::prelude::*;
use latentlab::data::{Batch, BatchConfig, Batches, DataSpec, PixelScale, load_dataset};
use latentlab::models::LatentModelConfig;
use latentlab::models::autoencoder::{Arch, BodyConfig};
use latentlab::models::vae::VaeConfig;
use latentlab::optim::AdamSettings;
use latentlab::train::latent::LatentLearner;

pub const BATCH: usize = 128;

/// Images per second of `steps` training steps after 20 of warm-up.
pub fn images_per_second(arch: Arch, data: &Path, steps: usize, device: &Device) -> f64 {
    let dataset = load_dataset(&DataSpec::Path(data.into()), Default::default()).expect("data");
    let autodiff = device.clone().autodiff();
    autodiff.seed(0);
    let body = match arch {
        Arch::Mlp => BodyConfig::new(Arch::Mlp, dataset.shape()).with_hidden(vec![400]),
        Arch::Conv => BodyConfig::new(Arch::Conv, dataset.shape()),
    };
    let config = LatentModelConfig::Vae(VaeConfig::new(body));
    let batches: Vec<Batch> = Batches::new(
        &dataset.train,
        BatchConfig {
            batch_size: BATCH,
            shuffle_seed: Some(0),
            drop_last: true,
            scale: PixelScale::ZeroOne,
        },
        &autodiff,
    )
    .take(64)
    .collect();
    let mut learner = LatentLearner::new(
        config.init(&autodiff),
        AdamSettings::pytorch(1e-3),
        dataset.shape(),
        Tensor::zeros([1, 20], device),
        Tensor::zeros([1, 1, 28, 28], device),
        Tensor::zeros([1], device),
    );
    let batch = |i: usize| batches[i % batches.len()].clone();
    crate::train_rate(&mut learner, batch, BATCH, 20, steps)
}

/// Multiply-adds of one training step per image, from the layer sizes: every layer's forward
/// product and weight gradient, and its input gradient except for the first layer (whose input
/// is the data).
pub fn multiply_adds(arch: Arch) -> u64 {
    // (forward multiply-adds per image, reads the data)
    let layers: Vec<(u64, bool)> = match arch {
        Arch::Mlp => vec![
            (784 * 400, true),     // encoder
            (400 * 20 * 2, false), // μ and log σ²
            (20 * 400, false),     // decoder
            (400 * 784, false),
        ],
        Arch::Conv => vec![
            (32 * 16 * 14 * 14, true),     // conv 1→32, 28→14 (4x4 kernel)
            (64 * 32 * 16 * 7 * 7, false), // conv 32→64, 14→7
            (3136 * 20 * 2, false),        // μ and log σ²
            (20 * 3136, false),            // projection to 64x7x7
            (64 * 32 * 16 * 7 * 7, false), // transposed conv 64→32, 7→14
            (32 * 16 * 14 * 14, false),    // transposed conv 32→1, 14→28
        ],
    };
    layers
        .iter()
        .map(|&(macs, first)| if first { 2 * macs } else { 3 * macs })
        .sum()
}
