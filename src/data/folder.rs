//! An image folder: one subfolder per class, PNG or JPEG files inside, as torchvision's
//! `ImageFolder` reads it. With `train/` and `test/` subfolders those are the splits; without,
//! every sixth file of each class (in name order) is held out for test, so the split does not
//! depend on the seed.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::{Dataset, ImageShape, Split};
use crate::error::{Error, Result};

/// How to bring a folder's images to one shape.
#[derive(Debug, Clone, Copy)]
pub struct FolderOptions {
    /// Images are resized to `image_size` x `image_size`.
    pub image_size: u32,
    /// 1 (gray) or 3 (RGB); `None` chooses gray when every image is gray.
    pub channels: Option<usize>,
}

impl Default for FolderOptions {
    fn default() -> Self {
        Self {
            image_size: 32,
            channels: None,
        }
    }
}

const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    Ok(entries)
}

fn class_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect())
}

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
        })
        .collect())
}

/// Whether `dir` looks like an image folder: some subfolder holds at least one image.
pub(crate) fn is_image_folder(dir: &Path) -> bool {
    let Ok(classes) = class_dirs(dir) else {
        return false;
    };
    classes.iter().any(|c| {
        image_files(c).is_ok_and(|f| !f.is_empty())
            || class_dirs(c).is_ok_and(|sub| {
                sub.iter()
                    .any(|s| image_files(s).is_ok_and(|f| !f.is_empty()))
            })
    })
}

/// Decoded images (RGB bytes, `image_size` square) with their labels, before channels are settled.
struct Decoded {
    rgb: Vec<u8>,
    labels: Vec<u8>,
    all_gray: bool,
}

/// An RGB image's bytes channel by channel, `[3, h, w]` flattened: decoders give pixels
/// (HWC), tensors want planes (CHW).
pub(crate) fn channel_major(image: &image::RgbImage) -> Vec<u8> {
    (0..3)
        .flat_map(|c| image.pixels().map(move |p| p.0[c]))
        .collect()
}

/// Pixels a file may hold per byte: deflate (PNG) expands at most 1032:1 and JPEG's entropy
/// coding less, so a header that claims more pixels lies, and is refused before they are
/// allocated.
const MAX_PIXELS_PER_BYTE: u64 = 1100;

/// Pixels an image file may have unless `LATENTLAB_MAX_IMAGE_PIXELS` says otherwise: 64 M, a
/// 64-megapixel photograph, 256 MB decoded as RGBA. A 2.4 MB PNG of zeros can honestly claim
/// 2.5 G pixels, so the per-byte bound alone lets it through.
pub(crate) const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// The pixel limit in force: `LATENTLAB_MAX_IMAGE_PIXELS` if set to a number, else
/// [`MAX_IMAGE_PIXELS`].
pub(crate) fn max_image_pixels() -> u64 {
    std::env::var("LATENTLAB_MAX_IMAGE_PIXELS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MAX_IMAGE_PIXELS)
}

/// An image file's width and height from its header, nothing decoded.
pub(crate) fn image_dimensions(bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| one_line(&e.to_string()))
}

fn one_line(message: &str) -> String {
    // Some decoders end their messages with a line break.
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes an image file's bytes (PNG, JPEG, BMP, guessed from the content); the error is the
/// reason on one line, for the caller's sentence. The header's size is checked against the
/// pixel limit and against what the file's bytes can hold before anything is allocated, and
/// the decoder runs under an allocation limit that follows from them.
pub(crate) fn decode_image(bytes: &[u8]) -> std::result::Result<image::DynamicImage, String> {
    let (width, height) = image_dimensions(bytes)?;
    let pixels = width as u64 * height as u64;
    let limit = max_image_pixels();
    if pixels > limit {
        return Err(format!(
            "its header claims {width}x{height} pixels, more than the limit of {limit} \
             (set LATENTLAB_MAX_IMAGE_PIXELS to raise it)"
        ));
    }
    let most_pixels = (MAX_PIXELS_PER_BYTE * bytes.len() as u64 + 4096).min(limit);
    if pixels > most_pixels {
        return Err(format!(
            "its header claims {width}x{height} pixels, more than {} bytes can hold",
            bytes.len()
        ));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // 16-bit RGBA, the widest pixel, and the decoders' own buffers.
    limits.max_alloc = Some(8 * most_pixels + (1 << 20));
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => format!(
            "decoding it needs more memory than its {width}x{height} pixels allow (a limit of \
             the decoder)"
        ),
        e => one_line(&e.to_string()),
    })
}

