//! pix2pix end to end on the embedded data: an interrupted run resumes to the same weights and
//! numbers, each task trains and edits through `--with RUN`, and bad input gets one line.

mod common;

use std::path::Path;

use common::{
    assert_bad_input, assert_success, latentlab, png_size, serial, temp_out, train_args, weights,
};
use latentlab::commands::train::{TrainArgs, run_with};
use latentlab::train::Outcome;
use latentlab::train::metrics::read_all;

/// A tiny pix2pix on 96 images, batches of 32: 3 steps per epoch.
fn tiny(out: &Path, extra: &[&str]) -> TrainArgs {
    let mut args = vec![
        "pix2pix",
        "--limit",
        "96",
        "--batch-size",
        "32",
        "--width",
        "4",
        "--ndf",
        "4",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    train_args(&args)
}

#[test]
fn an_interrupted_pix2pix_run_resumes_exactly() {
    let _serial = serial();
    let extra = ["--task", "inpaint", "--data", "embedded", "--epochs", "2"];
    let straight = temp_out("pix2pix-straight");
    run_with(&tiny(&straight, &extra), None).unwrap();
    let interrupted = temp_out("pix2pix-interrupted");
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
    assert!(
        differing.is_empty(),
        "resumed pix2pix differs: {differing:?}"
    );
    let (straight_rows, _) = read_all(&straight.join("metrics.jsonl")).unwrap();
    let (resumed_rows, _) = read_all(&interrupted.join("metrics.jsonl")).unwrap();
    let train = |rows: &[latentlab::train::metrics::EpochRow]| {
        rows.iter().map(|r| r.train.clone()).collect::<Vec<_>>()
    };
    assert_eq!(train(&straight_rows), train(&resumed_rows));
    let parts: Vec<&String> = straight_rows[0].train.keys().collect();
    assert_eq!(
        parts,
        ["d_fake", "d_loss", "d_real", "g_adv", "l1", "loss"],
        "L1 and the PatchGAN's game"
    );
    // Rows of originals, inputs and outputs, 8 images of 28 px each.
    let (width, height) = png_size(&straight.join("edits/epoch_002.png"));
    assert!(width > 8 * 28 && height > 3 * 28, "{width}x{height}");
    for out in [straight, interrupted] {
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn each_task_trains_and_edits_with_its_run() {
    let _serial = serial();
    let runs = temp_out("pix2pix-tasks");
    for (task, data, side) in [
        ("colorize", "embedded-rgb", None),
        ("uncrop", "embedded", Some("right")),
    ] {
        let run = runs.join(task);
        let report = run_with(
            &tiny(
                &run,
                &[
                    "--task",
                    task,
                    "--data",
                    data,
                    "--discriminator",
                    "none",
                    "--epochs",
                    "1",
                ],
            ),
            None,
        )
        .unwrap();
        assert!(matches!(report.outcome, Outcome::Finished { .. }));
        let (rows, _) = read_all(&run.join("metrics.jsonl")).unwrap();
        assert_eq!(rows[0].train.keys().collect::<Vec<_>>(), ["l1", "loss"]);
        let out = runs.join(format!("{task}-edits"));
        let mut args = vec![
            task,
            "--with",
            run.to_str().unwrap(),
            "--data",
            data,
            "--n",
            "3",
        ];
        if let Some(side) = side {
            args.extend(["--side", side]);
        }
        args.extend(["--out", out.to_str().unwrap(), "--quiet"]);
        let stdout = assert_success(&latentlab(&args));
        assert!(
            stdout.contains(&format!("restored with {task}")),
            "{stdout}"
        );
        assert!(out.join("edited/000002.png").is_file());
    }
    // A run edits only the task it learned.
    assert_bad_input(
        &latentlab(&[
            "inpaint",
            "--with",
            runs.join("uncrop").to_str().unwrap(),
            "--data",
            "embedded",
        ]),
        "trained to uncrop, not to inpaint",
    );
    assert_bad_input(
        &latentlab(&[
            "train", "pix2pix", "--task", "colorize", "--data", "embedded",
        ]),
        "colorization needs colour images",
    );
    std::fs::remove_dir_all(&runs).unwrap();
}

#[test]
fn espcn_trains_with_a_patchgan_and_super_resolves_its_own_factor() {
    let _serial = serial();
    let runs = temp_out("espcn");
    let run = runs.join("espcn-x4");
    let report = run_with(
        &train_args(&[
            "espcn",
            "--scale",
            "4",
            "--discriminator",
            "patchgan",
            "--width",
            "4",
            "--ndf",
            "4",
            "--data",
            "embedded",
            "--limit",
            "96",
            "--batch-size",
            "32",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ]),
        None,
    )
    .unwrap();
    assert!(matches!(report.outcome, Outcome::Finished { .. }));
    let (rows, _) = read_all(&run.join("metrics.jsonl")).unwrap();
    assert!(rows[0].train.contains_key("g_adv"), "{:?}", rows[0].train);
    let out = runs.join("edits");
    let stdout = assert_success(&latentlab(&[
        "superres",
        "--scale",
        "4",
        "--with",
        run.to_str().unwrap(),
        "--data",
        "embedded",
        "--n",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    assert!(stdout.contains("restored with espcn-x4"), "{stdout}");
    assert!(out.join("edited/000002.png").is_file());
    // Interpolation is scored like every other method.
    let json = runs.join("bicubic.json");
    assert_success(&latentlab(&[
        "eval-edit",
        "--task",
        "superres",
        "--scale",
        "2",
        "--with",
        "bicubic",
        "--data",
        "embedded",
        "--n",
        "20",
        "--out",
        json.to_str().unwrap(),
        "--quiet",
    ]));
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(scores["n"], 20);
    assert_eq!(scores["degradation"], "x2");
    // Block means are kept, so even bicubic recovers a good part of the image.
    assert!(scores["psnr_whole"].as_f64().unwrap() > 15.0, "{scores}");
    assert_eq!(scores["psnr_whole"], scores["psnr_hole"]);

    assert_bad_input(
        &latentlab(&[
            "superres",
            "--scale",
            "2",
            "--with",
            run.to_str().unwrap(),
            "--data",
            "embedded",
        ]),
        "trained to superres-x4, not to superres-x2",
    );
    assert_bad_input(
        &latentlab(&[
            "superres", "--scale", "3", "--with", "bicubic", "--data", "embedded",
        ]),
        "--scale 3 does not divide the images' size",
    );
    assert_bad_input(
        &latentlab(&["inpaint", "--with", "bicubic", "--data", "embedded"]),
        "bicubic interpolates for super-resolution",
    );
    assert_bad_input(
        &latentlab(&["train", "espcn", "--scale", "3", "--data", "embedded"]),
        "must be at least 2 and divide",
    );
    std::fs::remove_dir_all(&runs).unwrap();
}
