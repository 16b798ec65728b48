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
pub mod diag;
pub mod lexer;
pub mod parser;
pub mod preprocess;
pub mod cli;
pub mod generate;

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
