//! Tests of the forward process, the samplers and the pipeline against their formulas.

use super::*;

const T: usize = 1000;

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn image(device: &Device, seed: u32) -> Tensor<4> {
    let v: Vec<f32> = (0..2 * 4 * 4u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [2, 1, 4, 4]), device)
}

#[test]
fn alpha_bar_falls_from_one_to_pure_noise_at_any_t() {
    for steps in [50, 100, 250, T] {
        for kind in [Schedule::Linear, Schedule::Cosine] {
            let s = NoiseSchedule::new(kind, steps);
            assert_eq!(s.alpha_bar(0), 1.0);
            for t in 1..=steps {
                assert!(
                    s.beta(t) > 0.0 && s.beta(t) < 1.0,
                    "{kind:?} T {steps} β_{t}"
                );
                assert!(s.alpha_bar(t) < s.alpha_bar(t - 1), "{kind:?} at {t}");
                assert!(s.alpha_bar(t) > 0.0, "{kind:?} at {t}");
            }
            // Samplers start from N(0, I): x_T must be nearly pure noise.
            let last = s.alpha_bar(steps);
            assert!(last < 1e-3, "{kind:?} T {steps}: ᾱ_T {last}");
        }
    }
    // Ho et al.'s linear schedule: ᾱ_T ≈ 4.0·10⁻⁵.
    let linear = NoiseSchedule::new(Schedule::Linear, T).alpha_bar(T);
    assert!((linear - 4.04e-5).abs() < 0.1e-5, "{linear}");
}

#[test]
fn schedules_follow_their_formulas() {
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-12, "{what}: {a} vs {b}");
    // Linear: β_t = (1000/T)·(10⁻⁴ + (0.02 − 10⁻⁴)·(t − 1)/(T − 1)).
    for steps in [50, 250, T] {
        let s = NoiseSchedule::new(Schedule::Linear, steps);
        let scale = 1000.0 / steps as f64;
        for t in [1, steps / 2, steps] {
            let want = scale * (1e-4 + (0.02 - 1e-4) * (t - 1) as f64 / (steps - 1) as f64);
            close(s.beta(t), want, &format!("linear T {steps} β_{t}"));
        }
        let product: f64 = (1..=7).map(|t| 1.0 - s.beta(t)).product();
        close(s.alpha_bar(7), product, "ᾱ_7 = Π (1 − β)");
    }
    // Cosine: ᾱ_t = f(t)/f(0) where β is not capped.
    let f = |t: f64, steps: f64| {
        (((t / steps + 0.008) / 1.008) * std::f64::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    for steps in [100, T] {
        let s = NoiseSchedule::new(Schedule::Cosine, steps);
        for t in [1, steps / 4, steps / 2, 3 * steps / 4] {
            let want = f(t as f64, steps as f64) / f(0.0, steps as f64);
            close(s.alpha_bar(t), want, &format!("cosine T {steps} ᾱ_{t}"));
        }
        assert!(s.beta(steps) <= 0.999);
    }
}

#[test]
fn runs_trained_before_the_scaling_keep_their_schedule() {
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let config = DiffusionConfig::new(DenoiserConfig::new(shape))
        .with_schedule(Schedule::Linear)
        .with_timesteps(100);
    assert_eq!(config.linear_betas_scaled, Some(true));
    assert!((config.noise_schedule().beta(100) - 0.2).abs() < 1e-12);
    // What an older config.json holds: no field, unscaled endpoints.
    let mut json: serde_json::Value = serde_json::to_value(&config).unwrap();
    json.as_object_mut().unwrap().remove("linear_betas_scaled");
    let old: DiffusionConfig = serde_json::from_value(json).unwrap();
    assert_eq!(old.linear_betas_scaled, None);
    let schedule = old.noise_schedule();
    assert!((schedule.beta(1) - 1e-4).abs() < 1e-15 && (schedule.beta(100) - 0.02).abs() < 1e-15);
    // Its ᾱ_T is the 0.36 it was trained with.
    assert!(
        (schedule.alpha_bar(100) - 0.36).abs() < 0.01,
        "{}",
        schedule.alpha_bar(100)
    );
}

#[test]
fn q_sample_has_the_closed_form_mean_and_variance() {
    let device = Device::flex();
    device.seed(1);
    let schedule = NoiseSchedule::new(Schedule::Cosine, T);
    let draws = 20_000;
    for t in [1, 250, 700] {
        // One pixel value, many independent draws of ε.
        let x0 = Tensor::<4>::ones([draws, 1, 1, 1], &device) * 0.6;
        let noise = Tensor::random([draws, 1, 1, 1], Distribution::Normal(0.0, 1.0), &device);
        let xt = values(schedule.q_sample(x0, &vec![t; draws], noise));
        let mean = xt.iter().map(|&v| v as f64).sum::<f64>() / draws as f64;
        let var = xt.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / draws as f64;
        let a = schedule.alpha_bar(t);
        let (want_mean, want_var) = (a.sqrt() * 0.6, 1.0 - a);
        // 5 standard errors of each estimate.
        let se_mean = (want_var / draws as f64).sqrt();
        let se_var = want_var * (2.0 / draws as f64).sqrt();
        assert!(
            (mean - want_mean).abs() < 5.0 * se_mean + 1e-6,
            "t {t}: mean {mean} vs {want_mean}"
        );
        assert!(
            (var - want_var).abs() < 5.0 * se_var + 1e-6,
            "t {t}: var {var} vs {want_var}"
        );
    }
}

#[test]
fn the_predicted_image_inverts_the_forward_process() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(Schedule::Linear, T);
    let (x0, eps) = (image(&device, 3), image(&device, 7));
    for t in [1, 500, 1000] {
        let xt = schedule.q_sample(x0.clone(), &[t, t], eps.clone());
        let back = values(schedule.predict_x0(xt, eps.clone(), t));
        // 1/√ᾱ_T ≈ 160 magnifies f32 rounding at t = T.
        let tolerance = if t == T { 2e-3 } else { 1e-5 };
        for (b, x) in back.iter().zip(values(x0.clone())) {
            assert!((b - x).abs() < tolerance, "t {t}: {b} vs {x}");
        }
    }
}

