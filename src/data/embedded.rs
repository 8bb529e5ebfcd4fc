//! The dataset compiled into the binary: a class-balanced subset of Fashion-MNIST (10,000 train and
//! 2,000 test images) so that `cargo run` works on any machine, offline. `data/README.md` says how
//! it was cut (`cargo run --release --example cut_embedded_subset`).

use super::idx::{parse_idx, split_from_arrays};
use super::{Dataset, FASHION_MNIST_CLASSES};
use crate::error::{Error, Result};

const DIR: &str = "data/fashion-mnist-subset";
const TRAIN_IMAGES: &[u8] =
    include_bytes!("../../data/fashion-mnist-subset/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] =
    include_bytes!("../../data/fashion-mnist-subset/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] =
    include_bytes!("../../data/fashion-mnist-subset/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] =
    include_bytes!("../../data/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz");

/// Decodes the embedded subset.
pub fn load_embedded() -> Result<Dataset> {
    let split = |images: &[u8], labels: &[u8], stem: &str| {
        let images_name = format!("embedded {DIR}/{stem}-images-idx3-ubyte.gz");
        let labels_name = format!("embedded {DIR}/{stem}-labels-idx1-ubyte.gz");
        split_from_arrays(
            parse_idx(images, &images_name)?,
            parse_idx(labels, &labels_name)?,
            &images_name,
            &labels_name,
        )
        // The embedded files are ours: if they do not decode, the build is broken, not the input.
        .map_err(|e| Error::Internal(e.to_string()))
    };
    Ok(Dataset {
        name: "fashion-mnist-subset".into(),
        source: "the embedded subset (10k train / 2k test, class-balanced)".into(),
        class_names: FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        train: split(TRAIN_IMAGES, TRAIN_LABELS, "train")?,
        test: split(TEST_IMAGES, TEST_LABELS, "t10k")?,
    })
}
