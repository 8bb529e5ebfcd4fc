//! Training rows read from disk a chunk at a time, for what needs one pass over them (streamed
//! PCA): memory is one chunk, whatever the file's size.
//!
//! Sources: an IDX dataset folder (its training images) or one IDX file, raw or gzip; CIFAR-10's
//! five training batches; an image folder's training images (the same files and pixels
//! [`super::folder::load_image_folder`] gives); a NumPy `.npy` matrix `[rows, d]` of `uint8` or
//! little-endian `float32` in C order, the "raw matrix with a stated header" any NumPy user can
//! write with `np.save`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::ImageShape;
use super::folder::{FolderOptions, decode_for_dataset, folder_files, luma};
use crate::error::{Error, Result};

/// A chunk of rows, `[rows, width]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    Bytes(Vec<u8>),
    Floats(Vec<f32>),
}

/// Where rows come from, and what they are.
pub(crate) struct RowSource {
    /// Values per row.
    pub width: usize,
    /// Rows in all, when the headers say.
    pub rows: Option<u64>,
    /// The image shape of a row, when it is an image.
    pub shape: Option<ImageShape>,
    /// What was opened, for log lines and metrics.
    pub description: String,
    inner: Inner,
}

enum Inner {
    /// Fixed-size records in one file after another: `skip` bytes then `width` values each.
    Records {
        files: VecDeque<(String, Box<dyn Read>, u64)>,
        skip: usize,
        floats: bool,
    },
    /// Image files decoded one at a time.
    Images {
        files: VecDeque<PathBuf>,
        size: u32,
        gray: bool,
    },
}

impl RowSource {
    /// Opens `path` (a folder of IDX files, CIFAR-10 batches or class folders of images, an IDX
    /// file, or a `.npy` file) to stream its training rows.
    pub fn open(path: &Path, options: FolderOptions) -> Result<Self> {
        use super::{cifar, folder, idx};
        if path.is_file() {
            return if path.extension().is_some_and(|e| e == "npy") {
                open_npy(path)
            } else {
                open_idx(path)
            };
        }
        if !path.is_dir() {
            return Err(Error::bad_input(format!(
                "{}: no such file or folder",
                path.display()
            )));
        }
        if let Some(images) = idx::find_file(path, "train", "images-idx3") {
            return open_idx(&images);
        }
        if let Some(batches) = cifar::batches_dir(path) {
            return open_cifar(&batches);
        }
        if folder::is_image_folder(path) {
            return open_images(path, options);
        }
        Err(Error::bad_input(format!(
            "{}: holds no IDX training images, CIFAR-10 batches or class folders of images",
            path.display()
        )))
    }

    /// The next chunk of at most `max_rows` rows; `None` after the last.
    pub fn next_chunk(&mut self, max_rows: usize) -> Result<Option<Rows>> {
        let width = self.width;
        match &mut self.inner {
            Inner::Records {
                files,
                skip,
                floats,
            } => {
                let value_size = if *floats { 4 } else { 1 };
                let record = *skip + width * value_size;
                let mut bytes = Vec::new();
                let mut rows = 0;
                let mut buffer = vec![0u8; record];
                while rows < max_rows {
                    let Some((name, reader, left)) = files.front_mut() else {
                        break;
                    };
                    if *left == 0 {
                        files.pop_front();
                        continue;
                    }
                    reader.read_exact(&mut buffer).map_err(|e| {
                        Error::bad_input(format!(
                            "{name}: truncated: its header promises {left} more rows ({e})"
                        ))
                    })?;
                    *left -= 1;
                    bytes.extend_from_slice(&buffer[*skip..]);
                    rows += 1;
                }
                if rows == 0 {
                    return Ok(None);
                }
                Ok(Some(if *floats {
                    Rows::Floats(
                        bytes
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect(),
                    )
                } else {
                    Rows::Bytes(bytes)
                }))
            }
            Inner::Images { files, size, gray } => {
                let mut pixels = Vec::new();
                for _ in 0..max_rows {
                    let Some(path) = files.pop_front() else {
                        break;
                    };
                    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                    let (rgb, _) = decode_for_dataset(&bytes, *size).map_err(|e| {
                        Error::bad_input(format!("{}: cannot decode image: {e}", path.display()))
                    })?;
                    pixels.extend(if *gray { luma(&rgb) } else { rgb });
                }
                Ok((!pixels.is_empty()).then_some(Rows::Bytes(pixels)))
            }
        }
    }
}

