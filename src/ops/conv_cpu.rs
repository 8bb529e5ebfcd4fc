//! 2-D convolutions on the CPU as im2col + one large matrix product (the `gemm` crate).
//!
//! A convolution of `x` [n, c_in, h, w] with `weight` [c_out, c_in, kh, kw] is, for every output
//! pixel p, the dot product of the weight rows with the input patch under p. Laying the patches
//! of a chunk of images side by side as the columns of `col` [c_in·kh·kw, images·oh·ow] turns the
//! whole chunk into one product `weight · col`, and both gradients into products too:
//!
//! - forward:        y   = W · col(x)
//! - weight grad:    dW  = dy · col(x)ᵀ
//! - input grad:     dx  = col⁻¹(Wᵀ · dy)   (col2im scatters each column back onto its patch)
//!
//! A transposed convolution is the input gradient of the convolution it inverts, so the same three
//! functions serve it with the roles exchanged (see `ops::conv`).
//!
//! burn Flex computes the gradients as further convolutions (the weight gradient as a convolution
//! whose kernel is the whole output gradient), which leaves its matrix products thin; here every
//! product is at least a chunk of images wide. Only `groups = 1` takes this path.
//!
//! How the work is laid out, each choice measured on the 2-core Zen 4 VM (see the items):
//! chunks of a batch (`Units`) run side by side, one product per thread; strided convolutions
//! read a stride-phase split of the input (`Phases`), laid end to end across a chunk's images
//! where the sub-planes match the output (`Strips`); every product has row-major operands
//! (`matmul`); a kernel covering its whole input is a dense layer ([`ConvGeometry::dense`]).

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use rayon::prelude::*;

