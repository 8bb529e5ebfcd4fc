//! Our CPU operations (`latentlab::ops`) against the burn operations they replace: same outputs
//! and same gradients for every input and parameter, the convolution's gradients also against
//! finite differences, and batch norm's running statistics.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{leaky_relu, relu, silu};
use latentlab::ops::{Activation, FastConv, FusedGroupNormSilu, FusedNormAct};

fn device() -> Device {
    Device::flex().autodiff()
}

fn close(what: &str, fast: Tensor<4>, reference: Tensor<4>) {
    let (a, b) = (fast.into_data(), reference.into_data());
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    let (a, b) = (
        a.try_to_vec::<f32>().unwrap(),
        b.try_to_vec::<f32>().unwrap(),
    );
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * scale, "{what}[{i}]: {x} vs {y}");
    }
}

fn close_any<const D: usize>(what: &str, fast: Tensor<D>, reference: Tensor<D>) {
    let n = fast.shape().num_elements();
    close(
        what,
        fast.reshape([1, 1, 1, n]),
        reference.reshape([1, 1, 1, n]),
    );
}

/// Runs `forward` (ours) and `reference` (burn's) on the same input and the same random output
/// weighting (the loss), and compares outputs and the gradients of input, weight and bias.
fn compare<M>(
    what: &str,
    layer: &M,
    input: [usize; 4],
    forward: impl Fn(&M, Tensor<4>) -> Tensor<4>,
    reference: impl Fn(&M, Tensor<4>) -> Tensor<4>,
    params: impl Fn(&M) -> (Tensor<4>, Option<Tensor<1>>),
) {
    let device = device();
    let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
    let out_dims = reference(layer, x.clone()).dims();
    let weighting = Tensor::<4>::random(out_dims, Distribution::Default, &device);
    let run = |f: &dyn Fn(&M, Tensor<4>) -> Tensor<4>| {
        let x = x.clone().detach().require_grad();
        let y = f(layer, x.clone());
        let grads = (y.clone() * weighting.clone()).sum().backward();
        let (w, b) = params(layer);
        (
            y,
            x.grad(&grads).unwrap(),
            w.grad(&grads).unwrap(),
            b.map(|b| b.grad(&grads).unwrap()),
        )
    };
    let (y, dx, dw, db) = run(&forward);
    let (y_ref, dx_ref, dw_ref, db_ref) = run(&reference);
    close(&format!("{what} output"), y, y_ref);
    close(&format!("{what} input grad"), dx, dx_ref);
    close(&format!("{what} weight grad"), dw, dw_ref);
    if let (Some(db), Some(db_ref)) = (db, db_ref) {
        close_any(&format!("{what} bias grad"), db, db_ref);
    }
}

/// [`compare`] of the layer's fused forward pass with each activation against burn's layer
/// followed by burn's activation.
fn compare_activations<M: FastConv>(
    what: &str,
    layer: &M,
    input: [usize; 4],
    reference: impl Fn(&M, Tensor<4>) -> Tensor<4>,
    params: impl Fn(&M) -> (Tensor<4>, Option<Tensor<1>>),
) {
    type BurnActivation = fn(Tensor<4>) -> Tensor<4>;
    let activations: [(&str, Activation, BurnActivation); 3] = [
        ("", Activation::Identity, |y| y),
        (", then ReLU", Activation::Relu, relu),
        (", then tanh", Activation::Tanh, Tensor::tanh),
    ];
    for (then, activation, burns) in activations {
        compare(
            &format!("{what}{then}"),
            layer,
            input,
            |l, x| l.forward_fused(x, activation),
            |l, x| burns(reference(l, x)),
            &params,
        );
    }
}

fn conv(
    channels: [usize; 2],
    kernel: [usize; 2],
    stride: usize,
    padding: PaddingConfig2d,
    bias: bool,
) -> Conv2d {
    Conv2dConfig::new(channels, kernel)
        .with_stride([stride, stride])
        .with_padding(padding)
        .with_bias(bias)
        .init(&device())
}

