//! Endpoints and their string form (`tcp -h 127.0.0.1 -p 4061 -t 60000 -z`, `opaque -t 99 -e 1.0
//! -v AQIDBA==`), parsed and printed as Ice 3.7 does.
//!
//! `tcp` and `ws` endpoints carry connections and `udp` endpoints datagrams; `ssl` and `wss`
//! endpoints are parsed, printed and kept in proxies so they can be forwarded unchanged, as are
//! opaque endpoints of any type.

use std::fmt;

use crate::encoding::EncodingVersion;
use crate::error::{Error, Result};

/// Default endpoint timeout (`Ice.Default.Timeout`), in milliseconds.
pub const DEFAULT_TIMEOUT_MS: i32 = 60000;

/// The transport of an IP endpoint, with its Ice endpoint type number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (type 1).
    Tcp,
    /// TLS over TCP (type 2).
    Ssl,
    /// UDP (type 3).
    Udp,
    /// WebSocket (type 4).
    Ws,
    /// Secure WebSocket (type 5).
    Wss,
}

impl Transport {
    /// The endpoint type number on the wire.
    pub fn type_id(self) -> i16 {
        match self {
            Transport::Tcp => 1,
            Transport::Ssl => 2,
            Transport::Udp => 3,
            Transport::Ws => 4,
            Transport::Wss => 5,
        }
    }

    /// The name used in endpoint strings.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ssl => "ssl",
            Transport::Udp => "udp",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "tcp" | "default" => Transport::Tcp,
            "ssl" => Transport::Ssl,
            "udp" => Transport::Udp,
            "ws" => Transport::Ws,
            "wss" => Transport::Wss,
            _ => return None,
        })
    }
}

/// An endpoint of an IP transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpEndpoint {
    /// The transport.
    pub transport: Transport,
    /// Host name or address; empty means every interface (server) or the default host (client).
    pub host: String,
    /// Port; 0 when listening means "pick one".
    pub port: u16,
    /// Timeout in milliseconds, -1 for infinite (unused for UDP).
    pub timeout: i32,
    /// Whether requests to this endpoint ask for compression (`-z`).
    pub compress: bool,
    /// `--sourceAddress` (empty when unset).
    pub source_address: String,
    /// WebSocket resource (`-r`), `/` by default.
    pub resource: String,
    /// UDP `-c` (connected).
    pub udp_connect: bool,
    /// UDP `--ttl` (-1 when unset).
    pub ttl: i32,
    /// UDP `--interface` (empty when unset).
    pub interface: String,
}

impl IpEndpoint {
    /// A TCP endpoint with the default timeout.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        IpEndpoint {
            transport: Transport::Tcp,
            host: host.into(),
            port,
            timeout: DEFAULT_TIMEOUT_MS,
            compress: false,
            source_address: String::new(),
            resource: String::new(),
            udp_connect: false,
            ttl: -1,
            interface: String::new(),
        }
    }
}