thread_local! {
    /// Buffers of earlier calls, kept for the next: `col` of a convolution is megabytes, and
    /// allocating it afresh each call costs a zeroing pass (or page faults) as long as the copy.
    static SCRATCH_POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers kept per thread (a forward or backward pass holds at most three at once).
const SCRATCH_KEPT: usize = 4;

/// A buffer of `len` floats from this thread's pool, back in the pool when dropped. Its contents
/// are whatever the last user left: every user writes all of it before reading.
struct Scratch {
    buffer: Vec<f32>,
    len: usize,
}

impl Scratch {
    fn new(len: usize) -> Self {
        let mut buffer = SCRATCH_POOL
            .with_borrow_mut(|pool| {
                // The largest kept buffer, so that small requests do not grow many of them.
                let largest = (0..pool.len()).max_by_key(|&i| pool[i].len())?;
                Some(pool.swap_remove(largest))
            })
            .unwrap_or_default();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        Self { buffer, len }
    }
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buffer[..self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[..self.len]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        SCRATCH_POOL.with_borrow_mut(|pool| {
            if pool.len() < SCRATCH_KEPT {
                pool.push(buffer);
            }
        });
    }
}

/// Sizes and options of one convolution, from the point of view of the forward convolution
/// (`input` → `output`), whichever of the three products is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub in_size: [usize; 2],
    pub out_size: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero rows/columns before the first input row/column (any after the last are implied by
    /// `out_size`).
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

/// Floats of `col` per chunk: big enough that each product is hundreds of columns wide, small
/// enough to stay in the last-level cache of a small machine.
const COL_BUDGET: usize = 1 << 19;

/// A row length for matrices read along their rows by many rows at once (both operands of the
/// weight gradient): at least `width`, and not a multiple of 256 floats, so that the rows do not
/// all fall into the same few cache sets.
fn padded_row(width: usize) -> usize {
    let width = width.next_multiple_of(16);
    if width.is_multiple_of(256) {
        width + 16
    } else {
        width
    }
}

/// Convolutions with at least this many output pixels per image and this many multiply-adds per
/// image's product run image by image, reading and writing the tensors in place (no gather or
/// scatter copies). Below the second, a product is mostly packing and thread hand-offs, as in a
/// DCGAN's first layer (3 → 64 channels, 4x4, 32 → 16: 0.8 M per image, 16 GFLOP/s image by
/// image).
const PER_IMAGE_PIXELS: usize = 256;
const PER_IMAGE_MACS: usize = 1 << 20;

impl ConvGeometry {
    /// The output side a convolution produces from this input with `pad_end` more zeros after
    /// it (PyTorch's formula), or `None` when the kernel does not fit.
    pub fn natural_out_size(&self, pad_end: [usize; 2]) -> Option<[usize; 2]> {
        let mut out = [0; 2];
        for d in 0..2 {
            let span = self.dilation[d] * (self.kernel[d] - 1) + 1;
            let padded = self.in_size[d] + self.padding[d] + pad_end[d];
            out[d] = padded.checked_sub(span)? / self.stride[d] + 1;
        }
        Some(out)
    }

    /// Rows of `col`: one per (input channel, kernel row, kernel column).
    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    fn out_pixels(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    fn in_pixels(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    /// Whether products run image by image (see [`PER_IMAGE_PIXELS`] and [`PER_IMAGE_MACS`]).
    fn per_image(&self) -> bool {
        self.out_pixels() >= PER_IMAGE_PIXELS
            && self.out_channels * self.patch_len() * self.out_pixels() >= PER_IMAGE_MACS
    }

    /// A 1x1 convolution that keeps the size: `col(x)` of one image is the image itself.
    fn pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.out_size == self.in_size
    }

    /// A kernel that covers the whole unpadded input at one output pixel (a DCGAN critic's last
    /// layer): a patch is the whole image in its memory order, so the convolution is the dense
    /// layer `y = x · Wᵀ` on [batch, c_in·h·w], with no im2col or col2im at all (which at one
    /// pixel per image move one float per copy).
    pub fn dense(&self) -> bool {
        self.out_size == [1, 1]
            && self.padding == [0, 0]
            && self.dilation == [1, 1]
            && self.in_size == self.kernel
    }

    /// Images per chunk.
    fn chunk(&self) -> usize {
        let per_image = (self.patch_len() * self.out_pixels()).max(1);
        (COL_BUDGET / per_image).clamp(1, self.batch.max(1))
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_pixels()
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_pixels()
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }

    /// The output columns `[lo, hi)` whose tap `tap` lands inside the input along `d`.
    fn valid_outputs(&self, d: usize, tap: usize) -> (usize, usize) {
        let offset = tap * self.dilation[d];
        let stride = self.stride[d];
        // First o with o·s + offset ≥ padding.
        let lo = self.padding[d].saturating_sub(offset).div_ceil(stride);
        // First o with o·s + offset ≥ padding + in_size.
        let hi = (self.padding[d] + self.in_size[d])
            .saturating_sub(offset)
            .div_ceil(stride);
        (lo.min(self.out_size[d]), hi.min(self.out_size[d]))
    }
}

/// Where one kernel tap reads in the stride-phase layout (see [`Phases`]).
struct Tap {
    /// The sub-plane: (row phase, column phase).
    phase: [usize; 2],
    /// Sub-plane coordinate of output (0, 0) along each dimension (added to oy, ox).
    shift: [isize; 2],
    /// Outputs whose tap lands inside the input, per dimension.
    rows: (usize, usize),
    cols: (usize, usize),
}

/// A strided convolution reads every s-th pixel, which makes im2col and col2im move one float at
/// a time. Split each input plane by stride phase first — sub-plane (a, b) holds the pixels
/// (a + s·u, b + s·v) — and every kernel tap reads (and col2im writes) a contiguous run of a
/// sub-plane instead: the pixel of output (oy, ox) under tap (ky, kx) is (oy + ⌊q/s⌋, ox + …) of
/// sub-plane (q mod s, …) with q = k·d − p. With stride 1 the layout is the plane itself.
struct Phases {
    stride: [usize; 2],
    /// Sub-plane side.
    side: [usize; 2],
}

impl Phases {
    fn new(g: &ConvGeometry) -> Self {
        let side = std::array::from_fn(|d| g.in_size[d].div_ceil(g.stride[d]));
        Self {
            stride: g.stride,
            side,
        }
    }

    fn identity(&self) -> bool {
        self.stride == [1, 1]
    }

    /// Whether a sub-plane row is as long as an output row, as when a convolution keeps or
    /// divides the size by its stride: then a tap reads its whole output block as one run.
    fn block_copy(&self, g: &ConvGeometry) -> bool {
        self.side[1] == g.out_size[1]
    }

    /// Floats of one input plane in this layout.
    fn plane_len(&self) -> usize {
        self.stride[0] * self.stride[1] * self.sub_len()
    }

    /// Floats of one sub-plane.
    fn sub_len(&self) -> usize {
        self.side[0] * self.side[1]
    }

    /// Whether every sub-plane is exactly as large as the output, as when a strided convolution
    /// divides the size by its stride (DCGAN's 4x4, stride 2, padding 1): see [`Strips`].
    fn aligned(&self, g: &ConvGeometry) -> bool {
        !self.identity() && self.side == g.out_size
    }

    fn tap(&self, g: &ConvGeometry, ky: usize, kx: usize) -> Tap {
        let split = |d: usize, k: usize| {
            let q = (k * g.dilation[d]) as isize - g.padding[d] as isize;
            let s = g.stride[d] as isize;
            (q.rem_euclid(s) as usize, q.div_euclid(s))
        };
        let ((a, dy), (b, dx)) = (split(0, ky), split(1, kx));
        Tap {
            phase: [a, b],
            shift: [dy, dx],
            rows: g.valid_outputs(0, ky),
            cols: g.valid_outputs(1, kx),
        }
    }

    /// Every kernel tap, in (ky, kx) order: the order of `col`'s rows within a channel.
    fn taps(&self, g: &ConvGeometry) -> Vec<Tap> {
        let [kh, kw] = g.kernel;
        (0..kh * kw).map(|t| self.tap(g, t / kw, t % kw)).collect()
    }

    /// The run of sub-plane floats that output row `oy` reads under `tap` (offset in the plane).
    fn run(&self, tap: &Tap, oy: usize) -> usize {
        let sub = (tap.phase[0] * self.stride[1] + tap.phase[1]) * self.side[0] * self.side[1];
        let u = (oy as isize + tap.shift[0]) as usize;
        let v = (tap.cols.0 as isize + tap.shift[1]) as usize;
        sub + u * self.side[1] + v
    }

    /// `plane` (one input plane) in this layout, sub-plane q at `out[q·sub_stride..]`.
    fn split(&self, plane: &[f32], [h, w]: [usize; 2], out: &mut [f32], sub_stride: usize) {
        let [sy, sx] = self.stride;
        let [side0, side1] = self.side;
        for a in 0..sy {
            for u in 0..side0 {
                let y = a + u * sy;
                let row = |b: usize| (a * sx + b) * sub_stride + u * side1;
                if y >= h {
                    (0..sx).for_each(|b| out[row(b)..][..side1].fill(0.0));
                    continue;
                }
                let src = &plane[y * w..][..w];
                if sx == 2 {
                    // Sub-plane (a, 1) starts where (a, 0)'s row u has ended.
                    let (before, odd_plane) = out.split_at_mut((a * sx + 1) * sub_stride);
                    let even = &mut before[row(0)..][..side1];
                    deinterleave_pair(src, even, &mut odd_plane[u * side1..][..side1]);
                    continue;
                }
                for b in 0..sx {
                    // Columns b, b + s, … of the row, then zeros past its end.
                    let out = &mut out[row(b)..][..side1];
                    let inside = w.saturating_sub(b).div_ceil(sx);
                    let src = src[b.min(w)..].iter().step_by(sx);
                    out[..inside].iter_mut().zip(src).for_each(|(o, s)| *o = *s);
                    out[inside..].fill(0.0);
                }
            }
        }
    }

    /// The inverse of [`split`](Self::split), overwriting `plane`.
    fn merge(&self, split: &[f32], [h, w]: [usize; 2], plane: &mut [f32], sub_stride: usize) {
        let [sy, sx] = self.stride;
        for (y, row) in plane.chunks_mut(w).enumerate().take(h) {
            let (a, u) = (y % sy, y / sy);
            let sub_row =
                |b: usize| &split[(a * sx + b) * sub_stride + u * self.side[1]..][..self.side[1]];
            if sx == 2 {
                interleave_pair(row, sub_row(0), sub_row(1));
                continue;
            }
            for b in 0..sx.min(w) {
                for (o, s) in row[b..].iter_mut().step_by(sx).zip(sub_row(b)) {
                    *o = *s;
                }
            }
        }
    }
}

/// `even[j] = row[2j]`, `odd[j] = row[2j + 1]`, zeros past the row's end: the stride-2 split of
/// one row, a loop the compiler vectorizes (`step_by` it does not).
fn deinterleave_pair(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let pairs = row.len() / 2;
    for ((pair, e), o) in row
        .chunks_exact(2)
        .zip(&mut even[..pairs])
        .zip(&mut odd[..pairs])
    {
        *e = pair[0];
        *o = pair[1];
    }
    even[pairs..].fill(0.0);
    odd[pairs..].fill(0.0);
    if row.len() % 2 == 1 {
        even[pairs] = row[row.len() - 1];
    }
}

/// `row[2j] = even[j]`, `row[2j + 1] = odd[j]` for every column of `row`.
fn interleave_pair(row: &mut [f32], even: &[f32], odd: &[f32]) {
    let pairs = row.len() / 2;
    for ((out, &e), &o) in row
        .chunks_exact_mut(2)
        .zip(&even[..pairs])
        .zip(&odd[..pairs])
    {
        out[0] = e;
        out[1] = o;
    }
    if row.len() % 2 == 1 {
        row[row.len() - 1] = even[pairs];
    }
}

/// Per tap, a bit mask over its block of outputs (oh·ow, row-major): all ones where the tap reads
/// inside the input along the columns, zero where it reads padding. For the block paths of
/// im2col and col2im, whose one run per tap crosses the padding columns: an `and` with the mask
/// keeps those loops vectorized, where a branch per float or a fill per row did not.
fn column_masks(g: &ConvGeometry, taps: &[Tap]) -> Vec<Vec<u32>> {
    let [oh, ow] = g.out_size;
    taps.iter()
        .map(|tap| {
            (0..oh * ow)
                .map(|p| {
                    let inside = (tap.cols.0..tap.cols.1).contains(&(p % ow));
                    if inside { u32::MAX } else { 0 }
                })
                .collect()
        })
        .collect()
}

/// What im2col and col2im derive from the geometry alone: the stride-phase layout, the taps and
/// their masks. Built once per convolution and shared by its chunks or images (the masks are
/// kh·kw·oh·ow words, which image by image at Inception's sizes were rebuilt for every image).
struct TapPlan {
    phases: Phases,
    taps: Vec<Tap>,
    /// Whether the block paths apply ([`Phases::block_copy`]).
    block: bool,
    /// [`column_masks`] when `block` and not `strips`, else empty.
    masks: Vec<Vec<u32>>,
    /// The strip layout when the sub-planes are aligned with the output ([`Phases::aligned`]).
    strips: Option<Strips>,
}

impl TapPlan {
    fn new(g: &ConvGeometry) -> Self {
        let phases = Phases::new(g);
        let taps = phases.taps(g);
        let block = phases.block_copy(g);
        let strips = phases.aligned(g).then(|| Strips::new(g, &phases, &taps));
        let masks = if block && strips.is_none() {
            column_masks(g, &taps)
        } else {
            Vec::new()
        };
        Self {
            phases,
            taps,
            block,
            masks,
            strips,
        }
    }
}

/// When every sub-plane is as large as the output ([`Phases::aligned`]), a chunk's sub-planes
/// of one (channel, phase) laid end to end, image after image, form a strip in which every
/// kernel tap reads at one fixed offset from the output index: output p of image i under tap t
/// reads strip[i·P + p + offset(t)], P = oh·ow, whenever the tap lands inside the input. So a
/// whole row of `col` is one pass over a strip (and col2im one pass back), where the per-image
/// layout took a copy of 16-64 floats per tap and image. A 2D mask per tap zeroes the outputs
/// whose tap reads padding (there the offset lands in a neighbouring row or image, or in the
/// strip's margins); `None` for taps inside everywhere.
struct Strips {
    /// Floats before and after the images of a strip, at least the largest |offset|.
    margin: usize,
    /// Per tap: the strip (its phase, `a·s + b`) and the offset.
    sources: Vec<(usize, isize)>,
    masks: Vec<Option<Vec<u32>>>,
}

impl Strips {
    fn new(g: &ConvGeometry, phases: &Phases, taps: &[Tap]) -> Self {
        let [oh, ow] = g.out_size;
        let sources: Vec<(usize, isize)> = taps
            .iter()
            .map(|tap| {
                let strip = tap.phase[0] * phases.stride[1] + tap.phase[1];
                (strip, tap.shift[0] * phases.side[1] as isize + tap.shift[1])
            })
            .collect();
        let margin = sources.iter().map(|&(_, o)| o.unsigned_abs()).max();
        let masks = taps
            .iter()
            .map(|tap| {
                let everywhere = tap.rows == (0, oh) && tap.cols == (0, ow);
                (!everywhere).then(|| {
                    let inside = |p: usize| {
                        (tap.rows.0..tap.rows.1).contains(&(p / ow))
                            && (tap.cols.0..tap.cols.1).contains(&(p % ow))
                    };
                    (0..oh * ow)
                        .map(|p| if inside(p) { u32::MAX } else { 0 })
                        .collect()
                })
            })
            .collect();
        Self {
            margin: margin.unwrap_or(0).next_multiple_of(16),
            sources,
            masks,
        }
    }

    /// Floats of one strip of `images` images.
    fn len(&self, g: &ConvGeometry, images: usize) -> usize {
        images * g.out_pixels() + 2 * self.margin
    }

    /// The `len` floats tap `t` reads (or col2im adds onto) in `strips`, the strips of one
    /// channel, each `strip_len` long.
    fn window(&self, t: usize, strip_len: usize, len: usize) -> std::ops::Range<usize> {
        let (strip, offset) = self.sources[t];
        let start = (strip * strip_len + self.margin).wrapping_add_signed(offset);
        start..start + len
    }
}

/// How a convolution's batch is cut into products: `count` units of `images` images each (the
/// last may hold fewer), one image each when [`ConvGeometry::per_image`].
///
/// With at least as many units as threads, units run side by side, each product on one thread:
/// the `gemm` crate splitting one product across two threads ran W3's 64x512 by 512x980 at
/// 104-190 GFLOP/s from one call to the next, two such products side by side at 201-227 in
/// all (105-115 for one alone; 2-core Zen 4 VM). The steps between products (im2col, gather,
/// scatter) then run beside the other thread's product, not between two joins.
#[derive(Debug, Clone, Copy)]
struct Units {
    images: usize,
    count: usize,
    side_by_side: bool,
}

impl Units {
    fn new(g: &ConvGeometry) -> Self {
        let threads = rayon::current_num_threads().max(1);
        let mut images = if g.per_image() { 1 } else { g.chunk() };
        let mut count = g.batch.div_ceil(images);
        if !g.per_image() && threads > 1 && g.batch >= threads {
            // As many units on every thread: split further down to the next multiple.
            images = g.batch.div_ceil(count.next_multiple_of(threads));
            count = g.batch.div_ceil(images);
        }
        Self {
            images,
            count,
            side_by_side: threads > 1 && count >= threads,
        }
    }

    /// `work(first image, images, the unit's part of data, whether its product may use every
    /// thread)` for every unit, where `data` holds `per_image` floats per image.
    fn for_each(
        &self,
        data: &mut [f32],
        per_image: usize,
        work: impl Fn(usize, usize, &mut [f32], bool) + Sync,
    ) {
        let unit_len = (self.images * per_image).max(1);
        let run = |(unit, part): (usize, &mut [f32])| {
            let images = part.len().checked_div(per_image).unwrap_or(self.images);
            work(unit * self.images, images, part, !self.side_by_side)
        };
        if self.side_by_side {
            data.par_chunks_mut(unit_len).enumerate().for_each(run);
        } else {
            data.chunks_mut(unit_len).enumerate().for_each(run);
        }
    }
}

/// `col[(c, ky, kx), (i, oy, ox)] = x[first + i, c, oy·s + ky·d − p, ox·s + kx·d − p]` (0 in the
/// padding) for the `images` images from `first`.
fn im2col(
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
            .enumerate()
            .for_each(|(row, col_row)| {
                let (c, t) = (row / (kh * kw), row % (kh * kw));
                let channel = &split[c * phase_count * strip_len..][..phase_count * strip_len];
                let src = &channel[strips.window(t, strip_len, width)];
                let out = &mut col_row[..width];
                match &strips.masks[t] {
                    None => out.copy_from_slice(src),
                    Some(mask) => {
                        let blocks = out.chunks_exact_mut(oh * ow).zip(src.chunks_exact(oh * ow));
                        for (out, src) in blocks {
                            for ((o, s), &m) in out.iter_mut().zip(src).zip(mask) {
                                *o = f32::from_bits(s.to_bits() & m);
                            }
                        }
                    }
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
fn image_columns<'a>(
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
fn image_row(g: &ConvGeometry) -> usize {
    padded_row(g.out_pixels())
}

/// Floats of `col` image by image (none for a pointwise convolution, which reads the image).
fn image_col_len(g: &ConvGeometry) -> usize {
    if g.pointwise() {
        0
    } else {
        g.patch_len() * image_row(g)
    }
}

/// The inverse scatter of [`im2col`] for the `images` images at the start of `dx`: adds every
/// column entry onto the input pixel it was read from. Each task owns one (image, channel) plane
/// of `dx`, so no two write the same float.
fn col2im(g: &ConvGeometry, plan: &TapPlan, col: &[f32], images: usize, dx: &mut [f32], ld: usize) {
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
                for t in 0..kh * kw {
                    let row = &col[(c * kh * kw + t) * ld..][..width];
                    let dst = &mut channel[strips.window(t, strip_len, width)];
                    match &strips.masks[t] {
                        None => dst.iter_mut().zip(row).for_each(|(d, s)| *d += s),
                        Some(mask) => {
                            let blocks =
                                dst.chunks_exact_mut(oh * ow).zip(row.chunks_exact(oh * ow));
                            for (dst, src) in blocks {
                                for ((d, s), &m) in dst.iter_mut().zip(src).zip(mask) {
                                    *d += f32::from_bits(s.to_bits() & m);
                                }
                            }
                        }
                    }
                }
            });
        planes
            .par_chunks_mut(plane_len)
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
            .enumerate()
            .for_each(|(index, plane)| accumulate(index, plane));
    } else {
        planes.par_chunks_mut(plane_len).enumerate().for_each_init(
            Vec::new,
            |split, (index, plane)| {
                split.clear();
                split.resize(split_len, 0.0);
                accumulate(index, split);
                phases.merge(split, g.in_size, plane, phases.sub_len());
            },
        );
    }
}

/// `dy[first.., co, p]` of `images` images as one matrix [c_out, images·oh·ow].
fn gather_output(
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
        .enumerate()
        .for_each(|(co, row)| {
            for i in 0..images {
                let src = &dy[((first + i) * g.out_channels + co) * pixels..][..pixels];
                row[i * pixels..][..pixels].copy_from_slice(src);
            }
        });
}

/// The non-linearity after a convolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    Tanh,
}

impl Activation {
    fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Identity => v,
            Activation::Relu => v.max(0.0),
            Activation::Tanh => v.tanh(),
        }
    }
}

/// What a layer does to a convolution's output before anything else reads it: add a bias per
/// channel, then an activation. Done as each unit's output leaves its product, while it is in
/// cache; as operations of their own, each was one more pass over the output and one more
/// autodiff node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// One value per output channel.
    pub bias: Option<&'a [f32]>,
    pub activation: Activation,
}

