use super::*;

/// The input coordinate a kernel tap reads for output coordinate `o` along dimension `d`,
/// or `None` in the padding.
fn source(g: &ConvGeometry, d: usize, o: usize, tap: usize) -> Option<usize> {
    (o * g.stride[d] + tap * g.dilation[d])
        .checked_sub(g.padding[d])
        .filter(|&i| i < g.in_size[d])
}

/// The definition, one multiply-add at a time.
fn direct(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    let [oh, ow] = g.out_size;
    let [ih, iw] = g.in_size;
    let mut y = vec![0.0; g.output_len()];
    for n in 0..g.batch {
        for co in 0..g.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = 0.0f64;
                    for c in 0..g.in_channels {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let (Some(iy), Some(ix)) =
                                    (source(g, 0, oy, ky), source(g, 1, ox, kx))
                                else {
                                    continue;
                                };
                                sum += (x[((n * g.in_channels + c) * ih + iy) * iw + ix]
                                    * w[((co * g.in_channels + c) * kh + ky) * kw + kx])
                                    as f64;
                            }
                        }
                    }
                    y[((n * g.out_channels + co) * oh + oy) * ow + ox] = sum as f32;
                }
            }
        }
    }
    y
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32)
        .map(|v| v / (1u32 << 24) as f32 - 0.5)
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum()
}

fn geometries() -> Vec<ConvGeometry> {
    let mut out = Vec::new();
    // (c_in, c_out, in side, kernel, stride, padding, dilation, pad_end)
    for (c_in, c_out, side, k, s, p, d, pad_end) in [
        (3, 4, 8, 4, 2, 1, 1, 1),    // DCGAN down-sampling
        (2, 5, 7, 3, 1, 1, 1, 1),    // same-size 3x3
        (3, 2, 9, 3, 2, 0, 1, 0),    // Inception stem, odd side
        (4, 3, 6, 1, 1, 0, 1, 0),    // 1x1
        (2, 3, 9, 3, 1, 2, 2, 2),    // dilated
        (5, 2, 7, 3, 1, 1, 1, 1),    // fewer outputs than inputs: the input gradient's adjoint
        (3, 2, 9, 3, 1, 1, 2, 2),    // the same, dilated with padding at one end only
        (2, 2, 5, 4, 1, 3, 1, 3),    // the full padding of a transposed convolution
        (1, 2, 4, 4, 1, 0, 1, 0),    // kernel as large as the input
        (2, 3, 11, 2, 3, 1, 1, 0),   // stride larger than the kernel: skipped pixels
        (2, 3, 17, 3, 1, 1, 1, 0),   // ≥ 256 output pixels, but a small product: chunks
        (16, 64, 32, 3, 1, 1, 1, 0), // ≥ 256 output pixels, 1 M multiply-adds: image by image
        (32, 32, 32, 1, 1, 0, 1, 0), // pointwise, image by image: no im2col
        (4, 16, 66, 4, 2, 1, 1, 1),  // strided, image by image
        (8, 12, 14, 3, 1, 1, 1, 1),  // "same" 3x3: channels-last frames
        (9, 8, 15, 5, 1, 2, 1, 2),   // "same" 5x5
    ] {
        let mut g = ConvGeometry {
            batch: 3,
            in_channels: c_in,
            out_channels: c_out,
            in_size: [side, side + 1],
            out_size: [0, 0],
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
            dilation: [d, d],
        };
        g.out_size = g.natural_out_size([pad_end, pad_end]).unwrap();
        out.push(g);
    }
    // Square sides that the stride divides: output rows as long as sub-plane rows, so im2col
    // copies whole blocks (see `Phases::block_copy`).
    for (c_in, c_out, side, k, s, p) in [
        (3, 4, 8, 4, 2, 1),   // DCGAN down-sampling
        (2, 5, 7, 3, 1, 1),   // same-size 3x3
        (2, 3, 6, 3, 2, 1),   // odd kernel, stride 2
        (8, 16, 64, 4, 2, 1), // image by image
    ] {
        let mut g = ConvGeometry {
            batch: 3,
            in_channels: c_in,
            out_channels: c_out,
            in_size: [side, side],
            out_size: [0, 0],
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
            dilation: [1, 1],
        };
        g.out_size = g.natural_out_size([p, p]).unwrap();
        assert!(Phases::new(&g).block_copy(&g), "{g:?}");
        out.push(g);
    }
    // Rows as long as the output's but fewer of them (padding after the columns only): the
    // block path without strips.
    out.push(ConvGeometry {
        batch: 3,
        in_channels: 2,
        out_channels: 3,
        in_size: [7, 6],
        out_size: [6, 6],
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
    });
    // Halving convolutions, run as stride-1 ones on the input's stride phases: DCGAN's and
    // the U-Net's 4x4 on a non-square input, a 6x6 (padding 2), and stride 3 with a 3x3.
    for (c_in, c_out, in_size, k, s) in [
        (32, 5, [32, 28], 4, 2),
        (32, 3, [32, 32], 6, 2),
        (16, 2, [45, 48], 3, 3),
    ] {
        out.push(ConvGeometry {
            batch: 3,
            in_channels: c_in,
            out_channels: c_out,
            in_size,
            out_size: in_size.map(|side| side / s),
            kernel: [k, k],
            stride: [s, s],
            padding: [(k - s) / 2; 2],
            dilation: [1, 1],
        });
    }
    // A kernel as large as the input, no padding: the dense path (DCGAN's last layer).
    let dense = ConvGeometry {
        batch: 3,
        in_channels: 5,
        out_channels: 2,
        in_size: [4, 3],
        out_size: [1, 1],
        kernel: [4, 3],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
    };
    assert!(dense.dense());
    out.push(dense);
    out
}

