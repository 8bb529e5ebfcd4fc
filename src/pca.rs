//! Principal component analysis, the lecture's first model of a low-dimensional representation.
//!
//! Centre the data (n images as rows of X, d pixels each). The principal components are the
//! directions of largest variance, found two ways:
//! - `eigen`: eigenvectors of the covariance XᵀX/(n-1); the eigenvector with the largest
//!   eigenvalue is the first principal component and its eigenvalue is the variance along it.
//! - `svd`: the thin SVD X = USVᵀ; the rows of Vᵀ are the components and σ²/(n-1) their variances.
//!
//! Both give the same answer (up to each component's sign, which we fix). For data too large for
//! either, `randomized` is Halko, Martinsson & Tropp's randomized SVD (2011, algorithm 4.4):
//! project onto a few random directions, sharpen with power iterations, and decompose the small
//! projected matrix.
//!
//! Definitions follow scikit-learn's `PCA`, so the numbers compare one to one.

use std::collections::HashMap;
use std::path::Path;

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par, Side};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};

/// How the components are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    Eigen,
    Svd,
    Randomized,
}

impl std::fmt::Display for Solver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Solver::Eigen => "eigen",
            Solver::Svd => "svd",
            Solver::Randomized => "randomized",
        })
    }
}

impl std::str::FromStr for Solver {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "eigen" => Ok(Solver::Eigen),
            "svd" => Ok(Solver::Svd),
            "randomized" => Ok(Solver::Randomized),
            other => Err(Error::bad_input(format!(
                "unknown PCA solver '{other}' (expected eigen, svd or randomized)"
            ))),
        }
    }
}

/// How many components to keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Components {
    /// Exactly this many.
    Count(usize),
    /// The fewest whose explained variance ratios sum past this fraction of the total (0 < f < 1).
    VarianceFraction(f64),
}

impl std::str::FromStr for Components {
    type Err = Error;
    /// `50` keeps 50 components; `0.95` keeps enough for 95 % of the variance.
    fn from_str(s: &str) -> Result<Self> {
        if let Ok(count) = s.parse::<usize>() {
            return Ok(Components::Count(count));
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => Ok(Components::VarianceFraction(f)),
            _ => Err(Error::bad_input(format!(
                "--k must be a whole number of components or a variance fraction in (0, 1), not '{s}'"
            ))),
        }
    }
}

/// Settings of a fit.
#[derive(Debug, Clone, Copy)]
pub struct PcaConfig {
    pub n_components: Components,
    pub solver: Solver,
    /// Extra random directions beyond k (randomized only; HMT suggest 5-10).
    pub oversamples: usize,
    /// Power iterations (randomized only); `None` chooses as scikit-learn does: 7 when k is under
    /// a tenth of min(n, d), else 4.
    pub power_iterations: Option<usize>,
    /// Seeds the random projection (randomized only).
    pub seed: u64,
}

impl PcaConfig {
    pub fn new(n_components: Components, solver: Solver) -> Self {
        Self {
            n_components,
            solver,
            oversamples: 10,
            power_iterations: None,
            seed: 0,
        }
    }
}

/// A fitted PCA. `components` holds one unit-length component per row, largest variance first.
#[derive(Debug, Clone)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// `[k, d]`, rows orthonormal; each row's largest-magnitude entry is positive.
    pub components: Mat<f64>,
    /// Variance along each component (eigenvalues of the covariance).
    pub explained_variance: Vec<f64>,
    /// `explained_variance` divided by the total variance of the data (not of the kept part).
    pub explained_variance_ratio: Vec<f64>,
    /// Singular values of the centred data: σᵢ² = (n-1)·varianceᵢ.
    pub singular_values: Vec<f64>,
    /// Sum of the per-pixel variances: the variance all d components together explain.
    pub total_variance: f64,
    pub n_samples: usize,
    pub solver: Solver,
}

/// Byte rows (`[n, d]` row-major) as a column-major matrix of `byte / max_value`.
pub fn bytes_to_matrix(pixels: &[u8], n: usize, max_value: f64) -> Mat<f64> {
    fill_from_bytes(pixels, n, max_value, None, |v| v)
}

/// Byte rows as a column-major matrix of `convert(byte / max_value - offset[j])`. Works in bands of
/// rows so that both the strided reads and the column writes stay in cache.
fn fill_from_bytes<T: faer::traits::ComplexField + Copy>(
    pixels: &[u8],
    n: usize,
    max_value: f64,
    offset: Option<&[f64]>,
    convert: impl Fn(f64) -> T,
) -> Mat<T> {
    const BAND: usize = 64;
    let d = pixels.len().checked_div(n).unwrap_or(0);
    let mut x = Mat::<T>::zeros(n, d);
    for start in (0..n).step_by(BAND) {
        let rows = BAND.min(n - start);
        for j in 0..d {
            let shift = offset.map_or(0.0, |o| o[j]);
            for i in start..start + rows {
                x[(i, j)] = convert(pixels[i * d + j] as f64 / max_value - shift);
            }
        }
    }
    x
}

