//! Diffusion runs: training the denoiser (unconditional, class-conditional, or image-conditioned for SR3/Palette), sampling through the pipeline, editing by RePaint or by the task it learned.

use burn::module::Module;

use crate::data::test_images;
use crate::error::Result;
use crate::models::autoencoder_kl::ScaledAutoencoder;
use crate::rng::{mix, stream};
use crate::run::{DiffusionRun, FirstStage};
use crate::sample::prior_noise;
use crate::train::Outcome;
use crate::train::diffusion::{DiffusionLearner, EPOCH_SAMPLER};
use crate::train::job::Job;
use burn::tensor::Device;

use super::{Kind, check_editable};
use crate::degrade::Task;
use crate::edit::method::BuildOptions;
use crate::edit::methods::Editor;
use crate::edit::methods::diffusion::DiffusionEdit;
use crate::edit::methods::latent_diffusion::LatentDiffusionEdit;
use crate::error::Error;
use crate::models::load_weights;
use crate::run::Run;
use crate::sample::{Generative, LatentDiffusion, SamplingRequest};

/// Trains a diffusion run on `autodiff` (`device` with autodiff, already seeded).
pub fn train(
    config: &DiffusionRun,
    job: &Job,
    device: &burn::tensor::Device,
    autodiff: &burn::tensor::Device,
) -> Result<Outcome> {
    let diffusion = &config.diffusion;
    let fixed_noise = prior_noise(
        64,
        diffusion.denoiser.shape.len(),
        mix(job.seed(), stream::SAMPLE, 0),
        device,
    );
    // An image-conditioned model pictures its restorations of the first test images.
    let fixed_images = diffusion.task.map(|_| {
        let (images, _) = test_images(&job.dataset, 8, device);
        images * 2.0 - 1.0
    });
    let mut learner = DiffusionLearner::new(
        diffusion.clone(),
        diffusion.denoiser.init(autodiff),
        job.config.training.adam_settings(),
        job.seed(),
        fixed_noise,
        fixed_images,
    )
    .with_split(job.batch_split()?);
    if let Some(stage) = &config.first_stage {
        let encoding = crate::ui::spinner(
            "encoding the data through the first stage",
            job.quiet || !job.world.writes(),
        );
        learner =
            learner.with_first_stage(first_stage(stage, job, device)?, &job.dataset, autodiff);
        encoding.finish_and_clear();
    }
    let description = vec![
        format!(
            "model: diffusion, U-Net denoiser of width {} over {} levels ({} parameters){}{}{}; \
             {:?} schedule over T = {}; EMA decay {}",
            diffusion.denoiser.width,
            diffusion.denoiser.levels,
            learner.model().num_params(),
            match diffusion.denoiser.num_classes {
                0 => String::new(),
                classes => format!(
                    ", conditioned on {classes} classes (label dropout {})",
                    diffusion.label_dropout
                ),
            },
            match diffusion.task {
                Some(task) => format!(", shown what {} sees", task.label()),
                None => String::new(),
            },
            match (&diffusion.denoiser.attention, &config.first_stage) {
                (Some(attention), _) => format!(
                    ", self-attention at {:?} px ({} heads)",
                    attention.resolutions, attention.heads
                ),
                _ => String::new(),
            } + &match &config.first_stage {
                Some(stage) => format!(
                    "; on the {} codes of {} (scale {:.4}, x̂₀ clipped to ±{})",
                    diffusion.denoiser.shape,
                    stage.source,
                    stage.scale.scale,
                    diffusion.x0_range.unwrap_or(1.0)
                ),
                None => String::new(),
            },
            diffusion.schedule,
            diffusion.timesteps,
            diffusion.ema_decay,
        ),
        format!(
            "training: {} epochs of batch {}, Adam lr {} ({:?}); epoch samples by {}",
            job.config.training.epochs,
            job.config.training.batch_size,
            job.config.training.lr,
            job.config.training.lr_schedule,
            EPOCH_SAMPLER.label(&diffusion.noise_schedule()),
        ),
    ];
    let outcome = job.fit(&mut learner, &description, autodiff)?;
    if let Outcome::Finished { rows } = &outcome
        && let Some(last) = rows.last()
    {
        let parts = crate::train::metrics::format_parts(&last.test);
        crate::ui::say(&format!(
            "trained diffusion for {} epochs: test {parts} (ε's squared error per pixel); wrote {}",
            last.epoch,
            job.out.display()
        ));
    }
    Ok(outcome)
}

