//! The editing methods behind one interface: `--with mean|nearest|bicubic|gray|pca|RUN` is
//! parsed into a
//! [`Method`], built into an [`Editor`] once (fit the PCA, load the network), then asked to
//! restore batches of images. Every result is projected onto what was seen
//! ([`Degradation::project`]), so methods differ only in what they make up.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use image::imageops::FilterType;
use rayon::prelude::*;

use super::invert::{InversionSettings, invert_generator, invert_latent};
use super::repaint::{RePaintSettings, repaint};
use super::{CodePrior, NearestBank, mean_image, pca_fill};
use crate::data::{ImageShape, Split};
use crate::degrade::ObservedBatch;
use crate::degrade::{Degradation, Task};
use crate::error::{Error, Result};
use crate::models::LatentModel;
use crate::models::denoiser::Denoiser;
use crate::models::diffusion::{DiffusionPipeline, NoiseSchedule, Sampler, condition_of};
use crate::models::pix2pix::{Generator as ConditionalGenerator, conditioning};
use crate::pca::{Components, Pca, PcaConfig, Solver};
use crate::run::Run;
use crate::sample::{Generative, to_unit};

/// What `--with` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// The training set's mean image.
    Mean,
    /// The training image closest to the input on what is seen; for super-resolution,
    /// nearest-neighbour upsampling (each pixel repeated over its block), as image tools mean it.
    Nearest,
    /// Super-resolution by bicubic interpolation (Catmull-Rom, the `image` crate's resampler).
    Bicubic,
    /// Colorization's baseline: the luma copied to R, G and B.
    Gray,
    /// The principal components' codes that best explain what is seen (least squares, closed
    /// form), then PCA's reconstruction.
    Pca,
    /// A trained autoencoder, VAE or GAN run, inverted on what is seen; a diffusion run's
    /// RePaint walk; or a pix2pix run of the same task, applied.
    Run(PathBuf),
}

impl Method {
    /// Parses `--with`: a method's name, or a run folder.
    pub fn parse(value: &str) -> std::result::Result<Self, String> {
        match value {
            "mean" => Ok(Method::Mean),
            "nearest" => Ok(Method::Nearest),
            "bicubic" => Ok(Method::Bicubic),
            "gray" => Ok(Method::Gray),
            "pca" => Ok(Method::Pca),
            // A path (checked when the run is opened) or a folder here.
            path if path.contains(std::path::MAIN_SEPARATOR) || Path::new(path).is_dir() => {
                Ok(Method::Run(path.into()))
            }
            other => Err(format!(
                "'{other}' is neither mean, nearest, bicubic, gray, pca nor a run folder"
            )),
        }
    }

    /// The method's name in tables and grids: the run folder's name for a run.
    pub fn label(&self) -> String {
        match self {
            Method::Mean => "mean".into(),
            Method::Nearest => "nearest".into(),
            Method::Bicubic => "bicubic".into(),
            Method::Gray => "gray".into(),
            Method::Pca => "pca".into(),
            Method::Run(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
        }
    }
}

/// Everything [`Method::build`] may need.
pub struct BuildOptions<'a> {
    /// The training split: the mean image, the nearest neighbours, the PCA fit.
    pub train: &'a Split,
    /// Principal components for `pca`.
    pub k: usize,
    pub inversion: InversionSettings,
    /// How a diffusion run edits.
    pub repaint: RePaintSettings,
    /// The plain device; inversion runs on its autodiff twin.
    pub device: Device,
    /// The job (`gray` applies only to colorization; a pix2pix run only to its own task).
    pub task: Task,
}

/// A method ready to edit.
pub enum Editor {
    Mean(Vec<f32>),
    Nearest {
        train: Split,
        bank: Box<NearestBank>,
    },
    Gray,
    /// Interpolation of the small image (super-resolution).
    Upsample(image::imageops::FilterType),
    Pca(Box<Pca>),
    Latent {
        model: Box<LatentModel>,
        /// The training mean: the unknown part of the encoder's input.
        mean: Vec<f32>,
        settings: InversionSettings,
        device: Device,
    },
    Generator {
        generator: Box<dyn Generative>,
        settings: InversionSettings,
        device: Device,
    },
    /// A diffusion model: shown what is seen when trained for the job (SR3, Palette), else its
    /// RePaint walk (the unconditional prediction of a class-conditional run).
    Diffusion {
        model: Box<Denoiser>,
        task: Option<Task>,
        schedule: NoiseSchedule,
        settings: RePaintSettings,
        device: Device,
    },
    /// A trained pix2pix U-Net or ESPCN: one forward pass.
    Conditional {
        generator: Box<ConditionalGenerator>,
        device: Device,
    },
}

