//! `latentlab pca`: fit PCA on the training images, and write eigen-images, reconstructions at
//! several k, the explained-variance chart, metrics and the fitted model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::commands::{CommonArgs, default_out};
use crate::data::discover::{DataSpec, stream_path};
use crate::data::folder::FolderOptions;
use crate::data::stream::{RowSource, Rows};
use crate::data::{Dataset, ImageShape};
use crate::distributed::{DistributedChoice, World};
use crate::error::{Error, Result};
use crate::fsutil::{check_out_dir, prepare_out_dir, write_json};
use crate::pca::metrics::{PcaMetrics, RECONSTRUCTION_KS, Streamed};
use crate::pca::{
    Components, Pca, PcaConfig, Solver, Statistics, components_for_fraction, cumulative,
};
use crate::run::RunInfo;
use crate::ui::spinner;
use crate::viz::plot::{LineChart, Mark, Series, save_charts};
use crate::viz::{Colormap, GridOptions, ImageGrid};

/// Arguments of `latentlab pca`.
#[derive(Debug, Clone, clap::Args)]
pub struct PcaArgs {
    /// Components to keep in pca.safetensors: a count (50) or a variance fraction (0.95).
    #[arg(long, default_value = "50")]
    pub k: String,
    /// eigen: eigenvectors of the covariance XᵀX/(n-1); svd: thin SVD X = USVᵀ; randomized:
    /// Halko-Martinsson-Tropp randomized SVD for data too large for the other two.
    #[arg(long, value_enum, default_value = "eigen")]
    pub solver: Solver,
    /// Read the training rows from disk a chunk at a time (memory O(d²), any number of rows):
    /// IDX, CIFAR-10 and image folders as --data takes them, or a `.npy` matrix [rows, d] of
    /// uint8 or float32. Eigen solver; no test-set reconstructions.
    #[arg(long)]
    pub stream: bool,
    /// Share the streamed pass among the ranks `mpirun` started (feature `mpi`): each reads its
    /// chunks, one all-reduce sums the statistics, rank 0 fits and writes. Implies --stream.
    #[arg(long, value_enum, default_value = "none")]
    pub distributed: DistributedChoice,
    /// With --stream: rows read per chunk [default: 16 MiB of rows; 21,400 of Fashion-MNIST's].
    #[arg(long, value_name = "ROWS")]
    pub chunk_rows: Option<usize>,
    /// Output folder.
    #[arg(long, default_value_os_t = default_out("pca"))]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the command and returns the metrics it wrote.
pub fn run(args: &PcaArgs) -> Result<PcaMetrics> {
    let common = &args.common;
    let solver = args.solver;
    let requested: Components = args.k.parse()?;
    // Checked like every command does, though PCA itself runs on the CPU through faer.
    common.runtime.device.device()?;
    if requested == Components::Count(0) {
        return Err(Error::bad_input("--k 0: keep at least one component"));
    }
    check_out_dir(&args.out, common.force)?;
    if args.stream || args.distributed != DistributedChoice::None {
        return run_streamed(args, requested);
    }
    let dataset = common.load_data()?;
    let d = dataset.shape().len();
    let n = dataset.train.len();
    let max_components = d.min(n.saturating_sub(1));
    if let Components::Count(k) = requested
        && (k == 0 || k > max_components)
    {
        return Err(Error::bad_input(format!(
            "--k {k}: must lie between 1 and {max_components} ({n} training images of {d} pixels)"
        )));
    }
    common.log_data(&dataset);
    let out = prepare_out_dir(&args.out, common.force)?;

    // The exact solvers produce the whole spectrum at no extra cost, which the variance chart and
    // the 90/95 % counts need; the randomized one fits only what the grid and --k use.
    let fit_components = match (solver, requested) {
        (Solver::Randomized, Components::Count(k)) => {
            Components::Count(k.max(100).min(max_components))
        }
        (Solver::Randomized, fraction) => fraction,
        _ => Components::Count(max_components),
    };
    let mut config = PcaConfig::new(fit_components, solver);
    config.seed = common.runtime.seed;
    let bar = spinner(
        &format!("fitting PCA ({solver}) on {n} x {d}"),
        common.runtime.quiet,
    );
    let started = Instant::now();
    let fitted = Pca::fit_bytes(&dataset.train.pixels, n, 255.0, &config);
    let fit_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let fitted = fitted?;
    let k = match requested {
        Components::Count(k) => k,
        Components::VarianceFraction(f) => {
            components_for_fraction(&fitted.explained_variance_ratio, f)
                .unwrap_or(fitted.n_components())
        }
    };
    common.runtime.log(&format!(
        "fit {} components in {fit_seconds:.2} s",
        fitted.n_components()
    ));

    let ratios = fitted.explained_variance_ratio.clone();
    let cumulative = cumulative(&ratios);
    let mut ks: Vec<usize> = RECONSTRUCTION_KS
        .iter()
        .copied()
        .chain([k])
        .filter(|&k| k <= fitted.n_components())
        .collect();
    ks.sort_unstable();
    ks.dedup();
    let x_test = dataset.test.to_matrix();
    let mse = fitted.reconstruction_mse(x_test.as_ref(), &ks)?;
    let metrics = PcaMetrics {
        solver,
        k,
        dataset: dataset.name.clone(),
        n_train: n,
        n_test: dataset.test.len(),
        dimensions: d,
        components_for_90: components_for_fraction(&ratios, 0.90),
        components_for_95: components_for_fraction(&ratios, 0.95),
        explained_variance_ratio: ratios,
        cumulative,
        total_variance: fitted.total_variance,
        test_mse: ks.iter().copied().zip(mse).collect(),
        fit_seconds,
        streamed: None,
    };

    draw_components(&fitted, dataset.shape(), &out.join("components.png"))?;
    draw_reconstructions(
        &fitted,
        &dataset,
        &metrics.test_mse,
        &out.join("reconstructions.png"),
    )?;
    draw_variance(&metrics, &out.join("variance.png"))?;
    fitted.truncated(k).save(&out.join("pca.safetensors"))?;
    write_json(&out.join("metrics.json"), &metrics)?;
    #[derive(serde::Serialize)]
    struct Config<'a> {
        #[serde(flatten)]
        run: RunInfo,
        model: &'a str,
        solver: Solver,
        k: usize,
        k_requested: &'a str,
    }
    write_json(
        &out.join("config.json"),
        &Config {
            run: common.run_info("pca", &dataset),
            model: "pca",
            solver,
            k,
            k_requested: &args.k,
        },
    )?;
    print_summary(&metrics, &out);
    Ok(metrics)
}

