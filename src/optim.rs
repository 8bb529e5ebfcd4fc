//! Adam (Kingma & Ba, 2015) with its update fused into one pass over each parameter on the CPU.
//!
//! burn's Adam builds the update from about ten tensor operations, each a pass over the
//! parameter; on the CPU that was 5 ms of an 18 ms VAE step (W1 of benches/workloads). The update is
//! the same arithmetic done in one loop over the weights, the gradient and the two moments, in
//! place. The state is burn's own `AdamState`, so checkpoints are the same as with burn's Adam,
//! and on any other device the step is burn's Adam itself.

use burn::optim::{
    AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::prelude::*;
use rayon::prelude::*;

/// How the learning rate moves over a run: constant, or cosine decay from `lr` to 0 (Loshchilov &
/// Hutter 2017, without restarts), which lets the last epochs settle into a minimum.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    #[default]
    Constant,
    Cosine,
}

impl LrSchedule {
    /// The multiplier of the base learning rate at `progress` ∈ [0, 1] of the run.
    pub fn factor(self, progress: f64) -> f64 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())
            }
        }
    }
}

/// Adam's hyper-parameters; `init` gives the optimizer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FusedAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

/// Elements per parallel chunk: small enough to split a 784x400 weight over two cores.
const CHUNK: usize = 1 << 15;

impl FusedAdam {
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(FusedAdamOptimizer {
            settings: self,
            fallback: AdamConfig::new()
                .with_beta_1(self.beta_1)
                .with_beta_2(self.beta_2)
                .with_epsilon(self.epsilon)
                .build(),
        })
    }
}

#[derive(Clone)]
struct FusedAdamOptimizer {
    settings: FusedAdam,
    fallback: burn::optim::Adam,
}

fn values<const D: usize>(tensor: Tensor<D>) -> TensorData {
    // Zero-copy on Flex when the buffer is not shared.
    tensor.into_data().convert::<f32>()
}

impl Optimizer for FusedAdamOptimizer {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let device = tensor.device();
        if device.clone().inner() != Device::flex() || tensor.dtype() != burn::tensor::DType::F32 {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let shape = tensor.shape();
        let (time, moment_1, moment_2) = match state {
            Some(state) => (
                state.momentum.time + 1,
                values(state.momentum.moment_1),
                values(state.momentum.moment_2),
            ),
            None => (
                1,
                TensorData::zeros::<f32, _>(shape.clone()),
                TensorData::zeros::<f32, _>(shape.clone()),
            ),
        };
        let (mut weights, gradient) = (values(tensor), values(grad));
        let (mut moment_1, mut moment_2) = (moment_1, moment_2);
        let FusedAdam {
            beta_1,
            beta_2,
            epsilon,
        } = self.settings;
        // burn's (and PyTorch's) bias-corrected update, folded into one factor and one epsilon.
        let correction_2 = (1.0 - beta_2.powi(time as i32)).sqrt();
        let step = lr as f32 * correction_2 / (1.0 - beta_1.powi(time as i32));
        let eps = epsilon * correction_2;
        {
            let w = weights.as_mut_slice::<f32>().expect("f32 weights");
            let g = gradient.as_slice::<f32>().expect("f32 gradient");
            let m = moment_1.as_mut_slice::<f32>().expect("f32 moment");
            let v = moment_2.as_mut_slice::<f32>().expect("f32 moment");
            w.par_chunks_mut(CHUNK)
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .zip(g.par_chunks(CHUNK))
                .for_each(|(((w, m), v), g)| {
                    for i in 0..w.len() {
                        m[i] = beta_1 * m[i] + (1.0 - beta_1) * g[i];
                        v[i] = beta_2 * v[i] + (1.0 - beta_2) * g[i] * g[i];
                        w[i] -= step * m[i] / (v[i].sqrt() + eps);
                    }
                });
        }
        let tensor = Tensor::from_data(weights, &device);
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_data(moment_1, &device),
            Tensor::from_data(moment_2, &device),
        );
        (tensor, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <burn::optim::Adam as Optimizer>::to_device(state, device)
    }
}

/// Adam settings. eps is PyTorch's 1e-8, not burn's 1e-5 default, so the recipes compare.
#[derive(Debug, Clone, Copy)]
pub struct AdamSettings {
    pub lr: f64,
    pub schedule: LrSchedule,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl AdamSettings {
    pub fn pytorch(lr: f64) -> Self {
        Self {
            lr,
            schedule: LrSchedule::Constant,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        }
    }

    /// The learning rate at `progress` ∈ [0, 1] of the run.
    pub fn lr_at(&self, progress: f64) -> f64 {
        self.lr * self.schedule.factor(progress)
    }

    pub fn init(&self) -> ModuleOptimizer {
        FusedAdam {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
        }
        .init()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::optim::GradientsParams;

    #[test]
    fn matches_burns_adam_over_several_steps() {
        let device = Device::flex().autodiff();
        device.seed(1);
        let model = LinearConfig::new(7, 5).init(&device);
        let x = Tensor::<2>::random([4, 7], burn::tensor::Distribution::Default, &device);
        let adam = |fused: bool| -> ModuleOptimizer {
            let settings = FusedAdam {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
            };
            if fused {
                settings.init()
            } else {
                AdamConfig::new().with_epsilon(1e-8).init()
            }
        };
        let run = |fused: bool| -> Vec<f32> {
            let mut optimizer = adam(fused);
            let mut m = model.clone();
            for _ in 0..5 {
                let loss = m.forward(x.clone()).powi_scalar(2).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                m = optimizer.step(1e-2, m, grads);
            }
            m.weight.val().into_data().iter::<f32>().collect()
        };
        let (ours, burns) = (run(true), run(false));
        let before: Vec<f32> = model.weight.val().into_data().iter::<f32>().collect();
        assert!(
            ours.iter().zip(&before).any(|(a, b)| a != b),
            "weights moved"
        );
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::LrSchedule;

    #[test]
    fn cosine_goes_from_one_to_zero_through_one_half() {
        assert_eq!(LrSchedule::Cosine.factor(0.0), 1.0);
        assert!((LrSchedule::Cosine.factor(0.5) - 0.5).abs() < 1e-12);
        assert!(LrSchedule::Cosine.factor(1.0).abs() < 1e-12);
        assert_eq!(LrSchedule::Constant.factor(0.7), 1.0);
    }
}