/// How `--with pca` weighs its codes.
const PCA_PRIOR: CodePrior = CodePrior::Probabilistic;

/// A method that restores one image at a time.
type PerImage<'a> = &'a (dyn Fn(&Vec<f32>, &Degradation) -> Result<Vec<f32>> + Sync);

/// Images per batch for the methods that run a network.
const BATCH: usize = 64;

impl Method {
    /// Fits or loads what the method needs; a run is checked against the images' shape.
    pub fn build(&self, options: &BuildOptions<'_>) -> Result<Editor> {
        let train = options.train;
        let superres = matches!(options.task, Task::Superres(_));
        match self {
            Method::Mean => Ok(Editor::Mean(mean_image(train))),
            Method::Nearest if superres => Ok(Editor::Upsample(FilterType::Nearest)),
            Method::Bicubic if superres => Ok(Editor::Upsample(FilterType::CatmullRom)),
            Method::Bicubic => Err(Error::bad_input(
                "--with bicubic interpolates for super-resolution; the other jobs take mean, \
                 pca or a run folder",
            )),
            Method::Nearest => Ok(Editor::Nearest {
                train: train.clone(),
                bank: Box::new(NearestBank::new(
                    train,
                    &options.task.random_degradation(train.shape, 0),
                )),
            }),
            Method::Gray if options.task != Task::Colorize => Err(Error::bad_input(
                "--with gray is colorization's baseline; the other jobs take mean, nearest, \
                 pca or a run folder",
            )),
            Method::Gray => Ok(Editor::Gray),
            Method::Pca => {
                if options.k == 0 {
                    return Err(Error::bad_input("--k must be at least 1"));
                }
                let k = options.k.min(train.shape.len());
                let config = PcaConfig::new(Components::Count(k), Solver::Eigen);
                let pca = Pca::fit_bytes(&train.pixels, train.len(), 255.0, &config)?;
                Ok(Editor::Pca(Box::new(pca)))
            }
            Method::Run(path) if Run::is_pca(path) => {
                // What `latentlab pca` kept: its mean and components, the first --k of them.
                let pca = Pca::load(&path.join("pca.safetensors"))?;
                if pca.n_features() != train.shape.len() {
                    return Err(Error::bad_input(format!(
                        "{}: the PCA was fitted on images of {} values, these have {} ({})",
                        path.display(),
                        pca.n_features(),
                        train.shape.len(),
                        train.shape
                    )));
                }
                let k = options.k.min(pca.n_components());
                Ok(Editor::Pca(Box::new(pca.truncated(k))))
            }
            Method::Run(path) => Err(Error::bad_input(format!(
                "{}: a run folder's editor is made by latentlab::kinds::editor",
                path.display()
            ))),
        }
    }
}