impl RowSource {
    /// Passes over the next chunk of at most `max_rows` rows without converting or decoding
    /// them (another MPI rank's); returns how many there were, `None` after the last.
    pub fn skip_chunk(&mut self, max_rows: usize) -> Result<Option<usize>> {
        let width = self.width;
        let skipped = match &mut self.inner {
            Inner::Records {
                files,
                skip,
                floats,
            } => {
                let record = *skip + width * if *floats { 4 } else { 1 };
                let mut rows = 0;
                while rows < max_rows {
                    let Some((name, reader, left)) = files.front_mut() else {
                        break;
                    };
                    if *left == 0 {
                        files.pop_front();
                        continue;
                    }
                    let take = (*left).min((max_rows - rows) as u64);
                    let bytes = take * record as u64;
                    let copied = std::io::copy(&mut reader.take(bytes), &mut std::io::sink())
                        .map_err(|e| Error::io(name.as_str(), e))?;
                    if copied != bytes {
                        return Err(Error::bad_input(format!(
                            "{name}: truncated: its header promises {left} more rows"
                        )));
                    }
                    *left -= take;
                    rows += take as usize;
                }
                rows
            }
            Inner::Images { files, .. } => {
                let rows = files.len().min(max_rows);
                files.drain(..rows);
                rows
            }
        };
        Ok((skipped > 0).then_some(skipped))
    }
}

fn open_file(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(|e| Error::io(path, e))
}

/// One IDX file of unsigned bytes, raw or gzip, `[n, rows, cols]` or `[n, c, rows, cols]`.
fn open_idx(path: &Path) -> Result<RowSource> {
    let name = path.display().to_string();
    let bad = |why: String| Error::bad_input(format!("{name}: not a valid IDX file: {why}"));
    let mut file = open_file(path)?;
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic)
        .map_err(|e| bad(format!("too short ({e})")))?;
    let chained = std::io::Cursor::new(magic).chain(file);
    let mut reader: Box<dyn Read> = if magic == super::idx::GZIP_MAGIC {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(chained)))
    } else {
        Box::new(chained)
    };
    let mut head = [0u8; 4];
    reader
        .read_exact(&mut head)
        .map_err(|e| bad(format!("no header ({e})")))?;
    if head[..3] != [0, 0, 0x08] {
        return Err(bad(format!(
            "magic number 0x{:02x}{:02x}{:02x}{:02x} is not that of unsigned bytes",
            head[0], head[1], head[2], head[3]
        )));
    }
    let ndim = head[3] as usize;
    if !(3..=4).contains(&ndim) {
        return Err(bad(format!(
            "{ndim} dimensions; images have 3 ([n, rows, cols]) or 4"
        )));
    }
    let mut dims = vec![0usize; ndim];
    for d in &mut dims {
        let mut word = [0u8; 4];
        reader
            .read_exact(&mut word)
            .map_err(|e| bad(format!("header truncated ({e})")))?;
        *d = u32::from_be_bytes(word) as usize;
    }
    let shape = match dims[..] {
        [_, height, width] => ImageShape {
            channels: 1,
            height,
            width,
        },
        [_, channels, height, width] => ImageShape {
            channels,
            height,
            width,
        },
        _ => unreachable!("checked above"),
    };
    if shape.is_empty() {
        return Err(bad(format!("images of {dims:?} hold no pixels")));
    }
    Ok(RowSource {
        width: shape.len(),
        rows: Some(dims[0] as u64),
        shape: Some(shape),
        description: format!("{name}: {} images of {shape}", dims[0]),
        inner: Inner::Records {
            files: VecDeque::from([(name, reader, dims[0] as u64)]),
            skip: 0,
            floats: false,
        },
    })
}

