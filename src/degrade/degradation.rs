//! What an edit is given: a linear view y = A·x of the true image x. Inpainting and uncropping see
//! the visible pixels (A selects them, [`Degradation::Mask`]); colorization sees the luma
//! (A = BT.601's weights applied to R, G, B, [`Degradation::Gray`]); super-resolution sees the
//! mean of each s×s block of each channel (area downsampling, [`Degradation::Downsample`]).
//! Every method then proposes a full image x̂, and [`Degradation::project`] makes it agree with
//! what was seen: the visible pixels are copied back bit for bit, or each weighted mean (a
//! pixel's luma, a block's mean) is restored exactly by adding one shift to the entries it
//! averages (the weights sum to 1, so a shift changes no chroma, no detail inside a block),
//! found so that the mean is right after clipping to [0, 1]. For a block that is the
//! back-projection of Irani & Peleg (1991), done exactly in one step.
//!
//! Keeping one operator A for every job lets every method be written once: PCA's least
//! squares, the nearest training image and the inversion of a decoder all minimise ‖A·x̂ − y‖.

use burn::prelude::*;

use super::mask::{Mask, check_mask, composite};
use super::resample::{
    LUMA, block, box_downsample, box_downsample_tensor, gray_to_rgb, luma, luma_tensor,
    upsample_nearest,
};
use crate::data::ImageShape;
use crate::error::{Error, Result};

/// How an image lost information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degradation {
    /// Pixels under the mask are missing in every channel.
    Mask(Mask),
    /// Only the luma of a colour image is known.
    Gray,
    /// Only the mean of each s×s block of each channel is known (s = the factor).
    Downsample(usize),
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
            Degradation::Downsample(s) if *s < 2 => Err(Error::bad_input(format!(
                "--scale must be at least 2, not {s}"
            ))),
            Degradation::Downsample(s)
                if !shape.height.is_multiple_of(*s) || !shape.width.is_multiple_of(*s) =>
            {
                Err(Error::bad_input(format!(
                    "--scale {s} does not divide the images' size ({shape})"
                )))
            }
            Degradation::Downsample(_) => Ok(()),
        }
    }

    /// The shape of what is seen when it is an image: the luma plane, or the small image.
    pub fn observed_shape(&self, shape: ImageShape) -> Option<ImageShape> {
        match self {
            Degradation::Mask(_) => None,
            Degradation::Gray => Some(ImageShape {
                channels: 1,
                ..shape
            }),
            Degradation::Downsample(s) => Some(ImageShape {
                channels: shape.channels,
                height: shape.height / s,
                width: shape.width / s,
            }),
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
            Degradation::Gray | Degradation::Downsample(_) => vec![true; shape.len()],
        }
    }

    /// y = A·x: the visible pixels (channel-major order), the luma plane or the small image.
    pub fn observe(&self, image: &[f32], shape: ImageShape) -> Vec<f32> {
        let plane = shape.height * shape.width;
        match self {
            Degradation::Mask(mask) => (0..shape.len())
                .filter(|&i| !mask.missing()[i % plane])
                .map(|i| image[i])
                .collect(),
            Degradation::Gray => luma(image, plane),
            Degradation::Downsample(s) => box_downsample(image, shape, *s),
        }
    }

    /// g in A·Aᵀ = g·I: what A does to white pixel noise of variance σ², which it turns into
    /// noise of variance g·σ² on each observed value. Every row of A reads its own pixels (one
    /// pixel, one pixel's three channels, one block), so A·Aᵀ is diagonal, with each row's
    /// squared weights on it: 1 for a mask, Σ w² ≈ 0.447 for the luma, 1/s² for a block mean.
    pub fn noise_gain(&self) -> f64 {
        match self {
            Degradation::Mask(_) => 1.0,
            Degradation::Gray => LUMA.iter().map(|&w| (w as f64).powi(2)).sum(),
            Degradation::Downsample(s) => 1.0 / (s * s) as f64,
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
                    let entries = [p, plane + p, 2 * plane + p];
                    shift_to_mean(estimate, &mut out, &entries, &LUMA, y);
                }
                out
            }
            Degradation::Downsample(s) => {
                let want = box_downsample(original, shape, *s);
                let weights = vec![1.0 / (s * s) as f32; s * s];
                let mut out = vec![0.0; shape.len()];
                let mut entries = Vec::with_capacity(s * s);
                for (b, &y) in want.iter().enumerate() {
                    entries.clear();
                    entries.extend(block(b, shape, *s));
                    shift_to_mean(estimate, &mut out, &entries, &weights, y);
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
            // Each block's mean over the whole block: the small image blown up.
            Degradation::Downsample(s) => {
                let small = box_downsample(original, shape, *s);
                let mut out = vec![0.0; shape.len()];
                for (b, &y) in small.iter().enumerate() {
                    for p in block(b, shape, *s) {
                        out[p] = y;
                    }
                }
                out
            }
        }
    }
}

