//! [`ObjectPrx`]: an immutable proxy value whose `ice_*` builders return new proxies, Ice's
//! stringified-proxy syntax in both directions, and invocation (with retries where safe).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::connection::{Connection, InvokeFailure};
use crate::encoding::{EncodingVersion, ProtocolVersion};
use crate::encoding::{
    EndpointData, FormatType, InputStream, OpaqueEndpointData, OperationError, OptionalFormat,
    OutputStream, ProxyData, ProxyMode, SliceType, TcpEndpointData, UdpEndpointData,
    WsEndpointData,
};
use crate::endpoint::{Endpoint, IpEndpoint, OpaqueEndpoint, Transport, parse_version};
use crate::error::{Error, Result};
use crate::identity::{Identity, ToStringMode, escape_string, unescape_string};
use crate::instance::{Communicator, Instance};
use crate::protocol::{
    Context, MessageType, OperationMode, ReplyBody, RequestData, batch_body, build_message,
};

/// A typed proxy (generated `XPrx` types implement it): a newtype over [`ObjectPrx`].
pub trait Proxy: Clone + Send + Sync + 'static {
    /// The Slice type id of the interface (`::Module::Interface`).
    const TYPE_ID: &'static str;
    /// Wraps an untyped proxy without checking its type.
    fn from_object(prx: ObjectPrx) -> Self;
    /// The untyped proxy inside.
    fn as_object(&self) -> &ObjectPrx;
}

impl Proxy for ObjectPrx {
    const TYPE_ID: &'static str = "::Ice::Object";
    fn from_object(prx: ObjectPrx) -> Self {
        prx
    }
    fn as_object(&self) -> &ObjectPrx {
        self
    }
}

/// How a proxy sends its requests (`-t -o -O -d -D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InvocationMode {
    /// Request and reply.
    #[default]
    Twoway = 0,
    /// Request with id 0, no reply.
    Oneway = 1,
    /// Queued, sent as one BatchRequest on flush.
    BatchOneway = 2,
    /// UDP datagram.
    Datagram = 3,
    /// Batched UDP datagrams.
    BatchDatagram = 4,
}

impl InvocationMode {
    fn flag(self) -> &'static str {
        match self {
            InvocationMode::Twoway => "-t",
            InvocationMode::Oneway => "-o",
            InvocationMode::BatchOneway => "-O",
            InvocationMode::Datagram => "-d",
            InvocationMode::BatchDatagram => "-D",
        }
    }

    /// Whether calls in this mode get a reply.
    pub fn is_twoway(self) -> bool {
        self == InvocationMode::Twoway
    }

    /// Whether calls in this mode are queued until flushed.
    pub fn is_batch(self) -> bool {
        matches!(
            self,
            InvocationMode::BatchOneway | InvocationMode::BatchDatagram
        )
    }
}

#[derive(Default)]
struct BatchQueue {
    count: usize,
    fields: BytesMut,
}

#[derive(Clone)]
pub(crate) struct Reference {
    instance: Arc<Instance>,
    identity: Identity,
    facet: String,
    mode: InvocationMode,
    secure: bool,
    protocol: ProtocolVersion,
    encoding: EncodingVersion,
    endpoints: Vec<Endpoint>,
    adapter_id: String,
    context: Option<Context>,
    invocation_timeout: i32,
    compress: Option<bool>,
    batch: Arc<Mutex<BatchQueue>>,
    fixed: Option<Connection>,
    locator: Option<ObjectPrx>,
}

/// A proxy for a remote Ice object. Immutable: every `ice_*` builder returns a new proxy.
#[derive(Clone)]
pub struct ObjectPrx {
    r: Arc<Reference>,
}

impl PartialEq for ObjectPrx {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&*self.r, &*other.r);
        a.identity == b.identity
            && a.facet == b.facet
            && a.mode == b.mode
            && a.secure == b.secure
            && a.protocol == b.protocol
            && a.encoding == b.encoding
            && a.endpoints == b.endpoints
            && a.adapter_id == b.adapter_id
            && a.context == b.context
            && a.invocation_timeout == b.invocation_timeout
            && a.compress == b.compress
            && a.fixed == b.fixed
            && a.locator == b.locator
    }
}

impl Eq for ObjectPrx {}

impl Hash for ObjectPrx {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let r = &*self.r;
        r.identity.hash(state);
        r.facet.hash(state);
        r.mode.hash(state);
        r.endpoints.hash(state);
        r.adapter_id.hash(state);
    }
}

impl fmt::Debug for ObjectPrx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectPrx({self})")
    }
}

fn quote_if_needed(s: String) -> String {
    if s.contains([' ', ':', '@']) || s.is_empty() {
        format!("\"{s}\"")
    } else {
        s
    }
}

fn escape_plain(s: &str) -> String {
    // Facets and adapter ids use the identity escapes, except that '/' is left alone.
    escape_string(s, "", ToStringMode::Unicode)
}

impl fmt::Display for ObjectPrx {
    /// Ice's `proxyToString`: identity, `-f facet`, the mode flag, `-s`, `-e`, `-p` when not 1.0,
    /// then `:endpoint...` or ` @ adapter`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &*self.r;
        f.write_str(&quote_if_needed(r.identity.to_string()))?;
        if !r.facet.is_empty() {
            write!(f, " -f {}", quote_if_needed(escape_plain(&r.facet)))?;
        }
        write!(f, " {}", r.mode.flag())?;
        if r.secure {
            f.write_str(" -s")?;
        }
        if r.protocol != ProtocolVersion::V1_0 {
            write!(f, " -p {}", r.protocol)?;
        }
        write!(f, " -e {}", r.encoding)?;
        if !r.adapter_id.is_empty() {
            write!(f, " @ {}", quote_if_needed(escape_plain(&r.adapter_id)))?;
        }
        for ep in &r.endpoints {
            write!(f, ":{ep}")?;
        }
        Ok(())
    }
}

