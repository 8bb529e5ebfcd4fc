//! Inception (TF-FID) feature throughput on the CPU: the cost of FID. Runs the Fashion-MNIST
//! test images (full set from Debian's package, else the embedded subset) through
//! `Extractor::extract`, exactly what `eval-samples` does per side, and reports images/s and the
//! time for all of them.
//!
//!     latentlab fid-weights            # once
//!     cargo bench --bench inception                 # 10,000 images
//!     cargo bench --bench inception -- --n 320      # a quick look
//!
//! The PyTorch reference on the same machine: `bench/fid_reference.py` prints `images_per_second`
//! for the package's own pipeline (2 threads).

use std::time::Instant;

use latentlab::commands::fid_weights::default_weights_path;
use latentlab::data::{DataSpec, load_dataset};
use latentlab::eval::features::Extractor;
use latentlab::models::inception::InceptionV3;
use latentlab::train::trainer::limit_split;

fn main() {
    let mut n = 10_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--n" => n = args.next().and_then(|v| v.parse().ok()).expect("--n N"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let device = burn::tensor::Device::flex();
    let weights = default_weights_path().expect("a data directory");
    let net = match InceptionV3::load(&weights, &device) {
        Ok(net) => net,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let dataset = load_dataset(&DataSpec::Auto, Default::default()).expect("a dataset");
    let images = limit_split(&dataset.test, Some(n));
    let extractor = Extractor::Inception(Box::new(net));
    let threads = rayon::current_num_threads();
    eprintln!(
        "{} images of {} ({}), {threads} threads",
        images.len(),
        dataset.name,
        images.shape
    );
    let started = Instant::now();
    let features = extractor
        .extract(&images, &device, "test images", false)
        .expect("features");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "inception features: {} images in {seconds:.1} s = {:.2} images/s ({threads} threads)",
        features.n,
        features.n as f64 / seconds
    );
}
