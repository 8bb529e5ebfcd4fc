use super::*;

/// `config.json` as each kind's run wrote it before `kind` existed (latentlab at fc12a55).
const LEGACY: [(&str, &str); 4] = [
    ("ae", include_str!("fixtures/legacy-ae.json")),
    ("vae", include_str!("fixtures/legacy-vae.json")),
    ("gan", include_str!("fixtures/legacy-gan.json")),
    (
        "classifier",
        include_str!("fixtures/legacy-classifier.json"),
    ),
];

#[test]
fn legacy_configs_open_as_their_kind_and_round_trip_tagged() {
    for (kind, text) in LEGACY {
        let config = RunConfig::from_json(text).unwrap();
        assert_eq!(config.kind(), kind);
        config.validate().unwrap();
        // Through text, as config.json is: f32 fields print as the legacy file has them.
        let tagged: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(tagged["kind"], kind);
        // The tagged file holds the legacy one's fields unchanged, plus `kind`.
        let mut legacy: serde_json::Value = serde_json::from_str(text).unwrap();
        legacy["kind"] = kind.into();
        assert_eq!(tagged, legacy, "{kind}");
        let again = RunConfig::from_json(&tagged.to_string()).unwrap();
        assert_eq!(again.kind(), kind);
    }
}

/// `config.json` of every kind as latentlab wrote it on 2026-12-07 (the quick tour's runs at
/// 5001473, two tiny diffusion runs: SR3 ×4 and class-conditional) and 2026-12-08 (a full-set
/// autoencoder-kl and the latent diffusion run on it, a tiny two-stage VAE).
const CURRENT: [(&str, &str); 13] = [
    ("ae", include_str!("fixtures/current-ae.json")),
    ("vae", include_str!("fixtures/current-vae-rgb.json")),
    ("gan", include_str!("fixtures/current-cgan.json")),
    ("gan", include_str!("fixtures/current-gan-patchgan.json")),
    (
        "classifier",
        include_str!("fixtures/current-classifier-rgb.json"),
    ),
    (
        "pix2pix",
        include_str!("fixtures/current-pix2pix-inpaint.json"),
    ),
    (
        "pix2pix",
        include_str!("fixtures/current-espcn-x4-patchgan.json"),
    ),
    ("diffusion", include_str!("fixtures/current-diffusion.json")),
    (
        "diffusion",
        include_str!("fixtures/current-diffusion-sr3.json"),
    ),
    (
        "diffusion",
        include_str!("fixtures/current-diffusion-conditional.json"),
    ),
    (
        "autoencoder-kl",
        include_str!("fixtures/current-autoencoder-kl.json"),
    ),
    (
        "diffusion",
        include_str!("fixtures/current-latent-diffusion.json"),
    ),
    (
        "two-stage-vae",
        include_str!("fixtures/current-two-stage-vae.json"),
    ),
];

#[test]
fn configs_of_every_kind_open_and_write_back_the_same_fields() {
    for (kind, text) in CURRENT {
        let config = RunConfig::from_json(text).unwrap();
        assert_eq!(config.kind(), kind);
        config.validate().unwrap();
        let mut written: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        let read: serde_json::Value = serde_json::from_str(text).unwrap();
        drop_added_nulls(&mut written, &read);
        assert_eq!(written, read, "{kind}");
    }
}

/// Removes from `written` the fields `read` lacks whose value is null: settings added since
/// the file was written, at their "absent" value (a `None` that keeps the old behaviour).
fn drop_added_nulls(written: &mut serde_json::Value, read: &serde_json::Value) {
    if let (Some(written), Some(read)) = (written.as_object_mut(), read.as_object()) {
        written.retain(|key, value| read.contains_key(key) || !value.is_null());
        for (key, value) in written.iter_mut() {
            if let Some(read) = read.get(key) {
                drop_added_nulls(value, read);
            }
        }
    }
}

/// A model whose settings fail its checks still parses: `Run::open` refuses it with the
/// model's own message, not as a file that is not a run config.
#[test]
fn a_model_that_fails_its_checks_parses_and_validation_says_why() {
    let mut value: serde_json::Value = serde_json::from_str(CURRENT[0].1).unwrap();
    value["model"]["latent"] = 0.into();
    let config = RunConfig::from_json(&value.to_string()).unwrap();
    assert!(config.validate().is_err());
}

#[test]
fn a_kind_that_contradicts_the_model_is_refused() {
    let mut value: serde_json::Value = serde_json::from_str(LEGACY[1].1).unwrap();
    value["kind"] = "ae".into();
    assert!(RunConfig::from_json(&value.to_string()).is_err());
    value["kind"] = "flow".into();
    assert!(RunConfig::from_json(&value.to_string()).is_err());
}
