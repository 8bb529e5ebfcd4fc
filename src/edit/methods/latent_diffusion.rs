//! Editing with a latent diffusion run: RePaint in the latent space, as Blended Latent
//! Diffusion (Avrahami et al. 2023) blends there. The mask comes down to the latent's side — a
//! latent pixel counts as known only when every pixel it stands for is (the padding around the
//! image is known: it is always −1) — the visible part of the image is encoded, RePaint walks
//! the codes with the unknown ones made up, the first stage decodes them, and the editing
//! framework's composite then puts every visible pixel back exactly (the decoder alone would
//! blur them to its reconstruction error).
//!
//! Only masks (inpainting, uncropping): a luma or a block mean is no view of the codes.

use burn::prelude::*;
use burn::tensor::Distribution;

use super::{EditMethod, unbatch};
use crate::data::ImageShape;
use crate::degrade::{Degradation, Mask, ObservedBatch};
use crate::edit::repaint::{RePaintSettings, repaint};
use crate::error::{Error, Result};
use crate::models::autoencoder_kl::{AutoencoderKlConfig, ScaledAutoencoder};
use crate::models::denoiser::Denoiser;
use crate::models::diffusion::NoiseSchedule;
use crate::sample::to_unit;

/// A denoiser of a first stage's codes, the first stage, and how RePaint walks.
pub(crate) struct LatentDiffusionEdit {
    pub model: Box<Denoiser>,
    pub first_stage: ScaledAutoencoder,
    pub autoencoder: AutoencoderKlConfig,
    pub schedule: NoiseSchedule,
    pub settings: RePaintSettings,
    pub device: Device,
}

impl EditMethod for LatentDiffusionEdit {
    fn propose(
        &self,
        originals: &[Vec<f32>],
        degradations: &[Degradation],
        shape: ImageShape,
    ) -> Result<Vec<Vec<f32>>> {
        let masks = degradations
            .iter()
            .map(|d| match d {
                Degradation::Mask(mask) => Ok(mask),
                _ => Err(Error::bad_input(
                    "a latent diffusion run edits through masks only (inpaint, uncrop)",
                )),
            })
            .collect::<Result<Vec<&Mask>>>()?;
        // The visible pixels, the hole black (−1), as the encoder saw padding.
        let observed = ObservedBatch::new(originals, degradations, shape, &self.device);
        let (codes, _) = self.first_stage.moments(observed.targets * 2.0 - 1.0); // [n, z, s, s]
        let [n, z, s, _] = codes.dims();
        let weights = latent_weights(&masks, &self.autoencoder, z, &self.device); // [n, z, s, s]
        let known = ObservedBatch::masked(codes.clone(), weights);
        let x_t = Tensor::random([n, z, s, s], Distribution::Normal(0.0, 1.0), &self.device);
        let filled = repaint(
            &self.model,
            &self.schedule,
            &known,
            codes,
            x_t,
            self.settings,
            |_, _| {},
        );
        let images = self.first_stage.decode(filled).clamp(-1.0, 1.0); // [n, c, h, w]
        Ok(unbatch(to_unit(images), shape))
    }
}

/// 1 where every pixel a latent pixel stands for is visible or padding, else 0, for each mask:
/// `[n, channels, s, s]`.
fn latent_weights(
    masks: &[&Mask],
    autoencoder: &AutoencoderKlConfig,
    channels: usize,
    device: &Device,
) -> Tensor<4> {
    let f = autoencoder.downsample;
    let padded = autoencoder.padded_side();
    let s = padded / f;
    let mut weights = Vec::with_capacity(masks.len() * channels * s * s);
    for mask in masks {
        let (h, w) = (mask.height, mask.width);
        let (top, left) = ((padded - h) / 2, (padded - w) / 2);
        let missing = |r: usize, c: usize| {
            // Padded coordinates → image ones; outside the image is padding, always known.
            r.checked_sub(top)
                .zip(c.checked_sub(left))
                .is_some_and(|(r, c)| r < h && c < w && mask.missing()[r * w + c])
        };
        let plane: Vec<f32> = (0..s * s)
            .map(|i| {
                let (row, col) = (i / s, i % s);
                let any = (0..f * f).any(|k| missing(row * f + k / f, col * f + k % f));
                if any { 0.0 } else { 1.0 }
            })
            .collect();
        for _ in 0..channels {
            weights.extend_from_slice(&plane);
        }
    }
    Tensor::from_data(
        TensorData::new(weights, [masks.len(), channels, s, s]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::degrade::Side;

    #[test]
    fn a_latent_pixel_is_known_only_where_all_its_pixels_are() {
        let device = Device::flex();
        let shape = ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let config = AutoencoderKlConfig::new(shape); // f = 4: 28 → 32 (2 px of padding) → 8
        // The left half missing: columns 0..14 of the image are 2..16 of the padded frame,
        // so latent columns 0..4 (padded 0..16) hold a missing pixel; column 4 (16..20) none.
        let left = Mask::uncrop(28, 28, Side::Left);
        let weights = latent_weights(&[&left], &config, 2, &device);
        assert_eq!(weights.dims(), [1, 2, 8, 8]);
        let values: Vec<f32> = weights.into_data().iter::<f32>().collect();
        for (i, &v) in values.iter().enumerate() {
            let col = i % 8;
            assert_eq!(v, if col < 4 { 0.0 } else { 1.0 }, "at {i}");
        }
        // A 1-pixel hole at image (0, 0) = padded (2, 2): latent (0, 0) only.
        let mut one = vec![false; 28 * 28];
        one[0] = true;
        let dot = Mask::from_missing(28, 28, one);
        let values: Vec<f32> = latent_weights(&[&dot], &config, 1, &device)
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(values.iter().filter(|&&v| v == 0.0).count(), 1);
        assert_eq!(values[0], 0.0);
    }
}
