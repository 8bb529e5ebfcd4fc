//! Figures only a tour can draw, because they put several runs side by side:
//! `figures/compare.png`, the same test images through PCA, the autoencoder and the VAE at the same
//! latent size (Hinton & Salakhutdinov 2006, Fig. 2, with our models), and
//! `figures/edit-<job>.png`, the same test images through every editing method of a job.

use std::path::Path;

use burn::Tensor;
use burn::tensor::TensorData;

use crate::data::folder::load_image_files;
use crate::error::Result;
use crate::pca::{Pca, bytes_to_matrix};
use crate::run::Run;
use crate::tour::plan::{TourOptions, edit_figure, edit_json};
use crate::tour::summary::{EditSection, Summary};
use crate::viz::ImageGrid;

/// Where the comparison figure goes, relative to the tour folder.
pub const COMPARE: &str = "figures/compare.png";

/// Draws every figure: `COMPARE` and one per editing job.
pub fn draw(options: &TourOptions, summary: &Summary) -> Result<()> {
    draw_compare(options, summary)?;
    for section in &summary.edits {
        draw_edits(&options.out, section)?;
    }
    Ok(())
}

/// The same test images through every method of an editing job: originals, what the methods
/// saw, then one row per method (from the images `eval-edit --save-edited` wrote).
fn draw_edits(out: &Path, section: &EditSection) -> Result<()> {
    let folder = |method: &str| {
        out.join(edit_json(&section.name, method))
            .with_extension("")
    };
    let first = folder(&section.methods[0].method);
    let originals = load_image_files(&first.join("original"))?;
    let shape = originals.shape;
    let mut rows = vec![
        ("original".to_string(), originals),
        ("input".to_string(), load_image_files(&first.join("input"))?),
    ];
    for row in &section.methods {
        let label = format!("{}\n{:.1} dB", row.method, row.scores.psnr_hole);
        rows.push((
            label,
            load_image_files(&folder(&row.method).join("edited"))?,
        ));
    }
    let columns = rows[0].1.len();
    let mut grid = ImageGrid::new(shape);
    for (_, split) in &rows {
        for i in 0..columns.min(split.len()) {
            grid.push(split.unit_image(i));
        }
    }
    let labels: Vec<String> = rows.iter().map(|(label, _)| label.clone()).collect();
    grid.save_labelled_rows(columns, &labels, &out.join(edit_figure(&section.name)))
}

/// Draws `COMPARE` from the tour's pca, ae and vae folders.
fn draw_compare(options: &TourOptions, summary: &Summary) -> Result<()> {
    let out = &options.out;
    let device = options
        .device
        .parse::<crate::device::DeviceChoice>()?
        .device()?;

    let ae = Run::open(&out.join("ae"))?;
    let vae = Run::open(&out.join("vae"))?;
    let dataset = ae.load_data()?;
    let test = &dataset.test;
    // The test images PCA's own figure shows.
    let picks = test.one_per_class(dataset.num_classes(), 8);
    let bytes: Vec<u8> = picks
        .iter()
        .flat_map(|&i| test.image(i).iter().copied())
        .collect();
    let shape = test.shape;
    let originals: Vec<f32> = bytes.iter().map(|&b| b as f32 / 255.0).collect();

    let pca = Pca::load(&out.join("pca/pca.safetensors"))?;
    let x = bytes_to_matrix(&bytes, picks.len(), 255.0);
    let pca_recon = pca.inverse_transform(pca.transform(x.as_ref())?.as_ref())?;
    let pca_values: Vec<f32> = (0..picks.len())
        .flat_map(|i| {
            pca_recon
                .row(i)
                .iter()
                .map(|&v| v as f32)
                .collect::<Vec<_>>()
        })
        .collect();

    let images = Tensor::<4>::from_data(
        TensorData::new(
            originals.clone(),
            [picks.len(), shape.channels, shape.height, shape.width],
        ),
        &device,
    );
    let through = |run: &Run| -> Result<Vec<f32>> {
        let model = run.load_latent(&device)?;
        let z = model.encode_mean(images.clone(), None); // [n, latent]
        let recon = model.decode_mean(z, None); // [n, c, h, w]
        Ok(recon.into_data().iter::<f32>().collect())
    };
    let rows = [
        ("original".to_string(), originals),
        (
            format!("PCA k = {}{}", pca.n_components(), mse_of(summary, "pca")),
            pca_values,
        ),
        (
            format!("autoencoder{}", mse_of(summary, "ae")),
            through(&ae)?,
        ),
        (format!("VAE{}", mse_of(summary, "vae")), through(&vae)?),
    ];

    let mut grid = ImageGrid::new(shape);
    let plane = shape.len();
    for (_, values) in &rows {
        for image in values.chunks(plane) {
            grid.push(image.to_vec());
        }
    }
    let labels: Vec<String> = rows.iter().map(|(label, _)| label.clone()).collect();
    grid.save_labelled_rows(picks.len(), &labels, &out.join(COMPARE))
}

fn mse_of(summary: &Summary, folder: &str) -> String {
    summary
        .models
        .iter()
        .find(|r| r.folder == folder)
        .and_then(|r| r.test_mse)
        .map_or(String::new(), |m| format!("\nmse {m:.4}"))
}
