//! Convolution layers through [`conv_cpu`](super::conv_cpu)'s kernels on the CPU.
//!
//! burn lets a project add a backend operation with its own backward pass (a *backend
//! extension*): `GemmConv` is one for the four products of a 2-D convolution and its
//! transpose, with the bias and a following activation (ReLU, tanh) applied inside, as the
//! output leaves the product (W3, whose convolutions all have a bias and all but the last a
//! ReLU: 5.1-5.8 % more images/s from the bias, 4.8 % more from the ReLU, than as operations of
//! their own). On Flex, f32 and `groups = 1` run on our im2col + GEMM kernels, anything else on
//! Flex's own; on the GPU the default bodies call burn's operations unchanged. The autodiff
//! implementation records one node per convolution whose backward pass calls the same kernels.
//!
//! Models call `layer.forward_fast(x)`, `layer.forward_fast_relu(x)` or
//! `layer.forward_fused(x, activation)` ([`FastConv`]) on burn's `Conv2d` / `ConvTranspose2d`
//! modules, so parameters, initialization and saved weights stay burn's; `layer.forward(x)`
//! stays the reference the tests compare against.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

pub use super::conv_cpu::Activation;

mod autodiff;
mod flex;

/// The products of a convolution and of its transpose as one backend operation each. The
/// default bodies are burn's own operations, so a backend without kernels of ours loses nothing.
#[backend_extension(Flex, Cube: cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda")), Autodiff)]
pub(crate) trait GemmConv: Backend {
    /// The convolution, followed by `activation`.
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        activation: Activation,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        activated::<Self>(Self::conv2d(x, weight, None, options), activation)
    }

    /// [`Self::gemm_conv2d`] with `bias` [c_out] added before the activation (burn's backend
    /// extensions take no optional tensors, hence two operations).
    fn gemm_conv2d_biased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Activation,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        activated::<Self>(Self::conv2d(x, weight, Some(bias), options), activation)
    }

    fn gemm_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }

    fn gemm_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }

    /// The transposed convolution, followed by `activation`.
    fn gemm_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        activation: Activation,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        activated::<Self>(Self::conv_transpose2d(x, weight, None, options), activation)
    }

    /// [`Self::gemm_conv_transpose2d`] with `bias` [c_out of the transposed convolution] added
    /// before the activation.
    fn gemm_conv_transpose2d_biased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Activation,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        activated::<Self>(
            Self::conv_transpose2d(x, weight, Some(bias), options),
            activation,
        )
    }

    fn gemm_conv_transpose2d_x_backward(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d_x_backward(weight, output_grad, options)
    }

    fn gemm_conv_transpose2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d_weight_backward(x, weight, output_grad, options)
    }

    /// The gradient of a bias added to every pixel of its channel: `output_grad` [batch,
    /// channels, h, w] summed over batch and pixels, [channels].
    fn gemm_conv_bias_backward(output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        channel_sums::<Self>(output_grad)
    }

    /// The gradient at `activation`'s input from its `output` and the gradient there.
    fn gemm_activation_backward(
        activation: Activation,
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        activation_backward::<Self>(activation, output, grad)
    }
}

/// `activation(y)` by burn's operations.
fn activated<B: Backend>(y: FloatTensor<B>, activation: Activation) -> FloatTensor<B> {
    match activation {
        Activation::Identity => y,
        Activation::Relu => B::relu(y),
        Activation::Tanh => B::float_tanh(y),
    }
}

/// [`GemmConv::gemm_activation_backward`] by burn's operations.
fn activation_backward<B: Backend>(
    activation: Activation,
    output: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    match activation {
        Activation::Identity => grad,
        Activation::Relu => B::relu_backward(output, grad),
        Activation::Tanh => {
            // d tanh(x) / dx = 1 − tanh(x)²
            let square = B::float_mul(output.clone(), output);
            let slope = B::float_add_scalar(B::float_neg(square), 1.0.into());
            B::float_mul(grad, slope)
        }
    }
}

/// `t` [batch, channels, h, w] summed over batch and pixels, [channels], by burn's operations.
fn channel_sums<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let channels = t.shape().dims::<4>()[1];
    let summed = [3, 2, 0]
        .into_iter()
        .fold(t, |t, dim| B::float_sum_dim(t, dim));
    B::float_reshape(summed, Shape::new([channels]))
}

/// `burn::tensor::module::conv2d`, followed by `activation`, on our kernels where they apply.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    activation: Activation,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(bias) => {
            Dispatch::gemm_conv2d_biased(x, weight, bias.into_dispatch(), activation, options)
        }
        None => Dispatch::gemm_conv2d(x, weight, activation, options),
    })
}

/// `burn::tensor::module::conv_transpose2d`, followed by `activation`, on our kernels where
/// they apply.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    activation: Activation,
    options: ConvTransposeOptions<2>,
) -> Tensor<4> {
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(bias) => {
            let bias = bias.into_dispatch();
            Dispatch::gemm_conv_transpose2d_biased(x, weight, bias, activation, options)
        }
        None => Dispatch::gemm_conv_transpose2d(x, weight, activation, options),
    })
}

/// `forward` of burn's convolution layers, through [`conv2d`] and [`conv_transpose2d`]: the
/// layers keep burn's parameters, initialization and saved names; only the arithmetic differs.
pub trait FastConv {
    /// The layer's `forward`, followed by `activation` (inside the same operation).
    fn forward_fused(&self, x: Tensor<4>, activation: Activation) -> Tensor<4>;

    fn forward_fast(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_fused(x, Activation::Identity)
    }

    /// `relu(forward(x))`.
    fn forward_fast_relu(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_fused(x, Activation::Relu)
    }
}

impl FastConv for Conv2d {
    fn forward_fused(&self, x: Tensor<4>, activation: Activation) -> Tensor<4> {
        let [_, _, height, width] = x.dims();
        let options = ConvOptions::new_with_padding(
            self.stride,
            padding_pairs(
                &self.padding,
                [height, width],
                self.kernel_size,
                self.stride,
            ),
            self.dilation,
            self.groups,
        );
        conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(Param::val),
            activation,
            options,
        )
    }
}

impl FastConv for ConvTranspose2d {
    fn forward_fused(&self, x: Tensor<4>, activation: Activation) -> Tensor<4> {
        let options = ConvTransposeOptions::new(
            self.stride,
            self.padding,
            self.padding_out,
            self.dilation,
            self.groups,
        );
        conv_transpose2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(Param::val),
            activation,
            options,
        )
    }
}

/// (before, after) padding per dimension, as `Conv2d::forward` computes it (burn keeps that
/// function private). "Same" pads as PyTorch and TensorFlow do: the extra row, if any, after.
fn padding_pairs(
    padding: &PaddingConfig2d,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> [(usize, usize); 2] {
    match *padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => std::array::from_fn(|d| {
            let out = size[d].div_ceil(stride[d]);
            let total = (out.saturating_sub(1) * stride[d] + kernel[d]).saturating_sub(size[d]);
            (total / 2, total - total / 2)
        }),
    }
}