/// CIFAR-10's five training batches: records of a label byte and 3072 pixel bytes.
fn open_cifar(dir: &Path) -> Result<RowSource> {
    use super::cifar::{RECORD, SHAPE, TRAIN_FILES};
    let mut files = VecDeque::new();
    let mut rows = 0;
    for name in TRAIN_FILES {
        let path = dir.join(name);
        let size = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        if size == 0 || size % RECORD as u64 != 0 {
            return Err(Error::bad_input(format!(
                "{}: not a CIFAR-10 batch: {size} bytes is not a whole number of {RECORD}-byte records",
                path.display()
            )));
        }
        rows += size / RECORD as u64;
        let reader: Box<dyn Read> = Box::new(open_file(&path)?);
        files.push_back((path.display().to_string(), reader, size / RECORD as u64));
    }
    Ok(RowSource {
        width: SHAPE.len(),
        rows: Some(rows),
        shape: Some(SHAPE),
        description: format!("{}: {rows} CIFAR-10 training images", dir.display()),
        inner: Inner::Records {
            files,
            skip: 1,
            floats: false,
        },
    })
}

/// An image folder's training images, gray when `--channels 1` or every image is gray (read
/// from the files' headers before any is decoded).
fn open_images(root: &Path, options: FolderOptions) -> Result<RowSource> {
    let files = folder_files(root, options)?;
    let gray = match options.channels {
        Some(channels) => channels == 1,
        None => files
            .train
            .iter()
            .chain(&files.test)
            .map(|(path, _)| color_of(path))
            .collect::<Result<Vec<bool>>>()?
            .iter()
            .all(|color| !color),
    };
    let size = options.image_size;
    let shape = ImageShape {
        channels: if gray { 1 } else { 3 },
        height: size as usize,
        width: size as usize,
    };
    Ok(RowSource {
        width: shape.len(),
        rows: Some(files.train.len() as u64),
        shape: Some(shape),
        description: format!(
            "{}: {} training images as {shape}",
            root.display(),
            files.train.len()
        ),
        inner: Inner::Images {
            files: files.train.into_iter().map(|(path, _)| path).collect(),
            size,
            gray,
        },
    })
}

/// Whether an image file's header says it has colour.
fn color_of(path: &Path) -> Result<bool> {
    use image::ImageDecoder;
    let bad = |e: image::ImageError| {
        Error::bad_input(format!("{}: cannot decode image: {e}", path.display()))
    };
    let decoder = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .into_decoder()
        .map_err(bad)?;
    Ok(decoder.color_type().has_color())
}

/// A `.npy` file (format 1.0-3.0): magic, version, a little-endian header length, then a Python
/// dict literal `{'descr': '|u1', 'fortran_order': False, 'shape': (n, d), }` and the data.
fn open_npy(path: &Path) -> Result<RowSource> {
    let name = path.display().to_string();
    let bad = |why: &str| Error::bad_input(format!("{name}: not a usable .npy matrix: {why}"));
    let mut file = open_file(path)?;
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix)
        .map_err(|_| bad("shorter than its magic"))?;
    if &prefix[..6] != b"\x93NUMPY" {
        return Err(bad("no NumPy magic"));
    }
    let header_len = match prefix[6] {
        1 => {
            let mut len = [0u8; 2];
            file.read_exact(&mut len)
                .map_err(|_| bad("header truncated"))?;
            u16::from_le_bytes(len) as usize
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            file.read_exact(&mut len)
                .map_err(|_| bad("header truncated"))?;
            u32::from_le_bytes(len) as usize
        }
        v => return Err(bad(&format!("format version {v}"))),
    };
    if header_len > 1 << 16 {
        return Err(bad("header longer than 64 KiB"));
    }
    let mut header = vec![0u8; header_len];
    file.read_exact(&mut header)
        .map_err(|_| bad("header truncated"))?;
    let header = String::from_utf8_lossy(&header);
    let value_of = |key: &str| -> Option<&str> {
        let start = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
        let end = if rest.starts_with('(') {
            rest.find(')')? + 1
        } else {
            rest.find([',', '}'])?
        };
        Some(rest[..end].trim())
    };
    let floats = match value_of("descr") {
        Some("'|u1'") | Some("'u1'") | Some("'<u1'") => false,
        Some("'<f4'") => true,
        other => {
            return Err(bad(&format!(
                "dtype {} (uint8 or little-endian float32 are read)",
                other.unwrap_or("missing")
            )));
        }
    };
    if value_of("fortran_order") != Some("False") {
        return Err(bad("not in C order (save it with np.ascontiguousarray)"));
    }
    let shape: Vec<u64> = value_of("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.strip_suffix(')'))
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| v.parse::<u64>())
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .and_then(|r| r.ok())
        .ok_or_else(|| bad("no readable shape"))?;
    let [rows, width] = shape[..] else {
        return Err(bad(&format!(
            "shape {shape:?}; a matrix [rows, values] is read"
        )));
    };
    if width == 0 {
        return Err(bad("rows of no values"));
    }
    let side = (width as f64).sqrt().round() as usize;
    let shape = (side * side == width as usize).then_some(ImageShape {
        channels: 1,
        height: side,
        width: side,
    });
    Ok(RowSource {
        width: width as usize,
        rows: Some(rows),
        shape,
        description: format!(
            "{name}: {rows} rows of {width} {}",
            if floats { "float32" } else { "uint8" }
        ),
        inner: Inner::Records {
            files: VecDeque::from([(name, Box::new(file) as Box<dyn Read>, rows)]),
            skip: 0,
            floats,
        },
    })
}

