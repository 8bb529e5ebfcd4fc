//! Scatter plots of 2-D points coloured by class, with a legend beside the plot: the latent-space
//! maps of the autoencoder and the VAE.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::viz::plot::{plot_error, register_font};
use crate::viz::png::save_png;

/// Matplotlib's tab10: ten classes stay distinguishable.
const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Points `(x, y, class)`.
#[derive(Debug, Clone)]
pub(crate) struct ScatterChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub points: Vec<(f64, f64, usize)>,
    pub class_names: Vec<String>,
    /// Axis ranges; `None` fits the points.
    pub range: Option<((f64, f64), (f64, f64))>,
}

impl ScatterChart {
    fn fitted_range(&self) -> ((f64, f64), (f64, f64)) {
        if let Some(range) = self.range {
            return range;
        }
        let fold = |pick: fn(&(f64, f64, usize)) -> f64| {
            let (lo, hi) = self
                .points
                .iter()
                .map(pick)
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            if lo.is_finite() && hi > lo {
                let pad = (hi - lo) * 0.04;
                (lo - pad, hi + pad)
            } else {
                (-1.0, 1.0)
            }
        };
        (fold(|p| p.0), fold(|p| p.1))
    }

    /// Draws the chart into a `size` PNG (the legend takes the right 170 pixels).
    pub fn save(&self, size: (u32, u32), path: &Path) -> Result<()> {
        register_font();
        let (w, h) = size;
        let mut buffer = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_error)?;
            let (plot_area, legend_area) = root.split_horizontally(w.saturating_sub(170));
            let ((x0, x1), (y0, y1)) = self.fitted_range();
            let mut chart = ChartBuilder::on(&plot_area)
                .caption(&self.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 15))
                .light_line_style(RGBColor(240, 240, 240))
                .draw()
                .map_err(plot_error)?;
            chart
                .draw_series(
                    self.points
                        .iter()
                        .filter(|p| p.0.is_finite() && p.1.is_finite())
                        .map(|&(x, y, class)| {
                            Circle::new((x, y), 2, TAB10[class % TAB10.len()].mix(0.6).filled())
                        }),
                )
                .map_err(plot_error)?;
            let style = ("sans-serif", 15).into_font().color(&BLACK);
            for (i, name) in self.class_names.iter().enumerate() {
                let y = 60 + 24 * i as i32;
                legend_area
                    .draw(&Circle::new((14, y), 6, TAB10[i % TAB10.len()].filled()))
                    .map_err(plot_error)?;
                legend_area
                    .draw(&Text::new(name.clone(), (26, y - 8), style.clone()))
                    .map_err(plot_error)?;
            }
            root.present().map_err(plot_error)?;
        }
        let image = image::RgbImage::from_raw(w, h, buffer)
            .ok_or_else(|| Error::Internal("chart buffer has the wrong size".into()))?;
        save_png(&image, path)
    }
}