/// Writes into `out[entries]` the `estimate[entries]` shifted by one δ and clipped to [0, 1] so
/// that their weighted mean (weights summing to 1) is `y`: the shift keeps every difference
/// between the entries wherever none clips. For the luma this is a right-inverse of A that
/// keeps chroma (the same δ in R, G and B), not the pseudo-inverse (which would move each
/// channel by its weight). The mean of clip(v + δ) grows with δ from 0, at δ = −max v, to 1, at
/// δ = 1 − min v, so bisection on that bracket finds δ for any y in [0, 1], whatever range the
/// estimate has (an unclamped network output may leave [0, 1] far behind).
fn shift_to_mean(estimate: &[f32], out: &mut [f32], entries: &[usize], weights: &[f32], y: f32) {
    // A non-finite estimate says nothing about the entry: start it at mid-gray.
    let value = |i: usize| match estimate[i] {
        v if v.is_finite() => v as f64,
        _ => 0.5,
    };
    let shifted = |delta: f64, i: usize| (value(i) + delta).clamp(0.0, 1.0);
    let mean_of = |delta: f64| {
        entries
            .iter()
            .zip(weights)
            .map(|(&i, &w)| w as f64 * shifted(delta, i))
            .sum::<f64>()
    };
    let (lowest, highest) = entries.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &i| {
        (lo.min(value(i)), hi.max(value(i)))
    });
    let (mut low, mut high) = (-highest, 1.0 - lowest);
    // Halving the bracket until it is below f64's resolution of its ends.
    for _ in 0..100 {
        let mid = 0.5 * (low + high);
        if mean_of(mid) < y as f64 {
            low = mid;
        } else {
            high = mid;
        }
    }
    let delta = 0.5 * (low + high);
    for &i in entries {
        out[i] = shifted(delta, i) as f32;
    }
}

/// A batch of observations as tensors, for methods that descend a loss through a network:
/// y, and a weight that is 1 where an entry of A·x̂ is compared with y and 0 where it is not.
pub struct ObservedBatch {
    /// `[n, c, h, w]` for masks (0 in the hole), `[n, 1, h, w]` luma for colorization,
    /// `[n, c, h/s, w/s]` for super-resolution.
    pub targets: Tensor<4>,
    /// Same shape as `targets`.
    pub weights: Tensor<4>,
    /// A for the batch: `None` for masks (the weights select), else the degradation.
    view: Option<Degradation>,
}