/// Writes a `.npy` matrix of bytes (tests, benchmarks: what `np.save` writes for a `uint8`
/// array) from `rows` chunks produced by `next`.
pub fn write_npy_u8(
    path: &Path,
    rows: u64,
    width: usize,
    mut next: impl FnMut(&mut [u8]),
) -> Result<()> {
    use std::io::Write;
    let mut header =
        format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({rows}, {width}), }}");
    // Data 64-byte aligned, the header ending in a newline, as NumPy writes it.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let io = |e| Error::io(path, e);
    out.write_all(b"\x93NUMPY\x01\x00").map_err(io)?;
    out.write_all(&(header.len() as u16).to_le_bytes())
        .map_err(io)?;
    out.write_all(header.as_bytes()).map_err(io)?;
    let mut row = vec![0u8; width];
    for _ in 0..rows {
        next(&mut row);
        out.write_all(&row).map_err(io)?;
    }
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary folder holding `m.npy`, `rows` × `width` bytes counting up by `step` (mod
    /// 256) in row-major order.
    fn counting_npy(name: &str, rows: u64, width: usize, step: u8) -> (PathBuf, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("latentlab-stream-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.npy");
        let mut counter = 0u8;
        write_npy_u8(&path, rows, width, |row| {
            for v in row {
                *v = counter;
                counter = counter.wrapping_add(step);
            }
        })
        .unwrap();
        (dir, path)
    }

    fn drain(source: &mut RowSource, chunk: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(rows) = source.next_chunk(chunk).unwrap() {
            match rows {
                Rows::Bytes(b) => {
                    assert!(b.len() <= chunk * source.width);
                    all.extend(b)
                }
                Rows::Floats(_) => panic!("bytes expected"),
            }
        }
        all
    }

    #[test]
    fn idx_raw_and_gzip_stream_the_bytes_the_loader_reads() {
        let dir = std::env::temp_dir().join(format!("latentlab-stream-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pixels: Vec<u8> = (0..5 * 3 * 2).map(|i| (i * 11 % 256) as u8).collect();
        let raw = super::super::idx::encode_idx(&[5, 3, 2], &pixels);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        for (name, bytes) in [("raw", raw.clone()), ("gz", gz.finish().unwrap())] {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let mut source = RowSource::open(&path, FolderOptions::default()).unwrap();
            assert_eq!((source.width, source.rows), (6, Some(5)));
            assert_eq!(drain(&mut source, 2), pixels, "{name}");
        }
        std::fs::write(dir.join("short"), &raw[..raw.len() - 1]).unwrap();
        let mut short = RowSource::open(&dir.join("short"), FolderOptions::default()).unwrap();
        let mut error = None;
        while error.is_none() {
            match short.next_chunk(2) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a truncated file streamed to its end"),
                Err(e) => error = Some(e.to_string()),
            }
        }
        assert!(error.unwrap().contains("truncated"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn npy_round_trips_and_refuses_what_it_cannot_read() {
        let (dir, path) = counting_npy("npy", 7, 9, 3);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len() - 63) % 64, 0, "data start 64-byte aligned");
        let mut source = RowSource::open(&path, FolderOptions::default()).unwrap();
        assert_eq!(
            (source.width, source.rows, source.shape),
            (
                9,
                Some(7),
                Some(ImageShape {
                    channels: 1,
                    height: 3,
                    width: 3
                })
            )
        );
        let all = drain(&mut source, 3);
        assert_eq!(all.len(), 63);
        assert_eq!(all[1], 3);
        for (from, to, why) in [
            ("'|u1'", "'<f8'", "dtype"),
            ("False", "True ", "C order"),
            ("(7, 9)", "(7,)  ", "shape"),
        ] {
            let at = bytes
                .windows(from.len())
                .position(|w| w == from.as_bytes())
                .unwrap();
            let mut damaged = bytes.clone();
            damaged[at..at + to.len()].copy_from_slice(to.as_bytes());
            std::fs::write(&path, &damaged).unwrap();
            let message = RowSource::open(&path, FolderOptions::default())
                .err()
                .unwrap()
                .to_string();
            assert!(message.contains(why), "{message}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cifar_and_image_folders_stream_what_their_loaders_load() {
        use super::super::{cifar, folder};
        let root =
            std::env::temp_dir().join(format!("latentlab-stream-dirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // CIFAR-10: five training batches of 2 records and a test batch.
        let batches = root.join("cifar");
        std::fs::create_dir_all(&batches).unwrap();
        for (i, name) in cifar::TRAIN_FILES
            .iter()
            .chain(["test_batch.bin"].iter())
            .enumerate()
        {
            let pixels: Vec<u8> = (0..2 * 3072)
                .map(|p| ((p * 7 + i * 13) % 256) as u8)
                .collect();
            std::fs::write(batches.join(name), cifar::encode_batch(&[1, 2], &pixels)).unwrap();
        }
        let mut source = RowSource::open(&batches, FolderOptions::default()).unwrap();
        assert_eq!(source.rows, Some(10));
        let streamed = drain(&mut source, 3);
        assert_eq!(
            streamed,
            cifar::load_cifar10(&batches).unwrap().train.pixels
        );

        // An image folder of two classes, gray and colour pictures of other sizes.
        let images = root.join("images");
        for (class, color) in [("a", false), ("b", true)] {
            std::fs::create_dir_all(images.join(class)).unwrap();
            for i in 0..7u32 {
                let picture = image::RgbImage::from_fn(10 + i, 12, |x, y| {
                    let v = ((x * 20 + y * 7 + i) % 256) as u8;
                    image::Rgb(if color {
                        [v, 255 - v, i as u8 * 30]
                    } else {
                        [v, v, v]
                    })
                });
                picture
                    .save(images.join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let options = FolderOptions {
            image_size: 8,
            channels: None,
        };
        let mut source = RowSource::open(&images, options).unwrap();
        let loaded = folder::load_image_folder(&images, options).unwrap();
        assert_eq!(source.shape, Some(loaded.train.shape));
        assert_eq!(drain(&mut source, 4), loaded.train.pixels);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn skipped_chunks_are_the_rows_a_read_would_give() {
        let (dir, path) = counting_npy("skip", 10, 4, 1);
        let mut source = RowSource::open(&path, FolderOptions::default()).unwrap();
        assert_eq!(source.skip_chunk(3).unwrap(), Some(3));
        assert_eq!(
            source.next_chunk(2).unwrap(),
            Some(Rows::Bytes((12..20).collect()))
        );
        assert_eq!(source.skip_chunk(9).unwrap(), Some(5));
        assert_eq!(source.skip_chunk(1).unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
