//! What happens to a product's output as it leaves the cache: the bias, the activation, and
//! their gradients (the activation's derivative, the per-channel bias sums).

use rayon::prelude::*;

use super::geometry::*;

/// The non-linearity after a convolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Activation {
    #[default]
    Identity,
    Relu,
    Tanh,
}

impl Activation {
    pub(super) fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Identity => v,
            Activation::Relu => v.max(0.0),
            Activation::Tanh => v.tanh(),
        }
    }
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

    pub(super) fn value(&self, v: f32, channel: usize) -> f32 {
        let v = self.bias.map_or(v, |bias| v + bias[channel]);
        self.activation.apply(v)
    }

    /// Applies the epilogue in place to whole images of `planes`, each `pixels` floats per
    /// channel.
    pub(super) fn apply(&self, planes: &mut [f32], channels: usize, pixels: usize) {
        if self.is_none() {
            return;
        }
        for (index, plane) in planes.chunks_exact_mut(pixels).enumerate() {
            let channel = index % channels;
            plane.iter_mut().for_each(|v| *v = self.value(*v, channel));
        }
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
    y[..images * g.out_channels * pixels]
        .par_chunks_mut(pixels)
        .enumerate()
        .for_each(|(index, dst)| {
            let (i, co) = (index / g.out_channels, index % g.out_channels);
            let src = &rows[co * ld + i * pixels..][..pixels];
            if epilogue.is_none() {
                dst.copy_from_slice(src);
            } else {
                dst.iter_mut()
                    .zip(src)
                    .for_each(|(d, &s)| *d = epilogue.value(s, co));
            }
        });
}

/// The gradient at `activation`'s input from its output `y` and the gradient `dy` there.
pub fn activation_grad(activation: Activation, dy: &[f32], y: &[f32]) -> Vec<f32> {
    assert_eq!(dy.len(), y.len());
    const BLOCK: usize = 1 << 14;
    let mut grad = vec![0.0f32; dy.len()];
    grad.par_chunks_mut(BLOCK)
        .zip(dy.par_chunks(BLOCK).zip(y.par_chunks(BLOCK)))
        .for_each(|(out, (dy, y))| {
            let pairs = out.iter_mut().zip(dy).zip(y);
            // One loop per activation, so that each compiles to straight vector code.
            match activation {
                Activation::Identity => out.copy_from_slice(dy),
                Activation::Relu => {
                    pairs.for_each(|((o, &d), &y)| *o = if y > 0.0 { d } else { 0.0 })
                }
                Activation::Tanh => pairs.for_each(|((o, &d), &y)| *o = d * (1.0 - y * y)),
            }
        });
    grad
}

/// `t[i, c, p]` summed over images `i` and pixels `p`, [channels]: the gradient of a bias added
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