impl ObjectPrx {
    pub(crate) fn new_direct(
        instance: Arc<Instance>,
        identity: Identity,
        endpoints: Vec<Endpoint>,
    ) -> Self {
        let encoding = instance.default_encoding;
        let invocation_timeout = instance.default_invocation_timeout;
        ObjectPrx {
            r: Arc::new(Reference {
                instance,
                identity,
                facet: String::new(),
                mode: InvocationMode::Twoway,
                secure: false,
                protocol: ProtocolVersion::V1_0,
                encoding,
                endpoints,
                adapter_id: String::new(),
                context: None,
                invocation_timeout,
                compress: None,
                batch: Arc::default(),
                fixed: None,
                locator: None,
            }),
        }
    }

    /// Parses a stringified proxy (Ice 3.7 syntax). An empty string or `""` is a null proxy,
    /// returned as `Ok(None)`.
    pub(crate) fn parse(instance: Arc<Instance>, s: &str) -> Result<Option<ObjectPrx>> {
        let text = s.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let chars: Vec<char> = text.chars().collect();
        let perr = |m: String| Error::ProxyParse(m);
        // Identity: quoted, or up to whitespace, ':' or '@'.
        let mut i;
        let ident_str: String;
        if chars[0] == '"' || chars[0] == '\'' {
            let q = chars[0];
            let end = find_closing_quote(&chars, 0)
                .ok_or_else(|| perr(format!("mismatched quotes around identity in `{s}`")))?;
            ident_str = chars[1..end].iter().collect();
            i = end + 1;
            let _ = q;
            if ident_str.is_empty() && i >= chars.len() {
                return Ok(None);
            }
            if i < chars.len() && !chars[i].is_whitespace() && chars[i] != ':' && chars[i] != '@' {
                let rest: String = chars[i..].iter().collect::<String>();
                let word: String = rest
                    .split(|c: char| c.is_whitespace() || c == ':' || c == '@')
                    .next()
                    .unwrap_or("")
                    .into();
                return Err(perr(format!(
                    "expected a proxy option but found `{word}' in `{s}`"
                )));
            }
        } else {
            i = 0;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ':' && chars[i] != '@'
            {
                i += 1;
            }
            ident_str = chars[..i].iter().collect();
        }
        let identity: Identity = ident_str.parse()?;
        if identity.name.is_empty() {
            if identity.category.is_empty() {
                return Ok(None);
            }
            return Err(Error::IllegalArgument(format!(
                "illegal identity `{}` (empty name) in `{s}`",
                identity
            )));
        }
        let mut r = Reference {
            instance: instance.clone(),
            identity,
            facet: String::new(),
            mode: InvocationMode::Twoway,
            secure: false,
            protocol: ProtocolVersion::V1_0,
            encoding: instance.default_encoding,
            endpoints: Vec::new(),
            adapter_id: String::new(),
            context: None,
            invocation_timeout: instance.default_invocation_timeout,
            compress: None,
            batch: Arc::default(),
            fixed: None,
            locator: None,
        };
        // Options.
        loop {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i >= chars.len() || chars[i] == ':' || chars[i] == '@' {
                break;
            }
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ':' && chars[i] != '@'
            {
                i += 1;
            }
            let opt: String = chars[start..i].iter().collect();
            if opt.len() != 2 || !opt.starts_with('-') {
                return Err(perr(format!(
                    "expected a proxy option but found `{opt}' in `{s}`"
                )));
            }
            // An argument follows unless the next word starts with '-' or is ':'/'@'.
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let mut arg: Option<String> = None;
            if j < chars.len() && chars[j] != '-' && chars[j] != ':' && chars[j] != '@' {
                if chars[j] == '"' || chars[j] == '\'' {
                    let end = find_closing_quote(&chars, j).ok_or_else(|| {
                        perr(format!(
                            "mismatched quotes around value for {opt} option in `{s}`"
                        ))
                    })?;
                    arg = Some(chars[j + 1..end].iter().collect());
                    i = end + 1;
                } else {
                    let st = j;
                    while j < chars.len()
                        && !chars[j].is_whitespace()
                        && chars[j] != ':'
                        && chars[j] != '@'
                    {
                        j += 1;
                    }
                    arg = Some(chars[st..j].iter().collect());
                    i = j;
                }
            }
            let no_arg = |arg: &Option<String>| -> Result<()> {
                match arg {
                    Some(a) => Err(perr(format!(
                        "unexpected argument `{a}' provided for {opt} option in `{s}`"
                    ))),
                    None => Ok(()),
                }
            };
            let need_arg = |arg: &Option<String>| -> Result<String> {
                arg.clone()
                    .ok_or_else(|| perr(format!("no argument provided for {opt} option in `{s}`")))
            };
            match opt.as_str() {
                "-f" => {
                    let a = need_arg(&arg)?;
                    r.facet = unescape_string(&a, "")
                        .map_err(|m| perr(format!("invalid facet in `{s}`: {m}")))?;
                }
                "-t" => {
                    no_arg(&arg)?;
                    r.mode = InvocationMode::Twoway;
                }
                "-o" => {
                    no_arg(&arg)?;
                    r.mode = InvocationMode::Oneway;
                }
                "-O" => {
                    no_arg(&arg)?;
                    r.mode = InvocationMode::BatchOneway;
                }
                "-d" => {
                    no_arg(&arg)?;
                    r.mode = InvocationMode::Datagram;
                }
                "-D" => {
                    no_arg(&arg)?;
                    r.mode = InvocationMode::BatchDatagram;
                }
                "-s" => {
                    no_arg(&arg)?;
                    r.secure = true;
                }
                "-e" => {
                    let a = need_arg(&arg)?;
                    r.encoding = parse_version(&a).map_err(|m| {
                        perr(format!("invalid encoding version `{a}' in `{s}`: {m}"))
                    })?;
                }
                "-p" => {
                    let a = need_arg(&arg)?;
                    let v = parse_version(&a).map_err(|m| {
                        perr(format!("invalid protocol version `{a}' in `{s}`: {m}"))
                    })?;
                    r.protocol = ProtocolVersion {
                        major: v.major,
                        minor: v.minor,
                    };
                }
                _ => return Err(perr(format!("unknown option `{opt}' in `{s}`"))),
            }
        }
        if i < chars.len() && chars[i] == ':' {
            let rest: String = chars[i + 1..].iter().collect();
            for ep in crate::endpoint::split_endpoints(&rest)? {
                let parsed = Endpoint::parse(&ep, &instance.default_host, instance.default_timeout)
                    .map_err(|e| match e {
                        Error::EndpointParse(m) if m.starts_with("invalid endpoint") => {
                            Error::EndpointParse(format!(
                                "invalid endpoint `{}' in `{s}`",
                                ep.trim()
                            ))
                        }
                        other => other,
                    })?;
                r.endpoints.push(parsed);
            }
        } else if i < chars.len() && chars[i] == '@' {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j >= chars.len() {
                return Err(perr(format!("missing adapter id in `{s}`")));
            }
            let word: String;
            if chars[j] == '"' || chars[j] == '\'' {
                let end = find_closing_quote(&chars, j)
                    .ok_or_else(|| perr(format!("mismatched quotes around adapter id in `{s}`")))?;
                word = chars[j + 1..end].iter().collect();
                j = end + 1;
            } else {
                let start = j;
                while j < chars.len() && !chars[j].is_whitespace() {
                    j += 1;
                }
                word = chars[start..j].iter().collect();
            }
            if chars[j..].iter().any(|c| !c.is_whitespace()) {
                return Err(perr(format!(
                    "invalid characters after adapter id in `{s}`"
                )));
            }
            r.adapter_id = unescape_string(&word, "")
                .map_err(|m| perr(format!("invalid adapter id in `{s}`: {m}")))?;
            if r.adapter_id.is_empty() {
                return Err(perr(format!("empty adapter id in `{s}`")));
            }
        }
        Ok(Some(ObjectPrx { r: Arc::new(r) }))
    }

