//! `floe-slice`: the Slice 3.7 compiler of Floe.
//!
//! It accepts and rejects the same Slice as ZeroC's compilers, and generates async Rust that uses
//! the `floe` runtime through `floe::codegen`.
//!
//! # Quick start
//!
//! In a `build.rs`:
//!
//! ```no_run
//! floe_slice::Builder::new()
//!     .include("slice")
//!     .compile(&["slice/UsersManager.ice"])
//!     .expect("Slice compiles");
//! ```
//!
//! and in the crate: `floe::include_slice!("UsersManager");`.
//!
//! Phases: preprocess, lex, parse with checks (see [`parser`] for why checking happens during
//! parsing), then generate. Generation is skipped when there is any error; every error found is
//! reported, not just the first.

pub mod ast;
pub mod checksum;
pub mod cli;
pub mod corpus;
pub mod diag;
pub mod doc;
pub mod generate;
pub mod lexer;
pub mod parser;
pub mod preprocess;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Severity};

/// Compiler options, as `slice2rs` and `slice2py` take them on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-I` directories, searched in order.
    pub include_dirs: Vec<PathBuf>,
    /// `-D NAME` or `-D NAME=VALUE`.
    pub defines: Vec<(String, Option<String>)>,
    /// `-U NAME`.
    pub undefines: Vec<String>,
}

/// The result of checking one file: its syntax tree and every diagnostic.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The definitions of the file and of everything it includes.
    pub ast: ast::Ast,
    /// Every file read, the top-level file first.
    pub files: Vec<PathBuf>,
    /// Errors and warnings, in the order they were found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Preprocesses, parses and checks `file`.
pub fn check(file: &Path, options: &Options) -> Checked {
    let pre = preprocess::preprocess(
        file,
        &options.include_dirs,
        &options.defines,
        &options.undefines,
    );
    let mut diagnostics = pre.diagnostics.clone();
    diagnostics.extend(pre.deferred.iter().cloned());
    let files = pre.files.clone();
    if pre.files.is_empty() {
        return Checked {
            ast: ast::Ast::default(),
            files,
            diagnostics,
        };
    }
    let (tokens, lex_errors) = lexer::lex(&pre.segments);
    let (ast, raw) = parser::parse(tokens, lex_errors);
    for d in raw {
        diagnostics.push(Diagnostic {
            severity: d.severity,
            code: d.code.to_string(),
            message: d.message,
            file: files.get(d.span.file).cloned().unwrap_or_default(),
            line: d.span.line,
            column: d.span.column,
            notes: Vec::new(),
        });
    }
    Checked {
        ast,
        files,
        diagnostics,
    }
}

/// Preprocesses, parses and checks `file`; returns every diagnostic (errors and warnings).
pub fn check_file(file: &Path, options: &Options) -> Vec<Diagnostic> {
    check(file, options).diagnostics
}

/// A failed compilation: every diagnostic, rendered by `Display`.
#[derive(Debug, Clone)]
pub struct CompileError {
    /// Errors and warnings of the failed files.
    pub diagnostics: Vec<Diagnostic>,
    /// Failures outside Slice itself (an unwritable output directory, …).
    pub message: Option<String>,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.diagnostics {
            f.write_str(&d.render())?;
        }
        if let Some(m) = &self.message {
            writeln!(f, "{m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileError {}

/// Compiles Slice files from a `build.rs` into `OUT_DIR`, one `NAME.rs` per `NAME.ice`, for
/// `floe::include_slice!("NAME")`. Prints `cargo:rerun-if-changed` for every file read.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    options: Options,
    out_dir: Option<PathBuf>,
    checksum: bool,
}

impl Builder {
    /// A builder with no include directories, writing to `OUT_DIR`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an include directory (`-I`).
    pub fn include(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.include_dirs.push(dir.into());
        self
    }

    /// Defines a preprocessor macro (`-D`).
    pub fn define(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.options
            .defines
            .push((name.into(), value.map(str::to_string)));
        self
    }

    /// Also generates the Slice checksums of each file's definitions (`slice2rs --checksum`),
    /// which the program then finds in `floe::slice_checksums()`.
    pub fn checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }

    /// Writes the generated files to `dir` instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Compiles each file; on any error nothing more is written and every diagnostic is returned.
    pub fn compile(self, files: &[impl AsRef<Path>]) -> Result<(), CompileError> {
        let out_dir = match self
            .out_dir
            .clone()
            .or_else(|| std::env::var_os("OUT_DIR").map(PathBuf::from))
        {
            Some(d) => d,
            None => {
                return Err(CompileError {
                    diagnostics: Vec::new(),
                    message: Some(
                        "OUT_DIR is not set: call compile from a build script or set out_dir"
                            .into(),
                    ),
                });
            }
        };
        let mut failed = Vec::new();
        for file in files {
            let file = file.as_ref();
            let checked = check(file, &self.options);
            for f in &checked.files {
                println!("cargo:rerun-if-changed={}", f.display());
            }
            if checked.has_errors() {
                failed.extend(checked.diagnostics);
                continue;
            }
            let mut code = generate::generate(&checked, file).map_err(|m| CompileError {
                diagnostics: Vec::new(),
                message: Some(m),
            })?;
            if self.checksum {
                code.push_str(&checksum::rust_items(&checked.ast));
            }
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = out_dir.join(format!("{stem}.rs"));
            std::fs::write(&target, code).map_err(|e| CompileError {
                diagnostics: Vec::new(),
                message: Some(format!("cannot write `{}`: {e}", target.display())),
            })?;
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(CompileError {
                diagnostics: failed,
                message: None,
            })
        }
    }
}
