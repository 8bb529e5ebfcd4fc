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
//!
//! "Same" convolutions (odd kernel, stride 1, the size kept) from 14x14 up, and halving ones
//! (4x4, stride 2, padding 1) with enough channels, skip `col` altogether: `frames` reads their
//! patches in place from a channels-last copy of each image (the diffusion denoiser's step, W8,
//! 21 % more images/s on the 2-core Xeon VM).

pub(crate) mod epilogue;
mod frames;
mod gemm;
mod geometry;
mod im2col;
pub(crate) mod scratch;
#[cfg(test)]
mod tests;

use rayon::prelude::*;

pub use epilogue::{Activation, Epilogue, activation_grad, channel_sums, tanh};
pub use geometry::ConvGeometry;

use epilogue::*;
use gemm::*;
use geometry::*;
use im2col::*;
use scratch::*;

/// `y = epilogue(conv(x, weight))`: `x` [batch, c_in, h, w], `weight` [c_out, c_in, kh, kw],
/// `y` [batch, c_out, oh, ow].
pub(crate) fn conv_forward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
) -> Vec<f32> {
    forward(g, x, weight, epilogue, false).0
}

/// [`conv_forward`], keeping `col(x)` for [`conv_weight_grad_from`] where the convolution has
/// stride 1, the batch is laid out in chunks and their columns take at most [`KEPT_COLUMNS`]
/// floats (else `None`). Strided ones are left out by measurement: keeping cost DCGAN's step (W2)
/// 3 %, where it gave ESPCN's (W7) 8 %.
pub(crate) fn conv_forward_keeping_columns(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
) -> (Vec<f32>, Option<Columns>) {
    forward(g, x, weight, epilogue, true)
}

/// Floats of `col(x)` a forward pass may keep for the weight gradient: 32 MiB.
pub(crate) const KEPT_COLUMNS: usize = 1 << 23;

/// `col(x)` of each unit of a convolution's batch, kept from its forward pass: the weight
/// gradient needs the same matrices, and laying the patches out a second time took 8 % of an
/// ESPCN training step.
pub(crate) struct Columns {
    geometry: ConvGeometry,
    units: Units,
    /// Per unit, its `col` (rows of `padded_row(images · oh · ow)` floats).
    cols: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let floats: usize = self.cols.iter().map(Vec::len).sum();
        write!(f, "Columns({} units, {floats} floats)", self.cols.len())
    }
}

impl Drop for Columns {
    fn drop(&mut self) {
        // Back to the scratch pool, where the next forward pass's `col` comes from.
        self.cols.drain(..).for_each(Scratch::recycle);
    }
}

fn forward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
    keep_columns: bool,
) -> (Vec<f32>, Option<Columns>) {
    assert_eq!(x.len(), g.input_len());
    assert_eq!(weight.len(), g.weight_len());
    assert!(epilogue.bias.is_none_or(|b| b.len() == g.out_channels));
    if g.patch_len() == 0 {
        // No products to write the output: it is the bias, if any, through the activation.
        let mut y = vec![0.0; g.output_len()];
        epilogue.apply(&mut y, g.out_channels, g.out_pixels());
        return (y, None);
    }
    if frames::same(g) || frames::halving(g) {
        return (frames::forward(g, x, weight, epilogue), None);
    }
    let mut columns = None;
    // SAFETY: every path of `write_output` writes all of `y` before reading any of it (see
    // there).
    let y = unsafe {
        written_vec(g.output_len(), |y| {
            columns = write_output(g, x, weight, epilogue, keep_columns, y);
        })
    };
    (y, columns)
}

/// The body of [`forward`], into `y`: the dense and image-by-image products write their whole
/// output (`accumulate` false: the `gemm` crate does not read it) before the epilogue reads it,
/// and in chunks, [`scatter_output`] writes every float of its unit's images.
fn write_output(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
    keep_columns: bool,
    y: &mut [f32],
) -> Option<Columns> {
    let (patch, pixels) = (g.patch_len(), g.out_pixels());
    if g.dense() {
        let (weight_t, w_ld) = transposed_weight(g, weight);
        let shape = [g.batch, patch, g.out_channels];
        matmul(
            shape,
            y,
            false,
            x,
            &weight_t,
            [g.out_channels, patch, w_ld],
            true,
        );
        epilogue.apply(y, g.out_channels, 1);
        return None;
    }
    let plan = TapPlan::new(g);
    let units = Units::new(g);
    let keep = keep_columns
        && g.stride == [1, 1]
        && !g.per_image()
        && units.count * patch * padded_row(units.images * pixels) <= KEPT_COLUMNS;
    let kept = std::sync::Mutex::new(vec![Vec::new(); if keep { units.count } else { 0 }]);
    let out_len = g.out_channels * pixels;
    units.for_each(y, out_len, |first, images, y, parallel| {
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
        if keep {
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            kept[first / units.images] = col.into_vec();
        }
    });
    let cols = kept.into_inner().unwrap_or_else(|e| e.into_inner());
    keep.then(|| Columns {
        geometry: *g,
        units,
        cols,
    })
}

