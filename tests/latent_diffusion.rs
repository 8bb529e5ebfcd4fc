//! Latent diffusion end to end on the embedded data: a first stage (autoencoder-kl) trains and
//! records its latent scale; a diffusion run on its codes resumes to the same weights, copies
//! the first stage into itself, and samples images of the data's shape through the decoder;
//! `--latent-of` anything but a usable autoencoder-kl run gets one line.

mod common;

use std::path::Path;

use common::{
    assert_bad_input, assert_success, latentlab, png_size, serial, temp_out, train_args, weights,
};
use latentlab::commands::train::run_with;
use latentlab::train::Outcome;
use latentlab::train::metrics::read_all;

/// A tiny first stage on 96 images: f = 4, width 8, one epoch.
fn first_stage(out: &Path) {
    run_with(
        &train_args(&[
            "autoencoder-kl",
            "--data",
            "embedded",
            "--limit",
            "96",
            "--batch-size",
            "32",
            "--width",
            "8",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]),
        None,
    )
    .unwrap();
}

/// A tiny conditional latent diffusion run with attention on `stage`'s 4x8x8 codes.
fn latent_args(stage: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "diffusion",
        "--latent-of",
        stage.to_str().unwrap(),
        "--data",
        "embedded",
        "--limit",
        "96",
        "--batch-size",
        "32",
        "--width",
        "8",
        "--levels",
        "1",
        "--attention",
        "4",
        "--heads",
        "2",
        "--timesteps",
        "50",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn train(args: &[String], stop_after: Option<u64>) -> Outcome {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_with(&train_args(&args), stop_after).unwrap().outcome
}

#[test]
fn the_first_stage_records_its_latent_scale() {
    let _serial = serial();
    let stage = temp_out("ldm-stage-scale");
    first_stage(&stage);
    let text = std::fs::read_to_string(stage.join("latent_scale.json")).unwrap();
    let scale: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (factor, std) = (
        scale["scale"].as_f64().unwrap(),
        scale["std"].as_f64().unwrap(),
    );
    assert!((factor * std - 1.0).abs() < 1e-9, "{text}");
    // Measured on the first 1024 training images, of which --limit 96 leaves 96.
    assert_eq!(scale["images"], 96);
    let run = latentlab::run::Run::open(&stage).unwrap();
    assert_eq!(run.latent_scale().unwrap().scale, factor);

    // `eval` scores its reconstructions.
    let json = stage.join("eval-limited.json");
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", stage.to_str().unwrap(), "--limit", "20", "--quiet"];
        args.extend(extra);
        latentlab(&args)
    };
    assert_success(&eval(&["--out", json.to_str().unwrap()]));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["model"], "autoencoder-kl");
    assert_eq!(report["test_images"], 20);
    assert_eq!(report["latent"], "4x8x8");
    let psnr = report["psnr_db"].as_f64().unwrap();
    assert!(psnr > 5.0 && psnr < 58.9, "{report}");
    assert!(report.get("classifier").is_none(), "{report}");
    // A classifier of other images is refused before anything is loaded.
    let classifier = stage.join("classifier-rgb");
    std::fs::create_dir_all(&classifier).unwrap();
    std::fs::write(
        classifier.join("config.json"),
        include_str!("../src/run/fixtures/current-classifier-rgb.json"),
    )
    .unwrap();
    assert_bad_input(
        &eval(&["--classifier", classifier.to_str().unwrap()]),
        "takes images of",
    );
    std::fs::remove_dir_all(&stage).unwrap();
}