impl Epilogue<'_> {
    fn is_none(&self) -> bool {
        self.bias.is_none() && self.activation == Activation::Identity
    }

    fn value(&self, v: f32, channel: usize) -> f32 {
        let v = self.bias.map_or(v, |bias| v + bias[channel]);
        self.activation.apply(v)
    }

    /// Applies the epilogue in place to whole images of `planes`, each `pixels` floats per
    /// channel.
    fn apply(&self, planes: &mut [f32], channels: usize, pixels: usize) {
        if self.is_none() {
            return;
        }
        for (index, plane) in planes.chunks_exact_mut(pixels).enumerate() {
            let channel = index % channels;
            plane.iter_mut().for_each(|v| *v = self.value(*v, channel));
        }
    }
}

/// The inverse of [`gather_output`], into the `images` images at the start of `y`, through
/// `epilogue`.
fn scatter_output(
    g: &ConvGeometry,
    rows: &[f32],
    images: usize,
    y: &mut [f32],
    ld: usize,
    epilogue: Epilogue,
) {
    let pixels = g.out_pixels();
    y[..images * g.out_channels * pixels]
        .par_chunks_mut(pixels)
        .enumerate()
        .for_each(|(index, dst)| {
            let (i, co) = (index / g.out_channels, index % g.out_channels);
            let src = &rows[co * ld + i * pixels..][..pixels];
            if epilogue.is_none() {
                dst.copy_from_slice(src);
            } else {
                dst.iter_mut()
                    .zip(src)
                    .for_each(|(d, &s)| *d = epilogue.value(s, co));
            }
        });
}

