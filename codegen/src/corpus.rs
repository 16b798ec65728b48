//! Helpers for crates that compile a tree of Slice files into one Rust crate, each file in a
//! module of its own (the workspace's compile and rustdoc checks of every Slice file).

use std::path::{Path, PathBuf};

/// Appends every `.ice` file under `dir` (recursively, in sorted order) to `out`; a directory
/// that cannot be read adds nothing.
pub fn ice_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            ice_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "ice") {
            out.push(path);
        }
    }
}

/// A Rust module name for Slice file `file`: `group`, then its path below `root`, lowercase,
/// joined by `_`.
pub fn module_name(group: &str, file: &Path, root: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file).with_extension("");
    let mut name = group.to_string();
    for part in rel.iter() {
        name.push('_');
        name.push_str(&part.to_string_lossy().to_lowercase());
    }
    name.replace(['-', '.'], "_")
}
