//! Our compiler against ZeroC's Slice corpus:
//! (a) every Slice file Debian installs under /usr/share/ice/slice compiles without error;
//! (b) on every `.ice` file of ZeroC's source package (FLOE_ICE_SOURCE) we accept and reject
//!     exactly what `slice2py` accepts and rejects, with the same `-I` arguments;
//! (c) on ZeroC's errorDetection tests, we report errors on exactly the lines its `.err`
//!     files list;
//! (d) the `slice2rs` binary, generating code, exits 0 exactly where `slice2py` does.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::*;

/// Renders the summary table and, when anything failed, the failures.
fn summary(title: &str, total: usize, failures: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(out, "  {:<10} {:>6}", "files", total);
    let _ = writeln!(out, "  {:<10} {:>6}", "passed", total - failures.len());
    let _ = writeln!(out, "  {:<10} {:>6}", "failed", failures.len());
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for f in failures {
            let _ = writeln!(out, "{f}");
        }
    }
    out
}

fn finish(title: &str, total: usize, failures: &[String]) {
    let report = summary(title, total, failures);
    assert!(failures.is_empty(), "{report}");
    println!("{report}");
}

#[test]
fn installed_ice_slice_files_have_no_errors() {
    let slice_dir = ice_slice_dir();
    let files = files_with_extension(&slice_dir, "ice");
    assert!(
        files.len() >= 50,
        "only {} .ice files under {}: is the Debian package zeroc-ice-slice complete?",
        files.len(),
        slice_dir.display()
    );
    let includes = vec![slice_dir.clone()];
    let failures: Vec<String> = par_map(&files, |file| {
        let verdict = our_verdict(file, &includes);
        (!verdict.accepted).then(|| {
            format!(
                "  {}\n    ours (expected no error):\n{}",
                file.display(),
                indent(&verdict.report)
            )
        })
    })
    .into_iter()
    .flatten()
    .collect();
    finish(
        &format!(
            "/usr/share/ice/slice: compiles without error (-I {})",
            slice_dir.display()
        ),
        files.len(),
        &failures,
    );
}

/// The `-I` arguments both compilers get for a corpus file.
fn corpus_includes(file: &Path) -> Vec<PathBuf> {
    let dir = file.parent().expect("a file has a parent directory");
    vec![PathBuf::from(ICE_SLICE_DIR), dir.to_path_buf()]
}

#[test]
fn ice_source_corpus_verdicts_equal_slice2py() {
    let source = ice_source();
    let files = files_with_extension(&source, "ice");
    assert!(
        files.len() >= 700,
        "only {} .ice files under FLOE_ICE_SOURCE={}; expected about 800: the fetched tree looks incomplete",
        files.len(),
        source.display()
    );

    let results = par_map(&files, |file| {
        let includes = corpus_includes(file);
        let theirs = slice2py(file, &includes);
        let ours = our_verdict(file, &includes);
        (theirs, ours)
    });

    let mut failures = Vec::new();
    let (mut both_accept, mut both_reject) = (0, 0);
    for (file, (theirs, ours)) in files.iter().zip(&results) {
        match (theirs.accepted, ours.accepted) {
            (true, true) => both_accept += 1,
            (false, false) => both_reject += 1,
            _ => {
                let shown = file.strip_prefix(&source).unwrap_or(file);
                failures.push(format!(
                    "  {}\n    slice2py: {}\n{}\n    slice2rs: {}\n{}",
                    shown.display(),
                    if theirs.accepted {
                        "accepts"
                    } else {
                        "rejects"
                    },
                    indent(&theirs.report),
                    if ours.accepted { "accepts" } else { "rejects" },
                    indent(&ours.report),
                ));
            }
        }
    }
    let mismatch_accept = results
        .iter()
        .filter(|(t, o)| t.accepted && !o.accepted)
        .count();
    let mismatch_reject = results
        .iter()
        .filter(|(t, o)| !t.accepted && o.accepted)
        .count();
    finish(
        &format!(
            "ZeroC source corpus vs slice2py ({}): {both_accept} accepted by both, {both_reject} \
             rejected by both, {mismatch_accept} accepted only by slice2py, {mismatch_reject} \
             accepted only by us",
            source.display()
        ),
        files.len(),
        &failures,
    );
}

/// One entry of a ZeroC `.err` file: `File.ice:LINE: message` or `File.ice: message`.
#[derive(Debug, PartialEq)]
struct ErrEntry {
    file: String,
    line: Option<usize>,
    warning: bool,
}

fn parse_err_line(text: &str) -> Option<ErrEntry> {
    let (file, rest) = text.split_once(':')?;
    if !file.ends_with(".ice") {
        return None;
    }
    let (line, message) = match rest.split_once(':') {
        Some((n, m)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(n.parse().ok()?), m)
        }
        _ => (None, rest),
    };
    Some(ErrEntry {
        file: file.trim().to_string(),
        line,
        warning: message.trim_start().starts_with("warning:"),
    })
}

