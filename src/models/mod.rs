//! The neural models of the lecture, one file each. A model file holds the model, its config and
//! its loss; training, sampling and evaluation live elsewhere.

pub mod autoencoder;
pub mod likelihood;
pub mod vae;
