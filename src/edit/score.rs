//! How an edit is scored (`eval-edit`, the tour's editing tables): PSNR on the hole and on the
//! whole image, SSIM, L1; the classifier's verdict on the edited images is `eval::predict`'s.

use crate::data::ImageShape;
use crate::degrade::{Degradation, Task};
use crate::eval::image_metrics::{psnr, psnr_where, ssim};

/// One method's scores on one job, as `eval-edit` writes them. Pixels are in [0, 1]; PSNR and
/// SSIM are per-image values averaged over the images (PSNR at most 58.9 dB, where the error
/// falls below 8-bit rounding noise).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EditScores {
    pub task: Task,
    /// The mask (center, free, a file's stem), the side, or "gray".
    pub degradation: String,
    pub method: String,
    pub dataset: String,
    pub n: usize,
    /// PSNR on the entries the method had to make up (the hole; all for colorization), dB.
    pub psnr_hole: f64,
    /// PSNR on the whole image, dB.
    pub psnr_whole: f64,
    pub ssim: f64,
    /// Mean absolute error per entry, whole image.
    pub l1: f64,
    /// Share of edited images the classifier gives their true class (null without --classifier).
    pub classifier_accuracy: Option<f64>,
    /// The same classifier's accuracy on the original images: the ceiling of the line above.
    pub classifier_accuracy_original: Option<f64>,
    /// Fréchet distance of the classifier's features, edited vs original images (not FID).
    pub classifier_fd: Option<f64>,
    pub classifier: Option<String>,
    /// Fitting or loading the method (the PCA fit, reading a run).
    pub seconds_setup: f64,
    /// Editing all n images.
    pub seconds: f64,
    pub seconds_per_image: f64,
}

/// Pixel scores of edits, means over the images (pixels in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PixelScores {
    /// PSNR on the entries the method had to make up, dB.
    pub psnr_hole: f64,
    pub psnr_whole: f64,
    pub ssim: f64,
    /// Mean absolute error per entry.
    pub l1: f64,
}

/// How close `edited` are to `originals`, each seen through its degradation (which says where
/// the hole is).
pub(crate) fn pixel_scores(
    originals: &[Vec<f32>],
    edited: &[Vec<f32>],
    degradations: &[Degradation],
    shape: ImageShape,
) -> PixelScores {
    let n = originals.len();
    let mean = |f: &dyn Fn(usize) -> f64| (0..n).map(f).sum::<f64>() / n as f64;
    PixelScores {
        psnr_hole: mean(&|i| {
            psnr_where(&originals[i], &edited[i], &degradations[i].unknown(shape))
        }),
        psnr_whole: mean(&|i| psnr(&originals[i], &edited[i])),
        ssim: mean(&|i| ssim(&originals[i], &edited[i], shape)),
        l1: mean(&|i| {
            let (a, b) = (&originals[i], &edited[i]);
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs() as f64)
                .sum::<f64>()
                / a.len() as f64
        }),
    }
}