/// A latent diffusion run's first stage on `device`: its copy in the run once one was written
/// (a resumed run), else the weights of the run `--latent-of` named.
fn first_stage(stage: &FirstStage, job: &Job, device: &Device) -> Result<ScaledAutoencoder> {
    let path = job.first_stage_weights(FirstStage::FILE, &stage.source)?;
    let model = load_weights(stage.autoencoder.init(device), "autoencoder-kl", &path)?;
    Ok(ScaledAutoencoder {
        model,
        scale: stage.scale.scale,
    })
}

impl Kind for DiffusionRun {
    fn train(&self, job: &Job, device: &Device, autodiff: &Device) -> Result<Outcome> {
        train(self, job, device, autodiff)
    }

    fn generative(
        &self,
        run: &Run,
        device: &Device,
        sampling: &SamplingRequest,
    ) -> Result<Box<dyn Generative>> {
        let diffusion = run.load_diffusion(device, sampling)?;
        Ok(match run.load_first_stage(device)? {
            Some(first_stage) => Box::new(LatentDiffusion {
                diffusion,
                first_stage,
                shape: run.config.run.dataset.shape,
            }),
            None => Box::new(diffusion),
        })
    }

    fn editor(&self, run: &Run, options: &BuildOptions<'_>) -> Result<Editor> {
        if let Some(stage) = &self.first_stage {
            return latent_editor(self, stage, run, options);
        }
        let shape = options.train.shape;
        // A conditional run also predicts the unconditional noise (label dropout).
        check_editable(&run.path, shape, self.diffusion.denoiser.shape, false)?;
        if let Some(task) = self.diffusion.task
            && task != options.task
        {
            return Err(Error::bad_input(format!(
                "{}: a diffusion run trained to {}, not to {}",
                run.path.display(),
                task.label(),
                options.task.label()
            )));
        }
        let device = options.device.clone();
        device.seed(options.inversion.seed);
        let model = load_weights(
            self.diffusion.denoiser.init(&device),
            "denoiser",
            &run.weights()?,
        )?;
        Ok(Editor::new(DiffusionEdit {
            model: Box::new(model),
            task: self.diffusion.task,
            schedule: self.diffusion.noise_schedule(),
            settings: options.repaint,
            device,
        }))
    }
}

/// RePaint in the latent space of `stage` (masks only).
fn latent_editor(
    config: &DiffusionRun,
    stage: &FirstStage,
    run: &Run,
    options: &BuildOptions<'_>,
) -> Result<Editor> {
    check_editable(
        &run.path,
        options.train.shape,
        stage.autoencoder.shape,
        false,
    )?;
    if !matches!(options.task, Task::Inpaint | Task::Uncrop) {
        return Err(Error::bad_input(format!(
            "{}: a latent diffusion run edits through masks (inpaint, uncrop), not {}: a luma \
             or a downsampled image is no view of its codes; use a pixel-space diffusion run",
            run.path.display(),
            options.task.label()
        )));
    }
    let device = options.device.clone();
    device.seed(options.inversion.seed);
    let model = load_weights(
        config.diffusion.denoiser.init(&device),
        "denoiser",
        &run.weights()?,
    )?;
    let first_stage = run
        .load_first_stage(&device)?
        .expect("a latent diffusion run has a first stage");
    Ok(Editor::new(LatentDiffusionEdit {
        model: Box::new(model),
        first_stage,
        autoencoder: stage.autoencoder.clone(),
        schedule: config.diffusion.noise_schedule(),
        settings: options.repaint,
        device,
    }))
}
