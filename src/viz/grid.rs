//! Image grids: many small images tiled into one PNG, 8 columns and 2-pixel gutters by default.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::data::ImageShape;
use crate::error::Result;
use crate::viz::png::save_png;

/// How values become colours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Colormap {
    /// Values in `[low, high]` map linearly to black..white (gray) or to each RGB channel.
    Linear { low: f32, high: f32 },
    /// Zero is white, negatives blue, positives red, scaled per image by its largest magnitude:
    /// the honest way to show a signed pattern such as an eigen-image. Gray images only; colour
    /// images map `-m..m` to `0..1` per channel instead.
    Diverging,
}

/// Layout of a grid.
#[derive(Debug, Clone, Copy)]
pub struct GridOptions {
    pub columns: usize,
    pub gutter: u32,
    /// Integer upscaling of each pixel, so 28x28 images are visible in a report.
    pub scale: u32,
    pub background: [u8; 3],
}

impl Default for GridOptions {
    fn default() -> Self {
        Self {
            columns: 8,
            gutter: 2,
            scale: 1,
            background: [255, 255, 255],
        }
    }
}

/// A set of same-shaped images (`CHW` floats) to be tiled.
pub struct ImageGrid {
    shape: ImageShape,
    images: Vec<Vec<f32>>,
}

impl ImageGrid {
    pub fn new(shape: ImageShape) -> Self {
        Self {
            shape,
            images: Vec::new(),
        }
    }

    /// Appends one image of `shape.len()` values.
    pub fn push(&mut self, image: Vec<f32>) {
        assert_eq!(
            image.len(),
            self.shape.len(),
            "image has the wrong number of values"
        );
        self.images.push(image);
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Pixel size of the rendered grid for `n` images.
    pub fn size(shape: ImageShape, n: usize, options: &GridOptions) -> (u32, u32) {
        let columns = options.columns.min(n).max(1) as u32;
        let rows = n.div_ceil(options.columns.max(1)).max(1) as u32;
        let tile_w = shape.width as u32 * options.scale;
        let tile_h = shape.height as u32 * options.scale;
        (
            columns * tile_w + (columns + 1) * options.gutter,
            rows * tile_h + (rows + 1) * options.gutter,
        )
    }

    /// Renders the grid.
    pub fn render(&self, colormap: Colormap, options: &GridOptions) -> RgbImage {
        let (w, h) = Self::size(self.shape, self.images.len(), options);
        let mut canvas = RgbImage::from_pixel(w, h, Rgb(options.background));
        let columns = options.columns.max(1);
        let s = options.scale;
        let (iw, ih) = (self.shape.width, self.shape.height);
        let plane = iw * ih;
        for (index, image) in self.images.iter().enumerate() {
            let x0 = options.gutter + (index % columns) as u32 * (iw as u32 * s + options.gutter);
            let y0 = options.gutter + (index / columns) as u32 * (ih as u32 * s + options.gutter);
            let magnitude = image.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
            for y in 0..ih {
                for x in 0..iw {
                    let value = |c: usize| image[c * plane + y * iw + x];
                    let rgb = match (colormap, self.shape.channels) {
                        (Colormap::Linear { low, high }, 1) => {
                            let g = to_byte((value(0) - low) / (high - low));
                            [g, g, g]
                        }
                        (Colormap::Linear { low, high }, _) => {
                            [0, 1, 2].map(|c| to_byte((value(c) - low) / (high - low)))
                        }
                        (Colormap::Diverging, 1) => diverging(value(0) / magnitude),
                        (Colormap::Diverging, _) => {
                            [0, 1, 2].map(|c| to_byte(0.5 + 0.5 * value(c) / magnitude))
                        }
                    };
                    for dy in 0..s {
                        for dx in 0..s {
                            canvas.put_pixel(
                                x0 + x as u32 * s + dx,
                                y0 + y as u32 * s + dy,
                                Rgb(rgb),
                            );
                        }
                    }
                }
            }
        }
        canvas
    }

    /// Renders and writes a PNG atomically.
    pub fn save(&self, path: &Path, colormap: Colormap, options: &GridOptions) -> Result<()> {
        save_png(&self.render(colormap, options), path)
    }
}

fn to_byte(unit: f32) -> u8 {
    (unit.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Blue (-1) through white (0) to red (+1), as matplotlib's `bwr`.
fn diverging(t: f32) -> [u8; 3] {
    let t = t.clamp(-1.0, 1.0);
    if t >= 0.0 {
        [255, to_byte(1.0 - t), to_byte(1.0 - t)]
    } else {
        [to_byte(1.0 + t), to_byte(1.0 + t), 255]
    }
}

impl ImageGrid {
    /// Saves the grid as rows of `columns` images with pixels in [0, 1], each pixel drawn 2x2, and
    /// `labels[i]` left of row `i` (comparison figures: originals over reconstructions).
    pub fn save_labelled_rows(&self, columns: usize, labels: &[String], path: &Path) -> Result<()> {
        let options = GridOptions {
            columns,
            scale: 2,
            ..Default::default()
        };
        let image = self.render(
            Colormap::Linear {
                low: 0.0,
                high: 1.0,
            },
            &options,
        );
        let tile = self.shape.height as u32 * options.scale;
        let labelled = crate::viz::plot::label_rows(
            &image,
            labels,
            options.gutter,
            tile + options.gutter,
            tile,
        )?;
        save_png(&labelled, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_values() {
        let shape = ImageShape {
            channels: 1,
            height: 2,
            width: 3,
        };
        let mut grid = ImageGrid::new(shape);
        for i in 0..10 {
            grid.push(vec![i as f32 / 9.0; 6]);
        }
        let options = GridOptions::default();
        let image = grid.render(
            Colormap::Linear {
                low: 0.0,
                high: 1.0,
            },
            &options,
        );
        // 8 columns, 2 rows: 8*3 + 9*2 wide, 2*2 + 3*2 high.
        assert_eq!(image.dimensions(), (42, 10));
        assert_eq!(image.get_pixel(0, 0).0, [255, 255, 255]); // gutter
        assert_eq!(image.get_pixel(2, 2).0, [0, 0, 0]); // image 0 is black
        assert_eq!(image.get_pixel(2 + 7 * 5, 2).0, [198, 198, 198]); // image 7 = 7/9
        assert_eq!(image.get_pixel(2 + 5, 2 + 4).0, [255, 255, 255]); // image 9 is white
    }

    #[test]
    fn diverging_is_signed() {
        assert_eq!(diverging(0.0), [255, 255, 255]);
        assert_eq!(diverging(1.0), [255, 0, 0]);
        assert_eq!(diverging(-1.0), [0, 0, 255]);
    }
}
