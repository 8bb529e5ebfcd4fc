//! The IDX format of MNIST, Fashion-MNIST and KMNIST: a 4-byte magic number (two zero bytes, a
//! type code, the number of dimensions), one big-endian `u32` per dimension, then the values.
//! Files may be gzip-compressed; we look at the bytes, not the file name, to tell.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Dataset, FASHION_MNIST_CLASSES, ImageShape, Split};
use crate::error::{Error, Result};

/// Type code of unsigned bytes, the only element type image datasets use.
const IDX_U8: u8 = 0x08;
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A decoded IDX array: its dimensions and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Decodes IDX bytes (raw or gzip). `name` names the file in error messages.
pub fn parse_idx(bytes: &[u8], name: &str) -> Result<IdxArray> {
    let bad = |why: String| Error::bad_input(format!("{name}: not a valid IDX file: {why}"));
    let decompressed;
    let bytes = if bytes.starts_with(&GZIP_MAGIC) {
        decompressed =
            gunzip(bytes).map_err(|e| bad(format!("gzip stream is damaged or truncated ({e})")))?;
        &decompressed[..]
    } else {
        bytes
    };
    if bytes.len() < 4 {
        return Err(bad(format!(
            "{} bytes is too short for a header",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "wrong magic number 0x{:02x}{:02x}{:02x}{:02x}",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != IDX_U8 {
        return Err(bad(format!(
            "element type 0x{:02x} is not unsigned bytes (0x08)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(bad("zero dimensions".into()));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad(format!("header of {ndim} dimensions is truncated")));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let body = &bytes[header..];
    if body.len() != expected {
        return Err(bad(format!(
            "dimensions {dims:?} need {expected} bytes of data but the file has {}{}",
            body.len(),
            if body.len() < expected {
                " (truncated)"
            } else {
                ""
            }
        )));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}

/// Decompresses an IDX file, reading no further than its header says the data go (and one byte
/// more, to notice extra data): a header that claims 2³¹ images costs only the bytes that are
/// really there.
fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut decoder = flate2::read::GzDecoder::new(bytes);
    let mut head = [0u8; 4];
    decoder.read_exact(&mut head)?;
    let mut out = head.to_vec();
    let ndim = head[3] as u64;
    (&mut decoder).take(4 * ndim).read_to_end(&mut out)?;
    let claimed = out[4..]
        .chunks_exact(4)
        .try_fold(1u64, |n, d| {
            n.checked_mul(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as u64)
        })
        .unwrap_or(u64::MAX - 1);
    decoder
        .take(claimed.saturating_add(1))
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Reads and decodes one IDX file.
pub(crate) fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_idx(&bytes, &path.display().to_string())
}

/// Pairs an image array `[n, rows, cols]` (or `[n, channels, rows, cols]`) with a label array
/// `[n]` into a split.
pub(crate) fn split_from_arrays(
    images: IdxArray,
    labels: IdxArray,
    images_name: &str,
    labels_name: &str,
) -> Result<Split> {
    if !(3..=4).contains(&images.dims.len()) {
        return Err(Error::bad_input(format!(
            "{images_name}: expected images of shape [n, rows, cols] or [n, channels, rows, cols], \
             found dimensions {:?}",
            images.dims
        )));
    }
    if labels.dims.len() != 1 {
        return Err(Error::bad_input(format!(
            "{labels_name}: expected labels of shape [n], found dimensions {:?}",
            labels.dims
        )));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(Error::bad_input(format!(
            "{images_name} holds {} images but {labels_name} holds {} labels",
            images.dims[0], labels.dims[0]
        )));
    }
    let dims = &images.dims;
    let shape = match dims.len() {
        3 => ImageShape {
            channels: 1,
            height: dims[1],
            width: dims[2],
        },
        _ => ImageShape {
            channels: dims[1],
            height: dims[2],
            width: dims[3],
        },
    };
    Ok(Split::new(shape, images.data, labels.data))
}

/// File names the four IDX files go by: the canonical `-idx3-ubyte` names and the dotted variant
/// some mirrors use, each raw or gzipped.
fn candidates(stem: &str, kind: &str) -> Vec<String> {
    let mut names = Vec::new();
    for base in [
        format!("{stem}-{kind}-ubyte"),
        format!("{stem}-{}", kind.replacen('-', ".", 1) + "-ubyte"),
    ] {
        names.push(format!("{base}.gz"));
        names.push(base);
    }
    names
}

pub(crate) fn find_file(dir: &Path, stem: &str, kind: &str) -> Option<PathBuf> {
    candidates(stem, kind)
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether `dir` looks like an IDX dataset folder (it has a training-images file).
pub(crate) fn is_idx_dir(dir: &Path) -> bool {
    find_file(dir, "train", "images-idx3").is_some()
}

/// Loads the four IDX files from `dir`. Class names are Fashion-MNIST's when the folder's name says
/// so, digits otherwise (MNIST); IDX files do not record them.
pub fn load_idx_dir(dir: &Path) -> Result<Dataset> {
    let need = |stem: &str, kind: &str| {
        find_file(dir, stem, kind).ok_or_else(|| {
            Error::bad_input(format!(
                "{}: missing {} (looked for {})",
                dir.display(),
                candidates(stem, kind)[1],
                candidates(stem, kind).join(", ")
            ))
        })
    };
    let load = |stem: &str| -> Result<Split> {
        let images_path = need(stem, "images-idx3")?;
        let labels_path = need(stem, "labels-idx1")?;
        split_from_arrays(
            read_idx(&images_path)?,
            read_idx(&labels_path)?,
            &images_path.display().to_string(),
            &labels_path.display().to_string(),
        )
    };
    let train = load("train")?;
    let test = load("t10k")?;
    if train.shape != test.shape {
        return Err(Error::bad_input(format!(
            "{}: train images are {} but test images are {}",
            dir.display(),
            train.shape,
            test.shape
        )));
    }
    let folder = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let (name, class_names): (String, Vec<String>) = if folder.contains("fashion") {
        (
            "fashion-mnist".into(),
            FASHION_MNIST_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    } else {
        let max_label = train
            .labels
            .iter()
            .chain(&test.labels)
            .copied()
            .max()
            .unwrap_or(0);
        let name = if folder.is_empty() {
            "idx".into()
        } else {
            folder.clone()
        };
        (name, (0..=max_label).map(|d| d.to_string()).collect())
    };
    check_labels(&train, class_names.len(), dir)?;
    check_labels(&test, class_names.len(), dir)?;
    Ok(Dataset {
        name,
        source: dir.display().to_string(),
        class_names,
        train,
        test,
    })
}

/// Every label must name a class.
pub(crate) fn check_labels(split: &Split, num_classes: usize, source: &Path) -> Result<()> {
    if let Some(&bad) = split.labels.iter().find(|&&l| l as usize >= num_classes) {
        return Err(Error::bad_input(format!(
            "{}: label {bad} is outside the {num_classes} classes",
            source.display()
        )));
    }
    Ok(())
}

/// Encodes an array as raw IDX bytes (used to cut the embedded subset and to build test fixtures).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, IDX_U8, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: usize) -> Vec<u8> {
        encode_idx(&[n, 2, 3], &(0..n * 6).map(|v| v as u8).collect::<Vec<_>>())
    }

    #[test]
    fn parses_raw_and_gzip_alike() {
        let raw = images(4);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        let a = parse_idx(&raw, "raw").unwrap();
        let b = parse_idx(&gz, "gz").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.dims, vec![4, 2, 3]);
        assert_eq!(a.data[23], 23);
    }

    #[test]
    fn truncated_body_is_an_error_naming_the_file() {
        let mut raw = images(4);
        raw.truncate(raw.len() - 5);
        let err = parse_idx(&raw, "train-images").unwrap_err().to_string();
        assert!(err.contains("train-images"), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let raw = images(50);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let mut gz = gz.finish().unwrap();
        gz.truncate(gz.len() / 2);
        let err = parse_idx(&gz, "cut.gz").unwrap_err();
        assert!(matches!(err, Error::BadInput(_)));
        assert!(err.to_string().contains("cut.gz"));
    }

    #[test]
    fn wrong_magic_is_an_error() {
        let mut raw = images(2);
        raw[0] = 0x50; // e.g. a PNG or text file
        let err = parse_idx(&raw, "x").unwrap_err().to_string();
        assert!(err.contains("magic"), "{err}");
        let mut raw = images(2);
        raw[2] = 0x0D; // floats
        assert!(
            parse_idx(&raw, "x")
                .unwrap_err()
                .to_string()
                .contains("element type")
        );
    }

    #[test]
    fn count_mismatch_is_an_error() {
        let imgs = parse_idx(&images(5), "imgs").unwrap();
        let labels = parse_idx(&encode_idx(&[4], &[0, 1, 2, 3]), "labels").unwrap();
        let err = split_from_arrays(imgs, labels, "imgs", "labels")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("5 images") && err.contains("4 labels"),
            "{err}"
        );
    }

    #[test]
    fn extra_bytes_are_an_error() {
        let mut raw = images(2);
        raw.push(7);
        assert!(parse_idx(&raw, "x").is_err());
    }
}
