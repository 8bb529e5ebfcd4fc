//! Two-stage VAE runs (Dai & Wipf 2019): a second VAE trained on a VAE run's codes; sampling
//! goes through both decoders. They edit nothing: the first stage's own run does
//! (`--with` the VAE run).

use burn::module::Module;
use burn::tensor::Device;

use super::Kind;
use crate::edit::method::BuildOptions;
use crate::edit::methods::Editor;
use crate::error::{Error, Result};
use crate::models::load_safetensors;
use crate::rng::{mix, stream};
use crate::run::{FirstStage, Run, TwoStageVaeRun};
use crate::sample::{Generative, SamplingRequest, TwoStageVae, prior_noise};
use crate::train::Outcome;
use crate::train::job::Job;
use crate::train::two_stage::SecondStageLearner;

impl Kind for TwoStageVaeRun {
    fn train(&self, job: &Job, device: &Device, autodiff: &Device) -> Result<Outcome> {
        let weights = job.first_stage_weights(FirstStage::FILE, &self.first_stage_source)?;
        let first_stage = load_safetensors(&self.first_stage, &weights, device)?;
        let encoding = crate::ui::spinner(
            "encoding the data through the first stage",
            job.quiet || !job.world.writes(),
        );
        let fixed_noise = prior_noise(
            64,
            self.second_stage.latent,
            mix(job.seed(), stream::SAMPLE, 0),
            device,
        );
        let mut learner = SecondStageLearner::new(
            self.second_stage.init(autodiff),
            job.config.training.adam_settings(),
            first_stage,
            &job.dataset,
            fixed_noise,
            autodiff,
        )
        .with_split(job.batch_split()?);
        encoding.finish_and_clear();
        let description = vec![
            format!(
                "model: two-stage VAE, a second VAE {}-{}-{} ({} parameters, learned γ) on the \
                 {}-dimensional codes of {}",
                self.second_stage.dims,
                self.second_stage
                    .hidden
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join("-"),
                self.second_stage.latent,
                learner.model().num_params(),
                self.second_stage.dims,
                self.first_stage_source,
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
                "trained the second stage for {} epochs: test {parts} (nats per code); wrote {}",
                last.epoch,
                job.out.display()
            ));
        }
        Ok(outcome)
    }

    fn generative(
        &self,
        run: &Run,
        device: &Device,
        sampling: &SamplingRequest,
    ) -> Result<Box<dyn Generative>> {
        sampling.refuse_for(&run.path, "two-stage-vae")?;
        let (second_stage, first_stage) = run.load_two_stage(device)?;
        Ok(Box::new(TwoStageVae {
            second_stage,
            first_stage,
            first_stage_config: self.first_stage.clone(),
            latent: self.second_stage.latent,
        }))
    }

    fn editor(&self, run: &Run, _options: &BuildOptions<'_>) -> Result<Editor> {
        Err(Error::bad_input(format!(
            "{}: a two-stage VAE edits through its first stage; pass that VAE run ({}) to --with",
            run.path.display(),
            self.first_stage_source
        )))
    }
}