impl ObservedBatch {
    /// The observations of `originals` through `degradations` (all masks, or all one other
    /// degradation).
    pub fn new(
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
        device: &Device,
    ) -> Self {
        let n = originals.len();
        let plane = shape.height * shape.width;
        let view = degradations
            .first()
            .filter(|d| !matches!(d, Degradation::Mask(_)))
            .cloned();
        let seen = view
            .as_ref()
            .and_then(|d| d.observed_shape(shape))
            .unwrap_or(shape);
        let (mut targets, mut weights) = (Vec::new(), Vec::new());
        for (original, degradation) in originals.iter().zip(degradations) {
            match degradation {
                Degradation::Mask(mask) => {
                    for (i, &value) in original.iter().enumerate() {
                        let visible = !mask.missing()[i % plane];
                        targets.push(if visible { value } else { 0.0 });
                        weights.push(if visible { 1.0 } else { 0.0 });
                    }
                }
                other => {
                    assert_eq!(Some(other), view.as_ref(), "one degradation per batch");
                    targets.extend(other.observe(original, shape));
                    weights.extend(std::iter::repeat_n(1.0f32, seen.len()));
                }
            }
        }
        let dims = [n, seen.channels, seen.height, seen.width];
        Self {
            targets: Tensor::from_data(TensorData::new(targets, dims), device),
            weights: Tensor::from_data(TensorData::new(weights, dims), device),
            view,
        }
    }

    /// Observations through a mask given directly: `targets` the known values (on any scale),
    /// `weights` 1 where known and 0 in the hole, both `[n, c, h, w]`. Latent RePaint's codes
    /// of the visible pixels and the mask brought down to the latent's side.
    pub fn masked(targets: Tensor<4>, weights: Tensor<4>) -> Self {
        Self {
            targets,
            weights,
            view: None,
        }
    }

    /// The same observations tiled `times` over (row `r·n + i` is image i), for searches that
    /// start each image from several points at once.
    pub fn repeat(&self, times: usize) -> Self {
        Self {
            targets: self.targets.clone().repeat_dim(0, times),
            weights: self.weights.clone().repeat_dim(0, times),
            view: self.view.clone(),
        }
    }

    /// A·x for a batch of images in [0, 1], `[n, c, h, w]` → the shape of `targets`.
    pub fn observe(&self, images: Tensor<4>) -> Tensor<4> {
        match &self.view {
            None | Some(Degradation::Mask(_)) => images,
            Some(Degradation::Gray) => luma_tensor(images), // [n, 1, h, w]
            Some(Degradation::Downsample(s)) => box_downsample_tensor(images, *s), // [n, c, h/s, w/s]
        }
    }

