//! The tour's `report.html`: the lecture's story in its order, told with the tour's own numbers and
//! pictures. One self-contained file (inline CSS, no scripts, no external assets) that references
//! the PNGs of the run folders beside it by relative paths, so the folder opens offline.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::fsutil::write_atomic;
use crate::tour::summary::{ModelRow, Summary};
use crate::ui::thousands;

/// Writes `out/report.html` and returns its path.
pub fn write(out: &Path, summary: &Summary) -> Result<std::path::PathBuf> {
    let path = out.join("report.html");
    write_atomic(&path, render(summary).as_bytes())?;
    Ok(path)
}

/// `&`, `<`, `>` and `"` as entities.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn figure(src: &str, caption: &str) -> String {
    format!(
        "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
        escape(src),
        escape(caption),
        escape(caption)
    )
}

fn side_by_side(figures: &[(&str, &str)]) -> String {
    let mut html = String::from("<div class=\"row\">\n");
    for (src, caption) in figures {
        html.push_str(&figure(src, caption));
    }
    html.push_str("</div>\n");
    html
}

fn row<'a>(summary: &'a Summary, folder: &str) -> Option<&'a ModelRow> {
    summary.models.iter().find(|r| r.folder == folder)
}

pub(super) fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("—".into(), |v| format!("{v:.decimals$}"))
}

/// Three significant figures at most, never in exponent form: 190.6, 12.3, 0.0123.
fn short(v: f64) -> String {
    let decimals = if v.abs() >= 100.0 {
        1
    } else {
        (2 - v.abs().log10().floor() as i32).clamp(1, 6) as usize
    };
    format!("{v:.decimals$}")
}

fn distance_name(summary: &Summary) -> &'static str {
    if summary.features == "inception" {
        "FID"
    } else {
        "classifier FD"
    }
}

