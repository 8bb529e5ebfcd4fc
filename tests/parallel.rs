//! `train --devices cpu,cpu`: data parallelism on two Flex replicas of one machine.

mod common;

use std::path::Path;

use common::{assert_bad_input, latentlab, serial, temp_out, train_args, weights};
use latentlab::commands::train::run_with;
use latentlab::train::Outcome;

fn ae(out: &Path, extra: &[&str]) -> latentlab::commands::train::TrainArgs {
    let mut args = vec![
        "ae",
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
        "--epochs",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    train_args(&args)
}

fn floats(named: Vec<(String, Vec<u8>)>) -> Vec<f32> {
    named
        .into_iter()
        .flat_map(|(_, bytes)| {
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn two_replicas_train_as_one_device_does_and_resume_exactly() {
    let _serial = serial();
    let one = temp_out("parallel-one");
    run_with(&ae(&one, &[]), None).unwrap();
    let two = temp_out("parallel-two");
    run_with(&ae(&two, &["--devices", "cpu,cpu"]), None).unwrap();
    let config = std::fs::read_to_string(two.join("config.json")).unwrap();
    assert!(config.contains("\"devices\""), "{config}");
    // The summed half-batch gradients are the whole batch's up to float rounding, which Adam
    // carries through six steps.
    let (a, b) = (floats(weights(&one)), floats(weights(&two)));
    let largest = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("one device against two replicas: largest weight difference {largest:e}");
    assert!(largest < 1e-3, "largest weight difference {largest}");

    // Interrupted after 4 of 6 steps and resumed: the replicas' run continues exactly.
    let resumed = temp_out("parallel-resumed");
    let report = run_with(&ae(&resumed, &["--devices", "cpu,cpu"]), Some(4)).unwrap();
    assert!(matches!(report.outcome, Outcome::Interrupted { .. }));
    run_with(
        &train_args(&["--resume", resumed.to_str().unwrap(), "--quiet"]),
        None,
    )
    .unwrap();
    assert!(
        weights(&two) == weights(&resumed),
        "resumed replicas differ"
    );
    for out in [one, two, resumed] {
        let _ = std::fs::remove_dir_all(out);
    }
}

#[test]
fn a_classifier_on_two_replicas_trains_as_on_one_device() {
    let _serial = serial();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "classifier",
            "--data",
            "embedded",
            "--limit",
            "192",
            "--batch-size",
            "64",
            "--hidden",
            "16",
            "--conv-channels",
            "4,8",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        run_with(&train_args(&args), None).unwrap();
    };
    let (one, two) = (temp_out("parallel-cls-one"), temp_out("parallel-cls-two"));
    run(&one, &[]);
    run(&two, &["--devices", "cpu,cpu"]);
    let (a, b) = (floats(weights(&one)), floats(weights(&two)));
    let largest = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("classifier, one device against two replicas: largest weight difference {largest:e}");
    assert!(largest < 1e-3, "largest weight difference {largest}");
    for out in [one, two] {
        let _ = std::fs::remove_dir_all(out);
    }
}

#[test]
fn unsupported_device_lists_are_refused_in_one_line() {
    let out = temp_out("parallel-refused");
    let out = out.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend(extra);
        args.extend(["--data", "embedded", "--limit", "64", "--out", out]);
        latentlab(&args)
    };
    assert_bad_input(&train(&["ae", "--devices", "cpu,vulkan"]), "of one kind");
    assert_bad_input(&train(&["ae", "--devices", "cpu"]), "two or more replicas");
    assert_bad_input(
        &train(&["ae", "--devices", "vulkan,vulkan"]),
        "must be --device's",
    );
    assert_bad_input(
        &train(&["gan", "--devices", "cpu,cpu"]),
        "built for ae, vae and classifier runs",
    );
}

#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_mpi_without_the_feature_is_refused_in_one_line() {
    let out = temp_out("parallel-mpi");
    let out = out.to_str().unwrap();
    for args in [
        vec![
            "train",
            "ae",
            "--data",
            "embedded",
            "--distributed",
            "mpi",
            "--out",
            out,
        ],
        vec![
            "pca",
            "--data",
            "embedded",
            "--distributed",
            "mpi",
            "--out",
            out,
        ],
    ] {
        assert_bad_input(&latentlab(&args), "built without the 'mpi' feature");
    }
}
