//! The one training loop: epochs over shuffled batches, a progress bar, a metrics row, pictures
//! and a checkpoint per epoch, exact resume, a clean stop on Ctrl-C or on a non-finite loss.
//! What a step does belongs to the [`Learner`]; this file never looks inside a model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::tensor::{Device, Tensor};

use crate::data::{Batch, BatchConfig, Batches, Dataset, PixelScale};
use crate::error::{Error, Result};
use crate::rng::{mix, stream};
use crate::train::checkpoint::{self, RngState, TrainState};
use crate::train::metrics::{self, EpochRow, StepRow};
use crate::ui::EpochBar;

/// Named loss parts of a step or of a pass, batch means per image.
pub(crate) type Parts = Vec<(&'static str, f64)>;

/// A step's or a batch's named loss parts as they leave the model: `[1]` tensors still on the
/// device. Reading one back waits for the device to finish everything queued before it, so
/// they are gathered in [`PendingParts`] and read in one transfer.
pub(crate) type DeviceParts = Vec<(&'static str, Tensor<1>)>;

/// Steps whose parts wait on the device before the trainer reads them back.
pub const READ_EVERY_STEPS: usize = 32;
/// ... or this long, so that a slow model's progress bar still moves.
const READ_EVERY_SECONDS: f64 = 0.5;

/// Loss parts over a pass, by name.
pub(crate) type PassParts = Vec<(String, f64)>;

/// One model family's side of training: what a step does, how it is scored, pictured and saved.
pub trait Learner {
    /// One optimization step on a batch (images `[batch, c, h, w]` scaled as [`Learner::scale`]
    /// says, and their labels). The parts stay on the device: the trainer reads them back every
    /// few dozen steps, so a GPU never idles waiting for the host between steps.
    fn train_step(&mut self, batch: Batch) -> DeviceParts;
    /// Told before each step how far the run is (0 at the start, 1 at the end), for schedules.
    fn set_progress(&mut self, _progress: f64) {}
    /// Shown each step's parts once they are read back, in step order (a few steps after the
    /// step itself); returns a failure seen in them beyond a non-finite loss, as a symptom and
    /// remedies: the run stops and keeps its last good checkpoint.
    fn observe(&mut self, _parts: &Parts) -> Option<String> {
        None
    }
    /// Whether each step's parts get their own row in `metrics.jsonl` (GANs, whose losses
    /// are read step by step).
    fn logs_steps(&self) -> bool {
        false
    }
    /// Loss parts over a whole split, without updating anything: weighted means per image. The
    /// batches live on the plain (non-autodiff) device.
    fn evaluate(&self, batches: Batches<'_>) -> PassParts;
    /// How pixels are scaled for this model.
    fn scale(&self) -> PixelScale;
    /// The epoch's pictures (fixed-noise samples, fixed-batch reconstructions) under `out`.
    fn write_images(&self, out: &Path, epoch: usize) -> Result<()>;
    /// Serialized model and optimizer state, by role.
    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>>;
    /// Restores what [`Learner::state_blobs`] saved.
    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()>;
    /// The final weights users open (`model.safetensors`).
    fn export(&self, path: &Path) -> Result<()>;
}

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub quiet: bool,
    /// Stop as Ctrl-C would after this many steps in all: tests use it to interrupt a run at a
    /// chosen point through the same code path as a real Ctrl-C.
    pub stop_after_steps: Option<u64>,
    /// Whether this process writes the run folder: false on MPI ranks other than 0, which
    /// train in step with rank 0 and read its checkpoints.
    pub writes: bool,
}

/// How a call to [`train`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished {
        rows: Vec<EpochRow>,
    },
    /// Stopped by Ctrl-C (or `stop_after_steps`) after saving a checkpoint; `message` says
    /// where and how to continue.
    Interrupted {
        state: TrainState,
        message: String,
    },
}

