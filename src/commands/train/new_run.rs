//! What a model's options give a new run; each model's file implements [`NewRun`] for its
//! arguments.

use super::job::TrainingArgs;
use crate::data::Dataset;
use crate::error::Result;
use crate::run::ModelConfig;

/// What a model's options give a new run; each model's file implements it for its arguments.
pub trait NewRun {
    /// The word after `train`, and the default folder's name.
    fn name(&self) -> &'static str;
    fn training(&self) -> &TrainingArgs;
    /// Adam's learning rate when `--lr` is not given.
    fn default_lr(&self) -> f64 {
        1e-3
    }
    /// Whether it trains against a discriminator (Adam's β1 is then 0.5).
    fn adversarial(&self) -> bool {
        false
    }
    /// The model's config for `dataset`, checked.
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig>;
}
