//! The data of a proxy as it travels on the wire (ice-wire.md §12), without any behaviour:
//! [`ProxyData`] and its [`EndpointData`]. `ObjectPrx` wraps it.

use super::{EncodingVersion, FormatType, InputStream, OutputStream, ProtocolVersion, SliceType};
use crate::error::Error;
use crate::identity::Identity;

/// Endpoint type of TCP.
pub const TCP_ENDPOINT_TYPE: i16 = 1;
/// Endpoint type of SSL.
pub const SSL_ENDPOINT_TYPE: i16 = 2;
/// Endpoint type of UDP.
pub const UDP_ENDPOINT_TYPE: i16 = 3;
/// Endpoint type of WebSocket.
pub const WS_ENDPOINT_TYPE: i16 = 4;
/// Endpoint type of secure WebSocket.
pub const WSS_ENDPOINT_TYPE: i16 = 5;

/// How a proxy sends requests (the mode byte of a marshaled proxy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ProxyMode {
    /// Request and reply (`-t`).
    #[default]
    Twoway = 0,
    /// Request without reply (`-o`).
    Oneway = 1,
    /// Queued oneway requests sent in batches (`-O`).
    BatchOneway = 2,
    /// Oneway over UDP (`-d`).
    Datagram = 3,
    /// Batched datagrams (`-D`).
    BatchDatagram = 4,
}

impl ProxyMode {
    /// The mode for a wire byte, if valid.
    pub fn from_u8(b: u8) -> Option<ProxyMode> {
        match b {
            0 => Some(ProxyMode::Twoway),
            1 => Some(ProxyMode::Oneway),
            2 => Some(ProxyMode::BatchOneway),
            3 => Some(ProxyMode::Datagram),
            4 => Some(ProxyMode::BatchDatagram),
            _ => None,
        }
    }
}

/// The body of a TCP or SSL endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpEndpointData {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Timeout in milliseconds, -1 for none.
    pub timeout: i32,
    /// Whether requests are compressed.
    pub compress: bool,
}

/// The body of a UDP endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UdpEndpointData {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Whether requests are compressed.
    pub compress: bool,
}

/// The body of a WS or WSS endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WsEndpointData {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Timeout in milliseconds, -1 for none.
    pub timeout: i32,
    /// Whether requests are compressed.
    pub compress: bool,
    /// The HTTP resource of the upgrade request (`/` by default).
    pub resource: String,
}

/// An endpoint of a type this runtime does not interpret, kept as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpaqueEndpointData {
    /// The endpoint type.
    pub endpoint_type: i16,
    /// The encoding of the endpoint's encapsulation, kept as received.
    pub encoding: EncodingVersion,
    /// The encapsulation's contents.
    pub bytes: Vec<u8>,
}

/// One endpoint of a proxy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EndpointData {
    /// `tcp`.
    Tcp(TcpEndpointData),
    /// `ssl`.
    Ssl(TcpEndpointData),
    /// `udp`.
    Udp(UdpEndpointData),
    /// `ws`.
    Ws(WsEndpointData),
    /// `wss`.
    Wss(WsEndpointData),
    /// Any other type (bt, iap, unknown), or a known type whose encapsulation version differs
    /// from the enclosing stream's (the sender kept it opaque; so do we).
    Opaque(OpaqueEndpointData),
}

impl EndpointData {
    /// The endpoint type number written on the wire.
    pub fn endpoint_type(&self) -> i16 {
        match self {
            EndpointData::Tcp(_) => TCP_ENDPOINT_TYPE,
            EndpointData::Ssl(_) => SSL_ENDPOINT_TYPE,
            EndpointData::Udp(_) => UDP_ENDPOINT_TYPE,
            EndpointData::Ws(_) => WS_ENDPOINT_TYPE,
            EndpointData::Wss(_) => WSS_ENDPOINT_TYPE,
            EndpointData::Opaque(o) => o.endpoint_type,
        }
    }

    /// Writes the type and the body encapsulation, in the stream's current encoding (opaque
    /// endpoints keep their own).
    pub fn encode(&self, os: &mut OutputStream) {
        os.write_i16(self.endpoint_type());
        if let EndpointData::Opaque(o) = self {
            os.write_encapsulation(o.encoding, &o.bytes);
            return;
        }
        os.start_encapsulation(os.encoding(), FormatType::Compact);
        match self {
            EndpointData::Tcp(t) | EndpointData::Ssl(t) => {
                os.write_string(&t.host);
                os.write_i32(t.port);
                os.write_i32(t.timeout);
                os.write_bool(t.compress);
            }
            EndpointData::Udp(u) => {
                os.write_string(&u.host);
                os.write_i32(u.port);
                if os.encoding().is_1_0() {
                    os.write_bytes(&[1, 0, 1, 0]);
                }
                os.write_bool(u.compress);
            }
            EndpointData::Ws(w) | EndpointData::Wss(w) => {
                os.write_string(&w.host);
                os.write_i32(w.port);
                os.write_i32(w.timeout);
                os.write_bool(w.compress);
                os.write_string(&w.resource);
            }
            EndpointData::Opaque(_) => {}
        }
        os.end_encapsulation();
    }