/// Set by SIGINT once [`install_interrupt_handler`] has run.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C finish the current step, save a checkpoint and stop; a second Ctrl-C kills.
pub(crate) fn install_interrupt_handler() {
    #[cfg(unix)]
    {
        use signal_hook::consts::SIGINT;
        use std::sync::Once;
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let flag = Arc::new(AtomicBool::new(false));
            // Order matters: the conditional shutdown sees the flag set by the first Ctrl-C.
            let _ = signal_hook::flag::register_conditional_shutdown(SIGINT, 130, flag.clone());
            let _ = signal_hook::flag::register(SIGINT, flag.clone());
            std::thread::spawn(move || {
                loop {
                    if flag.load(Ordering::Relaxed) {
                        INTERRUPTED.store(true, Ordering::Relaxed);
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
        });
    }
}

fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// Whether the run folder `out` holds a checkpoint to resume from.
pub(crate) fn has_checkpoint(out: &Path) -> bool {
    checkpoint::exists(&checkpoint_dir(out))
}

/// Restores `learner` from the checkpoint in `out` and returns where training stood.
pub fn resume(learner: &mut dyn Learner, out: &Path) -> Result<TrainState> {
    if !checkpoint::exists(&checkpoint_dir(out)) {
        return Err(Error::bad_input(format!(
            "{}: no checkpoint to resume from",
            out.display()
        )));
    }
    let loaded = checkpoint::load(&checkpoint_dir(out))?;
    learner.restore(&loaded.blobs)?;
    Ok(loaded.state)
}

/// Trains `learner` on `data` from the start, or from `resumed` (see [`resume`]).
pub fn train(
    learner: &mut dyn Learner,
    data: &Dataset,
    options: &TrainOptions,
    device: &Device,
    resumed: Option<TrainState>,
) -> Result<Outcome> {
    let mut progress = Progress::start(options, resumed)?;
    let mut exported = false;
    while progress.state.epoch < options.epochs {
        let epoch = progress.state.epoch + 1;
        let pass = match train_epoch(learner, data, options, device, &mut progress, epoch)? {
            EpochPass::Finished(pass) => pass,
            EpochPass::Stopped(outcome) => return Ok(outcome),
        };
        end_epoch(learner, data, options, device, &mut progress, epoch, pass)?;
        exported = true;
        if stop_requested(options, progress.state.step) && epoch < options.epochs {
            let message = format!(
                "stopped after epoch {epoch}; checkpoint saved. Continue with: latentlab train --resume {}",
                options.out.display()
            );
            return Ok(Outcome::Interrupted {
                state: progress.state,
                message,
            });
        }
    }
    if !exported && options.writes {
        // Resumed with nothing left to train: the kill may have come between the last
        // checkpoint and its export.
        learner.export(&options.out.join("model.safetensors"))?;
    }
    Ok(Outcome::Finished {
        rows: progress.rows,
    })
}

/// Where a training stands: its state as a checkpoint records it, and the metrics rows so far.
struct Progress {
    state: TrainState,
    rows: Vec<EpochRow>,
    step_rows: Vec<StepRow>,
    metrics_path: PathBuf,
}

impl Progress {
    /// From the start, or from `resumed`'s checkpoint with the rows it had written.
    fn start(options: &TrainOptions, resumed: Option<TrainState>) -> Result<Self> {
        let metrics_path = options.out.join("metrics.jsonl");
        let state = resumed.unwrap_or(TrainState {
            epoch: 0,
            step: 0,
            step_in_epoch: 0,
            epoch_sums: vec![],
            epoch_images: 0,
            epoch_seconds: 0.0,
            rng: RngState {
                seed: options.seed,
                stream: 0,
            },
        });
        // Rows past the checkpoint come from a run that died between writing them and saving it.
        let (rows, step_rows) = metrics::read_all(&metrics_path)?;
        Ok(Self {
            rows: rows
                .into_iter()
                .filter(|r| r.epoch <= state.epoch)
                .collect(),
            step_rows: step_rows
                .into_iter()
                .filter(|r| r.step <= state.step)
                .collect(),
            state,
            metrics_path,
        })
    }
}

/// Whether Ctrl-C or the test's step limit asks training to stop.
fn stop_requested(options: &TrainOptions, step: u64) -> bool {
    INTERRUPTED.load(Ordering::Relaxed) || options.stop_after_steps.is_some_and(|n| step >= n)
}

/// How an epoch's pass over the training batches ended.
enum EpochPass {
    Finished(FinishedPass),
    Stopped(Outcome),
}

/// A pass over all of an epoch's training batches.
struct FinishedPass {
    bar: EpochBar,
    sums: PassMeans,
    /// Training seconds of the epoch, sessions before a resume included.
    seconds: f64,
    /// Images this session trained on, and since when.
    session_images: usize,
    started: Instant,
}

/// Trains on epoch `epoch`'s batches (from where a resumed run stopped); on a stop request
/// part-way, saves a checkpoint inside the epoch.
fn train_epoch(
    learner: &mut dyn Learner,
    data: &Dataset,
    options: &TrainOptions,
    device: &Device,
    progress: &mut Progress,
    epoch: usize,
) -> Result<EpochPass> {
    let seed = progress.state.rng.seed;
    let batches = Batches::new(
        &data.train,
        BatchConfig {
            batch_size: options.batch_size,
            shuffle_seed: Some(mix(seed, stream::SHUFFLE, epoch as u64)),
            drop_last: false,
            scale: learner.scale(),
        },
        device,
    );
    let steps = batches.num_batches();
    let mut bar = EpochBar::new(
        epoch,
        options.epochs,
        steps,
        progress.state.step_in_epoch,
        options.quiet,
    );
    let mut sums = PassMeans::resume(&progress.state.epoch_sums, progress.state.epoch_images);
    let mut session_images = 0usize;
    let started = Instant::now();
    let mut pending = PendingParts::default();
    let mut last_read = Instant::now();
    for batch in batches.skip_batches(progress.state.step_in_epoch) {
        let state = &mut progress.state;
        device.seed(mix(seed, stream::STEP, state.step));
        let size = batch.images.dims()[0];
        let fraction = ((epoch - 1) as f64 + state.step_in_epoch as f64 / steps as f64)
            / options.epochs as f64;
        learner.set_progress(fraction);
        pending.push(size, learner.train_step(batch));
        state.step += 1;
        state.step_in_epoch += 1;
        state.rng.stream = state.step;
        let stop = stop_requested(options, state.step);
        let read_due = pending.len() >= READ_EVERY_STEPS
            || last_read.elapsed().as_secs_f64() >= READ_EVERY_SECONDS
            || state.step_in_epoch == steps
            || stop;
        if read_due {
            let read = read_steps(
                learner,
                options,
                progress,
                &mut pending,
                &mut sums,
                &mut bar,
                epoch,
            );
            session_images += match read {
                Ok(images) => images,
                Err(e) => {
                    bar.finish();
                    return Err(e);
                }
            };
            last_read = Instant::now();
        }
        if stop && progress.state.step_in_epoch < steps {
            let state = &mut progress.state;
            (state.epoch_sums, state.epoch_images) = sums.totals();
            state.epoch_seconds += started.elapsed().as_secs_f64();
            let out = &options.out;
            if options.writes {
                checkpoint::save(&checkpoint_dir(out), state, &learner.state_blobs()?)?;
                metrics::write_all(&progress.metrics_path, &progress.rows, &progress.step_rows)?;
            }
            bar.finish();
            let message = format!(
                "stopped at epoch {epoch}, step {} ({}/{steps} of this epoch); checkpoint saved. \
                 Continue with: latentlab train --resume {}",
                state.step,
                state.step_in_epoch,
                out.display()
            );
            return Ok(EpochPass::Stopped(Outcome::Interrupted {
                state: state.clone(),
                message,
            }));
        }
    }
    Ok(EpochPass::Finished(FinishedPass {
        bar,
        sums,
        seconds: progress.state.epoch_seconds + started.elapsed().as_secs_f64(),
        session_images,
        started,
    }))
}

/// Reads the losses of the steps `pending` holds (the last of them is the current step): checks
/// them, adds them to the epoch's sums, the bar and the step rows. Returns the images read.
fn read_steps(
    learner: &mut dyn Learner,
    options: &TrainOptions,
    progress: &mut Progress,
    pending: &mut PendingParts,
    sums: &mut PassMeans,
    bar: &mut EpochBar,
    epoch: usize,
) -> Result<usize> {
    let (out, last_saved) = (&options.out, progress.state.epoch);
    let first_step = progress.state.step + 1 - pending.len() as u64;
    let mut images = 0;
    for (step, (size, parts)) in (first_step..).zip(pending.read()) {
        if let Some((name, value)) = parts.iter().find(|(_, v)| !v.is_finite()) {
            return Err(diverged(out, name, *value, epoch, step, last_saved));
        }
        if let Some(symptom) = learner.observe(&parts) {
            return Err(Error::Diverged(format!(
                "training stopped at epoch {epoch}, step {step}: {symptom}; {}",
                kept_checkpoint(out, last_saved)
            )));
        }
        if learner.logs_steps() {
            progress.step_rows.push(StepRow {
                epoch,
                step,
                train: parts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            });
        }
        sums.add(&parts, size);
        images += size;
        bar.step(size, &parts);
    }
    Ok(images)
}

/// The end of epoch `epoch`: the test set's losses, the metrics row and its plots, the epoch's
/// images, then the checkpoint and the exported weights.
fn end_epoch(
    learner: &mut dyn Learner,
    data: &Dataset,
    options: &TrainOptions,
    device: &Device,
    progress: &mut Progress,
    epoch: usize,
    pass: FinishedPass,
) -> Result<()> {
    let (out, state) = (&options.out, &mut progress.state);
    let train_parts: BTreeMap<String, f64> = pass.sums.means().into_iter().collect();
    device.seed(mix(state.rng.seed, stream::EVAL, epoch as u64));
    let test_batches = Batches::new(
        &data.test,
        BatchConfig::in_order(options.batch_size.max(256), learner.scale()),
        &device.clone().inner(),
    );
    let test_parts: BTreeMap<String, f64> = learner.evaluate(test_batches).into_iter().collect();
    if let Some((name, value)) = test_parts.iter().find(|(_, v)| !v.is_finite()) {
        pass.bar.finish();
        return Err(diverged(out, name, *value, epoch, state.step, state.epoch));
    }
    let row = EpochRow {
        epoch,
        step: state.step,
        train: train_parts,
        test: test_parts,
        seconds: pass.seconds,
        images_per_second: pass.session_images as f64
            / pass.started.elapsed().as_secs_f64().max(1e-9),
    };
    if !options.quiet {
        let line = summary(&row);
        if console_is_terminal() {
            pass.bar.println(&line);
        } else {
            crate::ui::log(&line);
        }
    }
    pass.bar.finish();
    progress.rows.push(row);
    if options.writes {
        metrics::write_all(&progress.metrics_path, &progress.rows, &progress.step_rows)?;
        metrics::plot_losses(&progress.rows, &out.join("loss.png"))?;
        metrics::plot_steps(&progress.step_rows, 50, &out.join("steps.png"))?;
        learner.write_images(out, epoch)?;
    }
    state.epoch = epoch;
    state.step_in_epoch = 0;
    state.epoch_sums.clear();
    state.epoch_images = 0;
    state.epoch_seconds = 0.0;
    // The checkpoint first: a run killed between the two resumes from it and exports again,
    // while weights without a checkpoint could not be resumed.
    if options.writes {
        checkpoint::save(&checkpoint_dir(out), state, &learner.state_blobs()?)?;
        learner.export(&out.join("model.safetensors"))?;
    }
    Ok(())
}

fn console_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

fn summary(row: &EpochRow) -> String {
    let fmt = metrics::format_parts;
    format!(
        "epoch {}: train {} | test {} | {:.1} s, {:.0} img/s",
        row.epoch,
        fmt(&row.train),
        fmt(&row.test),
        row.seconds,
        row.images_per_second
    )
}

fn diverged(
    out: &Path,
    name: &str,
    value: f64,
    epoch: usize,
    step: u64,
    good_epoch: usize,
) -> Error {
    Error::Diverged(format!(
        "training stopped: {name} became {value} at epoch {epoch}, step {step}; {}. \
         Try a lower --lr (or --resume with one)",
        kept_checkpoint(out, good_epoch)
    ))
}

/// `error` reworded when it is a full disk: what is kept and how to continue once space is
/// free. Every write is atomic, so the checkpoint on disk is the last one that was complete.
pub(crate) fn explain_disk_full(out: &Path, error: Error) -> Error {
    let Error::Io { source, .. } = &error else {
        return error;
    };
    if source.kind() != std::io::ErrorKind::StorageFull {
        return error;
    }
    let kept = match checkpoint::load(&checkpoint_dir(out)) {
        Ok(kept) if kept.state.step_in_epoch > 0 => format!(
            "the checkpoint of epoch {}, step {} is intact",
            kept.state.epoch + 1,
            kept.state.step
        ),
        Ok(kept) => format!("the checkpoint of epoch {} is intact", kept.state.epoch),
        Err(_) => "no checkpoint had been written".into(),
    };
    Error::Io {
        path: out.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "the disk is full; {kept}. Free some space, then continue with: \
                 latentlab train --resume {}",
                out.display()
            ),
        ),
    }
}

