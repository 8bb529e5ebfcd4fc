//! Data parallelism over several devices of one machine (`train --devices cpu,cpu`, or two GPUs
//! of one kind): each replica takes its share of the batch, the gradients are summed on the
//! first device, and one optimizer step updates the one model the replicas are copies of.
//!
//! Each share's mean loss is weighted by its share of the batch before its backward pass, so the
//! summed gradient is the gradient of the whole batch's mean loss, whatever the split
//! (burn-train's multi-device path sums the replicas' unweighted means: N times the gradient).
//! Replicas are the model moved to each device for the step (`Module::fork`), so they cannot
//! drift apart. burn 0.22's own collective all-reduces only CUDA devices through NCCL; this is
//! the host path every backend takes.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use crate::data::Batch;
use crate::device::DeviceChoice;
use crate::distributed::World;
use crate::error::{Error, Result};
use crate::rng::{mix, stream};
use crate::train::trainer::DeviceParts;
use std::sync::Arc;

/// The `[start, start + len)` row ranges of `n` rows split into `replicas` shares of sizes
/// differing by at most one (empty shares dropped).
pub fn shares(n: usize, replicas: usize) -> Vec<(usize, usize)> {
    let replicas = replicas.max(1);
    let (base, extra) = (n / replicas, n % replicas);
    let mut start = 0;
    (0..replicas)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let share = (start, len);
            start += len;
            share
        })
        .filter(|&(_, len)| len > 0)
        .collect()
}

/// Parses `--devices cpu,cpu`: one kind, at least two replicas.
pub fn parse_devices(list: &str) -> Result<Vec<DeviceChoice>> {
    let choices = list
        .split(',')
        .map(|name| name.trim().parse::<DeviceChoice>())
        .collect::<Result<Vec<_>>>()?;
    if choices.len() < 2 {
        return Err(Error::bad_input(format!(
            "--devices {list}: name two or more replicas (cpu,cpu), or use --device for one"
        )));
    }
    if choices.iter().any(|c| *c != choices[0]) {
        return Err(Error::bad_input(format!(
            "--devices {list}: replicas must be of one kind; gradients are summed on the first, \
             and a mix of backends has no common device"
        )));
    }
    Ok(choices)
}

/// The gradients of the mean loss over `images`/`labels`, each replica's share computed on its
/// device by `loss` (which returns the share's mean loss and its parts), summed on `devices[0]`;
/// with the parts as batch means.
pub fn gradients<M: Module>(
    model: &M,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    devices: &[Device],
    loss: impl Fn(&M, Batch) -> (Tensor<1>, DeviceParts),
) -> (GradientsParams, DeviceParts) {
    let main = &devices[0];
    let n = images.dims()[0];
    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut parts: DeviceParts = Vec::new();
    for ((start, len), device) in shares(n, devices.len()).into_iter().zip(devices) {
        let replica = if device == main {
            model.clone()
        } else {
            model.clone().fork(device)
        };
        let share = Batch {
            images: images.clone().narrow(0, start, len).to_device(device),
            labels: labels.clone().narrow(0, start, len).to_device(device),
        };
        let weight = len as f64 / n as f64;
        let (share_loss, share_parts) = loss(&replica, share);
        let grads = GradientsParams::from_grads((share_loss * weight).backward(), &replica)
            .to_device(main, &replica);
        accumulator.accumulate(model, grads);
        for (i, (name, value)) in share_parts.into_iter().enumerate() {
            let value = value.to_device(main) * weight;
            match parts.get_mut(i) {
                Some((_, sum)) => *sum = sum.clone() + value,
                None => parts.push((name, value)),
            }
        }
    }
    (accumulator.grads(), parts)
}