/// ε̂ that is exactly right for images whose x₀ is `x0`: what a perfect network predicts.
fn oracle(schedule: &NoiseSchedule, x0: Tensor<4>) -> impl FnMut(Tensor<4>, usize) -> Tensor<4> {
    let schedule = schedule.clone();
    move |x_t, t| {
        let a = schedule.alpha_bar(t);
        (x_t - x0.clone() * a.sqrt()) / (1.0 - a).sqrt()
    }
}

#[test]
fn a_perfect_noise_prediction_recovers_the_image() {
    let device = Device::flex();
    device.seed(2);
    for kind in [Schedule::Linear, Schedule::Cosine] {
        let schedule = NoiseSchedule::new(kind, T);
        let x0 = image(&device, 11);
        let x_t = Tensor::random([2, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        for sampler in [
            Sampler::Ddim {
                steps: 10,
                eta: 0.0,
            },
            Sampler::Ddim {
                steps: 50,
                eta: 0.5,
            },
            Sampler::Ddpm,
        ] {
            let mut path = Vec::new();
            let out = sample(
                &schedule,
                sampler,
                x_t.clone(),
                oracle(&schedule, x0.clone()),
                |t, _| path.push(t),
            );
            let expected_len = match sampler {
                Sampler::Ddpm => T + 1,
                Sampler::Ddim { steps, .. } => steps + 1,
            };
            assert_eq!(path.len(), expected_len);
            assert_eq!((path[0], path[expected_len - 1]), (T, 0));
            for (o, x) in values(out).iter().zip(values(x0.clone())) {
                assert!((o - x).abs() < 1e-4, "{kind:?} {sampler:?}: {o} vs {x}");
            }
        }
    }
}

/// With the oracle ε, deterministic DDIM keeps the noise x_T started with: every state it
/// visits is √ᾱ_s·x₀ + √(1 − ᾱ_s)·ε (Song et al., eq. 12 with σ = 0).
#[test]
fn deterministic_ddim_visits_the_forward_marginals_of_its_noise() {
    let device = Device::flex();
    for kind in [Schedule::Linear, Schedule::Cosine] {
        let schedule = NoiseSchedule::new(kind, T);
        let (x0, eps) = (image(&device, 11), image(&device, 23));
        let x_t = schedule.q_sample(x0.clone(), &[T, T], eps.clone());
        let sampler = Sampler::Ddim {
            steps: 20,
            eta: 0.0,
        };
        let mut visited = 0;
        sample(
            &schedule,
            sampler,
            x_t,
            oracle(&schedule, x0.clone()),
            |s, x| {
                let a = schedule.alpha_bar(s);
                let want = values(x0.clone() * a.sqrt() + eps.clone() * (1.0 - a).sqrt());
                for (got, want) in values(x.clone()).iter().zip(want) {
                    assert!((got - want).abs() < 2e-4, "{kind:?} s {s}: {got} vs {want}");
                }
                visited += 1;
            },
        );
        assert_eq!(visited, 21);
    }
}

/// A stochastic DDIM step from t to s adds noise of Song et al.'s
/// σ = η·√((1 − ᾱ_s)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_s) around √ᾱ_s·x₀ + √(1 − ᾱ_s − σ²)·ε.
#[test]
fn a_stochastic_ddim_step_adds_song_et_als_variance() {
    let device = Device::flex();
    device.seed(3);
    let schedule = NoiseSchedule::new(Schedule::Cosine, T);
    let draws = 20_000;
    let (x0_value, eps_value) = (0.3f32, -0.8f32);
    let x0 = Tensor::<4>::full([draws, 1, 1, 1], x0_value, &device);
    let eps = Tensor::<4>::full([draws, 1, 1, 1], eps_value, &device);
    let x_t = schedule.q_sample(x0.clone(), &vec![T; draws], eps);
    for eta in [1.0, 0.5] {
        // Two steps: T → T/2 adds noise, T/2 → 0 returns x̂₀.
        let sampler = Sampler::Ddim { steps: 2, eta };
        let (t, s) = (T, T / 2);
        let (a_t, a_s) = (schedule.alpha_bar(t), schedule.alpha_bar(s));
        let sigma = eta * ((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s)).sqrt();
        let mut middle = None;
        sample(
            &schedule,
            sampler,
            x_t.clone(),
            oracle(&schedule, x0.clone()),
            |at, x| {
                if at == s {
                    middle = Some(values(x.clone()));
                }
            },
        );
        let xs = middle.expect("the sampler visits T/2");
        let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / draws as f64;
        let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / draws as f64;
        let want_mean =
            a_s.sqrt() * x0_value as f64 + (1.0 - a_s - sigma * sigma).sqrt() * eps_value as f64;
        let se_mean = (sigma * sigma / draws as f64).sqrt();
        let se_var = sigma * sigma * (2.0 / draws as f64).sqrt();
        assert!(
            (mean - want_mean).abs() < 5.0 * se_mean,
            "η {eta}: mean {mean} vs {want_mean}"
        );
        assert!(
            (var - sigma * sigma).abs() < 5.0 * se_var,
            "η {eta}: var {var} vs {}",
            sigma * sigma
        );
    }
}

#[test]
fn ddim_without_noise_is_deterministic() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(Schedule::Cosine, T);
    let x_t = image(&device, 5);
    // A network that is wrong in a fixed way: the outcome depends on it, never on the RNG.
    let predict = |x: Tensor<4>, t: usize| x * (0.5 + t as f64 / 4000.0);
    let sampler = Sampler::Ddim {
        steps: 20,
        eta: 0.0,
    };
    device.seed(1);
    let first = sample(&schedule, sampler, x_t.clone(), predict, |_, _| {});
    device.seed(99);
    let second = sample(&schedule, sampler, x_t, predict, |_, _| {});
    assert_eq!(values(first), values(second));
}

#[test]
fn a_ddim_step_with_eta_one_is_the_ddpm_posterior() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(Schedule::Linear, T);
    let (x_t, eps) = (image(&device, 13), image(&device, 17));
    for t in [2, 100, 999] {
        let (mean, sigma) = schedule.ddim_step(x_t.clone(), eps.clone(), t, t - 1, 1.0);
        // Through the same clipped x̂₀.
        let x0 = schedule
            .predict_x0(x_t.clone(), eps.clone(), t)
            .clamp(-1.0, 1.0);
        let (posterior_mean, variance) = schedule.posterior(x_t.clone(), x0, t);
        assert!(
            (sigma * sigma - variance).abs() < 1e-12 * variance.max(1.0),
            "t {t}"
        );
        for (a, b) in values(mean).iter().zip(values(posterior_mean)) {
            assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "t {t}: {a} vs {b}");
        }
    }
}

