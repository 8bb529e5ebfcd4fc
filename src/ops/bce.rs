//! The Bernoulli likelihood's binary cross-entropy from logits, summed per image, as one backend
//! operation with its own backward pass.
//!
//! burn builds max(l, 0) − l·x + log(1 + e^−|l|) and its sum from nine elementwise operations,
//! each a pass over [batch, pixels] with an output of its own, and its backward pass from as
//! many again. Here the forward pass is one parallel pass over the logits and targets, and the
//! backward pass one more: the gradient at the logits is (σ(l) − x)·g, with g the gradient at
//! the image's sum. W1 (the MLP VAE step) +14.9 % images/s, all 10 alternating pairs faster;
//! W3 +2 % (noise).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::{contiguous_f32, f32_slice};

/// The per-image binary cross-entropy and the gradient at its logits. The default bodies are
/// burn's operations.
#[backend_extension(Flex, Cube: cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda")), Autodiff)]
pub(crate) trait FusedBce: Backend {
    /// Σ over pixels of max(l, 0) − l·x + log(1 + e^−|l|): `logits`, `targets` [batch, pixels]
    /// → [batch].
    fn fused_bce(logits: FloatTensor<Self>, targets: FloatTensor<Self>) -> FloatTensor<Self> {
        bce_by_ops::<Self>(logits, targets)
    }

    /// The gradient at the logits, (σ(l) − x)·g, given `grad` [batch] at the sums.
    fn fused_bce_backward(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        bce_backward_by_ops::<Self>(logits, targets, grad)
    }
}

fn bce_by_ops<B: Backend>(logits: FloatTensor<B>, targets: FloatTensor<B>) -> FloatTensor<B> {
    let batch = logits.shape().dims::<2>()[0];
    let positive = B::float_clamp_min(logits.clone(), 0f32.into());
    let crossed = B::float_mul(logits.clone(), targets);
    let decay = B::float_exp(B::float_neg(B::float_abs(logits)));
    let log_term = B::float_log(B::float_add_scalar(decay, 1f32.into()));
    let per_pixel = B::float_add(B::float_sub(positive, crossed), log_term);
    B::float_reshape(B::float_sum_dim(per_pixel, 1), Shape::new([batch]))
}

/// `grad` [batch] times `t` [batch, pixels], row by row.
fn rows_times<B: Backend>(t: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let shape = t.shape();
    let batch = shape.dims::<2>()[0];
    let grad = B::float_reshape(grad, Shape::new([batch, 1]));
    B::float_mul(t, B::float_expand(grad, shape))
}

fn bce_backward_by_ops<B: Backend>(
    logits: FloatTensor<B>,
    targets: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    rows_times::<B>(B::float_sub(B::sigmoid(logits), targets), grad)
}

/// `FusedBce::fused_bce` on tensors: `logits`, `targets` `[batch, pixels]` → `[batch]`.
pub fn bernoulli_nll(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    Tensor::from_dispatch(Dispatch::fused_bce(
        logits.into_dispatch(),
        targets.into_dispatch(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Flex: one parallel pass each way, an image per task.

/// e^−|l|, from which both the loss and σ(l) follow without overflow.
fn decay(l: f32) -> f32 {
    (-l.abs()).exp()
}

impl FusedBce for Flex {
    fn fused_bce(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
        let shape = logits.shape();
        if logits.dtype() != DType::F32 || targets.dtype() != DType::F32 || shape != targets.shape()
        {
            return bce_by_ops::<Flex>(logits, targets);
        }
        let [batch, pixels] = shape.dims::<2>();
        let (logits, targets) = (contiguous_f32(&logits), contiguous_f32(&targets));
        let (l, x) = (f32_slice(&logits), f32_slice(&targets));
        let sums: Vec<f32> = (0..batch)
            .into_par_iter()
            .map(|i| {
                let (l, x) = (&l[i * pixels..][..pixels], &x[i * pixels..][..pixels]);
                l.iter()
                    .zip(x)
                    .map(|(&l, &x)| l.max(0.0) - l * x + (decay(l) + 1.0).ln())
                    .sum()
            })
            .collect();
        FlexTensor::from_data(TensorData::new(sums, [batch]))
    }

    fn fused_bce_backward(logits: FlexTensor, targets: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let all_f32 = [&logits, &targets, &grad]
            .iter()
            .all(|t| t.dtype() == DType::F32);
        if !all_f32 || logits.shape() != targets.shape() {
            return bce_backward_by_ops::<Flex>(logits, targets, grad);
        }
        let [batch, pixels] = logits.shape().dims::<2>();
        let [logits, targets, grad] = [&logits, &targets, &grad].map(contiguous_f32);
        let (l, x, g) = (f32_slice(&logits), f32_slice(&targets), f32_slice(&grad));
        assert_eq!((x.len(), g.len()), (batch * pixels, batch), "bce backward");
        let mut dl = vec![0.0f32; batch * pixels];
        dl.par_chunks_mut(pixels.max(1))
            .enumerate()
            .for_each(|(i, dl)| {
                let (l, x, g) = (&l[i * pixels..][..pixels], &x[i * pixels..][..pixels], g[i]);
                for ((d, &l), &x) in dl.iter_mut().zip(l).zip(x) {
                    let e = decay(l);
                    let sigmoid = if l >= 0.0 {
                        1.0 / (1.0 + e)
                    } else {
                        e / (1.0 + e)
                    };
                    *d = (sigmoid - x) * g;
                }
            });
        FlexTensor::from_data(TensorData::new(dl, [batch, pixels]))
    }
}

#[cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda"))]
impl FusedBce for burn::backend::Cube {}

// ---------------------------------------------------------------------------------------------
// Autodiff: one node, logits and targets kept for the backward pass.

impl<B: FusedBce, C: CheckpointStrategy> FusedBce for Autodiff<B, C> {
    fn fused_bce(logits: FloatTensor<Self>, targets: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct BceBackward;

        impl<B: FusedBce> Backward<B, 2> for BceBackward {
            type State = (NodeId, NodeId);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_logits, node_targets] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (logits_state, targets_state) = ops.state;
                let l = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(logits_state);
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(targets_state);
                if let Some(node) = node_targets {
                    // ∂/∂x = −l·g, for the rare caller whose targets are tracked.
                    let dx = rows_times::<B>(B::float_neg(l.clone()), grad.clone());
                    grads.register::<B>(node.id, dx);
                }
                if let Some(node) = node_logits {
                    grads.register::<B>(node.id, B::fused_bce_backward(l, x, grad));
                }
            }
        }

        match BceBackward
            .prepare::<C>([logits.node(), targets.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&logits), prep.checkpoint(&targets));
                let output = B::fused_bce(logits.into_primitive(), targets.into_primitive());
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_bce(
                logits.into_primitive(),
                targets.into_primitive(),
            )),
        }
    }

    fn fused_bce_backward(
        _logits: FloatTensor<Self>,
        _targets: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unreachable!("the backward pass runs on the inner backend; there is no second derivative")
    }
}
