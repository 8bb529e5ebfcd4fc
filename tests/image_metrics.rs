//! PSNR and SSIM against scikit-image on the same images (tests/fixtures/image_metrics.json,
//! written by `bench/image_metrics_reference.py` with scikit-image's default SSIM settings).

use latentlab::data::ImageShape;
use latentlab::eval::image_metrics::{psnr, ssim};

#[test]
fn psnr_and_ssim_match_scikit_image() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/image_metrics.json"
    ))
    .unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let dims: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let shape = ImageShape {
            channels: dims[0],
            height: dims[1],
            width: dims[2],
        };
        let pixels = |key: &str| -> Vec<f32> {
            case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as f32 / 255.0)
                .collect()
        };
        let (a, b) = (pixels("a"), pixels("b"));
        let expected_psnr = case["psnr"].as_f64().unwrap();
        let expected_ssim = case["ssim"].as_f64().unwrap();
        let ours_psnr = psnr(&a, &b);
        let ours_ssim = ssim(&a, &b, shape);
        assert!(
            (ours_psnr - expected_psnr).abs() < 1e-6,
            "{dims:?}: PSNR {ours_psnr} vs scikit-image {expected_psnr}"
        );
        assert!(
            (ours_ssim - expected_ssim).abs() < 1e-6,
            "{dims:?}: SSIM {ours_ssim} vs scikit-image {expected_ssim}"
        );
    }
}