#[test]
fn an_interrupted_latent_diffusion_run_resumes_exactly_and_samples_images() {
    let _serial = serial();
    let stage = temp_out("ldm-stage");
    first_stage(&stage);
    let extra = ["--conditional", "--epochs", "2"];
    let straight = temp_out("ldm-straight");
    train(&latent_args(&stage, &straight, &extra), None);
    let interrupted = temp_out("ldm-interrupted");
    let outcome = train(&latent_args(&stage, &interrupted, &extra), Some(4));
    assert!(matches!(outcome, Outcome::Interrupted { .. }));
    run_with(
        &train_args(&["--resume", interrupted.to_str().unwrap(), "--quiet"]),
        None,
    )
    .unwrap();
    assert!(weights(&straight) == weights(&interrupted), "EMA differs");
    let losses = |run: &Path| {
        let (rows, _) = read_all(&run.join("metrics.jsonl")).unwrap();
        rows.iter()
            .map(|r| (r.train["loss"], r.test["loss"]))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&straight), losses(&interrupted));
    // The first stage is frozen: the run's copy holds the source's weights.
    let copy = straight.join("first_stage.safetensors");
    let copy_dir = temp_out("ldm-stage-copy");
    std::fs::create_dir_all(&copy_dir).unwrap();
    std::fs::copy(&copy, copy_dir.join("model.safetensors")).unwrap();
    assert!(
        weights(&copy_dir) == weights(&stage),
        "the first stage moved"
    );
    std::fs::remove_dir_all(&copy_dir).unwrap();
    // The run samples without the source run: decoded images of the data's 28 px.
    std::fs::remove_dir_all(&stage).unwrap();
    let out = straight.join("s.png");
    let stdout = assert_success(&latentlab(&[
        "sample",
        straight.to_str().unwrap(),
        "--steps",
        "5",
        "--class",
        "3",
        "--n",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(stdout.contains("autoencoder-kl codes"), "{stdout}");
    // 8 images of 28 px, drawn 2x2 in 8 columns with 2-px gutters.
    assert_eq!(png_size(&out), (8 * 56 + 9 * 2, 56 + 2 * 2));
    // Epoch pictures are decoded images too: one row per class, 8 columns.
    assert_eq!(
        png_size(&straight.join("samples/epoch_002.png")),
        (8 * 56 + 9 * 2, 10 * 56 + 11 * 2)
    );
    // Slerp between x_T draws, one class per row: DDIM at η = 0 makes the walk repeatable.
    let walk = |dir: &str| {
        let out = straight.join(dir);
        assert_success(&latentlab(&[
            "interpolate",
            straight.to_str().unwrap(),
            "--pairs",
            "3",
            "--steps",
            "4",
            "--ddim-steps",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]));
        assert!(
            !out.join("interpolation.png").exists(),
            "no encoder: no test pairs"
        );
        std::fs::read(out.join("interpolation_prior.png")).unwrap()
    };
    let first = walk("walk1");
    assert_eq!(
        png_size(&straight.join("walk1/interpolation_prior.png")),
        (4 * 56 + 5 * 2, 3 * 56 + 4 * 2)
    );
    assert!(first == walk("walk2"), "the same seed walked another path");
    // RePaint in the latent space: masks only, visible pixels exact after the composite.
    let edit = |task: &[&str]| {
        let mut args = task.to_vec();
        args.extend([
            "--with",
            straight.to_str().unwrap(),
            "--data",
            "embedded",
            "--n",
            "3",
            "--repaint-steps",
            "4",
            "--jump",
            "2",
            "--resamples",
            "2",
            "--out",
        ]);
        let out = straight.join(format!("edit-{}", task[0]));
        args.push(out.to_str().unwrap());
        (latentlab(&args), out)
    };
    let (inpainted, out) = edit(&["inpaint"]);
    let stdout = assert_success(&inpainted);
    assert!(stdout.contains("hole PSNR"), "{stdout}");
    let image = image::open(out.join("edited/000000.png"))
        .unwrap()
        .to_luma8();
    let original = {
        let data =
            latentlab::data::load_dataset(&latentlab::data::DataSpec::Embedded, Default::default())
                .unwrap();
        data.test.image(data.test.spread(3)[0]).to_vec()
    };
    let mask = latentlab::degrade::Mask::center(28, 28);
    for (i, (&edited, &seen)) in image.as_raw().iter().zip(&original).enumerate() {
        if !mask.missing()[i] {
            assert_eq!(edited, seen, "visible pixel {i} changed");
        }
    }
    assert_bad_input(
        &edit(&["superres", "--scale", "2"]).0,
        "edits through masks",
    );
    for run in [straight, interrupted] {
        std::fs::remove_dir_all(&run).unwrap();
    }
}

#[test]
fn latent_of_anything_but_an_autoencoder_kl_run_of_the_same_data_is_one_line() {
    let _serial = serial();
    let base = temp_out("ldm-bad");
    std::fs::create_dir_all(&base).unwrap();
    let diffusion = |latent_of: &Path| {
        latentlab(&[
            "train",
            "diffusion",
            "--data",
            "embedded",
            "--limit",
            "32",
            "--epochs",
            "1",
            "--latent-of",
            latent_of.to_str().unwrap(),
            "--out",
            base.join("out").to_str().unwrap(),
        ])
    };
    // No such folder; a folder that is not a run.
    assert_bad_input(&diffusion(&base.join("missing")), "no such run folder");
    let empty = base.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_bad_input(&diffusion(&empty), "not a run folder");
    // A classifier run.
    let classifier = base.join("classifier");
    std::fs::create_dir_all(&classifier).unwrap();
    std::fs::write(
        classifier.join("config.json"),
        include_str!("../src/run/fixtures/current-classifier-rgb.json"),
    )
    .unwrap();
    assert_bad_input(&diffusion(&classifier), "needs an autoencoder-kl run");
    // An autoencoder-kl run of other data.
    let stage = base.join("stage");
    first_stage(&stage);
    let config_path = stage.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["run"]["dataset"]["name"] = "mnist".into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    assert_bad_input(&diffusion(&stage), "trained on mnist");
    // An editing task does not combine with latent diffusion.
    config["run"]["dataset"]["name"] = "fashion-mnist-subset".into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let out = latentlab(&[
        "train",
        "diffusion",
        "--data",
        "embedded",
        "--task",
        "colorize",
        "--latent-of",
        stage.to_str().unwrap(),
        "--out",
        base.join("out").to_str().unwrap(),
    ]);
    assert_bad_input(&out, "--latent-of with --task");
    assert!(!base.join("out").exists(), "a refused run leaves no folder");
    std::fs::remove_dir_all(&base).unwrap();
}
