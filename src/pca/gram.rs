//! The covariance XᵀX/(n-1) and the first two moments, computed in row blocks on every thread;
//! for byte images exactly, from the integer Gram matrix (sums of 256 byte products are exact in
//! `f32`, accumulated in `f64`).

use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};

/// The lower half of the covariance XcᵀXc/(n-1) of centred data.
pub(super) fn covariance_of_centered(xc: MatRef<'_, f64>) -> Mat<f64> {
    let (n, d) = xc.shape();
    let mut covariance = Mat::<f64>::zeros(d, d);
    // The covariance is symmetric: computing its lower half alone halves the work, and the
    // eigensolver reads only that half.
    triangular::matmul(
        covariance.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        xc.transpose(),
        BlockStructure::Rectangular,
        xc,
        BlockStructure::Rectangular,
        1.0 / (n as f64 - 1.0),
        Par::rayon(0),
    );
    covariance
}

/// Rows of bytes summed exactly in `f32`: 256 products of two bytes stay below 2²⁴, the largest
/// integer `f32` holds exactly, so each chunk's sums are exact whatever the order.
pub(super) const EXACT_F32_ROWS: usize = 256;

/// Number of worker threads for the row-parallel kernels below.
pub(super) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// Runs `work` on contiguous row ranges `(start, rows)` of `0..n`, one per thread, at least
/// `min_rows` each, and returns their results in order.
pub(super) fn on_row_blocks<T: Send>(
    n: usize,
    min_rows: usize,
    work: impl Fn(usize, usize) -> T + Sync,
) -> Vec<T> {
    let blocks = threads().min(n / min_rows.max(1)).max(1);
    let rows = n.div_ceil(blocks);
    if blocks == 1 {
        return vec![work(0, n)];
    }
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (0..blocks)
            .map(|b| {
                let start = b * rows;
                scope.spawn(move || work(start, rows.min(n - start)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("PCA worker thread panicked"))
            .collect()
    })
}

/// The exact Gram matrix BᵀB (lower half) of byte data `b` (`[n, d]` row-major), computed in
/// chunks of `f32` products that are exact, accumulated in `f64`. Twice the speed of an `f64`
/// product on the same data, and exact where that one rounds.
pub(super) fn byte_gram(pixels: &[u8], n: usize, d: usize) -> Mat<f64> {
    let partials = on_row_blocks(n, EXACT_F32_ROWS, |first, count| {
        let mut gram = Mat::<f64>::zeros(d, d);
        let mut chunk_gram = Mat::<f32>::zeros(d, d);
        for start in (first..first + count).step_by(EXACT_F32_ROWS) {
            let rows = EXACT_F32_ROWS.min(first + count - start);
            let chunk = fill_from_bytes(
                &pixels[start * d..(start + rows) * d],
                rows,
                1.0,
                None,
                |v| v as f32,
            );
            triangular::matmul(
                chunk_gram.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Replace,
                chunk.transpose(),
                BlockStructure::Rectangular,
                chunk.as_ref(),
                BlockStructure::Rectangular,
                1.0,
                Par::Seq,
            );
            for j in 0..d {
                for i in j..d {
                    gram[(i, j)] += chunk_gram[(i, j)] as f64;
                }
            }
        }
        gram
    });
    let mut partials = partials.into_iter();
    let mut gram = partials.next().expect("at least one block");
    for partial in partials {
        gram += partial;
    }
    gram
}

/// Column sums and sums of squares of byte data, exactly.
pub(super) fn byte_moments(pixels: &[u8], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sums = vec![0u64; d];
    let mut squares = vec![0u64; d];
    for row in pixels.chunks_exact(d) {
        for ((s, q), &b) in sums.iter_mut().zip(squares.iter_mut()).zip(row) {
            *s += b as u64;
            *q += b as u64 * b as u64;
        }
    }
    let to_f64 = |v: Vec<u64>| v.into_iter().map(|x| x as f64).collect();
    (to_f64(sums), to_f64(squares))
}

/// Byte rows as a column-major matrix of `convert(byte / max_value - offset[j])`. Works in bands of
/// rows so that both the strided reads and the column writes stay in cache.
pub(super) fn fill_from_bytes<T: faer::traits::ComplexField + Copy>(
    pixels: &[u8],
    n: usize,
    max_value: f64,
    offset: Option<&[f64]>,
    convert: impl Fn(f64) -> T,
) -> Mat<T> {
    const BAND: usize = 64;
    let d = pixels.len().checked_div(n).unwrap_or(0);
    let mut x = Mat::<T>::zeros(n, d);
    for start in (0..n).step_by(BAND) {
        let rows = BAND.min(n - start);
        for j in 0..d {
            let shift = offset.map_or(0.0, |o| o[j]);
            for i in start..start + rows {
                x[(i, j)] = convert(pixels[i * d + j] as f64 / max_value - shift);
            }
        }
    }
    x
}
