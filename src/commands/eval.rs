//! `latentlab eval RUN`: test-set numbers of a trained autoencoder or VAE, as JSON: reconstruction
//! error, the ELBO in its two parts, and for a VAE the importance-weighted NLL (Burda et al. 2016)
//! with `--k` samples per image, in nats and bits per dimension. For latent diffusion's first
//! stage (an autoencoder-kl run), what its reconstructions keep (`eval::reconstruction`).

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use indicatif::ProgressStyle;

use crate::commands::run_args::RunArgs;
use crate::data::limit_split;
use crate::data::{BatchConfig, Batches, PixelScale};
use crate::error::{Error, Result};
use crate::eval::elbo::{ElboParts, EvalReport, IwaeResult};
use crate::eval::elbo::{binarize, bits_per_dim, iwae_nll};
use crate::models::LatentModel;
use crate::models::likelihood::Likelihood;
use crate::rng::{mix, stream};
use crate::run::Run;
use crate::train::trainer::PendingParts;

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Importance samples per image for the IWAE bound (VAEs only); 0 skips it.
    #[arg(long, default_value_t = 5000)]
    pub k: usize,
    /// Evaluate the first N test images only [default: all].
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output JSON [default: RUN/eval.json]; the same JSON goes to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Autoencoder-kl runs: a `latentlab train classifier` run whose accuracy on the
    /// reconstructions and Fréchet distance of its features (reconstructions against
    /// originals) join the JSON.
    #[arg(long, value_name = "RUN")]
    pub classifier: Option<PathBuf>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if args.limit == Some(0) {
        return Err(Error::bad_input("--limit must be at least 1"));
    }
    let run = Run::open(&args.run.run)?;
    if run.autoencoder_kl_config().is_ok() {
        return first_stage(args, &run);
    }
    if let Some(path) = &args.classifier {
        return Err(Error::bad_input(format!(
            "--classifier {}: scores an autoencoder-kl's reconstructions; {} is {}",
            path.display(),
            run.path.display(),
            run.config.model.a_run()
        )));
    }
    latent(args).map(|_| ())
}

