//! Diffusion end to end on the embedded data: an interrupted run resumes to the same weights,
//! EMA included; a trained run samples with DDIM and DDPM (and draws its denoising strip),
//! inpaints with RePaint; a run trained for super-resolution (SR3) restores images of its job
//! only; bad input gets one line.

mod common;

use std::path::Path;

use common::{
    assert_bad_input, assert_success, latentlab, png_size, serial, temp_out, train_args, weights,
};
use latentlab::commands::train::{TrainArgs, run_with};
use latentlab::train::Outcome;
use latentlab::train::metrics::read_all;

/// A tiny denoiser on 96 images, batches of 32: 3 steps per epoch, T = 50.
fn tiny(out: &Path, extra: &[&str]) -> TrainArgs {
    let mut args = vec![
        "diffusion",
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
        "--timesteps",
        "50",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    train_args(&args)
}

/// The weights the checkpoint holds under `role`, by name (the blob's bytes also hold
/// parameter ids, which differ between processes).
fn blob(run: &Path, role: &str) -> Vec<(String, Vec<u8>)> {
    let checkpoint = latentlab::train::checkpoint::load(&run.join("checkpoint")).unwrap();
    let opened = latentlab::run::Run::open(run).unwrap();
    let config = &opened.diffusion_config().unwrap().diffusion.denoiser;
    let model = config.init(&burn::tensor::Device::flex());
    let model =
        latentlab::train::checkpoint::restore_module(model, &checkpoint.blobs, role).unwrap();
    let dir = temp_out(&format!("diffusion-blob-{role}"));
    std::fs::create_dir_all(&dir).unwrap();
    latentlab::models::save_safetensors(&model, &dir.join("model.safetensors")).unwrap();
    let named = weights(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    named
}

#[test]
fn an_interrupted_conditional_run_resumes_exactly_ema_included() {
    let _serial = serial();
    let extra = ["--conditional", "--label-dropout", "0.5", "--epochs", "2"];
    let straight = temp_out("diffusion-straight");
    run_with(&tiny(&straight, &extra), None).unwrap();
    let interrupted = temp_out("diffusion-interrupted");
    let report = run_with(&tiny(&interrupted, &extra), Some(4)).unwrap();
    assert!(matches!(report.outcome, Outcome::Interrupted { .. }));
    run_with(
        &train_args(&["--resume", interrupted.to_str().unwrap(), "--quiet"]),
        None,
    )
    .unwrap();
    // model.safetensors holds the EMA; the checkpoint the network and the EMA apart.
    assert!(weights(&straight) == weights(&interrupted), "EMA differs");
    assert!(
        weights(&straight) == blob(&straight, "ema"),
        "model.safetensors holds the EMA weights"
    );
    assert!(blob(&straight, "model") == blob(&interrupted, "model"));
    assert!(blob(&straight, "ema") == blob(&interrupted, "ema"));
    assert!(
        blob(&straight, "ema") != blob(&straight, "model"),
        "the EMA lags the weights"
    );
    let losses = |run: &Path| {
        let (rows, _) = read_all(&run.join("metrics.jsonl")).unwrap();
        rows.iter()
            .map(|r| (r.train["loss"], r.test["loss"]))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&straight), losses(&interrupted));
    // Pure noise predicted as 0 scores 1 per pixel; two epochs of training get below it.
    assert!(losses(&straight)[1].1 < 1.0, "{:?}", losses(&straight));
    for run in [straight, interrupted] {
        std::fs::remove_dir_all(&run).unwrap();
    }
}

#[test]
fn a_trained_run_samples_draws_its_strip_and_inpaints() {
    let _serial = serial();
    let run = temp_out("diffusion-run");
    run_with(&tiny(&run, &["--epochs", "1"]), None).unwrap();
    let run_arg = run.to_str().unwrap();
    // Epoch samples: 64 images of 28 px drawn 2x2 in 8 columns with 2-px gutters.
    assert_eq!(
        png_size(&run.join("samples/epoch_001.png")).0,
        8 * 56 + 9 * 2
    );

    let out = run.join("ddim.png");
    let stdout = assert_success(&latentlab(&[
        "sample",
        run_arg,
        "--steps",
        "5",
        "--n",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(stdout.contains("DDIM-5"), "{stdout}");
    assert!(out.is_file());
    // The strip: 8 walks, x_T and the 5 states after each step (fewer than 11 to show).
    let (width, height) = png_size(&run.join("ddim_denoising.png"));
    assert_eq!((width, height), (6 * 56 + 7 * 2, 8 * 56 + 9 * 2));

    // DDPM walks all T = 50 steps.
    let out = run.join("ddpm.png");
    let stdout = assert_success(&latentlab(&[
        "sample",
        run_arg,
        "--sampler",
        "ddpm",
        "--n",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(stdout.contains("DDPM-50"), "the run's T: {stdout}");
    assert!(stdout.contains("of the first 4 of them"), "{stdout}");
    // The walks are of the 4 samples drawn, not of other draws: each row ends at its sample,
    // even though DDPM adds fresh noise at every step.
    let strip = image::open(run.join("ddpm_denoising.png"))
        .unwrap()
        .to_rgb8();
    let grid = image::open(&out).unwrap().to_rgb8();
    assert_eq!(strip.dimensions(), (11 * 56 + 12 * 2, 4 * 56 + 5 * 2));
    for i in 0..4u32 {
        for (y, x) in (0..56u32).flat_map(|y| (0..56u32).map(move |x| (y, x))) {
            let walked = strip.get_pixel(2 + 10 * 58 + x, 2 + i * 58 + y);
            let drawn = grid.get_pixel(2 + i * 58 + x, 2 + y);
            assert_eq!(walked, drawn, "sample {i} at ({y}, {x})");
        }
    }
    assert_bad_input(
        &latentlab(&["sample", run_arg, "--guidance", "3"]),
        "unconditional",
    );
    assert_bad_input(
        &latentlab(&["sample", run_arg, "--n", "200000000"]),
        "at most 4096",
    );

    // RePaint through the editing command.
    let edits = run.join("inpaint");
    let stdout = assert_success(&latentlab(&[
        "inpaint",
        "--with",
        run_arg,
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
        edits.to_str().unwrap(),
        "--quiet",
    ]));
    assert!(stdout.contains("restored with"), "{stdout}");
    assert!(edits.join("edited/000002.png").is_file());

    assert_bad_input(
        &latentlab(&["sample", run_arg, "--sampler", "ddpm", "--steps", "10"]),
        "drop --steps",
    );
    assert_bad_input(
        &latentlab(&["sample", run_arg, "--class", "3"]),
        "is not conditional",
    );
    assert_bad_input(
        &latentlab(&["train", "diffusion", "--data", "embedded", "--width", "12"]),
        "multiple of 8",
    );
    std::fs::remove_dir_all(&run).unwrap();
}

#[test]
fn a_super_resolution_run_restores_its_job_only() {
    let _serial = serial();
    let run = temp_out("diffusion-sr3");
    run_with(
        &tiny(
            &run,
            &["--task", "superres", "--scale", "4", "--epochs", "1"],
        ),
        None,
    )
    .unwrap();
    let run_arg = run.to_str().unwrap();
    // Originals, what the model saw and its outputs: three rows of 8 test images.
    let (_, height) = png_size(&run.join("edits/epoch_001.png"));
    assert!(height >= 3 * 56, "{height}");
    let out = run.join("superres");
    let stdout = assert_success(&latentlab(&[
        "superres",
        "--with",
        run_arg,
        "--scale",
        "4",
        "--data",
        "embedded",
        "--n",
        "3",
        "--repaint-steps",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]));
    assert!(stdout.contains("restored with"), "{stdout}");
    assert_bad_input(
        &latentlab(&["inpaint", "--with", run_arg, "--data", "embedded"]),
        "trained to superres-x4, not to inpaint",
    );
    assert_bad_input(&latentlab(&["sample", run_arg]), "restores images");
    assert_bad_input(
        &latentlab(&[
            "train",
            "diffusion",
            "--data",
            "embedded",
            "--task",
            "inpaint",
        ]),
        "RePaint",
    );
    std::fs::remove_dir_all(&run).unwrap();
}
