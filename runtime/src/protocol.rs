//! Ice protocol 1.0: the 14-byte message header, the five message types, and the framing of a
//! byte stream into messages (check → parse → advance on a [`BytesMut`]), with bzip2 compression.
//!
//! The fields of the protocol itself (request ids, identities, facets, operations, contexts,
//! reply statuses) are always written in encoding 1.0, whatever encoding the parameters use; this
//! module reads and writes them directly. Parameters stay opaque encapsulations ([`Bytes`]).

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, RequestFailed, Result};

/// Size of every message header.
pub const HEADER_SIZE: usize = 14;
/// The four magic bytes that start every message ("IceP").
pub const MAGIC: [u8; 4] = *b"IceP";
/// Messages shorter than this are never compressed, as in Ice.
pub const COMPRESSION_THRESHOLD: usize = 100;
/// Default of `Ice.MessageSizeMax`, in KiB.
pub const DEFAULT_MESSAGE_SIZE_MAX_KIB: i32 = 1024;

/// A request context: string pairs sent with every request.
pub type Context = HashMap<String, String>;

/// The kind of a protocol message (header byte 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// A request (twoway, or oneway when the request id is 0).
    Request = 0,
    /// A batch of oneway requests.
    BatchRequest = 1,
    /// A reply to a twoway request.
    Reply = 2,
    /// Sent by a server when a connection starts, and by either side as a heartbeat.
    ValidateConnection = 3,
    /// Graceful close.
    CloseConnection = 4,
}

impl MessageType {
    fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            0 => MessageType::Request,
            1 => MessageType::BatchRequest,
            2 => MessageType::Reply,
            3 => MessageType::ValidateConnection,
            4 => MessageType::CloseConnection,
            other => return Err(Error::Protocol(format!("unknown message type {other}"))),
        })
    }
}

/// The mode of an operation, as sent in every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OperationMode {
    /// An ordinary operation.
    #[default]
    Normal = 0,
    /// The deprecated `["nonmutating"]` mode; used by the built-in operations.
    Nonmutating = 1,
    /// An `idempotent` operation.
    Idempotent = 2,
}

impl OperationMode {
    /// Decodes a mode byte.
    pub fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            0 => OperationMode::Normal,
            1 => OperationMode::Nonmutating,
            2 => OperationMode::Idempotent,
            other => return Err(Error::marshal(format!("invalid operation mode {other}"))),
        })
    }

    /// The name Ice prints for this mode (`::Ice::Idempotent`).
    pub fn ice_name(self) -> &'static str {
        match self {
            OperationMode::Normal => "::Ice::Normal",
            OperationMode::Nonmutating => "::Ice::Nonmutating",
            OperationMode::Idempotent => "::Ice::Idempotent",
        }
    }

    /// Whether a call in this mode may safely run more than once.
    pub fn is_idempotent(self) -> bool {
        self != OperationMode::Normal
    }
}

/// A decoded message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type.
    pub message_type: MessageType,
    /// Compression status: 0 plain, 1 plain but compression wanted, 2 bzip2.
    pub compression: u8,
    /// Total message size, header included.
    pub size: usize,
}

impl Header {
    /// Checks and decodes a 14-byte header. `max_size` is the largest message accepted, in bytes.
    pub fn parse(buf: &[u8], max_size: usize) -> Result<Header> {
        if buf.len() < HEADER_SIZE {
            return Err(Error::Protocol("truncated message header".into()));
        }
        if buf[0..4] != MAGIC {
            return Err(Error::Protocol(format!(
                "bad magic {:02x} {:02x} {:02x} {:02x}",
                buf[0], buf[1], buf[2], buf[3]
            )));
        }
        if buf[4] != 1 || buf[5] != 0 {
            return Err(Error::Protocol(format!(
                "unsupported protocol version {}.{}",
                buf[4], buf[5]
            )));
        }
        if buf[6] != 1 || buf[7] != 0 {
            return Err(Error::UnsupportedEncoding(format!(
                "{}.{} in message header (protocol encoding must be 1.0)",
                buf[6], buf[7]
            )));
        }
        let message_type = MessageType::from_byte(buf[8])?;
        // As in Ice, only 2 means compressed; any other value is a plain body.
        let compression = buf[9];
        let size = i32::from_le_bytes([buf[10], buf[11], buf[12], buf[13]]);
        if size < HEADER_SIZE as i32 {
            return Err(Error::Protocol(format!("illegal message size {size}")));
        }
        let size = size as usize;
        if size > max_size {
            return Err(size_exceeded(size, max_size));
        }
        Ok(Header {
            message_type,
            compression,
            size,
        })
    }