#[test]
fn convolutions_match_burn_with_gradients() {
    let params = |c: &Conv2d| (c.weight.val(), c.bias.as_ref().map(|b| b.val()));
    let cases = [
        (
            "dcgan down",
            conv(
                [3, 8],
                [4, 4],
                2,
                PaddingConfig2d::Explicit(1, 1, 1, 1),
                false,
            ),
            [2, 3, 16, 16],
        ),
        (
            "3x3 same",
            conv([4, 6], [3, 3], 1, PaddingConfig2d::Same, true),
            [3, 4, 7, 9],
        ),
        (
            // Fewer outputs than inputs: the input gradient as the adjoint's forward pass.
            "3x3 same, narrowing",
            conv([6, 2], [3, 3], 1, PaddingConfig2d::Same, true),
            [3, 6, 7, 7],
        ),
        (
            "3x3 stride 2 valid",
            conv([2, 5], [3, 3], 2, PaddingConfig2d::Valid, true),
            [2, 2, 11, 11],
        ),
        (
            "1x1",
            conv([6, 3], [1, 1], 1, PaddingConfig2d::Valid, true),
            [2, 6, 5, 5],
        ),
        (
            "1x3",
            conv(
                [3, 4],
                [1, 3],
                1,
                PaddingConfig2d::Explicit(0, 1, 0, 1),
                true,
            ),
            [2, 3, 6, 6],
        ),
        (
            "asymmetric",
            conv(
                [2, 3],
                [4, 4],
                2,
                PaddingConfig2d::Explicit(1, 2, 2, 1),
                true,
            ),
            [2, 2, 9, 9],
        ),
        (
            "dcgan last (4x4 valid, to 1x1)",
            conv([8, 1], [4, 4], 1, PaddingConfig2d::Valid, false),
            [3, 8, 4, 4],
        ),
        (
            "dense with bias",
            conv([8, 2], [4, 4], 1, PaddingConfig2d::Valid, true),
            [3, 8, 4, 4],
        ),
        (
            "conv vae down (4x4 stride 2, bias)",
            conv(
                [2, 3],
                [4, 4],
                2,
                PaddingConfig2d::Explicit(1, 1, 1, 1),
                true,
            ),
            [3, 2, 8, 8],
        ),
        (
            "patchgan stride 1",
            conv(
                [4, 1],
                [4, 4],
                1,
                PaddingConfig2d::Explicit(1, 1, 1, 1),
                true,
            ),
            [2, 4, 6, 6],
        ),
    ];
    for (what, layer, input) in cases {
        compare_activations(what, &layer, input, |l, x| l.forward(x), params);
    }
}

