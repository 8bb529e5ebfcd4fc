//! Neural style transfer (Gatys, Ecker & Bethge 2015, "A neural algorithm of artistic style"):
//! the semantic content of one image in the style of another, by optimising the pixels of an
//! image x for
//!
//! ```text
//! L(x) = L_content + w · L_style
//! L_content = ‖F_c(x) − F_c(content)‖² / ‖F_c(content)‖²
//! L_style   = (1/L) Σ_l ‖G_l(x) − G_l(style)‖² / ‖G_l(style)‖²,   G_l = F_l F_lᵀ / (h_l·w_l)
//! ```
//!
//! where F_l are the feature maps of a fixed network (channels × pixels) and G_l their Gram
//! matrices: which features fire together, wherever they are, i.e. texture without layout. Both
//! terms are divided by the size of their target so that w = `--style-weight` means the same for
//! any network or image size (the paper's α/β depend on both).
//!
//! The network must work offline, so three kinds (`--features`):
//! - `random`: four 3×3 convolutions with ReLU and 2×2 average pooling between them (widths 32 to
//!   256), He-initialised from `--seed`. Ustyuzhaninov et al. (2016, arXiv 1606.00021) found that
//!   random shallow networks rival VGG's textures; style is read at all four scales, content at
//!   the third.
//! - a trained latentlab classifier run (RGB): its convolution blocks.
//! - `vgg19:PATH`: torchvision's VGG-19 `features` as a safetensors file
//!   (`features.0.weight` … `features.34.bias`), ImageNet-normalised input, average pooling as
//!   the paper prefers; style at conv1_1 … conv5_1, content at conv4_2.
//!
//! x starts from the content image (or noise) and takes Adam steps on its pixels, clipped to
//! [0, 1] after each.

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::models::classifier::Classifier;
use crate::ops::FastConv;
use crate::optim::AdamSettings;

/// What `--features` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureSpec {
    /// Random convolutions, seeded.
    Random,
    /// A trained classifier run.
    Run(PathBuf),
    /// A VGG-19 safetensors file with torchvision's names.
    Vgg19(PathBuf),
}

impl FeatureSpec {
    pub fn parse(value: &str) -> std::result::Result<Self, String> {
        if value == "random" {
            return Ok(FeatureSpec::Random);
        }
        if let Some(path) = value.strip_prefix("vgg19:") {
            return Ok(FeatureSpec::Vgg19(path.into()));
        }
        if Path::new(value).is_dir() {
            return Ok(FeatureSpec::Run(value.into()));
        }
        Err(format!(
            "'{value}' is neither random, vgg19:PATH nor a classifier run folder"
        ))
    }
}

/// Widths of the random network's four convolutions.
const RANDOM_WIDTHS: [usize; 4] = [32, 64, 128, 256];

/// torchvision's VGG-19 `features`: the index of each convolution, in blocks separated by a
/// pooling layer.
const VGG19_BLOCKS: [&[usize]; 5] = [
    &[0, 2],
    &[5, 7],
    &[10, 12, 14, 16],
    &[19, 21, 23, 25],
    &[28, 30, 32, 34],
];

/// A fixed network whose feature maps measure content and style (one per command: its size
/// does not matter).
#[allow(clippy::large_enum_variant)]
pub enum FeatureNet {
    /// Convolutions (3×3, ReLU) with a 2×2 average pool before each but the first.
    Random { convs: Vec<Conv2d>, pool: AvgPool2d },
    /// A latentlab classifier's convolution blocks.
    Classifier(Box<Classifier>),
    /// VGG-19's convolutions by block; pooling between blocks; ImageNet's channel mean and
    /// deviation, `[1, 3, 1, 1]`, that inputs are normalised with.
    Vgg19 {
        blocks: Vec<Vec<Conv2d>>,
        pool: AvgPool2d,
        mean: Tensor<4>,
        std: Tensor<4>,
    },
}

