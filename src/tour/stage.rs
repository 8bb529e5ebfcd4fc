//! A tour's stages: one `latentlab` command line each, and the marker a finished stage leaves
//! (`.tour/<name>.json`) so that a re-run skips it while nothing it depends on changed.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// One step of the tour: a `latentlab` command line and the files it leaves.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Marker name, unique in the tour (`train-vae`, `sample-gan`, …).
    pub name: String,
    /// The command line after `latentlab`.
    pub args: Vec<String>,
    /// Paths relative to the tour folder that exist once the stage is done.
    pub outputs: Vec<String>,
    /// Stages whose results this one reads: redoing one of them redoes this one.
    pub inputs: Vec<String>,
    /// Rough seconds on a 2-core CPU, for the tour's ETA only.
    pub estimate_seconds: f64,
}

impl Stage {
    pub fn command_line(&self) -> String {
        std::iter::once("latentlab".to_string())
            .chain(self.args.iter().map(|a| shell_word(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `word`, quoted when a shell would split it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./,=:".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// What `.tour/<stage>.json` records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageMarker {
    pub command: String,
    /// Seconds since the Unix epoch when the stage finished.
    pub finished_at: f64,
    pub seconds: f64,
}

/// What happened to each stage in this invocation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageOutcome {
    pub name: String,
    pub command: String,
    /// `ran` or `skipped` (finished by an earlier invocation).
    pub status: String,
    /// Seconds the stage took when it ran (for skipped stages: when it ran before).
    pub seconds: f64,
}

pub fn marker_path(out: &Path, stage: &str) -> PathBuf {
    out.join(".tour").join(format!("{stage}.json"))
}

fn read_marker(out: &Path, stage: &str) -> Option<StageMarker> {
    let text = std::fs::read_to_string(marker_path(out, stage)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whether an earlier invocation finished `stage` as it is planned now.
pub fn finished(out: &Path, stage: &Stage) -> Option<StageMarker> {
    let marker = read_marker(out, &stage.name)?;
    if marker.command != stage.command_line() || !stage.outputs.iter().all(|o| out.join(o).exists())
    {
        return None;
    }
    let inputs_older = stage
        .inputs
        .iter()
        .all(|input| read_marker(out, input).is_some_and(|m| m.finished_at <= marker.finished_at));
    inputs_older.then_some(marker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::write_json;

    #[test]
    fn shell_words_quote_only_when_needed() {
        assert_eq!(shell_word("runs/tour/vae"), "runs/tour/vae");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn a_stage_is_redone_when_its_input_was_redone_later() {
        let dir = std::env::temp_dir().join(format!("latentlab-tour-{}", std::process::id()));
        let out = dir.as_path();
        std::fs::create_dir_all(out.join(".tour")).unwrap();
        std::fs::write(out.join("a.png"), b"x").unwrap();
        let stage = |name: &str, inputs: &[&str]| Stage {
            name: name.into(),
            args: vec!["sample".into(), name.into()],
            outputs: vec!["a.png".into()],
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            estimate_seconds: 1.0,
        };
        let (train, sample) = (stage("train", &[]), stage("sample", &["train"]));
        let mark = |s: &Stage, at: f64| {
            let marker = StageMarker {
                command: s.command_line(),
                finished_at: at,
                seconds: 1.0,
            };
            write_json(&marker_path(out, &s.name), &marker).unwrap();
        };
        mark(&train, 10.0);
        mark(&sample, 20.0);
        assert!(finished(out, &train).is_some());
        assert!(finished(out, &sample).is_some());
        mark(&train, 30.0);
        assert!(finished(out, &sample).is_none(), "its input is newer");
        let changed = Stage {
            args: vec!["sample".into(), "--n".into(), "9".into()],
            ..train.clone()
        };
        assert!(finished(out, &changed).is_none(), "another command line");
        std::fs::remove_file(out.join("a.png")).unwrap();
        assert!(finished(out, &train).is_none(), "an output is missing");
        std::fs::remove_dir_all(out).unwrap();
    }
}
