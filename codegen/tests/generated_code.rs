//! Generated Rust compiles (under `deny(warnings)`) for every input our compiler accepts: the
//! differential suite and ZeroC's source corpus (one file per distinct content). A scratch crate
//! under cargo's test scratch directory includes the generated code of each input in a module of
//! its own; its build script runs `floe_slice::Builder`, and the test runs `cargo check` on it
//! (type checking and lints are the point; generating machine code for ~600 modules would take
//! minutes on two cores).
//! Inputs our compiler rejects are left to the verdict tests.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const BUILD_RS: &str = r#"
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let list = std::fs::read_to_string("inputs.txt").unwrap();
    println!("cargo:rerun-if-changed=inputs.txt");
    let mut all = String::new();
    let mut modules = String::new();
    for (i, line) in list.lines().enumerate() {
        let file = PathBuf::from(line);
        let module = format!("input_{i}");
        let dir = out.join(&module);
        std::fs::create_dir_all(&dir).unwrap();
        let builder = floe_slice::Builder::new()
            .out_dir(&dir)
            .include("/usr/share/ice/slice")
            .include(file.parent().unwrap());
        if builder.compile(&[&file]).is_err() {
            continue;
        }
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let generated = dir.join(format!("{stem}.rs"));
        let _ = writeln!(all, "pub mod {module} {{ include!({:?}); }}", generated.display().to_string());
        let _ = writeln!(modules, "{module}\t{}", file.display());
    }
    std::fs::write(out.join("all.rs"), all).unwrap();
    std::fs::write("modules.txt", modules).unwrap();
}
"#;

const LIB_RS: &str = "#![deny(warnings)]\n#![allow(missing_debug_implementations)]\n\
                      include!(concat!(env!(\"OUT_DIR\"), \"/all.rs\"));\n";

fn inputs() -> Vec<PathBuf> {
    let diff = crate_dir().join("tests").join("diff");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&diff)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ice"))
        .collect();
    files.sort();
    let mut seen = HashSet::new();
    for f in files_with_extension(&ice_source(), "ice") {
        let mut h = DefaultHasher::new();
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
        if seen.insert(h.finish()) {
            files.push(f);
        }
    }
    files
}

fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).unwrap();
    }
}

#[test]
fn generated_code_compiles_for_every_accepted_input() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("generated-code");
    std::fs::create_dir_all(work.join("src")).unwrap();
    let codegen = crate_dir();
    let runtime = codegen.parent().unwrap().join("runtime");
    write_if_changed(
        &work.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"floe-generated-code-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nfloe = {{ path = {:?} }}\n\n[build-dependencies]\nfloe-slice = {{ path = {:?} }}\n\n[workspace]\n",
            runtime.display().to_string(),
            codegen.display().to_string()
        ),
    );
    write_if_changed(&work.join("build.rs"), BUILD_RS);
    write_if_changed(&work.join("src").join("lib.rs"), LIB_RS);
    let lock = codegen.parent().unwrap().join("Cargo.lock");
    if !work.join("Cargo.lock").exists() && lock.is_file() {
        std::fs::copy(&lock, work.join("Cargo.lock")).unwrap();
    }
    let files = inputs();
    write_if_changed(
        &work.join("inputs.txt"),
        &files
            .iter()
            .map(|f| format!("{}\n", f.display()))
            .collect::<String>(),
    );

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .current_dir(&work)
        .args(["check", "--quiet", "--message-format", "short", "-j"])
        .arg(workers().min(2).to_string())
        .arg("--target-dir")
        .arg(work.join("target"))
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&output.stderr);

    // Map each error back to the input whose generated module it is in.
    let modules: BTreeMap<String, String> = std::fs::read_to_string(work.join("modules.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(m, f)| (m.to_string(), f.to_string()))
        .collect();
    let mut by_input: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in stderr.lines().filter(|l| l.contains(": error")) {
        let input = line
            .split('/')
            .find(|part| modules.contains_key(*part))
            .map(|m| modules[m].clone())
            .unwrap_or_else(|| "(not in a generated module)".to_string());
        by_input.entry(input).or_default().push(line.to_string());
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "\ngenerated code compiles: {} inputs, {} generated, {} with compile errors",
        files.len(),
        modules.len(),
        by_input.len()
    );
    for (input, errors) in &by_input {
        let _ = writeln!(report, "  {input}: {} errors, first:", errors.len());
        for e in errors.iter().take(3) {
            let _ = writeln!(report, "      {e}");
        }
    }
    if !output.status.success() && by_input.is_empty() {
        let _ = writeln!(report, "cargo failed:\n{}", indent(&stderr));
    }
    assert!(output.status.success() && modules.len() > 500, "{report}");
    println!("{report}");
}
