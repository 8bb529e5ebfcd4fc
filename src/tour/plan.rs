//! What a tour runs for each budget: the stages, as the command lines a user would type.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::tour::stage::Stage;

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

/// The sizes a budget trains at.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recipe {
    /// Dataset when `--data` is not given (`None`: the usual search, full Fashion-MNIST first).
    pub default_data: Option<&'static str>,
    /// Images per split (`--limit`).
    pub limit: Option<usize>,
    /// PCA's k and the autoencoder's and VAE's latent size, equal so the three compare.
    pub latent: usize,
    pub latent_epochs: usize,
    pub classifier_epochs: usize,
    /// `--conv-channels` and `--hidden` of the classifier; `None`: its defaults.
    pub classifier_widths: Option<(&'static str, &'static str)>,
    pub gan_epochs: usize,
    /// `--ngf` and `--ndf`.
    pub gan_width: usize,
    /// `--ndf` of the PatchGAN discriminator when it differs: its stride-1 layers make it the
    /// slowest of the three at equal width.
    pub patchgan_width: Option<usize>,
    /// `--batch-size` and `--lr` of the GANs; `None`: DCGAN's 128 and 2e-4.
    pub gan_batch_lr: Option<(usize, f64)>,
    /// The diffusion model: epochs and U-Net width.
    pub diffusion_epochs: usize,
    pub diffusion_width: usize,
    /// The samplers of its quality-against-steps curve beside the scored DDIM-50: `--steps`
    /// values, then DDPM's T steps when `diffusion_ddpm`.
    pub diffusion_curve: &'static [usize],
    pub diffusion_ddpm: bool,
    /// Generated images per model for FID/KID/precision/recall.
    pub samples: usize,
    /// Importance samples per image of the VAE's IWAE bound, and images scored.
    pub iwae_k: usize,
    pub iwae_images: Option<usize>,
    /// Test images each editing method is scored on.
    pub edit_images: usize,
    /// pix2pix: epochs and U-Net (and PatchGAN) width.
    pub pix2pix_epochs: usize,
    pub pix2pix_width: usize,
    /// Latent search of the zero-shot edits: Adam steps, and starting draws for a GAN.
    pub inversion_steps: usize,
    pub inversion_restarts: usize,
    /// Style transfer of the embedded photographs: the longer side, and Adam steps.
    pub style_size: u32,
    pub style_steps: usize,
}

