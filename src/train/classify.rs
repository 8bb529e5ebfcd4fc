//! The classifier's side of the shared trainer: one Adam step on the cross-entropy, test loss and
//! accuracy, checkpoints. (Its picture, the confusion matrix, is drawn once training ends.)

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::data::{Batch, Batches, PixelScale};
use crate::error::Result;
use crate::models::classifier::Classifier;
use crate::models::save_safetensors;
use crate::optim::AdamSettings;
use crate::train::parallel::BatchSplit;
use crate::train::trainee::Trainee;
use crate::train::trainer::{DeviceParts, Learner, PassParts, PendingParts};

pub(crate) struct ClassifierLearner {
    model: Trainee<Classifier>,
    adam: AdamSettings,
    /// Flip each training image left-right with probability ½.
    hflip: bool,
    progress: f64,
    /// How each batch is split over replicas or MPI ranks (`train::parallel`).
    split: BatchSplit,
}

impl ClassifierLearner {
    /// `model` must live on an autodiff device.
    pub fn new(model: Classifier, adam: AdamSettings, hflip: bool) -> Self {
        // burn initializes parameters lazily, at first use: in the first step, after dropout's
        // mask has drawn from the same generator, so the last layer's initial weights would
        // depend on how that step splits its batch (`--devices`). Drawn now, from the seed the
        // caller set for initialization, they do not.
        crate::train::parallel::materialize(&model);
        Self {
            model: Trainee::new(model, &adam),
            adam,
            hflip,
            progress: 0.0,
            split: BatchSplit::default(),
        }
    }

    /// Splits each batch over replicas or MPI ranks.
    pub fn with_split(mut self, split: BatchSplit) -> Self {
        self.split = split;
        self
    }

    pub fn model(&self) -> &Classifier {
        self.model.network()
    }
}

/// Each image flipped left-right with probability ½ (burn's RNG, which the trainer seeds per step).
fn random_hflip(images: Tensor<4>) -> Tensor<4> {
    let [batch, ..] = images.dims();
    let flip = Tensor::<4>::random(
        [batch, 1, 1, 1],
        Distribution::Bernoulli(0.5),
        &images.device(),
    ); // [batch, 1, 1, 1]
    let flipped = images.clone().flip([3]); // [batch, c, h, w]
    flipped * flip.clone() + images * (flip.neg() + 1.0)
}

impl Learner for ClassifierLearner {
    fn set_progress(&mut self, progress: f64) {
        self.progress = progress;
    }

    fn train_step(&mut self, batch: Batch) -> DeviceParts {
        let images = if self.hflip {
            random_hflip(batch.images)
        } else {
            batch.images
        };
        let batch = Batch { images, ..batch };
        let (grads, parts) = self
            .split
            .gradients(self.model.network(), batch, |model, share| {
                let (loss, accuracy) = model.loss(share.images, share.labels);
                (loss.clone(), vec![("loss", loss), ("accuracy", accuracy)])
            });
        self.model.step(self.adam.lr_at(self.progress), grads);
        parts
    }

    fn evaluate(&self, batches: Batches<'_>) -> PassParts {
        let model = self.model().valid();
        let mut pending = PendingParts::default();
        for batch in batches {
            let n = batch.images.dims()[0];
            let (loss, accuracy) = model.loss(batch.images, batch.labels);
            pending.push(n, vec![("loss", loss), ("accuracy", accuracy)]);
        }
        pending.means()
    }

    fn scale(&self) -> PixelScale {
        PixelScale::ZeroOne
    }

    fn write_images(&self, _out: &Path, _epoch: usize) -> Result<()> {
        Ok(())
    }

    fn state_blobs(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        self.model.blobs(["model", "optimizer"])
    }

    fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        self.model.restore(blobs, ["model", "optimizer"])?;
        Ok(())
    }

    fn export(&self, path: &Path) -> Result<()> {
        save_safetensors(&self.model().valid(), path)
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    #[test]
    fn random_flips_leave_each_image_or_mirror_it() {
        let device = Device::flex();
        device.seed(3);
        // 16 images of one row 0..4: flipped, a row reads 3..0.
        let row: Vec<f32> = (0..16).flat_map(|_| [0.0, 1.0, 2.0, 3.0]).collect();
        let images = Tensor::<4>::from_data(TensorData::new(row, [16, 1, 1, 4]), &device);
        let out: Vec<f32> = super::random_hflip(images)
            .into_data()
            .iter::<f32>()
            .collect();
        let flipped = out.chunks(4).filter(|r| r == &[3.0, 2.0, 1.0, 0.0]).count();
        let kept = out.chunks(4).filter(|r| r == &[0.0, 1.0, 2.0, 3.0]).count();
        assert_eq!(flipped + kept, 16);
        assert!(flipped > 0 && kept > 0, "{flipped} flipped of 16");
    }
}
