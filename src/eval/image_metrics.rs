//! Pixel metrics of an edited image against the original, as image-restoration papers report
//! them (Palette, SR3): PSNR in dB, on the whole image or on the hole only, and SSIM (Wang et al.
//! 2004) with scikit-image's defaults, so the numbers compare with that library's: a 7x7 uniform
//! window, K1 = 0.01, K2 = 0.03, sample covariance (N / (N - 1)), the mean over the windows that
//! lie inside the image, per channel and then averaged. Pixels are in [0, 1] (data range 1);
//! images are channel-major (`[c, h, w]` flattened). Checked against scikit-image in
//! tests/image_metrics.rs.

use crate::data::ImageShape;

/// The smallest MSE PSNR counts: the variance of 8-bit rounding noise, 1/(12·255²). The
/// originals are 8-bit, so a closer match says nothing more, and one exact image (a flat tile,
/// which interpolation reproduces) would otherwise make a mean over images infinite. PSNR is
/// at most 58.9 dB.
pub(crate) const MSE_FLOOR: f64 = 1.0 / (12.0 * 255.0 * 255.0);

/// Peak signal-to-noise ratio, 10·log10(1 / max(MSE, `MSE_FLOOR`)), in dB.
pub fn psnr(original: &[f32], edited: &[f32]) -> f64 {
    assert_eq!(original.len(), edited.len());
    let mse = original
        .iter()
        .zip(edited)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum::<f64>()
        / original.len().max(1) as f64;
    -10.0 * mse.max(MSE_FLOOR).log10()
}

/// PSNR on the entries flagged in `region` (one flag per entry), in dB.
pub(crate) fn psnr_where(original: &[f32], edited: &[f32], region: &[bool]) -> f64 {
    let (a, b): (Vec<f32>, Vec<f32>) = region
        .iter()
        .enumerate()
        .filter(|&(_, &r)| r)
        .map(|(i, _)| (original[i], edited[i]))
        .unzip();
    psnr(&a, &b)
}

/// Side of the SSIM window.
pub(crate) const SSIM_WINDOW: usize = 7;

/// Mean structural similarity of two images of `shape` (sides at least `SSIM_WINDOW`).
pub fn ssim(original: &[f32], edited: &[f32], shape: ImageShape) -> f64 {
    assert_eq!(original.len(), shape.len());
    assert_eq!(edited.len(), shape.len());
    let (h, w) = (shape.height, shape.width);
    assert!(
        h >= SSIM_WINDOW && w >= SSIM_WINDOW,
        "SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}"
    );
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let n = (SSIM_WINDOW * SSIM_WINDOW) as f64;
    let covariance_norm = n / (n - 1.0);
    let plane = h * w;
    let mut total = 0.0;
    for channel in 0..shape.channels {
        let x = &original[channel * plane..(channel + 1) * plane];
        let y = &edited[channel * plane..(channel + 1) * plane];
        let mut sum = 0.0;
        let mut windows = 0usize;
        // Windows centred on every pixel at least half a window from the border.
        for top in 0..=h - SSIM_WINDOW {
            for left in 0..=w - SSIM_WINDOW {
                let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for row in top..top + SSIM_WINDOW {
                    for col in left..left + SSIM_WINDOW {
                        let (a, b) = (x[row * w + col] as f64, y[row * w + col] as f64);
                        sx += a;
                        sy += b;
                        sxx += a * a;
                        syy += b * b;
                        sxy += a * b;
                    }
                }
                let (ux, uy) = (sx / n, sy / n);
                let vx = covariance_norm * (sxx / n - ux * ux);
                let vy = covariance_norm * (syy / n - uy * uy);
                let vxy = covariance_norm * (sxy / n - ux * uy);
                sum += ((2.0 * ux * uy + c1) * (2.0 * vxy + c2))
                    / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
                windows += 1;
            }
        }
        total += sum / windows as f64;
    }
    total / shape.channels as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images_score_perfectly_and_a_hole_counts_alone() {
        let shape = ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let a: Vec<f32> = (0..64).map(|i| (i as f32 / 64.0).sqrt()).collect();
        // Identical: capped where the error falls below 8-bit rounding noise.
        assert!((psnr(&a, &a) - 58.9226).abs() < 1e-3, "{}", psnr(&a, &a));
        assert!((ssim(&a, &a, shape) - 1.0).abs() < 1e-12);
        // Wrong by 0.1 inside the hole only: hole PSNR is 20 dB, the whole image's higher.
        let mask = crate::degrade::Mask::center(8, 8);
        let b: Vec<f32> = (0..64)
            .map(|i| if mask.missing()[i] { a[i] + 0.1 } else { a[i] })
            .collect();
        assert!((psnr_where(&a, &b, mask.missing()) - 20.0).abs() < 1e-4);
        assert!((psnr(&a, &b) - 26.0206).abs() < 1e-3, "{}", psnr(&a, &b));
    }
}
