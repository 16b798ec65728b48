//! The Slice preprocessor: the C preprocessor subset that ZeroC's compilers accept.
//!
//! It handles `#include` (with `-I` directories), `#pragma once`, `#define` (object-like and
//! function-like, with `#` and `##`), `#undef`, `#if`/`#ifdef`/`#ifndef`/`#elif`/`#else`/`#endif`
//! with full integer expressions and `defined`, `#line`, `#error` and `#warning`, with the checks
//! ZeroC's preprocessor (mcpp) makes of each, and macro calls whose arguments run over several
//! lines. Comments are kept so doc comments reach the parser. The output is a list of segments,
//! each a run of lines of one file that starts at a known line, so every token keeps the position
//! it has in the user's file (or the one `#line` gives it).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Severity, codes};

/// A run of consecutive preprocessed lines from one file.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Index into [`Preprocessed::files`].
    pub file: usize,
    /// Line number, in that file, of the first line of `text`.
    pub first_line: usize,
    /// The text, one output line per input line.
    pub text: String,
}

/// The result of preprocessing one top-level file.
#[derive(Debug, Clone, Default)]
pub struct Preprocessed {
    /// Every file read, the top-level file first.
    pub files: Vec<PathBuf>,
    /// The text to lex, in order.
    pub segments: Vec<Segment>,
    /// Errors and warnings of the preprocessor.
    pub diagnostics: Vec<Diagnostic>,
    /// Errors about lines the preprocessor passes through that only the parser rejects (unknown
    /// `#pragma`s): `-E` succeeds despite them, compiling does not.
    pub deferred: Vec<Diagnostic>,
}

#[derive(Debug, Clone)]
struct Macro {
    params: Option<Vec<String>>,
    variadic: bool,
    body: Vec<PToken>,
}

/// A preprocessor token.
#[derive(Debug, Clone, PartialEq)]
enum PToken {
    Ident(String),
    Number(String),
    Str(String),
    Punct(String),
    Space,
    /// A comment, kept as written.
    Comment(String),
}

impl PToken {
    fn text(&self) -> &str {
        match self {
            PToken::Ident(s)
            | PToken::Number(s)
            | PToken::Str(s)
            | PToken::Punct(s)
            | PToken::Comment(s) => s,
            PToken::Space => " ",
        }
    }
}

struct Cond {
    /// Whether the enclosing region is active.
    parent_active: bool,
    /// Whether a branch of this conditional was taken already.
    taken: bool,
    /// Whether the current branch is active.
    active: bool,
    seen_else: bool,
    line: usize,
}

/// Bytes that are not valid UTF-8 are kept as the characters `U+F700 + byte`, so that the lexer
/// can judge them as ZeroC's compilers do (a byte that cannot start a UTF-8 sequence is rejected
/// in a string literal, a cut-short sequence is accepted) and `-E` can print them unchanged.
pub const RAW_BYTE_BASE: u32 = 0xf700;

/// The byte a character stands for, if it stands for one that is not valid UTF-8.
pub fn raw_byte(c: char) -> Option<u8> {
    let v = c as u32;
    (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xff)
        .contains(&v)
        .then(|| (v - RAW_BYTE_BASE) as u8)
}

/// Decodes UTF-8, keeping invalid bytes as described at [`RAW_BYTE_BASE`].
fn decode_utf8(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::from_u32(RAW_BYTE_BASE + rest[0] as u32).unwrap_or('\u{fffd}'));
                bytes = &rest[1..];
            }
        }
    }
}

