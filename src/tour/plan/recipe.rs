//! The sizes each budget trains and measures at.

use super::Budget;

/// The sizes a budget trains at.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recipe {
    /// Dataset when `--data` is not given (`None`: the usual search, full Fashion-MNIST first).
    pub default_data: Option<&'static str>,
    /// Images per split (`--limit`).
    pub limit: Option<usize>,
    /// PCA's k and the autoencoder's and VAE's latent size, equal so the three compare.
    pub latent: usize,
    pub latent_epochs: usize,
    pub classifier_epochs: usize,
    /// `--conv-channels` and `--hidden` of the classifier; `None`: its defaults.
    pub classifier_widths: Option<(&'static str, &'static str)>,
    pub gan_epochs: usize,
    /// `--ngf` and `--ndf`.
    pub gan_width: usize,
    /// `--ndf` of the PatchGAN discriminator when it differs: its stride-1 layers make it the
    /// slowest of the three at equal width.
    pub patchgan_width: Option<usize>,
    /// `--batch-size` and `--lr` of the GANs; `None`: DCGAN's 128 and 2e-4.
    pub gan_batch_lr: Option<(usize, f64)>,
    /// The diffusion model: epochs and U-Net width.
    pub diffusion_epochs: usize,
    pub diffusion_width: usize,
    /// The samplers of its quality-against-steps curve beside the scored DDIM-50: `--steps`
    /// values, then DDPM's T steps when `diffusion_ddpm`.
    pub diffusion_curve: &'static [usize],
    pub diffusion_ddpm: bool,
    /// Latent diffusion: the first stage's (autoencoder-kl, f = 4) epochs and width, then the
    /// latent U-Net's (with self-attention at 4x4).
    pub first_stage_epochs: usize,
    pub first_stage_width: usize,
    pub latent_diffusion_epochs: usize,
    pub latent_diffusion_width: usize,
    /// `--batch-size` of both latent diffusion stages.
    pub latent_batch_size: usize,
    /// Generated images per model for FID/KID/precision/recall.
    pub samples: usize,
    /// Importance samples per image of the VAE's IWAE bound, and images scored.
    pub iwae_k: usize,
    pub iwae_images: Option<usize>,
    /// Test images each editing method is scored on.
    pub edit_images: usize,
    /// pix2pix: epochs and U-Net (and PatchGAN) width.
    pub pix2pix_epochs: usize,
    pub pix2pix_width: usize,
    /// Latent search of the zero-shot edits: Adam steps, and starting draws for a GAN.
    pub inversion_steps: usize,
    pub inversion_restarts: usize,
    /// Style transfer of the embedded photographs: the longer side, and Adam steps.
    pub style_size: u32,
    pub style_steps: usize,
}

