//! `train --devices cpu,cpu`: data parallelism on two Flex replicas of one machine.

mod common;

use std::path::Path;

use common::{assert_bad_input, latentlab, serial, temp_out, train_args, weights};
use latentlab::commands::train::run_with;
use latentlab::train::Outcome;

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
    // The summed half-batch gradients are the whole batch's up to float rounding, which Adam
    // carries through six steps.
    let ae = "ae --limit 192 --batch-size 64 --latent 4 --hidden 32 --epochs 2";
    let largest = one_against_two("ae", ae, 4);
    assert!(largest < 1e-3, "largest weight difference {largest}");
    let classifier =
        "classifier --limit 192 --batch-size 64 --hidden 16 --conv-channels 4,8 --epochs 1";
    let largest = one_against_two("classifier", classifier, 2);
    assert!(largest < 1e-3, "largest weight difference {largest}");
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
    assert_bad_input(&train(&["ae", "--devices", "cpu:1,cpu:2"]), "cpu,cpu");
    assert_bad_input(
        &train(&["ae", "--devices", "vulkan:a,vulkan:b"]),
        "device number",
    );
}

/// The largest difference between two runs' exported weights.
fn largest_difference(a: &Path, b: &Path) -> f32 {
    let (a, b) = (floats(weights(a)), floats(weights(b)));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// Trains `args` (a model and its options, space-separated) on one device and on `cpu,cpu`,
/// then the replicas' run again interrupted after `stop` steps and resumed; returns the largest
/// weight difference between one device and the replicas, and asserts the resumed run exact.
fn one_against_two(name: &str, args: &str, stop: u64) -> f32 {
    let _serial = serial();
    let run = |out: &Path, extra: &[&str], stop: Option<u64>| {
        let mut all: Vec<&str> = args.split_whitespace().collect();
        all.extend([
            "--data",
            "embedded",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        all.extend(extra);
        run_with(&train_args(&all), stop).unwrap()
    };
    let one = temp_out(&format!("parallel-{name}-one"));
    let two = temp_out(&format!("parallel-{name}-two"));
    let resumed = temp_out(&format!("parallel-{name}-resumed"));
    run(&one, &[], None);
    run(&two, &["--devices", "cpu,cpu"], None);
    let config = std::fs::read_to_string(two.join("config.json")).unwrap();
    assert!(config.contains("\"devices\""), "{config}");
    let report = run(&resumed, &["--devices", "cpu,cpu"], Some(stop));
    assert!(matches!(report.outcome, Outcome::Interrupted { .. }));
    run_with(
        &train_args(&["--resume", resumed.to_str().unwrap(), "--quiet"]),
        None,
    )
    .unwrap();
    assert!(
        weights(&two) == weights(&resumed),
        "{name}: resumed replicas differ"
    );
    let largest = largest_difference(&one, &two);
    eprintln!("{name}, one device against two replicas: largest weight difference {largest:e}");
    for out in [one, two, resumed] {
        let _ = std::fs::remove_dir_all(out);
    }
    largest
}

#[test]
fn a_gan_splits_both_steps_over_replicas() {
    // MLP networks: no batch norm, whose statistics are each share's own (as under PyTorch's
    // DDP without SyncBatchNorm), so the split run must equal the whole-batch one.
    let mlp = "gan --generator mlp --discriminator mlp --hidden 16,16 --latent 8 --k 2 --limit 96 --batch-size 32 --epochs 2";
    let largest = one_against_two("gan-mlp", mlp, 4);
    assert!(largest < 1e-3, "largest weight difference {largest}");
    // DCGAN networks normalize each share by its own statistics: not equal, but the replicas'
    // run trains and resumes exactly.
    let dcgan =
        "gan --conditional --ngf 4 --ndf 4 --latent 8 --limit 64 --batch-size 32 --epochs 1";
    one_against_two("gan-dcgan", dcgan, 1);
}

#[test]
fn editing_models_and_diffusion_split_over_replicas() {
    // ESPCN has no batch norm: the split run equals the whole-batch one.
    let espcn = "espcn --scale 2 --width 4 --limit 96 --batch-size 32 --epochs 2";
    let largest = one_against_two("espcn", espcn, 4);
    assert!(largest < 1e-3, "largest weight difference {largest}");
    // pix2pix's U-Net and PatchGAN normalize each share by its own statistics; the split run
    // trains and resumes exactly (the L1 term's weighting is pinned in models::pix2pix).
    let pix2pix = "pix2pix --task inpaint --width 4 --ndf 4 --limit 64 --batch-size 32 --epochs 1";
    one_against_two("pix2pix", pix2pix, 1);
    let diffusion = "diffusion --conditional --width 8 --levels 1 --timesteps 50 --limit 96 --batch-size 32 --epochs 2";
    // The biases a GroupNorm follows have a gradient that is zero but for rounding, which
    // Adam's first steps still move by about ±lr: they differ by up to ~5e-4, the rest by ~1e-7.
    let largest = one_against_two("diffusion", diffusion, 4);
    assert!(largest < 2e-3, "largest weight difference {largest}");
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