/// Encodes preprocessed text back to the bytes it came from.
pub fn encode_raw(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match raw_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

/// Preprocesses `path` with the given include directories and macro definitions.
pub fn preprocess(
    path: &Path,
    include_dirs: &[PathBuf],
    defines: &[(String, Option<String>)],
    undefines: &[String],
) -> Preprocessed {
    let mut pp = Preprocessor {
        include_dirs: include_dirs.to_vec(),
        macros: HashMap::new(),
        once: HashSet::new(),
        out: Preprocessed::default(),
        depth: 0,
        bad_calls: std::cell::RefCell::new(Vec::new()),
        line_now: 0,
        file_now: 0,
    };
    // `__LINE__` and `__FILE__` are defined here and take their values where they are expanded;
    // `__DATE__` and `__TIME__` are the moment preprocessing starts, as in C.
    let (date, time) = date_and_time(std::time::SystemTime::now());
    pp.define_builtin("__LINE__", "0");
    pp.define_builtin("__FILE__", "\"\"");
    pp.define_builtin("__DATE__", &format!("\"{date}\""));
    pp.define_builtin("__TIME__", &format!("\"{time}\""));
    pp.define_builtin("__SLICE2RS__", "1");
    pp.define_builtin("ICE_VERSION", "30708");
    pp.define_builtin("__ICE_VERSION__", "30708");
    for (name, value) in defines {
        pp.define_builtin(name, value.as_deref().unwrap_or("1"));
    }
    for name in undefines {
        pp.macros.remove(name);
    }
    pp.process_file(path, None);
    pp.out
}

struct Preprocessor {
    include_dirs: Vec<PathBuf>,
    macros: HashMap<String, Macro>,
    once: HashSet<PathBuf>,
    out: Preprocessed,
    depth: usize,
    /// Macro calls with the wrong number of arguments: (macro name, arguments given, expected).
    bad_calls: std::cell::RefCell<Vec<(String, usize, String)>>,
    /// The line being preprocessed, for `__LINE__`.
    line_now: usize,
    /// The index in `out.files` of the file being preprocessed, for `__FILE__`.
    file_now: usize,
}

/// Predefined macros that ZeroC's preprocessor refuses to `#define`.
const UNREDEFINABLE: [&str; 4] = ["__FILE__", "__LINE__", "__DATE__", "__TIME__"];

/// Predefined macros that ZeroC's preprocessor refuses to `#undef`.
const UNDEFINABLE: [&str; 6] = [
    "__FILE__",
    "__LINE__",
    "__DATE__",
    "__TIME__",
    "__STDC__",
    "__STDC_VERSION__",
];

impl Preprocessor {
    fn define_builtin(&mut self, name: &str, value: &str) {
        self.macros.insert(
            name.to_string(),
            Macro {
                params: None,
                variadic: false,
                body: tokenize(value).0,
            },
        );
    }

    /// Records an error with its code and position.
    fn diag(
        &mut self,
        code: &str,
        file: &Path,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) {
        self.out
            .diagnostics
            .push(diagnostic(code, file, line, column, message));
    }

    fn error(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.diag(codes::PREPROCESSOR, file, line, 1, message);
    }

    fn error_col(&mut self, file: &Path, line: usize, column: usize, message: impl Into<String>) {
        self.diag(codes::PREPROCESSOR, file, line, column, message);
    }

    /// Reports tokens after a directive that takes no more (comments are fine), as ZeroC's
    /// preprocessor does.
    fn excess_tokens(&mut self, file: &Path, line: usize, logical: &str, rest: &str) {
        let rest = rest.trim();
        if rest.is_empty() {
            return;
        }
        let column = logical
            .find(rest)
            .map(|i| logical[..i].chars().count() + 1)
            .unwrap_or(1);
        self.error_col(
            file,
            line,
            column,
            format!("excessive token sequence `{rest}`"),
        );
    }

    /// Reads the one macro name that `#ifdef`, `#ifndef` and `#undef` take, reporting a missing
    /// name, a token that is not an identifier, and anything after the name.
    fn directive_name<'a>(
        &mut self,
        file: &Path,
        line: usize,
        logical: &str,
        rest: &'a str,
    ) -> Option<&'a str> {
        let (name, after) = split_word(rest);
        if name.is_empty() && after.trim().is_empty() {
            self.error(file, line, "directive without a macro name");
            return None;
        }
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            let token = rest.split_whitespace().next().unwrap_or_default();
            self.error(file, line, format!("`{token}` is not an identifier"));
            return None;
        }
        self.excess_tokens(file, line, logical, after);
        Some(name)
    }

    fn process_file(&mut self, path: &Path, from: Option<(&Path, usize)>) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                // Reported at the #include, or for the file itself (line 0) when it is the input.
                let (file, line) = from.unwrap_or((path, 0));
                let message = format!("cannot read `{}`: {e}", path.display());
                self.diag(codes::IO, file, line, 0, message);
                return;
            }
        };
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.once.contains(&canonical) {
            return;
        }
        self.depth += 1;
        if self.depth > 64 {
            self.depth -= 1;
            let (file, line) = from.map(|(f, l)| (f.to_path_buf(), l)).unwrap_or_default();
            self.error(&file, line, "#include nested too deeply");
            return;
        }
        let file_index = self.out.files.len();
        self.out.files.push(path.to_path_buf());
        // ZeroC's scanner stops at a NUL byte; what follows it is not read.
        let bytes = match bytes.iter().position(|b| *b == 0) {
            Some(nul) => &bytes[..nul],
            None => &bytes[..],
        };
        let mut text = decode_utf8(bytes);
        if let Some(stripped) = text.strip_prefix('\u{feff}') {
            text = stripped.to_string();
        }
        self.process_text(path, file_index, &canonical, &text);
        self.depth -= 1;
    }

    fn process_text(&mut self, path: &Path, file_index: usize, canonical: &Path, text: &str) {
        let mut physical: Vec<&str> = text.split('\n').collect();
        if text.ends_with('\n') {
            physical.pop();
        }
        let mut conds: Vec<Cond> = Vec::new();
        let mut segment = Segment {
            file: file_index,
            first_line: 1,
            text: String::new(),
        };
        let mut in_comment = false;
        // What `#line` added to the physical line numbers.
        let mut shift: isize = 0;
        let mut i = 0;
        while i < physical.len() {
            let line_no = (i as isize + 1 + shift).max(1) as usize;
            self.line_now = line_no;
            self.file_now = file_index;
            // Join backslash-continued lines; the extra lines become blank output lines.
            let mut logical = physical[i].trim_end_matches('\r').to_string();
            let mut extra = 0;
            while logical.ends_with('\\') && i + 1 + extra < physical.len() {
                logical.pop();
                extra += 1;
                logical.push_str(physical[i + extra].trim_end_matches('\r'));
            }
            if !in_comment && logical.trim_start().starts_with('#') {
                // A block comment opened on a directive line runs on over the next lines, and
                // what follows its end still belongs to the directive.
                let mut open = false;
                strip_comments(&logical, &mut open);
                while open && i + 1 + extra < physical.len() {
                    extra += 1;
                    logical.push(' ');
                    logical.push_str(physical[i + extra].trim_end_matches('\r'));
                    open = false;
                    strip_comments(&logical, &mut open);
                }
            }
            let active = conds.last().is_none_or(|c| c.active);
            let starts_directive = !in_comment && logical.trim_start().starts_with('#');
            // Where the comment state stands after a line that took in the next ones.
            let mut comment_after = None;
            if active && !starts_directive && self.macros.values().any(|m| m.params.is_some()) {
                // A macro call whose arguments run on over the next lines takes them in, as in C;
                // the lines are joined without their comments.
                let mut state = in_comment;
                let mut text = strip_comments(&logical, &mut state);
                while let Some(pending) = self.pending_call(&text) {
                    let Some(next) = physical.get(i + 1 + extra) else {
                        break;
                    };
                    let next = next.trim_end_matches('\r');
                    let mut next_state = state;
                    let stripped = strip_comments(next, &mut next_state);
                    let starts = stripped.trim_start();
                    if (!state && next.trim_start().starts_with('#'))
                        || (pending == Pending::Parenthesis
                            && !starts.is_empty()
                            && !starts.starts_with('('))
                    {
                        break;
                    }
                    extra += 1;
                    text.push(' ');
                    text.push_str(&stripped);
                    state = next_state;
                    comment_after = Some(state);
                }
                if comment_after.is_some() {
                    logical = text;
                    in_comment = false;
                }
            }
            i += 1 + extra;
            let mut output_line = String::new();
            // ZeroC's preprocessor refuses a quote left open: a string's in Slice text (which
            // goes on), a string's or a character constant's on a directive line or a skipped
            // line (which it skips).
            let whole_line = starts_directive || !active;
            let quotes: &[char] = if whole_line { &['"', '\''] } else { &['"'] };
            let open_quote = unterminated_literal(&logical, in_comment, quotes);
            if let Some((column, quote)) = open_quote {
                let what = if quote == '"' {
                    "string literal"
                } else {
                    "character constant"
                };
                self.diag(
                    codes::LEXICAL,
                    path,
                    line_no,
                    column,
                    format!("unterminated {what}"),
                );
            }
            if open_quote.is_some() && whole_line {
                if !starts_directive {
                    strip_comments(&logical, &mut in_comment);
                }
            } else if starts_directive {
                let directive = strip_comments(logical.trim_start()[1..].trim_start(), &mut false);
                let (name, rest) = split_word(&directive);
                match name {
                    "if" | "ifdef" | "ifndef" => {
                        let value = if !active {
                            false
                        } else {
                            match name {
                                "ifdef" | "ifndef" => {
                                    let defined = self
                                        .directive_name(path, line_no, &logical, rest)
                                        .is_some_and(|m| self.macros.contains_key(m));
                                    defined == (name == "ifdef")
                                }
                                _ => self.eval_condition(path, line_no, rest),
                            }
                        };
                        conds.push(Cond {
                            parent_active: active,
                            taken: value,
                            active: active && value,
                            seen_else: false,
                            line: line_no,
                        });
                    }
                    "elif" => match conds.last_mut() {
                        None => self.error(path, line_no, "#elif without #if"),
                        Some(c) => {
                            if c.seen_else {
                                self.error(path, line_no, "#elif after #else");
                            } else if c.taken || !c.parent_active {
                                c.active = false;
                            } else {
                                let parent = c.parent_active;
                                let value = self.eval_condition(path, line_no, rest);
                                let c = conds.last_mut().expect("checked above");
                                c.active = parent && value;
                                c.taken = value;
                            }
                        }
                    },
                    "else" if !rest.trim().is_empty() => {
                        self.excess_tokens(path, line_no, &logical, rest);
                    }
                    "endif" if !rest.trim().is_empty() => {
                        self.excess_tokens(path, line_no, &logical, rest);
                        conds.pop();
                    }
                    "else" => match conds.last_mut() {
                        None => self.error(path, line_no, "#else without #if"),
                        Some(c) => {
                            if c.seen_else {
                                self.error(path, line_no, "#else after #else");
                            }
                            c.seen_else = true;
                            c.active = c.parent_active && !c.taken;
                            c.taken = true;
                        }
                    },
                    "endif" => {
                        if conds.pop().is_none() {
                            self.error(path, line_no, "#endif without #if");
                        }
                    }
                    _ if !active => {}
                    "define" => self.define(path, line_no, &logical, rest),
                    "undef" => {
                        if let Some(name) = self.directive_name(path, line_no, &logical, rest) {
                            if UNDEFINABLE.contains(&name) {
                                self.error(path, line_no, format!("`{name}` cannot be undefined"));
                            } else {
                                self.macros.remove(name);
                            }
                        }
                    }
                    "include" => {
                        self.flush(&mut segment, line_no);
                        self.include(path, line_no, &logical, rest);
                        segment.first_line = line_no + 1 + extra;
                        segment.text.clear();
                        // The directive's own lines are not part of any segment.
                        continue;
                    }
                    "pragma" => {
                        let (pragma, after) = split_word(rest);
                        if pragma == "once" && after.trim().is_empty() {
                            self.once.insert(canonical.to_path_buf());
                        } else if !pragma.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                        {
                            // An empty #pragma, or one that does not start with an identifier, is
                            // dropped by ZeroC's preprocessor.
                        } else {
                            // ZeroC's preprocessor passes other pragmas through, and its parser
                            // then rejects the line.
                            let unknown = diagnostic(
                                codes::PREPROCESSOR,
                                path,
                                line_no,
                                1,
                                format!("unknown #pragma `{}`", rest.trim()),
                            );
                            self.out.deferred.push(unknown);
                            output_line = logical.clone();
                        }
                    }
                    "error" => self.error(path, line_no, format!("#error {}", rest.trim())),
                    "line" => {
                        if let Some(next) = self.line(path, canonical, line_no, rest) {
                            // The line after the directive is line `next`.
                            shift = next as isize - (i as isize + 1);
                            self.flush(&mut segment, line_no);
                            segment.first_line = next;
                            segment.text.clear();
                            continue;
                        }
                    }
                    "" if rest.trim().is_empty() => {}
                    _ if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) => {
                        // ZeroC's preprocessor has no `# 12 "file"` form: a directive is a name.
                        let column = logical.find('#').map(|i| i + 2).unwrap_or(1);
                        let column = logical[column.saturating_sub(1)..]
                            .find(|c: char| !c.is_whitespace())
                            .map(|i| column + i)
                            .unwrap_or(column);
                        let token = directive.split_whitespace().next().unwrap_or_default();
                        self.error_col(
                            path,
                            line_no,
                            column,
                            format!("illegal directive `{token}`"),
                        );
                    }
                    other => self.error(
                        path,
                        line_no,
                        format!("invalid preprocessing directive `#{other}`"),
                    ),
                }
            } else if active {
                output_line = self.expand_line(&logical, &mut in_comment);
                if let Some(state) = comment_after {
                    in_comment = state;
                }
                self.report_bad_calls(path, line_no, &logical);
            } else {
                // Keep track of comments in skipped regions, output nothing.
                strip_comments(&logical, &mut in_comment);
            }
            segment.text.push_str(&output_line);
            segment.text.push('\n');
            for _ in 0..extra {
                segment.text.push('\n');
            }
        }
        if let Some(c) = conds.last() {
            let line = c.line;
            self.error(path, line, "unterminated conditional directive");
        }
        if !segment.text.is_empty() {
            self.out.segments.push(segment);
        }
    }

    fn flush(&mut self, segment: &mut Segment, _line: usize) {
        if !segment.text.is_empty() {
            self.out.segments.push(segment.clone());
        }
    }

    /// `#include`; `logical` is the whole directive line, for the columns of errors.
    fn include(&mut self, path: &Path, line: usize, logical: &str, rest: &str) {
        // The column of the operand: the file name as written, `"` or `<` included.
        let operand_column = logical
            .find(['"', '<'])
            .map(|i| logical[..i].chars().count() + 1);
        let rest = rest.trim();
        let expanded;
        let spec = if rest.starts_with('"') || rest.starts_with('<') {
            rest
        } else {
            expanded = self.expand_text(rest);
            expanded.trim()
        };
        let (name, quoted) = if let Some(r) = spec.strip_prefix('"') {
            match r.find('"') {
                Some(end) => (&r[..end], true),
                None => {
                    self.error(path, line, "#include expects \"FILENAME\" or <FILENAME>");
                    return;
                }
            }
        } else if let Some(r) = spec.strip_prefix('<') {
            match r.find('>') {
                Some(end) => (&r[..end], false),
                None => {
                    self.error(path, line, "#include expects \"FILENAME\" or <FILENAME>");
                    return;
                }
            }
        } else {
            self.error(path, line, "#include expects \"FILENAME\" or <FILENAME>");
            return;
        };
        let consumed = spec
            .find(name)
            .map(|i| i + name.len() + 1)
            .unwrap_or(spec.len());
        let after = spec.get(consumed..).unwrap_or("").trim().to_string();
        if !after.is_empty() {
            let spec_end = operand_column.unwrap_or(1) + name.chars().count() + 1;
            let column = logical
                .char_indices()
                .skip(spec_end)
                .find(|(_, c)| !c.is_whitespace())
                .map(|(i, _)| logical[..i].chars().count() + 1)
                .unwrap_or(spec_end);
            self.error_col(
                path,
                line,
                column,
                format!("excessive token sequence `{after}`"),
            );
            return;
        }
        let mut candidates = Vec::new();
        if quoted {
            if let Some(dir) = path.parent() {
                candidates.push(dir.join(name));
            }
        }
        for dir in &self.include_dirs {
            candidates.push(dir.join(name));
        }
        if Path::new(name).is_absolute() {
            candidates.insert(0, PathBuf::from(name));
        }
        match candidates.into_iter().find(|c| c.is_file()) {
            Some(found) => self.process_file(&found, Some((path, line))),
            None => {
                let column = operand_column.unwrap_or(1);
                self.diag(
                    codes::IO,
                    path,
                    line,
                    column,
                    format!("cannot open include file \"{name}\""),
                );
            }
        }
    }

    /// `#line N` or `#line N "file"`, after macro expansion, checked as ZeroC's preprocessor
    /// checks it. Returns the number of the next line, or `None` after an error.
    fn line(&mut self, path: &Path, canonical: &Path, line: usize, rest: &str) -> Option<usize> {
        if rest.trim().is_empty() {
            self.error(path, line, "#line without a line number");
            return None;
        }
        let expanded = self.expand_text(rest);
        let (tokens, _) = tokenize(&expanded);
        let mut tokens = tokens
            .into_iter()
            .filter(|t| !matches!(t, PToken::Space | PToken::Comment(_)));
        let number = match tokens.next() {
            None => {
                self.error(path, line, "#line: the macros expand to no line number");
                return None;
            }
            Some(PToken::Number(n)) => n,
            Some(other) => {
                let text = other.text().to_string();
                self.error(path, line, format!("#line: `{text}` is not a line number"));
                return None;
            }
        };
        if !number.chars().all(|c| c.is_ascii_digit()) {
            self.error(
                path,
                line,
                format!("#line: `{number}` is not a sequence of decimal digits"),
            );
            return None;
        }
        // Read as C reads an integer: a leading 0 makes it octal.
        let value = match parse_c_integer(&number) {
            Some(v) => v,
            None => {
                self.error(
                    path,
                    line,
                    format!("#line: `{number}` is not a valid integer"),
                );
                return None;
            }
        };
        if !(1..LINE_LIMIT).contains(&value) {
            self.error(
                path,
                line,
                format!("#line: line number `{number}` is out of range [1, {LINE_LIMIT})"),
            );
            return None;
        }
        match tokens.next() {
            None => {}
            Some(PToken::Str(name)) if name.starts_with('"') && name.len() >= 2 => {
                if let Some(extra) = tokens.next() {
                    let text = extra.text().to_string();
                    self.error(path, line, format!("excessive token sequence `{text}`"));
                    return None;
                }
                // ZeroC's parser takes another file name for the end of an include and fails;
                // only the input's own path, as the compiler names it, changes nothing.
                let named = PathBuf::from(&name[1..name.len() - 1]);
                let own = self.depth == 1
                    && (named == canonical || std::path::absolute(path).is_ok_and(|p| p == named));
                if !own {
                    // The preprocessor itself (`-E`) accepts the line; compiling does not.
                    let other = diagnostic(
                        codes::PREPROCESSOR,
                        path,
                        line,
                        1,
                        format!(
                            "#line may name only this input's own full path, not {name}: \
                             ZeroC's compilers fail on any other file name"
                        ),
                    );
                    self.out.deferred.push(other);
                }
            }
            Some(other) => {
                let text = other.text().to_string();
                self.error(path, line, format!("#line: `{text}` is not a file name"));
                return None;
            }
        }
        Some(value as usize)
    }

    /// `#define`, with the checks ZeroC's preprocessor makes of the parameter list and of the
    /// `#`, `##` and `__VA_ARGS__` of the body.
    fn define(&mut self, path: &Path, line: usize, logical: &str, rest: &str) {
        let tokens: Vec<PToken> = tokenize(rest)
            .0
            .into_iter()
            .filter(|t| !matches!(t, PToken::Comment(_)))
            .collect();
        let mut i = skip_spaces(&tokens, 0);
        let name = match tokens.get(i) {
            Some(PToken::Ident(name)) => name.clone(),
            _ => {
                self.error(path, line, "macro names must be identifiers");
                return;
            }
        };
        if name == "defined" || name == VA_ARGS || UNREDEFINABLE.contains(&name.as_str()) {
            self.error(path, line, format!("`{name}` cannot be defined"));
            return;
        }
        i += 1;
        let (params, variadic) = if tokens.get(i) == Some(&PToken::Punct("(".into())) {
            match macro_params(&tokens, &mut i) {
                Ok((params, variadic)) => (Some(params), variadic),
                Err(None) => {
                    let column = logical.find('(').map(|i| i + 1).unwrap_or(1);
                    self.error_col(path, line, column, "missing `)` in macro parameter list");
                    return;
                }
                Err(Some(message)) => {
                    self.error(path, line, message);
                    return;
                }
            }
        } else {
            (None, false)
        };
        let body = trim_spaces(tokens[i..].to_vec());
        if let Err(message) = check_macro_body(&body, params.as_deref(), variadic) {
            self.error(path, line, message);
            return;
        }
        self.macros.insert(
            name,
            Macro {
                params,
                variadic,
                body,
            },
        );
    }

    fn eval_condition(&mut self, path: &Path, line: usize, expr: &str) -> bool {
        // Replace `defined X` and `defined(X)` before expanding macros.
        let (tokens, _) = tokenize(expr);
        let mut replaced = Vec::new();
        let mut iter = tokens
            .into_iter()
            .filter(|t| *t != PToken::Space)
            .peekable();
        while let Some(tok) = iter.next() {
            if tok == PToken::Ident("defined".into()) {
                let mut paren = false;
                if iter.peek() == Some(&PToken::Punct("(".into())) {
                    paren = true;
                    iter.next();
                }
                let value = match iter.next() {
                    Some(PToken::Ident(name)) => self.macros.contains_key(&name),
                    _ => {
                        self.error(path, line, "operator `defined` requires an identifier");
                        return false;
                    }
                };
                if paren && iter.next() != Some(PToken::Punct(")".into())) {
                    self.error(path, line, "missing `)` after `defined`");
                    return false;
                }
                replaced.push(PToken::Number(if value { "1" } else { "0" }.into()));
            } else {
                replaced.push(tok);
            }
        }
        let expanded = self.expand_tokens(replaced, &mut Vec::new());
        let tokens: Vec<PToken> = expanded
            .into_iter()
            .filter(|t| !matches!(t, PToken::Space | PToken::Comment(_)))
            .collect();
        let mut parser = CondParser {
            tokens: &tokens,
            pos: 0,
            skipped: 0,
        };
        match parser.ternary() {
            Some(v) if parser.pos == tokens.len() => v != 0,
            _ => {
                self.error(
                    path,
                    line,
                    format!("invalid #if expression `{}`", expr.trim()),
                );
                false
            }
        }
    }

    /// Whether `text` (without comments) ends inside a call of a function-like macro: with its
    /// argument list still open, or with the macro's name last, its `(` perhaps on the next line.
    fn pending_call(&self, text: &str) -> Option<Pending> {
        let (tokens, _) = tokenize(text);
        let mut k = 0;
        while k < tokens.len() {
            let is_call = matches!(&tokens[k],
                PToken::Ident(name) if self.macros.get(name).is_some_and(|m| m.params.is_some()));
            k += 1;
            if !is_call {
                continue;
            }
            let open = skip_spaces(&tokens, k);
            match tokens.get(open) {
                None => return Some(Pending::Parenthesis),
                Some(PToken::Punct(p)) if p == "(" => match collect_args(&tokens, open) {
                    Some((_, close)) => k = close + 1,
                    None => return Some(Pending::Arguments),
                },
                Some(_) => {}
            }
        }
        None
    }

    /// Macro-expands one line of Slice text, keeping comments and strings as written.
    fn expand_line(&mut self, line: &str, in_comment: &mut bool) -> String {
        if self.macros.is_empty() {
            strip_comments(line, in_comment);
            return line.to_string();
        }
        // Leading part still inside a block comment stays verbatim.
        let mut out = String::new();
        let mut rest = line;
        if *in_comment {
            match line.find("*/") {
                Some(end) => {
                    out.push_str(&line[..end + 2]);
                    rest = &line[end + 2..];
                    *in_comment = false;
                }
                None => return line.to_string(),
            }
        }
        let (tokens, open_comment) = tokenize(rest);
        *in_comment = open_comment;
        if !tokens
            .iter()
            .any(|t| matches!(t, PToken::Ident(n) if self.macros.contains_key(n)))
        {
            out.push_str(rest);
            return out;
        }
        for tok in self.expand_tokens(tokens, &mut Vec::new()) {
            out.push_str(tok.text());
        }
        out
    }

    /// Reports the macro calls of the last expanded line that had the wrong number of arguments.
    fn report_bad_calls(&mut self, path: &Path, line: usize, text: &str) {
        let calls: Vec<(String, usize, String)> = self.bad_calls.borrow_mut().drain(..).collect();
        for (name, given, expected) in calls {
            let column = text
                .find(&name)
                .map(|i| text[..i].chars().count() + 1)
                .unwrap_or(1);
            self.error_col(
                path,
                line,
                column,
                format!("macro `{name}` takes {expected} argument(s), {given} given"),
            );
        }
    }

    fn expand_text(&mut self, text: &str) -> String {
        let (tokens, _) = tokenize(text);
        self.expand_tokens(tokens, &mut Vec::new())
            .iter()
            .map(|t| t.text().to_string())
            .collect()
    }

    fn expand_tokens(&self, tokens: Vec<PToken>, active: &mut Vec<String>) -> Vec<PToken> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let tok = &tokens[i];
            let PToken::Ident(name) = tok else {
                out.push(tok.clone());
                i += 1;
                continue;
            };
            let Some(mac) = self.macros.get(name) else {
                out.push(tok.clone());
                i += 1;
                continue;
            };
            if active.contains(name) {
                out.push(tok.clone());
                i += 1;
                continue;
            }
            match &mac.params {
                None if name == "__LINE__" => {
                    out.push(PToken::Number(self.line_now.to_string()));
                    i += 1;
                }
                None if name == "__FILE__" => {
                    let file = self.out.files[self.file_now].display().to_string();
                    let quoted = file.replace('\\', "\\\\").replace('"', "\\\"");
                    out.push(PToken::Str(format!("\"{quoted}\"")));
                    i += 1;
                }
                None => {
                    active.push(name.clone());
                    let expanded = self.expand_tokens(paste(mac.body.clone()), active);
                    active.pop();
                    out.extend(expanded);
                    i += 1;
                }
                Some(params) => {
                    // Find the argument list, skipping blanks.
                    let mut j = i + 1;
                    while j < tokens.len() && matches!(tokens[j], PToken::Space) {
                        j += 1;
                    }
                    if tokens.get(j) != Some(&PToken::Punct("(".into())) {
                        out.push(tok.clone());
                        i += 1;
                        continue;
                    }
                    let Some((args, end)) = collect_args(&tokens, j) else {
                        out.push(tok.clone());
                        i += 1;
                        continue;
                    };
                    // `()` is no argument for a macro without parameters or with `...`, and
                    // one empty argument for any other.
                    let none = params.is_empty() || mac.variadic;
                    let given = if args.len() == 1 && args[0].is_empty() && none {
                        0
                    } else {
                        args.len()
                    };
                    if (!mac.variadic && given != params.len())
                        || (mac.variadic && given + 1 < params.len())
                    {
                        let needed = if mac.variadic {
                            format!("at least {}", params.len() - 1)
                        } else {
                            params.len().to_string()
                        };
                        self.bad_calls
                            .borrow_mut()
                            .push((name.clone(), given, needed));
                    }
                    let args = fit_args(args, params.len(), mac.variadic);
                    let body = substitute(&mac.body, params, &args, |a| {
                        self.expand_tokens(a.to_vec(), &mut active.clone())
                    });
                    active.push(name.clone());
                    let expanded = self.expand_tokens(body, active);
                    active.pop();
                    out.extend(expanded);
                    i = end + 1;
                }
            }
        }
        out
    }
}

