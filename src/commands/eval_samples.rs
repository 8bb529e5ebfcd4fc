//! `latentlab eval-samples --real DATA --fake DIR|RUN`: how close generated images are to real
//! ones. FID, KID and precision/recall on Inception pool3 features (the numbers papers report), or
//! the same metrics on our classifier's features for quick loops (labelled `classifier_*`, never
//! FID). Real-set Inception features are cached in the data directory under a hash of the images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;

use crate::commands::DeviceArgs;
use crate::commands::fid_weights::default_weights_path;
use crate::data::folder::{FolderOptions, load_image_files, save_image_files};
use crate::data::limit_split;
use crate::data::{DataSpec, Split, load_dataset};
use crate::error::{Error, Result};
use crate::eval::features::{Extractor, Features, fingerprint};
use crate::eval::fid::{FeatureStats, frechet_distance};
use crate::eval::kid::{Kid, kid};
use crate::eval::precision_recall::precision_recall;
use crate::fsutil::{data_dir, write_json};
use crate::models::inception::InceptionV3;
use crate::run::Run;
use crate::sample::{Generative, SamplingArgs, label_tensor, prior_noise};

#[derive(Debug, Clone, clap::Args)]
pub struct EvalSamplesArgs {
    /// Real images: a dataset as `--data` takes it (IDX, CIFAR-10, class folders, `embedded`), or
    /// a folder of image files [default: the data a --fake run was trained on, else the usual
    /// search, so full Fashion-MNIST when installed].
    #[arg(long, value_name = "DATA")]
    pub real: Option<String>,
    /// Which split of a real dataset.
    #[arg(long, value_enum, default_value = "test")]
    pub real_split: RealSplit,
    /// Generated images: a run folder (its model is sampled) or a folder of image files.
    #[arg(long, value_name = "DIR|RUN")]
    pub fake: PathBuf,
    /// Images on each side: the first n real images, n samples of a run, the first n files.
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// Feature network: inception (FID as published) or classifier (a trained `train classifier`
    /// run, fast, not comparable with published numbers).
    #[arg(long, value_enum, default_value = "inception")]
    pub features: FeatureNetwork,
    /// The classifier run for `--features classifier`, and for the per-class accuracy of a
    /// conditional model's samples.
    #[arg(long, value_name = "RUN")]
    pub classifier: Option<PathBuf>,
    /// Inception weights [default: written there by `latentlab fid-weights`].
    #[arg(long, value_name = "PATH")]
    pub weights: Option<PathBuf>,
    /// KID: number of random subsets.
    #[arg(long, default_value_t = 100)]
    pub kid_subsets: usize,
    /// KID: images per subset (at most n).
    #[arg(long, default_value_t = 1000)]
    pub kid_subset_size: usize,
    /// Precision/recall: the k of the k-NN radii.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// Also write the features used (`real.safetensors`, `fake.safetensors`, `[n, dim]`) here.
    #[arg(long, value_name = "DIR")]
    pub save_features: Option<PathBuf>,
    /// Also write the images used as PNG files (`real/`, `fake/`) here, for other tools.
    #[arg(long, value_name = "DIR")]
    pub save_images: Option<PathBuf>,
    /// Output JSON [default: RUN/eval_samples_<features>.json when --fake is a run].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub runtime: DeviceArgs,
}

/// Which split of a real dataset `--real` compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RealSplit {
    Test,
    Train,
}

/// The network whose features the metrics compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FeatureNetwork {
    /// The TF-FID InceptionV3: FID as published.
    Inception,
    /// A trained `train classifier` run: fast, not comparable with published numbers.
    Classifier,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SideInfo {
    pub source: String,
    pub n: usize,
}

/// What `eval-samples` writes. `fid` only with Inception features; `classifier_fd` with the
/// classifier's, so the two are never mistaken for each other.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SampleMetrics {
    pub features: String,
    pub feature_dim: usize,
    pub real: SideInfo,
    pub fake: SideInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier_fd: Option<f64>,
    pub kid: Kid,
    pub precision: f64,
    pub recall: f64,
    pub k: usize,
    pub seconds_real_features: f64,
    pub seconds_fake_features: f64,
    /// Seconds the run's model spent generating the fake images (absent for image folders).
    #[serde(default)]
    pub seconds_generating: Option<f64>,
    pub seconds_metrics: f64,
    pub real_features_cached: bool,
    /// Conditional GAN or VAE with `--classifier`: how often our classifier gives a sample the
    /// class it was generated for, overall and per class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_accuracy: Option<ClassAccuracy>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClassAccuracy {
    pub classifier: String,
    pub overall: f64,
    pub per_class: Vec<f64>,
}

