//! Image editing (the lecture's inpainting and uncropping): fill the missing pixels of an image
//! given the visible ones. Every method returns a full image and [`composite`] then keeps the
//! visible pixels exactly, so methods differ only in the hole.
//!
//! Images here are one image's pixels in [0, 1], channel-major (`[c, h, w]` flattened), as
//! [`crate::data::Split`] stores them (bytes / 255).
//!
//! Methods so far: the baselines `mean` (the training mean image) and `nearest` (the training
//! image closest on the visible pixels), and zero-shot `pca` (the codes that best explain the
//! visible pixels by least squares in the component basis, then the reconstruction).

pub mod mask;

use faer::linalg::solvers::Solve;
use faer::{Mat, Side as FaerSide};

use crate::data::{ImageShape, Split};
use crate::error::{Error, Result};
use crate::pca::Pca;
pub use mask::{Mask, Side};

/// `filled` where `mask` says missing, `original` everywhere else, bit for bit.
pub fn composite(original: &[f32], filled: &[f32], mask: &Mask, shape: ImageShape) -> Vec<f32> {
    let plane = shape.height * shape.width;
    assert_eq!(original.len(), shape.len());
    assert_eq!(filled.len(), shape.len());
    (0..shape.len())
        .map(|i| {
            if mask.missing()[i % plane] {
                filled[i]
            } else {
                original[i]
            }
        })
        .collect()
}

/// Checks that `mask` fits images of `shape`.
pub fn check_mask(mask: &Mask, shape: ImageShape) -> Result<()> {
    if (mask.height, mask.width) != (shape.height, shape.width) {
        return Err(Error::bad_input(format!(
            "the mask is {}x{}, the images {}x{}",
            mask.height, mask.width, shape.height, shape.width
        )));
    }
    Ok(())
}

/// The mean image of `split`, pixels in [0, 1]: the `mean` baseline's fill.
pub fn mean_image(split: &Split) -> Vec<f32> {
    let size = split.shape.len();
    let mut sums = vec![0u64; size];
    for image in split.pixels.chunks_exact(size) {
        for (s, &p) in sums.iter_mut().zip(image) {
            *s += p as u64;
        }
    }
    let n = (split.len().max(1) * 255) as f64;
    sums.into_iter().map(|s| (s as f64 / n) as f32).collect()
}

/// The image of `split` closest to `image` in squared error on the visible pixels: the
/// `nearest` baseline's fill.
pub fn nearest_image(split: &Split, image: &[f32], mask: &Mask) -> Vec<f32> {
    let size = split.shape.len();
    let plane = split.shape.height * split.shape.width;
    let visible: Vec<usize> = (0..size).filter(|&i| !mask.missing()[i % plane]).collect();
    let distance = |candidate: &[u8]| -> f32 {
        visible
            .iter()
            .map(|&i| {
                let d = candidate[i] as f32 / 255.0 - image[i];
                d * d
            })
            .sum()
    };
    let best = split
        .pixels
        .chunks_exact(size)
        .map(distance)
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(i, _)| i);
    split
        .image(best)
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect()
}

/// PCA's fill: mean + Cᵀa with the codes of [`pca_codes`], clamped to [0, 1].
pub fn pca_fill(pca: &Pca, image: &[f32], mask: &Mask, shape: ImageShape) -> Result<Vec<f32>> {
    let codes = pca_codes(pca, image, mask, shape)?;
    let c = &pca.components; // [k, d]
    Ok((0..shape.len())
        .map(|p| {
            let value = pca.mean[p]
                + codes
                    .iter()
                    .enumerate()
                    .map(|(i, a)| c[(i, p)] * a)
                    .sum::<f64>();
            value.clamp(0.0, 1.0) as f32
        })
        .collect())
}

