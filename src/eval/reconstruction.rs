//! `latentlab eval` on latent diffusion's first stage (an autoencoder-kl run): how much of each
//! test image survives the trip image → latent → image. The latent model can never generate
//! better than its first stage reconstructs, so these numbers bound latent diffusion's from
//! below: PSNR and SSIM per image (as image-restoration papers report them), the mean absolute
//! error, the KL of q(z|x) from N(0, I) in nats (tiny weight in training, large here: the code
//! is a near-deterministic one), and with a classifier its accuracy on the reconstructions and
//! the Fréchet distance of its features, reconstructions against originals (not FID: for that,
//! `reconstruct --save-images DIR` and `eval-samples --fake DIR`).

use std::time::Instant;

use burn::tensor::Device;

use crate::data::{BatchConfig, Batches, PixelScale, Split};
use crate::error::Result;
use crate::eval::image_metrics::{psnr, ssim};
use crate::eval::predict::classifier_scores;
use crate::models::autoencoder_kl::AutoencoderKl;
use crate::models::classifier::Classifier;

/// What `eval RUN` writes for an autoencoder-kl run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FirstStageReport {
    pub model: String,
    pub dataset: String,
    pub test_images: usize,
    /// The latent's shape, `c x h x w`.
    pub latent: String,
    /// Values of the image over values of the latent.
    pub compression: f64,
    /// Per image, then averaged; pixels in [0, 1], the decoding of each code's mean.
    pub psnr_db: f64,
    pub ssim: f64,
    /// Mean absolute error per pixel.
    pub l1: f64,
    /// KL(q(z|x) ‖ N(0, I)) per image, nats.
    pub kl_nats: f64,
    /// With `--classifier`: its verdict on the reconstructions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ReconstructionVerdict>,
    pub seconds: f64,
}

/// A classifier's verdict on reconstructions against the originals.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReconstructionVerdict {
    pub classifier: String,
    /// Share of reconstructions given their image's class.
    pub accuracy: f64,
    /// The same on the originals: the ceiling of the line above.
    pub accuracy_original: f64,
    /// Fréchet distance of its features, reconstructions against originals.
    pub fd: f64,
}

/// Images per forward pass.
const BATCH: usize = 250;

/// Scores `model`'s reconstructions of every image of `test` (see the module's doc).
pub fn evaluate(
    model: &AutoencoderKl,
    dataset: &str,
    test: &Split,
    classifier: Option<(String, Classifier)>,
    device: &Device,
    quiet: bool,
) -> Result<FirstStageReport> {
    let started = Instant::now();
    let shape = test.shape;
    let mut reconstructed = Vec::with_capacity(test.pixels.len());
    let (mut psnr_sum, mut ssim_sum, mut l1_sum, mut kl_sum) = (0.0, 0.0, 0.0, 0.0);
    let mut latent = None;
    let batches = Batches::new(
        test,
        BatchConfig::in_order(BATCH, PixelScale::MinusOneOne),
        device,
    );
    for batch in batches {
        let posterior = model.encode(batch.images.clone()); // [n, z, s, s]
        latent.get_or_insert_with(|| {
            let [_, c, h, w] = posterior.mean.dims();
            (c, h, w)
        });
        kl_sum += posterior.kl().sum().into_scalar::<f32>() as f64;
        let decoded = (model.decode(posterior.mean).clamp(-1.0, 1.0) + 1.0) / 2.0; // [n, c, h, w]
        let originals = (batch.images + 1.0) / 2.0;
        let decoded: Vec<f32> = decoded.into_data().iter::<f32>().collect();
        let originals: Vec<f32> = originals.into_data().iter::<f32>().collect();
        for (x, y) in originals
            .chunks_exact(shape.len())
            .zip(decoded.chunks_exact(shape.len()))
        {
            psnr_sum += psnr(x, y);
            ssim_sum += ssim(x, y, shape);
            l1_sum += x
                .iter()
                .zip(y)
                .map(|(a, b)| (a - b).abs() as f64)
                .sum::<f64>()
                / x.len() as f64;
        }
        reconstructed.extend(decoded.iter().map(|v| (v * 255.0).round() as u8));
    }
    let n = test.len();
    let reconstructions = Split::new(shape, reconstructed, test.labels.clone());
    let classifier = match classifier {
        Some((name, model)) => {
            let scores = classifier_scores(model, test, &reconstructions, device, quiet)?;
            Some(ReconstructionVerdict {
                classifier: name,
                accuracy: scores.accuracy,
                accuracy_original: scores.accuracy_original,
                fd: scores.fd,
            })
        }
        None => None,
    };
    let (c, h, w) = latent.unwrap_or_default();
    Ok(FirstStageReport {
        model: "autoencoder-kl".into(),
        dataset: dataset.to_string(),
        test_images: n,
        latent: format!("{c}x{h}x{w}"),
        compression: shape.len() as f64 / (c * h * w).max(1) as f64,
        psnr_db: psnr_sum / n as f64,
        ssim: ssim_sum / n as f64,
        l1: l1_sum / n as f64,
        kl_nats: kl_sum / n as f64,
        classifier,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;
    use crate::models::autoencoder_kl::AutoencoderKlConfig;

    fn split(n: usize) -> Split {
        let shape = ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let pixels = (0..n * shape.len()).map(|i| (i * 37 % 251) as u8).collect();
        Split::new(shape, pixels, (0..n).map(|i| (i % 10) as u8).collect())
    }

    #[test]
    fn scores_every_image_and_names_the_latent() {
        let device = Device::flex();
        device.seed(0);
        let test = split(5);
        let config = AutoencoderKlConfig::new(test.shape).with_width(8);
        let model = config.init(&device);
        let report = evaluate(&model, "test", &test, None, &device, true).unwrap();
        assert_eq!(report.test_images, 5);
        assert_eq!(report.latent, "4x8x8");
        assert!((report.compression - 784.0 / 256.0).abs() < 1e-9);
        // An untrained decoder: far from the images, but every number finite and in range.
        assert!(report.psnr_db.is_finite() && report.psnr_db < 30.0);
        assert!((-1.0..=1.0).contains(&report.ssim));
        assert!(report.l1 > 0.0 && report.l1 <= 1.0);
        assert!(report.kl_nats >= 0.0);
    }
}
