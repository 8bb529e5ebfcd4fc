//! Convolutions as products over channels-last copies of the input, with no `col`: the "same"
//! convolutions of the U-Net's and the residual blocks' layers (odd kernel, padding half of it,
//! stride 1), and the "halving" ones that down-sample by their stride (4x4, stride 2, padding 1)
//! with their transposes.
//!
//! Each image is copied once into a *frame*: channels last, `ph` zero rows above and below and
//! `pw` zero columns after every row, which also serve as the padding before the next row. In
//! that layout the kh·kw·c inputs under an output pixel are kh runs of kw·c contiguous floats,
//! one per kernel row, each a fixed distance from the pixel's own position. So for kernel row ky
//! the patches of all pixels are the rows of one strided matrix that overlaps itself (row stride
//! c, kw·c wide), read in place:
//!
//!   yᵀ [pixels, c_out] = Σ_ky frame_ky [pixels, kw·c] · W_ky [kw·c, c_out]
//!
//! and the weight gradient is the same products turned around, dW_ky = frame_kyᵀ · dy. The pixels
//! run over every position of the frame's rows, its padding columns included (their outputs are
//! dropped; 3.6 % more work at 28x28). Against im2col this writes and reads c·h·w floats per
//! image instead of kh·kw times as many, and its products are tall and thin, which the `gemm`
//! crate runs faster than the wide ones of `col` (840x96 by 96x32: 302 against 240 GFLOP/s for
//! 32x288 by 288x784 on the 2-core Xeon VM).
//!
//! A halving convolution (kernel s·k', stride s, padding (s·k' − s)/2) is a stride-1 one on its
//! input's s² stride phases (Shi et al. 2016's sub-pixel view): with ky = s·u + v, output row i
//! reads input row s·(i + u) + v − p, row i + u of phase plane P_v[m] = x[s·m + v − p]. So
//! y = conv_k'(P, W') with the phases as s²·c input channels, no padding. Its input gradient
//! writes each phase of dx as a full stride-1 convolution of dy (padding k' − 1) with the taps
//! turned around: the phases are s²·c output channels, merged back into dx.

use rayon::prelude::*;

use super::epilogue::Epilogue;
use super::gemm::{matmul_strided, transpose};
use super::geometry::ConvGeometry;
use super::scratch::{Scratch, written_vec};
use super::sum_in_fixed_groups;

/// Output pixels per image from which this path is taken: at 7x7 a frame has 64 % more
/// positions than pixels, and the products are too short. Any channel counts: even the
/// denoiser's last layer (32 → 1) ran its three passes in 3.0 ms here against 7.7 with `col`.
const MIN_PIXELS: usize = 196;

/// Whether `g` is a "same" convolution this module computes.
pub(super) fn same(g: &ConvGeometry) -> bool {
    let odd_half = |d: usize| g.kernel[d] % 2 == 1 && g.padding[d] == g.kernel[d] / 2;
    g.in_channels > 0
        && g.out_channels > 0
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.in_size == g.out_size
        && odd_half(0)
        && odd_half(1)
        && g.kernel != [1, 1]
        && g.out_pixels() >= MIN_PIXELS
}

/// Input channels times stride phases from which a halving convolution takes this path: the
/// depth of its products and the width of its input gradient's. Below, its three passes ran as
/// fast as with `col` (16 → 32 channels, 28 → 14) or slower (1 → 32: 2.0 ms against `col`'s 1.2
/// at batch 128); above, faster (32 → 64: 12.4 against 15.2 ms at batch 64).
const MIN_PHASE_CHANNELS: usize = 128;

/// Whether `g` is a halving convolution this module computes: stride s > 1 dividing the input,
/// kernel a multiple of it, padding (kernel − s)/2 (so the output is the input / s), at least
/// [`MIN_PIXELS`] output pixels (14 → 7 ran its passes 10-20 % slower this way) and
/// [`MIN_PHASE_CHANNELS`].
pub(super) fn halving(g: &ConvGeometry) -> bool {
    let fits = |d: usize| {
        let (s, k) = (g.stride[d], g.kernel[d]);
        s > 1
            && k.is_multiple_of(s)
            && (k - s).is_multiple_of(2)
            && g.padding[d] == (k - s) / 2
            && g.in_size[d].is_multiple_of(s)
            && g.out_size[d] == g.in_size[d] / s
    };
    g.out_channels > 0
        && g.dilation == [1, 1]
        && fits(0)
        && fits(1)
        && g.out_pixels() >= MIN_PIXELS
        && g.in_channels * g.stride[0] * g.stride[1] >= MIN_PHASE_CHANNELS
}

