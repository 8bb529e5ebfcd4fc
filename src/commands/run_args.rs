//! Arguments of the commands that read a trained autoencoder's or VAE's run folder
//! (`reconstruct`, `interpolate`, `latent-map`, `eval`), and what they share.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::commands::DeviceArgs;
use crate::error::{Error, Result};
use crate::models::LatentModel;
use crate::run::Run;

/// Arguments of the commands that read a run folder.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// A run folder written by `latentlab train`.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    #[command(flatten)]
    pub runtime: DeviceArgs,
}

impl RunArgs {
    /// Opens the run and loads its autoencoder or VAE for inference.
    pub fn open(&self) -> Result<(Run, LatentModel, Device)> {
        let device = self.runtime.device.device()?;
        let run = Run::open(&self.run)?;
        let model = run.load_latent(&device)?;
        device.seed(self.runtime.seed);
        Ok((run, model, device))
    }

    /// A log line on stderr, unless `--quiet`.
    pub fn log(&self, line: &str) {
        self.runtime.log(line);
    }

    /// `--out`, or `name` inside the run folder.
    pub fn out_path(&self, out: &Option<PathBuf>, name: &str) -> PathBuf {
        out.clone().unwrap_or_else(|| self.run.join(name))
    }
}

/// Refuses a conditional VAE in a command that reads z without a label.
pub fn unconditional_only(model: &LatentModel, run: &Path, command: &str) -> Result<()> {
    if model.num_classes() > 0 {
        return Err(Error::bad_input(format!(
            "{}: a conditional VAE reads z together with a label; `{command}` takes unconditional \
             runs (use `sample --class` or `reconstruct`)",
            run.display()
        )));
    }
    Ok(())
}
