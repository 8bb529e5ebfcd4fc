//! Loaders on the embedded subset and on small fixtures written here: IDX folders, CIFAR-10
//! binaries, image folders, and the errors each gives on bad input.

use std::path::{Path, PathBuf};

use latentlab::Error;
use latentlab::data::cifar::encode_batch;
use latentlab::data::discover::load_path;
use latentlab::data::embedded::load_embedded;
use latentlab::data::folder::{FolderOptions, load_image_folder};
use latentlab::data::idx::encode_idx;

/// A fresh temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("latentlab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn embedded_subset_is_balanced_fashion_mnist() {
    let dataset = load_embedded().unwrap();
    assert_eq!(dataset.train.len(), 10_000);
    assert_eq!(dataset.test.len(), 2_000);
    assert_eq!(dataset.shape().to_string(), "1x28x28");
    assert_eq!(dataset.train.pixels.len(), 10_000 * 784);
    assert_eq!(dataset.train.class_counts(10), vec![1_000; 10]);
    assert_eq!(dataset.test.class_counts(10), vec![200; 10]);
    assert_eq!(dataset.class_names[9], "Ankle boot");
    // Real images, not blanks: clothing covers a good part of the frame.
    let lit = dataset.train.pixels.iter().filter(|&&p| p > 0).count() as f64;
    assert!(lit / dataset.train.pixels.len() as f64 > 0.3);
}

/// Writes an IDX dataset of `n` train and `m` test 4x5 images to `dir`.
fn write_idx_dir(dir: &Path, n: usize, m: usize, compress: bool) {
    let write = |name: &str, bytes: Vec<u8>| {
        let (name, bytes) = if compress {
            (format!("{name}.gz"), gzip(&bytes))
        } else {
            (name.to_string(), bytes)
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let images = |count: usize| {
        encode_idx(
            &[count, 4, 5],
            &(0..count * 20).map(|v| (v * 7) as u8).collect::<Vec<_>>(),
        )
    };
    let labels = |count: usize| {
        encode_idx(
            &[count],
            &(0..count).map(|v| (v % 10) as u8).collect::<Vec<_>>(),
        )
    };
    write("train-images-idx3-ubyte", images(n));
    write("train-labels-idx1-ubyte", labels(n));
    write("t10k-images-idx3-ubyte", images(m));
    write("t10k-labels-idx1-ubyte", labels(m));
}

#[test]
fn idx_folder_loads_raw_or_gzipped() {
    for compress in [false, true] {
        let tmp = TempDir::new(&format!("idx-fashion-{compress}"));
        write_idx_dir(&tmp.0, 30, 12, compress);
        let dataset = load_path(&tmp.0, FolderOptions::default()).unwrap();
        assert_eq!((dataset.train.len(), dataset.test.len()), (30, 12));
        assert_eq!(dataset.shape().to_string(), "1x4x5");
        assert_eq!(dataset.train.image(1)[0], 140); // byte 20 of the file, times 7
        assert_eq!(dataset.name, "fashion-mnist"); // the folder name says so
        assert_eq!(dataset.class_names[0], "T-shirt/top");
    }
}

#[test]
fn idx_folder_errors_name_the_file() {
    let tmp = TempDir::new("idx-bad");
    write_idx_dir(&tmp.0, 30, 12, false);
    // Labels for 29 images beside 30 images.
    std::fs::write(
        tmp.0.join("train-labels-idx1-ubyte"),
        encode_idx(&[29], &[0; 29]),
    )
    .unwrap();
    let err = load_path(&tmp.0, FolderOptions::default()).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)));
    assert!(
        err.to_string().contains("30 images") && err.to_string().contains("29 labels"),
        "{err}"
    );
    // A truncated image file.
    write_idx_dir(&tmp.0, 30, 12, false);
    let path = tmp.0.join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let err = load_path(&tmp.0, FolderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t10k-images-idx3-ubyte") && err.contains("truncated"),
        "{err}"
    );
    // A missing file.
    std::fs::remove_file(&path).unwrap();
    let err = load_path(&tmp.0, FolderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing t10k-images-idx3-ubyte"), "{err}");
}