    fn with(&self, f: impl FnOnce(&mut Reference)) -> ObjectPrx {
        let mut r = (*self.r).clone();
        f(&mut r);
        ObjectPrx { r: Arc::new(r) }
    }

    /// The communicator this proxy belongs to.
    pub fn communicator(&self) -> Communicator {
        Communicator::from_instance(self.r.instance.clone())
    }

    /// The target identity.
    pub fn ice_get_identity(&self) -> &Identity {
        &self.r.identity
    }

    /// The same proxy with another identity.
    pub fn ice_identity(&self, id: Identity) -> ObjectPrx {
        self.with(|r| r.identity = id)
    }

    /// The target facet ("" for the default facet).
    pub fn ice_get_facet(&self) -> &str {
        &self.r.facet
    }

    /// The same proxy with another facet.
    pub fn ice_facet(&self, facet: &str) -> ObjectPrx {
        self.with(|r| r.facet = facet.to_string())
    }

    /// The invocation mode.
    pub fn ice_get_mode(&self) -> InvocationMode {
        self.r.mode
    }

    /// A twoway proxy.
    pub fn ice_twoway(&self) -> ObjectPrx {
        self.with(|r| r.mode = InvocationMode::Twoway)
    }

    /// A oneway proxy.
    pub fn ice_oneway(&self) -> ObjectPrx {
        self.with(|r| r.mode = InvocationMode::Oneway)
    }

    /// A batch-oneway proxy with its own, empty batch queue; flush it with
    /// [`ObjectPrx::ice_flush_batch_requests`].
    pub fn ice_batch_oneway(&self) -> ObjectPrx {
        self.with(|r| {
            r.mode = InvocationMode::BatchOneway;
            r.batch = Arc::default();
        })
    }

    /// A datagram proxy: each call is one UDP datagram to the first `udp` endpoint, without reply.
    pub fn ice_datagram(&self) -> ObjectPrx {
        self.with(|r| r.mode = InvocationMode::Datagram)
    }

    /// A batch-datagram proxy with its own, empty batch queue; flushing sends the batch as one UDP
    /// datagram.
    pub fn ice_batch_datagram(&self) -> ObjectPrx {
        self.with(|r| {
            r.mode = InvocationMode::BatchDatagram;
            r.batch = Arc::default();
        })
    }

    /// Whether calls through this proxy get replies.
    pub fn ice_is_twoway(&self) -> bool {
        self.r.mode.is_twoway()
    }

    /// The proxy's context (sent with every call that does not give its own).
    pub fn ice_get_context(&self) -> Option<&Context> {
        self.r.context.as_ref()
    }

    /// The same proxy with a default context.
    pub fn ice_context(&self, ctx: Context) -> ObjectPrx {
        self.with(|r| r.context = Some(ctx))
    }

    /// The encoding used for parameters.
    pub fn ice_get_encoding_version(&self) -> EncodingVersion {
        self.r.encoding
    }

    /// The same proxy with another parameter encoding (`-e`).
    pub fn ice_encoding_version(&self, v: EncodingVersion) -> ObjectPrx {
        self.with(|r| r.encoding = v)
    }

    /// The same proxy with every endpoint timeout set to `ms` (-1 = infinite); it bounds the time
    /// to connect.
    pub fn ice_timeout(&self, ms: i32) -> ObjectPrx {
        self.with(|r| {
            for ep in &mut r.endpoints {
                if let Endpoint::Ip(ip) = ep {
                    ip.timeout = ms;
                }
            }
        })
    }

    /// The invocation timeout in milliseconds (-1 = none).
    pub fn ice_get_invocation_timeout(&self) -> i32 {
        self.r.invocation_timeout
    }

    /// The same proxy with an invocation timeout (ms; -1 = none): a call that gets no reply in
    /// time fails with [`Error::InvocationTimeout`].
    pub fn ice_invocation_timeout(&self, ms: i32) -> ObjectPrx {
        self.with(|r| r.invocation_timeout = ms)
    }

    /// The same proxy with compression forced on or off (overrides the endpoints' `-z`).
    pub fn ice_compress(&self, compress: bool) -> ObjectPrx {
        self.with(|r| r.compress = Some(compress))
    }

