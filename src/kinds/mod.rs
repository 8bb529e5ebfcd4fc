//! The kinds of model a run folder holds, each behind one trait, [`Kind`]: how a run of it
//! trains, and what it offers the commands that read it (images from codes or noise, editing).
//! The model's own settings and its `config.json` tag are its [`ModelConfig`] variant in `run/`;
//! everything else a kind does is its [`Kind`] implementation, in a file of its own here. A new
//! kind is its files (model, learner, this trait) plus the one line in [`of`].

pub mod autoencoder_kl;
pub mod classifier;
pub mod diffusion;
pub mod gan;
pub mod latent;
pub mod pix2pix;
pub mod two_stage;

use std::path::Path;

use burn::tensor::Device;

use crate::data::ImageShape;
use crate::edit::method::{BuildOptions, Method};
use crate::edit::methods::Editor;
use crate::error::{Error, Result};
use crate::run::{ModelConfig, Run};
use crate::sample::{Generative, SamplingRequest};
use crate::train::Outcome;
use crate::train::job::Job;

/// What a kind of model does with a run folder.
pub trait Kind {
    /// Trains the run `job` describes (new or resumed) on `autodiff` (`device` with autodiff,
    /// already seeded), through [`Job::fit`].
    fn train(&self, job: &Job, device: &Device, autodiff: &Device) -> Result<Outcome>;

    /// The run's model as a generator of images (`sampling`: diffusion runs only), or why it
    /// is none.
    fn generative(
        &self,
        run: &Run,
        device: &Device,
        sampling: &SamplingRequest,
    ) -> Result<Box<dyn Generative>>;

    /// The run as an editing method for `options`' job, or why it is none.
    fn editor(&self, run: &Run, options: &BuildOptions<'_>) -> Result<Editor>;
}

/// The kind of `model`: the registration of every kind.
pub fn of(model: &ModelConfig) -> &dyn Kind {
    match model {
        ModelConfig::Ae(c) | ModelConfig::Vae(c) => c,
        ModelConfig::Gan(c) => c,
        ModelConfig::Classifier(c) => c,
        ModelConfig::Pix2pix(c) => c,
        ModelConfig::Diffusion(c) => c,
        ModelConfig::AutoencoderKl(c) => c,
        ModelConfig::TwoStageVae(c) => c,
    }
}

/// `run`'s model as a generator of images (see [`Kind::generative`]).
pub fn generative(
    run: &Run,
    device: &Device,
    sampling: &SamplingRequest,
) -> Result<Box<dyn Generative>> {
    of(&run.config.model).generative(run, device, sampling)
}

/// The editor `--with` names: a built-in method (a `latentlab pca` folder is one), or a run
/// folder's ([`Kind::editor`]).
pub(crate) fn editor(method: &Method, options: &BuildOptions<'_>) -> Result<Editor> {
    match method {
        Method::Run(path) if !Run::is_pca(path) => {
            let run = Run::open(path)?;
            of(&run.config.model).editor(&run, options)
        }
        builtin => builtin.build(options),
    }
}

/// Refuses a run for editing images of `shape` when it was trained on another shape, or when
/// it needs each image's class (`conditional`).
pub(crate) fn check_editable(
    run: &Path,
    shape: ImageShape,
    model_shape: ImageShape,
    conditional: bool,
) -> Result<()> {
    if model_shape != shape {
        return Err(Error::bad_input(format!(
            "{}: the run was trained on images of {model_shape}, these are {shape}",
            run.display()
        )));
    }
    if conditional {
        return Err(Error::bad_input(format!(
            "{}: a class-conditional run needs each image's class; editing uses \
             unconditional runs",
            run.display()
        )));
    }
    Ok(())
}
