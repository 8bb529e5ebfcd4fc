//! Masks: which pixels an edit must fill. `true` means missing (the hole); `false` means visible,
//! and every method keeps visible pixels exactly. A mask covers one image plane and applies to
//! every channel.
//!
//! The protocol's masks are seeded, so an evaluation can be repeated: `center` is the central
//! square of half the side (a quarter of the image), `free` is brush strokes covering 25–50 % of
//! the image (as Palette's free-form masks), and uncropping hides one half.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::data::ImageShape;
use crate::error::{Error, Result};

/// The side an uncropping hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    Left,
    Right,
    Top,
    Bottom,
}

/// Missing pixels of one `height` x `width` plane, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub height: usize,
    pub width: usize,
    missing: Vec<bool>,
}

impl Mask {
    /// A mask from a row-major plane of flags (`true`: missing).
    pub fn from_missing(height: usize, width: usize, missing: Vec<bool>) -> Self {
        assert_eq!(missing.len(), height * width, "one flag per pixel");
        Self {
            height,
            width,
            missing,
        }
    }

    fn from_fn(height: usize, width: usize, f: impl Fn(usize, usize) -> bool) -> Self {
        let missing = (0..height * width)
            .map(|i| f(i / width, i % width))
            .collect();
        Self::from_missing(height, width, missing)
    }

    /// The central square (rectangle for a non-square image) of half the side.
    pub fn center(height: usize, width: usize) -> Self {
        let (h, w) = (height / 2, width / 2);
        let (top, left) = ((height - h) / 2, (width - w) / 2);
        Self::from_fn(height, width, |y, x| {
            (top..top + h).contains(&y) && (left..left + w).contains(&x)
        })
    }

    /// One half hidden: the half on `side` (the middle row or column goes to the hidden half
    /// of an odd side).
    pub fn uncrop(height: usize, width: usize, side: Side) -> Self {
        Self::from_fn(height, width, |y, x| match side {
            Side::Left => x < width.div_ceil(2),
            Side::Right => x >= width / 2,
            Side::Top => y < height.div_ceil(2),
            Side::Bottom => y >= height / 2,
        })
    }

    /// Free-form strokes: random walks of a round brush (radius a twentieth of the side, at least
    /// one pixel) until a coverage drawn from [25 %, 45 %] is reached, which one more brush step
    /// can raise by only a few per cent, so the result stays within 25–50 %. The same seed gives
    /// the same mask.
    pub fn free(height: usize, width: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut missing = vec![false; height * width];
        let target = rng.random_range(0.25..0.45) * (height * width) as f64;
        let radius = (height.min(width) as f64 / 20.0).max(1.0);
        let mut covered = 0usize;
        while (covered as f64) < target {
            // One stroke: a walk of 4-12 steps from a random point, each step a few radii long.
            let (mut y, mut x) = (
                rng.random_range(0.0..height as f64),
                rng.random_range(0.0..width as f64),
            );
            let mut angle: f64 = rng.random_range(0.0..std::f64::consts::TAU);
            for _ in 0..rng.random_range(4..=12) {
                angle += rng.random_range(-1.0..1.0);
                let length = rng.random_range(1.0..3.0) * radius;
                let steps = (length / 0.5).ceil() as usize;
                for _ in 0..steps {
                    y = (y + 0.5 * angle.sin()).clamp(0.0, (height - 1) as f64);
                    x = (x + 0.5 * angle.cos()).clamp(0.0, (width - 1) as f64);
                    covered += paint(&mut missing, height, width, y, x, radius);
                    if covered as f64 >= target {
                        return Self::from_missing(height, width, missing);
                    }
                }
            }
        }
        Self::from_missing(height, width, missing)
    }

    /// A mask drawn as a gray PNG (or any format the `image` crate reads): white (128 and above)
    /// marks missing pixels, black visible ones. It must be gray: a colour picture is refused
    /// rather than guessed at. (`crate::degrade::check_mask` checks its size against the images.)
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::decode(&bytes, &path.display().to_string())
    }

    /// [`Mask::read`] for images of `height` x `width`: a file of another size is refused from
    /// its header, before anything is decoded.
    pub fn read_sized(path: &Path, height: usize, width: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::decode_sized(&bytes, &path.display().to_string(), height, width)
    }

    /// [`Mask::read_sized`] on the file's bytes.
    pub fn decode_sized(bytes: &[u8], what: &str, height: usize, width: usize) -> Result<Self> {
        let (w, h) = crate::data::folder::image_dimensions(bytes)
            .map_err(|e| Error::bad_input(format!("{what}: not a readable mask image ({e})")))?;
        if (h as usize, w as usize) != (height, width) {
            return Err(Error::bad_input(format!(
                "{what}: the mask is {h}x{w}, the images {height}x{width}"
            )));
        }
        Self::decode(bytes, what)
    }

    /// [`Mask::read`] on the file's bytes; `what` names it in errors.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        let picture = crate::data::folder::decode_image(bytes)
            .map_err(|e| Error::bad_input(format!("{what}: not a readable mask image ({e})")))?;
        let (height, width) = (picture.height() as usize, picture.width() as usize);
        let rgb = picture.to_rgb8();
        if rgb.pixels().any(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2]) {
            return Err(Error::bad_input(format!(
                "{what}: a colour mask; draw it in gray, white where pixels are missing"
            )));
        }
        let missing = rgb.pixels().map(|p| p.0[0] >= 128).collect();
        Ok(Self::from_missing(height, width, missing))
    }

    /// Whether pixel (`y`, `x`) is missing.
    pub fn is_missing(&self, y: usize, x: usize) -> bool {
        self.missing[y * self.width + x]
    }

    /// The flags, row-major.
    pub fn missing(&self) -> &[bool] {
        &self.missing
    }

    /// The share of the plane that is missing.
    pub fn coverage(&self) -> f64 {
        self.missing.iter().filter(|&&m| m).count() as f64 / self.missing.len().max(1) as f64
    }
}

