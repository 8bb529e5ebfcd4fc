//! One file per CLI command: each reads its arguments, calls the library, writes a run folder.

pub mod classify;
pub mod eval;
pub mod eval_samples;
pub mod fid_weights;
pub mod interpolate;
pub mod latent_map;
pub mod pca;
pub mod reconstruct;
pub mod run_folder;
pub mod sample;
pub mod tour;
pub mod train;
pub mod train_classifier;
pub mod train_gan;

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::data::folder::FolderOptions;
use crate::data::{DataSpec, Dataset, load_dataset};
use crate::device::DeviceChoice;
use crate::error::Result;

/// Arguments every command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Dataset: a folder with the four IDX files (MNIST, Fashion-MNIST), CIFAR-10 binaries, an
    /// image folder with one subfolder per class, or `embedded`. Default: $LATENTLAB_DATA, then
    /// /usr/share/datasets/fashion-mnist, then the embedded subset.
    #[arg(long, value_name = "PATH")]
    pub data: Option<String>,
    /// Side length image folders are resized to.
    #[arg(long, default_value_t = 32, value_name = "PIXELS")]
    pub image_size: u32,
    /// Channels for image folders (1 gray, 3 RGB); default: gray if every image is gray.
    #[arg(long, value_name = "N")]
    pub channels: Option<usize>,
    /// Seed for data order, initialization and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where tensors live: cpu (Flex), vulkan, wgpu or cuda (cargo features of those names).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "vulkan", "wgpu", "cuda"])]
    pub device: String,
    /// Overwrite an output folder that already holds results.
    #[arg(long)]
    pub force: bool,
    /// No progress bars or log lines; results only.
    #[arg(long, short)]
    pub quiet: bool,
}

impl CommonArgs {
    pub fn device_choice(&self) -> Result<DeviceChoice> {
        self.device.parse()
    }

    /// Finds and loads the dataset. Commands log which one with [`CommonArgs::log_data`] once
    /// their arguments are known good, so that a bad-input error stays the only line printed.
    pub fn load_data(&self) -> Result<Dataset> {
        let spinner = spinner("loading data", self.quiet);
        let dataset = load_dataset(
            &DataSpec::from_arg(self.data.as_deref()),
            FolderOptions {
                image_size: self.image_size,
                channels: self.channels,
            },
        );
        spinner.finish_and_clear();
        dataset
    }

    /// Logs which dataset a command uses.
    pub fn log_data(&self, dataset: &Dataset) {
        self.log(&format!("data: {}", dataset.summary()));
    }

    /// A log line on stderr, unless `--quiet`.
    pub fn log(&self, line: &str) {
        if !self.quiet {
            crate::train::progress::log(line);
        }
    }
}

/// A spinner for a step with no countable progress; hidden with `--quiet` or off a terminal.
pub fn spinner(message: &str, quiet: bool) -> ProgressBar {
    let bar = crate::train::progress::new_bar(None, quiet).with_message(message.to_string());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("static template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `config.json` fields every run folder has.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub command: String,
    pub dataset: DatasetInfo,
    pub seed: u64,
    pub device: String,
    pub latentlab_version: String,
}

/// What a run was trained on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub source: String,
    pub train: usize,
    pub test: usize,
    pub shape: crate::data::ImageShape,
}

impl DatasetInfo {
    pub fn of(dataset: &Dataset) -> Self {
        Self {
            name: dataset.name.clone(),
            source: dataset.source.clone(),
            train: dataset.train.len(),
            test: dataset.test.len(),
            shape: dataset.shape(),
        }
    }
}

impl RunInfo {
    pub fn new(command: &str, dataset: &Dataset, common: &CommonArgs) -> Self {
        Self {
            command: command.into(),
            dataset: DatasetInfo::of(dataset),
            seed: common.seed,
            device: common.device.clone(),
            latentlab_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The default output folder of a command: `runs/<name>`.
pub fn default_out(name: &str) -> PathBuf {
    PathBuf::from("runs").join(name)
}