#[test]
fn err_file_lines_are_parsed() {
    assert_eq!(
        parse_err_line("Foo.ice:11: `x' has changed meaning"),
        Some(ErrEntry {
            file: "Foo.ice".into(),
            line: Some(11),
            warning: false
        })
    );
    assert_eq!(
        parse_err_line("Foo.ice:7: warning: classes with operations are deprecated"),
        Some(ErrEntry {
            file: "Foo.ice".into(),
            line: Some(7),
            warning: true
        })
    );
    assert_eq!(
        parse_err_line("Foo.ice: warning: ignoring invalid file metadata `cpp:x'"),
        Some(ErrEntry {
            file: "Foo.ice".into(),
            line: None,
            warning: true
        })
    );
    assert_eq!(parse_err_line("1 error in preprocessor."), None);
}

/// The lines a `.err` file lists errors on, for entries about `ice_name`; entries without
/// a line number count as line 0.
fn expected_error_lines(err_text: &str, ice_name: &str) -> BTreeSet<usize> {
    err_text
        .lines()
        .filter_map(parse_err_line)
        .filter(|e| !e.warning && e.file == ice_name)
        .map(|e| e.line.unwrap_or(0))
        .collect()
}

fn show_lines(lines: &BTreeSet<usize>) -> String {
    let v: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    format!("{{{}}}", v.join(", "))
}

#[test]
fn error_detection_lines_equal_err_files() {
    let dir = ice_source().join("cpp/test/Slice/errorDetection");
    let cases: Vec<(PathBuf, PathBuf)> = files_with_extension(&dir, "ice")
        .into_iter()
        .filter_map(|ice| {
            let err = ice.with_extension("err");
            err.is_file().then_some((ice, err))
        })
        .collect();
    assert!(
        cases.len() >= 40,
        "only {} errorDetection .ice files with a .err file under {}",
        cases.len(),
        dir.display()
    );

    let failures: Vec<String> = par_map(&cases, |(ice, err)| {
        let name = ice.file_name().unwrap().to_string_lossy().into_owned();
        let err_text = std::fs::read_to_string(err).expect("read .err file");
        let expected = expected_error_lines(&err_text, &name);
        let shown = ice.strip_prefix(&dir).unwrap_or(ice).display().to_string();
        match ours(ice, &corpus_includes(ice)) {
            Err(message) => Some(format!("  {shown}\n    {message}")),
            Ok(diags) => {
                let got: BTreeSet<usize> = diags
                    .iter()
                    .filter(|d| is_error(d) && same_file(&d.file, ice))
                    .map(|d| d.line)
                    .collect();
                (got != expected).then(|| {
                    let missing: BTreeSet<usize> = expected.difference(&got).copied().collect();
                    let extra: BTreeSet<usize> = got.difference(&expected).copied().collect();
                    let report: Vec<String> = diags.iter().map(show).collect();
                    format!(
                        "  {shown}\n    .err error lines: {}\n    our error lines:  {}\n    missing: {}  extra: {}\n    our diagnostics:\n{}",
                        show_lines(&expected),
                        show_lines(&got),
                        show_lines(&missing),
                        show_lines(&extra),
                        indent(&report.join("\n"))
                    )
                })
            }
        }
    })
    .into_iter()
    .flatten()
    .collect();
    finish(
        &format!(
            "errorDetection: error lines equal the .err files ({})",
            dir.display()
        ),
        cases.len(),
        &failures,
    );
}

#[test]
fn ice_source_corpus_slice2rs_exit_status_equals_slice2py() {
    // The same comparison through the slice2rs binary with an output directory: a file slice2py
    // accepts must also get code generated without error (and without a crash).
    let source = ice_source();
    let files = files_with_extension(&source, "ice");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_slice2rs"));
    let results = par_map(&files, |file| {
        let includes = corpus_includes(file);
        (
            slice2py(file, &includes),
            slice2rs_binary(&binary, file, &includes),
        )
    });
    let mut failures = Vec::new();
    for (file, (theirs, ours)) in files.iter().zip(&results) {
        if theirs.accepted != ours.accepted {
            let shown = file.strip_prefix(&source).unwrap_or(file);
            failures.push(format!(
                "  {}\n    slice2py: {}\n{}\n    slice2rs: {}\n{}",
                shown.display(),
                if theirs.accepted { "exit 0" } else { "fails" },
                indent(&theirs.report),
                if ours.accepted { "exit 0" } else { "fails" },
                indent(&ours.report),
            ));
        }
    }
    finish(
        &format!(
            "ZeroC source corpus, slice2rs binary (generating code) vs slice2py ({})",
            source.display()
        ),
        files.len(),
        &failures,
    );
}