/// Where an image's pixels sit in its frame (in positions of `channels` floats each).
#[derive(Debug, Clone, Copy)]
struct Frame {
    size: [usize; 2],
    pad: [usize; 2],
    channels: usize,
}

impl Frame {
    /// Positions per frame row: the image row and its `pw` zeros.
    fn row(&self) -> usize {
        self.size[1] + self.pad[1]
    }

    /// Position of pixel (r, c): `pw` leading zeros (the left padding of the first row), `ph`
    /// zero rows, then the rows.
    fn position(&self, r: usize, c: usize) -> usize {
        self.pad[1] + (r + self.pad[0]) * self.row() + c
    }

    /// Copies `planes` [channels, h·w] (one image, channels first) into `frame`, which holds
    /// `positions` positions, writing every float of it (zeros in the padding).
    fn fill(&self, planes: &[f32], positions: usize, frame: &mut [f32]) {
        let [h, w] = self.size;
        let c = self.channels;
        let frame = &mut frame[..positions * c];
        let (top, rest) = frame.split_at_mut(self.position(0, 0) * c);
        top.fill(0.0);
        let (rows, bottom) = rest.split_at_mut(h * self.row() * c);
        to_rows(planes, [h, w], c, self.row(), rows);
        bottom.fill(0.0);
    }
}

/// `planes` [channels, h·w] as `h` rows of `row` positions, channels last: each image row,
/// then zeros to the row's end.
fn to_rows(planes: &[f32], [h, w]: [usize; 2], channels: usize, row: usize, rows: &mut [f32]) {
    for (r, out) in rows[..h * row * channels]
        .chunks_exact_mut(row * channels)
        .enumerate()
    {
        transpose(&planes[r * w..], [channels, w], h * w, out, channels);
        out[w * channels..].fill(0.0);
    }
}

/// The inverse of [`to_rows`], dropping each row's last `row − w` positions.
fn from_rows(rows: &[f32], [h, w]: [usize; 2], channels: usize, row: usize, planes: &mut [f32]) {
    for r in 0..h {
        let src = &rows[r * row * channels..];
        transpose(src, [w, channels], channels, &mut planes[r * w..], h * w);
    }
}

/// A stride-1 convolution over frames: `kernel`, `out_channels`, and the input's frame (its
/// padding is the convolution's).
#[derive(Debug, Clone, Copy)]
struct FrameConv {
    frame: Frame,
    kernel: [usize; 2],
    out_channels: usize,
}

impl FrameConv {
    fn out_size(&self) -> [usize; 2] {
        std::array::from_fn(|d| self.frame.size[d] + 2 * self.frame.pad[d] + 1 - self.kernel[d])
    }

    /// Output positions: every frame row of the output, the columns past its width included.
    fn grid(&self) -> usize {
        self.out_size()[0] * self.frame.row()
    }

    /// Positions a frame holds: the last output row's reads of its bottom-right neighbours
    /// stay inside.
    fn positions(&self) -> usize {
        (self.frame.size[0] + 2 * self.frame.pad[0]) * self.frame.row() + self.kernel[1]
    }

    fn frame_len(&self) -> usize {
        self.positions() * self.frame.channels
    }

    /// Floats of the weight as the products read it (see [`FrameConv::weight_rows`]).
    fn weight_len(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.frame.channels * self.out_channels
    }

    /// `weight(o, c, ky, kx)` as kh matrices [kw·c, c_out], row-major: the right operand of
    /// each kernel row's product.
    fn weight_rows(&self, weight: impl Fn(usize, usize, usize, usize) -> f32) -> Vec<f32> {
        let [kh, kw] = self.kernel;
        let (ci, co) = (self.frame.channels, self.out_channels);
        let mut rows = vec![0.0; self.weight_len()];
        for ky in 0..kh {
            for kx in 0..kw {
                for c in 0..ci {
                    let out = &mut rows[((ky * kw + kx) * ci + c) * co..][..co];
                    out.iter_mut()
                        .enumerate()
                        .for_each(|(o, v)| *v = weight(o, c, ky, kx));
                }
            }
        }
        rows
    }

    /// The float where kernel row `ky`'s matrix starts: the top-left tap of the first output.
    /// Output position q reads frame position q + ky·row + kx (the leading `pw` zeros make the
    /// first one 0).
    fn kernel_row_start(&self, ky: usize) -> usize {
        ky * self.frame.row() * self.frame.channels
    }