/// Sums `grads` of `model` (and `extra` values riding along: the step's loss parts) over the
/// ranks of `world` with one all-reduce, every rank getting the same sum. Parameters without a
/// gradient on a rank count as zero there.
pub fn all_reduce_gradients<M: Module>(
    model: &M,
    mut grads: GradientsParams,
    extra: &mut [f64],
    world: &World,
) -> GradientsParams {
    if world.size() == 1 {
        return grads;
    }
    struct Flatten<'a> {
        grads: &'a mut GradientsParams,
        values: Vec<f64>,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let count = param.shape().num_elements();
            match self.grads.remove::<D>(param.id) {
                Some(grad) => self.values.extend(
                    grad.into_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .expect("a gradient converted to f32 reads as f32")
                        .into_iter()
                        .map(f64::from),
                ),
                None => self.values.extend(std::iter::repeat_n(0.0, count)),
            }
        }
    }
    struct Unflatten<'a> {
        grads: GradientsParams,
        values: std::slice::Iter<'a, f64>,
    }
    impl ModuleVisitor for Unflatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.shape();
            let values: Vec<f32> = (&mut self.values)
                .take(shape.num_elements())
                .map(|&v| v as f32)
                .collect();
            let device = param.val().device();
            let grad = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
            self.grads.register::<D>(param.id, grad);
        }
    }
    let mut flatten = Flatten {
        grads: &mut grads,
        values: Vec::new(),
    };
    model.visit(&mut flatten);
    let mut values = flatten.values;
    let parameters = values.len();
    values.extend(extra.iter());
    world.all_reduce_sum(&mut values);
    extra.copy_from_slice(&values[parameters..]);
    let mut unflatten = Unflatten {
        grads: GradientsParams::new(),
        values: values[..parameters].iter(),
    };
    model.visit(&mut unflatten);
    unflatten.grads
}

/// Touches every parameter of `module`, so that those burn initializes lazily (at first use)
/// are drawn now, from the generator's present state. Learners that split batches call it when
/// they are made: drawn inside the first step, a parameter would depend on how the step splits
/// its batch (and differ between MPI ranks, whose draws are seeded per rank).
pub fn materialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// This rank's share of `batch`: its loss (weighted by the share) differentiated, then the
/// gradients and loss parts summed over `world`'s ranks, the parts as batch means. A rank left
/// without a share (a last batch smaller than the ranks) takes one image at weight 0, so every
/// rank sends the same parts. The model's parameters must already be drawn ([`materialize`]).
pub fn rank_gradients<M: Module>(
    model: &M,
    batch: Batch,
    world: &World,
    loss: impl Fn(&M, Batch) -> (Tensor<1>, DeviceParts),
) -> (GradientsParams, DeviceParts) {
    let n = batch.images.dims()[0];
    let (start, len) = shares(n, world.size())
        .get(world.rank())
        .copied()
        .unwrap_or((0, 0));
    let (start, len, weight) = match len {
        0 => (0, 1, 0.0),
        len => (start, len, len as f64 / n as f64),
    };
    let device = batch.images.device();
    // Every rank's generator was seeded alike for this step (the batch's shuffle and flips must
    // agree); the share's own draws (dropout masks, a VAE's noise) must not repeat across ranks.
    let step_draw: f32 =
        Tensor::<1>::random([1], Distribution::Uniform(0.0, 1.0), &device).into_scalar();
    device.seed(mix(
        u64::from(step_draw.to_bits()),
        stream::RANK,
        world.rank() as u64,
    ));
    let share = Batch {
        images: batch.images.narrow(0, start, len),
        labels: batch.labels.narrow(0, start, len),
    };
    let (share_loss, parts) = loss(model, share);
    let grads = GradientsParams::from_grads((share_loss * weight).backward(), model);
    let names: Vec<&'static str> = parts.iter().map(|(name, _)| *name).collect();
    let mut values: Vec<f64> = parts
        .into_iter()
        .map(|(_, value)| value.into_scalar::<f32>() as f64 * weight)
        .collect();
    let grads = all_reduce_gradients(model, grads, &mut values, world);
    let parts = names
        .into_iter()
        .zip(values)
        .map(|(name, value)| (name, Tensor::<1>::from_floats([value as f32], &device)))
        .collect();
    (grads, parts)
}

/// How a learner splits each batch: over replicas on this machine's devices (`--devices`), over
/// MPI ranks (`--distributed mpi`), or not at all.
#[derive(Clone)]
pub struct BatchSplit {
    replicas: Vec<Device>,
    world: Arc<World>,
}

impl Default for BatchSplit {
    fn default() -> Self {
        Self {
            replicas: Vec::new(),
            world: Arc::new(World::single()),
        }
    }
}