/// Column means of `x`.
fn column_means(x: MatRef<'_, f64>) -> Vec<f64> {
    let n = x.nrows() as f64;
    (0..x.ncols())
        .map(|j| x.col(j).iter().sum::<f64>() / n)
        .collect()
}

/// `x` minus `mean` in every row.
fn centered(x: MatRef<'_, f64>, mean: &[f64]) -> Mat<f64> {
    let mut xc = x.to_owned();
    for (j, m) in mean.iter().enumerate() {
        for v in xc.col_mut(j).iter_mut() {
            *v -= m;
        }
    }
    xc
}

/// Sum of the per-column sample variances: the trace of the covariance.
fn total_variance(x: MatRef<'_, f64>, mean: &[f64]) -> f64 {
    let n = x.nrows() as f64;
    (0..x.ncols())
        .map(|j| x.col(j).iter().map(|v| (v - mean[j]).powi(2)).sum::<f64>())
        .sum::<f64>()
        / (n - 1.0)
}

/// Flips each row so that its largest-magnitude entry is positive (scikit-learn's `svd_flip` on
/// Vᵀ), making components reproducible across solvers and runs.
fn fix_signs(components: &mut Mat<f64>) {
    for i in 0..components.nrows() {
        let mut best = 0;
        for j in 0..components.ncols() {
            if components[(i, j)].abs() > components[(i, best)].abs() {
                best = j;
            }
        }
        if components[(i, best)] < 0.0 {
            for j in 0..components.ncols() {
                components[(i, j)] = -components[(i, j)];
            }
        }
    }
}

/// Smallest k whose cumulative ratio exceeds `fraction` (scikit-learn's rule), or `None` when the
/// given ratios never do.
pub fn components_for_fraction(ratios: &[f64], fraction: f64) -> Option<usize> {
    let mut cumulative = 0.0;
    for (i, r) in ratios.iter().enumerate() {
        cumulative += r;
        if cumulative > fraction {
            return Some(i + 1);
        }
    }
    None
}

/// Running sums of `values`.
pub fn cumulative(values: &[f64]) -> Vec<f64> {
    values
        .iter()
        .scan(0.0, |acc, v| {
            *acc += v;
            Some(*acc)
        })
        .collect()
}

/// The spectrum of a fit before truncation: components (rows) and their variances, descending.
struct Spectrum {
    components: Mat<f64>,
    variances: Vec<f64>,
}

impl Spectrum {
    /// The top `k` of an SVD of n centred samples: components are the right singular vectors,
    /// variances σ²/(n-1).
    fn from_svd(v: &Mat<f64>, singular: &[f64], k: usize, n: usize) -> Self {
        Spectrum {
            components: Mat::from_fn(k, v.nrows(), |i, j| v[(j, i)]),
            variances: singular[..k]
                .iter()
                .map(|s| s * s / (n as f64 - 1.0))
                .collect(),
        }
    }
}

/// The lower half of the covariance XcᵀXc/(n-1) of centred data.
fn covariance_of_centered(xc: MatRef<'_, f64>) -> Mat<f64> {
    let (n, d) = xc.shape();
    let mut covariance = Mat::<f64>::zeros(d, d);
    // The covariance is symmetric: computing its lower half alone halves the work, and the
    // eigensolver reads only that half.
    triangular::matmul(
        covariance.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        xc.transpose(),
        BlockStructure::Rectangular,
        xc,
        BlockStructure::Rectangular,
        1.0 / (n as f64 - 1.0),
        Par::rayon(0),
    );
    covariance
}

/// Rows of bytes summed exactly in `f32`: 256 products of two bytes stay below 2²⁴, the largest
/// integer `f32` holds exactly, so each chunk's sums are exact whatever the order.
const EXACT_F32_ROWS: usize = 256;

