//! Shared pieces of the compiler's integration tests: running ZeroC's `slice2py` (the
//! oracle for what Slice accepts), running our `check_file`, and a small parallel map.

#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use floe_slice::{Diagnostic, Options, Severity, check_file};

/// Where Debian's `zeroc-ice-slice` package installs Ice's own Slice files.
pub const ICE_SLICE_DIR: &str = "/usr/share/ice/slice";

/// The Rust generated from `file`, which must hold no error (the test fails naming them).
pub fn generate_valid(file: &Path) -> String {
    let checked = floe_slice::check(file, &Options::default());
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render())
        .collect();
    assert!(
        errors.is_empty(),
        "{} must be valid:\n{}",
        file.display(),
        errors.join("")
    );
    floe_slice::generate::generate(&checked, file).expect("generation succeeds")
}

/// The directory of this crate (`codegen/`).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Ice's installed Slice directory; panics with the package to install when it is missing.
pub fn ice_slice_dir() -> PathBuf {
    let dir = PathBuf::from(ICE_SLICE_DIR);
    assert!(
        dir.join("Ice").join("Identity.ice").is_file(),
        "{ICE_SLICE_DIR}/Ice/Identity.ice is missing: install the Debian package zeroc-ice-slice \
         (scripts/test.sh installs it)"
    );
    dir
}

/// The unpacked ZeroC Ice source tree named by `FLOE_ICE_SOURCE`; panics with a clear
/// message when the variable is unset or does not name such a tree.
pub fn ice_source() -> PathBuf {
    let hint = "run the project's test command, scripts/test.sh, which fetches Debian's zeroc-ice \
                source package into build/ice-src and exports FLOE_ICE_SOURCE (or run \
                `bash tests/tools/fetch-ice-source.sh build/ice-src` and export the path it prints)";
    let Some(value) = std::env::var_os("FLOE_ICE_SOURCE") else {
        panic!("FLOE_ICE_SOURCE is not set: {hint}");
    };
    let dir = PathBuf::from(value);
    assert!(
        dir.join("cpp/test/Slice/errorDetection").is_dir(),
        "FLOE_ICE_SOURCE={} is not an unpacked zeroc-ice source tree (no cpp/test/Slice/errorDetection): {hint}",
        dir.display()
    );
    dir
}

/// Checks once per process that `slice2py` runs; panics naming the package otherwise.
pub fn require_slice2py() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        let ok = Command::new("slice2py")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "`slice2py --version` failed: install the Debian package zeroc-ice-compilers \
             (scripts/test.sh installs it)"
        );
    });
}

/// What a compiler decided about one file.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// True when the file was accepted (no error).
    pub accepted: bool,
    /// What the compiler printed or reported, for failure messages.
    pub report: String,
}

/// Runs `slice2py` on `file` with `-I` for each include directory and a fresh output
/// directory (slice2py requires an existing one); accepted means exit status 0.
pub fn slice2py(file: &Path, include_dirs: &[PathBuf]) -> Verdict {
    require_slice2py();
    let out = tempfile::tempdir().expect("create a temporary output directory");
    let mut cmd = Command::new("slice2py");
    for dir in include_dirs {
        cmd.arg(format!("-I{}", dir.display()));
    }
    cmd.arg("--output-dir").arg(out.path()).arg(file);
    let output = cmd.output().expect("run slice2py");
    let mut report = String::from_utf8_lossy(&output.stderr).into_owned();
    report.push_str(&String::from_utf8_lossy(&output.stdout));
    Verdict {
        accepted: output.status.success(),
        report: report.trim_end().to_string(),
    }
}

