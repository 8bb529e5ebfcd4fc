//! The confusion matrix as a picture: rows are true classes, columns predictions, each cell
//! shaded by the share of its row and labelled with its count.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::viz::plot::{plot_error, register_font};
use crate::viz::png::save_png;

/// Draws `counts[true][predicted]` with class names, into a PNG at `path`.
pub(crate) fn save_confusion(
    counts: &[Vec<usize>],
    names: &[String],
    title: &str,
    path: &Path,
) -> Result<()> {
    register_font();
    let n = counts.len();
    let cell = 56u32;
    let (left, top) = (120u32, 70u32);
    let (w, h) = (left + cell * n as u32 + 20, top + cell * n as u32 + 110);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        root.draw(&Text::new(
            title.to_string(),
            (10, 12),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(plot_error)?;
        for (i, row) in counts.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            for (j, &count) in row.iter().enumerate() {
                let share = count as f64 / total;
                let shade = (255.0 * (1.0 - share)) as u8;
                let color = if i == j {
                    RGBColor(
                        shade,
                        shade.saturating_add(((255 - shade) as f64 * 0.3) as u8),
                        255,
                    )
                } else {
                    RGBColor(255, shade, shade)
                };
                let x0 = (left + j as u32 * cell) as i32;
                let y0 = (top + i as u32 * cell) as i32;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                    color.filled(),
                ))
                .map_err(plot_error)?;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                    RGBColor(200, 200, 200),
                ))
                .map_err(plot_error)?;
                let ink = if share > 0.6 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    count.to_string(),
                    (x0 + 8, y0 + cell as i32 / 2 - 8),
                    ("sans-serif", 14).into_font().color(&ink),
                ))
                .map_err(plot_error)?;
            }
            let name = names.get(i).cloned().unwrap_or_else(|| i.to_string());
            root.draw(&Text::new(
                name,
                (6, (top + i as u32 * cell + cell / 2 - 8) as i32),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(plot_error)?;
        }
        for j in 0..n {
            let name = names.get(j).cloned().unwrap_or_else(|| j.to_string());
            let short: String = name.chars().take(7).collect();
            root.draw(&Text::new(
                short,
                (
                    (left + j as u32 * cell + 2) as i32,
                    (top + n as u32 * cell + 8) as i32,
                ),
                ("sans-serif", 13).into_font(),
            ))
            .map_err(plot_error)?;
        }
        root.draw(&Text::new(
            "rows: true class, columns: predicted".to_string(),
            (left as i32, (top + n as u32 * cell + 40) as i32),
            ("sans-serif", 15).into_font(),
        ))
        .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    let image = image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| Error::Internal("chart buffer has the wrong size".into()))?;
    save_png(&image, path)
}
