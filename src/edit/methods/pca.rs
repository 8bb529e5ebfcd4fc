//! Zero-shot PCA: the codes that best explain what is seen (probabilistic PCA's posterior mean,
//! `crate::edit::pca_fill`), then PCA's reconstruction.

use super::{EditMethod, each_image};
use crate::data::ImageShape;
use crate::degrade::Degradation;
use crate::edit::{CodePrior, pca_fill};
use crate::error::Result;
use crate::pca::Pca;

/// How `--with pca` weighs its codes.
const PCA_PRIOR: CodePrior = CodePrior::Probabilistic;

/// A fitted PCA, its first components kept.
pub(crate) struct PcaFill(pub Box<Pca>);

impl EditMethod for PcaFill {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        each_image(originals, degradations, &|o, d| {
            pca_fill(&self.0, o, d, shape, PCA_PRIOR)
        })
    }
}
