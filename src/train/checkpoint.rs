//! Checkpoints that survive a crash at any moment.
//!
//! A checkpoint is a folder of blobs (model weights, optimizer state, as burnpack bytes) and a
//! `state.json` that names them. Saving writes each blob under a new name (temp file + rename),
//! then replaces `state.json` (temp file + rename), then deletes the blobs the old state named. A
//! crash before the last rename leaves the previous `state.json` and its blobs untouched; after
//! it, the new ones are complete. There is no moment at which `state.json` names a torn file.
//!
//! `state.json` also records the SHA-256 of each blob and of the state itself, checked on load:
//! a byte flipped on disk is refused in one line instead of resuming from damaged weights.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::checksum::{check, sha256_hex};
use crate::error::{Error, Result};
use crate::fsutil::{write_atomic, write_json};

/// Where training stands: enough to continue exactly.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// Epochs fully done.
    pub epoch: usize,
    /// Optimizer steps done in all.
    pub step: u64,
    /// Steps done in the current (unfinished) epoch; 0 at an epoch boundary.
    pub step_in_epoch: usize,
    /// Sums of the training loss parts over the current epoch's finished steps, and how many
    /// images they cover, so an epoch interrupted and resumed reports the same average.
    pub epoch_sums: Vec<(String, f64)>,
    pub epoch_images: usize,
    /// Seconds spent on the current epoch before an interruption.
    pub epoch_seconds: f64,
    /// The random state. Every random draw of step `s` comes from a generator seeded with
    /// (`seed`, `s`), data order from (`seed`, epoch), so the pair below is the whole state.
    pub rng: RngState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    pub seed: u64,
    /// The stream position: the step counter the next draw is seeded from.
    pub stream: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    state: TrainState,
    /// Blob role → file name inside the checkpoint folder.
    files: BTreeMap<String, String>,
    /// Blob role → hex SHA-256 of its bytes (absent in checkpoints older than checksums).
    #[serde(default)]
    sha256: BTreeMap<String, String>,
    /// Hex SHA-256 of `state` as compact JSON.
    #[serde(default)]
    state_sha256: Option<String>,
}

/// A state as compact JSON, the bytes its hash covers.
fn state_json(state: &TrainState) -> Result<Vec<u8>> {
    serde_json::to_vec(state).map_err(|e| Error::Internal(format!("checkpoint state: {e}")))
}

/// `state` as a later load will read it back from `state.json`: serde_json's float parsing may
/// move a value by one ulp, and the hash must be that of what is read.
fn as_read_back(state: &TrainState) -> Result<TrainState> {
    serde_json::from_slice(&state_json(state)?)
        .map_err(|e| Error::Internal(format!("checkpoint state: {e}")))
}

const STATE_FILE: &str = "state.json";

/// Saves `blobs` (role → bytes) and `state` into `dir`, atomically as a whole.
pub fn save(dir: &Path, state: &TrainState, blobs: &[(&str, Vec<u8>)]) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let old = read_manifest(dir).ok();
    let mut files = BTreeMap::new();
    let mut sha256 = BTreeMap::new();
    let written = (|| {
        for (role, bytes) in blobs {
            let name = format!("{role}-step{:09}.bpk", state.step);
            files.insert(role.to_string(), name.clone());
            write_atomic(&dir.join(&name), bytes)?;
            sha256.insert(role.to_string(), sha256_hex(bytes));
        }
        write_json(
            &dir.join(STATE_FILE),
            &Manifest {
                state: state.clone(),
                files: files.clone(),
                sha256,
                state_sha256: Some(sha256_hex(&state_json(&as_read_back(state)?)?)),
            },
        )
    })();
    // Whichever state.json is in place now, only the files it names are kept: a failed save
    // (a full disk) leaves no half of itself behind, nor do the temp files of a killed one.
    let keep = match written {
        Ok(()) => files,
        Err(_) => old.map(|m| m.files).unwrap_or_default(),
    };
    remove_unreferenced(dir, &keep);
    written
}

