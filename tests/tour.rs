//! `latentlab tour` on its hidden seconds-long budget: the report's pictures exist and decode,
//! the table has a row per model, and a re-run skips what is finished.

mod common;

use std::path::Path;

use clap::Parser;
use common::{assert_bad_input, assert_success, latentlab, latentlab_with_env, temp_out};
use latentlab::tour::report::image_sources;
use latentlab::tour::{Budget, FidFeatures, TourOptions, plan};

fn stage_status(out: &Path) -> Vec<(String, String)> {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_smoke_tour_writes_a_complete_report_and_reruns_only_what_is_missing() {
    let out = temp_out("tour");
    let out_arg = out.to_str().unwrap();
    let tour = || latentlab(&["tour", "--budget", "smoke", "--out", out_arg, "--quiet"]);
    assert_success(&tour());

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let sources = image_sources(&html);
    assert!(sources.len() >= 19, "only {} images", sources.len());
    for source in &sources {
        assert!(
            !source.starts_with('/') && !source.contains("://"),
            "{source}"
        );
        let image = image::open(out.join(source))
            .unwrap_or_else(|e| panic!("{source}: {e}"))
            .to_rgb8();
        let first = image.get_pixel(0, 0);
        assert!(
            image.pixels().any(|p| p != first),
            "{source} is one flat colour"
        );
    }
    for section in [
        "1. PCA",
        "2. PCA versus a deep autoencoder",
        "3. Autoencoder latent space versus VAE latent space",
        "4. The VAE",
        "5. GANs",
        "6. Diffusion",
        "7. Editing images",
        "8. Every model",
    ] {
        assert!(html.contains(section), "no section {section}");
    }

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let models: Vec<&str> = summary["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["folder"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        [
            "pca",
            "ae",
            "vae",
            "gan",
            "gan-patchgan",
            "cgan",
            "diffusion",
            "latent-diffusion"
        ],
        "a row per model"
    );
    // Latent diffusion: its first stage pictured (image, code channels, decoding), its samples.
    for picture in [
        "autoencoder-kl/reconstructions.png",
        "latent-diffusion/samples.png",
    ] {
        assert!(sources.contains(&picture.to_string()), "{picture}");
    }
    assert!(html.contains("Diffusion in a learned latent space"));
    for model in summary["models"].as_array().unwrap() {
        let title = model["title"].as_str().unwrap();
        assert!(html.contains(&format!("<tr><td>{title}</td>")), "{title}");
        assert!(model["parameters"].as_u64().unwrap() > 0, "{title}");
        if model["folder"] != "pca" {
            assert!(model["classifier_fd"].as_f64().unwrap() >= 0.0, "{title}");
        }
    }
    assert!(summary["models"][2]["neg_elbo"].as_f64().unwrap() > 0.0);
    assert!(summary["models"][5]["class_accuracy"].as_f64().is_some());
    // Latent diffusion's quality against sampling steps: DDIM-10 and DDIM-50, each timed.
    assert!(
        out.join("latent-diffusion/eval_samples_classifier_ddim10.json")
            .is_file()
    );
    let curve = summary["diffusion_curve"].as_array().unwrap();
    let samplers: Vec<&str> = curve
        .iter()
        .map(|p| p["sampler"].as_str().unwrap())
        .collect();
    assert_eq!(samplers, ["DDIM-10", "DDIM-50"]);
    for point in curve {
        assert!(point["seconds_per_64"].as_f64().unwrap() > 0.0, "{point}");
        assert!(point["distance"].as_f64().unwrap() >= 0.0, "{point}");
    }
    // Every editing job, every method scored, the same images pictured for each.
    let edits = summary["edits"].as_array().unwrap();
    let jobs: Vec<&str> = edits.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        jobs,
        [
            "inpaint-center",
            "inpaint-free",
            "uncrop-left",
            "uncrop-bottom",
            "colorize",
            "superres-x4"
        ]
    );
    for job in edits {
        let methods = job["methods"].as_array().unwrap();
        assert!(methods.len() >= 6, "{job}");
        for method in methods {
            let scores = &method["scores"];
            assert!(scores["psnr_hole"].as_f64().unwrap() > 5.0, "{method}");
            assert_eq!(scores["n"].as_u64(), Some(16), "{method}");
        }
        assert!(sources.contains(&job["figure"].as_str().unwrap().to_string()));
        // RePaint, in latent diffusion's code space, on one job of each kind.
        let repaint = methods.iter().any(|m| m["method"] == "latent diffusion");
        let name = job["name"].as_str().unwrap();
        assert_eq!(
            repaint,
            ["inpaint-center", "uncrop-left"].contains(&name),
            "{name}"
        );
    }
    let first = stage_status(&out);
    assert!(first.iter().all(|(_, s)| s == "ran"), "{first:?}");

    // The same tour again: nothing to do.
    assert_success(&tour());
    let second = stage_status(&out);
    assert_eq!(second.len(), first.len());
    assert!(second.iter().all(|(_, s)| s == "skipped"), "{second:?}");

    // A lost output and a retrained model: only the stages they touch run again.
    std::fs::remove_file(out.join("vae/samples.png")).unwrap();
    std::fs::remove_file(out.join(".tour/train-gan.json")).unwrap();
    assert_success(&tour());
    let ran: Vec<String> = stage_status(&out)
        .into_iter()
        .filter(|(_, s)| s == "ran")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        ran,
        [
            "train-gan",
            "sample-vae",
            "sample-gan",
            "eval-samples-gan",
            "edit-inpaint-center-gan",
            "edit-inpaint-free-gan",
            "edit-uncrop-left-gan",
            "edit-uncrop-bottom-gan",
            "edit-superres-x4-gan",
        ],
        "only the missing stage and those that read the retrained GAN"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn tour_refuses_bad_options_in_one_line() {
    let output = latentlab(&["tour", "--budget", "huge"]);
    assert_bad_input(&output, "huge");
    let empty = temp_out("tour-no-weights");
    std::fs::create_dir_all(&empty).unwrap();
    let output = latentlab_with_env(
        &[
            "tour",
            "--fid",
            "inception",
            "--out",
            empty.to_str().unwrap(),
        ],
        &[("LATENTLAB_DATA_DIR", &empty)],
    );
    assert_bad_input(&output, "fid-weights");
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn every_stage_parses_as_a_command_line() {
    for budget in [
        Budget::Smoke,
        Budget::Quick,
        Budget::Standard,
        Budget::Paper,
    ] {
        let options = TourOptions {
            budget,
            data: None,
            out: "runs/tour".into(),
            device: "cpu".into(),
            seed: 0,
            fid: FidFeatures::Classifier,
            force: false,
            quiet: false,
        };
        let stages = plan(&options).unwrap();
        let mut names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), stages.len(), "stage names are unique");
        for stage in &stages {
            let argv = std::iter::once("latentlab".to_string()).chain(stage.args.clone());
            if let Err(e) = latentlab::cli::Cli::try_parse_from(argv) {
                panic!("{}: {e}", stage.command_line());
            }
            for input in &stage.inputs {
                assert!(names.contains(&input.as_str()), "{input} is a stage");
            }
        }
    }
}
