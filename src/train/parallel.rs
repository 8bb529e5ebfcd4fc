//! Data parallelism over several devices of one machine (`train --devices cpu,cpu`, or two GPUs
//! of one kind) or over MPI ranks: each replica (rank) takes its share of the batch, the
//! gradients are summed on the first device (over the ranks), and one optimizer step updates the
//! one model the replicas are copies of.
//!
//! A learner asks [`BatchSplit::shares`] for its shares, places each network on a share's device
//! ([`Share::place`]), and adds each share's loss to a [`GradientSum`] per network; one-network
//! learners call [`BatchSplit::gradients`], which does just that. A GAN or pix2pix does it once
//! per network, so any learner splits without a trainer of its own.
//!
//! Each share's mean loss is weighted by its share of the batch before its backward pass, so the
//! summed gradient is the gradient of the whole batch's mean loss, whatever the split
//! (burn-train's multi-device path sums the replicas' unweighted means: N times the gradient).
//! Replicas are the model moved to each device for the step (`Module::fork`), so they cannot
//! drift apart. burn 0.22's own collective all-reduces only CUDA devices through NCCL; this is
//! the host path every backend takes.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::kind::Basic;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::data::Batch;
use crate::device::DeviceSpec;
use crate::distributed::World;
use crate::error::{Error, Result};
use crate::rng::{mix, stream};
use crate::train::trainer::DeviceParts;
use std::sync::Arc;

/// The `[start, start + len)` row ranges of `n` rows split into `replicas` shares of sizes
/// differing by at most one (empty shares dropped).
pub(crate) fn shares(n: usize, replicas: usize) -> Vec<(usize, usize)> {
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

/// Parses `--devices cpu,cpu` or `vulkan:0,vulkan:1`: one kind, at least two replicas.
pub(crate) fn parse_devices(list: &str) -> Result<Vec<DeviceSpec>> {
    let choices = list
        .split(',')
        .map(|name| name.trim().parse::<DeviceSpec>())
        .collect::<Result<Vec<_>>>()?;
    if choices.len() < 2 {
        return Err(Error::bad_input(format!(
            "--devices {list}: name two or more replicas (cpu,cpu), or use --device for one"
        )));
    }
    if choices.iter().any(|c| c.kind != choices[0].kind) {
        return Err(Error::bad_input(format!(
            "--devices {list}: replicas must be of one kind; gradients are summed on the first, \
             and a mix of backends has no common device"
        )));
    }
    Ok(choices)
}

/// Sums `grads` of `model` (and `extra` values riding along: the step's loss parts) over the
/// ranks of `world` with one all-reduce, every rank getting the same sum. Parameters without a
/// gradient on a rank count as zero there.
pub(crate) fn all_reduce_gradients<M: Module>(
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
pub(crate) fn materialize<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
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
    pub fn for_run(devices: &[DeviceSpec], world: Arc<World>) -> Result<Self> {
        let replicas = devices
            .iter()
            .map(|spec| spec.device().map(|d| d.autodiff()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::new(replicas, world))
    }

    /// Whether batches are split at all.
    pub fn splits(&self) -> bool {
        self.world.size() > 1 || self.replicas.len() > 1
    }

    /// The shares of a batch of `n` rows living on `device` that this process computes: one per
    /// replica, this rank's one, or the whole batch.
    ///
    /// On MPI ranks this reseeds `device`: every rank's generator was seeded alike for the step
    /// (the batch's shuffle, and whatever the learner drew for the whole batch before asking,
    /// must agree), but what a share draws itself (dropout masks, a VAE's noise) must not repeat
    /// across ranks.
    pub fn shares(&self, n: usize, device: &Device) -> Vec<Share> {
        let whole = |start, len| Share {
            start,
            len,
            weight: len as f64 / n as f64,
            device: device.clone(),
            on_main: true,
        };
        if self.world.size() > 1 {
            let step_draw: f32 =
                Tensor::<1>::random([1], Distribution::Uniform(0.0, 1.0), device).into_scalar();
            device.seed(mix(
                u64::from(step_draw.to_bits()),
                stream::RANK,
                self.world.rank() as u64,
            ));
            // A rank left without rows (a last batch smaller than the ranks) takes one at
            // weight 0, so every rank sends the same parts.
            return vec![match shares(n, self.world.size()).get(self.world.rank()) {
                Some(&(start, len)) => whole(start, len),
                None => Share {
                    weight: 0.0,
                    ..whole(0, 1)
                },
            }];
        }
        if self.replicas.len() > 1 {
            return shares(n, self.replicas.len())
                .into_iter()
                .zip(&self.replicas)
                .map(|((start, len), replica)| Share {
                    device: replica.clone(),
                    on_main: replica == device,
                    ..whole(start, len)
                })
                .collect();
        }
        vec![whole(0, n)]
    }

    /// An empty sum of `model`'s gradients over shares.
    pub fn sum<M: Module>(&self, model: &M) -> GradientSum<'_, M> {
        GradientSum {
            split: self,
            main: model.devices()[0].clone(),
            accumulator: GradientsAccumulator::new(),
            parts: Vec::new(),
            whole: None,
        }
    }

    /// The gradients of the batch's mean loss and its parts, `loss` giving a share's mean loss
    /// and parts: the one-network case of [`BatchSplit::shares`] and [`BatchSplit::sum`].
    pub fn gradients<M: Module>(
        &self,
        model: &M,
        batch: Batch,
        loss: impl Fn(&M, Batch) -> (Tensor<1>, DeviceParts),
    ) -> (GradientsParams, DeviceParts) {
        let [n, ..] = batch.images.dims();
        let mut sum = self.sum(model);
        for share in self.shares(n, &batch.images.device()) {
            let replica = share.place(model);
            let rows = Batch {
                images: share.rows(batch.images.clone()),
                labels: share.rows(batch.labels.clone()),
                indices: batch
                    .indices
                    .get(share.start..share.start + share.len)
                    .unwrap_or_default()
                    .to_vec(),
            };
            let (share_loss, parts) = loss(&replica, rows);
            sum.add(model, &replica, &share, share_loss, parts);
        }
        sum.finish(model)
    }
}

/// Rows `[start, start + len)` of a batch, computed on `device`, whose mean loss counts `weight`
/// (its share of the batch) in the batch's.
#[derive(Debug, Clone)]
pub struct Share {
    pub start: usize,
    pub len: usize,
    pub weight: f64,
    pub device: Device,
    /// Whether `device` is the batch's (and the model's) own.
    on_main: bool,
}

impl Share {
    /// The share's rows of `tensor` (a whole batch, rows first), on the share's device.
    pub fn rows<const D: usize, K: Basic>(&self, tensor: Tensor<D, K>) -> Tensor<D, K> {
        let rows = if self.start == 0 && tensor.dims()[0] == self.len {
            tensor
        } else {
            tensor.narrow(0, self.start, self.len)
        };
        if rows.device() == self.device {
            rows
        } else {
            rows.to_device(&self.device)
        }
    }

    /// The share's items of a per-row list.
    pub fn items<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        &items[self.start..self.start + self.len]
    }

    /// `module` (living where the batch does) on the share's device: itself there, else a fork
    /// (burn's copy onto another device that tracks gradients of its own).
    pub fn place<M: Module>(&self, module: &M) -> M {
        if self.on_main {
            module.clone()
        } else {
            module.clone().fork(&self.device)
        }
    }
}