/// The share of `samples` (labelled with the class they were generated for) that the classifier
/// run assigns to that class, overall and per class.
fn class_accuracy(
    classifier: &Path,
    samples: &Split,
    classes: usize,
    device: &Device,
) -> Result<ClassAccuracy> {
    let run = Run::open(classifier)?;
    let config = run.classifier_config()?;
    let model = run.load_classifier(device)?;
    if config.classifier.shape != samples.shape {
        return Err(Error::bad_input(format!(
            "{}: the classifier reads {} images, the samples are {}",
            classifier.display(),
            config.classifier.shape,
            samples.shape
        )));
    }
    let predictions = crate::eval::predict::predict(&model, samples, device);
    let counts = crate::eval::predict::confusion(
        &samples.labels,
        &predictions,
        classes.max(config.classifier.num_classes),
    );
    let per_class: Vec<f64> = (0..classes)
        .map(|c| counts[c][c] as f64 / counts[c].iter().sum::<usize>().max(1) as f64)
        .collect();
    let correct: usize = (0..classes).map(|c| counts[c][c]).sum();
    Ok(ClassAccuracy {
        classifier: classifier.display().to_string(),
        overall: correct as f64 / samples.len().max(1) as f64,
        per_class,
    })
}

pub fn run(args: &EvalSamplesArgs) -> Result<SampleMetrics> {
    if args.n < 2 {
        return Err(Error::bad_input("--n must be at least 2"));
    }
    let device = args.runtime.device.device()?;
    let log = |line: &str| args.runtime.log(line);
    let extractor = match args.features {
        FeatureNetwork::Classifier => {
            let run = args.classifier.as_ref().ok_or_else(|| {
                Error::bad_input("--features classifier needs --classifier RUN (a `latentlab train classifier` run)")
            })?;
            let run = Run::open(run)?;
            Extractor::Classifier {
                model: Box::new(run.load_classifier(&device)?),
                shape: run.classifier_config()?.classifier.shape,
            }
        }
        FeatureNetwork::Inception => {
            let path = match &args.weights {
                Some(path) => path.clone(),
                None => default_weights_path()?,
            };
            Extractor::Inception(Box::new(InceptionV3::load(&path, &device)?))
        }
    };
    // A run's model is sampled; anything else is a folder of image files.
    let run = match Run::is_run(&args.fake) {
        true => Some(Run::open(&args.fake)?),
        false => None,
    };
    let model = match &run {
        Some(run) => Some(run.load_generative(&device, &args.sampling)?),
        None => None,
    };
    let (real, real_source) = real_images(args, run.as_ref())?;
    let started = Instant::now();
    let (fake, fake_source) = fake_images(args, model.as_deref(), &device)?;
    let seconds_generating = model.is_some().then(|| started.elapsed().as_secs_f64());
    if let Some(dir) = &args.save_images {
        save_image_files(&real, &dir.join("real"))?;
        save_image_files(&fake, &dir.join("fake"))?;
        log(&format!(
            "images written to {}/real and {}/fake",
            dir.display(),
            dir.display()
        ));
    }

    let started = Instant::now();
    let cache = match extractor {
        Extractor::Inception(_) => Some(data_dir()?.join("cache").join(format!(
            "inception-features-{:016x}.safetensors",
            fingerprint(&real)
        ))),
        Extractor::Classifier { .. } => None,
    };
    let (real_features, cached) = match cache
        .as_ref()
        .filter(|p| p.is_file())
        .map(|p| Features::load(p))
    {
        Some(Ok(features)) if features.n == real.len() => (features, true),
        _ => {
            let features = extractor.extract(&real, &device, "real images", args.runtime.quiet)?;
            if let Some(path) = &cache {
                // A cache that cannot be written only costs time next run.
                if let Err(e) = features.save(path) {
                    log(&format!("note: real-set features not cached ({e})"));
                }
            }
            (features, false)
        }
    };
    let seconds_real = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let fake_features =
        extractor.extract(&fake, &device, "generated images", args.runtime.quiet)?;
    let seconds_fake = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.save_features {
        real_features.save(&dir.join("real.safetensors"))?;
        fake_features.save(&dir.join("fake.safetensors"))?;
    }

    let started = Instant::now();
    let distance = frechet_distance(
        &FeatureStats::of(&real_features)?,
        &FeatureStats::of(&fake_features)?,
    )?;
    let kid = kid(
        &real_features,
        &fake_features,
        args.kid_subsets,
        args.kid_subset_size,
        args.runtime.seed,
    )?;
    let pr = precision_recall(&real_features, &fake_features, args.k)?;
    let is_inception = matches!(extractor, Extractor::Inception(_));
    let mut metrics = SampleMetrics {
        features: extractor.name().to_string(),
        feature_dim: real_features.dim,
        real: SideInfo {
            source: real_source,
            n: real.len(),
        },
        fake: SideInfo {
            source: fake_source,
            n: fake.len(),
        },
        fid: is_inception.then_some(distance),
        classifier_fd: (!is_inception).then_some(distance),
        kid,
        precision: pr.precision,
        recall: pr.recall,
        k: pr.k,
        seconds_real_features: seconds_real,
        seconds_fake_features: seconds_fake,
        seconds_generating,
        seconds_metrics: started.elapsed().as_secs_f64(),
        real_features_cached: cached,
        class_accuracy: None,
    };
    let classes = model.as_ref().map_or(0, |m| m.num_classes());
    if let Some(classifier) = &args.classifier
        && classes > 0
    {
        metrics.class_accuracy = Some(class_accuracy(classifier, &fake, classes, &device)?);
    }
    let out = args.out.clone().or_else(|| {
        run.is_some().then(|| {
            args.fake
                .join(format!("eval_samples_{}.json", metrics.features))
        })
    });
    if let Some(out) = &out {
        write_json(out, &metrics)?;
    }
    let name = if is_inception {
        "FID"
    } else {
        "classifier-feature FD (not FID)"
    };
    crate::ui::say(&format!(
        "{name} {distance:.3}  KID {:.5} ± {:.5}  precision {:.3}  recall {:.3}  ({} real vs {} generated){}",
        metrics.kid.mean,
        metrics.kid.std,
        metrics.precision,
        metrics.recall,
        metrics.real.n,
        metrics.fake.n,
        out.map(|o| format!("  → {}", o.display()))
            .unwrap_or_default()
    ));
    if let Some(accuracy) = &metrics.class_accuracy {
        crate::ui::say(&format!(
            "class accuracy of the samples under {}: {:.2} % (per class: {})",
            accuracy.classifier,
            100.0 * accuracy.overall,
            accuracy
                .per_class
                .iter()
                .map(|a| format!("{:.1}", 100.0 * a))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(metrics)
}

fn has_image_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).any(|e| {
            e.path().extension().is_some_and(|x| {
                ["png", "jpg", "jpeg", "bmp"].contains(&x.to_string_lossy().to_lowercase().as_str())
            })
        })
    })
}

