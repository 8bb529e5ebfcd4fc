//! Helpers shared by the integration tests that run the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// burn's CPU backend keeps one global random generator, seeded per step by the trainer; tests
/// training at the same time in one process would draw from each other's streams. Each test
/// binary that trains in-process holds this while it does.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `latentlab train ARGS…` parsed, to run in this process with `run_with`.
pub fn train_args(args: &[&str]) -> latentlab::commands::train::TrainArgs {
    use clap::Parser;
    let mut argv = vec!["latentlab", "train"];
    argv.extend(args);
    match latentlab::cli::Cli::try_parse_from(argv)
        .expect("valid arguments")
        .command
    {
        latentlab::cli::Command::Train(args) => args,
        other => panic!("not a train command: {other:?}"),
    }
}

pub fn latentlab(args: &[&str]) -> Output {
    latentlab_with_env(args, &[])
}

/// The binary with extra environment variables (and `$LATENTLAB_DATA` removed).
pub fn latentlab_with_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latentlab"));
    command.args(args).env_remove("LATENTLAB_DATA");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the binary runs")
}

/// Asserts success, showing stderr otherwise; returns stdout.
pub fn assert_success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn temp_out(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("latentlab-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

pub fn png_size(path: &Path) -> (u32, u32) {
    let image = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (image.width(), image.height())
}

/// Asserts a bad-input failure: exit code 2 and exactly one line on stderr, starting `error:`.
pub fn assert_bad_input(output: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error:"), "{stderr}");
    assert!(
        lines[0].contains(mentions),
        "expected '{mentions}' in: {stderr}"
    );
}

/// Copies the files of one folder (not recursive).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Every tensor of a run's model.safetensors, by name, as raw bytes (the header's key order may
/// differ between files; the weights must not).
pub fn weights(out: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut named: Vec<(String, Vec<u8>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    named.sort();
    named
}

/// A PNG whose header claims `width` x `height` 8-bit gray pixels and whose data are the first
/// `rows` rows of zeros: a decompression bomb's header with a short body (a decoder that trusts
/// the header allocates width·height bytes before it finds the data short).
pub fn png_bomb(width: u32, height: u32, rows: u32) -> Vec<u8> {
    use std::io::Write;
    let chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    };
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 0, 0, 0, 0]); // 8-bit gray, deflate, no interlace
    chunk(&mut png, b"IHDR", &header);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; width as usize + 1]; // filter byte, then the pixels
    for _ in 0..rows {
        z.write_all(&row).unwrap();
    }
    chunk(&mut png, b"IDAT", &z.finish().unwrap());
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A real 16x16 JPEG whose frame header then claims `width` x `height` pixels.
pub fn jpeg_bomb(width: u16, height: u16) -> Vec<u8> {
    let image = image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * 9 + y * 5) as u8]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Jpeg)
        .unwrap();
    let mut jpeg = bytes.into_inner();
    // SOF0: FF C0, length (2), precision (1), height (2), width (2).
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG");
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}
