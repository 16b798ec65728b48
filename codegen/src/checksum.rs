//! Slice checksums, as `slice2py --checksum` and `slice2cpp --checksum` compute them: for every
//! non-local type and constant the top-level file defines, the MD5 of a canonical text of its
//! definition, written as each digest byte in lowercase hex without leading zeros (ZeroC's
//! format, which `Ice::SliceChecksumDict` carries). Two programs built from Slice that differ in
//! a definition disagree on its checksum; ZeroC's `Ice/checksum` test checks exactly that.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

use crate::ast::{Ast, Builtin, ConstValue, NodeId, NodeKind, Type};

/// The checksums of the definitions of the top-level file, by scoped name.
pub fn checksums(ast: &Ast) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, node) in ast.nodes.iter().enumerate() {
        if !node.top_level || node.dummy {
            continue;
        }
        if let Some(text) = canonical(ast, NodeId(i)) {
            out.insert(node.scoped.clone(), digest_hex(&text));
        }
    }
    out
}

/// The Rust items that register the checksums of the top-level file with the runtime
/// (`floe::slice_checksums()`), appended to the generated code by `slice2rs --checksum`.
pub fn rust_items(ast: &Ast) -> String {
    let mut out = String::from("\n// Slice checksums (`--checksum`).\n");
    for (type_id, checksum) in checksums(ast) {
        out.push_str(&format!(
            "::floe::codegen::inventory::submit! {{ ::floe::codegen::SliceChecksum {{ type_id: {type_id:?}, checksum: {checksum:?} }} }}\n"
        ));
    }
    out
}

/// Each byte of the MD5 digest as `%x`: lowercase hex, no leading zero.
fn digest_hex(text: &[u8]) -> String {
    Md5::digest(text).iter().map(|b| format!("{b:x}")).collect()
}

/// The text ZeroC hashes for a definition, or `None` for what it does not checksum (modules,
/// declarations, local definitions, members).
fn canonical(ast: &Ast, id: NodeId) -> Option<Vec<u8>> {
    let node = &ast.nodes[id.0];
    let mut s = String::new();
    match &node.kind {
        NodeKind::ClassDef {
            interface,
            compact_id,
            bases,
            ..
        } => {
            if node.local {
                return None;
            }
            s.push_str(if *interface { "interface " } else { "class " });
            s.push_str(&node.name);
            if *compact_id >= 0 {
                s.push_str(&format!("({compact_id})"));
            }
            let mut rest: &[NodeId] = bases;
            if let Some(first) = bases.first() {
                if !is_interface(ast, *first) {
                    s.push_str(" extends ");
                    s.push_str(&ast.nodes[first.0].scoped);
                    rest = &bases[1..];
                }
            }
            if !rest.is_empty() {
                s.push_str(if *interface {
                    " extends "
                } else {
                    " implements "
                });
                let names: Vec<&str> = rest
                    .iter()
                    .map(|b| ast.nodes[b.0].scoped.as_str())
                    .collect();
                s.push_str(&names.join(", "));
            }
            s.push('\n');
            members(ast, id, true, &mut s);
            for op in children(ast, id) {
                if let NodeKind::Operation {
                    ret,
                    ret_optional,
                    ret_tag,
                    throws,
                    ..
                } = &ast.nodes[op.0].kind
                {
                    operation(ast, op, ret, *ret_optional, *ret_tag, throws, &mut s);
                }
            }
        }
        NodeKind::Exception { base } => {
            if node.local {
                return None;
            }
            s.push_str("exception ");
            s.push_str(&node.name);
            if let Some(b) = base {
                s.push_str(" extends ");
                s.push_str(&ast.nodes[b.0].scoped);
            }
            s.push('\n');
            members(ast, id, true, &mut s);
        }
        NodeKind::Struct => {
            if node.local {
                return None;
            }
            s.push_str("struct ");
            s.push_str(&node.name);
            s.push('\n');
            members(ast, id, false, &mut s);
        }
        NodeKind::Sequence { element, .. } => {
            if node.local {
                return None;
            }
            s.push_str(&format!(
                "sequence<{}> {}\n",
                type_name(ast, Some(*element)),
                node.name
            ));
        }
        NodeKind::Dictionary { key, value } => {
            if node.local {
                return None;
            }
            s.push_str(&format!(
                "dictionary<{}, {}> {}\n",
                type_name(ast, Some(*key)),
                type_name(ast, Some(*value)),
                node.name
            ));
        }
        NodeKind::Enum { explicit_value, .. } => {
            if node.local {
                return None;
            }
            s.push_str("enum ");
            s.push_str(&node.name);
            s.push('\n');
            let mut enumerators: Vec<(i64, &str)> = children(ast, id)
                .filter_map(|e| match ast.nodes[e.0].kind {
                    NodeKind::Enumerator { value } => Some((value, ast.nodes[e.0].name.as_str())),
                    _ => None,
                })
                .collect();
            if *explicit_value {
                // A stable sort by value, as ZeroC's list sort.
                enumerators.sort_by_key(|(v, _)| *v);
                for (v, name) in enumerators {
                    s.push_str(&format!("{name} {v}\n"));
                }
            } else {
                for (_, name) in enumerators {
                    s.push_str(name);
                    s.push('\n');
                }
            }
        }
        NodeKind::Const { ty, value, literal } => {
            let mut line =
                format!("const {} {} = ", type_name(ast, Some(*ty)), node.name).into_bytes();
            line.extend(const_text(ast, value, literal));
            line.push(b'\n');
            return Some(line);
        }
        _ => return None,
    }
    Some(s.into_bytes())
}

