//! A network in training beside its optimizer: the pair a learner steps, saves in a checkpoint
//! and restores from one. Learners with two networks (a GAN's G and D) hold two.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};

use crate::error::Result;
use crate::optim::AdamSettings;
use crate::train::checkpoint::{model_blobs_as, restore_model_as};

/// A network and its optimizer's state.
pub(crate) struct Trainee<M> {
    /// In an `Option` only because burn's optimizer step takes the network by value; `None`
    /// never outlives a call.
    pair: Option<(M, ModuleOptimizer)>,
}

impl<M: Module> Trainee<M> {
    /// `network` with a fresh `adam`.
    pub fn new(network: M, adam: &AdamSettings) -> Self {
        Self {
            pair: Some((network, adam.init())),
        }
    }

    pub fn network(&self) -> &M {
        &self.pair.as_ref().expect("present between calls").0
    }

    /// One optimizer step of the network with `grads` at learning rate `lr`.
    pub fn step(&mut self, lr: f64, grads: GradientsParams) {
        let (network, mut optimizer) = self.pair.take().expect("present between calls");
        let network = optimizer.step(lr, network, grads);
        self.pair = Some((network, optimizer));
    }

    /// The network's weights and the optimizer's state as checkpoint blobs under `roles`
    /// (network, optimizer).
    pub fn blobs(&self, roles: [&'static str; 2]) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let (network, optimizer) = self.pair.as_ref().expect("present between calls");
        model_blobs_as(network, optimizer, roles)
    }

    /// Both from the checkpoint blobs saved under `roles`.
    pub fn restore(&mut self, blobs: &BTreeMap<String, Vec<u8>>, roles: [&str; 2]) -> Result<()> {
        let (network, optimizer) = self.pair.take().expect("present between calls");
        self.pair = Some(restore_model_as(network, optimizer, blobs, roles)?);
        Ok(())
    }
}
