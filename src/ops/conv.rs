//! Convolution layers through [`conv_cpu`](super::conv_cpu)'s kernels on the CPU.
//!
//! burn lets a project add a backend operation with its own backward pass (a *backend
//! extension*): [`GemmConv`] is one for the four products of a 2-D convolution and its
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

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use std::sync::Arc;

pub use super::conv_cpu::Activation;
use super::conv_cpu::{self, Columns, ConvGeometry, Epilogue};
use super::{contiguous_f32, f32_slice};

/// The products of a convolution and of its transpose as one backend operation each. The
/// default bodies are burn's own operations, so a backend without kernels of ours loses nothing.
#[backend_extension(Flex, Cube: cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda")), Autodiff)]
pub trait GemmConv: Backend {
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

// ---------------------------------------------------------------------------------------------
// Flex: the kernels, where they apply.

/// The geometry of a convolution of an input of `x_shape` by a weight of `weight_shape`
/// ([out, in, kh, kw], `groups = 1`) with `padding` (before, after) per dimension, or `None` if
/// the shapes do not fit together.
fn conv_geometry(
    x_shape: [usize; 4],
    weight_shape: [usize; 4],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
) -> Option<ConvGeometry> {
    let [batch, in_channels, in_h, in_w] = x_shape;
    let [out_channels, weight_in, kh, kw] = weight_shape;
    if weight_in != in_channels {
        return None;
    }
    let mut g = ConvGeometry {
        batch,
        in_channels,
        out_channels,
        in_size: [in_h, in_w],
        out_size: [0, 0],
        kernel: [kh, kw],
        stride,
        padding: padding.map(|(begin, _)| begin),
        dilation,
    };
    g.out_size = g.natural_out_size(padding.map(|(_, end)| end))?;
    Some(g)
}

fn all_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

fn with_floats<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    f(f32_slice(&contiguous_f32(t)))
}

fn with_optional_floats<R>(t: Option<&FlexTensor>, f: impl FnOnce(Option<&[f32]>) -> R) -> R {
    match t {
        Some(t) => with_floats(t, |values| f(Some(values))),
        None => f(None),
    }
}

/// Whether `bias` holds one f32 per channel (it is a vector: [`conv2d`] takes a `Tensor<1>`).
fn is_bias(bias: &FlexTensor, channels: usize) -> bool {
    all_f32(&[bias]) && bias.shape().num_elements() == channels
}

fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The geometry of `x`'s convolution under `options`, when our kernels take it (f32,
/// `groups = 1`); `None` sends it to Flex's own operation.
fn forward_geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<ConvGeometry> {
    if options.groups != 1 || !all_f32(&[x, weight]) {
        return None;
    }
    let g = conv_geometry(
        x.shape().dims(),
        weight.shape().dims(),
        options.stride,
        options.padding,
        options.dilation,
    )?;
    // One output pixel per image from a padded or larger input would take im2col one float per
    // copy, where Flex's path is faster for a few channels; with a kernel covering the whole
    // input (DCGAN's last layer) it is a dense layer and ours, and so is a wide one: the U-Net's
    // bottleneck (256 channels, 2x2 → 1x1) on Flex's path held W6 to 700 images/s, 900 on ours.
    (g.out_size != [1, 1] || g.dense() || g.in_channels >= 64).then_some(g)
}

/// The geometry of the convolution that `options`' transposed convolution inverts, given the
/// transposed convolution's output shape `y_shape`: that output is the convolution's input, the
/// weight is used as is ([c_in of the transposed, c_out, kh, kw] = [conv out, conv in, …]), and
/// the convolution's output is the transposed one's input. `None` where our kernels don't apply,
/// or where `y_shape` is not what the transposed convolution of that input makes.
fn transposed_geometry(
    y_shape: [usize; 4],
    weight: &FlexTensor,
    options: &ConvTransposeOptions<2>,
) -> Option<ConvGeometry> {
    if options.groups != 1 {
        return None;
    }
    let [weight_in, weight_out, kh, kw] = weight.shape().dims();
    let g = conv_geometry(
        y_shape,
        [weight_in, weight_out, kh, kw],
        options.stride,
        options.padding.map(|p| (p, p)),
        options.dilation,
    )?;
    let remade = |d: usize| {
        ((g.out_size[d] - 1) * options.stride[d]
            + options.dilation[d] * (g.kernel[d] - 1)
            + options.padding_out[d]
            + 1)
        .checked_sub(2 * options.padding[d])
    };
    (remade(0) == Some(y_shape[2]) && remade(1) == Some(y_shape[3])).then_some(g)
}

