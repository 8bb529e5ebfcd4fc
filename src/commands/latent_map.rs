//! `latentlab latent-map RUN`: where the test set lands in the latent space, coloured by class
//! (projected onto its two principal components when z has more than two dimensions), and for a
//! 2-D latent the images decoded over a grid of z. Run it on an autoencoder and on a VAE to see
//! the lecture's contrast: the autoencoder's codes are scattered with empty space between them,
//! the VAE's fill the region the prior N(0, I) covers, so points drawn from it decode to images.

use std::path::PathBuf;

use burn::prelude::*;

use crate::commands::run_args::RunArgs;
use crate::data::{BatchConfig, Batches, PixelScale};
use crate::error::{Error, Result};
use crate::eval::LatentStats;
use crate::pca::{Components, Pca, PcaConfig, Solver};
use crate::train::latent::save_grid_with_columns;
use crate::viz::scatter::ScatterChart;

#[derive(Debug, Clone, clap::Args)]
pub struct LatentMapArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Test images to place (the first n).
    #[arg(long, default_value_t = 5000)]
    pub n: usize,
    /// Side of the decoded grid for a 2-D latent.
    #[arg(long, default_value_t = 15)]
    pub grid: usize,
    /// Output folder [default: RUN]; writes latent_map.png (and latent_manifold.png) and
    /// latent_map.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &LatentMapArgs) -> Result<LatentStats> {
    if args.n < 3 || args.grid < 2 {
        return Err(Error::bad_input(
            "--n must be at least 3 and --grid at least 2",
        ));
    }
    let (folder, model, device) = args.run.open()?;
    crate::commands::run_args::unconditional_only(&model, &args.run.run, "latent-map")?;
    let dataset = folder.load_data()?;
    let config = &folder.latent_config()?.model;
    let latent = config.latent();
    let out_dir = args.out.clone().unwrap_or_else(|| args.run.run.clone());

    let mut codes = Vec::new();
    let mut labels = Vec::new();
    let n = args.n.min(dataset.test.len());
    let split = crate::data::limit_split(&dataset.test, Some(n));
    let config_batches = BatchConfig::in_order(1000, PixelScale::ZeroOne);
    for batch in Batches::new(&split, config_batches, &device) {
        codes.extend(
            model
                .encode_mean(batch.images, None)
                .into_data()
                .iter::<f32>()
                .map(f64::from),
        );
        labels.extend(batch.labels.into_data().iter::<i64>().map(|l| l as u8));
    }
    let matrix = faer::Mat::from_fn(n, latent, |i, j| codes[i * latent + j]);
    let means: Vec<f64> = (0..latent)
        .map(|j| (0..n).map(|i| matrix[(i, j)]).sum::<f64>() / n as f64)
        .collect();
    let stds: Vec<f64> = (0..latent)
        .map(|j| {
            ((0..n)
                .map(|i| (matrix[(i, j)] - means[j]).powi(2))
                .sum::<f64>()
                / (n - 1) as f64)
                .sqrt()
        })
        .collect();

    let (xy, axes, plotted_variance) = if latent == 2 {
        (matrix.clone(), ("z₁", "z₂"), 1.0)
    } else if latent == 1 {
        (
            faer::Mat::from_fn(n, 2, |i, j| if j == 0 { matrix[(i, 0)] } else { 0.0 }),
            ("z₁", "(none)"),
            1.0,
        )
    } else {
        let pca = Pca::fit(
            matrix.as_ref(),
            &PcaConfig::new(Components::Count(2), Solver::Eigen),
        )?;
        let shown = pca.explained_variance_ratio.iter().take(2).sum::<f64>();
        (
            pca.transform(matrix.as_ref())?,
            ("PC 1 of z", "PC 2 of z"),
            shown,
        )
    };
    let class_names = if dataset.class_names.is_empty() {
        (0..dataset.num_classes()).map(|c| c.to_string()).collect()
    } else {
        dataset.class_names.clone()
    };
    let title = if latent > 2 {
        format!(
            "{} codes of {n} test images ({latent}-D, PCA shows {:.0} %)",
            config.kind(),
            100.0 * plotted_variance
        )
    } else {
        format!("{} codes of {n} test images", config.kind())
    };
    let chart = ScatterChart {
        title,
        x_label: axes.0.into(),
        y_label: axes.1.into(),
        points: (0..n)
            .map(|i| (xy[(i, 0)], xy[(i, 1)], labels[i] as usize))
            .collect(),
        class_names,
        range: None,
    };
    let map_path = out_dir.join("latent_map.png");
    chart.save((820, 640), &map_path)?;
    let mut written = vec![map_path];

    if latent == 2 {
        // The grid spans the middle 98 % of the codes on each axis, the same rule for both models:
        // an autoencoder's empty regions inside that box decode to whatever the decoder extrapolates.
        let range = |j: usize| {
            let mut v: Vec<f64> = (0..n).map(|i| matrix[(i, j)]).collect();
            v.sort_by(f64::total_cmp);
            (v[n / 100], v[n - 1 - n / 100])
        };
        let ((x0, x1), (y0, y1)) = (range(0), range(1));
        let side = args.grid;
        let mut grid_codes = Vec::with_capacity(side * side * 2);
        for row in 0..side {
            for col in 0..side {
                let fx = col as f64 / (side - 1) as f64;
                let fy = 1.0 - row as f64 / (side - 1) as f64;
                grid_codes.push((x0 + fx * (x1 - x0)) as f32);
                grid_codes.push((y0 + fy * (y1 - y0)) as f32);
            }
        }
        let z = Tensor::<2>::from_data(TensorData::new(grid_codes, [side * side, 2]), &device);
        let manifold_path = out_dir.join("latent_manifold.png");
        save_grid_with_columns(
            model.decode_mean(z, None),
            dataset.shape(),
            side,
            &manifold_path,
        )?;
        written.push(manifold_path);
    }
    let stats = LatentStats {
        model: config.kind().to_string(),
        latent,
        images: n,
        mean_abs_mean: means.iter().map(|m| m.abs()).sum::<f64>() / latent as f64,
        mean_std: stds.iter().sum::<f64>() / latent as f64,
        plotted_variance,
    };
    crate::fsutil::write_json(&out_dir.join("latent_map.json"), &stats)?;
    crate::ui::say(&format!(
        "latent map of {n} test codes: mean |mean| {:.3}, mean std {:.3} (the prior: 0 and 1); wrote {}",
        stats.mean_abs_mean,
        stats.mean_std,
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(stats)
}