fn fit_args(mut args: Vec<Vec<PToken>>, count: usize, variadic: bool) -> Vec<Vec<PToken>> {
    if variadic && args.len() > count && count > 0 {
        let tail = args.split_off(count - 1);
        let mut joined = Vec::new();
        for (k, a) in tail.into_iter().enumerate() {
            if k > 0 {
                joined.push(PToken::Punct(",".into()));
            }
            joined.extend(a);
        }
        args.push(joined);
    }
    if count == 0 && args.len() == 1 && args[0].iter().all(|t| matches!(t, PToken::Space)) {
        args.clear();
    }
    while args.len() < count {
        args.push(Vec::new());
    }
    args
}

/// Collects the comma-separated arguments of a macro call whose `(` is at `open`.
fn collect_args(tokens: &[PToken], open: usize) -> Option<(Vec<Vec<PToken>>, usize)> {
    let mut depth = 0;
    let mut args = vec![Vec::new()];
    for (k, tok) in tokens.iter().enumerate().skip(open) {
        match tok {
            PToken::Punct(p) if p == "(" => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            PToken::Punct(p) if p == ")" => {
                depth -= 1;
                if depth == 0 {
                    let args = args.into_iter().map(trim_spaces).collect();
                    return Some((args, k));
                }
            }
            PToken::Punct(p) if p == "," && depth == 1 => {
                args.push(Vec::new());
                continue;
            }
            _ => {}
        }
        args.last_mut()?.push(tok.clone());
    }
    None
}

