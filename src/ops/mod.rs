//! Tensor operations of our own where burn's are slow on the CPU: convolutions, and batch norm
//! fused with its activation. Each is a burn backend extension with its own backward pass, and
//! each is tested against burn's operation it replaces (tests/fast_ops.rs).

pub mod batch_norm;
pub mod conv;
pub mod conv_cpu;

pub use batch_norm::FusedNormAct;
pub use conv::{FastConv, conv_transpose2d, conv2d};
