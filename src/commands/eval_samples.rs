//! `latentlab eval-samples --real DATA --fake DIR|RUN`: how close generated images are to real
//! ones. FID, KID and precision/recall on Inception pool3 features (the numbers papers report), or
//! the same metrics on our classifier's features for quick loops (labelled `classifier_*`, never
//! FID). Real-set Inception features are cached in the data directory under a hash of the images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;

use crate::commands::DeviceArgs;
use crate::data::folder::{
    FolderOptions, load_image_files, save_image_files, save_image_files_from,
};
use crate::data::limit_split;
use crate::data::{DataSpec, Split, load_dataset};
use crate::error::{Error, Result};
use crate::eval::features::{Extractor, Features, fingerprint};
use crate::eval::fid::{FeatureStats, frechet_distance};
use crate::eval::kid::kid;
use crate::eval::precision_recall::precision_recall;
use crate::eval::samples::{ClassAccuracy, SampleMetrics, SideInfo};
use crate::fsutil::{data_dir, write_json};
use crate::models::inception::InceptionV3;
use crate::models::inception::default_weights_path;
use crate::run::Run;
use crate::sample::{Generative, PriorDraws, label_tensor};

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
    pub sampling: crate::commands::SamplingArgs,
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

/// The classifier that checks a conditional model's samples: how often it gives a sample the
/// class it was generated for, counted a chunk of samples at a time.
struct ClassJudge {
    path: PathBuf,
    model: crate::models::classifier::Classifier,
    classes: usize,
    /// `counts[intended][predicted]`.
    counts: Vec<Vec<usize>>,
}

impl ClassJudge {
    fn new(
        path: &Path,
        shape: crate::data::ImageShape,
        classes: usize,
        device: &Device,
    ) -> Result<Self> {
        let run = Run::open(path)?;
        let config = run.classifier_config()?;
        if config.classifier.shape != shape {
            return Err(Error::bad_input(format!(
                "{}: the classifier reads {} images, the samples are {shape}",
                path.display(),
                config.classifier.shape,
            )));
        }
        let width = classes.max(config.classifier.num_classes);
        Ok(Self {
            path: path.to_path_buf(),
            model: run.load_classifier(device)?,
            classes,
            counts: vec![vec![0; width]; width],
        })
    }

    /// Counts `samples`, labelled with the class each was generated for.
    fn judge(&mut self, samples: &Split, device: &Device) {
        let predictions = crate::eval::predict::predict(&self.model, samples, device);
        for (&intended, &predicted) in samples.labels.iter().zip(&predictions) {
            self.counts[intended as usize][predicted] += 1;
        }
    }

    fn accuracy(&self) -> ClassAccuracy {
        let counts = &self.counts;
        let per_class: Vec<f64> = (0..self.classes)
            .map(|c| counts[c][c] as f64 / counts[c].iter().sum::<usize>().max(1) as f64)
            .collect();
        let correct: usize = (0..self.classes).map(|c| counts[c][c]).sum();
        let total: usize = counts.iter().flatten().sum();
        ClassAccuracy {
            classifier: self.path.display().to_string(),
            overall: correct as f64 / total.max(1) as f64,
            per_class,
        }
    }
}

/// Samples at most: FID is measured on 10,000 to 50,000 of them, and every sample's features
/// are kept for precision/recall.
pub const MAX_SAMPLES: usize = 100_000;

