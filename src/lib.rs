//! latentlab: learn low-dimensional representations of images and generate new ones.
//!
//! The library behind the `latentlab` command. Each concept of the lecture on generative models
//! has its own file: [`pca`] for principal component analysis, and under [`models`] the
//! autoencoders, VAEs, GANs, diffusion models and the classifier. [`data`] finds and reads
//! datasets, [`degrade`] says what an edited image lost, [`train`] holds the one training loop,
//! [`run`] the run folder every command shares, [`kinds`] what each kind of model does with
//! one, [`sample`] the one view of every generative model, [`edit`] the editing methods,
//! [`eval`] the metrics and [`viz`] grids and charts. The CLI's commands and the tour are built
//! on top of them (public for the binary and the tests, hidden from these docs).
//! docs/architecture.md has the map and the layers.

pub(crate) mod checksum;
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod commands;
pub mod data;
pub mod degrade;
pub mod device;
pub mod distributed;
pub mod edit;
pub mod error;
pub mod eval;
pub(crate) mod fsutil;
pub(crate) mod io;
pub mod kinds;
pub mod models;
pub mod ops;
pub mod optim;
pub mod pca;
pub mod process;
pub(crate) mod rng;
pub mod run;
pub mod sample;
pub mod style;
#[doc(hidden)]
pub mod tour;
pub mod train;
pub(crate) mod ui;
pub mod viz;

pub use error::{Error, Result};
