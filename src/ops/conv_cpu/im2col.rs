//! Patches to columns and back: `im2col` lays each output pixel's input patch out as a column of
//! `col`, `col2im` scatters columns back onto their patches (the input gradient), and the gathers
//! between the tensors' layout and the products'.

use rayon::prelude::*;

use super::geometry::*;
use super::scratch::*;

/// `col[(c, ky, kx), (i, oy, ox)] = x[first + i, c, oy·s + ky·d − p, ox·s + kx·d − p]` (0 in the
/// padding) for the `images` images from `first`.
pub(super) fn im2col(
    g: &ConvGeometry,
    plan: &TapPlan,
    x: &[f32],
    first: usize,
    images: usize,
    col: &mut [f32],
    ld: usize,
) {
    let [kh, kw] = g.kernel;
    let [oh, ow] = g.out_size;
    let TapPlan {
        phases,
        taps,
        block,
        masks,
        strips,
    } = plan;
    let (plane, split_len) = (g.in_pixels(), phases.plane_len());
    let planes = &x[first * g.in_channels * plane..][..images * g.in_channels * plane];
    let width = images * oh * ow;
    if let Some(strips) = strips {
        let strip_len = strips.len(g, images);
        let phase_count = phases.stride[0] * phases.stride[1];
        let mut split = Scratch::new(g.in_channels * phase_count * strip_len);
        split
            .par_chunks_mut(phase_count * strip_len)
            .enumerate()
            .for_each(|(c, channel)| {
                for i in 0..images {
                    let plane = &planes[(i * g.in_channels + c) * plane..][..plane];
                    let out = &mut channel[strips.margin + i * oh * ow..];
                    phases.split(plane, g.in_size, out, strip_len);
                }
            });
        col[..g.patch_len() * ld]
            .par_chunks_mut(ld)
            .with_min_len(items_per_task(ld))
            .enumerate()
            .for_each(|(row, col_row)| {
                let (c, t) = (row / (kh * kw), row % (kh * kw));
                let channel = &split[c * phase_count * strip_len..][..phase_count * strip_len];
                let src = &channel[strips.window(t, strip_len, width)];
                let out = &mut col_row[..width];
                match &strips.masks[t] {
                    None => out.copy_from_slice(src),
                    Some(mask) => crate::ops::vectorized(
                        #[inline(always)]
                        || {
                            let blocks =
                                out.chunks_exact_mut(oh * ow).zip(src.chunks_exact(oh * ow));
                            for (out, src) in blocks {
                                for ((o, s), &m) in out.iter_mut().zip(src).zip(mask) {
                                    *o = f32::from_bits(s.to_bits() & m);
                                }
                            }
                        },
                    ),
                }
            });
        return;
    }
    // With stride 1 the planes are read where they are.
    let mut split = None;
    let split: &[f32] = if phases.identity() {
        planes
    } else {
        let split = split.insert(Scratch::new(images * g.in_channels * split_len));
        split
            .par_chunks_mut(split_len)
            .zip(planes.par_chunks(plane))
            .for_each(|(out, plane)| phases.split(plane, g.in_size, out, phases.sub_len()));
        split
    };
    col[..g.patch_len() * ld]
        .par_chunks_mut(ld)
        .with_min_len(items_per_task(ld))
        .enumerate()
        .for_each(|(row, col_row)| {
            let col_row = &mut col_row[..width];
            let (c, t) = (row / (kh * kw), row % (kh * kw));
            let tap = &taps[t];
            let ((y_lo, y_hi), (x_lo, x_hi)) = (tap.rows, tap.cols);
            for i in 0..images {
                let src_plane = &split[(i * g.in_channels + c) * split_len..][..split_len];
                let out = &mut col_row[i * oh * ow..][..oh * ow];
                if *block && y_lo < y_hi && x_lo < x_hi {
                    // Source and destination advance alike, so the span from the first to the
                    // last pixel the tap reads is one copy; the padding inside it (columns
                    // outside [x_lo, x_hi)) would be read from the neighbouring rows, and the
                    // mask zeroes it.
                    let (first, end) = (y_lo * ow + x_lo, (y_hi - 1) * ow + x_hi);
                    let src = &src_plane[phases.run(tap, y_lo)..][..end - first];
                    out[..first].fill(0.0);
                    if x_lo == 0 && x_hi == ow {
                        out[first..end].copy_from_slice(src);
                    } else {
                        let mask = &masks[t][first..end];
                        for ((o, s), &m) in out[first..end].iter_mut().zip(src).zip(mask) {
                            *o = f32::from_bits(s.to_bits() & m);
                        }
                    }
                    out[end..].fill(0.0);
                    continue;
                }
                for (oy, out) in out.chunks_mut(ow).enumerate() {
                    if oy < y_lo || oy >= y_hi || x_hi <= x_lo {
                        out.fill(0.0);
                        continue;
                    }
                    out[..x_lo].fill(0.0);
                    out[x_hi..].fill(0.0);
                    let start = phases.run(tap, oy);
                    out[x_lo..x_hi].copy_from_slice(&src_plane[start..start + x_hi - x_lo]);
                }
            }
        });
}

/// `col(x)` of image `i` alone, [c_in·kh·kw, oh·ow], and its row length: the image itself for
/// a pointwise convolution, else written into `col` with rows of [`image_row`].
pub(super) fn image_columns<'a>(
    g: &ConvGeometry,
    plan: &TapPlan,
    x: &'a [f32],
    i: usize,
    col: &'a mut [f32],
) -> (&'a [f32], usize) {
    if g.pointwise() {
        let len = g.in_channels * g.in_pixels();
        (&x[i * len..][..len], g.out_pixels())
    } else {
        im2col(g, plan, x, i, 1, col, image_row(g));
        (col, image_row(g))
    }
}