/// Runs our `slice2rs` binary like [`slice2py`]: same `-I` arguments, a fresh output directory,
/// accepted means exit status 0 (so code generation must succeed too). Only test targets of
/// this package can call it (it needs `CARGO_BIN_EXE_slice2rs`), hence the path argument.
pub fn slice2rs_binary(binary: &Path, file: &Path, include_dirs: &[PathBuf]) -> Verdict {
    let out = tempfile::tempdir().expect("create a temporary output directory");
    let mut cmd = Command::new(binary);
    for dir in include_dirs {
        cmd.arg(format!("-I{}", dir.display()));
    }
    cmd.arg("--output-dir").arg(out.path()).arg(file);
    let output = cmd.output().expect("run slice2rs");
    let mut report = String::from_utf8_lossy(&output.stderr).into_owned();
    report.push_str(&String::from_utf8_lossy(&output.stdout));
    if output.status.code().is_none() {
        report.push_str("\n(slice2rs was killed by a signal)");
    }
    Verdict {
        accepted: output.status.success(),
        report: report.trim_end().to_string(),
    }
}

/// The options our compiler gets for the same `-I` arguments.
pub fn options(include_dirs: &[PathBuf]) -> Options {
    Options {
        include_dirs: include_dirs.to_vec(),
        ..Default::default()
    }
}

/// Whether a diagnostic is an error.
pub fn is_error(d: &Diagnostic) -> bool {
    matches!(d.severity, Severity::Error)
}

/// One diagnostic on one line, as failure messages show it.
pub fn show(d: &Diagnostic) -> String {
    let kind = if is_error(d) { "error" } else { "warning" };
    format!(
        "{}:{}:{}: {kind}[{}] {}",
        d.file.display(),
        d.line,
        d.column,
        d.code,
        d.message
    )
}

/// How long one `check_file` call may take before the test gives up on it.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Our diagnostics for `file`, or `Err` saying why there are none: the compiler panicked or
/// did not return within [`CHECK_TIMEOUT`] (a hung compiler fails the test instead of hanging it).
pub fn ours(file: &Path, include_dirs: &[PathBuf]) -> Result<Vec<Diagnostic>, String> {
    let options = options(include_dirs);
    let path = file.to_path_buf();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("check {}", file.display()))
        .spawn(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(|| check_file(&path, &options)));
            let _ = tx.send(result);
        })
        .expect("spawn a checking thread");
    match rx.recv_timeout(CHECK_TIMEOUT) {
        Ok(Ok(diags)) => Ok(diags),
        Ok(Err(payload)) => Err(format!(
            "check_file panicked: {}",
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic with a non-string payload".to_string())
        )),
        Err(_) => Err(format!(
            "check_file did not return within {}s",
            CHECK_TIMEOUT.as_secs()
        )),
    }
}

/// Our verdict on `file`; a panic of the compiler counts as a rejection and is reported.
pub fn our_verdict(file: &Path, include_dirs: &[PathBuf]) -> Verdict {
    match ours(file, include_dirs) {
        Ok(diags) => Verdict {
            accepted: !diags.iter().any(is_error),
            report: diags.iter().map(show).collect::<Vec<_>>().join("\n"),
        },
        Err(message) => Verdict {
            accepted: false,
            report: message,
        },
    }
}

/// Number of worker threads for fan-out over files: the machine's parallelism, at least 2.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

/// Applies `f` to every item on `workers()` threads and returns the results in input order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers().min(items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = f(&items[i]);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item is processed"))
        .collect()
}

/// Every file under `dir` (recursively) whose extension is `ext`, sorted.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Indents every line of `text` for nesting in a failure report.
pub fn indent(text: &str) -> String {
    if text.is_empty() {
        return "      (nothing)".to_string();
    }
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The same file, whether `check_file` reports it relative, absolute or via `..`.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// What a token of [`tokens`] is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Blanks and line breaks.
    Space,
    /// A line or block comment (an unterminated block comment runs to the end).
    Comment,
    /// Anything else: identifiers, literals, punctuation.
    Other,
}

/// Splits Slice text into tokens whose concatenation is the text again.
pub fn tokens(text: &str) -> Vec<(Kind, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let kind = if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            Kind::Space
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            Kind::Comment
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i = (i + 2).min(chars.len());
            Kind::Comment
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            Kind::Other
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '\\' {
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            Kind::Other
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            i += 2;
            Kind::Other
        } else {
            i += 1;
            Kind::Other
        };
        out.push((kind, chars[start..i].iter().collect()));
    }
    out
}
