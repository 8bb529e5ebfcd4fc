//! An editing job, the one rule of what its images lose: a [`Task`] with its mask (centre,
//! seeded free-form strokes, a file) or missing side; the edit commands, `eval-edit` and the
//! tour's editing section all make their degradations here.

use std::path::PathBuf;

use super::{Degradation, Mask, Side, Task};
use crate::data::{ImageShape, Split};
use crate::error::Result;
use crate::rng::{mix, stream};

/// The masks `inpaint` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskKind {
    /// The central square of half the side.
    Center,
    /// Seeded brush strokes covering 25-50 % of each image (--seed).
    Free,
    /// One mask for every image, read from a gray image file (white: missing).
    File(PathBuf),
}

/// An editing job: what each of its images loses, the task with its mask or side (the seed
/// draws free-form masks, one per image).
pub struct EditJob {
    pub task: Task,
    pub mask: MaskKind,
    pub side: Side,
    /// A mask file, read once the images' shape is known and before anything is written.
    file_mask: Option<Mask>,
    seed: u64,
}

impl EditJob {
    pub fn new(task: Task, mask: &MaskKind, side: Side, seed: u64) -> Self {
        Self {
            task,
            mask: mask.clone(),
            side,
            file_mask: None,
            seed,
        }
    }

    /// Reads a mask file for images of `shape`: its header's size is checked before a pixel
    /// is decoded (a small file may claim billions of pixels).
    pub fn for_images(mut self, shape: ImageShape) -> Result<Self> {
        if let (Task::Inpaint, MaskKind::File(path)) = (self.task, &self.mask) {
            self.file_mask = Some(Mask::read_sized(path, shape.height, shape.width)?);
        }
        Ok(self)
    }

    pub fn degradation(&self, i: usize, shape: ImageShape) -> Degradation {
        let (h, w) = (shape.height, shape.width);
        match (self.task, &self.mask) {
            (Task::Superres(s), _) => Degradation::Downsample(s),
            (Task::Colorize, _) => Degradation::Gray,
            (Task::Uncrop, _) => Degradation::Mask(Mask::uncrop(h, w, self.side)),
            (Task::Inpaint, MaskKind::Center) => Degradation::Mask(Mask::center(h, w)),
            (Task::Inpaint, MaskKind::Free) => {
                Degradation::Mask(Mask::free(h, w, mix(self.seed, stream::MASK, i as u64)))
            }
            (Task::Inpaint, MaskKind::File(_)) => {
                Degradation::Mask(self.file_mask.clone().expect("read by EditJob::for_images"))
            }
        }
    }

    /// For messages: "center mask", "left half missing", "luma only".
    pub fn describe(&self) -> String {
        match (self.task, &self.mask) {
            (Task::Superres(s), _) => format!("x{s}, area downsampled"),
            (Task::Colorize, _) => "luma only".into(),
            (Task::Uncrop, _) => format!("{} half missing", side_name(self.side)),
            (Task::Inpaint, MaskKind::Center) => "center mask".into(),
            (Task::Inpaint, MaskKind::Free) => "free-form masks".into(),
            (Task::Inpaint, MaskKind::File(path)) => format!("mask {}", path.display()),
        }
    }

    /// For file names and JSON: "center", "free", "left", "gray", or the mask file's stem.
    pub fn variant(&self) -> String {
        match (self.task, &self.mask) {
            (Task::Superres(s), _) => format!("x{s}"),
            (Task::Colorize, _) => "gray".into(),
            (Task::Uncrop, _) => side_name(self.side).into(),
            (Task::Inpaint, MaskKind::Center) => "center".into(),
            (Task::Inpaint, MaskKind::Free) => "free".into(),
            (Task::Inpaint, MaskKind::File(path)) => path
                .file_stem()
                .map_or("file".into(), |s| s.to_string_lossy().into_owned()),
        }
    }

    pub fn name(&self) -> &'static str {
        self.task.name()
    }

    /// The images of `split` in [0, 1] and what each loses under `job`, checked against the
    /// images' shape.
    pub fn degrade(&self, split: &Split) -> Result<(Vec<Vec<f32>>, Vec<Degradation>)> {
        let shape = split.shape;
        let originals: Vec<Vec<f32>> = (0..split.len()).map(|i| split.unit_image(i)).collect();
        let degradations: Vec<Degradation> = (0..originals.len())
            .map(|i| self.degradation(i, shape))
            .collect();
        // Every image loses the same kind of thing: checking one checks all.
        if let Some(first) = degradations.first() {
            first.check(shape)?;
        }
        Ok((originals, degradations))
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Left => "left",
        Side::Right => "right",
        Side::Top => "top",
        Side::Bottom => "bottom",
    }
}
