//! Finding the dataset: `--data PATH`, then `$LATENTLAB_DATA`, then Debian's full Fashion-MNIST,
//! then the embedded subset. First match wins; the caller logs which one it was.

use std::path::{Path, PathBuf};

use super::folder::FolderOptions;
use super::{Dataset, cifar, embedded, folder, idx};
use crate::error::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` package puts the full set.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";
/// Environment variable naming a dataset folder when `--data` is not given.
pub(crate) const DATA_ENV: &str = "LATENTLAB_DATA";

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSpec {
    /// No `--data`: search the usual places.
    Auto,
    /// `--data embedded`.
    Embedded,
    /// `--data embedded-rgb`: the colour tiles.
    EmbeddedRgb,
    /// `--data PATH`.
    Path(PathBuf),
}

impl DataSpec {
    /// Reads the `--data` flag.
    pub fn from_arg(arg: Option<&str>) -> Self {
        match arg {
            None => DataSpec::Auto,
            Some("embedded") => DataSpec::Embedded,
            Some("embedded-rgb") => DataSpec::EmbeddedRgb,
            Some(path) => DataSpec::Path(PathBuf::from(path)),
        }
    }
}

/// Loads a dataset folder of any supported kind, telling the kinds apart by their files.
pub fn load_path(path: &Path, options: FolderOptions) -> Result<Dataset> {
    if !path.exists() {
        return Err(Error::bad_input(format!(
            "{}: no such file or folder",
            path.display()
        )));
    }
    if !path.is_dir() {
        return Err(Error::bad_input(format!(
            "{}: --data takes a folder (the four IDX files, CIFAR-10 binaries, or one subfolder per class)",
            path.display()
        )));
    }
    if idx::is_idx_dir(path) {
        idx::load_idx_dir(path)
    } else if cifar::batches_dir(path).is_some() {
        cifar::load_cifar10(path)
    } else if folder::is_image_folder(path) {
        folder::load_image_folder(path, options)
    } else {
        Err(Error::bad_input(format!(
            "{}: not a dataset folder (expected train-images-idx3-ubyte[.gz] and the other IDX files, \
             CIFAR-10's data_batch_*.bin and test_batch.bin, or one subfolder of images per class)",
            path.display()
        )))
    }
}

/// Resolves `spec` to a dataset, searching in the documented order.
pub fn load_dataset(spec: &DataSpec, options: FolderOptions) -> Result<Dataset> {
    match spec {
        DataSpec::Embedded => embedded::load_embedded(),
        DataSpec::EmbeddedRgb => embedded::load_embedded_rgb(),
        DataSpec::Path(path) => load_path(path, options),
        DataSpec::Auto => {
            if let Some(env) = std::env::var(DATA_ENV).ok().filter(|v| !v.is_empty()) {
                let spec = DataSpec::from_arg(Some(&env));
                return load_dataset(&spec, options)
                    .map_err(|e| Error::bad_input(format!("{e} (from ${DATA_ENV})")));
            }
            let debian = Path::new(DEBIAN_FASHION_MNIST);
            if idx::is_idx_dir(debian) {
                return idx::load_idx_dir(debian);
            }
            embedded::load_embedded()
        }
    }
}

/// The file or folder a streamed pass reads `spec` from: `--data PATH`, `$LATENTLAB_DATA` or
/// Debian's Fashion-MNIST; the embedded sets live in memory and are refused.
pub(crate) fn stream_path(spec: &DataSpec) -> Result<PathBuf> {
    let embedded = || {
        Error::bad_input(
            "--stream reads --data PATH from disk; the embedded subset is in memory already \
             (drop --stream)",
        )
    };
    match spec {
        DataSpec::Path(path) => Ok(path.clone()),
        DataSpec::Embedded | DataSpec::EmbeddedRgb => Err(embedded()),
        DataSpec::Auto => {
            if let Some(env) = std::env::var(DATA_ENV).ok().filter(|v| !v.is_empty()) {
                return stream_path(&DataSpec::from_arg(Some(&env)));
            }
            let debian = Path::new(DEBIAN_FASHION_MNIST);
            if idx::is_idx_dir(debian) {
                return Ok(debian.to_path_buf());
            }
            Err(embedded())
        }
    }
}