/// Reads and decodes an image file; the error is the reason, for the caller's sentence.
pub(crate) fn open_image(path: &Path) -> std::result::Result<image::DynamicImage, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    decode_image(&bytes)
}

/// An image file's bytes as a dataset keeps them: RGB planes at `size` x `size`, and whether the
/// picture was gray.
pub fn decode_for_dataset(bytes: &[u8], size: u32) -> std::result::Result<(Vec<u8>, bool), String> {
    let image = decode_image(bytes)?;
    let gray = !image.color().has_color();
    let rgb = image.to_rgb8();
    let rgb = if rgb.dimensions() == (size, size) {
        rgb
    } else {
        image::imageops::resize(&rgb, size, size, FilterType::Triangle)
    };
    Ok((channel_major(&rgb), gray))
}

fn decode(files: &[(PathBuf, u8)], size: u32) -> Result<Decoded> {
    let mut out = Decoded {
        rgb: Vec::with_capacity(files.len() * (size * size * 3) as usize),
        labels: Vec::with_capacity(files.len()),
        all_gray: true,
    };
    for (path, label) in files {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (rgb, gray) = decode_for_dataset(&bytes, size).map_err(|e| {
            Error::bad_input(format!("{}: cannot decode image: {e}", path.display()))
        })?;
        out.all_gray &= gray;
        out.rgb.extend(rgb);
        out.labels.push(*label);
    }
    Ok(out)
}

fn to_split(decoded: &Decoded, channels: usize, size: usize) -> Split {
    let shape = ImageShape {
        channels,
        height: size,
        width: size,
    };
    let pixels = if channels == 3 {
        decoded.rgb.clone()
    } else {
        decoded
            .rgb
            .chunks_exact(3 * size * size)
            .flat_map(luma)
            .collect()
    };
    Split::new(shape, pixels, decoded.labels.clone())
}

/// An image folder's files by split, with their labels, and its class names.
pub(crate) struct FolderFiles {
    pub class_names: Vec<String>,
    pub train: Vec<(PathBuf, u8)>,
    pub test: Vec<(PathBuf, u8)>,
}

/// Lists an image folder's images: `train/` and `test/` when it has them, otherwise every sixth
/// image of each class (in name order) held out for test.
pub(crate) fn folder_files(root: &Path, options: FolderOptions) -> Result<FolderFiles> {
    if let Some(c) = options.channels
        && c != 1
        && c != 3
    {
        return Err(Error::bad_input(format!(
            "--channels must be 1 or 3, not {c}"
        )));
    }
    if options.image_size == 0 {
        return Err(Error::bad_input("--image-size must be positive"));
    }
    let (train_root, test_root) = (root.join("train"), root.join("test"));
    let presplit = train_root.is_dir() && test_root.is_dir();
    let class_root = if presplit { &train_root } else { root };
    let classes = class_dirs(class_root)?;
    if classes.is_empty() {
        return Err(Error::bad_input(format!(
            "{}: no class subfolders found",
            class_root.display()
        )));
    }
    if classes.len() > 256 {
        return Err(Error::bad_input(format!(
            "{}: {} classes; at most 256 are supported",
            root.display(),
            classes.len()
        )));
    }
    let class_names: Vec<String> = classes
        .iter()
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut train_files = Vec::new();
    let mut test_files = Vec::new();
    for (label, name) in class_names.iter().enumerate() {
        let label = label as u8;
        if presplit {
            train_files.extend(
                image_files(&train_root.join(name))?
                    .into_iter()
                    .map(|p| (p, label)),
            );
            let test_dir = test_root.join(name);
            if test_dir.is_dir() {
                test_files.extend(image_files(&test_dir)?.into_iter().map(|p| (p, label)));
            }
        } else {
            for (i, path) in image_files(&root.join(name))?.into_iter().enumerate() {
                if i % 6 == 5 {
                    test_files.push((path, label));
                } else {
                    train_files.push((path, label));
                }
            }
        }
    }
    if train_files.is_empty() {
        return Err(Error::bad_input(format!(
            "{}: no PNG or JPEG images in the class subfolders",
            root.display()
        )));
    }
    if test_files.is_empty() {
        return Err(Error::bad_input(format!(
            "{}: too few images to hold any out for test (need 6 in a class, or a test/ folder)",
            root.display()
        )));
    }
    Ok(FolderFiles {
        class_names,
        train: train_files,
        test: test_files,
    })
}