fn substitute(
    body: &[PToken],
    params: &[String],
    args: &[Vec<PToken>],
    expand: impl Fn(&[PToken]) -> Vec<PToken>,
) -> Vec<PToken> {
    let index_of = |t: &PToken| match t {
        PToken::Ident(n) => params.iter().position(|p| p == n),
        _ => None,
    };
    let mut out = Vec::new();
    let mut k = 0;
    while k < body.len() {
        let tok = &body[k];
        if *tok == PToken::Punct("#".into()) {
            let mut j = k + 1;
            while j < body.len() && body[j] == PToken::Space {
                j += 1;
            }
            if let Some(idx) = body.get(j).and_then(index_of) {
                let text: String = args[idx].iter().map(|t| t.text()).collect();
                out.push(PToken::Str(format!(
                    "\"{}\"",
                    text.replace('\\', "\\\\").replace('"', "\\\"")
                )));
                k = j + 1;
                continue;
            }
        }
        if let Some(idx) = index_of(tok) {
            let next_is_paste = body[k + 1..]
                .iter()
                .find(|t| **t != PToken::Space)
                .is_some_and(|t| *t == PToken::Punct("##".into()));
            let prev_is_paste = out
                .iter()
                .rev()
                .find(|t| **t != PToken::Space)
                .is_some_and(|t| *t == PToken::Punct("##".into()));
            if next_is_paste || prev_is_paste {
                out.extend(args[idx].iter().cloned());
            } else {
                out.extend(expand(&args[idx]));
            }
        } else {
            out.push(tok.clone());
        }
        k += 1;
    }
    paste(out)
}

