//! The shared trainer: one loop for every model ([`trainer`]), crash-safe checkpoints
//! ([`checkpoint`]), `metrics.jsonl` and `loss.png` ([`metrics`]), the progress bar
//! (`crate::ui`). A model family plugs in through `trainer::Learner`; `latent` is the
//! autoencoder's and the VAE's.

pub mod autoencoder_kl;
pub mod checkpoint;
pub mod classify;
pub(crate) mod codes;
pub mod diffusion;
pub mod ema;
pub mod gan;
pub mod job;
pub mod latent;
pub mod metrics;
pub mod parallel;
pub mod pix2pix;
pub mod trainee;
pub mod trainer;
pub(crate) mod two_stage;

pub use trainer::{Learner, Outcome, TrainOptions, resume, train};
