//! `latentlab train gan`: any generator with any discriminator (`models/gan/`) on the shared
//! trainer, Algorithm 1 in `train/gan.rs`. `--resume RUN` continues a GAN run exactly.

use burn::module::Module;

use crate::commands::train::job::{Job, TrainingArgs};
use crate::data::Dataset;
use crate::error::Result;
use crate::models::gan::patchgan;
use crate::models::gan::{DiscriminatorArch, GanConfig, GeneratorArch, GeneratorLoss};
use crate::rng::{mix, stream};
use crate::run::{GanRun, ModelConfig};
use crate::sample::prior_noise;
use crate::train::Outcome;
use crate::train::gan::GanLearner;
use crate::train::parallel::BatchSplit;

/// Options of `latentlab train gan`.
#[derive(Debug, Clone, clap::Args)]
pub struct GanArgs {
    /// Generator: mlp (Goodfellow et al. 2014) or dcgan (transposed convolutions).
    #[arg(long, value_enum, default_value = "dcgan")]
    pub generator: GeneratorArch,
    /// Discriminator: mlp, dcgan (strided convolutions, one logit) or patchgan (a logit per
    /// patch).
    #[arg(long, value_enum, default_value = "dcgan")]
    pub discriminator: DiscriminatorArch,
    /// Dimensions of the noise z.
    #[arg(long, default_value_t = 100)]
    pub latent: usize,
    /// Discriminator steps per generator step (Algorithm 1's k) [default: 1].
    #[arg(long)]
    pub k: Option<usize>,
    /// Generator loss: non-saturating (-log D(G(z))) or minimax (log(1 - D(G(z))))
    /// [default: non-saturating].
    #[arg(long, value_enum)]
    pub g_loss: Option<GeneratorLoss>,
    /// DCGAN generator width (channels of its last hidden layer) [default: 64].
    #[arg(long)]
    pub ngf: Option<usize>,
    /// Discriminator width (channels of its first layer) [default: 64].
    #[arg(long)]
    pub ndf: Option<usize>,
    /// PatchGAN stride-2 layers [default: 1 below 64 px, else 2].
    #[arg(long)]
    pub patch_layers: Option<usize>,
    /// MLP generator's and discriminator's hidden widths [default: 256,512,1024 and reversed].
    #[arg(long, value_delimiter = ',', value_name = "W,W")]
    pub hidden: Option<Vec<usize>>,
    /// Condition on the class label: p(x|y).
    #[arg(long)]
    pub conditional: bool,
    #[command(flatten)]
    pub training: TrainingArgs,
}

/// The config of a new GAN run.
pub fn config(args: &GanArgs, dataset: &Dataset) -> Result<ModelConfig> {
    let mut gan = GanConfig::new(dataset.shape(), args.generator, args.discriminator)
        .with_latent(args.latent)
        .with_patch_layers(args.patch_layers);
    if let Some(k) = args.k {
        gan.k = k;
    }
    if let Some(loss) = args.g_loss {
        gan.g_loss = loss;
    }
    if let Some(ngf) = args.ngf {
        gan.ngf = ngf;
    }
    if let Some(ndf) = args.ndf {
        gan.ndf = ndf;
    }
    if let Some(hidden) = &args.hidden {
        gan.mlp_hidden = hidden.clone();
    }
    if args.conditional {
        gan.num_classes = dataset.num_classes();
    }
    gan.validate()?;
    Ok(ModelConfig::Gan(GanRun {
        gan,
        class_names: dataset.class_names.clone(),
    }))
}

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
    .with_split(BatchSplit::for_run(
        &job.config.training.devices,
        job.world.clone(),
    )?);
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