/// The gradient at `activation`'s input from its output `y` and the gradient `dy` there.
pub fn activation_grad(activation: Activation, dy: &[f32], y: &[f32]) -> Vec<f32> {
    assert_eq!(dy.len(), y.len());
    const BLOCK: usize = 1 << 14;
    let mut grad = vec![0.0f32; dy.len()];
    grad.par_chunks_mut(BLOCK)
        .zip(dy.par_chunks(BLOCK).zip(y.par_chunks(BLOCK)))
        .for_each(|(out, (dy, y))| {
            let pairs = out.iter_mut().zip(dy).zip(y);
            // One loop per activation, so that each compiles to straight vector code.
            match activation {
                Activation::Identity => out.copy_from_slice(dy),
                Activation::Relu => {
                    pairs.for_each(|((o, &d), &y)| *o = if y > 0.0 { d } else { 0.0 })
                }
                Activation::Tanh => pairs.for_each(|((o, &d), &y)| *o = d * (1.0 - y * y)),
            }
        });
    grad
}

/// `t[i, c, p]` summed over images `i` and pixels `p`, [channels]: the gradient of a bias added
/// to every pixel of a channel. Sums run in 16 lanes so that the compiler vectorizes them, and
/// in the same order whichever thread takes which image, so that a resumed run repeats the
/// numbers of an uninterrupted one bit for bit.
pub fn channel_sums(t: &[f32], channels: usize, pixels: usize) -> Vec<f32> {
    const LANES: usize = 16;
    let plane_sum = |plane: &[f32]| {
        let mut lanes = [0.0f32; LANES];
        let blocks = plane.chunks_exact(LANES);
        let rest: f32 = blocks.remainder().iter().sum();
        for block in blocks {
            lanes.iter_mut().zip(block).for_each(|(l, v)| *l += v);
        }
        lanes.iter().sum::<f32>() + rest
    };
    let image_len = (channels * pixels).max(1);
    let mut per_image = vec![0.0f32; t.len() / image_len * channels];
    per_image
        .par_chunks_mut(channels.max(1))
        .zip(t.par_chunks(image_len))
        .for_each(|(sums, image)| {
            for (sum, plane) in sums.iter_mut().zip(image.chunks_exact(pixels.max(1))) {
                *sum = plane_sum(plane);
            }
        });
    let mut total = vec![0.0f32; channels];
    for sums in per_image.chunks_exact(channels.max(1)) {
        total.iter_mut().zip(sums).for_each(|(t, s)| *t += s);
    }
    total
}

