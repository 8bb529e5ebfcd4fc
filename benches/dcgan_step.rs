//! Throughput of one DCGAN training iteration (32x32x3, batch 64: one D step and one G step,
//! Adam, as `train/gan.rs` runs Algorithm 1 with k = 1) against the same models in PyTorch
//! (`bench/dcgan_torch.py`), and where the time goes, layer by layer.
//!
//!     cargo bench --bench dcgan_step
//!     cargo bench --bench dcgan_step -- --steps 30 --rounds 3 --no-python --no-layers
//!
//! The two sides alternate for `--rounds` rounds (a shared VM drifts); reported: the best round
//! of each and the median ratio. The layer table times each layer's forward and backward alone
//! at the shapes one iteration meets, and how many times an iteration runs it.

use std::process::Command;
use std::time::Instant;

use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::{BatchNormConfig, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use latentlab::data::{Batch, ImageShape};
use latentlab::models::gan::{DiscriminatorArch, GanConfig, GeneratorArch};
use latentlab::ops::{FastConv, FusedNormAct};
use latentlab::train::Learner;
use latentlab::train::gan::GanLearner;
use latentlab::train::latent::AdamSettings;

const BATCH: usize = 64;

fn main() {
    let (mut steps, mut rounds, mut python, mut layers) = (30usize, 3usize, true, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--steps" => steps = args.next().and_then(|v| v.parse().ok()).expect("--steps N"),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--no-python" => python = false,
            "--no-layers" => layers = false,
            _ => {} // cargo passes --bench
        }
    }
    let device = Device::flex();
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
        Tensor::zeros([1, 100], &device),
    );
    let batch = Batch {
        images: Tensor::random(
            [BATCH, 3, 32, 32],
            Distribution::Uniform(-1.0, 1.0),
            &autodiff,
        ),
        labels: Tensor::zeros([BATCH], &autodiff),
    };
    for _ in 0..5 {
        learner.train_step(batch.clone());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/dcgan_torch.py");
    let torch_round = || -> Option<(f64, String)> {
        let output = Command::new("python3")
            .args([script, "--steps", &steps.to_string(), "--threads", "2"])
            .output();
        match output {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let json: serde_json::Value =
                    serde_json::from_str(text.lines().last().unwrap_or_default())
                        .expect("JSON from the script");
                Some((
                    json["images_per_second"].as_f64().unwrap(),
                    format!(
                        "pytorch {} ({} threads)",
                        json["torch"].as_str().unwrap_or("?"),
                        json["threads"]
                    ),
                ))
            }
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                eprintln!("pytorch skipped: {}", err.lines().last().unwrap_or(""));
                None
            }
            Err(e) => {
                eprintln!("pytorch skipped: {e}");
                None
            }
        }
    };
    let (mut ours_best, mut torch_best, mut ratios, mut torch_name) = (0f64, 0f64, vec![], None);
    for round in 1..=rounds {
        let start = Instant::now();
        for _ in 0..steps {
            learner.train_step(batch.clone());
        }
        let ours = (steps * BATCH) as f64 / start.elapsed().as_secs_f64();
        ours_best = ours_best.max(ours);
        let mut line = format!("round {round}: latentlab {ours:.0} images/s");
        if python && let Some((torch, name)) = torch_round() {
            torch_best = torch_best.max(torch);
            ratios.push(ours / torch);
            line.push_str(&format!(
                ", pytorch {torch:.0} images/s, ratio {:.2}",
                ours / torch
            ));
            torch_name = Some(name);
        }
        println!("{line}");
    }
    println!(
        "latentlab (burn 0.22.1 Flex, {} threads): {ours_best:.0} images/s (best of {rounds} rounds of {steps} iterations, batch {BATCH})",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if let Some(name) = torch_name {
        ratios.sort_by(f64::total_cmp);
        println!(
            "{name}: {torch_best:.0} images/s (best of {} rounds)",
            ratios.len()
        );
        println!(
            "latentlab / pytorch: best {:.2}x, median of rounds {:.2}x",
            ours_best / torch_best,
            ratios[ratios.len() / 2]
        );
    }
    if layers {
        layer_table(&autodiff, ours_best);
    }
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

fn layer_table(device: &Device, images_per_second: f64) {
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
