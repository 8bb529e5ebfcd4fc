//! File-system helpers shared by every command: atomic writes and output folders that never
//! overwrite a user's earlier results by accident.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a crash
/// mid-write leaves either the old file or the new one, never a torn one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
pub(crate) fn check_out_dir(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::bad_input(format!(
                "{}: exists and is not a folder",
                out.display()
            )));
        }
        // Results are never hidden files: a lock, or the temp file of a write killed before its
        // rename, left by a process that died before writing anything, is not a result.
        let non_empty = fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .flatten()
            .any(|entry| !entry.file_name().to_string_lossy().starts_with('.'));
        if non_empty && !force {
            return Err(Error::bad_input(format!(
                "{}: already holds results; pass --force to overwrite or choose another --out",
                out.display()
            )));
        }
    }
    Ok(())
}

/// The file in a run folder locked by the process writing it.
pub(crate) const LOCK_FILE: &str = ".lock";

/// The exclusive right to write a run folder, held until dropped.
///
/// An advisory lock (`flock` on Unix, `LockFileEx` on Windows, through std) on `<run>/.lock`, so
/// the kernel releases it when its process dies, `kill -9` included: a stale lock needs no
/// cleaning and two processes can never both take one over. The file holds the owner's pid for
/// the refusal message and is never deleted (deleting it would let a third process lock a new
/// file while a second still holds the old one).
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: fs::File,
}

impl RunLock {
    /// Takes the lock of the run folder `dir` (created if missing), or refuses in one line
    /// naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let owner = fs::read_to_string(&path).unwrap_or_default();
                let owner = match owner.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                return Err(Error::bad_input(format!(
                    "{}: another latentlab process{owner} is writing this run; wait for it to \
                     finish or stop it, then try again",
                    dir.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
        Ok(Self { _file: file })
    }
}

/// Checks `out` as [`check_out_dir`] does and creates it.
pub(crate) fn prepare_out_dir(out: &Path, force: bool) -> Result<PathBuf> {
    check_out_dir(out, force)?;
    fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    Ok(out.to_path_buf())
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Internal(format!("serializing {}: {e}", path.display())))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Environment variable overriding where downloaded and converted files (the Inception weights,
/// cached feature statistics) are kept.
pub(crate) const DATA_DIR_ENV: &str = "LATENTLAB_DATA_DIR";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("latentlab-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = RunLock::acquire(&dir).unwrap();
        // flock locks belong to an open file, so a second open in this process conflicts too.
        let message = RunLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            message.contains(&format!("(pid {})", std::process::id())),
            "{message}"
        );
        drop(first);
        let _again = RunLock::acquire(&dir).unwrap();
        // The lock file alone does not make the folder hold results, nor does a killed write's
        // temp file; a result does.
        fs::write(dir.join(".config.json.tmp123"), "{").unwrap();
        check_out_dir(&dir, false).unwrap();
        fs::write(dir.join("config.json"), "{}").unwrap();
        assert!(check_out_dir(&dir, false).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