/// `dst (+)= lhs · rhs` with `lhs` [m, k] and `rhs` [k, n], on all of rayon's threads when
/// `parallel`, else on the calling one (see [`Units`]). All three
/// are row-major with rows of `ld` floats each (`[dst, lhs, rhs]`): the `gemm` crate packs an
/// operand read across its rows one float at a time, and every product here is arranged so that
/// none is (see [`conv_weight_grad`] and [`transposed_weight`]).
fn matmul(
    [m, k, n]: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    rhs: &[f32],
    [dst_ld, lhs_ld, rhs_ld]: [usize; 3],
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |ld: usize, rows: usize, cols: usize| (rows - 1) * ld + cols - 1;
    assert!(last(dst_ld, m, n) < dst.len(), "matmul: dst too short");
    if k > 0 {
        assert!(last(lhs_ld, m, k) < lhs.len(), "matmul: lhs too short");
        assert!(last(rhs_ld, k, n) < rhs.len(), "matmul: rhs too short");
    }
    let threads = rayon::current_num_threads();
    let parallelism = if parallel && threads > 1 && m * n * k > 1 << 16 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every (row, column) the product touches lies inside its slice (asserted above
    // from the largest index each matrix reaches), and `dst` does not alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_ld as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_ld as isize,
            rhs.as_ptr(),
            1,
            rhs_ld as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `y = epilogue(conv(x, weight))`: `x` [batch, c_in, h, w], `weight` [c_out, c_in, kh, kw],
/// `y` [batch, c_out, oh, ow].
pub fn conv_forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Epilogue) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len());
    assert_eq!(weight.len(), g.weight_len());
    assert!(epilogue.bias.is_none_or(|b| b.len() == g.out_channels));
    let mut y = vec![0.0; g.output_len()];
    let (patch, pixels) = (g.patch_len(), g.out_pixels());
    if g.dense() {
        let (weight_t, w_ld) = transposed_weight(g, weight);
        let shape = [g.batch, patch, g.out_channels];
        matmul(
            shape,
            &mut y,
            false,
            x,
            &weight_t,
            [g.out_channels, patch, w_ld],
            true,
        );
        epilogue.apply(&mut y, g.out_channels, 1);
        return y;
    }
    let plan = TapPlan::new(g);
    let units = Units::new(g);
    let out_len = g.out_channels * pixels;
    units.for_each(&mut y, out_len, |first, images, y, parallel| {
        if g.per_image() {
            let mut col = Scratch::new(image_col_len(g));
            let (col, ld) = image_columns(g, &plan, x, first, &mut col);
            let shape = [g.out_channels, patch, pixels];
            matmul(shape, y, false, weight, col, [pixels, patch, ld], parallel);
            epilogue.apply(y, g.out_channels, pixels);
            return;
        }
        let ld = padded_row(images * pixels);
        let mut col = Scratch::new(patch * ld);
        let mut rows = Scratch::new(g.out_channels * ld);
        im2col(g, &plan, x, first, images, &mut col, ld);
        let shape = [g.out_channels, patch, images * pixels];
        matmul(
            shape,
            &mut rows,
            false,
            weight,
            &col,
            [ld, patch, ld],
            parallel,
        );
        scatter_output(g, &rows, images, y, ld, epilogue);
    });
    y
}

/// `dst[c·dst_ld + r] = src[r·src_ld + c]` for `rows` rows and `cols` columns of `src`, 4x4
/// tiles at a time (see [`transpose_tile`]), the edges one float at a time.
fn transpose(src: &[f32], [rows, cols]: [usize; 2], src_ld: usize, dst: &mut [f32], dst_ld: usize) {
    const T: usize = 4;
    let (tiled_rows, tiled_cols) = (rows / T * T, cols / T * T);
    for r0 in (0..tiled_rows).step_by(T) {
        for c0 in (0..tiled_cols).step_by(T) {
            let src = &src[r0 * src_ld + c0..];
            transpose_tile(src, src_ld, &mut dst[c0 * dst_ld + r0..], dst_ld);
        }
        for c in tiled_cols..cols {
            for r in r0..r0 + T {
                dst[c * dst_ld + r] = src[r * src_ld + c];
            }
        }
    }
    for r in tiled_rows..rows {
        for c in 0..cols {
            dst[c * dst_ld + r] = src[r * src_ld + c];
        }
    }
}

/// The 4x4 tile at the start of `src` (rows `src_ld` apart), transposed to the start of `dst`.
/// On x86-64, four SSE loads, eight shuffles and four stores (SSE is part of x86-64, so no
/// run-time detection): the tile loop written with indices compiled to 32 scalar moves with
/// spills, 4.6 % of a W3 step.
#[inline(always)]
fn transpose_tile(src: &[f32], src_ld: usize, dst: &mut [f32], dst_ld: usize) {
    assert!(src.len() >= 3 * src_ld + 4 && dst.len() >= 3 * dst_ld + 4);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the assert above bounds the four 4-float loads and stores; SSE is baseline.
    unsafe {
        use std::arch::x86_64::*;
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        let r0 = _mm_loadu_ps(s);
        let r1 = _mm_loadu_ps(s.add(src_ld));
        let r2 = _mm_loadu_ps(s.add(2 * src_ld));
        let r3 = _mm_loadu_ps(s.add(3 * src_ld));
        let (low01, low23) = (_mm_unpacklo_ps(r0, r1), _mm_unpacklo_ps(r2, r3));
        let (high01, high23) = (_mm_unpackhi_ps(r0, r1), _mm_unpackhi_ps(r2, r3));
        _mm_storeu_ps(d, _mm_movelh_ps(low01, low23));
        _mm_storeu_ps(d.add(dst_ld), _mm_movehl_ps(low23, low01));
        _mm_storeu_ps(d.add(2 * dst_ld), _mm_movelh_ps(high01, high23));
        _mm_storeu_ps(d.add(3 * dst_ld), _mm_movehl_ps(high23, high01));
    }
    #[cfg(not(target_arch = "x86_64"))]
    for r in 0..4 {
        for c in 0..4 {
            dst[c * dst_ld + r] = src[r * src_ld + c];
        }
    }
}

/// [`transpose`] on all threads, each writing a band of `dst`'s rows.
fn par_transpose(
    src: &[f32],
    [rows, cols]: [usize; 2],
    src_ld: usize,
    dst: &mut [f32],
    dst_ld: usize,
) {
    const BAND: usize = 64;
    dst[..cols * dst_ld]
        .par_chunks_mut(BAND * dst_ld)
        .enumerate()
        .for_each(|(band, dst)| {
            let c0 = band * BAND;
            let width = BAND.min(cols - c0);
            let src = &src[c0..];
            transpose(src, [rows, width], src_ld, dst, dst_ld);
        });
}

/// `weight` [c_out, patch] as a row-major [patch, c_out] matrix with rows of `ld` floats: the
/// input gradient's left operand. The `gemm` crate runs products of row-major operands fastest;
/// transposing the weight once beats reading it transposed in every product (1024x128 by
/// 128x512: 210 against 190 GFLOP/s on the 2-core Zen 4 VM).
fn transposed_weight(g: &ConvGeometry, weight: &[f32]) -> (Scratch, usize) {
    let ld = padded_row(g.out_channels);
    let mut weight_t = Scratch::new(g.patch_len() * ld);
    par_transpose(
        weight,
        [g.out_channels, g.patch_len()],
        g.patch_len(),
        &mut weight_t,
        ld,
    );
    (weight_t, ld)
}

