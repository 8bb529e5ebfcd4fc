//! Pictures and numbers of the trained models: samples, interpolations, latent maps, likelihoods
//! and sample metrics, and diffusion's quality against its sampling steps.

use super::{Planner, diffusion_rate, latent_diffusion_rate, outputs, words};

/// The generative runs whose samples are scored.
pub const SCORED: [&str; 7] = [
    "ae",
    "vae",
    "gan",
    "gan-patchgan",
    "cgan",
    "diffusion",
    "latent-diffusion",
];

/// The run whose quality against sampling steps the tour measures: latent diffusion, whose
/// steps cost a twelfth of the pixel model's.
pub const CURVE_RUN: &str = "latent-diffusion";

/// Where [`CURVE_RUN`]'s sample metrics under another sampler lie (`--steps N`, or `ddpm`),
/// relative to the tour folder.
pub fn diffusion_curve_json(sampler: &str, features: &str) -> String {
    format!("{CURVE_RUN}/eval_samples_{features}_{sampler}.json")
}

/// Pictures from the trained models: samples, an interpolation, the 2-D latent maps.
pub(super) fn pictures(p: &mut Planner) {
    for folder in SCORED {
        p.add(
            format!("sample-{folder}"),
            p.reading(&["sample", &p.out(folder)]),
            match folder {
                "diffusion" => outputs(folder, &["samples.png", "samples_denoising.png"]),
                _ => outputs(folder, &["samples.png"]),
            },
            vec![format!("train-{folder}")],
            2.0,
        );
    }
    p.add(
        "interpolate-vae".into(),
        p.reading(&["interpolate", &p.out("vae")]),
        outputs("vae", &["interpolation.png", "interpolation_prior.png"]),
        vec!["train-vae".into()],
        2.0,
    );
    for folder in ["ae-2d", "vae-2d"] {
        p.add(
            format!("latent-map-{folder}"),
            p.reading(&["latent-map", &p.out(folder)]),
            outputs(
                folder,
                &["latent_map.png", "latent_manifold.png", "latent_map.json"],
            ),
            vec![format!("train-{folder}")],
            3.0,
        );
    }
}

/// Numbers: the autoencoder's and VAE's likelihoods, every generative run's sample metrics.
pub(super) fn numbers(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let features = p.features;
    let common = p.common.clone();
    p.add(
        "eval-ae".into(),
        p.reading(&["eval", &p.out("ae")]),
        outputs("ae", &["eval.json"]),
        vec!["train-ae".into()],
        3.0,
    );
    let mut args = words(&["eval", &p.out("vae"), "--k", &recipe.iwae_k.to_string()]);
    if let Some(images) = recipe.iwae_images {
        args.extend(words(&["--limit", &images.to_string()]));
    }
    args.extend(common.iter().cloned());
    let iwae_images = recipe.iwae_images.map_or(10_000.0, |n| n as f64);
    p.add(
        "eval-vae".into(),
        args,
        outputs("vae", &["eval.json"]),
        vec!["train-vae".into()],
        3.0 + iwae_images * recipe.iwae_k as f64 * 2e-5,
    );
    let kid_subset = recipe.samples.min(1000).to_string();
    for folder in SCORED {
        let mut args = words(&["eval-samples", "--fake", &p.out(folder)]);
        args.extend(words(&[
            "--n",
            &recipe.samples.to_string(),
            "--features",
            features,
        ]));
        let mut inputs = vec![format!("train-{folder}")];
        if features == "classifier" || folder == "cgan" {
            args.extend(words(&["--classifier", &p.out("classifier")]));
            inputs.push("train-classifier".into());
        }
        args.extend(words(&["--kid-subset-size", &kid_subset]));
        args.extend(common.iter().cloned());
        let rate = if features == "inception" { 3.0 } else { 2000.0 };
        let generating = match folder {
            // DDIM-50 by default.
            "diffusion" => 50.0 * recipe.samples as f64 / diffusion_rate(recipe.diffusion_width),
            // 12x fewer positions, and the decoder.
            "latent-diffusion" => {
                50.0 * recipe.samples as f64 / latent_diffusion_rate(recipe.latent_diffusion_width)
                    + 5.0
            }
            _ => 0.0,
        };
        p.add(
            format!("eval-samples-{folder}"),
            args,
            outputs(folder, &[&format!("eval_samples_{features}.json")]),
            inputs,
            5.0 + recipe.samples as f64 / rate + generating,
        );
    }
}

/// [`CURVE_RUN`]'s quality against its sampling steps (DDIM-50 is scored in [`numbers`]).
pub(super) fn diffusion_curve(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let features = p.features;
    let common = p.common.clone();
    let mut samplers: Vec<(String, Vec<String>, usize)> = recipe
        .diffusion_curve
        .iter()
        .map(|&steps| {
            let flags = words(&["--steps", &steps.to_string()]);
            (format!("ddim{steps}"), flags, steps)
        })
        .collect();
    if recipe.diffusion_ddpm {
        samplers.push(("ddpm".into(), words(&["--sampler", "ddpm"]), 1000));
    }
    for (name, flags, steps) in samplers {
        // DDPM's 1,000 steps on a tenth of the samples.
        let n = if steps >= 1000 {
            (recipe.samples / 10).max(100)
        } else {
            recipe.samples
        };
        let json = diffusion_curve_json(&name, features);
        let mut args = words(&["eval-samples", "--fake", &p.out(CURVE_RUN)]);
        args.extend(flags);
        args.extend(words(&["--n", &n.to_string(), "--features", features]));
        let mut inputs = vec![format!("train-{CURVE_RUN}")];
        if features == "classifier" {
            args.extend(words(&["--classifier", &p.out("classifier")]));
            inputs.push("train-classifier".into());
        }
        args.extend(words(&["--kid-subset-size", &n.min(1000).to_string()]));
        args.extend(words(&["--out", &p.out(&json)]));
        args.extend(common.iter().cloned());
        p.add(
            format!("eval-samples-{CURVE_RUN}-{name}"),
            args,
            vec![json],
            inputs,
            5.0 + (steps * n) as f64 / latent_diffusion_rate(recipe.latent_diffusion_width),
        );
    }
}
