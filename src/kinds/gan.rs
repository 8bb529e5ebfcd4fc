//! GAN runs: training by Goodfellow et al.'s Algorithm 1, the generator as a map from codes to images, editing by inverting the generator.

use burn::module::Module;

use crate::error::Result;
use crate::models::gan::patchgan;
use crate::models::gan::{DiscriminatorArch, GeneratorLoss};
use crate::rng::{mix, stream};
use crate::run::GanRun;
use crate::sample::prior_noise;
use crate::train::Outcome;
use crate::train::gan::GanLearner;
use crate::train::job::Job;
use burn::tensor::Device;

use super::{Kind, check_editable};
use crate::edit::method::BuildOptions;
use crate::edit::methods::Editor;
use crate::edit::methods::inversion::GeneratorInversion;
use crate::run::Run;
use crate::sample::Trained;
use crate::sample::{Generative, SamplingRequest};

/// Trains a GAN run on `autodiff` (`device` with autodiff, already seeded).
pub fn train(
    config: &GanRun,
    job: &Job,
    device: &burn::tensor::Device,
    autodiff: &burn::tensor::Device,
) -> Result<Outcome> {
    let gan = &config.gan;
    let generator = gan.init_generator(autodiff);
    let discriminator = gan.init_discriminator(autodiff);
    let fixed_noise = prior_noise(64, gan.latent, mix(job.seed(), stream::SAMPLE, 0), device);
    let mut learner = GanLearner::new(
        gan.clone(),
        generator,
        discriminator,
        job.config.training.adam_settings(),
        fixed_noise,
    )
    .with_split(job.batch_split()?);
    let mut description = vec![format!(
        "model: gan, {} generator ({} parameters) vs {} discriminator ({} parameters){}; \
         z of {}, k = {}, {} G loss",
        gan.generator,
        learner.generator().num_params(),
        gan.discriminator,
        learner.discriminator().num_params(),
        if gan.conditional() {
            format!(", conditioned on {} classes", gan.num_classes)
        } else {
            String::new()
        },
        gan.latent,
        gan.k,
        match gan.g_loss {
            GeneratorLoss::Minimax => "minimax",
            GeneratorLoss::NonSaturating => "non-saturating",
        }
    )];
    if gan.discriminator == DiscriminatorArch::Patchgan {
        let layers = gan.patch_layers();
        let grid = patchgan::grid_side(gan.shape.height, layers);
        let patch = patchgan::patch_size(layers);
        description.push(format!(
            "patchgan: {layers} stride-2 layer(s): a {grid}x{grid} grid of logits, each \
             seeing a {patch}x{patch} patch of the {}x{} image",
            gan.shape.height, gan.shape.width
        ));
    }
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
            "trained gan ({} G, {} D) for {} epochs: test {parts}; wrote {}",
            gan.generator,
            gan.discriminator,
            last.epoch,
            job.out.display()
        ));
    }
    Ok(outcome)
}

impl Kind for GanRun {
    fn train(&self, job: &Job, device: &Device, autodiff: &Device) -> Result<Outcome> {
        train(self, job, device, autodiff)
    }

    fn generative(
        &self,
        run: &Run,
        device: &Device,
        sampling: &SamplingRequest,
    ) -> Result<Box<dyn Generative>> {
        sampling.refuse_for(&run.path, run.config.kind())?;
        Ok(Box::new(Trained {
            config: self.gan.clone(),
            model: run.load_gan(device)?,
        }))
    }

    fn editor(&self, run: &Run, options: &BuildOptions<'_>) -> Result<Editor> {
        let device = options.device.clone().autodiff();
        let shape = options.train.shape;
        check_editable(&run.path, shape, self.gan.shape, self.gan.conditional())?;
        let model = run.load_gan(&device)?.freeze();
        Ok(Editor::new(GeneratorInversion {
            generator: Box::new(Trained {
                config: self.gan.clone(),
                model,
            }),
            settings: options.inversion,
            device,
        }))
    }
}
