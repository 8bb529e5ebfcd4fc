//! What a tour runs for each budget: the stages, as the command lines a user would type, planned
//! section by section as the report (`report.rs`) reads: the models (`models.rs`), their
//! pictures and numbers (`scores.rs`), editing and style (`edits.rs`); the sizes per budget in
//! `recipe.rs`.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::tour::stage::Stage;

mod edits;
mod models;
mod recipe;
mod scores;

pub use edits::{
    COLOUR_DATA, EDIT_JOBS, EditJob, STYLE_CONTENT, STYLE_STYLE, edit_figure, edit_json,
    edit_methods,
};
pub use models::{GANS, LATENT_MODELS};
pub use recipe::Recipe;
pub use scores::{CURVE_RUN, SCORED, diffusion_curve_json};

/// How much a tour trains and measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    /// Minutes on a 2-core CPU, on the embedded subset unless `--data` says otherwise.
    Quick,
    /// Full Fashion-MNIST when installed; about an hour on a 2-core CPU.
    Standard,
    /// The published protocols: the pytorch/examples VAE recipe, 20-epoch DCGANs, FID on 10,000
    /// samples. Hours on a CPU; meant for a GPU.
    Paper,
    /// Seconds: the test suite's tour (256 images, one epoch, tiny networks).
    #[value(hide = true)]
    Smoke,
}

impl Budget {
    pub fn name(self) -> &'static str {
        match self {
            Budget::Quick => "quick",
            Budget::Standard => "standard",
            Budget::Paper => "paper",
            Budget::Smoke => "smoke",
        }
    }
}

/// Which features the sample-quality metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FidFeatures {
    /// Inception for the paper budget when its weights are installed, else the tour's classifier.
    Auto,
    /// Inception FID as published (3 images/s on a 2-core CPU).
    Inception,
    /// The tour's own classifier: seconds, but not comparable with published numbers.
    Classifier,
}

/// Everything a tour needs to know.
#[derive(Debug, Clone)]
pub struct TourOptions {
    pub budget: Budget,
    pub data: Option<String>,
    pub out: PathBuf,
    pub device: String,
    pub seed: u64,
    pub fid: FidFeatures,
    pub force: bool,
    pub quiet: bool,
}

/// The features the metrics use under `options`: `inception` or `classifier`.
pub fn features(options: &TourOptions) -> Result<&'static str> {
    let weights_present =
        || crate::models::inception::default_weights_path().is_ok_and(|path| path.is_file());
    Ok(match options.fid {
        FidFeatures::Inception => {
            if !weights_present() {
                return Err(Error::bad_input(
                    "--fid inception: the Inception weights are not installed; run `latentlab fid-weights` once",
                ));
            }
            "inception"
        }
        FidFeatures::Classifier => "classifier",
        FidFeatures::Auto if options.budget == Budget::Paper && weights_present() => "inception",
        FidFeatures::Auto => "classifier",
    })
}

/// The diffusion model's forward passes per second on 2 cores at width 16 (batch 500), for the
/// estimates: the cost goes with the width squared.
fn diffusion_rate(width: usize) -> f64 {
    1400.0 * (16.0 / width as f64).powi(2)
}

/// The same for latent diffusion's U-Net: an 8x8 code has 12x fewer positions than a 28 px
/// image (the quick tour measured DDIM-50 on 2,000 codes at width 32 in 21 s, the pixel
/// model's at width 16 in 62 s).
fn latent_diffusion_rate(width: usize) -> f64 {
    12.0 * diffusion_rate(width)
}

/// What a training stage leaves in its folder.
const TRAINED: [&str; 3] = ["model.safetensors", "metrics.jsonl", "config.json"];

/// `words` as owned arguments.
fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|a| a.to_string()).collect()
}

/// `files` inside `folder`.
fn outputs(folder: &str, files: &[&str]) -> Vec<String> {
    files.iter().map(|f| format!("{folder}/{f}")).collect()
}

