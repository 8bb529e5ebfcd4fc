//! The report's "Diffusion in a learned latent space": latent diffusion beside the pixel model.

use std::fmt::Write;

use super::{ModelRow, Summary, distance, distance_name, escape, opt, row, short, side_by_side};
use crate::ui::thousands;

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
    if !s.diffusion_curve.is_empty() {
        let dist = distance_name(s);
        let _ = write!(
            h,
            "<table>\n<tr><th>sampler</th><th>network evaluations</th><th>{dist}</th>\
             <th>samples scored</th><th>seconds per 64 samples</th></tr>\n"
        );
        for point in &s.diffusion_curve {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&point.sampler),
                point.steps,
                point.distance.map_or("—".into(), short),
                thousands(point.samples),
                opt(point.seconds_per_64, 2),
            );
        }
        h.push_str(
            "</table>\n<p class=\"note\">Quality against cost: each step is one pass of the \
             latent U-Net over the batch, then the decoder runs once. Scored against as many \
             test images as samples; fewer samples raise a Fréchet distance, so compare rows of \
             equal counts.</p>\n",
        );
    }
    let repaint = s
        .edits
        .iter()
        .find(|e| e.name == "inpaint-center")
        .and_then(|e| e.methods.iter().find(|m| m.method == "latent diffusion"));
    if let Some(m) = repaint {
        let _ = writeln!(
            h,
            "<p>The same model fills holes without training for it (RePaint, Lugmayr et al. \
             2022), here in its latent space: at every step the codes of the visible part are \
             replaced by themselves noised to that step, stretches of the walk are re-noised \
             and walked again so that the hole agrees with its surroundings, and the decoded \
             image gets its visible pixels back exactly. Centre-hole PSNR {:.2} dB at {:.0} ms \
             per image; section 7 sets it beside the other methods.</p>",
            m.scores.psnr_hole,
            1000.0 * m.scores.seconds_per_image
        );
    }
}
