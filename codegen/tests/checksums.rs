//! Slice checksums against `slice2py --checksum`, the oracle, on every file of Ice's installed
//! Slice and of ZeroC's source tree that slice2py compiles with checksums: the same types get
//! the same checksums, to the character.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// What `slice2py --checksum` computes for `file`: its `Ice.sliceChecksums["…"] = "…"` lines,
/// or `None` when slice2py refuses the file.
fn slice2py_checksums(file: &Path, include_dirs: &[PathBuf]) -> Option<BTreeMap<String, String>> {
    require_slice2py();
    let out = tempfile::tempdir().expect("create a temporary output directory");
    let mut cmd = Command::new("slice2py");
    for dir in include_dirs {
        cmd.arg(format!("-I{}", dir.display()));
    }
    cmd.arg("--checksum")
        .arg("--output-dir")
        .arg(out.path())
        .arg(file);
    let output = cmd.output().expect("run slice2py");
    if !output.status.success() {
        return None;
    }
    let mut map = BTreeMap::new();
    for py in files_with_extension(out.path(), "py") {
        let text = std::fs::read_to_string(&py).unwrap_or_default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("Ice.sliceChecksums[\"") else {
                continue;
            };
            let Some((name, value)) = rest.split_once("\"] = \"") else {
                continue;
            };
            map.insert(name.to_string(), value.trim_end_matches('"').to_string());
        }
    }
    Some(map)
}

fn ours(file: &Path, include_dirs: &[PathBuf]) -> Option<BTreeMap<String, String>> {
    // slice2py defines __SLICE2PY__, and some of the corpus depends on it.
    let mut options = options(include_dirs);
    options.defines.push(("__SLICE2PY__".into(), None));
    let checked = floe_slice::check(file, &options);
    (!checked.has_errors()).then(|| floe_slice::checksum::checksums(&checked.ast))
}

#[test]
fn checksums_equal_slice2py_on_the_corpus() {
    let slice_dir = ice_slice_dir();
    let source = ice_source();
    let mut files = files_with_extension(&slice_dir, "ice");
    files.extend(files_with_extension(&source.join("cpp/test"), "ice"));
    files.extend(files_with_extension(&source.join("python/test"), "ice"));
    let results = par_map(&files, |file| {
        let mut includes = vec![slice_dir.clone()];
        if let Some(parent) = file.parent() {
            includes.push(parent.to_path_buf());
        }
        let theirs = slice2py_checksums(file, &includes)?;
        let mine = ours(file, &includes);
        Some((file.clone(), theirs, mine))
    });
    let mut compared = 0;
    let mut types = 0;
    let mut failures = Vec::new();
    for (file, theirs, mine) in results.into_iter().flatten() {
        compared += 1;
        types += theirs.len();
        match mine {
            None => failures.push(format!(
                "{}: slice2py compiles it, we report errors",
                file.display()
            )),
            Some(mine) if mine != theirs => {
                let mut diff = Vec::new();
                for (name, want) in &theirs {
                    match mine.get(name) {
                        Some(got) if got == want => {}
                        got => diff.push(format!("  {name}: slice2py {want}, ours {got:?}")),
                    }
                }
                for name in mine.keys().filter(|n| !theirs.contains_key(*n)) {
                    diff.push(format!("  {name}: only ours"));
                }
                failures.push(format!("{}:\n{}", file.display(), diff.join("\n")));
            }
            Some(_) => {}
        }
    }
    assert!(
        compared > 200 && types > 1000,
        "too little compared: {compared} files, {types} checksums"
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} files differ from slice2py --checksum:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{compared} files, {types} checksums equal to slice2py's");
}
