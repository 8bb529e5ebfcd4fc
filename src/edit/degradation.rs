//! What an edit is given: a linear view y = A·x of the true image x. Inpainting and uncropping see
//! the visible pixels (A selects them, [`Degradation::Mask`]); colorization sees the luma
//! (A = BT.601's weights applied to R, G, B, [`Degradation::Gray`]). Every method then proposes a
//! full image x̂, and [`Degradation::project`] makes it agree with what was seen: the visible pixels
//! are copied back bit for bit, or the luma is restored exactly by adding one shift to R, G and B
//! (the weights sum to 1, so a shift changes no chroma) found so that the luma is right after
//! clipping to [0, 1].
//!
//! Keeping one operator A for all three jobs lets every method be written once: PCA's least
//! squares, the nearest training image and the inversion of a decoder all minimise ‖A·x̂ − y‖.

use burn::prelude::*;

use super::mask::{Mask, check_mask, composite};
use crate::data::ImageShape;
use crate::error::{Error, Result};

/// ITU-R BT.601 luma weights (Pillow's and JPEG's gray), for R, G and B.
pub const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// How an image lost information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degradation {
    /// Pixels under the mask are missing in every channel.
    Mask(Mask),
    /// Only the luma of a colour image is known.
    Gray,
}

impl Degradation {
    /// Checks that this degradation applies to images of `shape`.
    pub fn check(&self, shape: ImageShape) -> Result<()> {
        match self {
            Degradation::Mask(mask) => check_mask(mask, shape),
            Degradation::Gray if shape.channels != 3 => Err(Error::bad_input(format!(
                "colorization needs colour images, but these have {} channel{} ({shape}); \
                 use --data embedded-rgb or CIFAR-10",
                shape.channels,
                if shape.channels == 1 { "" } else { "s" }
            ))),
            Degradation::Gray => Ok(()),
        }
    }

    /// Which entries of an image (`[c, h, w]` flattened) the edit had to make up: the hole in
    /// every channel, or every entry for colorization (each channel is unknown, only their
    /// weighted sum is).
    pub fn unknown(&self, shape: ImageShape) -> Vec<bool> {
        let plane = shape.height * shape.width;
        match self {
            Degradation::Mask(mask) => (0..shape.len())
                .map(|i| mask.missing()[i % plane])
                .collect(),
            Degradation::Gray => vec![true; shape.len()],
        }
    }

    /// y = A·x: the visible pixels (channel-major order) or the luma plane.
    pub fn observe(&self, image: &[f32], shape: ImageShape) -> Vec<f32> {
        let plane = shape.height * shape.width;
        match self {
            Degradation::Mask(mask) => (0..shape.len())
                .filter(|&i| !mask.missing()[i % plane])
                .map(|i| image[i])
                .collect(),
            Degradation::Gray => luma(image, plane),
        }
    }

    /// `estimate` made to agree with what `original` shows through A.
    pub fn project(&self, original: &[f32], estimate: &[f32], shape: ImageShape) -> Vec<f32> {
        match self {
            Degradation::Mask(mask) => composite(original, estimate, mask, shape),
            Degradation::Gray => {
                let plane = shape.height * shape.width;
                let want = luma(original, plane);
                let mut out = vec![0.0; shape.len()];
                for (p, &y) in want.iter().enumerate() {
                    let rgb = [estimate[p], estimate[plane + p], estimate[2 * plane + p]];
                    let fitted = with_luma(rgb, y);
                    for (c, v) in fitted.into_iter().enumerate() {
                        out[c * plane + p] = v;
                    }
                }
                out
            }
        }
    }

    /// What a user is shown as the input: the hole in mid-gray, or the luma in every channel.
    pub fn picture(&self, original: &[f32], shape: ImageShape) -> Vec<f32> {
        match self {
            Degradation::Mask(mask) => composite(original, &vec![0.5; shape.len()], mask, shape),
            Degradation::Gray => gray_to_rgb(&luma(original, shape.height * shape.width)),
        }
    }
}