    /// Whether the proxy is secure (`-s`).
    pub fn ice_is_secure(&self) -> bool {
        self.r.secure
    }

    /// The endpoints.
    pub fn ice_get_endpoints(&self) -> &[Endpoint] {
        &self.r.endpoints
    }

    /// The same proxy with other endpoints (the adapter id is cleared).
    pub fn ice_endpoints(&self, endpoints: Vec<Endpoint>) -> ObjectPrx {
        self.with(|r| {
            r.endpoints = endpoints;
            r.adapter_id.clear();
        })
    }

    /// The adapter id ("" for a direct or well-known proxy).
    pub fn ice_get_adapter_id(&self) -> &str {
        &self.r.adapter_id
    }

    /// The same proxy made indirect: no endpoints, resolved through the locator by `adapter_id`
    /// (Ice's `ice_adapterId`; `""` makes it well-known).
    pub fn ice_adapter_id(&self, adapter_id: &str) -> ObjectPrx {
        self.with(|r| {
            r.adapter_id = adapter_id.to_string();
            r.endpoints.clear();
        })
    }

    /// Checks that the object exists (`ice_ping`).
    pub async fn ice_ping(&self) -> Result<()> {
        if !self.r.mode.is_twoway() {
            // As in Ice, a ping has no results, so oneway, batch and datagram proxies send it
            // too (and get no answer).
            let enc = self.r.encoding;
            let params = crate::protocol::encapsulate(enc.major, enc.minor, &[]);
            self.ice_invoke("ice_ping", OperationMode::Nonmutating, params, None)
                .await?;
            return Ok(());
        }
        let (ok, out) = self.invoke_builtin("ice_ping", &[]).await?;
        expect_ok(ok, &out)
    }

    /// Whether the object implements `type_id` (`ice_isA`).
    pub async fn ice_is_a(&self, type_id: &str) -> Result<bool> {
        let mut body = BytesMut::new();
        crate::protocol::put_string(&mut body, type_id);
        let (ok, out) = self.invoke_builtin("ice_isA", &body).await?;
        expect_ok(ok, &out)?;
        match out.get(6..) {
            Some([b]) => Ok(*b != 0),
            _ => Err(Error::marshal("bad ice_isA reply")),
        }
    }

    /// The most-derived type id of the object (`ice_id`).
    pub async fn ice_id(&self) -> Result<String> {
        let (ok, out) = self.invoke_builtin("ice_id", &[]).await?;
        expect_ok(ok, &out)?;
        let mut r = SimpleReader {
            b: &out[6..],
            pos: 0,
        };
        let s = r.string()?;
        r.end()?;
        Ok(s)
    }

    /// Every type id of the object, sorted (`ice_ids`).
    pub async fn ice_ids(&self) -> Result<Vec<String>> {
        let (ok, out) = self.invoke_builtin("ice_ids", &[]).await?;
        expect_ok(ok, &out)?;
        let mut r = SimpleReader {
            b: &out[6..],
            pos: 0,
        };
        let n = r.size()?;
        if n > r.b.len() {
            return Err(Error::marshal("out of bounds during unmarshaling"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(r.string()?);
        }
        r.end()?;
        Ok(v)
    }

    async fn invoke_builtin(&self, op: &str, body: &[u8]) -> Result<(bool, Bytes)> {
        if !self.r.mode.is_twoway() {
            return Err(Error::TwowayOnly(op.to_string()));
        }
        let enc = self.r.encoding;
        let params = crate::protocol::encapsulate(enc.major, enc.minor, body);
        self.ice_invoke(op, OperationMode::Nonmutating, params, None)
            .await
    }

    /// Sends a request with a raw parameter encapsulation (header included) and returns
    /// `(ok, out_encapsulation)`: `ok` is false when the encapsulation holds a user exception.
    /// Oneway and batch-oneway proxies return `(true, empty)` once the request is written (or
    /// queued). `ctx` overrides the proxy's context.
    pub async fn ice_invoke(
        &self,
        operation: &str,
        mode: OperationMode,
        in_encaps: Bytes,
        ctx: Option<&Context>,
    ) -> Result<(bool, Bytes)> {
        if self.r.mode.is_batch() || self.r.mode == InvocationMode::Datagram {
            return self
                .queue_or_send_datagram(operation, mode, in_encaps, ctx)
                .await;
        }
        let mut message = BytesMut::with_capacity(64 + in_encaps.len());
        self.head(operation, mode, ctx).start_message(&mut message);
        message.extend_from_slice(&in_encaps);
        crate::protocol::finish_request_message(&mut message)?;
        self.send_message(message.freeze(), operation, mode).await
    }

    /// [`ObjectPrx::ice_invoke`] on a batch proxy (the request is queued) or a datagram one.
    async fn queue_or_send_datagram(
        &self,
        operation: &str,
        mode: OperationMode,
        in_encaps: Bytes,
        ctx: Option<&Context>,
    ) -> Result<(bool, Bytes)> {
        let request = RequestData {
            request_id: 0,
            name: self.r.identity.name.clone(),
            category: self.r.identity.category.clone(),
            facet: self.r.facet.clone(),
            operation: operation.to_string(),
            mode,
            context: ctx
                .cloned()
                .or_else(|| self.r.context.clone())
                .unwrap_or_default(),
            params: in_encaps,
        };
        if self.r.mode.is_batch() {
            let first = {
                let mut q = self.r.batch.lock();
                request.write_fields(&mut q.fields);
                q.count += 1;
                q.count == 1
            };
            if first {
                let erased: Arc<dyn std::any::Any + Send + Sync> = self.r.clone();
                self.r.instance.register_batch(Arc::downgrade(&erased));
            }
            return Ok((true, Bytes::new()));
        }
        let message = build_message(
            MessageType::Request,
            &request.request_body(),
            self.compress(),
        );
        self.send_datagram(message).await?;
        Ok((true, Bytes::new()))
    }

    /// The fields of a request for `operation` through this proxy; `ctx` overrides the proxy's
    /// context.
    fn head<'a>(
        &'a self,
        operation: &'a str,
        mode: OperationMode,
        ctx: Option<&'a Context>,
    ) -> crate::protocol::RequestHead<'a> {
        static EMPTY: std::sync::OnceLock<Context> = std::sync::OnceLock::new();
        crate::protocol::RequestHead {
            name: &self.r.identity.name,
            category: &self.r.identity.category,
            facet: &self.r.facet,
            operation,
            mode,
            context: ctx
                .or(self.r.context.as_ref())
                .unwrap_or_else(|| EMPTY.get_or_init(Context::default)),
        }
    }