/// `pca --stream`: the eigen fit from statistics gathered a chunk at a time.
fn run_streamed(args: &PcaArgs, requested: Components) -> Result<PcaMetrics> {
    let common = &args.common;
    if args.solver != Solver::Eigen {
        return Err(Error::bad_input(format!(
            "--stream fits the eigen solver from the covariance; --solver {} needs the rows in memory",
            args.solver
        )));
    }
    if args.chunk_rows == Some(0) {
        return Err(Error::bad_input("--chunk-rows must be at least 1"));
    }
    let world = World::join(args.distributed)?;
    let path = stream_path(&DataSpec::from_arg(common.data.as_deref()))?;
    let options = FolderOptions {
        image_size: common.image_size,
        channels: common.channels,
    };
    let mut source = RowSource::open(&path, options)?;
    let log = |line: &str| {
        if world.writes() {
            common.runtime.log(line);
        }
    };
    log(&format!("data (streamed): {}", source.description));
    if world.size() > 1 {
        log(&format!("{} MPI ranks share the chunks", world.size()));
    }
    let d = source.width;
    // Chunks of a few MiB: large enough that each is one efficient matrix product, small
    // against the O(d²) statistics' own memory.
    let chunk_rows = args.chunk_rows.unwrap_or((16 << 20) / d.max(1)).max(1);
    let out = if world.writes() {
        prepare_out_dir(&args.out, common.force)?
    } else {
        args.out.clone()
    };
    let bar = crate::ui::new_bar(source.rows, common.runtime.quiet || !world.writes());
    let started = Instant::now();
    let mut statistics: Option<Statistics> = None;
    // Chunk i belongs to rank i mod N; every rank reads the first, whose first row is the
    // shift float statistics share, and passes over the others' without decoding them.
    for chunk in 0.. {
        let mine = chunk % world.size() == world.rank();
        if chunk > 0 && !mine {
            match source.skip_chunk(chunk_rows)? {
                Some(count) => bar.inc(count as u64),
                None => break,
            }
            continue;
        }
        let Some(rows) = source.next_chunk(chunk_rows)? else {
            break;
        };
        let (added, count) = match rows {
            Rows::Bytes(bytes) => {
                let s = statistics.get_or_insert_with(|| Statistics::bytes(d));
                (
                    if mine { s.add_bytes(&bytes) } else { Ok(()) },
                    bytes.len() / d,
                )
            }
            Rows::Floats(floats) => {
                let s = statistics.get_or_insert_with(|| {
                    Statistics::floats_shifted(floats[..d].iter().map(|&v| v as f64).collect())
                });
                (
                    if mine { s.add_floats(&floats) } else { Ok(()) },
                    floats.len() / d,
                )
            }
        };
        added?;
        bar.inc(count as u64);
    }
    let mut statistics = statistics.unwrap_or_else(|| Statistics::bytes(d));
    if world.size() > 1 {
        let mut flat = statistics.to_flat();
        world.all_reduce_sum(&mut flat);
        statistics = statistics.from_flat(&flat)?;
    }
    let n = usize::try_from(statistics.rows()).unwrap_or(usize::MAX);
    let max_components = d.min(n.saturating_sub(1));
    if let Components::Count(k) = requested
        && k > max_components
    {
        return Err(Error::bad_input(format!(
            "--k {k}: must lie between 1 and {max_components} ({n} rows of {d} values)"
        )));
    }
    // Bytes are pixels, scaled to [0, 1] as everywhere else; floats are taken as they are.
    let max_value = if statistics.holds_bytes() { 255.0 } else { 1.0 };
    let config = PcaConfig::new(Components::Count(max_components.max(1)), Solver::Eigen);
    let fitted = statistics.fit(max_value, &config)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let k = match requested {
        Components::Count(k) => k,
        Components::VarianceFraction(f) => {
            components_for_fraction(&fitted.explained_variance_ratio, f)
                .unwrap_or(fitted.n_components())
        }
    };
    let ratios = fitted.explained_variance_ratio.clone();
    let metrics = PcaMetrics {
        solver: Solver::Eigen,
        k,
        dataset: path.display().to_string(),
        n_train: n,
        n_test: 0,
        dimensions: d,
        cumulative: cumulative(&ratios),
        components_for_90: components_for_fraction(&ratios, 0.90),
        components_for_95: components_for_fraction(&ratios, 0.95),
        explained_variance_ratio: ratios,
        total_variance: fitted.total_variance,
        test_mse: BTreeMap::new(),
        fit_seconds,
        streamed: Some(Streamed {
            source: source.description.clone(),
            chunk_rows,
            peak_rss_mib: crate::process::peak_rss_mib(),
        }),
    };
    if !world.writes() {
        return Ok(metrics);
    }
    if let Some(shape) = source.shape {
        draw_components(&fitted, shape, &out.join("components.png"))?;
    }
    draw_variance(&metrics, &out.join("variance.png"))?;
    fitted.truncated(k).save(&out.join("pca.safetensors"))?;
    write_json(&out.join("metrics.json"), &metrics)?;
    print_summary(&metrics, &out);
    Ok(metrics)
}