    /// Writes this header.
    pub fn write(&self, out: &mut BytesMut) {
        out.put_slice(&MAGIC);
        out.put_slice(&[1, 0, 1, 0, self.message_type as u8, self.compression]);
        out.put_i32_le(self.size as i32);
    }
}

fn size_exceeded(size: usize, max_size: usize) -> Error {
    Error::MemoryLimit(format!(
        "message of {} KiB exceeds Ice.MessageSizeMax ({} KiB)",
        size.div_ceil(1024),
        max_size / 1024
    ))
}

/// Converts `Ice.MessageSizeMax` (KiB; 0 or less means no limit) to bytes.
pub fn message_size_max_bytes(kib: i32) -> usize {
    if kib <= 0 || kib as usize >= (i32::MAX as usize) / 1024 {
        i32::MAX as usize
    } else {
        kib as usize * 1024
    }
}

/// One whole message taken from the stream, decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header as received (its size is the size on the wire).
    pub header: Header,
    /// The body after the header, decompressed when the header said bzip2.
    pub body: Bytes,
}

/// Splits a byte stream into [`Frame`]s.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_size: usize,
}

impl FrameDecoder {
    /// A decoder accepting messages of up to `max_size` bytes (compressed and uncompressed).
    pub fn new(max_size: usize) -> Self {
        FrameDecoder { max_size }
    }

    /// The largest message accepted, in bytes.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The header of the message at the front of `buf`, checked, once its 14 bytes are there.
    /// A ValidateConnection or CloseConnection that announces a body is refused here, before
    /// any of it is read.
    pub fn peek(&self, buf: &[u8]) -> Result<Option<Header>> {
        if buf.len() < HEADER_SIZE {
            return Ok(None);
        }
        let header = Header::parse(&buf[..HEADER_SIZE], self.max_size)?;
        if matches!(
            header.message_type,
            MessageType::ValidateConnection | MessageType::CloseConnection
        ) && header.size != HEADER_SIZE
        {
            return Err(Error::Protocol(format!(
                "illegal message size {} for {:?}",
                header.size, header.message_type
            )));
        }
        Ok(Some(header))
    }

    /// Takes one whole message from the front of `buf`, if there is one, without decompressing
    /// its body (see [`inflate`]). Reserves nothing: the caller decides how much room to make
    /// for a message that is not all there yet.
    pub fn split(&self, buf: &mut BytesMut) -> Result<Option<(Header, Bytes)>> {
        let Some(header) = self.peek(buf)? else {
            return Ok(None);
        };
        if buf.len() < header.size {
            return Ok(None);
        }
        let mut msg = buf.split_to(header.size);
        msg.advance(HEADER_SIZE);
        Ok(Some((header, msg.freeze())))
    }

    /// Takes one whole message from the front of `buf`, if there is one, decompressed. The
    /// header is checked as soon as its 14 bytes are there, so an oversized message is rejected
    /// before its body is read or any room is reserved for it; then room for the whole message
    /// is reserved.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>> {
        match self.split(buf)? {
            Some((header, body)) => inflate(header, body, self.max_size).map(Some),
            None => {
                if let Some(header) = self.peek(buf)? {
                    buf.reserve(header.size - buf.len());
                }
                Ok(None)
            }
        }
    }
}