/// The sample-quality distance of a row, as the features give it.
fn distance(row: &ModelRow) -> Option<f64> {
    row.fid.or(row.classifier_fd)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;\
color:#222;line-height:1.45}h1{margin-bottom:0.2em}h2{border-bottom:1px solid #ccc;\
padding-bottom:0.2em;margin-top:2em}.meta{color:#555}figure{display:inline-block;margin:0.5em;\
vertical-align:top}figure img{max-width:100%;border:1px solid #ddd;image-rendering:pixelated}\
figcaption{font-size:0.9em;color:#444;max-width:520px}.row{display:flex;flex-wrap:wrap;\
gap:0.5em}.row figure{flex:1 1 300px}table{border-collapse:collapse;font-size:0.92em}\
td,th{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}td:first-child,\
th:first-child{text-align:left}code{background:#f4f4f4;padding:0 0.2em}.note{color:#666;\
font-size:0.9em}";

/// `name` opening a sentence.
fn sentence_case(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

/// The whole report: one section after another, as the lecture goes.
pub fn render(s: &Summary) -> String {
    let mut h = String::new();
    header(&mut h, s);
    pca(&mut h, s);
    pca_versus_autoencoder(&mut h, s);
    latent_spaces(&mut h, s);
    vae(&mut h, s);
    gans(&mut h, s);
    diffusion(&mut h, s);
    editing(&mut h, s);
    style_transfer(&mut h, s);
    model_table(&mut h, s);
    published(&mut h, s);
    stages(&mut h, s);
    h
}

/// The title, the run's facts and what the report compares.
fn header(h: &mut String, s: &Summary) {
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>latentlab tour: {budget}</title><style>{STYLE}</style></head><body>\n\
         <h1>From PCA to diffusion: the lecture, measured</h1>\n\
         <p class=\"meta\">latentlab {version} · <b>{budget}</b> budget · {dataset} ({train} \
         training and {test} test images) · device {device} · seed {seed} · this run took {time} \
         ({ran} stages ran, {skipped} reused)</p>\n",
        budget = escape(&s.budget),
        version = escape(&s.latentlab_version),
        dataset = escape(&s.dataset),
        train = thousands(s.train_images),
        test = thousands(s.test_images),
        device = escape(&s.device),
        seed = s.seed,
        time = crate::ui::format_duration(s.seconds),
        ran = s.stages.iter().filter(|o| o.status == "ran").count(),
        skipped = s.stages.iter().filter(|o| o.status != "ran").count(),
    );
    let _ = writeln!(
        h,
        "<p>Every model below learns a low-dimensional description of the same images. PCA finds \
         the best linear one; a deep autoencoder a non-linear one; a VAE makes its latent space a \
         distribution we can sample; a GAN gives up the encoder and learns to generate by playing \
         against a discriminator; a diffusion model learns to undo noise, one small step at a \
         time. Sample quality is measured on {} (see the table).</p>",
        if s.features == "inception" {
            "Inception features (FID as published)"
        } else {
            "the tour's own classifier's features: a Fréchet distance (\"classifier FD\") that ranks \
             models on this data but is not comparable with published Inception FIDs"
        }
    );
}

/// 1. PCA: eigen-images, explained variance, reconstructions.
fn pca(h: &mut String, s: &Summary) {
    let pca = &s.pca;
    let count = |c: Option<usize>| c.map_or("more than fitted".into(), |c| c.to_string());
    let _ = write!(
        h,
        "<h2>1. PCA: the best linear code</h2>\n<p>The eigenvectors of the centred XᵀX (equal to \
         the right singular vectors of X = USVᵀ) ordered by variance. The first component explains \
         {:.1} % of the variance; {} components reach 90 % and {} reach 95 %. Test reconstruction \
         error (mean squared error per pixel, pixels in [0, 1]): {}.</p>\n",
        100.0 * pca.first_component_ratio,
        count(pca.components_for_90),
        count(pca.components_for_95),
        pca.test_mse
            .iter()
            .map(|(k, m)| format!("{m:.4} at k = {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    h.push_str(&figure(
        "pca/components.png",
        "The first eigen-images (red positive, blue negative).",
    ));
    h.push_str(&figure(
        "pca/variance.png",
        "Explained variance per component and cumulative.",
    ));
    h.push_str(&figure(
        "pca/reconstructions.png",
        "Test images rebuilt from k components.",
    ));
}

/// 2. PCA against the autoencoder (and the VAE) at the same code size.
fn pca_versus_autoencoder(h: &mut String, s: &Summary) {
    let pca = &s.pca;
    let mse = |folder: &str| opt(row(s, folder).and_then(|r| r.test_mse), 4);
    let _ = write!(
        h,
        "<h2>2. PCA versus a deep autoencoder at the same size</h2>\n<p>With a code of {k} numbers \
         per image, as Hinton &amp; Salakhutdinov (2006) compared them: test MSE per pixel PCA \
         {pca}, autoencoder {ae}, VAE {vae} (the VAE's through its mean code; it also pays for a \
         dense latent space, section 3).</p>\n",
        k = pca.k,
        pca = mse("pca"),
        ae = mse("ae"),
        vae = mse("vae"),
    );
    h.push_str(&figure(
        crate::tour::figures::COMPARE,
        "The same test images, one per class, through each model.",
    ));
}

/// 3. The autoencoder's and the VAE's latent spaces, and draws from the prior through each.
fn latent_spaces(h: &mut String, s: &Summary) {
    let sentence = sentence_case(distance_name(s));
    let pca = &s.pca;
    let spread = |model: &str| {
        s.latent_maps
            .iter()
            .find(|m| m.model == model)
            .map_or("—".into(), |m| {
                format!(
                    "mean |code mean| {:.2}, mean code standard deviation {:.2}",
                    m.mean_abs_mean, m.mean_std
                )
            })
    };
    let _ = write!(
        h,
        "<h2>3. Autoencoder latent space versus VAE latent space</h2>\n<p>Both with a 2-D code, \
         test images coloured by class. The autoencoder puts its codes wherever reconstruction is \
         easiest ({ae}); the VAE's KL term pulls them towards the prior N(0, I) ({vae}: 0 and 1 \
         would match it exactly), so the region the prior covers is filled.</p>\n",
        ae = spread("ae"),
        vae = spread("vae"),
    );
    h.push_str(&side_by_side(&[
        ("ae-2d/latent_map.png", "Autoencoder, z = 2: test codes."),
        ("vae-2d/latent_map.png", "VAE, z = 2: test codes."),
    ]));
    h.push_str(&side_by_side(&[
        (
            "ae-2d/latent_manifold.png",
            "Autoencoder: images decoded from a grid over its codes.",
        ),
        (
            "vae-2d/latent_manifold.png",
            "VAE: images decoded from a grid over its codes.",
        ),
    ]));
    let fd = |folder: &str| row(s, folder).and_then(distance).map_or("—".into(), short);
    let _ = writeln!(
        h,
        "<p>Decoding random points: draws from N(0, I) through each decoder (z = {k}). Nothing \
         made the autoencoder's codes look like those draws, so its decoder has rarely seen such \
         points; the VAE was trained for exactly this. {sentence}: autoencoder {ae}, VAE {vae} (lower \
         is closer to the test images).</p>",
        k = pca.k,
        ae = fd("ae"),
        vae = fd("vae"),
    );
    h.push_str(&side_by_side(&[
        ("ae/samples.png", "Autoencoder: decoded N(0, I) draws."),
        ("vae/samples.png", "VAE: decoded N(0, I) draws."),
    ]));
}

/// 4. The VAE: the ELBO's parts, the IWAE bound, samples, interpolations.
fn vae(h: &mut String, s: &Summary) {
    if let Some(vae) = row(s, "vae") {
        let iwae = match (vae.iwae_nll, vae.iwae_k, vae.iwae_images) {
            (Some(nll), Some(k), Some(n)) => format!(
                " The importance-weighted bound with k = {k} samples gives −log p(x) ≤ {nll:.1} \
                 nats on {n} dynamically binarized test images."
            ),
            _ => String::new(),
        };
        let _ = write!(
            h,
            "<h2>4. The VAE: ELBO, samples, interpolation</h2>\n<p>The encoder outputs μ and a \
             diagonal σ; z = μ + σ·ε; the loss is the negative ELBO, reconstruction plus KL. On the \
             test set: reconstruction {recon} + KL {kl} = −ELBO {elbo} nats per image.{iwae}</p>\n",
            recon = opt(vae.recon, 1),
            kl = opt(vae.kl, 1),
            elbo = opt(vae.neg_elbo, 1),
        );
    }
    h.push_str(&figure(
        &format!(
            "vae/reconstructions/epoch_{:03}.png",
            s.recipe.latent_epochs
        ),
        "Test images (upper rows) and their reconstructions after the last epoch; prior samples \
         are in section 3.",
    ));
    h.push_str(&figure(
        "vae/loss.png",
        "Training and test loss parts per epoch (nats per image).",
    ));
    h.push_str(&figure(
        "vae/interpolation.png",
        "Between test images through the mean codes.",
    ));
    h.push_str(&figure(
        "vae/interpolation_prior.png",
        "Between prior draws (spherical interpolation).",
    ));
}

/// 5. GANs: samples, DCGAN against PatchGAN D, the conditional grid, per-step curves.
fn gans(h: &mut String, s: &Summary) {
    let sentence = sentence_case(distance_name(s));
    let fd = |folder: &str| row(s, folder).and_then(distance).map_or("—".into(), short);
    let accuracy = row(s, "cgan").and_then(|r| r.class_accuracy);
    let _ = write!(
        h,
        "<h2>5. GANs</h2>\n<p>Goodfellow's minibatch algorithm (one discriminator step per \
         generator step, non-saturating generator loss) with the DCGAN generator: fractionally \
         strided convolutions, batch norm, ReLU, Tanh. Two discriminators: DCGAN's (one logit per \
         image) and PatchGAN's ({grid}×{grid} logits, each seeing a {patch}×{patch} patch of the \
         {side}×{side} image){narrower}. {sentence}: DCGAN D {gan}, PatchGAN D {patchgan}.</p>\n",
        narrower = match s.recipe.patchgan_width {
            Some(w) if w != s.recipe.gan_width => format!(
                "; in this budget the PatchGAN D is {w} channels wide against the DCGAN D's {}, \
                 because its stride-1 layers cost twice as much",
                s.recipe.gan_width
            ),
            _ => String::new(),
        },
        grid = s.patch_grid,
        patch = s.patch_size,
        side = s.image_side,
        gan = fd("gan"),
        patchgan = fd("gan-patchgan"),
    );
    h.push_str(&side_by_side(&[
        ("gan/samples.png", "DCGAN G + DCGAN D: samples."),
        ("gan-patchgan/samples.png", "DCGAN G + PatchGAN D: samples."),
    ]));
    let _ = writeln!(
        h,
        "<p>The class-conditional GAN learns p(x|y): a label embedding joins z, the discriminator \
         sees the label as an extra channel. One row per class below; the tour's classifier gives \
         {} of its samples the class they were generated for.</p>",
        accuracy.map_or("—".into(), |a| format!("{:.1} %", 100.0 * a))
    );
    h.push_str(&figure(
        "cgan/samples.png",
        "Conditional GAN: one row per class.",
    ));
    h.push_str(&figure(
        "gan/steps.png",
        "DCGAN D: losses and mean D(x), D(G(z)) per step.",
    ));
    h.push_str(&figure(
        "gan-patchgan/steps.png",
        "PatchGAN D: the same curves (averaged over patches).",
    ));
    h.push_str(
        "<p class=\"note\">D(x) near 1 with D(G(z)) near 0 for long stretches, while G's loss \
         climbs, is the \"D wins\" failure; training stops on it with a message.</p>\n",
    );
}

/// 6. Diffusion: samples, the walk from noise, quality against sampling steps, RePaint.
fn diffusion(h: &mut String, s: &Summary) {
    let dist = distance_name(s);
    let fd = |folder: &str| row(s, folder).and_then(distance).map_or("—".into(), short);
    let _ = write!(
        h,
        "<h2>6. Diffusion</h2>\n<p>The lecture's last slide: a fixed process adds Gaussian noise \
         to an image over T = 1,000 steps until nothing is left, and a U-Net (width {width}, \
         time-embedded residual blocks with group norm and SiLU) learns to predict the noise that \
         was added at any step (Ho et al. 2020's simple loss). Sampling runs the process \
         backwards from pure noise: DDPM takes all 1,000 steps, DDIM (Song et al. 2021) jumps \
         deterministically in 10 to 100. Weights are an exponential moving average of training's. \
         {dist} with DDIM-50: {diffusion}, against the DCGAN's {gan}.</p>\n",
        width = s.recipe.diffusion_width,
        diffusion = fd("diffusion"),
        gan = fd("gan"),
    );
    h.push_str(&side_by_side(&[
        ("diffusion/samples.png", "Diffusion: DDIM-50 samples."),
        (
            "diffusion/samples_denoising.png",
            "From x_T (left, pure noise) to x_0 (right): the states of DDIM-50, evenly spaced.",
        ),
    ]));
    latent_diffusion::section(h, s);
}

/// 7. Editing images: every method on every job, pictures and the protocol's numbers.
fn editing(h: &mut String, s: &Summary) {
    if s.edits.is_empty() {
        return;
    }
    let n = s.edits[0].methods.first().map_or(0, |m| m.scores.n);
    let _ = write!(
        h,
        "<h2>7. Editing images</h2>\n<p>The lecture's image editing: fill pre-specified missing \
         pixels (inpainting), make up a missing half (uncropping), restore colour from the luma \
         (colorization, on the embedded colour photographs), restore detail from the means of \
         4×4 blocks (super-resolution). Every method keeps what it was shown exactly (the \
         visible pixels; the luma; the block means) and differs only in what it makes up. \
         Baselines: <b>mean</b> (the training mean image), <b>nearest</b> (the training image \
         closest on what is seen; for super-resolution, each block repeated), <b>bicubic</b> \
         (interpolation), <b>gray</b> (no colour). Zero-shot with the models above: \
         <b>pca</b> (the component codes that best explain what is seen, under probabilistic \
         PCA's prior), <b>vae</b> (the code maximising the decoder's likelihood of what is seen \
         plus the prior, from the encoder's μ), <b>gan</b> (GAN inversion: the generator's input \
         that best reproduces what is seen, best of {restarts} starts). Trained for the job: \
         <b>pix2pix</b>, a U-Net fed the masked image and its mask (or the luma), with L1 and a \
         PatchGAN that judges input and output together, and <b>pix2pix L1</b> without the \
         PatchGAN; <b>espcn</b>, convolutions on the small image and a sub-pixel shuffle, with \
         L1 alone or with the PatchGAN. <b>diffusion</b> is RePaint with the diffusion model of \
         section 6. Each table scores {n} test images: PSNR on what had to \
         be made up (the hole; every pixel for colorization and super-resolution) and on the \
         whole image, SSIM, mean absolute error, the \
         accuracy of a classifier on the edited images (CA) and the Fréchet distance of its \
         features, edited against original (lower: closer to real images).</p>\n",
        restarts = s.recipe.inversion_restarts,
    );
    for section in &s.edits {
        let _ = writeln!(h, "<h3>{}</h3>", escape(&section.title));
        h.push_str(&figure(
            &section.figure,
            "Test images, what each method saw, and each method's result (hole PSNR beside it).",
        ));
        h.push_str(
            "<table>\n<tr><th>method</th><th>PSNR hole (dB)</th><th>PSNR whole (dB)</th>\
             <th>SSIM</th><th>L1</th><th>CA</th><th>classifier FD</th><th>ms per image</th></tr>\n",
        );
        let best = section
            .methods
            .iter()
            .map(|m| m.scores.psnr_hole)
            .fold(f64::NEG_INFINITY, f64::max);
        for row in &section.methods {
            let m = &row.scores;
            let psnr = format!("{:.2}", m.psnr_hole);
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.3}</td><td>{:.4}</td><td>{}</td>\
                 <td>{}</td><td>{:.2}</td></tr>",
                escape(&row.method),
                if m.psnr_hole == best {
                    format!("<b>{psnr}</b>")
                } else {
                    psnr
                },
                m.psnr_whole,
                m.ssim,
                m.l1,
                m.classifier_accuracy
                    .map_or("—".into(), |a| format!("{:.1} %", 100.0 * a)),
                opt(m.classifier_fd, 2),
                1000.0 * m.seconds_per_image,
            );
        }
        let ceiling = section
            .methods
            .first()
            .and_then(|m| m.scores.classifier_accuracy_original);
        let _ = writeln!(
            h,
            "</table>\n<p class=\"note\">The classifier gives the unedited images their class \
             {}.</p>",
            ceiling.map_or("—".into(), |a| format!("{:.1} % of the time", 100.0 * a))
        );
    }
}