impl FeatureNet {
    /// Builds the network `spec` names, on `device`; `seed` draws the random one.
    pub fn build(spec: &FeatureSpec, seed: u64, device: &Device) -> Result<Self> {
        match spec {
            FeatureSpec::Random => Ok(Self::random(seed, device)),
            FeatureSpec::Run(path) => {
                let run = crate::run::Run::open(path)?;
                let config = run.classifier_config().map_err(|_| {
                    Error::bad_input(format!(
                        "{}: --features takes a classifier run, not this one",
                        path.display()
                    ))
                })?;
                if config.classifier.shape.channels != 3 {
                    return Err(Error::bad_input(format!(
                        "{}: the classifier reads {}-channel images; style transfer needs an RGB \
                         one (train classifier --data embedded-rgb)",
                        path.display(),
                        config.classifier.shape.channels
                    )));
                }
                Ok(FeatureNet::Classifier(Box::new(
                    run.load_classifier(device)?,
                )))
            }
            FeatureSpec::Vgg19(path) => load_vgg19(path, device),
        }
    }

    fn random(seed: u64, device: &Device) -> Self {
        let mut previous = 3;
        let convs = RANDOM_WIDTHS
            .iter()
            .enumerate()
            .map(|(i, &width)| {
                let fan_in = previous * 9;
                let std = (2.0 / fan_in as f64).sqrt();
                let mut rng = rand::rngs::StdRng::seed_from_u64(crate::rng::mix(
                    seed,
                    crate::rng::stream::INIT,
                    i as u64,
                ));
                let normal = Normal::new(0.0, std).expect("a positive deviation");
                let weights: Vec<f32> = (0..width * fan_in)
                    .map(|_| normal.sample(&mut rng) as f32)
                    .collect();
                let weight = Tensor::<4>::from_data(
                    TensorData::new(weights, [width, previous, 3, 3]),
                    device,
                );
                previous = width;
                conv_with(weight, None, device)
            })
            .collect();
        FeatureNet::Random {
            convs,
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    /// The feature maps of `image` `[1, 3, h, w]` in [0, 1] that style and content are read
    /// from.
    pub fn features(&self, image: Tensor<4>) -> FeatureMaps {
        match self {
            FeatureNet::Random { convs, pool } => {
                let mut style = Vec::with_capacity(convs.len());
                let mut h = image - 0.5; // centred, as the weights are
                for (i, conv) in convs.iter().enumerate() {
                    if i > 0 {
                        h = pool.forward(h); // [1, c, h/2, w/2]
                    }
                    h = conv.forward_fast_relu(h); // [1, width_i, h_i, w_i]
                    style.push(h.clone());
                }
                let content = style[2].clone();
                FeatureMaps { style, content }
            }
            FeatureNet::Classifier(classifier) => {
                let style = classifier.conv_features(image);
                let content = style.last().expect("a classifier has convolutions").clone();
                FeatureMaps { style, content }
            }
            FeatureNet::Vgg19 {
                blocks,
                pool,
                mean,
                std,
            } => {
                let mut h = (image - mean.clone()) / std.clone();
                let mut style = Vec::new();
                let mut content = None;
                for (b, block) in blocks.iter().enumerate() {
                    if b > 0 {
                        h = pool.forward(h);
                    }
                    for (i, conv) in block.iter().enumerate() {
                        h = conv.forward_fast_relu(h); // [1, c, h_b, w_b]
                        if i == 0 {
                            style.push(h.clone()); // conv{b+1}_1
                        }
                        if b == 3 && i == 1 {
                            content = Some(h.clone()); // conv4_2
                        }
                    }
                }
                FeatureMaps {
                    style,
                    content: content.expect("VGG-19 has a fourth block"),
                }
            }
        }
    }
}

/// What a [`FeatureNet`] sees of an image.
pub struct FeatureMaps {
    /// The maps whose Gram matrices measure style (`[1, c_l, h_l, w_l]` each), weighted equally.
    pub style: Vec<Tensor<4>>,
    /// The map content is measured on; with VGG-19 (conv4_2) it is in no style term.
    pub content: Tensor<4>,
}

/// A 3×3 same-padded convolution with the given weights `[out, in, 3, 3]` (and bias).
fn conv_with(weight: Tensor<4>, bias: Option<Tensor<1>>, device: &Device) -> Conv2d {
    let [out, input, ..] = weight.dims();
    let mut conv = Conv2dConfig::new([input, out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias.is_some())
        .init(device);
    conv.weight = Param::from_tensor(weight);
    conv.bias = bias.map(Param::from_tensor);
    conv
}

/// Reads torchvision's VGG-19 `features` from a safetensors file: each convolution's
/// `features.{i}.weight` `[out, in, 3, 3]` and `features.{i}.bias` `[out]`, each reading the
/// previous one's channels, the first 3. Any width is accepted (a test writes a narrow one).
fn load_vgg19(path: &Path, device: &Device) -> Result<FeatureNet> {
    use safetensors::SafeTensors;
    let bad =
        |why: String| Error::bad_input(format!("{}: not a VGG-19 file: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let view = tensors
            .tensor(name)
            .map_err(|_| bad(format!("no tensor {name}")))?;
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(bad(format!("{name} is {:?}, expected F32", view.dtype())));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok((view.shape().to_vec(), values))
    };
    let mut previous = 3;
    let mut blocks = Vec::new();
    for block in VGG19_BLOCKS {
        let mut convs = Vec::new();
        for &index in block {
            let (shape, weight) = read(&format!("features.{index}.weight"))?;
            let [out, input, 3, 3] = shape[..] else {
                return Err(bad(format!(
                    "features.{index}.weight is {shape:?}, expected [out, in, 3, 3]"
                )));
            };
            if input != previous {
                return Err(bad(format!(
                    "features.{index}.weight reads {input} channels, the layer before gives \
                     {previous}"
                )));
            }
            let (bias_shape, bias) = read(&format!("features.{index}.bias"))?;
            if bias_shape != [out] {
                return Err(bad(format!(
                    "features.{index}.bias is {bias_shape:?}, expected [{out}]"
                )));
            }
            let weight = Tensor::<4>::from_data(TensorData::new(weight, shape), device);
            let bias = Tensor::<1>::from_data(TensorData::new(bias, [out]), device);
            convs.push(conv_with(weight, Some(bias), device));
            previous = out;
        }
        blocks.push(convs);
    }
    let channel = |values: [f32; 3]| {
        Tensor::<1>::from_data(TensorData::new(values.to_vec(), [3]), device).reshape([1, 3, 1, 1])
    };
    Ok(FeatureNet::Vgg19 {
        blocks,
        pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        mean: channel([0.485, 0.456, 0.406]),
        std: channel([0.229, 0.224, 0.225]),
    })
}

/// The Gram matrix of feature maps `[n, c, h, w]`: F Fᵀ / (h·w) per image, `[n, c, c]`.
pub(crate) fn gram(features: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = features.dims();
    let f = features.reshape([n, c, h * w]); // [n, c, hw]
    f.clone().matmul(f.swap_dims(1, 2)) / (h * w) as f64 // [n, c, c]
}

/// What the result is compared with: the content's feature map and the style's Gram matrices.
pub struct Targets {
    content: Tensor<4>,
    grams: Vec<Tensor<3>>,
}

impl Targets {
    pub fn new(net: &FeatureNet, content: Tensor<4>, style: Tensor<4>) -> Self {
        Self {
            content: net.features(content).content.detach(),
            grams: net
                .features(style)
                .style
                .into_iter()
                .map(|m| gram(m).detach())
                .collect(),
        }
    }

    /// (L_content, L_style) of `image` `[1, 3, h, w]`, each `[1]`.
    pub fn losses(&self, net: &FeatureNet, image: Tensor<4>) -> (Tensor<1>, Tensor<1>) {
        let maps = net.features(image);
        let relative = |a: Tensor<4>, b: Tensor<4>| {
            (a - b.clone()).powi_scalar(2).sum() / (b.powi_scalar(2).sum() + 1e-12)
        };
        let content = relative(maps.content, self.content.clone());
        let layers = self.grams.len() as f64;
        let style = maps
            .style
            .into_iter()
            .zip(&self.grams)
            .map(|(m, target)| {
                (gram(m) - target.clone()).powi_scalar(2).sum()
                    / (target.clone().powi_scalar(2).sum() + 1e-12)
            })
            .reduce(|a, b| a + b)
            .expect("at least one layer")
            / layers;
        (content, style)
    }
}

/// Where the optimisation starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Start {
    /// The content image (converges in fewer steps).
    Content,
    /// Uniform noise, seeded (the paper's start).
    Noise,
}

/// How the pixels are optimised.
#[derive(Debug, Clone, Copy)]
pub struct StyleSettings {
    pub steps: usize,
    /// Adam's learning rate on pixels in [0, 1].
    pub lr: f64,
    pub style_weight: f64,
    pub start: Start,
    pub seed: u64,
}

/// The pixels being optimised, as a module so burn's optimizer can step them.
#[derive(Module, Debug)]
struct Canvas {
    pixels: Param<Tensor<4>>,
}

/// The losses after a step.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct StepLosses {
    pub content: f64,
    pub style: f64,
    pub total: f64,
}

/// Optimises an image for `targets` under `net` (on an autodiff device): `content` `[1, 3, h, w]`
/// fixes the size and, with [`Start::Content`], the start. `on_step` sees each step's losses
/// (measured before the step). Returns the image, detached, in [0, 1].
pub fn transfer(
    net: &FeatureNet,
    targets: &Targets,
    content: Tensor<4>,
    settings: &StyleSettings,
    mut on_step: impl FnMut(usize, StepLosses),
) -> Tensor<4> {
    let start = match settings.start {
        Start::Content => content.detach(),
        Start::Noise => {
            let dims = content.dims();
            let device = content.device();
            let mut rng = rand::rngs::StdRng::seed_from_u64(crate::rng::mix(
                settings.seed,
                crate::rng::stream::SAMPLE,
                0,
            ));
            let values: Vec<f32> = (0..dims.iter().product::<usize>())
                .map(|_| rng.random_range(0.0f32..1.0))
                .collect();
            Tensor::<4>::from_data(TensorData::new(values, dims), &device)
        }
    };
    let mut canvas = Canvas {
        pixels: Param::from_tensor(start),
    };
    let mut optimizer = AdamSettings::pytorch(settings.lr).init();
    for step in 0..settings.steps {
        let (content_loss, style_loss) = targets.losses(net, canvas.pixels.val());
        let loss = content_loss.clone() + style_loss.clone() * settings.style_weight; // [1]
        // One read back per step, for both parts.
        let parts: Vec<f32> = Tensor::cat(vec![content_loss.detach(), style_loss.detach()], 0)
            .into_data()
            .iter::<f32>()
            .collect();
        let (content, style) = (parts[0] as f64, parts[1] as f64);
        on_step(
            step,
            StepLosses {
                content,
                style,
                total: content + settings.style_weight * style,
            },
        );
        let grads = GradientsParams::from_grads(loss.backward(), &canvas);
        canvas = optimizer.step(settings.lr, canvas, grads);
        // Projected steps: the pixels stay images.
        let clipped = canvas.pixels.val().clamp(0.0, 1.0).detach().require_grad();
        canvas.pixels = Param::initialized(canvas.pixels.id, clipped);
    }
    canvas.pixels.val().detach()
}

/// What `style.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StyleReport {
    pub content: String,
    pub style: String,
    pub features: String,
    pub size: [usize; 2],
    pub steps: usize,
    pub lr: f64,
    pub style_weight: f64,
    pub first: Option<StepLosses>,
    pub last: Option<StepLosses>,
    pub seconds: f64,
    #[serde(skip)]
    pub out: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(seed: u32, side: usize, device: &Device) -> Tensor<4> {
        let values: Vec<f32> = (0..3 * side * side)
            .map(|i| {
                let (c, p) = (i / (side * side), i % (side * side));
                let (y, x) = ((p / side) as f32, (p % side) as f32);
                0.5 + 0.4 * ((x * 0.3 + seed as f32).sin() * (y * 0.2 + c as f32).cos())
            })
            .collect();
        Tensor::<4>::from_data(TensorData::new(values, [1, 3, side, side]), device)
    }

    /// A narrow VGG-19 file of torchvision's names and layout (4 channels throughout) whose
    /// conv5_1 is all zeros, so no style term depends on conv4_2 through it; `conv4_2_shift` is
    /// added to conv4_2's weights.
    fn write_narrow_vgg19(path: &Path, conv4_2_shift: f32) {
        use safetensors::tensor::{Dtype, TensorView};
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut previous = 3;
        for &index in VGG19_BLOCKS.iter().flat_map(|b| b.iter()) {
            let width = 4;
            let weight: Vec<f32> = (0..width * previous * 9)
                .map(|i| match index {
                    28 => 0.0,
                    21 => ((i * 37 % 17) as f32 - 8.0) * 0.05 + conv4_2_shift,
                    _ => ((i * 37 % 17) as f32 - 8.0) * 0.05,
                })
                .collect();
            let bias = vec![if index == 28 { 0.0 } else { 0.01f32 }; width];
            let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
            tensors.push((
                format!("features.{index}.weight"),
                vec![width, previous, 3, 3],
                bytes(&weight),
            ));
            tensors.push((format!("features.{index}.bias"), vec![width], bytes(&bias)));
            previous = width;
        }
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(name, shape, data)| {
                let view = TensorView::new(Dtype::F32, shape.clone(), data).unwrap();
                (name.clone(), view)
            })
            .collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    }