impl IpEndpoint {
    /// The `host:port` string to connect to (`[v6]:port` for IPv6 literals); an empty host means
    /// the loopback address.
    pub fn socket_address(&self) -> String {
        let host = if self.host.is_empty() || self.host == "*" || self.host == "0.0.0.0" {
            "127.0.0.1"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// An endpoint whose type this runtime does not interpret, kept as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpaqueEndpoint {
    /// The endpoint type number.
    pub type_id: i16,
    /// The encoding of the raw bytes.
    pub encoding: EncodingVersion,
    /// The body of the endpoint encapsulation.
    pub bytes: Vec<u8>,
}

/// An endpoint of a proxy or object adapter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// tcp, ssl, udp, ws or wss.
    Ip(IpEndpoint),
    /// Any other type, kept unchanged.
    Opaque(OpaqueEndpoint),
}

impl Endpoint {
    /// Parses one endpoint string. `default_host` and `default_timeout` fill in what the string
    /// leaves out (`Ice.Default.Host`, `Ice.Default.Timeout`).
    pub fn parse(s: &str, default_host: &str, default_timeout: i32) -> Result<Endpoint> {
        let args = split_args(s)
            .ok_or_else(|| Error::EndpointParse(format!("mismatched quotes in endpoint `{s}`")))?;
        let Some(first) = args.first() else {
            return Err(Error::EndpointParse(format!(
                "value has no non-whitespace characters in `{s}`"
            )));
        };
        if first == "opaque" {
            return parse_opaque(s, &args[1..]);
        }
        let Some(transport) = Transport::from_name(first) else {
            return Err(Error::EndpointParse(format!("invalid endpoint `{s}`")));
        };
        let mut ep = IpEndpoint::tcp(String::new(), 0);
        ep.transport = transport;
        ep.timeout = default_timeout;
        if matches!(transport, Transport::Ws | Transport::Wss) {
            ep.resource = "/".into();
        }
        let mut host_set = false;
        let mut i = 1;
        let shown = format!("{}  {}", first, args[1..].join(" "));
        while i < args.len() {
            let opt = args[i].as_str();
            let arg = args.get(i + 1).filter(|a| !a.starts_with('-'));
            let need = |what: &str| -> Result<String> {
                arg.cloned().ok_or_else(|| {
                    Error::EndpointParse(format!(
                        "no argument provided for {what} option in endpoint `{shown}`"
                    ))
                })
            };
            let takes_arg;
            match opt {
                "-h" => {
                    ep.host = need("-h")?;
                    host_set = true;
                    takes_arg = true;
                }
                "-p" => {
                    let v = need("-p")?;
                    ep.port = v.parse::<u16>().map_err(|_| {
                        Error::EndpointParse(format!(
                            "port value `{v}' out of range in endpoint `{shown}`"
                        ))
                    })?;
                    takes_arg = true;
                }
                "-t" if transport != Transport::Udp => {
                    let v = need("-t")?;
                    ep.timeout = if v == "infinite" {
                        -1
                    } else {
                        match v.parse::<i32>() {
                            Ok(t) if t >= 1 => t,
                            _ => {
                                return Err(Error::EndpointParse(format!(
                                    "invalid timeout value `{v}' in endpoint `{shown}`"
                                )));
                            }
                        }
                    };
                    takes_arg = true;
                }
                "-z" => {
                    ep.compress = true;
                    takes_arg = false;
                }
                "--sourceAddress" => {
                    ep.source_address = need("--sourceAddress")?;
                    takes_arg = true;
                }
                "-r" if matches!(transport, Transport::Ws | Transport::Wss) => {
                    ep.resource = need("-r")?;
                    takes_arg = true;
                }
                "-c" if transport == Transport::Udp => {
                    ep.udp_connect = true;
                    takes_arg = false;
                }
                "--ttl" if transport == Transport::Udp => {
                    let v = need("--ttl")?;
                    ep.ttl = v.parse().map_err(|_| {
                        Error::EndpointParse(format!(
                            "invalid TTL value `{v}' in endpoint `{shown}`"
                        ))
                    })?;
                    takes_arg = true;
                }
                "--interface" if transport == Transport::Udp => {
                    ep.interface = need("--interface")?;
                    takes_arg = true;
                }
                "-v" | "-e" if transport == Transport::Udp => {
                    need(opt)?;
                    takes_arg = true;
                }
                _ => {
                    return Err(Error::EndpointParse(format!(
                        "unrecognized option `{opt}' in endpoint `{shown}`"
                    )));
                }
            }
            if !takes_arg && arg.is_some() {
                return Err(Error::EndpointParse(format!(
                    "unexpected argument `{}' provided for {opt} option in endpoint `{shown}`",
                    args[i + 1]
                )));
            }
            i += if takes_arg { 2 } else { 1 };
        }
        if !host_set {
            ep.host = default_host.to_string();
        }
        if transport == Transport::Udp {
            ep.timeout = -1;
        }
        Ok(Endpoint::Ip(ep))
    }

    /// Whether requests to this endpoint ask for compression.
    pub fn compress(&self) -> bool {
        matches!(self, Endpoint::Ip(ip) if ip.compress)
    }

