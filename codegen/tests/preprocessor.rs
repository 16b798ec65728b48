//! The preprocessor against `slice2py`'s (mcpp): for every Slice file we know (Ice's installed
//! files, ZeroC's source corpus, the differential suite), `slice2rs -E` must fail exactly where
//! `slice2py -E` fails, and otherwise produce the same tokens (line markers, comments, blanks and
//! byte order marks aside). `slice2rs` runs with `-D__SLICE2PY__ -U__SLICE2RS__` so that both see
//! the same macros; macro expansion decides default values and whole definitions, so equal
//! verdicts alone would not catch a wrong expansion. `--depend` must also list the same
//! included files, which checks where each `#include` is found.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// The tokens that matter in preprocessor output.
fn significant(text: &str) -> Vec<String> {
    let kept: String = text
        .lines()
        .filter(|l| {
            let t = l.trim_start_matches('\u{feff}').trim_start();
            !(t.starts_with("#line")
                || (t.starts_with('#')
                    && t[1..]
                        .trim_start()
                        .starts_with(|c: char| c.is_ascii_digit())))
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    tokens(&kept)
        .into_iter()
        .filter(|(k, t)| *k == Kind::Other && t != "\u{feff}")
        .map(|(_, t)| t)
        .collect()
}

#[test]
fn significant_tokens_ignore_markers_comments_and_blanks() {
    let a = "#line 1 \"a.ice\"\n// c\nmodule M { int x  = 10 ; }\n";
    let b = "\u{feff}# 3 \"a.ice\"\nmodule M\n{\n int x = 10; /* c */ }\n";
    assert_eq!(significant(a), significant(b));
    assert_ne!(significant(a), significant("module M { int x = 11; }"));
}

struct Run {
    ok: bool,
    tokens: Vec<String>,
    stderr: String,
}

fn preprocess(program: &str, extra: &[&str], file: &PathBuf) -> Run {
    let dir = file.parent().unwrap();
    let out = Command::new(program)
        .args(extra)
        .arg(format!("-I{ICE_SLICE_DIR}"))
        .arg(format!("-I{}", dir.display()))
        .arg("-E")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    Run {
        ok: out.status.success(),
        tokens: significant(&String::from_utf8_lossy(&out.stdout)),
        stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
    }
}

#[test]
fn preprocessed_tokens_equal_slice2py() {
    require_slice2py();
    let source = ice_source();
    let mut files = files_with_extension(&ice_slice_dir(), "ice");
    files.extend(files_with_extension(&source, "ice"));
    let diff = crate_dir().join("tests").join("diff");
    files.extend(
        std::fs::read_dir(&diff)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "ice")),
    );
    files.sort();

    let ours = env!("CARGO_BIN_EXE_slice2rs");
    let results = par_map(&files, |f| {
        (
            preprocess("slice2py", &[], f),
            preprocess(ours, &["-D__SLICE2PY__", "-U__SLICE2RS__"], f),
        )
    });

    let mut failures = Vec::new();
    for (file, (py, rs)) in files.iter().zip(&results) {
        let shown = file
            .strip_prefix(&source)
            .map(|r| format!("$FLOE_ICE_SOURCE/{}", r.display()))
            .unwrap_or_else(|_| file.display().to_string());
        if py.ok != rs.ok {
            failures.push(format!(
                "  {shown}: slice2py -E {}, slice2rs -E {}\n    slice2py:\n{}\n    slice2rs:\n{}",
                if py.ok { "succeeds" } else { "fails" },
                if rs.ok { "succeeds" } else { "fails" },
                indent(&py.stderr),
                indent(&rs.stderr)
            ));
        } else if py.ok && py.tokens != rs.tokens {
            let i = py
                .tokens
                .iter()
                .zip(&rs.tokens)
                .position(|(a, b)| a != b)
                .unwrap_or(py.tokens.len().min(rs.tokens.len()));
            let around = |t: &[String]| t[i.saturating_sub(6)..(i + 6).min(t.len())].join(" ");
            failures.push(format!(
                "  {shown}: output differs at token {i}\n    slice2py: … {} …\n    slice2rs: … {} …",
                around(&py.tokens),
                around(&rs.tokens)
            ));
        }
    }
    let report = format!(
        "\npreprocessor (-E) vs slice2py: {} files\n  passed {:>6}\n  failed {:>6}\n{}",
        files.len(),
        files.len() - failures.len(),
        failures.len(),
        failures.join("\n")
    );
    assert!(failures.is_empty(), "{report}");
    println!("{report}");
}

/// The `.ice` files a `--depend` output names, resolved to real paths.
fn dependencies(stdout: &str) -> std::collections::BTreeSet<PathBuf> {
    stdout
        .split_whitespace()
        .map(|t| t.trim_end_matches('\\').trim_end_matches(':'))
        .filter(|t| t.ends_with(".ice"))
        .map(|t| std::fs::canonicalize(t).unwrap_or_else(|_| PathBuf::from(t)))
        .collect()
}

#[test]
fn dependencies_equal_slice2py() {
    // Which file an #include finds (next to the includer, or in which -I directory) shows in
    // --depend. Inputs one of the compilers rejects are left to the verdict tests.
    require_slice2py();
    let source = ice_source();
    let mut files = files_with_extension(&ice_slice_dir(), "ice");
    files.extend(files_with_extension(&source, "ice"));
    let ours = env!("CARGO_BIN_EXE_slice2rs");
    let run = |program: &str, file: &PathBuf| {
        let out = Command::new(program)
            .arg(format!("-I{ICE_SLICE_DIR}"))
            .arg(format!("-I{}", file.parent().unwrap().display()))
            .arg("--depend")
            .arg(file)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        out.status
            .success()
            .then(|| dependencies(&String::from_utf8_lossy(&out.stdout)))
    };
    let results = par_map(&files, |f| (run("slice2py", f), run(ours, f)));
    let mut compared = 0;
    let mut failures = Vec::new();
    for (file, (py, rs)) in files.iter().zip(&results) {
        let (Some(py), Some(rs)) = (py, rs) else {
            continue;
        };
        compared += 1;
        if py != rs {
            let show = |s: &std::collections::BTreeSet<PathBuf>| {
                s.iter()
                    .map(|p| format!("      {}", p.display()))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            failures.push(format!(
                "  {}\n    only slice2py lists:\n{}\n    only slice2rs lists:\n{}",
                file.display(),
                show(&py.difference(rs).cloned().collect()),
                show(&rs.difference(py).cloned().collect())
            ));
        }
    }
    assert!(
        compared > 500,
        "only {compared} files were accepted by both compilers"
    );
    let report = format!(
        "\n--depend vs slice2py: {compared} files accepted by both\n  passed {:>6}\n  failed {:>6}\n{}",
        compared - failures.len(),
        failures.len(),
        failures.join("\n")
    );
    assert!(failures.is_empty(), "{report}");
    println!("{report}");
}