/// `filled` where `mask` says missing, `original` everywhere else, bit for bit.
pub fn composite(original: &[f32], filled: &[f32], mask: &Mask, shape: ImageShape) -> Vec<f32> {
    let plane = shape.height * shape.width;
    assert_eq!(original.len(), shape.len());
    assert_eq!(filled.len(), shape.len());
    (0..shape.len())
        .map(|i| {
            if mask.missing()[i % plane] {
                filled[i]
            } else {
                original[i]
            }
        })
        .collect()
}

/// Checks that `mask` fits images of `shape`.
pub fn check_mask(mask: &Mask, shape: ImageShape) -> Result<()> {
    if (mask.height, mask.width) != (shape.height, shape.width) {
        return Err(Error::bad_input(format!(
            "the mask is {}x{}, the images {}x{}",
            mask.height, mask.width, shape.height, shape.width
        )));
    }
    Ok(())
}

/// Marks the disc of `radius` around (`y`, `x`) missing; returns how many pixels were new.
fn paint(missing: &mut [bool], height: usize, width: usize, y: f64, x: f64, radius: f64) -> usize {
    let mut added = 0;
    let (y0, y1) = (
        (y - radius).floor().max(0.0) as usize,
        (y + radius).ceil() as usize,
    );
    let (x0, x1) = (
        (x - radius).floor().max(0.0) as usize,
        (x + radius).ceil() as usize,
    );
    for py in y0..=y1.min(height - 1) {
        for px in x0..=x1.min(width - 1) {
            let (dy, dx) = (py as f64 - y, px as f64 - x);
            if dy * dy + dx * dx <= radius * radius && !missing[py * width + px] {
                missing[py * width + px] = true;
                added += 1;
            }
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn center_hides_a_quarter_in_the_middle() {
        let mask = Mask::center(28, 28);
        assert_eq!(mask.coverage(), 0.25);
        assert!(mask.is_missing(14, 14) && mask.is_missing(7, 7) && mask.is_missing(20, 20));
        assert!(!mask.is_missing(6, 14) && !mask.is_missing(21, 14) && !mask.is_missing(14, 6));
    }

    #[test]
    fn uncropping_hides_one_half() {
        for (side, (y, x)) in [
            (Side::Left, (0, 0)),
            (Side::Right, (0, 31)),
            (Side::Top, (0, 31)),
            (Side::Bottom, (31, 0)),
        ] {
            let mask = Mask::uncrop(32, 32, side);
            assert_eq!(mask.coverage(), 0.5, "{side:?}");
            assert!(mask.is_missing(y, x), "{side:?}");
        }
        assert!(!Mask::uncrop(32, 32, Side::Left).is_missing(0, 16));
    }

    #[test]
    fn free_masks_cover_a_quarter_to_a_half_and_repeat_by_seed() {
        for (h, w) in [(28, 28), (32, 32), (64, 48)] {
            for seed in 0..50 {
                let mask = Mask::free(h, w, seed);
                let c = mask.coverage();
                assert!((0.25..=0.5).contains(&c), "{h}x{w} seed {seed}: {c}");
                assert_eq!(mask, Mask::free(h, w, seed), "same seed, same mask");
            }
        }
        assert_ne!(Mask::free(28, 28, 1), Mask::free(28, 28, 2));
    }

    #[test]
    fn mask_files_are_read_gray_and_colour_ones_refused() {
        let dir = std::env::temp_dir().join(format!("latentlab-mask-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gray =
            image::GrayImage::from_fn(28, 28, |x, _| image::Luma([if x < 7 { 255 } else { 0 }]));
        gray.save(dir.join("left.png")).unwrap();
        let mask = Mask::read(&dir.join("left.png")).unwrap();
        assert_eq!((mask.height, mask.width), (28, 28));
        assert_eq!(mask.coverage(), 0.25);
        assert!(mask.is_missing(0, 0) && !mask.is_missing(0, 7));
        let colour = image::RgbImage::from_fn(28, 28, |x, _| image::Rgb([255, (x * 9) as u8, 0]));
        colour.save(dir.join("colour.png")).unwrap();
        let error = Mask::read(&dir.join("colour.png")).unwrap_err();
        assert!(error.to_string().contains("colour mask"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
