//! One file per CLI command (a folder for `train`): each reads its arguments, calls the library,
//! writes a run folder.

pub mod classify;
pub mod edit;
pub mod eval;
pub mod eval_samples;
pub mod fid_weights;
pub mod interpolate;
pub mod latent_map;
pub mod pca;
pub mod reconstruct;
pub mod run_args;
pub mod sample;
pub mod style;
pub mod tour;
pub mod train;

use std::path::PathBuf;

use crate::data::Dataset;
use crate::device::DeviceChoice;
use crate::error::Result;
use crate::run::{DataArgs, RunInfo};

/// Where a command computes, which seed drives its random draws, and how much it says.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// Seed for every random draw: data order, initialization, sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where tensors live: cpu (Flex), vulkan, wgpu or cuda (cargo features of those names).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// No progress bars or log lines; results only.
    #[arg(long, short)]
    pub quiet: bool,
}

impl DeviceArgs {
    /// A log line on stderr, unless `--quiet`.
    pub fn log(&self, line: &str) {
        if !self.quiet {
            crate::ui::log(line);
        }
    }
}

/// Arguments of the commands that read a dataset and write a new folder.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Dataset: a folder with the four IDX files (MNIST, Fashion-MNIST), CIFAR-10 binaries, an
    /// image folder with one subfolder per class, `embedded` (Fashion-MNIST subset) or
    /// `embedded-rgb` (colour photo tiles, for colorize). Default: $LATENTLAB_DATA, then
    /// /usr/share/datasets/fashion-mnist, then the embedded subset.
    #[arg(long, value_name = "PATH")]
    pub data: Option<String>,
    /// Side length image folders are resized to.
    #[arg(long, default_value_t = 32, value_name = "PIXELS")]
    pub image_size: u32,
    /// Channels for image folders (1 gray, 3 RGB); default: gray if every image is gray.
    #[arg(long, value_name = "N")]
    pub channels: Option<usize>,
    /// Overwrite an output folder that already holds results.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub runtime: DeviceArgs,
}

impl CommonArgs {
    /// The data these flags choose, `limit` images per split.
    pub fn data_args(&self, limit: Option<usize>) -> DataArgs {
        DataArgs {
            data: self.data.clone(),
            image_size: self.image_size,
            channels: self.channels,
            limit,
        }
    }

    /// Finds and loads the dataset. Commands log which one with [`CommonArgs::log_data`] once
    /// their arguments are known good, so that a bad-input error stays the only line printed.
    pub fn load_data(&self) -> Result<Dataset> {
        let spinner = crate::ui::spinner("loading data", self.runtime.quiet);
        let dataset = self.data_args(None).load();
        spinner.finish_and_clear();
        dataset
    }

    /// Logs which dataset a command uses.
    pub fn log_data(&self, dataset: &Dataset) {
        self.runtime.log(&format!("data: {}", dataset.summary()));
    }

    /// The `run` block of a `config.json` this command writes.
    pub fn run_info(&self, command: &str, dataset: &Dataset) -> RunInfo {
        RunInfo::new(
            command,
            dataset,
            self.runtime.seed,
            &self.runtime.device.to_string(),
        )
    }
}

/// The default output folder of a command: `runs/<name>`.
pub fn default_out(name: &str) -> PathBuf {
    PathBuf::from("runs").join(name)
}

/// `--task` on the command line; super-resolution's factor comes from `--scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskName {
    /// Fill pre-specified missing pixels.
    Inpaint,
    /// Make up a missing half.
    Uncrop,
    /// Restore colour from the luma.
    Colorize,
    /// Restore detail from an image downsampled by --scale.
    Superres,
}

impl TaskName {
    pub fn with_scale(self, scale: usize) -> crate::degrade::Task {
        match self {
            TaskName::Inpaint => crate::degrade::Task::Inpaint,
            TaskName::Uncrop => crate::degrade::Task::Uncrop,
            TaskName::Colorize => crate::degrade::Task::Colorize,
            TaskName::Superres => crate::degrade::Task::Superres(scale),
        }
    }
}