/// Labels 0, 1, …, classes - 1, 0, 1, … for `n` samples: a conditional model draws every class
/// equally often. All 0 for an unconditional one.
fn balanced_labels(n: usize, classes: usize) -> Vec<u8> {
    (0..n).map(|i| (i % classes.max(1)) as u8).collect()
}

/// Images in [0, 1] `[n, c, h, w]` as bytes, quantized as a PNG of them would be, so a folder of
/// saved samples scores the same.
fn quantize(images: Tensor<4>) -> Result<Vec<u8>> {
    let values = images
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Internal(format!("reading samples: {e:?}")))?;
    Ok(values
        .into_iter()
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect())
}

fn real_images(args: &EvalSamplesArgs, run: Option<&Run>) -> Result<(Split, String)> {
    if let Some(path) = args
        .real
        .as_deref()
        .map(Path::new)
        .filter(|p| has_image_files(p))
    {
        let split = load_image_files(path)?;
        return Ok((
            limit_split(&split, Some(args.n)),
            path.display().to_string(),
        ));
    }
    let dataset = match (&args.real, run) {
        (None, Some(run)) => run.load_data()?,
        _ => load_dataset(
            &DataSpec::from_arg(args.real.as_deref()),
            FolderOptions::default(),
        )?,
    };
    let split = if args.real_split == RealSplit::Train {
        &dataset.train
    } else {
        &dataset.test
    };
    Ok((
        limit_split(split, Some(args.n)),
        format!(
            "{} ({} split)",
            dataset.name,
            match args.real_split {
                RealSplit::Test => "test",
                RealSplit::Train => "train",
            }
        ),
    ))
}

fn fake_images(
    args: &EvalSamplesArgs,
    model: Option<&dyn Generative>,
    device: &Device,
) -> Result<(Split, String)> {
    let path = &args.fake;
    if !path.exists() {
        return Err(Error::bad_input(format!(
            "{}: no such folder",
            path.display()
        )));
    }
    let Some(model) = model else {
        let split = load_image_files(path)?;
        return Ok((
            limit_split(&split, Some(args.n)),
            path.display().to_string(),
        ));
    };
    const CHUNK: usize = 500;
    let shape = model.image_shape();
    let classes = model.num_classes();
    let z = prior_noise(args.n, model.latent(), args.runtime.seed, device); // [n, latent]
    let labels = balanced_labels(args.n, classes);
    let mut pixels = Vec::with_capacity(args.n * shape.len());
    for start in (0..args.n).step_by(CHUNK) {
        let rows = CHUNK.min(args.n - start);
        let y = (classes > 0).then(|| label_tensor(&labels[start..start + rows], device));
        let images = model.generate(z.clone().narrow(0, start, rows), y); // [rows, c, h, w] in [0, 1]
        pixels.extend(quantize(images)?);
    }
    Ok((
        Split::new(shape, pixels, labels),
        format!(
            "{} samples of {} ({}{})",
            args.n,
            path.display(),
            model.describe(),
            if classes > 0 {
                ", every class equally"
            } else {
                ""
            }
        ),
    ))
}
