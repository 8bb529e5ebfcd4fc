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
use faer::{Accum, Mat, MatRef, Par};

use crate::error::{Error, Result};

mod gram;
pub mod metrics;
mod solvers;
mod statistics;
#[cfg(test)]
mod tests;

use gram::*;
use solvers::*;
pub use statistics::Statistics;

/// How the components are computed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
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
pub(crate) fn bytes_to_matrix(pixels: &[u8], n: usize, max_value: f64) -> Mat<f64> {
    fill_from_bytes(pixels, n, max_value, None, |v| v)
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
pub(crate) fn cumulative(values: &[f64]) -> Vec<f64> {
    values
        .iter()
        .scan(0.0, |acc, v| {
            *acc += v;
            Some(*acc)
        })
        .collect()
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
            _ => randomized_spectrum(
                xc.as_ref(),
                k,
                config.oversamples,
                config.power_iterations,
                config.seed,
            ),
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
            // The streamed fit's statistics, gathered in one chunk: the two agree bit for bit.
            Solver::Eigen => {
                let mut statistics = Statistics::bytes(d);
                statistics.add_bytes(pixels)?;
                statistics.fit(max_value, config)
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
        crate::fsutil::write_atomic(path, &crate::checksum::seal_safetensors(&data)?)
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
        crate::checksum::verify_safetensors(&bytes, &path.display().to_string())?;
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
