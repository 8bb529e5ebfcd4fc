//! The shape of one convolution and how its work is cut: chunks of images side by side
//! (`Units`), the stride-phase split of the input (`Phases`), the taps each output reads
//! (`TapPlan`), sub-planes laid end to end (`Strips`).

use rayon::prelude::*;

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
pub(super) const COL_BUDGET: usize = 1 << 19;

/// A row length for matrices read along their rows by many rows at once (both operands of the
/// weight gradient): at least `width`, and not a multiple of 256 floats, so that the rows do not
/// all fall into the same few cache sets.
pub(super) fn padded_row(width: usize) -> usize {
    let width = width.next_multiple_of(16);
    if width.is_multiple_of(256) {
        width + 16
    } else {
        width
    }
}

/// Floats a parallel task copies at least: a 7x7 plane, or a row of `col` for a small chunk,
/// copies in well under a microsecond, about what handing a task to another thread costs
/// (ESPCN's step: 5 % more images/s with tasks of 16 rows of `col` instead of one).
pub(super) const TASK_FLOATS: usize = 1 << 13;

/// Items of `len` floats per parallel task at least (see [`TASK_FLOATS`]).
pub(super) fn items_per_task(len: usize) -> usize {
    (TASK_FLOATS / len.max(1)).max(1)
}