fn kept_checkpoint(out: &Path, good_epoch: usize) -> String {
    if good_epoch > 0 {
        format!(
            "the checkpoint of epoch {good_epoch} in {} is kept",
            checkpoint_dir(out).display()
        )
    } else {
        "no epoch had finished, so there is no checkpoint".into()
    }
}

/// Loss parts of steps or batches, each with its number of images, waiting on the device to be
/// read back together.
#[derive(Default)]
pub struct PendingParts {
    entries: Vec<(usize, DeviceParts)>,
}

impl PendingParts {
    /// Adds the parts of `images` images (cut from any autodiff graph, so that waiting parts
    /// hold no activations).
    pub fn push(&mut self, images: usize, parts: DeviceParts) {
        let parts = parts.into_iter().map(|(n, t)| (n, t.inner())).collect();
        self.entries.push((images, parts));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry's parts, in order, in one transfer from the device; leaves this empty.
    pub fn read(&mut self) -> Vec<(usize, Parts)> {
        let entries = std::mem::take(&mut self.entries);
        let tensors: Vec<Tensor<1>> = entries
            .iter()
            .flat_map(|(_, parts)| parts.iter().map(|(_, t)| t.clone()))
            .collect();
        if tensors.is_empty() {
            return entries.into_iter().map(|(n, _)| (n, vec![])).collect();
        }
        let values = Tensor::cat(tensors, 0).into_data();
        let mut values = values.iter::<f32>().map(f64::from);
        entries
            .into_iter()
            .map(|(images, parts)| {
                let read = parts
                    .into_iter()
                    .map(|(name, _)| (name, values.next().expect("one value per part")))
                    .collect();
                (images, read)
            })
            .collect()
    }

    /// Weighted means per image over all entries (a pass over a split).
    pub fn means(mut self) -> PassParts {
        let mut means = PassMeans::default();
        for (images, parts) in self.read() {
            means.add(&parts, images);
        }
        means.means()
    }
}

/// Weighted means of per-batch parts over a pass, in the order the parts first appear.
#[derive(Default)]
pub(crate) struct PassMeans {
    sums: Vec<(String, f64)>,
    images: usize,
}

impl PassMeans {
    /// Continues sums saved by [`PassMeans::totals`].
    pub fn resume(sums: &[(String, f64)], images: usize) -> Self {
        Self {
            sums: sums.to_vec(),
            images,
        }
    }

    /// Adds one batch's means, weighted by its number of images.
    pub fn add(&mut self, parts: &[(&'static str, f64)], images: usize) {
        for (name, value) in parts {
            match self.sums.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 += value * images as f64,
                None => self.sums.push((name.to_string(), value * images as f64)),
            }
        }
        self.images += images;
    }

    /// The raw sums and image count, for a checkpoint.
    pub fn totals(&self) -> (Vec<(String, f64)>, usize) {
        (self.sums.clone(), self.images)
    }

    pub fn means(&self) -> Vec<(String, f64)> {
        let n = self.images.max(1) as f64;
        self.sums.iter().map(|(k, v)| (k.clone(), v / n)).collect()
    }
}

#[cfg(test)]
mod tests;
