//! A trained model's run folder, read back: `config.json` says what was trained on what, and
//! `model.safetensors` holds the weights. Every command that takes `RUN` opens it here.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::commands::{CommonArgs, RunInfo};
use crate::data::folder::FolderOptions;
use crate::data::{DataSpec, Dataset, load_dataset};
use crate::error::{Error, Result};
use crate::models::{LatentModel, LatentModelConfig, load_safetensors};
use crate::train::trainer::limit_split;

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
    pub fn of(common: &CommonArgs, limit: Option<usize>) -> Self {
        Self {
            data: common.data.clone(),
            image_size: common.image_size,
            channels: common.channels,
            limit,
        }
    }

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
    pub lr_schedule: crate::train::optim::LrSchedule,
    pub adam_beta_1: f32,
    pub adam_beta_2: f32,
    pub adam_epsilon: f32,
}

impl TrainingConfig {
    /// Adam with PyTorch's β and eps, as every trained model here uses.
    pub fn adam(epochs: usize, batch_size: usize, lr: f64) -> Self {
        let adam = crate::train::latent::AdamSettings::pytorch(lr);
        Self {
            epochs,
            batch_size,
            optimizer: "adam".into(),
            lr,
            lr_schedule: Default::default(),
            adam_beta_1: adam.beta_1,
            adam_beta_2: adam.beta_2,
            adam_epsilon: adam.epsilon,
        }
    }

    /// The optimizer settings this config records.
    pub fn adam_settings(&self) -> crate::train::latent::AdamSettings {
        crate::train::latent::AdamSettings {
            lr: self.lr,
            schedule: self.lr_schedule,
            beta_1: self.adam_beta_1,
            beta_2: self.adam_beta_2,
            epsilon: self.adam_epsilon,
        }
    }
}

/// `config.json` of an autoencoder or VAE run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LatentRunConfig {
    pub run: RunInfo,
    pub data_args: DataArgs,
    pub model: LatentModelConfig,
    pub training: TrainingConfig,
}

/// Reads `run/config.json` as the config of a `what` run ("a classifier", "a GAN"), with
/// one-line errors for a missing folder, a folder that is not a run, and another kind of run.
pub fn read_run_config<T: serde::de::DeserializeOwned>(run: &Path, what: &str) -> Result<T> {
    if !run.is_dir() {
        return Err(Error::bad_input(format!(
            "{}: no such run folder",
            run.display()
        )));
    }
    let path = run.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::bad_input(format!(
            "{}: not a run folder (no config.json)",
            run.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::bad_input(format!(
            "{}: not the config of {what} run ({e})",
            path.display()
        ))
    })
}

/// An opened run folder.
pub struct RunFolder {
    pub path: PathBuf,
    pub config: LatentRunConfig,
}

impl RunFolder {
    /// Opens `path`, checking it is a run folder of a latent model.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            return Err(Error::bad_input(format!(
                "{}: no such run folder",
                path.display()
            )));
        }
        let config_path = path.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|_| {
            Error::bad_input(format!(
                "{}: not a run folder (no config.json)",
                path.display()
            ))
        })?;
        if crate::commands::train_gan::is_gan_run(path) {
            return Err(Error::bad_input(format!(
                "{}: a GAN run has no encoder, so this command does not apply; \
                 `latentlab sample` and `eval-samples` read GAN runs",
                path.display()
            )));
        }
        let config: LatentRunConfig = serde_json::from_str(&text).map_err(|e| {
            Error::bad_input(format!(
                "{}: not the config of an autoencoder or VAE run ({e})",
                config_path.display()
            ))
        })?;
        config.model.validate()?;
        Ok(Self {
            path: path.to_path_buf(),
            config,
        })
    }

    /// The trained model from `model.safetensors`, on `device`.
    pub fn load_model(&self, device: &Device) -> Result<LatentModel> {
        let weights = self.path.join("model.safetensors");
        if !weights.is_file() {
            return Err(Error::bad_input(format!(
                "{}: no model.safetensors yet (has an epoch finished?)",
                self.path.display()
            )));
        }
        load_safetensors(&self.config.model, &weights, device)
    }

    /// The data the run was trained on, loaded again; checked against what config.json records.
    pub fn load_data(&self) -> Result<Dataset> {
        let dataset = self.config.data_args.load()?;
        let recorded = &self.config.run.dataset;
        if dataset.shape() != recorded.shape
            || dataset.train.len() != recorded.train
            || dataset.test.len() != recorded.test
        {
            return Err(Error::bad_input(format!(
                "{}: trained on {} ({} + {} images of {}), but that data now loads as {}",
                self.path.display(),
                recorded.name,
                recorded.train,
                recorded.test,
                recorded.shape,
                dataset.summary()
            )));
        }
        Ok(dataset)
    }
}

/// Arguments of the commands that read a run folder.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// A run folder written by `latentlab train`.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Seed for the random draws of this command.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where tensors live: cpu (Flex), vulkan, wgpu or cuda (cargo features of those names).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "vulkan", "wgpu", "cuda"])]
    pub device: String,
    /// No log lines; results only.
    #[arg(long, short)]
    pub quiet: bool,
}

impl RunArgs {
    /// Opens the run and loads its model for inference.
    pub fn open(&self) -> Result<(RunFolder, LatentModel, Device)> {
        let device = self
            .device
            .parse::<crate::device::DeviceChoice>()?
            .device()?;
        let folder = RunFolder::open(&self.run)?;
        let model = folder.load_model(&device)?;
        device.seed(self.seed);
        Ok((folder, model, device))
    }

    /// A log line on stderr, unless `--quiet`.
    pub fn log(&self, line: &str) {
        if !self.quiet {
            crate::train::progress::log(line);
        }
    }

    /// `--out`, or `name` inside the run folder.
    pub fn out_path(&self, out: &Option<PathBuf>, name: &str) -> PathBuf {
        out.clone().unwrap_or_else(|| self.run.join(name))
    }
}

/// Class labels as a `[n]` tensor.
pub fn label_tensor(labels: &[u8], device: &Device) -> burn::Tensor<1, burn::tensor::Int> {
    let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    burn::Tensor::from_data(
        burn::tensor::TensorData::new(values, [labels.len()]),
        device,
    )
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

/// The first `n` test images, pixels in [0, 1], `[n, c, h, w]`, and their labels.
pub fn test_images(dataset: &Dataset, n: usize, device: &Device) -> (burn::Tensor<4>, Vec<u8>) {
    use crate::data::{BatchConfig, Batches, PixelScale};
    let n = n.min(dataset.test.len()).max(1);
    let batch = Batches::new(
        &dataset.test,
        BatchConfig {
            batch_size: n,
            shuffle_seed: None,
            drop_last: false,
            scale: PixelScale::ZeroOne,
        },
        device,
    )
    .next()
    .expect("the test split is not empty");
    (batch.images, dataset.test.labels[..n].to_vec())
}
