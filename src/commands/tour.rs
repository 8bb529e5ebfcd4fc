//! `latentlab tour`: train and compare PCA, an autoencoder, a VAE and GANs on one dataset and
//! write `report.html` and `summary.json`. The work is in [`crate::tour`].

use std::path::PathBuf;

use crate::commands::{DeviceArgs, default_out};
use crate::error::Result;
use crate::tour::{Budget, FidFeatures, Summary, TourOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct TourArgs {
    /// quick: minutes on a 2-core CPU, embedded data; standard: full Fashion-MNIST when
    /// installed, about an hour; paper: the published protocols (hours on a CPU).
    #[arg(long, value_enum, default_value = "quick")]
    pub budget: Budget,
    /// Dataset, as every command takes it [default: embedded for quick, else the usual search].
    #[arg(long, value_name = "PATH")]
    pub data: Option<String>,
    /// Output folder: one run folder per model, report.html, summary.json.
    #[arg(long, default_value_os_t = default_out("tour"))]
    pub out: PathBuf,
    /// Features for FID/KID/precision/recall: auto is Inception for the paper budget when its
    /// weights are installed (`latentlab fid-weights`), else the tour's classifier.
    #[arg(long, value_enum, default_value = "auto")]
    pub fid: FidFeatures,
    /// Redo every stage, even those an earlier run of the same tour finished.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub runtime: DeviceArgs,
}

/// Runs the tour; `run_command` runs each stage's command line (the CLI's dispatcher).
pub fn run(args: &TourArgs, run_command: crate::tour::CommandRunner) -> Result<Summary> {
    crate::tour::run(
        &TourOptions {
            budget: args.budget,
            data: args.data.clone(),
            out: args.out.clone(),
            device: args.runtime.device.to_string(),
            seed: args.runtime.seed,
            fid: args.fid,
            force: args.force,
            quiet: args.runtime.quiet,
        },
        run_command,
    )
}