/// Convolutions with at least this many output pixels per image and this many multiply-adds per
/// image's product run image by image, reading and writing the tensors in place (no gather or
/// scatter copies). Below the second, a product is mostly packing and thread hand-offs, as in a
/// DCGAN's first layer (3 → 64 channels, 4x4, 32 → 16: 0.8 M per image, 16 GFLOP/s image by
/// image).
pub(super) const PER_IMAGE_PIXELS: usize = 256;
pub(super) const PER_IMAGE_MACS: usize = 1 << 20;

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
    pub(super) fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    pub(super) fn out_pixels(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    pub(super) fn in_pixels(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    /// Whether products run image by image (see [`PER_IMAGE_PIXELS`] and [`PER_IMAGE_MACS`]).
    pub(super) fn per_image(&self) -> bool {
        self.out_pixels() >= PER_IMAGE_PIXELS
            && self.out_channels * self.patch_len() * self.out_pixels() >= PER_IMAGE_MACS
    }

    /// A 1x1 convolution that keeps the size: `col(x)` of one image is the image itself.
    pub(super) fn pointwise(&self) -> bool {
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

    /// For a stride-1 convolution, the one whose forward pass is this one's input gradient:
    /// dx[i] = Σ_k W[k]·dy[i − k·d + p] is a convolution of dy with each kernel turned by 180°
    /// (input and output channels exchanged) and padding (k − 1)·d − p. `None` for strided,
    /// pointwise and dense convolutions, which have cheaper paths of their own, and where that
    /// padding would be negative.
    pub(super) fn adjoint(&self) -> Option<ConvGeometry> {
        if self.stride != [1, 1] || self.pointwise() || self.dense() {
            return None;
        }
        let reach = |d: usize| (self.kernel[d] - 1) * self.dilation[d];
        let padding = [
            reach(0).checked_sub(self.padding[0])?,
            reach(1).checked_sub(self.padding[1])?,
        ];
        Some(ConvGeometry {
            batch: self.batch,
            in_channels: self.out_channels,
            out_channels: self.in_channels,
            in_size: self.out_size,
            out_size: self.in_size,
            kernel: self.kernel,
            stride: [1, 1],
            padding,
            dilation: self.dilation,
        })
    }

    /// Images per chunk.
    pub(super) fn chunk(&self) -> usize {
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
    pub(super) fn valid_outputs(&self, d: usize, tap: usize) -> (usize, usize) {
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
pub(super) struct Tap {
    /// The sub-plane: (row phase, column phase).
    pub(super) phase: [usize; 2],
    /// Sub-plane coordinate of output (0, 0) along each dimension (added to oy, ox).
    pub(super) shift: [isize; 2],
    /// Outputs whose tap lands inside the input, per dimension.
    pub(super) rows: (usize, usize),
    pub(super) cols: (usize, usize),
}

/// A strided convolution reads every s-th pixel, which makes im2col and col2im move one float at
/// a time. Split each input plane by stride phase first — sub-plane (a, b) holds the pixels
/// (a + s·u, b + s·v) — and every kernel tap reads (and col2im writes) a contiguous run of a
/// sub-plane instead: the pixel of output (oy, ox) under tap (ky, kx) is (oy + ⌊q/s⌋, ox + …) of
/// sub-plane (q mod s, …) with q = k·d − p. With stride 1 the layout is the plane itself.
pub(super) struct Phases {
    pub(super) stride: [usize; 2],
    /// Sub-plane side.
    pub(super) side: [usize; 2],
}

impl Phases {
    pub(super) fn new(g: &ConvGeometry) -> Self {
        let side = std::array::from_fn(|d| g.in_size[d].div_ceil(g.stride[d]));
        Self {
            stride: g.stride,
            side,
        }
    }

    pub(super) fn identity(&self) -> bool {
        self.stride == [1, 1]
    }

    /// Whether a sub-plane row is as long as an output row, as when a convolution keeps or
    /// divides the size by its stride: then a tap reads its whole output block as one run.
    pub(super) fn block_copy(&self, g: &ConvGeometry) -> bool {
        self.side[1] == g.out_size[1]
    }

    /// Floats of one input plane in this layout.
    pub(super) fn plane_len(&self) -> usize {
        self.stride[0] * self.stride[1] * self.sub_len()
    }

    /// Floats of one sub-plane.
    pub(super) fn sub_len(&self) -> usize {
        self.side[0] * self.side[1]
    }

    /// Whether every sub-plane is exactly as large as the output, as when a strided convolution
    /// divides the size by its stride (DCGAN's 4x4, stride 2, padding 1): see [`Strips`]. With
    /// stride 1 ("same" convolutions) only where chunks of images share a strip: image by image,
    /// the strip is one more copy of a plane that im2col can read in place (Inception at 299 px,
    /// W4: 2 % slower with strips).
    pub(super) fn aligned(&self, g: &ConvGeometry) -> bool {
        self.side == g.out_size && (!self.identity() || !g.per_image())
    }

    pub(super) fn tap(&self, g: &ConvGeometry, ky: usize, kx: usize) -> Tap {
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
    pub(super) fn taps(&self, g: &ConvGeometry) -> Vec<Tap> {
        let [kh, kw] = g.kernel;
        (0..kh * kw).map(|t| self.tap(g, t / kw, t % kw)).collect()
    }

    /// The run of sub-plane floats that output row `oy` reads under `tap` (offset in the plane).
    pub(super) fn run(&self, tap: &Tap, oy: usize) -> usize {
        let sub = (tap.phase[0] * self.stride[1] + tap.phase[1]) * self.side[0] * self.side[1];
        let u = (oy as isize + tap.shift[0]) as usize;
        let v = (tap.cols.0 as isize + tap.shift[1]) as usize;
        sub + u * self.side[1] + v
    }

    /// `plane` (one input plane) in this layout, sub-plane q at `out[q·sub_stride..]`.
    pub(super) fn split(
        &self,
        plane: &[f32],
        [h, w]: [usize; 2],
        out: &mut [f32],
        sub_stride: usize,
    ) {
        if self.identity() {
            out[..h * w].copy_from_slice(&plane[..h * w]);
            return;
        }
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
    pub(super) fn merge(
        &self,
        split: &[f32],
        [h, w]: [usize; 2],
        plane: &mut [f32],
        sub_stride: usize,
    ) {
        if self.identity() {
            plane[..h * w].copy_from_slice(&split[..h * w]);
            return;
        }
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
pub(super) fn deinterleave_pair(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
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
pub(super) fn interleave_pair(row: &mut [f32], even: &[f32], odd: &[f32]) {
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
pub(super) fn column_masks(g: &ConvGeometry, taps: &[Tap]) -> Vec<Vec<u32>> {
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
pub(super) struct TapPlan {
    pub(super) phases: Phases,
    pub(super) taps: Vec<Tap>,
    /// Whether the block paths apply ([`Phases::block_copy`]).
    pub(super) block: bool,
    /// [`column_masks`] when `block` and not `strips`, else empty.
    pub(super) masks: Vec<Vec<u32>>,
    /// The strip layout when the sub-planes are aligned with the output ([`Phases::aligned`]).
    pub(super) strips: Option<Strips>,
}

impl TapPlan {
    pub(super) fn new(g: &ConvGeometry) -> Self {
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
pub(super) struct Strips {
    /// Floats before and after the images of a strip, at least the largest |offset|.
    pub(super) margin: usize,
    /// Per tap: the strip (its phase, `a·s + b`) and the offset.
    pub(super) sources: Vec<(usize, isize)>,
    pub(super) masks: Vec<Option<Vec<u32>>>,
}

impl Strips {
    pub(super) fn new(g: &ConvGeometry, phases: &Phases, taps: &[Tap]) -> Self {
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
    pub(super) fn len(&self, g: &ConvGeometry, images: usize) -> usize {
        images * g.out_pixels() + 2 * self.margin
    }

    /// The `len` floats tap `t` reads (or col2im adds onto) in `strips`, the strips of one
    /// channel, each `strip_len` long.
    pub(super) fn window(&self, t: usize, strip_len: usize, len: usize) -> std::ops::Range<usize> {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Units {
    pub(super) images: usize,
    pub(super) count: usize,
    pub(super) side_by_side: bool,
}

impl Units {
    pub(super) fn new(g: &ConvGeometry) -> Self {
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
    pub(super) fn for_each(
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