impl Editor {
    /// Restores `originals` (pixels in [0, 1], `[c, h, w]` flattened) seen through
    /// `degradations`: each result agrees exactly with what was seen.
    pub fn edit(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        assert_eq!(originals.len(), degradations.len());
        let mut edited = Vec::with_capacity(originals.len());
        for (images, seen) in originals.chunks(BATCH).zip(degradations.chunks(BATCH)) {
            let proposals = self.propose(images, seen, shape)?;
            for ((original, degradation), proposal) in images.iter().zip(seen).zip(proposals) {
                edited.push(degradation.project(original, &proposal, shape));
            }
        }
        Ok(edited)
    }

    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        let each = |f: PerImage<'_>| {
            originals
                .par_iter()
                .zip(degradations)
                .map(|(o, d)| f(o, d))
                .collect::<Result<Vec<_>>>()
        };
        match self {
            Editor::Mean(mean) => each(&|_, _| Ok(mean.clone())),
            Editor::Nearest { train, bank } => Ok(bank
                .closest(originals, degradations, shape)
                .into_iter()
                .map(|j| train.unit_image(j))
                .collect()),
            // The projection puts the luma back into every channel.
            Editor::Gray => each(&|_, _| Ok(vec![0.5; shape.len()])),
            Editor::Upsample(filter) => each(&|o, d| match d {
                Degradation::Downsample(s) => {
                    Ok(upsample(&d.observe(o, shape), shape, *s, *filter))
                }
                other => unreachable!("interpolation is built for super-resolution, not {other:?}"),
            }),
            Editor::Pca(pca) => each(&|o, d| pca_fill(pca, o, d, shape, PCA_PRIOR)),
            Editor::Latent {
                model,
                mean,
                settings,
                device,
            } => {
                let starts: Vec<f32> = originals
                    .iter()
                    .zip(degradations)
                    .flat_map(|(o, d)| d.project(o, mean, shape))
                    .collect();
                let n = originals.len();
                let starts = Tensor::<4>::from_data(
                    TensorData::new(starts, [n, shape.channels, shape.height, shape.width]),
                    device,
                );
                let observed = ObservedBatch::new(originals, degradations, shape, device);
                Ok(unbatch(
                    invert_latent(model, starts, &observed, settings),
                    shape,
                ))
            }
            Editor::Generator {
                generator,
                settings,
                device,
            } => {
                let observed = ObservedBatch::new(originals, degradations, shape, device);
                let filled = invert_generator(
                    generator.as_ref(),
                    originals.len(),
                    &observed,
                    settings,
                    device,
                );
                Ok(unbatch(filled, shape))
            }
            Editor::Diffusion {
                model,
                task,
                schedule,
                settings,
                device,
            } => {
                let n = originals.len();
                let dims = [n, shape.channels, shape.height, shape.width];
                let x_t =
                    Tensor::random(dims, burn::tensor::Distribution::Normal(0.0, 1.0), device);
                let filled = match task {
                    Some(task) => {
                        let pixels: Vec<f32> = originals.iter().flatten().copied().collect();
                        let images = Tensor::<4>::from_data(TensorData::new(pixels, dims), device);
                        let condition = condition_of(*task, images * 2.0 - 1.0);
                        let sampler = Sampler::Ddim {
                            steps: settings.steps,
                            eta: 0.0,
                        };
                        DiffusionPipeline::new(model, schedule, sampler)
                            .with_condition(condition)
                            .generate(x_t, None, |_, _| {})
                    }
                    None => {
                        let observed = ObservedBatch::new(originals, degradations, shape, device);
                        repaint(model, schedule, &observed, x_t, *settings, |_, _| {})
                    }
                };
                Ok(unbatch(to_unit(filled.clamp(-1.0, 1.0)), shape))
            }
            Editor::Conditional { generator, device } => {
                let n = originals.len();
                let pixels: Vec<f32> = originals.iter().flatten().copied().collect();
                let images = Tensor::<4>::from_data(
                    TensorData::new(pixels, [n, shape.channels, shape.height, shape.width]),
                    device,
                );
                Ok(unbatch(
                    generator.forward(&conditioning(images, degradations)),
                    shape,
                ))
            }
        }
    }
}

/// The small image `[c, h/s, w/s]` (flattened) resized to `shape` by `filter`, channel by
/// channel.
fn upsample(small: &[f32], shape: ImageShape, s: usize, filter: FilterType) -> Vec<f32> {
    let (h, w) = (shape.height / s, shape.width / s);
    small
        .chunks_exact(h * w)
        .flat_map(|channel| {
            let plane = image::ImageBuffer::<image::Luma<f32>, _>::from_raw(
                w as u32,
                h as u32,
                channel.to_vec(),
            )
            .expect("the plane's size");
            image::imageops::resize(&plane, shape.width as u32, shape.height as u32, filter)
                .into_raw()
        })
        .collect()
}

/// `[n, c, h, w]` → n images, `[c, h, w]` flattened.
fn unbatch(images: Tensor<4>, shape: ImageShape) -> Vec<Vec<f32>> {
    let values: Vec<f32> = images.into_data().iter::<f32>().collect();
    values
        .chunks_exact(shape.len())
        .map(<[f32]>::to_vec)
        .collect()
}
