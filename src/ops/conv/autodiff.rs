//! Autodiff: one node per convolution, its backward pass on the inner backend's products.

use super::super::conv_cpu::{self, Columns};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use std::sync::Arc;

use super::flex::{
    as_flex, flex_conv2d_keeping_columns, flex_tensor, forward_geometry, same_type, with_floats,
};
use super::*;

/// Which of the two operations a node recorded, with its options.
#[derive(Debug, Clone)]
enum ConvKind {
    Conv(ConvOptions<2>),
    Transposed(ConvTransposeOptions<2>),
}

impl ConvKind {
    fn forward<B: GemmConv>(
        &self,
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        bias: Option<FloatTensor<B>>,
        activation: Activation,
    ) -> FloatTensor<B> {
        match (self.clone(), bias) {
            (ConvKind::Conv(options), None) => B::gemm_conv2d(x, weight, activation, options),
            (ConvKind::Conv(options), Some(bias)) => {
                B::gemm_conv2d_biased(x, weight, bias, activation, options)
            }
            (ConvKind::Transposed(options), None) => {
                B::gemm_conv_transpose2d(x, weight, activation, options)
            }
            (ConvKind::Transposed(options), Some(bias)) => {
                B::gemm_conv_transpose2d_biased(x, weight, bias, activation, options)
            }
        }
    }

    fn x_backward<B: GemmConv>(
        &self,
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> FloatTensor<B> {
        match self.clone() {
            ConvKind::Conv(options) => B::gemm_conv2d_x_backward(x, weight, grad, options),
            ConvKind::Transposed(options) => {
                B::gemm_conv_transpose2d_x_backward(weight, grad, options)
            }
        }
    }

    /// [`Self::forward`], keeping `col(x)` for the weight gradient where the inner backend is
    /// Flex and our kernels take the convolution.
    fn forward_keeping_columns<B: GemmConv>(
        &self,
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        bias: Option<FloatTensor<B>>,
        activation: Activation,
    ) -> (FloatTensor<B>, Option<Arc<Columns>>) {
        if let ConvKind::Conv(options) = self {
            // `Some(None)`: no bias; `None`: a bias that is not Flex's.
            let bias_flex = match &bias {
                None => Some(None),
                Some(b) => as_flex::<B>(b).map(Some),
            };
            if let (Some(fx), Some(fw), Some(fb)) =
                (as_flex::<B>(&x), as_flex::<B>(&weight), bias_flex)
            {
                let kept = flex_conv2d_keeping_columns(&fx, &fw, fb.as_ref(), activation, options);
                if let Some((y, columns)) = kept
                    && let Some(y) = same_type::<FloatTensor<B>>(y)
                {
                    return (y, columns.map(Arc::new));
                }
            }
        }
        (self.forward::<B>(x, weight, bias, activation), None)
    }

    fn weight_backward<B: GemmConv>(
        &self,
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
        columns: Option<Arc<Columns>>,
    ) -> FloatTensor<B> {
        if let (ConvKind::Conv(options), Some(columns)) = (self, columns) {
            let flex = as_flex::<B>;
            if let (Some(fx), Some(fw), Some(fdy)) = (flex(&x), flex(&weight), flex(&grad))
                && let Some(g) = forward_geometry(&fx, &fw, options)
            {
                let dw = with_floats(&fx, |x| {
                    with_floats(&fdy, |dy| {
                        conv_cpu::conv_weight_grad_from(&g, x, dy, Some(&columns))
                    })
                });
                let shape = [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]];
                if let Some(dw) = same_type::<FloatTensor<B>>(flex_tensor(dw, shape)) {
                    return dw;
                }
            }
        }
        match self.clone() {
            ConvKind::Conv(options) => B::gemm_conv2d_weight_backward(x, weight, grad, options),
            ConvKind::Transposed(options) => {
                B::gemm_conv_transpose2d_weight_backward(x, weight, grad, options)
            }
        }
    }
}

/// What the backward pass needs: the checkpointed input and weight, the operation, the
/// activation with its output, if one followed, and `col(x)` where the forward pass kept it.
type ConvState<B> = (
    NodeId,
    NodeId,
    ConvKind,
    Option<(Activation, FloatTensor<B>)>,
    Option<Arc<Columns>>,
);

/// The gradient at the convolution's own output: `grad` back through the activation, if any.
fn pre_activation_grad<B: GemmConv>(
    grad: FloatTensor<B>,
    activated: Option<(Activation, FloatTensor<B>)>,
) -> FloatTensor<B> {
    match activated {
        Some((activation, output)) => B::gemm_activation_backward(activation, output, grad),
        None => grad,
    }
}