    /// Sends a whole Request message (see [`crate::protocol::RequestHead::start_message`]) on a
    /// twoway or oneway proxy, with retries, and returns `(ok, out_encapsulation)`.
    async fn send_message(
        &self,
        message: Bytes,
        operation: &str,
        mode: OperationMode,
    ) -> Result<(bool, Bytes)> {
        // The invocation timeout covers the whole call: connecting, sending, retries, the reply.
        let t = self.r.invocation_timeout;
        let reply = if t > 0 && self.r.mode.is_twoway() {
            tokio::time::timeout(
                Duration::from_millis(t as u64),
                self.send_with_retries(&message, operation, mode),
            )
            .await
            .map_err(|_| Error::InvocationTimeout(t as u64))??
        } else {
            self.send_with_retries(&message, operation, mode).await?
        };
        match reply {
            None => Ok((true, Bytes::new())),
            Some(ReplyBody::Ok(b)) => Ok((true, b)),
            Some(ReplyBody::UserException(b)) => Ok((false, b)),
            Some(other) => Err(other
                .to_error()
                .unwrap_or(Error::Protocol("unexpected reply".into()))),
        }
    }

    /// Sends the requests queued on this batch-oneway proxy as one BatchRequest.
    pub async fn ice_flush_batch_requests(&self) -> Result<()> {
        let (count, fields) = {
            let mut q = self.r.batch.lock();
            (std::mem::take(&mut q.count), std::mem::take(&mut q.fields))
        };
        if count == 0 {
            return Ok(());
        }
        let body = batch_body(count, &fields);
        let message = build_message(MessageType::BatchRequest, &body, self.compress());
        if self.r.mode == InvocationMode::BatchDatagram {
            return self.send_datagram(message).await;
        }
        let conn = self.get_connection().await?;
        conn.send_raw(message).await
    }

    /// Sends one message in a UDP datagram to the proxy's first UDP endpoint, or back to the
    /// sender of a datagram connection the proxy is bound to.
    async fn send_datagram(&self, message: Bytes) -> Result<()> {
        self.r.instance.check_not_destroyed()?;
        if let Some(c) = &self.r.fixed {
            if c.is_datagram() {
                return c.send_datagram(&message).await;
            }
            return Err(Error::NoEndpoint(self.to_string()));
        }
        let ep = self
            .r
            .endpoints
            .iter()
            .find_map(|e| match e {
                Endpoint::Ip(ip) if ip.transport == Transport::Udp => Some(ip),
                _ => None,
            })
            .ok_or_else(|| Error::NoEndpoint(self.to_string()))?;
        let udp = self.r.instance.udp_socket(ep).await?;
        if message.len() > udp.max_send {
            return Err(Error::DatagramLimit {
                size: message.len(),
                limit: udp.max_send,
            });
        }
        udp.socket.send(&message).await.map_err(|e| {
            Error::ConnectionLost(format!("udp send to {}: {e}", ep.socket_address()))
        })?;
        Ok(())
    }

    /// The connection this proxy's requests use (opening it if needed).
    pub async fn ice_get_connection(&self) -> Result<Connection> {
        self.get_connection().await
    }

    fn compress(&self) -> bool {
        self.r
            .compress
            .or(self.r.instance.override_compress)
            .unwrap_or_else(|| self.r.endpoints.first().is_some_and(|e| e.compress()))
    }

    async fn get_connection(&self) -> Result<Connection> {
        if let Some(c) = &self.r.fixed {
            // A datagram connection only sends datagrams (Ice: NoEndpointException).
            if c.is_datagram() {
                return Err(Error::NoEndpoint(self.to_string()));
            }
            return match c.closed_reason() {
                Some(e) => Err(e),
                None => Ok(c.clone()),
            };
        }
        if !self.r.endpoints.is_empty() {
            return self.connect_to(&self.r.endpoints).await;
        }
        // An indirect or well-known proxy: ask the locator, then ask again (bypassing the cache)
        // if the endpoints it gave no longer work.
        let endpoints = self.locate_boxed(true).await?;
        match self.connect_to(&endpoints).await {
            Ok(c) => Ok(c),
            Err(_) => {
                self.r.instance.forget_location(&self.location_key());
                let endpoints = self.locate_boxed(false).await?;
                self.connect_to(&endpoints).await
            }
        }
    }