    /// The endpoint type number.
    pub fn type_id(&self) -> i16 {
        match self {
            Endpoint::Ip(ip) => ip.transport.type_id(),
            Endpoint::Opaque(o) => o.type_id,
        }
    }
}

fn parse_opaque(s: &str, args: &[String]) -> Result<Endpoint> {
    let mut type_id = None;
    let mut encoding = None;
    let mut bytes = None;
    let mut i = 0;
    while i < args.len() {
        let opt = args[i].as_str();
        let arg = args.get(i + 1).ok_or_else(|| {
            Error::EndpointParse(format!(
                "no argument provided for {opt} option in endpoint `opaque {}`",
                args.join(" ")
            ))
        })?;
        match opt {
            "-t" => {
                let t: i16 = arg.parse().ok().filter(|t| *t >= 0).ok_or_else(|| {
                    Error::EndpointParse(format!("invalid type value `{arg}' in endpoint `{s}`"))
                })?;
                type_id = Some(t);
            }
            "-e" => {
                encoding = Some(parse_version(arg).map_err(|m| {
                    Error::EndpointParse(format!(
                        "invalid encoding version `{arg}' in endpoint `{s}`: {m}"
                    ))
                })?)
            }
            "-v" => {
                bytes = Some(base64_decode(arg).ok_or_else(|| {
                    Error::EndpointParse(format!("invalid base64 value `{arg}' in endpoint `{s}`"))
                })?)
            }
            _ => {
                return Err(Error::EndpointParse(format!(
                    "invalid option `{opt}' in endpoint `{s}`"
                )));
            }
        }
        i += 2;
    }
    let type_id =
        type_id.ok_or_else(|| Error::EndpointParse(format!("no -t option in endpoint `{s}`")))?;
    let bytes =
        bytes.ok_or_else(|| Error::EndpointParse(format!("no -v option in endpoint `{s}`")))?;
    let encoding = encoding.unwrap_or(EncodingVersion::V1_0);
    let opaque = OpaqueEndpoint {
        type_id,
        encoding,
        bytes,
    };
    // An opaque endpoint of a known type becomes the real endpoint.
    if type_id == 1 {
        if let Some(tcp) = decode_tcp_body(&opaque.bytes) {
            return Ok(Endpoint::Ip(tcp));
        }
    }
    Ok(Endpoint::Opaque(opaque))
}

/// Decodes the body of a TCP endpoint encapsulation (host, port, timeout, compress).
pub fn decode_tcp_body(b: &[u8]) -> Option<IpEndpoint> {
    let (&n, rest) = b.split_first()?;
    let (len, rest) = if n == 255 {
        let v = i32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        (usize::try_from(v).ok()?, &rest[4..])
    } else {
        (n as usize, rest)
    };
    let host = std::str::from_utf8(rest.get(..len)?).ok()?.to_string();
    let rest = &rest[len..];
    if rest.len() != 9 {
        return None;
    }
    let port = i32::from_le_bytes(rest[0..4].try_into().ok()?);
    let timeout = i32::from_le_bytes(rest[4..8].try_into().ok()?);
    let mut ep = IpEndpoint::tcp(host, u16::try_from(port).ok()?);
    ep.timeout = timeout;
    ep.compress = rest[8] != 0;
    Some(ep)
}

/// Parses `major.minor`.
pub fn parse_version(s: &str) -> std::result::Result<EncodingVersion, String> {
    let (a, b) = s
        .split_once('.')
        .ok_or_else(|| format!("malformed version value `{s}'"))?;
    let major: u8 = a
        .parse()
        .map_err(|_| format!("invalid major version value `{s}'"))?;
    let minor: u8 = b
        .parse()
        .map_err(|_| format!("invalid minor version value `{s}'"))?;
    Ok(EncodingVersion { major, minor })
}

fn quote_if(s: &str, chars: &[char]) -> String {
    if s.contains(chars) {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Opaque(o) => {
                write!(
                    f,
                    "opaque -t {} -e {} -v {}",
                    o.type_id,
                    o.encoding,
                    base64_encode(&o.bytes)
                )
            }
            Endpoint::Ip(ip) => {
                f.write_str(ip.transport.name())?;
                if !ip.host.is_empty() {
                    write!(f, " -h {}", quote_if(&ip.host, &[':']))?;
                }
                write!(f, " -p {}", ip.port)?;
                if !ip.source_address.is_empty() {
                    write!(
                        f,
                        " --sourceAddress {}",
                        quote_if(&ip.source_address, &[':'])
                    )?;
                }
                if ip.transport == Transport::Udp {
                    if !ip.interface.is_empty() {
                        write!(f, " --interface {}", quote_if(&ip.interface, &[':']))?;
                    }
                    if ip.ttl != -1 {
                        write!(f, " --ttl {}", ip.ttl)?;
                    }
                    if ip.udp_connect {
                        f.write_str(" -c")?;
                    }
                } else if ip.timeout == -1 {
                    f.write_str(" -t infinite")?;
                } else {
                    write!(f, " -t {}", ip.timeout)?;
                }
                if ip.compress {
                    f.write_str(" -z")?;
                }
                if matches!(ip.transport, Transport::Ws | Transport::Wss) && !ip.resource.is_empty()
                {
                    write!(f, " -r {}", quote_if(&ip.resource, &[':']))?;
                }
                Ok(())
            }
        }
    }
}

