//! What happens to a product's output as it leaves the cache: the bias, the activation, and
//! their gradients (the activation's derivative, the per-channel bias sums).

use rayon::prelude::*;

use super::geometry::*;
use super::scratch::written_vec;

/// The non-linearity after a convolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    Tanh,
}

/// tanh as a rational function, Eigen's float approximation (odd degree-13 over even degree-6
/// polynomial on [−7.9, 7.9], where tanh rounds to ±1 beyond): within 4.1e-7 of the exact value,
/// no branches, so a loop over a plane vectorizes. libm's scalar `tanhf` made the tanh of
/// ESPCN's first layer cost 8 times its convolution.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const ALPHA: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const BETA: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = ALPHA[6];
    for a in ALPHA[..6].iter().rev() {
        p = p * x2 + a;
    }
    let mut q = BETA[3];
    for b in BETA[..3].iter().rev() {
        q = q * x2 + b;
    }
    x * p / q
}

/// What a layer does to a convolution's output before anything else reads it: add a bias per
/// channel, then an activation. Done as each unit's output leaves its product, while it is in
/// cache; as operations of their own, each was one more pass over the output and one more
/// autodiff node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// One value per output channel.
    pub bias: Option<&'a [f32]>,
    pub activation: Activation,
}

impl Epilogue<'_> {
    pub(super) fn is_none(&self) -> bool {
        self.bias.is_none() && self.activation == Activation::Identity
    }

    /// Adds the bias of `channel`, if any, to that channel's values.
    #[inline(always)]
    fn add_bias(&self, plane: &mut [f32], channel: usize) {
        if let Some(bias) = self.bias {
            let b = bias[channel];
            plane.iter_mut().for_each(|v| *v += b);
        }
    }

    /// Applies the activation in place, one loop per case so that each compiles to straight
    /// vector code. Over whole units, not plane by plane: a 7x7 plane's loop is mostly its
    /// remainder, which made ESPCN's first tanh cost as much as its product.
    #[inline(always)]
    fn activate(&self, values: &mut [f32]) {
        match self.activation {
            Activation::Identity => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Tanh => values.iter_mut().for_each(|v| *v = tanh(*v)),
        }
    }

    /// Applies the epilogue in place to whole images of `planes`, each `pixels` floats per
    /// channel.
    pub(super) fn apply(&self, planes: &mut [f32], channels: usize, pixels: usize) {
        if self.is_none() {
            return;
        }
        crate::ops::vectorized(
            #[inline(always)]
            || {
                if self.bias.is_some() {
                    for (index, plane) in planes.chunks_exact_mut(pixels).enumerate() {
                        self.add_bias(plane, index % channels);
                    }
                }
                self.activate(planes);
            },
        )
    }
}

/// The inverse of [`gather_output`], into the `images` images at the start of `y`, through
/// `epilogue`.
pub(super) fn scatter_output(
    g: &ConvGeometry,
    rows: &[f32],
    images: usize,
    y: &mut [f32],
    ld: usize,
    epilogue: Epilogue,
) {
    let pixels = g.out_pixels();
    let image_len = g.out_channels * pixels;
    // One task per image: its planes are short (49 floats at 7x7), so per plane the tasks cost
    // more than the copies, and the activation runs best over the whole image at once.
    y[..images * image_len]
        .par_chunks_mut(image_len)
        .enumerate()
        .for_each(|(i, image)| {
            crate::ops::vectorized(
                #[inline(always)]
                || {
                    for (co, dst) in image.chunks_exact_mut(pixels).enumerate() {
                        dst.copy_from_slice(&rows[co * ld + i * pixels..][..pixels]);
                        epilogue.add_bias(dst, co);
                    }
                    epilogue.activate(image);
                },
            )
        });
}

/// The gradient at `activation`'s input from its output `y` and the gradient `dy` there.
pub fn activation_grad(activation: Activation, dy: &[f32], y: &[f32]) -> Vec<f32> {
    assert_eq!(dy.len(), y.len());
    const BLOCK: usize = 1 << 14;
    let write = |grad: &mut [f32]| {
        grad.par_chunks_mut(BLOCK)
            .zip(dy.par_chunks(BLOCK).zip(y.par_chunks(BLOCK)))
            .for_each(|(out, (dy, y))| {
                crate::ops::vectorized(
                    #[inline(always)]
                    || {
                        let pairs = out.iter_mut().zip(dy).zip(y);
                        // One loop per activation, so that each compiles to straight vector code.
                        match activation {
                            Activation::Identity => out.copy_from_slice(dy),
                            Activation::Relu => {
                                pairs.for_each(|((o, &d), &y)| *o = if y > 0.0 { d } else { 0.0 })
                            }
                            Activation::Tanh => {
                                pairs.for_each(|((o, &d), &y)| *o = d * (1.0 - y * y))
                            }
                        }
                    },
                )
            });
    };
    // SAFETY: every float of `grad` is written, each block by one task, and none is read.
    unsafe { written_vec(dy.len(), write) }
}

/// `t[i, c, p]` summed over images `i` and pixels `p`, `[channels]`: the gradient of a bias added
/// to every pixel of a channel. Sums run in 16 lanes so that the compiler vectorizes them, and
/// in the same order whichever thread takes which image, so that a resumed run repeats the
/// numbers of an uninterrupted one bit for bit.
pub fn channel_sums(t: &[f32], channels: usize, pixels: usize) -> Vec<f32> {
    const LANES: usize = 16;
    let plane_sum = |plane: &[f32]| {
        let mut lanes = [0.0f32; LANES];
        let blocks = plane.chunks_exact(LANES);
        let rest: f32 = blocks.remainder().iter().sum();
        for block in blocks {
            lanes.iter_mut().zip(block).for_each(|(l, v)| *l += v);
        }
        lanes.iter().sum::<f32>() + rest
    };
    let image_len = (channels * pixels).max(1);
    let mut per_image = vec![0.0f32; t.len() / image_len * channels];
    per_image
        .par_chunks_mut(channels.max(1))
        .zip(t.par_chunks(image_len))
        .for_each(|(sums, image)| {
            for (sum, plane) in sums.iter_mut().zip(image.chunks_exact(pixels.max(1))) {
                *sum = plane_sum(plane);
            }
        });
    let mut total = vec![0.0f32; channels];
    for sums in per_image.chunks_exact(channels.max(1)) {
        total.iter_mut().zip(sums).for_each(|(t, s)| *t += s);
    }
    total
}