#[test]
fn cifar10_batches_load() {
    let tmp = TempDir::new("cifar");
    let dir = tmp.0.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for b in 1..=5 {
        let labels: Vec<u8> = (0..3).map(|i| ((b + i) % 10) as u8).collect();
        let pixels: Vec<u8> = (0..3 * 3072).map(|v| ((v + b) % 251) as u8).collect();
        std::fs::write(
            dir.join(format!("data_batch_{b}.bin")),
            encode_batch(&labels, &pixels),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("test_batch.bin"),
        encode_batch(&[4, 9], &vec![200; 2 * 3072]),
    )
    .unwrap();
    // The archive's parent folder is found as well as the batch folder itself.
    let dataset = load_path(&tmp.0, FolderOptions::default()).unwrap();
    assert_eq!((dataset.train.len(), dataset.test.len()), (15, 2));
    assert_eq!(dataset.shape().to_string(), "3x32x32");
    assert_eq!(dataset.train.labels[..3], [1, 2, 3]);
    assert_eq!(dataset.train.image(0)[0], 1);
    assert_eq!(dataset.test.labels, vec![4, 9]);
    assert_eq!(dataset.class_names[0], "airplane");
    // A batch that is not whole records.
    std::fs::write(dir.join("test_batch.bin"), vec![0; 3073 + 10]).unwrap();
    let err = load_path(&tmp.0, FolderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("test_batch.bin"), "{err}");
}

fn write_png(path: &Path, width: u32, height: u32, rgb: bool, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if rgb {
        image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([seed, (x * 20) as u8, (y * 20) as u8])
        })
        .save(path)
        .unwrap();
    } else {
        image::GrayImage::from_fn(width, height, |x, _| {
            image::Luma([seed.wrapping_add(x as u8 * 10)])
        })
        .save(path)
        .unwrap();
    }
}

#[test]
fn image_folder_splits_resizes_and_detects_channels() {
    let tmp = TempDir::new("folder");
    for (c, class) in ["cat", "dog"].iter().enumerate() {
        for i in 0..7 {
            write_png(
                &tmp.0.join(class).join(format!("{i:02}.png")),
                12,
                10,
                false,
                (c * 100 + i) as u8,
            );
        }
    }
    let options = FolderOptions {
        image_size: 8,
        channels: None,
    };
    let dataset = load_image_folder(&tmp.0, options).unwrap();
    assert_eq!(dataset.class_names, vec!["cat", "dog"]);
    // Every sixth file of each class is held out.
    assert_eq!((dataset.train.len(), dataset.test.len()), (12, 2));
    assert_eq!(dataset.test.labels, vec![0, 1]);
    assert_eq!(dataset.shape().to_string(), "1x8x8");
    // Forcing RGB gives three equal channels for gray input.
    let rgb = load_image_folder(
        &tmp.0,
        FolderOptions {
            channels: Some(3),
            ..options
        },
    )
    .unwrap();
    assert_eq!(rgb.shape().to_string(), "3x8x8");
    let image = rgb.train.image(0);
    assert_eq!(image[..64], image[64..128]);
    // One colour image makes the whole set RGB.
    write_png(&tmp.0.join("dog").join("07.png"), 12, 10, true, 5);
    assert_eq!(
        load_image_folder(&tmp.0, options).unwrap().shape().channels,
        3
    );
}

#[test]
fn image_folder_with_train_and_test_subfolders() {
    let tmp = TempDir::new("folder-split");
    for split in ["train", "test"] {
        for class in ["a", "b", "c"] {
            for i in 0..2 {
                write_png(
                    &tmp.0.join(split).join(class).join(format!("{i}.png")),
                    16,
                    16,
                    true,
                    i as u8,
                );
            }
        }
    }
    let dataset = load_path(
        &tmp.0,
        FolderOptions {
            image_size: 16,
            channels: None,
        },
    )
    .unwrap();
    assert_eq!((dataset.train.len(), dataset.test.len()), (6, 6));
    assert_eq!(dataset.shape().to_string(), "3x16x16");
    assert_eq!(dataset.num_classes(), 3);
}

#[test]
fn unusable_paths_are_bad_input() {
    let tmp = TempDir::new("nothing");
    std::fs::write(tmp.0.join("notes.txt"), "hello").unwrap();
    for path in [
        tmp.0.clone(),
        tmp.0.join("notes.txt"),
        tmp.0.join("missing"),
    ] {
        let err = load_path(&path, FolderOptions::default()).unwrap_err();
        assert!(matches!(err, Error::BadInput(_)), "{path:?}: {err}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }
    // A broken image in an image folder.
    for i in 0..6 {
        write_png(&tmp.0.join("x").join(format!("ok{i}.png")), 4, 4, false, 0);
    }
    std::fs::write(tmp.0.join("x").join("broken.png"), b"not a png").unwrap();
    let err = load_path(&tmp.0, FolderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken.png"), "{err}");
}
