//! Group norm fused with the SiLU that follows it, on the CPU: the pair in every residual block
//! of the diffusion denoiser.
//!
//! Wu & He 2018's group norm normalizes each image's channels in G groups, x̂ = (x − μ)/√(σ² + ε)
//! with μ and σ² over a group's channels and positions, then scales and shifts per channel,
//! z = γ·x̂ + β; SiLU (Elfwing et al. 2018) is y = z·sigmoid(z). burn 0.22 builds the pair from a
//! dozen generic operations each way and computes sigmoid with libm's scalar `expf`: 30 % of a
//! denoiser training step went there. Here a group, one contiguous block of memory, is read
//! twice for its statistics and once to write y; the backward pass reads x and dy twice.
//! sigmoid(z) = (1 + tanh(z/2))/2 with the convolutions' vectorized tanh (within 4.1e-7).
//!
//! SiLU'(z) = s·(1 + z·(1 − s)) with s = sigmoid(z); with dz = dy·SiLU'(z) and m elements per
//! group, dβ = Σ dz, dγ = Σ dz·x̂ (per channel), and
//! dx = (1/σ)·(γ·dz − mean(γ·dz) − x̂·mean(γ·dz·x̂)) over the group.
//!
//! A shift s per image and channel may be added to x first (the denoiser's time embedding): the
//! channel is then normalized about μ − s, and its gradient is the channel's sum of dx.
//!
//! The module stays burn's `GroupNorm`; [`FusedGroupNormSilu::forward_silu`] is
//! `silu(norm.forward(x))` (and `forward_silu_shifted` the same of x + s), fused on Flex (with
//! or without autodiff) for f32 affine layers.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::GroupNorm;
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::{DType, Slice};
use rayon::prelude::*;

use super::batch_norm::lane_sum;
use super::conv_cpu::epilogue::tanh;
use super::conv_cpu::scratch::written_vec;
use super::{contiguous_f32, f32_slice};