/// Gradients of one network summed over shares (then over ranks), with the loss parts.
pub struct GradientSum<'a, M: Module> {
    split: &'a BatchSplit,
    main: Device,
    accumulator: GradientsAccumulator<M>,
    parts: DeviceParts,
    /// An unsplit batch's gradients, kept as they are: bit for bit what a plain step computes.
    whole: Option<GradientsParams>,
}

impl<M: Module> GradientSum<'_, M> {
    /// Adds a share's gradients: `replica` (the share's placing of `model`) differentiated
    /// through `share_loss`, the share's mean loss, weighted by its share; and its parts.
    pub fn add(
        &mut self,
        model: &M,
        replica: &M,
        share: &Share,
        share_loss: Tensor<1>,
        parts: DeviceParts,
    ) {
        if share.weight == 1.0 && !self.split.splits() {
            self.whole = Some(GradientsParams::from_grads(share_loss.backward(), replica));
            self.parts = parts;
            return;
        }
        let grads = GradientsParams::from_grads((share_loss * share.weight).backward(), replica)
            .to_device(&self.main, replica);
        self.accumulator.accumulate(model, grads);
        for (i, (name, value)) in parts.into_iter().enumerate() {
            let value = value.to_device(&self.main) * share.weight;
            match self.parts.get_mut(i) {
                Some((_, sum)) => *sum = sum.clone() + value,
                None => self.parts.push((name, value)),
            }
        }
    }

    /// The batch's gradients and parts (batch means), summed over the ranks where there are
    /// several: one all-reduce.
    pub fn finish(mut self, model: &M) -> (GradientsParams, DeviceParts) {
        if let Some(grads) = self.whole.take() {
            return (grads, self.parts);
        }
        let grads = self.accumulator.grads();
        let world = &self.split.world;
        if world.size() == 1 {
            return (grads, self.parts);
        }
        let names: Vec<&'static str> = self.parts.iter().map(|(name, _)| *name).collect();
        let mut values: Vec<f64> = self
            .parts
            .into_iter()
            .map(|(_, value)| value.into_scalar::<f32>() as f64)
            .collect();
        let grads = all_reduce_gradients(model, grads, &mut values, world);
        let parts = names
            .into_iter()
            .zip(values)
            .map(|(name, value)| (name, Tensor::<1>::from_floats([value as f32], &self.main)))
            .collect();
        (grads, parts)
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
        let labels = Tensor::<1, burn::tensor::Int>::zeros([8], &device);
        let loss = |model: &Linear, batch: Batch| {
            let x = batch.images.flatten::<2>(1, 3); // [n, 6]
            let error = (model.forward(x.clone()) - x).powi_scalar(2).mean(); // [1]
            (error.clone(), vec![("loss", error)])
        };
        let step = |devices: &[Device]| {
            let split = BatchSplit::new(devices.to_vec(), Arc::new(World::single()));
            let batch = Batch {
                images: images.clone(),
                labels: labels.clone(),
                indices: Vec::new(),
            };
            let (grads, parts) = split.gradients(&model, batch, loss);
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