/// Deletes what a checkpoint folder holds besides `state.json` and the blobs in `keep`.
fn remove_unreferenced(dir: &Path, keep: &BTreeMap<String, String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != STATE_FILE && !keep.values().any(|k| *k == name) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(STATE_FILE);
    let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
    parse_manifest(&bytes, &path.display().to_string())
}

/// Parses `state.json` (`what` names it) and checks the state against its recorded hash.
fn parse_manifest(bytes: &[u8], what: &str) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
        let problem = crate::error::json_problem(&e);
        Error::bad_input(format!("{what}: not a latentlab checkpoint ({problem})"))
    })?;
    if let Some(expected) = &manifest.state_sha256 {
        check(
            &state_json(&manifest.state)?,
            expected,
            &format!("{what} (its training state)"),
        )?;
    }
    Ok(manifest)
}

/// What `state.json`'s bytes hold, checked as [`load`] checks them (the fuzz tests' entry).
pub fn parse_state(bytes: &[u8]) -> Result<TrainState> {
    parse_manifest(bytes, STATE_FILE).map(|m| m.state)
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub state: TrainState,
    pub blobs: BTreeMap<String, Vec<u8>>,
}

/// Loads the checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    let manifest = read_manifest(dir)?;
    let mut blobs = BTreeMap::new();
    for (role, name) in &manifest.files {
        let path: PathBuf = dir.join(name);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if let Some(expected) = manifest.sha256.get(role) {
            check(&bytes, expected, &path.display().to_string())?;
        }
        blobs.insert(role.clone(), bytes);
    }
    Ok(Checkpoint {
        state: manifest.state,
        blobs,
    })
}

/// Whether `dir` holds a checkpoint.
pub fn exists(dir: &Path) -> bool {
    dir.join(STATE_FILE).is_file()
}

/// A network's weights and its optimizer's state as checkpoint blobs under `roles`.
pub(crate) fn model_blobs_as<M: burn::module::Module>(
    model: &M,
    optimizer: &burn::optim::ModuleOptimizer,
    [model_role, optimizer_role]: [&'static str; 2],
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    // burn's RunningState (batch norm's running mean and variance) holds its latest update
    // aside until something syncs it, and a record reads the value without syncing: the
    // checkpoint would be one update behind. `valid()` syncs the shared state as a side effect.
    let _ = model.valid();
    let internal = |e: burn::store::RecordError| Error::Internal(format!("checkpoint: {e}"));
    let weights = model.clone().into_record().into_bytes().map_err(internal)?;
    let optimizer = optimizer.into_bytes().map_err(internal)?;
    Ok(vec![
        (model_role, weights.to_vec()),
        (optimizer_role, optimizer.to_vec()),
    ])
}

/// Restores a network and its optimizer saved under the roles `model` and `optimizer`.
pub fn restore_model<M: burn::module::Module>(
    model: M,
    optimizer: burn::optim::ModuleOptimizer,
    blobs: &BTreeMap<String, Vec<u8>>,
) -> Result<(M, burn::optim::ModuleOptimizer)> {
    restore_model_as(model, optimizer, blobs, ["model", "optimizer"])
}

/// Restores what [`model_blobs_as`] saved under `roles`.
pub(crate) fn restore_model_as<M: burn::module::Module>(
    model: M,
    optimizer: burn::optim::ModuleOptimizer,
    blobs: &BTreeMap<String, Vec<u8>>,
    [model_role, optimizer_role]: [&str; 2],
) -> Result<(M, burn::optim::ModuleOptimizer)> {
    use burn::tensor::Bytes;
    let blob = |role: &str| {
        blobs
            .get(role)
            .map(|b| Bytes::from_bytes_vec(b.clone()))
            .ok_or_else(|| Error::bad_input(format!("checkpoint has no {role} state")))
    };
    let bad = |what: &str, e: String| {
        // burn's decoding errors quote serde's (and so Rust's types); what they mean is that
        // the bytes are not a record.
        let detail: String = match e.contains("deserialization") {
            true => "its bytes do not decode as a record".into(),
            false => e.chars().take(100).collect(),
        };
        Error::bad_input(format!(
            "checkpoint {what} do not fit this run's model (another model's checkpoint?): {detail}…"
        ))
    };
    let weights = blob(model_role)?;
    let model = caught(|| {
        let record = burn::store::ModuleRecord::from_bytes(weights)?;
        model.try_load_record(record)
    })
    .map_err(|e| bad("weights", e))?;
    let state = blob(optimizer_role)?;
    let optimizer =
        caught(|| optimizer.from_bytes(state)).map_err(|e| bad("optimizer state", e))?;
    Ok((model, optimizer))
}

/// Runs one of burn's record readers, which panic on some malformed records (burn-optim's
/// "Optimizer record tensors should carry a parameter id", found by tests/fuzz.rs), turning a
/// panic into an error; the panic hook is silenced meanwhile so the user sees one line.
fn caught<T>(
    read: impl FnOnce() -> std::result::Result<T, burn::store::RecordError>,
) -> std::result::Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    std::panic::set_hook(hook);
    match outcome {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(payload) => Err(payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "malformed record".into())),
    }
}

