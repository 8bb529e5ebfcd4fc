//! Exact streaming PCA: the `eigen` solver needs only sufficient statistics of the rows (their
//! count, sum, and Gram matrix), which can be gathered chunk by chunk, from shards, or across MPI
//! ranks, and summed. Memory is O(d²) whatever the number of rows.
//!
//! Bytes are summed as integers (the Gram matrix in exact `f32` chunks, accumulated in `f64`:
//! exact while an entry stays below 2⁵³, i.e. for up to 1.3·10¹¹ rows of bytes), so any chunking
//! and any order of shards gives bit-identical statistics, and the fit equals
//! [`Pca::fit_bytes`]'s. Floats are shifted by their first row before they are summed, so the
//! centring subtracts two numbers of the data's spread, not of its offset: with the Gram in
//! `f64`, chunkings agree to about 1e-12 relative.

use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, Par};

use super::gram::byte_gram;
use super::solvers::spectrum_of_covariance;
use super::{Pca, PcaConfig, Solver, check_shape, fit_with};
use crate::error::{Error, Result};

/// Sufficient statistics of rows of `d` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    d: usize,
    rows: u64,
    /// Bytes (summed exactly, no shift) or floats (summed after subtracting `shift`).
    kind: Kind,
    /// Σ (x - shift), per column.
    sums: Vec<f64>,
    /// Σ (x - shift)², per column (the total variance without the Gram's diagonal being read).
    squares: Vec<f64>,
    /// Σ (x - shift)(x - shift)ᵀ, lower half.
    gram: Mat<f64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Bytes,
    /// The shift, the first row seen (none before any row).
    Floats(Option<Vec<f64>>),
}

impl Statistics {
    /// Statistics of byte rows of `d` values.
    pub fn bytes(d: usize) -> Self {
        Self::new(d, Kind::Bytes)
    }

    /// Statistics of float rows of `d` values.
    pub fn floats(d: usize) -> Self {
        Self::new(d, Kind::Floats(None))
    }