#[test]
fn transposes_match_the_definition() {
    for [rows, cols, src_ld, dst_ld] in [
        [13, 21, 24, 16],
        [8, 16, 16, 8],
        [1, 9, 9, 3],
        [69, 130, 131, 80],
        [128, 1040, 1040, 128],
        [14, 64, 196, 64],
        [29, 35, 40, 33],
    ] {
        let src = values(rows * src_ld, 3);
        // All threads, this one (AVX tiles where the CPU has them), and the SSE fallback.
        for way in 0..3 {
            let mut dst = vec![f32::NAN; cols * dst_ld];
            match way {
                0 => par_transpose(&src, [rows, cols], src_ld, &mut dst, dst_ld),
                1 => transpose(&src, [rows, cols], src_ld, &mut dst, dst_ld),
                _ => gemm::transpose_sse(&src, [rows, cols], src_ld, &mut dst, dst_ld),
            }
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * dst_ld + r], src[r * src_ld + c], "({r}, {c})");
                }
            }
            // Nothing written past a row's end (the edge tiles store only their part).
            let written = dst.iter().filter(|v| !v.is_nan()).count();
            assert_eq!(written, rows * cols, "{rows}x{cols}");
        }
    }
}

#[test]
fn forward_matches_the_definition() {
    let all = geometries();
    assert!(all.iter().any(|g| g.per_image() && g.pointwise()));
    assert!(all.iter().any(|g| g.per_image() && !g.pointwise()));
    // Both im2col layouts: strips where the sub-planes are aligned with the output, and
    // image by image where they are not.
    let aligned = |g: &ConvGeometry| Phases::new(g).aligned(g);
    assert!(all.iter().any(|g| aligned(g) && g.per_image()));
    assert!(all.iter().any(|g| aligned(g) && !g.per_image()));
    assert!(all.iter().filter(|g| frames::same(g)).count() >= 2);
    assert!(all.iter().filter(|g| frames::halving(g)).count() >= 3);
    assert!(
        all.iter()
            .any(|g| !aligned(g) && Phases::new(g).block_copy(g))
    );
    for g in all {
        let x = values(g.input_len(), 1);
        let w = values(g.weight_len(), 2);
        let fast = conv_forward(&g, &x, &w, Epilogue::default());
        let slow = direct(&g, &x, &w);
        for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
            assert!((a - b).abs() < 1e-4, "{g:?} at {i}: {a} vs {b}");
        }
    }
}

