//! `latentlab train gan`: any generator with any discriminator (`models/gan/`) on the shared
//! trainer, Algorithm 1 in `train/gan.rs`. `--resume RUN` continues a GAN run exactly.

use super::new_run::NewRun;
use crate::commands::train::job::TrainingArgs;
use crate::data::Dataset;
use crate::error::Result;
use crate::models::gan::{DiscriminatorArch, GanConfig, GeneratorArch, GeneratorLoss};
use crate::run::{GanRun, ModelConfig};

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

impl NewRun for GanArgs {
    fn name(&self) -> &'static str {
        "gan"
    }
    fn training(&self) -> &TrainingArgs {
        &self.training
    }
    fn default_lr(&self) -> f64 {
        2e-4
    }
    fn adversarial(&self) -> bool {
        true
    }
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig> {
        config(self, dataset)
    }
}
