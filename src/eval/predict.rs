//! A trained classifier applied to a split: its predicted classes, the confusion matrix, and its
//! verdict on images made from others (edits, reconstructions).

use burn::tensor::Device;

use crate::data::{BatchConfig, Batches, PixelScale, Split};
use crate::error::Result;
use crate::eval::features::Extractor;
use crate::eval::fid::{FeatureStats, frechet_distance};
use crate::models::classifier::Classifier;

/// Predicted classes of every image of `split` (pixels scaled to [0, 1] as in training), in
/// order.
pub fn predict(model: &Classifier, split: &Split, device: &Device) -> Vec<usize> {
    let batches = Batches::new(
        split,
        BatchConfig::in_order(500, PixelScale::ZeroOne),
        device,
    );
    let mut predictions = Vec::new();
    for batch in batches {
        let classes = model.forward(batch.images).argmax(1); // [batch, 1]
        predictions.extend(classes.into_data().iter::<i64>().map(|c| c as usize));
    }
    predictions
}

/// A classifier's verdict on images made from others (edits, reconstructions): Palette's
/// classification accuracy, and a Fréchet distance of its features (not FID).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClassifierScores {
    /// Share of the made images given their original's class.
    pub accuracy: f64,
    /// The same on the originals: the ceiling of the line above.
    pub accuracy_original: f64,
    /// Fréchet distance of the classifier's features, made vs original images.
    pub fd: f64,
}

/// `model`'s verdict on `edited` against `originals` (the same images' labels).
pub(crate) fn classifier_scores(
    model: Classifier,
    originals: &Split,
    edited: &Split,
    device: &Device,
    quiet: bool,
) -> Result<ClassifierScores> {
    let accuracy = |split: &Split| {
        let predicted = predict(&model, split, device);
        let right = predicted
            .iter()
            .zip(&split.labels)
            .filter(|(p, l)| **p == **l as usize)
            .count();
        right as f64 / split.len() as f64
    };
    let (accuracy, accuracy_original) = (accuracy(edited), accuracy(originals));
    let extractor = Extractor::Classifier {
        model: Box::new(model),
        shape: originals.shape,
    };
    let real = extractor.extract(originals, device, "originals", quiet)?;
    let fake = extractor.extract(edited, device, "edited", quiet)?;
    Ok(ClassifierScores {
        accuracy,
        accuracy_original,
        fd: frechet_distance(&FeatureStats::of(&real)?, &FeatureStats::of(&fake)?)?,
    })
}

/// The confusion matrix: `counts[true class][predicted class]`.
pub fn confusion(labels: &[u8], predictions: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut counts = vec![vec![0; classes]; classes];
    for (&truth, &predicted) in labels.iter().zip(predictions) {
        counts[truth as usize][predicted] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    #[test]
    fn confusion_counts_pairs() {
        let counts = super::confusion(&[0, 0, 1, 2], &[0, 1, 1, 2], 3);
        assert_eq!(counts, vec![vec![1, 1, 0], vec![0, 1, 0], vec![0, 0, 1]]);
    }
}
