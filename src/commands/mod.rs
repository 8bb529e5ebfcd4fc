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
use crate::models::diffusion::Sampler;
use crate::run::{DataArgs, RunInfo};
use crate::sample::SamplingRequest;

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

/// Which diffusion sampler a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplerKind {
    Ddim,
    Ddpm,
}

/// How a command samples a diffusion run (other runs refuse these options).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SamplingArgs {
    /// Diffusion runs: ddim (any number of steps; deterministic at --eta 0) or ddpm (ancestral,
    /// all T steps) [default: ddim].
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerKind>,
    /// Diffusion runs: DDIM steps [default: 50].
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Diffusion runs: DDIM's η, the noise added per step (0: deterministic, 1: DDPM-like)
    /// [default: 0].
    #[arg(long)]
    pub eta: Option<f64>,
    /// Conditional diffusion runs: classifier-free guidance weight w, ε = ε∅ + w·(ε_y − ε∅)
    /// (0: unconditional, 1: plain conditional) [default: 2].
    #[arg(long, value_name = "W")]
    pub guidance: Option<f64>,
}

impl SamplingArgs {
    /// What these flags ask for, checked: the library's [`SamplingRequest`].
    pub fn request(&self) -> Result<SamplingRequest> {
        let sampler = match (self.sampler, self.steps, self.eta) {
            (None, None, None) => None,
            (Some(SamplerKind::Ddpm), Some(_), _) | (Some(SamplerKind::Ddpm), _, Some(_)) => {
                return Err(crate::Error::bad_input(
                    "--sampler ddpm runs all T steps with its own noise: drop --steps and --eta",
                ));
            }
            (Some(SamplerKind::Ddpm), None, None) => Some(Sampler::Ddpm),
            (Some(SamplerKind::Ddim) | None, steps, eta) => Some(Sampler::Ddim {
                steps: steps.unwrap_or(50),
                eta: eta.unwrap_or(0.0),
            }),
        };
        if let Some(Sampler::Ddim { steps, eta }) = sampler
            && (steps == 0 || !(eta >= 0.0 && eta.is_finite()))
        {
            return Err(crate::Error::bad_input(
                "--steps must be at least 1 and --eta a number ≥ 0",
            ));
        }
        if self.guidance.is_some_and(|w| !w.is_finite()) {
            return Err(crate::Error::bad_input("--guidance must be a number"));
        }
        Ok(SamplingRequest {
            sampler,
            guidance: self.guidance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_options_default_to_ddim_50_and_refuse_contradictions() {
        let none = SamplingArgs::default().request().unwrap();
        assert_eq!(none, SamplingRequest::default());
        assert_eq!(
            none.sampler(),
            Sampler::Ddim {
                steps: 50,
                eta: 0.0
            }
        );
        assert_eq!(none.guidance(), 2.0);
        assert!(none.refuse_for(std::path::Path::new("r"), "gan").is_ok());
        let ddpm = SamplingArgs {
            sampler: Some(SamplerKind::Ddpm),
            ..Default::default()
        };
        assert_eq!(ddpm.request().unwrap().sampler(), Sampler::Ddpm);
        let contradiction = SamplingArgs {
            steps: Some(10),
            ..ddpm.clone()
        };
        assert!(contradiction.request().is_err());
        let zero = SamplingArgs {
            steps: Some(0),
            ..Default::default()
        };
        assert!(zero.request().is_err());
        let err = ddpm
            .request()
            .unwrap()
            .refuse_for(std::path::Path::new("r"), "gan")
            .unwrap_err();
        assert!(err.to_string().contains("not a gan run"), "{err}");
        // Any one flag, even one that names the default, is a request a GAN refuses.
        let eta = SamplingArgs {
            eta: Some(0.0),
            ..Default::default()
        };
        assert!(
            eta.request()
                .unwrap()
                .refuse_for(std::path::Path::new("r"), "gan")
                .is_err()
        );
    }
}
