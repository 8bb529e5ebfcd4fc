use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

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
        let err = Pca::fit(x.as_ref(), &config(Components::Count(k), Solver::Eigen)).unwrap_err();
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
