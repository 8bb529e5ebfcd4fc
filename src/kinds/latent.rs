//! Autoencoder and VAE runs (`kind` ae, vae): training with the latent learner, decoding codes to images, editing by inverting the decoder on what is seen.

use burn::module::Module;

use crate::data::{BatchConfig, Batches, PixelScale};
use crate::error::{Error, Result};
use crate::models::LatentModelConfig;
use crate::models::autoencoder::Arch;
use crate::rng::{mix, stream};
use crate::run::LatentRun;
use crate::sample::prior_noise;
use crate::train::Outcome;
use crate::train::job::Job;
use crate::train::latent::LatentLearner;
use crate::train::metrics::EpochRow;
use burn::tensor::Device;

use super::{Kind, check_editable};
use crate::edit::mean_image;
use crate::edit::method::BuildOptions;
use crate::edit::methods::Editor;
use crate::edit::methods::inversion::LatentInversion;
use crate::run::Run;
use crate::sample::Trained;
use crate::sample::{Generative, SamplingRequest};

/// Trains an autoencoder or VAE run on `autodiff` (`device` with autodiff, already seeded).
pub fn train(
    config: &LatentRun,
    job: &Job,
    device: &burn::tensor::Device,
    autodiff: &burn::tensor::Device,
) -> Result<Outcome> {
    let seed = job.seed();
    let model = config.model.init(autodiff);
    let fixed_noise = prior_noise(
        64,
        config.model.latent(),
        mix(seed, stream::SAMPLE, 0),
        device,
    );
    let fixed = Batches::new(
        &job.dataset.test,
        BatchConfig::in_order(32, PixelScale::ZeroOne),
        device,
    )
    .next()
    .ok_or_else(|| Error::bad_input("the test split is empty"))?;
    let mut learner = LatentLearner::new(
        model,
        job.config.training.adam_settings(),
        job.dataset.shape(),
        fixed_noise,
        fixed.images,
        fixed.labels,
    )
    .with_split(job.batch_split()?);
    let description = format!(
        "model: {} {} ({} parameters), latent {}; {} epochs of batch {}, Adam lr {}",
        config.model.kind(),
        arch_name(&config.model),
        learner.model().num_params(),
        config.model.latent(),
        job.config.training.epochs,
        job.config.training.batch_size,
        job.config.training.lr
    );
    let outcome = job.fit(&mut learner, &[description], autodiff)?;
    if let Outcome::Finished { rows } = &outcome
        && let Some(last) = rows.last()
        && job.world.writes()
    {
        crate::ui::say(&final_line(config, last, &job.out));
    }
    Ok(outcome)
}

fn arch_name(config: &LatentModelConfig) -> String {
    let body = match config {
        LatentModelConfig::Ae(c) => &c.body,
        LatentModelConfig::Vae(c) => &c.body,
    };
    match body.arch {
        Arch::Mlp => format!(
            "mlp {}-{}-{}",
            body.shape.len(),
            body.hidden
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            config.latent()
        ),
        Arch::Conv => format!(
            "conv {}",
            body.channels
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("-")
        ),
    }
}

fn final_line(config: &LatentRun, last: &EpochRow, out: &std::path::Path) -> String {
    let parts = crate::train::metrics::format_parts(&last.test);
    format!(
        "trained {} for {} epochs: test {parts} (nats per image; mse per pixel); wrote {}",
        config.model.kind(),
        last.epoch,
        out.display()
    )
}

impl Kind for LatentRun {
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
            config: self.model.clone(),
            model: run.load_latent(device)?,
        }))
    }

    fn editor(&self, run: &Run, options: &BuildOptions<'_>) -> Result<Editor> {
        let device = options.device.clone().autodiff();
        let shape = options.train.shape;
        let model = run.load_latent(&device)?.freeze();
        check_editable(
            &run.path,
            shape,
            self.model.shape(),
            model.num_classes() > 0,
        )?;
        Ok(Editor::new(LatentInversion {
            model: Box::new(model),
            mean: mean_image(options.train),
            settings: options.inversion,
            device,
        }))
    }
}