/// `rgb` shifted along (1, 1, 1) and clipped to [0, 1] so that its luma is `y`: the shift that
/// keeps chroma wherever no channel clips. Y(clip(rgb + δ)) grows with δ from 0 to 1, so
/// bisection finds δ for any y in [0, 1].
fn with_luma(rgb: [f32; 3], y: f32) -> [f32; 3] {
    let shifted = |delta: f64| rgb.map(|v| (v as f64 + delta).clamp(0.0, 1.0));
    let luma_of = |v: [f64; 3]| (0..3).map(|c| LUMA[c] as f64 * v[c]).sum::<f64>();
    let (mut low, mut high) = (-1.0f64, 1.0f64);
    for _ in 0..40 {
        let mid = 0.5 * (low + high);
        if luma_of(shifted(mid)) < y as f64 {
            low = mid;
        } else {
            high = mid;
        }
    }
    shifted(0.5 * (low + high)).map(|v| v as f32)
}

/// The BT.601 luma plane of an RGB image (`[3, h, w]` flattened).
pub fn luma(image: &[f32], plane: usize) -> Vec<f32> {
    (0..plane)
        .map(|p| LUMA[0] * image[p] + LUMA[1] * image[plane + p] + LUMA[2] * image[2 * plane + p])
        .collect()
}

/// The BT.601 luma of a batch of RGB images `[n, 3, h, w]`, `[n, 1, h, w]`.
pub fn luma_tensor(images: Tensor<4>) -> Tensor<4> {
    let weights = Tensor::<1>::from_data(TensorData::new(LUMA.to_vec(), [3]), &images.device())
        .reshape([1, 3, 1, 1]);
    (images * weights).sum_dim(1) // [n, 1, h, w]
}

/// The `gray` baseline of colorization: the luma copied to R, G and B.
pub fn gray_to_rgb(luma: &[f32]) -> Vec<f32> {
    luma.iter().chain(luma).chain(luma).copied().collect()
}

/// A batch of observations as tensors, for methods that descend a loss through a network:
/// y, and a weight that is 1 where an entry of A·x̂ is compared with y and 0 where it is not.
pub struct ObservedBatch {
    /// `[n, c, h, w]` for masks (0 in the hole), `[n, 1, h, w]` luma for colorization.
    pub targets: Tensor<4>,
    /// Same shape as `targets`.
    pub weights: Tensor<4>,
    gray: bool,
}

impl ObservedBatch {
    /// The observations of `originals` through `degradations` (all masks or all gray).
    pub fn new(
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
        device: &Device,
    ) -> Self {
        let n = originals.len();
        let plane = shape.height * shape.width;
        let gray = matches!(degradations.first(), Some(Degradation::Gray));
        let channels = if gray { 1 } else { shape.channels };
        let (mut targets, mut weights) = (Vec::new(), Vec::new());
        for (original, degradation) in originals.iter().zip(degradations) {
            match degradation {
                Degradation::Gray => {
                    targets.extend(luma(original, plane));
                    weights.extend(std::iter::repeat_n(1.0f32, plane));
                }
                Degradation::Mask(mask) => {
                    for (i, &value) in original.iter().enumerate() {
                        let visible = !mask.missing()[i % plane];
                        targets.push(if visible { value } else { 0.0 });
                        weights.push(if visible { 1.0 } else { 0.0 });
                    }
                }
            }
        }
        let dims = [n, channels, shape.height, shape.width];
        Self {
            targets: Tensor::from_data(TensorData::new(targets, dims), device),
            weights: Tensor::from_data(TensorData::new(weights, dims), device),
            gray,
        }
    }

    /// A·x for a batch of images in [0, 1], `[n, c, h, w]` → the shape of `targets`.
    pub fn observe(&self, images: Tensor<4>) -> Tensor<4> {
        if !self.gray {
            return images;
        }
        luma_tensor(images) // [n, 1, h, w]
    }

