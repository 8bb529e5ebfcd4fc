//! Throughput of one VAE training step (the pytorch/examples model: MLP 784-400-20, Bernoulli,
//! Adam, batch 128: forward, backward, optimizer update), latentlab against PyTorch on the same
//! data in the same run.
//!
//!     cargo bench --bench vae_step
//!     cargo bench --bench vae_step -- --steps 200 --repeats 3 --no-python
//!
//! PyTorch runs through `bench/vae_torch.py throughput` (`pip install torch`) with 2 threads.
//! Each figure is the best of `--repeats` timed runs of `--steps` steps after 20 warm-up steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::prelude::*;
use latentlab::data::discover::DEBIAN_FASHION_MNIST;
use latentlab::data::{BatchConfig, Batches, DataSpec, PixelScale, load_dataset};
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
    let (mut steps, mut repeats, mut python) = (200usize, 3usize, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = args.next().expect("--data PATH").into(),
            "--steps" => steps = args.next().and_then(|v| v.parse().ok()).expect("--steps N"),
            "--repeats" => {
                repeats = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--repeats N")
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
    let batches: Vec<Tensor<4>> = Batches::new(
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
    .map(|b| b.images)
    .collect();
    let mut learner = LatentLearner::new(
        config.init(&autodiff),
        AdamSettings::pytorch(1e-3),
        dataset.shape(),
        Tensor::zeros([1, 20], &device),
        Tensor::zeros([1, 1, 28, 28], &device),
    );
    for i in 0..20 {
        learner.train_step(batches[i % batches.len()].clone());
    }
    let mut best = 0f64;
    for _ in 0..repeats {
        let start = Instant::now();
        for i in 0..steps {
            learner.train_step(batches[i % batches.len()].clone());
        }
        best = best.max((steps * 128) as f64 / start.elapsed().as_secs_f64());
    }
    println!(
        "latentlab (burn 0.22.1 Flex, {} threads): {best:.0} images/s ({steps} steps of batch 128, best of {repeats})",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if !python {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/vae_torch.py");
    let output = Command::new("python3")
        .args([
            script,
            "throughput",
            "--steps",
            &steps.to_string(),
            "--repeats",
            &repeats.to_string(),
        ])
        .args(["--data", data.to_str().unwrap()])
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let json: serde_json::Value =
                serde_json::from_str(text.trim()).expect("JSON from the script");
            let torch = json["images_per_second"].as_f64().unwrap();
            println!(
                "pytorch {} ({} threads): {torch:.0} images/s",
                json["torch"].as_str().unwrap_or("?"),
                json["threads"]
            );
            println!("latentlab / pytorch: {:.2}x", best / torch);
        }
        Ok(out) => eprintln!(
            "pytorch skipped: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => eprintln!("pytorch skipped: {e}"),
    }
}