impl Recipe {
    pub fn of(budget: Budget) -> Self {
        match budget {
            Budget::Smoke => Self {
                default_data: Some("embedded"),
                limit: Some(256),
                latent: 8,
                latent_epochs: 1,
                classifier_epochs: 1,
                classifier_widths: Some(("8,16", "16")),
                gan_epochs: 1,
                gan_width: 8,
                gan_batch_lr: Some((64, 5e-4)),
                patchgan_width: None,
                diffusion_epochs: 1,
                diffusion_width: 8,
                diffusion_curve: &[10],
                diffusion_ddpm: false,
                samples: 128,
                iwae_k: 4,
                iwae_images: Some(16),
                edit_images: 16,
                pix2pix_epochs: 1,
                pix2pix_width: 4,
                inversion_steps: 5,
                inversion_restarts: 1,
                style_size: 32,
                style_steps: 5,
            },
            Budget::Quick => Self {
                default_data: Some("embedded"),
                limit: None,
                latent: 20,
                latent_epochs: 10,
                classifier_epochs: 2,
                classifier_widths: Some(("32,64", "128")),
                // Narrow nets for many steps: 12 epochs at width 16 cost what 3 at 32 did (the
                // cost goes with the width squared) and draw recognisable garments, where 3 at 32
                // drew blobs; batch 64 at 5e-4 for more, larger steps.
                gan_epochs: 12,
                gan_width: 16,
                gan_batch_lr: Some((64, 5e-4)),
                // At 16 it took 72 s against the DCGAN D's 27 s.
                patchgan_width: Some(8),
                diffusion_epochs: 8,
                diffusion_width: 16,
                diffusion_curve: &[10, 20],
                diffusion_ddpm: false,
                samples: 2000,
                iwae_k: 100,
                iwae_images: Some(500),
                edit_images: 200,
                pix2pix_epochs: 3,
                pix2pix_width: 16,
                inversion_steps: 100,
                inversion_restarts: 2,
                style_size: 128,
                style_steps: 200,
            },
            Budget::Standard => Self {
                default_data: None,
                limit: None,
                latent: 20,
                latent_epochs: 10,
                classifier_epochs: 3,
                classifier_widths: Some(("32,64", "128")),
                gan_epochs: 3,
                gan_width: 32,
                gan_batch_lr: Some((64, 5e-4)),
                patchgan_width: Some(16),
                // Width 16: at 32 scoring DDIM-50 on 10,000 samples alone takes ~25 min.
                diffusion_epochs: 3,
                diffusion_width: 16,
                diffusion_curve: &[10, 20],
                diffusion_ddpm: false,
                samples: 10_000,
                iwae_k: 1000,
                iwae_images: Some(1000),
                edit_images: 1000,
                pix2pix_epochs: 5,
                pix2pix_width: 32,
                inversion_steps: 200,
                inversion_restarts: 4,
                style_size: 192,
                style_steps: 300,
            },
            Budget::Paper => Self {
                default_data: None,
                limit: None,
                latent: 20,
                latent_epochs: 10,
                classifier_epochs: 10,
                classifier_widths: None,
                gan_epochs: 20,
                gan_width: 64,
                gan_batch_lr: None,
                patchgan_width: None,
                diffusion_epochs: 20,
                diffusion_width: 64,
                diffusion_curve: &[10, 20, 100],
                diffusion_ddpm: true,
                samples: 10_000,
                iwae_k: 5000,
                iwae_images: None,
                edit_images: 10_000,
                pix2pix_epochs: 20,
                pix2pix_width: 64,
                inversion_steps: 200,
                inversion_restarts: 4,
                style_size: 256,
                style_steps: 500,
            },
        }
    }

    /// Training images per epoch, for the ETA: the embedded subset has 10,000, the full set 60,000.
    fn images_per_epoch(&self, data: Option<&str>) -> f64 {
        let full = match data {
            Some("embedded") => 10_000.0,
            _ => 60_000.0,
        };
        self.limit.map_or(full, |l| (l as f64).min(full))
    }
}

/// The GANs of a tour: folder name, title, extra `train gan` options.
pub const GANS: [(&str, &str, &[&str]); 3] = [
    ("gan", "DCGAN G + DCGAN D", &[]),
    (
        "gan-patchgan",
        "DCGAN G + PatchGAN D",
        &["--discriminator", "patchgan"],
    ),
    ("cgan", "conditional DCGAN", &["--conditional"]),
];

/// The autoencoders and VAEs of a tour: folder name, `train` model, latent size (0: the recipe's).
pub const LATENT_MODELS: [(&str, &str, usize); 4] = [
    ("ae", "ae", 0),
    ("vae", "vae", 0),
    ("ae-2d", "ae", 2),
    ("vae-2d", "vae", 2),
];

/// The generative runs whose samples are scored.
pub const SCORED: [&str; 6] = ["ae", "vae", "gan", "gan-patchgan", "cgan", "diffusion"];

/// Where the diffusion run's sample metrics under another sampler lie (`--steps N`, or
/// `ddpm`), relative to the tour folder.
pub fn diffusion_curve_json(sampler: &str, features: &str) -> String {
    format!("diffusion/eval_samples_{features}_{sampler}.json")
}

/// The diffusion model's forward passes per second on 2 cores at width 16 (batch 500), for the
/// estimates: the cost goes with the width squared.
fn diffusion_rate(width: usize) -> f64 {
    1400.0 * (16.0 / width as f64).powi(2)
}

