//! `summary.json`: every number of the report's table, read back from the run folders the stages
//! wrote (nothing here is computed twice).

use std::path::Path;

use crate::edit::score::EditScores;
use crate::error::{Error, Result};
use crate::eval::LatentStats;
use crate::eval::elbo::EvalReport;
use crate::eval::samples::SampleMetrics;
use crate::pca::metrics::PcaMetrics;
use crate::tour::plan::TourOptions;
use crate::tour::plan::{
    CURVE_RUN, EDIT_JOBS, GANS, Recipe, diffusion_curve_json, edit_figure, edit_json, edit_methods,
    features,
};
use crate::tour::stage::StageOutcome;
use crate::train::metrics::read_rows;

/// One row of the report's table. Likelihoods in nats per image; MSE per pixel in [0, 1].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ModelRow {
    /// Folder under the tour's folder.
    pub folder: String,
    pub title: String,
    pub parameters: usize,
    /// How the parameters split (GANs: generator + discriminator).
    pub parameters_detail: Option<String>,
    /// Training (or fitting) time, summed over epochs; evaluation excluded.
    pub train_seconds: f64,
    pub test_mse: Option<f64>,
    pub neg_elbo: Option<f64>,
    pub recon: Option<f64>,
    pub kl: Option<f64>,
    pub iwae_nll: Option<f64>,
    pub iwae_k: Option<usize>,
    pub iwae_images: Option<usize>,
    /// Inception FID (as published).
    pub fid: Option<f64>,
    /// Fréchet distance on the tour classifier's features (not comparable with published FIDs).
    pub classifier_fd: Option<f64>,
    pub kid: Option<f64>,
    pub kid_std: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    /// Conditional models: how often the classifier gives a sample its intended class.
    pub class_accuracy: Option<f64>,
    pub samples_scored: Option<usize>,
}

/// Published numbers beside ours (paper budget).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub what: String,
    pub metric: String,
    pub value: f64,
    pub source: String,
    /// Our row it compares with, and our value.
    pub ours_folder: String,
    pub ours: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub budget: String,
    pub recipe: Recipe,
    pub dataset: String,
    pub train_images: usize,
    pub test_images: usize,
    pub device: String,
    pub seed: u64,
    /// `inception` or `classifier`: what the sample metrics were computed on.
    pub features: String,
    /// Wall-clock seconds of this invocation (skipped stages cost nothing).
    pub seconds: f64,
    pub stages: Vec<StageOutcome>,
    pub models: Vec<ModelRow>,
    pub classifier_accuracy: Option<f64>,
    pub pca: PcaFacts,
    /// How the 2-D autoencoder's and VAE's test codes spread (from `latent-map`).
    pub latent_maps: Vec<LatentStats>,
    /// The PatchGAN discriminator's logit grid side and the patch each logit sees, in pixels.
    pub patch_grid: usize,
    pub patch_size: usize,
    pub image_side: usize,
    pub published: Vec<Published>,
    /// The diffusion model's sample quality under each sampler, fewest steps first.
    pub diffusion_curve: Vec<SamplerPoint>,
    /// Every editing job: each method's scores.
    pub edits: Vec<EditSection>,
    /// The style transfer of two embedded photographs.
    pub style: crate::style::StyleReport,
    pub latentlab_version: String,
}

/// The diffusion model sampled one way: how close its samples come and what they cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SamplerPoint {
    /// `DDIM-10`, …, `DDPM-1000`.
    pub sampler: String,
    pub steps: usize,
    /// FID or classifier FD, as the tour's features give it.
    pub distance: Option<f64>,
    pub samples: usize,
    /// Seconds to generate 64 samples on the tour's device.
    pub seconds_per_64: Option<f64>,
}

/// One editing job of the tour: every method's `eval-edit` numbers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EditSection {
    pub name: String,
    pub title: String,
    /// The comparison figure, relative to the tour folder.
    pub figure: String,
    pub methods: Vec<EditRow>,
}

/// One method on one job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EditRow {
    pub method: String,
    pub scores: EditScores,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PcaFacts {
    pub k: usize,
    pub first_component_ratio: f64,
    pub components_for_90: Option<usize>,
    pub components_for_95: Option<usize>,
    /// Test MSE per pixel at each k the run measured.
    pub test_mse: Vec<(usize, f64)>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Internal(format!("{}: unexpected content: {e}", path.display())))
}

/// Parameters in a `model.safetensors`, batch norm's running statistics excluded, split by the
/// first part of the names (`generator`, `discriminator`, …).
pub fn count_parameters(path: &Path) -> Result<Vec<(String, usize)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bad_input(format!("{}: {e}", path.display())))?;
    let mut parts: Vec<(String, usize)> = Vec::new();
    for (name, view) in tensors.tensors() {
        if name.contains("running_") || name.ends_with("num_batches_tracked") {
            continue;
        }
        let group = name.split('.').next().unwrap_or("").to_string();
        let count: usize = view.shape().iter().product();
        match parts.iter_mut().find(|(g, _)| *g == group) {
            Some((_, total)) => *total += count,
            None => parts.push((group, count)),
        }
    }
    Ok(parts)
}

