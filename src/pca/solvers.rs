//! The three ways to the leading eigenvectors of the covariance: its symmetric eigendecomposition,
//! the thin SVD of the centred data (via a tall-skinny QR, U never formed), and
//! Halko–Martinsson–Tropp's randomized SVD.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::gram::*;
use crate::error::{Error, Result};

/// The spectrum of a fit before truncation: components (rows) and their variances, descending.
pub(super) struct Spectrum {
    pub(super) components: Mat<f64>,
    pub(super) variances: Vec<f64>,
}

impl Spectrum {
    /// The top `k` of an SVD of n centred samples: components are the right singular vectors,
    /// variances σ²/(n-1).
    pub(super) fn from_svd(v: &Mat<f64>, singular: &[f64], k: usize, n: usize) -> Self {
        Spectrum {
            components: Mat::from_fn(k, v.nrows(), |i, j| v[(j, i)]),
            variances: singular[..k]
                .iter()
                .map(|s| s * s / (n as f64 - 1.0))
                .collect(),
        }
    }
}

/// The top `k` eigenpairs of a covariance matrix (lower half read), largest first.
pub(super) fn spectrum_of_covariance(covariance: &Mat<f64>, k: usize) -> Result<Spectrum> {
    let d = covariance.nrows();
    let eigen = covariance
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Internal(format!("eigendecomposition failed: {e:?}")))?;
    // faer returns eigenvalues in ascending order; the lecture's first component is the largest.
    let values = eigen.S().column_vector();
    let vectors = eigen.U();
    let components = Mat::from_fn(k, d, |i, j| vectors[(j, d - 1 - i)]);
    // Round-off can make the smallest eigenvalues of a singular covariance slightly negative.
    let variances = (0..k).map(|i| values[d - 1 - i].max(0.0)).collect();
    Ok(Spectrum {
        components,
        variances,
    })
}

/// Right singular vectors and singular values of `a` (left vectors are not computed).
pub(super) fn svd_without_u(a: MatRef<'_, f64>) -> Result<(Mat<f64>, Vec<f64>)> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::svd::{ComputeSvdVectors, svd, svd_scratch};
    let (m, n) = a.shape();
    let size = m.min(n);
    let mut s = faer::diag::Diag::<f64>::zeros(size);
    let mut v = Mat::<f64>::zeros(n, size);
    let par = Par::rayon(0);
    let scratch = svd_scratch::<f64>(
        m,
        n,
        ComputeSvdVectors::No,
        ComputeSvdVectors::Thin,
        par,
        Default::default(),
    );
    svd(
        a,
        s.as_mut(),
        None,
        Some(v.as_mut()),
        par,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .map_err(|e| Error::Internal(format!("SVD did not converge: {e:?}")))?;
    let values = s.column_vector().iter().copied().collect();
    Ok((v, values))
}

/// The triangular factor R of Xc = QR, by tall-skinny QR: each thread takes a block of rows from
/// `block(start, rows)` (already centred) and factors it, then the stacked R factors are factored
/// once more. Q is never formed, and the centred data never exists whole.
pub(super) fn r_factor(
    n: usize,
    d: usize,
    block: impl Fn(usize, usize) -> Mat<f64> + Sync,
) -> Mat<f64> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::qr::no_pivoting::factor::{
        qr_in_place, qr_in_place_scratch, recommended_block_size,
    };
    let upper = |mut a: Mat<f64>, par: Par| -> Mat<f64> {
        let (m, c) = a.shape();
        let block_size = recommended_block_size::<f64>(m, c);
        let mut householder = Mat::<f64>::zeros(block_size, m.min(c));
        let scratch = qr_in_place_scratch::<f64>(m, c, block_size, par, Default::default());
        qr_in_place(
            a.as_mut(),
            householder.as_mut(),
            par,
            MemStack::new(&mut MemBuffer::new(scratch)),
            Default::default(),
        );
        Mat::from_fn(m.min(c), c, |i, j| if i <= j { a[(i, j)] } else { 0.0 })
    };
    let factors = on_row_blocks(n, 2 * d, |start, rows| upper(block(start, rows), Par::Seq));
    if factors.len() == 1 {
        return factors.into_iter().next().expect("one factor");
    }
    let stacked_rows: usize = factors.iter().map(|f| f.nrows()).sum();
    let mut stacked = Mat::<f64>::zeros(stacked_rows, d);
    let mut at = 0;
    for f in &factors {
        stacked.subrows_mut(at, f.nrows()).copy_from(f);
        at += f.nrows();
    }
    upper(stacked, Par::rayon(0))
}

/// `svd`: thin SVD of the centred data, Xc = USVᵀ. With Xc = QR, the SVD of the small R gives the
/// same S and V, and U is never needed.
pub(super) fn svd_spectrum(
    n: usize,
    d: usize,
    k: usize,
    block: impl Fn(usize, usize) -> Mat<f64> + Sync,
) -> Result<Spectrum> {
    let r = r_factor(n, d, block);
    let (v, singular) = svd_without_u(r.as_ref())?;
    Ok(Spectrum::from_svd(&v, &singular, k, n))
}

/// Orthonormal basis of the columns of `y` (thin Q of its QR factorization).
pub(super) fn orthonormal_basis(y: &Mat<f64>) -> Mat<f64> {
    y.qr().compute_thin_Q()
}

/// `randomized`: the top `k` of the spectrum by randomized range finding (HMT 2011), with
/// `oversamples` extra directions and `power_iterations` (scikit-learn's choice when `None`).
pub(super) fn randomized_spectrum(
    xc: MatRef<'_, f64>,
    k: usize,
    oversamples: usize,
    power_iterations: Option<usize>,
    seed: u64,
) -> Result<Spectrum> {
    let (n, d) = xc.shape();
    let width = (k + oversamples).min(n.min(d));
    let iterations = power_iterations.unwrap_or(if (k as f64) < 0.1 * n.min(d) as f64 {
        7
    } else {
        4
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let omega = Mat::from_fn(d, width, |_, _| -> f64 { StandardNormal.sample(&mut rng) });
    let par = Par::rayon(0);
    let mut y = Mat::<f64>::zeros(n, width);
    let mut z = Mat::<f64>::zeros(d, width);
    matmul(y.as_mut(), Accum::Replace, xc, omega.as_ref(), 1.0, par);
    let mut q = orthonormal_basis(&y);
    // Power iterations sharpen the range toward the top singular vectors; re-orthonormalizing
    // between them keeps the small singular directions from drowning in round-off.
    for _ in 0..iterations {
        matmul(
            z.as_mut(),
            Accum::Replace,
            xc.transpose(),
            q.as_ref(),
            1.0,
            par,
        );
        let qz = orthonormal_basis(&z);
        matmul(y.as_mut(), Accum::Replace, xc, qz.as_ref(), 1.0, par);
        q = orthonormal_basis(&y);
    }
    // B = QᵀXc is small (width x d); its SVD gives the components.
    let mut b = Mat::<f64>::zeros(width, d);
    matmul(b.as_mut(), Accum::Replace, q.transpose(), xc, 1.0, par);
    let (v, singular) = svd_without_u(b.as_ref())?;
    Ok(Spectrum::from_svd(&v, &singular, k, n))
}