/// The end of section 7: one photograph in the style of another.
fn style_transfer(h: &mut String, s: &Summary) {
    let st = &s.style;
    let losses = match (st.first, st.last) {
        (Some(first), Some(last)) => format!(
            "L = L_content + {w}·L_style went from {:.3} to {:.3} (style term {:.3} to {:.3}) in \
             {} Adam steps, {:.1} s",
            first.total,
            last.total,
            first.style,
            last.style,
            st.steps,
            st.seconds,
            w = st.style_weight
        ),
        _ => "no steps were taken".into(),
    };
    let _ = write!(
        h,
        "<h3>Style transfer</h3>\n<p>Gatys et al.'s algorithm: the pixels of an image optimised \
         so that the feature maps of a fixed network match the content photograph's at one layer \
         and their Gram matrices (which features fire together, wherever) match the style \
         photograph's at every layer. The network here has random, seeded weights (four 3×3 \
         convolutions with pooling between), which Ustyuzhaninov et al. found rival trained ones \
         for texture; `--features` also takes a classifier run or a VGG-19 file. {}×{} pixels; \
         {losses}.</p>\n",
        st.size[1], st.size[0],
    );
    h.push_str(&figure(
        "style/strip.png",
        "Content (an embedded photograph), style (another), result.",
    ));
}

