//! Pictures: image grids, charts through plotters, latent maps and confusion matrices, as PNG.

pub mod confusion;
pub mod grid;
pub mod plot;
pub mod png;
pub mod scatter;

pub use grid::{Colormap, GridOptions, ImageGrid};
