//! SHA-256 over what latentlab writes and later reads back, so a flipped byte that still parses
//! is refused instead of silently loaded.
//!
//! Weights files (`model.safetensors`, a PCA, the converted Inception, feature caches) carry the
//! hash of their tensor data inside their own safetensors header (`__metadata__`), under
//! [`METADATA_KEY`]: the file stays one atomic write, and PyTorch's `safetensors.torch.load_file`
//! ignores the extra metadata. The header itself needs no hash: its JSON, names, dtypes and
//! offsets are validated by every reader (offsets must tile the data exactly). Checkpoint blobs
//! and the training state carry theirs in `state.json` (`train/checkpoint.rs`).
//!
//! Files without a recorded hash (written by PyTorch, or by latentlab before checksums existed)
//! load as before.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The metadata entry holding the hex SHA-256 of a safetensors file's data section.
pub(crate) const METADATA_KEY: &str = "latentlab.data_sha256";

/// The hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A safetensors file split into its JSON header and its data section; `None` when the 8-byte
/// length prefix does not fit the file (the format's own reader then says why).
fn split_safetensors(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let prefix: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let header_len = usize::try_from(u64::from_le_bytes(prefix)).ok()?;
    let data_start = 8usize.checked_add(header_len)?;
    Some((bytes.get(8..data_start)?, bytes.get(data_start..)?))
}

/// `bytes` (a safetensors file) with the SHA-256 of its data recorded in its metadata.
pub(crate) fn seal_safetensors(bytes: &[u8]) -> Result<Vec<u8>> {
    let internal = |why: &str| Error::Internal(format!("sealing a safetensors file: {why}"));
    let (header, data) = split_safetensors(bytes).ok_or_else(|| internal("no header"))?;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| internal(&e.to_string()))?;
    let metadata = header
        .entry("__metadata__")
        .or_insert_with(|| serde_json::Value::Object(Default::default()))
        .as_object_mut()
        .ok_or_else(|| internal("__metadata__ is not an object"))?;
    metadata.insert(METADATA_KEY.into(), sha256_hex(data).into());
    let mut header = serde_json::to_vec(&header).map_err(|e| internal(&e.to_string()))?;
    // The data start stays 8-byte aligned, as the format's own writer keeps it.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut sealed = Vec::with_capacity(8 + header.len() + data.len());
    sealed.extend_from_slice(&(header.len() as u64).to_le_bytes());
    sealed.extend_from_slice(&header);
    sealed.extend_from_slice(data);
    Ok(sealed)
}

/// Checks the hash [`seal_safetensors`] recorded against the data; `what` names the file. A file
/// without one passes (so does one whose header does not parse: its reader reports that).
pub(crate) fn verify_safetensors(bytes: &[u8], what: &str) -> Result<()> {
    let Some((header, data)) = split_safetensors(bytes) else {
        return Ok(());
    };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(header) else {
        return Ok(());
    };
    let Some(expected) = header
        .get("__metadata__")
        .and_then(|m| m.get(METADATA_KEY))
        .and_then(|v| v.as_str())
    else {
        return Ok(());
    };
    check(data, expected, what)
}

/// Refuses `bytes` unless their SHA-256 is `expected` (hex); `what` names them.
pub fn check(bytes: &[u8], expected: &str, what: &str) -> Result<()> {
    let found = sha256_hex(bytes);
    if found != expected {
        return Err(Error::bad_input(format!(
            "{what}: damaged: its SHA-256 is {}… but {}… was recorded when it was written; \
             restore it from a copy or train again",
            &found[..12],
            expected.get(..12).unwrap_or(expected)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Vec<u8> {
        let data: Vec<u8> = (0..24u8).collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 3], &data)
            .unwrap();
        safetensors::serialize(vec![("w", view)], None).unwrap()
    }

    #[test]
    fn sha256_of_abc_is_the_published_one() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_sealed_file_still_parses_with_its_tensors_and_verifies() {
        let sealed = seal_safetensors(&file()).unwrap();
        let tensors = safetensors::SafeTensors::deserialize(&sealed).unwrap();
        assert_eq!(
            tensors.tensor("w").unwrap().data(),
            &(0..24u8).collect::<Vec<_>>()[..]
        );
        let (_, header) = safetensors::SafeTensors::read_metadata(&sealed).unwrap();
        assert!(
            header
                .metadata()
                .as_ref()
                .unwrap()
                .contains_key(METADATA_KEY)
        );
        assert_eq!(split_safetensors(&sealed).unwrap().0.len() % 8, 0);
        verify_safetensors(&sealed, "w.safetensors").unwrap();
        verify_safetensors(&file(), "unsealed").unwrap();
    }

    #[test]
    fn every_flipped_data_byte_is_refused_in_one_line() {
        let sealed = seal_safetensors(&file()).unwrap();
        let data_start = sealed.len() - 24;
        for position in data_start..sealed.len() {
            let mut damaged = sealed.clone();
            damaged[position] ^= 0x10;
            let message = verify_safetensors(&damaged, "w.safetensors")
                .unwrap_err()
                .to_string();
            assert!(message.starts_with("w.safetensors: damaged"), "{message}");
            assert!(!message.contains('\n'));
        }
    }
}
