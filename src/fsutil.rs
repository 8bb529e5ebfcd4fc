//! File-system helpers shared by every command: atomic writes and output folders that never
//! overwrite a user's earlier results by accident.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a crash
/// mid-write leaves either the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::bad_input(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Checks that `out` can take a run's results: an existing non-empty folder is refused unless
/// `force` is set, so a second run never silently replaces the results of the first.
pub fn check_out_dir(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::bad_input(format!(
                "{}: exists and is not a folder",
                out.display()
            )));
        }
        let non_empty = fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .next()
            .is_some();
        if non_empty && !force {
            return Err(Error::bad_input(format!(
                "{}: already holds results; pass --force to overwrite or choose another --out",
                out.display()
            )));
        }
    }
    Ok(())
}

/// Checks `out` as [`check_out_dir`] does and creates it.
pub fn prepare_out_dir(out: &Path, force: bool) -> Result<PathBuf> {
    check_out_dir(out, force)?;
    fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    Ok(out.to_path_buf())
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Internal(format!("serializing {}: {e}", path.display())))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Environment variable overriding where downloaded and converted files (the Inception weights,
/// cached feature statistics) are kept.
pub const DATA_DIR_ENV: &str = "LATENTLAB_DATA_DIR";

/// The user's data directory for latentlab: `$LATENTLAB_DATA_DIR`, else
/// `$XDG_DATA_HOME/latentlab`, else `~/.local/share/latentlab`.
pub fn data_dir() -> Result<PathBuf> {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = non_empty(DATA_DIR_ENV) {
        return Ok(dir);
    }
    if let Some(dir) = non_empty("XDG_DATA_HOME") {
        return Ok(dir.join("latentlab"));
    }
    non_empty("HOME")
        .map(|home| home.join(".local/share/latentlab"))
        .ok_or_else(|| Error::bad_input(format!("no home folder: set ${DATA_DIR_ENV}")))
}
