//! latentlab: learn low-dimensional representations of images and generate new ones.
//!
//! The library behind the `latentlab` command. Each concept of the lecture on generative models
//! has its own file: [`pca`] for principal component analysis, and under [`models`] the
//! autoencoders, VAEs, GANs and the classifier. [`data`] finds and reads datasets, [`train`] holds
//! the one training loop, [`run`] the run folder every command shares, [`sample`] the one view of
//! every generative model, [`eval`] the metrics, [`viz`] draws grids and charts, [`commands`]
//! implements the CLI's commands on top of them and [`tour`] strings them together into a report.
//! docs/architecture.md has the map.

pub mod checksum;
pub mod cli;
pub mod commands;
pub mod data;
pub mod degrade;
pub mod device;
pub mod distributed;
pub mod edit;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod io;
pub mod kinds;
pub mod models;
pub mod ops;
pub mod optim;
pub mod pca;
pub mod process;
pub mod rng;
pub mod run;
pub mod sample;
pub mod style;
pub mod tour;
pub mod train;
pub mod ui;
pub mod viz;

pub use error::{Error, Result};
