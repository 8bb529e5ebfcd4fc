//! Image editing (the lecture's inpainting and uncropping): fill the missing pixels of an image
//! given the visible ones. Every method returns a full image and [`crate::degrade::composite`] then keeps the
//! visible pixels exactly, so methods differ only in the hole.
//!
//! Images here are one image's pixels in [0, 1], channel-major (`[c, h, w]` flattened), as
//! [`crate::data::Split`] stores them (bytes / 255).
//!
//! Methods so far: the baselines `mean` (the training mean image) and `nearest` (the training
//! image closest on the visible pixels), and zero-shot `pca` (the codes that best explain the
//! visible pixels by least squares in the component basis, then the reconstruction).

pub mod invert;
pub mod method;
pub mod methods;
pub mod repaint;
pub mod score;

use faer::linalg::solvers::Solve;
use faer::{Mat, Side as FaerSide};

use crate::data::{ImageShape, Split};
use crate::degrade::Degradation;
use crate::error::{Error, Result};
use crate::pca::Pca;

/// The mean image of `split`, pixels in [0, 1]: the `mean` baseline's fill.
pub(crate) fn mean_image(split: &Split) -> Vec<f32> {
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

/// How PCA weighs the codes it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodePrior {
    /// Plain least squares: the codes that best explain what is seen.
    None,
    /// Probabilistic PCA (Tipping & Bishop 1999): x = mean + Cᵀa + ε with codes aᵢ ~ N(0, λᵢ − σ²)
    /// and pixel noise ε ~ N(0, σ²·I), σ² the mean variance of the discarded directions (so
    /// that x's variance along component i is λᵢ). What is seen, y = A·x, carries that noise
    /// as σ²·A·Aᵀ (g·σ²·I: [`Degradation::noise_gain`]). The posterior mean of a shrinks the
    /// codes that y barely determines (colour, from luma alone) instead of letting them blow up.
    Probabilistic,
}

/// The training set as `nearest` searches it in bulk: for each training image t, what a
/// degradation lets through (o = the pixels, the luma, the small image) as two rows [o², o], so
/// that for an image x seen through weights w (1 where an entry is compared) the distance
/// Σ w·(o − y)² = Σ w·o² − 2 Σ w·y·o + const is one matrix product for a whole batch: on 2 cores,
/// 60,000 training images against 64 test images take a tenth of a second instead of two.
pub(crate) struct NearestBank {
    /// `[N, 2m]`: o² then o, one row per training image.
    rows: Mat<f32>,
    /// Entries per observation.
    observed: usize,
    /// What the bank holds: every pixel (`None`, for masks, whose weights pick the visible
    /// ones), or the view of one other degradation.
    view: Option<Degradation>,
}

impl NearestBank {
    /// The bank of `train` for images that lose what `degradation` takes (any mask stands for
    /// all masks).
    pub fn new(train: &Split, degradation: &Degradation) -> Self {
        let shape = train.shape;
        let view = match degradation {
            Degradation::Mask(_) => None,
            other => Some(other.clone()),
        };
        let see = |image: Vec<f32>| match &view {
            None => image,
            Some(d) => d.observe(&image, shape),
        };
        let observed = see(vec![0.0; shape.len()]).len();
        let mut rows = Mat::<f32>::zeros(train.len(), 2 * observed);
        for j in 0..train.len() {
            for (p, o) in see(train.unit_image(j)).into_iter().enumerate() {
                rows[(j, p)] = o * o;
                rows[(j, observed + p)] = o;
            }
        }
        Self {
            rows,
            observed,
            view,
        }
    }

