//! Evaluation: how good a trained model is, in numbers papers report.

pub mod elbo;
pub mod features;
pub mod fid;
pub mod image_metrics;
pub mod kid;
pub mod precision_recall;
pub mod predict;
pub mod reconstruction;
pub mod samples;

/// Summary numbers of the codes, written to `latent_map.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LatentStats {
    pub model: String,
    pub latent: usize,
    pub images: usize,
    /// Mean over dimensions of |mean of the codes|: 0 for codes centred like the prior.
    pub mean_abs_mean: f64,
    /// Mean over dimensions of the codes' standard deviation: 1 for codes spread like the prior.
    pub mean_std: f64,
    /// Share of the codes' variance the two plotted axes show (1 for a 2-D latent).
    pub plotted_variance: f64,
}
