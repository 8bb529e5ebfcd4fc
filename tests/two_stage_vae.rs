//! The two-stage VAE end to end on the embedded data: a second VAE trains on a VAE run's codes,
//! resumes to the same weights, and samples images through the first stage's decoder (its copy
//! in the run); `--latent-of` anything but an unconditional VAE run gets one line.

mod common;

use std::path::Path;

use common::{
    assert_bad_input, assert_success, latentlab, png_size, serial, temp_out, train_args, weights,
};
use latentlab::commands::train::run_with;
use latentlab::train::Outcome;

fn first_stage(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "vae",
        "--data",
        "embedded",
        "--limit",
        "96",
        "--batch-size",
        "32",
        "--latent",
        "6",
        "--hidden",
        "32",
        "--likelihood",
        "gaussian",
        "--sigma",
        "learned",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    run_with(&train_args(&args), None).unwrap();
}

fn second_stage(first: &Path, out: &Path) -> Vec<String> {
    [
        "vae",
        "--latent-of",
        first.to_str().unwrap(),
        "--data",
        "embedded",
        "--limit",
        "96",
        "--batch-size",
        "32",
        "--hidden",
        "16,16",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn train(args: &[String], stop_after: Option<u64>) -> Outcome {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_with(&train_args(&args), stop_after).unwrap().outcome
}

fn sample(run: &Path, out: &Path) -> Vec<u8> {
    assert_success(&latentlab(&[
        "sample",
        run.to_str().unwrap(),
        "--n",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]));
    std::fs::read(out).unwrap()
}

#[test]
fn the_second_stage_resumes_exactly_and_samples_through_the_first() {
    let _serial = serial();
    let first = temp_out("two-stage-first");
    first_stage(&first, &[]);
    let straight = temp_out("two-stage-straight");
    train(&second_stage(&first, &straight), None);
    let interrupted = temp_out("two-stage-interrupted");
    assert!(matches!(
        train(&second_stage(&first, &interrupted), Some(4)),
        Outcome::Interrupted { .. }
    ));
    run_with(
        &train_args(&["--resume", interrupted.to_str().unwrap(), "--quiet"]),
        None,
    )
    .unwrap();
    assert!(weights(&straight) == weights(&interrupted));

    // Samples are images of the data's 28 px, 8 in a row.
    let two_stage = sample(&straight, &straight.join("a.png"));
    assert_eq!(
        png_size(&straight.join("a.png")),
        (8 * 56 + 9 * 2, 56 + 2 * 2)
    );
    // They go through the run's copy of the first stage: another VAE's decoder in its place
    // changes them, and the source run is not read.
    let other = temp_out("two-stage-other");
    first_stage(&other, &["--seed", "5"]);
    std::fs::remove_dir_all(&first).unwrap();
    assert_eq!(sample(&straight, &straight.join("b.png")), two_stage);
    std::fs::copy(
        other.join("model.safetensors"),
        straight.join("first_stage.safetensors"),
    )
    .unwrap();
    assert_ne!(sample(&straight, &straight.join("c.png")), two_stage);
    for run in [straight, interrupted, other] {
        std::fs::remove_dir_all(&run).unwrap();
    }
}

#[test]
fn latent_of_anything_but_an_unconditional_vae_run_is_one_line() {
    let _serial = serial();
    let base = temp_out("two-stage-bad");
    std::fs::create_dir_all(&base).unwrap();
    let second = |latent_of: &Path| {
        latentlab(&[
            "train",
            "vae",
            "--data",
            "embedded",
            "--limit",
            "32",
            "--latent-of",
            latent_of.to_str().unwrap(),
            "--out",
            base.join("out").to_str().unwrap(),
        ])
    };
    assert_bad_input(&second(&base.join("missing")), "no such run folder");
    let classifier = base.join("classifier");
    std::fs::create_dir_all(&classifier).unwrap();
    std::fs::write(
        classifier.join("config.json"),
        include_str!("../src/run/fixtures/current-classifier-rgb.json"),
    )
    .unwrap();
    assert_bad_input(&second(&classifier), "a classifier run; a two-stage VAE");
    let conditional = base.join("cvae");
    first_stage(&conditional, &["--conditional"]);
    assert_bad_input(&second(&conditional), "a conditional VAE");
    assert!(!base.join("out").exists());
    std::fs::remove_dir_all(&base).unwrap();
}
