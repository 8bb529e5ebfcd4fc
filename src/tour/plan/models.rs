//! The report's model sections: the stages that train PCA, the autoencoders and VAEs, the
//! classifier, the GANs and the diffusion model.

use super::{Planner, TRAINED, diffusion_rate, latent_diffusion_rate, outputs, words};

/// The GANs of a tour: folder name, title, extra `train gan` options.
pub const GANS: [(&str, &str, &[&str]); 3] = [
    ("gan", "DCGAN G + DCGAN D", &[]),
    (
        "gan-patchgan",
        "DCGAN G + PatchGAN D",
        &["--discriminator", "patchgan"],
    ),
    ("cgan", "conditional DCGAN", &["--conditional"]),
];

/// The autoencoders and VAEs of a tour: folder name, `train` model, latent size (0: the recipe's).
pub const LATENT_MODELS: [(&str, &str, usize); 4] = [
    ("ae", "ae", 0),
    ("vae", "vae", 0),
    ("ae-2d", "ae", 2),
    ("vae-2d", "vae", 2),
];

/// PCA: the `pca` command at the recipe's k.
pub(super) fn pca(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let data = p.data;
    let common = p.common.clone();
    // PCA has no --limit: it fits whatever data it is given, in a second.
    let mut pca = words(&[
        "pca",
        "--k",
        &recipe.latent.to_string(),
        "--out",
        &p.out("pca"),
    ]);
    if let Some(data) = data {
        pca.extend(words(&["--data", data]));
    }
    pca.extend(common.iter().cloned());
    pca.push("--force".into());
    p.add(
        "pca".into(),
        pca,
        outputs(
            "pca",
            &[
                "metrics.json",
                "pca.safetensors",
                "components.png",
                "reconstructions.png",
                "variance.png",
            ],
        ),
        vec![],
        3.0,
    );
}

/// The autoencoders and VAEs, at the recipe's latent size and in 2-D.
pub(super) fn latent_models(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let epoch_images = p.epoch_images;
    for (folder, model, latent) in LATENT_MODELS {
        let latent = if latent == 0 { recipe.latent } else { latent };
        let args = p.training(
            words(&[
                "train",
                model,
                "--latent",
                &latent.to_string(),
                "--epochs",
                &recipe.latent_epochs.to_string(),
            ]),
            folder,
        );
        let images = epoch_images * recipe.latent_epochs as f64;
        p.add(
            format!("train-{folder}"),
            args,
            outputs(folder, &TRAINED),
            vec![],
            images / 5000.0 + 2.0,
        );
    }
}

/// The classifier that scores samples and edits.
pub(super) fn classifier(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let epoch_images = p.epoch_images;
    let mut args = words(&["train", "classifier"]);
    args.extend(words(&["--epochs", &recipe.classifier_epochs.to_string()]));
    let classifier_rate = if let Some((channels, hidden)) = recipe.classifier_widths {
        args.extend(words(&["--conv-channels", channels, "--hidden", hidden]));
        500.0
    } else {
        230.0
    };
    p.add(
        "train-classifier".into(),
        p.training(args, "classifier"),
        outputs("classifier", &TRAINED),
        vec![],
        epoch_images * recipe.classifier_epochs as f64 / classifier_rate + 2.0,
    );
}

/// The GANs: DCGAN, DCGAN G with a PatchGAN D, the conditional DCGAN.
pub(super) fn gans(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let epoch_images = p.epoch_images;
    // DCGAN cost grows with the square of the width: ~120 images/s at 64 on 2 cores.
    let gan_rate = 120.0 * (64.0 / recipe.gan_width as f64).powi(2);
    for (folder, _, extra) in GANS {
        let mut args = words(&["train", "gan"]);
        args.extend(words(extra));
        let width = recipe.gan_width.to_string();
        let d_width = match recipe.patchgan_width {
            Some(w) if folder == "gan-patchgan" => w.to_string(),
            _ => width.clone(),
        };
        args.extend(words(&["--epochs", &recipe.gan_epochs.to_string()]));
        args.extend(words(&["--ngf", &width, "--ndf", &d_width]));
        if let Some((batch, lr)) = recipe.gan_batch_lr {
            args.extend(words(&[
                "--batch-size",
                &batch.to_string(),
                "--lr",
                &lr.to_string(),
            ]));
        }
        p.add(
            format!("train-{folder}"),
            p.training(args, folder),
            outputs(folder, &["model.safetensors", "metrics.jsonl", "steps.png"]),
            vec![],
            epoch_images * recipe.gan_epochs as f64 / gan_rate + 2.0,
        );
    }
}

/// Latent diffusion: the first stage (autoencoder-kl, f = 4), then a U-Net with self-attention
/// on its 4x8x8 codes.
pub(super) fn latent_diffusion(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let epoch_images = p.epoch_images;
    let args = words(&[
        "train",
        "autoencoder-kl",
        "--width",
        &recipe.first_stage_width.to_string(),
        "--epochs",
        &recipe.first_stage_epochs.to_string(),
        "--batch-size",
        &recipe.latent_batch_size.to_string(),
    ]);
    // ~450 images/s at width 16 on 2 cores, the cost going with the width squared.
    let first_stage_rate = 450.0 * (16.0 / recipe.first_stage_width as f64).powi(2);
    p.add(
        "train-autoencoder-kl".into(),
        p.training(args, "autoencoder-kl"),
        outputs(
            "autoencoder-kl",
            &["model.safetensors", "latent_scale.json", "config.json"],
        ),
        vec![],
        epoch_images * recipe.first_stage_epochs as f64 / first_stage_rate + 5.0,
    );
    let args = words(&[
        "train",
        "diffusion",
        "--latent-of",
        &p.out("autoencoder-kl"),
        "--width",
        &recipe.latent_diffusion_width.to_string(),
        "--attention",
        "4",
        "--epochs",
        &recipe.latent_diffusion_epochs.to_string(),
        "--batch-size",
        &recipe.latent_batch_size.to_string(),
    ]);
    p.add(
        "train-latent-diffusion".into(),
        p.training(args, "latent-diffusion"),
        outputs("latent-diffusion", &TRAINED),
        vec!["train-autoencoder-kl".into()],
        epoch_images * recipe.latent_diffusion_epochs as f64 * 4.0
            / latent_diffusion_rate(recipe.latent_diffusion_width)
            + 10.0,
    );
    p.add(
        "reconstruct-autoencoder-kl".into(),
        p.reading(&["reconstruct", &p.out("autoencoder-kl"), "--n", "8"]),
        outputs("autoencoder-kl", &["reconstructions.png"]),
        vec!["train-autoencoder-kl".into()],
        2.0,
    );
}

/// The diffusion model (DDPM, a U-Net of the recipe's width).
pub(super) fn diffusion(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let epoch_images = p.epoch_images;
    // ~4 forward passes' cost per training image.
    let width = recipe.diffusion_width.to_string();
    let args = words(&[
        "train",
        "diffusion",
        "--width",
        &width,
        "--epochs",
        &recipe.diffusion_epochs.to_string(),
    ]);
    p.add(
        "train-diffusion".into(),
        p.training(args, "diffusion"),
        outputs("diffusion", &TRAINED),
        vec![],
        epoch_images * recipe.diffusion_epochs as f64 * 4.0
            / diffusion_rate(recipe.diffusion_width)
            + 5.0,
    );
}