/// Group statistics and the fused SiLU.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FusedGroupNorm: Backend {
    /// `(silu(γ·x̂ + β), μ, 1/σ)` for x + `shift` (`[n, c]`, one value per image and channel),
    /// μ and 1/√(σ² + ε) per image and group (`[n·groups]`).
    fn group_norm_silu(
        x: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients of [`group_norm_silu`](Self::group_norm_silu)'s output with respect to `x`,
    /// the shift, and γ and β as the rows of one `[2, c]` tensor (an extension op returns at most
    /// three).
    #[allow(clippy::too_many_arguments)]
    fn group_norm_silu_backward(
        x: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        inv_std: FloatTensor<Self>,
        groups: usize,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Group norm followed by SiLU, fused on the CPU.
pub trait FusedGroupNormSilu {
    /// `silu(self.forward(x))`.
    fn forward_silu(&self, x: Tensor<4>) -> Tensor<4>;
    /// `silu(self.forward(x + shift))` with `shift` `[n, c]` one value per image and channel
    /// (a diffusion block's time embedding): the add is folded into the normalization.
    fn forward_silu_shifted(&self, x: Tensor<4>, shift: Tensor<2>) -> Tensor<4>;
}

impl FusedGroupNormSilu for GroupNorm {
    fn forward_silu(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, ..] = x.dims();
        let no_shift = Tensor::<2>::zeros([n, c], &x.device());
        self.forward_silu_shifted(x, no_shift)
    }

    fn forward_silu_shifted(&self, x: Tensor<4>, shift: Tensor<2>) -> Tensor<4> {
        let fused = x.device().inner() == Device::flex() && x.dtype() == DType::F32;
        let (Some(gamma), Some(beta), true) = (&self.gamma, &self.beta, fused) else {
            let [n, c] = shift.dims();
            return silu(self.forward(x + shift.reshape([n, c, 1, 1])));
        };
        let (output, _, _) = Dispatch::group_norm_silu(
            x.into_dispatch(),
            shift.into_dispatch(),
            gamma.val().into_dispatch(),
            beta.val().into_dispatch(),
            self.num_groups,
            self.epsilon,
        );
        Tensor::from_dispatch(output)
    }
}

// ---------------------------------------------------------------------------------------------
// Flex: the two kernels.

fn flex(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// silu(z) and its derivative's factor sigmoid(z).
#[inline(always)]
fn sigmoid(z: f32) -> f32 {
    0.5 + 0.5 * tanh(0.5 * z)
}

/// One group's constants: each loop copies them into locals so they stay in registers.
#[derive(Clone, Copy)]
struct Group {
    mean: f32,
    inv_std: f32,
}

// The loops below index plainly: they run inside `super::vectorized`, whose wider instructions
// reach only code inlined into it, and an iterator adapter's closure (`map`'s, `zip`'s `fold`)
// stayed a function of its own, compiled for baseline x86-64 (7 % of a denoiser step).

/// `y = silu(x·scale + shift)` over one channel's positions.
#[inline(always)]
fn normalize_silu(y: &mut [f32], x: &[f32], scale: f32, shift: f32) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    for i in 0..n {
        let z = x[i] * scale + shift;
        y[i] = z * sigmoid(z);
    }
}

/// Writes dz = dy·SiLU'(z) into `dz` over one channel; returns (Σ dz, Σ dz·x̂). The sums run in
/// 16 f32 lanes, one vector register each (a channel is at most a few thousand floats, so each
/// lane adds a few hundred); f64 lanes beside f32 work made the loop scalar.
#[inline(always)]
fn silu_grad(
    dz: &mut [f32],
    x: &[f32],
    dy: &[f32],
    group: Group,
    gamma: f32,
    beta: f32,
) -> (f64, f64) {
    const LANES: usize = 16;
    let Group { mean, inv_std } = group;
    let n = dz.len().min(x.len()).min(dy.len());
    let (dz, x, dy) = (&mut dz[..n], &x[..n], &dy[..n]);
    let (mut sum, mut sum_x_hat) = ([0f32; LANES], [0f32; LANES]);
    let full = n - n % LANES;
    let (dz_tail, x_tail, dy_tail) = (full..n, full..n, full..n);
    // Fixed-size chunks: no bounds checks inside, so the 16 lanes become one register.
    let chunks = dz[..full]
        .chunks_exact_mut(LANES)
        .zip(x[..full].chunks_exact(LANES))
        .zip(dy[..full].chunks_exact(LANES));
    for ((dz, x), dy) in chunks {
        let dz: &mut [f32; LANES] = dz.try_into().expect("LANES floats");
        let x: &[f32; LANES] = x.try_into().expect("LANES floats");
        let dy: &[f32; LANES] = dy.try_into().expect("LANES floats");
        for i in 0..LANES {
            let x_hat = (x[i] - mean) * inv_std;
            let z = gamma * x_hat + beta;
            let s = sigmoid(z);
            let g = dy[i] * s * (1.0 + z * (1.0 - s));
            dz[i] = g;
            sum[i] += g;
            sum_x_hat[i] += g * x_hat;
        }
    }
    for ((dz, &x), &dy) in dz[dz_tail].iter_mut().zip(&x[x_tail]).zip(&dy[dy_tail]) {
        let x_hat = (x - mean) * inv_std;
        let z = gamma * x_hat + beta;
        let s = sigmoid(z);
        let g = dy * s * (1.0 + z * (1.0 - s));
        *dz = g;
        sum[0] += g;
        sum_x_hat[0] += g * x_hat;
    }
    let total = |lanes: [f32; LANES]| lanes.iter().map(|&v| v as f64).sum::<f64>();
    (total(sum), total(sum_x_hat))
}

/// dx = (1/σ)·(γ·dz − shift − x̂·slope) in place over one channel, `dx` holding dz.
#[inline(always)]
fn input_grad(dx: &mut [f32], x: &[f32], group: Group, gamma: f32, shift: f32, slope: f32) {
    let Group { mean, inv_std } = group;
    let n = dx.len().min(x.len());
    let (dx, x) = (&mut dx[..n], &x[..n]);
    for i in 0..n {
        let x_hat = (x[i] - mean) * inv_std;
        dx[i] = inv_std * (gamma * dx[i] - shift - x_hat * slope);
    }
}

impl FusedGroupNorm for Flex {
    fn group_norm_silu(
        x: FlexTensor,
        shift: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        groups: usize,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = x.shape().to_vec();
        let (batch, channels) = (shape[0], shape[1]);
        let positions: usize = shape[2..].iter().product();
        let per_group = channels / groups;
        let block = per_group * positions;
        let tensors = [&x, &shift, &gamma, &beta].map(contiguous_f32);
        let [xs, shift, gamma, beta] = tensors.each_ref().map(f32_slice);
        // One task per image and group: a contiguous block of `per_group` channels, each
        // shifted by its own value.
        #[inline(always)]
        fn normalize(
            y: &mut [f32],
            x: &[f32],
            shift: &[f32],
            [gamma, beta]: [&[f32]; 2],
            [per_group, positions]: [usize; 2],
            epsilon: f64,
        ) -> (f32, f32) {
            // Plain loops: a `map` closure would be compiled outside the vector dispatch.
            let count = (per_group * positions) as f64;
            let mut total = 0.0;
            for j in 0..per_group {
                let channel = &x[j * positions..(j + 1) * positions];
                total += lane_sum(channel, |v| v as f64) + positions as f64 * shift[j] as f64;
            }
            let mean = total / count;
            let mut squares = 0.0;
            for j in 0..per_group {
                let channel = &x[j * positions..(j + 1) * positions];
                let offset = shift[j] as f64 - mean;
                squares += lane_sum(channel, |v| (v as f64 + offset).powi(2));
            }
            let variance = squares / count;
            let inv_std = (1.0 / (variance + epsilon).sqrt()) as f32;
            let mean = mean as f32;
            for j in 0..per_group {
                let at = j * positions..(j + 1) * positions;
                let scale = gamma[j] * inv_std;
                let offset = beta[j] + (shift[j] - mean) * scale;
                normalize_silu(&mut y[at.clone()], &x[at], scale, offset);
            }
            (mean, inv_std)
        }
        let channels_total = channels;
        let mut statistics: Vec<(f32, f32)> = Vec::new();
        let write = |y: &mut [f32]| {
            statistics = y
                .par_chunks_mut(block)
                .zip(xs.par_chunks(block))
                .enumerate()
                .map(|(index, (y, x))| {
                    super::vectorized(
                        #[inline(always)]
                        || {
                            let first = (index % groups) * per_group;
                            let channels = first..first + per_group;
                            let image = index / groups * channels_total;
                            let shift = &shift[image + first..image + first + per_group];
                            let affine = [&gamma[channels.clone()], &beta[channels]];
                            normalize(y, x, shift, affine, [per_group, positions], epsilon)
                        },
                    )
                })
                .collect();
        };
        // SAFETY: `normalize` writes every channel of every block before anything reads it.
        let y = unsafe { written_vec(xs.len(), write) };
        let (mean, inv_std): (Vec<f32>, Vec<f32>) = statistics.into_iter().unzip();
        (
            flex(y, shape),
            flex(mean, vec![batch * groups]),
            flex(inv_std, vec![batch * groups]),
        )
    }

    fn group_norm_silu_backward(
        x: FlexTensor,
        shift: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        inv_std: FlexTensor,
        groups: usize,
        output_grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = x.shape().to_vec();
        let (batch, channels) = (shape[0], shape[1]);
        let positions: usize = shape[2..].iter().product();
        let per_group = channels / groups;
        let block = per_group * positions;
        let tensors = [&x, &shift, &gamma, &beta, &mean, &inv_std, &output_grad];
        let tensors = tensors.map(contiguous_f32);
        let [x, shift, gamma, beta, mean, inv_std, dy] = tensors.each_ref().map(f32_slice);
        // Per image and group: dz into dx and the channels' sums, then dx in place. A channel's
        // shift s moves its x̂ = (x + s − μ)/σ: it is normalized about μ − s.
        #[inline(always)]
        fn differentiate(
            dx: &mut [f32],
            [x, dy, shift]: [&[f32]; 3],
            [mean, inv_std]: [f32; 2],
            [gamma, beta]: [&[f32]; 2],
            [per_group, positions]: [usize; 2],
        ) -> Vec<[f64; 3]> {
            let channel = |j: usize| Group {
                mean: mean - shift[j],
                inv_std,
            };
            let mut sums = Vec::with_capacity(per_group);
            for j in 0..per_group {
                let at = j * positions..(j + 1) * positions;
                let (x, dy) = (&x[at.clone()], &dy[at.clone()]);
                let (sum, sum_x_hat) = silu_grad(&mut dx[at], x, dy, channel(j), gamma[j], beta[j]);
                sums.push([sum, sum_x_hat, 0.0]);
            }
            // mean(γ·dz) and mean(γ·dz·x̂) over the group.
            let count = (per_group * positions) as f64;
            let (mut offset, mut slope) = (0.0, 0.0);
            for (j, [sum, sum_x_hat, _]) in sums.iter().enumerate() {
                offset += gamma[j] as f64 * sum;
                slope += gamma[j] as f64 * sum_x_hat;
            }
            let (offset, slope) = ((offset / count) as f32, (slope / count) as f32);
            for (j, sums) in sums.iter_mut().enumerate() {
                let at = j * positions..(j + 1) * positions;
                input_grad(
                    &mut dx[at.clone()],
                    &x[at.clone()],
                    channel(j),
                    gamma[j],
                    offset,
                    slope,
                );
                // The shift's gradient: dx summed over the channel's positions.
                sums[2] = lane_sum(&dx[at], |v| v as f64);
            }
            sums
        }
        let mut channel_sums: Vec<Vec<[f64; 3]>> = Vec::new();
        let write = |dx: &mut [f32]| {
            channel_sums = dx
                .par_chunks_mut(block)
                .zip(x.par_chunks(block).zip(dy.par_chunks(block)))
                .enumerate()
                .map(|(index, (dx, (x, dy)))| {
                    super::vectorized(
                        #[inline(always)]
                        || {
                            let first = (index % groups) * per_group;
                            let group = first..first + per_group;
                            let image = index / groups * channels;
                            let shift = &shift[image + first..image + first + per_group];
                            let affine = [&gamma[group.clone()], &beta[group]];
                            let statistics = [mean[index], inv_std[index]];
                            let sizes = [per_group, positions];
                            differentiate(dx, [x, dy, shift], statistics, affine, sizes)
                        },
                    )
                })
                .collect();
        };
        // SAFETY: `silu_grad` writes each channel's dz before `input_grad` reads it.
        let dx = unsafe { written_vec(x.len(), write) };
        let (mut d_gamma, mut d_beta) = (vec![0f64; channels], vec![0f64; channels]);
        let mut d_shift = vec![0f32; batch * channels];
        for (index, sums) in channel_sums.iter().enumerate() {
            let first = (index % groups) * per_group;
            let image = index / groups * channels;
            for (j, [sum, sum_x_hat, sum_dx]) in sums.iter().enumerate() {
                d_beta[first + j] += sum;
                d_gamma[first + j] += sum_x_hat;
                d_shift[image + first + j] = *sum_dx as f32;
            }
        }
        let narrow = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
        (
            flex(dx, shape),
            flex(d_shift, vec![batch, channels]),
            flex(narrow([d_gamma, d_beta].concat()), vec![2, channels]),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Autodiff: one node for the pair; μ and 1/σ leave it as constants.

impl<B: FusedGroupNorm, C: CheckpointStrategy> FusedGroupNorm for Autodiff<B, C> {
    fn group_norm_silu(
        x: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct NormSiluBackward;

        /// The four inputs' checkpoints, μ, 1/σ, and the group count.
        type State<B> = ([NodeId; 4], FloatTensor<B>, FloatTensor<B>, usize);

        impl<B: FusedGroupNorm> Backward<B, 4> for NormSiluBackward {
            type State = State<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 4>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let grad = grads.consume::<B>(&ops.node);
                let (states, mean, inv_std, groups) = ops.state;
                let [x, shift, gamma, beta] = states.map(|state| {
                    checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(state)
                });
                let (dx, d_shift, d_affine) =
                    B::group_norm_silu_backward(x, shift, gamma, beta, mean, inv_std, groups, grad);
                let channels = d_affine.shape().dims::<2>()[1];
                let row = |i: usize| {
                    let row = B::float_slice(d_affine.clone(), &[Slice::from(i..i + 1)]);
                    B::float_reshape(row, Shape::new([channels]))
                };
                let (d_gamma, d_beta) = (row(0), row(1));
                for (node, grad) in ops.parents.into_iter().zip([dx, d_shift, d_gamma, d_beta]) {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        let prep = NormSiluBackward
            .prepare::<C>([x.node(), shift.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let constant = <Self as AutodiffBackend>::from_inner;
        match prep {
            OpsKind::Tracked(mut prep) => {
                let states = [&x, &shift, &gamma, &beta].map(|t| prep.checkpoint(t));
                let (output, mean, inv_std) = B::group_norm_silu(
                    x.into_primitive(),
                    shift.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    groups,
                    epsilon,
                );
                let state = (states, mean.clone(), inv_std.clone(), groups);
                let output = prep.finish(state, output);
                (output, constant(mean), constant(inv_std))
            }
            OpsKind::UnTracked(prep) => {
                let (output, mean, inv_std) = B::group_norm_silu(
                    x.into_primitive(),
                    shift.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    groups,
                    epsilon,
                );
                (prep.finish(output), constant(mean), constant(inv_std))
            }
        }
    }

    fn group_norm_silu_backward(
        _x: FloatTensor<Self>,
        _shift: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _beta: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _inv_std: FloatTensor<Self>,
        _groups: usize,
        _output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("the backward pass runs on the inner backend; there is no second derivative")
    }
}
