//! The numbers PCA must reproduce on the full Fashion-MNIST (60,000 training images, pixels / 255).
//! Needs Debian's `dataset-fashion-mnist`; run with
//!
//!     apt-get install dataset-fashion-mnist
//!     cargo test --release --test full_fashion_mnist -- --ignored

use latentlab::data::discover::DEBIAN_FASHION_MNIST;
use latentlab::data::idx::load_idx_dir;
use latentlab::pca::{Components, Pca, PcaConfig, Solver, components_for_fraction};

fn fit(solver: Solver, k: usize) -> Pca {
    let dataset = load_idx_dir(std::path::Path::new(DEBIAN_FASHION_MNIST))
        .expect("the full Fashion-MNIST (apt-get install dataset-fashion-mnist)");
    let train = &dataset.train;
    Pca::fit_bytes(
        &train.pixels,
        train.len(),
        255.0,
        &PcaConfig::new(Components::Count(k), solver),
    )
    .unwrap()
}

/// Largest entry-wise difference of component `i`, up to sign.
fn gap(a: &Pca, b: &Pca, i: usize) -> f64 {
    let (mut same, mut flipped) = (0f64, 0f64);
    for j in 0..a.n_features() {
        same = same.max((a.components[(i, j)] - b.components[(i, j)]).abs());
        flipped = flipped.max((a.components[(i, j)] + b.components[(i, j)]).abs());
    }
    same.min(flipped)
}

#[test]
#[ignore = "needs /usr/share/datasets/fashion-mnist; run with --ignored"]
fn full_fashion_mnist_pca_numbers() {
    let eigen = fit(Solver::Eigen, 784);
    let svd = fit(Solver::Svd, 784);
    let randomized = fit(Solver::Randomized, 50);

    let ratios = &eigen.explained_variance_ratio;
    assert!(
        (ratios[0] - 0.29).abs() < 0.005,
        "PC1 explains {}",
        ratios[0]
    );
    assert_eq!(components_for_fraction(ratios, 0.90), Some(84));
    assert_eq!(components_for_fraction(ratios, 0.95), Some(187));

    let ratio_gap = (0..784)
        .map(|i| (eigen.explained_variance_ratio[i] - svd.explained_variance_ratio[i]).abs())
        .fold(0.0, f64::max);
    assert!(
        ratio_gap < 1e-5,
        "eigen and svd ratios differ by {ratio_gap}"
    );
    // Components are compared where their eigenvalues are distinct enough to define them: the
    // 187 that carry 95 % of the variance.
    let component_gap = (0..187).map(|i| gap(&eigen, &svd, i)).fold(0.0, f64::max);
    assert!(
        component_gap < 1e-4,
        "eigen and svd components differ by {component_gap}"
    );

    let randomized_gap = (0..50)
        .map(|i| (eigen.explained_variance_ratio[i] - randomized.explained_variance_ratio[i]).abs())
        .fold(0.0, f64::max);
    assert!(
        randomized_gap < 1e-4,
        "randomized ratios differ by {randomized_gap}"
    );
    eprintln!(
        "PC1 {:.4}; eigen-svd ratio gap {ratio_gap:.2e}, component gap {component_gap:.2e}; \
         randomized ratio gap {randomized_gap:.2e}",
        ratios[0]
    );
}
