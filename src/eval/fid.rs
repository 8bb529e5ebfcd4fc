//! Fréchet distance between two sets of features, each summarized by a Gaussian (mean, covariance):
//!
//!   d² = |μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)
//!
//! On Inception pool3 features this is FID (Heusel et al. 2017). The reference implementations
//! take `sqrtm(Σ₁ Σ₂)` of a non-symmetric product and its real part; its trace equals the trace of
//! the symmetric form used here, whose eigenvalues are real and non-negative by construction, so
//! no imaginary round-off has to be thrown away.

use crate::eval::features::Features;
use crate::{Error, Result};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};

/// Mean and covariance (unbiased, `n − 1`, as `numpy.cov`) of a feature set, in f64.
#[derive(Debug, Clone)]
pub(crate) struct FeatureStats {
    pub mean: Vec<f64>,
    pub covariance: Mat<f64>,
}

impl FeatureStats {
    pub fn of(features: &Features) -> Result<Self> {
        let (n, d) = (features.n, features.dim);
        if n < 2 {
            return Err(Error::bad_input(format!(
                "a covariance needs at least 2 images, got {n}"
            )));
        }
        let mut mean = vec![0f64; d];
        for row in features.rows() {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let centred = Mat::<f64>::from_fn(n, d, |i, j| features.row(i)[j] as f64 - mean[j]);
        let mut covariance = Mat::<f64>::zeros(d, d);
        matmul(
            covariance.as_mut(),
            Accum::Replace,
            centred.transpose(),
            centred.as_ref(),
            1.0 / (n - 1) as f64,
            Par::rayon(0),
        );
        Ok(Self { mean, covariance })
    }
}

/// The squared Fréchet distance between the Gaussians of `a` and `b`.
pub(crate) fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    let d = a.mean.len();
    if b.mean.len() != d {
        return Err(Error::bad_input(format!(
            "feature sizes differ: {d} and {}",
            b.mean.len()
        )));
    }
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let trace = |m: &Mat<f64>| (0..d).map(|i| m[(i, i)]).sum::<f64>();
    let root_a = psd_sqrt(&a.covariance)?;
    let mut tmp = Mat::<f64>::zeros(d, d);
    matmul(
        tmp.as_mut(),
        Accum::Replace,
        root_a.as_ref(),
        b.covariance.as_ref(),
        1.0,
        Par::rayon(0),
    );
    let mut product = Mat::<f64>::zeros(d, d);
    matmul(
        product.as_mut(),
        Accum::Replace,
        tmp.as_ref(),
        root_a.as_ref(),
        1.0,
        Par::rayon(0),
    );
    let eigen = product
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Internal(format!("eigendecomposition failed: {e:?}")))?;
    let cross: f64 = eigen
        .S()
        .column_vector()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    Ok(mean_term + trace(&a.covariance) + trace(&b.covariance) - 2.0 * cross)
}

/// The symmetric square root of a positive semi-definite matrix (negative round-off clamped).
fn psd_sqrt(m: &Mat<f64>) -> Result<Mat<f64>> {
    let d = m.nrows();
    let eigen = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Internal(format!("eigendecomposition failed: {e:?}")))?;
    let (u, s) = (eigen.U(), eigen.S().column_vector());
    let scaled = Mat::<f64>::from_fn(d, d, |i, j| u[(i, j)] * s[j].max(0.0).sqrt());
    let mut root = Mat::<f64>::zeros(d, d);
    matmul(
        root.as_mut(),
        Accum::Replace,
        scaled.as_ref(),
        u.transpose(),
        1.0,
        Par::rayon(0),
    );
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    fn random_features(n: usize, d: usize, seed: u64) -> Features {
        let mut rng = StdRng::seed_from_u64(seed);
        let values = (0..n * d).map(|_| rng.random::<f32>()).collect();
        Features { n, dim: d, values }
    }

    #[test]
    fn identical_sets_are_at_distance_zero() {
        let f = random_features(200, 16, 1);
        let s = FeatureStats::of(&f).unwrap();
        let fd = frechet_distance(&s, &s).unwrap();
        assert!(fd.abs() < 1e-9, "{fd}");
    }

    #[test]
    fn shifted_gaussians_match_the_closed_form() {
        // Σ₁ = diag(a), Σ₂ = diag(b): d² = |Δμ|² + Σ (a + b − 2√(ab)).
        let d = 5;
        let a = [1.0, 2.0, 0.5, 3.0, 1.5];
        let b = [2.0, 2.0, 1.0, 0.25, 4.0];
        let stats = |diag: &[f64], mean: Vec<f64>| FeatureStats {
            mean,
            covariance: Mat::from_fn(d, d, |i, j| if i == j { diag[i] } else { 0.0 }),
        };
        let s1 = stats(&a, vec![0.0; d]);
        let s2 = stats(&b, vec![1.0, -2.0, 0.0, 0.5, 0.0]);
        let expected = (1.0 + 4.0 + 0.25)
            + a.iter()
                .zip(&b)
                .map(|(x, y)| x + y - 2.0 * (x * y).sqrt())
                .sum::<f64>();
        let fd = frechet_distance(&s1, &s2).unwrap();
        assert!((fd - expected).abs() < 1e-9, "{fd} vs {expected}");

        // Same full covariance, shifted mean: only |Δμ|² remains.
        let f = random_features(300, 8, 2);
        let mut s3 = FeatureStats::of(&f).unwrap();
        let s4 = s3.clone();
        s3.mean[3] += 2.0;
        let fd = frechet_distance(&s3, &s4).unwrap();
        assert!((fd - 4.0).abs() < 1e-6, "{fd}");
    }

    /// Covariances that do not commute tell the true trace term tr((Σ₁^½ Σ₂ Σ₁^½)^½) from the
    /// common wrong one, tr(Σ₁^½ Σ₂^½): the eigenvalues of Σ₁Σ₂ are 4 ± √7, whose square roots
    /// sum to √14, so d² = 8 − 2√14 (the wrong formula gives 0.5358984).
    #[test]
    fn non_commuting_covariances_match_the_closed_form() {
        let stats = |covariance: [[f64; 2]; 2]| FeatureStats {
            mean: vec![0.5, -1.0],
            covariance: Mat::from_fn(2, 2, |i, j| covariance[i][j]),
        };
        let s1 = stats([[2.0, 1.0], [1.0, 2.0]]);
        let s2 = stats([[1.0, 0.0], [0.0, 3.0]]);
        let want = 8.0 - 2.0 * 14f64.sqrt();
        assert!((want - 0.5166852).abs() < 1e-7);
        for (a, b) in [(&s1, &s2), (&s2, &s1)] {
            let fd = frechet_distance(a, b).unwrap();
            assert!((fd - want).abs() < 1e-9, "{fd} vs {want}");
        }
    }

    #[test]
    fn covariance_is_numpy_cov() {
        let f = Features {
            n: 3,
            dim: 2,
            values: vec![1.0, 2.0, 3.0, 6.0, 5.0, 4.0],
        };
        let s = FeatureStats::of(&f).unwrap();
        assert_eq!(s.mean, vec![3.0, 4.0]);
        // x: 1,3,5 → var 4; y: 2,6,4 → var 4; cov (−2·−2 + 0·2 + 2·0)/2 = 2
        assert!((s.covariance[(0, 0)] - 4.0).abs() < 1e-12);
        assert!((s.covariance[(1, 1)] - 4.0).abs() < 1e-12);
        assert!((s.covariance[(0, 1)] - 2.0).abs() < 1e-12);
    }
}
