//! Line charts through plotters, drawn into a bitmap and saved as PNG. The font (DejaVu Sans) is
//! compiled in, so charts render the same on a machine without fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::viz::png::save_png;

static FONT: Once = Once::new();
const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

pub(crate) fn register_font() {
    FONT.call_once(|| {
        // The font is compiled in and known good; failure here is a broken build.
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES)
            .unwrap_or_else(|_| panic!("embedded DejaVuSans.ttf does not parse"));
    });
}

/// A named line of (x, y) points.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A horizontal or vertical reference line with a label.
#[derive(Debug, Clone)]
pub(crate) enum Mark {
    Horizontal { y: f64, label: String },
    Vertical { x: f64, label: String },
}

/// One panel: a title, axis names, lines and marks.
#[derive(Debug, Clone)]
pub(crate) struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
    /// Logarithmic y axis (all y must be positive).
    pub log_y: bool,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

pub(crate) fn plot_error<E: std::fmt::Debug>(e: E) -> Error {
    Error::Internal(format!("drawing a chart: {e:?}"))
}

impl LineChart {
    fn x_range(&self) -> (f64, f64) {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (0.0, 1.0)
        }
    }

    fn y_range(&self) -> (f64, f64) {
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(self.marks.iter().filter_map(|m| match m {
                Mark::Horizontal { y, .. } => Some(*y),
                Mark::Vertical { .. } => None,
            }))
            .filter(|y| y.is_finite() && (!self.log_y || *y > 0.0));
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
        if !lo.is_finite() {
            return (if self.log_y { 1e-3 } else { 0.0 }, 1.0);
        }
        if self.log_y {
            (lo / 1.5, hi * 1.5)
        } else {
            let pad = ((hi - lo) * 0.05).max(1e-9);
            (lo - pad, hi + pad)
        }
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, plotters::coord::Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (x0, x1) = self.x_range();
        let (y0, y1) = self.y_range();
        if self.log_y {
            self.draw_on(area, x0..x1, (y0..y1).log_scale())
        } else {
            self.draw_on(area, x0..x1, y0..y1)
        }
    }

    fn draw_on<DB, Y>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        x: std::ops::Range<f64>,
        y: Y,
    ) -> Result<()>
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let (xa, xb) = (x.start, x.end);
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(plot_error)?;
        // Epoch axes: one tick per whole number, never 1.1, 1.2, ...
        let whole_x = self
            .series
            .iter()
            .all(|s| s.points.iter().all(|p| p.0.fract() == 0.0));
        let x_ticks = if whole_x && xb - xa <= 20.0 {
            (xb - xa) as usize + 1
        } else {
            10
        };
        chart
            .configure_mesh()
            .x_labels(x_ticks)
            .x_desc(&self.x_label)
            .x_label_formatter(&|x| format_tick(*x))
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_error)?;
        for (i, series) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    series.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(&series.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        let gray = RGBColor(110, 110, 110);
        for mark in &self.marks {
            // Labels sit beside their line in pixel offsets, away from the data's steep start.
            let (ya, yb) = self.y_range();
            let (points, label, at, offset) = match mark {
                Mark::Horizontal { y, label } => (
                    vec![(xa, *y), (xb, *y)],
                    label,
                    (xa + (xb - xa) * 0.86, *y),
                    (0, -18),
                ),
                Mark::Vertical { x, label } => {
                    let low = if self.log_y {
                        ya * (yb / ya).powf(0.08)
                    } else {
                        ya + (yb - ya) * 0.08
                    };
                    (vec![(*x, ya), (*x, yb)], label, (*x, low), (5, -18))
                }
            };
            chart
                .draw_series(DashedLineSeries::new(points, 6, 4, gray.stroke_width(1)))
                .map_err(plot_error)?;
            let style = ("sans-serif", 14).into_font().color(&gray);
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(at) + Text::new(label.clone(), offset, style),
                ))
                .map_err(plot_error)?;
        }
        if self.series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 14))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(plot_error)?;
        }
        Ok(())
    }
}

/// Whole numbers without a decimal point, others with up to three significant decimals.
fn format_tick(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e9 {
        format!("{}", x as i64)
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// Draws `charts` side by side, each `panel_size` pixels, and saves one PNG.
pub(crate) fn save_charts(charts: &[LineChart], panel_size: (u32, u32), path: &Path) -> Result<()> {
    register_font();
    let (w, h) = (panel_size.0 * charts.len().max(1) as u32, panel_size.1);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let panels = root.split_evenly((1, charts.len().max(1)));
        for (chart, panel) in charts.iter().zip(&panels) {
            chart.draw(panel)?;
        }
        root.present().map_err(plot_error)?;
    }
    let image = image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| Error::Internal("chart buffer has the wrong size".into()))?;
    save_png(&image, path)
}

/// Adds a left margin to `image` and writes `labels[i]` (one or more lines) beside row `i` of a grid whose first row
/// starts at `first_row_y` and whose rows are `row_pitch` pixels apart.
pub(crate) fn label_rows(
    image: &image::RgbImage,
    labels: &[String],
    first_row_y: u32,
    row_pitch: u32,
    row_height: u32,
) -> Result<image::RgbImage> {
    register_font();
    let margin = 90;
    let (w, h) = (image.width() + margin, image.height());
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    image::imageops::replace(&mut canvas, image, margin as i64, 0);
    let mut buffer = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let style = ("sans-serif", 15).into_font().color(&BLACK);
        const LINE: i32 = 18;
        for (i, label) in labels.iter().enumerate() {
            let centre = (first_row_y + i as u32 * row_pitch + row_height / 2) as i32;
            let lines: Vec<&str> = label.lines().collect();
            let top = centre - LINE * lines.len() as i32 / 2;
            for (l, line) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.to_string(),
                    (6, top + LINE * l as i32),
                    style.clone(),
                ))
                .map_err(plot_error)?;
            }
        }
        root.present().map_err(plot_error)?;
    }
    image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| Error::Internal("label buffer has the wrong size".into()))
}
