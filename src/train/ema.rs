//! An exponential moving average of a model's weights (Polyak averaging): after each step,
//! θ̄ ← d·θ̄ + (1 − d)·θ. Diffusion models sample from the average (DDPM: d = 0.9999), which
//! smooths out the last steps' noise; a learner keeps it beside the model and checkpoints it.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;

/// `average` moved towards `model` by 1 − `decay`, parameter by parameter (matched by id:
/// `average` starts as a copy of `model`, and optimizer steps keep the ids). Detached.
pub(crate) fn ema_update<M: Module>(average: M, model: &M, decay: f64) -> M {
    let mut current = Current::default();
    model.visit(&mut current);
    average.map(&mut Blend {
        current: current.values,
        decay,
    })
}

/// Every float parameter of a model, flattened, by id.
#[derive(Default)]
struct Current {
    values: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for Current {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let flat = param.val().detach().reshape([-1]);
        self.values.insert(param.id, flat);
    }
}

struct Blend {
    current: HashMap<ParamId, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(current) = self.current.get(&param.id).cloned() else {
            return param;
        };
        let decay = self.decay;
        param.map(|average| {
            let shape = average.shape();
            let current: Tensor<D> = current.reshape(shape);
            (average * decay + current * (1.0 - decay)).detach()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    fn weights(linear: &Linear) -> Vec<f32> {
        let mut all: Vec<f32> = linear.weight.val().into_data().iter().collect();
        if let Some(b) = &linear.bias {
            all.extend(b.val().into_data().iter::<f32>());
        }
        all
    }

    #[test]
    fn each_update_moves_the_average_a_fixed_fraction_towards_the_model() {
        let device = Device::flex();
        device.seed(0);
        let start = LinearConfig::new(3, 2).init(&device);
        // The model moves on (as after optimizer steps, which keep the ids).
        let model = start.clone().map(&mut Shift);
        let (before, after) = (weights(&start), weights(&model));
        let average = ema_update(start.clone(), &model, 0.9);
        for ((a, b), m) in weights(&average).iter().zip(&before).zip(&after) {
            assert!((a - (0.9 * b + 0.1 * m)).abs() < 1e-6, "{a} vs {b}, {m}");
        }
        // Decay 0 copies the model; the average of a model with itself is the model.
        assert_eq!(weights(&ema_update(start.clone(), &model, 0.0)), after);
        assert_eq!(weights(&ema_update(model.clone(), &model, 0.5)), after);
        // A model with other ids leaves the average as it was.
        let stranger = LinearConfig::new(3, 2).init(&device);
        assert_eq!(weights(&ema_update(start, &stranger, 0.5)), before);
    }

    /// Adds 1 to every parameter, keeping its id.
    struct Shift;

    impl ModuleMapper for Shift {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t + 1.0)
        }
    }
}
