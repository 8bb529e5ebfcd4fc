//! Layers the GAN networks share: DCGAN's initialization, the label inputs of conditional
//! networks, and the receptive field of a stack of convolutions.

use burn::nn::{BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;

use crate::data::ImageShape;

/// Radford et al.'s initialization: weights from N(0, 0.02).
pub(crate) fn dcgan_weights() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// Batch norm with γ from N(1, 0.02) and β = 0 (Radford et al.).
pub(crate) fn dcgan_batch_norm(features: usize, device: &Device) -> BatchNorm {
    let mut norm = BatchNormConfig::new(features).init(device);
    norm.gamma = Initializer::Normal {
        mean: 1.0,
        std: 0.02,
    }
    .init([features], device);
    norm
}

/// The label embedding a conditional generator joins to z: one learned vector per class (none
/// for `num_classes` 0).
pub(crate) fn label_embedding(num_classes: usize, device: &Device) -> Option<Embedding> {
    (num_classes > 0).then(|| {
        EmbeddingConfig::new(num_classes, num_classes)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            })
            .init(device)
    })
}

/// The projected label map a conditional discriminator reads as one more image channel: one
/// learned h×w map per class (none for `num_classes` 0).
pub(crate) fn label_map(
    num_classes: usize,
    shape: ImageShape,
    device: &Device,
) -> Option<Embedding> {
    (num_classes > 0).then(|| {
        EmbeddingConfig::new(num_classes, shape.height * shape.width)
            .with_initializer(dcgan_weights())
            .init(device)
    })
}

/// `[z, embed(y)]`, `[batch, latent + classes]`; z alone when the generator is unconditional.
pub(crate) fn join_label(
    z: Tensor<2>,
    embedding: &Option<Embedding>,
    labels: Option<Tensor<1, Int>>,
) -> Tensor<2> {
    match (embedding, labels) {
        (Some(embedding), Some(labels)) => {
            let [batch] = labels.dims();
            let codes = embedding.forward(labels.reshape([batch, 1])); // [batch, 1, classes]
            Tensor::cat(vec![z, codes.flatten::<2>(1, 2)], 1) // [batch, latent + classes]
        }
        (None, _) => z,
        (Some(_), None) => panic!("a conditional generator needs labels"),
    }
}

/// The images with the label's map appended as one more channel, `[batch, c + 1, h, w]`; the
/// images alone when the discriminator is unconditional.
pub(crate) fn append_label_map(
    images: Tensor<4>,
    map: &Option<Embedding>,
    labels: Option<Tensor<1, Int>>,
) -> Tensor<4> {
    match (map, labels) {
        (Some(map), Some(labels)) => {
            let [batch, _, height, width] = images.dims();
            let maps = map
                .forward(labels.reshape([batch, 1])) // [batch, 1, h * w]
                .reshape([batch, 1, height, width]); // [batch, 1, h, w]
            Tensor::cat(vec![images, maps], 1) // [batch, c + 1, h, w]
        }
        (None, _) => images,
        (Some(_), None) => panic!("a conditional discriminator needs labels"),
    }
}

/// The receptive field, in pixels, of a stack of convolutions given as (kernel, stride), input
/// side first: how much of the image one output logit sees.
pub(crate) fn receptive_field(layers: &[(usize, usize)]) -> usize {
    layers
        .iter()
        .rev()
        .fold(1, |field, &(kernel, stride)| (field - 1) * stride + kernel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receptive_fields_of_known_stacks() {
        // pix2pix's 70x70 PatchGAN: three 4x4 stride-2 convs, then two 4x4 stride-1 convs.
        assert_eq!(
            receptive_field(&[(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]),
            70
        );
        assert_eq!(receptive_field(&[(3, 1), (3, 1)]), 5);
    }

    #[test]
    fn labels_are_joined_where_the_networks_read_them() {
        let device = Device::flex();
        let shape = ImageShape {
            channels: 1,
            height: 4,
            width: 4,
        };
        let embedding = label_embedding(5, &device);
        let table: Vec<f32> = embedding
            .as_ref()
            .unwrap()
            .weight
            .val()
            .into_data()
            .iter::<f32>()
            .collect(); // [5, 5]
        let z = Tensor::<2>::zeros([2, 3], &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![4i64, 1], [2]), &device);
        let joined: Vec<f32> = join_label(z, &embedding, Some(labels.clone()))
            .into_data()
            .iter::<f32>()
            .collect(); // [2, 8]
        assert_eq!(&joined[0..3], &[0.0; 3]);
        assert_eq!(&joined[3..8], &table[20..25], "class 4's vector after z");
        assert_eq!(&joined[11..16], &table[5..10], "class 1's vector after z");

        let map = label_map(5, shape, &device);
        let maps: Vec<f32> = map
            .as_ref()
            .unwrap()
            .weight
            .val()
            .into_data()
            .iter::<f32>()
            .collect(); // [5, 16]
        let images = Tensor::<4>::ones([2, 1, 4, 4], &device);
        let joined = append_label_map(images, &map, Some(labels));
        assert_eq!(joined.dims(), [2, 2, 4, 4]);
        let joined: Vec<f32> = joined.into_data().iter::<f32>().collect();
        assert_eq!(&joined[0..16], &[1.0; 16]);
        assert_eq!(&joined[16..32], &maps[64..80], "class 4's map as channel 2");
        assert_eq!(&joined[48..64], &maps[16..32], "class 1's map as channel 2");
    }
}