fn children<'a>(ast: &'a Ast, id: NodeId) -> impl Iterator<Item = NodeId> + 'a {
    ast.nodes[id.0].contents.iter().copied()
}

fn is_interface(ast: &Ast, id: NodeId) -> bool {
    matches!(
        ast.nodes[id.0].kind,
        NodeKind::ClassDef {
            interface: true,
            ..
        } | NodeKind::ClassDecl {
            interface: true,
            ..
        }
    )
}

/// Data members: the required ones a line each, then the optional ones by tag, with neither
/// a line end nor a separator between them (ZeroC writes them so). Structs have no optional
/// members.
fn members(ast: &Ast, id: NodeId, with_optionals: bool, s: &mut String) {
    let mut optionals: Vec<(i32, String)> = Vec::new();
    for m in children(ast, id) {
        if let NodeKind::DataMember {
            ty, optional, tag, ..
        } = &ast.nodes[m.0].kind
        {
            let name = &ast.nodes[m.0].name;
            if *optional && with_optionals {
                optionals.push((*tag, format!("{} {tag} {name}", type_name(ast, Some(*ty)))));
            } else {
                s.push_str(&format!("{} {name}\n", type_name(ast, Some(*ty))));
            }
        }
    }
    optionals.sort_by_key(|(tag, _)| *tag);
    for (_, text) in optionals {
        s.push_str(&text);
    }
}

/// One operation's line: `ret [tag] name(params) [throws …]`, required parameters first in
/// their order, then the optional ones by tag. A comma goes before each required parameter
/// but the operation's very first (even when that first one is optional and so written later),
/// and before each optional one unless it is the first written and all are optional.
fn operation(
    ast: &Ast,
    op: NodeId,
    ret: &Option<Type>,
    ret_optional: bool,
    ret_tag: i32,
    throws: &[NodeId],
    s: &mut String,
) {
    s.push_str(&type_name(ast, *ret));
    s.push(' ');
    if ret_optional {
        s.push_str(&format!("{ret_tag} "));
    }
    s.push_str(&ast.nodes[op.0].name);
    s.push('(');
    let params: Vec<NodeId> = children(ast, op)
        .filter(|p| matches!(ast.nodes[p.0].kind, NodeKind::Param { .. }))
        .collect();
    let mut optionals: Vec<(i32, String)> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let NodeKind::Param {
            ty,
            out,
            optional,
            tag,
        } = &ast.nodes[p.0].kind
        else {
            continue;
        };
        let name = &ast.nodes[p.0].name;
        let out = if *out { "out " } else { "" };
        if *optional {
            optionals.push((
                *tag,
                format!("{out}{} {tag} {name}", type_name(ast, Some(*ty))),
            ));
        } else {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("{out}{} {name}", type_name(ast, Some(*ty))));
        }
    }
    optionals.sort_by_key(|(tag, _)| *tag);
    let all_optional = params.len() == optionals.len();
    for (i, (_, text)) in optionals.iter().enumerate() {
        if i > 0 || !all_optional {
            s.push_str(", ");
        }
        s.push_str(text);
    }
    s.push(')');
    if !throws.is_empty() {
        s.push_str(" throws ");
        let names: Vec<&str> = throws
            .iter()
            .map(|t| ast.nodes[t.0].scoped.as_str())
            .collect();
        s.push_str(&names.join(", "));
    }
    s.push('\n');
}

