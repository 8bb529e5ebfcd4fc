//! `pca --stream`: the eigen fit from statistics read a chunk at a time equals the in-memory fit.
//! The million-row run (README, docs/scaling.md) is
//! `cargo test --release --test pca_stream -- --ignored --nocapture`.

mod common;

use std::path::Path;

use common::{assert_bad_input, assert_success, latentlab, temp_out};

fn metrics(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
}

fn components(out: &Path) -> Vec<u8> {
    let bytes = std::fs::read(out.join("pca.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tensors.tensor("components").unwrap().data().to_vec()
}

#[test]
fn streamed_pca_of_an_idx_folder_equals_the_in_memory_fit() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fashion-mnist-subset");
    let (memory, streamed) = (temp_out("pca-memory"), temp_out("pca-streamed"));
    for (out, extra) in [
        (&memory, vec![]),
        (&streamed, vec!["--stream", "--chunk-rows", "777"]),
    ] {
        let mut args = vec!["pca", "--data", data, "--k", "20", "--quiet", "--out"];
        args.push(out.to_str().unwrap());
        args.extend(extra);
        assert_success(&latentlab(&args));
    }
    let (a, b) = (metrics(&memory), metrics(&streamed));
    assert_eq!(a["explained_variance_ratio"], b["explained_variance_ratio"]);
    assert_eq!(a["total_variance"], b["total_variance"]);
    assert_eq!(components(&memory), components(&streamed));
    assert_eq!(b["n_train"], 10_000);
    assert!(b["streamed"]["peak_rss_mib"].as_f64().unwrap() > 0.0);
    assert!(streamed.join("components.png").is_file());
    for out in [memory, streamed] {
        let _ = std::fs::remove_dir_all(out);
    }
}

#[test]
fn streamed_pca_reads_npy_and_refuses_what_it_cannot_stream() {
    let out = temp_out("pca-npy");
    std::fs::create_dir_all(&out).unwrap();
    let matrix = out.join("m.npy");
    let mut i = 0u32;
    latentlab::data::stream::write_npy_u8(&matrix, 500, 16, |row| {
        for (j, v) in row.iter_mut().enumerate() {
            i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *v = ((i >> 16) as u8 / 4).wrapping_add((j * (i as usize % 7)) as u8);
        }
    })
    .unwrap();
    let fit = out.join("fit");
    assert_success(&latentlab(&[
        "pca",
        "--stream",
        "--data",
        matrix.to_str().unwrap(),
        "--k",
        "0.9",
        "--quiet",
        "--out",
        fit.to_str().unwrap(),
    ]));
    assert_eq!(metrics(&fit)["dimensions"], 16);
    assert!(
        fit.join("components.png").is_file(),
        "16 values: 4x4 images"
    );

    let run = |args: &[&str]| {
        let mut all = vec!["pca", "--stream", "--quiet", "--force", "--out"];
        all.push(fit.to_str().unwrap());
        all.extend(args);
        latentlab(&all)
    };
    assert_bad_input(&run(&["--data", "embedded"]), "reads --data PATH from disk");
    assert_bad_input(
        &run(&["--data", matrix.to_str().unwrap(), "--solver", "svd"]),
        "needs the rows in memory",
    );
    std::fs::write(&matrix, b"\x93NUMPY\x01\x00").unwrap();
    assert_bad_input(
        &run(&["--data", matrix.to_str().unwrap()]),
        "not a usable .npy matrix",
    );
    let _ = std::fs::remove_dir_all(out);
}

/// A million rows of 784 bytes (750 MB on disk, seeded): streamed with bounded memory, and equal
/// to the in-memory eigen fit of the same bytes.
#[test]
#[ignore = "minutes and 750 MB of disk; docs/scaling.md"]
fn a_million_rows_stream_in_bounded_memory_and_equal_the_in_memory_fit() {
    use rand::{RngExt, SeedableRng};
    let (rows, width) = (1_000_000u64, 784usize);
    let out = temp_out("pca-million");
    std::fs::create_dir_all(&out).unwrap();
    let matrix = out.join("million.npy");
    // Eight directions with decreasing weights over noise: a spectrum whose top is well separated.
    let mut rng = rand::rngs::StdRng::seed_from_u64(27);
    let directions: Vec<Vec<f32>> = (0..8)
        .map(|_| (0..width).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let started = std::time::Instant::now();
    latentlab::data::stream::write_npy_u8(&matrix, rows, width, |row| {
        let weights: Vec<f32> = (0..8)
            .map(|k| rng.random_range(-1.0f32..1.0) * 60.0 / (k + 1) as f32)
            .collect();
        for (j, v) in row.iter_mut().enumerate() {
            let mut x = 128.0 + rng.random_range(-8.0f32..8.0);
            for (w, direction) in weights.iter().zip(&directions) {
                x += w * direction[j];
            }
            *v = x.clamp(0.0, 255.0) as u8;
        }
    })
    .unwrap();
    eprintln!(
        "wrote {} in {:.0} s",
        matrix.display(),
        started.elapsed().as_secs_f64()
    );

    let fit = out.join("fit");
    let started = std::time::Instant::now();
    assert_success(&latentlab(&[
        "pca",
        "--stream",
        "--data",
        matrix.to_str().unwrap(),
        "--k",
        "20",
        "--quiet",
        "--out",
        fit.to_str().unwrap(),
    ]));
    let wall = started.elapsed().as_secs_f64();
    let streamed = metrics(&fit);
    let peak = streamed["streamed"]["peak_rss_mib"].as_f64().unwrap();
    eprintln!(
        "streamed: {wall:.1} s in all, fit {:.1} s, peak RSS {peak:.0} MiB",
        streamed["fit_seconds"].as_f64().unwrap()
    );
    assert!(peak < 200.0, "peak RSS {peak} MiB");

    // In memory: the whole matrix, then the same eigen fit.
    let bytes = std::fs::read(&matrix).unwrap();
    let data = &bytes[bytes.len() - rows as usize * width..];
    let config = latentlab::pca::PcaConfig::new(
        latentlab::pca::Components::Count(20),
        latentlab::pca::Solver::Eigen,
    );
    let started = std::time::Instant::now();
    let in_memory = latentlab::pca::Pca::fit_bytes(data, rows as usize, 255.0, &config).unwrap();
    eprintln!("in memory: fit {:.1} s", started.elapsed().as_secs_f64());
    let loaded = latentlab::pca::Pca::load(&fit.join("pca.safetensors")).unwrap();
    let mut largest_gap = 0f64;
    for i in 0..20 {
        for j in 0..width {
            largest_gap =
                largest_gap.max((loaded.components[(i, j)] - in_memory.components[(i, j)]).abs());
        }
    }
    eprintln!("largest component difference: {largest_gap:e}");
    assert!(largest_gap <= 1e-9, "{largest_gap}");
    let _ = std::fs::remove_dir_all(out);
}