/// An editing job of the tour: its folder under `edits/`, its title, the `eval-edit` flags that
/// choose it, and whether it needs colour images.
pub struct EditJob {
    pub name: &'static str,
    pub title: &'static str,
    pub flags: &'static [&'static str],
    pub colour: bool,
}

/// The editing jobs of a tour, in the report's order.
pub const EDIT_JOBS: [EditJob; 6] = [
    EditJob {
        name: "inpaint-center",
        title: "Inpainting, centre square",
        flags: &["--task", "inpaint", "--mask", "center"],
        colour: false,
    },
    EditJob {
        name: "inpaint-free",
        title: "Inpainting, free-form strokes",
        flags: &["--task", "inpaint", "--mask", "free"],
        colour: false,
    },
    EditJob {
        name: "uncrop-left",
        title: "Uncropping, left half",
        flags: &["--task", "uncrop", "--side", "left"],
        colour: false,
    },
    EditJob {
        name: "uncrop-bottom",
        title: "Uncropping, bottom half",
        flags: &["--task", "uncrop", "--side", "bottom"],
        colour: false,
    },
    EditJob {
        name: "colorize",
        title: "Colorization (embedded colour photographs)",
        flags: &["--task", "colorize"],
        colour: true,
    },
    EditJob {
        name: "superres-x4",
        title: "Super-resolution ×4 (from 7×7 block means)",
        flags: &["--task", "superres", "--scale", "4"],
        colour: false,
    },
];

/// Where a method's `eval-edit` JSON of a job lies, relative to the tour folder (its first
/// images beside it, in the folder of the same name).
pub fn edit_json(job: &str, method: &str) -> String {
    format!("edits/{job}/{}.json", method.replace(' ', "-"))
}

/// Where the comparison figure of an editing job goes, relative to the tour folder.
pub fn edit_figure(job: &str) -> String {
    format!("figures/edit-{job}.png")
}

/// The photographs the tour's style transfer uses (compiled in).
pub const STYLE_CONTENT: &str = "embedded:astronaut";
pub const STYLE_STYLE: &str = "embedded:retina";

/// The colour data colorization runs on, whatever the tour's data.
pub const COLOUR_DATA: &str = "embedded-rgb";

/// The methods an editing job is scored with: a name for tables, and `--with`'s value (a
/// method, or a folder of the tour holding a run).
pub fn edit_methods(job: &EditJob) -> Vec<(&'static str, &'static str)> {
    if job.name.starts_with("superres") {
        return vec![
            ("nearest", "nearest"),
            ("bicubic", "bicubic"),
            ("pca", "pca"),
            ("vae", "vae"),
            ("gan", "gan"),
            ("espcn", "espcn-x4"),
            ("espcn adv", "espcn-x4-patchgan"),
        ];
    }
    let mut methods = if job.colour {
        vec![
            ("gray", "gray"),
            ("mean", "mean"),
            ("nearest", "nearest"),
            ("pca", "pca"),
        ]
    } else {
        vec![("mean", "mean"), ("nearest", "nearest"), ("pca", "pca")]
    };
    match job.name {
        "colorize" => methods.extend([("vae", "vae-rgb"), ("pix2pix", "pix2pix-colorize")]),
        "inpaint-center" | "inpaint-free" => methods.extend([
            ("vae", "vae"),
            ("gan", "gan"),
            ("pix2pix L1", "pix2pix-inpaint-l1"),
            ("pix2pix", "pix2pix-inpaint"),
        ]),
        _ => methods.extend([
            ("vae", "vae"),
            ("gan", "gan"),
            ("pix2pix", "pix2pix-uncrop"),
        ]),
    }
    // RePaint costs ~130 ms an image: on one job of each kind.
    if ["inpaint-center", "uncrop-left"].contains(&job.name) {
        let after_gan = methods
            .iter()
            .position(|m| m.0 == "gan")
            .map_or(methods.len(), |i| i + 1);
        methods.insert(after_gan, ("diffusion", "diffusion"));
    }
    methods
}