/// The gradient of [`conv_forward`] with respect to `x`, given `dy` [batch, c_out, oh, ow];
/// through `epilogue` (its bias [c_in]) where it serves as a transposed convolution's forward
/// pass.
pub fn conv_input_grad(
    g: &ConvGeometry,
    dy: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
) -> Vec<f32> {
    assert_eq!(dy.len(), g.output_len());
    assert_eq!(weight.len(), g.weight_len());
    assert!(epilogue.bias.is_none_or(|b| b.len() == g.in_channels));
    let mut dx = vec![0.0; g.input_len()];
    let (patch, pixels) = (g.patch_len(), g.out_pixels());
    if g.dense() {
        let shape = [g.batch, g.out_channels, patch];
        matmul(
            shape,
            &mut dx,
            false,
            dy,
            weight,
            [patch, g.out_channels, patch],
            true,
        );
        epilogue.apply(&mut dx, g.in_channels, g.in_pixels());
        return dx;
    }
    let (weight_t, w_ld) = transposed_weight(g, weight);
    let plan = TapPlan::new(g);
    let units = Units::new(g);
    let in_len = g.in_channels * g.in_pixels();
    units.for_each(&mut dx, in_len, |first, images, dx, parallel| {
        if g.per_image() {
            let dy = &dy[first * g.out_channels * pixels..][..g.out_channels * pixels];
            let shape = [patch, g.out_channels, pixels];
            if g.pointwise() {
                matmul(
                    shape,
                    dx,
                    false,
                    &weight_t,
                    dy,
                    [pixels, w_ld, pixels],
                    parallel,
                );
            } else {
                let mut col = Scratch::new(image_col_len(g));
                let ld = image_row(g);
                matmul(
                    shape,
                    &mut col,
                    false,
                    &weight_t,
                    dy,
                    [ld, w_ld, pixels],
                    parallel,
                );
                col2im(g, &plan, &col, 1, dx, ld);
            }
        } else {
            let ld = padded_row(images * pixels);
            let mut col = Scratch::new(patch * ld);
            let mut rows = Scratch::new(g.out_channels * ld);
            gather_output(g, dy, first, images, &mut rows, ld);
            let shape = [patch, g.out_channels, images * pixels];
            matmul(
                shape,
                &mut col,
                false,
                &weight_t,
                &rows,
                [ld, w_ld, ld],
                parallel,
            );
            col2im(g, &plan, &col, images, dx, ld);
        }
        epilogue.apply(dx, g.in_channels, g.in_pixels());
    });
    dx
}

/// `dy[first.., co, p]` of `images` images as one matrix [images·oh·ow, c_out] with rows of `ld`
/// floats: [`gather_output`]'s matrix transposed.
fn gather_output_transposed(
    g: &ConvGeometry,
    dy: &[f32],
    first: usize,
    images: usize,
    out: &mut [f32],
    ld: usize,
) {
    let pixels = g.out_pixels();
    let image_len = g.out_channels * pixels;
    out[..images * pixels * ld]
        .par_chunks_mut(pixels * ld)
        .enumerate()
        .for_each(|(i, block)| {
            let src = &dy[(first + i) * image_len..][..image_len];
            transpose(src, [g.out_channels, pixels], pixels, block, ld);
        });
}

