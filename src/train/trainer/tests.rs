//! The trainer's loop, resume and loss bookkeeping, on a learner small enough to follow.

use super::*;
use crate::data::{ImageShape, Split};

/// Counts its steps and reports a loss that turns NaN, or a failure, at a chosen step; its
/// loss is the step's number.
#[derive(Default)]
struct Fake {
    steps: u64,
    nan_at: u64,
    fail_at: u64,
    /// Per step observed: (its loss, how many steps had been taken when it was observed).
    observed: Vec<(f64, u64)>,
}

impl Learner for Fake {
    fn observe(&mut self, parts: &Parts) -> Option<String> {
        self.observed.push((parts[0].1, self.steps));
        (self.observed.len() as u64 == self.fail_at).then(|| "the fake model collapsed".into())
    }
    fn train_step(&mut self, _batch: Batch) -> DeviceParts {
        self.steps += 1;
        let loss = if self.steps == self.nan_at {
            f32::NAN
        } else {
            self.steps as f32
        };
        vec![("loss", Tensor::from_floats([loss], &Device::flex()))]
    }
    fn evaluate(&self, _batches: Batches<'_>) -> PassParts {
        vec![("loss".into(), 1.0)]
    }
    fn scale(&self) -> PixelScale {
        PixelScale::ZeroOne
    }
    fn write_images(&self, _out: &Path, _epoch: usize) -> Result<()> {
        Ok(())
    }
    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![("model", self.steps.to_le_bytes().to_vec())])
    }
    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        self.steps = u64::from_le_bytes(blobs["model"][..8].try_into().unwrap());
        Ok(())
    }
    fn export(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, b"weights")
    }
}

/// An empty output folder of its own and quiet options of `epochs` epochs of `batch_size`.
fn quiet_run(name: &str, epochs: usize, batch_size: usize) -> (PathBuf, TrainOptions) {
    let out = std::env::temp_dir().join(format!("latentlab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let options = TrainOptions {
        epochs,
        batch_size,
        seed: 0,
        out: out.clone(),
        quiet: true,
        stop_after_steps: None,
        writes: true,
    };
    (out, options)
}

fn dataset(n: usize) -> Dataset {
    let shape = ImageShape {
        channels: 1,
        height: 2,
        width: 2,
    };
    let split = Split::new(shape, vec![0; n * 4], vec![0; n]);
    Dataset {
        name: "tiny".into(),
        source: "test".into(),
        class_names: vec![],
        train: split.clone(),
        test: split,
    }
}

#[test]
fn a_nan_stops_training_and_keeps_the_last_good_checkpoint() {
    let (out, options) = quiet_run("nan", 3, 2);
    // 4 steps per epoch; step 6 is the second of epoch 2.
    let mut learner = Fake {
        nan_at: 6,
        ..Fake::default()
    };
    let error = train(&mut learner, &dataset(8), &options, &Device::flex(), None).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Diverged(_)), "{message}");
    assert!(
        message.contains("loss became NaN at epoch 2, step 6"),
        "{message}"
    );
    assert!(message.contains("checkpoint of epoch 1"), "{message}");
    let kept = checkpoint::load(&checkpoint_dir(&out)).unwrap();
    assert_eq!((kept.state.epoch, kept.state.step), (1, 4));
    assert_eq!(kept.blobs["model"], 4u64.to_le_bytes().to_vec());
    assert_eq!(
        metrics::read_rows(&out.join("metrics.jsonl"))
            .unwrap()
            .len(),
        1
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_failure_a_learner_reports_stops_training_and_keeps_the_checkpoint() {
    let (out, options) = quiet_run("fail", 3, 2);
    let mut learner = Fake {
        fail_at: 7,
        ..Fake::default()
    };
    let error = train(&mut learner, &dataset(8), &options, &Device::flex(), None).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Diverged(_)), "{message}");
    assert!(
        message.contains("at epoch 2, step 7: the fake model collapsed"),
        "{message}"
    );
    assert!(message.contains("checkpoint of epoch 1"), "{message}");
    let kept = checkpoint::load(&checkpoint_dir(&out)).unwrap();
    assert_eq!((kept.state.epoch, kept.state.step), (1, 4));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn step_parts_are_read_back_in_batches_of_steps_in_order() {
    let (out, options) = quiet_run("read", 2, 1);
    let mut learner = Fake::default();
    let outcome = train(&mut learner, &dataset(80), &options, &Device::flex(), None).unwrap();
    let losses: Vec<f64> = learner.observed.iter().map(|&(loss, _)| loss).collect();
    assert_eq!(losses, (1..=160).map(f64::from).collect::<Vec<_>>());
    // Read every READ_EVERY_STEPS steps (or half a second) and at each epoch's end: a
    // few reads, not one per step.
    let mut reads: Vec<u64> = learner.observed.iter().map(|&(_, taken)| taken).collect();
    reads.dedup();
    assert!(reads.len() <= 10, "{reads:?}");
    assert!(reads.contains(&80) && reads.contains(&160), "{reads:?}");
    // The epoch means are those of every step's loss, as if read one by one.
    let Outcome::Finished { rows } = outcome else {
        panic!("finished")
    };
    assert_eq!(rows[0].train["loss"], 40.5);
    assert_eq!(rows[1].train["loss"], 120.5);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn seeds_of_different_streams_and_positions_differ() {
    let seeds: std::collections::HashSet<u64> = (0..4)
        .flat_map(|domain| (0..100).map(move |position| mix(7, domain, position)))
        .collect();
    assert_eq!(seeds.len(), 400);
    assert_eq!(mix(7, 1, 2), mix(7, 1, 2));
}