/// The size of the message once decompressed (header included), as a compressed message
/// (compression byte 2) announces it in its first four body bytes; `header.size` for other
/// messages. `message` starts with the header; `max_size` is the largest message accepted.
pub fn uncompressed_size(header: &Header, message: &[u8], max_size: usize) -> Result<usize> {
    if header.compression != 2 || !carries_body(header.message_type) {
        return Ok(header.size);
    }
    announced_size(message.get(HEADER_SIZE..).unwrap_or_default(), max_size)
}

/// The uncompressed size that the body of a compressed message announces, checked.
fn announced_size(body: &[u8], max_size: usize) -> Result<usize> {
    if body.len() < 4 {
        return Err(Error::Protocol("compressed message too short".into()));
    }
    let total = i32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    if total < HEADER_SIZE as i32 {
        return Err(Error::Protocol(format!(
            "illegal uncompressed message size {total}"
        )));
    }
    let total = total as usize;
    if total > max_size {
        return Err(size_exceeded(total, max_size));
    }
    Ok(total)
}

fn carries_body(t: MessageType) -> bool {
    !matches!(
        t,
        MessageType::ValidateConnection | MessageType::CloseConnection
    )
}

/// Makes a [`Frame`] of a message taken by [`FrameDecoder::split`]: decompresses its body when
/// the header says bzip2 (refusing one that would inflate past `max_size` bytes).
pub fn inflate(header: Header, body: Bytes, max_size: usize) -> Result<Frame> {
    let body = if header.compression == 2 && carries_body(header.message_type) {
        decompress(&body, max_size)?
    } else {
        body
    };
    Ok(Frame { header, body })
}

fn decompress(body: &[u8], max_size: usize) -> Result<Bytes> {
    let total = announced_size(body, max_size)?;
    let want = total - HEADER_SIZE;
    let mut out = Vec::with_capacity(want);
    let mut decoder = bzip2::read::BzDecoder::new(&body[4..]);
    decoder
        .by_ref()
        .take(want as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Protocol(format!("bzip2 decompression failed: {e}")))?;
    if out.len() != want {
        return Err(Error::Protocol(format!(
            "decompressed body is {} bytes, header said {want}",
            out.len()
        )));
    }
    Ok(Bytes::from(out))
}

/// Builds a whole message from its type and body. `compress` asks for bzip2 when the message is
/// large enough (`compression` byte 2); a smaller message asking for it goes out with byte 1,
/// as Ice does. A compressed body that would not be smaller goes out uncompressed (byte 1).
pub fn build_message(message_type: MessageType, body: &[u8], compress: bool) -> Bytes {
    let total = HEADER_SIZE + body.len();
    if compress && total >= COMPRESSION_THRESHOLD {
        if let Some(compressed) = compress_body(body) {
            if compressed.len() + 4 < body.len() {
                let size = HEADER_SIZE + 4 + compressed.len();
                let mut out = BytesMut::with_capacity(size);
                Header {
                    message_type,
                    compression: 2,
                    size,
                }
                .write(&mut out);
                out.put_i32_le(total as i32);
                out.put_slice(&compressed);
                return out.freeze();
            }
        }
    }
    let mut out = BytesMut::with_capacity(total);
    Header {
        message_type,
        compression: u8::from(compress),
        size: total,
    }
    .write(&mut out);
    out.put_slice(body);
    out.freeze()
}

fn compress_body(body: &[u8]) -> Option<Vec<u8>> {
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(1));
    enc.write_all(body).ok()?;
    enc.finish().ok()
}

/// A ValidateConnection message (connection start and heartbeat).
pub fn validate_connection_message() -> Bytes {
    build_message(MessageType::ValidateConnection, &[], false)
}

/// A CloseConnection message, with compression byte 1 as Ice 3.7 sends it.
pub fn close_connection_message() -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_SIZE);
    Header {
        message_type: MessageType::CloseConnection,
        compression: 1,
        size: HEADER_SIZE,
    }
    .write(&mut out);
    out.freeze()
}

/// The fields of a request that say where it goes and what it calls, borrowed from the proxy.
pub(crate) struct RequestHead<'a> {
    pub name: &'a str,
    pub category: &'a str,
    pub facet: &'a str,
    pub operation: &'a str,
    pub mode: OperationMode,
    pub context: &'a Context,
}

