//! `metrics.jsonl`: one JSON object per epoch (GANs add one per step before each epoch's row),
//! and `loss.png` drawn from the epoch rows.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::viz::plot::{LineChart, Series, save_charts};

/// One epoch's row. Loss parts are in nats per image (see each model's docs).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    /// Optimizer steps done by the end of this epoch.
    pub step: u64,
    pub train: BTreeMap<String, f64>,
    pub test: BTreeMap<String, f64>,
    /// Wall-clock seconds of the epoch's training steps (evaluation and pictures excluded).
    pub seconds: f64,
    pub images_per_second: f64,
}

/// One training step's row (GANs): the step's loss parts, no test pass.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepRow {
    /// The epoch the step belongs to.
    pub epoch: usize,
    /// Optimizer steps done, this one included.
    pub step: u64,
    pub train: BTreeMap<String, f64>,
}

/// Reads the epoch rows of a `metrics.jsonl`; a missing file has none.
pub fn read_rows(path: &Path) -> Result<Vec<EpochRow>> {
    Ok(read_all(path)?.0)
}

/// Reads the epoch rows and the step rows of a `metrics.jsonl`.
pub fn read_all(path: &Path) -> Result<(Vec<EpochRow>, Vec<StepRow>)> {
    if !path.exists() {
        return Ok((Vec::new(), Vec::new()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_all(&text, &path.display().to_string())
}

/// [`read_all`] on the file's text; `what` names it in errors.
pub fn parse_all(text: &str, what: &str) -> Result<(Vec<EpochRow>, Vec<StepRow>)> {
    let (mut rows, mut steps) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let bad = |e: serde_json::Error| {
            let problem = crate::error::json_problem(&e);
            Error::bad_input(format!("{what}: line {}: {problem}", i + 1))
        };
        let value: serde_json::Value = serde_json::from_str(line).map_err(bad)?;
        if value.get("test").is_some() {
            rows.push(serde_json::from_value(value).map_err(bad)?);
        } else {
            steps.push(serde_json::from_value(value).map_err(bad)?);
        }
    }
    Ok((rows, steps))
}

/// Rewrites the whole file atomically, so a crash never leaves half a row: the epoch rows with
/// the step rows, each epoch's steps just before its row.
pub fn write_all(path: &Path, rows: &[EpochRow], steps: &[StepRow]) -> Result<()> {
    let mut text = String::new();
    let mut push = |row: &dyn erased::Row| -> Result<()> {
        text.push_str(&row.line()?);
        text.push('\n');
        Ok(())
    };
    let mut pending = steps.iter().peekable();
    for row in rows {
        while let Some(step) = pending.next_if(|s| s.epoch <= row.epoch) {
            push(step)?;
        }
        push(row)?;
    }
    for step in pending {
        push(step)?;
    }
    write_atomic(path, text.as_bytes())
}

mod erased {
    use crate::error::{Error, Result};

    /// A row as one JSON line.
    pub trait Row {
        fn line(&self) -> Result<String>;
    }

    impl<T: serde::Serialize> Row for T {
        fn line(&self) -> Result<String> {
            serde_json::to_string(self)
                .map_err(|e| Error::Internal(format!("serializing metrics: {e}")))
        }
    }
}

/// Loss parts as one line: `name value, name value` (3 decimals).
pub(crate) fn format_parts(parts: &BTreeMap<String, f64>) -> String {
    parts
        .iter()
        .map(|(k, v)| format!("{k} {v:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The y-axis label of a metrics part.
fn unit(part: &str) -> &'static str {
    match part {
        "accuracy" => "fraction correct",
        "d_real" => "mean D(x)",
        "d_fake" => "mean D(G(z))",
        "mse" => "squared error per pixel",
        _ => "nats per image",
    }
}

/// `loss.png`: one panel per loss part, train and test against epochs.
pub(crate) fn plot_losses(rows: &[EpochRow], path: &Path) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    // A part that equals the loss in every row (an autoencoder's recon) would repeat its panel.
    let repeats_loss = |part: &str| {
        part != "loss"
            && rows.iter().all(|r| {
                r.train.get(part) == r.train.get("loss") && r.test.get(part) == r.test.get("loss")
            })
    };
    let charts: Vec<LineChart> = first
        .train
        .keys()
        .filter(|part| !repeats_loss(part))
        .map(|part| {
            let series = |name: &str, pick: fn(&EpochRow) -> &BTreeMap<String, f64>| Series {
                name: name.into(),
                points: rows
                    .iter()
                    .filter_map(|r| pick(r).get(part).map(|v| (r.epoch as f64, *v)))
                    .collect(),
            };
            LineChart {
                title: part.clone(),
                x_label: "epoch".into(),
                y_label: unit(part).into(),
                series: vec![series("train", |r| &r.train), series("test", |r| &r.test)],
                marks: vec![],
                log_y: false,
            }
        })
        .collect();
    save_charts(&charts, (420, 320), path)
}

/// `steps.png` for runs that log steps (GANs): the losses in one panel and D's mean outputs in
/// another, each a moving average over `window` steps so the trend shows through the noise.
pub(crate) fn plot_steps(steps: &[StepRow], window: usize, path: &Path) -> Result<()> {
    let Some(first) = steps.first() else {
        return Ok(());
    };
    let window = window.max(1);
    let series = |part: &str| Series {
        name: part.into(),
        points: moving_average(steps, part, window),
    };
    let (probabilities, losses): (Vec<&String>, Vec<&String>) = first
        .train
        .keys()
        .partition(|p| p.starts_with("d_") && p != &"d_loss");
    let mut charts = Vec::new();
    for (title, y_label, parts) in [
        ("losses", "nats per image", losses),
        ("D's mean output", "probability (real)", probabilities),
    ] {
        if parts.is_empty() {
            continue;
        }
        charts.push(LineChart {
            title: format!("{title}, mean of {window} steps"),
            x_label: "step".into(),
            y_label: y_label.into(),
            series: parts.iter().map(|p| series(p)).collect(),
            marks: vec![],
            log_y: false,
        });
    }
    save_charts(&charts, (480, 320), path)
}

/// Trailing moving average of one part over `window` steps, one point per step.
fn moving_average(steps: &[StepRow], part: &str, window: usize) -> Vec<(f64, f64)> {
    let values: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|s| s.train.get(part).map(|v| (s.step as f64, *v)))
        .collect();
    let mut sum = 0.0;
    values
        .iter()
        .enumerate()
        .map(|(i, &(step, v))| {
            sum += v;
            if i >= window {
                sum -= values[i - window].1;
            }
            (step, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_trails_over_the_window() {
        let steps: Vec<StepRow> = [1.0, 3.0, 5.0, 7.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| StepRow {
                epoch: 1,
                step: i as u64 + 1,
                train: [("d_loss".to_string(), v)].into_iter().collect(),
            })
            .collect();
        let average = moving_average(&steps, "d_loss", 2);
        assert_eq!(
            average,
            vec![(1.0, 1.0), (2.0, 2.0), (3.0, 4.0), (4.0, 6.0)]
        );
        assert!(moving_average(&steps, "g_loss", 2).is_empty());
    }
}