    /// `images` `[n, c, h, w]` changed so that their view is `view` (the shape of `targets`):
    /// the visible pixels replaced; block means by x + A⁺(view − A·x), the pseudo-inverse (each
    /// block's shift spread evenly over it, the least change); a luma by adding its shift to R,
    /// G and B alike, a right-inverse of A that keeps chroma (A⁺ would move each channel by its
    /// weight and tint a gray estimate).
    pub fn replace(&self, images: Tensor<4>, view: Tensor<4>) -> Tensor<4> {
        match &self.view {
            None | Some(Degradation::Mask(_)) => {
                let keep = self.weights.clone();
                images * (keep.clone().neg() + 1.0) + view * keep
            }
            Some(Degradation::Gray) => {
                let shift = view - luma_tensor(images.clone()); // [n, 1, h, w]
                images + shift
            }
            Some(Degradation::Downsample(s)) => {
                let shift = view - box_downsample_tensor(images.clone(), *s); // [n, c, h/s, w/s]
                images + upsample_nearest(shift, *s)
            }
        }
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
    fn the_noise_gain_is_the_diagonal_of_a_a_transpose() {
        let (_, shape) = rgb(8, 4);
        for degradation in [
            Degradation::Mask(Mask::center(8, 4)),
            Degradation::Gray,
            Degradation::Downsample(2),
            Degradation::Downsample(4),
        ] {
            // Column p of A is what A sees of the p-th basis image.
            let columns: Vec<Vec<f32>> = (0..shape.len())
                .map(|p| {
                    let mut basis = vec![0.0; shape.len()];
                    basis[p] = 1.0;
                    degradation.observe(&basis, shape)
                })
                .collect();
            let m = columns[0].len();
            for i in 0..m {
                for j in 0..m {
                    let entry: f64 = columns.iter().map(|c| c[i] as f64 * c[j] as f64).sum();
                    let want = if i == j {
                        degradation.noise_gain()
                    } else {
                        0.0
                    };
                    assert!(
                        (entry - want).abs() < 1e-6,
                        "{degradation:?} ({i}, {j}): {entry}"
                    );
                }
            }
        }
    }

    /// An unclamped network may propose values far outside [0, 1]; the projection must still
    /// meet what was seen (a bracket of δ ∈ [−1, 1] cannot).
    #[test]
    fn projecting_an_estimate_far_outside_the_unit_range_still_meets_the_observation() {
        let (original, shape) = rgb(8, 8);
        for offset in [-7.5f32, 4.0, 250.0] {
            let estimate: Vec<f32> = original.iter().map(|v| v * 3.0 + offset).collect();
            let mut broken = estimate.clone();
            broken[5] = f32::NAN;
            for degradation in [
                Degradation::Gray,
                Degradation::Downsample(2),
                Degradation::Downsample(4),
            ] {
                for proposal in [&estimate, &broken] {
                    let projected = degradation.project(&original, proposal, shape);
                    assert!(projected.iter().all(|v| (0.0..=1.0).contains(v)));
                    let (want, got) = (
                        degradation.observe(&original, shape),
                        degradation.observe(&projected, shape),
                    );
                    for (a, b) in want.iter().zip(&got) {
                        assert!(
                            (a - b).abs() < 1e-5,
                            "{degradation:?} offset {offset}: {a} vs {b}"
                        );
                    }
                }
            }
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
        let (even, even_shape) = rgb(6, 4);
        let even_estimate: Vec<f32> = even.iter().map(|v| 1.0 - v).collect();
        let even_image = Tensor::<4>::from_data(
            TensorData::new(even_estimate.clone(), [1, 3, 6, 4]),
            &device,
        );
        let cases = [
            (
                Degradation::Gray,
                &original,
                &estimate,
                image.clone(),
                shape,
            ),
            (
                Degradation::Mask(Mask::free(6, 5, 4)),
                &original,
                &estimate,
                image,
                shape,
            ),
            (
                Degradation::Downsample(2),
                &even,
                &even_estimate,
                even_image,
                even_shape,
            ),
        ];
        for (degradation, original, estimate, image, shape) in cases {
            let batch = ObservedBatch::new(
                std::slice::from_ref(original),
                std::slice::from_ref(&degradation),
                shape,
                &device,
            );
            let want: f32 = degradation
                .observe(original, shape)
                .iter()
                .zip(degradation.observe(estimate, shape))
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
    fn box_downsampling_averages_blocks_and_projection_restores_them() {
        let (original, shape) = rgb(8, 8);
        let small = box_downsample(&original, shape, 4); // [3, 2, 2]
        assert_eq!(small.len(), 12);
        // Block (channel 1, row 1, column 0): rows 4..8, columns 0..4 of channel 1.
        let want: f32 = (4..8)
            .flat_map(|y| (0..4).map(move |x| 64 + y * 8 + x))
            .map(|p| original[p])
            .sum::<f32>()
            / 16.0;
        assert!((small[4 + 2] - want).abs() < 1e-6);
        // Any proposal, even a saturated one, is moved to the same block means, and one whose
        // blocks already agree is left alone.
        let degradation = Degradation::Downsample(4);
        let saturated: Vec<f32> = (0..shape.len()).map(|i| (i % 2) as f32).collect();
        let projected = degradation.project(&original, &saturated, shape);
        assert!(projected.iter().all(|v| (0.0..=1.0).contains(v)));
        for (a, b) in small.iter().zip(box_downsample(&projected, shape, 4)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let again = degradation.project(&original, &original, shape);
        for (a, b) in original.iter().zip(&again) {
            assert!((a - b).abs() < 1e-6);
        }
        let blocky = degradation.picture(&original, shape);
        assert_eq!(box_downsample(&blocky, shape, 4), small);
        assert!(degradation.check(shape).is_ok());
        assert!(Degradation::Downsample(3).check(shape).is_err());
        assert!(Degradation::Downsample(1).check(shape).is_err());
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
