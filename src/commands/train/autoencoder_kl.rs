//! `latentlab train autoencoder-kl`: latent diffusion's first stage (`models/autoencoder_kl.rs`)
//! on the shared trainer (`train/autoencoder_kl.rs`). Its run is what `train diffusion
//! --latent-of RUN` diffuses in.

use super::new_run::NewRun;
use crate::commands::train::job::TrainingArgs;
use crate::data::Dataset;
use crate::error::Result;
use crate::models::autoencoder_kl::{AutoencoderKlConfig, ReconstructionLoss};
use crate::run::{AutoencoderKlRun, ModelConfig};

/// Options of `latentlab train autoencoder-kl`.
#[derive(Debug, Clone, clap::Args)]
pub struct AutoencoderKlArgs {
    /// f: the latent's side is the (padded) image's over f: 2, 4 or 8.
    #[arg(long, default_value_t = 4)]
    pub downsample: usize,
    /// Channels of the latent.
    #[arg(long, default_value_t = 4)]
    pub latent_channels: usize,
    /// Channels of the first level (a multiple of 8); deeper levels have 2x and 4x.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// How reconstruction error counts: l1 (LDM's) or l2.
    #[arg(long, value_enum, default_value = "l1")]
    pub reconstruction: ReconstructionLoss,
    /// Weight of KL(q(z|x) ‖ N(0, I)) against the reconstruction (LDM: 1e-6).
    #[arg(long, default_value_t = 1e-6)]
    pub kl_weight: f64,
    #[command(flatten)]
    pub training: TrainingArgs,
}

impl NewRun for AutoencoderKlArgs {
    fn name(&self) -> &'static str {
        "autoencoder-kl"
    }
    fn training(&self) -> &TrainingArgs {
        &self.training
    }
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig> {
        let autoencoder = AutoencoderKlConfig::new(dataset.shape())
            .with_downsample(self.downsample)
            .with_latent_channels(self.latent_channels)
            .with_width(self.width)
            .with_reconstruction(self.reconstruction)
            .with_kl_weight(self.kl_weight);
        autoencoder.validate()?;
        Ok(ModelConfig::AutoencoderKl(AutoencoderKlRun { autoencoder }))
    }
}