/// Applies `##` token pasting.
fn paste(tokens: Vec<PToken>) -> Vec<PToken> {
    if !tokens.iter().any(|t| *t == PToken::Punct("##".into())) {
        return tokens;
    }
    let mut out: Vec<PToken> = Vec::new();
    let mut pasting = false;
    for tok in tokens {
        if tok == PToken::Punct("##".into()) {
            while out.last() == Some(&PToken::Space) {
                out.pop();
            }
            pasting = true;
            continue;
        }
        if pasting {
            if tok == PToken::Space {
                continue;
            }
            pasting = false;
            if let Some(prev) = out.pop() {
                let joined = format!("{}{}", prev.text(), tok.text());
                out.extend(tokenize(&joined).0);
                continue;
            }
        }
        out.push(tok);
    }
    out
}

fn trim_spaces(mut tokens: Vec<PToken>) -> Vec<PToken> {
    while tokens.first() == Some(&PToken::Space) {
        tokens.remove(0);
    }
    while tokens.last() == Some(&PToken::Space) {
        tokens.pop();
    }
    tokens
}

/// `#line` numbers must be below this (C99's limit; ZeroC's preprocessor only warns above C90's
/// 32767).
const LINE_LIMIT: i64 = 2_147_483_647;

/// The name a variadic macro's body gives its extra arguments.
const VA_ARGS: &str = "__VA_ARGS__";

