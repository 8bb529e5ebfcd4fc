//! `latentlab train pix2pix --task inpaint|uncrop|colorize|superres`: a U-Net that restores what
//! an image lost, with L1 alone or L1 + a PatchGAN that judges input and output together
//! (`models/pix2pix.rs`), on the shared trainer; masks are drawn afresh for every image of
//! every step. `latentlab train espcn --scale S`: the same recipe with an ESPCN as G for
//! super-resolution (L1 alone unless `--discriminator patchgan`). `--resume RUN` continues
//! exactly.

use super::new_run::NewRun;
use crate::commands::TaskName;
use crate::commands::train::job::TrainingArgs;
use crate::data::Dataset;
use crate::degrade::Task;
use crate::error::Result;
use crate::models::espcn::EspcnConfig;
use crate::models::pix2pix::{GeneratorConfig, Pix2pixConfig, input_channels};
use crate::models::unet::UnetConfig;
use crate::run::{ModelConfig, Pix2pixRun};

/// Whether pix2pix trains against a discriminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pix2pixDiscriminator {
    /// A PatchGAN that sees the input beside the output (pix2pix).
    Patchgan,
    /// L1 alone.
    None,
}

/// The PatchGAN's options, shared by `train pix2pix` and `train espcn` (used with
/// `--discriminator patchgan`).
#[derive(Debug, Clone, clap::Args)]
pub struct PatchganArgs {
    /// PatchGAN width: channels of its first layer.
    #[arg(long, default_value_t = 32)]
    pub ndf: usize,
    /// PatchGAN stride-2 layers [default: 1 below 64 px, else 2].
    #[arg(long)]
    pub patch_layers: Option<usize>,
    /// λ: the weight of L1 (mean absolute error per pixel in [0, 1]) against the adversarial
    /// term.
    #[arg(long, default_value_t = 100.0)]
    pub l1_weight: f64,
}

/// Options of `latentlab train pix2pix`.
#[derive(Debug, Clone, clap::Args)]
pub struct Pix2pixArgs {
    /// What the model learns to restore: inpaint (centre squares and free-form strokes), uncrop
    /// (any half), colorize (colour from the luma; colour data) or superres (detail from the
    /// image downsampled by --scale).
    #[arg(long, value_enum)]
    pub task: TaskName,
    /// Super-resolution's factor: the side of the blocks the input is averaged over.
    #[arg(long, default_value_t = 2)]
    pub scale: usize,
    /// patchgan (L1 + adversarial) or none (L1 alone).
    #[arg(long, value_enum, default_value = "patchgan")]
    pub discriminator: Pix2pixDiscriminator,
    /// U-Net width: channels of its first level, doubling at each.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    #[command(flatten)]
    pub patchgan: PatchganArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
}

/// Options of `latentlab train espcn`.
#[derive(Debug, Clone, clap::Args)]
pub struct EspcnArgs {
    /// The upscaling factor: the input is the image averaged over s×s blocks.
    #[arg(long, default_value_t = 2)]
    pub scale: usize,
    /// none (L1 alone, the paper's recipe but for L1) or patchgan (+ a PatchGAN that judges the
    /// blown-up input beside the output, as pix2pix).
    #[arg(long, value_enum, default_value = "none")]
    pub discriminator: Pix2pixDiscriminator,
    /// Channels of the first convolution (the second has half).
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    #[command(flatten)]
    pub patchgan: PatchganArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
}

/// The config of a new pix2pix run.
pub fn config(args: &Pix2pixArgs, dataset: &Dataset) -> Result<ModelConfig> {
    let task = args.task.with_scale(args.scale);
    let shape = dataset.shape();
    let unet = UnetConfig::new(shape, input_channels(task, shape)).with_width(args.width);
    let generator = GeneratorConfig::Unet(unet);
    checked(task, generator, args.discriminator, &args.patchgan)
}

/// The config of a new ESPCN run.
pub fn espcn_config(args: &EspcnArgs, dataset: &Dataset) -> Result<ModelConfig> {
    let espcn = EspcnConfig::new(dataset.shape(), args.scale).with_width(args.width);
    let generator = GeneratorConfig::Espcn(espcn);
    let task = Task::Superres(args.scale);
    checked(task, generator, args.discriminator, &args.patchgan)
}

/// The run config of G for `task`, with the PatchGAN when `discriminator` asks for one, checked.
fn checked(
    task: Task,
    generator: GeneratorConfig,
    discriminator: Pix2pixDiscriminator,
    patchgan: &PatchganArgs,
) -> Result<ModelConfig> {
    let ndf = (discriminator == Pix2pixDiscriminator::Patchgan).then_some(patchgan.ndf);
    let mut pix2pix = Pix2pixConfig::with_generator(task, generator, ndf, patchgan.patch_layers);
    pix2pix.l1_weight = patchgan.l1_weight;
    pix2pix.validate()?;
    Ok(ModelConfig::Pix2pix(Pix2pixRun { pix2pix }))
}

impl NewRun for Pix2pixArgs {
    fn name(&self) -> &'static str {
        "pix2pix"
    }
    fn training(&self) -> &TrainingArgs {
        &self.training
    }
    fn adversarial(&self) -> bool {
        true
    }
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig> {
        config(self, dataset)
    }
}

impl NewRun for EspcnArgs {
    fn name(&self) -> &'static str {
        "espcn"
    }
    fn training(&self) -> &TrainingArgs {
        &self.training
    }
    fn adversarial(&self) -> bool {
        self.discriminator == Pix2pixDiscriminator::Patchgan
    }
    fn model_config(&self, dataset: &Dataset) -> Result<ModelConfig> {
        espcn_config(self, dataset)
    }
}
