//! File formats that are not models: the TorchScript archive the FID weights come in.

pub mod torchscript;

/// What is wrong with a zip archive, in words: the zip crate's own messages name its internal
/// types ("Unexpected end of zip::format::blocks::Zip32CDEBlock").
pub(crate) fn zip_problem(e: &zip::result::ZipError) -> String {
    use zip::result::ZipError;
    match e {
        ZipError::Io(e) => e.to_string(),
        ZipError::InvalidArchive(_) => "a damaged or cut-short zip archive".into(),
        ZipError::UnsupportedArchive(what) => {
            format!("a zip archive of a kind not supported: {what}")
        }
        ZipError::FileNotFound => "an entry it needs is missing".into(),
        other => other
            .to_string()
            .split_whitespace()
            .filter(|word| !word.contains("::"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}
