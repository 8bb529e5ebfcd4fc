//! The editing methods, one file each, behind one trait: [`EditMethod::propose`] makes up full
//! images for a batch of images seen through their degradations, and [`Editor::edit`] then
//! makes every proposal agree exactly with what was seen ([`Degradation::project`]), so methods
//! differ only in what they make up.

pub mod baseline;
pub mod conditional;
pub mod diffusion;
pub mod inversion;
pub mod latent_diffusion;
pub mod pca;

use burn::prelude::*;
use rayon::prelude::*;

use crate::data::ImageShape;
use crate::degrade::Degradation;
use crate::error::Result;

/// A way to make up what images lost.
pub trait EditMethod {
    /// Full images for `originals` (pixels in [0, 1], `[c, h, w]` flattened) seen through
    /// `degradations`; they need not agree with what was seen.
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>>;
}

/// A method ready to edit.
pub struct Editor {
    method: Box<dyn EditMethod>,
}

/// Images per batch for the methods that run a network.
const BATCH: usize = 64;

impl Editor {
    pub fn new(method: impl EditMethod + 'static) -> Self {
        Self {
            method: Box::new(method),
        }
    }

    /// Restores `originals` (pixels in [0, 1], `[c, h, w]` flattened) seen through
    /// `degradations`: each result agrees exactly with what was seen.
    pub fn edit(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        assert_eq!(originals.len(), degradations.len());
        let mut edited = Vec::with_capacity(originals.len());
        for (images, seen) in originals.chunks(BATCH).zip(degradations.chunks(BATCH)) {
            let proposals = self.method.propose(images, seen, shape)?;
            for ((original, degradation), proposal) in images.iter().zip(seen).zip(proposals) {
                edited.push(degradation.project(original, &proposal, shape));
            }
        }
        Ok(edited)
    }
}

/// How a method that restores one image at a time fills it.
type PerImage<'a> = &'a (dyn Fn(&Vec<f32>, &Degradation) -> Result<Vec<f32>> + Sync);

/// `fill` applied to each image and its degradation, in parallel.
fn each_image(
    originals: &[Vec<f32>],
    degradations: &[Degradation],
    fill: PerImage<'_>,
) -> Result<Vec<Vec<f32>>> {
    originals
        .par_iter()
        .zip(degradations)
        .map(|(o, d)| fill(o, d))
        .collect()
}

/// A batch `[n, c, h, w]` of `images` on `device`.
fn batch_of(images: &[Vec<f32>], shape: ImageShape, device: &Device) -> Tensor<4> {
    let pixels: Vec<f32> = images.iter().flatten().copied().collect();
    let dims = [images.len(), shape.channels, shape.height, shape.width];
    Tensor::<4>::from_data(TensorData::new(pixels, dims), device)
}

/// `[n, c, h, w]` → n images, `[c, h, w]` flattened.
fn unbatch(images: Tensor<4>, shape: ImageShape) -> Vec<Vec<f32>> {
    let values: Vec<f32> = images.into_data().iter::<f32>().collect();
    values
        .chunks_exact(shape.len())
        .map(<[f32]>::to_vec)
        .collect()
}