    /// The index of the closest training image for each of `originals` seen through
    /// `degradations` (all masks, or all the degradation the bank was made for).
    pub fn closest(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Vec<usize> {
        let (n, m) = (originals.len(), self.observed);
        let plane = shape.height * shape.width;
        // [w, −2·w·y] per image, so that its product with a bank row is the distance minus a
        // constant of the image.
        let mut query = Mat::<f32>::zeros(n, 2 * m);
        for (i, (x, d)) in originals.iter().zip(degradations).enumerate() {
            match d {
                Degradation::Mask(mask) => {
                    assert!(self.view.is_none(), "a mask against a bank of views");
                    for p in 0..m {
                        if !mask.missing()[p % plane] {
                            query[(i, p)] = 1.0;
                            query[(i, m + p)] = -2.0 * x[p];
                        }
                    }
                }
                other => {
                    assert_eq!(
                        Some(other),
                        self.view.as_ref(),
                        "another degradation's bank"
                    );
                    for (p, y) in other.observe(x, shape).into_iter().enumerate() {
                        query[(i, p)] = 1.0;
                        query[(i, m + p)] = -2.0 * y;
                    }
                }
            }
        }
        let mut distances = Mat::<f32>::zeros(n, self.rows.nrows()); // [n, N]
        faer::linalg::matmul::matmul(
            distances.as_mut(),
            faer::Accum::Replace,
            query.as_ref(),
            self.rows.transpose(),
            1.0,
            faer::Par::rayon(0),
        );
        (0..n)
            .map(|i| {
                (0..distances.ncols())
                    .min_by(|&a, &b| distances[(i, a)].total_cmp(&distances[(i, b)]))
                    .unwrap_or(0)
            })
            .collect()
    }
}

/// PCA's fill: mean + Cᵀa with the codes of [`pca_codes`], clamped to [0, 1].
pub(crate) fn pca_fill(
    pca: &Pca,
    image: &[f32],
    degradation: &Degradation,
    shape: ImageShape,
    prior: CodePrior,
) -> Result<Vec<f32>> {
    let codes = pca_codes(pca, image, degradation, shape, prior)?;
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

/// The codes a that minimise ‖A(mean + Cᵀa) − y‖² (+ g·σ²·Σ aᵢ²/(λᵢ − σ²) under the
/// probabilistic prior: the posterior mean) for what `degradation` lets through (A), in closed
/// form from the k×k normal equations ((A Cᵀ)ᵀ(A Cᵀ) + g·σ²·(Λ − σ²)⁻¹) a = (A Cᵀ)ᵀ (y − A·mean).
/// `pca` must be fitted on images of `shape` with pixels in [0, 1].
pub(crate) fn pca_codes(
    pca: &Pca,
    image: &[f32],
    degradation: &Degradation,
    shape: ImageShape,
    prior: CodePrior,
) -> Result<Vec<f64>> {
    let d = shape.len();
    if pca.n_features() != d {
        return Err(Error::bad_input(format!(
            "the PCA was fitted on {} pixels per image, the images have {d}",
            pca.n_features()
        )));
    }
    let k = pca.n_components();
    let observe = |v: Vec<f32>| -> Vec<f64> {
        degradation
            .observe(&v, shape)
            .into_iter()
            .map(f64::from)
            .collect()
    };
    // A applied to each component and to the mean; A is linear, so A(mean + Cᵀa) = A·mean + (A Cᵀ) a.
    let seen_components: Vec<Vec<f64>> = (0..k)
        .map(|i| observe((0..d).map(|p| pca.components[(i, p)] as f32).collect()))
        .collect();
    let seen_mean = observe(pca.mean.iter().map(|&m| m as f32).collect());
    let seen = observe(image.to_vec());
    // Under the prior the system is determined whatever is seen; plain least squares needs at
    // least as many observations as codes.
    if prior == CodePrior::None && seen.len() < k {
        return Err(Error::bad_input(format!(
            "{} observed values cannot determine {k} PCA codes",
            seen.len()
        )));
    }
    // The components are orthonormal over all pixels; seen through A they are usually still
    // independent, but a hole can make two of them agree: a tiny ridge keeps the system
    // solvable without moving a well-posed solution.
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut gram = Mat::<f64>::from_fn(k, k, |i, j| dot(&seen_components[i], &seen_components[j])); // [k, k]
    let largest = (0..k).map(|i| gram[(i, i)]).fold(0.0, f64::max);
    let discarded = (d - k).max(1) as f64;
    let noise = ((pca.total_variance - pca.explained_variance.iter().sum::<f64>()) / discarded)
        .max(f64::MIN_POSITIVE);
    let seen_noise = noise * degradation.noise_gain();
    for i in 0..k {
        // The codes' own variance: what component i holds beyond the isotropic noise.
        let code_variance = (pca.explained_variance[i] - noise).max(f64::MIN_POSITIVE);
        gram[(i, i)] += match prior {
            CodePrior::None => 1e-12 * largest.max(f64::MIN_POSITIVE),
            CodePrior::Probabilistic => seen_noise / code_variance,
        };
    }
    let residual: Vec<f64> = seen.iter().zip(&seen_mean).map(|(y, m)| y - m).collect();
    let rhs = Mat::<f64>::from_fn(k, 1, |i, _| dot(&seen_components[i], &residual)); // [k, 1]
    let codes = gram
        .llt(FaerSide::Lower)
        .map_err(|_| Error::Internal("PCA editing: normal equations not positive".into()))?
        .solve(&rhs); // [k, 1]
    Ok((0..k).map(|i| codes[(i, 0)]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::degrade::{Mask, Side, check_mask, composite};
    use crate::pca::{Components, PcaConfig, Solver};

    fn shape() -> ImageShape {
        ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        }
    }

    /// The image of `split` closest to `image` as seen through `degradation`, by a scan of the
    /// bytes: the reference [`NearestBank`] must agree with.
    fn nearest_image(split: &Split, image: &[f32], degradation: &Degradation) -> Vec<f32> {
        let shape = split.shape;
        let plane = shape.height * shape.width;
        // Distances straight from the bytes: this loop runs over the whole training set per image.
        let best = match degradation {
            Degradation::Mask(mask) => {
                let visible: Vec<usize> = (0..shape.len())
                    .filter(|&i| !mask.missing()[i % plane])
                    .collect();
                closest(split, |candidate| {
                    visible
                        .iter()
                        .map(|&i| {
                            let d = candidate[i] as f32 / 255.0 - image[i];
                            d * d
                        })
                        .sum()
                })
            }
            Degradation::Gray => {
                let seen = crate::degrade::luma(image, plane);
                let weights = crate::degrade::resample::LUMA.map(|w| w / 255.0);
                closest(split, |candidate| {
                    (0..plane)
                        .map(|p| {
                            let y = weights[0] * candidate[p] as f32
                                + weights[1] * candidate[plane + p] as f32
                                + weights[2] * candidate[2 * plane + p] as f32;
                            (y - seen[p]) * (y - seen[p])
                        })
                        .sum()
                })
            }
            Degradation::Downsample(_) => {
                let seen = degradation.observe(image, shape);
                closest(split, |candidate| {
                    let unit: Vec<f32> = candidate.iter().map(|&b| b as f32 / 255.0).collect();
                    degradation
                        .observe(&unit, shape)
                        .iter()
                        .zip(&seen)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum()
                })
            }
        };
        split.unit_image(best)
    }

    /// The index of the image of `split` with the smallest `distance`.
    fn closest(split: &Split, distance: impl Fn(&[u8]) -> f32) -> usize {
        split
            .pixels
            .chunks_exact(split.shape.len())
            .map(distance)
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(i, _)| i)
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
        // Through a mask, and through ×2 and ×4 area downsampling (196 and 49 values, ≥ 20).
        for mask in [
            Degradation::Mask(Mask::center(28, 28)),
            Degradation::Mask(Mask::free(28, 28, 5)),
            Degradation::Mask(Mask::uncrop(28, 28, Side::Left)),
            Degradation::Downsample(2),
            Degradation::Downsample(4),
        ] {
            let found = pca_codes(&pca, &planted, &mask, shape(), CodePrior::None).unwrap();
            for (a, b) in found.iter().zip(&codes) {
                assert!((a - b).abs() < 1e-4, "code {a} vs planted {b}");
            }
            let filled = pca_fill(&pca, &planted, &mask, shape(), CodePrior::None).unwrap();
            for (f, p) in filled.iter().zip(&planted) {
                assert!((f - p.clamp(0.0, 1.0)).abs() < 1e-5, "{f} vs {p}");
            }
        }
        // A real test image is not in the span: the fill is close, not exact, and better than
        // the mean on the hole.
        let image: Vec<f32> = data.test.unit_image(0);
        let mask = Mask::center(28, 28);
        let hole_error = |fill: &[f32]| -> f32 {
            (0..784)
                .filter(|&p| mask.missing()[p])
                .map(|p| (fill[p] - image[p]).powi(2))
                .sum()
        };
        let pca_error = hole_error(
            &pca_fill(
                &pca,
                &image,
                &Degradation::Mask(mask.clone()),
                shape(),
                CodePrior::None,
            )
            .unwrap(),
        );
        let mean_error = hole_error(&mean_image(&train));
        assert!(
            pca_error < mean_error,
            "pca {pca_error} vs mean {mean_error}"
        );
    }

    #[test]
    fn pca_colorization_recovers_a_colour_image_in_the_span_from_its_luma() {
        let data = crate::data::embedded::load_embedded_rgb().unwrap();
        let shape = data.shape();
        let train = crate::data::limit_split(&data.train, Some(300));
        let config = PcaConfig::new(Components::Count(10), Solver::Svd);
        let pca = Pca::fit_bytes(&train.pixels, train.len(), 255.0, &config).unwrap();
        let codes: Vec<f64> = (0..10).map(|i| ((i * 3 % 7) as f64 - 3.0) * 0.4).collect();
        let planted: Vec<f32> = (0..shape.len())
            .map(|p| {
                (pca.mean[p]
                    + (0..10)
                        .map(|i| pca.components[(i, p)] * codes[i])
                        .sum::<f64>()) as f32
            })
            .collect();
        let found = pca_codes(&pca, &planted, &Degradation::Gray, shape, CodePrior::None).unwrap();
        for (a, b) in found.iter().zip(&codes) {
            assert!((a - b).abs() < 1e-3, "code {a} vs planted {b}");
        }
        // The planted codes explain the luma exactly, so the MAP codes, which trade fit for
        // prior, cannot cost more under the prior: Σ aᵢ²/λᵢ shrinks.
        let shrunk = pca_codes(
            &pca,
            &planted,
            &Degradation::Gray,
            shape,
            CodePrior::Probabilistic,
        )
        .unwrap();
        let cost = |a: &[f64]| -> f64 {
            a.iter()
                .zip(&pca.explained_variance)
                .map(|(a, l)| a * a / l)
                .sum()
        };
        assert!(
            cost(&shrunk) <= cost(&codes),
            "{} vs {}",
            cost(&shrunk),
            cost(&codes)
        );
    }

    /// The probabilistic prior's codes are the posterior mean E[a | y] of probabilistic PCA
    /// seen through A, computed here the other way round, in the space of what is seen:
    /// E[a | y] = D·Bᵀ·(B·D·Bᵀ + σ²·A·Aᵀ)⁻¹·(y − A·mean), B = A·Cᵀ, D = diag(λᵢ − σ²), with A·Aᵀ
    /// built from A's columns rather than from the noise gain.
    #[test]
    fn the_probabilistic_codes_are_the_ppca_posterior_mean_of_what_is_seen() {
        let data = crate::data::embedded::load_embedded_rgb().unwrap();
        let shape = ImageShape {
            channels: 3,
            ..data.shape()
        };
        let train = crate::data::limit_split(&data.train, Some(300));
        let config = PcaConfig::new(Components::Count(12), Solver::Eigen);
        let pca = Pca::fit_bytes(&train.pixels, train.len(), 255.0, &config).unwrap();
        let (d, k) = (shape.len(), pca.n_components());
        let sigma2 =
            (pca.total_variance - pca.explained_variance.iter().sum::<f64>()) / (d - k) as f64;
        let image = data.test.unit_image(3);
        for degradation in [
            Degradation::Gray,
            Degradation::Downsample(2),
            Degradation::Downsample(4),
        ] {
            let see = |v: Vec<f64>| -> Vec<f64> {
                let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
                degradation
                    .observe(&v, shape)
                    .into_iter()
                    .map(f64::from)
                    .collect()
            };
            let m = see(vec![0.0; d]).len();
            let a = Mat::<f64>::from_fn(m, d, |_, _| 0.0);
            let mut a = a;
            for p in 0..d {
                let mut basis = vec![0.0; d];
                basis[p] = 1.0;
                for (i, v) in see(basis).into_iter().enumerate() {
                    a[(i, p)] = v;
                }
            }
            let c = Mat::<f64>::from_fn(d, k, |p, i| pca.components[(i, p)]); // Cᵀ, [d, k]
            let b = &a * &c; // [m, k]
            let dvar = Mat::<f64>::from_fn(k, k, |i, j| {
                if i == j {
                    pca.explained_variance[i] - sigma2
                } else {
                    0.0
                }
            });
            let cov_y = &b * &dvar * b.transpose() + (&a * a.transpose()) * faer::Scale(sigma2); // [m, m]
            let y = see(image.iter().map(|&v| v as f64).collect());
            let seen_mean = see(pca.mean.clone());
            let r = Mat::<f64>::from_fn(m, 1, |i, _| y[i] - seen_mean[i]);
            let solved = cov_y.llt(FaerSide::Lower).unwrap().solve(&r); // [m, 1]
            let want = &dvar * b.transpose() * &solved; // [k, 1]
            let got =
                pca_codes(&pca, &image, &degradation, shape, CodePrior::Probabilistic).unwrap();
            for i in 0..k {
                let (g, w) = (got[i], want[(i, 0)]);
                assert!(
                    (g - w).abs() < 1e-6 * (1.0 + w.abs()),
                    "{degradation:?} code {i}: {g} vs the posterior mean {w}"
                );
            }
        }
    }

    #[test]
    fn the_bulk_nearest_search_agrees_with_the_direct_one() {
        let data = crate::data::embedded::load_embedded().unwrap();
        let train = crate::data::limit_split(&data.train, Some(500));
        let bank = NearestBank::new(&train, &Degradation::Mask(Mask::center(28, 28)));
        let originals: Vec<Vec<f32>> = (0..6).map(|i| data.test.unit_image(i)).collect();
        let degradations: Vec<Degradation> = (0..6)
            .map(|i| Degradation::Mask(Mask::free(28, 28, i as u64)))
            .collect();
        let found = bank.closest(&originals, &degradations, shape());
        for ((x, d), &j) in originals.iter().zip(&degradations).zip(&found) {
            let direct = nearest_image(&train, x, d);
            let bulk: Vec<f32> = train.unit_image(j);
            assert_eq!(direct, bulk);
        }
        let rgb = crate::data::embedded::load_embedded_rgb().unwrap();
        let train = crate::data::limit_split(&rgb.train, Some(300));
        let bank = NearestBank::new(&train, &Degradation::Gray);
        let x: Vec<f32> = rgb.test.unit_image(5);
        let j = bank.closest(std::slice::from_ref(&x), &[Degradation::Gray], rgb.shape())[0];
        let bulk: Vec<f32> = train.unit_image(j);
        assert_eq!(nearest_image(&train, &x, &Degradation::Gray), bulk);
        let small = Degradation::Downsample(4);
        let bank = NearestBank::new(&train, &small);
        let j = bank.closest(
            std::slice::from_ref(&x),
            std::slice::from_ref(&small),
            rgb.shape(),
        )[0];
        assert_eq!(nearest_image(&train, &x, &small), train.unit_image(j));
    }

    #[test]
    fn nearest_finds_the_image_itself_and_masks_must_fit() {
        let data = crate::data::embedded::load_embedded().unwrap();
        let train = crate::data::limit_split(&data.train, Some(300));
        let image: Vec<f32> = train.unit_image(123);
        let filled = nearest_image(&train, &image, &Degradation::Mask(Mask::center(28, 28)));
        assert_eq!(filled, image);
        assert!(check_mask(&Mask::center(32, 32), shape()).is_err());
        assert!(check_mask(&Mask::center(28, 28), shape()).is_ok());
    }
}
