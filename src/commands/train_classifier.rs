//! `latentlab train classifier`: the small CNN of `models/classifier.rs` on the shared trainer,
//! then a confusion matrix of the test set. `--resume RUN` continues a classifier run.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::commands::run_folder::{DataArgs, TrainingConfig, read_run_config};
use crate::commands::train::{TrainArgs, TrainReport, check_training, run_trainer};
use crate::commands::{RunInfo, default_out};
use crate::data::{BatchConfig, Batches, Dataset, PixelScale};
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::fsutil::{check_out_dir, prepare_out_dir, write_json};
use crate::models::classifier::{Classifier, ClassifierConfig};
use crate::train::Outcome;
use crate::train::classify::{ClassifierLearner, confusion, predict};
use crate::train::trainer::{self, mix, stream};
use crate::viz::confusion::save_confusion;

/// `config.json` of a classifier run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClassifierRunConfig {
    pub run: RunInfo,
    pub data_args: DataArgs,
    pub classifier: ClassifierConfig,
    /// Names of the classes, index order (empty when the data have none).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Random left-right flips of training images.
    #[serde(default)]
    pub hflip: bool,
    pub training: TrainingConfig,
}

/// A classifier run's config and trained model, loaded onto `device`.
pub fn open_classifier_run(
    run: &Path,
    device: &Device,
) -> Result<(ClassifierRunConfig, Classifier)> {
    let config = open(run)?;
    let model = crate::models::load_weights(
        config.classifier.init(device),
        "classifier",
        &weights_path(run),
    )?;
    Ok((config, model))
}

/// Whether `run`'s config.json is a classifier's.
pub fn is_classifier_run(run: &Path) -> bool {
    std::fs::read_to_string(run.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<ClassifierRunConfig>(&text).ok())
        .is_some()
}

fn open(run: &Path) -> Result<ClassifierRunConfig> {
    read_run_config(run, "a classifier")
}

pub fn run_with(args: &TrainArgs, stop_after_steps: Option<u64>) -> Result<TrainReport> {
    let common = &args.common;
    let (config, dataset, out, resume) = match &args.resume {
        Some(run) => {
            let mut config = open(run)?;
            config.training.epochs = args.epochs.unwrap_or(config.training.epochs);
            check_training(
                config.training.epochs,
                config.training.batch_size,
                config.training.lr,
            )?;
            let dataset = config.data_args.load()?;
            (config, dataset, run.clone(), true)
        }
        None => {
            if let Some(option) = args.gan.first_given() {
                return Err(Error::bad_input(format!("{option} is a gan option")));
            }
            let epochs = args.epochs.unwrap_or(10);
            check_training(epochs, args.batch_size, args.lr())?;
            if args.limit == Some(0) {
                return Err(Error::bad_input("--limit must be at least 1"));
            }
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| default_out("classifier"));
            common.device_choice()?.device()?;
            check_out_dir(&out, common.force)?;
            let data_args = DataArgs::of(common, args.limit);
            let dataset = data_args.load()?;
            let hidden = match args.hidden.as_deref() {
                None => ClassifierConfig::new(dataset.shape(), dataset.num_classes()).hidden,
                Some([width]) => *width,
                Some(_) => {
                    return Err(Error::bad_input(
                        "the classifier has one hidden layer: --hidden W",
                    ));
                }
            };
            let mut classifier =
                ClassifierConfig::new(dataset.shape(), dataset.num_classes()).with_hidden(hidden);
            if let Some(channels) = &args.conv_channels {
                classifier.channels = channels.clone();
            }
            classifier.validate()?;
            let config = ClassifierRunConfig {
                run: RunInfo::new("train classifier", &dataset, common),
                data_args,
                classifier,
                class_names: dataset.class_names.clone(),
                training: TrainingConfig {
                    lr_schedule: args.lr_schedule,
                    ..TrainingConfig::adam(epochs, args.batch_size, args.lr())
                },
                hflip: args.hflip,
            };
            (config, dataset, out, false)
        }
    };
    let device = config.run.device.parse::<DeviceChoice>()?.device()?;
    let seed = config.run.seed;
    let autodiff = device.clone().autodiff();
    autodiff.seed(mix(seed, stream::INIT, 0));
    let adam = config.training.adam_settings();
    let mut learner = ClassifierLearner::new(config.classifier.init(&autodiff), adam, config.hflip);
    let resumed = if resume {
        Some(trainer::resume(&mut learner, &out)?)
    } else {
        prepare_out_dir(&out, common.force)?;
        None
    };
    write_json(&out.join("config.json"), &config)?;
    if !common.quiet {
        crate::train::progress::log(&format!("data: {}", dataset.summary()));
        crate::train::progress::log(&format!(
            "model: classifier, conv {:?} + {} hidden ({} parameters); {} epochs of batch {}, Adam lr {} ({:?}){}",
            config.classifier.channels,
            config.classifier.hidden,
            learner.model().num_params(),
            config.training.epochs,
            config.training.batch_size,
            config.training.lr,
            config.training.lr_schedule,
            if config.hflip { ", random flips" } else { "" }
        ));
    }
    let outcome = run_trainer(
        &mut learner,
        &dataset,
        &config.training,
        seed,
        &out,
        common.quiet,
        &autodiff,
        resumed,
        stop_after_steps,
    )?;
    match &outcome {
        Outcome::Finished { rows } => {
            let accuracy = write_confusion(&learner.model().valid(), &dataset, &out, &device)?;
            let epochs = rows.last().map(|r| r.epoch).unwrap_or(0);
            crate::train::progress::say(&format!(
                "trained classifier for {epochs} epochs: test accuracy {:.2} %; wrote {}",
                100.0 * accuracy,
                out.display()
            ));
        }
        Outcome::Interrupted { .. } => {}
    }
    Ok(TrainReport { out, outcome })
}

/// Predicts the test set, writes `confusion.png` and returns the accuracy.
fn write_confusion(
    model: &Classifier,
    dataset: &Dataset,
    out: &Path,
    device: &Device,
) -> Result<f64> {
    let batches = Batches::new(
        &dataset.test,
        BatchConfig {
            batch_size: 500,
            shuffle_seed: None,
            drop_last: false,
            scale: PixelScale::ZeroOne,
        },
        device,
    );
    let predictions = predict(model, batches);
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

/// Where a classifier run keeps its final weights.
pub fn weights_path(run: &Path) -> PathBuf {
    run.join("model.safetensors")
}
