//! The code's shape, as the redesign of issue 39 left it: no source file over 700 lines, and no
//! import circle between files or top-level folders (`bench/import_circles.py`).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_is_over_700_lines() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 100, "found only {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > 700).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}

#[test]
fn no_module_or_folder_imports_in_a_circle() {
    let root = env!("CARGO_MANIFEST_DIR");
    let run = std::process::Command::new("python3")
        .arg(Path::new(root).join("bench/import_circles.py"))
        .arg(root)
        .output();
    let Ok(output) = run else {
        eprintln!("skipped: python3 is not installed, so bench/import_circles.py cannot run");
        return;
    };
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("0 circles;") && report.contains("0 folder circles;"),
        "{report}"
    );
}
