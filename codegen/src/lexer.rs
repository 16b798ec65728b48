//! The Slice lexer. Literals and identifiers are recognised with nom; the token stream keeps the
//! original file, line and column of every token.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, tag_no_case, take_while, take_while1},
    character::complete::{char, digit0, digit1, hex_digit1, one_of},
    combinator::{opt, recognize},
    sequence::{pair, preceded},
};

use crate::diag::Span;
use crate::preprocess::Segment;

/// Slice keywords. Matching is case-sensitive (`Module` is an ordinary identifier), as in ZeroC's
/// 3.7 scanner.
pub const KEYWORDS: [&str; 30] = [
    "module",
    "class",
    "interface",
    "exception",
    "struct",
    "sequence",
    "dictionary",
    "enum",
    "out",
    "extends",
    "implements",
    "throws",
    "void",
    "byte",
    "bool",
    "short",
    "int",
    "long",
    "float",
    "double",
    "string",
    "Object",
    "LocalObject",
    "local",
    "const",
    "false",
    "true",
    "idempotent",
    "optional",
    "Value",
];

/// A token's kind and value.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An unscoped identifier (the backslash of an escaped one removed).
    Ident(String),
    /// A scoped identifier such as `::A::B` or `A::B`.
    Scoped(String),
    /// An identifier immediately followed by `(` (an operation name or compact-id class).
    IdentOp(String),
    /// A keyword immediately followed by `(`.
    KeywordOp(String),
    /// `optional(`.
    OptionalOp,
    /// A keyword, in its canonical spelling.
    Keyword(&'static str),
    /// An integer literal; `None` when it does not fit in 64 bits.
    Int(Option<i64>, String),
    /// A floating-point literal.
    Float(f64, String),
    /// A string literal: its value and its text as written.
    Str(String, String),
    /// `[`.
    MetaOpen,
    /// `]`.
    MetaClose,
    /// `[[`.
    GlobalMetaOpen,
    /// `]]`.
    GlobalMetaClose,
    /// Any other single character: `{ } ( ) < > , ; = *`.
    Punct(char),
    /// A character Slice does not allow.
    Illegal(char),
    /// The end of the input.
    Eof,
}

/// A token with its position and the doc comment that precedes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Kind and value.
    pub tok: Tok,
    /// Where it starts.
    pub span: Span,
    /// Whether the identifier was written with a leading backslash.
    pub escaped: bool,
    /// The `/** */` or `///` comment right before this token, if any.
    pub doc: Option<String>,
}

/// A lexical problem, reported by the parser when it reaches the token.
#[derive(Debug, Clone, PartialEq)]
pub struct LexError {
    /// Where.
    pub span: Span,
    /// What.
    pub message: String,
    /// Whether it is only a warning.
    pub warning: bool,
}

/// Splits preprocessed segments into tokens.
pub fn lex(segments: &[Segment]) -> (Vec<Token>, Vec<LexError>) {
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    let mut span = Span::default();
    for seg in segments {
        span = lex_segment(seg, &mut tokens, &mut errors);
    }
    tokens.push(Token {
        tok: Tok::Eof,
        span,
        escaped: false,
        doc: None,
    });
    (tokens, errors)
}

struct Cursor<'a> {
    rest: &'a str,
    line: usize,
    col: usize,
    file: usize,
}

impl<'a> Cursor<'a> {
    fn advance(&mut self, n: usize) -> &'a str {
        let (taken, rest) = self.rest.split_at(n);
        for c in taken.chars() {
            if c == '\n' {
                self.line += 1;
                self.col = 1;
            } else {
                self.col += 1;
            }
        }
        self.rest = rest;
        taken
    }

    fn span(&self) -> Span {
        Span {
            file: self.file,
            line: self.line,
            column: self.col,
        }
    }
}

/// Lexes one segment; returns the position just past its end.
fn lex_segment(seg: &Segment, tokens: &mut Vec<Token>, errors: &mut Vec<LexError>) -> Span {
    let mut cur = Cursor {
        rest: &seg.text,
        line: seg.first_line,
        col: 1,
        file: seg.file,
    };
    let mut doc: Option<String> = None;
    while let Some(c) = cur.rest.chars().next() {
        if c.is_whitespace() {
            cur.advance(c.len_utf8());
            continue;
        }
        let span = cur.span();
        if cur.rest.starts_with("/*") {
            let end = cur.rest[2..].find("*/").map(|e| e + 4);
            let len = end.unwrap_or(cur.rest.len());
            let text = cur.advance(len);
            if end.is_none() {
                errors.push(LexError {
                    span: span.clone(),
                    message: "EOF in comment".into(),
                    warning: true,
                });
            }
            if let Some(body) = text.strip_prefix("/**") {
                if !body.starts_with('/') || body.len() > 1 {
                    doc = Some(clean_block_doc(body.trim_end_matches("*/")));
                }
            }
            continue;
        }
        if cur.rest.starts_with("//") {
            let len = cur.rest.find('\n').unwrap_or(cur.rest.len());
            let text = cur.advance(len);
            if let Some(body) = text.strip_prefix("///") {
                if !body.starts_with('/') {
                    let line = body.strip_prefix(' ').unwrap_or(body).trim_end();
                    doc = Some(match doc.take() {
                        Some(prev) => format!("{prev}\n{line}"),
                        None => line.to_string(),
                    });
                }
            }
            continue;
        }
        let (tok, len, escaped) = next_token(cur.rest, &span, errors);
        cur.advance(len);
        tokens.push(Token {
            tok,
            span,
            escaped,
            doc: doc.take(),
        });
    }
    cur.span()
}

