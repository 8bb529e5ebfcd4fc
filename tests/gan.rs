//! GANs end to end on the embedded data: every generator with every discriminator, exact resume
//! of a conditional run, sampling a class, the per-class accuracy of conditional samples, and bad
//! input refused with one line.

mod common;

use std::path::{Path, PathBuf};

use common::{
    assert_bad_input, assert_success, latentlab, png_size, serial, temp_out, train_args, weights,
};
use latentlab::commands::train::{TrainArgs, run_with};
use latentlab::train::Outcome;
use latentlab::train::metrics::read_all;

/// A tiny GAN on 96 embedded images, batches of 32: 3 steps per epoch.
fn tiny(out: &Path, extra: &[&str]) -> TrainArgs {
    let mut args = vec![
        "gan",
        "--data",
        "embedded",
        "--limit",
        "96",
        "--batch-size",
        "32",
        "--latent",
        "8",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--hidden",
        "16,16",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    train_args(&args)
}

#[test]
fn every_generator_trains_against_every_discriminator() {
    let _serial = serial();
    for generator in ["mlp", "dcgan"] {
        for discriminator in ["mlp", "dcgan", "patchgan"] {
            let out = temp_out(&format!("gan-{generator}-{discriminator}"));
            let report = run_with(
                &tiny(
                    &out,
                    &[
                        "--generator",
                        generator,
                        "--discriminator",
                        discriminator,
                        "--epochs",
                        "1",
                    ],
                ),
                None,
            )
            .unwrap();
            assert!(matches!(report.outcome, Outcome::Finished { .. }));
            let (rows, steps) = read_all(&out.join("metrics.jsonl")).unwrap();
            assert_eq!(
                (rows.len(), steps.len()),
                (1, 3),
                "{generator}/{discriminator}"
            );
            for step in &steps {
                for part in ["d_loss", "g_loss", "d_real", "d_fake"] {
                    let value = step.train[part];
                    assert!(value.is_finite(), "{part} = {value}");
                }
                assert!((0.0..=1.0).contains(&step.train["d_real"]));
            }
            assert!(out.join("samples/epoch_001.png").is_file());
            // The exported weights hold both networks.
            let names: Vec<String> = weights(&out).into_iter().map(|(n, _)| n).collect();
            assert!(
                names.iter().any(|n| n.starts_with("generator.")),
                "{names:?}"
            );
            assert!(
                names.iter().any(|n| n.starts_with("discriminator.")),
                "{names:?}"
            );
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
}

#[test]
fn conditional_gan_resumes_exactly_and_samples_a_class() {
    let _serial = serial();
    let extra = [
        "--discriminator",
        "patchgan",
        "--conditional",
        "--k",
        "2",
        "--epochs",
        "2",
    ];
    let straight = temp_out("cgan-straight");
    run_with(&tiny(&straight, &extra), None).unwrap();
    let interrupted = temp_out("cgan-interrupted");
    let report = run_with(&tiny(&interrupted, &extra), Some(4)).unwrap();
    assert!(matches!(report.outcome, Outcome::Interrupted { .. }));
    run_with(
        &train_args(&["--resume", interrupted.to_str().unwrap(), "--quiet"]),
        None,
    )
    .unwrap();
    let differing: Vec<String> = weights(&straight)
        .into_iter()
        .zip(weights(&interrupted))
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0)
        .collect();
    assert!(differing.is_empty(), "resumed GAN differs: {differing:?}");
    let straight_metrics = read_all(&straight.join("metrics.jsonl")).unwrap();
    let resumed_metrics = read_all(&interrupted.join("metrics.jsonl")).unwrap();
    assert_eq!(straight_metrics.1, resumed_metrics.1, "step rows");
    assert_eq!(
        straight_metrics
            .0
            .iter()
            .map(|r| &r.train)
            .collect::<Vec<_>>(),
        resumed_metrics
            .0
            .iter()
            .map(|r| &r.train)
            .collect::<Vec<_>>(),
        "epoch rows"
    );

    // One row per class in the class grid: 10 rows of 28 px drawn 2x with 2-px gutters.
    let (_, height) = png_size(&straight.join("classes/epoch_002.png"));
    let (_, one_row) = png_size(&{
        let out = straight.join("one-class.png");
        assert_success(&latentlab(&[
            "sample",
            straight.to_str().unwrap(),
            "--class",
            "3",
            "--n",
            "8",
            "--out",
            out.to_str().unwrap(),
        ]));
        out
    });
    assert_eq!(
        height,
        10 * (one_row - 2) + 2,
        "{height} vs rows of {one_row}"
    );
    let named = assert_success(&latentlab(&[
        "sample",
        straight.to_str().unwrap(),
        "--class",
        "sneaker",
        "--n",
        "4",
        "--out",
        straight.join("sneakers.png").to_str().unwrap(),
    ]));
    assert!(named.contains("class 7 (Sneaker)"), "{named}");
    assert_bad_input(
        &latentlab(&["sample", straight.to_str().unwrap(), "--class", "10"]),
        "--class 10",
    );
    for out in [straight, interrupted] {
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn conditional_samples_are_scored_per_class_by_a_classifier() {
    let _serial = serial();
    let gan = temp_out("cgan-scored");
    run_with(&tiny(&gan, &["--conditional", "--epochs", "1"]), None).unwrap();
    let classifier = temp_out("cgan-classifier");
    assert_success(&latentlab(&[
        "train",
        "classifier",
        "--data",
        "embedded",
        "--limit",
        "256",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        classifier.to_str().unwrap(),
    ]));
    let json: PathBuf = gan.join("scores.json");
    assert_success(&latentlab(&[
        "eval-samples",
        "--fake",
        gan.to_str().unwrap(),
        "--n",
        "50",
        "--features",
        "classifier",
        "--classifier",
        classifier.to_str().unwrap(),
        "--kid-subset-size",
        "20",
        "--quiet",
        "--out",
        json.to_str().unwrap(),
    ]));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let accuracy = &metrics["class_accuracy"];
    let per_class = accuracy["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 10);
    let overall = accuracy["overall"].as_f64().unwrap();
    let mean: f64 = per_class.iter().map(|a| a.as_f64().unwrap()).sum::<f64>() / 10.0;
    // 50 samples, 5 of each class: the overall rate is the mean of the per-class rates.
    assert!((overall - mean).abs() < 1e-9, "{overall} vs {mean}");
    assert!(metrics["classifier_fd"].as_f64().unwrap().is_finite());
    for out in [gan, classifier] {
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn bad_gan_options_get_one_line() {
    let out = temp_out("gan-bad");
    let dir = out.to_str().unwrap();
    assert_bad_input(
        &latentlab(&["train", "vae", "--generator", "mlp", "--out", dir]),
        "unexpected argument '--generator'",
    );
    assert_bad_input(
        &latentlab(&[
            "train", "gan", "--data", "embedded", "--k", "0", "--out", dir,
        ]),
        "--k",
    );
    assert_bad_input(
        &latentlab(&[
            "train", "gan", "--data", "embedded", "--g-loss", "hinge", "--out", dir,
        ]),
        "hinge",
    );
    assert_bad_input(
        &latentlab(&[
            "train",
            "gan",
            "--data",
            "embedded",
            "--discriminator",
            "patchgan",
            "--patch-layers",
            "4",
            "--out",
            dir,
        ]),
        "too small",
    );
    assert!(!out.exists(), "nothing written for refused input");
}