pub fn run(args: &EvalSamplesArgs) -> Result<SampleMetrics> {
    if args.n < 2 {
        return Err(Error::bad_input("--n must be at least 2"));
    }
    if args.n > MAX_SAMPLES {
        return Err(Error::bad_input(format!(
            "--n {}: at most {MAX_SAMPLES} samples (FID is measured on 10,000-50,000)",
            args.n
        )));
    }
    let device = args.runtime.device.device()?;
    let log = |line: &str| args.runtime.log(line);
    let extractor = feature_extractor(args, &device)?;
    // A run's model is sampled; anything else is a folder of image files.
    let run = match Run::is_run(&args.fake) {
        true => Some(Run::open(&args.fake)?),
        false => None,
    };
    let model = match &run {
        Some(run) => Some(crate::kinds::generative(
            run,
            &device,
            &args.sampling.request()?,
        )?),
        None if !args.fake.exists() => {
            return Err(Error::bad_input(format!(
                "{}: no such folder",
                args.fake.display()
            )));
        }
        None => None,
    };
    let (real, real_source) = real_images(args, run.as_ref())?;
    if let Some(dir) = &args.save_images {
        save_image_files(&real, &dir.join("real"))?;
    }

    let started = Instant::now();
    let (real_features, cached) = real_features(args, &extractor, &real, &device)?;
    let seconds_real = started.elapsed().as_secs_f64();
    let classes = model.as_ref().map_or(0, |m| m.num_classes());
    let mut judge = match (&args.classifier, &model) {
        (Some(path), Some(model)) if classes > 0 => Some(ClassJudge::new(
            path,
            model.image_shape(),
            classes,
            &device,
        )?),
        _ => None,
    };
    let fake = match model.as_deref() {
        Some(model) => sample_features(args, model, &extractor, judge.as_mut(), &device)?,
        None => folder_features(args, &extractor, &device)?,
    };
    if let Some(dir) = &args.save_images {
        log(&format!(
            "images written to {}/real and {}/fake",
            dir.display(),
            dir.display()
        ));
    }
    let fake_features = fake.features;
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
    let metrics = SampleMetrics {
        features: extractor.name().to_string(),
        feature_dim: real_features.dim,
        real: SideInfo {
            source: real_source,
            n: real.len(),
        },
        fake: SideInfo {
            source: fake.source,
            n: fake_features.n,
        },
        fid: is_inception.then_some(distance),
        classifier_fd: (!is_inception).then_some(distance),
        kid,
        precision: pr.precision,
        recall: pr.recall,
        k: pr.k,
        seconds_real_features: seconds_real,
        seconds_fake_features: fake.seconds_features,
        seconds_generating: fake.seconds_generating,
        seconds_metrics: started.elapsed().as_secs_f64(),
        real_features_cached: cached,
        class_accuracy: judge.as_ref().map(ClassJudge::accuracy),
    };
    let out = args.out.clone().or_else(|| {
        run.is_some().then(|| {
            args.fake
                .join(format!("eval_samples_{}.json", metrics.features))
        })
    });
    if let Some(out) = &out {
        write_json(out, &metrics)?;
    }
    say_metrics(&metrics, distance, out.as_deref());
    Ok(metrics)
}

/// The network whose features are compared, as `--features` names it.
fn feature_extractor(args: &EvalSamplesArgs, device: &Device) -> Result<Extractor> {
    Ok(match args.features {
        FeatureNetwork::Classifier => {
            let run = args.classifier.as_ref().ok_or_else(|| {
                Error::bad_input("--features classifier needs --classifier RUN (a `latentlab train classifier` run)")
            })?;
            let run = Run::open(run)?;
            Extractor::Classifier {
                model: Box::new(run.load_classifier(device)?),
                shape: run.classifier_config()?.classifier.shape,
            }
        }
        FeatureNetwork::Inception => {
            let path = match &args.weights {
                Some(path) => path.clone(),
                None => default_weights_path()?,
            };
            Extractor::Inception(Box::new(InceptionV3::load(&path, device)?))
        }
    })
}

/// The real images' features, from the cache when Inception's were computed before.
fn real_features(
    args: &EvalSamplesArgs,
    extractor: &Extractor,
    real: &Split,
    device: &Device,
) -> Result<(Features, bool)> {
    let cache = match extractor {
        Extractor::Inception(_) => Some(data_dir()?.join("cache").join(format!(
            "inception-features-{:016x}.safetensors",
            fingerprint(real)
        ))),
        Extractor::Classifier { .. } => None,
    };
    Ok(
        match cache
            .as_ref()
            .filter(|p| p.is_file())
            .map(|p| Features::load(p))
        {
            Some(Ok(features)) if features.n == real.len() => (features, true),
            _ => {
                let features =
                    extractor.extract(real, device, "real images", args.runtime.quiet)?;
                if let Some(path) = &cache {
                    // A cache that cannot be written only costs time next run.
                    if let Err(e) = features.save(path) {
                        args.runtime
                            .log(&format!("note: real-set features not cached ({e})"));
                    }
                }
                (features, false)
            }
        },
    )
}