fn clean_block_doc(body: &str) -> String {
    // A comment closed with `**/` leaves a lone `*` at its end (`/** Text. **/`).
    let trimmed = body.trim_end();
    let stars = trimmed.len() - trimmed.trim_end_matches('*').len();
    let before = &trimmed[..trimmed.len() - stars];
    let body = if stars > 0 && (before.is_empty() || before.ends_with(char::is_whitespace)) {
        before
    } else {
        body
    };
    let lines: Vec<&str> = body
        .lines()
        .map(|l| {
            let t = l.trim();
            let t = t.strip_prefix('*').unwrap_or(t);
            t.strip_prefix(' ').unwrap_or(t).trim_end()
        })
        .collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(0);
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map(|e| e + 1)
        .unwrap_or(0);
    lines[start..end.max(start)].join("\n")
}

fn ident_part(input: &str) -> IResult<&str, &str> {
    recognize(pair(
        opt(char('\\')),
        pair(
            take_while1(|c: char| c.is_ascii_alphabetic() || c == '_'),
            take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
        ),
    ))
    .parse(input)
}

/// `((::)?\\?[alpha_][alnum_]*)+`, as Slice's scanner defines an identifier.
fn identifier(input: &str) -> IResult<&str, &str> {
    recognize(nom::multi::many1_count(pair(opt(tag("::")), ident_part))).parse(input)
}

fn sign(input: &str) -> IResult<&str, Option<char>> {
    opt(one_of("+-")).parse(input)
}

fn exponent(input: &str) -> IResult<&str, &str> {
    recognize((one_of("eE"), opt(one_of("+-")), digit1)).parse(input)
}

fn float_literal(input: &str) -> IResult<&str, &str> {
    let fractional = alt((
        recognize((digit0, char('.'), digit1)),
        recognize(pair(digit1, char('.'))),
    ));
    recognize((
        sign,
        alt((
            recognize(pair(fractional, opt(exponent))),
            recognize(pair(digit1, exponent)),
        )),
        opt(one_of("fF")),
    ))
    .parse(input)
}

/// Slice's `(0[0-7]+)|(0x[0-9a-f]+)|([0-9]+)` with flex's longest match: the decimal form always
/// covers the octal one, so `019` is one literal (whose value is 1, as `strtoll` reads it).
fn integer_literal(input: &str) -> IResult<&str, &str> {
    recognize(pair(
        sign,
        alt((recognize(preceded(tag_no_case("0x"), hex_digit1)), digit1)),
    ))
    .parse(input)
}

/// The value of an integer literal, read as C's `strtoll` with base 0 reads it (which Slice uses):
/// `0x` is hexadecimal, a leading `0` octal, and reading stops at the first digit that does not
/// belong to the base (`09` is 0). `None` on overflow.
pub fn integer_value(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) =
        if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, hex)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    let mut magnitude: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        magnitude = magnitude.checked_mul(radix as u64)?.checked_add(d as u64)?;
    }
    if neg {
        if magnitude == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|v| -v)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

