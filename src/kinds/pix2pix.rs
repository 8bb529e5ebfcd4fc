//! pix2pix and ESPCN runs (`kind` pix2pix): training G on what a task takes away (with a PatchGAN when asked), editing by applying G to what is seen.

use burn::module::Module;

use crate::error::Result;
use crate::models::gan::patchgan;
use crate::run::Pix2pixRun;
use crate::train::Outcome;
use crate::train::job::Job;
use crate::train::pix2pix::Pix2pixLearner;
use burn::tensor::Device;

use super::{Kind, check_editable};
use crate::edit::method::BuildOptions;
use crate::edit::methods::Editor;
use crate::edit::methods::conditional::ConditionalEdit;
use crate::error::Error;
use crate::run::Run;
use crate::sample::{Generative, SamplingRequest};

/// Trains a pix2pix run on `autodiff` (`device` with autodiff, already seeded).
pub fn train(
    config: &Pix2pixRun,
    job: &Job,
    _device: &burn::tensor::Device,
    autodiff: &burn::tensor::Device,
) -> Result<Outcome> {
    let model = &config.pix2pix;
    let test = &job.dataset.test;
    let fixed: Vec<Vec<f32>> = test
        .spread(8)
        .into_iter()
        .map(|i| test.unit_image(i))
        .collect();
    let mut learner = Pix2pixLearner::new(
        model.clone(),
        model.init_generator(autodiff),
        model.init_discriminator(autodiff),
        job.config.training.adam_settings(),
        job.seed(),
        fixed,
    )
    .with_split(job.batch_split()?);
    let mut description = vec![format!(
        "model: pix2pix for {}, {} ({} parameters){}",
        model.task.label(),
        model.generator.describe(),
        learner.generator().num_params(),
        match (learner.discriminator(), &model.discriminator) {
            (Some(d), Some(c)) => {
                let grid = patchgan::grid_side(c.shape.height, c.layers);
                let patch = patchgan::patch_size(c.layers);
                format!(
                    " vs a PatchGAN ({} parameters, a {grid}x{grid} grid of logits each seeing \
                     {patch}x{patch} of input and output); loss {}·L1 + adversarial",
                    d.num_params(),
                    model.l1_weight
                )
            }
            _ => ", L1 alone".into(),
        }
    )];
    description.push(format!(
        "training: {} epochs of batch {}, Adam lr {} (β1 {}, β2 {})",
        job.config.training.epochs,
        job.config.training.batch_size,
        job.config.training.lr,
        job.config.training.adam_beta_1,
        job.config.training.adam_beta_2
    ));
    let outcome = job.fit(&mut learner, &description, autodiff)?;
    if let Outcome::Finished { rows } = &outcome
        && let Some(last) = rows.last()
    {
        let parts = crate::train::metrics::format_parts(&last.test);
        crate::ui::say(&format!(
            "trained pix2pix ({}) for {} epochs: test {parts}; wrote {}",
            model.task.label(),
            last.epoch,
            job.out.display()
        ));
    }
    Ok(outcome)
}

impl Kind for Pix2pixRun {
    fn train(&self, job: &Job, device: &Device, autodiff: &Device) -> Result<Outcome> {
        train(self, job, device, autodiff)
    }

    fn generative(
        &self,
        run: &Run,
        _device: &Device,
        _sampling: &SamplingRequest,
    ) -> Result<Box<dyn Generative>> {
        Err(Error::bad_input(format!(
            "{}: a pix2pix run edits images but does not map codes to images; pass an \
             autoencoder's, VAE's, GAN's or diffusion run",
            run.path.display()
        )))
    }

    fn editor(&self, run: &Run, options: &BuildOptions<'_>) -> Result<Editor> {
        let shape = options.train.shape;
        check_editable(&run.path, shape, self.pix2pix.shape(), false)?;
        if self.pix2pix.task != options.task {
            return Err(Error::bad_input(format!(
                "{}: a pix2pix run trained to {}, not to {}",
                run.path.display(),
                self.pix2pix.task.label(),
                options.task.label()
            )));
        }
        let device = options.device.clone();
        let generator = run.load_pix2pix(&device)?.generator.valid();
        Ok(Editor::new(ConditionalEdit {
            generator: Box::new(generator),
            device,
        }))
    }
}