impl BatchSplit {
    /// Replicas on `replicas` (autodiff devices, the model's first; fewer than two: none) and
    /// the ranks of `world`.
    pub fn new(replicas: Vec<Device>, world: Arc<World>) -> Self {
        Self { replicas, world }
    }

    /// The split a run's config asks for: its `--devices` (as autodiff devices) and `world`.
    pub fn for_run(devices: &[DeviceChoice], world: Arc<World>) -> Result<Self> {
        let replicas = devices
            .iter()
            .map(|choice| choice.device().map(|d| d.autodiff()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::new(replicas, world))
    }

    /// The gradients of the batch's mean loss and its parts, `loss` giving a share's mean loss
    /// and parts.
    pub fn gradients<M: Module>(
        &self,
        model: &M,
        batch: Batch,
        loss: impl Fn(&M, Batch) -> (Tensor<1>, DeviceParts),
    ) -> (GradientsParams, DeviceParts) {
        if self.world.size() > 1 {
            rank_gradients(model, batch, &self.world, loss)
        } else if self.replicas.len() > 1 {
            gradients(model, batch.images, batch.labels, &self.replicas, loss)
        } else {
            let (loss, parts) = loss(model, batch);
            (GradientsParams::from_grads(loss.backward(), model), parts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_in_order_and_differ_by_at_most_one() {
        for (n, replicas) in [(128, 2), (7, 3), (2, 4), (1, 1)] {
            let split = shares(n, replicas);
            assert_eq!(split.iter().map(|s| s.1).sum::<usize>(), n);
            assert_eq!(split[0].0, 0);
            for pair in split.windows(2) {
                assert_eq!(pair[0].0 + pair[0].1, pair[1].0);
            }
            let (min, max) = (
                split.iter().map(|s| s.1).min().unwrap(),
                split.iter().map(|s| s.1).max().unwrap(),
            );
            assert!(max - min <= 1);
        }
    }

    #[test]
    fn devices_must_be_two_or_more_of_one_kind() {
        assert_eq!(parse_devices("cpu,cpu").unwrap().len(), 2);
        assert!(parse_devices("cpu").is_err());
        let mixed = parse_devices("cpu,vulkan").unwrap_err().to_string();
        assert!(mixed.contains("one kind"), "{mixed}");
        assert!(parse_devices("cpu,tpu").is_err());
    }

    #[test]
    fn a_step_on_two_half_batches_equals_a_step_on_the_whole_batch() {
        use burn::nn::{Linear, LinearConfig};
        use burn::optim::SgdConfig;
        use burn::tensor::Distribution;
        let device = Device::flex().autodiff();
        device.seed(5);
        let model: Linear = LinearConfig::new(6, 6).init(&device);
        let images = Tensor::<4>::random([8, 1, 2, 3], Distribution::Default, &device);
        let labels = Tensor::<1, Int>::zeros([8], &device);
        let loss = |model: &Linear, batch: Batch| {
            let x = batch.images.flatten::<2>(1, 3); // [n, 6]
            let error = (model.forward(x.clone()) - x).powi_scalar(2).mean(); // [1]
            (error.clone(), vec![("loss", error)])
        };
        let step = |devices: &[Device]| {
            let (grads, parts) = gradients(&model, images.clone(), labels.clone(), devices, loss);
            let stepped = SgdConfig::new().init().step(0.1, model.clone(), grads);
            let weights: Vec<f32> = stepped
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let loss: f32 = parts[0].1.clone().into_scalar();
            (weights, loss)
        };
        let (whole, whole_loss) = step(std::slice::from_ref(&device));
        let before: Vec<f32> = model.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(before.iter().zip(&whole).any(|(a, b)| (a - b).abs() > 1e-4));
        let (halves, halves_loss) = step(&[device.clone(), device.clone()]);
        assert!((whole_loss - halves_loss).abs() < 1e-6);
        for (a, b) in whole.iter().zip(&halves) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // Unequal shares (3 of 8) are weighted by their sizes, so they agree too.
        let (thirds, _) = step(&[device.clone(), device.clone(), device.clone()]);
        for (a, b) in whole.iter().zip(&thirds) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
