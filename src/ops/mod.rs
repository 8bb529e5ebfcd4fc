//! Tensor operations of our own where burn's are slow on the CPU: convolutions, batch norm
//! fused with its activation, and pooling for inference. Each is a burn backend extension (the
//! first two with their own backward pass) tested against the burn operation it replaces
//! (tests/fast_ops.rs).

pub mod batch_norm;
pub mod conv;
pub mod conv_cpu;
pub mod pool;

pub use batch_norm::FusedNormAct;
pub use conv::{FastConv, conv_transpose2d, conv2d};
