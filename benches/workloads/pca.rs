//! W5: PCA fit (k = 50) on the training images (60,000 x 784 for full Fashion-MNIST), pixels
//! scaled to [0, 1] in float64, with each of latentlab's solvers against its scikit-learn
//! counterpart (`bench/pca_sklearn.py`): eigen ↔ covariance_eigh, svd ↔ full, randomized ↔
//! randomized.

use std::path::Path;
use std::time::Instant;

use latentlab::data::{DataSpec, load_dataset};
use latentlab::pca::{Components, Pca, PcaConfig, Solver};

pub const COMPONENTS: usize = 50;

/// scikit-learn's name for the solver that computes the same thing.
pub fn sklearn_solver(solver: Solver) -> &'static str {
    match solver {
        Solver::Eigen => "covariance_eigh",
        Solver::Svd => "full",
        Solver::Randomized => "randomized",
    }
}

/// Images per second of one fit (training images / fit seconds).
pub fn images_per_second(solver: Solver, data: &Path) -> f64 {
    let dataset = load_dataset(&DataSpec::Path(data.into()), Default::default()).expect("data");
    let split = &dataset.train;
    let config = PcaConfig::new(Components::Count(COMPONENTS), solver);
    let start = Instant::now();
    Pca::fit_bytes(&split.pixels, split.len(), 255.0, &config).expect("fit");
    split.len() as f64 / start.elapsed().as_secs_f64()
}
