//! The differential suite: our own small Slice inputs in `tests/diff/`, valid and invalid.
//! Every top-level `.ice` there is given to `slice2py` and to our compiler with the same
//! `-I` arguments and the verdicts must agree. Every input `slice2py` rejects has a sidecar
//! `NAME.expect` saying where our first error must point:
//!
//! ```text
//! # why the input is wrong
//! file: include/Other.ice   (optional; the input itself when absent)
//! code: E007                (optional)
//! line: 5
//! column: 12
//! ```
//!
//! The `slice2rs` binary, generating code, must also exit 0 exactly where `slice2py` does.
//!
//! See `tests/diff/README.md` for the behaviours of `slice2py` the suite pins down.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::*;

fn diff_dir() -> PathBuf {
    crate_dir().join("tests").join("diff")
}

/// The inputs: every `.ice` directly in `tests/diff/` (files under `include/` are only
/// included by them).
fn inputs() -> Vec<PathBuf> {
    let dir = diff_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "ice"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "the differential suite has only {} inputs in {}",
        files.len(),
        dir.display()
    );
    files
}

fn includes() -> Vec<PathBuf> {
    vec![PathBuf::from(ICE_SLICE_DIR), diff_dir()]
}

fn name_of(file: &Path) -> String {
    file.file_name().unwrap().to_string_lossy().into_owned()
}

/// Where the first error of a rejected input must point.
#[derive(Debug, PartialEq)]
struct Expect {
    file: Option<String>,
    code: Option<String>,
    line: usize,
    column: usize,
}

fn parse_expect(text: &str) -> Result<Expect, String> {
    let (mut file, mut code, mut line, mut column) = (None, None, None, None);
    for raw in text.lines() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (key, value) = l
            .split_once(':')
            .ok_or_else(|| format!("not `key: value`: {raw:?}"))?;
        let value = value.trim();
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{key} is not a number: {value:?}"))
        };
        match key.trim() {
            "file" => file = Some(value.to_string()),
            "code" => code = Some(value.to_string()),
            "line" => line = Some(number()?),
            "column" => column = Some(number()?),
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    Ok(Expect {
        file,
        code,
        line: line.ok_or("missing `line:`")?,
        column: column.ok_or("missing `column:`")?,
    })
}

#[test]
fn expect_files_are_parsed() {
    assert_eq!(
        parse_expect("# why\ncode: E004\nline: 3\ncolumn: 7\n"),
        Ok(Expect {
            file: None,
            code: Some("E004".into()),
            line: 3,
            column: 7
        })
    );
    assert_eq!(
        parse_expect("file: include/X.ice\nline: 1\ncolumn: 2\n"),
        Ok(Expect {
            file: Some("include/X.ice".into()),
            code: None,
            line: 1,
            column: 2
        })
    );
    assert!(parse_expect("line: 3\n").is_err());
    assert!(parse_expect("line: x\ncolumn: 1\n").is_err());
    assert!(parse_expect("colour: 1\nline: 1\ncolumn: 1\n").is_err());
}

fn expect_path(file: &Path) -> PathBuf {
    file.with_extension("expect")
}

fn report(title: &str, total: usize, failures: &[String]) {
    let mut out = String::new();
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(out, "  {:<10} {:>6}", "inputs", total);
    let _ = writeln!(out, "  {:<10} {:>6}", "passed", total - failures.len());
    let _ = writeln!(out, "  {:<10} {:>6}", "failed", failures.len());
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for f in failures {
            let _ = writeln!(out, "{f}");
        }
    }
    assert!(failures.is_empty(), "{out}");
    println!("{out}");
}

