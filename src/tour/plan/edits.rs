//! The editing section: the runs only editing trains, every method scored on every job, and
//! style transfer.

use super::{Planner, TRAINED, latent_diffusion_rate, outputs, words};

/// An editing job of the tour: its folder under `edits/`, its title, the `eval-edit` flags that
/// choose it, and whether it needs colour images.
pub struct EditJob {
    pub name: &'static str,
    pub title: &'static str,
    pub flags: &'static [&'static str],
    pub colour: bool,
}

/// The editing jobs of a tour, in the report's order.
pub const EDIT_JOBS: [EditJob; 6] = [
    EditJob {
        name: "inpaint-center",
        title: "Inpainting, centre square",
        flags: &["--task", "inpaint", "--mask", "center"],
        colour: false,
    },
    EditJob {
        name: "inpaint-free",
        title: "Inpainting, free-form strokes",
        flags: &["--task", "inpaint", "--mask", "free"],
        colour: false,
    },
    EditJob {
        name: "uncrop-left",
        title: "Uncropping, left half",
        flags: &["--task", "uncrop", "--side", "left"],
        colour: false,
    },
    EditJob {
        name: "uncrop-bottom",
        title: "Uncropping, bottom half",
        flags: &["--task", "uncrop", "--side", "bottom"],
        colour: false,
    },
    EditJob {
        name: "colorize",
        title: "Colorization (embedded colour photographs)",
        flags: &["--task", "colorize"],
        colour: true,
    },
    EditJob {
        name: "superres-x4",
        title: "Super-resolution ×4 (from 7×7 block means)",
        flags: &["--task", "superres", "--scale", "4"],
        colour: false,
    },
];

/// Where a method's `eval-edit` JSON of a job lies, relative to the tour folder (its first
/// images beside it, in the folder of the same name).
pub fn edit_json(job: &str, method: &str) -> String {
    format!("edits/{job}/{}.json", method.replace(' ', "-"))
}

/// Where the comparison figure of an editing job goes, relative to the tour folder.
pub fn edit_figure(job: &str) -> String {
    format!("figures/edit-{job}.png")
}

/// The photographs the tour's style transfer uses (compiled in).
pub const STYLE_CONTENT: &str = "embedded:astronaut";
pub const STYLE_STYLE: &str = "embedded:retina";

/// The colour data colorization runs on, whatever the tour's data.
pub const COLOUR_DATA: &str = "embedded-rgb";

/// The methods an editing job is scored with: a name for tables, and `--with`'s value (a
/// method, or a folder of the tour holding a run).
pub fn edit_methods(job: &EditJob) -> Vec<(&'static str, &'static str)> {
    if job.name.starts_with("superres") {
        return vec![
            ("nearest", "nearest"),
            ("bicubic", "bicubic"),
            ("pca", "pca"),
            ("vae", "vae"),
            ("gan", "gan"),
            ("espcn", "espcn-x4"),
            ("espcn adv", "espcn-x4-patchgan"),
        ];
    }
    let mut methods = if job.colour {
        vec![
            ("gray", "gray"),
            ("mean", "mean"),
            ("nearest", "nearest"),
            ("pca", "pca"),
        ]
    } else {
        vec![("mean", "mean"), ("nearest", "nearest"), ("pca", "pca")]
    };
    match job.name {
        "colorize" => methods.extend([("vae", "vae-rgb"), ("pix2pix", "pix2pix-colorize")]),
        "inpaint-center" | "inpaint-free" => methods.extend([
            ("vae", "vae"),
            ("gan", "gan"),
            ("pix2pix L1", "pix2pix-inpaint-l1"),
            ("pix2pix", "pix2pix-inpaint"),
        ]),
        _ => methods.extend([
            ("vae", "vae"),
            ("gan", "gan"),
            ("pix2pix", "pix2pix-uncrop"),
        ]),
    }
    // RePaint, in the latent space (a twelfth of the pixel model's steps), on one job of each
    // kind.
    if ["inpaint-center", "uncrop-left"].contains(&job.name) {
        let after_gan = methods
            .iter()
            .position(|m| m.0 == "gan")
            .map_or(methods.len(), |i| i + 1);
        methods.insert(after_gan, ("latent diffusion", "latent-diffusion"));
    }
    methods
}

/// The runs only the editing section trains: folder, `train` words, whether on colour data.
const EDIT_RUNS: [(&str, &[&str], bool); 8] = [
    ("pix2pix-inpaint", &["pix2pix", "--task", "inpaint"], false),
    (
        "pix2pix-inpaint-l1",
        &["pix2pix", "--task", "inpaint", "--discriminator", "none"],
        false,
    ),
    ("pix2pix-uncrop", &["pix2pix", "--task", "uncrop"], false),
    ("pix2pix-colorize", &["pix2pix", "--task", "colorize"], true),
    ("vae-rgb", &["vae", "--arch", "conv"], true),
    ("classifier-rgb", &["classifier"], true),
    ("espcn-x4", &["espcn", "--scale", "4"], false),
    (
        "espcn-x4-patchgan",
        &["espcn", "--scale", "4", "--discriminator", "patchgan"],
        false,
    ),
];

