//! PNG files: every picture latentlab writes goes through here, atomically.

use std::path::Path;

use image::RgbImage;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// Writes any RGB image as PNG, atomically.
pub(crate) fn save_png(image: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::Internal(format!("encoding {}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}
