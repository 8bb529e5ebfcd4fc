//! `latentlab classify RUN IMAGE...`: the class a trained classifier gives each image file (PNG or
//! JPEG), with its probability. Images are converted to the run's channels and resized to its
//! image size, pixels scaled to [0, 1] as in training.

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::run::Run;

#[derive(Debug, Clone, clap::Args)]
pub struct ClassifyArgs {
    /// A run folder written by `latentlab train classifier`.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Image files to classify.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
    /// Where tensors live: cpu (Flex), vulkan, wgpu or cuda (cargo features of those names).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

/// One image's prediction.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prediction {
    pub image: PathBuf,
    pub class: usize,
    pub name: String,
    pub probability: f64,
}

pub fn run(args: &ClassifyArgs) -> Result<Vec<Prediction>> {
    let device = args.device.device()?;
    let run = Run::open(&args.run)?;
    let config = run.classifier_config()?;
    let model = run.load_classifier(&device)?;
    let shape = config.classifier.shape;
    let mut pixels = Vec::with_capacity(args.images.len() * shape.len());
    for path in &args.images {
        let image = crate::data::folder::open_image(path).map_err(|e| {
            Error::bad_input(format!("{}: not a readable image ({e})", path.display()))
        })?;
        let image = image.resize_exact(
            shape.width as u32,
            shape.height as u32,
            image::imageops::FilterType::Triangle,
        );
        if shape.channels == 1 {
            pixels.extend(image.to_luma8().pixels().map(|p| p.0[0] as f32 / 255.0));
        } else {
            let planes = crate::data::folder::channel_major(&image.to_rgb8());
            pixels.extend(planes.into_iter().map(|v| v as f32 / 255.0));
        }
    }
    let n = args.images.len();
    let images = Tensor::<4>::from_data(
        TensorData::new(pixels, [n, shape.channels, shape.height, shape.width]),
        &device,
    );
    let probabilities: Vec<f32> = softmax(model.forward(images), 1)
        .into_data()
        .iter::<f32>()
        .collect();
    let classes = config.classifier.num_classes;
    let names = &config.class_names;
    let mut predictions = Vec::new();
    for (i, path) in args.images.iter().enumerate() {
        let row = &probabilities[i * classes..(i + 1) * classes];
        let (class, probability) =
            row.iter().enumerate().fold(
                (0, f32::MIN),
                |best, (c, &p)| if p > best.1 { (c, p) } else { best },
            );
        let name = names
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string());
        crate::ui::say(&format!(
            "{}: {name} (class {class}, p = {probability:.3})",
            path.display()
        ));
        predictions.push(Prediction {
            image: path.clone(),
            class,
            name,
            probability: probability as f64,
        });
    }
    Ok(predictions)
}
