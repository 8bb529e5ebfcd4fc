//! Autoencoder-kl runs: latent diffusion's first stage. It trains on its own; it generates
//! and edits through a diffusion run on its latents (`train diffusion --latent-of RUN`).

use burn::module::Module;
use burn::tensor::Device;

use super::Kind;
use crate::data::{BatchConfig, Batches, PixelScale};
use crate::edit::method::BuildOptions;
use crate::edit::methods::Editor;
use crate::error::{Error, Result};
use crate::run::{AutoencoderKlRun, Run};
use crate::sample::{Generative, SamplingRequest};
use crate::train::Outcome;
use crate::train::autoencoder_kl::{AutoencoderKlLearner, SCALE_IMAGES};
use crate::train::job::Job;

/// The first `n` images of `split` in [−1, 1], on `device`.
fn first_images(
    split: &crate::data::Split,
    n: usize,
    device: &Device,
) -> Result<burn::tensor::Tensor<4>> {
    Batches::new(
        split,
        BatchConfig::in_order(n, PixelScale::MinusOneOne),
        device,
    )
    .next()
    .map(|batch| batch.images)
    .ok_or_else(|| Error::bad_input("a split of the data is empty"))
}

impl Kind for AutoencoderKlRun {
    fn train(&self, job: &Job, device: &Device, autodiff: &Device) -> Result<Outcome> {
        let config = &self.autoencoder;
        let mut learner = AutoencoderKlLearner::new(
            config.clone(),
            config.init(autodiff),
            job.config.training.adam_settings(),
            first_images(&job.dataset.test, 32, device)?,
            first_images(&job.dataset.train, SCALE_IMAGES, device)?,
        )
        .with_split(job.batch_split()?);
        let latent = config.latent_shape();
        let description = vec![
            format!(
                "model: autoencoder-kl, f = {} ({} px padded to {} → a {} latent, {}x fewer \
                 values), width {} ({} parameters); loss {:?} + {:e}·KL",
                config.downsample,
                config.shape.height,
                config.padded_side(),
                latent,
                config.shape.len() as f64 / latent.len() as f64,
                config.width,
                learner.model().num_params(),
                config.reconstruction,
                config.kl_weight,
            ),
            format!(
                "training: {} epochs of batch {}, Adam lr {} ({:?})",
                job.config.training.epochs,
                job.config.training.batch_size,
                job.config.training.lr,
                job.config.training.lr_schedule,
            ),
        ];
        let outcome = job.fit(&mut learner, &description, autodiff)?;
        if let Outcome::Finished { rows } = &outcome
            && let Some(last) = rows.last()
            && job.world.writes()
        {
            let parts = crate::train::metrics::format_parts(&last.test);
            crate::ui::say(&format!(
                "trained autoencoder-kl for {} epochs: test {parts} (recon per image, KL in \
                 nats, PSNR in dB); wrote {}",
                last.epoch,
                job.out.display()
            ));
        }
        Ok(outcome)
    }

    fn generative(
        &self,
        run: &Run,
        _device: &Device,
        _sampling: &SamplingRequest,
    ) -> Result<Box<dyn Generative>> {
        Err(Error::bad_input(format!(
            "{}: an autoencoder-kl has no prior to sample its codes from; train one on them \
             with `latentlab train diffusion --latent-of {}` and sample that run",
            run.path.display(),
            run.path.display()
        )))
    }

    fn editor(&self, run: &Run, _options: &BuildOptions<'_>) -> Result<Editor> {
        Err(Error::bad_input(format!(
            "{}: an autoencoder-kl edits through a diffusion run on its latents \
             (`latentlab train diffusion --latent-of {}`)",
            run.path.display(),
            run.path.display()
        )))
    }
}
