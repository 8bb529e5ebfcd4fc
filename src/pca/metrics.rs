//! What `latentlab pca` writes to `metrics.json` (see DESIGN.md).

use std::collections::BTreeMap;

use super::Solver;

/// The k values the reconstruction grid and `test_mse` show, besides `--k`.
pub(crate) const RECONSTRUCTION_KS: [usize; 7] = [1, 2, 5, 10, 20, 50, 100];

/// What `metrics.json` holds (see DESIGN.md).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PcaMetrics {
    pub solver: Solver,
    pub k: usize,
    pub dataset: String,
    pub n_train: usize,
    pub n_test: usize,
    pub dimensions: usize,
    /// Over the fitted spectrum: every component for eigen/svd, the kept ones for randomized.
    pub explained_variance_ratio: Vec<f64>,
    pub cumulative: Vec<f64>,
    /// `null` where the fitted spectrum does not reach the fraction (randomized with small k).
    pub components_for_90: Option<usize>,
    pub components_for_95: Option<usize>,
    pub total_variance: f64,
    /// Mean squared error per pixel on the test set (pixels in [0, 1]), keyed by k.
    pub test_mse: BTreeMap<usize, f64>,
    pub fit_seconds: f64,
    /// With --stream: how the rows were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamed: Option<Streamed>,
}

/// How a streamed fit read its rows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Streamed {
    pub source: String,
    pub chunk_rows: usize,
    /// The process's peak resident memory at the end of the fit, MiB.
    pub peak_rss_mib: Option<f64>,
}
