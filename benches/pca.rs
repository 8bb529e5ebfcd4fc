//! PCA fit time, latentlab against scikit-learn on the same data in the same run.
//!
//!     cargo bench --bench pca                      # full Fashion-MNIST if installed, else the subset
//!     cargo bench --bench pca -- --repeats 5 --k 50 --data /usr/share/datasets/fashion-mnist
//!
//! scikit-learn runs through `bench/pca_sklearn.py` when `python3 -c "import sklearn"` works
//! (`pip install scikit-learn`); `--no-python` skips it. Each figure is the best of `--repeats` fits;
//! both sides scale pixels to [0, 1] in float64 and keep k components.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use latentlab::data::discover::DEBIAN_FASHION_MNIST;
use latentlab::data::{DataSpec, load_dataset};
use latentlab::pca::{Components, Pca, PcaConfig, Solver};

struct Options {
    data: PathBuf,
    repeats: usize,
    k: usize,
    python: bool,
}

fn options() -> Options {
    let default_data = if Path::new(DEBIAN_FASHION_MNIST).is_dir() {
        PathBuf::from(DEBIAN_FASHION_MNIST)
    } else {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/fashion-mnist-subset"
        ))
    };
    let mut o = Options {
        data: default_data,
        repeats: 3,
        k: 50,
        python: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => o.data = args.next().expect("--data PATH").into(),
            "--repeats" => {
                o.repeats = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--repeats N")
            }
            "--k" => o.k = args.next().and_then(|v| v.parse().ok()).expect("--k N"),
            "--no-python" => o.python = false,
            _ => {} // cargo passes --bench
        }
    }
    o
}

fn sklearn(o: &Options) -> Vec<(String, f64, String)> {
    if !o.python {
        return vec![];
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/pca_sklearn.py");
    let output = Command::new("python3")
        .args([script, "--data"])
        .arg(&o.data)
        .args(["--k", &o.k.to_string(), "--repeats", &o.repeats.to_string()])
        .output();
    let Some(output) = output.ok().filter(|out| out.status.success()) else {
        eprintln!(
            "scikit-learn side skipped (python3 bench/pca_sklearn.py failed; pip install scikit-learn)"
        );
        return vec![];
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|v| {
            (
                v["solver"].as_str().unwrap_or("?").to_string(),
                v["seconds"].as_f64().unwrap_or(f64::NAN),
                format!(
                    "{} / {}",
                    v["tool"].as_str().unwrap_or("?"),
                    v["blas"][0].as_str().unwrap_or("?")
                ),
            )
        })
        .collect()
}

fn main() {
    let o = options();
    let dataset = load_dataset(&DataSpec::Path(o.data.clone()), Default::default())
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", o.data.display()));
    let split = &dataset.train;
    println!(
        "PCA fit, {} train images of {} pixels ({}), k = {}, best of {}, {} threads",
        split.len(),
        split.shape.len(),
        dataset.name,
        o.k,
        o.repeats,
        std::thread::available_parallelism().map_or(1, |t| t.get())
    );
    let ours: Vec<(Solver, f64, f64)> = [Solver::Eigen, Solver::Svd, Solver::Randomized]
        .into_iter()
        .map(|solver| {
            let config = PcaConfig::new(Components::Count(o.k), solver);
            let mut best = f64::INFINITY;
            let mut ratio = 0.0;
            for _ in 0..o.repeats {
                let start = Instant::now();
                let pca = Pca::fit_bytes(&split.pixels, split.len(), 255.0, &config).expect("fit");
                best = best.min(start.elapsed().as_secs_f64());
                ratio = pca.explained_variance_ratio[0];
            }
            (solver, best, ratio)
        })
        .collect();
    let theirs = sklearn(&o);
    let partner = |solver: Solver| match solver {
        Solver::Eigen => "covariance_eigh",
        Solver::Svd => "full",
        Solver::Randomized => "randomized",
    };
    println!();
    println!("| latentlab solver | seconds | scikit-learn solver | seconds | speed-up |");
    println!("| --- | --- | --- | --- | --- |");
    for (solver, seconds, _) in &ours {
        let name = partner(*solver);
        let other = theirs.iter().find(|t| t.0 == name);
        match other {
            Some((_, s, _)) => println!(
                "| {solver} | {seconds:.3} | {name} | {s:.3} | {:.2}x |",
                s / seconds
            ),
            None => println!("| {solver} | {seconds:.3} | {name} | - | - |"),
        }
    }
    if let Some((_, _, tool)) = theirs.first() {
        println!("\nreference: {tool}");
    }
    println!("PC1 explained variance ratio: {:.6}", ours[0].2);
}
