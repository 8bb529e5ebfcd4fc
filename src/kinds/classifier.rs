//! Classifier runs: training, then the test set's confusion matrix. A classifier makes no images: it scores them.

use std::path::Path;

use burn::prelude::*;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::predict::{confusion, predict};
use crate::models::classifier::Classifier;
use crate::run::ClassifierRun;
use crate::train::Outcome;
use crate::train::classify::ClassifierLearner;
use crate::train::job::Job;
use crate::viz::confusion::save_confusion;
use burn::tensor::Device;

use super::Kind;
use crate::edit::method::BuildOptions;
use crate::edit::methods::Editor;
use crate::run::Run;
use crate::sample::{Generative, SamplingRequest};

/// Trains a classifier run on `autodiff` (`device` with autodiff, already seeded), then draws
/// the test set's confusion matrix.
pub fn train(
    config: &ClassifierRun,
    job: &Job,
    device: &Device,
    autodiff: &Device,
) -> Result<Outcome> {
    let adam = job.config.training.adam_settings();
    let mut learner = ClassifierLearner::new(config.classifier.init(autodiff), adam, config.hflip)
        .with_split(job.batch_split()?);
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

impl Kind for ClassifierRun {
    fn train(&self, job: &Job, device: &Device, autodiff: &Device) -> Result<Outcome> {
        train(self, job, device, autodiff)
    }

    fn generative(
        &self,
        run: &Run,
        _device: &Device,
        _sampling: &SamplingRequest,
    ) -> Result<Box<dyn Generative>> {
        Err(Error::bad_input(format!(
            "{}: a classifier run generates nothing; pass a generative model's run",
            run.path.display()
        )))
    }

    fn editor(&self, run: &Run, _options: &BuildOptions<'_>) -> Result<Editor> {
        Err(Error::bad_input(format!(
            "{}: a classifier run makes no images; --with takes an autoencoder, VAE, GAN, \
             diffusion, pix2pix or ESPCN run (or mean, nearest, bicubic, gray, pca)",
            run.path.display()
        )))
    }
}
