//! `latentlab train classifier`: the small CNN of `models/classifier.rs` on the shared trainer,
//! then a confusion matrix of the test set. `--resume RUN` continues a classifier run.

use super::new_run::NewRun;
use crate::commands::train::job::TrainingArgs;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::models::classifier::ClassifierConfig;
use crate::run::{ClassifierRun, ModelConfig};

/// Options of `latentlab train classifier`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClassifierArgs {
    /// Width of the one hidden layer [default: 256].
    #[arg(long, value_delimiter = ',', value_name = "W")]
    pub hidden: Option<Vec<usize>>,
    /// Conv channels, one conv + 2x2 max-pool block each [default: 64,128].
    #[arg(long, value_delimiter = ',', value_name = "C,C")]
    pub conv_channels: Option<Vec<usize>>,
    /// Flip training images left-right at random (keeps Fashion-MNIST's and CIFAR-10's labels;
    /// not for digits).
    #[arg(long)]
    pub hflip: bool,
    #[command(flatten)]
    pub training: TrainingArgs,
}

/// The config of a new classifier run.
pub fn config(args: &ClassifierArgs, dataset: &Dataset) -> Result<ModelConfig> {
    let mut classifier = ClassifierConfig::new(dataset.shape(), dataset.num_classes());
    match args.hidden.as_deref() {
        None => {}
        Some([width]) => classifier.hidden = *width,
        Some(_) => {
            return Err(Error::bad_input(
                "the classifier has one hidden layer: --hidden W",
            ));
        }
    }
    if let Some(channels) = &args.conv_channels {
        classifier.channels = channels.clone();
    }
    classifier.validate()?;
    Ok(ModelConfig::Classifier(ClassifierRun {
        classifier,
        class_names: dataset.class_names.clone(),
        hflip: args.hflip,
    }))
}

impl NewRun for ClassifierArgs {
    fn name(&self) -> &'static str {
        "classifier"
    }
    fn training(&self) -> &TrainingArgs {
        &self.training
    }
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig> {
        config(self, dataset)
    }
}