    /// `rows` [grid, c_out] = the products of one image's frame.
    fn forward(&self, framed: &[f32], weight_rows: &[f32], rows: &mut [f32], parallel: bool) {
        let [kh, kw] = self.kernel;
        let (ci, co) = (self.frame.channels, self.out_channels);
        for ky in 0..kh {
            matmul_strided(
                [self.grid(), kw * ci, co],
                rows,
                co,
                ky > 0,
                &framed[self.kernel_row_start(ky)..],
                [ci, 1],
                &weight_rows[ky * kw * ci * co..][..kw * ci * co],
                [co, 1],
                parallel,
            );
        }
    }

    /// `dw_rows` (as [`FrameConv::weight_rows`]) += the weight gradient of one image, given its
    /// frame and `dy_rows` [grid, c_out] (zeros past the output's width).
    fn add_weight_grad(
        &self,
        framed: &[f32],
        dy_rows: &[f32],
        dw_rows: &mut [f32],
        parallel: bool,
    ) {
        let [kh, kw] = self.kernel;
        let (ci, co) = (self.frame.channels, self.out_channels);
        for ky in 0..kh {
            // dW_ky [kw·c, c_out] += frame_kyᵀ · dy: the frame's matrix read down its columns,
            // whose rows are contiguous. The other way round, dy [c_out, pixels] · frame_ky,
            // ran 64-channel layers 10-20 % slower.
            matmul_strided(
                [kw * ci, self.grid(), co],
                &mut dw_rows[ky * kw * ci * co..][..kw * ci * co],
                co,
                true,
                &framed[self.kernel_row_start(ky)..],
                [1, ci],
                dy_rows,
                [co, 1],
                parallel,
            );
        }
    }
}

/// Whether images run side by side, one product per thread, or one at a time with each product
/// on every thread (a batch smaller than the threads: sampling one image).
fn side_by_side(g: &ConvGeometry) -> bool {
    let threads = rayon::current_num_threads();
    threads <= 1 || g.batch >= threads
}

/// `work(i, image's part of out)` for every image, `per_image` floats each, into a vector
/// every float of which `work` writes.
fn each_image(
    g: &ConvGeometry,
    per_image: usize,
    work: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let run = |(i, out): (usize, &mut [f32])| work(i, out);
    // SAFETY: the callers' `work` writes every float of its image's part (see there).
    unsafe {
        written_vec(g.batch * per_image, |out| {
            if side_by_side(g) {
                out.par_chunks_mut(per_image).enumerate().for_each(run);
            } else {
                out.chunks_mut(per_image).enumerate().for_each(run);
            }
        })
    }
}

/// The stride-1 convolution a "same" or halving `g` runs on its frames.
fn frame_conv(g: &ConvGeometry) -> FrameConv {
    if same(g) {
        return FrameConv {
            frame: Frame {
                size: g.in_size,
                pad: g.padding,
                channels: g.in_channels,
            },
            kernel: g.kernel,
            out_channels: g.out_channels,
        };
    }
    let [sy, sx] = g.stride;
    FrameConv {
        frame: Frame {
            size: std::array::from_fn(|d| g.out_size[d] + g.kernel[d] / g.stride[d] - 1),
            pad: [0, 0],
            channels: g.in_channels * sy * sx,
        },
        kernel: std::array::from_fn(|d| g.kernel[d] / g.stride[d]),
        out_channels: g.out_channels,
    }
}

/// Phase channel `index` of a halving convolution's frame as (input channel, row phase, column
/// phase): the frame's channels run (c, vy, vx).
fn phase_channel(index: usize, [sy, sx]: [usize; 2]) -> (usize, usize, usize) {
    (index / (sy * sx), index / sx % sy, index % sx)
}

/// One image of `x` [c_in, h·w] into `framed` for `conv` (= [`frame_conv`] of `g`): the image
/// itself for a "same" convolution, its stride phases for a halving one.
fn frame_input(g: &ConvGeometry, conv: &FrameConv, image: &[f32], framed: &mut [f32]) {
    let frame = conv.frame;
    if same(g) {
        frame.fill(image, conv.positions(), framed);
    } else {
        let mut phases = Scratch::new(frame.channels * frame.size[0] * frame.size[1]);
        split_phases(g, image, frame.size, &mut phases);
        frame.fill(&phases, conv.positions(), framed);
    }
}

