//! Per-thread scratch buffers: `col` of a convolution is megabytes, and allocating it afresh
//! each call costs a zeroing pass as long as the copy.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

thread_local! {
    /// Buffers of earlier calls, kept for the next: `col` of a convolution is megabytes, and
    /// allocating it afresh each call costs a zeroing pass (or page faults) as long as the copy.
    static SCRATCH_POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers kept per thread (a forward or backward pass holds at most three at once).
pub(super) const SCRATCH_KEPT: usize = 4;

/// A buffer of `len` floats from this thread's pool, back in the pool when dropped. Its contents
/// are whatever the last user left: every user writes all of it before reading.
pub(super) struct Scratch {
    pub(super) buffer: Vec<f32>,
    pub(super) len: usize,
}

impl Scratch {
    pub(super) fn new(len: usize) -> Self {
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
