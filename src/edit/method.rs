//! What `--with mean|nearest|bicubic|gray|pca|RUN` names: parsed into a [`Method`], built into
//! an [`Editor`] once (fit the PCA; a run folder's network is loaded by its kind,
//! `crate::kinds::editor`), then asked to restore batches of images (`super::methods`).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use image::imageops::FilterType;

use super::invert::InversionSettings;
use super::methods::Editor;
use super::methods::baseline::{Gray, MeanImage, NearestImage, Upsample};
use super::methods::pca::PcaFill;
use super::repaint::RePaintSettings;
use super::{NearestBank, mean_image};
use crate::data::Split;
use crate::degrade::Task;
use crate::error::{Error, Result};
use crate::pca::{Components, Pca, PcaConfig, Solver};
use crate::run::Run;

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

impl Method {
    /// Fits or loads what the method needs; a run is checked against the images' shape.
    pub fn build(&self, options: &BuildOptions<'_>) -> Result<Editor> {
        let train = options.train;
        let superres = matches!(options.task, Task::Superres(_));
        match self {
            Method::Mean => Ok(Editor::new(MeanImage(mean_image(train)))),
            Method::Nearest if superres => Ok(Editor::new(Upsample(FilterType::Nearest))),
            Method::Bicubic if superres => Ok(Editor::new(Upsample(FilterType::CatmullRom))),
            Method::Bicubic => Err(Error::bad_input(
                "--with bicubic interpolates for super-resolution; the other jobs take mean, \
                 pca or a run folder",
            )),
            Method::Nearest => Ok(Editor::new(NearestImage {
                train: train.clone(),
                bank: Box::new(NearestBank::new(
                    train,
                    &options.task.random_degradation(train.shape, 0),
                )),
            })),
            Method::Gray if options.task != Task::Colorize => Err(Error::bad_input(
                "--with gray is colorization's baseline; the other jobs take mean, nearest, \
                 pca or a run folder",
            )),
            Method::Gray => Ok(Editor::new(Gray)),
            Method::Pca => {
                if options.k == 0 {
                    return Err(Error::bad_input("--k must be at least 1"));
                }
                let k = options.k.min(train.shape.len());
                let config = PcaConfig::new(Components::Count(k), Solver::Eigen);
                let pca = Pca::fit_bytes(&train.pixels, train.len(), 255.0, &config)?;
                Ok(Editor::new(PcaFill(Box::new(pca))))
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
                Ok(Editor::new(PcaFill(Box::new(pca.truncated(k)))))
            }
            Method::Run(path) => Err(Error::bad_input(format!(
                "{}: a run folder's editor is made by latentlab::kinds::editor",
                path.display()
            ))),
        }
    }
}