    /// Connects to the first endpoint that answers. As in Ice (with `Ice.Default.PreferSecure`
    /// unset), a secure proxy (`-s`) uses only `ssl` and `wss` endpoints, and another tries
    /// the plain ones first.
    async fn connect_to(&self, endpoints: &[Endpoint]) -> Result<Connection> {
        let stream = |secure: bool| {
            endpoints.iter().filter_map(move |ep| match ep {
                Endpoint::Ip(ip) => match ip.transport {
                    Transport::Tcp | Transport::Ws if !secure => Some(ip),
                    Transport::Ssl | Transport::Wss if secure => Some(ip),
                    _ => None,
                },
                _ => None,
            })
        };
        let ordered: Vec<&IpEndpoint> = if self.r.secure {
            stream(true).collect()
        } else {
            stream(false).chain(stream(true)).collect()
        };
        let mut last = None;
        for ip in ordered {
            match self.r.instance.get_connection(ip).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NoEndpoint(self.to_string())))
    }

    /// The locator this proxy uses: its own (`ice_locator`), or `Ice.Default.Locator`.
    pub fn ice_get_locator(&self) -> Option<ObjectPrx> {
        if let Some(l) = &self.r.locator {
            return Some(l.clone());
        }
        let s = self
            .r
            .instance
            .properties
            .get_property("Ice.Default.Locator");
        ObjectPrx::parse(self.r.instance.clone(), &s).ok().flatten()
    }

    /// The same proxy resolved through another locator (`None`: `Ice.Default.Locator`).
    pub fn ice_locator(&self, locator: Option<ObjectPrx>) -> ObjectPrx {
        self.with(|r| r.locator = locator)
    }

    fn location_key(&self) -> String {
        if self.r.adapter_id.is_empty() {
            format!("object {}", self.r.identity)
        } else {
            format!("adapter {}", self.r.adapter_id)
        }
    }

    /// [`ObjectPrx::locate`], boxed: locating calls the locator, which is itself a proxy call.
    fn locate_boxed(
        &self,
        use_cache: bool,
    ) -> futures_util::future::BoxFuture<'_, Result<Vec<Endpoint>>> {
        Box::pin(self.locate(use_cache))
    }

    /// The endpoints of an indirect (`@ adapter`) or well-known proxy, from the locator (Ice's
    /// `findAdapterById` / `findObjectById`), cached per communicator.
    async fn locate(&self, use_cache: bool) -> Result<Vec<Endpoint>> {
        let key = self.location_key();
        if use_cache {
            if let Some(eps) = self.r.instance.cached_location(&key) {
                return Ok(eps);
            }
        }
        let locator = self
            .ice_get_locator()
            .ok_or_else(|| Error::NoEndpoint(self.to_string()))?;
        if locator.r.endpoints.is_empty() || !locator.r.adapter_id.is_empty() {
            return Err(Error::NoEndpoint(format!(
                "{self} (the locator must be a direct proxy)"
            )));
        }
        let eps = if self.r.adapter_id.is_empty() {
            let found = find(&locator, "findObjectById", |os| os.write(&self.r.identity))
                .await?
                .ok_or_else(|| not_found("object", &self.r.identity.to_string()))?;
            if found.r.endpoints.is_empty() && !found.r.adapter_id.is_empty() {
                find_adapter(&locator, &found.r.adapter_id).await?
            } else {
                found.r.endpoints.clone()
            }
        } else {
            find_adapter(&locator, &self.r.adapter_id).await?
        };
        if eps.is_empty() {
            return Err(Error::NoEndpoint(self.to_string()));
        }
        self.r.instance.cache_location(key, eps.clone());
        Ok(eps)
    }

    async fn send_with_retries(
        &self,
        message: &Bytes,
        operation: &str,
        mode: OperationMode,
    ) -> Result<Option<ReplyBody>> {
        let instance = &self.r.instance;
        let twoway = self.r.mode.is_twoway();
        let mut attempt = 0usize;
        loop {
            instance.check_not_destroyed()?;
            let result = self.send_once(message, twoway).await;
            let retry = match &result {
                Ok(Some(reply)) => match &reply.body {
                    ReplyBody::UnknownLocalException(_)
                    | ReplyBody::UnknownException(_)
                    | ReplyBody::UnknownUserException(_) => mode.is_idempotent(),
                    _ => false,
                },
                Ok(None) => false,
                Err(f) => {
                    !f.sent
                        || f.error.is_retryable_unsent()
                        || (mode.is_idempotent() && f.error.is_retryable_idempotent())
                }
            };
            let Some(delay) = instance
                .retry_intervals
                .get(attempt)
                .copied()
                .filter(|_| retry)
            else {
                return match result {
                    Ok(r) => Ok(r.map(|r| r.body)),
                    Err(f) => Err(f.error),
                };
            };
            attempt += 1;
            if instance.trace_retry >= 1 {
                let why = match &result {
                    Err(f) => f.error.to_string(),
                    Ok(Some(r)) => r.body.to_error().map(|e| e.to_string()).unwrap_or_default(),
                    Ok(None) => String::new(),
                };
                tracing::info!(
                    target: "floe::retry",
                    "retrying operation call `{operation}` (attempt {attempt}) because of: {why}",
                );
            }
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay as u64)).await;
            }
        }
    }

    async fn send_once(
        &self,
        message: &Bytes,
        twoway: bool,
    ) -> std::result::Result<Option<crate::protocol::ReplyData>, InvokeFailure> {
        let conn = self
            .get_connection()
            .await
            .map_err(|error| InvokeFailure { error, sent: false })?;
        let result = conn
            .send_request(message.clone(), self.compress(), twoway)
            .await;
        if let Err(f) = &result {
            if matches!(
                f.error,
                Error::ConnectionLost(_) | Error::CloseConnection | Error::ConnectionTimeout
            ) {
                self.r.instance.forget_connection(&conn);
            }
        }
        result
    }
}

/// Calls `findObjectById` or `findAdapterById` on a locator.
async fn find(
    locator: &ObjectPrx,
    op: &'static str,
    encode: impl FnOnce(&mut OutputStream),
) -> Result<Option<ObjectPrx>> {
    let r = locator
        .invoke::<Option<ObjectPrx>, Error>(
            op,
            OperationMode::Nonmutating,
            None,
            true,
            encode,
            |is| is.read::<Option<ObjectPrx>>(),
        )
        .await;
    match r {
        Err(Error::UnknownUserException(t)) if t.ends_with("NotFoundException") => Ok(None),
        other => other,
    }
}

/// The endpoints of object adapter `id`, from the locator's `findAdapterById`.
async fn find_adapter(locator: &ObjectPrx, id: &str) -> Result<Vec<Endpoint>> {
    let adapter = find(locator, "findAdapterById", |os| os.write(id))
        .await?
        .ok_or_else(|| not_found("object adapter", id))?;
    Ok(adapter.r.endpoints.clone())
}

fn not_found(kind: &str, id: &str) -> Error {
    Error::NotRegistered {
        kind: kind.into(),
        id: id.into(),
    }
}

