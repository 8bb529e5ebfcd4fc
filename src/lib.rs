//! latentlab: learn low-dimensional representations of images and generate new ones.
//!
//! The library behind the `latentlab` command. Each concept of the lecture on generative models
//! has its own module: [`pca`] for principal component analysis, with autoencoders, VAEs and GANs
//! to follow. [`data`] finds and reads datasets, [`viz`] draws grids and charts, [`commands`]
//! implements the CLI's commands on top of them.

pub mod cli;
pub mod commands;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod models;
pub mod pca;
pub mod train;
pub mod viz;

pub use error::{Error, Result};
