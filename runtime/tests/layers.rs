//! The runtime's layers, as `docs/runtime.md` draws them: every source file refers (with
//! `crate::…`) only to its own layer and the layers beneath it. A reference upward fails this
//! test with the file, the line and the two layers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Bottom first. A module not listed here fails the test until it is given a layer.
const LAYERS: &[&[&str]] = &[
    &["error", "checksums"],
    &["properties"],
    // Identities are encoded, and proxies in the encoding carry identities.
    &["encoding", "identity"],
    &["protocol"],
    &["endpoint"],
    &["transport"],
    &["connection"],
    &["instance"],
    &["proxy"],
    &["adapter"],
    &["communicator"],
    &["admin", "discovery"],
    &["codegen"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

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

/// The top-level module a file belongs to (`adapter/dispatch.rs` → `adapter`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// What `lib.rs` re-exports at the crate root, by name: `crate::Properties` is `properties`'s,
/// `crate::dispatch` is `adapter`'s.
fn root_names() -> HashMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut names = HashMap::new();
    let text = lib.replace('\n', " ");
    for stmt in text.split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let (module, items) = match rest.split_once("::") {
            Some(x) => x,
            None => continue,
        };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit("::").next().unwrap_or(item).trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    names
}

/// The names a line refers to with `crate::name` or `crate::{a, b::c}`.
fn crate_refs(line: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    refs.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                refs.push(name);
            }
        }
        rest = after;
    }
    refs
}

#[test]
fn every_file_refers_only_to_its_layer_and_those_beneath() {
    let layer_of: HashMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, mods)| mods.iter().map(move |m| (*m, i)))
        .collect();
    let roots = root_names();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let module = module_of(file);
        if module == "lib" {
            continue;
        }
        let Some(&own) = layer_of.get(module.as_str()) else {
            unknown.push(module);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in crate_refs(code) {
                let target = if layer_of.contains_key(name.as_str()) {
                    name.clone()
                } else if let Some(m) = roots.get(&name) {
                    m.clone()
                } else {
                    unknown.push(format!("{name} (in {}:{})", file.display(), n + 1));
                    continue;
                };
                let theirs = layer_of[target.as_str()];
                if theirs > own {
                    upward.push(format!(
                        "{}:{}: `{module}` (layer {own}) refers to `{target}` (layer {theirs}): {}",
                        file.strip_prefix(src()).unwrap().display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules without a layer in this test's table: {unknown:?}"
    );
    assert!(
        upward.is_empty(),
        "references to higher layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_plain_references() {
    assert_eq!(
        crate_refs("use crate::{error::Error, proxy::ObjectPrx}; let x = crate::adapter::y;"),
        ["error", "proxy", "adapter"]
    );
    assert!(crate_refs("let crate_name = 1;").is_empty());
}