#[test]
fn adam_on_the_simple_loss_learns_to_predict_the_noise() {
    use crate::models::denoiser::DenoiserConfig;
    use crate::optim::AdamSettings;
    use burn::optim::GradientsParams;
    let device = Device::flex();
    let autodiff = device.clone().autodiff();
    autodiff.seed(0);
    let shape = crate::data::ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let mut denoiser = DenoiserConfig::new(shape)
        .with_width(8)
        .with_levels(1)
        .init(&autodiff);
    let schedule = NoiseSchedule::new(Schedule::Cosine, T);
    // One constant image: x_t − √ᾱ_t·x₀ reveals the noise, once the network has learnt x₀.
    let x0 = Tensor::<4>::ones([8, 1, 8, 8], &autodiff) * 0.5;
    let loss_at = |denoiser: &crate::models::denoiser::Denoiser| {
        autodiff.seed(7); // the same ε and t every time
        simple_loss(&schedule, x0.clone(), 7, |x, t| {
            denoiser.forward(x, t, None)
        })
    };
    let first = loss_at(&denoiser).into_scalar::<f32>();
    let mut optimizer = AdamSettings::pytorch(2e-3).init();
    for _ in 0..40 {
        let loss = loss_at(&denoiser);
        let grads = GradientsParams::from_grads(loss.backward(), &denoiser);
        denoiser = optimizer.step(2e-3, denoiser, grads);
    }
    let last = loss_at(&denoiser).into_scalar::<f32>();
    // An untrained network predicts ε with an error near Var(ε) = 1.
    assert!(last < 0.5 * first, "{first} → {last}");
}