/// `__DATE__` (`Mmm dd yyyy`) and `__TIME__` (`hh:mm:ss`) of a moment, in UTC.
fn date_and_time(moment: std::time::SystemTime) -> (String, String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = moment
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{} {day:>2} {year}", MONTHS[(month - 1) as usize]);
    let time = format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    (date, time)
}

/// What a line that ends inside a macro call still waits for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    /// The `(` of the call.
    Parenthesis,
    /// The rest of the arguments and the closing `)`.
    Arguments,
}

/// The index of the first token at or after `i` that is not a space.
fn skip_spaces(tokens: &[PToken], mut i: usize) -> usize {
    while tokens.get(i) == Some(&PToken::Space) {
        i += 1;
    }
    i
}

/// Whether `...` starts at `i`.
fn is_ellipsis(tokens: &[PToken], i: usize) -> bool {
    (i..i + 3).all(|k| tokens.get(k) == Some(&PToken::Punct(".".into())))
}

/// Reads a macro's parameter list; `i` is at its `(` and ends after its `)`. Returns the names
/// (`__VA_ARGS__` last for `...`) and whether the macro is variadic, or `Err(None)` when the line
/// ends before the list does, or `Err(Some(message))` for another fault.
fn macro_params(tokens: &[PToken], i: &mut usize) -> Result<(Vec<String>, bool), Option<String>> {
    let punct = |i: usize, p: &str| tokens.get(i) == Some(&PToken::Punct(p.into()));
    let mut params: Vec<String> = Vec::new();
    *i = skip_spaces(tokens, *i + 1);
    if punct(*i, ")") {
        *i += 1;
        return Ok((params, false));
    }
    loop {
        *i = skip_spaces(tokens, *i);
        match tokens.get(*i) {
            None => return Err(None),
            Some(PToken::Punct(p)) if p == "," || p == ")" => {
                return Err(Some("empty macro parameter".into()));
            }
            Some(PToken::Punct(p)) if p == "." && is_ellipsis(tokens, *i) => {
                *i = skip_spaces(tokens, *i + 3);
                if !punct(*i, ")") {
                    return Err(Some("`...` must be the last macro parameter".into()));
                }
                *i += 1;
                params.push(VA_ARGS.to_string());
                return Ok((params, true));
            }
            Some(PToken::Ident(p)) if p != VA_ARGS => {
                if params.contains(p) {
                    return Err(Some(format!("duplicate macro parameter `{p}`")));
                }
                params.push(p.clone());
                *i += 1;
            }
            Some(other) => {
                return Err(Some(format!("illegal macro parameter `{}`", other.text())));
            }
        }
        *i = skip_spaces(tokens, *i);
        if !punct(*i, ",") {
            break;
        }
        *i += 1;
    }
    if punct(*i, ")") {
        *i += 1;
        Ok((params, false))
    } else if *i >= tokens.len() {
        Err(None)
    } else {
        Err(Some("missing `,` or `)` in macro parameter list".into()))
    }
}

