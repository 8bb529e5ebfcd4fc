//! Training-mode batch norm fused with the (leaky) ReLU that follows it, on the CPU.
//!
//! burn 0.22 computes a training batch norm from about ten generic tensor operations (a dimension
//! swap and copy, two means, a subtraction, a product, …) and its backward from as many again;
//! on Flex the 64x64x16x16 activations of the DCGAN generator took 17 ms forward where two passes
//! over memory take about 1 ms. Here one pass computes each channel's mean and variance and one
//! writes `act(γ·(x − μ)/√(σ² + ε) + β)`; the backward pass is the textbook formula in two passes.
//!
//! The module stays burn's `BatchNorm` (parameters, running statistics with its momentum, saved
//! names); [`FusedNormAct`] adds `forward_relu` / `forward_leaky_relu` to it. Off the CPU, in
//! inference, or for a frozen layer, they are `activation(norm.forward(x))`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::leaky_relu;
use rayon::prelude::*;

use super::{contiguous_f32, f32_slice};

/// Batch statistics and the fused activation. `slope` is the leaky ReLU's negative slope
/// (0 for ReLU).
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FusedBatchNorm: Backend {
    /// `(act(γ·x̂ + β), μ, σ²)` with x̂ = (x − μ)/√(σ² + ε), μ and the biased σ² per channel
    /// (dimension 1) over the batch and every position.
    fn batch_norm_act(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients of [`batch_norm_act`](Self::batch_norm_act)'s output with respect to `x`,
    /// γ and β.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_act_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Batch norm followed by an activation, fused on the CPU.
pub trait FusedNormAct {
    /// `relu(self.forward(x))`.
    fn forward_relu<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;
    /// `leaky_relu(self.forward(x), slope)`.
    fn forward_leaky_relu<const D: usize>(&self, x: Tensor<D>, slope: f64) -> Tensor<D>;
}

impl FusedNormAct for BatchNorm {
    fn forward_relu<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_leaky_relu(x, 0.0)
    }

    fn forward_leaky_relu<const D: usize>(&self, x: Tensor<D>, slope: f64) -> Tensor<D> {
        let device = x.device();
        let fused = device.is_autodiff()
            && self.training.is_enabled()
            && device.clone().inner() == Device::flex()
            && x.dtype() == DType::F32
            && D >= 2;
        if !fused {
            return leaky_relu(self.forward(x), slope);
        }
        let (output, mean, variance) = Dispatch::batch_norm_act(
            x.into_dispatch(),
            self.gamma.val().into_dispatch(),
            self.beta.val().into_dispatch(),
            self.epsilon,
            slope,
        );
        // The running statistics exactly as burn's `BatchNorm::forward` updates them.
        let momentum = self.momentum;
        let update = |state: &burn::module::RunningState<Tensor<1>>, batch| {
            let batch = Tensor::<1>::from_dispatch(batch).detach();
            let running = state.value_sync().to_device(&device);
            state.update(
                running
                    .mul_scalar(1.0 - momentum)
                    .add(batch.mul_scalar(momentum))
                    .detach(),
            );
        };
        update(&self.running_mean, mean);
        update(&self.running_var, variance);
        Tensor::from_dispatch(output)
    }
}

// ---------------------------------------------------------------------------------------------
// Flex: the two kernels.

/// `[batch, channels, positions]` of an NCHW-like shape.
fn layout(shape: &[usize]) -> [usize; 3] {
    [shape[0], shape[1], shape[2..].iter().product()]
}

fn flex(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Per channel: mean and biased variance, accumulated in f64 (two passes: a shifted one-pass sum
/// of squares loses digits when |μ| ≫ σ).
fn channel_statistics(x: &[f32], [batch, channels, positions]: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    let count = (batch * positions) as f64;
    let planes =
        |c: usize| (0..batch).map(move |n| &x[(n * channels + c) * positions..][..positions]);
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let mean = planes(c).map(|p| lane_sum(p, |v| v as f64)).sum::<f64>() / count;
            let variance = planes(c)
                .map(|p| lane_sum(p, |v| (v as f64 - mean).powi(2)))
                .sum::<f64>()
                / count;
            (mean as f32, variance as f32)
        })
        .unzip()
}

/// Σ f(v) over `values`, in eight f64 lanes: one running sum would be a chain of dependent
/// additions (one per 4 cycles); eight independent ones pipeline and vectorize.
#[inline(always)]
pub(super) fn lane_sum(values: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut lanes = [0f64; 8];
    let chunks = values.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

/// One channel's constants for the backward pass. Each loop copies them into a value of this type
/// before it starts: indexing the per-channel slices inside a loop reloaded (and bounds-checked)
/// them on every element, and the loop ran one scalar at a time.
#[derive(Clone, Copy)]
struct ChannelBackward {
    mean: f32,
    inv_std: f32,
    gamma: f32,
    beta: f32,
    slope: f32,
}

impl ChannelBackward {
    /// `(dz, x̂)`: dz = dy · act'(z) with z = γ·x̂ + β, recomputed from x rather than kept from
    /// the forward pass.
    #[inline(always)]
    fn dz(self, x: f32, dy: f32) -> (f32, f32) {
        let x_hat = (x - self.mean) * self.inv_std;
        let z = self.gamma * x_hat + self.beta;
        (if z > 0.0 { dy } else { dy * self.slope }, x_hat)
    }

    /// (Σ dz, Σ dz·x̂) over one plane, in eight f64 lanes each (see [`lane_sum`]).
    fn sums(self, x: &[f32], dy: &[f32]) -> (f64, f64) {
        let (mut dz_sum, mut dz_x_hat_sum) = ([0f64; 8], [0f64; 8]);
        let (chunks_x, chunks_dy) = (x.chunks_exact(8), dy[..x.len()].chunks_exact(8));
        let (mut rest, mut rest_x_hat) = (0.0, 0.0);
        for (&x, &dy) in chunks_x.remainder().iter().zip(chunks_dy.remainder()) {
            let (dz, x_hat) = self.dz(x, dy);
            rest += dz as f64;
            rest_x_hat += (dz * x_hat) as f64;
        }
        for (x, dy) in chunks_x.zip(chunks_dy) {
            for i in 0..8 {
                let (dz, x_hat) = self.dz(x[i], dy[i]);
                dz_sum[i] += dz as f64;
                dz_x_hat_sum[i] += (dz * x_hat) as f64;
            }
        }
        (
            dz_sum.iter().sum::<f64>() + rest,
            dz_x_hat_sum.iter().sum::<f64>() + rest_x_hat,
        )
    }

    /// dx = γ/(m·σ) · (m·dz − Σdz − x̂·Σ(dz·x̂)) over one plane, m = `count`.
    fn input_grad(self, dx: &mut [f32], x: &[f32], dy: &[f32], count: f32, sums: [f32; 2]) {
        let [dz_sum, dz_x_hat_sum] = sums;
        let factor = self.gamma * self.inv_std / count;
        for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
            let (dz, x_hat) = self.dz(x, dy);
            *dx = factor * (count * dz - dz_sum - x_hat * dz_x_hat_sum);
        }
    }
}

/// `y = act(scale·x + shift)` over one plane; a function of its own so that the constants are
/// registers and the loop vectorizes.
fn normalize_activate(y: &mut [f32], x: &[f32], scale: f32, shift: f32, slope: f32) {
    for (y, &x) in y.iter_mut().zip(x) {
        let z = x * scale + shift;
        *y = if z > 0.0 { z } else { z * slope };
    }
}

impl FusedBatchNorm for Flex {
    fn batch_norm_act(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        slope: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = x.shape().to_vec();
        let dims = layout(&shape);
        let [_, channels, positions] = dims;
        let (x, gamma, beta) = (
            contiguous_f32(&x),
            contiguous_f32(&gamma),
            contiguous_f32(&beta),
        );
        let (xs, gamma, beta) = (f32_slice(&x), f32_slice(&gamma), f32_slice(&beta));
        let (mean, variance) = channel_statistics(xs, dims);
        let slope = slope as f32;
        let mut y = vec![0.0f32; xs.len()];
        y.par_chunks_mut(positions)
            .zip(xs.par_chunks(positions))
            .enumerate()
            .for_each(|(plane, (y, x))| {
                let c = plane % channels;
                let scale = gamma[c] / (variance[c] as f64 + epsilon).sqrt() as f32;
                let shift = beta[c] - mean[c] * scale;
                normalize_activate(y, x, scale, shift, slope);
            });
        (
            flex(y, shape),
            flex(mean, vec![channels]),
            flex(variance, vec![channels]),
        )
    }

    fn batch_norm_act_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        slope: f64,
        output_grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = x.shape().to_vec();
        let [batch, channels, positions] = layout(&shape);
        let tensors = [&x, &gamma, &beta, &mean, &variance, &output_grad].map(contiguous_f32);
        let [x, gamma, beta, mean, variance, dy] = tensors.each_ref().map(f32_slice);
        let inv_std: Vec<f32> = variance
            .iter()
            .map(|v| 1.0 / (*v as f64 + epsilon).sqrt() as f32)
            .collect();
        let channel = |c: usize| ChannelBackward {
            mean: mean[c],
            inv_std: inv_std[c],
            gamma: gamma[c],
            beta: beta[c],
            slope: slope as f32,
        };
        // Σ dz and Σ dz·x̂ per channel: dβ and dγ.
        let (d_beta, d_gamma): (Vec<f32>, Vec<f32>) = (0..channels)
            .into_par_iter()
            .map(|c| {
                let constants = channel(c);
                let (mut sum, mut sum_x_hat) = (0.0f64, 0.0f64);
                for n in 0..batch {
                    let at = (n * channels + c) * positions;
                    let (s, sx) = constants.sums(&x[at..][..positions], &dy[at..][..positions]);
                    sum += s;
                    sum_x_hat += sx;
                }
                (sum as f32, sum_x_hat as f32)
            })
            .unzip();
        let count = (batch * positions) as f32;
        let mut dx = vec![0.0f32; x.len()];
        dx.par_chunks_mut(positions)
            .enumerate()
            .for_each(|(plane, out)| {
                let c = plane % channels;
                let at = plane * positions;
                let (x, dy) = (&x[at..][..positions], &dy[at..][..positions]);
                channel(c).input_grad(out, x, dy, count, [d_beta[c], d_gamma[c]]);
            });
        (
            flex(dx, shape),
            flex(d_gamma, vec![channels]),
            flex(d_beta, vec![channels]),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Autodiff: one node for the whole layer; μ and σ² leave it as constants.

impl<B: FusedBatchNorm, C: CheckpointStrategy> FusedBatchNorm for Autodiff<B, C> {
    fn batch_norm_act(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct NormActBackward;

        type State<B> = (
            NodeId,
            NodeId,
            NodeId,
            FloatTensor<B>,
            FloatTensor<B>,
            f64,
            f64,
        );

        impl<B: FusedBatchNorm> Backward<B, 3> for NormActBackward {
            type State = State<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_gamma, node_beta] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, gamma_state, beta_state, mean, variance, epsilon, slope) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let gamma =
                    checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(gamma_state);
                let beta = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(beta_state);
                let (dx, d_gamma, d_beta) = B::batch_norm_act_backward(
                    x, gamma, beta, mean, variance, epsilon, slope, grad,
                );
                for (node, grad) in [(node_x, dx), (node_gamma, d_gamma), (node_beta, d_beta)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        let prep = NormActBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let constant = <Self as AutodiffBackend>::from_inner;
        match prep {
            OpsKind::Tracked(mut prep) => {
                let states = [&x, &gamma, &beta].map(|t| prep.checkpoint(t));
                let (output, mean, variance) = B::batch_norm_act(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    slope,
                );
                let state = (
                    states[0],
                    states[1],
                    states[2],
                    mean.clone(),
                    variance.clone(),
                    epsilon,
                    slope,
                );
                let output = prep.finish(state, output);
                (output, constant(mean), constant(variance))
            }
            OpsKind::UnTracked(prep) => {
                let (output, mean, variance) = B::batch_norm_act(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    slope,
                );
                (prep.finish(output), constant(mean), constant(variance))
            }
        }
    }

    fn batch_norm_act_backward(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _beta: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _variance: FloatTensor<Self>,
        _epsilon: f64,
        _slope: f64,
        _output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("the backward pass runs on the inner backend; there is no second derivative")
    }
}
