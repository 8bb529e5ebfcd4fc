//! The baselines: the training mean image, the nearest training image on what is seen, the luma
//! copied to every channel (colorization), and interpolation of the small image
//! (super-resolution: nearest-neighbour or bicubic).

use image::imageops::FilterType;

use super::{EditMethod, each_image};
use crate::data::{ImageShape, Split};
use crate::degrade::Degradation;
use crate::edit::NearestBank;
use crate::error::Result;

/// The training mean image, whatever was seen.
pub(crate) struct MeanImage(pub Vec<f32>);

impl EditMethod for MeanImage {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        _shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        each_image(originals, degradations, &|_, _| Ok(self.0.clone()))
    }
}

/// The training image closest to each input on what is seen.
pub(crate) struct NearestImage {
    pub train: Split,
    pub bank: Box<NearestBank>,
}

impl EditMethod for NearestImage {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        Ok(self
            .bank
            .closest(originals, degradations, shape)
            .into_iter()
            .map(|j| self.train.unit_image(j))
            .collect())
    }
}

/// Colorization's baseline: mid-gray, which the projection turns into the luma in every channel.
pub(crate) struct Gray;

impl EditMethod for Gray {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        each_image(originals, degradations, &|_, _| Ok(vec![0.5; shape.len()]))
    }
}

/// Interpolation of the small image by `filter` (super-resolution only).
pub(crate) struct Upsample(pub FilterType);

impl EditMethod for Upsample {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        each_image(originals, degradations, &|o, d| match d {
            Degradation::Downsample(s) => Ok(upsample(&d.observe(o, shape), shape, *s, self.0)),
            other => unreachable!("interpolation is built for super-resolution, not {other:?}"),
        })
    }
}

/// The small image `[c, h/s, w/s]` (flattened) resized to `shape` by `filter`, channel by
/// channel.
fn upsample(small: &[f32], shape: ImageShape, s: usize, filter: FilterType) -> Vec<f32> {
    let (h, w) = (shape.height / s, shape.width / s);
    small
        .chunks_exact(h * w)
        .flat_map(|channel| {
            let plane = image::ImageBuffer::<image::Luma<f32>, _>::from_raw(
                w as u32,
                h as u32,
                channel.to_vec(),
            )
            .expect("the plane's size");
            image::imageops::resize(&plane, shape.width as u32, shape.height as u32, filter)
                .into_raw()
        })
        .collect()
}