fn print_summary(m: &PcaMetrics, out: &Path) {
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    let count = |c: Option<usize>| c.map_or("more than fitted".to_string(), |c| c.to_string());
    crate::ui::say(&format!(
        "PCA ({}) on {} ({} images, {} pixels) in {:.2} s",
        m.solver, m.dataset, m.n_train, m.dimensions, m.fit_seconds
    ));
    crate::ui::say(&format!(
        "  PC1 explains {}; 90 % of the variance needs {} components, 95 % needs {}",
        pct(m.explained_variance_ratio[0]),
        count(m.components_for_90),
        count(m.components_for_95)
    ));
    let mse: Vec<String> = m
        .test_mse
        .iter()
        .map(|(k, v)| format!("k={k}: {v:.5}"))
        .collect();
    crate::ui::say(&format!("  test MSE per pixel: {}", mse.join(", ")));
    crate::ui::say(&format!("  wrote {}", out.display()));
}

/// The first 64 components as images, red positive and blue negative.
fn draw_components(pca: &Pca, shape: ImageShape, path: &Path) -> Result<()> {
    let mut grid = ImageGrid::new(shape);
    for i in 0..pca.n_components().min(64) {
        grid.push(pca.components.row(i).iter().map(|&v| v as f32).collect());
    }
    grid.save(
        path,
        Colormap::Diverging,
        &GridOptions {
            scale: 2,
            ..Default::default()
        },
    )
}

