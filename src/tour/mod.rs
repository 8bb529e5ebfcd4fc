//! `latentlab tour`: the lecture in one command. PCA → autoencoder → VAE → GAN on one dataset,
//! each trained and measured by the same commands a user would type, then one HTML report.
//!
//! A tour is a list of [`Stage`]s, each one `latentlab` command line writing into its own place
//! under the tour's folder. A stage that finished leaves a marker (`.tour/<name>.json`) holding its
//! command line; a re-run skips it while the command is the same, its outputs exist and nothing it
//! reads was redone since. The report is rebuilt every time from what the folders hold.

pub mod figures;
pub mod plan;
pub mod report;
pub mod summary;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressStyle};

use crate::error::{Error, Result};
use crate::fsutil::write_json;
use crate::ui;

pub use plan::{Budget, FidFeatures, TourOptions, plan};
pub use summary::Summary;

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

fn marker_path(out: &Path, stage: &str) -> PathBuf {
    out.join(".tour").join(format!("{stage}.json"))
}

fn read_marker(out: &Path, stage: &str) -> Option<StageMarker> {
    let text = std::fs::read_to_string(marker_path(out, stage)).ok()?;
    serde_json::from_str(&text).ok()
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whether an earlier invocation finished `stage` as it is planned now.
fn finished(out: &Path, stage: &Stage) -> Option<StageMarker> {
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

/// Runs one `latentlab` command line (the words after `latentlab`) in this process. The CLI
/// hands it in, so the tour needs no knowledge of how command lines are parsed.
pub type CommandRunner<'a> = &'a dyn Fn(&[String]) -> Result<()>;

/// Runs (or skips) every stage with `run_command`, then writes `summary.json` and
/// `report.html`.
pub fn run(options: &TourOptions, run_command: CommandRunner) -> Result<Summary> {
    let stages = plan(options)?;
    let markers = options.out.join(".tour");
    std::fs::create_dir_all(&markers).map_err(|e| Error::io(&markers, e))?;
    let started = Instant::now();
    let multi = (!options.quiet).then(MultiProgress::new);
    let tour_bar = match &multi {
        Some(multi) => multi.add(indicatif::ProgressBar::new(stages.len() as u64)),
        None => indicatif::ProgressBar::hidden(),
    };
    tour_bar.set_style(
        ProgressStyle::with_template("tour [{bar:20}] {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    ui::install(multi);
    let result = run_stages(options, &stages, &tour_bar, started, run_command);
    tour_bar.finish_and_clear();
    ui::install(None);
    let outcomes = result?;

    let seconds = started.elapsed().as_secs_f64();
    let summary = summary::collect(options, &outcomes, seconds)?;
    figures::draw(options, &summary)?;
    write_json(&options.out.join("summary.json"), &summary)?;
    report::write(&options.out, &summary)?;
    if !options.quiet {
        let ran = outcomes.iter().filter(|o| o.status == "ran").count();
        ui::say(&format!(
            "tour ({} budget) done in {:.0} s: {ran} stages ran, {} skipped; report: {}",
            options.budget.name(),
            seconds,
            outcomes.len() - ran,
            options.out.join("report.html").display()
        ));
    }
    Ok(summary)
}

fn run_stages(
    options: &TourOptions,
    stages: &[Stage],
    tour_bar: &indicatif::ProgressBar,
    started: Instant,
    run_command: CommandRunner,
) -> Result<Vec<StageOutcome>> {
    let mut outcomes = Vec::new();
    // ETA from this invocation's pace against the estimates of the stages it ran.
    let (mut estimated_done, mut seconds_done) = (0.0, 0.0);
    for (i, stage) in stages.iter().enumerate() {
        let command = stage.command_line();
        let previous = if options.force {
            None
        } else {
            finished(&options.out, stage)
        };
        if let Some(marker) = previous {
            outcomes.push(StageOutcome {
                name: stage.name.clone(),
                command,
                status: "skipped".into(),
                seconds: marker.seconds,
            });
            tour_bar.set_position(i as u64 + 1);
            continue;
        }
        let remaining: f64 = stages[i..].iter().map(|s| s.estimate_seconds).sum();
        let pace = if estimated_done > 0.0 {
            seconds_done / estimated_done
        } else {
            1.0
        };
        let eta = format_duration(remaining * pace);
        let elapsed = format_duration(started.elapsed().as_secs_f64());
        // "stage k/n" names the stage now running, counted from 1.
        tour_bar.set_position(i as u64 + 1);
        tour_bar.set_message(format!(
            "stage {}/{} {}: elapsed {elapsed}, eta {eta}",
            i + 1,
            stages.len(),
            stage.name
        ));
        if !options.quiet {
            ui::log(&format!(
                "── tour stage {}/{}: {command}  (elapsed {elapsed}, eta {eta})",
                i + 1,
                stages.len()
            ));
        }
        let stage_started = Instant::now();
        let mut args = stage.args.clone();
        if options.quiet {
            args.push("--quiet".into());
        }
        run_command(&args)?;
        let seconds = stage_started.elapsed().as_secs_f64();
        estimated_done += stage.estimate_seconds;
        seconds_done += seconds;
        let marker = StageMarker {
            command: command.clone(),
            finished_at: now_seconds(),
            seconds,
        };
        write_json(&marker_path(&options.out, &stage.name), &marker)?;
        outcomes.push(StageOutcome {
            name: stage.name.clone(),
            command,
            status: "ran".into(),
            seconds,
        });
    }
    Ok(outcomes)
}

/// `1 h 05 min`, `4 min 10 s`, `12 s`.
pub fn format_duration(seconds: f64) -> String {
    if seconds < 9.95 {
        return format!("{:.1} s", seconds.max(0.0));
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quote_only_when_needed() {
        assert_eq!(shell_word("runs/tour/vae"), "runs/tour/vae");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(0.42), "0.4 s");
        assert_eq!(format_duration(12.4), "12 s");
        assert_eq!(format_duration(250.0), "4 min 10 s");
        assert_eq!(format_duration(3900.0), "1 h 05 min");
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