/// Checks a macro body as ZeroC's preprocessor does: `##` needs a token on each side and never
/// follows another `##`; in a function-like macro `#` must name a parameter; `__VA_ARGS__`
/// belongs to variadic macros only.
fn check_macro_body(
    body: &[PToken],
    params: Option<&[String]>,
    variadic: bool,
) -> Result<(), String> {
    let tokens: Vec<&PToken> = body.iter().filter(|t| **t != PToken::Space).collect();
    let is = |t: &PToken, p: &str| *t == PToken::Punct(p.into());
    let mut k = 0;
    while k < tokens.len() {
        let token = tokens[k];
        if is(token, "##") {
            if k == 0 {
                return Err("`##` cannot begin a macro body".into());
            }
            if is(tokens[k - 1], "##") {
                return Err("`##` cannot follow `##`".into());
            }
        }
        if let (Some(params), true) = (params, is(token, "#")) {
            match tokens.get(k + 1) {
                Some(PToken::Ident(p)) if params.contains(p) => k += 1,
                next => {
                    let shown = next.map(|t| t.text()).unwrap_or_default();
                    return Err(format!(
                        "`#` must be followed by a macro parameter, not `{shown}`"
                    ));
                }
            }
        } else if *token == PToken::Ident(VA_ARGS.into()) && !variadic {
            return Err("`__VA_ARGS__` may appear only in a macro with `...`".into());
        }
        k += 1;
    }
    if tokens.last().is_some_and(|t| is(t, "##")) {
        return Err("`##` cannot end a macro body".into());
    }
    Ok(())
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// The column and quote of a literal quoted by one of `quotes` that the line does not close,
/// outside comments.
fn unterminated_literal(
    line: &str,
    mut in_comment: bool,
    quotes: &[char],
) -> Option<(usize, char)> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if in_comment {
            if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                in_comment = false;
                i += 1;
            }
        } else if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            in_comment = true;
            i += 1;
        } else if chars[i] == '/' && chars.get(i + 1) == Some(&'/') {
            return None;
        } else if quotes.contains(&chars[i]) {
            let (start, quote) = (i, chars[i]);
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Some((start + 1, quote));
            }
        }
        i += 1;
    }
    None
}

/// An error with its code and position.
fn diagnostic(
    code: &str,
    file: &Path,
    line: usize,
    column: usize,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code: code.to_string(),
        message: message.into(),
        file: file.to_path_buf(),
        line,
        column,
        notes: vec![],
    }
}

/// Removes comments from a line, tracking block comments across lines.
fn strip_comments(line: &str, in_comment: &mut bool) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut in_string: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if *in_comment {
            if c == '*' && chars.get(i + 1) == Some(&'/') {
                *in_comment = false;
                out.push(' ');
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        if let Some(q) = in_string {
            out.push(c);
            if c == '\\' {
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                    i += 1;
                }
            } else if c == q {
                in_string = None;
            }
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            *in_comment = true;
            i += 2;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            break;
        }
        if c == '"' || c == '\'' {
            in_string = Some(c);
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Splits text into preprocessor tokens. Returns whether a block comment is left open.
fn tokenize(text: &str) -> (Vec<PToken>, bool) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(PToken::Space);
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            let mut closed = false;
            while i < chars.len() {
                if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    i += 2;
                    closed = true;
                    break;
                }
                i += 1;
            }
            out.push(PToken::Comment(chars[start..i].iter().collect()));
            if !closed {
                return (out, true);
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            out.push(PToken::Comment(chars[start..].iter().collect()));
            break;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(PToken::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || ((chars[i] == '+' || chars[i] == '-')
                        && matches!(chars[i - 1], 'e' | 'E')
                        && !chars[start..i].iter().any(|c| matches!(c, 'x' | 'X'))))
            {
                i += 1;
            }
            out.push(PToken::Number(chars[start..i].iter().collect()));
            continue;
        }
        if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.push(PToken::Str(chars[start..i].iter().collect()));
            continue;
        }
        const TWO: [&str; 11] = [
            "##", "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "::", "->",
        ];
        if let Some(&n) = chars.get(i + 1) {
            let pair: String = [c, n].iter().collect();
            if TWO.contains(&pair.as_str()) {
                out.push(PToken::Punct(pair));
                i += 2;
                continue;
            }
        }
        out.push(PToken::Punct(c.to_string()));
        i += 1;
    }
    (out, false)
}

/// Evaluates `#if` expressions with C's precedence, in 64-bit integers.
struct CondParser<'a> {
    tokens: &'a [PToken],
    pos: usize,
    /// Above 0 inside an operand that `&&`, `||` or `?:` does not evaluate: there a division by
    /// zero is no error, as in C.
    skipped: usize,
}