fn train_seconds(run: &Path) -> Result<f64> {
    Ok(read_rows(&run.join("metrics.jsonl"))?
        .iter()
        .map(|r| r.seconds)
        .sum())
}

fn trained_row(run: &Path, folder: &str, title: &str) -> Result<ModelRow> {
    let parts = count_parameters(&run.join("model.safetensors"))?;
    let mut parts = parts;
    // Generator first, as the lecture introduces them; the file's order is a hash map's.
    parts.sort_by(|a, b| b.0.cmp(&a.0));
    let detail = (parts.len() == 2 && parts.iter().any(|(g, _)| g == "generator")).then(|| {
        parts
            .iter()
            .map(|(g, n)| format!("{g} {}", crate::ui::thousands(*n)))
            .collect::<Vec<_>>()
            .join(" + ")
    });
    Ok(ModelRow {
        folder: folder.into(),
        title: title.into(),
        parameters: parts.iter().map(|(_, n)| n).sum(),
        parameters_detail: detail,
        train_seconds: train_seconds(run)?,
        ..Default::default()
    })
}

/// Latent diffusion's row: both stages' parameters and training time.
fn latent_diffusion_row(out: &Path, recipe: &Recipe, features: &str) -> Result<ModelRow> {
    let first = out.join("autoencoder-kl");
    let run = out.join("latent-diffusion");
    let first_stage = trained_row(&first, "autoencoder-kl", "")?;
    let mut row = trained_row(
        &run,
        "latent-diffusion",
        &format!(
            "latent diffusion (autoencoder-kl f = 4 of width {}, then a U-Net of width {} with \
             attention on its 4x8x8 codes, DDIM-50)",
            recipe.first_stage_width, recipe.latent_diffusion_width
        ),
    )?;
    row.parameters_detail = Some(format!(
        "first stage {} + U-Net {}",
        crate::ui::thousands(first_stage.parameters),
        crate::ui::thousands(row.parameters)
    ));
    row.parameters += first_stage.parameters;
    row.train_seconds += first_stage.train_seconds;
    add_sample_metrics(&mut row, &run, features)?;
    Ok(row)
}

fn add_sample_metrics(row: &mut ModelRow, run: &Path, features: &str) -> Result<()> {
    let metrics: SampleMetrics = read_json(&run.join(format!("eval_samples_{features}.json")))?;
    row.fid = metrics.fid;
    row.classifier_fd = metrics.classifier_fd;
    row.kid = Some(metrics.kid.mean);
    row.kid_std = Some(metrics.kid.std);
    row.precision = Some(metrics.precision);
    row.recall = Some(metrics.recall);
    row.class_accuracy = metrics.class_accuracy.map(|a| a.overall);
    row.samples_scored = Some(metrics.fake.n);
    Ok(())
}

fn add_eval(row: &mut ModelRow, run: &Path) -> Result<()> {
    let eval: EvalReport = read_json(&run.join("eval.json"))?;
    row.test_mse = Some(eval.reconstruction_mse);
    if eval.elbo.kl.is_some() {
        row.recon = Some(eval.elbo.recon);
        row.kl = eval.elbo.kl;
        row.neg_elbo = eval.elbo.neg_elbo;
    }
    if let Some(iwae) = eval.iwae {
        row.iwae_nll = Some(iwae.nll);
        row.iwae_k = Some(iwae.k);
        row.iwae_images = Some(iwae.images);
    }
    Ok(())
}