impl Recipe {
    pub fn of(budget: Budget) -> Self {
        match budget {
            Budget::Smoke => Self {
                default_data: Some("embedded"),
                limit: Some(256),
                latent: 8,
                latent_epochs: 1,
                classifier_epochs: 1,
                classifier_widths: Some(("8,16", "16")),
                gan_epochs: 1,
                gan_width: 8,
                gan_batch_lr: Some((64, 5e-4)),
                patchgan_width: None,
                diffusion_epochs: 1,
                diffusion_width: 8,
                diffusion_curve: &[10],
                diffusion_ddpm: false,
                first_stage_epochs: 1,
                first_stage_width: 8,
                latent_diffusion_epochs: 1,
                latent_diffusion_width: 8,
                latent_batch_size: 32,
                samples: 128,
                iwae_k: 4,
                iwae_images: Some(16),
                edit_images: 16,
                pix2pix_epochs: 1,
                pix2pix_width: 4,
                inversion_steps: 5,
                inversion_restarts: 1,
                style_size: 32,
                style_steps: 5,
            },
            Budget::Quick => Self {
                default_data: Some("embedded"),
                limit: None,
                latent: 20,
                latent_epochs: 10,
                classifier_epochs: 2,
                classifier_widths: Some(("32,64", "128")),
                // Narrow nets for many steps: 12 epochs at width 16 cost what 3 at 32 did (the
                // cost goes with the width squared) and draw recognisable garments, where 3 at 32
                // drew blobs; batch 64 at 5e-4 for more, larger steps.
                gan_epochs: 12,
                gan_width: 16,
                gan_batch_lr: Some((64, 5e-4)),
                // At 16 it took 72 s against the DCGAN D's 27 s.
                patchgan_width: Some(8),
                // The pixel model is the foil: 4 epochs (137 s for 8 gave classifier FD 107),
                // its time given to latent diffusion, which scores sampling steps and RePaint.
                diffusion_epochs: 4,
                diffusion_width: 16,
                diffusion_curve: &[10, 20],
                diffusion_ddpm: false,
                // 6 + 20 epochs at batch 64 on the embedded subset: classifier FD 23.6 (the quick
                // DCGAN's: 26.9), where 3 + 10 at batch 128 gave 45.3.
                first_stage_epochs: 6,
                first_stage_width: 16,
                latent_diffusion_epochs: 20,
                latent_diffusion_width: 32,
                latent_batch_size: 64,
                samples: 2000,
                iwae_k: 100,
                iwae_images: Some(500),
                edit_images: 200,
                pix2pix_epochs: 3,
                pix2pix_width: 16,
                inversion_steps: 100,
                inversion_restarts: 2,
                style_size: 128,
                style_steps: 200,
            },
            Budget::Standard => Self {
                default_data: None,
                limit: None,
                latent: 20,
                latent_epochs: 10,
                classifier_epochs: 3,
                classifier_widths: Some(("32,64", "128")),
                gan_epochs: 3,
                gan_width: 32,
                gan_batch_lr: Some((64, 5e-4)),
                patchgan_width: Some(16),
                // Width 16: at 32 scoring DDIM-50 on 10,000 samples alone takes ~25 min.
                diffusion_epochs: 3,
                diffusion_width: 16,
                diffusion_curve: &[10, 20],
                diffusion_ddpm: false,
                first_stage_epochs: 3,
                first_stage_width: 16,
                latent_diffusion_epochs: 6,
                latent_diffusion_width: 32,
                latent_batch_size: 128,
                samples: 10_000,
                iwae_k: 1000,
                iwae_images: Some(1000),
                edit_images: 1000,
                pix2pix_epochs: 5,
                pix2pix_width: 32,
                inversion_steps: 200,
                inversion_restarts: 4,
                style_size: 192,
                style_steps: 300,
            },
            Budget::Paper => Self {
                default_data: None,
                limit: None,
                latent: 20,
                latent_epochs: 10,
                classifier_epochs: 10,
                classifier_widths: None,
                gan_epochs: 20,
                gan_width: 64,
                gan_batch_lr: None,
                patchgan_width: None,
                diffusion_epochs: 20,
                diffusion_width: 64,
                diffusion_curve: &[10, 20, 100],
                diffusion_ddpm: true,
                first_stage_epochs: 10,
                first_stage_width: 32,
                latent_diffusion_epochs: 30,
                latent_diffusion_width: 64,
                latent_batch_size: 128,
                samples: 10_000,
                iwae_k: 5000,
                iwae_images: None,
                edit_images: 10_000,
                pix2pix_epochs: 20,
                pix2pix_width: 64,
                inversion_steps: 200,
                inversion_restarts: 4,
                style_size: 256,
                style_steps: 500,
            },
        }
    }

    /// Training images per epoch, for the ETA: the embedded subset has 10,000, the full set 60,000.
    pub(super) fn images_per_epoch(&self, data: Option<&str>) -> f64 {
        let full = match data {
            Some("embedded") => 10_000.0,
            _ => 60_000.0,
        };
        self.limit.map_or(full, |l| (l as f64).min(full))
    }
}
