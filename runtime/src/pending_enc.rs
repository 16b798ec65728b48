//! The identity type used by the network layer until the encoding layer's own
//! definitions are merged; then this module goes away and its users import those instead.

use crate::error::{Error, Result};

/// An Ice object identity: a name and a category.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Identity {
    /// The name; never empty in a proxy.
    pub name: String,
    /// The category; may be empty.
    pub category: String,
}

impl Identity {
    /// An identity from its name and category.
    pub fn new(name: impl Into<String>, category: impl Into<String>) -> Self {
        Identity {
            name: name.into(),
            category: category.into(),
        }
    }
}

/// `identityToString` in Ice's default (Unicode) mode.
pub fn identity_to_string(id: &Identity) -> String {
    if id.category.is_empty() {
        escape(&id.name)
    } else {
        format!("{}/{}", escape(&id.category), escape(&id.name))
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 32 || c as u32 == 127 => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// `stringToIdentity`: splits at the first unescaped `/` and unescapes both parts.
pub fn string_to_identity(s: &str) -> Result<Identity> {
    let bytes: Vec<char> = s.chars().collect();
    let mut slash = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            '\\' => i += 1,
            '/' if slash.is_none() => slash = Some(i),
            '/' => {
                return Err(Error::ProxyParse(format!(
                    "unescaped '/' in identity `{s}`"
                )));
            }
            _ => {}
        }
        i += 1;
    }
    match slash {
        None => Ok(Identity {
            name: unescape(s)?,
            category: String::new(),
        }),
        Some(pos) => {
            let cat: String = bytes[..pos].iter().collect();
            let name: String = bytes[pos + 1..].iter().collect();
            Ok(Identity {
                name: unescape(&name)?,
                category: unescape(&cat)?,
            })
        }
    }
}

/// Unescapes a string with Ice's escapes (see ice-wire.md §20.1).
pub fn unescape(s: &str) -> Result<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    let mut i = 0;
    let bad = |m: &str| Error::ProxyParse(format!("{m} in `{s}`"));
    while i < chars.len() {
        let c = chars[i];
        if (c as u32) < 32 || c as u32 == 127 {
            return Err(bad("control character"));
        }
        if c != '\\' {
            let mut b = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            i += 1;
            continue;
        }
        i += 1;
        let Some(&e) = chars.get(i) else {
            return Err(bad("unmatched escape"));
        };
        i += 1;
        let simple = match e {
            '\\' | '\'' | '"' | '?' | '/' => Some(e as u8),
            'a' => Some(7),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(10),
            'r' => Some(13),
            't' => Some(9),
            'v' => Some(11),
            _ => None,
        };
        if let Some(b) = simple {
            bytes.push(b);
            continue;
        }
        match e {
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let hex: String = chars
                    .get(i..i + n)
                    .ok_or_else(|| bad("short unicode escape"))?
                    .iter()
                    .collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad("bad unicode escape"))?;
                let ch = char::from_u32(v).ok_or_else(|| bad("bad unicode escape"))?;
                let mut b = [0u8; 4];
                bytes.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                i += n;
            }
            'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < chars.len() && chars[i].is_ascii_hexdigit() {
                    v = v * 16 + chars[i].to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    return Err(bad("bad hex escape"));
                }
                bytes.push(v as u8);
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                let mut n = 1;
                while n < 3 && i < chars.len() && ('0'..='7').contains(&chars[i]) {
                    v = v * 8 + chars[i].to_digit(8).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if v > 255 {
                    return Err(bad("octal escape out of range"));
                }
                bytes.push(v as u8);
            }
            other => {
                bytes.push(b'\\');
                let mut b = [0u8; 4];
                bytes.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| bad("escapes do not form UTF-8"))
}
