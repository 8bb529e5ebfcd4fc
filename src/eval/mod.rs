//! Evaluation: how good a trained model is, in numbers papers report.

pub mod elbo;