/// One test image of each of the first 8 classes (or the first 8 images), and below them their
/// reconstructions from k = 1, 2, 5, ... components, a row per k labelled with the test-set MSE.
fn draw_reconstructions(
    pca: &Pca,
    dataset: &Dataset,
    test_mse: &BTreeMap<usize, f64>,
    path: &Path,
) -> Result<()> {
    let test = &dataset.test;
    let picks = test.one_per_class(dataset.num_classes(), 8);
    let picked: Vec<u8> = picks
        .iter()
        .flat_map(|&i| test.image(i).iter().copied())
        .collect();
    let x = crate::pca::bytes_to_matrix(&picked, picks.len(), 255.0);
    let z = pca.transform(x.as_ref())?;
    let mut grid = ImageGrid::new(test.shape);
    let mut labels = vec!["original".to_string()];
    for i in 0..picks.len() {
        grid.push(x.row(i).iter().map(|&v| v as f32).collect());
    }
    for (&k, mse) in test_mse {
        let recon = pca.inverse_transform(z.subcols(0, k))?;
        for i in 0..picks.len() {
            grid.push(recon.row(i).iter().map(|&v| v as f32).collect());
        }
        labels.push(format!("k = {k}\nmse {mse:.4}"));
    }
    grid.save_labelled_rows(picks.len(), &labels, path)
}

/// Scree plot (log scale) and cumulative explained variance with the 90 % and 95 % marks.
fn draw_variance(m: &PcaMetrics, path: &Path) -> Result<()> {
    let shown = m.explained_variance_ratio.len().min(300);
    let scree = LineChart {
        title: "Explained variance per component".into(),
        x_label: "component".into(),
        y_label: "explained variance ratio".into(),
        series: vec![Series {
            name: "ratio".into(),
            points: (0..shown)
                .map(|i| ((i + 1) as f64, m.explained_variance_ratio[i].max(1e-12)))
                .collect(),
        }],
        marks: vec![],
        log_y: true,
    };
    let mut marks = vec![
        Mark::Horizontal {
            y: 0.90,
            label: "90 %".into(),
        },
        Mark::Horizontal {
            y: 0.95,
            label: "95 %".into(),
        },
    ];
    for (count, name) in [(m.components_for_90, "90 %"), (m.components_for_95, "95 %")] {
        if let Some(c) = count {
            marks.push(Mark::Vertical {
                x: c as f64,
                label: format!("{c} for {name}"),
            });
        }
    }
    let cumulative = LineChart {
        title: "Cumulative explained variance".into(),
        x_label: "components kept".into(),
        y_label: "fraction of total variance".into(),
        series: vec![Series {
            name: "cumulative".into(),
            points: (0..shown)
                .map(|i| ((i + 1) as f64, m.cumulative[i]))
                .collect(),
        }],
        marks,
        log_y: false,
    };
    save_charts(&[scree, cumulative], (640, 440), path)
}
