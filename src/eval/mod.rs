//! Evaluation: how good a trained model is, in numbers papers report.

pub mod elbo;
pub mod features;
pub mod fid;
pub mod image_metrics;
pub mod kid;
pub mod precision_recall;
pub mod predict;