/// Splits at whitespace, honouring single and double quotes (which are removed); `None` when a
/// quote is not closed.
pub(crate) fn split_args(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(q) if c == '\\' && chars.peek() == Some(&q) => {
                cur.push(q);
                chars.next();
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_token = true;
            }
            None if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            None => {
                cur.push(c);
                in_token = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_token {
        out.push(cur);
    }
    Some(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on invalid input.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Splits an endpoint list at `:` outside quotes.
pub(crate) fn split_endpoints(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c == ':' => out.push(std::mem::take(&mut cur)),
            None => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(Error::EndpointParse(format!("mismatched quotes in `{s}`")));
    }
    out.push(cur);
    Ok(out
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &str) -> String {
        Endpoint::parse(s, "", DEFAULT_TIMEOUT_MS)
            .unwrap()
            .to_string()
    }

    #[test]
    fn prints_like_ice() {
        assert_eq!(
            round("tcp -h 127.0.0.1 -p 4061"),
            "tcp -h 127.0.0.1 -p 4061 -t 60000"
        );
        assert_eq!(
            round("tcp -h 127.0.0.1 -p 4061 -t 5000 -z"),
            "tcp -h 127.0.0.1 -p 4061 -t 5000 -z"
        );
        assert_eq!(
            round("default -h 127.0.0.1 -p 9"),
            "tcp -h 127.0.0.1 -p 9 -t 60000"
        );
        assert_eq!(round("tcp -h \"::1\" -p 9"), "tcp -h \"::1\" -p 9 -t 60000");
        assert_eq!(
            round("udp -h 127.0.0.1 -p 5 -c --ttl 3 -z"),
            "udp -h 127.0.0.1 -p 5 --ttl 3 -c -z"
        );
        assert_eq!(
            round("ws -h 127.0.0.1 -p 80 -r /chat -t infinite"),
            "ws -h 127.0.0.1 -p 80 -t infinite -r /chat"
        );
        assert_eq!(
            round("opaque -t 99 -e 1.0 -v AQIDBA=="),
            "opaque -t 99 -e 1.0 -v AQIDBA=="
        );
        assert_eq!(
            round("opaque -t 1 -e 1.1 -v CTEyNy4wLjAuMRUnAABg6gAAAA=="),
            "tcp -h 127.0.0.1 -p 10005 -t 60000"
        );
    }

    #[test]
    fn rejects_like_ice() {
        for bad in [
            "tcp -p 70000",
            "tcp -t 0",
            "bogus -h x",
            "tcp -h",
            "tcp -z yes",
            "tcp -q",
        ] {
            assert!(
                matches!(
                    Endpoint::parse(bad, "", 60000),
                    Err(Error::EndpointParse(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn base64_round_trip() {
        for data in [
            &b""[..],
            b"\x01",
            b"\x01\x02",
            b"\x01\x02\x03",
            b"\x01\x02\x03\x04",
        ] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(&[1, 2, 3, 4]), "AQIDBA==");
    }
}
