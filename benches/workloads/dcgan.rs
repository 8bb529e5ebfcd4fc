//! W2: one DCGAN training iteration (32x32x3, ngf = ndf = 64, batch 64: one D step and one G
//! step, Adam, as `train/gan.rs` runs Algorithm 1 with k = 1), on random images in [-1, 1] (the
//! data do not change the arithmetic). Reference: `bench/dcgan_torch.py`, the same networks and
//! steps.

use std::time::Instant;

use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::{BatchNormConfig, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use latentlab::data::{Batch, ImageShape};
use latentlab::models::gan::{DiscriminatorArch, GanConfig, GeneratorArch};
use latentlab::ops::{FastConv, FusedNormAct};
use latentlab::optim::AdamSettings;
use latentlab::train::gan::GanLearner;

pub const BATCH: usize = 64;

/// Images per second of `steps` iterations after 5 of warm-up.
pub fn images_per_second(steps: usize, device: &Device) -> f64 {
    let autodiff = device.clone().autodiff();
    autodiff.seed(0);
    let shape = ImageShape {
        channels: 3,
        height: 32,
        width: 32,
    };
    let config = GanConfig::new(shape, GeneratorArch::Dcgan, DiscriminatorArch::Dcgan);
    let mut adam = AdamSettings::pytorch(2e-4);
    adam.beta_1 = 0.5;
    let mut learner = GanLearner::new(
        config.clone(),
        config.init_generator(&autodiff),
        config.init_discriminator(&autodiff),
        adam,
        Tensor::zeros([1, 100], device),
    );
    let batch = Batch {
        images: Tensor::random(
            [BATCH, 3, 32, 32],
            Distribution::Uniform(-1.0, 1.0),
            &autodiff,
        ),
        labels: Tensor::zeros([BATCH], &autodiff),
        indices: Vec::new(),
    };
    crate::train_rate(&mut learner, |_| batch.clone(), BATCH, 5, steps)
}

/// Multiply-adds of one iteration per real image. G runs forward twice (fresh noise for the D
/// step and for the G step) and backward once; D runs forward three times (real, fake, and in
/// the G step) with weight gradients each time (PyTorch computes them in the G step too) and
/// input gradients below its first layer in the D step, through all of it in the G step.
pub fn multiply_adds() -> u64 {
    let project = 100 * 256 * 4 * 4;
    // A 4x4 stride-2 (transposed) convolution between c_a channels at side s and c_b at 2s.
    let up = |c_a: u64, c_b: u64, s: u64| c_a * c_b * 16 * s * s;
    let generator = project + up(256, 128, 4) + up(128, 64, 8) + up(64, 3, 16);
    let d_first = up(64, 3, 16);
    let discriminator = d_first + up(128, 64, 8) + up(256, 128, 4) + 256 * 16;
    let g_work = 2 * generator + generator + (generator - project);
    let d_work =
        3 * discriminator + 3 * discriminator + 2 * (discriminator - d_first) + discriminator;
    g_work + d_work
}

/// Median milliseconds of `f` over a few runs.
fn time_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[3]
}

/// Forward and forward+backward times of one layer on an input of `dims`.
fn layer<const D: usize, const E: usize>(
    device: &Device,
    dims: [usize; D],
    forward: impl Fn(Tensor<D>) -> Tensor<E>,
) -> (f64, f64) {
    let input = Tensor::<D>::random(dims, Distribution::Normal(0.0, 1.0), device).require_grad();
    let fwd = time_ms(|| {
        let out = forward(input.clone());
        let _ = out.sum().into_scalar::<f32>();
    });
    let both = time_ms(|| {
        let out = forward(input.clone());
        let grads = out.sum().backward();
        let _ = input.grad(&grads).map(|g| g.sum().into_scalar::<f32>());
    });
    (fwd, both - fwd)
}

/// Each layer's forward and backward alone at the shapes one iteration meets, and how often an
/// iteration runs it: where the time of an iteration at `images_per_second` goes.
pub fn layer_table(images_per_second: f64) {
    let device = &Device::flex().autodiff();
    let b = BATCH;
    let up = |c: [usize; 2]| {
        ConvTranspose2dConfig::new(c, [4, 4])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .with_bias(false)
            .init(device)
    };
    let down = |c: [usize; 2]| {
        Conv2dConfig::new(c, [4, 4])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(device)
    };
    // (name, forward ms, backward ms, runs per iteration: G forward 2x in an iteration (D step,
    // G step), backward once; D forward 3x (real, fake, G step), backward 3x (two in the D step's
    // one backward, one in the G step's)).
    let mut rows: Vec<(String, f64, f64, f64, f64)> = Vec::new();
    let mut add = |name: &str, (f, bwd): (f64, f64), forwards: f64, backwards: f64| {
        rows.push((name.to_string(), f, bwd, forwards, backwards));
    };
    let project = LinearConfig::new(100, 4096).with_bias(false).init(device);
    add(
        "G linear 100→4096",
        layer(device, [b, 100], |x| project.forward(x)),
        2.0,
        1.0,
    );
    for (c, side) in [(256, 4), (128, 8), (64, 16)] {
        let norm = BatchNormConfig::new(c).init(device);
        add(
            &format!("G batch norm + ReLU {c}@{side}"),
            layer(device, [b, c, side, side], |x| norm.forward_relu(x)),
            2.0,
            1.0,
        );
    }
    for (c, side) in [([256, 128], 4), ([128, 64], 8), ([64, 3], 16)] {
        let conv = up(c);
        add(
            &format!("G conv-transpose {}→{} @{side}→{}", c[0], c[1], 2 * side),
            layer(device, [b, c[0], side, side], |x| conv.forward_fast(x)),
            2.0,
            1.0,
        );
    }
    for (c, side) in [([3, 64], 32), ([64, 128], 16), ([128, 256], 8)] {
        let conv = down(c);
        add(
            &format!("D conv {}→{} @{side}→{}", c[0], c[1], side / 2),
            layer(device, [b, c[0], side, side], |x| conv.forward_fast(x)),
            3.0,
            3.0,
        );
    }
    for (c, side) in [(128, 8), (256, 4)] {
        let norm = BatchNormConfig::new(c).init(device);
        add(
            &format!("D batch norm + LeakyReLU {c}@{side}"),
            layer(device, [b, c, side, side], |x| {
                norm.forward_leaky_relu(x, 0.2)
            }),
            3.0,
            3.0,
        );
    }
    let logit = Conv2dConfig::new([256, 1], [4, 4])
        .with_bias(false)
        .init(device);
    add(
        "D conv 256→1 (4x4 valid)",
        layer(device, [b, 256, 4, 4], |x| logit.forward_fast(x)),
        3.0,
        3.0,
    );
    let iteration_ms = 1e3 * BATCH as f64 / images_per_second;
    println!(
        "\nwhere an iteration's {iteration_ms:.0} ms go (each layer alone, batch {b}; ms per run, runs per iteration, ms per iteration):"
    );
    println!(
        "{:<38} {:>8} {:>8} {:>5} {:>5} {:>9}",
        "layer", "fwd", "bwd", "×fwd", "×bwd", "per iter"
    );
    let mut accounted = 0.0;
    for (name, f, bwd, nf, nb) in &rows {
        let total = f * nf + bwd * nb;
        accounted += total;
        println!("{name:<38} {f:>8.2} {bwd:>8.2} {nf:>5} {nb:>5} {total:>9.1}");
    }
    println!(
        "layers: {accounted:.0} ms of {iteration_ms:.0} ms; the rest is the loss, Adam (two optimizers, 3.6 M weights) and graph bookkeeping"
    );
}
