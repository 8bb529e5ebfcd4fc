//! Seeds: one `--seed` drives every random draw of a run. Each use (initialization, data order,
//! a training step, evaluation, sampling) gets its own stream by mixing the seed with a domain
//! and a position, so resuming at step s draws exactly what an uninterrupted run drew there.

/// Mixes a seed and a stream position into an independent seed (splitmix64's finalizer).
pub(crate) fn mix(seed: u64, domain: u64, position: u64) -> u64 {
    let mut z = seed
        ^ domain.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ position.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Random-stream domains, so data order, steps and evaluation never share draws.
pub mod stream {
    pub const INIT: u64 = 1;
    pub const SHUFFLE: u64 = 2;
    pub const STEP: u64 = 3;
    pub const EVAL: u64 = 4;
    pub const SAMPLE: u64 = 5;
    pub const MASK: u64 = 6;
    /// Diffusion's time steps, drawn on the host.
    pub const TIME: u64 = 7;
    /// An MPI rank's own draws within a step (`train::parallel::rank_gradients`).
    pub const RANK: u64 = 8;
}
