//! Max and average pooling for inference, on the CPU.
//!
//! Flex pools with one scalar, bounds-checked loop per output pixel; in Inception's feature
//! extraction that was a fifth of the time (perf, 2-core VM: 12 % average pooling, 8 % max
//! pooling). A k×k window reduction is separable: reduce each input row over the k columns of
//! every window, then each output row over k of those rows. Each pass is k runs over whole rows,
//! which the compiler vectorizes, and with ±∞ / 0 as the start value no loop checks bounds.
//!
//! Forward only: under autodiff the default bodies run burn's operations (which record their
//! own backward pass), as they do off the CPU.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

/// Pooling without dilation or ceil mode, with the same padding on both sides of each axis.
#[backend_extension(Flex, Cube: cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda")), Autodiff)]
pub(crate) trait WindowPool: Backend {
    fn window_max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        Self::max_pool2d(x, kernel, stride, padding, [1, 1], false)
    }

    fn window_avg_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
    ) -> FloatTensor<Self> {
        Self::avg_pool2d(x, kernel, stride, padding, count_include_pad, false)
    }
}

/// `burn::tensor::module::max_pool2d` with symmetric padding and no dilation.
pub fn max_pool2d(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    Tensor::from_dispatch(Dispatch::window_max_pool2d(
        x.into_dispatch(),
        kernel,
        stride,
        padding,
    ))
}

/// `burn::tensor::module::avg_pool2d` with symmetric padding.
pub fn avg_pool2d(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    count_include_pad: bool,
) -> Tensor<4> {
    Tensor::from_dispatch(Dispatch::window_avg_pool2d(
        x.into_dispatch(),
        kernel,
        stride,
        padding,
        count_include_pad,
    ))
}

/// What a window reduces to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduction {
    Max,
    /// The mean over the window; `count_include_pad` counts padding as zeros in it.
    Mean {
        count_include_pad: bool,
    },
}

/// The window geometry of one pooling of [h, w] planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolGeometry {
    pub in_size: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl PoolGeometry {
    /// PyTorch's (floor-mode) output size, `None` when the window does not fit or the padding
    /// reaches past half the window (which PyTorch refuses too).
    pub fn out_size(&self) -> Option<[usize; 2]> {
        let side = |d: usize| {
            let (k, s, p) = (self.kernel[d], self.stride[d], self.padding[d]);
            if k == 0 || s == 0 || 2 * p > k {
                return None;
            }
            Some((self.in_size[d] + 2 * p).checked_sub(k)? / s + 1)
        };
        Some([side(0)?, side(1)?])
    }

    /// For window offset `k` along axis `d`: the outputs whose window reads an input there,
    /// `lo..hi`, and the input index of output `o` being `o·stride + k − padding`.
    fn valid_outputs(&self, d: usize, k: usize, out: usize) -> (usize, usize) {
        let (s, p, n) = (self.stride[d], self.padding[d], self.in_size[d]);
        let lo = p.saturating_sub(k).div_ceil(s);
        let hi = (n + p).saturating_sub(k).div_ceil(s).min(out);
        (lo.min(hi), hi)
    }

    /// How many of output `o`'s window positions along axis `d` lie inside the input.
    fn inside(&self, d: usize, o: usize) -> usize {
        let start = (o * self.stride[d]) as isize - self.padding[d] as isize;
        let end = start + self.kernel[d] as isize;
        (end.min(self.in_size[d] as isize) - start.max(0)) as usize
    }
}

/// Pools every [h, w] plane of `x` (planes stored one after another).
pub(crate) fn pool_planes(g: &PoolGeometry, reduction: Reduction, x: &[f32]) -> Vec<f32> {
    let [h, w] = g.in_size;
    let [oh, ow] = g.out_size().expect("a pooling window that fits");
    assert_eq!(x.len() % (h * w), 0, "whole planes");
    let planes = x.len() / (h * w);
    let mut y = vec![0.0; planes * oh * ow];
    let divisors = divisors(g, reduction, [oh, ow]);
    y.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each_init(Vec::new, |rows, (out, plane)| {
            // One monomorphized copy per reduction, so each combines inline and vectorizes.
            match reduction {
                Reduction::Max => pool_plane(g, plane, rows, out, ow, f32::NEG_INFINITY, f32::max),
                Reduction::Mean { .. } => {
                    pool_plane(g, plane, rows, out, ow, 0.0, |a, b| a + b);
                    out.iter_mut().zip(&divisors).for_each(|(v, d)| *v *= d);
                }
            }
        });
    y
}

/// `1/count` per output pixel for a mean (empty for a max).
fn divisors(g: &PoolGeometry, reduction: Reduction, [oh, ow]: [usize; 2]) -> Vec<f32> {
    match reduction {
        Reduction::Max => Vec::new(),
        Reduction::Mean {
            count_include_pad: true,
        } => vec![1.0 / (g.kernel[0] * g.kernel[1]) as f32; oh * ow],
        Reduction::Mean {
            count_include_pad: false,
        } => (0..oh * ow)
            .map(|i| 1.0 / (g.inside(0, i / ow) * g.inside(1, i % ow)) as f32)
            .collect(),
    }
}

