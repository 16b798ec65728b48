//! Distinguished names as IceSSL prints and matches them, and the trust manager of
//! `IceSSL.TrustOnly*`.
//!
//! A certificate's subject is written the way ZeroC's OpenSSL build writes it (RFC 2253, most
//! specific attribute first, OpenSSL's short attribute names: `CN=client,OU=Ice,O=ZeroC,C=US`),
//! and a `TrustOnly` value is a list of such names separated by `;`, each possibly prefixed by
//! `!` (reject). A name matches a subject when every attribute it lists appears in the subject
//! with exactly that value; the subject may have more attributes.

use std::fmt;

use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::error::{Error, Result};
use crate::properties::Properties;

/// A distinguished name: (attribute, value) pairs, values unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DistinguishedName(pub Vec<(String, String)>);

impl DistinguishedName {
    /// Whether every attribute of `pattern` is in `self`, each occurrence with the pattern's
    /// value.
    pub fn matches(&self, pattern: &DistinguishedName) -> bool {
        pattern.0.iter().all(|(k, v)| {
            let mut found = false;
            for (sk, sv) in &self.0 {
                if sk == k {
                    if sv != v {
                        return false;
                    }
                    found = true;
                }
            }
            found
        })
    }

    /// The subject of a DER certificate; `None` when it cannot be read.
    pub fn subject_of(der: &[u8]) -> Option<DistinguishedName> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some(Self::from_x509(cert.subject()))
    }

    /// The issuer of a DER certificate; `None` when it cannot be read.
    pub fn issuer_of(der: &[u8]) -> Option<DistinguishedName> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some(Self::from_x509(cert.issuer()))
    }

    fn from_x509(name: &X509Name<'_>) -> DistinguishedName {
        let mut pairs = Vec::new();
        // RFC 2253 order: the last RDN of the encoding first.
        let rdns: Vec<_> = name.iter().collect();
        for rdn in rdns.into_iter().rev() {
            let mut first: Option<(String, String)> = None;
            for atv in rdn.iter() {
                let oid = atv.attr_type().to_id_string();
                let key = short_name(&oid).map(str::to_string).unwrap_or(oid);
                let value = match atv.as_str() {
                    Ok(s) => s.to_string(),
                    Err(_) => format!("#{}", hex(atv.attr_value().data)),
                };
                match first.as_mut() {
                    None => first = Some((key, value)),
                    // A multi-valued RDN, kept as one pair the way IceSSL's parser reads it.
                    Some((_, v)) => {
                        v.push('+');
                        v.push_str(&key);
                        v.push('=');
                        v.push_str(&value);
                    }
                }
            }
            pairs.extend(first);
        }
        DistinguishedName(pairs)
    }

    /// Parses one name (`CN=a,O=b`); `;` also separates attributes here.
    pub fn parse(s: &str) -> Result<DistinguishedName> {
        let mut p = Parser::new(s);
        let mut pairs = Vec::new();
        while !p.at_end() {
            pairs.push(p.component()?);
            p.skip_white();
            if !p.at_end() && !p.eat(',') && !p.eat(';') {
                return Err(p.error("expected `,` or `;`"));
            }
        }
        Ok(DistinguishedName(pairs))
    }
}

/// Written as RFC 2253 (OpenSSL's `XN_FLAG_RFC2253`), with the special characters escaped.
impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=")?;
            let n = v.chars().count();
            for (j, c) in v.chars().enumerate() {
                let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
                    || (j == 0 && (c == '#' || c == ' '))
                    || (j + 1 == n && c == ' ');
                if special && !v.starts_with('#') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// OpenSSL's short names of the attributes found in certificate subjects.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.41" => "name",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A `TrustOnly` entry: a name to accept, or (`!`) to reject.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    reject: bool,
    name: DistinguishedName,
}

