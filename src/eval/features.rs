//! Feature sets for sample-quality metrics: Inception pool3 features (FID, KID, precision/recall
//! as papers report them) or the penultimate layer of our own classifier (a quick proxy for
//! training loops, always labelled as such, never as FID).

use crate::data::{ImageShape, Split};
use crate::models::classifier::Classifier;
use crate::models::inception::{self, InceptionV3};
use crate::{Error, Result};
use burn::prelude::*;
use indicatif::ProgressStyle;
use rayon::prelude::*;
use std::path::Path;

/// `n` feature vectors of `dim` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub n: usize,
    pub dim: usize,
    pub values: Vec<f32>,
}

impl Features {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.values.chunks(self.dim)
    }

    /// As safetensors, one tensor `features` of shape `[n, dim]` (numpy/torch can read it).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            vec![self.n, self.dim],
            &bytes,
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        let serialized = safetensors::serialize(vec![("features", view)], None)
            .map_err(|e| Error::Internal(e.to_string()))?;
        crate::fsutil::write_atomic(path, &crate::checksum::seal_safetensors(&serialized)?)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad =
            |e: String| Error::bad_input(format!("{}: not a features file ({e})", path.display()));
        crate::checksum::verify_safetensors(&bytes, &path.display().to_string())?;
        let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let view = file.tensor("features").map_err(|e| bad(e.to_string()))?;
        match (view.dtype(), view.shape()) {
            (safetensors::Dtype::F32, &[n, dim]) => Ok(Self {
                n,
                dim,
                values: view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            }),
            _ => Err(bad("expected f32 [n, dim]".into())),
        }
    }
}

/// Which network turns images into features.
pub(crate) enum Extractor {
    Inception(Box<InceptionV3>),
    /// A trained classifier (`train classifier`) and the image shape it takes.
    Classifier {
        model: Box<Classifier>,
        shape: ImageShape,
    },
}

/// Images per forward pass: Inception's 299x299 activations take ~70 MB per image at their peak.
const INCEPTION_BATCH: usize = 16;
const CLASSIFIER_BATCH: usize = 500;

impl Extractor {
    /// The name results are labelled with.
    pub fn name(&self) -> &'static str {
        match self {
            Extractor::Inception(_) => "inception",
            Extractor::Classifier { .. } => "classifier",
        }
    }

    /// Features of every image of `images` (pixels as bytes, `CHW`).
    pub fn extract(
        &self,
        images: &Split,
        device: &Device,
        label: &str,
        quiet: bool,
    ) -> Result<Features> {
        let n = images.len();
        let bar = crate::ui::new_bar(Some(n as u64), quiet);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {per_sec} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{} features of {label}", self.name()));
        let shape = images.shape;
        let mut values = Vec::new();
        let dim = match self {
            Extractor::Inception(net) => {
                let size = inception::INPUT_SIZE;
                for start in (0..n).step_by(INCEPTION_BATCH) {
                    let end = (start + INCEPTION_BATCH).min(n);
                    let input: Vec<f32> = (start..end)
                        .into_par_iter()
                        .flat_map_iter(|i| inception::to_input(images.image(i), shape))
                        .collect();
                    let x = Tensor::<4>::from_data(
                        TensorData::new(input, [end - start, 3, size, size]),
                        device,
                    );
                    values.extend(read(net.forward(x))?); // [batch, 2048]
                    bar.inc((end - start) as u64);
                }
                inception::FEATURES
            }
            Extractor::Classifier {
                model,
                shape: expected,
            } => {
                if shape != *expected {
                    return Err(Error::bad_input(format!(
                        "{label}: images are {shape}, the classifier takes {expected}"
                    )));
                }
                for start in (0..n).step_by(CLASSIFIER_BATCH) {
                    let end = (start + CLASSIFIER_BATCH).min(n);
                    let pixels: Vec<f32> = images.pixels[start * shape.len()..end * shape.len()]
                        .iter()
                        .map(|&b| b as f32 / 255.0)
                        .collect();
                    let x = Tensor::<4>::from_data(
                        TensorData::new(
                            pixels,
                            [end - start, shape.channels, shape.height, shape.width],
                        ),
                        device,
                    );
                    values.extend(read(model.features(x))?); // [batch, hidden]
                    bar.inc((end - start) as u64);
                }
                values.len() / n.max(1)
            }
        };
        bar.finish_and_clear();
        Ok(Features { n, dim, values })
    }
}

fn read(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Internal(format!("reading features: {e:?}")))
}

/// FNV-1a over a split's shape and bytes: the key real-set features are cached under.
pub(crate) fn fingerprint(images: &Split) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let shape = images.shape;
    let header = [shape.channels, shape.height, shape.width, images.len()];
    for byte in header
        .iter()
        .flat_map(|v| (*v as u64).to_le_bytes())
        .chain(images.pixels.iter().copied())
    {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
