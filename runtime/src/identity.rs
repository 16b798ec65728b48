//! [`Identity`], the name of an Ice object, and its stringified form (ice-wire.md §20.1).
//!
//! The escaping helpers are public because facets and adapter ids in proxy strings use the
//! same rules.

use std::fmt;
use std::str::FromStr;

use crate::encoding::{InputStream, OutputStream, SliceType};
use crate::error::Error;

/// The identity of an Ice object: a name and an optional category (`Ice::Identity`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The name; never empty in a valid proxy.
    pub name: String,
    /// The category; may be empty.
    pub category: String,
}

impl Identity {
    /// An identity with the given name and category.
    pub fn new(name: impl Into<String>, category: impl Into<String>) -> Self {
        Identity {
            name: name.into(),
            category: category.into(),
        }
    }

    /// The stringified identity in the given mode: `category/name`, or `name` when the
    /// category is empty, each part escaped.
    pub fn to_string_mode(&self, mode: ToStringMode) -> String {
        if self.category.is_empty() {
            escape_string(&self.name, "/", mode)
        } else {
            format!(
                "{}/{}",
                escape_string(&self.category, "/", mode),
                escape_string(&self.name, "/", mode)
            )
        }
    }
}

impl SliceType for Identity {
    const MIN_WIRE_SIZE: usize = 2;
    fn encode(&self, os: &mut OutputStream) {
        os.write_string(&self.name);
        os.write_string(&self.category);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        let name = is.read_string()?;
        let category = is.read_string()?;
        Ok(Identity { name, category })
    }
}

impl fmt::Display for Identity {
    /// The stringified identity in the default (`Unicode`) mode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_mode(ToStringMode::Unicode))
    }
}

impl FromStr for Identity {
    type Err = Error;

    /// Parses a stringified identity: splits at the first unescaped `/` (a second one is an
    /// error) and unescapes both parts.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bytes = s.as_bytes();
        let mut slash = None;
        for (pos, b) in bytes.iter().enumerate() {
            if *b != b'/' {
                continue;
            }
            let escapes = bytes[..pos]
                .iter()
                .rev()
                .take_while(|c| **c == b'\\')
                .count();
            if escapes % 2 == 0 {
                if slash.is_some() {
                    return Err(Error::IdentityParse(format!(
                        "unescaped '/' in identity `{s}'"
                    )));
                }
                slash = Some(pos);
            }
        }
        let parse = |part: &str| {
            unescape_string(part, "/")
                .map_err(|e| Error::IdentityParse(format!("invalid identity `{s}': {e}")))
        };
        match slash {
            None => Ok(Identity {
                name: parse(s)?,
                category: String::new(),
            }),
            Some(i) => Ok(Identity {
                category: parse(&s[..i])?,
                name: parse(&s[i + 1..])?,
            }),
        }
    }
}

/// How non-printable and non-ASCII characters are written in stringified identities and
/// proxies (Ice's `Ice.ToStringMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ToStringMode {
    /// Non-ASCII characters are kept as they are (Ice's default).
    #[default]
    Unicode,
    /// Non-ASCII characters become `\uXXXX` or `\UXXXXXXXX`.
    Ascii,
    /// Compatible with Ice 3.6 and earlier: octal escapes for every non-ASCII byte.
    Compat,
}

/// Escapes `s` as Ice does: backslash, quotes and control characters, plus every character of
/// `special` (printable ASCII) prefixed with a backslash.
pub fn escape_string(s: &str, special: &str, mode: ToStringMode) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\u{7}' if mode == ToStringMode::Compat => out.push_str("\\007"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' if mode == ToStringMode::Compat => out.push_str("\\013"),
            '\u{b}' => out.push_str("\\v"),
            c if special.contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c if (' '..='~').contains(&c) => out.push(c),
            c if mode == ToStringMode::Compat => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:03o}"));
                }
            }
            c if (c as u32) < 32 || c as u32 == 127 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if mode == ToStringMode::Ascii => {
                if (c as u32) > 0xFFFF {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                } else {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Removes the escapes of [`escape_string`]; also accepts `\xHH`, octal `\NNN`, `\?`,
/// `\uXXXX` and `\UXXXXXXXX`. An unknown escape keeps its backslash unless the character is in
/// `special`; raw control characters are refused, and so is a result that is not UTF-8.
pub fn unescape_string(s: &str, special: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    let check = |i: usize| -> Result<u8, String> {
        let c = b[i];
        if c < 32 || c == 127 {
            Err(format!("character at {i} has invalid ordinal value {c}"))
        } else {
            Ok(c)
        }
    };
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(check(i)?);
            i += 1;
            continue;
        }
        if i + 1 == b.len() {
            out.push(b'\\');
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'\\' | b'\'' | b'"' | b'?' => out.push(c),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'u' | b'U' => {
                let digits = if c == b'u' { 4 } else { 8 };
                let hex = b.get(i..i + digits).ok_or("too few hex digits")?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err("invalid universal character name: too few hex digits".into());
                }
                let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                let ch = char::from_u32(code)
                    .ok_or_else(|| format!("invalid universal character name {code:#x}"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += digits;
            }
            b'0'..=b'7' => {
                let mut val: u32 = 0;
                let mut j = i - 1;
                while j < b.len() && j < i + 2 && (b'0'..=b'7').contains(&b[j]) {
                    val = val * 8 + u32::from(b[j] - b'0');
                    j += 1;
                }
                if val > 255 {
                    return Err(format!("octal value \\{val:o} ({val}) is out of range"));
                }
                out.push(val as u8);
                i = j;
            }
            b'x' => {
                let mut val: u32 = 0;
                let mut n = 0;
                while n < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                    val = val * 16 + (b[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    return Err("invalid \\x escape sequence: no hex digit".into());
                }
                out.push(val as u8);
            }
            _ => {
                if !special.as_bytes().contains(&c) {
                    out.push(b'\\');
                }
                out.push(check(i - 1)?);
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the unescaped string is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_strings_round_trip() {
        let id = Identity::new("a/b", "c/d");
        assert_eq!(id.to_string(), "c\\/d/a\\/b");
        assert_eq!("c\\/d/a\\/b".parse::<Identity>().unwrap(), id);
        assert!("one/two/three".parse::<Identity>().is_err());
        assert_eq!("\\x41\\102C".parse::<Identity>().unwrap().name, "ABC");
        assert_eq!("a\\qb".parse::<Identity>().unwrap().name, "a\\qb");
        assert!("a\u{1}b".parse::<Identity>().is_err());
        assert!("\\u00".parse::<Identity>().is_err());
        assert!("\\777".parse::<Identity>().is_err());
        assert!(
            "\\377".parse::<Identity>().is_err(),
            "a lone 0xFF byte is not UTF-8"
        );
        assert_eq!("trailing\\".parse::<Identity>().unwrap().name, "trailing\\");
    }
}
