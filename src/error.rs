//! One error type for the library. The CLI maps `BadInput` to exit code 2 and everything else to 1.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user gave something we cannot use: a missing path, a malformed file, an impossible option.
    #[error("{0}")]
    BadInput(String),
    /// A file we expected to read or write could not be.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Training produced NaN or Inf; the last good checkpoint is kept.
    #[error("{0}")]
    Diverged(String),
    /// Stopped by Ctrl-C after saving what can be resumed.
    #[error("{0}")]
    Interrupted(String),
    /// Something went wrong that is not the user's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A bad-input error; a line break inside `message` (some libraries' errors are whole
    /// tables) becomes a space, so the user still reads one line.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Error::BadInput(join_lines(&message.into()))
    }

    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        let path = path.as_ref().to_path_buf();
        // A missing or unreadable input is the user's to fix, not an internal failure.
        match source.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                Error::BadInput(format!("{}: {}", path.display(), source))
            }
            _ => Error::Io { path, source },
        }
    }

    /// The message on one line, as the CLI prints it: a line break inside a message that another
    /// library wrote becomes a space.
    pub fn one_line(&self) -> String {
        join_lines(&self.to_string())
    }

    /// The process exit code for this error (see DESIGN.md: 2 bad input, 1 internal or
    /// diverged, 130 interrupted by Ctrl-C after saving).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadInput(_) => 2,
            Error::Io { .. } | Error::Internal(_) | Error::Diverged(_) => 1,
            Error::Interrupted(_) => 130,
        }
    }
}

fn join_lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub type Result<T> = std::result::Result<T, Error>;