    /// Gatys et al.: style from conv1_1 … conv5_1, content from conv4_2 alone.
    #[test]
    fn vgg19_reads_content_at_conv4_2_and_style_at_the_five_first_convolutions() {
        let device = Device::flex().autodiff();
        let dir = std::env::temp_dir().join(format!("latentlab-vgg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (content, style) = (photo(0, 32, &device), photo(4, 32, &device));
        let image = photo(9, 32, &device);
        let losses = |shift: f32| {
            let path = dir.join(format!("vgg-{shift}.safetensors"));
            write_narrow_vgg19(&path, shift);
            let net = load_vgg19(&path, &device).unwrap();
            let maps = net.features(image.clone());
            assert_eq!(maps.style.len(), 5, "conv1_1 … conv5_1");
            let targets = Targets::new(&net, content.clone(), style.clone());
            let (c, s) = targets.losses(&net, image.clone());
            (c.into_scalar::<f32>(), s.into_scalar::<f32>())
        };
        let (content_loss, style_loss) = losses(0.0);
        let (moved_content, moved_style) = losses(0.3);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            (moved_content - content_loss).abs() > 1e-3 * content_loss,
            "conv4_2 moves the content loss: {content_loss} → {moved_content}"
        );
        assert_eq!(style_loss, moved_style, "no style term reads conv4_2");
        assert!(style_loss > 0.0);
    }

    #[test]
    fn the_gram_matrix_is_its_definition() {
        let device = Device::flex();
        let values: Vec<f32> = (0..3 * 4).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
        let f = Tensor::<4>::from_data(TensorData::new(values.clone(), [1, 3, 2, 2]), &device);
        let g: Vec<f32> = gram(f).into_data().iter::<f32>().collect();
        for i in 0..3 {
            for j in 0..3 {
                let want: f32 = (0..4)
                    .map(|p| values[i * 4 + p] * values[j * 4 + p])
                    .sum::<f32>()
                    / 4.0;
                assert!((g[i * 3 + j] - want).abs() < 1e-5, "G[{i},{j}]");
            }
        }
    }

    #[test]
    fn the_style_image_itself_has_zero_style_loss() {
        let device = Device::flex().autodiff();
        let net = FeatureNet::random(0, &device);
        let (content, style) = (photo(0, 32, &device), photo(5, 32, &device));
        let targets = Targets::new(&net, content.clone(), style.clone());
        let (_, style_loss) = targets.losses(&net, style);
        assert!(style_loss.into_scalar::<f32>() < 1e-10);
        let (content_loss, _) = targets.losses(&net, content);
        assert!(content_loss.into_scalar::<f32>() < 1e-10);
    }

    #[test]
    fn the_loss_falls_and_without_style_the_result_returns_to_the_content() {
        let device = Device::flex().autodiff();
        let net = FeatureNet::random(1, &device);
        let (content, style) = (photo(0, 32, &device), photo(3, 32, &device));
        let targets = Targets::new(&net, content.clone(), style);
        let mut losses = Vec::new();
        let settings = StyleSettings {
            steps: 150,
            lr: 0.05,
            style_weight: 0.0,
            start: Start::Noise,
            seed: 0,
        };
        let result = transfer(&net, &targets, content.clone(), &settings, |_, l| {
            losses.push(l.total)
        });
        eprintln!("{:?}", losses.iter().step_by(10).collect::<Vec<_>>());
        let mse = |a: Tensor<4>| {
            (a - content.clone())
                .powi_scalar(2)
                .mean()
                .into_scalar::<f32>()
        };
        let start = mse(Tensor::<4>::random(
            content.dims(),
            burn::tensor::Distribution::Uniform(0.0, 1.0),
            &device,
        ));
        let end = mse(result.clone());
        assert!(end < 0.2 * start, "MSE to the content {start} -> {end}");
        assert!(losses.last().unwrap() < &(0.05 * losses[0]), "{losses:?}");
        let values: Vec<f32> = result.into_data().iter::<f32>().collect();
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
        // With style, the total falls too.
        let mut losses = Vec::new();
        let settings = StyleSettings {
            steps: 20,
            style_weight: 10.0,
            start: Start::Content,
            ..settings
        };
        transfer(&net, &targets, content, &settings, |_, l| {
            losses.push(l.total)
        });
        assert!(losses.last().unwrap() < &losses[0], "{losses:?}");
    }
}