    /// Σ weight·(A·x − y)² per image, `[n]`.
    pub fn squared_error(&self, images: Tensor<4>) -> Tensor<1> {
        let residual = self.observe(images) - self.targets.clone();
        (residual.powi_scalar(2) * self.weights.clone())
            .flatten::<2>(1, 3)
            .sum_dim(1)
            .squeeze_dim::<1>(1) // [n]
    }

    /// −Σ weight·[y log p + (1 − y) log(1 − p)] per image with p = A·x, `[n]`: the Bernoulli
    /// likelihood of what was observed (p clamped away from 0 and 1).
    pub fn cross_entropy(&self, images: Tensor<4>) -> Tensor<1> {
        let p = self.observe(images).clamp(1e-6, 1.0 - 1e-6);
        let y = self.targets.clone();
        let log_likelihood = y.clone() * p.clone().log() + (y.neg() + 1.0) * (p.neg() + 1.0).log();
        (log_likelihood * self.weights.clone())
            .flatten::<2>(1, 3)
            .sum_dim(1)
            .squeeze_dim::<1>(1)
            .neg() // [n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(h: usize, w: usize) -> (Vec<f32>, ImageShape) {
        let shape = ImageShape {
            channels: 3,
            height: h,
            width: w,
        };
        let image = (0..shape.len())
            .map(|i| (i as f32 * 0.77).sin() * 0.5 + 0.5)
            .collect();
        (image, shape)
    }

    #[test]
    fn projecting_restores_the_luma_even_where_channels_clip() {
        let (original, shape) = rgb(8, 8);
        // Saturated proposals: a shift alone would leave the [0, 1] box.
        let estimate: Vec<f32> = (0..shape.len())
            .map(|i| if i % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let projected = Degradation::Gray.project(&original, &estimate, shape);
        assert!(projected.iter().all(|v| (0.0..=1.0).contains(v)));
        for (a, b) in luma(&original, 64).iter().zip(luma(&projected, 64)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn projecting_restores_the_luma_and_keeps_chroma() {
        let (original, shape) = rgb(8, 8);
        let estimate = vec![0.5; shape.len()];
        let projected = Degradation::Gray.project(&original, &estimate, shape);
        let (want, got) = (luma(&original, 64), luma(&projected, 64));
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // A gray estimate stays gray: the three channels move together.
        for p in 0..64 {
            assert_eq!(projected[p], projected[64 + p]);
            assert_eq!(projected[p], projected[128 + p]);
        }
    }

    #[test]
    fn tensor_observations_match_the_plain_ones() {
        let (original, shape) = rgb(6, 5);
        let device = Device::flex();
        let estimate: Vec<f32> = original.iter().map(|v| 1.0 - v).collect();
        let image =
            Tensor::<4>::from_data(TensorData::new(estimate.clone(), [1, 3, 6, 5]), &device);
        for degradation in [Degradation::Gray, Degradation::Mask(Mask::free(6, 5, 4))] {
            let batch = ObservedBatch::new(
                std::slice::from_ref(&original),
                std::slice::from_ref(&degradation),
                shape,
                &device,
            );
            let want: f32 = degradation
                .observe(&original, shape)
                .iter()
                .zip(degradation.observe(&estimate, shape))
                .map(|(a, b)| (a - b).powi(2))
                .sum();
            let got = batch.squared_error(image.clone()).into_scalar::<f32>();
            assert!(
                (want - got).abs() < 1e-4 * want.max(1.0),
                "{degradation:?}: {want} vs {got}"
            );
        }
    }

    #[test]
    fn colorization_refuses_gray_images() {
        let shape = ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let error = Degradation::Gray.check(shape).unwrap_err().to_string();
        assert!(error.contains("colour images"), "{error}");
    }
}