/// What the pipeline samples with guidance w = 2 is the sampler run on ε_u + w·(ε_c − ε_u)
/// of the same network, computed here by hand.
#[test]
fn guided_generation_follows_the_classifier_free_combination() {
    let device = Device::flex();
    device.seed(4);
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let model = DenoiserConfig::new(shape)
        .with_width(8)
        .with_levels(1)
        .with_num_classes(3)
        .init(&device);
    let schedule = NoiseSchedule::new(Schedule::Cosine, 100);
    let x_t = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let labels = || Tensor::<1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
    let sampler = Sampler::Ddim { steps: 4, eta: 0.0 };
    let w = 2.0;
    let at = |w: f64| {
        let images = DiffusionPipeline::new(&model, &schedule, sampler)
            .with_guidance(w)
            .generate(x_t.clone(), Some(labels()), |_, _| {});
        values(images)
    };
    let guided = at(w);
    let by_hand = sample(
        &schedule,
        sampler,
        x_t.clone(),
        |x, t| {
            let unconditional = model.forward(x.clone(), &[t, t], None);
            let conditional = model.forward(x, &[t, t], Some(labels()));
            unconditional.clone() + (conditional - unconditional) * w
        },
        |_, _| {},
    );
    let by_hand = values(by_hand);
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    assert!(close(&guided, &by_hand), "{guided:?} vs {by_hand:?}");
    // The weight matters: w = 1 (the plain conditional ε) lands elsewhere.
    assert!(!close(&at(1.0), &by_hand));
}

#[test]
fn a_sampler_names_the_steps_it_takes() {
    let short = NoiseSchedule::new(Schedule::Cosine, 100);
    assert_eq!(Sampler::Ddpm.label(&short), "DDPM-100");
    assert_eq!(
        Sampler::Ddpm.label(&NoiseSchedule::new(Schedule::Cosine, T)),
        "DDPM-1000"
    );
    let ddim = |steps, eta| Sampler::Ddim { steps, eta };
    assert_eq!(ddim(50, 0.0).label(&short), "DDIM-50");
    assert_eq!(ddim(500, 0.0).label(&short), "DDIM-100");
    assert_eq!(ddim(20, 0.5).label(&short), "DDIM-20 (η 0.5)");
}

#[test]
fn sampler_time_steps_run_from_t_down_evenly() {
    let schedule = NoiseSchedule::new(Schedule::Linear, T);
    assert_eq!(schedule.timesteps(4), vec![1000, 750, 500, 250]);
    assert_eq!(schedule.timesteps(T).len(), T);
    assert_eq!(schedule.timesteps(5000).len(), T);
    let ten = schedule.timesteps(10);
    assert_eq!((ten[0], ten[9], ten.len()), (1000, 100, 10));
}
