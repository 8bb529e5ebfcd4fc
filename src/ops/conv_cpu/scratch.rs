//! Scratch buffers shared by all threads: `col` of a convolution is megabytes, and allocating
//! it afresh each call costs a zeroing pass as long as the copy.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers of earlier calls, kept for the next: `col` of a convolution is megabytes, and
/// allocating it afresh each call costs a zeroing pass (or page faults) as long as the copy.
/// One pool for all threads: a unit's `col` kept by a forward pass on one thread comes back
/// from the backward pass on another (see `Columns`).
static SCRATCH_POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// Buffers kept: each thread's pass holds at most three at once, and a training step's forward
/// passes keep one `col` per unit until the backward pass.
pub(super) const SCRATCH_KEPT: usize = 32;

fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<f32>>) -> R) -> R {
    f(&mut SCRATCH_POOL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A buffer of `len` floats from the pool, back in the pool when dropped. Its contents
/// are whatever the last user left: every user writes all of it before reading.
pub(super) struct Scratch {
    pub(super) buffer: Vec<f32>,
    pub(super) len: usize,
}

impl Scratch {
    pub(super) fn new(len: usize) -> Self {
        let mut buffer = with_pool(|pool| {
            // The smallest kept buffer that holds `len`, else the largest (grown), so that
            // a small request neither takes nor grows a large one needlessly.
            let fits = (0..pool.len())
                .filter(|&i| pool[i].len() >= len)
                .min_by_key(|&i| pool[i].len());
            let pick = fits.or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].len()))?;
            Some(pool.swap_remove(pick))
        })
        .unwrap_or_default();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        Self { buffer, len }
    }

    /// The whole buffer (at least `len` floats), out of the pool until [`Scratch::recycle`]
    /// brings it back.
    pub(super) fn into_vec(mut self) -> Vec<f32> {
        std::mem::take(&mut self.buffer)
    }

    /// Puts a buffer from [`Scratch::into_vec`] back into the pool.
    pub(super) fn recycle(buffer: Vec<f32>) {
        with_pool(|pool| {
            if pool.len() < SCRATCH_KEPT {
                pool.push(buffer);
            }
        });
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
        if buffer.capacity() > 0 {
            Scratch::recycle(buffer);
        }
    }
}

/// A vector of `len` floats for a kernel that writes every one of them before anything reads
/// them, without the zeroing pass `vec![0.0; len]` makes: the outputs of a training step's
/// convolutions and activation gradients are megabytes, and that pass ran on one thread before
/// each parallel kernel (ESPCN's step: 11 % more images/s without it).
///
/// # Safety
/// `write` must write all `len` floats before reading any of them.
pub(crate) unsafe fn written_vec(len: usize, write: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut values: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: the capacity is `len` floats, allocated and properly aligned; the caller writes
    // each before reading it, and `set_len` follows only once all are written.
    unsafe {
        let slice = std::slice::from_raw_parts_mut(values.as_mut_ptr(), len);
        write(slice);
        values.set_len(len);
    }
    values
}