/// A type as ZeroC's checksum names it (`boolean` for `bool`; `void` for no type).
fn type_name(ast: &Ast, ty: Option<Type>) -> String {
    match ty {
        None => "void".into(),
        Some(Type::Builtin(b)) => match b {
            Builtin::Bool => "boolean".into(),
            other => other.name().into(),
        },
        Some(Type::Named(id)) => ast.nodes[id.0].scoped.clone(),
        Some(Type::Proxy(id)) => format!("{}*", ast.nodes[id.0].scoped),
    }
}

/// A constant's value as ZeroC keeps it: an integer in decimal, a floating-point number as C++
/// prints a `double` by default, a string as its lexer leaves it ([`zeroc_string`]),
/// `true`/`false`, an enumerator as written.
fn const_text(ast: &Ast, value: &ConstValue, literal: &str) -> Vec<u8> {
    match value {
        ConstValue::Bool(b) => b.to_string().into_bytes(),
        ConstValue::Int(i) => i.to_string().into_bytes(),
        ConstValue::Float(f, _) => cpp_double(*f).into_bytes(),
        ConstValue::Str(s) => match literal.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
            Some(written) => zeroc_string(written),
            None => s.clone().into_bytes(),
        },
        ConstValue::Enumerator(id) => {
            let written = literal.trim();
            if written.is_empty() {
                ast.nodes[id.0].name.clone().into_bytes()
            } else {
                written.as_bytes().to_vec()
            }
        }
    }
}

/// A string literal's text as ZeroC's lexer leaves it for the checksum: the simple escapes,
/// octal (up to three digits) and hex (up to two) escapes become the bytes they stand for, while `\\` stays two backslashes and
/// `\u`/`\U` escapes stay as written (the language mappings expand them later).
fn zeroc_string(written: &str) -> Vec<u8> {
    let b = written.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let next = b[i + 1];
        let simple = match next {
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'f' => Some(0x0c),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'?' => Some(b'?'),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
        } else if next.is_ascii_digit() && next < b'8' {
            let mut j = i + 1;
            let mut v: u32 = 0;
            while j < b.len() && j < i + 4 && (b'0'..b'8').contains(&b[j]) {
                v = v * 8 + u32::from(b[j] - b'0');
                j += 1;
            }
            out.push(v as u8);
            i = j;
        } else if next == b'x' {
            let mut j = i + 2;
            let mut v: u32 = 0;
            while j < b.len() && j < i + 4 && b[j].is_ascii_hexdigit() {
                v = v.wrapping_mul(16) + (b[j] as char).to_digit(16).unwrap_or(0);
                j += 1;
            }
            out.push(v as u8);
            i = j;
        } else {
            // `\\`, `\u…`, `\U…` and anything else: kept as written.
            out.push(b'\\');
            out.push(next);
            i += 2;
        }
    }
    out
}

/// `std::ostream << double` with the default flags: `%g` with 6 significant digits.
fn cpp_double(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    const PRECISION: i32 = 6;
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= PRECISION {
        let mantissa = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (PRECISION - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_cpp_streams_do() {
        assert_eq!(cpp_double(1500.0), "1500");
        assert_eq!(cpp_double(1.5), "1.5");
        assert_eq!(cpp_double(3.14159265), "3.14159");
        assert_eq!(cpp_double(1e10), "1e+10");
        assert_eq!(cpp_double(1.25e-5), "1.25e-05");
        assert_eq!(cpp_double(123456789.0), "1.23457e+08");
        assert_eq!(cpp_double(0.0001), "0.0001");
        assert_eq!(cpp_double(-2.5), "-2.5");
    }

    #[test]
    fn digests_drop_leading_zeros_per_byte() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e; 0x0b, 0x04, 0x09 and 0x08 lose their zero.
        assert_eq!(digest_hex(b""), "d41d8cd98f0b24e980998ecf8427e");
    }
}
