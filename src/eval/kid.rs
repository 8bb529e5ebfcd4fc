//! Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of the squared MMD
//! between real and generated features under the cubic polynomial kernel
//! k(x, y) = (xᵀy / d + 1)³, averaged over random subsets (defaults as in the paper's code and
//! torch-fidelity: 100 subsets of 1000). Unlike FID it is unbiased, so small sample sizes can be
//! compared; it can come out slightly negative when the sets are alike.

use crate::eval::features::Features;
use crate::rng::{mix, stream};
use crate::{Error, Result};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand::{SeedableRng, rngs::StdRng, seq::index::sample};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Kid {
    pub mean: f64,
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
}

pub fn kid(
    real: &Features,
    fake: &Features,
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> Result<Kid> {
    if real.dim != fake.dim {
        return Err(Error::bad_input(
            "real and generated features differ in size",
        ));
    }
    let m = subset_size.min(real.n).min(fake.n);
    if m < 2 || subsets == 0 {
        return Err(Error::bad_input(format!(
            "KID needs at least 2 images on each side and one subset (got {} real, {} generated)",
            real.n, fake.n
        )));
    }
    let mut rng = StdRng::seed_from_u64(mix(seed, stream::SAMPLE, 0x6b6964));
    let values: Vec<f64> = (0..subsets)
        .map(|_| {
            let x = pick(real, &sample(&mut rng, real.n, m).into_vec());
            let y = pick(fake, &sample(&mut rng, fake.n, m).into_vec());
            mmd2_unbiased(&x, &y, real.dim)
        })
        .collect();
    let mean = values.iter().sum::<f64>() / subsets as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / subsets as f64;
    Ok(Kid {
        mean,
        std: var.sqrt(),
        subsets,
        subset_size: m,
    })
}

fn pick(features: &Features, rows: &[usize]) -> Mat<f32> {
    Mat::from_fn(rows.len(), features.dim, |i, j| features.row(rows[i])[j])
}

/// Sum of the polynomial kernel over all pairs of rows of `a` and `b`, and its diagonal's sum.
fn kernel_sums(a: &Mat<f32>, b: &Mat<f32>, dim: usize) -> (f64, f64) {
    let mut gram = Mat::<f32>::zeros(a.nrows(), b.nrows());
    matmul(
        gram.as_mut(),
        Accum::Replace,
        a.as_ref(),
        b.transpose(),
        1.0,
        Par::rayon(0),
    );
    let k = |v: f32| ((v as f64) / dim as f64 + 1.0).powi(3);
    let mut total = 0.0;
    let mut diagonal = 0.0;
    for j in 0..gram.ncols() {
        for i in 0..gram.nrows() {
            let v = k(gram[(i, j)]);
            total += v;
            if i == j {
                diagonal += v;
            }
        }
    }
    (total, diagonal)
}

fn mmd2_unbiased(x: &Mat<f32>, y: &Mat<f32>, dim: usize) -> f64 {
    let m = x.nrows() as f64;
    let (xx, xx_diag) = kernel_sums(x, x, dim);
    let (yy, yy_diag) = kernel_sums(y, y, dim);
    let (xy, _) = kernel_sums(x, y, dim);
    (xx - xx_diag) / (m * (m - 1.0)) + (yy - yy_diag) / (m * (m - 1.0)) - 2.0 * xy / (m * m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    fn gaussian_features(n: usize, d: usize, shift: f32, seed: u64) -> Features {
        let mut rng = StdRng::seed_from_u64(seed);
        let values = (0..n * d)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0 + shift)
            .collect();
        Features { n, dim: d, values }
    }

    #[test]
    fn identical_sets_have_kid_about_zero_and_shifted_sets_do_not() {
        let a = gaussian_features(300, 32, 0.0, 1);
        let same = kid(&a, &a, 20, 100, 0).unwrap();
        assert!(same.mean.abs() < 0.02, "{same:?}");
        let b = gaussian_features(300, 32, 0.0, 2);
        let alike = kid(&a, &b, 20, 100, 0).unwrap();
        assert!(alike.mean.abs() < 0.02, "{alike:?}");
        let c = gaussian_features(300, 32, 0.5, 3);
        let shifted = kid(&a, &c, 20, 100, 0).unwrap();
        assert!(shifted.mean > 0.1, "{shifted:?}");
    }

    #[test]
    fn mmd_of_one_pair_matches_a_hand_computation() {
        // d = 1, x = {0, 1}, y = {1, 2}: k(u, v) = (uv + 1)³
        let x = Mat::from_fn(2, 1, |i, _| i as f32);
        let y = Mat::from_fn(2, 1, |i, _| i as f32 + 1.0);
        let k = |u: f64, v: f64| (u * v + 1.0).powi(3);
        let xx = 2.0 * k(0.0, 1.0);
        let yy = 2.0 * k(1.0, 2.0);
        let xy = k(0.0, 1.0) + k(0.0, 2.0) + k(1.0, 1.0) + k(1.0, 2.0);
        let expected = xx / 2.0 + yy / 2.0 - 2.0 * xy / 4.0;
        assert!((mmd2_unbiased(&x, &y, 1) - expected).abs() < 1e-9);
    }
}
