//! Tensor operations of our own where burn's are slow on the CPU: convolutions with their bias
//! and activation, batch norm fused with its activation, group norm fused with SiLU, leaky ReLU,
//! the Bernoulli likelihood's cross-entropy, and pooling for inference. Each is a burn backend extension (all but pooling
//! with their own backward pass) tested against the burn operations it replaces
//! (tests/fast_ops.rs).

pub mod activation;
pub mod batch_norm;
pub mod bce;
pub mod conv;
pub mod conv_cpu;
pub mod group_norm;
pub mod pool;

pub use activation::leaky_relu;
pub use batch_norm::FusedNormAct;
pub use conv::{Activation, FastConv, conv_transpose2d, conv2d};
pub use group_norm::FusedGroupNormSilu;

/// `f()` compiled for the widest vector instructions this CPU has (AVX-512, or AVX2 with FMA),
/// chosen at run time: the crate is built for baseline x86-64, whose SSE2 runs the elementwise
/// loops of these kernels 4 floats wide. `f` must be `#[inline(always)]` for its body to be
/// compiled with them.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// A contiguous copy of `t` where it is strided, `t` itself (shared storage) where it is not:
/// the kernels of these ops read their inputs as plain slices.
fn contiguous_f32(t: &burn::backend::flex::FlexTensor) -> burn::backend::flex::FlexTensor {
    t.to_contiguous()
}

/// The floats of a contiguous f32 tensor (see [`contiguous_f32`]).
fn f32_slice(t: &burn::backend::flex::FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}
