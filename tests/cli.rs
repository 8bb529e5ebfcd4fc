//! The `latentlab` binary as a user runs it: a PCA smoke run on the embedded data, and the one-line
//! errors with exit code 2 on bad input.

mod common;

use common::{assert_bad_input, assert_success, copy_dir, latentlab, png_size, temp_out};
use std::path::PathBuf;
use std::process::Command;

#[test]
fn pca_smoke_run_writes_every_output() {
    let out = temp_out("pca");
    let out_arg = out.to_str().unwrap();
    let run = latentlab(&["pca", "--data", "embedded", "--k", "20", "--out", out_arg]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("PC1 explains"), "{stdout}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("data: fashion-mnist-subset"),
        "the log names the dataset: {stderr}"
    );

    // 64 eigen-images, 8 columns of 28x28 tiles at scale 2 with 2-px gutters: 8*56 + 9*2 = 466.
    assert_eq!(png_size(&out.join("components.png")), (466, 466));
    // Originals and k = 1, 2, 5, 10, 20, 50, 100 (--k 20 is among them): 8 rows of 8, plus a
    // 90-px label margin.
    assert_eq!(png_size(&out.join("reconstructions.png")), (466 + 90, 466));
    assert_eq!(png_size(&out.join("variance.png")), (1280, 440));

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["solver"], "eigen");
    assert_eq!(metrics["k"], 20);
    assert_eq!(
        metrics["explained_variance_ratio"]
            .as_array()
            .unwrap()
            .len(),
        784
    );
    let pc1 = metrics["explained_variance_ratio"][0].as_f64().unwrap();
    assert!((0.25..0.33).contains(&pc1), "PC1 explains {pc1}");
    let c90 = metrics["components_for_90"].as_u64().unwrap();
    let c95 = metrics["components_for_95"].as_u64().unwrap();
    assert!(c90 < c95 && c95 < 784, "{c90} {c95}");
    let mse = metrics["test_mse"].as_object().unwrap();
    let mse_at = |k: &str| mse[k].as_f64().unwrap();
    assert!(
        mse_at("1") > mse_at("20") && mse_at("20") > mse_at("100"),
        "{mse:?}"
    );
    assert!(metrics["fit_seconds"].as_f64().unwrap() > 0.0);

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"], "pca");
    assert_eq!(config["dataset"]["train"], 10_000);

    let pca = latentlab::pca::Pca::load(&out.join("pca.safetensors")).unwrap();
    assert_eq!((pca.n_components(), pca.n_features()), (20, 784));

    // A second run into the same folder is refused and leaves the results alone.
    let before = std::fs::read(out.join("metrics.json")).unwrap();
    let again = latentlab(&[
        "pca", "--data", "embedded", "--solver", "svd", "--out", out_arg,
    ]);
    assert_bad_input(&again, "--force");
    assert_eq!(std::fs::read(out.join("metrics.json")).unwrap(), before);
    // With --force it goes ahead.
    let forced = latentlab(&[
        "pca", "--data", "embedded", "--solver", "svd", "--k", "0.9", "--out", out_arg, "--force",
        "-q",
    ]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(forced.stderr.is_empty(), "--quiet prints no log");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["solver"], "svd");
    assert_eq!(metrics["k"], metrics["components_for_90"]);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn randomized_solver_runs_from_the_cli() {
    let out = temp_out("randomized");
    let run = latentlab(&[
        "pca",
        "--data",
        "embedded",
        "--solver",
        "randomized",
        "--k",
        "10",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    // It fits the 100 components the reconstruction grid shows, not the whole spectrum.
    assert_eq!(
        metrics["explained_variance_ratio"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    assert!(out.join("reconstructions.png").is_file());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let out = temp_out("bad");
    let out_arg = out.to_str().unwrap();
    assert_bad_input(
        &latentlab(&["pca", "--data", "/no/such/folder", "--out", out_arg]),
        "/no/such/folder",
    );
    assert_bad_input(
        &latentlab(&["pca", "--data", "embedded", "--k", "0", "--out", out_arg]),
        "--k 0",
    );
    assert_bad_input(
        &latentlab(&["pca", "--data", "embedded", "--k", "785", "--out", out_arg]),
        "between 1 and 784",
    );
    assert_bad_input(
        &latentlab(&["pca", "--data", "embedded", "--k", "1.5", "--out", out_arg]),
        "variance fraction",
    );
    assert_bad_input(
        &latentlab(&[
            "pca", "--data", "embedded", "--solver", "qr", "--out", out_arg,
        ]),
        "qr",
    );
    assert_bad_input(
        &latentlab(&["pca", "--data", "embedded", "--bogus"]),
        "--bogus",
    );
    #[cfg(not(feature = "vulkan"))]
    assert_bad_input(
        &latentlab(&[
            "pca", "--data", "embedded", "--device", "vulkan", "--out", out_arg,
        ]),
        "vulkan",
    );
    // A damaged dataset names the file.
    let data = temp_out("bad-data");
    std::fs::create_dir_all(&data).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(data.join(name), b"\x00\x00\x08\x01\x00\x00\x00\x09short").unwrap();
    }
    assert_bad_input(
        &latentlab(&["pca", "--data", data.to_str().unwrap(), "--out", out_arg]),
        "train-images-idx3-ubyte",
    );
    std::fs::remove_dir_all(&data).unwrap();
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "nothing written on failure"
    );
}

#[test]
fn data_comes_from_the_environment_when_no_flag_is_given() {
    let out = temp_out("env");
    let run = Command::new(env!("CARGO_BIN_EXE_latentlab"))
        .args([
            "pca",
            "--k",
            "5",
            "--solver",
            "randomized",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("LATENTLAB_DATA", "embedded")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("fashion-mnist-subset"));
    let broken = Command::new(env!("CARGO_BIN_EXE_latentlab"))
        .args(["pca", "--out", out.to_str().unwrap(), "--force"])
        .env("LATENTLAB_DATA", "/no/such/dataset")
        .output()
        .unwrap();
    assert_bad_input(&broken, "LATENTLAB_DATA");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn help_lists_the_commands_and_shared_flags() {
    let help = latentlab(&["pca", "--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--k", "--solver", "--out", "--data", "--seed", "--device", "--force", "--quiet",
    ] {
        assert!(text.contains(flag), "pca --help lacks {flag}");
    }
}

/// The help says what exists: `train`'s line names every `train` subcommand, and the
/// top-level and `sample` lines name diffusion.
#[test]
fn help_names_every_model_that_exists() {
    use clap::CommandFactory;
    let cli = latentlab::cli::Cli::command();
    let train = cli.find_subcommand("train").unwrap();
    let models: Vec<String> = train
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(models.len() >= 7, "{models:?}");
    let help = assert_success(&latentlab(&["--help"]));
    let train_line = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("train"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    for model in &models {
        assert!(
            train_line.contains(model.as_str()),
            "`train` in --help does not name {model}: {train_line}"
        );
    }
    assert!(help.contains("diffusion"), "{help}");
    let sample = assert_success(&latentlab(&["sample", "--help"]));
    assert!(sample.contains("diffusion"), "{sample}");
}

/// Trains a tiny model through the binary and returns its run folder.
fn tiny_run(name: &str, model: &str, latent: &str) -> PathBuf {
    let out = temp_out(name);
    let run = latentlab(&[
        "train",
        model,
        "--data",
        "embedded",
        "--limit",
        "200",
        "--batch-size",
        "50",
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--latent",
        latent,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(&format!("trained {model} for 1 epochs")),
        "{stdout}"
    );
    out
}

#[test]
fn run_folder_commands_write_their_pictures_and_numbers() {
    let run = tiny_run("commands", "vae", "2");
    let dir = run.to_str().unwrap();
    let recon_dir = run.join("recon");
    for args in [
        vec!["sample", dir, "--n", "16"],
        vec![
            "reconstruct",
            dir,
            "--n",
            "8",
            "--save-images",
            recon_dir.to_str().unwrap(),
        ],
        vec!["interpolate", dir, "--pairs", "3", "--steps", "5"],
        vec!["latent-map", dir, "--n", "100", "--grid", "6"],
        vec!["eval", dir, "--k", "20", "--limit", "40"],
    ] {
        let output = latentlab(&args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // --save-images: one PNG per test image, for eval-samples --fake DIR.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let test_images = config["run"]["dataset"]["test"].as_u64().unwrap() as usize;
    assert_eq!(std::fs::read_dir(&recon_dir).unwrap().count(), test_images);
    assert_eq!(png_size(&recon_dir.join("000000.png")), (28, 28));
    // 16 samples: two rows of 8 tiles of 56 px.
    assert_eq!(png_size(&run.join("samples.png")), (466, 2 * 56 + 3 * 2));
    assert_eq!(
        png_size(&run.join("reconstructions.png")),
        (466, 2 * 56 + 3 * 2)
    );
    // Rows of 5 steps between the two originals: 7 tiles wide, one row per pair.
    assert_eq!(
        png_size(&run.join("interpolation.png")),
        (7 * 56 + 8 * 2, 3 * 56 + 4 * 2)
    );
    assert_eq!(
        png_size(&run.join("interpolation_prior.png")),
        (5 * 56 + 6 * 2, 3 * 56 + 4 * 2)
    );
    assert_eq!(png_size(&run.join("latent_map.png")), (820, 640));
    assert_eq!(
        png_size(&run.join("latent_manifold.png")),
        (6 * 56 + 7 * 2, 6 * 56 + 7 * 2)
    );
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let neg_elbo = eval["iwae"]["neg_elbo_same_data"].as_f64().unwrap();
    let nll = eval["iwae"]["nll"].as_f64().unwrap();
    assert!(
        nll > 0.0 && nll <= neg_elbo + 1.0,
        "IWAE {nll} vs ELBO {neg_elbo}"
    );
    assert_eq!(eval["test_images"], 40);
    let _ = std::fs::remove_dir_all(&run);
}

#[test]
fn run_folder_bad_input_is_one_line_and_exit_2() {
    assert_bad_input(
        &latentlab(&["sample", "/no/such/run"]),
        "no such run folder",
    );
    let empty = temp_out("empty-run");
    std::fs::create_dir_all(&empty).unwrap();
    assert_bad_input(
        &latentlab(&["eval", empty.to_str().unwrap()]),
        "no config.json",
    );

    // A corrupted weights file.
    let vae = tiny_run("corrupt", "vae", "4");
    let weights = vae.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    // Its header still parses; the data no longer match the SHA-256 the header records.
    assert_bad_input(
        &latentlab(&["sample", vae.to_str().unwrap()]),
        "model.safetensors: damaged",
    );
    std::fs::write(&weights, b"not safetensors at all").unwrap();
    assert_bad_input(
        &latentlab(&["sample", vae.to_str().unwrap()]),
        "not a usable weights file",
    );

    // Another model's checkpoint in a run folder.
    let ae = tiny_run("other-model", "ae", "4");
    std::fs::remove_dir_all(vae.join("checkpoint")).unwrap();
    copy_dir(&ae.join("checkpoint"), &vae.join("checkpoint"));
    assert_bad_input(
        &latentlab(&["train", "--resume", vae.to_str().unwrap(), "--epochs", "2"]),
        "do not fit this run's model",
    );
    // And resuming a folder that has no checkpoint.
    std::fs::remove_dir_all(vae.join("checkpoint")).unwrap();
    assert_bad_input(
        &latentlab(&["train", "--resume", vae.to_str().unwrap()]),
        "no checkpoint to resume from",
    );
    for dir in [empty, vae, ae] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn train_bad_options_are_one_line() {
    assert_bad_input(
        &latentlab(&["train", "vae", "--data", "embedded", "--lr=-1"]),
        "--lr",
    );
    assert_bad_input(
        &latentlab(&[
            "train",
            "vae",
            "--data",
            "embedded",
            "--likelihood",
            "gaussian",
            "--sigma",
            "x",
        ]),
        "--sigma",
    );
    let flow = latentlab(&["train", "flow"]);
    assert_bad_input(&flow, "unrecognized subcommand 'flow'");
    assert!(
        !String::from_utf8_lossy(&flow.stderr).contains("<COMMAND>"),
        "no usage lines in the one-line error"
    );
    assert_bad_input(
        &latentlab(&["train", "vae", "--data", "embedded", "--hflip"]),
        "unexpected argument '--hflip'",
    );
    assert_bad_input(
        &latentlab(&["train", "classifier", "--lr-schedule", "step"]),
        "invalid value 'step'",
    );
    assert_bad_input(
        &latentlab(&[
            "train",
            "classifier",
            "--data",
            "embedded",
            "--hidden",
            "3,4",
            "--out",
            "/nonexistent/never-written",
        ]),
        "one hidden layer",
    );
}

#[test]
fn classifier_trains_draws_its_confusion_matrix_and_classifies_files() {
    let out = temp_out("classifier");
    let dir = out.to_str().unwrap();
    let run = latentlab(&[
        "train",
        "classifier",
        "--data",
        "embedded",
        "--limit",
        "300",
        "--batch-size",
        "50",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        dir,
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("test accuracy"), "{stdout}");
    assert!(out.join("confusion.png").is_file());
    let rows = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let row: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    let accuracy = row["test"]["accuracy"].as_f64().unwrap();
    // 300 images, one epoch: far from trained, but above chance (0.1).
    assert!(accuracy > 0.15 && accuracy <= 1.0, "{accuracy}");

    // Two test images written as PNG files, then classified.
    let dataset =
        latentlab::data::load_dataset(&latentlab::data::DataSpec::Embedded, Default::default())
            .unwrap();
    let mut files = Vec::new();
    for i in 0..2 {
        let path = out.join(format!("image{i}.png"));
        image::GrayImage::from_raw(28, 28, dataset.test.image(i).to_vec())
            .unwrap()
            .save(&path)
            .unwrap();
        files.push(path.to_str().unwrap().to_string());
    }
    let classify = latentlab(&["classify", dir, &files[0], &files[1]]);
    assert!(
        classify.status.success(),
        "{}",
        String::from_utf8_lossy(&classify.stderr)
    );
    let lines = String::from_utf8_lossy(&classify.stdout).to_string();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(lines.contains("p = "), "{lines}");
    assert!(
        latentlab::data::FASHION_MNIST_CLASSES
            .iter()
            .any(|name| lines.contains(name)),
        "class names: {lines}"
    );
    assert_bad_input(
        &latentlab(&["classify", dir, "/no/such.png"]),
        "not a readable image",
    );
    // 81 M pixels of zeros in 80 KB: refused from the header, not decoded and classified.
    let bomb = out.join("bomb.png");
    std::fs::write(&bomb, common::png_bomb(9_000, 9_000, 9_000)).unwrap();
    assert_bad_input(
        &latentlab(&["classify", dir, bomb.to_str().unwrap()]),
        "LATENTLAB_MAX_IMAGE_PIXELS",
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn image_bombs_are_refused_from_their_headers_by_every_reader() {
    let out = temp_out("bombs");
    std::fs::create_dir_all(out.join("images")).unwrap();
    let bomb = out.join("bomb.png");
    std::fs::write(&bomb, common::png_bomb(9_000, 9_000, 9_000)).unwrap();
    std::fs::write(
        out.join("images/bomb.png"),
        common::png_bomb(9_000, 9_000, 9_000),
    )
    .unwrap();
    let jpeg = out.join("bomb.jpg");
    std::fs::write(&jpeg, common::jpeg_bomb(50_000, 50_000)).unwrap();
    let result = out.join("result");
    let result = result.to_str().unwrap();
    let edit = |extra: &[&str]| {
        let mut args = vec![
            "inpaint", "--with", "mean", "--data", "embedded", "--out", result,
        ];
        args.extend(extra);
        latentlab(&args)
    };
    assert_bad_input(
        &edit(&["--mask", bomb.to_str().unwrap()]),
        "the mask is 9000x9000, the images 28x28",
    );
    assert_bad_input(
        &edit(&["--images", out.join("images").to_str().unwrap()]),
        "LATENTLAB_MAX_IMAGE_PIXELS",
    );
    for picture in [&bomb, &jpeg] {
        let style = latentlab(&[
            "style",
            "--content",
            picture.to_str().unwrap(),
            "--style",
            "embedded:retina",
            "--out",
            result,
        ]);
        assert_bad_input(&style, "more than the limit of 67108864");
    }
    // The limit can be raised for a real large image; this one then fails only on its size.
    let raised = std::process::Command::new(env!("CARGO_BIN_EXE_latentlab"))
        .args([
            "inpaint", "--with", "mean", "--data", "embedded", "--out", result,
        ])
        .args(["--images", out.join("images").to_str().unwrap()])
        .env("LATENTLAB_MAX_IMAGE_PIXELS", "100000000")
        .output()
        .unwrap();
    assert_eq!(raised.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&raised.stderr).contains("LATENTLAB_MAX_IMAGE_PIXELS"));
    let _ = std::fs::remove_dir_all(&out);
}

/// What `latentlab pca` writes is what a user passes to `inpaint --with` next: it is used, and
/// commands that need a trained model say so in words, not in serde's.
#[test]
fn a_pca_folder_edits_and_other_commands_refuse_it_in_words() {
    let out = temp_out("pca-as-method");
    let pca = out.join("pca");
    assert_success(&latentlab(&[
        "pca",
        "--k",
        "10",
        "--data",
        "embedded",
        "--out",
        pca.to_str().unwrap(),
        "--quiet",
    ]));
    let edited = out.join("edited");
    let stdout = assert_success(&latentlab(&[
        "inpaint",
        "--with",
        pca.to_str().unwrap(),
        "--data",
        "embedded",
        "--n",
        "3",
        "--out",
        edited.to_str().unwrap(),
        "--quiet",
    ]));
    assert!(stdout.contains("hole PSNR"), "{stdout}");
    let names_a_type = |stderr: &str| {
        ["struct", "enum", "::", "Config", "usize"]
            .iter()
            .any(|w| stderr.contains(w))
    };
    for command in ["sample", "eval", "reconstruct"] {
        let refused = latentlab(&[command, pca.to_str().unwrap()]);
        assert_bad_input(&refused, "a PCA folder (latentlab pca)");
        assert!(!names_a_type(&String::from_utf8_lossy(&refused.stderr)));
    }
    // A config.json that is not a run's: said without Rust's words.
    let fake = out.join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    for config in [
        r#"{"kind": "ae", "run": 3}"#,
        r#"{"kind": "telescope"}"#,
        "[1, 2",
    ] {
        std::fs::write(fake.join("config.json"), config).unwrap();
        let refused = latentlab(&["sample", fake.to_str().unwrap()]);
        assert_bad_input(&refused, "not the config of a latentlab run");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!names_a_type(&stderr), "{config}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn inpaint_and_uncrop_write_a_grid_and_images_that_keep_visible_pixels() {
    let out = temp_out("inpaint");
    let dir = out.to_str().unwrap();
    let data =
        latentlab::data::load_dataset(&latentlab::data::DataSpec::Embedded, Default::default())
            .unwrap();
    for method in ["mean", "nearest", "pca"] {
        let stdout = assert_success(&latentlab(&[
            "inpaint", "--with", method, "--data", "embedded", "--n", "3", "--k", "10", "--out",
            dir, "--force", "--quiet",
        ]));
        assert!(stdout.contains("hole PSNR"), "{stdout}");
        let (width, height) = png_size(&out.join("edits.png"));
        assert!(width > 3 * 28 && height > 3 * 28, "{width}x{height}");
        // Outside the centre square, every pixel is the test image's own (the images are the
        // classes in turn).
        for (i, &index) in data.test.spread(3).iter().enumerate() {
            let edited = image::open(out.join(format!("edited/{i:06}.png")))
                .unwrap()
                .to_luma8();
            let original = data.test.image(index);
            for (p, (&e, &o)) in edited.as_raw().iter().zip(original).enumerate() {
                let (y, x) = (p / 28, p % 28);
                if !((7..21).contains(&y) && (7..21).contains(&x)) {
                    assert_eq!(e, o, "{method}: image {i} pixel ({y}, {x})");
                }
            }
        }
    }
    let stdout = assert_success(&latentlab(&[
        "uncrop", "--with", "pca", "--side", "top", "--data", "embedded", "--n", "2", "--k", "10",
        "--out", dir, "--force", "--quiet",
    ]));
    assert!(stdout.contains("top half missing"), "{stdout}");
    assert_bad_input(
        &latentlab(&["inpaint", "--with", "flow", "--data", "embedded"]),
        "invalid value 'flow'",
    );
    assert_bad_input(
        &latentlab(&["uncrop", "--with", "mean", "--data", "embedded"]),
        "--side",
    );
    // A mask drawn as a file: white marks the missing top rows.
    let masks = temp_out("inpaint-masks");
    std::fs::create_dir_all(&masks).unwrap();
    let top = masks.join("top.png");
    image::GrayImage::from_fn(28, 28, |_, y| image::Luma([if y < 10 { 255 } else { 0 }]))
        .save(&top)
        .unwrap();
    let stdout = assert_success(&latentlab(&[
        "inpaint",
        "--with",
        "mean",
        "--mask",
        top.to_str().unwrap(),
        "--data",
        "embedded",
        "--n",
        "2",
        "--out",
        dir,
        "--force",
        "--quiet",
    ]));
    assert!(stdout.contains("top.png"), "{stdout}");
    let small = masks.join("small.png");
    image::GrayImage::new(16, 16).save(&small).unwrap();
    let refused = temp_out("inpaint-refused");
    assert_bad_input(
        &latentlab(&[
            "inpaint",
            "--with",
            "mean",
            "--mask",
            small.to_str().unwrap(),
            "--data",
            "embedded",
            "--out",
            refused.to_str().unwrap(),
        ]),
        "the mask is 16x16, the images 28x28",
    );
    assert!(!refused.exists(), "nothing written for a refused mask");
    assert_bad_input(
        &latentlab(&[
            "inpaint", "--with", "mean", "--mask", "centre", "--data", "embedded",
        ]),
        "neither center, free nor a mask image file",
    );
    std::fs::remove_dir_all(&masks).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn trained_models_inpaint_and_colorize_keeping_what_is_seen() {
    let out = temp_out("edit-runs");
    let dir = out.to_str().unwrap();
    // Zero-shot with a VAE and a GAN run: a few steps of latent search each.
    let vae = tiny_run("edit-vae", "vae", "4");
    let gan = temp_out("edit-gan");
    assert_success(&latentlab(&[
        "train",
        "gan",
        "--generator",
        "mlp",
        "--discriminator",
        "mlp",
        "--hidden",
        "32",
        "--latent",
        "8",
        "--data",
        "embedded",
        "--limit",
        "100",
        "--batch-size",
        "50",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        gan.to_str().unwrap(),
    ]));
    for run in [&vae, &gan] {
        // Inpainting, and super-resolution searching the same latent space for the small image.
        for (job, flag, value, says) in [
            ("inpaint", "--mask", "free", "hole PSNR"),
            ("superres", "--scale", "4", "x4, area downsampled"),
        ] {
            let stdout = assert_success(&latentlab(&[
                job,
                "--with",
                run.to_str().unwrap(),
                flag,
                value,
                "--steps",
                "5",
                "--restarts",
                "2",
                "--data",
                "embedded",
                "--n",
                "2",
                "--out",
                dir,
                "--force",
                "--quiet",
            ]));
            assert!(stdout.contains(says), "{stdout}");
            assert!(out.join("edited/000001.png").is_file());
        }
    }
    // eval-edit: the protocol's numbers as JSON, with a classifier's accuracy and FD.
    let classifier = temp_out("edit-scorer");
    assert_success(&latentlab(&[
        "train",
        "classifier",
        "--data",
        "embedded",
        "--limit",
        "100",
        "--batch-size",
        "50",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        classifier.to_str().unwrap(),
    ]));
    // Style transfer reads a classifier's features only from colour images.
    assert_bad_input(
        &latentlab(&[
            "style",
            "--content",
            "embedded:cat",
            "--style",
            "embedded:ihc",
            "--features",
            classifier.to_str().unwrap(),
        ]),
        "needs an RGB one",
    );
    let json = out.join("scores.json");
    let stdout = assert_success(&latentlab(&[
        "eval-edit",
        "--task",
        "uncrop",
        "--side",
        "top",
        "--with",
        vae.to_str().unwrap(),
        "--steps",
        "3",
        "--classifier",
        classifier.to_str().unwrap(),
        "--data",
        "embedded",
        "--n",
        "12",
        "--save-edited",
        "4",
        "--out",
        json.to_str().unwrap(),
        "--quiet",
    ]));
    assert!(stdout.contains("uncrop (top half missing)"), "{stdout}");
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(scores["n"], 12);
    assert_eq!(scores["degradation"], "top");
    for field in [
        "psnr_hole",
        "psnr_whole",
        "ssim",
        "l1",
        "classifier_fd",
        "seconds",
    ] {
        assert!(scores[field].as_f64().unwrap() >= 0.0, "{field}: {scores}");
    }
    // Half the image is given, so the whole image scores better than the hole.
    assert!(scores["psnr_whole"].as_f64() > scores["psnr_hole"].as_f64());
    let accuracy = scores["classifier_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    for folder in ["original", "input", "edited"] {
        assert!(out.join(format!("scores/{folder}/000003.png")).is_file());
    }
    std::fs::remove_dir_all(&classifier).unwrap();
    // Colorization keeps the luma: each edited pixel's BT.601 luma is the original's, up to
    // the rounding of the PNG's bytes.
    let data =
        latentlab::data::load_dataset(&latentlab::data::DataSpec::EmbeddedRgb, Default::default())
            .unwrap();
    for method in ["gray", "pca"] {
        let stdout = assert_success(&latentlab(&[
            "colorize",
            "--with",
            method,
            "--k",
            "10",
            "--data",
            "embedded-rgb",
            "--n",
            "2",
            "--out",
            dir,
            "--force",
            "--quiet",
        ]));
        assert!(stdout.contains("luma only"), "{stdout}");
        for (i, &index) in data.test.spread(2).iter().enumerate() {
            let edited = image::open(out.join(format!("edited/{i:06}.png")))
                .unwrap()
                .to_rgb8();
            let original = data.test.image(index);
            for (p, rgb) in edited.pixels().enumerate() {
                let luma = |r: f32, g: f32, b: f32| 0.299 * r + 0.587 * g + 0.114 * b;
                let want = luma(
                    original[p] as f32,
                    original[1024 + p] as f32,
                    original[2048 + p] as f32,
                );
                let got = luma(rgb[0] as f32, rgb[1] as f32, rgb[2] as f32);
                assert!(
                    (want - got).abs() <= 1.0,
                    "{method}: pixel {p}: {want} vs {got}"
                );
            }
        }
    }
    // Bad input: one line, exit 2, nothing written.
    let refused = temp_out("edit-refused");
    let refused_dir = refused.to_str().unwrap();
    assert_bad_input(
        &latentlab(&[
            "colorize",
            "--with",
            "gray",
            "--data",
            "embedded",
            "--out",
            refused_dir,
        ]),
        "colorization needs colour images",
    );
    assert_bad_input(
        &latentlab(&[
            "inpaint",
            "--with",
            "gray",
            "--data",
            "embedded",
            "--out",
            refused_dir,
        ]),
        "colorization's baseline",
    );
    let classifier = temp_out("edit-classifier");
    std::fs::create_dir_all(&classifier).unwrap();
    std::fs::copy(
        "src/run/fixtures/legacy-classifier.json",
        classifier.join("config.json"),
    )
    .unwrap();
    assert_bad_input(
        &latentlab(&[
            "inpaint",
            "--with",
            classifier.to_str().unwrap(),
            "--data",
            "embedded",
            "--out",
            refused_dir,
        ]),
        "a classifier run makes no images",
    );
    assert_bad_input(
        &latentlab(&[
            "colorize",
            "--with",
            vae.to_str().unwrap(),
            "--data",
            "embedded-rgb",
            "--out",
            refused_dir,
        ]),
        "trained on images of 1x28x28, these are 3x32x32",
    );
    assert!(!refused.exists(), "nothing written for refused input");
    for folder in [&out, &vae, &gan, &classifier] {
        std::fs::remove_dir_all(folder).unwrap();
    }
}
