//! The shared vocabulary of editing: what an image loses. A [`Task`] (inpaint, uncrop, colorize,
//! super-resolve) draws a [`Degradation`] (a [`Mask`] of missing pixels, the luma only, or the
//! block means), which is a linear view y = A·x of the image; [`resample`] holds the operators
//! themselves. Models trained for a task (pix2pix, ESPCN, SR3/Palette diffusion), the editing
//! methods and the scores all read these, so they sit below `models/` and `edit/`.

pub mod degradation;
pub mod job;
pub mod mask;
pub mod resample;

pub use degradation::{Degradation, ObservedBatch};
pub use job::{EditJob, MaskKind};
pub use mask::{Mask, Side, check_mask, composite};
pub use resample::{box_downsample, box_downsample_tensor, luma, luma_tensor, upsample_nearest};

use crate::data::ImageShape;

/// The editing jobs of the lecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Fill pre-specified missing pixels.
    Inpaint,
    /// Make up a missing half.
    Uncrop,
    /// Restore colour from the luma.
    Colorize,
    /// Restore an image from its area downsampling by this factor.
    Superres(usize),
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Inpaint => "inpaint",
            Task::Uncrop => "uncrop",
            Task::Colorize => "colorize",
            Task::Superres(_) => "superres",
        }
    }

    /// The name with super-resolution's factor: "superres-x4".
    pub fn label(self) -> String {
        match self {
            Task::Superres(s) => format!("superres-x{s}"),
            other => other.name().into(),
        }
    }

    /// What a training image of this task loses, drawn from `seed`: for inpainting the centre
    /// square or free-form strokes (even odds), for uncropping one of the four halves.
    pub fn random_degradation(self, shape: ImageShape, seed: u64) -> Degradation {
        let (h, w) = (shape.height, shape.width);
        let draw = crate::rng::mix(seed, crate::rng::stream::MASK, 0);
        match self {
            Task::Inpaint if draw.is_multiple_of(2) => Degradation::Mask(Mask::center(h, w)),
            Task::Inpaint => Degradation::Mask(Mask::free(h, w, draw)),
            Task::Uncrop => {
                let side = [Side::Left, Side::Right, Side::Top, Side::Bottom][(draw % 4) as usize];
                Degradation::Mask(Mask::uncrop(h, w, side))
            }
            Task::Colorize => Degradation::Gray,
            Task::Superres(s) => Degradation::Downsample(s),
        }
    }
}