/// One image's RGB planes as one gray plane: ITU-R 601 luma, as `image` and PIL convert.
pub fn luma(rgb: &[u8]) -> Vec<u8> {
    let plane = rgb.len() / 3;
    (0..plane)
        .map(|i| {
            let (r, g, b) = (
                rgb[i] as f32,
                rgb[plane + i] as f32,
                rgb[2 * plane + i] as f32,
            );
            (0.299 * r + 0.587 * g + 0.114 * b)
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// Loads an image folder.
pub fn load_image_folder(root: &Path, options: FolderOptions) -> Result<Dataset> {
    let FolderFiles {
        class_names,
        train: train_files,
        test: test_files,
    } = folder_files(root, options)?;
    let size = options.image_size;
    let train = decode(&train_files, size)?;
    let test = decode(&test_files, size)?;
    let channels = options
        .channels
        .unwrap_or(if train.all_gray && test.all_gray {
            1
        } else {
            3
        });
    let name = root
        .canonicalize()
        .unwrap_or_else(|_| root.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "images".into());
    Ok(Dataset {
        name,
        source: root.display().to_string(),
        class_names,
        train: to_split(&train, channels, size as usize),
        test: to_split(&test, channels, size as usize),
    })
}

/// Every image file under `dir` (subfolders included, name order), as one split with label 0: the
/// form generated samples are usually saved in. Images must share a size; gray if all are gray.
pub(crate) fn load_image_files(dir: &Path) -> Result<Split> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
        for entry in sorted_entries(dir)? {
            if entry.is_dir() {
                walk(&entry, files)?;
            } else if entry
                .extension()
                .is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
            {
                files.push(entry);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    let first = files.first().cloned().ok_or_else(|| {
        Error::bad_input(format!(
            "{}: no image files (png, jpg, bmp) found",
            dir.display()
        ))
    })?;
    let (width, height) = image::image_dimensions(&first)
        .map_err(|e| Error::bad_input(format!("{}: cannot decode image: {e}", first.display())))?;
    if width != height {
        return Err(Error::bad_input(format!(
            "{}: {width}x{height}; only square images are supported",
            first.display()
        )));
    }
    let labelled: Vec<(PathBuf, u8)> = files.into_iter().map(|p| (p, 0)).collect();
    for (path, _) in &labelled {
        let size = image::image_dimensions(path).map_err(|e| {
            Error::bad_input(format!("{}: cannot decode image: {e}", path.display()))
        })?;
        if size != (width, height) {
            return Err(Error::bad_input(format!(
                "{}: {}x{}, but {} is {width}x{height}; images must share one size",
                path.display(),
                size.0,
                size.1,
                first.display()
            )));
        }
    }
    let decoded = decode(&labelled, width)?;
    let channels = if decoded.all_gray { 1 } else { 3 };
    Ok(to_split(&decoded, channels, width as usize))
}

/// Writes each image of `split` as `dir/NNNNNN.png` (gray or RGB as the split is).
pub fn save_image_files(split: &Split, dir: &Path) -> Result<()> {
    save_image_files_from(split, dir, 0)
}

/// [`save_image_files`] numbering the files from `first`: one chunk of a larger set.
pub(crate) fn save_image_files_from(split: &Split, dir: &Path, first: usize) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let shape = split.shape;
    let plane = shape.height * shape.width;
    for i in 0..split.len() {
        let pixels = split.image(i);
        let path = dir.join(format!("{:06}.png", first + i));
        let (w, h) = (shape.width as u32, shape.height as u32);
        let result = if shape.channels == 1 {
            image::GrayImage::from_raw(w, h, pixels.to_vec()).map(|img| img.save(&path))
        } else {
            let hwc: Vec<u8> = (0..plane)
                .flat_map(|p| (0..3).map(move |c| pixels[c * plane + p]))
                .collect();
            image::RgbImage::from_raw(w, h, hwc).map(|img| img.save(&path))
        };
        match result {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Internal(format!("{}: {e}", path.display()))),
            None => return Err(Error::Internal("image buffer of the wrong size".into())),
        }
    }
    Ok(())
}