#[test]
fn verdicts_equal_slice2py() {
    let files = inputs();
    let includes = includes();
    let results = par_map(&files, |file| {
        (slice2py(file, &includes), our_verdict(file, &includes))
    });

    let mut failures = Vec::new();
    let mut rejected = 0;
    for (file, (theirs, ours)) in files.iter().zip(&results) {
        let name = name_of(file);
        if !theirs.accepted {
            rejected += 1;
        }
        if theirs.accepted != ours.accepted {
            failures.push(format!(
                "  {name}: slice2py {}, slice2rs {}\n    slice2py:\n{}\n    slice2rs:\n{}",
                if theirs.accepted {
                    "accepts"
                } else {
                    "rejects"
                },
                if ours.accepted { "accepts" } else { "rejects" },
                indent(&theirs.report),
                indent(&ours.report),
            ));
        }
        let has_expect = expect_path(file).is_file();
        if !theirs.accepted && !has_expect {
            failures.push(format!(
                "  {name}: slice2py rejects it but {} is missing (say where the error is)\n{}",
                name_of(&expect_path(file)),
                indent(&theirs.report)
            ));
        }
        if theirs.accepted && has_expect {
            failures.push(format!(
                "  {name}: slice2py accepts it, so {} should not exist",
                name_of(&expect_path(file))
            ));
        }
    }
    assert!(
        rejected > 0 && rejected < files.len(),
        "the suite must hold accepted and rejected inputs ({rejected} of {} rejected)",
        files.len()
    );
    report(
        &format!(
            "differential suite vs slice2py: {} inputs, {} rejected by slice2py",
            files.len(),
            rejected
        ),
        files.len(),
        &failures,
    );
}

#[test]
fn first_errors_point_at_the_problem() {
    let includes = includes();
    let cases: Vec<(PathBuf, Expect)> = inputs()
        .into_iter()
        .filter(|f| expect_path(f).is_file())
        .map(|f| {
            let path = expect_path(&f);
            let text = std::fs::read_to_string(&path).expect("read .expect");
            let expect = parse_expect(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (f, expect)
        })
        .collect();
    assert!(
        !cases.is_empty(),
        "no .expect files in {}",
        diff_dir().display()
    );

    let failures: Vec<String> = par_map(&cases, |(file, expect)| {
        let name = name_of(file);
        let wanted_file = match &expect.file {
            Some(rel) => diff_dir().join(rel),
            None => file.clone(),
        };
        let wanted = format!(
            "{}:{}:{}{}",
            expect.file.as_deref().unwrap_or(&name),
            expect.line,
            expect.column,
            expect
                .code
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default()
        );
        let diags = match ours(file, &includes) {
            Ok(d) => d,
            Err(message) => return Some(format!("  {name}: {message}")),
        };
        let shown = || indent(&diags.iter().map(show).collect::<Vec<_>>().join("\n"));
        let Some(first) = diags.iter().find(|d| is_error(d)) else {
            return Some(format!(
                "  {name}: expected an error at {wanted}, got none\n{}",
                shown()
            ));
        };
        let place_ok = same_file(&first.file, &wanted_file)
            && first.line == expect.line
            && first.column == expect.column;
        let code_ok = expect.code.as_ref().is_none_or(|c| *c == first.code);
        (!(place_ok && code_ok)).then(|| {
            format!(
                "  {name}: first error should be at {wanted}, is {}\n    all diagnostics:\n{}",
                show(first),
                shown()
            )
        })
    })
    .into_iter()
    .flatten()
    .collect();
    report(
        "differential suite: first error at the expected file, line, column (and code)",
        cases.len(),
        &failures,
    );
}

#[test]
fn slice2rs_exit_status_equals_slice2py() {
    // The binary with an output directory: every input slice2py accepts must also get code
    // generated (keywords of Rust as Slice names, deep or odd but legal inputs).
    let files = inputs();
    let includes = includes();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_slice2rs"));
    let results = par_map(&files, |file| {
        (
            slice2py(file, &includes),
            slice2rs_binary(&binary, file, &includes),
        )
    });
    let mut failures = Vec::new();
    for (file, (theirs, ours)) in files.iter().zip(&results) {
        if theirs.accepted != ours.accepted {
            failures.push(format!(
                "  {}: slice2py {}, slice2rs {}\n    slice2py:\n{}\n    slice2rs:\n{}",
                name_of(file),
                if theirs.accepted { "exits 0" } else { "fails" },
                if ours.accepted { "exits 0" } else { "fails" },
                indent(&theirs.report),
                indent(&ours.report),
            ));
        }
    }
    report(
        "differential suite: slice2rs binary (generating code) vs slice2py",
        files.len(),
        &failures,
    );
}