fn expect_ok(ok: bool, out: &Bytes) -> Result<()> {
    if !ok {
        return Err(Error::UnknownUserException(
            user_exception_type_id(out).unwrap_or_default(),
        ));
    }
    crate::encoding::check_encoding(out)?;
    Ok(())
}

/// The most-derived type id of a user exception encapsulation (1.1 or 1.0), when it can be read.
fn user_exception_type_id(encaps: &[u8]) -> Option<String> {
    let body = encaps.get(6..)?;
    let mut r = SimpleReader { b: body, pos: 0 };
    r.u8().ok()?;
    r.string().ok()
}

struct SimpleReader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl SimpleReader<'_> {
    fn u8(&mut self) -> Result<u8> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| Error::marshal("out of bounds during unmarshaling"))?;
        self.pos += 1;
        Ok(v)
    }

    fn size(&mut self) -> Result<usize> {
        let first = self.u8()?;
        if first < 255 {
            return Ok(first as usize);
        }
        let s = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| Error::marshal("out of bounds during unmarshaling"))?;
        self.pos += 4;
        usize::try_from(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .map_err(|_| Error::marshal("negative size"))
    }

    fn string(&mut self) -> Result<String> {
        let n = self.size()?;
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or_else(|| Error::marshal("out of bounds during unmarshaling"))?;
        self.pos += n;
        String::from_utf8(s.to_vec()).map_err(|_| Error::marshal("string is not valid UTF-8"))
    }

    fn end(&self) -> Result<()> {
        if self.pos != self.b.len() {
            return Err(Error::marshal(
                "unexpected bytes at the end of the encapsulation",
            ));
        }
        Ok(())
    }
}

fn find_closing_quote(chars: &[char], start: usize) -> Option<usize> {
    let q = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == q {
            return Some(i);
        }
        i += 1;
    }
    None
}

impl ObjectPrx {
    pub(crate) fn from_reference(r: Arc<Reference>) -> ObjectPrx {
        ObjectPrx { r }
    }
}

impl Connection {
    /// A proxy for `id` bound to this connection (Ice's fixed proxy): calls go over this
    /// connection only, which is how a server calls back a client over a bidirectional
    /// connection. A fixed proxy has no endpoints: printed or marshaled, it reads as a
    /// well-known proxy.
    pub fn create_proxy(&self, id: Identity) -> Result<ObjectPrx> {
        let instance = self
            .inner_instance()
            .upgrade()
            .and_then(|owner| owner.downcast::<Instance>().ok())
            .ok_or(Error::CommunicatorDestroyed)?;
        let mut prx = ObjectPrx::new_direct(instance, id, Vec::new());
        let r = Arc::make_mut(&mut prx.r);
        r.fixed = Some(self.clone());
        // As in Ice, a proxy bound to a datagram connection sends datagrams.
        if self.is_datagram() {
            r.mode = InvocationMode::Datagram;
        }
        Ok(prx)
    }
}

thread_local! {
    static DECODE_INSTANCE: std::cell::RefCell<Option<Arc<Instance>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `instance` as the communicator of the proxies decoded inside it.
pub(crate) fn with_decode_instance<T>(instance: &Arc<Instance>, f: impl FnOnce() -> T) -> T {
    let previous = DECODE_INSTANCE.with(|c| c.replace(Some(instance.clone())));
    struct Restore(Option<Arc<Instance>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            DECODE_INSTANCE.with(|c| *c.borrow_mut() = prev);
        }
    }
    let _restore = Restore(previous);
    f()
}

impl From<&Endpoint> for EndpointData {
    fn from(ep: &Endpoint) -> EndpointData {
        match ep {
            Endpoint::Opaque(o) => EndpointData::Opaque(OpaqueEndpointData {
                endpoint_type: o.type_id,
                encoding: o.encoding,
                bytes: o.bytes.clone(),
            }),
            Endpoint::Ip(ip) => {
                let tcp = || TcpEndpointData {
                    host: ip.host.clone(),
                    port: i32::from(ip.port),
                    timeout: ip.timeout,
                    compress: ip.compress,
                };
                let ws = || WsEndpointData {
                    host: ip.host.clone(),
                    port: i32::from(ip.port),
                    timeout: ip.timeout,
                    compress: ip.compress,
                    resource: ip.resource.clone(),
                };
                match ip.transport {
                    Transport::Tcp => EndpointData::Tcp(tcp()),
                    Transport::Ssl => EndpointData::Ssl(tcp()),
                    Transport::Udp => EndpointData::Udp(UdpEndpointData {
                        host: ip.host.clone(),
                        port: i32::from(ip.port),
                        compress: ip.compress,
                    }),
                    Transport::Ws => EndpointData::Ws(ws()),
                    Transport::Wss => EndpointData::Wss(ws()),
                }
            }
        }
    }
}

impl TryFrom<&EndpointData> for Endpoint {
    type Error = Error;

    fn try_from(data: &EndpointData) -> Result<Endpoint> {
        let port = |p: i32| {
            u16::try_from(p).map_err(|_| Error::marshal(format!("endpoint port {p} out of range")))
        };
        let ip = |transport: Transport,
                  host: &str,
                  p: i32,
                  timeout: i32,
                  compress: bool|
         -> Result<IpEndpoint> {
            let mut ep = IpEndpoint::tcp(host, port(p)?);
            ep.transport = transport;
            ep.timeout = timeout;
            ep.compress = compress;
            Ok(ep)
        };
        Ok(Endpoint::Ip(match data {
            EndpointData::Tcp(t) => ip(Transport::Tcp, &t.host, t.port, t.timeout, t.compress)?,
            EndpointData::Ssl(t) => ip(Transport::Ssl, &t.host, t.port, t.timeout, t.compress)?,
            EndpointData::Udp(u) => ip(Transport::Udp, &u.host, u.port, -1, u.compress)?,
            EndpointData::Ws(w) | EndpointData::Wss(w) => {
                let t = if matches!(data, EndpointData::Ws(_)) {
                    Transport::Ws
                } else {
                    Transport::Wss
                };
                let mut ep = ip(t, &w.host, w.port, w.timeout, w.compress)?;
                ep.resource = w.resource.clone();
                ep
            }
            EndpointData::Opaque(o) => {
                return Ok(Endpoint::Opaque(OpaqueEndpoint {
                    type_id: o.endpoint_type,
                    encoding: o.encoding,
                    bytes: o.bytes.clone(),
                }));
            }
        }))
    }
}