/// Row length of `col` when convolutions run image by image.
pub(super) fn image_row(g: &ConvGeometry) -> usize {
    padded_row(g.out_pixels())
}

/// Floats of `col` image by image (none for a pointwise convolution, which reads the image).
pub(super) fn image_col_len(g: &ConvGeometry) -> usize {
    if g.pointwise() {
        0
    } else {
        g.patch_len() * image_row(g)
    }
}

/// The inverse scatter of [`im2col`] for the `images` images at the start of `dx`: adds every
/// column entry onto the input pixel it was read from. Each task owns one (image, channel) plane
/// of `dx`, so no two write the same float.
pub(super) fn col2im(
    g: &ConvGeometry,
    plan: &TapPlan,
    col: &[f32],
    images: usize,
    dx: &mut [f32],
    ld: usize,
) {
    let [kh, kw] = g.kernel;
    let [oh, ow] = g.out_size;
    let TapPlan {
        phases,
        taps,
        block,
        masks: inside,
        strips,
    } = plan;
    let (plane_len, split_len) = (g.in_pixels(), phases.plane_len());
    let planes = &mut dx[..images * g.in_channels * plane_len];
    if let Some(strips) = strips {
        let (strip_len, width) = (strips.len(g, images), images * oh * ow);
        let phase_count = phases.stride[0] * phases.stride[1];
        let mut split = Scratch::new(g.in_channels * phase_count * strip_len);
        split
            .par_chunks_mut(phase_count * strip_len)
            .enumerate()
            .for_each(|(c, channel)| {
                channel.fill(0.0);
                crate::ops::vectorized(
                    #[inline(always)]
                    || {
                        for t in 0..kh * kw {
                            let row = &col[(c * kh * kw + t) * ld..][..width];
                            let dst = &mut channel[strips.window(t, strip_len, width)];
                            match &strips.masks[t] {
                                None => dst.iter_mut().zip(row).for_each(|(d, s)| *d += s),
                                Some(mask) => {
                                    let blocks = dst
                                        .chunks_exact_mut(oh * ow)
                                        .zip(row.chunks_exact(oh * ow));
                                    for (dst, src) in blocks {
                                        for ((d, s), &m) in dst.iter_mut().zip(src).zip(mask) {
                                            *d += f32::from_bits(s.to_bits() & m);
                                        }
                                    }
                                }
                            }
                        }
                    },
                );
            });
        planes
            .par_chunks_mut(plane_len)
            .with_min_len(items_per_task(plane_len))
            .enumerate()
            .for_each(|(index, plane)| {
                let (i, c) = (index / g.in_channels, index % g.in_channels);
                let channel = &split[c * phase_count * strip_len + strips.margin + i * oh * ow..];
                phases.merge(channel, g.in_size, plane, strip_len);
            });
        return;
    }
    let accumulate = |index: usize, split: &mut [f32]| {
        let (i, c) = (index / g.in_channels, index % g.in_channels);
        for (t, tap) in taps.iter().enumerate() {
            let ((y_lo, y_hi), (x_lo, x_hi)) = (tap.rows, tap.cols);
            if x_hi <= x_lo || y_hi <= y_lo {
                continue;
            }
            let row = &col[(c * kh * kw + t) * ld + i * oh * ow..][..oh * ow];
            if *block {
                // As in im2col, the tap's outputs map onto one run of the sub-plane; the
                // entries of that span that read padding belong to no input pixel and add 0.
                let (first, end) = (y_lo * ow + x_lo, (y_hi - 1) * ow + x_hi);
                let start = phases.run(tap, y_lo);
                let dst = &mut split[start..start + end - first];
                let (src, keep) = (&row[first..end], &inside[t][first..end]);
                if x_lo == 0 && x_hi == ow {
                    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                } else {
                    for ((d, s), &k) in dst.iter_mut().zip(src).zip(keep) {
                        *d += f32::from_bits(s.to_bits() & k);
                    }
                }
                continue;
            }
            for oy in y_lo..y_hi {
                let start = phases.run(tap, oy);
                let dst = &mut split[start..start + x_hi - x_lo];
                let src = &row[oy * ow + x_lo..oy * ow + x_hi];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
            }
        }
    };
    if phases.identity() {
        planes
            .par_chunks_mut(plane_len)
            .with_min_len(items_per_task(plane_len))
            .enumerate()
            .for_each(|(index, plane)| accumulate(index, plane));
    } else {
        let planes = planes.par_chunks_mut(plane_len);
        planes
            .with_min_len(items_per_task(plane_len))
            .enumerate()
            .for_each_init(Vec::new, |split, (index, plane)| {
                split.clear();
                split.resize(split_len, 0.0);
                accumulate(index, split);
                phases.merge(split, g.in_size, plane, phases.sub_len());
            });
    }
}

/// `dy[first.., co, p]` of `images` images as one matrix [c_out, images·oh·ow].
pub(super) fn gather_output(
    g: &ConvGeometry,
    dy: &[f32],
    first: usize,
    images: usize,
    out: &mut [f32],
    ld: usize,
) {
    let pixels = g.out_pixels();
    out[..g.out_channels * ld]
        .par_chunks_mut(ld)
        .with_min_len(items_per_task(ld))
        .enumerate()
        .for_each(|(co, row)| {
            for i in 0..images {
                let src = &dy[((first + i) * g.out_channels + co) * pixels..][..pixels];
                row[i * pixels..][..pixels].copy_from_slice(src);
            }
        });
}
