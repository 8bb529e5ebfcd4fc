//! `metrics.jsonl`: one JSON object per epoch, and `loss.png` drawn from it.

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

/// Reads the rows of a `metrics.jsonl`; a missing file has none.
pub fn read_rows(path: &Path) -> Result<Vec<EpochRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| Error::bad_input(format!("{}: line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Rewrites the whole file atomically (it is small), so a crash never leaves half a row.
pub fn write_rows(path: &Path, rows: &[EpochRow]) -> Result<()> {
    let mut text = String::new();
    for row in rows {
        let line = serde_json::to_string(row)
            .map_err(|e| Error::Internal(format!("serializing metrics: {e}")))?;
        text.push_str(&line);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// `loss.png`: one panel per loss part, train and test against epochs.
pub fn plot_losses(rows: &[EpochRow], path: &Path) -> Result<()> {
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
                y_label: "nats per image".into(),
                series: vec![series("train", |r| &r.train), series("test", |r| &r.test)],
                marks: vec![],
                log_y: false,
            }
        })
        .collect();
    save_charts(&charts, (420, 320), path)
}