/// The stages planned so far, and what every stage's command line shares.
struct Planner<'a> {
    options: &'a TourOptions,
    recipe: Recipe,
    /// `--data` of the stages that take the tour's data.
    data: Option<&'a str>,
    /// `inception` or `classifier`.
    features: &'static str,
    /// Flags every command takes; `train` and `pca` also take the data's. (`--quiet` is added
    /// when a stage runs: it changes no result, so it must not make a finished stage stale.)
    common: Vec<String>,
    data_flags: Vec<String>,
    /// Training images per epoch, for the estimates.
    epoch_images: f64,
    stages: Vec<Stage>,
}

impl<'a> Planner<'a> {
    fn new(options: &'a TourOptions) -> Result<Self> {
        let recipe = Recipe::of(options.budget);
        let data = options.data.as_deref().or(recipe.default_data);
        let mut data_flags = Vec::new();
        if let Some(data) = data {
            data_flags.extend(words(&["--data", data]));
        }
        if let Some(limit) = recipe.limit {
            data_flags.extend(words(&["--limit", &limit.to_string()]));
        }
        Ok(Self {
            options,
            data,
            features: features(options)?,
            common: words(&[
                "--seed",
                &options.seed.to_string(),
                "--device",
                &options.device,
            ]),
            data_flags,
            epoch_images: recipe.images_per_epoch(data),
            recipe,
            stages: Vec::new(),
        })
    }

    /// `name` inside the tour's folder.
    fn out(&self, name: &str) -> String {
        self.options.out.join(name).to_string_lossy().into_owned()
    }

    fn add(
        &mut self,
        name: String,
        args: Vec<String>,
        outputs: Vec<String>,
        inputs: Vec<String>,
        estimate_seconds: f64,
    ) {
        self.stages.push(Stage {
            name,
            args,
            outputs,
            inputs,
            estimate_seconds,
        })
    }

    /// A command reading a run folder: its words, then the common flags.
    fn reading(&self, command: &[&str]) -> Vec<String> {
        [words(command), self.common.clone()].concat()
    }

    /// A command training into `folder`: its words, the output, the data, the common flags.
    fn training(&self, command: Vec<String>, folder: &str) -> Vec<String> {
        [
            command,
            words(&["--out", &self.out(folder)]),
            self.data_flags.clone(),
            self.common.clone(),
            words(&["--force"]),
        ]
        .concat()
    }
}

/// The stages of a tour, in the lecture's order (as the report's sections), reports last.
pub fn plan(options: &TourOptions) -> Result<Vec<Stage>> {
    let mut p = Planner::new(options)?;
    models::pca(&mut p);
    models::latent_models(&mut p);
    models::classifier(&mut p);
    models::gans(&mut p);
    models::diffusion(&mut p);
    models::latent_diffusion(&mut p);
    scores::pictures(&mut p);
    scores::numbers(&mut p);
    scores::diffusion_curve(&mut p);
    edits::edit_runs(&mut p);
    edits::edit_scores(&mut p);
    edits::style(&mut p);
    Ok(p.stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(budget: Budget) -> TourOptions {
        TourOptions {
            budget,
            data: None,
            out: PathBuf::from("runs/tour"),
            device: "cpu".into(),
            seed: 0,
            fid: FidFeatures::Classifier,
            force: false,
            quiet: false,
        }
    }

    #[test]
    fn quick_uses_the_embedded_subset_unless_told_otherwise() {
        let stages = plan(&options(Budget::Quick)).unwrap();
        let train_vae = stages.iter().find(|s| s.name == "train-vae").unwrap();
        assert!(train_vae.command_line().contains("--data embedded"));
        let mut elsewhere = options(Budget::Quick);
        elsewhere.data = Some("/data/mnist".into());
        let stages = plan(&elsewhere).unwrap();
        let train_vae = stages.iter().find(|s| s.name == "train-vae").unwrap();
        assert!(train_vae.command_line().contains("--data /data/mnist"));
        let standard = plan(&options(Budget::Standard)).unwrap();
        assert!(!standard[1].command_line().contains("--data"));
    }
}