#[test]
fn transposed_convolutions_match_burn_with_gradients() {
    let params = |c: &ConvTranspose2d| (c.weight.val(), c.bias.as_ref().map(|b| b.val()));
    let up = |channels: [usize; 2],
              kernel: usize,
              stride: usize,
              padding: usize,
              out: usize,
              bias: bool| {
        ConvTranspose2dConfig::new(channels, [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding([padding, padding])
            .with_padding_out([out, out])
            .with_bias(bias)
            .init(&device())
    };
    let cases = [
        ("dcgan up", up([8, 4], 4, 2, 1, 0, false), [2, 8, 4, 4]),
        (
            "dcgan first (from 1x1)",
            up([6, 4], 4, 1, 0, 0, false),
            [2, 6, 1, 1],
        ),
        (
            "3x3 stride 2 output padding",
            up([3, 5], 3, 2, 1, 1, true),
            [2, 3, 5, 7],
        ),
        ("3x3 stride 1", up([4, 2], 3, 1, 1, 0, true), [3, 4, 6, 6]),
        (
            "conv vae up (4x4 stride 2, bias)",
            up([4, 2], 4, 2, 1, 0, true),
            [3, 4, 4, 4],
        ),
        (
            "from 1x1 with bias",
            up([6, 3], 4, 1, 0, 0, true),
            [2, 6, 1, 1],
        ),
    ];
    for (what, layer, input) in cases {
        compare_activations(what, &layer, input, |l, x| l.forward(x), params);
    }
}

/// ∂L/∂w from the backward pass against (L(w + h) − L(w − h)) / 2h for a few entries of the
/// weight, with L a fixed weighting of the output (linear in w, so the difference is exact up to
/// rounding).
#[test]
fn weight_gradient_matches_finite_differences() {
    let device = Device::flex();
    let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let layer = ConvTranspose2dConfig::new([3, 2], [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .init(&device.clone().autodiff());
    let weighting = Tensor::<4>::random([2, 2, 16, 16], Distribution::Default, &device);
    let loss = |weight: Tensor<4>| {
        let options =
            burn::tensor::ops::ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
        let y = latentlab::ops::conv_transpose2d(
            x.clone(),
            weight,
            None,
            Activation::Identity,
            options,
        );
        (y * weighting.clone()).sum().into_scalar::<f32>() as f64
    };
    let tracked = device.clone().autodiff();
    let y = layer.forward_fast(Tensor::from_data(x.to_data(), &tracked));
    let grads = (y * Tensor::from_data(weighting.to_data(), &tracked))
        .sum()
        .backward();
    let analytic = layer
        .weight
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let weight = layer.weight.val().inner();
    let values = weight.clone().into_data().try_to_vec::<f32>().unwrap();
    let h = 1e-2;
    for index in [0, 7, 21, 40, 95] {
        let shifted = |delta: f32| {
            let mut v = values.clone();
            v[index] += delta;
            Tensor::<4>::from_data(TensorData::new(v, weight.dims()), &device)
        };
        let numeric = (loss(shifted(h)) - loss(shifted(-h))) / (2.0 * h as f64);
        let tolerance = 1e-2 * numeric.abs().max(1.0);
        assert!(
            (numeric - analytic[index] as f64).abs() < tolerance,
            "weight[{index}]: finite differences {numeric}, backward {}",
            analytic[index]
        );
    }
}

#[test]
fn fused_batch_norm_matches_burn_with_gradients_and_running_statistics() {
    let device = device();
    for (what, input, slope) in [
        ("relu", [4, 3, 5, 6], 0.0),
        ("leaky relu", [3, 5, 4, 4], 0.2),
        ("one position per channel", [6, 4, 1, 1], 0.2),
    ] {
        // Non-trivial γ and β, the same in both layers.
        let mut norm = BatchNormConfig::new(input[1])
            .with_momentum(0.3)
            .init(&device);
        let jitter = |t: Tensor<1>| {
            let noise = Tensor::random(t.dims(), Distribution::Normal(0.0, 0.5), &device);
            burn::module::Param::from_tensor((t + noise).detach())
        };
        norm.gamma = jitter(norm.gamma.val());
        norm.beta = jitter(norm.beta.val());
        let reference = norm.clone();
        let x = Tensor::<4>::random(input, Distribution::Normal(1.0, 3.0), &device);
        let weighting = Tensor::<4>::random(input, Distribution::Default, &device);
        let run = |n: &BatchNorm, fused: bool| {
            let x = x.clone().detach().require_grad();
            let y = match fused {
                true => n.forward_leaky_relu(x.clone(), slope),
                false => leaky_relu(n.forward(x.clone()), slope),
            };
            let grads = (y.clone() * weighting.clone()).sum().backward();
            let d_gamma = n.gamma.grad(&grads).unwrap().reshape([1, 1, 1, input[1]]);
            let d_beta = n.beta.grad(&grads).unwrap().reshape([1, 1, 1, input[1]]);
            (y, x.grad(&grads).unwrap(), d_gamma, d_beta)
        };
        let (y, dx, d_gamma, d_beta) = run(&norm, true);
        let (y_ref, dx_ref, d_gamma_ref, d_beta_ref) = run(&reference, false);
        close(&format!("{what} output"), y, y_ref);
        close(&format!("{what} input grad"), dx, dx_ref);
        close(&format!("{what} γ grad"), d_gamma, d_gamma_ref);
        close(&format!("{what} β grad"), d_beta, d_beta_ref);
        close_any(
            &format!("{what} running mean"),
            norm.running_mean.value(),
            reference.running_mean.value(),
        );
        close_any(
            &format!("{what} running variance"),
            norm.running_var.value(),
            reference.running_var.value(),
        );
    }
}

/// Group norm + SiLU fused against burn's `silu(GroupNorm::forward)`: outputs and the gradients
/// of the input, γ and β, with and without autodiff, for groups of one and several channels; and
/// with a shift per image and channel added first, against burn's broadcast add, its gradient too.
#[test]
fn fused_group_norm_silu_matches_burn_with_gradients() {
    let device = device();
    for (what, input, groups) in [
        ("4 channels a group", [3, 8, 5, 6], 2),
        ("one channel a group", [2, 4, 7, 7], 4),
        ("one group, odd sizes", [5, 3, 3, 1], 1),
    ] {
        let mut norm = GroupNormConfig::new(groups, input[1]).init(&device);
        let jitter = |t: Tensor<1>| {
            let noise = Tensor::random(t.dims(), Distribution::Normal(0.0, 0.7), &device);
            burn::module::Param::from_tensor((t + noise).detach())
        };
        norm.gamma = norm.gamma.map(|g| jitter(g.val()));
        norm.beta = norm.beta.map(|b| jitter(b.val()));
        let x = Tensor::<4>::random(input, Distribution::Normal(0.5, 2.0), &device);
        let weighting = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
        let run = |n: &GroupNorm, fused: bool| {
            let x = x.clone().detach().require_grad();
            let y = match fused {
                true => n.forward_silu(x.clone()),
                false => silu(n.forward(x.clone())),
            };
            let grads = (y.clone() * weighting.clone()).sum().backward();
            let param = |p: &Option<burn::module::Param<Tensor<1>>>| {
                let grad = p.as_ref().unwrap().grad(&grads).unwrap();
                grad.reshape([1, 1, 1, input[1]])
            };
            (y, x.grad(&grads).unwrap(), param(&n.gamma), param(&n.beta))
        };
        let (y, dx, d_gamma, d_beta) = run(&norm, true);
        let (y_ref, dx_ref, d_gamma_ref, d_beta_ref) = run(&norm, false);
        close(&format!("{what} output"), y, y_ref);
        close(&format!("{what} input grad"), dx, dx_ref);
        close(&format!("{what} γ grad"), d_gamma, d_gamma_ref);
        close(&format!("{what} β grad"), d_beta, d_beta_ref);

        let shift = Tensor::<2>::random(
            [input[0], input[1]],
            Distribution::Normal(0.0, 1.5),
            &device,
        );
        let shifted = |fused: bool| {
            let (x, shift) = (
                x.clone().detach().require_grad(),
                shift.clone().detach().require_grad(),
            );
            let y = match fused {
                true => norm.forward_silu_shifted(x.clone(), shift.clone()),
                false => silu(
                    norm.forward(x.clone() + shift.clone().reshape([input[0], input[1], 1, 1])),
                ),
            };
            let grads = (y.clone() * weighting.clone()).sum().backward();
            let d_shift = shift
                .grad(&grads)
                .unwrap()
                .reshape([1, 1, input[0], input[1]]);
            (y, x.grad(&grads).unwrap(), d_shift)
        };
        let ((y, dx, d_shift), (y_ref, dx_ref, d_shift_ref)) = (shifted(true), shifted(false));
        close(&format!("{what} shifted output"), y, y_ref);
        close(&format!("{what} shifted input grad"), dx, dx_ref);
        close(&format!("{what} shift grad"), d_shift, d_shift_ref);
        let (plain, plain_norm) = (x.clone().inner(), norm.valid());
        close(
            &format!("{what} without autodiff"),
            plain_norm.forward_silu(plain.clone()),
            silu(plain_norm.forward(plain)),
        );
    }
}

/// Our leaky ReLU against burn's: outputs, input gradients (exact zeros included, where both
/// pass the gradient through unscaled), and without autodiff.
#[test]
fn leaky_relu_matches_burn_with_gradients() {
    let device = device();
    for (input, slope) in [([3, 4, 5, 6], 0.2), ([2, 70_000, 1, 1], 0.01)] {
        let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
        // Some exact zeros, where the two branches meet.
        let x = x.clone().mask_fill(x.abs().lower_elem(0.05), 0.0);
        let weighting = Tensor::<4>::random(input, Distribution::Default, &device);
        let run = |fused: bool| {
            let x = x.clone().detach().require_grad();
            let y = match fused {
                true => latentlab::ops::leaky_relu(x.clone(), slope),
                false => leaky_relu(x.clone(), slope),
            };
            let grads = (y.clone() * weighting.clone()).sum().backward();
            (y, x.grad(&grads).unwrap())
        };
        let ((y, dx), (y_ref, dx_ref)) = (run(true), run(false));
        close(&format!("{input:?} output"), y, y_ref);
        close(&format!("{input:?} input grad"), dx, dx_ref);
        let plain = x.clone().inner();
        close_any(
            &format!("{input:?} without autodiff"),
            latentlab::ops::leaky_relu(plain.clone(), slope),
            leaky_relu(plain, slope),
        );
    }
}

/// Inference pooling on Flex (our separable kernels) and under autodiff (burn's, through the
/// default bodies) against burn's pooling, for the windows Inception uses and a strided 2x2.
#[test]
fn window_pooling_matches_burn() {
    use burn::tensor::module::{avg_pool2d, max_pool2d};
    use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
    use latentlab::ops::pool;
    let cases = [
        ([2, 3, 13, 11], [3, 3], [2, 2], [0, 0]),
        ([2, 3, 13, 11], [3, 3], [1, 1], [1, 1]),
        ([1, 4, 8, 8], [8, 8], [1, 1], [0, 0]),
        ([2, 2, 9, 10], [2, 2], [2, 2], [0, 0]),
    ];
    for device in [Device::flex(), device()] {
        for (input, kernel, stride, padding) in cases {
            let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
            let what = format!("{input:?} k{kernel:?} s{stride:?} p{padding:?}");
            let reference = max_pool2d(
                x.clone(),
                MaxPoolOptions::new(kernel)
                    .with_stride(stride)
                    .with_padding(padding),
            );
            let fast = pool::max_pool2d(x.clone(), kernel, stride, padding);
            close(&format!("max {what}"), fast, reference);
            for count_include_pad in [true, false] {
                let reference = avg_pool2d(
                    x.clone(),
                    AvgPoolOptions::new(kernel)
                        .with_stride(stride)
                        .with_padding(padding)
                        .with_count_include_pad(count_include_pad),
                );
                let fast = pool::avg_pool2d(x.clone(), kernel, stride, padding, count_include_pad);
                close(
                    &format!("avg ({count_include_pad}) {what}"),
                    fast,
                    reference,
                );
            }
        }
    }
}

#[test]
fn fused_bce_matches_burn_with_gradients() {
    let device = device();
    let logits = Tensor::<2>::random([5, 37], Distribution::Normal(0.0, 4.0), &device);
    let targets = Tensor::<2>::random([5, 37], Distribution::Default, &device);
    let weighting = Tensor::<1>::random([5], Distribution::Default, &device);
    let run = |fused: bool| {
        let (l, x) = (
            logits.clone().require_grad(),
            targets.clone().require_grad(),
        );
        let nll = if fused {
            latentlab::ops::bce::bernoulli_nll(l.clone(), x.clone())
        } else {
            let per_pixel = l.clone().clamp_min(0.0) - l.clone() * x.clone()
                + (l.clone().abs().neg().exp() + 1.0).log();
            per_pixel.sum_dim(1).squeeze_dim::<1>(1)
        };
        let grads = (nll.clone() * weighting.clone()).sum().backward();
        (nll, l.grad(&grads).unwrap(), x.grad(&grads).unwrap())
    };
    let (nll, dl, dx) = run(true);
    let (nll_ref, dl_ref, dx_ref) = run(false);
    close_any("bce", nll, nll_ref);
    close_any("bce logits grad", dl, dl_ref);
    close_any("bce targets grad", dx, dx_ref);
}