fn next_token(input: &str, span: &Span, errors: &mut Vec<LexError>) -> (Tok, usize, bool) {
    // Metadata brackets.
    for (text, tok) in [
        ("[[", Tok::GlobalMetaOpen),
        ("]]", Tok::GlobalMetaClose),
        ("[", Tok::MetaOpen),
        ("]", Tok::MetaClose),
    ] {
        if input.starts_with(text) {
            return (tok, text.len(), false);
        }
    }
    if input.starts_with('"') {
        return lex_string(input, span, errors);
    }
    // Numbers: the longest of a floating or integer literal (signs included, as in Slice).
    let float = float_literal(input)
        .ok()
        .map(|(rest, t)| (input.len() - rest.len(), t));
    let int = integer_literal(input)
        .ok()
        .map(|(rest, t)| (input.len() - rest.len(), t));
    match (float, int) {
        (Some((fl, text)), Some((il, _))) if fl > il => {
            let body = text.trim_end_matches(['f', 'F']);
            let value: f64 = body.parse().unwrap_or(0.0);
            if value.is_infinite() {
                errors.push(LexError {
                    span: span.clone(),
                    message: format!("floating-point constant `{text}' too large (overflow)"),
                    warning: false,
                });
            }
            return (Tok::Float(value, text.to_string()), fl, false);
        }
        (Some((fl, text)), None) => {
            let value: f64 = text.trim_end_matches(['f', 'F']).parse().unwrap_or(0.0);
            return (Tok::Float(value, text.to_string()), fl, false);
        }
        (_, Some((il, text))) => {
            let value = match integer_value(text) {
                Some(v) => v,
                None => {
                    errors.push(LexError {
                        span: span.clone(),
                        message: format!("integer constant `{text}' out of range"),
                        warning: false,
                    });
                    // The value saturates, as strtoll's does.
                    if text.starts_with('-') {
                        i64::MIN
                    } else {
                        i64::MAX
                    }
                }
            };
            return (Tok::Int(Some(value), text.to_string()), il, false);
        }
        (None, None) => {}
    }
    if let Ok((rest, text)) = identifier(input) {
        let len = input.len() - rest.len();
        let escaped = text.starts_with('\\');
        let scoped = text.contains("::");
        // Only a backslash at the very start escapes; one inside a scoped name stays part of
        // it (and then names nothing), as in ZeroC's scanner.
        let clean: String = text.strip_prefix('\\').unwrap_or(text).to_string();
        // Identifier followed by optional blanks and `(`.
        let after = rest.trim_start_matches([' ', '\t', '\r', '\n', '\x0b', '\x0c']);
        if after.starts_with('(') && !scoped {
            let total = input.len() - after.len() + 1;
            let tok = if escaped {
                Tok::IdentOp(clean)
            } else if let Some(kw) = keyword_of(&clean) {
                if kw == "optional" {
                    Tok::OptionalOp
                } else {
                    Tok::KeywordOp(kw.to_string())
                }
            } else {
                Tok::IdentOp(clean)
            };
            return (tok, total, escaped);
        }
        if scoped {
            return (Tok::Scoped(clean), len, escaped);
        }
        if !escaped {
            if let Some(kw) = keyword_of(&clean) {
                return (Tok::Keyword(kw), len, false);
            }
        }
        return (Tok::Ident(clean), len, escaped);
    }
    let c = input.chars().next().unwrap_or('\0');
    let len = c.len_utf8();
    if "{}()<>,;=*".contains(c) {
        return (Tok::Punct(c), len, false);
    }
    (Tok::Illegal(c), len, false)
}

/// The keyword an identifier spells, if any.
pub fn keyword_of(ident: &str) -> Option<&'static str> {
    KEYWORDS.iter().find(|k| **k == ident).copied()
}