/// Offset of the request id in a Request message.
pub(crate) const REQUEST_ID_OFFSET: usize = HEADER_SIZE;

impl RequestHead<'_> {
    /// Starts a Request message: its header (with a size [`finish_request_message`] sets), four
    /// bytes for the request id (the connection sets them when it sends the message) and the
    /// fields up to the parameters, which the caller appends.
    pub fn start_message(&self, out: &mut BytesMut) {
        Header {
            message_type: MessageType::Request,
            compression: 0,
            size: 0,
        }
        .write(out);
        out.put_i32_le(0);
        self.write_fields(out);
    }

    /// Writes the fields that follow the request id, up to the parameters.
    pub fn write_fields(&self, out: &mut BytesMut) {
        put_string(out, self.name);
        put_string(out, self.category);
        if self.facet.is_empty() {
            put_size(out, 0);
        } else {
            put_size(out, 1);
            put_string(out, self.facet);
        }
        put_string(out, self.operation);
        out.put_u8(self.mode as u8);
        put_context(out, self.context);
    }
}

/// Sets the size in the header of a message built in place (see [`RequestHead::start_message`]);
/// fails when it does not fit the protocol's int32.
pub(crate) fn finish_request_message(message: &mut [u8]) -> Result<()> {
    let size = i32::try_from(message.len())
        .map_err(|_| Error::MemoryLimit(format!("a request of {} bytes", message.len())))?;
    message[10..14].copy_from_slice(&size.to_le_bytes());
    Ok(())
}

/// The fields of one request, as in a Request message or one entry of a BatchRequest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestData {
    /// Request id: 0 for oneway and batched requests.
    pub request_id: i32,
    /// The identity's name.
    pub name: String,
    /// The identity's category.
    pub category: String,
    /// The facet ("" for the default facet).
    pub facet: String,
    /// The operation name.
    pub operation: String,
    /// The operation mode.
    pub mode: OperationMode,
    /// The request context.
    pub context: Context,
    /// The parameter encapsulation, its 6-byte header included.
    pub params: Bytes,
}

impl RequestData {
    /// Writes this request's fields (without the request id) and parameters.
    pub fn write_fields(&self, out: &mut BytesMut) {
        RequestHead {
            name: &self.name,
            category: &self.category,
            facet: &self.facet,
            operation: &self.operation,
            mode: self.mode,
            context: &self.context,
        }
        .write_fields(out);
        out.put_slice(&self.params);
    }

    /// The body of a Request message carrying this request.
    pub fn request_body(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(64 + self.params.len());
        out.put_i32_le(self.request_id);
        self.write_fields(&mut out);
        out
    }

    fn read_fields(r: &mut WireReader, request_id: i32) -> Result<Self> {
        let name = r.string()?;
        let category = r.string()?;
        let facet = r.facet()?;
        let operation = r.string()?;
        let mode = OperationMode::from_byte(r.u8()?)?;
        let context = r.context()?;
        let params = r.encapsulation()?;
        Ok(RequestData {
            request_id,
            name,
            category,
            facet,
            operation,
            mode,
            context,
            params,
        })
    }

    /// Parses the body of a Request message.
    pub fn parse_request(body: &Bytes) -> Result<Self> {
        let mut r = WireReader::new(body);
        let id = r.i32()?;
        let req = Self::read_fields(&mut r, id)?;
        r.finish()?;
        Ok(req)
    }
}

/// Parses the body of a BatchRequest message into its requests (each with request id 0).
pub fn parse_batch(body: &Bytes) -> Result<Vec<RequestData>> {
    let mut r = WireReader::new(body);
    let count = r.i32()?;
    if count < 0 {
        return Err(Error::Protocol(format!(
            "negative batch request count {count}"
        )));
    }
    // Each request takes at least 12 bytes; do not trust the count further than that.
    let mut out = Vec::with_capacity((count as usize).min(r.remaining() / 12));
    for _ in 0..count {
        out.push(RequestData::read_fields(&mut r, 0)?);
    }
    r.finish()?;
    Ok(out)
}