/// A network kept without an optimizer (an EMA of another's weights) as a checkpoint blob.
pub(crate) fn module_blob<M: burn::module::Module>(
    module: &M,
    role: &'static str,
) -> Result<(&'static str, Vec<u8>)> {
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| Error::Internal(format!("checkpoint: {e}")))?;
    Ok((role, bytes.to_vec()))
}

/// Restores what `module_blob` saved under `role` into `module`.
pub fn restore_module<M: burn::module::Module>(
    module: M,
    blobs: &BTreeMap<String, Vec<u8>>,
    role: &str,
) -> Result<M> {
    let bytes = blobs
        .get(role)
        .ok_or_else(|| Error::bad_input(format!("checkpoint has no {role} state")))?;
    let bad = |e: String| {
        let detail: String = e.chars().take(100).collect();
        Error::bad_input(format!(
            "checkpoint {role} does not fit this run's model (another model's checkpoint?): {detail}…"
        ))
    };
    caught(|| {
        let bytes = burn::tensor::Bytes::from_bytes_vec(bytes.clone());
        module.try_load_record(burn::store::ModuleRecord::from_bytes(bytes)?)
    })
    .map_err(bad)
}

/// A learner's own counters (what makes a resumed run continue exactly, beyond the networks and
/// optimizers) as the `counters` blob.
pub(crate) fn counters_blob<T: serde::Serialize>(counters: &T) -> Result<(&'static str, Vec<u8>)> {
    let bytes = serde_json::to_vec(counters)
        .map_err(|e| Error::Internal(format!("checkpoint counters: {e}")))?;
    Ok(("counters", bytes))
}

