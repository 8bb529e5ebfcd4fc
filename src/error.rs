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

/// What went wrong with a JSON file, in words for its reader: serde's message without the Rust
/// type it expected ("expected struct LatentRun" means nothing to a user), and where.
pub fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = e.to_string();
    // serde_json appends " at line L column C"; it is put back in words below.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(head, _)| head);
    let what = match e.classify() {
        Category::Syntax | Category::Eof => "not valid JSON".to_string(),
        Category::Io => "unreadable".to_string(),
        Category::Data => match message.split_once(", expected ") {
            Some((found, expected)) => format!("{found}, expected {}", plain_expectation(expected)),
            None => message.to_string(),
        },
    };
    match e.line() {
        0 => what,
        line => format!("{what} (line {line}, column {})", e.column()),
    }
}

/// What serde expected, said without Rust's names for it.
fn plain_expectation(expected: &str) -> &str {
    let numbers = [
        "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f32", "f64",
    ];
    let word = expected.split_whitespace().last().unwrap_or("");
    if numbers.contains(&word) {
        "a number"
    } else if expected.contains("sequence")
        || expected.contains("tuple")
        || expected.contains("array")
    {
        "a list"
    } else if expected.contains("enum") {
        "one of the values it knows"
    } else if expected.contains("struct") || expected.contains("map") {
        "an object"
    } else if expected.chars().any(|c| c.is_ascii_uppercase()) {
        "another kind of value"
    } else {
        expected
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Words a user should never read in a message: Rust's and serde's names for types.
    fn names_a_type(message: &str) -> bool {
        [
            "struct", "enum ", "::", "Option<", "Config", "usize", "u64", "f64", "f32",
        ]
        .iter()
        .any(|word| message.contains(word))
    }

    #[test]
    fn json_problems_are_told_without_rust_type_names() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct RunLikeConfig {
            epochs: usize,
            lr: f64,
            inner: Vec<u8>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(tag = "kind")]
        #[allow(dead_code)]
        enum TaggedConfig {
            Ae { epochs: usize },
        }
        for text in [
            r#"{"epochs": "ten", "lr": 1, "inner": []}"#,
            r#"{"epochs": 1, "lr": "fast", "inner": []}"#,
            r#"{"epochs": 1, "lr": 1, "inner": 5}"#,
            r#"{"epochs": 1, "lr": 1}"#,
            r#"["not", "an", "object"]"#,
            r#"{"epochs": 1,"#,
            r#""pca""#,
        ] {
            let e = serde_json::from_str::<RunLikeConfig>(text).unwrap_err();
            let said = json_problem(&e);
            assert!(!names_a_type(&said), "{text}: {said} (serde: {e})");
        }
        for text in [
            r#"{"kind": "pca"}"#,
            r#""pca""#,
            r#"{"kind": "ae", "epochs": -1}"#,
        ] {
            let e = serde_json::from_str::<TaggedConfig>(text).unwrap_err();
            let said = json_problem(&e);
            assert!(!names_a_type(&said), "{text}: {said} (serde: {e})");
        }
    }
}
