//! Pictures: image grids as PNG, charts through plotters, and the tour's HTML report.

pub mod confusion;
pub mod grid;
pub mod plot;
pub mod report;
pub mod scatter;

pub use grid::{Colormap, GridOptions, ImageGrid};