/// The codes a that minimise ‖(mean + Cᵀa − x) on the visible pixels‖², in closed form from the
/// k×k normal equations (C_V C_Vᵀ) a = C_V (x_V − mean_V). `pca` must be fitted on images of
/// `shape` with pixels in [0, 1].
pub fn pca_codes(pca: &Pca, image: &[f32], mask: &Mask, shape: ImageShape) -> Result<Vec<f64>> {
    let d = shape.len();
    if pca.n_features() != d {
        return Err(Error::bad_input(format!(
            "the PCA was fitted on {} pixels per image, the images have {d}",
            pca.n_features()
        )));
    }
    let plane = shape.height * shape.width;
    let visible: Vec<usize> = (0..d).filter(|&i| !mask.missing()[i % plane]).collect();
    let k = pca.n_components();
    if visible.len() < k {
        return Err(Error::bad_input(format!(
            "{} visible pixels cannot determine {k} PCA codes",
            visible.len()
        )));
    }
    let c = &pca.components; // [k, d]
    // The components are orthonormal over all pixels; over the visible ones they are usually
    // still independent, but a hole can make two of them agree: a tiny ridge keeps the system
    // solvable without moving a well-posed solution.
    let mut largest = 0.0f64;
    let mut gram = Mat::<f64>::from_fn(k, k, |i, j| {
        visible.iter().map(|&p| c[(i, p)] * c[(j, p)]).sum()
    }); // [k, k]
    for i in 0..k {
        largest = largest.max(gram[(i, i)]);
    }
    for i in 0..k {
        gram[(i, i)] += 1e-12 * largest.max(f64::MIN_POSITIVE);
    }
    let rhs = Mat::<f64>::from_fn(k, 1, |i, _| {
        visible
            .iter()
            .map(|&p| c[(i, p)] * (image[p] as f64 - pca.mean[p]))
            .sum()
    }); // [k, 1]
    let codes = gram
        .llt(FaerSide::Lower)
        .map_err(|_| Error::Internal("PCA inpainting: normal equations not positive".into()))?
        .solve(&rhs); // [k, 1]
    Ok((0..k).map(|i| codes[(i, 0)]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pca::{Components, PcaConfig, Solver};

    fn shape() -> ImageShape {
        ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        }
    }

    #[test]
    fn compositing_keeps_visible_pixels_bit_for_bit() {
        let shape = ImageShape {
            channels: 3,
            height: 8,
            width: 8,
        };
        let original: Vec<f32> = (0..shape.len()).map(|i| (i as f32 * 0.37).sin()).collect();
        let filled = vec![0.5f32; shape.len()];
        let mask = Mask::free(8, 8, 3);
        let out = composite(&original, &filled, &mask, shape);
        for (i, (&o, &r)) in original.iter().zip(&out).enumerate() {
            if mask.missing()[i % 64] {
                assert_eq!(r, 0.5);
            } else {
                assert_eq!(r.to_bits(), o.to_bits(), "pixel {i}");
            }
        }
    }

    #[test]
    fn pca_inpainting_recovers_an_image_in_the_component_span() {
        let data = crate::data::embedded::load_embedded().unwrap();
        let train = crate::data::limit_split(&data.train, Some(2000));
        let config = PcaConfig::new(Components::Count(20), Solver::Eigen);
        let pca = Pca::fit_bytes(&train.pixels, train.len(), 255.0, &config).unwrap();
        // An image made of the mean and the components: PCA's fill must find it exactly.
        let codes: Vec<f64> = (0..20).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.3).collect();
        let planted: Vec<f32> = (0..784)
            .map(|p| {
                (pca.mean[p]
                    + (0..20)
                        .map(|i| pca.components[(i, p)] * codes[i])
                        .sum::<f64>()) as f32
            })
            .collect();
        for mask in [
            Mask::center(28, 28),
            Mask::free(28, 28, 5),
            Mask::uncrop(28, 28, Side::Left),
        ] {
            let found = pca_codes(&pca, &planted, &mask, shape()).unwrap();
            for (a, b) in found.iter().zip(&codes) {
                assert!((a - b).abs() < 1e-4, "code {a} vs planted {b}");
            }
            let filled = pca_fill(&pca, &planted, &mask, shape()).unwrap();
            for (f, p) in filled.iter().zip(&planted) {
                assert!((f - p.clamp(0.0, 1.0)).abs() < 1e-5, "{f} vs {p}");
            }
        }
        // A real test image is not in the span: the fill is close, not exact, and better than
        // the mean on the hole.
        let image: Vec<f32> = data
            .test
            .image(0)
            .iter()
            .map(|&b| b as f32 / 255.0)
            .collect();
        let mask = Mask::center(28, 28);
        let hole_error = |fill: &[f32]| -> f32 {
            (0..784)
                .filter(|&p| mask.missing()[p])
                .map(|p| (fill[p] - image[p]).powi(2))
                .sum()
        };
        let pca_error = hole_error(&pca_fill(&pca, &image, &mask, shape()).unwrap());
        let mean_error = hole_error(&mean_image(&train));
        assert!(
            pca_error < mean_error,
            "pca {pca_error} vs mean {mean_error}"
        );
    }

    #[test]
    fn nearest_finds_the_image_itself_and_masks_must_fit() {
        let data = crate::data::embedded::load_embedded().unwrap();
        let train = crate::data::limit_split(&data.train, Some(300));
        let image: Vec<f32> = train.image(123).iter().map(|&b| b as f32 / 255.0).collect();
        let filled = nearest_image(&train, &image, &Mask::center(28, 28));
        assert_eq!(filled, image);
        assert!(check_mask(&Mask::center(32, 32), shape()).is_err());
        assert!(check_mask(&Mask::center(28, 28), shape()).is_ok());
    }
}
