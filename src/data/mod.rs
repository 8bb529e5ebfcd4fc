//! Datasets: where images come from (IDX, CIFAR-10, image folders, the embedded subset), how a
//! dataset is found, and how it is cut into batches of burn tensors.
//!
//! Every loader produces the same [`Dataset`]: raw `u8` pixels in channel-major (`CHW`) order, one
//! image after another, with one class label per image. Keeping pixels as bytes makes CIFAR-10 (60k
//! colour images) fit in 184 MB; scaling to floats happens per batch.

pub mod batcher;
pub mod cifar;
pub mod discover;
pub mod embedded;
pub mod folder;
pub mod idx;
pub mod stream;

pub use batcher::{Batch, BatchConfig, Batches, PixelScale, test_images};
pub use discover::{DataSpec, load_dataset};

/// Channels, height and width of every image in a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// Pixels per image, all channels counted.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// One split (train or test): `len` images of `shape`, pixels as bytes, labels as class indices.
#[derive(Debug, Clone)]
pub struct Split {
    pub shape: ImageShape,
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn new(shape: ImageShape, pixels: Vec<u8>, labels: Vec<u8>) -> Self {
        debug_assert_eq!(pixels.len(), labels.len() * shape.len());
        Self {
            shape,
            pixels,
            labels,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The bytes of image `index`, `CHW` order.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.shape.len();
        &self.pixels[index * size..(index + 1) * size]
    }

    /// Indices of `n` images to show: the first of each of the first `n` classes, or the first
    /// `n` images when some of those classes are missing.
    pub fn one_per_class(&self, num_classes: usize, n: usize) -> Vec<usize> {
        let picks: Vec<usize> = (0..num_classes.min(n))
            .filter_map(|c| self.labels.iter().position(|&l| l as usize == c))
            .collect();
        if picks.len() < n {
            (0..self.len().min(n)).collect()
        } else {
            picks
        }
    }

    /// The pixels of image `index` scaled to [0, 1], `CHW` order.
    pub fn unit_image(&self, index: usize) -> Vec<f32> {
        self.image(index)
            .iter()
            .map(|&b| b as f32 / 255.0)
            .collect()
    }

    /// Indices of `n` images taking the classes in turn: the first image of each class, then
    /// the second of each, … (file order within a class). A few images then show every class;
    /// `n ≥ len` gives every image.
    pub fn spread(&self, n: usize) -> Vec<usize> {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 256];
        for (i, &label) in self.labels.iter().enumerate() {
            by_class[label as usize].push(i);
        }
        by_class.retain(|c| !c.is_empty());
        let rounds = by_class.iter().map(Vec::len).max().unwrap_or(0);
        (0..rounds)
            .flat_map(|round| by_class.iter().filter_map(move |c| c.get(round).copied()))
            .take(n)
            .collect()
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Split {
        let pixels = indices
            .iter()
            .flat_map(|&i| self.image(i).iter().copied())
            .collect();
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Split::new(self.shape, pixels, labels)
    }

    /// Number of images of each class, indexed by label.
    pub fn class_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &label in &self.labels {
            if (label as usize) < num_classes {
                counts[label as usize] += 1;
            }
        }
        counts
    }
}

/// A dataset with its train and test splits and what it is called.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Short name, e.g. `fashion-mnist`, `cifar-10`, a folder's name.
    pub name: String,
    /// Where it was read from, for the log and `config.json`.
    pub source: String,
    pub class_names: Vec<String>,
    pub train: Split,
    pub test: Split,
}

impl Dataset {
    pub fn shape(&self) -> ImageShape {
        self.train.shape
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// One line for the log: name, source, sizes.
    pub fn summary(&self) -> String {
        format!(
            "{} from {}: {} train + {} test images, {}, {} classes",
            self.name,
            self.source,
            self.train.len(),
            self.test.len(),
            self.shape(),
            self.num_classes()
        )
    }
}

/// Class names of Fashion-MNIST, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

impl Split {
    /// All images as the rows of a faer matrix `[len, pixels]`, pixels scaled to [0, 1] (for PCA).
    pub fn to_matrix(&self) -> faer::Mat<f64> {
        crate::pca::bytes_to_matrix(&self.pixels, self.len(), 255.0)
    }
}

/// A split limited to its first `n` images (smoke runs, quick looks).
pub fn limit_split(split: &Split, n: Option<usize>) -> Split {
    match n {
        Some(n) if n < split.len() => {
            let shape = split.shape;
            Split::new(
                shape,
                split.pixels[..n * shape.len()].to_vec(),
                split.labels[..n].to_vec(),
            )
        }
        _ => split.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_classes_in_turn() {
        let shape = ImageShape {
            channels: 1,
            height: 1,
            width: 1,
        };
        let labels = vec![2, 0, 0, 2, 1, 0];
        let split = Split::new(shape, (0..6).collect(), labels);
        assert_eq!(split.spread(4), vec![1, 4, 0, 2]);
        assert_eq!(split.spread(99), vec![1, 4, 0, 2, 3, 5]);
        assert_eq!(split.select(&[3, 1]).pixels, vec![3, 1]);
    }
}
