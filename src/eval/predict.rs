//! A trained classifier applied to a split: its predicted classes and the confusion matrix.

use burn::tensor::Device;

use crate::data::{BatchConfig, Batches, PixelScale, Split};
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
