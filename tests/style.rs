//! `latentlab style` end to end: the embedded photographs through random features and through a
//! VGG-19 file of torchvision's layout (narrow, written here), and bad input in one line.

mod common;

use std::path::Path;

use common::{assert_bad_input, assert_success, latentlab, png_size, temp_out};

/// torchvision's VGG-19 `features` convolution indices, by block.
const BLOCKS: [&[usize]; 5] = [
    &[0, 2],
    &[5, 7],
    &[10, 12, 14, 16],
    &[19, 21, 23, 25],
    &[28, 30, 32, 34],
];

/// A VGG-19 file with the real names and layout but `width` channels everywhere; `skip` leaves
/// one convolution out.
fn write_vgg19(path: &Path, width: usize, skip: Option<usize>) {
    use safetensors::tensor::{Dtype, TensorView};
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut previous = 3;
    for block in BLOCKS {
        for &index in block {
            if Some(index) == skip {
                continue;
            }
            let count = width * previous * 9;
            let weight: Vec<u8> = (0..count)
                .flat_map(|i| (((i * 37 % 17) as f32 - 8.0) * 0.05).to_le_bytes())
                .collect();
            let bias: Vec<u8> = (0..width).flat_map(|_| 0.01f32.to_le_bytes()).collect();
            tensors.push((
                format!("features.{index}.weight"),
                vec![width, previous, 3, 3],
                weight,
            ));
            tensors.push((format!("features.{index}.bias"), vec![width], bias));
            previous = width;
        }
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn style_transfer_writes_its_result_with_random_and_vgg19_features() {
    let out = temp_out("style");
    let dir = out.join("random");
    let stdout = assert_success(&latentlab(&[
        "style",
        "--content",
        "embedded:astronaut",
        "--style",
        "embedded:retina",
        "--size",
        "32",
        "--steps",
        "5",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ]));
    assert!(stdout.contains("style: 5 steps on 32x32"), "{stdout}");
    assert_eq!(png_size(&dir.join("result.png")), (32, 32));
    // Content, style and result side by side with two gaps.
    assert_eq!(png_size(&dir.join("strip.png")), (3 * 32 + 8, 32));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("style.json")).unwrap()).unwrap();
    let (first, last) = (&report["first"]["total"], &report["last"]["total"]);
    assert!(last.as_f64().unwrap() < first.as_f64().unwrap(), "{report}");

    let vgg = out.join("vgg19.safetensors");
    write_vgg19(&vgg, 4, None);
    let spec = format!("vgg19:{}", vgg.display());
    let dir = out.join("vgg");
    assert_success(&latentlab(&[
        "style",
        "--content",
        "embedded:cat",
        "--style",
        "embedded:hubble",
        "--features",
        &spec,
        "--size",
        "32",
        "--steps",
        "3",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ]));
    assert!(dir.join("result.png").is_file());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_style_input_gets_one_line() {
    let out = temp_out("style-bad");
    std::fs::create_dir_all(&out).unwrap();
    let run = |content: &str, features: &str| {
        latentlab(&[
            "style",
            "--content",
            content,
            "--style",
            "embedded:retina",
            "--features",
            features,
            "--size",
            "16",
            "--steps",
            "1",
            "--out",
            out.join("result").to_str().unwrap(),
        ])
    };
    assert_bad_input(
        &run("/nonexistent/photo.png", "random"),
        "not a readable image",
    );
    let text = out.join("notes.png");
    std::fs::write(&text, "not a picture").unwrap();
    assert_bad_input(
        &run(text.to_str().unwrap(), "random"),
        "not a readable image",
    );
    assert_bad_input(
        &run("embedded:dog", "random"),
        "no embedded photograph 'dog'",
    );
    assert_bad_input(&run("embedded:cat", "alexnet"), "'alexnet' is neither");
    let partial = out.join("partial.safetensors");
    write_vgg19(&partial, 4, Some(21));
    let spec = format!("vgg19:{}", partial.display());
    assert_bad_input(&run("embedded:cat", &spec), "no tensor features.21.weight");
    assert_bad_input(
        &run("embedded:cat", &format!("vgg19:{}", text.display())),
        "not a VGG-19 file",
    );
    std::fs::remove_dir_all(&out).unwrap();
}