fn lex_string(input: &str, span: &Span, errors: &mut Vec<LexError>) -> (Tok, usize, bool) {
    let mut value = String::new();
    let mut chars = input.char_indices().skip(1).peekable();
    let mut end = input.len();
    // Errors point at the backslash of the escape they concern.
    let mut at = span.clone();
    let mut err = |at: &Span, message: String, warning: bool| {
        errors.push(LexError {
            span: at.clone(),
            message,
            warning,
        })
    };
    let mut closed = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                end = i + 1;
                closed = true;
                break;
            }
            '\n' => {
                err(
                    &at,
                    "a string literal can only contain printable ASCII characters and non-ASCII characters".into(),
                    false,
                );
                end = i;
                closed = true;
                break;
            }
            c if crate::preprocess::raw_byte(c).is_some() => {
                // A cut-short sequence after a valid lead byte passes, as in ZeroC's compilers;
                // a byte that cannot start a sequence does not.
                let b = crate::preprocess::raw_byte(c).unwrap_or(0);
                if !(0xc2..=0xf4).contains(&b) {
                    let mut bad = span.clone();
                    bad.column = span.column + input[..i].chars().count();
                    err(&bad, "a string literal must be valid UTF-8".into(), false);
                }
            }
            c if (c as u32) < 32 || c as u32 == 127 => {
                err(
                    &at,
                    "a string literal can only contain printable ASCII characters and non-ASCII characters".into(),
                    false,
                );
            }
            '\\' => {
                at.column = span.column + input[..i].chars().count();
                let Some((_, n)) = chars.next() else { break };
                match n {
                    '\\' => value.push('\\'),
                    '"' | '\'' | '?' => value.push(n),
                    'a' => value.push('\x07'),
                    'b' => value.push('\x08'),
                    'f' => value.push('\x0c'),
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    'v' => value.push('\x0b'),
                    '0'..='7' => {
                        let mut digits = n.to_string();
                        while digits.len() < 3 {
                            match chars.peek() {
                                Some((_, d)) if d.is_digit(8) => {
                                    digits.push(*d);
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        let v = u32::from_str_radix(&digits, 8).unwrap_or(0);
                        if v > 255 {
                            err(
                                &at,
                                format!("octal escape sequence out of range: `\\{digits}'"),
                                false,
                            );
                        }
                        value.push(char::from_u32(v & 0xff).unwrap_or('\0'));
                    }
                    'x' => {
                        let mut digits = String::new();
                        while digits.len() < 2 {
                            match chars.peek() {
                                Some((_, d)) if d.is_ascii_hexdigit() => {
                                    digits.push(*d);
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        if digits.is_empty() {
                            err(&at, "no hex digit in hex escape sequence".into(), false);
                        }
                        let v = u32::from_str_radix(&digits, 16).unwrap_or(0);
                        value.push(char::from_u32(v).unwrap_or('\0'));
                    }
                    'u' | 'U' => {
                        let size = if n == 'u' { 4 } else { 8 };
                        let mut digits = String::new();
                        let mut ok = true;
                        while digits.len() < size {
                            match chars.peek() {
                                Some((_, d)) if d.is_ascii_hexdigit() => {
                                    digits.push(*d);
                                    chars.next();
                                }
                                other => {
                                    let next =
                                        other.map(|(_, c)| c.to_string()).unwrap_or_default();
                                    err(
                                        &at,
                                        format!(
                                            "unknown escape sequence in string literal: `\\{n}{digits}{next}'"
                                        ),
                                        false,
                                    );
                                    ok = false;
                                    break;
                                }
                            }
                        }
                        if ok {
                            let cp = u32::from_str_radix(&digits, 16).unwrap_or(0);
                            if cp > 0x10ffff {
                                err(
                                    &at,
                                    format!(
                                        "universal character name `\\{n}{digits}' is beyond the last code point"
                                    ),
                                    false,
                                );
                            } else if (0xd800..=0xdfff).contains(&cp) {
                                err(
                                    &at,
                                    format!(
                                        "a universal character name cannot designate a surrogate: `\\{n}{digits}'"
                                    ),
                                    false,
                                );
                            } else if let Some(ch) = char::from_u32(cp) {
                                value.push(ch);
                            }
                        }
                    }
                    other => {
                        err(&at, format!("unknown escape sequence `\\{other}'"), true);
                        value.push('\\');
                        value.push(other);
                    }
                }
            }
            c => value.push(c),
        }
    }
    if !closed {
        err(span, "EOF in string".into(), false);
    }
    (Tok::Str(value, input[..end].to_string()), end, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        let seg = Segment {
            file: 0,
            first_line: 1,
            text: text.to_string(),
        };
        lex(&[seg]).0.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn identifiers_keywords_and_operations() {
        assert_eq!(
            toks("module \\module Foo::Bar op ( optional(1)"),
            vec![
                Tok::Keyword("module"),
                Tok::Ident("module".into()),
                Tok::Scoped("Foo::Bar".into()),
                Tok::IdentOp("op".into()),
                Tok::OptionalOp,
                Tok::Int(Some(1), "1".into()),
                Tok::Punct(')'),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers_take_their_sign() {
        assert_eq!(
            toks("-5 0x1F 017 1.5e3f 9223372036854775808"),
            vec![
                Tok::Int(Some(-5), "-5".into()),
                Tok::Int(Some(31), "0x1F".into()),
                Tok::Int(Some(15), "017".into()),
                Tok::Float(1500.0, "1.5e3f".into()),
                Tok::Int(Some(i64::MAX), "9223372036854775808".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_unescape() {
        assert_eq!(
            toks(r#""a\tb\x41\101\u00e9""#),
            vec![
                Tok::Str("a\tbAAé".into(), r#""a\tb\x41\101\u00e9""#.into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn doc_comments_attach_to_the_next_token() {
        let seg = Segment {
            file: 0,
            first_line: 1,
            text: "/** Hello\n * world */\nmodule".into(),
        };
        let (tokens, _) = lex(&[seg]);
        assert_eq!(tokens[0].doc.as_deref(), Some("Hello\nworld"));
        assert_eq!(tokens[0].span.line, 3);
    }

    #[test]
    fn doc_comments_closed_with_two_stars_keep_no_star() {
        for (text, doc) in [
            ("/** A sequence of bools. **/ x", "A sequence of bools."),
            ("/**\n * Text.\n **/ x", "Text."),
            ("/** Matches Ice.Trace.* */ x", "Matches Ice.Trace.*"),
        ] {
            let seg = Segment {
                file: 0,
                first_line: 1,
                text: text.into(),
            };
            let (tokens, _) = lex(&[seg]);
            assert_eq!(tokens[0].doc.as_deref(), Some(doc), "{text:?}");
        }
    }
}