/// Reads every number of a finished tour.
pub fn collect(options: &TourOptions, outcomes: &[StageOutcome], seconds: f64) -> Result<Summary> {
    let out = &options.out;
    let features = features(options)?.to_string();
    let recipe = Recipe::of(options.budget);

    let pca: PcaMetrics = read_json(&out.join("pca/metrics.json"))?;
    let mut rows = vec![ModelRow {
        folder: "pca".into(),
        title: format!("PCA, k = {}", pca.k),
        // The mean image and k components.
        parameters: (pca.k + 1) * pca.dimensions,
        train_seconds: pca.fit_seconds,
        test_mse: pca.test_mse.get(&pca.k).copied(),
        ..Default::default()
    }];
    for (folder, title) in [
        ("ae", format!("autoencoder (MLP), z = {}", recipe.latent)),
        ("vae", format!("VAE (MLP), z = {}", recipe.latent)),
    ] {
        let run = out.join(folder);
        let mut row = trained_row(&run, folder, &title)?;
        add_eval(&mut row, &run)?;
        add_sample_metrics(&mut row, &run, &features)?;
        rows.push(row);
    }
    for (folder, title, _) in GANS {
        let run = out.join(folder);
        let mut row = trained_row(&run, folder, title)?;
        add_sample_metrics(&mut row, &run, &features)?;
        rows.push(row);
    }

    let run = out.join("diffusion");
    let mut row = trained_row(
        &run,
        "diffusion",
        &format!(
            "diffusion (U-Net of width {}, DDIM-50)",
            recipe.diffusion_width
        ),
    )?;
    add_sample_metrics(&mut row, &run, &features)?;
    rows.push(row);
    rows.push(latent_diffusion_row(out, &recipe, &features)?);
    let diffusion_curve = diffusion_curve(out, &recipe, &features)?;

    let config: serde_json::Value = read_json(&out.join("vae/config.json"))?;
    let dataset = &config["run"]["dataset"];
    let classifier_accuracy = read_rows(&out.join("classifier/metrics.jsonl"))?
        .last()
        .and_then(|r| r.test.get("accuracy").copied());

    let patchgan = crate::run::Run::open(&out.join("gan-patchgan"))?
        .gan_config()?
        .gan
        .clone();
    let layers = patchgan.patch_layers();
    let image_side = patchgan.shape.height.min(patchgan.shape.width);

    let published = if options.budget == crate::tour::plan::Budget::Paper && features == "inception"
    {
        published(&rows)
    } else {
        Vec::new()
    };
    Ok(Summary {
        budget: options.budget.name().into(),
        recipe,
        dataset: dataset["name"].as_str().unwrap_or("?").to_string(),
        train_images: dataset["train"].as_u64().unwrap_or(0) as usize,
        test_images: dataset["test"].as_u64().unwrap_or(0) as usize,
        device: options.device.clone(),
        seed: options.seed,
        features,
        seconds,
        stages: outcomes.to_vec(),
        models: rows,
        classifier_accuracy,
        pca: PcaFacts {
            k: pca.k,
            first_component_ratio: pca.explained_variance_ratio.first().copied().unwrap_or(0.0),
            components_for_90: pca.components_for_90,
            components_for_95: pca.components_for_95,
            test_mse: pca.test_mse.into_iter().collect(),
        },
        latent_maps: vec![
            read_json(&out.join("ae-2d/latent_map.json"))?,
            read_json(&out.join("vae-2d/latent_map.json"))?,
        ],
        patch_grid: crate::models::gan::patchgan::grid_side(image_side, layers),
        patch_size: crate::models::gan::patchgan::patch_size(layers),
        image_side,
        published,
        diffusion_curve,
        edits: edit_sections(out)?,
        style: read_json(&out.join("style/style.json"))?,
        latentlab_version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// [`CURVE_RUN`]'s sample metrics under each sampler the tour ran, fewest steps first.
fn diffusion_curve(out: &Path, recipe: &Recipe, features: &str) -> Result<Vec<SamplerPoint>> {
    let mut files: Vec<(String, usize, std::path::PathBuf)> = recipe
        .diffusion_curve
        .iter()
        .map(|&steps| {
            let json = diffusion_curve_json(&format!("ddim{steps}"), features);
            (format!("DDIM-{steps}"), steps, out.join(json))
        })
        .collect();
    files.push((
        "DDIM-50".into(),
        50,
        out.join(format!("{CURVE_RUN}/eval_samples_{features}.json")),
    ));
    if recipe.diffusion_ddpm {
        let json = diffusion_curve_json("ddpm", features);
        files.push(("DDPM-1000".into(), 1000, out.join(json)));
    }
    files.sort_by_key(|(_, steps, _)| *steps);
    files
        .into_iter()
        .map(|(sampler, steps, path)| {
            let metrics: SampleMetrics = read_json(&path)?;
            Ok(SamplerPoint {
                sampler,
                steps,
                distance: metrics.fid.or(metrics.classifier_fd),
                samples: metrics.fake.n,
                seconds_per_64: metrics
                    .seconds_generating
                    .map(|s| 64.0 * s / metrics.fake.n.max(1) as f64),
            })
        })
        .collect()
}

/// The `eval-edit` numbers of every job, in the report's order.
fn edit_sections(out: &Path) -> Result<Vec<EditSection>> {
    EDIT_JOBS
        .iter()
        .map(|job| {
            let methods = edit_methods(job)
                .into_iter()
                .map(|(method, _)| {
                    let path = out.join(edit_json(job.name, method));
                    Ok(EditRow {
                        method: method.into(),
                        scores: read_json(&path)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(EditSection {
                name: job.name.into(),
                title: job.title.into(),
                figure: edit_figure(job.name),
                methods,
            })
        })
        .collect()
}

/// Published Fashion-MNIST numbers the paper budget's protocols match, with their sources.
fn published(rows: &[ModelRow]) -> Vec<Published> {
    let ours = |folder: &str| rows.iter().find(|r| r.folder == folder).and_then(|r| r.fid);
    vec![
        Published {
            what: "NS GAN, best of a large hyper-parameter search, 20 epochs".into(),
            metric: "Inception FID".into(),
            value: 26.5,
            source: "Lucic et al. 2018, Are GANs Created Equal? A Large-Scale Study (NeurIPS)"
                .into(),
            ours_folder: "gan".into(),
            ours: ours("gan"),
        },
        Published {
            what: "VAE, Bernoulli (cross-entropy) decoder".into(),
            metric: "Inception FID".into(),
            value: 43.6,
            source: "Dai & Wipf 2019, Diagnosing and Enhancing VAE Models (ICLR), Table 1".into(),
            ours_folder: "vae".into(),
            ours: ours("vae"),
        },
    ]
}