    /// Reads an endpoint: its type and body encapsulation.
    pub fn decode(is: &mut InputStream<'_>) -> Result<EndpointData, Error> {
        let endpoint_type = is.read_i16()?;
        let start = is.pos();
        let (bytes, encoding) = is.read_encapsulation()?;
        // A known type whose encapsulation does not follow the stream's encoding was written by
        // a peer that treated it as opaque: keep it opaque so that it is forwarded unchanged.
        let known = (TCP_ENDPOINT_TYPE..=WSS_ENDPOINT_TYPE).contains(&endpoint_type);
        if !known || encoding != is.encoding() {
            return Ok(EndpointData::Opaque(OpaqueEndpointData {
                endpoint_type,
                encoding,
                bytes: bytes.to_vec(),
            }));
        }
        is.set_pos(start)?;
        is.start_encapsulation()?;
        let e = match endpoint_type {
            TCP_ENDPOINT_TYPE | SSL_ENDPOINT_TYPE => {
                let t = TcpEndpointData {
                    host: is.read_string()?,
                    port: is.read_i32()?,
                    timeout: is.read_i32()?,
                    compress: is.read_bool()?,
                };
                if endpoint_type == TCP_ENDPOINT_TYPE {
                    EndpointData::Tcp(t)
                } else {
                    EndpointData::Ssl(t)
                }
            }
            UDP_ENDPOINT_TYPE => {
                let host = is.read_string()?;
                let port = is.read_i32()?;
                if is.encoding().is_1_0() {
                    is.skip(4)?;
                }
                EndpointData::Udp(UdpEndpointData {
                    host,
                    port,
                    compress: is.read_bool()?,
                })
            }
            _ => {
                let w = WsEndpointData {
                    host: is.read_string()?,
                    port: is.read_i32()?,
                    timeout: is.read_i32()?,
                    compress: is.read_bool()?,
                    resource: is.read_string()?,
                };
                if endpoint_type == WS_ENDPOINT_TYPE {
                    EndpointData::Ws(w)
                } else {
                    EndpointData::Wss(w)
                }
            }
        };
        is.end_encapsulation()?;
        Ok(e)
    }
}

/// Everything a marshaled proxy carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProxyData {
    /// The target object.
    pub identity: Identity,
    /// The facet, "" for the default one.
    pub facet: String,
    /// How requests are sent.
    pub mode: ProxyMode,
    /// Whether only secure endpoints may be used.
    pub secure: bool,
    /// The protocol version (written in 1.1 streams only; 1.0 otherwise).
    pub protocol: ProtocolVersion,
    /// The encoding the target accepts (written in 1.1 streams only; 1.0 otherwise).
    pub encoding: EncodingVersion,
    /// The endpoints; empty for an indirect or well-known proxy.
    pub endpoints: Vec<EndpointData>,
    /// The adapter id of an indirect proxy ("" for a well-known or direct one).
    pub adapter_id: String,
}

impl ProxyData {
    /// Writes a proxy, or the null proxy (`00 00`) for `None`.
    pub fn write(os: &mut OutputStream, proxy: Option<&ProxyData>) {
        match proxy {
            Some(p) => p.encode(os),
            None => {
                os.write_string("");
                os.write_string("");
            }
        }
    }

    /// Writes this (non-null) proxy.
    pub fn encode(&self, os: &mut OutputStream) {
        self.identity.encode(os);
        if self.facet.is_empty() {
            os.write_size(0);
        } else {
            os.write_size(1);
            os.write_string(&self.facet);
        }
        os.write_u8(self.mode as u8);
        os.write_bool(self.secure);
        if !os.encoding().is_1_0() {
            os.write_u8(self.protocol.major);
            os.write_u8(self.protocol.minor);
            os.write_u8(self.encoding.major);
            os.write_u8(self.encoding.minor);
        }
        os.write_size(self.endpoints.len());
        if self.endpoints.is_empty() {
            os.write_string(&self.adapter_id);
        } else {
            for e in &self.endpoints {
                e.encode(os);
            }
        }
    }

    /// Reads a proxy; `None` for the null proxy.
    pub fn read(is: &mut InputStream<'_>) -> Result<Option<ProxyData>, Error> {
        let identity = Identity::decode(is)?;
        if identity.name.is_empty() {
            if identity.category.is_empty() {
                return Ok(None);
            }
            return Err(Error::marshal(format!(
                "proxy with an empty name and category `{}`",
                identity.category
            )));
        }
        let facet = match is.read_count(1)? {
            0 => String::new(),
            1 => is.read_string()?,
            n => {
                return Err(Error::marshal(format!(
                    "proxy facet sequence of {n} elements"
                )));
            }
        };
        let mode = is.read_u8()?;
        let mode = ProxyMode::from_u8(mode)
            .ok_or_else(|| Error::marshal(format!("invalid proxy mode {mode}")))?;
        let secure = is.read_bool()?;
        let (protocol, encoding) = if is.encoding().is_1_0() {
            (ProtocolVersion::V1_0, EncodingVersion::V1_0)
        } else {
            let p = ProtocolVersion {
                major: is.read_u8()?,
                minor: is.read_u8()?,
            };
            let e = EncodingVersion {
                major: is.read_u8()?,
                minor: is.read_u8()?,
            };
            (p, e)
        };
        // An endpoint is at least a type (2 bytes) and an encapsulation header (6 bytes).
        let n = is.read_count(8)?;
        let mut endpoints = Vec::with_capacity(n);
        for _ in 0..n {
            endpoints.push(EndpointData::decode(is)?);
        }
        let adapter_id = if n == 0 {
            is.read_string()?
        } else {
            String::new()
        };
        Ok(Some(ProxyData {
            identity,
            facet,
            mode,
            secure,
            protocol,
            encoding,
            endpoints,
            adapter_id,
        }))
    }
}

impl SliceType for Option<ProxyData> {
    const MIN_WIRE_SIZE: usize = 2;
    const TAG_FORMAT: super::OptionalFormat = super::OptionalFormat::FSize;
    fn encode(&self, os: &mut OutputStream) {
        ProxyData::write(os, self.as_ref());
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        ProxyData::read(is)
    }
}
