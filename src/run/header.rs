//! The header every run's `config.json` has, whatever its model: what made the run and on what
//! data (`run`), how to load that data again (`data_args`), and how it trained (`training`).

use crate::data::folder::FolderOptions;
use crate::data::{DataSpec, Dataset, ImageShape, limit_split, load_dataset};
use crate::error::{Error, Result};
use crate::optim::{AdamSettings, LrSchedule};

/// `config.json` fields every run folder has.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub command: String,
    pub dataset: DatasetInfo,
    pub seed: u64,
    pub device: String,
    pub latentlab_version: String,
}

impl RunInfo {
    pub fn new(command: &str, dataset: &Dataset, seed: u64, device: &str) -> Self {
        Self {
            command: command.into(),
            dataset: DatasetInfo::of(dataset),
            seed,
            device: device.into(),
            latentlab_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// What a run was trained on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub source: String,
    pub train: usize,
    pub test: usize,
    pub shape: ImageShape,
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

/// How the data were chosen, so a run's commands load the same data again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DataArgs {
    pub data: Option<String>,
    pub image_size: u32,
    pub channels: Option<usize>,
    /// Images kept per split (`--limit`); `null` for all.
    pub limit: Option<usize>,
}

impl DataArgs {
    pub fn load(&self) -> Result<Dataset> {
        let mut dataset = load_dataset(
            &DataSpec::from_arg(self.data.as_deref()),
            FolderOptions {
                image_size: self.image_size,
                channels: self.channels,
            },
        )?;
        dataset.train = limit_split(&dataset.train, self.limit);
        dataset.test = limit_split(&dataset.test, self.limit);
        Ok(dataset)
    }
}

/// Training hyper-parameters, as `config.json` records them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainingConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: String,
    pub lr: f64,
    /// Absent in runs made before schedules existed: constant.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    pub adam_beta_1: f32,
    pub adam_beta_2: f32,
    pub adam_epsilon: f32,
    /// Data-parallel replicas (`--devices cpu,cpu`, `vulkan:0,vulkan:1`); empty for one device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<crate::device::DeviceSpec>,
    /// MPI ranks sharing each batch (`--distributed mpi`; `batch_size` is all ranks' together).
    #[serde(default = "one_rank", skip_serializing_if = "is_one_rank")]
    pub ranks: usize,
}

fn one_rank() -> usize {
    1
}

fn is_one_rank(ranks: &usize) -> bool {
    *ranks == 1
}

impl TrainingConfig {
    /// Adam with PyTorch's β and eps, as every trained model here uses.
    pub fn adam(epochs: usize, batch_size: usize, lr: f64) -> Self {
        let adam = AdamSettings::pytorch(lr);
        Self {
            epochs,
            batch_size,
            optimizer: "adam".into(),
            lr,
            lr_schedule: Default::default(),
            adam_beta_1: adam.beta_1,
            adam_beta_2: adam.beta_2,
            adam_epsilon: adam.epsilon,
            devices: Vec::new(),
            ranks: 1,
        }
    }

    /// The optimizer settings this config records.
    pub fn adam_settings(&self) -> AdamSettings {
        AdamSettings {
            lr: self.lr,
            schedule: self.lr_schedule,
            beta_1: self.adam_beta_1,
            beta_2: self.adam_beta_2,
            epsilon: self.adam_epsilon,
        }
    }

    /// Refuses settings no training can run with.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::bad_input("--batch-size must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(Error::bad_input("--epochs must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::bad_input(format!(
                "--lr {}: must be a positive number",
                self.lr
            )));
        }
        Ok(())
    }
}
