//! The datasets compiled into the binary, so that every command works on any machine, offline:
//! a class-balanced subset of Fashion-MNIST (10,000 train and 2,000 test images), and `photo
//! patches`, 32x32 colour tiles of public-domain and CC0 photographs for colorization. `data/README.md`
//! says how each was cut.

use super::idx::{parse_idx, split_from_arrays};
use super::{Dataset, FASHION_MNIST_CLASSES, Split};
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

const RGB_DIR: &str = "data/photo-patches";
const RGB_TRAIN_IMAGES: &[u8] =
    include_bytes!("../../data/photo-patches/train-images-idx3-ubyte.gz");
const RGB_TRAIN_LABELS: &[u8] =
    include_bytes!("../../data/photo-patches/train-labels-idx1-ubyte.gz");
const RGB_TEST_IMAGES: &[u8] = include_bytes!("../../data/photo-patches/t10k-images-idx3-ubyte.gz");
const RGB_TEST_LABELS: &[u8] = include_bytes!("../../data/photo-patches/t10k-labels-idx1-ubyte.gz");

/// The seven photographs the colour tiles were cut from, longer side 128 (PNG), by class name:
/// real images for `latentlab style --content embedded:NAME` on a fresh machine.
pub(crate) const PHOTOS: [(&str, &[u8]); 7] = [
    (
        "astronaut",
        include_bytes!("../../data/photos/astronaut.png"),
    ),
    ("cat", include_bytes!("../../data/photos/cat.png")),
    ("coffee", include_bytes!("../../data/photos/coffee.png")),
    ("rocket", include_bytes!("../../data/photos/rocket.png")),
    ("hubble", include_bytes!("../../data/photos/hubble.png")),
    ("ihc", include_bytes!("../../data/photos/ihc.png")),
    ("retina", include_bytes!("../../data/photos/retina.png")),
];

/// The PNG bytes of embedded photograph `name`.
pub fn photo(name: &str) -> Option<&'static [u8]> {
    PHOTOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// The photographs the colour tiles come from, in label order (`data/cut_rgb_patches.py`).
pub(crate) const PHOTO_CLASSES: [&str; 7] = [
    "astronaut",
    "cat",
    "coffee",
    "rocket",
    "hubble",
    "ihc",
    "retina",
];

fn split(dir: &str, images: &[u8], labels: &[u8], stem: &str) -> Result<Split> {
    let images_name = format!("embedded {dir}/{stem}-images-idx3-ubyte.gz");
    let labels_name = format!("embedded {dir}/{stem}-labels-idx1-ubyte.gz");
    split_from_arrays(
        parse_idx(images, &images_name)?,
        parse_idx(labels, &labels_name)?,
        &images_name,
        &labels_name,
    )
    // The embedded files are ours: if they do not decode, the build is broken, not the input.
    .map_err(|e| Error::Internal(e.to_string()))
}

/// Decodes the embedded Fashion-MNIST subset (`--data embedded`).
pub fn load_embedded() -> Result<Dataset> {
    Ok(Dataset {
        name: "fashion-mnist-subset".into(),
        source: "the embedded subset (10k train / 2k test, class-balanced)".into(),
        class_names: FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        train: split(DIR, TRAIN_IMAGES, TRAIN_LABELS, "train")?,
        test: split(DIR, TEST_IMAGES, TEST_LABELS, "t10k")?,
    })
}

/// Decodes the embedded colour tiles (`--data embedded-rgb`): 3x32x32, labelled by photograph.
pub(crate) fn load_embedded_rgb() -> Result<Dataset> {
    Ok(Dataset {
        name: "photo-patches".into(),
        source: "the embedded colour tiles of 7 public-domain/CC0 photographs (scikit-image's)"
            .into(),
        class_names: PHOTO_CLASSES.iter().map(|s| s.to_string()).collect(),
        train: split(RGB_DIR, RGB_TRAIN_IMAGES, RGB_TRAIN_LABELS, "train")?,
        test: split(RGB_DIR, RGB_TEST_IMAGES, RGB_TEST_LABELS, "t10k")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_tiles_decode_as_rgb_with_every_photograph_in_both_splits() {
        let data = load_embedded_rgb().unwrap();
        assert_eq!(data.shape().to_string(), "3x32x32");
        assert_eq!((data.train.len(), data.test.len()), (1849, 453));
        for split in [&data.train, &data.test] {
            for class in 0..PHOTO_CLASSES.len() as u8 {
                assert!(split.labels.contains(&class), "photo {class} missing");
            }
        }
        // Colour, not gray stored three times: R and B differ somewhere.
        let image = data.test.image(0);
        assert!((0..1024).any(|p| image[p] != image[2048 + p]));
    }
}