/// The gradient of [`conv_forward`] with respect to `weight`, [c_out, c_in, kh, kw].
///
/// Computed transposed, dWᵀ [patch, c_out] = col(x) · dyᵀ, so that both operands are row-major:
/// `dy · col(x)ᵀ` reads `col` across its rows, which the `gemm` crate packs one float at a time
/// (128x1024 by 1024x1024: 77 against 200 GFLOP/s on the 2-core Zen 4 VM). dy is transposed
/// as it is gathered, and dWᵀ once at the end; both are far smaller than `col`. Units running
/// side by side each sum into a dWᵀ of their own, added up at the end.
pub fn conv_weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len());
    assert_eq!(dy.len(), g.output_len());
    let (patch, pixels) = (g.patch_len(), g.out_pixels());
    if g.dense() {
        // dW = dyᵀ · x, with dy [batch, c_out] transposed first (it is small) so that both
        // operands are row-major.
        let mut dy_t = vec![0.0; g.out_channels * g.batch];
        transpose(
            dy,
            [g.batch, g.out_channels],
            g.out_channels,
            &mut dy_t,
            g.batch,
        );
        let mut dw = vec![0.0; g.weight_len()];
        let shape = [g.out_channels, g.batch, patch];
        matmul(
            shape,
            &mut dw,
            false,
            &dy_t,
            x,
            [patch, g.batch, patch],
            true,
        );
        return dw;
    }
    let dw_ld = padded_row(g.out_channels);
    let plan = TapPlan::new(g);
    let units = Units::new(g);
    let add_unit = |dw_t: &mut [f32], unit: usize, parallel: bool| {
        let first = unit * units.images;
        let images = units.images.min(g.batch - first);
        let mut dy_t = Scratch::new(images * pixels * dw_ld);
        gather_output_transposed(g, dy, first, images, &mut dy_t, dw_ld);
        let shape = [patch, images * pixels, g.out_channels];
        if g.per_image() {
            let mut col = Scratch::new(image_col_len(g));
            let (col, ld) = image_columns(g, &plan, x, first, &mut col);
            matmul(shape, dw_t, true, col, &dy_t, [dw_ld, ld, dw_ld], parallel);
        } else {
            let ld = padded_row(images * pixels);
            let mut col = Scratch::new(patch * ld);
            im2col(g, &plan, x, first, images, &mut col, ld);
            matmul(shape, dw_t, true, &col, &dy_t, [dw_ld, ld, dw_ld], parallel);
        }
    };
    let zeros = || vec![0.0f32; patch * dw_ld];
    let dw_t = if units.side_by_side {
        // One group of units per thread, summed in a fixed order: the result must not depend on
        // which thread steals what, or a resumed run would not repeat an uninterrupted one.
        let group = units.count.div_ceil(rayon::current_num_threads());
        let partials: Vec<Vec<f32>> = (0..units.count)
            .into_par_iter()
            .chunks(group)
            .map(|group| {
                let mut dw_t = zeros();
                group
                    .into_iter()
                    .for_each(|unit| add_unit(&mut dw_t, unit, false));
                dw_t
            })
            .collect();
        partials
            .into_iter()
            .reduce(|mut sum, part| {
                sum.iter_mut().zip(&part).for_each(|(s, p)| *s += p);
                sum
            })
            .unwrap_or_else(zeros)
    } else {
        let mut dw_t = zeros();
        (0..units.count).for_each(|unit| add_unit(&mut dw_t, unit, true));
        dw_t
    };
    let mut dw = vec![0.0; g.weight_len()];
    par_transpose(&dw_t, [patch, g.out_channels], dw_ld, &mut dw, patch);
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input coordinate a kernel tap reads for output coordinate `o` along dimension `d`,
    /// or `None` in the padding.
    fn source(g: &ConvGeometry, d: usize, o: usize, tap: usize) -> Option<usize> {
        (o * g.stride[d] + tap * g.dilation[d])
            .checked_sub(g.padding[d])
            .filter(|&i| i < g.in_size[d])
    }

    /// The definition, one multiply-add at a time.
    fn direct(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let [kh, kw] = g.kernel;
        let [oh, ow] = g.out_size;
        let [ih, iw] = g.in_size;
        let mut y = vec![0.0; g.output_len()];
        for n in 0..g.batch {
            for co in 0..g.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut sum = 0.0f64;
                        for c in 0..g.in_channels {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let (Some(iy), Some(ix)) =
                                        (source(g, 0, oy, ky), source(g, 1, ox, kx))
                                    else {
                                        continue;
                                    };
                                    sum += (x[((n * g.in_channels + c) * ih + iy) * iw + ix]
                                        * w[((co * g.in_channels + c) * kh + ky) * kw + kx])
                                        as f64;
                                }
                            }
                        }
                        y[((n * g.out_channels + co) * oh + oy) * ow + ox] = sum as f32;
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32)
            .map(|v| v / (1u32 << 24) as f32 - 0.5)
            .collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum()
    }

    fn geometries() -> Vec<ConvGeometry> {
        let mut out = Vec::new();
        // (c_in, c_out, in side, kernel, stride, padding, dilation, pad_end)
        for (c_in, c_out, side, k, s, p, d, pad_end) in [
            (3, 4, 8, 4, 2, 1, 1, 1),    // DCGAN down-sampling
            (2, 5, 7, 3, 1, 1, 1, 1),    // same-size 3x3
            (3, 2, 9, 3, 2, 0, 1, 0),    // Inception stem, odd side
            (4, 3, 6, 1, 1, 0, 1, 0),    // 1x1
            (2, 3, 9, 3, 1, 2, 2, 2),    // dilated
            (2, 2, 5, 4, 1, 3, 1, 3),    // the full padding of a transposed convolution
            (1, 2, 4, 4, 1, 0, 1, 0),    // kernel as large as the input
            (2, 3, 11, 2, 3, 1, 1, 0),   // stride larger than the kernel: skipped pixels
            (2, 3, 17, 3, 1, 1, 1, 0),   // ≥ 256 output pixels, but a small product: chunks
            (16, 64, 32, 3, 1, 1, 1, 0), // ≥ 256 output pixels, 1 M multiply-adds: image by image
            (32, 32, 32, 1, 1, 0, 1, 0), // pointwise, image by image: no im2col
            (4, 16, 66, 4, 2, 1, 1, 1),  // strided, image by image
        ] {
            let mut g = ConvGeometry {
                batch: 3,
                in_channels: c_in,
                out_channels: c_out,
                in_size: [side, side + 1],
                out_size: [0, 0],
                kernel: [k, k],
                stride: [s, s],
                padding: [p, p],
                dilation: [d, d],
            };
            g.out_size = g.natural_out_size([pad_end, pad_end]).unwrap();
            out.push(g);
        }
        // Square sides that the stride divides: output rows as long as sub-plane rows, so im2col
        // copies whole blocks (see `Phases::block_copy`).
        for (c_in, c_out, side, k, s, p) in [
            (3, 4, 8, 4, 2, 1),   // DCGAN down-sampling
            (2, 5, 7, 3, 1, 1),   // same-size 3x3
            (2, 3, 6, 3, 2, 1),   // odd kernel, stride 2
            (8, 16, 64, 4, 2, 1), // image by image
        ] {
            let mut g = ConvGeometry {
                batch: 3,
                in_channels: c_in,
                out_channels: c_out,
                in_size: [side, side],
                out_size: [0, 0],
                kernel: [k, k],
                stride: [s, s],
                padding: [p, p],
                dilation: [1, 1],
            };
            g.out_size = g.natural_out_size([p, p]).unwrap();
            assert!(Phases::new(&g).block_copy(&g), "{g:?}");
            out.push(g);
        }
        // A kernel as large as the input, no padding: the dense path (DCGAN's last layer).
        let dense = ConvGeometry {
            batch: 3,
            in_channels: 5,
            out_channels: 2,
            in_size: [4, 3],
            out_size: [1, 1],
            kernel: [4, 3],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
        };
        assert!(dense.dense());
        out.push(dense);
        out
    }

    #[test]
    fn transposes_match_the_definition() {
        for [rows, cols, src_ld, dst_ld] in [
            [13, 21, 24, 16],
            [8, 16, 16, 8],
            [1, 9, 9, 3],
            [69, 130, 131, 80],
            [128, 1040, 1040, 128],
        ] {
            let src = values(rows * src_ld, 3);
            for parallel in [false, true] {
                let mut dst = vec![f32::NAN; cols * dst_ld];
                if parallel {
                    par_transpose(&src, [rows, cols], src_ld, &mut dst, dst_ld);
                } else {
                    transpose(&src, [rows, cols], src_ld, &mut dst, dst_ld);
                }
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(dst[c * dst_ld + r], src[r * src_ld + c], "({r}, {c})");
                    }
                }
            }
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        let all = geometries();
        assert!(all.iter().any(|g| g.per_image() && g.pointwise()));
        assert!(all.iter().any(|g| g.per_image() && !g.pointwise()));
        // Both im2col layouts: strips where the sub-planes are aligned with the output, and
        // image by image where they are not.
        let aligned = |g: &ConvGeometry| Phases::new(g).aligned(g);
        assert!(all.iter().any(|g| aligned(g) && g.per_image()));
        assert!(all.iter().any(|g| aligned(g) && !g.per_image()));
        assert!(
            all.iter()
                .any(|g| !aligned(g) && Phases::new(g).block_copy(g))
        );
        for g in all {
            let x = values(g.input_len(), 1);
            let w = values(g.weight_len(), 2);
            let fast = conv_forward(&g, &x, &w, Epilogue::default());
            let slow = direct(&g, &x, &w);
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                assert!((a - b).abs() < 1e-4, "{g:?} at {i}: {a} vs {b}");
            }
        }
    }

    /// With an epilogue, both products that make an output (the forward pass, and the input
    /// gradient as a transposed convolution's forward pass) add the bias to every pixel of its
    /// channel, then apply the activation; [`channel_sums`] is the bias's gradient (the output
    /// gradient summed per channel) and [`activation_grad`] the activation's.
    #[test]
    fn epilogues_add_the_bias_and_apply_the_activation() {
        let per_channel = |t: &[f32], channels: usize, pixels: usize| -> Vec<f64> {
            let mut sums = vec![0.0f64; channels];
            for (index, plane) in t.chunks(pixels).enumerate() {
                sums[index % channels] += plane.iter().map(|&v| v as f64).sum::<f64>();
            }
            sums
        };
        let (mut cut, mut kept) = (false, false);
        for g in geometries() {
            let x = values(g.input_len(), 6);
            let w = values(g.weight_len(), 7);
            let dy = values(g.output_len(), 8);
            let (out_bias, in_bias) = (values(g.out_channels, 9), values(g.in_channels, 10));
            let with = |bias, activation| Epilogue { bias, activation };
            let none = Epilogue::default();
            let forward = |e| conv_forward(&g, &x, &w, e);
            let transposed = |e| conv_input_grad(&g, &dy, &w, e);
            let cases = [
                (
                    forward(with(Some(&out_bias), Activation::Identity)),
                    forward(with(Some(&out_bias), Activation::Relu)),
                    forward(with(Some(&out_bias), Activation::Tanh)),
                    forward(none),
                    &out_bias,
                    g.out_pixels(),
                ),
                (
                    transposed(with(Some(&in_bias), Activation::Identity)),
                    transposed(with(Some(&in_bias), Activation::Relu)),
                    transposed(with(Some(&in_bias), Activation::Tanh)),
                    transposed(none),
                    &in_bias,
                    g.in_pixels(),
                ),
            ];
            for (with, rectified, squashed, without, bias, pixels) in cases {
                let channels = bias.len();
                let rows = with.iter().zip(&rectified).zip(&squashed).zip(&without);
                for (i, (((a, r), t), b)) in rows.enumerate() {
                    let expected = b + bias[i / pixels % channels];
                    assert!(
                        (a - expected).abs() < 1e-5,
                        "{g:?} at {i}: {a} vs {expected}"
                    );
                    assert!(*r == a.max(0.0), "{g:?} at {i}: ReLU {r} of {a}");
                    assert!(*t == a.tanh(), "{g:?} at {i}: tanh {t} of {a}");
                }
                cut |= rectified.contains(&0.0);
                kept |= rectified.iter().any(|&r| r > 0.0);
                let masked = activation_grad(Activation::Relu, &without, &rectified);
                for ((m, d), r) in masked.iter().zip(&without).zip(&rectified) {
                    assert!(*m == if *r > 0.0 { *d } else { 0.0 });
                }
                let scaled = activation_grad(Activation::Tanh, &without, &squashed);
                for ((s, d), t) in scaled.iter().zip(&without).zip(&squashed) {
                    assert!(*s == d * (1.0 - t * t));
                }
                let sums = channel_sums(&with, channels, pixels);
                let exact = per_channel(&with, channels, pixels);
                for (a, b) in sums.iter().zip(&exact) {
                    assert!(
                        (*a as f64 - b).abs() < 1e-3 * b.abs().max(1.0),
                        "{g:?}: {a} vs {b}"
                    );
                }
            }
        }
        assert!(cut && kept, "the ReLU cut some outputs and kept others");
    }

    /// Both gradients through the adjoint identity: for any dy,
    /// ⟨conv(x, w), dy⟩ = ⟨x, ∂x⟩ = ⟨w, ∂w⟩, since the convolution is linear in each.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward() {
        for g in geometries() {
            let x = values(g.input_len(), 3);
            let w = values(g.weight_len(), 4);
            let dy = values(g.output_len(), 5);
            let forward = dot(&direct(&g, &x, &w), &dy);
            let via_input = dot(&x, &conv_input_grad(&g, &dy, &w, Epilogue::default()));
            let via_weight = dot(&w, &conv_weight_grad(&g, &x, &dy));
            let tolerance = 1e-4 * forward.abs().max(1.0);
            assert!(
                (forward - via_input).abs() < tolerance,
                "{g:?}: {forward} vs {via_input}"
            );
            assert!(
                (forward - via_weight).abs() < tolerance,
                "{g:?}: {forward} vs {via_weight}"
            );
        }
    }

    /// 10 images of a 2048-float patch × 64 pixels exceed the budget: several chunks.
    fn chunked() -> ConvGeometry {
        let mut g = ConvGeometry {
            batch: 10,
            in_channels: 128,
            out_channels: 3,
            in_size: [16, 16],
            out_size: [0, 0],
            kernel: [4, 4],
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
        };
        g.out_size = g.natural_out_size([1, 1]).unwrap();
        g
    }

    #[test]
    fn chunks_give_the_same_answer_as_one_pass() {
        let g = chunked();
        assert!(!g.per_image() && g.chunk() < g.batch);
        let x = values(g.input_len(), 6);
        let w = values(g.weight_len(), 7);
        let dy = values(g.output_len(), 8);
        let dw = conv_weight_grad(&g, &x, &dy);
        let mut single = g;
        single.batch = 1;
        let per_image = g.input_len() / g.batch;
        let out_per_image = g.output_len() / g.batch;
        let mut summed = vec![0.0f32; dw.len()];
        for i in 0..g.batch {
            let part = conv_weight_grad(
                &single,
                &x[i * per_image..][..per_image],
                &dy[i * out_per_image..][..out_per_image],
            );
            summed.iter_mut().zip(part).for_each(|(s, p)| *s += p);
        }
        for (a, b) in dw.iter().zip(&summed) {
            assert!((a - b).abs() < 1e-3 * b.abs().max(1.0), "{a} vs {b}");
        }
        // The input gradient of each image is its own (with an epilogue: every chunk applies it).
        let bias = values(g.in_channels, 12);
        let epilogue = Epilogue {
            bias: Some(&bias),
            activation: Activation::Relu,
        };
        let dx = conv_input_grad(&g, &dy, &w, epilogue);
        for i in [0, g.batch / 2, g.batch - 1] {
            let dy = &dy[i * out_per_image..][..out_per_image];
            let alone = conv_input_grad(&single, dy, &w, epilogue);
            for (a, b) in dx[i * per_image..][..per_image].iter().zip(&alone) {
                assert!(
                    (a - b).abs() < 1e-4 * b.abs().max(1.0),
                    "image {i}: {a} vs {b}"
                );
            }
        }
    }

    /// Sums over units and images come out bit for bit the same whichever thread takes which
    /// part, so that a resumed training run repeats an uninterrupted one exactly.
    #[test]
    fn sums_do_not_depend_on_scheduling() {
        let mut g = geometries()
            .into_iter()
            .find(|g| g.per_image() && !g.pointwise())
            .unwrap();
        g.batch = 24;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let (x, dy) = (values(g.input_len(), 14), values(g.output_len(), 15));
        let (first_dw, first_db) = pool.install(|| {
            let first_dw = conv_weight_grad(&g, &x, &dy);
            let first_db = channel_sums(&dy, g.out_channels, g.out_pixels());
            (first_dw, first_db)
        });
        for _ in 0..20 {
            pool.install(|| {
                assert!(conv_weight_grad(&g, &x, &dy) == first_dw);
                assert!(channel_sums(&dy, g.out_channels, g.out_pixels()) == first_db);
            });
        }
    }

    #[test]
    fn units_side_by_side_match_one_after_another() {
        // One thread runs every unit in turn, each product on all threads (here one); three
        // run units side by side, each product on one thread, with a batch that does not
        // divide evenly. Both must give the same numbers, for chunks and image by image.
        let mut per_image = geometries()
            .into_iter()
            .find(|g| g.per_image() && !g.pointwise())
            .unwrap();
        per_image.batch = 4;
        let pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
        };
        for g in [chunked(), per_image] {
            let x = values(g.input_len(), 9);
            let w = values(g.weight_len(), 10);
            let dy = values(g.output_len(), 11);
            let (out_bias, in_bias) = (values(g.out_channels, 12), values(g.in_channels, 13));
            let epilogue = |bias| Epilogue {
                bias: Some(bias),
                activation: Activation::Tanh,
            };
            let all = || {
                let units = Units::new(&g);
                let results = [
                    conv_forward(&g, &x, &w, epilogue(&out_bias)),
                    conv_input_grad(&g, &dy, &w, epilogue(&in_bias)),
                    conv_weight_grad(&g, &x, &dy),
                ];
                (units, results)
            };
            let (one_units, one) = pool(1).install(all);
            let (three_units, three) = pool(3).install(all);
            assert!(!one_units.side_by_side && three_units.side_by_side);
            assert!(three_units.count.is_multiple_of(3) || g.per_image());
            for (a, b) in one.iter().zip(&three) {
                for (a, b) in a.iter().zip(b) {
                    assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
                }
            }
        }
    }
}
