//! Options every `latentlab train` model takes.

use std::path::PathBuf;

use crate::commands::CommonArgs;
use crate::distributed::DistributedChoice;
use crate::optim::LrSchedule;

/// Options every model's training takes.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainingArgs {
    /// Epochs in all.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Adam learning rate [default: 1e-3 with β1 0.9, β2 0.999, eps 1e-8 as in PyTorch; gan
    /// 2e-4 with β1 0.5, as DCGAN; pix2pix 1e-3 with β1 0.5: after 3 embedded epochs its
    /// centre-hole PSNR is 16.2 dB against 15.8 at the paper's 2e-4].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule over the run: constant, or cosine decay to 0.
    #[arg(long, value_enum, default_value = "constant")]
    pub lr_schedule: LrSchedule,
    /// Data parallelism: replicas of one kind that split each batch, gradients averaged, one
    /// optimizer step: `cpu,cpu`, or `vulkan:0,vulkan:1` with `--device vulkan`.
    #[arg(long, value_name = "LIST")]
    pub devices: Option<String>,
    /// Share each batch among the ranks `mpirun -n N` started (feature `mpi`): --batch-size is
    /// each rank's, rank 0 writes the run folder.
    #[arg(long, value_enum, default_value = "none")]
    pub distributed: DistributedChoice,
    /// Use only the first N images of each split (smoke runs).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output folder [default: runs/<model>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}
