//! The matrix products (the `gemm` crate, row-major operands) and the transposes that feed them.

use rayon::prelude::*;

use super::geometry::*;
use super::scratch::*;

/// `dst (+)= lhs · rhs` with `lhs` [m, k] and `rhs` [k, n], on all of rayon's threads when
/// `parallel`, else on the calling one (see [`Units`]). All three
/// are row-major with rows of `ld` floats each (`[dst, lhs, rhs]`): the `gemm` crate packs an
/// operand read across its rows one float at a time, and every product here is arranged so that
/// none is (see [`conv_weight_grad`] and [`transposed_weight`]).
pub(super) fn matmul(
    shape: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    rhs: &[f32],
    [dst_ld, lhs_ld, rhs_ld]: [usize; 3],
    parallel: bool,
) {
    matmul_strided(
        shape,
        dst,
        dst_ld,
        accumulate,
        lhs,
        [lhs_ld, 1],
        rhs,
        [rhs_ld, 1],
        parallel,
    );
}

/// `dst (+)= lhs · rhs` as [`matmul`], with each operand's strides given as [between rows,
/// between columns]: the channels-last products of `frames` read overlapping rows in place.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_strided(
    [m, k, n]: [usize; 3],
    dst: &mut [f32],
    dst_ld: usize,
    accumulate: bool,
    lhs: &[f32],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[f32],
    [rhs_rs, rhs_cs]: [usize; 2],
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = last_index;
    assert!(last([dst_ld, 1], m, n) < dst.len(), "matmul: dst too short");
    if k > 0 {
        assert!(
            last([lhs_rs, lhs_cs], m, k) < lhs.len(),
            "matmul: lhs too short"
        );
        assert!(
            last([rhs_rs, rhs_cs], k, n) < rhs.len(),
            "matmul: rhs too short"
        );
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
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The largest index a `rows` x `cols` matrix with strides [between rows, between columns]
/// reaches (both at least 1).
fn last_index([rs, cs]: [usize; 2], rows: usize, cols: usize) -> usize {
    (rows - 1) * rs + (cols - 1) * cs
}

/// `dst[c·dst_ld + r] = src[r·src_ld + c]` for `rows` rows and `cols` columns of `src`: 8x8
/// tiles with AVX where the CPU has it (see [`transpose_tiles_avx`]), else [`transpose_sse`].
pub(super) fn transpose(
    src: &[f32],
    [rows, cols]: [usize; 2],
    src_ld: usize,
    dst: &mut [f32],
    dst_ld: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = last_index;
    assert!(
        last([src_ld, 1], rows, cols) < src.len(),
        "transpose: src too short"
    );
    assert!(
        last([dst_ld, 1], cols, rows) < dst.len(),
        "transpose: dst too short"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX is present; the asserts above bound every tile inside both slices.
        unsafe { transpose_tiles_avx(src, [rows, cols], src_ld, dst, dst_ld) };
        return;
    }
    transpose_sse(src, [rows, cols], src_ld, dst, dst_ld);
}

/// [`transpose`] with 4x4 tiles (see [`transpose_tile`]), the edges one float at a time.
pub(super) fn transpose_sse(
    src: &[f32],
    [rows, cols]: [usize; 2],
    src_ld: usize,
    dst: &mut [f32],
    dst_ld: usize,
) {
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

/// [`transpose`] in 8x8 tiles: eight loads, 24 shuffles and eight stores each, where four 4x4
/// SSE tiles take twice the loads and stores; the tiles at the right and bottom edges load and
/// store only their part (masked), where one float at a time took 5 % of W8's step (rows of
/// 28 and 14 pixels, and a 1-channel layer's).
///
/// # Safety
/// The CPU must have AVX, and `src` and `dst` must hold `rows` x `cols` and `cols` x `rows`
/// floats at their strides.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_tiles_avx(
    src: &[f32],
    [rows, cols]: [usize; 2],
    src_ld: usize,
    dst: &mut [f32],
    dst_ld: usize,
) {
    use std::arch::x86_64::*;
    /// Lanes [8 − n, 16 − n) of this are a mask of the first n lanes.
    static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for r0 in (0..rows).step_by(8) {
        let tile_rows = 8.min(rows - r0);
        // SAFETY: `8 - tile_rows` + 8 ≤ 16 lanes of MASKS.
        let row_mask = unsafe { _mm256_loadu_si256(MASKS.as_ptr().add(8 - tile_rows).cast()) };
        for c0 in (0..cols).step_by(8) {
            let tile_cols = 8.min(cols - c0);
            let full = tile_rows == 8 && tile_cols == 8;
            // SAFETY: as above; every load reads, and every store writes, only rows
            // r0..r0 + tile_rows and columns c0..c0 + tile_cols of `src` (the masked ones only
            // their first lanes), inside both slices by the caller's bounds.
            unsafe {
                let col_mask = _mm256_loadu_si256(MASKS.as_ptr().add(8 - tile_cols).cast());
                let load = |r: usize| {
                    let at = s.add((r0 + r) * src_ld + c0);
                    if full {
                        _mm256_loadu_ps(at)
                    } else if r < tile_rows {
                        _mm256_maskload_ps(at, col_mask)
                    } else {
                        _mm256_setzero_ps()
                    }
                };
                let (r0_, r1, r2, r3) = (load(0), load(1), load(2), load(3));
                let (r4, r5, r6, r7) = (load(4), load(5), load(6), load(7));
                let (t0, t1) = (_mm256_unpacklo_ps(r0_, r1), _mm256_unpackhi_ps(r0_, r1));
                let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
                let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
                let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
                let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let store = |c: usize, v: __m256| {
                    let at = d.add((c0 + c) * dst_ld + r0);
                    if full {
                        _mm256_storeu_ps(at, v);
                    } else if c < tile_cols {
                        _mm256_maskstore_ps(at, row_mask, v);
                    }
                };
                store(0, _mm256_permute2f128_ps::<0x20>(s0, s4));
                store(1, _mm256_permute2f128_ps::<0x20>(s1, s5));
                store(2, _mm256_permute2f128_ps::<0x20>(s2, s6));
                store(3, _mm256_permute2f128_ps::<0x20>(s3, s7));
                store(4, _mm256_permute2f128_ps::<0x31>(s0, s4));
                store(5, _mm256_permute2f128_ps::<0x31>(s1, s5));
                store(6, _mm256_permute2f128_ps::<0x31>(s2, s6));
                store(7, _mm256_permute2f128_ps::<0x31>(s3, s7));
            }
        }
    }
}

/// The 4x4 tile at the start of `src` (rows `src_ld` apart), transposed to the start of `dst`.
/// On x86-64, four SSE loads, eight shuffles and four stores (SSE is part of x86-64, so no
/// run-time detection): the tile loop written with indices compiled to 32 scalar moves with
/// spills, 4.6 % of a W3 step.
#[inline(always)]
pub(super) fn transpose_tile(src: &[f32], src_ld: usize, dst: &mut [f32], dst_ld: usize) {
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

/// [`transpose`] on all threads, each writing a band of `dst`'s rows; on this one alone below
/// 2¹⁶ floats (a weight or its gradient), where waking the others costs more than the copy.
pub(super) fn par_transpose(
    src: &[f32],
    [rows, cols]: [usize; 2],
    src_ld: usize,
    dst: &mut [f32],
    dst_ld: usize,
) {
    const BAND: usize = 64;
    if rows * cols < 1 << 16 {
        transpose(src, [rows, cols], src_ld, dst, dst_ld);
        return;
    }
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
pub(super) fn transposed_weight(g: &ConvGeometry, weight: &[f32]) -> (Scratch, usize) {
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