/// The runs only the editing section trains.
pub(super) fn edit_runs(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let epoch_images = p.epoch_images;
    let common = p.common.clone();
    let data_flags = p.data_flags.clone();
    let p2p_width = recipe.pix2pix_width.to_string();
    let p2p_ndf = (recipe.pix2pix_width / 2).max(1).to_string();
    for (folder, train_words, colour) in EDIT_RUNS {
        let mut args = words(&["train"]);
        args.extend(words(train_words));
        let rgb_images = 1849.0;
        let (epochs, rate) = match folder {
            "vae-rgb" => (recipe.latent_epochs, 800.0),
            "classifier-rgb" => {
                if let Some((channels, hidden)) = recipe.classifier_widths {
                    args.extend(words(&["--conv-channels", channels, "--hidden", hidden]));
                }
                (recipe.latent_epochs, 400.0)
            }
            // Convolutions at 7×7 only: four times pix2pix's epochs cost a fraction of its time.
            "espcn-x4" => {
                args.extend(words(&["--batch-size", "64"]));
                (4 * recipe.pix2pix_epochs, 7000.0)
            }
            "espcn-x4-patchgan" => {
                args.extend(words(&["--ndf", &p2p_ndf, "--batch-size", "64"]));
                (
                    recipe.pix2pix_epochs,
                    1800.0 * (8.0 / (recipe.pix2pix_width / 2).max(1) as f64),
                )
            }
            _ => {
                // The PatchGAN at half the U-Net's width: at equal width its stride-1 layers
                // cost more than the U-Net itself.
                args.extend(words(&["--width", &p2p_width, "--ndf", &p2p_ndf]));
                // Few epochs: smaller batches make more steps of them.
                args.extend(words(&["--batch-size", "64"]));
                let rate = if folder.ends_with("-l1") {
                    1500.0
                } else {
                    400.0
                };
                (
                    recipe.pix2pix_epochs,
                    rate * (16.0 / recipe.pix2pix_width as f64).powi(2),
                )
            }
        };
        args.extend(words(&[
            "--epochs",
            &epochs.to_string(),
            "--out",
            &p.out(folder),
        ]));
        if colour {
            args.extend(words(&["--data", COLOUR_DATA]));
        } else {
            args.extend(data_flags.clone());
        }
        args.extend(common.iter().cloned());
        args.push("--force".into());
        let images = if colour { rgb_images } else { epoch_images };
        p.add(
            format!("train-{folder}"),
            args,
            outputs(folder, &TRAINED),
            vec![],
            images * epochs as f64 / rate + 2.0,
        );
    }
}

/// Every method on every editing job.
pub(super) fn edit_scores(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let data = p.data;
    let common = p.common.clone();
    for job in &EDIT_JOBS {
        for (method, with) in edit_methods(job) {
            let run = !["gray", "mean", "nearest", "bicubic", "pca"].contains(&with);
            let json = edit_json(job.name, method);
            let mut args = words(&["eval-edit"]);
            args.extend(words(job.flags));
            let with_value = if run { p.out(with) } else { with.to_string() };
            args.extend(words(&["--with", &with_value]));
            let classifier = if job.colour {
                "classifier-rgb"
            } else {
                "classifier"
            };
            args.extend(words(&[
                "--classifier",
                &p.out(classifier),
                "--n",
                &recipe.edit_images.to_string(),
                "--steps",
                &recipe.inversion_steps.to_string(),
                "--restarts",
                &recipe.inversion_restarts.to_string(),
                "--save-edited",
                "8",
                "--out",
                &p.out(&json),
            ]));
            if job.colour {
                args.extend(words(&["--data", COLOUR_DATA]));
            } else if let Some(data) = data {
                args.extend(words(&["--data", data]));
            }
            args.extend(common.iter().cloned());
            let mut inputs = vec![format!("train-{classifier}")];
            if run {
                inputs.push(format!("train-{with}"));
            }
            // Seconds per image: a GAN's search runs a quarter of its generator steps × restarts
            // times, then the rest once.
            let gan_steps = recipe.inversion_steps * recipe.inversion_restarts / 4
                + recipe.inversion_steps * 3 / 4;
            let repaint = crate::edit::repaint::RePaintSettings::default();
            let per_image = match with {
                "gan" => 2e-4 * gan_steps as f64,
                "latent-diffusion" => {
                    (repaint.steps * repaint.resamples) as f64
                        / latent_diffusion_rate(recipe.latent_diffusion_width)
                }
                "vae" | "vae-rgb" => 5e-5 * recipe.inversion_steps as f64,
                "nearest" => 2e-3,
                _ => 5e-4,
            };
            p.add(
                format!("edit-{}-{}", job.name, method.replace(' ', "-")),
                args,
                vec![json.clone()],
                inputs,
                2.0 + per_image * recipe.edit_images as f64,
            );
        }
    }
}

/// Style transfer: one embedded photograph in the style of another.
pub(super) fn style(p: &mut Planner) {
    let recipe = p.recipe.clone();
    let common = p.common.clone();
    let mut args = words(&[
        "style",
        "--content",
        STYLE_CONTENT,
        "--style",
        STYLE_STYLE,
        "--size",
        &recipe.style_size.to_string(),
        "--steps",
        &recipe.style_steps.to_string(),
        "--out",
        &p.out("style"),
    ]);
    args.extend(common.iter().cloned());
    args.push("--force".into());
    // About 40 ms a step at 128 px on 2 cores, growing with the pixels.
    let pixels = (recipe.style_size as f64 / 128.0).powi(2);
    p.add(
        "style".into(),
        args,
        vec!["style/style.json".into()],
        vec![],
        1.0 + 0.04 * pixels * recipe.style_steps as f64,
    );
}
