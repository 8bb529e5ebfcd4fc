//! Flex: the kernels of `conv_cpu`, where they apply (f32, `groups = 1`); anything else on Flex's own
//! operations.

use super::super::conv_cpu::{self, Columns, ConvGeometry, Epilogue};
use super::super::{contiguous_f32, f32_slice};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::*;

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

pub(super) fn with_floats<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
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

pub(super) fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The geometry of `x`'s convolution under `options`, when our kernels take it (f32,
/// `groups = 1`); `None` sends it to Flex's own operation.
pub(super) fn forward_geometry(
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
pub(super) fn flex_conv2d_keeping_columns(
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
pub(super) fn same_type<T: 'static>(value: impl std::any::Any) -> Option<T> {
    let boxed: Box<dyn std::any::Any> = Box::new(value);
    boxed.downcast::<T>().ok().map(|b| *b)
}

/// `t` as Flex's tensor (shared storage) where the inner backend is Flex.
pub(super) fn as_flex<B: Backend>(t: &FloatTensor<B>) -> Option<FlexTensor> {
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
