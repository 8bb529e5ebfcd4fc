//! Tensor operations of our own where burn's are slow on the CPU: convolutions, batch norm
//! fused with its activation, leaky ReLU, and pooling for inference. Each is a burn backend
//! extension (the first three with their own backward pass) tested against the burn operation it
//! replaces (tests/fast_ops.rs).

pub mod activation;
pub mod batch_norm;
pub mod conv;
pub mod conv_cpu;
pub mod pool;

pub use activation::leaky_relu;
pub use batch_norm::FusedNormAct;
pub use conv::{FastConv, conv_transpose2d, conv2d};

/// Makes the calling thread one of the workers of rayon's global pool (which then starts one
/// thread fewer), so that the parallel loops of these ops start where the training loop runs.
///
/// Called from outside the pool, each parallel loop queues a job, wakes the workers and puts the
/// caller to sleep until they are done; one DCGAN iteration makes hundreds of such round trips
/// (W2 of the benchmark: 270,000 context switches in 15 s on 2 cores, 17 % of the time in the
/// kernel). From inside, the caller runs part of the loop itself and the others steal the rest.
/// Call it first thing, once, from the thread that will drive the work, as the binary's `main`
/// does; it returns false (and changes nothing) once the global pool exists.
pub fn join_thread_pool() -> bool {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .is_ok()
}