/// One plane (`out` [oh, ow]) reduced by `combine` from `start`: each input row over the
/// window's columns into `rows` [h, ow], then each output row over the window's rows of those.
fn pool_plane(
    g: &PoolGeometry,
    plane: &[f32],
    rows: &mut Vec<f32>,
    out: &mut [f32],
    ow: usize,
    start: f32,
    combine: impl Fn(f32, f32) -> f32 + Copy,
) {
    let [h, w] = g.in_size;
    let oh = out.len() / ow;
    rows.clear();
    rows.resize(h * ow, start);
    let (sx, px) = (g.stride[1], g.padding[1]);
    for (row, input) in rows.chunks_mut(ow).zip(plane.chunks(w)) {
        for kx in 0..g.kernel[1] {
            let (lo, hi) = g.valid_outputs(1, kx, ow);
            if lo == hi {
                continue;
            }
            let first = lo * sx + kx - px;
            if sx == 1 {
                let source = &input[first..first + hi - lo];
                for (acc, &v) in row[lo..hi].iter_mut().zip(source) {
                    *acc = combine(*acc, v);
                }
            } else {
                for (acc, &v) in row[lo..hi]
                    .iter_mut()
                    .zip(input[first..].iter().step_by(sx))
                {
                    *acc = combine(*acc, v);
                }
            }
        }
    }
    out.fill(start);
    let (sy, py) = (g.stride[0], g.padding[0]);
    for ky in 0..g.kernel[0] {
        let (lo, hi) = g.valid_outputs(0, ky, oh);
        for oy in lo..hi {
            let source = &rows[(oy * sy + ky - py) * ow..][..ow];
            for (acc, &v) in out[oy * ow..][..ow].iter_mut().zip(source) {
                *acc = combine(*acc, v);
            }
        }
    }
}

/// The geometry of pooling `x`, when our kernel takes it (f32, a window that fits).
fn flex_geometry(
    x: &FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Option<([usize; 4], PoolGeometry)> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let [batch, channels, h, w] = x.shape().dims();
    let g = PoolGeometry {
        in_size: [h, w],
        kernel,
        stride,
        padding,
    };
    let [oh, ow] = g.out_size()?;
    (batch * channels * oh * ow > 0).then_some(([batch, channels, oh, ow], g))
}

fn flex_pool(
    x: &FlexTensor,
    g: &PoolGeometry,
    reduction: Reduction,
    shape: [usize; 4],
) -> FlexTensor {
    let contiguous = x.to_contiguous();
    let values = contiguous
        .as_slice::<f32>()
        .expect("a contiguous f32 tensor");
    FlexTensor::from_data(TensorData::new(pool_planes(g, reduction, values), shape))
}

impl WindowPool for Flex {
    fn window_max_pool2d(
        x: FlexTensor,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FlexTensor {
        match flex_geometry(&x, kernel, stride, padding) {
            Some((shape, g)) => flex_pool(&x, &g, Reduction::Max, shape),
            None => Flex::max_pool2d(x, kernel, stride, padding, [1, 1], false),
        }
    }

    fn window_avg_pool2d(
        x: FlexTensor,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
    ) -> FlexTensor {
        match flex_geometry(&x, kernel, stride, padding) {
            Some((shape, g)) => flex_pool(&x, &g, Reduction::Mean { count_include_pad }, shape),
            None => Flex::avg_pool2d(x, kernel, stride, padding, count_include_pad, false),
        }
    }
}

#[cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda"))]
impl WindowPool for burn::backend::Cube {}

impl<B: Backend, C: CheckpointStrategy> WindowPool for Autodiff<B, C> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: every window position read one by one.
    fn pool_by_definition(g: &PoolGeometry, reduction: Reduction, plane: &[f32]) -> Vec<f32> {
        let [oh, ow] = g.out_size().unwrap();
        let mut out = Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut max, mut sum, mut inside) = (f32::NEG_INFINITY, 0.0, 0);
                for ky in 0..g.kernel[0] {
                    for kx in 0..g.kernel[1] {
                        let y = (oy * g.stride[0] + ky) as isize - g.padding[0] as isize;
                        let x = (ox * g.stride[1] + kx) as isize - g.padding[1] as isize;
                        if y < 0
                            || x < 0
                            || y >= g.in_size[0] as isize
                            || x >= g.in_size[1] as isize
                        {
                            continue;
                        }
                        let v = plane[y as usize * g.in_size[1] + x as usize];
                        max = max.max(v);
                        sum += v;
                        inside += 1;
                    }
                }
                out.push(match reduction {
                    Reduction::Max => max,
                    Reduction::Mean {
                        count_include_pad: true,
                    } => sum / (g.kernel[0] * g.kernel[1]) as f32,
                    Reduction::Mean {
                        count_include_pad: false,
                    } => sum / inside as f32,
                });
            }
        }
        out
    }

    #[test]
    fn separable_pooling_matches_the_definition() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let cases = [
            ([7, 9], [3, 3], [1, 1], [1, 1]),
            ([7, 9], [3, 3], [2, 2], [0, 0]),
            ([8, 8], [8, 8], [1, 1], [0, 0]),
            ([10, 7], [3, 2], [2, 3], [1, 1]),
            ([5, 6], [2, 2], [2, 2], [0, 0]),
            ([9, 9], [5, 3], [3, 1], [2, 0]),
        ];
        let reductions = [
            Reduction::Max,
            Reduction::Mean {
                count_include_pad: true,
            },
            Reduction::Mean {
                count_include_pad: false,
            },
        ];
        for (in_size, kernel, stride, padding) in cases {
            let g = PoolGeometry {
                in_size,
                kernel,
                stride,
                padding,
            };
            let planes = 3;
            let x: Vec<f32> = (0..planes * in_size[0] * in_size[1])
                .map(|_| next())
                .collect();
            for reduction in reductions {
                let fast = pool_planes(&g, reduction, &x);
                let expected: Vec<f32> = x
                    .chunks(in_size[0] * in_size[1])
                    .flat_map(|plane| pool_by_definition(&g, reduction, plane))
                    .collect();
                assert_eq!(fast.len(), expected.len(), "{g:?} {reduction:?}");
                for (i, (a, b)) in fast.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-6,
                        "{g:?} {reduction:?} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}
