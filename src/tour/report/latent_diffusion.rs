//! The report's "Diffusion in a learned latent space": latent diffusion beside the pixel model.

use std::fmt::Write;

use super::{ModelRow, Summary, distance, distance_name, row, short, side_by_side};

/// Latent diffusion beside the pixel model: why it is cheaper, its first stage, its samples.
pub(super) fn section(h: &mut String, s: &Summary) {
    let Some(latent) = row(s, "latent-diffusion") else {
        return;
    };
    let pixel = row(s, "diffusion");
    let fd = |r: Option<&ModelRow>| r.and_then(distance).map_or("—".into(), short);
    let time = |r: Option<&ModelRow>| {
        r.map_or("—".into(), |r| {
            crate::ui::format_duration(r.train_seconds)
        })
    };
    let _ = write!(
        h,
        "<h3>Diffusion in a learned latent space</h3>\n<p>Latent diffusion (Rombach et al. \
         2022, the design of Stable Diffusion and of the text-to-image models of the lecture's \
         timeline) splits the work in two. A first stage, an autoencoder whose code is itself a \
         small image (4 channels of 8×8 for a 28 px image padded to 32), learns to compress and \
         restore images with an L1 loss and a tiny KL term. Diffusion then runs on the codes, \
         scaled to unit variance: every step of its training and sampling processes 64 \
         positions instead of 784, so the U-Net can be wider and attend across the whole code, \
         and the decoder turns the final code into pixels once. {dist} with DDIM-50: \
         <b>{latent_fd}</b> (both stages trained in {latent_time}), against the pixel-space \
         model's {pixel_fd} ({pixel_time}).</p>\n",
        dist = distance_name(s),
        latent_fd = fd(Some(latent)),
        latent_time = time(Some(latent)),
        pixel_fd = fd(pixel),
        pixel_time = time(pixel),
    );
    h.push_str(&side_by_side(&[
        (
            "autoencoder-kl/reconstructions.png",
            "The first stage: test images, the four channels of their codes (each latent pixel \
             drawn over the 4×4 pixels it stands for), and the decodings.",
        ),
        (
            "latent-diffusion/samples.png",
            "Latent diffusion: DDIM-50 codes, decoded.",
        ),
    ]));
}