impl ObjectPrx {
    /// The marshaled form of this proxy.
    pub fn to_proxy_data(&self) -> ProxyData {
        let r = &*self.r;
        ProxyData {
            identity: r.identity.clone(),
            facet: r.facet.clone(),
            mode: match r.mode {
                InvocationMode::Twoway => ProxyMode::Twoway,
                InvocationMode::Oneway => ProxyMode::Oneway,
                InvocationMode::BatchOneway => ProxyMode::BatchOneway,
                InvocationMode::Datagram => ProxyMode::Datagram,
                InvocationMode::BatchDatagram => ProxyMode::BatchDatagram,
            },
            secure: r.secure,
            protocol: r.protocol,
            encoding: r.encoding,
            endpoints: r.endpoints.iter().map(EndpointData::from).collect(),
            adapter_id: r.adapter_id.clone(),
        }
    }

    /// A proxy of `communicator` from its marshaled form.
    pub fn from_proxy_data(communicator: &Communicator, data: &ProxyData) -> Result<ObjectPrx> {
        Self::from_data(communicator.instance().clone(), data)
    }

    fn from_data(instance: Arc<Instance>, data: &ProxyData) -> Result<ObjectPrx> {
        let endpoints = data
            .endpoints
            .iter()
            .map(Endpoint::try_from)
            .collect::<Result<Vec<_>>>()?;
        let mut prx = ObjectPrx::new_direct(instance, data.identity.clone(), endpoints);
        let r = Arc::make_mut(&mut prx.r);
        r.facet = data.facet.clone();
        r.mode = match data.mode {
            ProxyMode::Twoway => InvocationMode::Twoway,
            ProxyMode::Oneway => InvocationMode::Oneway,
            ProxyMode::BatchOneway => InvocationMode::BatchOneway,
            ProxyMode::Datagram => InvocationMode::Datagram,
            ProxyMode::BatchDatagram => InvocationMode::BatchDatagram,
        };
        r.secure = data.secure;
        r.protocol = data.protocol;
        r.encoding = data.encoding;
        r.adapter_id = data.adapter_id.clone();
        Ok(prx)
    }

    /// Calls operation `op` the way generated code does (see docs/codegen-surface.md): `encode`
    /// writes the in-parameters, `decode` reads the out-parameters and return value, and a user
    /// exception is decoded into `E`. On a oneway or batch-oneway proxy a `twoway_only`
    /// operation fails with [`Error::TwowayOnly`]; others resolve once the request is written
    /// (or queued), with `decode` run on empty results.
    pub async fn invoke<R, E: OperationError>(
        &self,
        op: &'static str,
        mode: OperationMode,
        format: Option<FormatType>,
        twoway_only: bool,
        encode: impl FnOnce(&mut OutputStream),
        decode: impl FnOnce(&mut InputStream<'_>) -> Result<R> + Send,
    ) -> std::result::Result<R, E> {
        let twoway = self.r.mode.is_twoway();
        if twoway_only && !twoway {
            return Err(E::from(Error::TwowayOnly(op.to_string())));
        }
        let enc = self.r.encoding;
        let format = format.unwrap_or(self.r.instance.default_format);
        // A request sent now is encoded whole, the parameters straight behind its header and
        // fields: no copy of them between the caller's values and the socket. Batched and
        // datagram requests take the parameters alone.
        let whole = !self.r.mode.is_batch() && self.r.mode != InvocationMode::Datagram;
        let mut os = OutputStream::new(EncodingVersion::V1_0);
        if whole {
            let mut head = BytesMut::with_capacity(64);
            self.head(op, mode, None).start_message(&mut head);
            os.write_bytes(&head);
        }
        os.start_encapsulation(enc, format);
        encode(&mut os);
        os.end_encapsulation();
        let mut encoded = os.finish().map_err(E::from)?;
        let (ok, out) = if whole {
            crate::protocol::finish_request_message(&mut encoded).map_err(E::from)?;
            self.send_message(Bytes::from(encoded), op, mode).await
        } else {
            self.queue_or_send_datagram(op, mode, Bytes::from(encoded), None)
                .await
        }
        .map_err(E::from)?;
        let out = if twoway {
            out
        } else {
            crate::protocol::empty_encapsulation(enc.major, enc.minor)
        };
        with_decode_instance(&self.r.instance, || {
            let mut is = InputStream::new(&out, EncodingVersion::V1_0);
            is.set_accept_class_cycles(self.r.instance.accept_class_cycles);
            if ok {
                is.read_encapsulated(decode).map_err(E::from)
            } else {
                is.start_encapsulation().map_err(E::from)?;
                Err(is.read_exception::<E>())
            }
        })
    }
}

impl<P: Proxy> SliceType for Option<P> {
    const MIN_WIRE_SIZE: usize = 2;
    const TAG_FORMAT: OptionalFormat = OptionalFormat::FSize;

    fn encode(&self, os: &mut OutputStream) {
        match self {
            Some(p) => ProxyData::write(os, Some(&p.as_object().to_proxy_data())),
            None => ProxyData::write(os, None),
        }
    }

    fn decode(is: &mut InputStream<'_>) -> Result<Self> {
        let Some(data) = ProxyData::read(is)? else {
            return Ok(None);
        };
        let instance = DECODE_INSTANCE.with(|c| c.borrow().clone()).ok_or_else(|| {
            Error::marshal("a proxy can only be decoded within a communicator (see Communicator::decode_scope)")
        })?;
        Ok(Some(P::from_object(ObjectPrx::from_data(instance, &data)?)))
    }
}