/// Number of worker threads for the row-parallel kernels below.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// Runs `work` on contiguous row ranges `(start, rows)` of `0..n`, one per thread, at least
/// `min_rows` each, and returns their results in order.
fn on_row_blocks<T: Send>(
    n: usize,
    min_rows: usize,
    work: impl Fn(usize, usize) -> T + Sync,
) -> Vec<T> {
    let blocks = threads().min(n / min_rows.max(1)).max(1);
    let rows = n.div_ceil(blocks);
    if blocks == 1 {
        return vec![work(0, n)];
    }
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (0..blocks)
            .map(|b| {
                let start = b * rows;
                scope.spawn(move || work(start, rows.min(n - start)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("PCA worker thread panicked"))
            .collect()
    })
}

/// The exact Gram matrix BᵀB (lower half) of byte data `b` (`[n, d]` row-major), computed in
/// chunks of `f32` products that are exact, accumulated in `f64`. Twice the speed of an `f64`
/// product on the same data, and exact where that one rounds.
fn byte_gram(pixels: &[u8], n: usize, d: usize) -> Mat<f64> {
    let partials = on_row_blocks(n, EXACT_F32_ROWS, |first, count| {
        let mut gram = Mat::<f64>::zeros(d, d);
        let mut chunk_gram = Mat::<f32>::zeros(d, d);
        for start in (first..first + count).step_by(EXACT_F32_ROWS) {
            let rows = EXACT_F32_ROWS.min(first + count - start);
            let chunk = fill_from_bytes(
                &pixels[start * d..(start + rows) * d],
                rows,
                1.0,
                None,
                |v| v as f32,
            );
            triangular::matmul(
                chunk_gram.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Replace,
                chunk.transpose(),
                BlockStructure::Rectangular,
                chunk.as_ref(),
                BlockStructure::Rectangular,
                1.0,
                Par::Seq,
            );
            for j in 0..d {
                for i in j..d {
                    gram[(i, j)] += chunk_gram[(i, j)] as f64;
                }
            }
        }
        gram
    });
    let mut partials = partials.into_iter();
    let mut gram = partials.next().expect("at least one block");
    for partial in partials {
        gram += partial;
    }
    gram
}

/// Column sums and sums of squares of byte data, exactly.
fn byte_moments(pixels: &[u8], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sums = vec![0u64; d];
    let mut squares = vec![0u64; d];
    for row in pixels.chunks_exact(d) {
        for ((s, q), &b) in sums.iter_mut().zip(squares.iter_mut()).zip(row) {
            *s += b as u64;
            *q += b as u64 * b as u64;
        }
    }
    let to_f64 = |v: Vec<u64>| v.into_iter().map(|x| x as f64).collect();
    (to_f64(sums), to_f64(squares))
}

/// The top `k` eigenpairs of a covariance matrix (lower half read), largest first.
fn spectrum_of_covariance(covariance: &Mat<f64>, k: usize) -> Result<Spectrum> {
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
fn svd_without_u(a: MatRef<'_, f64>) -> Result<(Mat<f64>, Vec<f64>)> {
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
fn r_factor(n: usize, d: usize, block: impl Fn(usize, usize) -> Mat<f64> + Sync) -> Mat<f64> {
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
fn svd_spectrum(
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
fn orthonormal_basis(y: &Mat<f64>) -> Mat<f64> {
    y.qr().compute_thin_Q()
}

/// `randomized`: the top `k` of the spectrum by randomized range finding (HMT 2011).
fn randomized_spectrum(xc: MatRef<'_, f64>, k: usize, config: &PcaConfig) -> Result<Spectrum> {
    let (n, d) = xc.shape();
    let width = (k + config.oversamples).min(n.min(d));
    let iterations = config
        .power_iterations
        .unwrap_or(if (k as f64) < 0.1 * n.min(d) as f64 {
            7
        } else {
            4
        });
    let mut rng = StdRng::seed_from_u64(config.seed);
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

/// Checks that a fit of `n` samples in `d` dimensions can be asked for.
fn check_shape(n: usize, d: usize) -> Result<()> {
    if n < 2 || d == 0 {
        return Err(Error::bad_input(format!(
            "PCA needs at least 2 samples of at least 1 dimension, got {n} x {d}"
        )));
    }
    Ok(())
}

/// Decides how many components to keep and computes them with `spectrum(k)` (the top k of the
/// solver's spectrum), then assembles the fit.
fn fit_with(
    config: &PcaConfig,
    (n, d): (usize, usize),
    mean: Vec<f64>,
    total: f64,
    spectrum: impl Fn(usize) -> Result<Spectrum>,
) -> Result<Pca> {
    // Centred data has rank at most n-1, so at most min(n-1, d) components carry variance.
    let max_components = d.min(n - 1);
    let spectrum = match config.n_components {
        Components::Count(k) => {
            if k == 0 || k > max_components {
                return Err(Error::bad_input(format!(
                    "cannot keep {k} components: data of {n} samples and {d} dimensions has \
                     between 1 and {max_components}"
                )));
            }
            spectrum(k)?
        }
        Components::VarianceFraction(fraction) => {
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(Error::bad_input(format!(
                    "variance fraction must lie in (0, 1), not {fraction}"
                )));
            }
            // Exact solvers see the whole spectrum at once; the randomized one doubles its rank
            // until the kept part explains enough.
            let mut k = match config.solver {
                Solver::Randomized => 16.min(max_components),
                _ => max_components,
            };
            loop {
                let full = spectrum(k)?;
                let ratios: Vec<f64> = full.variances.iter().map(|v| v / total).collect();
                if let Some(keep) = components_for_fraction(&ratios, fraction)
                    .or((k == max_components).then_some(k))
                {
                    break Spectrum {
                        components: full.components.subrows(0, keep).to_owned(),
                        variances: full.variances[..keep].to_vec(),
                    };
                }
                k = (2 * k).min(max_components);
            }
        }
    };
    let mut components = spectrum.components;
    fix_signs(&mut components);
    let explained_variance = spectrum.variances;
    Ok(Pca {
        mean,
        explained_variance_ratio: explained_variance.iter().map(|v| v / total).collect(),
        singular_values: explained_variance
            .iter()
            .map(|v| (v * (n as f64 - 1.0)).sqrt())
            .collect(),
        explained_variance,
        components,
        total_variance: total,
        n_samples: n,
        solver: config.solver,
    })
}

impl Pca {
    /// Fits PCA to the rows of `x` (`[n, d]`).
    pub fn fit(x: MatRef<'_, f64>, config: &PcaConfig) -> Result<Pca> {
        let (n, d) = x.shape();
        check_shape(n, d)?;
        if x.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) {
            return Err(Error::bad_input("PCA input holds NaN or infinite values"));
        }
        let mean = column_means(x);
        let total = total_variance(x, &mean);
        if config.solver == Solver::Svd {
            let block = |start, rows| centered(x.subrows(start, rows), &mean);
            return fit_with(config, (n, d), mean.clone(), total, |k| {
                svd_spectrum(n, d, k, block)
            });
        }
        let xc = centered(x, &mean);
        fit_with(config, (n, d), mean, total, |k| match config.solver {
            Solver::Eigen => spectrum_of_covariance(&covariance_of_centered(xc.as_ref()), k),
            _ => randomized_spectrum(xc.as_ref(), k, config),
        })
    }

    /// Fits PCA to images stored as bytes (`[n, d]` row-major), each value divided by
    /// `max_value` (255 for pixels in [0, 1]). The same fit as [`Pca::fit`] on the scaled matrix,
    /// without ever holding that matrix: `eigen` builds the covariance from an exact integer Gram
    /// matrix, `svd` converts one block of rows per thread.
    pub fn fit_bytes(pixels: &[u8], n: usize, max_value: f64, config: &PcaConfig) -> Result<Pca> {
        let d = pixels.len().checked_div(n).unwrap_or(0);
        if d * n != pixels.len() {
            return Err(Error::bad_input(format!(
                "{} bytes do not divide into {n} samples",
                pixels.len()
            )));
        }
        check_shape(n, d)?;
        let (sums, squares) = byte_moments(pixels, d);
        let nf = n as f64;
        let mean: Vec<f64> = sums.iter().map(|s| s / nf / max_value).collect();
        // Per-pixel variance from exact integer moments: (Σb² - (Σb)²/n) / (n-1) / max².
        let scale = 1.0 / ((nf - 1.0) * max_value * max_value);
        let total = sums
            .iter()
            .zip(&squares)
            .map(|(s, q)| (q - s * s / nf) * scale)
            .sum();
        match config.solver {
            Solver::Eigen => {
                // Covariance = (BᵀB - s sᵀ/n) / (n-1) / max², with B the bytes and s their sums.
                let mut covariance = byte_gram(pixels, n, d);
                for j in 0..d {
                    for i in j..d {
                        covariance[(i, j)] = (covariance[(i, j)] - sums[i] * sums[j] / nf) * scale;
                    }
                }
                fit_with(config, (n, d), mean, total, |k| {
                    spectrum_of_covariance(&covariance, k)
                })
            }
            Solver::Svd => {
                let block = |start: usize, rows: usize| {
                    let bytes = &pixels[start * d..(start + rows) * d];
                    fill_from_bytes(bytes, rows, max_value, Some(&mean), |v| v)
                };
                fit_with(config, (n, d), mean.clone(), total, |k| {
                    svd_spectrum(n, d, k, block)
                })
            }
            Solver::Randomized => Pca::fit(bytes_to_matrix(pixels, n, max_value).as_ref(), config),
        }
    }

    pub fn n_components(&self) -> usize {
        self.components.nrows()
    }

    pub fn n_features(&self) -> usize {
        self.components.ncols()
    }

    /// The same fit keeping only the first `k` components.
    pub fn truncated(&self, k: usize) -> Pca {
        let k = k.min(self.n_components());
        Pca {
            mean: self.mean.clone(),
            components: self.components.subrows(0, k).to_owned(),
            explained_variance: self.explained_variance[..k].to_vec(),
            explained_variance_ratio: self.explained_variance_ratio[..k].to_vec(),
            singular_values: self.singular_values[..k].to_vec(),
            total_variance: self.total_variance,
            n_samples: self.n_samples,
            solver: self.solver,
        }
    }

    fn check_features(&self, d: usize) -> Result<()> {
        if d != self.n_features() {
            return Err(Error::bad_input(format!(
                "data has {d} features but the PCA was fitted on {}",
                self.n_features()
            )));
        }
        Ok(())
    }

    /// Coordinates of each row of `x` along the components: `(x - mean) Cᵀ`, `[n, k]`.
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.check_features(x.ncols())?;
        let xc = centered(x, &self.mean);
        let mut z = Mat::zeros(x.nrows(), self.n_components());
        matmul(
            z.as_mut(),
            Accum::Replace,
            xc.as_ref(),
            self.components.transpose(),
            1.0,
            Par::rayon(0),
        );
        Ok(z)
    }

    /// Back from coordinates to pixels using the first `z.ncols()` components: `z C + mean`.
    pub fn inverse_transform(&self, z: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let k = z.ncols();
        if k > self.n_components() {
            return Err(Error::bad_input(format!(
                "{k} coordinates given but the PCA keeps {} components",
                self.n_components()
            )));
        }
        let mut x = Mat::from_fn(z.nrows(), self.n_features(), |_, j| self.mean[j]);
        matmul(
            x.as_mut(),
            Accum::Add,
            z,
            self.components.subrows(0, k),
            1.0,
            Par::rayon(0),
        );
        Ok(x)
    }

    /// Mean squared error per pixel of reconstructing `x` from its first `k` coordinates, for each
    /// `k` asked. One projection serves every k.
    pub fn reconstruction_mse(&self, x: MatRef<'_, f64>, ks: &[usize]) -> Result<Vec<f64>> {
        let z = self.transform(x)?;
        ks.iter()
            .map(|&k| {
                if k > self.n_components() {
                    return Err(Error::bad_input(format!(
                        "cannot reconstruct from {k} components: the PCA keeps {}",
                        self.n_components()
                    )));
                }
                let recon = self.inverse_transform(z.subcols(0, k))?;
                let mut sum = 0.0;
                for j in 0..x.ncols() {
                    for i in 0..x.nrows() {
                        let e = x[(i, j)] - recon[(i, j)];
                        sum += e * e;
                    }
                }
                Ok(sum / (x.nrows() * x.ncols()) as f64)
            })
            .collect()
    }

    /// Saves as safetensors (`mean`, `components`, `explained_variance`, `explained_variance_ratio`,
    /// `singular_values`, all f64; `n_samples`, `total_variance` and `solver` in the metadata), so
    /// `safetensors.torch.load_file` opens it.
    pub fn save(&self, path: &Path) -> Result<()> {
        use safetensors::tensor::{Dtype, TensorView};
        let (k, d) = (self.n_components(), self.n_features());
        let components: Vec<f64> = (0..k)
            .flat_map(|i| (0..d).map(move |j| (i, j)))
            .map(|(i, j)| self.components[(i, j)])
            .collect();
        let bytes = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let tensors = [
            ("mean", vec![d], bytes(&self.mean)),
            ("components", vec![k, d], bytes(&components)),
            (
                "explained_variance",
                vec![k],
                bytes(&self.explained_variance),
            ),
            (
                "explained_variance_ratio",
                vec![k],
                bytes(&self.explained_variance_ratio),
            ),
            ("singular_values", vec![k], bytes(&self.singular_values)),
        ];
        let views = tensors
            .iter()
            .map(|(name, shape, data)| {
                TensorView::new(Dtype::F64, shape.clone(), data)
                    .map(|view| (name.to_string(), view))
                    .map_err(|e| Error::Internal(format!("safetensors: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([
            ("n_samples".to_string(), self.n_samples.to_string()),
            (
                "total_variance".to_string(),
                format!("{:e}", self.total_variance),
            ),
            ("solver".to_string(), self.solver.to_string()),
            ("format".to_string(), "latentlab-pca".to_string()),
        ]);
        let data = safetensors::serialize(views, Some(metadata))
            .map_err(|e| Error::Internal(format!("safetensors: {e}")))?;
        crate::fsutil::write_atomic(path, &data)
    }

    /// Loads what [`Pca::save`] wrote.
    pub fn load(path: &Path) -> Result<Pca> {
        use safetensors::SafeTensors;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |why: String| {
            Error::bad_input(format!(
                "{}: not a latentlab PCA file: {why}",
                path.display()
            ))
        };
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
            let view = tensors.tensor(name).map_err(|e| bad(e.to_string()))?;
            if view.dtype() != safetensors::Dtype::F64 {
                return Err(bad(format!("{name} is {:?}, expected F64", view.dtype())));
            }
            let values = view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            Ok((view.shape().to_vec(), values))
        };
        let (mean_shape, mean) = get("mean")?;
        let (shape, flat) = get("components")?;
        if shape.len() != 2 || mean_shape != [shape[1]] {
            return Err(bad(format!(
                "components {shape:?} do not match mean {mean_shape:?}"
            )));
        }
        let (k, d) = (shape[0], shape[1]);
        let vector = |name: &str| -> Result<Vec<f64>> {
            let (s, v) = get(name)?;
            if s != [k] {
                return Err(bad(format!("{name} has shape {s:?}, expected [{k}]")));
            }
            Ok(v)
        };
        let meta_value = |key: &str| -> Result<&String> {
            meta.get(key)
                .ok_or_else(|| bad(format!("metadata lacks {key}")))
        };
        Ok(Pca {
            mean,
            components: Mat::from_fn(k, d, |i, j| flat[i * d + j]),
            explained_variance: vector("explained_variance")?,
            explained_variance_ratio: vector("explained_variance_ratio")?,
            singular_values: vector("singular_values")?,
            total_variance: meta_value("total_variance")?
                .parse()
                .map_err(|_| bad("total_variance is not a number".into()))?,
            n_samples: meta_value("n_samples")?
                .parse()
                .map_err(|_| bad("n_samples is not a number".into()))?,
            solver: meta_value("solver")?.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n samples in d dimensions lying near a planted r-dimensional subspace, with known variances
    /// along it, plus small isotropic noise.
    fn planted(n: usize, d: usize, scales: &[f64], noise: f64, seed: u64) -> (Mat<f64>, Mat<f64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let r = scales.len();
        let raw = Mat::from_fn(d, r, |_, _| -> f64 { StandardNormal.sample(&mut rng) });
        let basis = raw.qr().compute_thin_Q(); // d x r, orthonormal columns
        let coords = Mat::from_fn(n, r, |_, j| {
            scales[j] * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
        });
        let mut x = Mat::from_fn(n, d, |_, j| 3.0 + j as f64 * 0.01); // an offset mean
        matmul(
            x.as_mut(),
            Accum::Add,
            coords.as_ref(),
            basis.transpose(),
            1.0,
            Par::Seq,
        );
        for j in 0..d {
            for i in 0..n {
                let e: f64 = StandardNormal.sample(&mut rng);
                x[(i, j)] += noise * e;
            }
        }
        (x, basis)
    }

    fn config(k: Components, solver: Solver) -> PcaConfig {
        PcaConfig::new(k, solver)
    }

    /// Largest absolute difference of two components, up to sign.
    fn component_gap(a: &Pca, b: &Pca, i: usize) -> f64 {
        let same: f64 = (0..a.n_features())
            .map(|j| (a.components[(i, j)] - b.components[(i, j)]).abs())
            .fold(0.0, f64::max);
        let flipped: f64 = (0..a.n_features())
            .map(|j| (a.components[(i, j)] + b.components[(i, j)]).abs())
            .fold(0.0, f64::max);
        same.min(flipped)
    }

    #[test]
    fn recovers_a_planted_subspace() {
        let (x, basis) = planted(400, 30, &[5.0, 3.0, 2.0], 0.01, 1);
        for solver in [Solver::Eigen, Solver::Svd, Solver::Randomized] {
            let pca = Pca::fit(x.as_ref(), &config(Components::Count(3), solver)).unwrap();
            // Each component lies in the planted span: its projection onto the basis has norm ~1.
            for i in 0..3 {
                let row = pca.components.row(i);
                let norm_in_span: f64 = (0..3)
                    .map(|c| {
                        let dot: f64 = (0..30).map(|j| row[j] * basis[(j, c)]).sum();
                        dot * dot
                    })
                    .sum::<f64>()
                    .sqrt();
                assert!(
                    (norm_in_span - 1.0).abs() < 1e-4,
                    "{solver}: component {i} off the span"
                );
            }
            // Variances come out in order, near the planted 25, 9, 4.
            let v = &pca.explained_variance;
            assert!(v[0] > v[1] && v[1] > v[2], "{solver}: {v:?}");
            assert!((v[0] / 25.0 - 1.0).abs() < 0.25, "{solver}: {v:?}");
            // Three directions explain nearly everything.
            assert!(pca.explained_variance_ratio.iter().sum::<f64>() > 0.99);
        }
    }

    #[test]
    fn solvers_agree() {
        let scales: Vec<f64> = (0..12).map(|i| 10.0 / (1.0 + i as f64)).collect();
        let (x, _) = planted(300, 40, &scales, 0.05, 2);
        let eigen = Pca::fit(x.as_ref(), &config(Components::Count(40), Solver::Eigen)).unwrap();
        let svd = Pca::fit(x.as_ref(), &config(Components::Count(40), Solver::Svd)).unwrap();
        let randomized = Pca::fit(
            x.as_ref(),
            &config(Components::Count(8), Solver::Randomized),
        )
        .unwrap();
        for i in 0..40 {
            assert!(
                (eigen.explained_variance_ratio[i] - svd.explained_variance_ratio[i]).abs() < 1e-10
            );
        }
        for i in 0..12 {
            assert!(component_gap(&eigen, &svd, i) < 1e-8, "component {i}");
        }
        for i in 0..8 {
            assert!(
                (eigen.explained_variance_ratio[i] - randomized.explained_variance_ratio[i]).abs()
                    < 1e-8
            );
            assert!(
                component_gap(&eigen, &randomized, i) < 1e-6,
                "randomized component {i}"
            );
        }
        // Signs are fixed the same way, so the components agree without flipping.
        for i in 0..8 {
            let j = (0..40)
                .max_by(|&a, &b| {
                    eigen.components[(i, a)]
                        .abs()
                        .total_cmp(&eigen.components[(i, b)].abs())
                })
                .unwrap();
            assert!(eigen.components[(i, j)] > 0.0 && svd.components[(i, j)] > 0.0);
        }
        // The full spectrum sums to the total variance.
        assert!((eigen.explained_variance_ratio.iter().sum::<f64>() - 1.0).abs() < 1e-10);
    }

    #[test]
    fn byte_path_matches_the_float_path() {
        let mut rng = StdRng::seed_from_u64(9);
        let (n, d) = (700, 12); // more rows than one exact-f32 chunk
        // Correlated bytes: a shared ramp plus noise, clipped to 0..=255.
        let pixels: Vec<u8> = (0..n * d)
            .map(|idx| {
                let (i, j) = (idx / d, idx % d);
                let shared = ((i * 37) % 200) as f64;
                let noise: f64 = StandardNormal.sample(&mut rng);
                (shared * (1.0 + j as f64 / 10.0) * 0.5 + 20.0 * noise).clamp(0.0, 255.0) as u8
            })
            .collect();
        let x = Mat::from_fn(n, d, |i, j| pixels[i * d + j] as f64 / 255.0);
        for solver in [Solver::Eigen, Solver::Svd] {
            let cfg = config(Components::Count(d), solver);
            let from_bytes = Pca::fit_bytes(&pixels, n, 255.0, &cfg).unwrap();
            let from_floats = Pca::fit(x.as_ref(), &cfg).unwrap();
            assert!((from_bytes.total_variance / from_floats.total_variance - 1.0).abs() < 1e-12);
            for i in 0..d {
                assert!((from_bytes.mean[i] - from_floats.mean[i]).abs() < 1e-14);
                let (a, b) = (
                    from_bytes.explained_variance[i],
                    from_floats.explained_variance[i],
                );
                assert!(
                    (a - b).abs() < 1e-12 * from_floats.explained_variance[0],
                    "{solver} {i}"
                );
            }
            for i in 0..4 {
                assert!(
                    component_gap(&from_bytes, &from_floats, i) < 1e-9,
                    "{solver} component {i}"
                );
            }
        }
        assert!(
            Pca::fit_bytes(
                &pixels[..pixels.len() - 1],
                n,
                255.0,
                &config(Components::Count(2), Solver::Eigen)
            )
            .is_err()
        );
    }

    #[test]
    fn components_are_orthonormal() {
        let (x, _) = planted(200, 25, &[4.0, 2.0, 1.0, 0.5], 0.1, 3);
        for solver in [Solver::Eigen, Solver::Svd, Solver::Randomized] {
            let pca = Pca::fit(x.as_ref(), &config(Components::Count(6), solver)).unwrap();
            for a in 0..6 {
                for b in 0..6 {
                    let dot: f64 = (0..25)
                        .map(|j| pca.components[(a, j)] * pca.components[(b, j)])
                        .sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-9, "{solver}: <c{a}, c{b}> = {dot}");
                }
            }
        }
    }

    #[test]
    fn reconstruction_error_is_the_dropped_variance() {
        // On the training data, the mean squared residual per pixel after keeping k components is
        // the sum of the dropped eigenvalues over d, times (n-1)/n (eigenvalues use n-1).
        let (x, _) = planted(150, 20, &[5.0, 4.0, 3.0, 2.0, 1.0], 0.3, 4);
        let (n, d) = (150.0, 20.0);
        let pca = Pca::fit(x.as_ref(), &config(Components::Count(20), Solver::Eigen)).unwrap();
        let ks = [0, 1, 3, 5, 10, 19, 20];
        let mse = pca.reconstruction_mse(x.as_ref(), &ks).unwrap();
        for (k, got) in ks.iter().zip(&mse) {
            let dropped: f64 = pca.explained_variance[*k..].iter().sum();
            let want = dropped / d * (n - 1.0) / n;
            assert!(
                (got - want).abs() < 1e-9 * want.max(1.0),
                "k={k}: {got} vs {want}"
            );
        }
        assert!(mse[6] < 1e-20, "all components reconstruct exactly");
    }

    #[test]
    fn transform_and_inverse_round_trip() {
        let (x, _) = planted(60, 10, &[3.0, 1.0], 0.0, 5);
        let pca = Pca::fit(x.as_ref(), &config(Components::Count(2), Solver::Svd)).unwrap();
        let z = pca.transform(x.as_ref()).unwrap();
        assert_eq!(z.shape(), (60, 2));
        let back = pca.inverse_transform(z.as_ref()).unwrap();
        for i in 0..60 {
            for j in 0..10 {
                assert!((back[(i, j)] - x[(i, j)]).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn variance_fraction_picks_the_fewest_components() {
        let scales: Vec<f64> = (0..10).map(|i| 2f64.powi(-i)).collect();
        let (x, _) = planted(500, 16, &scales, 0.001, 6);
        let full = Pca::fit(x.as_ref(), &config(Components::Count(16), Solver::Eigen)).unwrap();
        let cumulative = cumulative(&full.explained_variance_ratio);
        for fraction in [0.5, 0.9, 0.95, 0.999] {
            let want = cumulative.iter().position(|&c| c > fraction).unwrap() + 1;
            for solver in [Solver::Eigen, Solver::Svd, Solver::Randomized] {
                let pca = Pca::fit(
                    x.as_ref(),
                    &config(Components::VarianceFraction(fraction), solver),
                )
                .unwrap();
                assert_eq!(pca.n_components(), want, "{solver} at {fraction}");
                let kept: f64 = pca.explained_variance_ratio.iter().sum();
                assert!(kept > fraction);
                assert!(kept - pca.explained_variance_ratio[want - 1] <= fraction);
            }
        }
    }

    #[test]
    fn bad_requests_are_errors() {
        let (x, _) = planted(20, 5, &[1.0], 0.1, 7);
        for k in [0, 6] {
            let err =
                Pca::fit(x.as_ref(), &config(Components::Count(k), Solver::Eigen)).unwrap_err();
            assert!(matches!(err, Error::BadInput(_)), "{err}");
        }
        assert!("1.5".parse::<Components>().is_err());
        assert!("pca".parse::<Solver>().is_err());
        assert_eq!(
            "0.95".parse::<Components>().unwrap(),
            Components::VarianceFraction(0.95)
        );
        let mut nan = x.clone();
        nan[(3, 2)] = f64::NAN;
        assert!(Pca::fit(nan.as_ref(), &config(Components::Count(2), Solver::Svd)).is_err());
    }

    #[test]
    fn save_and_load_round_trip() {
        let (x, _) = planted(50, 8, &[2.0, 1.0], 0.1, 8);
        let pca = Pca::fit(
            x.as_ref(),
            &config(Components::Count(3), Solver::Randomized),
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("latentlab-pca-{}", std::process::id()));
        let path = dir.join("pca.safetensors");
        pca.save(&path).unwrap();
        let back = Pca::load(&path).unwrap();
        assert_eq!(back.mean, pca.mean);
        assert_eq!(back.components, pca.components);
        assert_eq!(back.explained_variance_ratio, pca.explained_variance_ratio);
        assert_eq!(back.solver, Solver::Randomized);
        assert_eq!(back.n_samples, 50);
        std::fs::write(&path, b"not safetensors").unwrap();
        assert!(matches!(Pca::load(&path), Err(Error::BadInput(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