/// The metrics in one line (two with class accuracy), naming the distance for what it is.
fn say_metrics(metrics: &SampleMetrics, distance: f64, out: Option<&Path>) {
    let is_inception = metrics.fid.is_some();
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

/// What the generated side gave: its features and where the time went.
struct FakeSide {
    features: Features,
    source: String,
    seconds_generating: Option<f64>,
    seconds_features: f64,
}

/// A folder of image files: the first --n of them.
fn folder_features(
    args: &EvalSamplesArgs,
    extractor: &Extractor,
    device: &Device,
) -> Result<FakeSide> {
    let path = &args.fake;
    let fake = limit_split(&load_image_files(path)?, Some(args.n));
    if let Some(dir) = &args.save_images {
        save_image_files(&fake, &dir.join("fake"))?;
    }
    let started = Instant::now();
    let features = extractor.extract(&fake, device, "generated images", args.runtime.quiet)?;
    Ok(FakeSide {
        features,
        source: path.display().to_string(),
        seconds_generating: None,
        seconds_features: started.elapsed().as_secs_f64(),
    })
}

/// Samples of a run's model a chunk at a time, each chunk's features extracted (its images
/// written, its classes judged) and the images let go: memory holds one chunk of images
/// whatever --n is. Chunks of one seed are the rows of one draw of all, so the samples do not
/// depend on the chunk size.
fn sample_features(
    args: &EvalSamplesArgs,
    model: &dyn Generative,
    extractor: &Extractor,
    mut judge: Option<&mut ClassJudge>,
    device: &Device,
) -> Result<FakeSide> {
    const CHUNK: usize = 500;
    let shape = model.image_shape();
    let classes = model.num_classes();
    let mut draws = PriorDraws::new(model.latent(), args.runtime.seed);
    let labels = balanced_labels(args.n, classes);
    let bar = crate::ui::new_bar(Some(args.n as u64), args.runtime.quiet);
    bar.set_prefix("generated images");
    let (mut generating, mut extracting) = (0.0, 0.0);
    let mut values = Vec::new();
    let mut dim = 0;
    for start in (0..args.n).step_by(CHUNK) {
        let rows = CHUNK.min(args.n - start);
        let started = Instant::now();
        let z = draws.next(rows, device); // [rows, latent]
        let y = (classes > 0).then(|| label_tensor(&labels[start..start + rows], device));
        let images = model.generate(z, y); // [rows, c, h, w] in [0, 1]
        let chunk = Split::new(
            shape,
            quantize(images)?,
            labels[start..start + rows].to_vec(),
        );
        generating += started.elapsed().as_secs_f64();
        if let Some(dir) = &args.save_images {
            save_image_files_from(&chunk, &dir.join("fake"), start)?;
        }
        if let Some(judge) = judge.as_deref_mut() {
            judge.judge(&chunk, device);
        }
        let started = Instant::now();
        let features = extractor.extract(&chunk, device, "generated images", true)?;
        extracting += started.elapsed().as_secs_f64();
        dim = features.dim;
        values.extend(features.values);
        bar.inc(rows as u64);
    }
    bar.finish_and_clear();
    Ok(FakeSide {
        features: Features {
            n: args.n,
            dim,
            values,
        },
        source: format!(
            "{} samples of {} ({}{})",
            args.n,
            args.fake.display(),
            model.describe(),
            if classes > 0 {
                ", every class equally"
            } else {
                ""
            }
        ),
        seconds_generating: Some(generating),
        seconds_features: extracting,
    })
}