/// The phase positions m along one dimension (stride `s`, phase `v`, padding `p`, input side
/// `side`, `len` positions) that read an input pixel, s·m + v − p in [0, side): a range of m,
/// and the first pixel.
fn phase_span(
    s: usize,
    v: usize,
    p: usize,
    side: usize,
    len: usize,
) -> (std::ops::Range<usize>, usize) {
    let first = p.saturating_sub(v).div_ceil(s);
    let end = (side + p - v).div_ceil(s).min(len);
    let first = first.min(end);
    (first..end, (s * first + v).saturating_sub(p))
}

/// The stride phases of one image of a halving `g`: `phases` [(c, vy, vx), m, n] =
/// x[c, s·m + vy − p, s·n + vx − p] (0 outside), for the frame of [`frame_conv`].
fn split_phases(g: &ConvGeometry, planes: &[f32], size: [usize; 2], phases: &mut [f32]) {
    let ([sy, sx], [h, w], [p0, p1]) = (g.stride, g.in_size, g.padding);
    let [ph, pw] = size;
    for (index, phase) in phases[..g.in_channels * sy * sx * ph * pw]
        .chunks_exact_mut(ph * pw)
        .enumerate()
    {
        let (c, vy, vx) = phase_channel(index, g.stride);
        let plane = &planes[c * h * w..][..h * w];
        let (rows, y0) = phase_span(sy, vy, p0, h, ph);
        let (cols, x0) = phase_span(sx, vx, p1, w, pw);
        for (m, out) in phase.chunks_exact_mut(pw).enumerate() {
            if !rows.contains(&m) {
                out.fill(0.0);
                continue;
            }
            let row = &plane[(y0 + sy * (m - rows.start)) * w..][..w];
            out[..cols.start].fill(0.0);
            let inside = out[cols.clone()].iter_mut();
            inside
                .zip(row[x0..].iter().step_by(sx))
                .for_each(|(o, v)| *o = *v);
            out[cols.end..].fill(0.0);
        }
    }
}

/// The inverse of [`split_phases`] where it reads the input: `planes` [c, h·w] from `phases`
/// (every input pixel lies in exactly one phase position).
fn merge_phases(g: &ConvGeometry, phases: &[f32], size: [usize; 2], planes: &mut [f32]) {
    let ([sy, sx], [h, w], [p0, p1]) = (g.stride, g.in_size, g.padding);
    let [ph, pw] = size;
    for (index, phase) in phases[..g.in_channels * sy * sx * ph * pw]
        .chunks_exact(ph * pw)
        .enumerate()
    {
        let (c, vy, vx) = phase_channel(index, g.stride);
        let plane = &mut planes[c * h * w..][..h * w];
        let (rows, y0) = phase_span(sy, vy, p0, h, ph);
        let (cols, x0) = phase_span(sx, vx, p1, w, pw);
        for (step, m) in rows.enumerate() {
            let src = &phase[m * pw..][cols.clone()];
            let row = &mut plane[(y0 + sy * step) * w..][..w];
            row[x0..]
                .iter_mut()
                .step_by(sx)
                .zip(src)
                .for_each(|(o, v)| *o = *v);
        }
    }
}

/// `y = epilogue(conv(x, weight))` for a convolution [`same`] or [`halving`] takes.
pub(super) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Epilogue) -> Vec<f32> {
    let conv = frame_conv(g);
    let frame = conv.frame;
    let [kh, kw] = g.kernel;
    let ([sy, sx], ci) = (g.stride, g.in_channels);
    // W'[o, (c, vy, vx), u, u'] = w[o, c, s·u + vy, s·u' + vx] (the identity for stride 1).
    let weight_rows = conv.weight_rows(|o, c, u, u2| {
        let (c, vy, vx) = phase_channel(c, g.stride);
        weight[((o * ci + c) * kh + sy * u + vy) * kw + sx * u2 + vx]
    });
    let (in_len, out_len) = (ci * g.in_pixels(), g.out_channels * g.out_pixels());
    let parallel = !side_by_side(g);
    // Each image's output: `from_rows` writes every pixel of every channel.
    each_image(g, out_len, |i, y| {
        let mut framed = Scratch::new(conv.frame_len());
        frame_input(g, &conv, &x[i * in_len..][..in_len], &mut framed);
        let mut rows = Scratch::new(conv.grid() * g.out_channels);
        conv.forward(&framed, &weight_rows, &mut rows, parallel);
        from_rows(&rows, g.out_size, g.out_channels, frame.row(), y);
        epilogue.apply(y, g.out_channels, g.out_pixels());
    })
}

