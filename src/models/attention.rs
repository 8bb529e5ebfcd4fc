//! Attention over the positions of a feature map, as the U-Nets of latent diffusion use it
//! (Vaswani et al. 2017; Rombach et al. 2022's `SpatialTransformer`, without its feed-forward).
//!
//! A map `[n, c, h, w]` is read as a sequence of h·w tokens of c channels. Each head projects a
//! token to a query q, and the tokens it attends to to keys k and values v (d = c / heads each),
//! and mixes the values by softmax(q·kᵀ/√d): every position can draw on every other one, which a
//! 3x3 convolution sees only through many layers.
//!
//! - **Self-attention**: keys and values from the map itself (GroupNorm first).
//! - **Cross-attention**: keys and values from a context sequence `[n, L, d_context]` (a
//!   caption's token embeddings), queries from the map (LayerNorm first): how a text-to-image
//!   model lets each position look up the words that concern it.
//!
//! Both add their output to their input (a residual), so a block that has learned nothing
//! passes the map through. The heads are burn-nn's `CrossAttention` (self-attention is the
//! context being the map), whose projections are PyTorch's `nn.MultiheadAttention`'s with
//! separate q, k, v weights; `tests::matches_pytorch` holds them to PyTorch's numbers.

use burn::nn::attention::{CrossAttention, CrossAttentionConfig};
use burn::nn::{GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use crate::error::Error;

/// Attention in a U-Net: where, how many heads, and what context it may read.
#[derive(Config, Debug, PartialEq)]
pub struct AttentionConfig {
    /// Sides of the feature maps (e.g. 8 for the 8x8 level) that get a self-attention block.
    pub resolutions: Vec<usize>,
    /// Heads per block (the channels must divide by it).
    #[config(default = 4)]
    pub heads: usize,
    /// Width of the context vectors a cross-attention block reads (0: no cross-attention).
    #[config(default = 0)]
    pub context_dim: usize,
}

impl AttentionConfig {
    /// Checks the heads divide every width the blocks sit at.
    pub fn validate(&self, widths: &[usize]) -> crate::Result<()> {
        if self.heads == 0 {
            return Err(Error::bad_input("--heads must be at least 1"));
        }
        if let Some(&w) = widths.iter().find(|&&w| !w.is_multiple_of(self.heads)) {
            return Err(Error::bad_input(format!(
                "--heads {}: {w} channels do not split into {} heads",
                self.heads, self.heads
            )));
        }
        Ok(())
    }

    /// The block for maps of `channels` channels.
    pub fn block(&self, channels: usize, device: &Device) -> SpatialAttention {
        SpatialAttentionConfig::new(channels, self.heads)
            .with_context_dim(self.context_dim)
            .init(device)
    }
}

/// One attention block for maps of `channels` channels.
#[derive(Config, Debug)]
pub struct SpatialAttentionConfig {
    pub channels: usize,
    pub heads: usize,
    /// Width of the context it cross-attends to (0: self-attention only).
    #[config(default = 0)]
    pub context_dim: usize,
}

impl SpatialAttentionConfig {
    pub fn init(&self, device: &Device) -> SpatialAttention {
        let heads = |context: usize| {
            CrossAttentionConfig::new(
                self.channels,
                context,
                self.heads,
                self.heads,
                self.channels / self.heads,
            )
            .with_dropout(0.0)
            .init(device)
        };
        SpatialAttention {
            norm: GroupNormConfig::new(groups(self.channels), self.channels).init(device),
            attention: heads(self.channels),
            cross_norm: (self.context_dim > 0)
                .then(|| LayerNormConfig::new(self.channels).init(device)),
            cross: (self.context_dim > 0).then(|| heads(self.context_dim)),
        }
    }
}

/// GroupNorm's groups for `channels`: 8 where they divide, else fewer.
fn groups(channels: usize) -> usize {
    (1..=8)
        .rev()
        .find(|g| channels.is_multiple_of(*g))
        .unwrap_or(1)
}

/// Self-attention over a map's positions, then (with a context) cross-attention to it.
#[derive(Module, Debug)]
pub struct SpatialAttention {
    norm: GroupNorm,
    attention: CrossAttention,
    cross_norm: Option<LayerNorm>,
    cross: Option<CrossAttention>,
}

impl SpatialAttention {
    /// `x` `[n, c, h, w]` with every position having attended to every other (and to
    /// `context` `[n, L, d_context]` where the block cross-attends): `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>, context: Option<&Tensor<3>>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let tokens = |map: Tensor<4>| map.reshape([n, c, h * w]).swap_dims(1, 2); // [n, h·w, c]
        let normed = tokens(self.norm.forward(x.clone()));
        let mut sequence = tokens(x) + self.attention.forward(normed.clone(), normed, None); // [n, h·w, c]
        if let (Some(norm), Some(cross), Some(context)) = (&self.cross_norm, &self.cross, context) {
            let query = norm.forward(sequence.clone());
            sequence = sequence + cross.forward(query, context.clone(), None); // [n, h·w, c]
        }
        sequence.swap_dims(1, 2).reshape([n, c, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::load_weights_from_bytes;

    fn read(tensors: &safetensors::SafeTensors<'_>, name: &str) -> (Vec<f32>, Vec<usize>) {
        let view = tensors.tensor(name).unwrap();
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (values, view.shape().to_vec())
    }

    fn tensor<const D: usize>(
        tensors: &safetensors::SafeTensors<'_>,
        name: &str,
        device: &Device,
    ) -> Tensor<D> {
        let (values, shape) = read(tensors, name);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    fn assert_close(ours: Tensor<3>, reference: Vec<f32>, what: &str) {
        let ours: Vec<f32> = ours.into_data().iter::<f32>().collect();
        assert_eq!(ours.len(), reference.len(), "{what}");
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{what}: differs from PyTorch by {worst}");
    }

    /// Inputs, weights and outputs written by `bench/attention_reference.py` with PyTorch's
    /// `nn.MultiheadAttention` (separate q, k, v projections) and
    /// `F.scaled_dot_product_attention`.
    const REFERENCE: &[u8] = include_bytes!("../../tests/fixtures/attention_reference.safetensors");

    #[test]
    fn matches_pytorch() {
        let device = Device::flex();
        let tensors = safetensors::SafeTensors::deserialize(REFERENCE).unwrap();
        let query: Tensor<3> = tensor(&tensors, "input.query", &device); // [2, 10, 16]
        let context: Tensor<3> = tensor(&tensors, "input.context", &device); // [2, 5, 12]
        for (prefix, context_dim) in [("self_attention", 16), ("cross_attention", 12)] {
            let mut bytes = Vec::new();
            let names: Vec<String> = tensors
                .names()
                .into_iter()
                .filter(|n| n.starts_with(&format!("{prefix}.")))
                .map(|n| n.to_string())
                .collect();
            let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = names
                .iter()
                .map(|n| {
                    (
                        n.trim_start_matches(&format!("{prefix}.")).to_string(),
                        tensors.tensor(n).unwrap(),
                    )
                })
                .collect();
            bytes.extend(safetensors::serialize(views, None).unwrap());
            let heads = CrossAttentionConfig::new(16, context_dim, 4, 4, 4)
                .with_dropout(0.0)
                .init(&device);
            let heads = load_weights_from_bytes(heads, "attention", bytes, prefix).unwrap();
            let keys = match context_dim {
                16 => query.clone(),
                _ => context.clone(),
            };
            let ours = heads.forward(query.clone(), keys, None);
            let (reference, _) = read(&tensors, &format!("output.{prefix}"));
            assert_close(ours, reference, prefix);
        }
        // The block's scaled dot product alone, against F.scaled_dot_product_attention on the
        // projected q, k, v PyTorch wrote out: [batch, heads, tokens, d].
        let q: Tensor<4> = tensor(&tensors, "sdpa.q", &device);
        let k: Tensor<4> = tensor(&tensors, "sdpa.k", &device);
        let v: Tensor<4> = tensor(&tensors, "sdpa.v", &device);
        let [b, heads, l, d] = q.dims();
        let weights =
            burn::tensor::activation::softmax(q.matmul(k.transpose()) / (d as f64).sqrt(), 3);
        let ours = weights.matmul(v).reshape([b * heads, l, d]);
        let (reference, _) = read(&tensors, "sdpa.output");
        assert_close(ours, reference, "scaled dot product");
    }

    #[test]
    fn an_attention_block_keeps_the_map_shape_and_mixes_positions() {
        let device = Device::flex();
        device.seed(0);
        let block = SpatialAttentionConfig::new(16, 4)
            .with_context_dim(12)
            .init(&device);
        let x = Tensor::<4>::random([2, 16, 4, 4], burn::tensor::Distribution::Default, &device);
        let context = Tensor::<3>::random([2, 5, 12], burn::tensor::Distribution::Default, &device);
        let out = block.forward(x.clone(), Some(&context));
        assert_eq!(out.dims(), [2, 16, 4, 4]);
        // Changing one far position changes the output at position (0, 0): attention reaches
        // across the map, where a 3x3 convolution would not.
        let poked = x.clone().slice_assign(
            [0..2, 0..16, 3..4, 3..4],
            Tensor::ones([2, 16, 1, 1], &device) * 5.0,
        );
        let at_origin = |t: Tensor<4>| t.slice([0..2, 0..16, 0..1, 0..1]);
        let moved = (at_origin(block.forward(poked, Some(&context))) - at_origin(out.clone()))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(moved > 1e-4, "position (0, 0) did not see (3, 3): {moved}");
        // The context matters to a cross-attending block.
        let other = Tensor::<3>::zeros([2, 5, 12], &device);
        let changed = (block.forward(x, Some(&other)) - out)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(changed > 1e-4, "the context changes nothing: {changed}");
    }
}