/// 8. One table of every model.
fn model_table(h: &mut String, s: &Summary) {
    let dist = distance_name(s);
    let _ = write!(
        h,
        "<h2>8. Every model</h2>\n<table>\n<tr><th>model</th><th>parameters</th><th>train \
         time</th><th>test MSE</th><th>−ELBO (nats)</th><th>IWAE NLL (nats)</th><th>{dist}</th>\
         <th>KID</th><th>precision</th><th>recall</th><th>class accuracy</th></tr>\n"
    );
    for r in &s.models {
        let params = match &r.parameters_detail {
            Some(detail) => format!(
                "{} <span class=\"note\">({})</span>",
                thousands(r.parameters),
                escape(detail)
            ),
            None => thousands(r.parameters),
        };
        let kid = match (r.kid, r.kid_std) {
            (Some(m), Some(sd)) => format!("{m:.4} ± {sd:.4}"),
            _ => "—".into(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{params}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{kid}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.title),
            crate::ui::format_duration(r.train_seconds),
            opt(r.test_mse, 4),
            opt(r.neg_elbo, 1),
            opt(r.iwae_nll, 1),
            distance(r).map_or("—".into(), short),
            opt(r.precision, 3),
            opt(r.recall, 3),
            r.class_accuracy
                .map_or("—".into(), |a| format!("{:.1} %", 100.0 * a)),
        );
    }
    h.push_str("</table>\n");
    let scored = s.models.iter().find_map(|r| r.samples_scored).unwrap_or(0);
    let _ = writeln!(
        h,
        "<p class=\"note\">Test MSE per pixel (pixels in [0, 1]) through the mean code; −ELBO and \
         IWAE in nats per image (IWAE on dynamically binarized images); {dist}, KID (kernel \
         inception distance, mean ± sd over subsets) and precision/recall (k = 3) from {scored} \
         generated images against as many test images{}. The classifier that supplies features \
         and class accuracy reaches {} test accuracy. PCA has no sampler here, so it has no \
         sample metrics.</p>",
        if s.features == "inception" {
            ", on Inception pool3 features"
        } else {
            ", on the tour classifier's penultimate features"
        },
        s.classifier_accuracy
            .map_or("—".into(), |a| format!("{:.1} %", 100.0 * a)),
    );
}