/// The input and weight gradients of a recorded convolution, for those of its parents (their
/// node ids) that are tracked, from the gradient at its output before any ReLU. `grad` is
/// consumed by the last product that needs it.
fn register_conv_grads<B: GemmConv>(
    [node_x, node_weight]: [Option<NodeId>; 2],
    (x_state, weight_state, kind, columns): (NodeId, NodeId, ConvKind, Option<Arc<Columns>>),
    grad: FloatTensor<B>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) {
    let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
    let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
    if let Some(node) = node_x {
        let dx = kind.x_backward::<B>(x.clone(), weight.clone(), grad.clone());
        grads.register::<B>(node, dx);
    }
    if let Some(node) = node_weight {
        grads.register::<B>(node, kind.weight_backward::<B>(x, weight, grad, columns));
    }
}

/// A convolution without a bias: parents input and weight.
#[derive(Debug)]
struct ConvBackward;

impl<B: GemmConv> Backward<B, 2> for ConvBackward {
    type State = ConvState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let (x_state, weight_state, kind, activated, columns) = ops.state;
        let grad = pre_activation_grad::<B>(grads.consume::<B>(&ops.node), activated);
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        let state = (x_state, weight_state, kind, columns);
        register_conv_grads::<B>(parents, state, grad, grads, checkpointer);
    }
}

/// A convolution with its bias added inside: parents input, weight and bias.
#[derive(Debug)]
struct ConvBiasBackward;

impl<B: GemmConv> Backward<B, 3> for ConvBiasBackward {
    type State = ConvState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let (x_state, weight_state, kind, activated, columns) = ops.state;
        let grad = pre_activation_grad::<B>(grads.consume::<B>(&ops.node), activated);
        let [node_x, node_weight, node_bias] = ops.parents;
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::gemm_conv_bias_backward(grad.clone()));
        }
        let parents = [node_x, node_weight].map(|node| node.map(|node| node.id));
        let state = (x_state, weight_state, kind, columns);
        register_conv_grads::<B>(parents, state, grad, grads, checkpointer);
    }
}

/// The activation and its output, kept for the backward pass where there is one.
fn activation_state<T: Clone>(activation: Activation, output: &T) -> Option<(Activation, T)> {
    (activation != Activation::Identity).then(|| (activation, output.clone()))
}

/// The forward pass of a tracked node on the inner backend, keeping `col(x)` when the weight
/// will want its gradient (`keep`).
fn tracked_forward<B: GemmConv, C: CheckpointStrategy>(
    kind: &ConvKind,
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<B>>,
    activation: Activation,
    keep: bool,
) -> (FloatTensor<B>, Option<Arc<Columns>>) {
    let (x, weight) = (x.into_primitive(), weight.into_primitive());
    if keep {
        kind.forward_keeping_columns::<B>(x, weight, bias, activation)
    } else {
        (kind.forward::<B>(x, weight, bias, activation), None)
    }
}

/// Runs `kind` (with `bias`, then `activation`) on the inner backend and, when an input is
/// tracked, records its node.
fn record<B: GemmConv, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    activation: Activation,
    kind: ConvKind,
) -> FloatTensor<Autodiff<B, C>> {
    let Some(bias) = bias else {
        return match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, weight_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let keep = Autodiff::<B, C>::float_is_require_grad(&weight);
                let (output, columns) =
                    tracked_forward::<B, C>(&kind, x, weight, None, activation, keep);
                let activated = activation_state(activation, &output);
                prep.finish((x_state, weight_state, kind, activated, columns), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(kind.forward::<B>(
                x.into_primitive(),
                weight.into_primitive(),
                None,
                activation,
            )),
        };
    };
    match ConvBiasBackward
        .prepare::<C>([x.node(), weight.node(), bias.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let (x_state, weight_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
            let keep = Autodiff::<B, C>::float_is_require_grad(&weight);
            let bias = Some(bias.into_primitive());
            let (output, columns) =
                tracked_forward::<B, C>(&kind, x, weight, bias, activation, keep);
            let activated = activation_state(activation, &output);
            prep.finish((x_state, weight_state, kind, activated, columns), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(kind.forward::<B>(
            x.into_primitive(),
            weight.into_primitive(),
            Some(bias.into_primitive()),
            activation,
        )),
    }
}

impl<B: GemmConv, C: CheckpointStrategy> GemmConv for Autodiff<B, C> {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        activation: Activation,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        record::<B, C>(x, weight, None, activation, ConvKind::Conv(options))
    }

    fn gemm_conv2d_biased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Activation,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        record::<B, C>(x, weight, Some(bias), activation, ConvKind::Conv(options))
    }

    fn gemm_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        activation: Activation,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        record::<B, C>(x, weight, None, activation, ConvKind::Transposed(options))
    }

    fn gemm_conv_transpose2d_biased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Activation,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        record::<B, C>(
            x,
            weight,
            Some(bias),
            activation,
            ConvKind::Transposed(options),
        )
    }
}