/// The runs only the editing section trains: folder, `train` words, whether on colour data.
const EDIT_RUNS: [(&str, &[&str], bool); 8] = [
    ("pix2pix-inpaint", &["pix2pix", "--task", "inpaint"], false),
    (
        "pix2pix-inpaint-l1",
        &["pix2pix", "--task", "inpaint", "--discriminator", "none"],
        false,
    ),
    ("pix2pix-uncrop", &["pix2pix", "--task", "uncrop"], false),
    ("pix2pix-colorize", &["pix2pix", "--task", "colorize"], true),
    ("vae-rgb", &["vae", "--arch", "conv"], true),
    ("classifier-rgb", &["classifier"], true),
    ("espcn-x4", &["espcn", "--scale", "4"], false),
    (
        "espcn-x4-patchgan",
        &["espcn", "--scale", "4", "--discriminator", "patchgan"],
        false,
    ),
];

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

/// The stages of a tour, in the lecture's order, reports last.
pub fn plan(options: &TourOptions) -> Result<Vec<Stage>> {
    let recipe = Recipe::of(options.budget);
    let data = options.data.as_deref().or(recipe.default_data);
    let features = features(options)?;
    let out = |name: &str| options.out.join(name).to_string_lossy().into_owned();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let seed = options.seed.to_string();
    // Flags every command takes; `train` and `pca` also take the data's. (`--quiet` is added
    // when a stage runs: it changes no result, so it must not make a finished stage stale.)
    let common = s(&["--seed", &seed, "--device", &options.device]);
    let mut data_flags = Vec::new();
    if let Some(data) = data {
        data_flags.extend(s(&["--data", data]));
    }
    if let Some(limit) = recipe.limit {
        data_flags.extend(s(&["--limit", &limit.to_string()]));
    }
    let epoch_images = recipe.images_per_epoch(data);
    let mut stages = Vec::new();
    let mut add = |name: String,
                   args: Vec<String>,
                   outputs: Vec<String>,
                   inputs: Vec<String>,
                   estimate_seconds: f64| {
        stages.push(Stage {
            name,
            args,
            outputs,
            inputs,
            estimate_seconds,
        })
    };
    let outputs = |folder: &str, files: &[&str]| {
        files
            .iter()
            .map(|f| format!("{folder}/{f}"))
            .collect::<Vec<_>>()
    };

    // A command reading a run folder: its words, then the common flags.
    let reading = |words: &[&str]| [s(words), common.clone()].concat();
    // A command training into `folder`: its words, the output, the data, the common flags.
    let training = |words: Vec<String>, folder: &str| {
        let output = s(&["--out", &out(folder)]);
        [
            words,
            output,
            data_flags.clone(),
            common.clone(),
            s(&["--force"]),
        ]
        .concat()
    };

    // PCA has no --limit: it fits whatever data it is given, in a second.
    let mut pca = s(&[
        "pca",
        "--k",
        &recipe.latent.to_string(),
        "--out",
        &out("pca"),
    ]);
    if let Some(data) = data {
        pca.extend(s(&["--data", data]));
    }
    pca.extend(common.iter().cloned());
    pca.push("--force".into());
    add(
        "pca".into(),
        pca,
        outputs(
            "pca",
            &[
                "metrics.json",
                "pca.safetensors",
                "components.png",
                "reconstructions.png",
                "variance.png",
            ],
        ),
        vec![],
        3.0,
    );

    let trained = ["model.safetensors", "metrics.jsonl", "config.json"];
    for (folder, model, latent) in LATENT_MODELS {
        let latent = if latent == 0 { recipe.latent } else { latent };
        let args = training(
            s(&[
                "train",
                model,
                "--latent",
                &latent.to_string(),
                "--epochs",
                &recipe.latent_epochs.to_string(),
            ]),
            folder,
        );
        let images = epoch_images * recipe.latent_epochs as f64;
        add(
            format!("train-{folder}"),
            args,
            outputs(folder, &trained),
            vec![],
            images / 5000.0 + 2.0,
        );
    }

    let mut args = s(&["train", "classifier"]);
    args.extend(s(&["--epochs", &recipe.classifier_epochs.to_string()]));
    let classifier_rate = if let Some((channels, hidden)) = recipe.classifier_widths {
        args.extend(s(&["--conv-channels", channels, "--hidden", hidden]));
        500.0
    } else {
        230.0
    };
    add(
        "train-classifier".into(),
        training(args, "classifier"),
        outputs("classifier", &trained),
        vec![],
        epoch_images * recipe.classifier_epochs as f64 / classifier_rate + 2.0,
    );

    // DCGAN cost grows with the square of the width: ~120 images/s at 64 on 2 cores.
    let gan_rate = 120.0 * (64.0 / recipe.gan_width as f64).powi(2);
    for (folder, _, extra) in GANS {
        let mut args = s(&["train", "gan"]);
        args.extend(s(extra));
        let width = recipe.gan_width.to_string();
        let d_width = match recipe.patchgan_width {
            Some(w) if folder == "gan-patchgan" => w.to_string(),
            _ => width.clone(),
        };
        args.extend(s(&["--epochs", &recipe.gan_epochs.to_string()]));
        args.extend(s(&["--ngf", &width, "--ndf", &d_width]));
        if let Some((batch, lr)) = recipe.gan_batch_lr {
            args.extend(s(&[
                "--batch-size",
                &batch.to_string(),
                "--lr",
                &lr.to_string(),
            ]));
        }
        add(
            format!("train-{folder}"),
            training(args, folder),
            outputs(folder, &["model.safetensors", "metrics.jsonl", "steps.png"]),
            vec![],
            epoch_images * recipe.gan_epochs as f64 / gan_rate + 2.0,
        );
    }

    // The diffusion model: ~4 forward passes' cost per training image.
    let width = recipe.diffusion_width.to_string();
    let args = s(&[
        "train",
        "diffusion",
        "--width",
        &width,
        "--epochs",
        &recipe.diffusion_epochs.to_string(),
    ]);
    add(
        "train-diffusion".into(),
        training(args, "diffusion"),
        outputs("diffusion", &trained),
        vec![],
        epoch_images * recipe.diffusion_epochs as f64 * 4.0
            / diffusion_rate(recipe.diffusion_width)
            + 5.0,
    );

    // Pictures from the trained models.
    for folder in SCORED {
        add(
            format!("sample-{folder}"),
            reading(&["sample", &out(folder)]),
            match folder {
                "diffusion" => outputs(folder, &["samples.png", "samples_denoising.png"]),
                _ => outputs(folder, &["samples.png"]),
            },
            vec![format!("train-{folder}")],
            2.0,
        );
    }
    add(
        "interpolate-vae".into(),
        reading(&["interpolate", &out("vae")]),
        outputs("vae", &["interpolation.png", "interpolation_prior.png"]),
        vec!["train-vae".into()],
        2.0,
    );
    for folder in ["ae-2d", "vae-2d"] {
        add(
            format!("latent-map-{folder}"),
            reading(&["latent-map", &out(folder)]),
            outputs(
                folder,
                &["latent_map.png", "latent_manifold.png", "latent_map.json"],
            ),
            vec![format!("train-{folder}")],
            3.0,
        );
    }

    // Numbers.
    add(
        "eval-ae".into(),
        reading(&["eval", &out("ae")]),
        outputs("ae", &["eval.json"]),
        vec!["train-ae".into()],
        3.0,
    );
    let mut args = s(&["eval", &out("vae"), "--k", &recipe.iwae_k.to_string()]);
    if let Some(images) = recipe.iwae_images {
        args.extend(s(&["--limit", &images.to_string()]));
    }
    args.extend(common.iter().cloned());
    let iwae_images = recipe.iwae_images.map_or(10_000.0, |n| n as f64);
    add(
        "eval-vae".into(),
        args,
        outputs("vae", &["eval.json"]),
        vec!["train-vae".into()],
        3.0 + iwae_images * recipe.iwae_k as f64 * 2e-5,
    );
    let kid_subset = recipe.samples.min(1000).to_string();
    for folder in SCORED {
        let mut args = s(&["eval-samples", "--fake", &out(folder)]);
        args.extend(s(&[
            "--n",
            &recipe.samples.to_string(),
            "--features",
            features,
        ]));
        let mut inputs = vec![format!("train-{folder}")];
        if features == "classifier" || folder == "cgan" {
            args.extend(s(&["--classifier", &out("classifier")]));
            inputs.push("train-classifier".into());
        }
        args.extend(s(&["--kid-subset-size", &kid_subset]));
        args.extend(common.iter().cloned());
        let rate = if features == "inception" { 3.0 } else { 2000.0 };
        let generating = match folder {
            // DDIM-50 by default.
            "diffusion" => 50.0 * recipe.samples as f64 / diffusion_rate(recipe.diffusion_width),
            _ => 0.0,
        };
        add(
            format!("eval-samples-{folder}"),
            args,
            outputs(folder, &[&format!("eval_samples_{features}.json")]),
            inputs,
            5.0 + recipe.samples as f64 / rate + generating,
        );
    }
    // Diffusion's quality against its sampling steps (DDIM-50 is scored above).
    let mut samplers: Vec<(String, Vec<String>, usize)> = recipe
        .diffusion_curve
        .iter()
        .map(|&steps| {
            let flags = s(&["--steps", &steps.to_string()]);
            (format!("ddim{steps}"), flags, steps)
        })
        .collect();
    if recipe.diffusion_ddpm {
        samplers.push(("ddpm".into(), s(&["--sampler", "ddpm"]), 1000));
    }
    for (name, flags, steps) in samplers {
        // DDPM's 1,000 steps on a tenth of the samples.
        let n = if steps >= 1000 {
            (recipe.samples / 10).max(100)
        } else {
            recipe.samples
        };
        let json = diffusion_curve_json(&name, features);
        let mut args = s(&["eval-samples", "--fake", &out("diffusion")]);
        args.extend(flags);
        args.extend(s(&["--n", &n.to_string(), "--features", features]));
        let mut inputs = vec!["train-diffusion".to_string()];
        if features == "classifier" {
            args.extend(s(&["--classifier", &out("classifier")]));
            inputs.push("train-classifier".into());
        }
        args.extend(s(&["--kid-subset-size", &n.min(1000).to_string()]));
        args.extend(s(&["--out", &out(&json)]));
        args.extend(common.iter().cloned());
        add(
            format!("eval-samples-diffusion-{name}"),
            args,
            vec![json],
            inputs,
            5.0 + (steps * n) as f64 / diffusion_rate(recipe.diffusion_width),
        );
    }

    // Editing images: the runs only editing needs, then every method on every job.
    let p2p_width = recipe.pix2pix_width.to_string();
    let p2p_ndf = (recipe.pix2pix_width / 2).max(1).to_string();
    for (folder, words, colour) in EDIT_RUNS {
        let mut args = s(&["train"]);
        args.extend(s(words));
        let rgb_images = 1849.0;
        let (epochs, rate) = match folder {
            "vae-rgb" => (recipe.latent_epochs, 800.0),
            "classifier-rgb" => {
                if let Some((channels, hidden)) = recipe.classifier_widths {
                    args.extend(s(&["--conv-channels", channels, "--hidden", hidden]));
                }
                (recipe.latent_epochs, 400.0)
            }
            // Convolutions at 7×7 only: four times pix2pix's epochs cost a fraction of its time.
            "espcn-x4" => {
                args.extend(s(&["--batch-size", "64"]));
                (4 * recipe.pix2pix_epochs, 7000.0)
            }
            "espcn-x4-patchgan" => {
                args.extend(s(&["--ndf", &p2p_ndf, "--batch-size", "64"]));
                (
                    recipe.pix2pix_epochs,
                    1800.0 * (8.0 / (recipe.pix2pix_width / 2).max(1) as f64),
                )
            }
            _ => {
                // The PatchGAN at half the U-Net's width: at equal width its stride-1 layers
                // cost more than the U-Net itself.
                args.extend(s(&["--width", &p2p_width, "--ndf", &p2p_ndf]));
                // Few epochs: smaller batches make more steps of them.
                args.extend(s(&["--batch-size", "64"]));
                let rate = if folder.ends_with("-l1") {
                    1500.0
                } else {
                    400.0
                };
                (
                    recipe.pix2pix_epochs,
                    rate * (16.0 / recipe.pix2pix_width as f64).powi(2),
                )
            }
        };
        args.extend(s(&["--epochs", &epochs.to_string(), "--out", &out(folder)]));
        if colour {
            args.extend(s(&["--data", COLOUR_DATA]));
        } else {
            args.extend(data_flags.clone());
        }
        args.extend(common.iter().cloned());
        args.push("--force".into());
        let images = if colour { rgb_images } else { epoch_images };
        add(
            format!("train-{folder}"),
            args,
            outputs(folder, &trained),
            vec![],
            images * epochs as f64 / rate + 2.0,
        );
    }
    for job in &EDIT_JOBS {
        for (method, with) in edit_methods(job) {
            let run = !["gray", "mean", "nearest", "bicubic", "pca"].contains(&with);
            let json = edit_json(job.name, method);
            let mut args = s(&["eval-edit"]);
            args.extend(s(job.flags));
            let with_value = if run { out(with) } else { with.to_string() };
            args.extend(s(&["--with", &with_value]));
            let classifier = if job.colour {
                "classifier-rgb"
            } else {
                "classifier"
            };
            args.extend(s(&[
                "--classifier",
                &out(classifier),
                "--n",
                &recipe.edit_images.to_string(),
                "--steps",
                &recipe.inversion_steps.to_string(),
                "--restarts",
                &recipe.inversion_restarts.to_string(),
                "--save-edited",
                "8",
                "--out",
                &out(&json),
            ]));
            if job.colour {
                args.extend(s(&["--data", COLOUR_DATA]));
            } else if let Some(data) = data {
                args.extend(s(&["--data", data]));
            }
            args.extend(common.iter().cloned());
            let mut inputs = vec![format!("train-{classifier}")];
            if run {
                inputs.push(format!("train-{with}"));
            }
            // Seconds per image: a GAN's search runs a quarter of its generator steps × restarts
            // times, then the rest once.
            let gan_steps = recipe.inversion_steps * recipe.inversion_restarts / 4
                + recipe.inversion_steps * 3 / 4;
            let repaint = crate::edit::repaint::RePaintSettings::default();
            let per_image = match with {
                "gan" => 2e-4 * gan_steps as f64,
                "diffusion" => {
                    (repaint.steps * repaint.resamples) as f64
                        / diffusion_rate(recipe.diffusion_width)
                }
                "vae" | "vae-rgb" => 5e-5 * recipe.inversion_steps as f64,
                "nearest" => 2e-3,
                _ => 5e-4,
            };
            add(
                format!("edit-{}-{}", job.name, method.replace(' ', "-")),
                args,
                vec![json.clone()],
                inputs,
                2.0 + per_image * recipe.edit_images as f64,
            );
        }
    }
    // Style transfer: one embedded photograph in the style of another.
    let mut args = s(&[
        "style",
        "--content",
        STYLE_CONTENT,
        "--style",
        STYLE_STYLE,
        "--size",
        &recipe.style_size.to_string(),
        "--steps",
        &recipe.style_steps.to_string(),
        "--out",
        &out("style"),
    ]);
    args.extend(common.iter().cloned());
    args.push("--force".into());
    // About 40 ms a step at 128 px on 2 cores, growing with the pixels.
    let pixels = (recipe.style_size as f64 / 128.0).powi(2);
    add(
        "style".into(),
        args,
        vec!["style/style.json".into()],
        vec![],
        1.0 + 0.04 * pixels * recipe.style_steps as f64,
    );
    Ok(stages)
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