/// The gradient of [`forward`] with respect to `x` for a [`halving`] `g`, through `epilogue`
/// (its bias [c_in]) where it serves as a transposed convolution's forward pass. ("Same"
/// convolutions take their adjoint, itself a "same" convolution.)
pub(super) fn input_grad(
    g: &ConvGeometry,
    dy: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
) -> Vec<f32> {
    let phase_conv = frame_conv(g);
    let [kh, kw] = g.kernel;
    let ([sy, sx], ci, co) = (g.stride, g.in_channels, g.out_channels);
    let [k0, k1] = phase_conv.kernel;
    // Each phase of dx: a full convolution of dy with the taps turned around.
    let conv = FrameConv {
        frame: Frame {
            size: g.out_size,
            pad: [k0 - 1, k1 - 1],
            channels: co,
        },
        kernel: phase_conv.kernel,
        out_channels: phase_conv.frame.channels,
    };
    debug_assert_eq!(conv.out_size(), phase_conv.frame.size);
    let weight_rows = conv.weight_rows(|phase, o, t, t2| {
        let (c, vy, vx) = phase_channel(phase, g.stride);
        let (ky, kx) = (sy * (k0 - 1 - t) + vy, sx * (k1 - 1 - t2) + vx);
        weight[((o * ci + c) * kh + ky) * kw + kx]
    });
    let (in_len, out_len) = (ci * g.in_pixels(), co * g.out_pixels());
    let parallel = !side_by_side(g);
    let size = conv.out_size();
    // Each image's dx: `merge_phases` writes every pixel of every channel.
    each_image(g, in_len, |i, dx| {
        let mut framed = Scratch::new(conv.frame_len());
        conv.frame
            .fill(&dy[i * out_len..][..out_len], conv.positions(), &mut framed);
        let mut rows = Scratch::new(conv.grid() * conv.out_channels);
        conv.forward(&framed, &weight_rows, &mut rows, parallel);
        let mut phases = Scratch::new(conv.out_channels * size[0] * size[1]);
        from_rows(
            &rows,
            size,
            conv.out_channels,
            conv.frame.row(),
            &mut phases,
        );
        merge_phases(g, &phases, size, dx);
        epilogue.apply(dx, ci, g.in_pixels());
    })
}

/// The gradient of [`forward`] with respect to `weight`, [c_out, c_in, kh, kw], given `x` and
/// `dy`. Keeping the forward pass's frames for it was slower (W8's step: 8 % fewer images/s):
/// a batch of frames is megabytes out of cache, one image's is refilled in it.
pub(super) fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let conv = frame_conv(g);
    let frame = conv.frame;
    let (ci, co) = (g.in_channels, g.out_channels);
    let (in_len, out_len) = (ci * g.in_pixels(), co * g.out_pixels());
    let parallel = !side_by_side(g);
    let sum = sum_in_fixed_groups(g.batch, !parallel, conv.weight_len(), |images| {
        let mut dw_rows = vec![0.0f32; conv.weight_len()];
        let mut framed = Scratch::new(conv.frame_len());
        let mut dy_rows = Scratch::new(conv.grid() * co);
        for i in images {
            frame_input(g, &conv, &x[i * in_len..][..in_len], &mut framed);
            // Zeros past the output's width: their products add nothing.
            let dy = &dy[i * out_len..][..out_len];
            to_rows(dy, g.out_size, co, frame.row(), &mut dy_rows);
            conv.add_weight_grad(&framed, &dy_rows, &mut dw_rows, parallel);
        }
        dw_rows
    });
    // [(u, u', (c, vy, vx)), o] back to [o, c, s·u + vy, s·u' + vx].
    let ([kh, kw], [sy, sx], [_, k1]) = (g.kernel, g.stride, conv.kernel);
    let mut dw = vec![0.0; g.weight_len()];
    for (index, values) in sum.chunks_exact(co).enumerate() {
        let (tap, phase) = (index / frame.channels, index % frame.channels);
        let (u, u2) = (tap / k1, tap % k1);
        let (c, vy, vx) = phase_channel(phase, g.stride);
        let (ky, kx) = (sy * u + vy, sx * u2 + vx);
        for (o, &v) in values.iter().enumerate() {
            dw[((o * ci + c) * kh + ky) * kw + kx] = v;
        }
    }
    dw
}