/// The output shape of `options`' transposed convolution of `x` by `weight`.
fn transposed_output_shape(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvTransposeOptions<2>,
) -> Option<[usize; 4]> {
    let [batch, channels, h, w] = x.shape().dims();
    let [weight_in, weight_out, kh, kw] = weight.shape().dims();
    if channels != weight_in {
        return None;
    }
    let side = |d: usize, side: usize, k: usize| {
        ((side - 1) * options.stride[d]
            + options.dilation[d] * (k - 1)
            + options.padding_out[d]
            + 1)
        .checked_sub(2 * options.padding[d])
    };
    Some([batch, weight_out, side(0, h, kh)?, side(1, w, kw)?])
}

/// Flex's convolution, plus `bias` where there is one, then `activation`, on our kernels where
/// they apply.
fn flex_conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    activation: Activation,
    options: ConvOptions<2>,
) -> FlexTensor {
    let geometry = forward_geometry(&x, &weight, &options)
        .filter(|g| bias.as_ref().is_none_or(|b| is_bias(b, g.out_channels)));
    let Some(g) = geometry else {
        return activated::<Flex>(Flex::conv2d(x, weight, bias, options), activation);
    };
    let y = with_floats(&x, |x| {
        with_floats(&weight, |w| {
            with_optional_floats(bias.as_ref(), |bias| {
                conv_cpu::conv_forward(&g, x, w, Epilogue { bias, activation })
            })
        })
    });
    flex_tensor(y, [g.batch, g.out_channels, g.out_size[0], g.out_size[1]])
}

/// [`flex_conv2d`] on our kernels keeping `col(x)` for the weight gradient; `None` where our
/// kernels do not take it.
fn flex_conv2d_keeping_columns(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    activation: Activation,
    options: &ConvOptions<2>,
) -> Option<(FlexTensor, Option<Columns>)> {
    let g = forward_geometry(x, weight, options)
        .filter(|g| bias.is_none_or(|b| is_bias(b, g.out_channels)))?;
    let (y, columns) = with_floats(x, |x| {
        with_floats(weight, |w| {
            with_optional_floats(bias, |bias| {
                conv_cpu::conv_forward_keeping_columns(&g, x, w, Epilogue { bias, activation })
            })
        })
    });
    let shape = [g.batch, g.out_channels, g.out_size[0], g.out_size[1]];
    Some((flex_tensor(y, shape), columns))
}

/// `value` as type `T`, which it is: how the autodiff node, generic over its inner backend,
/// hands Flex's tensors to Flex-only kernels. `None` when the types differ.
fn same_type<T: 'static>(value: impl std::any::Any) -> Option<T> {
    let boxed: Box<dyn std::any::Any> = Box::new(value);
    boxed.downcast::<T>().ok().map(|b| *b)
}

/// `t` as Flex's tensor (shared storage) where the inner backend is Flex.
fn as_flex<B: Backend>(t: &FloatTensor<B>) -> Option<FlexTensor> {
    same_type::<FlexTensor>(t.clone())
}

/// Flex's transposed convolution, plus `bias` where there is one, then `activation`, on our
/// kernels where they apply.
fn flex_conv_transpose2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    activation: Activation,
    options: ConvTransposeOptions<2>,
) -> FlexTensor {
    let geometry = transposed_output_shape(&x, &weight, &options)
        .filter(|_| all_f32(&[&x, &weight]))
        .and_then(|y_shape| transposed_geometry(y_shape, &weight, &options))
        .filter(|g| bias.as_ref().is_none_or(|b| is_bias(b, g.in_channels)));
    let Some(g) = geometry else {
        return activated::<Flex>(Flex::conv_transpose2d(x, weight, bias, options), activation);
    };
    // The transposed convolution is the input gradient of `g`, with `x` as the output grad.
    let y = with_floats(&x, |x| {
        with_floats(&weight, |w| {
            with_optional_floats(bias.as_ref(), |bias| {
                conv_cpu::conv_input_grad(&g, x, w, Epilogue { bias, activation })
            })
        })
    });
    flex_tensor(y, [g.batch, g.in_channels, g.in_size[0], g.in_size[1]])
}