/// The gradient of [`conv_forward`] with respect to `x`, given `dy` [batch, c_out, oh, ow];
/// through `epilogue` (its bias [c_in]) where it serves as a transposed convolution's forward
/// pass.
///
/// With stride 1 it is also a convolution of `dy` (see [`ConvGeometry::adjoint`]): im2col of
/// c_out·kh·kw rows into a product as deep, where `Wᵀ · dy` is only c_out deep and col2im adds
/// c_in·kh·kw rows back. That pays where c_out < c_in (3x3, batch 32 at 14x14 on 2 cores:
/// 64 → 16 channels 0.90 → 0.67 ms) and costs where c_out > c_in (16 → 64: 0.57 → 0.85 ms).
/// The adjoint of a "same" convolution is "same" too, which `frames` runs without im2col: that
/// one is always taken.
pub(crate) fn conv_input_grad(
    g: &ConvGeometry,
    dy: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
) -> Vec<f32> {
    assert_eq!(dy.len(), g.output_len());
    assert_eq!(weight.len(), g.weight_len());
    assert!(epilogue.bias.is_none_or(|b| b.len() == g.in_channels));
    if frames::halving(g) {
        return frames::input_grad(g, dy, weight, epilogue);
    }
    let adjoint_pays = |a: &ConvGeometry| frames::same(a) || g.out_channels < g.in_channels;
    if let Some(adjoint) = g.adjoint().filter(adjoint_pays) {
        return conv_forward(&adjoint, dy, &flipped_weight(g, weight), epilogue);
    }
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

/// `weight` [c_out, c_in, kh, kw] as the kernel of [`ConvGeometry::adjoint`], [c_in, c_out, kh,
/// kw], each kernel turned by 180°.
fn flipped_weight(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let taps = g.kernel[0] * g.kernel[1];
    let mut flipped = vec![0.0; weight.len()];
    for (co, filters) in weight.chunks_exact(g.in_channels * taps).enumerate() {
        for (ci, kernel) in filters.chunks_exact(taps).enumerate() {
            let out = &mut flipped[(ci * g.out_channels + co) * taps..][..taps];
            out.iter_mut()
                .zip(kernel.iter().rev())
                .for_each(|(o, k)| *o = *k);
        }
    }
    flipped
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
pub(crate) fn conv_weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    conv_weight_grad_from(g, x, dy, None)
}

/// [`conv_weight_grad`], reading `col(x)` from `columns` (kept by the forward pass on the same
/// `x`) where they were kept for this geometry and this many threads.
pub(crate) fn conv_weight_grad_from(
    g: &ConvGeometry,
    x: &[f32],
    dy: &[f32],
    columns: Option<&Columns>,
) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len());
    assert_eq!(dy.len(), g.output_len());
    if frames::same(g) || frames::halving(g) {
        return frames::weight_grad(g, x, dy);
    }
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
    let kept = columns
        .filter(|c| c.geometry == *g && c.units == units)
        .map(|c| &c.cols);
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
            let mut laid_out = None;
            let col: &[f32] = match kept {
                Some(kept) => &kept[unit],
                None => {
                    let col = laid_out.insert(Scratch::new(patch * ld));
                    im2col(g, &plan, x, first, images, col, ld);
                    col
                }
            };
            matmul(shape, dw_t, true, col, &dy_t, [dw_ld, ld, dw_ld], parallel);
        }
    };
    let dw_t = sum_in_fixed_groups(units.count, units.side_by_side, patch * dw_ld, |group| {
        let mut dw_t = vec![0.0f32; patch * dw_ld];
        group.for_each(|unit| add_unit(&mut dw_t, unit, !units.side_by_side));
        dw_t
    });
    let mut dw = vec![0.0; g.weight_len()];
    par_transpose(&dw_t, [patch, g.out_channels], dw_ld, &mut dw, patch);
    dw
}

/// Σ `partial(items)` over `count` items in fixed groups: with `side_by_side`, one group per
/// thread (side by side), else all in one. The partial sums (each `len` floats) are added in
/// group order, so the result does not depend on which thread steals what: a resumed run must
/// repeat an uninterrupted one.
pub(super) fn sum_in_fixed_groups(
    count: usize,
    side_by_side: bool,
    len: usize,
    partial: impl Fn(std::ops::Range<usize>) -> Vec<f32> + Sync,
) -> Vec<f32> {
    if !side_by_side {
        return if count == 0 {
            vec![0.0; len]
        } else {
            partial(0..count)
        };
    }
    let group = count.div_ceil(rayon::current_num_threads()).max(1);
    let groups: Vec<_> = (0..count)
        .step_by(group)
        .map(|first| first..(first + group).min(count))
        .collect();
    let partials: Vec<Vec<f32>> = groups.into_par_iter().map(&partial).collect();
    partials
        .into_iter()
        .reduce(|mut sum, part| {
            sum.iter_mut().zip(&part).for_each(|(s, p)| *s += p);
            sum
        })
        .unwrap_or_else(|| vec![0.0; len])
}
