//! Cutting a split into batches of burn tensors: seeded shuffling, drop-last, pixel scaling.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::Split;

/// How bytes become floats. Sigmoid decoders want [0, 1]; Tanh generators (DCGAN) want [-1, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PixelScale {
    ZeroOne,
    MinusOneOne,
}

impl PixelScale {
    #[inline]
    pub fn apply(self, byte: u8) -> f32 {
        match self {
            PixelScale::ZeroOne => byte as f32 / 255.0,
            PixelScale::MinusOneOne => byte as f32 / 127.5 - 1.0,
        }
    }

    /// The pixel range, for mapping model outputs back to images.
    pub fn range(self) -> (f32, f32) {
        match self {
            PixelScale::ZeroOne => (0.0, 1.0),
            PixelScale::MinusOneOne => (-1.0, 1.0),
        }
    }
}

/// How to walk a split.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub batch_size: usize,
    /// Shuffle with this seed; `None` keeps file order (for evaluation).
    pub shuffle_seed: Option<u64>,
    /// Drop a last batch smaller than `batch_size`.
    pub drop_last: bool,
    pub scale: PixelScale,
}

impl BatchConfig {
    /// The split in its own order, every image once (the last batch may be smaller): how
    /// evaluation, sampling and pictures read data.
    pub fn in_order(batch_size: usize, scale: PixelScale) -> Self {
        Self {
            batch_size,
            shuffle_seed: None,
            drop_last: false,
            scale,
        }
    }
}

/// One batch: images `[batch, channels, height, width]` and their class labels `[batch]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Tensor<4>,
    pub labels: Tensor<1, Int>,
    /// Which images of the split they are, row by row (empty where a batch was not read from
    /// a split): what a learner keyed on the split's images (latent diffusion's cached codes)
    /// looks them up by.
    pub indices: Vec<usize>,
}

/// An iterator over the batches of one pass through a split.
pub struct Batches<'a> {
    split: &'a Split,
    order: Vec<usize>,
    position: usize,
    config: BatchConfig,
    device: Device,
}

impl<'a> Batches<'a> {
    pub fn new(split: &'a Split, config: BatchConfig, device: &Device) -> Self {
        assert!(config.batch_size > 0, "batch size must be positive");
        let mut order: Vec<usize> = (0..split.len()).collect();
        if let Some(seed) = config.shuffle_seed {
            order.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        Self {
            split,
            order,
            position: 0,
            config,
            device: device.clone(),
        }
    }

    /// The images of this pass, in the order they will be served.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Skips the first `n` batches without building them (resuming mid-epoch).
    pub fn skip_batches(mut self, n: usize) -> Self {
        self.position = (n * self.config.batch_size).min(self.order.len());
        self
    }

    /// Number of batches this pass yields.
    pub fn num_batches(&self) -> usize {
        let n = self.order.len();
        let b = self.config.batch_size;
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let remaining = self.order.len() - self.position;
        let size = remaining.min(self.config.batch_size);
        if size == 0 || (self.config.drop_last && size < self.config.batch_size) {
            return None;
        }
        let indices = &self.order[self.position..self.position + size];
        self.position += size;
        let shape = self.split.shape;
        let mut pixels = Vec::with_capacity(size * shape.len());
        let mut labels = Vec::with_capacity(size);
        for &i in indices {
            pixels.extend(
                self.split
                    .image(i)
                    .iter()
                    .map(|&p| self.config.scale.apply(p)),
            );
            labels.push(self.split.labels[i] as i64);
        }
        let images = Tensor::from_data(
            TensorData::new(pixels, [size, shape.channels, shape.height, shape.width]),
            &self.device,
        );
        let labels = Tensor::from_data(TensorData::new(labels, [size]), &self.device);
        Some(Batch {
            images,
            labels,
            indices: indices.to_vec(),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let done = self.position.div_ceil(self.config.batch_size);
        let left = self.num_batches().saturating_sub(done);
        (left, Some(left))
    }
}

/// The first `n` test images, pixels in [0, 1], `[n, c, h, w]`, and their labels.
pub fn test_images(dataset: &super::Dataset, n: usize, device: &Device) -> (Tensor<4>, Vec<u8>) {
    let n = n.min(dataset.test.len()).max(1);
    let batch = Batches::new(
        &dataset.test,
        BatchConfig::in_order(n, PixelScale::ZeroOne),
        device,
    )
    .next()
    .expect("the test split is not empty");
    (batch.images, dataset.test.labels[..n].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;

    fn split(n: usize) -> Split {
        let shape = ImageShape {
            channels: 1,
            height: 2,
            width: 2,
        };
        // Image i is filled with the byte i, so a batch tells which images it holds.
        let pixels = (0..n).flat_map(|i| [i as u8; 4]).collect();
        Split::new(shape, pixels, (0..n).map(|i| (i % 10) as u8).collect())
    }

    fn config(seed: Option<u64>, drop_last: bool) -> BatchConfig {
        BatchConfig {
            batch_size: 4,
            shuffle_seed: seed,
            drop_last,
            scale: PixelScale::ZeroOne,
        }
    }

    #[test]
    fn shapes_counts_and_drop_last() {
        let device = Device::flex();
        let data = split(10);
        let batches: Vec<Batch> = Batches::new(&data, config(None, false), &device).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].images.dims(), [4, 1, 2, 2]);
        assert_eq!(batches[2].images.dims(), [2, 1, 2, 2]);
        assert_eq!(Batches::new(&data, config(None, true), &device).count(), 2);
    }

    #[test]
    fn same_seed_same_order_and_every_image_once() {
        let data = split(50);
        let device = Device::flex();
        let a = Batches::new(&data, config(Some(7), false), &device);
        let b = Batches::new(&data, config(Some(7), false), &device);
        let c = Batches::new(&data, config(Some(8), false), &device);
        assert_eq!(a.order(), b.order());
        assert_ne!(a.order(), c.order());
        let mut seen = a.order().to_vec();
        seen.sort();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn labels_follow_images_and_scaling_applies() {
        let data = split(12);
        let device = Device::flex();
        let cfg = BatchConfig {
            scale: PixelScale::MinusOneOne,
            ..config(Some(3), false)
        };
        for batch in Batches::new(&data, cfg, &device) {
            let pixels = batch.images.into_data().try_to_vec::<f32>().unwrap();
            let labels = batch.labels.into_data().iter::<i64>().collect::<Vec<_>>();
            for (k, label) in labels.iter().enumerate() {
                let index = ((pixels[k * 4] + 1.0) * 127.5).round() as i64;
                assert_eq!(index % 10, *label);
            }
            assert!(pixels.iter().all(|p| (-1.0..=1.0).contains(p)));
        }
    }
}