/// The body of a BatchRequest message holding already-written request fields.
pub fn batch_body(count: usize, requests: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(4 + requests.len());
    out.put_i32_le(count as i32);
    out.put_slice(requests);
    out
}

/// The outcome carried by a Reply message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// Status 0: the out-parameters encapsulation (6-byte header included).
    Ok(Bytes),
    /// Status 1: an encapsulation holding a user exception.
    UserException(Bytes),
    /// Status 2.
    ObjectNotExist(RequestFailed),
    /// Status 3.
    FacetNotExist(RequestFailed),
    /// Status 4.
    OperationNotExist(RequestFailed),
    /// Status 5.
    UnknownLocalException(String),
    /// Status 6.
    UnknownUserException(String),
    /// Status 7.
    UnknownException(String),
}

impl ReplyBody {
    /// The status byte.
    pub fn status(&self) -> u8 {
        match self {
            ReplyBody::Ok(_) => 0,
            ReplyBody::UserException(_) => 1,
            ReplyBody::ObjectNotExist(_) => 2,
            ReplyBody::FacetNotExist(_) => 3,
            ReplyBody::OperationNotExist(_) => 4,
            ReplyBody::UnknownLocalException(_) => 5,
            ReplyBody::UnknownUserException(_) => 6,
            ReplyBody::UnknownException(_) => 7,
        }
    }

    /// The reply a server sends for a runtime error raised while dispatching.
    pub fn from_error(err: &Error) -> ReplyBody {
        match err {
            Error::ObjectNotExist(f) => ReplyBody::ObjectNotExist((**f).clone()),
            Error::FacetNotExist(f) => ReplyBody::FacetNotExist((**f).clone()),
            Error::OperationNotExist(f) => ReplyBody::OperationNotExist((**f).clone()),
            Error::UnknownUserException(s) => ReplyBody::UnknownUserException(s.clone()),
            Error::UnknownException(s) => ReplyBody::UnknownException(s.clone()),
            Error::UnknownLocalException(s) => ReplyBody::UnknownLocalException(s.clone()),
            other => ReplyBody::UnknownLocalException(ice_exception_text(other)),
        }
    }

    /// The error a client raises for a failed reply (statuses 2 to 7); `None` for 0 and 1.
    pub fn to_error(&self) -> Option<Error> {
        Some(match self {
            ReplyBody::Ok(_) | ReplyBody::UserException(_) => return None,
            ReplyBody::ObjectNotExist(f) => Error::ObjectNotExist(Box::new(f.clone())),
            ReplyBody::FacetNotExist(f) => Error::FacetNotExist(Box::new(f.clone())),
            ReplyBody::OperationNotExist(f) => Error::OperationNotExist(Box::new(f.clone())),
            ReplyBody::UnknownLocalException(s) => Error::UnknownLocalException(s.clone()),
            ReplyBody::UnknownUserException(s) => Error::UnknownUserException(s.clone()),
            ReplyBody::UnknownException(s) => Error::UnknownException(s.clone()),
        })
    }
}

/// The text a status-5 reply carries for a local error, in the style ZeroC prints its exceptions
/// (`::Ice::MarshalException:\n...`). The text is informational only; nobody parses it.
pub fn ice_exception_text(err: &Error) -> String {
    let name = match err {
        Error::Marshal(_) => "::Ice::MarshalException",
        Error::MemoryLimit(_) => "::Ice::MemoryLimitException",
        Error::Protocol(_) => "::Ice::ProtocolException",
        Error::UnsupportedEncoding(_) => "::Ice::UnsupportedEncodingException",
        Error::NoValueFactory(_) => "::Ice::NoValueFactoryException",
        Error::TwowayOnly(_) => "::Ice::TwowayOnlyException",
        Error::CommunicatorDestroyed => "::Ice::CommunicatorDestroyedException",
        Error::ObjectAdapterDeactivated(_) => "::Ice::ObjectAdapterDeactivatedException",
        Error::ConnectionRefused(_) => "::Ice::ConnectionRefusedException",
        Error::ConnectionLost(_) => "::Ice::ConnectionLostException",
        Error::InvocationTimeout(_) => "::Ice::InvocationTimeoutException",
        Error::FeatureNotSupported(_) => "::Ice::FeatureNotSupportedException",
        Error::Security { .. } => "::Ice::SecurityException",
        _ => "::Ice::LocalException",
    };
    format!("{name}:\n{err}")
}