impl GemmConv for Flex {
    fn gemm_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        activation: Activation,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        flex_conv2d(x, weight, None, activation, options)
    }

    fn gemm_conv2d_biased(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        activation: Activation,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        flex_conv2d(x, weight, Some(bias), activation, options)
    }

    fn gemm_conv_transpose2d(
        x: FlexTensor,
        weight: FlexTensor,
        activation: Activation,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        flex_conv_transpose2d(x, weight, None, activation, options)
    }

    fn gemm_conv_transpose2d_biased(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        activation: Activation,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        flex_conv_transpose2d(x, weight, Some(bias), activation, options)
    }

    fn gemm_conv2d_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let Some(g) = forward_geometry(&x, &weight, &options) else {
            return Flex::conv2d_x_backward(x, weight, output_grad, options);
        };
        let dx = with_floats(&output_grad, |dy| {
            with_floats(&weight, |w| {
                conv_cpu::conv_input_grad(&g, dy, w, Epilogue::default())
            })
        });
        flex_tensor(dx, [g.batch, g.in_channels, g.in_size[0], g.in_size[1]])
    }

    fn gemm_conv2d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let Some(g) = forward_geometry(&x, &weight, &options) else {
            return Flex::conv2d_weight_backward(x, weight, output_grad, options);
        };
        let dw = with_floats(&x, |x| {
            with_floats(&output_grad, |dy| conv_cpu::conv_weight_grad(&g, x, dy))
        });
        flex_tensor(
            dw,
            [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]],
        )
    }

    fn gemm_conv_transpose2d_x_backward(
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        // The gradient's shape is the transposed convolution's output: its convolution's input.
        let geometry = Some(output_grad.shape().dims())
            .filter(|_| all_f32(&[&weight, &output_grad]))
            .and_then(|y_shape| transposed_geometry(y_shape, &weight, &options));
        let Some(g) = geometry else {
            return Flex::conv_transpose2d_x_backward(weight, output_grad, options);
        };
        let dx = with_floats(&output_grad, |dy| {
            with_floats(&weight, |w| {
                conv_cpu::conv_forward(&g, dy, w, Epilogue::default())
            })
        });
        flex_tensor(dx, [g.batch, g.out_channels, g.out_size[0], g.out_size[1]])
    }

    fn gemm_conv_transpose2d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        let geometry = Some(output_grad.shape().dims())
            .filter(|_| all_f32(&[&x, &weight, &output_grad]))
            .and_then(|y_shape| transposed_geometry(y_shape, &weight, &options));
        let Some(g) = geometry else {
            return Flex::conv_transpose2d_weight_backward(x, weight, output_grad, options);
        };
        // dW of the transposed convolution is dW of `g` with the roles of input and output
        // gradient exchanged: its input is the output gradient, its output gradient is `x`.
        let dw = with_floats(&output_grad, |dy| {
            with_floats(&x, |x| conv_cpu::conv_weight_grad(&g, dy, x))
        });
        flex_tensor(
            dw,
            [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]],
        )
    }

    fn gemm_conv_bias_backward(output_grad: FlexTensor) -> FlexTensor {
        let [_, channels, h, w] = output_grad.shape().dims();
        if !all_f32(&[&output_grad]) {
            return channel_sums::<Flex>(output_grad);
        }
        let sums = with_floats(&output_grad, |dy| {
            conv_cpu::channel_sums(dy, channels, h * w)
        });
        FlexTensor::from_data(TensorData::new(sums, [channels]))
    }

    fn gemm_activation_backward(
        activation: Activation,
        output: FlexTensor,
        grad: FlexTensor,
    ) -> FlexTensor {
        if !all_f32(&[&output, &grad]) || output.shape() != grad.shape() {
            return activation_backward::<Flex>(activation, output, grad);
        }
        let shape = grad.shape();
        let input_grad = with_floats(&grad, |dy| {
            with_floats(&output, |y| conv_cpu::activation_grad(activation, dy, y))
        });
        FlexTensor::from_data(TensorData::new(input_grad, shape))
    }
}

#[cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda"))]
impl GemmConv for burn::backend::Cube {}

// ---------------------------------------------------------------------------------------------
// Autodiff: one node per convolution, its backward pass on the inner backend's products.

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
