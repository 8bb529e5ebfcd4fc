//! Leaky ReLU as one backend operation with its own backward pass.
//!
//! burn builds `leaky_relu` from a comparison, a scaled copy and a `mask_where`, and its backward
//! pass from two more masked copies and two zero tensors; on Flex those run on one thread. After
//! the DCGAN discriminator's first convolution (the one layer without batch norm, so without
//! [`FusedNormAct`](super::FusedNormAct)) they took 4 % of a W2 iteration's CPU time with the
//! second core idle, and half of its page faults. Here the forward pass is one parallel pass over
//! the input and the backward pass one over the input and the output gradient.
//!
//! The gradient at exactly 0 is 1, as burn's (`x < 0` selects the slope).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ActivationOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

/// `leaky_relu` and the gradient of its input. The default bodies are burn's operations.
#[backend_extension(Flex, Cube: cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda")), Autodiff)]
pub(crate) trait FusedLeakyRelu: Backend {
    /// `x` where `x ≥ 0`, `slope · x` elsewhere.
    fn fused_leaky_relu(x: FloatTensor<Self>, slope: f64) -> FloatTensor<Self> {
        Self::leaky_relu(x, slope.into())
    }

    /// `output_grad` where `x ≥ 0`, `slope · output_grad` elsewhere.
    fn fused_leaky_relu_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        slope: f64,
    ) -> FloatTensor<Self> {
        masked_gradient::<Self>(x, output_grad, slope)
    }
}

/// The backward pass from burn's operations.
fn masked_gradient<B: Backend>(
    x: FloatTensor<B>,
    output_grad: FloatTensor<B>,
    slope: f64,
) -> FloatTensor<B> {
    let bool_dtype = burn::backend::get_or_init_device_settings::<B>(&x.device()).bool_dtype;
    let negative = B::float_lower_elem(x, 0f32.into(), bool_dtype);
    let scaled = B::float_mul_scalar(output_grad.clone(), slope.into());
    B::float_mask_where(output_grad, negative, scaled)
}

/// `burn::tensor::activation::leaky_relu`, as one operation (see the module documentation).
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_leaky_relu(x.into_dispatch(), slope))
}

// ---------------------------------------------------------------------------------------------
// Flex: one parallel pass each way.

/// Floats per parallel task: enough to amortize a task, small enough to share two cores.
const TASK: usize = 1 << 14;

/// A new tensor of `shape` from `kernel(out, a, b)` on matching parallel slices of the output and
/// the two inputs. The kernel copies its constants into locals before its loop: a closure called
/// per element reloaded the captured slope from memory on every element, a load inside the
/// branch the compiler may not hoist, and the loop ran one scalar at a time.
fn map_f32(
    inputs: [&FlexTensor; 2],
    shape: Vec<usize>,
    kernel: impl Fn(&mut [f32], &[f32], &[f32]) + Sync,
) -> FlexTensor {
    let [a, b] = inputs.map(FlexTensor::to_contiguous);
    let (a, b) = (
        a.as_slice::<f32>().expect("a contiguous f32 tensor"),
        b.as_slice::<f32>().expect("a contiguous f32 tensor"),
    );
    let mut out = vec![0.0f32; a.len()];
    out.par_chunks_mut(TASK)
        .zip(a.par_chunks(TASK).zip(b.par_chunks(TASK)))
        .for_each(|(out, (a, b))| kernel(out, a, b));
    FlexTensor::from_data(TensorData::new(out, shape))
}

impl FusedLeakyRelu for Flex {
    fn fused_leaky_relu(x: FlexTensor, slope: f64) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return <Flex as ActivationOps<Flex>>::leaky_relu(x, slope.into());
        }
        let slope = slope as f32;
        let shape = x.shape().to_vec();
        map_f32([&x, &x], shape, move |out, x, _| {
            let slope = slope;
            for (out, &x) in out.iter_mut().zip(x) {
                *out = if x < 0.0 { x * slope } else { x };
            }
        })
    }

    fn fused_leaky_relu_backward(x: FlexTensor, output_grad: FlexTensor, slope: f64) -> FlexTensor {
        let shape = x.shape().to_vec();
        assert_eq!(shape, output_grad.shape().to_vec(), "leaky_relu backward");
        let grad_dtype = output_grad.dtype();
        if x.dtype() != DType::F32 || grad_dtype != DType::F32 {
            return masked_gradient::<Flex>(x, output_grad, slope);
        }
        let slope = slope as f32;
        map_f32([&x, &output_grad], shape, move |out, x, dy| {
            let slope = slope;
            for ((out, &x), &dy) in out.iter_mut().zip(x).zip(dy) {
                *out = if x < 0.0 { dy * slope } else { dy };
            }
        })
    }
}

#[cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda"))]
impl FusedLeakyRelu for burn::backend::Cube {}

// ---------------------------------------------------------------------------------------------
// Autodiff: one node, the input kept for the backward pass.

impl<B: FusedLeakyRelu, C: CheckpointStrategy> FusedLeakyRelu for Autodiff<B, C> {
    fn fused_leaky_relu(x: FloatTensor<Self>, slope: f64) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LeakyReluBackward;

        impl<B: FusedLeakyRelu> Backward<B, 1> for LeakyReluBackward {
            type State = (NodeId, f64);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, slope) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::fused_leaky_relu_backward(x, grad, slope));
                }
            }
        }

        match LeakyReluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let output = B::fused_leaky_relu(x.into_primitive(), slope);
                prep.finish((x_state, slope), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_leaky_relu(x.into_primitive(), slope)),
        }
    }

    fn fused_leaky_relu_backward(
        _x: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
        _slope: f64,
    ) -> FloatTensor<Self> {
        unreachable!("the backward pass runs on the inner backend; there is no second derivative")
    }
}
