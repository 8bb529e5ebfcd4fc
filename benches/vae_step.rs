//! Throughput of one VAE training step (the pytorch/examples model: MLP 784-400-20, Bernoulli,
//! Adam, batch 128: forward, backward, optimizer update), latentlab against PyTorch on the same
//! data in the same run.
//!
//!     cargo bench --bench vae_step
//!     cargo bench --bench vae_step -- --steps 200 --rounds 5 --no-python
//!
//! PyTorch runs through `bench/vae_torch.py throughput` (`pip install torch`) with 2 threads.
//! The two sides alternate for `--rounds` rounds (a shared VM's speed drifts over minutes, and
//! alternating exposes both to the same drift); each round times `--steps` steps after warm-up.
//! Reported: the best round of each side, and the median of the per-round ratios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::prelude::*;
use latentlab::data::discover::DEBIAN_FASHION_MNIST;
use latentlab::data::{Batch, BatchConfig, Batches, DataSpec, PixelScale, load_dataset};
use latentlab::models::LatentModelConfig;
use latentlab::models::autoencoder::{Arch, BodyConfig};
use latentlab::models::vae::VaeConfig;
use latentlab::train::Learner;
use latentlab::train::latent::{AdamSettings, LatentLearner};

fn main() {
    let mut data = if Path::new(DEBIAN_FASHION_MNIST).is_dir() {
        PathBuf::from(DEBIAN_FASHION_MNIST)
    } else {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/fashion-mnist-subset"
        ))
    };
    let (mut steps, mut rounds, mut python) = (200usize, 5usize, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = args.next().expect("--data PATH").into(),
            "--steps" => steps = args.next().and_then(|v| v.parse().ok()).expect("--steps N"),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--no-python" => python = false,
            _ => {} // cargo passes --bench
        }
    }
    let dataset = load_dataset(&DataSpec::Path(data.clone()), Default::default()).expect("data");
    let device = Device::flex();
    let autodiff = device.clone().autodiff();
    autodiff.seed(0);
    let body = BodyConfig::new(Arch::Mlp, dataset.shape()).with_hidden(vec![400]);
    let config = LatentModelConfig::Vae(VaeConfig::new(body));
    let batches: Vec<Batch> = Batches::new(
        &dataset.train,
        BatchConfig {
            batch_size: 128,
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
        Tensor::zeros([1, 20], &device),
        Tensor::zeros([1, 1, 28, 28], &device),
        Tensor::zeros([1], &device),
    );
    for i in 0..20 {
        learner.train_step(batches[i % batches.len()].clone());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/vae_torch.py");
    let torch_round = || -> Option<(f64, String)> {
        let output = Command::new("python3")
            .args([
                script,
                "throughput",
                "--steps",
                &steps.to_string(),
                "--repeats",
                "1",
            ])
            .args(["--data", data.to_str().unwrap()])
            .output();
        match output {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let json: serde_json::Value =
                    serde_json::from_str(text.trim()).expect("JSON from the script");
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
        for i in 0..steps {
            learner.train_step(batches[i % batches.len()].clone());
        }
        let ours = (steps * 128) as f64 / start.elapsed().as_secs_f64();
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
        "latentlab (burn 0.22.1 Flex, {} threads): {ours_best:.0} images/s (best of {rounds} rounds of {steps} steps, batch 128)",
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
}
