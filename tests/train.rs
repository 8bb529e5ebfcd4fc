//! The shared trainer end to end on the embedded data: a smoke run per model and architecture,
//! exact resume after an interruption, and bad input refused with one line.

mod common;

use std::path::{Path, PathBuf};

use latentlab::commands::train::{ModelArgs, TrainArgs, run_with};
use latentlab::train::Outcome;
use latentlab::train::metrics::read_rows;

use common::{serial, train_args, weights};

fn temp_out(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("latentlab-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

fn tiny(model: &str, arch: &str, out: &Path, epochs: &str) -> TrainArgs {
    train_args(&[
        model,
        "--arch",
        arch,
        "--data",
        "embedded",
        "--limit",
        "192",
        "--batch-size",
        "64",
        "--latent",
        "4",
        "--hidden",
        "32",
        "--conv-channels",
        "4,8",
        "--epochs",
        epochs,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn smoke_run_per_model_and_architecture() {
    let _serial = serial();
    for model in ["ae", "vae"] {
        for arch in ["mlp", "conv"] {
            let out = temp_out(&format!("smoke-{model}-{arch}"));
            let report = run_with(&tiny(model, arch, &out, "1"), None).unwrap();
            let Outcome::Finished { rows } = report.outcome else {
                panic!("{model} {arch} did not finish");
            };
            assert_eq!(rows.len(), 1);
            let test = &rows[0].test;
            assert!(test["recon"].is_finite() && test["recon"] > 0.0, "{test:?}");
            assert!(test["mse"] > 0.0 && test["mse"] < 0.5, "{test:?}");
            assert_eq!(test.contains_key("kl"), model == "vae", "{test:?}");
            for file in [
                "config.json",
                "metrics.jsonl",
                "loss.png",
                "model.safetensors",
                "samples/epoch_001.png",
                "reconstructions/epoch_001.png",
                "checkpoint/state.json",
            ] {
                assert!(out.join(file).is_file(), "{model} {arch}: no {file}");
            }
            // 64 samples, 8 columns of 28x28 tiles at scale 2 with 2-px gutters.
            let samples = image::open(out.join("samples/epoch_001.png")).unwrap();
            assert_eq!((samples.width(), samples.height()), (466, 466));
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
}

#[test]
fn training_lowers_the_test_loss() {
    let _serial = serial();
    let out = temp_out("lowers");
    let args = train_args(&[
        "vae",
        "--data",
        "embedded",
        "--limit",
        "1000",
        "--batch-size",
        "50",
        "--epochs",
        "3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    run_with(&args, None).unwrap();
    let rows = read_rows(&out.join("metrics.jsonl")).unwrap();
    let first = rows[0].test["loss"];
    let last = rows[2].test["loss"];
    // An untrained decoder outputs ~0.5 everywhere: 784·ln 2 ≈ 543 nats; three epochs on 1000
    // images get well below that.
    assert!(last < first && last < 400.0, "test loss {first} → {last}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn resume_is_exact_after_an_interruption_mid_epoch_and_at_an_epoch_boundary() {
    let _serial = serial();
    for arch in ["mlp", "conv"] {
        // Straight: two epochs of 3 steps.
        let straight = temp_out(&format!("straight-{arch}"));
        run_with(&tiny("vae", arch, &straight, "2"), None).unwrap();

        // Interrupted after 4 steps (one into epoch 2), then resumed.
        let interrupted = temp_out(&format!("interrupted-{arch}"));
        let report = run_with(&tiny("vae", arch, &interrupted, "2"), Some(4)).unwrap();
        match report.outcome {
            Outcome::Interrupted { state, .. } => {
                assert_eq!((state.epoch, state.step, state.step_in_epoch), (1, 4, 1))
            }
            other => panic!("expected an interruption, got {other:?}"),
        }
        let resume = train_args(&["--resume", interrupted.to_str().unwrap(), "--quiet"]);
        run_with(&resume, None).unwrap();

        // One epoch, then resumed for a second.
        let boundary = temp_out(&format!("boundary-{arch}"));
        run_with(&tiny("vae", arch, &boundary, "1"), None).unwrap();
        let resume = train_args(&[
            "--resume",
            boundary.to_str().unwrap(),
            "--epochs",
            "2",
            "--quiet",
        ]);
        run_with(&resume, None).unwrap();

        assert!(
            weights(&straight) == weights(&interrupted),
            "{arch}: mid-epoch resume differs"
        );
        assert!(
            weights(&straight) == weights(&boundary),
            "{arch}: epoch resume differs"
        );
        let losses = |out: &Path| -> Vec<(f64, f64)> {
            read_rows(&out.join("metrics.jsonl"))
                .unwrap()
                .iter()
                .map(|r| (r.train["loss"], r.test["loss"]))
                .collect()
        };
        assert_eq!(losses(&straight), losses(&interrupted), "{arch}");
        assert_eq!(losses(&straight), losses(&boundary), "{arch}");
        for out in [straight, interrupted, boundary] {
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
}

#[test]
fn classifier_resume_is_exact_with_random_flips_and_a_cosine_schedule() {
    let _serial = serial();
    let args = |out: &Path| {
        train_args(&[
            "classifier",
            "--data",
            "embedded",
            "--limit",
            "192",
            "--batch-size",
            "64",
            "--epochs",
            "2",
            "--hflip",
            "--lr-schedule",
            "cosine",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let straight = temp_out("classifier-straight");
    run_with(&args(&straight), None).unwrap();
    let interrupted = temp_out("classifier-interrupted");
    let report = run_with(&args(&interrupted), Some(4)).unwrap();
    assert!(matches!(report.outcome, Outcome::Interrupted { .. }));
    run_with(
        &train_args(&["--resume", interrupted.to_str().unwrap(), "--quiet"]),
        None,
    )
    .unwrap();
    assert!(
        weights(&straight) == weights(&interrupted),
        "resumed classifier differs"
    );
    let config = std::fs::read_to_string(straight.join("config.json")).unwrap();
    assert!(
        config.contains("\"lr_schedule\": \"cosine\"") && config.contains("\"hflip\": true"),
        "{config}"
    );
    for out in [straight, interrupted] {
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn classifier_trains_on_32x32_rgb_images() {
    let _serial = serial();
    // Two classes of colour images: reddish and bluish noise, in class subfolders.
    let data = temp_out("rgb-folder");
    let mut state = 12345u32;
    let mut next = || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8
    };
    for (class, tint) in [("red", [200u8, 30, 30]), ("blue", [30, 30, 200])] {
        let dir = data.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..36 {
            let image = image::RgbImage::from_fn(32, 32, |_, _| {
                image::Rgb(tint.map(|t| t.saturating_add(next() / 4)))
            });
            image.save(dir.join(format!("{i:02}.png"))).unwrap();
        }
    }
    let out = temp_out("rgb-classifier");
    let report = run_with(
        &train_args(&[
            "classifier",
            "--data",
            data.to_str().unwrap(),
            "--batch-size",
            "20",
            "--epochs",
            "3",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]),
        None,
    )
    .unwrap();
    let Outcome::Finished { rows } = report.outcome else {
        panic!("not finished")
    };
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(
        config.contains("\"channels\": 3") && config.contains("\"height\": 32"),
        "{config}"
    );
    // Red vs blue is easy: all 12 held-out images right after 3 epochs.
    assert_eq!(rows.last().unwrap().test["accuracy"], 1.0, "{rows:?}");
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn conditional_vae_samples_a_class_and_scores_log_p_x_given_y() {
    let _serial = serial();
    let out = temp_out("cvae");
    let mut args = tiny("vae", "mlp", &out, "1");
    match &mut args.model {
        Some(ModelArgs::Vae(vae)) => vae.conditional = true,
        other => panic!("not a vae: {other:?}"),
    }
    run_with(&args, None).unwrap();
    let run = out.to_str().unwrap();
    let latentlab = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_latentlab"))
            .args(args)
            .output()
            .unwrap()
    };
    let sampled = latentlab(&["sample", run, "--class", "pullover", "--n", "4"]);
    assert!(
        sampled.status.success(),
        "{}",
        String::from_utf8_lossy(&sampled.stderr)
    );
    assert!(String::from_utf8_lossy(&sampled.stdout).contains("4 samples of class 2"));
    let evaluated = latentlab(&["eval", run, "--k", "2", "--quiet"]);
    assert!(
        evaluated.status.success(),
        "{}",
        String::from_utf8_lossy(&evaluated.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    assert_eq!(report["conditional_on_labels"], true);
    assert!(report["iwae"]["nll"].as_f64().unwrap().is_finite());
    let refused = latentlab(&["interpolate", run]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("conditional VAE"));
    let ae = latentlab(&["train", "ae", "--conditional", "--data", "embedded"]);
    assert_eq!(ae.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ae.stderr).contains("unexpected argument '--conditional'"));
    std::fs::remove_dir_all(&out).unwrap();
}