/// Reads back what [`counters_blob`] saved; `what` names the learner in the error.
pub(crate) fn restore_counters<T: serde::de::DeserializeOwned>(
    blobs: &BTreeMap<String, Vec<u8>>,
    what: &str,
) -> Result<T> {
    let bytes = blobs
        .get("counters")
        .ok_or_else(|| Error::bad_input(format!("checkpoint has no {what} counters")))?;
    serde_json::from_slice(bytes).map_err(|e| {
        Error::bad_input(format!(
            "checkpoint counters: {}",
            crate::error::json_problem(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: u64) -> TrainState {
        TrainState {
            epoch: 1,
            step,
            step_in_epoch: 0,
            epoch_sums: vec![("loss".into(), 1.5)],
            epoch_images: 10,
            epoch_seconds: 0.0,
            rng: RngState {
                seed: 7,
                stream: step,
            },
        }
    }

    #[test]
    fn save_load_round_trip_and_old_blobs_removed() {
        let dir = std::env::temp_dir().join(format!("latentlab-ckpt-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        save(
            &dir,
            &state(5),
            &[("model", vec![1, 2, 3]), ("optimizer", vec![4])],
        )
        .unwrap();
        save(
            &dir,
            &state(9),
            &[("model", vec![7, 8]), ("optimizer", vec![9])],
        )
        .unwrap();
        let loaded = load(&dir).unwrap();
        assert_eq!(loaded.state, state(9));
        assert_eq!(loaded.blobs["model"], vec![7, 8]);
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.len(),
            3,
            "state.json and the two new blobs only: {names:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_crash_before_the_state_rename_keeps_the_previous_checkpoint() {
        let dir = std::env::temp_dir().join(format!("latentlab-ckpt-crash-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        save(&dir, &state(5), &[("model", vec![1, 2, 3])]).unwrap();
        // What a crash mid-save leaves: a new blob and a half-written temp state, no rename.
        fs::write(dir.join("model-step000000009.bpk"), [9, 9]).unwrap();
        fs::write(dir.join(".state.json.tmp123"), "{\"state\": {\"epo").unwrap();
        let loaded = load(&dir).unwrap();
        assert_eq!(loaded.state.step, 5);
        assert_eq!(loaded.blobs["model"], vec![1, 2, 3]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_blobs_and_states_are_refused_and_legacy_manifests_load() {
        let dir = std::env::temp_dir().join(format!("latentlab-ckpt-sha-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        save(&dir, &state(5), &[("model", vec![1, 2, 3])]).unwrap();
        let blob = dir.join("model-step000000005.bpk");
        fs::write(&blob, [1, 2, 4]).unwrap();
        let message = load(&dir).err().unwrap().to_string();
        assert!(
            message.contains("model-step000000005.bpk: damaged"),
            "{message}"
        );
        fs::write(&blob, [1, 2, 3]).unwrap();
        load(&dir).unwrap();

        let text = fs::read_to_string(dir.join(STATE_FILE)).unwrap();
        let damaged = text.replace("\"step\": 5", "\"step\": 6");
        assert_ne!(damaged, text);
        fs::write(dir.join(STATE_FILE), &damaged).unwrap();
        let message = load(&dir).err().unwrap().to_string();
        assert!(
            message.contains("(its training state): damaged"),
            "{message}"
        );

        // As checkpoints were written before checksums: no hashes, loads unchecked.
        let mut legacy: serde_json::Value = serde_json::from_str(&text).unwrap();
        let object = legacy.as_object_mut().unwrap();
        object.remove("sha256");
        object.remove("state_sha256");
        fs::write(dir.join(STATE_FILE), legacy.to_string()).unwrap();
        assert_eq!(load(&dir).unwrap().state, state(5));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_save_cleans_what_killed_or_failed_saves_left() {
        let dir = std::env::temp_dir().join(format!("latentlab-ckpt-tidy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        save(&dir, &state(5), &[("model", vec![1])]).unwrap();
        fs::write(dir.join(".model-step000000007.bpk.tmp999"), [0; 4]).unwrap();
        fs::write(dir.join("model-step000000007.bpk"), [7]).unwrap();
        save(&dir, &state(9), &[("model", vec![9])]).unwrap();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["model-step000000009.bpk", "state.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn states_with_any_floats_pass_their_own_check() {
        // serde_json may parse a float one ulp away from what it printed: the hash must hold.
        let dir = std::env::temp_dir().join(format!("latentlab-ckpt-ulp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let value = f64::from_bits(x >> 2) * if x & 1 == 0 { 1e-300 } else { 1.0 };
            let mut state = state(step);
            state.epoch_sums = vec![
                ("loss".into(), value),
                ("kl".into(), 1.0 / (step + 3) as f64),
            ];
            state.epoch_seconds = value.abs().sqrt();
            save(&dir, &state, &[("model", vec![1])]).unwrap();
            load(&dir).unwrap();
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