impl CondParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(|t| t.text())
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.peek() == Some(p) && matches!(self.tokens[self.pos], PToken::Punct(_)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ternary(&mut self) -> Option<i64> {
        let cond = self.binary(0)?;
        if self.eat("?") {
            let a = self.operand(cond == 0, Self::ternary)?;
            if !self.eat(":") {
                return None;
            }
            let b = self.operand(cond != 0, Self::ternary)?;
            Some(if cond != 0 { a } else { b })
        } else {
            Some(cond)
        }
    }

    /// Parses an operand with `parse`, as not evaluated when `skip` is set.
    fn operand(&mut self, skip: bool, parse: impl FnOnce(&mut Self) -> Option<i64>) -> Option<i64> {
        self.skipped += skip as usize;
        let value = parse(self);
        self.skipped -= skip as usize;
        value
    }

    fn binary(&mut self, min_prec: u8) -> Option<i64> {
        const OPS: [(&str, u8); 18] = [
            ("||", 1),
            ("&&", 2),
            ("|", 3),
            ("^", 4),
            ("&", 5),
            ("==", 6),
            ("!=", 6),
            ("<", 7),
            (">", 7),
            ("<=", 7),
            (">=", 7),
            ("<<", 8),
            (">>", 8),
            ("+", 9),
            ("-", 9),
            ("*", 10),
            ("/", 10),
            ("%", 10),
        ];
        let mut lhs = self.unary()?;
        while let Some(op) = self.peek() {
            let Some(&(op, prec)) = OPS.iter().find(|(o, _)| *o == op) else {
                break;
            };
            if prec < min_prec || !matches!(self.tokens[self.pos], PToken::Punct(_)) {
                break;
            }
            self.pos += 1;
            let skip = match op {
                "&&" => lhs == 0,
                "||" => lhs != 0,
                _ => false,
            };
            let rhs = self.operand(skip, |p| p.binary(prec + 1))?;
            if rhs == 0 && (op == "/" || op == "%") && self.skipped > 0 {
                lhs = 0;
                continue;
            }
            lhs = match op {
                "||" => ((lhs != 0) || (rhs != 0)) as i64,
                "&&" => ((lhs != 0) && (rhs != 0)) as i64,
                "|" => lhs | rhs,
                "^" => lhs ^ rhs,
                "&" => lhs & rhs,
                "==" => (lhs == rhs) as i64,
                "!=" => (lhs != rhs) as i64,
                "<" => (lhs < rhs) as i64,
                ">" => (lhs > rhs) as i64,
                "<=" => (lhs <= rhs) as i64,
                ">=" => (lhs >= rhs) as i64,
                "<<" => lhs.wrapping_shl(rhs as u32),
                ">>" => lhs.wrapping_shr(rhs as u32),
                "+" => lhs.wrapping_add(rhs),
                "-" => lhs.wrapping_sub(rhs),
                "*" => lhs.wrapping_mul(rhs),
                "/" => lhs.checked_div(rhs)?,
                _ => lhs.checked_rem(rhs)?,
            };
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<i64> {
        if self.eat("!") {
            return Some((self.unary()? == 0) as i64);
        }
        if self.eat("-") {
            return Some(self.unary()?.wrapping_neg());
        }
        if self.eat("+") {
            return self.unary();
        }
        if self.eat("~") {
            return Some(!self.unary()?);
        }
        if self.eat("(") {
            let v = self.ternary()?;
            return if self.eat(")") { Some(v) } else { None };
        }
        let tok = self.tokens.get(self.pos)?.clone();
        self.pos += 1;
        match tok {
            PToken::Number(n) => parse_c_integer(&n),
            // Identifiers left after expansion are 0, as in C.
            PToken::Ident(_) => Some(0),
            PToken::Str(s) if s.starts_with('\'') && s != "''" => {
                s.chars().nth(1).map(|c| c as i64)
            }
            _ => None,
        }
    }
}

/// A C integer constant; one above `i64::MAX` is unsigned in C and keeps its bits here.
fn parse_c_integer(text: &str) -> Option<i64> {
    let t = text.trim_end_matches(['u', 'U', 'l', 'L']);
    // ZeroC's preprocessor takes at most one `u` and two `l`s, in any order and case.
    let suffix = text[t.len()..].to_ascii_lowercase();
    if suffix.matches('u').count() > 1 || suffix.matches('l').count() > 2 {
        return None;
    }
    let value = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        // ZeroC's preprocessor reads a bare `0x` as 0.
        if hex.is_empty() {
            Some(0)
        } else {
            u64::from_str_radix(hex, 16).ok()
        }
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    };
    value.map(|v| v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (String, Vec<Diagnostic>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.ice");
        std::fs::write(&path, text).expect("write");
        let out = preprocess(&path, &[], &[("__SLICE2PY__".into(), None)], &[]);
        let text = out.segments.iter().map(|s| s.text.as_str()).collect();
        (text, out.diagnostics)
    }

    #[test]
    fn date_and_time_are_spelled_as_in_c() {
        let at = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        assert_eq!(
            date_and_time(at(0)),
            ("Jan  1 1970".to_string(), "00:00:00".to_string())
        );
        // 2000-02-29 23:59:59 UTC, a leap day.
        assert_eq!(
            date_and_time(at(951_868_799)),
            ("Feb 29 2000".to_string(), "23:59:59".to_string())
        );
        assert_eq!(
            date_and_time(at(1_795_392_000)),
            ("Nov 23 2026".to_string(), "00:00:00".to_string())
        );
    }

    #[test]
    fn function_like_macros_expand() {
        let (text, diags) = run(
            "#ifdef __SLICE2PY__\n#define DEFAULT(X) = X\n#else\n#define DEFAULT(X)\n#endif\nint x DEFAULT(10);\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(text.lines().nth(5), Some("int x = 10;"));
        assert_eq!(text.lines().count(), 6, "line numbers are kept");
    }

    #[test]
    fn if_expressions_evaluate() {
        let (text, _) = run(
            "#if defined(__SLICE2PY__) && ICE_VERSION >= 30700\nyes\n#elif 1\nno\n#endif\n#if 0\nhidden\n#else\nshown\n#endif\n",
        );
        assert!(text.contains("yes") && !text.contains("no") && text.contains("shown"));
        assert!(!text.contains("hidden"));
    }

    #[test]
    fn directives_in_comments_are_ignored() {
        let (text, diags) = run("/*\n#endif\n*/\nmodule M {}\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert!(text.contains("module M"));
    }

    #[test]
    fn missing_include_is_an_error_on_its_line() {
        let (_, diags) = run("\n#include <Nope.ice>\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].line, 2);
    }

    #[test]
    fn unbalanced_conditionals_are_reported() {
        let (_, diags) = run("#ifdef X\n");
        assert_eq!(diags.len(), 1);
        let (_, diags) = run("#endif\n");
        assert_eq!(diags.len(), 1);
    }
}
