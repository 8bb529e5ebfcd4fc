//! What `eval-samples` measures of a set of generated images against real ones: FID (Inception
//! features) or the classifier's Fréchet distance, KID, precision and recall, and for a
//! conditional model how often a classifier gives a sample its class.

use crate::eval::kid::Kid;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SideInfo {
    pub source: String,
    pub n: usize,
}

/// What `eval-samples` writes. `fid` only with Inception features; `classifier_fd` with the
/// classifier's, so the two are never mistaken for each other.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SampleMetrics {
    pub features: String,
    pub feature_dim: usize,
    pub real: SideInfo,
    pub fake: SideInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier_fd: Option<f64>,
    pub kid: Kid,
    pub precision: f64,
    pub recall: f64,
    pub k: usize,
    pub seconds_real_features: f64,
    pub seconds_fake_features: f64,
    /// Seconds the run's model spent generating the fake images (absent for image folders).
    #[serde(default)]
    pub seconds_generating: Option<f64>,
    pub seconds_metrics: f64,
    pub real_features_cached: bool,
    /// Conditional GAN or VAE with `--classifier`: how often our classifier gives a sample the
    /// class it was generated for, overall and per class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_accuracy: Option<ClassAccuracy>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClassAccuracy {
    pub classifier: String,
    pub overall: f64,
    pub per_class: Vec<f64>,
}