/// A decoded Reply message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyData {
    /// The id of the request this answers.
    pub request_id: i32,
    /// The outcome.
    pub body: ReplyBody,
}

impl ReplyData {
    /// Parses the body of a Reply message.
    pub fn parse(body: &Bytes) -> Result<Self> {
        let mut r = WireReader::new(body);
        let request_id = r.i32()?;
        let status = r.u8()?;
        let body = match status {
            0 => ReplyBody::Ok(r.encapsulation()?),
            1 => ReplyBody::UserException(r.encapsulation()?),
            2..=4 => {
                let failed = RequestFailed {
                    name: r.string()?,
                    category: r.string()?,
                    facet: r.facet()?,
                    operation: r.string()?,
                };
                match status {
                    2 => ReplyBody::ObjectNotExist(failed),
                    3 => ReplyBody::FacetNotExist(failed),
                    _ => ReplyBody::OperationNotExist(failed),
                }
            }
            5 => ReplyBody::UnknownLocalException(r.string()?),
            6 => ReplyBody::UnknownUserException(r.string()?),
            7 => ReplyBody::UnknownException(r.string()?),
            other => return Err(Error::Protocol(format!("unknown reply status {other}"))),
        };
        r.finish()?;
        Ok(ReplyData { request_id, body })
    }

    /// The body of a Reply message.
    pub fn to_body(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(64);
        out.put_i32_le(self.request_id);
        out.put_u8(self.body.status());
        match &self.body {
            ReplyBody::Ok(b) | ReplyBody::UserException(b) => out.put_slice(b),
            ReplyBody::ObjectNotExist(f)
            | ReplyBody::FacetNotExist(f)
            | ReplyBody::OperationNotExist(f) => {
                put_string(&mut out, &f.name);
                put_string(&mut out, &f.category);
                if f.facet.is_empty() {
                    put_size(&mut out, 0);
                } else {
                    put_size(&mut out, 1);
                    put_string(&mut out, &f.facet);
                }
                put_string(&mut out, &f.operation);
            }
            ReplyBody::UnknownLocalException(s)
            | ReplyBody::UnknownUserException(s)
            | ReplyBody::UnknownException(s) => put_string(&mut out, s),
        }
        out
    }
}

/// Any decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(RequestData),
    /// A batch of oneway requests.
    Batch(Vec<RequestData>),
    /// A reply.
    Reply(ReplyData),
    /// ValidateConnection.
    ValidateConnection,
    /// CloseConnection.
    CloseConnection,
}

impl Message {
    /// Parses the body of a frame according to its header.
    pub fn parse(frame: &Frame) -> Result<Message> {
        Ok(match frame.header.message_type {
            MessageType::Request => Message::Request(RequestData::parse_request(&frame.body)?),
            MessageType::BatchRequest => Message::Batch(parse_batch(&frame.body)?),
            MessageType::Reply => Message::Reply(ReplyData::parse(&frame.body)?),
            MessageType::ValidateConnection => Message::ValidateConnection,
            MessageType::CloseConnection => Message::CloseConnection,
        })
    }
}

/// An empty encapsulation in the given encoding (`06 00 00 00 01 minor`).
pub fn empty_encapsulation(major: u8, minor: u8) -> Bytes {
    Bytes::from(vec![6, 0, 0, 0, major, minor])
}

/// Wraps `body` in an encapsulation of the given encoding.
pub fn encapsulate(major: u8, minor: u8, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(6 + body.len());
    out.put_i32_le(6 + body.len() as i32);
    out.put_u8(major);
    out.put_u8(minor);
    out.put_slice(body);
    out.freeze()
}

/// Reads the encoding version of an encapsulation; `None` when it is too short.
pub fn encapsulation_encoding(encaps: &[u8]) -> Option<(u8, u8)> {
    (encaps.len() >= 6).then(|| (encaps[4], encaps[5]))
}

