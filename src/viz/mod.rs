//! Pictures: image grids as PNG and charts through plotters.

pub mod confusion;
pub mod grid;
pub mod plot;
pub mod scatter;

pub use grid::{Colormap, GridOptions, ImageGrid};
