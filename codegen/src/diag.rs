//! Diagnostics: a stable code, a message, a position, and optional notes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The input is rejected.
    Error,
    /// The input is accepted, but something deserves attention.
    Warning,
}

/// A position in a source file; lines and columns count from 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Index into the compilation's file table.
    pub file: usize,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, counted in characters.
    pub column: usize,
}

/// One finding of the compiler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code such as `E010`; see [`codes`].
    pub code: String,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The file the diagnostic points into.
    pub file: PathBuf,
    /// Line, from 1 (0 when the diagnostic concerns the whole file).
    pub line: usize,
    /// Column, from 1 (0 when unknown).
    pub column: usize,
    /// Further explanations, each a sentence.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// Whether this diagnostic rejects the input.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic as `error[E010]: message --> file:line:col` followed by the
    /// source line and a caret, when the line can be read.
    pub fn render(&self) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{kind}[{}]: {}\n", self.code, self.message);
        let _ = writeln!(
            out,
            "  --> {}:{}:{}",
            self.file.display(),
            self.line,
            self.column
        );
        if let Some(text) = source_line(&self.file, self.line) {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {text}");
            if self.column > 0 {
                let caret_pad: String = text
                    .chars()
                    .take(self.column - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} | {caret_pad}^");
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "  = note: {note}");
        }
        out
    }

    /// Renders the diagnostic as one JSON object on one line.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "severity": match self.severity { Severity::Error => "error", Severity::Warning => "warning" },
            "code": self.code,
            "message": self.message,
            "file": self.file.display().to_string(),
            "line": self.line,
            "column": self.column,
            "notes": self.notes,
        })
        .to_string()
    }
}

fn source_line(file: &Path, line: usize) -> Option<String> {
    if line == 0 {
        return None;
    }
    let bytes = std::fs::read(file).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .nth(line - 1)
        .map(|l| l.trim_end_matches('\r').to_string())
}

/// The stable diagnostic codes.
pub mod codes {
    /// A file could not be read, or an include could not be found.
    pub const IO: &str = "E001";
    /// A preprocessor directive is malformed or unbalanced, or `#error` was reached.
    pub const PREPROCESSOR: &str = "E002";
    /// A character or literal the lexer cannot accept.
    pub const LEXICAL: &str = "E003";
    /// The input does not follow Slice's grammar.
    pub const SYNTAX: &str = "E004";
    /// A keyword used where an identifier is required.
    pub const KEYWORD: &str = "E005";
    /// An identifier breaks Slice's spelling rules (underscores, reserved prefixes and suffixes).
    pub const IDENTIFIER: &str = "E006";
    /// A name is defined twice in one scope.
    pub const REDEFINITION: &str = "E007";
    /// Two names in one scope differ only in capitalization, or a name changes its capitalization.
    pub const CASE: &str = "E008";
    /// A name used in a scope changed meaning later in that scope.
    pub const CHANGED_MEANING: &str = "E009";
    /// A name refers to nothing.
    pub const UNDEFINED: &str = "E010";
    /// A name refers to something of the wrong kind.
    pub const WRONG_KIND: &str = "E011";
    /// A definition placed where it is not allowed.
    pub const PLACEMENT: &str = "E012";
    /// Inheritance is illegal: cycles, wrong kinds, ambiguous or clashing members.
    pub const INHERITANCE: &str = "E013";
    /// A problem with an optional's tag.
    pub const TAG: &str = "E014";
    /// A constant or default value does not fit its type.
    pub const CONSTANT: &str = "E015";
    /// A dictionary key type that Slice does not allow.
    pub const DICTIONARY_KEY: &str = "E016";
    /// An enumeration is empty or its values are illegal.
    pub const ENUM: &str = "E017";
    /// Local and non-local definitions mixed illegally.
    pub const LOCAL: &str = "E018";
    /// An operation's parameters or throws clause are illegal.
    pub const OPERATION: &str = "E019";
    /// A struct problem: empty, self-containing, optional members.
    pub const STRUCT: &str = "E020";
    /// A forward declaration that disagrees with its definition.
    pub const FORWARD: &str = "E021";
    /// Metadata that is not understood (warning).
    pub const METADATA: &str = "W001";
    /// A deprecated construct (warning).
    pub const DEPRECATED: &str = "W002";
    /// Other warnings.
    pub const WARNING: &str = "W003";
}