/// An autoencoder-kl run's reconstructions of the test set, scored.
fn first_stage(args: &EvalArgs, run: &Run) -> Result<()> {
    let device = args.run.runtime.device.device()?;
    let model = run.load_autoencoder_kl(&device)?;
    let classifier = match &args.classifier {
        Some(path) => {
            let judge = Run::open(path)?;
            let expected = judge.classifier_config()?.classifier.shape;
            let shape = run.autoencoder_kl_config()?.autoencoder.shape;
            if expected != shape {
                return Err(Error::bad_input(format!(
                    "--classifier {}: takes images of {expected}, the run's are {shape}",
                    path.display()
                )));
            }
            Some((path.display().to_string(), judge.load_classifier(&device)?))
        }
        None => None,
    };
    let dataset = run.load_data()?;
    let test = limit_split(&dataset.test, args.limit);
    args.run.log(&format!(
        "evaluating autoencoder-kl {} on {} test images of {}",
        run.path.display(),
        test.len(),
        dataset.name
    ));
    let report = crate::eval::reconstruction::evaluate(
        &model,
        &dataset.name,
        &test,
        classifier,
        &device,
        args.run.runtime.quiet,
    )?;
    let out = args.run.out_path(&args.out, "eval.json");
    crate::fsutil::write_json(&out, &report)?;
    crate::ui::say(
        &serde_json::to_string_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(())
}

/// An autoencoder's or VAE's numbers (the module's doc).
fn latent(args: &EvalArgs) -> Result<EvalReport> {
    let (folder, model, device) = args.run.open()?;
    let dataset = folder.load_data()?;
    let test = limit_split(&dataset.test, args.limit);
    let n = test.len();
    let shape = dataset.shape();
    let batches = |split| {
        Batches::new(
            split,
            BatchConfig::in_order(500, PixelScale::ZeroOne),
            &device,
        )
    };
    args.run.log(&format!(
        "evaluating {} {} on {n} test images of {}",
        folder.latent_config()?.model.kind(),
        folder.path.display(),
        dataset.name
    ));

    let mut pending = PendingParts::default();
    for batch in batches(&test) {
        let count = batch.images.dims()[0];
        let labels = model.condition(&batch.labels);
        let objective = model.objective(batch.images.clone(), labels.clone());
        let recon = model.decode_mean(
            model.encode_mean(batch.images.clone(), labels.clone()),
            labels,
        );
        let mut parts = objective.parts;
        parts.push(("mse", (recon - batch.images).powi_scalar(2).mean()));
        pending.push(count, parts);
    }
    let test_means = pending.means();
    let get = |name: &str| test_means.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let kl = get("kl");
    let recon = get("recon").expect("every model reports recon");
    let elbo = ElboParts {
        recon,
        kl,
        neg_elbo: kl.map(|kl| recon + kl),
    };

    let likelihood = match &model {
        LatentModel::Ae(m) => m.head.likelihood,
        LatentModel::Vae(m) => m.head.likelihood,
    };
    let iwae = match (&model, args.k) {
        (LatentModel::Vae(vae), k) if k > 0 => {
            let bernoulli = likelihood == Likelihood::Bernoulli;
            let pixels: Vec<f32> = test.pixels.iter().map(|&p| p as f32 / 255.0).collect();
            let data = if bernoulli {
                binarize(&pixels, args.run.runtime.seed)
            } else {
                pixels
            };
            // Images run in parallel, a few at a time so the bar moves.
            let per_pass = 8;
            let seed = args.run.runtime.seed;
            let bar = crate::ui::new_bar(Some(n as u64), args.run.runtime.quiet);
            bar.set_style(
                ProgressStyle::with_template(
                    "IWAE k={msg} [{bar:25}] {pos}/{len} images, eta {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_message(k.to_string());
            let started = Instant::now();
            let mut nll_sum = 0.0;
            let mut elbo_sum = 0.0;
            for (i, chunk) in data.chunks(per_pass * shape.len()).enumerate() {
                let count = chunk.len() / shape.len();
                let first = i * per_pass;
                let images = Tensor::<4>::from_data(
                    TensorData::new(
                        chunk.to_vec(),
                        [count, shape.channels, shape.height, shape.width],
                    ),
                    &device,
                );
                device.seed(mix(seed, stream::EVAL, i as u64));
                let labels = (vae.num_classes > 0).then(|| &test.labels[first..first + count]);
                let label_tensor = labels.map(|l| {
                    let values: Vec<i64> = l.iter().map(|&c| c as i64).collect();
                    Tensor::<1, Int>::from_data(TensorData::new(values, [count]), &device)
                });
                let (loss, _) = vae.loss(images.clone(), label_tensor);
                elbo_sum += (loss.reconstruction + loss.kl).sum().into_scalar::<f32>() as f64;
                let seeds = |j: usize| mix(seed, stream::SAMPLE, (first + j) as u64);
                nll_sum += iwae_nll(vae, images, labels, k, 2500, seeds)
                    .iter()
                    .sum::<f64>();
                bar.inc(count as u64);
            }
            bar.finish_and_clear();
            let nll = nll_sum / n as f64;
            let dims = shape.len();
            // Pixels are k/255: the density at them times the bin width 1/255 approximates the
            // probability of the bin (adding D·ln 255). An approximation, not a bound: a
            // discretized likelihood would integrate the density over each bin.
            let discrete_nll = if bernoulli {
                nll
            } else {
                nll + dims as f64 * 255f64.ln()
            };
            Some(IwaeResult {
                k,
                nll,
                bits_per_dim: bits_per_dim(discrete_nll, dims),
                neg_elbo_same_data: elbo_sum / n as f64,
                data: if bernoulli {
                    format!(
                        "test images dynamically binarized (seed {})",
                        args.run.runtime.seed
                    )
                } else {
                    "test intensities k/255 (a density; bits_per_dim adds D·ln 255: the density at the \
                     pixel values times the bin width, an approximation, not a bound)"
                        .into()
                },
                seconds: started.elapsed().as_secs_f64(),
                images: n,
            })
        }
        _ => None,
    };
    let report = EvalReport {
        model: folder.latent_config()?.model.kind().to_string(),
        likelihood: likelihood.to_string(),
        dataset: dataset.name.clone(),
        test_images: n,
        conditional_on_labels: model.num_classes() > 0,
        reconstruction_mse: get("mse").expect("measured above"),
        elbo,
        iwae,
    };
    let out = args.run.out_path(&args.out, "eval.json");
    crate::fsutil::write_json(&out, &report)?;
    crate::ui::say(
        &serde_json::to_string_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(report)
}