/// 9. The published numbers beside ours (paper budget with Inception features).
fn published(h: &mut String, s: &Summary) {
    if s.budget == "paper" && s.published.is_empty() {
        h.push_str(
            "<h2>9. Beside the published numbers</h2>\n<p>Published FIDs are on Inception \
             features, and this tour measured on the classifier's: run <code>latentlab \
             fid-weights</code> once, then the tour again (finished stages are reused) to put our \
             FIDs beside them.</p>\n",
        );
    }
    if !s.published.is_empty() {
        h.push_str(
            "<h2>9. Beside the published numbers</h2>\n<table>\n<tr><th>published \
             model</th><th>metric</th><th>published</th><th>ours</th><th>source</th></tr>\n",
        );
        for p in &s.published {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{} <span class=\"note\">({})</span></td><td>{}</td></tr>",
                escape(&p.what),
                escape(&p.metric),
                p.value,
                opt(p.ours, 1),
                escape(&p.ours_folder),
                escape(&p.source)
            );
        }
        h.push_str(
            "</table>\n<p class=\"note\">Fashion-MNIST, 10,000 generated images against the test \
             set. The papers' networks and training budgets differ from ours in details; the \
             sources say exactly how theirs were made.</p>\n",
        );
    }
}

/// Every stage's command line, to redo any part alone.
fn stages(h: &mut String, s: &Summary) {
    h.push_str(
        "<h2>How each part was made</h2>\n<p>Every stage is a latentlab command; run one alone \
         to redo it.</p>\n<table>\n<tr><th>stage</th><th>command</th><th>seconds</th><th></th></tr>\n",
    );
    for o in &s.stages {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td style=\"text-align:left\"><code>{}</code></td><td>{:.1}</td><td>{}</td></tr>",
            escape(&o.name),
            escape(&o.command),
            o.seconds,
            if o.status == "ran" { "" } else { "reused" }
        );
    }
    h.push_str("</table>\n</body></html>\n");
}

/// The `src` of every `<img>` in `html`, in order.
pub fn image_sources(html: &str) -> Vec<String> {
    html.match_indices("<img src=\"")
        .filter_map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest.find('"').map(|end| rest[..end].replace("&amp;", "&"))
        })
        .collect()
}

mod latent_diffusion;

#[cfg(test)]
mod tests;
