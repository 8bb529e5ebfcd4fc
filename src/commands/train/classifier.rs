//! `latentlab train classifier`: the small CNN of `models/classifier.rs` on the shared trainer,
//! then a confusion matrix of the test set. `--resume RUN` continues a classifier run.

use std::path::Path;

use burn::prelude::*;

use crate::commands::train::job::{Job, TrainingArgs};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::predict::{confusion, predict};
use crate::models::classifier::{Classifier, ClassifierConfig};
use crate::run::{ClassifierRun, ModelConfig};
use crate::train::Outcome;
use crate::train::classify::ClassifierLearner;
use crate::train::parallel::BatchSplit;
use crate::viz::confusion::save_confusion;

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

/// Trains a classifier run on `autodiff` (`device` with autodiff, already seeded), then draws
/// the test set's confusion matrix.
pub fn train(
    config: &ClassifierRun,
    job: &Job,
    device: &Device,
    autodiff: &Device,
) -> Result<Outcome> {
    let adam = job.config.training.adam_settings();
    let mut learner =
        ClassifierLearner::new(config.classifier.init(autodiff), adam, config.hflip).with_split(
            BatchSplit::for_run(&job.config.training.devices, job.world.clone())?,
        );
    let description = format!(
        "model: classifier, conv {:?} + {} hidden ({} parameters); {} epochs of batch {}, Adam lr {} ({:?}){}",
        config.classifier.channels,
        config.classifier.hidden,
        learner.model().num_params(),
        job.config.training.epochs,
        job.config.training.batch_size,
        job.config.training.lr,
        job.config.training.lr_schedule,
        if config.hflip { ", random flips" } else { "" }
    );
    let outcome = job.fit(&mut learner, &[description], autodiff)?;
    if let Outcome::Finished { rows } = &outcome
        && job.world.writes()
    {
        let accuracy = write_confusion(&learner.model().valid(), &job.dataset, &job.out, device)?;
        let epochs = rows.last().map(|r| r.epoch).unwrap_or(0);
        crate::ui::say(&format!(
            "trained classifier for {epochs} epochs: test accuracy {:.2} %; wrote {}",
            100.0 * accuracy,
            job.out.display()
        ));
    }
    Ok(outcome)
}

/// Predicts the test set, writes `confusion.png` and returns the accuracy.
fn write_confusion(
    model: &Classifier,
    dataset: &Dataset,
    out: &Path,
    device: &Device,
) -> Result<f64> {
    let predictions = predict(model, &dataset.test, device);
    let counts = confusion(&dataset.test.labels, &predictions, dataset.num_classes());
    let correct: usize = (0..counts.len()).map(|i| counts[i][i]).sum();
    let accuracy = correct as f64 / predictions.len().max(1) as f64;
    let names: Vec<String> = if dataset.class_names.is_empty() {
        (0..dataset.num_classes()).map(|c| c.to_string()).collect()
    } else {
        dataset.class_names.clone()
    };
    save_confusion(
        &counts,
        &names,
        &format!("{}: test accuracy {:.2} %", dataset.name, 100.0 * accuracy),
        &out.join("confusion.png"),
    )?;
    Ok(accuracy)
}
