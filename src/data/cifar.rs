//! CIFAR-10's binary version: each record is one label byte followed by 3072 pixel bytes (1024
//! red, 1024 green, 1024 blue, row-major 32x32), five training batches and one test batch.

use std::path::{Path, PathBuf};

use super::{Dataset, ImageShape, Split};
use crate::error::{Error, Result};

pub(crate) const SHAPE: ImageShape = ImageShape {
    channels: 3,
    height: 32,
    width: 32,
};
pub(crate) const RECORD: usize = 1 + 3 * 32 * 32;
pub(crate) const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_FILE: &str = "test_batch.bin";
pub(crate) const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The folder holding the batches: `dir` itself or the `cifar-10-batches-bin` inside it (as the
/// archive unpacks).
pub(crate) fn batches_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
        .into_iter()
        .find(|d| d.join(TEST_FILE).is_file() || d.join(TRAIN_FILES[0]).is_file())
}

/// Decodes the records of one batch file.
pub fn parse_batch(bytes: &[u8], name: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::bad_input(format!(
            "{name}: not a CIFAR-10 batch: {} bytes is not a whole number of {RECORD}-byte records",
            bytes.len()
        )));
    }
    let n = bytes.len() / RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    for record in bytes.chunks_exact(RECORD) {
        if record[0] as usize >= CLASSES.len() {
            return Err(Error::bad_input(format!(
                "{name}: not a CIFAR-10 batch: label {} is not one of the 10 classes",
                record[0]
            )));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

fn load_files(dir: &Path, names: &[&str]) -> Result<Split> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for name in names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (p, l) = parse_batch(&bytes, &path.display().to_string())?;
        pixels.extend(p);
        labels.extend(l);
    }
    Ok(Split::new(SHAPE, pixels, labels))
}

/// Loads all five training batches and the test batch.
pub(crate) fn load_cifar10(dir: &Path) -> Result<Dataset> {
    let batches = batches_dir(dir).ok_or_else(|| {
        Error::bad_input(format!("{}: no CIFAR-10 batch files found", dir.display()))
    })?;
    let class_names = std::fs::read_to_string(batches.join("batches.meta.txt"))
        .ok()
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|names| names.len() == CLASSES.len())
        .unwrap_or_else(|| CLASSES.iter().map(|s| s.to_string()).collect());
    Ok(Dataset {
        name: "cifar-10".into(),
        source: batches.display().to_string(),
        class_names,
        train: load_files(&batches, &TRAIN_FILES)?,
        test: load_files(&batches, &[TEST_FILE])?,
    })
}

/// Encodes records as a batch file (for test fixtures).
pub fn encode_batch(labels: &[u8], pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(labels.len() * RECORD);
    for (label, image) in labels.iter().zip(pixels.chunks_exact(RECORD - 1)) {
        out.push(*label);
        out.extend_from_slice(image);
    }
    out
}