/// With an epilogue, both products that make an output (the forward pass, and the input
/// gradient as a transposed convolution's forward pass) add the bias to every pixel of its
/// channel, then apply the activation; [`channel_sums`] is the bias's gradient (the output
/// gradient summed per channel) and [`activation_grad`] the activation's.
#[test]
fn epilogues_add_the_bias_and_apply_the_activation() {
    let per_channel = |t: &[f32], channels: usize, pixels: usize| -> Vec<f64> {
        let mut sums = vec![0.0f64; channels];
        for (index, plane) in t.chunks(pixels).enumerate() {
            sums[index % channels] += plane.iter().map(|&v| v as f64).sum::<f64>();
        }
        sums
    };
    let (mut cut, mut kept) = (false, false);
    for g in geometries() {
        let x = values(g.input_len(), 6);
        let w = values(g.weight_len(), 7);
        let dy = values(g.output_len(), 8);
        let (out_bias, in_bias) = (values(g.out_channels, 9), values(g.in_channels, 10));
        let with = |bias, activation| Epilogue { bias, activation };
        let none = Epilogue::default();
        let forward = |e| conv_forward(&g, &x, &w, e);
        let transposed = |e| conv_input_grad(&g, &dy, &w, e);
        let cases = [
            (
                forward(with(Some(&out_bias), Activation::Identity)),
                forward(with(Some(&out_bias), Activation::Relu)),
                forward(with(Some(&out_bias), Activation::Tanh)),
                forward(none),
                &out_bias,
                g.out_pixels(),
            ),
            (
                transposed(with(Some(&in_bias), Activation::Identity)),
                transposed(with(Some(&in_bias), Activation::Relu)),
                transposed(with(Some(&in_bias), Activation::Tanh)),
                transposed(none),
                &in_bias,
                g.in_pixels(),
            ),
        ];
        for (with, rectified, squashed, without, bias, pixels) in cases {
            let channels = bias.len();
            let rows = with.iter().zip(&rectified).zip(&squashed).zip(&without);
            for (i, (((a, r), t), b)) in rows.enumerate() {
                let expected = b + bias[i / pixels % channels];
                assert!(
                    (a - expected).abs() < 1e-5,
                    "{g:?} at {i}: {a} vs {expected}"
                );
                assert!(*r == a.max(0.0), "{g:?} at {i}: ReLU {r} of {a}");
                assert!(*t == tanh(*a), "{g:?} at {i}: tanh {t} of {a}");
            }
            cut |= rectified.contains(&0.0);
            kept |= rectified.iter().any(|&r| r > 0.0);
            let masked = activation_grad(Activation::Relu, &without, &rectified);
            for ((m, d), r) in masked.iter().zip(&without).zip(&rectified) {
                assert!(*m == if *r > 0.0 { *d } else { 0.0 });
            }
            let scaled = activation_grad(Activation::Tanh, &without, &squashed);
            for ((s, d), t) in scaled.iter().zip(&without).zip(&squashed) {
                assert!(*s == d * (1.0 - t * t));
            }
            let sums = channel_sums(&with, channels, pixels);
            let exact = per_channel(&with, channels, pixels);
            for (a, b) in sums.iter().zip(&exact) {
                assert!(
                    (*a as f64 - b).abs() < 1e-3 * b.abs().max(1.0),
                    "{g:?}: {a} vs {b}"
                );
            }
        }
    }
    assert!(cut && kept, "the ReLU cut some outputs and kept others");
}

/// Both gradients through the adjoint identity: for any dy,
/// ⟨conv(x, w), dy⟩ = ⟨x, ∂x⟩ = ⟨w, ∂w⟩, since the convolution is linear in each.
#[test]
fn gradients_are_the_adjoints_of_the_forward() {
    let all = geometries();
    // Both ways to the input gradient: col2im, and the forward pass of the adjoint convolution.
    let adjoint = |g: &ConvGeometry| g.adjoint().is_some() && g.out_channels < g.in_channels;
    assert!(all.iter().filter(|g| adjoint(g)).count() >= 2);
    assert!(
        all.iter()
            .any(|g| !adjoint(g) && !g.dense() && !g.pointwise())
    );
    for g in all {
        let x = values(g.input_len(), 3);
        let w = values(g.weight_len(), 4);
        let dy = values(g.output_len(), 5);
        let forward = dot(&direct(&g, &x, &w), &dy);
        let via_input = dot(&x, &conv_input_grad(&g, &dy, &w, Epilogue::default()));
        let via_weight = dot(&w, &conv_weight_grad(&g, &x, &dy));
        let tolerance = 1e-4 * forward.abs().max(1.0);
        assert!(
            (forward - via_input).abs() < tolerance,
            "{g:?}: {forward} vs {via_input}"
        );
        assert!(
            (forward - via_weight).abs() < tolerance,
            "{g:?}: {forward} vs {via_weight}"
        );
    }
}

/// 10 images of a 2048-float patch × 64 pixels exceed the budget: several chunks.
fn chunked() -> ConvGeometry {
    let mut g = ConvGeometry {
        batch: 10,
        in_channels: 128,
        out_channels: 3,
        in_size: [16, 16],
        out_size: [0, 0],
        kernel: [4, 4],
        stride: [2, 2],
        padding: [1, 1],
        dilation: [1, 1],
    };
    g.out_size = g.natural_out_size([1, 1]).unwrap();
    g
}