    fn new(d: usize, kind: Kind) -> Self {
        Self {
            d,
            rows: 0,
            kind,
            sums: vec![0.0; d],
            squares: vec![0.0; d],
            gram: Mat::zeros(d, d),
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn dimensions(&self) -> usize {
        self.d
    }

    /// Whether these are statistics of bytes (pixels, divided by 255 in a fit) or of floats.
    pub fn holds_bytes(&self) -> bool {
        matches!(self.kind, Kind::Bytes)
    }

    /// Adds rows of bytes (`[rows, d]` row-major).
    pub fn add_bytes(&mut self, rows: &[u8]) -> Result<()> {
        let n = self.check_rows(rows.len(), matches!(self.kind, Kind::Bytes), "bytes")?;
        if n == 0 {
            return Ok(());
        }
        for row in rows.chunks_exact(self.d) {
            for ((s, q), &b) in self.sums.iter_mut().zip(&mut self.squares).zip(row) {
                *s += b as f64;
                *q += (b as u32 * b as u32) as f64;
            }
        }
        self.gram += byte_gram(rows, n, self.d);
        self.rows += n as u64;
        Ok(())
    }

    /// Adds rows of floats (`[rows, d]` row-major).
    pub fn add_floats(&mut self, rows: &[f32]) -> Result<()> {
        let n = self.check_rows(rows.len(), matches!(self.kind, Kind::Floats(_)), "floats")?;
        if n == 0 {
            return Ok(());
        }
        if rows.iter().any(|v| !v.is_finite()) {
            return Err(Error::bad_input("PCA input holds NaN or infinite values"));
        }
        let d = self.d;
        let Kind::Floats(shift) = &mut self.kind else {
            unreachable!("checked above")
        };
        let shift = shift.get_or_insert_with(|| rows[..d].iter().map(|&v| v as f64).collect());
        let shifted = Mat::<f64>::from_fn(n, d, |i, j| rows[i * d + j] as f64 - shift[j]);
        for j in 0..d {
            for v in shifted.col(j).iter() {
                self.sums[j] += v;
                self.squares[j] += v * v;
            }
        }
        triangular::matmul(
            self.gram.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            shifted.transpose(),
            BlockStructure::Rectangular,
            shifted.as_ref(),
            BlockStructure::Rectangular,
            1.0,
            Par::rayon(0),
        );
        self.rows += n as u64;
        Ok(())
    }

    fn check_rows(&self, values: usize, kind_matches: bool, what: &str) -> Result<usize> {
        if !kind_matches {
            return Err(Error::bad_input(format!(
                "PCA statistics: cannot add {what} to statistics of the other kind"
            )));
        }
        if self.d == 0 || !values.is_multiple_of(self.d) {
            return Err(Error::bad_input(format!(
                "PCA statistics: {values} values are not rows of {}",
                self.d
            )));
        }
        Ok(values / self.d)
    }

    /// Adds another shard's statistics (of the same kind and width): the statistics of both
    /// shards' rows together. Float shards must share their shift (take it from one row known
    /// to all, e.g. by [`Statistics::floats_shifted`]).
    pub fn merge(&mut self, other: &Statistics) -> Result<()> {
        if other.rows == 0 {
            return Ok(());
        }
        if self.d != other.d {
            return Err(Error::bad_input(format!(
                "PCA statistics of {} and {} columns cannot be merged",
                self.d, other.d
            )));
        }
        match (&mut self.kind, &other.kind) {
            (Kind::Bytes, Kind::Bytes) => {}
            (Kind::Floats(mine), Kind::Floats(Some(theirs))) => match mine {
                None if self.rows == 0 => *mine = Some(theirs.clone()),
                Some(mine) if mine == theirs => {}
                _ => {
                    return Err(Error::bad_input(
                        "PCA statistics with different shifts cannot be merged",
                    ));
                }
            },
            _ => {
                return Err(Error::bad_input(
                    "PCA statistics of bytes and of floats cannot be merged",
                ));
            }
        }
        self.rows += other.rows;
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a += b;
        }
        for (a, b) in self.squares.iter_mut().zip(&other.squares) {
            *a += b;
        }
        self.gram += &other.gram;
        Ok(())
    }

    /// Statistics of float rows of `d` values, shifted by `shift` (the same on every shard).
    pub fn floats_shifted(shift: Vec<f64>) -> Self {
        Self::new(shift.len(), Kind::Floats(Some(shift)))
    }

    /// The statistics as one flat vector (rows, sums, squares, the Gram's lower half), the form
    /// an all-reduce sums; [`Statistics::from_flat`] reads it back.
    pub fn to_flat(&self) -> Vec<f64> {
        let d = self.d;
        let mut flat = Vec::with_capacity(1 + 2 * d + d * (d + 1) / 2);
        flat.push(self.rows as f64);
        flat.extend(&self.sums);
        flat.extend(&self.squares);
        for j in 0..d {
            for i in j..d {
                flat.push(self.gram[(i, j)]);
            }
        }
        flat
    }

    /// Replaces the counts and sums with `flat` (as [`Statistics::to_flat`] lays them out),
    /// keeping the kind and shift.
    pub fn from_flat(&self, flat: &[f64]) -> Result<Self> {
        let d = self.d;
        if flat.len() != 1 + 2 * d + d * (d + 1) / 2 {
            return Err(Error::Internal(format!(
                "PCA statistics: {} values for {d} columns",
                flat.len()
            )));
        }
        let mut out = Self::new(d, self.kind.clone());
        out.rows = flat[0] as u64;
        out.sums.copy_from_slice(&flat[1..1 + d]);
        out.squares.copy_from_slice(&flat[1 + d..1 + 2 * d]);
        let mut at = 1 + 2 * d;
        for j in 0..d {
            for i in j..d {
                out.gram[(i, j)] = flat[at];
                at += 1;
            }
        }
        Ok(out)
    }

    /// The `eigen` fit these statistics define, values divided by `max_value` (255 for bytes as
    /// pixels in [0, 1], 1 for floats).
    pub fn fit(&self, max_value: f64, config: &PcaConfig) -> Result<Pca> {
        if config.solver != Solver::Eigen {
            return Err(Error::bad_input(format!(
                "streamed PCA computes the eigen solver's fit from the covariance; --solver {} \
                 needs the rows in memory",
                config.solver
            )));
        }
        let n = usize::try_from(self.rows).unwrap_or(usize::MAX);
        check_shape(n, self.d)?;
        let nf = self.rows as f64;
        let shift = match &self.kind {
            Kind::Floats(Some(shift)) => shift.clone(),
            _ => vec![0.0; self.d],
        };
        let mean: Vec<f64> = (self.sums.iter().zip(&shift))
            .map(|(s, h)| (h + s / nf) / max_value)
            .collect();
        // Covariance = (G - s sᵀ/n) / (n-1) / max², G and s of the shifted values.
        let scale = 1.0 / ((nf - 1.0) * max_value * max_value);
        let total = (self.sums.iter().zip(&self.squares))
            .map(|(s, q)| (q - s * s / nf) * scale)
            .sum();
        let mut covariance = self.gram.clone();
        for j in 0..self.d {
            for i in j..self.d {
                covariance[(i, j)] =
                    (covariance[(i, j)] - self.sums[i] * self.sums[j] / nf) * scale;
            }
        }
        fit_with(config, (n, self.d), mean, total, |k| {
            spectrum_of_covariance(&covariance, k)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pca::Components;

    /// Rows of bytes with a few strong directions, so the top components are well separated.
    fn byte_rows(n: usize, d: usize) -> Vec<u8> {
        (0..n * d)
            .map(|i| {
                let (r, c) = (i / d, i % d);
                ((r * 37 + c * 11) % 97 + (r % 5) * (c % 3) * 20 + (r * r) % 13) as u8
            })
            .collect()
    }

    fn streamed(rows: &[u8], d: usize, chunk: usize) -> Statistics {
        let mut statistics = Statistics::bytes(d);
        for part in rows.chunks(chunk * d) {
            statistics.add_bytes(part).unwrap();
        }
        statistics
    }

    #[test]
    fn chunks_of_1_7_and_n_rows_and_shards_give_identical_byte_statistics() {
        let (n, d) = (300, 12);
        let rows = byte_rows(n, d);
        let whole = streamed(&rows, d, n);
        assert_eq!(streamed(&rows, d, 1), whole);
        assert_eq!(streamed(&rows, d, 7), whole);
        // Three shards, as three ranks would hold them, summed in another order.
        let mut merged = streamed(&rows[200 * d..], d, 9);
        merged.merge(&streamed(&rows[..64 * d], d, 5)).unwrap();
        merged
            .merge(&streamed(&rows[64 * d..200 * d], d, 1))
            .unwrap();
        assert_eq!(merged, whole);
        // Through the flat form an all-reduce sums.
        assert_eq!(whole.from_flat(&whole.to_flat()).unwrap(), whole);
        // And the fit is fit_bytes', bit for bit.
        let config = PcaConfig::new(Components::Count(5), Solver::Eigen);
        let from_statistics = whole.fit(255.0, &config).unwrap();
        let in_memory = Pca::fit_bytes(&rows, n, 255.0, &config).unwrap();
        assert_eq!(from_statistics.components, in_memory.components);
        assert_eq!(
            from_statistics.explained_variance,
            in_memory.explained_variance
        );
    }

    #[test]
    fn float_statistics_agree_across_chunkings_and_match_the_in_memory_fit() {
        let (n, d) = (250, 10);
        let rows: Vec<f32> = byte_rows(n, d)
            .iter()
            .enumerate()
            .map(|(i, &b)| 1000.0 + b as f32 / 7.0 + (i % 3) as f32 * 0.25)
            .collect();
        let gather = |chunk: usize| {
            let mut statistics = Statistics::floats(d);
            for part in rows.chunks(chunk * d) {
                statistics.add_floats(part).unwrap();
            }
            statistics
        };
        let whole = gather(n);
        let config = PcaConfig::new(Components::Count(4), Solver::Eigen);
        let reference = whole.fit(1.0, &config).unwrap();
        for chunk in [1, 7] {
            let fit = gather(chunk).fit(1.0, &config).unwrap();
            for (a, b) in fit
                .components
                .col_iter()
                .flat_map(|c| c.iter().copied().collect::<Vec<_>>())
                .zip(
                    reference
                        .components
                        .col_iter()
                        .flat_map(|c| c.iter().copied().collect::<Vec<_>>()),
                )
            {
                assert!((a - b).abs() < 1e-9, "chunk {chunk}: {a} vs {b}");
            }
        }
        // Shards share the shift of one row every rank knows.
        let shift: Vec<f64> = rows[..d].iter().map(|&v| v as f64).collect();
        let mut shards = Statistics::floats_shifted(shift.clone());
        shards.add_floats(&rows[100 * d..]).unwrap();
        let mut first = Statistics::floats_shifted(shift);
        first.add_floats(&rows[..100 * d]).unwrap();
        shards.merge(&first).unwrap();
        let merged = shards.fit(1.0, &config).unwrap();
        let x = Mat::<f64>::from_fn(n, d, |i, j| rows[i * d + j] as f64);
        let in_memory = Pca::fit(x.as_ref(), &config).unwrap();
        for i in 0..4 {
            let relative = (merged.explained_variance[i] - in_memory.explained_variance[i]).abs()
                / in_memory.explained_variance[i];
            assert!(relative < 1e-10, "variance {i}: {relative}");
            for j in 0..d {
                let gap = (merged.components[(i, j)] - in_memory.components[(i, j)]).abs();
                assert!(gap < 1e-8, "component {i}, {j}: {gap}");
            }
        }
    }

    #[test]
    fn mismatched_rows_kinds_and_solvers_are_refused() {
        let mut bytes = Statistics::bytes(4);
        assert!(bytes.add_bytes(&[1, 2, 3]).is_err());
        assert!(bytes.add_floats(&[1.0; 4]).is_err());
        bytes.add_bytes(&[1, 2, 3, 4, 5, 6, 7, 9]).unwrap();
        let mut wider = Statistics::bytes(5);
        wider.add_bytes(&[1; 10]).unwrap();
        assert!(bytes.merge(&wider).is_err());
        let mut floats = Statistics::floats(4);
        floats.add_floats(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(bytes.merge(&floats).is_err());
        assert!(floats.add_floats(&[f32::NAN; 4]).is_err());
        let svd = PcaConfig::new(Components::Count(1), Solver::Svd);
        assert!(
            bytes
                .fit(255.0, &svd)
                .unwrap_err()
                .to_string()
                .contains("in memory")
        );
    }
}