/// Parses a `TrustOnly` value: names separated by `;`, attributes by `,`, `!` first to reject.
fn parse_rules(s: &str) -> Result<Vec<Rule>> {
    let mut p = Parser::new(s);
    let mut rules = Vec::new();
    let mut current = Rule {
        reject: false,
        name: DistinguishedName::default(),
    };
    while !p.at_end() {
        p.skip_white();
        if p.eat('!') {
            if !current.name.0.is_empty() {
                return Err(p.error("`!` must start a name"));
            }
            current.reject = true;
        }
        current.name.0.push(p.component()?);
        p.skip_white();
        if p.eat(';') {
            rules.push(std::mem::replace(
                &mut current,
                Rule {
                    reject: false,
                    name: DistinguishedName::default(),
                },
            ));
        } else if !p.at_end() && !p.eat(',') {
            return Err(p.error("expected `,` or `;`"));
        }
    }
    if !current.name.0.is_empty() {
        rules.push(current);
    }
    Ok(rules)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser { s, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_white(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> Error {
        Error::Initialization(format!(
            "invalid distinguished name `{}`: {what} at `{}`",
            self.s,
            &self.s[self.pos..]
        ))
    }

    /// `type=value`, and `+type=value` continuations folded into the value as IceSSL does.
    fn component(&mut self) -> Result<(String, String)> {
        let (key, mut value) = self.type_and_value()?;
        loop {
            self.skip_white();
            if !self.eat('+') {
                break;
            }
            let (k, v) = self.type_and_value()?;
            value.push('+');
            value.push_str(&k);
            value.push('=');
            value.push_str(&v);
        }
        Ok((key, value))
    }

    fn type_and_value(&mut self) -> Result<(String, String)> {
        self.skip_white();
        let start = self.pos;
        let oid = self.s[self.pos..].starts_with("oid.") || self.s[self.pos..].starts_with("OID.");
        if oid {
            self.pos += 4;
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let key = self.s[start..self.pos].to_string();
        if key.is_empty() || (oid && key.len() == 4) {
            return Err(self.error("expected an attribute type"));
        }
        self.skip_white();
        if !self.eat('=') {
            return Err(self.error("expected `=`"));
        }
        self.skip_white();
        let value = self.value()?;
        Ok((key, value))
    }

    fn value(&mut self) -> Result<String> {
        let mut out = String::new();
        if self.eat('"') {
            loop {
                match self.peek() {
                    None => return Err(self.error("missing closing `\"`")),
                    Some('"') => {
                        self.pos += 1;
                        return Ok(out);
                    }
                    Some('\\') => out.push(self.escaped()?),
                    Some(c) => {
                        out.push(c);
                        self.pos += c.len_utf8();
                    }
                }
            }
        }
        if self.peek() == Some('#') {
            // A hex-encoded value is compared as written.
            let start = self.pos;
            self.pos += 1;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.pos += 1;
            }
            return Ok(self.s[start..self.pos].to_string());
        }
        while let Some(c) = self.peek() {
            match c {
                '\\' => out.push(self.escaped()?),
                ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' => break,
                _ => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        // Unescaped trailing spaces are not part of the value.
        Ok(out.trim_end_matches(' ').to_string())
    }

    fn escaped(&mut self) -> Result<char> {
        self.pos += 1; // the backslash
        let rest = &self.s[self.pos..];
        let mut chars = rest.chars();
        match (chars.next(), chars.next()) {
            (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                self.pos += 2;
                let byte = u8::from_str_radix(&rest[..2], 16).unwrap_or(b'?');
                Ok(byte as char)
            }
            (Some(c), _) => {
                self.pos += c.len_utf8();
                Ok(c)
            }
            (None, _) => Err(self.error("a `\\` ends the value")),
        }
    }
}

/// The rules of `IceSSL.TrustOnly`, `IceSSL.TrustOnly.Client`, `IceSSL.TrustOnly.Server` and
/// `IceSSL.TrustOnly.Server.<Adapter>`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustManager {
    all: Vec<Rule>,
    client: Vec<Rule>,
    server: Vec<Rule>,
    adapters: Vec<(String, Vec<Rule>)>,
}

impl TrustManager {
    pub(crate) fn from_properties(props: &Properties) -> Result<TrustManager> {
        let read = |key: &str| {
            parse_rules(&props.get_property(key)).map_err(|e| match e {
                Error::Initialization(m) => Error::Initialization(format!("{key}: {m}")),
                other => other,
            })
        };
        let mut adapters = Vec::new();
        let prefix = "IceSSL.TrustOnly.Server.";
        for (key, _) in props.get_properties_for_prefix(prefix) {
            adapters.push((key[prefix.len()..].to_string(), read(&key)?));
        }
        Ok(TrustManager {
            all: read("IceSSL.TrustOnly")?,
            client: read("IceSSL.TrustOnly.Client")?,
            server: read("IceSSL.TrustOnly.Server")?,
            adapters,
        })
    }

    /// Whether a peer whose leaf certificate has this subject (`None`: no certificate) is
    /// trusted: on an outgoing connection (`adapter` is `None`) or on one accepted by `adapter`.
    /// Without rules every peer is; with rules a peer without certificate never is; a match of
    /// a reject rule refuses, then a match of an accept rule admits, and a peer that matches
    /// nothing is admitted only when there are no accept rules.
    pub(crate) fn trusts(
        &self,
        subject: Option<&DistinguishedName>,
        adapter: Option<&str>,
    ) -> bool {
        let mut sets: Vec<&[Rule]> = vec![&self.all];
        match adapter {
            None => sets.push(&self.client),
            Some(name) => {
                sets.push(&self.server);
                sets.extend(
                    self.adapters
                        .iter()
                        .filter(|(a, _)| a == name)
                        .map(|(_, r)| r.as_slice()),
                );
            }
        }
        let rules: Vec<&Rule> = sets.into_iter().flatten().collect();
        if rules.is_empty() {
            return true;
        }
        let Some(subject) = subject else {
            return false;
        };
        if rules.iter().any(|r| r.reject && subject.matches(&r.name)) {
            return false;
        }
        let mut accepts = rules.iter().filter(|r| !r.reject).peekable();
        if accepts.peek().is_none() {
            return true;
        }
        accepts.any(|r| subject.matches(&r.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> DistinguishedName {
        DistinguishedName::parse(s).unwrap()
    }

    #[test]
    fn subset_of_attributes_matches() {
        let subject = dn("CN=client,OU=Ice,O=ZeroC,L=Jupiter,ST=Florida,C=US");
        assert!(subject.matches(&dn("CN=client")));
        assert!(subject.matches(&dn("O=ZeroC, CN=client")));
        assert!(!subject.matches(&dn("CN=Client")));
        assert!(!subject.matches(&dn("CN=client,OU=Other")));
        assert!(!subject.matches(&dn("CN=client,emailAddress=x@y")));
        assert!(subject.matches(&dn("CN=\"client\"")));
    }

    #[test]
    fn escapes_and_quotes() {
        assert_eq!(dn("O=a\\,b").0, vec![("O".into(), "a,b".into())]);
        assert_eq!(dn("O=\"a,b\"").0, vec![("O".into(), "a,b".into())]);
        assert_eq!(dn("O=a\\2Cb").0, vec![("O".into(), "a,b".into())]);
        let d = DistinguishedName(vec![("O".into(), "a,b".into())]);
        assert_eq!(d.to_string(), "O=a\\,b");
        assert!(DistinguishedName::parse("O").is_err());
    }

    #[test]
    fn rules_accept_and_reject() {
        let props = Properties::new();
        props.set_property("IceSSL.TrustOnly", "CN=client; !CN=bad; CN=server,O=ZeroC");
        props.set_property("IceSSL.TrustOnly.Server.Hello", "!O=Evil");
        let tm = TrustManager::from_properties(&props).unwrap();
        assert!(tm.trusts(Some(&dn("CN=client,O=X")), None));
        assert!(tm.trusts(Some(&dn("CN=server,O=ZeroC")), None));
        assert!(!tm.trusts(Some(&dn("CN=server,O=Other")), None));
        assert!(!tm.trusts(Some(&dn("CN=bad")), None));
        assert!(!tm.trusts(None, None));
        assert!(!tm.trusts(Some(&dn("CN=client,O=Evil")), Some("Hello")));
        assert!(tm.trusts(Some(&dn("CN=client,O=Evil")), Some("Other")));

        let props = Properties::new();
        props.set_property("IceSSL.TrustOnly.Client", "!CN=bad");
        let tm = TrustManager::from_properties(&props).unwrap();
        assert!(tm.trusts(Some(&dn("CN=good")), None));
        assert!(!tm.trusts(Some(&dn("CN=bad")), None));
        assert!(
            tm.trusts(None, Some("Any")),
            "client rules do not apply to servers"
        );

        let props = Properties::new();
        props.set_property("IceSSL.TrustOnly", "CN");
        assert!(TrustManager::from_properties(&props).is_err());
        props.set_property("IceSSL.TrustOnly", "CN=a,!CN=b");
        assert!(TrustManager::from_properties(&props).is_err());
    }
}
