//! A training about to run, whatever the model: its run config, data and folder, and the one
//! way every model's learner is run ([`Job::fit`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;

use super::parallel::BatchSplit;
use super::trainer::{self, install_interrupt_handler};
use super::{Learner, Outcome, TrainOptions};
use crate::data::Dataset;
use crate::distributed::World;
use crate::error::{Error, Result};
use crate::fsutil::{RunLock, check_out_dir, write_json};
use crate::run::{Run, RunConfig};

/// A training about to start: the run's config, its data and folder.
pub struct Job {
    pub config: RunConfig,
    pub dataset: Dataset,
    pub out: PathBuf,
    /// Continue from the folder's checkpoint instead of starting it.
    pub resume: bool,
    pub force: bool,
    pub quiet: bool,
    /// Interrupt as Ctrl-C would after this many steps (tests).
    pub stop_after_steps: Option<u64>,
    /// The processes training together; rank 0 writes the folder.
    pub world: Arc<World>,
}

impl Job {
    /// The job of continuing the run in `run` (to `epochs` in all when given).
    pub fn resume(run: &Path, epochs: Option<usize>, quiet: bool) -> Result<Self> {
        // A folder another process is writing is refused as such, even before its config.json
        // exists.
        if run.is_dir() {
            drop(RunLock::acquire(run)?);
        }
        let run = Run::open(run)?;
        let mut config = run.config.clone();
        if let Some(epochs) = epochs {
            config.training.epochs = epochs;
        }
        config.training.validate()?;
        let dataset = run.load_data()?;
        Ok(Self {
            config,
            dataset,
            out: run.path,
            resume: true,
            force: false,
            quiet,
            stop_after_steps: None,
            world: Arc::new(World::single()),
        })
    }

    pub fn seed(&self) -> u64 {
        self.config.run.seed
    }

    /// The weights of the first stage a run trains on the codes of (latent diffusion, a
    /// two-stage VAE): the run's own copy, `file`, once one was written (a resumed run), else
    /// the model of the run `source` names.
    pub fn first_stage_weights(&self, file: &str, source: &str) -> Result<PathBuf> {
        let copy = self.out.join(file);
        let path = match self.resume && copy.is_file() {
            true => copy,
            false => Path::new(source).join("model.safetensors"),
        };
        match path.is_file() {
            true => Ok(path),
            false => Err(Error::bad_input(format!(
                "{}: the first stage's weights are gone (the run was made with --latent-of {source})",
                path.display()
            ))),
        }
    }

    /// How each batch is split over the replicas (`--devices`) or MPI ranks the run records.
    pub fn batch_split(&self) -> Result<BatchSplit> {
        BatchSplit::for_run(&self.config.training.devices, self.world.clone())
    }

    /// How each batch is split, if it is, for the log.
    fn split_summary(&self) -> Option<String> {
        let training = &self.config.training;
        let names: Vec<String> = training.devices.iter().map(|d| d.to_string()).collect();
        match (training.ranks, names.len()) {
            (ranks, _) if ranks > 1 => Some(format!(
                "data parallel: each batch of {} split over {ranks} MPI ranks",
                training.batch_size
            )),
            (_, 0) => None,
            (_, replicas) => Some(format!(
                "data parallel: each batch of {} split over {replicas} replicas ({})",
                training.batch_size,
                names.join(",")
            )),
        }
    }

    /// Restores the checkpoint or prepares the folder, writes `config.json`, logs the data and
    /// `description`, and runs the shared trainer on `device` (an autodiff one). A real Ctrl-C
    /// comes back as the exit-130 error carrying the trainer's message; a stop asked for by
    /// `stop_after_steps` (tests) is a result.
    pub fn fit(
        &self,
        learner: &mut dyn Learner,
        description: &[String],
        device: &Device,
    ) -> Result<Outcome> {
        // Ranks other than 0 read the run folder, take no lock and write nothing.
        let _lock = if self.world.writes() {
            if !self.resume {
                check_out_dir(&self.out, self.force)?;
            }
            Some(RunLock::acquire(&self.out)?)
        } else {
            None
        };
        // Restored before anything is logged or written, so a checkpoint that does not fit is
        // the only line the user sees. A run killed before it wrote any weights resumes from
        // the start; one with weights but no checkpoint is refused rather than trained over.
        let started =
            trainer::has_checkpoint(&self.out) || self.out.join("model.safetensors").exists();
        let resumed = if self.resume && started {
            Some(trainer::resume(learner, &self.out)?)
        } else {
            None
        };
        if self.world.writes() {
            write_json(&self.out.join("config.json"), &self.config)
                .map_err(|e| trainer::explain_disk_full(&self.out, e))?;
            if !self.quiet {
                crate::ui::log(&format!("data: {}", self.dataset.summary()));
                for line in description {
                    crate::ui::log(line);
                }
                if let Some(split) = self.split_summary() {
                    crate::ui::log(&split);
                }
            }
        }
        install_interrupt_handler();
        let training = &self.config.training;
        let options = TrainOptions {
            epochs: training.epochs,
            batch_size: training.batch_size,
            seed: self.seed(),
            out: self.out.clone(),
            quiet: self.quiet || !self.world.writes(),
            stop_after_steps: self.stop_after_steps,
            writes: self.world.writes(),
        };
        let outcome = trainer::train(learner, &self.dataset, &options, device, resumed)
            .map_err(|e| trainer::explain_disk_full(&self.out, e))?;
        match outcome {
            Outcome::Interrupted { message, .. } if self.stop_after_steps.is_none() => {
                Err(Error::Interrupted(message))
            }
            outcome => Ok(outcome),
        }
    }
}