/// Writes a Slice `size`.
pub fn put_size(out: &mut BytesMut, n: usize) {
    if n < 255 {
        out.put_u8(n as u8);
    } else {
        out.put_u8(255);
        out.put_i32_le(n as i32);
    }
}

/// Writes a Slice string.
pub fn put_string(out: &mut BytesMut, s: &str) {
    put_size(out, s.len());
    out.put_slice(s.as_bytes());
}

/// Writes a context, keys sorted as the C++ runtime does.
pub fn put_context(out: &mut BytesMut, ctx: &Context) {
    put_size(out, ctx.len());
    let mut keys: Vec<&String> = ctx.keys().collect();
    keys.sort();
    for k in keys {
        put_string(out, k);
        put_string(out, &ctx[k]);
    }
}

/// A bounds-checked reader for protocol fields.
struct WireReader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> WireReader<'a> {
    fn new(buf: &'a Bytes) -> Self {
        WireReader { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.remaining() < n {
            Err(Error::marshal("out of bounds during unmarshaling"))
        } else {
            Ok(())
        }
    }

    fn u8(&mut self) -> Result<u8> {
        self.need(1)?;
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn i32(&mut self) -> Result<i32> {
        self.need(4)?;
        let b = &self.buf[self.pos..self.pos + 4];
        self.pos += 4;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn size(&mut self) -> Result<usize> {
        let b = self.u8()?;
        if b < 255 {
            return Ok(b as usize);
        }
        let n = self.i32()?;
        if n < 0 {
            return Err(Error::marshal(format!("negative size {n}")));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String> {
        let n = self.size()?;
        self.need(n)?;
        let s = std::str::from_utf8(&self.buf[self.pos..self.pos + n])
            .map_err(|_| Error::marshal("string is not valid UTF-8"))?
            .to_string();
        self.pos += n;
        Ok(s)
    }

    fn facet(&mut self) -> Result<String> {
        match self.size()? {
            0 => Ok(String::new()),
            1 => self.string(),
            n => Err(Error::marshal(format!("facet sequence has {n} elements"))),
        }
    }

    fn context(&mut self) -> Result<Context> {
        let n = self.size()?;
        // Each pair takes at least two bytes.
        if n > self.remaining() / 2 {
            return Err(Error::marshal("out of bounds during unmarshaling"));
        }
        let mut ctx = Context::with_capacity(n);
        for _ in 0..n {
            let k = self.string()?;
            let v = self.string()?;
            ctx.insert(k, v);
        }
        Ok(ctx)
    }

    fn encapsulation(&mut self) -> Result<Bytes> {
        self.need(6)?;
        let size = i32::from_le_bytes([
            self.buf[self.pos],
            self.buf[self.pos + 1],
            self.buf[self.pos + 2],
            self.buf[self.pos + 3],
        ]);
        if size < 6 || size as usize > self.remaining() {
            return Err(Error::marshal(format!("illegal encapsulation size {size}")));
        }
        let e = self.buf.slice(self.pos..self.pos + size as usize);
        self.pos += size as usize;
        Ok(e)
    }

    fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::Protocol(format!(
                "{} unexpected bytes after message",
                self.remaining()
            )));
        }
        Ok(())
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(ty: u8, comp: u8, size: i32) -> Vec<u8> {
        let mut v = b"IceP\x01\x00\x01\x00".to_vec();
        v.push(ty);
        v.push(comp);
        v.extend_from_slice(&size.to_le_bytes());
        v
    }

    #[test]
    fn rejects_bad_headers() {
        let max = 1024 * 1024;
        let mut bad_magic = hdr(3, 0, 14);
        bad_magic[0] = b'X';
        assert!(matches!(
            Header::parse(&bad_magic, max),
            Err(Error::Protocol(_))
        ));
        let mut proto = hdr(3, 0, 14);
        proto[5] = 1;
        assert!(matches!(
            Header::parse(&proto, max),
            Err(Error::Protocol(_))
        ));
        let mut enc = hdr(3, 0, 14);
        enc[7] = 1;
        assert!(matches!(
            Header::parse(&enc, max),
            Err(Error::UnsupportedEncoding(_))
        ));
        assert!(matches!(
            Header::parse(&hdr(9, 0, 14), max),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            Header::parse(&hdr(0, 0, 13), max),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            Header::parse(&hdr(0, 0, -5), max),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn only_compression_status_2_means_compressed() {
        let dec = FrameDecoder::new(1 << 20);
        for status in [0u8, 1, 3, 255] {
            let mut msg = hdr(0, status, 15);
            msg.push(7);
            let frame = dec.decode(&mut BytesMut::from(&msg[..])).unwrap().unwrap();
            assert_eq!(&frame.body[..], &[7], "status {status}");
        }
    }

    #[test]
    fn oversized_frame_rejected_before_body_arrives() {
        let dec = FrameDecoder::new(message_size_max_bytes(1024));
        let mut buf = BytesMut::from(&hdr(0, 0, i32::MAX)[..]);
        let err = dec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "memory limit: message of 2097152 KiB exceeds Ice.MessageSizeMax (1024 KiB)"
        );
        assert!(
            buf.capacity() < 1024,
            "no room reserved for the oversized body"
        );
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let dec = FrameDecoder::new(1 << 20);
        let msg = validate_connection_message();
        let mut buf = BytesMut::from(&msg[..10]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&msg[10..]);
        buf.extend_from_slice(&close_connection_message());
        let f1 = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f1.header.message_type, MessageType::ValidateConnection);
        let f2 = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f2.header.message_type, MessageType::CloseConnection);
        assert_eq!(f2.header.compression, 1);
        assert!(buf.is_empty());
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn validate_with_body_is_illegal() {
        let dec = FrameDecoder::new(1 << 20);
        let mut v = hdr(3, 0, 15);
        v.push(0);
        assert!(dec.decode(&mut BytesMut::from(&v[..])).is_err());
    }

    #[test]
    fn compression_round_trip_and_threshold() {
        let dec = FrameDecoder::new(1 << 20);
        let small = build_message(MessageType::Reply, &[1, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1], true);
        assert_eq!(small[9], 1);
        let body: Vec<u8> = b"compress me please "
            .iter()
            .cycle()
            .take(600)
            .copied()
            .collect();
        let big = build_message(MessageType::Request, &body, true);
        assert_eq!(big[9], 2);
        assert_eq!(&big[18..22], b"BZh1");
        assert!(big.len() < body.len());
        let frame = dec.decode(&mut BytesMut::from(&big[..])).unwrap().unwrap();
        assert_eq!(&frame.body[..], &body[..]);
        let plain = build_message(MessageType::Request, &body, false);
        assert_eq!(plain[9], 0);
    }

    #[test]
    fn decompression_bomb_rejected() {
        // Claims a 4 GiB-ish uncompressed size: rejected before inflating.
        let dec = FrameDecoder::new(1 << 20);
        let mut v = hdr(0, 2, 14 + 8);
        v.extend_from_slice(&(i32::MAX).to_le_bytes());
        v.extend_from_slice(b"BZh1");
        assert!(matches!(
            dec.decode(&mut BytesMut::from(&v[..])),
            Err(Error::MemoryLimit(_))
        ));
    }

    #[test]
    fn batch_with_huge_count_fails_cleanly() {
        let mut body = BytesMut::new();
        body.put_i32_le(i32::MAX);
        assert!(parse_batch(&body.freeze()).is_err());
        let mut neg = BytesMut::new();
        neg.put_i32_le(-1);
        assert!(matches!(
            parse_batch(&neg.freeze()),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn reply_round_trip() {
        let r = ReplyData {
            request_id: 7,
            body: ReplyBody::FacetNotExist(RequestFailed {
                name: "manager".into(),
                category: "".into(),
                facet: "admin".into(),
                operation: "ice_ping".into(),
            }),
        };
        let body = r.to_body().freeze();
        assert_eq!(ReplyData::parse(&body).unwrap(), r);
    }
}