#[test]
fn chunks_give_the_same_answer_as_one_pass() {
    let g = chunked();
    assert!(!g.per_image() && g.chunk() < g.batch);
    let x = values(g.input_len(), 6);
    let w = values(g.weight_len(), 7);
    let dy = values(g.output_len(), 8);
    let dw = conv_weight_grad(&g, &x, &dy);
    let mut single = g;
    single.batch = 1;
    let per_image = g.input_len() / g.batch;
    let out_per_image = g.output_len() / g.batch;
    let mut summed = vec![0.0f32; dw.len()];
    for i in 0..g.batch {
        let part = conv_weight_grad(
            &single,
            &x[i * per_image..][..per_image],
            &dy[i * out_per_image..][..out_per_image],
        );
        summed.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    for (a, b) in dw.iter().zip(&summed) {
        assert!((a - b).abs() < 1e-3 * b.abs().max(1.0), "{a} vs {b}");
    }
    // The input gradient of each image is its own (with an epilogue: every chunk applies it).
    let bias = values(g.in_channels, 12);
    let epilogue = Epilogue {
        bias: Some(&bias),
        activation: Activation::Relu,
    };
    let dx = conv_input_grad(&g, &dy, &w, epilogue);
    for i in [0, g.batch / 2, g.batch - 1] {
        let dy = &dy[i * out_per_image..][..out_per_image];
        let alone = conv_input_grad(&single, dy, &w, epilogue);
        for (a, b) in dx[i * per_image..][..per_image].iter().zip(&alone) {
            assert!(
                (a - b).abs() < 1e-4 * b.abs().max(1.0),
                "image {i}: {a} vs {b}"
            );
        }
    }
}

/// Sums over units and images come out bit for bit the same whichever thread takes which
/// part, so that a resumed training run repeats an uninterrupted one exactly.
#[test]
fn sums_do_not_depend_on_scheduling() {
    let image_by_image = |g: &ConvGeometry| g.per_image() && !g.pointwise() && !frames::same(g);
    let all = geometries();
    let picks = [
        all.iter().find(|g| image_by_image(g)),
        all.iter().find(|g| frames::same(g)),
        all.iter().find(|g| frames::halving(g)),
    ];
    for mut g in picks.map(|g| *g.unwrap()) {
        g.batch = 24;
        sums_repeat(&g);
    }
}

fn sums_repeat(g: &ConvGeometry) {
    let g = *g;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let (x, dy) = (values(g.input_len(), 14), values(g.output_len(), 15));
    let (first_dw, first_db) = pool.install(|| {
        let first_dw = conv_weight_grad(&g, &x, &dy);
        let first_db = channel_sums(&dy, g.out_channels, g.out_pixels());
        (first_dw, first_db)
    });
    for _ in 0..20 {
        pool.install(|| {
            assert!(conv_weight_grad(&g, &x, &dy) == first_dw);
            assert!(channel_sums(&dy, g.out_channels, g.out_pixels()) == first_db);
        });
    }
}

#[test]
fn units_side_by_side_match_one_after_another() {
    // One thread runs every unit in turn, each product on all threads (here one); three
    // run units side by side, each product on one thread, with a batch that does not
    // divide evenly. Both must give the same numbers, for chunks and image by image.
    let mut per_image = geometries()
        .into_iter()
        .find(|g| g.per_image() && !g.pointwise() && !frames::same(g))
        .unwrap();
    per_image.batch = 4;
    let mut same_size = geometries().into_iter().find(frames::same).unwrap();
    // Fewer images than threads: one image at a time, each product on all threads.
    same_size.batch = 2;
    let pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    for g in [chunked(), per_image, same_size] {
        let x = values(g.input_len(), 9);
        let w = values(g.weight_len(), 10);
        let dy = values(g.output_len(), 11);
        let (out_bias, in_bias) = (values(g.out_channels, 12), values(g.in_channels, 13));
        let epilogue = |bias| Epilogue {
            bias: Some(bias),
            activation: Activation::Tanh,
        };
        let all = || {
            let units = Units::new(&g);
            let results = [
                conv_forward(&g, &x, &w, epilogue(&out_bias)),
                conv_input_grad(&g, &dy, &w, epilogue(&in_bias)),
                conv_weight_grad(&g, &x, &dy),
            ];
            (units, results)
        };
        let (one_units, one) = pool(1).install(all);
        let (three_units, three) = pool(3).install(all);
        assert!(frames::same(&g) || !one_units.side_by_side && three_units.side_by_side);
        assert!(three_units.count.is_multiple_of(3) || g.per_image() || frames::same(&g));
        for (a, b) in one.iter().zip(&three) {
            for (a, b) in a.iter().zip(b) {
                assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}

#[test]
fn the_rational_tanh_is_within_5e_7_of_the_exact_one() {
    let mut worst = 0.0f64;
    for i in -400_000..=400_000 {
        let x = i as f32 * 5e-5; // [-20, 20]
        let error = (tanh(x) as f64 - (x as f64).tanh()).abs();
        worst = worst.max(error);
    }
    assert!(worst < 5e-7, "largest error {worst:e}");
    assert_eq!(tanh(0.0), 0.0);
    assert_eq!(tanh(100.0), 1.0);
    assert_eq!(tanh(-100.0), -1.0);
}
