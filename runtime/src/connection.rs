//! Connections: one task (the actor) owns each socket; [`Connection`] handles talk to it over a
//! channel, and replies find their caller by request id. On an outgoing plain-TCP connection a
//! caller may write its request itself while the actor has nothing to write (`direct`).
//!
//! The actor validates the connection (a server sends ValidateConnection at once; a client waits
//! for it), reads and splits messages, dispatches requests concurrently through the object
//! adapter, writes replies, sends heartbeats and closes idle connections as Ice's ACM does, and
//! performs the graceful CloseConnection handshake.
//!
//! Tracing: target `floe::network` (connections opened, accepted and closed; heartbeats) follows
//! `Ice.Trace.Network`, and target `floe::protocol` (every message sent and received) follows
//! `Ice.Trace.Protocol`. Events of Ice trace level 1 are logged at INFO, level 2 at DEBUG and
//! level 3 at TRACE. A connection closed because the peer broke the protocol is always logged at
//! WARN, with the reason.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

mod direct;

use crate::error::{Error, RequestFailed, Result};
use crate::properties::Properties;
use crate::protocol::{
    Frame, FrameDecoder, HEADER_SIZE, Header, Message, MessageType, ReplyBody, ReplyData,
    RequestData, build_message, close_connection_message, validate_connection_message,
};

/// When to send heartbeats (`*.ACM.Heartbeat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmHeartbeat {
    /// Never.
    Off = 0,
    /// When idle and a dispatch is in progress (the default).
    OnDispatch = 1,
    /// Whenever the connection is idle.
    OnIdle = 2,
    /// At every check, busy or not.
    Always = 3,
}

/// When to close connections (`*.ACM.Close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmClose {
    /// Never.
    Off = 0,
    /// Gracefully, once idle for the timeout.
    OnIdle = 1,
    /// Forcefully, when replies are awaited and nothing arrived for the timeout.
    OnInvocation = 2,
    /// Both of the above (the client default).
    OnInvocationAndIdle = 3,
    /// Forcefully, once idle for the timeout.
    OnIdleForceful = 4,
}

/// Active connection management settings of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcmConfig {
    /// Inactivity timeout; zero disables ACM.
    pub timeout: Duration,
    /// Heartbeat policy.
    pub heartbeat: AcmHeartbeat,
    /// Close policy.
    pub close: AcmClose,
}

impl AcmConfig {
    /// Ice's defaults: 60 s, heartbeat on dispatch, and close on invocation and idle for
    /// outgoing connections, on invocation only for incoming ones. Idle incoming connections
    /// are bounded apart from ACM, by `Ice.Connection.IdleTimeout`
    /// ([`ConnectionConfig::idle_timeout`]).
    pub fn default_for(server: bool) -> Self {
        AcmConfig {
            timeout: Duration::from_secs(60),
            heartbeat: AcmHeartbeat::OnDispatch,
            close: if server {
                AcmClose::OnInvocation
            } else {
                AcmClose::OnInvocationAndIdle
            },
        }
    }

    /// Reads `<prefix>.Timeout` (seconds), `<prefix>.Heartbeat` and `<prefix>.Close`, falling back
    /// to `dflt` for what is unset or out of range.
    pub fn from_properties(props: &Properties, prefix: &str, dflt: AcmConfig) -> Self {
        let timeout_key = if (prefix == "Ice.ACM.Client" || prefix == "Ice.ACM.Server")
            && props.get_property(&format!("{prefix}.Timeout")).is_empty()
        {
            prefix.to_string()
        } else {
            format!("{prefix}.Timeout")
        };
        let t = props.get_property_as_int_with_default(&timeout_key, dflt.timeout.as_secs() as i32);
        let timeout = if t >= 0 {
            Duration::from_secs(t as u64)
        } else {
            dflt.timeout
        };
        let heartbeat = match props
            .get_property_as_int_with_default(&format!("{prefix}.Heartbeat"), dflt.heartbeat as i32)
        {
            0 => AcmHeartbeat::Off,
            1 => AcmHeartbeat::OnDispatch,
            2 => AcmHeartbeat::OnIdle,
            3 => AcmHeartbeat::Always,
            _ => dflt.heartbeat,
        };
        let close = match props
            .get_property_as_int_with_default(&format!("{prefix}.Close"), dflt.close as i32)
        {
            0 => AcmClose::Off,
            1 => AcmClose::OnIdle,
            2 => AcmClose::OnInvocation,
            3 => AcmClose::OnInvocationAndIdle,
            4 => AcmClose::OnIdleForceful,
            _ => dflt.close,
        };
        AcmConfig {
            timeout,
            heartbeat,
            close,
        }
    }
}

/// Settings a connection is created with.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionConfig {
    /// Largest accepted message, in bytes (`Ice.MessageSizeMax`).
    pub max_message_size: usize,
    /// ACM settings.
    pub acm: AcmConfig,
    /// What the connection lets its peer make it hold, and for how long.
    pub limits: Limits,
    /// How long a graceful close waits for the peer to close its side.
    pub close_timeout: Duration,
    /// `Ice.Trace.Network` level.
    pub trace_network: i32,
    /// `Ice.Trace.Protocol` level.
    pub trace_protocol: i32,
    /// The endpoint timeout: a write that makes no progress, or a message that stops arriving
    /// half-way, for this long closes the connection (Ice's `TimeoutException`).
    pub io_timeout: Option<Duration>,
    /// Dispatch this connection's requests one at a time, in arrival order
    /// (`Ice.ThreadPool.Server.Serialize`, `<Adapter>.ThreadPool.Serialize`).
    pub serialize: bool,
    /// While it holds true, the connection does not read (its object adapter holds).
    pub hold: Option<tokio::sync::watch::Receiver<bool>>,
    /// An incoming connection from which nothing has arrived for this long, with nothing
    /// dispatching or waiting to be sent, is closed gracefully (`Ice.Connection.IdleTimeout`);
    /// `None` for outgoing connections, whose ACM decides.
    pub idle_timeout: Option<Duration>,
    /// The instance of the communicator that owns the connection, for proxies bound to it
    /// (type-erased: connections sit below the instance).
    pub(crate) instance: std::sync::Weak<dyn std::any::Any + Send + Sync>,
}

/// Default of `Ice.Connection.MaxPendingReplyBytes`.
pub const DEFAULT_MAX_PENDING_REPLY_BYTES: usize = 4 << 20;
/// Default of `Ice.Connection.MessageTimeout`, in milliseconds.
pub const DEFAULT_MESSAGE_TIMEOUT_MS: i32 = 60_000;
/// Default of `Ice.Connection.MaxDecompressedBytesPerSecond`.
pub const DEFAULT_DECOMPRESSED_BYTES_PER_SECOND: usize = 16 << 20;
/// Default of `Ice.Connection.IdleTimeout`, in milliseconds.
pub const DEFAULT_IDLE_TIMEOUT_MS: i32 = 300_000;
/// Default of `Ice.Connection.MaxIncompleteBytes`.
pub const DEFAULT_MAX_INCOMPLETE_BYTES: usize = 128 << 20;
/// Default of `Ice.Connection.MaxQueuedOnewayBytes`.
pub const DEFAULT_MAX_QUEUED_ONEWAY_BYTES: usize = 1 << 20;

/// Compressed messages that inflate to more than this are decompressed on the blocking pool,
/// not on the task of their connection.
const INLINE_INFLATE_MAX: usize = 16 << 10;
/// A request (or batch) whose parameters are larger than this is first polled (the part of its
/// dispatch that decodes the parameters, in generated code) on the blocking pool.
const INLINE_DISPATCH_MAX: usize = 64 << 10;
/// Most messages a connection handles before it lets the scheduler run its other tasks.
const FRAME_BATCH: usize = 64;

/// What a connection lets its peer make it hold, and for how long: the defences of a server
/// facing untrusted clients (`Ice.Connection.*`, read once per communicator).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// A connection stops reading once the replies it has not sent yet plus the requests it is
    /// still dispatching hold more than this many bytes, and reads again once they are down to
    /// half (`Ice.Connection.MaxPendingReplyBytes`).
    pub max_pending_reply_bytes: usize,
    /// A message must arrive whole within this time of its first byte; a connection whose
    /// unsent replies stay above half of `max_pending_reply_bytes` for this long (its peer
    /// does not read them) is closed (`Ice.Connection.MessageTimeout`).
    pub message_timeout: Option<Duration>,
    /// Decompressed bytes one connection may produce per second, with bursts of one second's
    /// worth (`Ice.Connection.MaxDecompressedBytesPerSecond`); `None`: no limit.
    pub decompressed_per_second: Option<usize>,
    /// Room for messages that are still arriving, shared by a communicator's connections
    /// (`Ice.Connection.MaxIncompleteBytes`); `None`: no limit.
    pub incomplete: Option<IncompletePool>,
    /// Incoming connections idle for this long are closed (`Ice.Connection.IdleTimeout`);
    /// `None`: kept as long as ACM keeps them.
    pub idle_timeout: Option<Duration>,
    /// A oneway call returns as soon as its request is queued on the connection while the
    /// requests so queued and not yet written hold at most this many bytes; past it, and when
    /// this is 0, a oneway call returns once its request is written, as in Ice
    /// (`Ice.Connection.MaxQueuedOnewayBytes`).
    pub max_queued_oneway_bytes: usize,
}

impl Default for Limits {
    /// The defaults, with a pool of its own for incomplete messages.
    fn default() -> Self {
        Limits::from_properties(&Properties::new())
    }
}

impl Limits {
    /// Reads the `Ice.Connection.*` limits (sizes in bytes, times in milliseconds; 0 or less
    /// turns a limit off).
    pub fn from_properties(props: &Properties) -> Self {
        let bytes = |key: &str, dflt: usize| -> Option<usize> {
            let v = props.get_property(key);
            if v.is_empty() {
                return Some(dflt);
            }
            match v.trim().parse::<i64>() {
                Ok(n) if n > 0 => Some(n as usize),
                Ok(_) => None,
                Err(_) => {
                    tracing::warn!(
                        "numeric property {key} set to non-numeric value, defaulting to {dflt}"
                    );
                    Some(dflt)
                }
            }
        };
        let timeout = props.get_property_as_int_with_default(
            "Ice.Connection.MessageTimeout",
            DEFAULT_MESSAGE_TIMEOUT_MS,
        );
        let idle = props.get_property_as_int_with_default(
            "Ice.Connection.IdleTimeout",
            DEFAULT_IDLE_TIMEOUT_MS,
        );
        Limits {
            max_pending_reply_bytes: bytes(
                "Ice.Connection.MaxPendingReplyBytes",
                DEFAULT_MAX_PENDING_REPLY_BYTES,
            )
            .unwrap_or(usize::MAX),
            message_timeout: (timeout > 0).then(|| Duration::from_millis(timeout as u64)),
            decompressed_per_second: bytes(
                "Ice.Connection.MaxDecompressedBytesPerSecond",
                DEFAULT_DECOMPRESSED_BYTES_PER_SECOND,
            ),
            incomplete: bytes(
                "Ice.Connection.MaxIncompleteBytes",
                DEFAULT_MAX_INCOMPLETE_BYTES,
            )
            .map(IncompletePool::new),
            idle_timeout: (idle > 0).then(|| Duration::from_millis(idle as u64)),
            max_queued_oneway_bytes: bytes(
                "Ice.Connection.MaxQueuedOnewayBytes",
                DEFAULT_MAX_QUEUED_ONEWAY_BYTES,
            )
            .unwrap_or(0),
        }
    }
}

/// Bytes that a communicator's connections may hold for messages whose first bytes arrived and
/// the rest not yet. A connection takes room for a whole message (up to the total) when its
/// header shows it is not all there; when there is none left, the connection stops reading
/// until there is, in turn (the message deadline still runs).
#[derive(Debug, Clone)]
pub(crate) struct IncompletePool {
    room: Arc<tokio::sync::Semaphore>,
    total: usize,
}

impl IncompletePool {
    fn new(total: usize) -> Self {
        let total = total.min(tokio::sync::Semaphore::MAX_PERMITS);
        IncompletePool {
            room: Arc::new(tokio::sync::Semaphore::new(total)),
            total,
        }
    }

    /// The room a message of `size` bytes takes: all of it, or the whole pool for one larger
    /// than the pool.
    fn room_for(&self, size: usize) -> u32 {
        size.min(self.total).min(u32::MAX as usize) as u32
    }
}

/// Work that keeps a thread busy for long (inflating large bodies, decoding large parameters)
/// runs on the blocking pool, at most this many at once in the process: half of the cores,
/// at least one. The others keep serving connections whatever the peers send.
fn heavy_work() -> Arc<tokio::sync::Semaphore> {
    static HEAVY: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    HEAVY
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Arc::new(tokio::sync::Semaphore::new((cores / 2).max(1)))
        })
        .clone()
}

/// Receives the requests that arrive on a connection (the object adapter implements it).
pub(crate) trait RequestHandler: Send + Sync + 'static {
    /// Dispatches one request and produces its reply (ignored for oneway requests).
    /// `connection` is `None` for requests that arrived in UDP datagrams.
    fn handle(
        &self,
        request: RequestData,
        connection: Option<Connection>,
    ) -> BoxFuture<'static, ReplyBody>;

    /// The name of the object adapter behind this handler.
    fn adapter_name(&self) -> String {
        String::new()
    }

    /// Whether decoding the parameters of `request` may take long for their size (they may
    /// hold class graphs): a dispatch whose parameters are large and may take long starts on
    /// the blocking pool. Those that cannot (byte sequences, strings, structs, raw requests)
    /// are dispatched in place whatever their size.
    fn may_decode_slowly(&self, _request: &RequestData) -> bool {
        true
    }
}

/// Why a request failed on a connection, and whether it may have reached the peer.
#[derive(Debug, Clone)]
pub(crate) struct InvokeFailure {
    pub error: Error,
    pub sent: bool,
}

type ReplySender = oneshot::Sender<std::result::Result<Option<ReplyData>, InvokeFailure>>;
type ReplyReceiver = oneshot::Receiver<std::result::Result<Option<ReplyData>, InvokeFailure>>;

/// Learns the fate of a raw message: written (`Ok`) or not.
type RawDone = Box<dyn FnOnce(Result<()>) + Send + Sync + 'static>;

enum Command {
    /// A Request message whose request id the connection sets. Without `reply`, a oneway
    /// request whose caller did not wait (its bytes are counted in `Inner::queued_oneways`).
    Request {
        message: Bytes,
        compress: bool,
        twoway: bool,
        reply: Option<ReplySender>,
    },
    Raw {
        message: Bytes,
        done: RawDone,
    },
    Heartbeat,
    Close {
        graceful: bool,
    },
    /// Fails every request still waiting for a reply with this error, then closes gracefully.
    Abort(Error),
    /// A caller left part of its request with the gate: write it.
    Flush,
}

/// The twoway requests of a connection that wait for their replies, by request id.
struct Requests {
    waiting: HashMap<i32, Pending>,
    next_id: i32,
}

impl Requests {
    fn new() -> Self {
        Requests {
            waiting: HashMap::new(),
            next_id: 1,
        }
    }

    /// Registers `reply` under a new request id, and returns that id.
    fn add(&mut self, reply: ReplySender) -> i32 {
        let id = self.next_id;
        self.next_id = if id == i32::MAX { 1 } else { id + 1 };
        self.waiting.insert(id, Pending { reply, sent: false });
        id
    }

    fn mark_sent(&mut self, id: i32) {
        if let Some(p) = self.waiting.get_mut(&id) {
            p.sent = true;
        }
    }
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

struct Inner {
    id: u64,
    /// False once the connection stops taking new requests (closing or closed).
    active: std::sync::atomic::AtomicBool,
    /// Set by a forceful [`Connection::close`]: from then on nothing more is written (a reply
    /// still being dispatched is dropped, as Ice drops it).
    forced: std::sync::atomic::AtomicBool,
    tx: mpsc::UnboundedSender<Command>,
    /// The twoway requests waiting for their replies.
    requests: parking_lot::Mutex<Requests>,
    /// On an outgoing plain-TCP connection: lets callers write their requests themselves.
    gate: Option<direct::Gate>,
    /// Bytes of oneway requests queued without their callers waiting, not yet written.
    queued_oneways: AtomicUsize,
    /// The bound on `queued_oneways` (`Ice.Connection.MaxQueuedOnewayBytes`).
    max_queued_oneways: usize,
    closed: watch::Receiver<Option<Error>>,
    local: SocketAddr,
    remote: SocketAddr,
    server: bool,
    handler: parking_lot::RwLock<Option<Arc<dyn RequestHandler>>>,
    /// The endpoint it was accepted on or connected to.
    endpoint: parking_lot::Mutex<Option<crate::endpoint::Endpoint>>,
    /// Called for each heartbeat (ValidateConnection) received.
    heartbeat_callback: parking_lot::Mutex<Option<HeartbeatCallback>>,
    instance: std::sync::Weak<dyn std::any::Any + Send + Sync>,
    /// The TLS peer information of an `ssl` or `wss` connection.
    ssl: Option<crate::transport::SslConnectionInfo>,
    /// The HTTP headers of the WebSocket upgrade an accepted `ws` or `wss` connection began with.
    ws_headers: Option<Vec<(String, String)>>,
    /// For the connection of a datagram received by an adapter: the socket it came in on and
    /// the sender, to send datagrams back to.
    datagram: Option<DatagramPeer>,
}

/// Where a datagram connection sends: back to `peer` from the adapter's socket.
struct DatagramPeer {
    socket: Arc<crate::transport::udp::UdpSocket>,
    peer: SocketAddr,
}

/// What [`Connection::set_heartbeat_callback`] installs.
pub type HeartbeatCallback = Arc<dyn Fn(&Connection) + Send + Sync>;

/// A handle to an open (or closed) connection. Cheap to clone.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection({})", self)
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "local address = {}\nremote address = {}",
            self.inner.local, self.inner.remote
        )
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}
impl Eq for Connection {}

impl std::hash::Hash for Connection {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.id.hash(state)
    }
}

impl Connection {
    /// The local socket address.
    pub fn local_address(&self) -> SocketAddr {
        self.inner.local
    }

    /// The peer's socket address.
    pub fn remote_address(&self) -> SocketAddr {
        self.inner.remote
    }

    /// Whether this connection was accepted by an object adapter (rather than opened by a proxy).
    pub fn is_incoming(&self) -> bool {
        self.inner.server
    }

    /// The connection of datagrams that `peer` sent to an adapter's UDP `socket`, as Ice's
    /// `current.con` of a datagram request: proxies it creates send datagrams back to `peer`
    /// from that socket. It has no actor: nothing is read from it, and closing it does nothing.
    pub(crate) fn datagram(
        socket: Arc<crate::transport::udp::UdpSocket>,
        peer: SocketAddr,
        endpoint: crate::endpoint::Endpoint,
        handler: Option<Arc<dyn RequestHandler>>,
        instance: std::sync::Weak<dyn std::any::Any + Send + Sync>,
    ) -> std::io::Result<Connection> {
        let local = socket.socket.local_addr()?;
        let (tx, _) = mpsc::unbounded_channel();
        let (_, closed) = watch::channel(None);
        Ok(Connection {
            inner: Arc::new(Inner {
                id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                active: std::sync::atomic::AtomicBool::new(true),
                forced: std::sync::atomic::AtomicBool::new(false),
                tx,
                requests: parking_lot::Mutex::new(Requests::new()),
                gate: None,
                queued_oneways: AtomicUsize::new(0),
                max_queued_oneways: 0,
                closed,
                local,
                remote: peer,
                server: true,
                handler: parking_lot::RwLock::new(handler),
                endpoint: parking_lot::Mutex::new(Some(endpoint)),
                heartbeat_callback: parking_lot::Mutex::new(None),
                instance,
                ssl: None,
                ws_headers: None,
                datagram: Some(DatagramPeer { socket, peer }),
            }),
        })
    }

    /// The HTTP headers (name and value, in arrival order) of the WebSocket upgrade that an
    /// accepted `ws` or `wss` connection began with, as Ice's `WSConnectionInfo::headers`;
    /// `None` for other connections.
    pub fn ws_headers(&self) -> Option<&[(String, String)]> {
        self.inner.ws_headers.as_deref()
    }

    /// Whether this is the connection of a datagram ([`Connection::datagram`]).
    pub fn is_datagram(&self) -> bool {
        self.inner.datagram.is_some()
    }

    /// Sends `message` (one whole Ice message) as one datagram back to the peer of a datagram
    /// connection; a message larger than the socket carries is `Error::DatagramLimit`.
    pub(crate) async fn send_datagram(&self, message: &[u8]) -> Result<()> {
        let Some(d) = &self.inner.datagram else {
            return Err(Error::IllegalArgument("not a datagram connection".into()));
        };
        let limit = d.socket.max_send;
        if message.len() > limit {
            return Err(Error::DatagramLimit {
                size: message.len(),
                limit,
            });
        }
        d.socket
            .socket
            .send_to(message, d.peer)
            .await
            .map_err(|e| Error::ConnectionLost(format!("udp send to {}: {e}", d.peer)))?;
        Ok(())
    }

    /// The endpoint the connection was accepted on (an adapter's endpoint, with its bound
    /// port) or connected to: Ice's `Connection::getEndpoint`.
    pub fn endpoint(&self) -> Option<crate::endpoint::Endpoint> {
        self.inner.endpoint.lock().clone()
    }

    pub(crate) fn set_endpoint(&self, endpoint: crate::endpoint::Endpoint) {
        *self.inner.endpoint.lock() = Some(endpoint);
    }

    /// What an `ssl` or `wss` connection knows about its peer (IceSSL's `ConnectionInfo`): its
    /// certificate chain, whether it was verified, the cipher suite. `None` for other
    /// transports. A servant reaches it through `current.con` to authorize by certificate.
    pub fn ssl_info(&self) -> Option<&crate::transport::SslConnectionInfo> {
        self.inner.ssl.as_ref()
    }

    /// The name of the object adapter that dispatches the requests arriving on this connection
    /// ("" when there is none): the `adapterName` of Ice's `ConnectionInfo`.
    pub fn adapter_name(&self) -> String {
        self.inner
            .handler
            .read()
            .as_ref()
            .map(|h| h.adapter_name())
            .unwrap_or_default()
    }

    /// Why the connection is closed, or `None` while it is open.
    pub fn closed_reason(&self) -> Option<Error> {
        self.inner.closed.borrow().clone()
    }

    /// Whether the connection still takes new requests (it is neither closing nor closed).
    pub fn is_active(&self) -> bool {
        self.inner.active.load(Ordering::Acquire) && !self.is_closed()
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.borrow().is_some()
    }

    pub(crate) fn inner_instance(&self) -> &std::sync::Weak<dyn std::any::Any + Send + Sync> {
        &self.inner.instance
    }

    /// Sets (or clears) what dispatches the requests that arrive on this connection; for an
    /// outgoing connection this makes it bidirectional.
    pub(crate) fn set_handler(&self, handler: Option<Arc<dyn RequestHandler>>) {
        *self.inner.handler.write() = handler;
    }

    /// Waits until the connection is closed and returns why.
    pub async fn wait_closed(&self) -> Error {
        let mut rx = self.inner.closed.clone();
        loop {
            if let Some(e) = rx.borrow_and_update().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                return rx
                    .borrow()
                    .clone()
                    .unwrap_or(Error::ConnectionClosed("connection task ended".into()));
            }
        }
    }

    /// Closes the connection. Graceful: waits for outstanding replies and dispatches, then does
    /// the CloseConnection handshake. Forceful: drops the socket at once.
    pub fn close(&self, graceful: bool) {
        self.inner.active.store(false, Ordering::Release);
        if !graceful {
            self.inner.forced.store(true, Ordering::Release);
        }
        let _ = self.inner.tx.send(Command::Close { graceful });
    }

    /// Fails the requests still waiting for replies with `error` (the replies will be ignored),
    /// then closes gracefully: what destroying the communicator does to its connections.
    pub(crate) fn abort_and_close(&self, error: Error) {
        self.inner.active.store(false, Ordering::Release);
        let _ = self.inner.tx.send(Command::Abort(error));
    }

    /// Calls `callback` for every heartbeat the peer sends from now on (`None` removes it), as
    /// Ice's `setHeartbeatCallback`. It runs on the connection's task: keep it short.
    pub fn set_heartbeat_callback(&self, callback: Option<HeartbeatCallback>) {
        *self.inner.heartbeat_callback.lock() = callback;
    }

    /// Sends a heartbeat (ValidateConnection) now.
    pub fn heartbeat(&self) {
        let _ = self.inner.tx.send(Command::Heartbeat);
    }

    /// Sends a request. `message` is a whole Request message whose request id (four bytes after
    /// the header) the connection sets. Resolves with the reply (twoway); a oneway resolves once
    /// its request is queued while the oneways queued so and not yet written hold at most
    /// `Ice.Connection.MaxQueuedOnewayBytes`, and once it is written otherwise.
    pub(crate) async fn send_request(
        &self,
        message: Bytes,
        compress: bool,
        twoway: bool,
    ) -> std::result::Result<Option<ReplyData>, InvokeFailure> {
        let inner = &self.inner;
        let message = match &inner.gate {
            Some(gate) if !compress => match self.write_directly(gate, message, twoway).await {
                Ok(result) => return result,
                Err(message) => message,
            },
            _ => message,
        };
        if !twoway && inner.active.load(Ordering::Acquire) {
            // A connection that stopped taking requests takes the path below, which fails
            // the request as not sent, so that the caller retries it on another connection.
            let n = message.len();
            let queued = inner.queued_oneways.fetch_add(n, Ordering::AcqRel) + n;
            if queued <= inner.max_queued_oneways {
                let cmd = Command::Request {
                    message,
                    compress,
                    twoway,
                    reply: None,
                };
                return match self.enqueue(cmd) {
                    Ok(()) => Ok(None),
                    Err(_) => {
                        inner.queued_oneways.fetch_sub(n, Ordering::AcqRel);
                        Err(InvokeFailure {
                            error: self.closed_error(),
                            sent: false,
                        })
                    }
                };
            }
            inner.queued_oneways.fetch_sub(n, Ordering::AcqRel);
        }
        let (tx, rx) = oneshot::channel();
        if self
            .enqueue(Command::Request {
                message,
                compress,
                twoway,
                reply: Some(tx),
            })
            .is_err()
        {
            return Err(InvokeFailure {
                error: self.closed_error(),
                sent: false,
            });
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(InvokeFailure {
                error: self.closed_error(),
                sent: false,
            }),
        }
    }

    /// Writes `message` as it is and resolves once it is written. `message` holds one or more
    /// complete protocol messages back to back (a BatchRequest, or several oneway Requests built
    /// with [`crate::protocol::build_message`], which then go out in one write); the caller is
    /// responsible for their being well-formed, and must not send twoway requests this way (their
    /// replies would be discarded as unknown).
    pub async fn send_raw(&self, message: Bytes) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send_raw_then(message, move |result| {
            let _ = tx.send(result);
        });
        rx.await.unwrap_or_else(|_| Err(self.closed_error()))
    }

    /// [`Connection::send_raw`] without waiting: queues `message` and returns at once; `done`
    /// is called with the outcome once the message is written (`Ok`) or can no longer be
    /// (`Err`, the connection is closing or closed). Messages queued by one caller are written
    /// in the order they were queued. `done` runs on the connection's task (or, when the
    /// connection is already gone, on the caller's, before this returns): it must be short and
    /// must not block. A forwarder uses it to keep one write in flight per peer without a task
    /// waiting for each write.
    pub fn send_raw_then(
        &self,
        message: Bytes,
        done: impl FnOnce(Result<()>) + Send + Sync + 'static,
    ) {
        if let Err(Command::Raw { done, .. }) = self.enqueue(Command::Raw {
            message,
            done: Box::new(done),
        }) {
            done(Err(self.closed_error()));
        }
    }

    /// [`Connection::send_raw_then`], except that on an outgoing plain-TCP connection whose task
    /// has nothing to write, `message` is written from the calling task before this returns:
    /// then `done` is dropped uncalled and this returns true. Otherwise it returns false, and
    /// `done` is called as `send_raw_then` calls it. A forwarder loops on true instead of
    /// continuing from `done`, which would nest one call in another for every message.
    pub fn send_raw_now_or_then(
        &self,
        message: Bytes,
        done: impl FnOnce(Result<()>) + Send + Sync + 'static,
    ) -> bool {
        let inner = &self.inner;
        let free = inner
            .gate
            .as_ref()
            .and_then(|gate| gate.free(|| self.takes_requests()));
        let Some(mut free) = free else {
            self.send_raw_then(message, done);
            return false;
        };
        let written = free.write(&message, &[]);
        if written == message.len() {
            return true;
        }
        if written == 0 {
            drop(free);
            self.send_raw_then(message, done);
            return false;
        }
        self.leave_to_task(
            free,
            direct::Leftover {
                frames: vec![message.slice(written..)],
                request_id: None,
                done: Some(Done::Raw(Box::new(done))),
            },
        );
        false
    }

    /// Leaves what the socket did not take from a caller to the connection's task, and wakes
    /// the task to write it.
    fn leave_to_task(&self, free: direct::Free<'_>, leftover: direct::Leftover) {
        free.leave(leftover);
        let _ = self.inner.tx.send(Command::Flush);
    }

    /// Whether the connection still takes requests (not closing, not closed forcefully).
    fn takes_requests(&self) -> bool {
        self.inner.active.load(Ordering::Acquire) && !self.inner.forced.load(Ordering::Acquire)
    }

    /// Sends a request or raw message to the connection's task; gives it back if the task is
    /// gone. While it waits in the channel, callers do not write to the socket themselves.
    fn enqueue(&self, cmd: Command) -> std::result::Result<(), Command> {
        let gate = self.inner.gate.as_ref();
        if let Some(gate) = gate {
            gate.queued();
        }
        self.inner
            .tx
            .send(cmd)
            .map_err(|mpsc::error::SendError(cmd)| {
                if let Some(gate) = gate {
                    gate.unqueued();
                }
                cmd
            })
    }

    /// Writes request `message` to the socket from the calling task when the connection's task
    /// has nothing to write ([`direct`]); gives `message` back otherwise.
    async fn write_directly(
        &self,
        gate: &direct::Gate,
        message: Bytes,
        twoway: bool,
    ) -> std::result::Result<std::result::Result<Option<ReplyData>, InvokeFailure>, Bytes> {
        let Some(rx) = self.write_now(gate, message, twoway)? else {
            return Ok(Ok(None));
        };
        Ok(match rx.await {
            Ok(r) => r,
            Err(_) => Err(InvokeFailure {
                error: self.closed_error(),
                sent: false,
            }),
        })
    }

    /// The writing part of [`Connection::write_directly`]: what to wait for, if anything.
    fn write_now(
        &self,
        gate: &direct::Gate,
        message: Bytes,
        twoway: bool,
    ) -> std::result::Result<Option<ReplyReceiver>, Bytes> {
        let inner = &self.inner;
        let Some(mut free) = gate.free(|| self.takes_requests()) else {
            return Err(message);
        };
        // Registered before the write: the reply may come before this task runs again.
        let (id, reply) = if twoway {
            let (tx, rx) = oneshot::channel();
            (inner.requests.lock().add(tx), Some(rx))
        } else {
            (0, None)
        };
        let (head, tail) = request_frames(message.clone(), id, false);
        let tail = tail.unwrap_or_default();
        let written = free.write(&head, &tail);
        let total = head.len() + tail.len();
        if written == 0 {
            drop(free);
            if twoway {
                inner.requests.lock().waiting.remove(&id);
            }
            return Err(message);
        }
        if written == total {
            if twoway {
                // Marked while the socket is held: a connection that fails from now on knows
                // the request reached it.
                inner.requests.lock().mark_sent(id);
            }
            return Ok(reply);
        }
        let mut frames = Vec::with_capacity(2);
        if written < head.len() {
            frames.push(head.slice(written..));
        }
        if !tail.is_empty() {
            frames.push(tail.slice(written.saturating_sub(head.len())..));
        }
        // A oneway returns once queued, within the bound on queued oneways, as through the
        // connection's task; past the bound, once written.
        let (done, rx) = match reply {
            Some(rx) => (None, Some(rx)),
            None => {
                let n = total - written;
                let queued = inner.queued_oneways.fetch_add(n, Ordering::AcqRel) + n;
                if queued <= inner.max_queued_oneways {
                    (Some(Done::Queued(n)), None)
                } else {
                    inner.queued_oneways.fetch_sub(n, Ordering::AcqRel);
                    let (tx, rx) = oneshot::channel();
                    (Some(Done::Oneway(tx)), Some(rx))
                }
            }
        };
        self.leave_to_task(
            free,
            direct::Leftover {
                frames,
                request_id: twoway.then_some(id),
                done,
            },
        );
        Ok(rx)
    }

    fn closed_error(&self) -> Error {
        self.closed_reason()
            .unwrap_or(Error::ConnectionLost("connection closed".into()))
    }
}

/// How to reach a server: plain TCP, a WebSocket upgrade, or TLS (`ssl`, and `wss` with
/// the upgrade on top).
#[derive(Debug, Clone)]
pub(crate) enum Dial {
    Tcp,
    Ws(WsTarget),
    Ssl {
        engine: Arc<crate::transport::ssl::SslEngine>,
        /// The host dialled, for the certificate's name check.
        host: String,
        ws: Option<WsTarget>,
    },
}

/// Where a WebSocket upgrade asks to go: `resource` on `host:port`.
#[derive(Debug, Clone)]
pub(crate) struct WsTarget {
    pub host: String,
    pub port: u16,
    pub resource: String,
}

fn not_validated(addr: &str, e: impl fmt::Display) -> Error {
    Error::ConnectFailed(format!("{addr}: connection not validated: {e}"))
}

/// Waits for the server's ValidateConnection (exactly the 14-byte header). A TLS alert read
/// instead (a server refusing our certificate after a TLS 1.3 handshake) is a security error.
async fn read_validation<R: AsyncRead + Unpin>(r: &mut R, addr: &str) -> Result<()> {
    let mut hdr = [0u8; HEADER_SIZE];
    r.read_exact(&mut hdr).await.map_err(|e| {
        crate::transport::ssl::stream_error(&e, addr).unwrap_or_else(|| not_validated(addr, e))
    })?;
    let h = Header::parse(&hdr, usize::MAX).map_err(|e| not_validated(addr, e))?;
    if h.message_type != MessageType::ValidateConnection || h.size != HEADER_SIZE {
        return Err(not_validated(
            addr,
            format!(
                "expected ValidateConnection, got {:?} of {} bytes",
                h.message_type, h.size
            ),
        ));
    }
    Ok(())
}

/// Opens a client connection: connects (upgrading to WebSocket for `ws` endpoints), waits for
/// the server's ValidateConnection (within `connect_timeout`), and starts the actor.
pub(crate) async fn connect(
    addr: &str,
    dial: Dial,
    connect_timeout: Option<Duration>,
    config: ConnectionConfig,
    handler: Option<Arc<dyn RequestHandler>>,
) -> Result<Connection> {
    let attempt = async {
        let mut stream = crate::transport::tcp::dial(addr).await?;
        let (local, remote) =
            addresses(&stream).map_err(|e| Error::ConnectFailed(e.to_string()))?;
        match dial {
            Dial::Tcp => {
                read_validation(&mut stream, addr).await?;
                let (r, w) = stream.into_split();
                Ok::<_, Error>(Transport::Tcp(r, w, local, remote))
            }
            Dial::Ws(ws) => {
                let leftover =
                    crate::transport::ws::connect(&mut stream, &ws.host, ws.port, &ws.resource)
                        .await?;
                let (r, w) = stream.into_split();
                let mut r = crate::transport::ws::WsReader::new(r, leftover, false);
                read_validation(&mut r, addr).await?;
                Ok(Transport::Ws(
                    r,
                    crate::transport::ws::WsWriter::new(w, false),
                    local,
                    remote,
                ))
            }
            Dial::Ssl { engine, host, ws } => {
                let (mut tls, info) = engine.connect(stream, &host, addr).await?;
                let leftover = match &ws {
                    Some(ws) => Some(
                        crate::transport::ws::connect(&mut tls, &ws.host, ws.port, &ws.resource)
                            .await?,
                    ),
                    None => None,
                };
                let (r, w) = tokio::io::split(tls);
                let peer = Peer {
                    local,
                    remote,
                    ssl: Some(info),
                    ws_headers: None,
                    gate: None,
                };
                match leftover {
                    Some(leftover) => {
                        let mut r = crate::transport::ws::WsReader::new(r, leftover, false);
                        read_validation(&mut r, addr).await?;
                        Ok(Transport::Wss(
                            r,
                            crate::transport::ws::WsWriter::new(w, false),
                            peer,
                        ))
                    }
                    None => {
                        let mut r = r;
                        read_validation(&mut r, addr).await?;
                        Ok(Transport::Ssl(r, w, peer))
                    }
                }
            }
        }
    };
    let transport = match connect_timeout {
        Some(t) => tokio::time::timeout(t, attempt)
            .await
            .map_err(|_| Error::ConnectTimeout(format!("{addr} after {} ms", t.as_millis())))??,
        None => attempt.await?,
    };
    let trace = config.trace_network;
    let conn = match transport {
        // Callers write their requests themselves, unless every message sent is traced.
        Transport::Tcp(r, w, local, remote) if config.trace_protocol < 1 => {
            let w = Arc::new(w);
            let peer = Peer {
                gate: Some(direct::Gate::new(w.clone())),
                ..Peer::plain(local, remote)
            };
            start_on(r, direct::SharedWrite(w), peer, config, handler, false)
        }
        Transport::Tcp(r, w, local, remote) => {
            start_on(r, w, Peer::plain(local, remote), config, handler, false)
        }
        Transport::Ws(r, w, local, remote) => {
            start_on(r, w, Peer::plain(local, remote), config, handler, false)
        }
        Transport::Ssl(r, w, peer) => start_on(r, w, peer, config, handler, false),
        Transport::Wss(r, w, peer) => start_on(r, w, peer, config, handler, false),
    };
    if trace >= 1 {
        tracing::info!(target: "floe::network", "established connection\n{conn}");
    }
    Ok(conn)
}

type TcpRead = tokio::net::tcp::OwnedReadHalf;
type TcpWrite = tokio::net::tcp::OwnedWriteHalf;
type TlsRead = tokio::io::ReadHalf<tokio_rustls::TlsStream<TcpStream>>;
type TlsWrite = tokio::io::WriteHalf<tokio_rustls::TlsStream<TcpStream>>;

enum Transport {
    Tcp(TcpRead, TcpWrite, SocketAddr, SocketAddr),
    Ws(
        crate::transport::ws::WsReader<TcpRead>,
        crate::transport::ws::WsWriter<TcpWrite>,
        SocketAddr,
        SocketAddr,
    ),
    Ssl(TlsRead, TlsWrite, Peer),
    Wss(
        crate::transport::ws::WsReader<TlsRead>,
        crate::transport::ws::WsWriter<TlsWrite>,
        Peer,
    ),
}

/// The two ends of a connection, and what TLS told about the peer.
struct Peer {
    local: SocketAddr,
    remote: SocketAddr,
    ssl: Option<crate::transport::SslConnectionInfo>,
    /// The HTTP headers of an accepted WebSocket upgrade.
    ws_headers: Option<Vec<(String, String)>>,
    /// On an outgoing plain-TCP connection: the gate through which callers write to the socket
    /// themselves.
    gate: Option<direct::Gate>,
}

impl Peer {
    fn plain(local: SocketAddr, remote: SocketAddr) -> Peer {
        Peer {
            local,
            remote,
            ssl: None,
            ws_headers: None,
            gate: None,
        }
    }
}

/// Starts the actor of an accepted connection; it sends ValidateConnection first.
pub(crate) fn accept(
    stream: TcpStream,
    config: ConnectionConfig,
    handler: Arc<dyn RequestHandler>,
) -> Result<Connection> {
    let _ = stream.set_nodelay(true);
    start(stream, config, Some(handler), true)
}

/// A TCP stream's local and remote addresses.
fn addresses(stream: &TcpStream) -> std::io::Result<(SocketAddr, SocketAddr)> {
    Ok((stream.local_addr()?, stream.peer_addr()?))
}

/// Upgrades an accepted connection to WebSocket, then starts its actor.
pub(crate) async fn accept_ws(
    mut stream: TcpStream,
    config: ConnectionConfig,
    handler: Arc<dyn RequestHandler>,
) -> Result<Connection> {
    let _ = stream.set_nodelay(true);
    let (local, remote) = addresses(&stream).map_err(|e| Error::ConnectionLost(e.to_string()))?;
    let (leftover, headers) = tokio::time::timeout(
        config.close_timeout,
        crate::transport::ws::accept(&mut stream),
    )
    .await
    .map_err(|_| Error::ConnectTimeout(format!("websocket upgrade from {remote}")))??;
    let (r, w) = stream.into_split();
    let r = crate::transport::ws::WsReader::new(r, leftover, true);
    let w = crate::transport::ws::WsWriter::new(w, true);
    Ok(start_on(
        r,
        w,
        Peer {
            ws_headers: Some(headers),
            ..Peer::plain(local, remote)
        },
        config,
        Some(handler),
        true,
    ))
}

/// Runs the TLS handshake on an accepted connection (then, for `wss`, the WebSocket upgrade)
/// and starts its actor. The handshake has the graceful close timeout to complete.
pub(crate) async fn accept_ssl(
    stream: TcpStream,
    engine: &crate::transport::ssl::SslEngine,
    ws: bool,
    config: ConnectionConfig,
    handler: Arc<dyn RequestHandler>,
) -> Result<Connection> {
    let _ = stream.set_nodelay(true);
    let (local, remote) = addresses(&stream).map_err(|e| Error::ConnectionLost(e.to_string()))?;
    let adapter = handler.adapter_name();
    let handshake = async {
        let (mut tls, info) = engine.accept(stream, &adapter, &remote.to_string()).await?;
        let leftover = if ws {
            Some(crate::transport::ws::accept(&mut tls).await?)
        } else {
            None
        };
        Ok::<_, Error>((tls, info, leftover))
    };
    let (tls, info, upgrade) = tokio::time::timeout(config.close_timeout, handshake)
        .await
        .map_err(|_| Error::ConnectTimeout(format!("ssl handshake from {remote}")))??;
    let (r, w) = tokio::io::split(tls);
    let (leftover, ws_headers) = match upgrade {
        Some((leftover, headers)) => (Some(leftover), Some(headers)),
        None => (None, None),
    };
    let peer = Peer {
        local,
        remote,
        ssl: Some(info),
        ws_headers,
        gate: None,
    };
    Ok(match leftover {
        Some(leftover) => start_on(
            crate::transport::ws::WsReader::new(r, leftover, true),
            crate::transport::ws::WsWriter::new(w, true),
            peer,
            config,
            Some(handler),
            true,
        ),
        None => start_on(r, w, peer, config, Some(handler), true),
    })
}

fn start(
    stream: TcpStream,
    config: ConnectionConfig,
    handler: Option<Arc<dyn RequestHandler>>,
    server: bool,
) -> Result<Connection> {
    let (local, remote) = addresses(&stream).map_err(|e| Error::ConnectionLost(e.to_string()))?;
    let (reader, writer) = stream.into_split();
    Ok(start_on(
        reader,
        writer,
        Peer::plain(local, remote),
        config,
        handler,
        server,
    ))
}

/// Starts the actor on any byte stream (TCP, or an in-memory pipe in tests).
fn start_on<R, W>(
    reader: R,
    writer: W,
    peer: Peer,
    config: ConnectionConfig,
    handler: Option<Arc<dyn RequestHandler>>,
    server: bool,
) -> Connection
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let (closed_tx, closed_rx) = watch::channel(None);
    let conn = Connection {
        inner: Arc::new(Inner {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            active: std::sync::atomic::AtomicBool::new(true),
            forced: std::sync::atomic::AtomicBool::new(false),
            tx,
            requests: parking_lot::Mutex::new(Requests::new()),
            gate: peer.gate,
            queued_oneways: AtomicUsize::new(0),
            max_queued_oneways: config.limits.max_queued_oneway_bytes,
            closed: closed_rx,
            local: peer.local,
            remote: peer.remote,
            server,
            handler: parking_lot::RwLock::new(handler),
            endpoint: parking_lot::Mutex::new(None),
            heartbeat_callback: parking_lot::Mutex::new(None),
            instance: config.instance.clone(),
            ssl: peer.ssl,
            ws_headers: peer.ws_headers,
            datagram: None,
        }),
    };
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let mut actor = Actor {
        conn: conn.clone(),
        config,
        reader,
        writer,
        rbuf: BytesMut::with_capacity(4096),
        decoder: FrameDecoder::new(0),
        input: Input::new(),
        queue: VecDeque::new(),
        offset: 0,
        claimed: false,
        dispatches: 0,
        done_tx,
        done_rx,
        serial: VecDeque::new(),
        rx,
        closed_tx,
        state: State::Active,
        last_activity: Instant::now(),
        write_progress: Instant::now(),
        read_progress: Instant::now(),
    };
    actor.decoder = FrameDecoder::new(actor.config.max_message_size);
    if server {
        if actor.config.trace_network >= 1 {
            tracing::info!(target: "floe::network", "accepted tcp connection\n{}", actor.conn);
        }
        actor.push(validate_connection_message(), None, None);
    }
    tokio::spawn(actor.run());
    conn
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    /// A graceful close was asked for; waiting for replies and dispatches to finish.
    Closing,
    /// CloseConnection was sent; waiting for the peer to close.
    CloseSent,
}

struct Outgoing {
    bytes: Bytes,
    request_id: Option<i32>,
    done: Option<Done>,
    /// A reply to a request of the peer (counted in [`Input::reply_bytes`]).
    reply: bool,
}

enum Done {
    Oneway(ReplySender),
    /// A oneway request whose caller did not wait: its bytes leave `Inner::queued_oneways`.
    Queued(usize),
    Raw(RawDone),
}

struct Pending {
    reply: ReplySender,
    sent: bool,
}

/// The dispatch of one request (or batch).
type DispatchFuture = BoxFuture<'static, Finished>;

/// A dispatch that is over.
struct Finished {
    /// The bytes of the message it held (counted in [`Input::dispatch_bytes`]).
    held: usize,
    /// The reply to its last request, if any.
    reply: Option<DispatchDone>,
}

struct DispatchDone {
    request_id: i32,
    compress: bool,
    reply: ReplyBody,
}

struct Actor<R, W> {
    conn: Connection,
    config: ConnectionConfig,
    reader: R,
    writer: W,
    rbuf: BytesMut,
    decoder: FrameDecoder,
    /// What limits reading: the message at the front of `rbuf`, backpressure, budgets.
    input: Input,
    queue: VecDeque<Outgoing>,
    offset: usize,
    /// This task holds the gate's claim ([`direct::Gate::claim`]).
    claimed: bool,
    dispatches: usize,
    done_tx: mpsc::UnboundedSender<Finished>,
    done_rx: mpsc::UnboundedReceiver<Finished>,
    /// Serialized connections: the dispatches that wait, in arrival order; the actor runs the
    /// first (polling it with the rest of its work) and starts the next when it completes.
    serial: VecDeque<DispatchFuture>,
    rx: mpsc::UnboundedReceiver<Command>,
    closed_tx: watch::Sender<Option<Error>>,
    state: State,
    last_activity: Instant,
    /// When a byte was last written, or when the write queue last became non-empty.
    write_progress: Instant,
    /// When a byte was last read.
    read_progress: Instant,
}

/// The state of the read side besides the buffer: whether the message at the front of the
/// read buffer is whole, the room it holds, and what keeps the connection from reading.
struct Input {
    /// When the first byte of the message at the front of the read buffer arrived (`None`
    /// while the buffer is empty).
    started: Option<Instant>,
    /// The message at the front of the read buffer is all there.
    complete: bool,
    /// Room taken in the incomplete-message pool for the message at the front.
    room: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Waiting for room in the incomplete-message pool.
    room_wait: Option<BoxFuture<'static, Option<tokio::sync::OwnedSemaphorePermit>>>,
    /// A message being decompressed on the blocking pool.
    inflating: Option<BoxFuture<'static, Result<Frame>>>,
    /// Decompressed bytes the connection may still produce now (may be negative after a
    /// message larger than a second's budget), as of `budget_at`.
    budget: f64,
    budget_at: Instant,
    /// Out of decompression budget: nothing is read or handled until then.
    throttled: Option<Instant>,
    /// Bytes of replies queued and not yet written.
    reply_bytes: usize,
    /// Bytes of the requests being dispatched.
    dispatch_bytes: usize,
    /// Reading stopped because replies and dispatches hold too much.
    backpressure: bool,
    /// Since when the unsent replies alone stay above half the bound while reading is stopped.
    stalled_since: Option<Instant>,
}

impl Input {
    fn new() -> Self {
        Input {
            started: None,
            complete: false,
            room: None,
            room_wait: None,
            inflating: None,
            budget: f64::MAX,
            budget_at: Instant::now(),
            throttled: None,
            reply_bytes: 0,
            dispatch_bytes: 0,
            backpressure: false,
            stalled_since: None,
        }
    }

    /// Whether the connection waits for something before it handles or reads the next message.
    fn paused(&self) -> bool {
        self.backpressure
            || self.room_wait.is_some()
            || self.inflating.is_some()
            || self.throttled.is_some()
    }
}

/// Why the I/O timer is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    None,
    /// A write that makes no progress, or a read stuck half-way (the endpoint timeout).
    Io,
    /// A message not whole within `Ice.Connection.MessageTimeout` of its first byte.
    Message,
    /// Replies the peer does not take (`Ice.Connection.MessageTimeout`).
    Stalled,
}

fn graceful_close(why: &str) -> End {
    End::Graceful(Error::ConnectionClosed(why.into()))
}

/// What ended the connection.
enum End {
    /// Closed as expected (handshake done, or the peer's CloseConnection).
    Graceful(Error),
    /// Closed because of an error.
    Failed(Error),
    /// Closed forcefully ([`Connection::close`]).
    Forced,
}

impl<R, W> Actor<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    fn push(&mut self, bytes: Bytes, request_id: Option<i32>, done: Option<Done>) {
        self.push_outgoing(Outgoing {
            bytes,
            request_id,
            done,
            reply: false,
        });
    }

    /// Queues Request `message` with request id `id` (0: oneway); its last frame carries the
    /// id for the reply and `done`.
    fn push_request(&mut self, message: Bytes, id: i32, compress: bool, done: Option<Done>) {
        let request_id = (id != 0).then_some(id);
        match request_frames(message, id, compress) {
            (whole, None) => self.push(whole, request_id, done),
            (head, Some(tail)) => {
                self.push(head, None, None);
                self.push(tail, request_id, done);
            }
        }
    }

    fn push_outgoing(&mut self, out: Outgoing) {
        if self.queue.is_empty() {
            self.write_progress = Instant::now();
        }
        self.claim();
        if out.reply {
            self.input.reply_bytes += out.bytes.len();
        }
        self.queue.push_back(out);
    }

    /// Claims the gate, if the connection has one and this task does not hold it already:
    /// callers stop writing to the socket themselves, and what one of them left over is queued
    /// first.
    fn claim(&mut self) {
        let Some(gate) = &self.conn.inner.gate else {
            return;
        };
        if self.claimed {
            return;
        }
        self.claimed = true;
        if let Some(leftover) = gate.claim() {
            self.push_leftover(leftover);
        }
    }

    /// Once the queue is empty, lets callers write to the socket themselves again.
    fn release(&mut self) {
        let Some(gate) = &self.conn.inner.gate else {
            return;
        };
        if gate.release() {
            self.claimed = false;
        }
    }

    /// A request or raw message was taken from the channel: the gate stays claimed while it
    /// is handled.
    fn took_from_channel(&mut self) {
        self.claim();
        if let Some(gate) = &self.conn.inner.gate {
            gate.unqueued();
        }
    }

    async fn run(mut self) {
        let mut end = self.run_loop().await;
        if let End::Forced = end {
            self.write_queued_oneways().await;
            end = End::Graceful(Error::ConnectionClosed("closed forcefully".into()));
        }
        self.conn.inner.active.store(false, Ordering::Release);
        // Requests read before the end are still dispatched, in order (their replies are lost).
        if !self.serial.is_empty() {
            let serial = std::mem::take(&mut self.serial);
            tokio::spawn(async move {
                for dispatch in serial {
                    dispatch.await;
                }
            });
        }
        let (reason, graceful) = match end {
            End::Graceful(e) => (e, true),
            End::Forced => (Error::ConnectionClosed("closed forcefully".into()), true),
            End::Failed(e) => (e, false),
        };
        let net = self.config.trace_network;
        if graceful {
            if net >= 1 {
                tracing::info!(
                    target: "floe::network",
                    "closed tcp connection\n{}\n{}",
                    self.conn,
                    reason,
                );
            }
        } else {
            match &reason {
                Error::Protocol(_)
                | Error::MemoryLimit(_)
                | Error::UnsupportedEncoding(_)
                | Error::Marshal(_) => {
                    tracing::warn!(
                        target: "floe::network",
                        "closing connection after a protocol violation: {reason}\n{}",
                        self.conn,
                    )
                }
                _ if net >= 1 => {
                    tracing::info!(
                        target: "floe::network",
                        "closed tcp connection\n{}\n{}",
                        self.conn,
                        reason,
                    )
                }
                _ => {}
            }
        }
        let _ = self.writer.shutdown().await;
        self.fail_all(&reason);
        let _ = self.closed_tx.send(Some(reason.clone()));
        // Fail whatever is still queued in the command channel.
        self.rx.close();
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Request {
                    reply: Some(reply), ..
                } => {
                    let _ = reply.send(Err(InvokeFailure {
                        error: reason.clone(),
                        sent: false,
                    }));
                }
                Command::Request {
                    reply: None,
                    message,
                    ..
                } => self.lost_oneway(message.len(), &reason),
                Command::Raw { done, .. } => {
                    done(Err(Error::ConnectionLost("connection closed".into())));
                }
                _ => {}
            }
        }
    }

    /// Before a forceful close: writes the oneway requests whose callers did not wait for them
    /// (their calls returned as if written), and what is queued ahead of them, within the close
    /// timeout. Other requests not yet queued fail unsent.
    async fn write_queued_oneways(&mut self) {
        if self.conn.inner.queued_oneways.load(Ordering::Acquire) == 0 {
            return;
        }
        self.claim();
        while let Ok(cmd) = self.rx.try_recv() {
            if let Command::Request { .. } | Command::Raw { .. } = cmd {
                self.took_from_channel();
            }
            match cmd {
                Command::Request {
                    message,
                    compress,
                    reply: None,
                    ..
                } => {
                    let size = message.len();
                    self.push_request(message, 0, compress, Some(Done::Queued(size)));
                }
                Command::Request {
                    reply: Some(reply), ..
                } => {
                    let _ = reply.send(Err(InvokeFailure {
                        error: Error::CloseConnection,
                        sent: false,
                    }));
                }
                Command::Raw { done, .. } => done(Err(Error::CloseConnection)),
                Command::Heartbeat | Command::Close { .. } | Command::Abort(_) | Command::Flush => {
                }
            }
        }
        let deadline = Instant::now() + self.config.close_timeout;
        while self.conn.inner.queued_oneways.load(Ordering::Acquire) > 0 && !self.queue.is_empty() {
            let write = write_some(&mut self.writer, &self.queue, self.offset);
            match tokio::time::timeout_at(deadline, write).await {
                Ok(Ok(n)) => self.on_written(n),
                _ => break,
            }
        }
    }

    async fn run_loop(&mut self) -> End {
        let acm = self.config.acm;
        let mut period = if acm.timeout.is_zero() {
            Duration::from_secs(3600 * 24 * 365)
        } else {
            acm.timeout / 2
        };
        if let Some(idle) = self.config.idle_timeout {
            period = period.min((idle / 2).max(Duration::from_millis(1)));
        }
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let far = Instant::now() + Duration::from_secs(3600 * 24 * 365 * 10);
        // The timers live across iterations: one armed per iteration would be registered with
        // the timer wheel on every message. The I/O timer may fire early (it is moved only
        // towards earlier deadlines); it is then re-armed to the real deadline. The close timer
        // is armed once, when CloseConnection is sent; the throttle timer when the
        // decompression budget runs out.
        let io_timer = tokio::time::sleep_until(far);
        tokio::pin!(io_timer);
        let close_timer = tokio::time::sleep_until(far);
        tokio::pin!(close_timer);
        let throttle_timer = tokio::time::sleep_until(far);
        tokio::pin!(throttle_timer);
        loop {
            // A forceful close wins over whatever became ready at the same time (a reply
            // finished by the dispatch that asked for the close, for instance).
            if self.conn.inner.forced.load(Ordering::Acquire) {
                return End::Forced;
            }
            if self.claimed && self.queue.is_empty() && self.state == State::Active {
                self.release();
            }
            self.update_backpressure();
            let writing = !self.queue.is_empty();
            // A holding adapter's connection leaves incoming bytes in the network.
            let holding = self.holding();
            // Reads only when the buffer holds no whole message and nothing else is awaited:
            // the buffer never holds more than the message at its front.
            let reading = !holding && !self.input.complete && !self.input.paused();
            let handling = !holding && self.input.complete && !self.input.paused();
            let (io_deadline, why) = self.deadline(writing, holding);
            let io_deadline = io_deadline.unwrap_or(far);
            if io_deadline < io_timer.deadline() {
                io_timer.as_mut().reset(io_deadline);
            }
            if let Some(t) = self.input.throttled {
                if t != throttle_timer.deadline() {
                    throttle_timer.as_mut().reset(t);
                }
            }
            tokio::select! {
                changed = hold_changed(&mut self.config.hold) => {
                    if changed.is_err() {
                        self.config.hold = None;
                    }
                    // Holding stopped the clocks of what arrives.
                    self.read_progress = Instant::now();
                    if self.input.started.is_some() {
                        self.input.started = Some(self.read_progress);
                    }
                }
                r = self.reader.read_buf(&mut self.rbuf), if reading => {
                    match r {
                        Ok(0) => {
                            return match self.state {
                                State::CloseSent => graceful_close("closed gracefully"),
                                _ if !self.rbuf.is_empty() => End::Failed(Error::Protocol(format!(
                                    "connection closed in the middle of a message ({} bytes of it received)",
                                    self.rbuf.len()
                                ))),
                                _ => End::Failed(Error::ConnectionLost("peer closed the connection".into())),
                            };
                        }
                        Ok(_) => {
                            self.read_progress = Instant::now();
                            if let Some(end) = self.examine_input() {
                                return end;
                            }
                        }
                        // A transport that found the peer breaking its rules (WebSocket framing).
                        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                            return End::Failed(Error::Protocol(e.to_string()));
                        }
                        Err(e) => return End::Failed(Error::ConnectionLost(e.to_string())),
                    }
                }
                // One batch of whole messages, then back to the scheduler when this task has
                // used up its budget: a peer that sends fast does not hold up the others.
                _ = tokio::task::coop::consume_budget(), if handling => {
                    if let Some(end) = self.handle_messages() {
                        return end;
                    }
                }
                frame = pending_opt(&mut self.input.inflating), if self.input.inflating.is_some() => {
                    self.input.inflating = None;
                    let end = match frame {
                        Ok(frame) => self.on_frame(frame),
                        Err(e) => Some(End::Failed(e)),
                    };
                    if let Some(end) = end {
                        return end;
                    }
                }
                room = pending_opt(&mut self.input.room_wait), if self.input.room_wait.is_some() => {
                    self.input.room_wait = None;
                    self.input.room = room;
                    if let Some(end) = self.examine_input() {
                        return end;
                    }
                }
                _ = &mut throttle_timer, if self.input.throttled.is_some() => {
                    self.input.throttled = None;
                    throttle_timer.as_mut().reset(far);
                }
                r = write_some(&mut self.writer, &self.queue, self.offset), if writing => {
                    match r {
                        Ok(n) => self.on_written(n),
                        Err(e) => return End::Failed(Error::ConnectionLost(e.to_string())),
                    }
                }
                done = next_serial(&mut self.serial), if !self.serial.is_empty() => {
                    self.serial.pop_front();
                    self.on_dispatched(done);
                }
                Some(done) = self.done_rx.recv() => self.on_dispatches(done),
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else {
                        return graceful_close("connection handle dropped");
                    };
                    if let Some(end) = self.on_commands(cmd) {
                        return end;
                    }
                }
                _ = tick.tick() => {
                    if let Some(end) = self.on_acm_tick() {
                        return end;
                    }
                }
                _ = &mut io_timer, if io_deadline < far => {
                    if Instant::now() >= io_deadline {
                        return self.timed_out(why);
                    }
                    io_timer.as_mut().reset(io_deadline);
                }
                _ = &mut close_timer, if self.state == State::CloseSent => {
                    return graceful_close("peer did not close in time after CloseConnection");
                }
            }
            // The gate is claimed before the requests are counted: a caller writes its request
            // either before (and is counted) or not at all.
            if self.state == State::Closing && self.dispatches == 0 && {
                self.claim();
                self.conn.inner.requests.lock().waiting.is_empty()
            } {
                self.push(close_connection_message(), None, None);
                self.trace_sent(MessageType::CloseConnection, "");
                self.state = State::CloseSent;
                close_timer
                    .as_mut()
                    .reset(Instant::now() + self.config.close_timeout);
            }
        }
    }

    /// The earliest deadline of the connection's I/O, and what it bounds.
    fn deadline(&self, writing: bool, holding: bool) -> (Option<Instant>, Deadline) {
        let mut best = (None, Deadline::None);
        let mut consider = |at: Instant, why: Deadline| {
            if best.0.is_none_or(|b| at < b) {
                best = (Some(at), why);
            }
        };
        // A message stuck half-way: not while the connection stops reading on purpose
        // (holding, or waiting for its replies to leave); waiting for room in the pool of
        // incomplete messages does not stop the clock.
        let receiving = self.input.started.is_some()
            && !self.input.complete
            && !holding
            && !self.input.backpressure;
        if let Some(t) = self.config.io_timeout {
            if writing {
                consider(self.write_progress + t, Deadline::Io);
            }
            if receiving {
                consider(self.read_progress + t, Deadline::Io);
            }
        }
        if let Some(t) = self.config.limits.message_timeout {
            if let (true, Some(started)) = (receiving, self.input.started) {
                consider(started + t, Deadline::Message);
            }
            if let Some(since) = self.input.stalled_since {
                consider(since + t, Deadline::Stalled);
            }
        }
        best
    }

    /// Ends the connection whose deadline `why` passed.
    fn timed_out(&self, why: Deadline) -> End {
        let timeout = self.config.limits.message_timeout.unwrap_or_default();
        match why {
            Deadline::Message => tracing::warn!(
                target: "floe::network",
                "closing connection: a message did not arrive whole within \
                 Ice.Connection.MessageTimeout ({} ms) of its first byte\n{}",
                timeout.as_millis(),
                self.conn,
            ),
            Deadline::Stalled => tracing::warn!(
                target: "floe::network",
                "closing connection: the peer left more than {} bytes of replies unread for \
                 Ice.Connection.MessageTimeout ({} ms)\n{}",
                self.config.limits.max_pending_reply_bytes / 2,
                timeout.as_millis(),
                self.conn,
            ),
            Deadline::Io | Deadline::None => {}
        }
        End::Failed(Error::ConnectionTimeout)
    }

    /// Stops reading once unsent replies and running dispatches hold more than the bound, and
    /// reads again once they are down to half of it; notes since when the replies alone keep
    /// it stopped.
    fn update_backpressure(&mut self) {
        let max = self.config.limits.max_pending_reply_bytes;
        let held = self.input.reply_bytes + self.input.dispatch_bytes;
        if !self.input.backpressure && held > max {
            self.input.backpressure = true;
            if self.config.trace_network >= 2 {
                tracing::debug!(
                    target: "floe::network",
                    "stop reading: {} bytes of replies and dispatches pending\n{}",
                    held,
                    self.conn
                );
            }
        } else if self.input.backpressure && held <= max / 2 {
            self.input.backpressure = false;
            // The clock of a message left half-read restarts now that it is read again.
            if self.input.started.is_some() {
                self.input.started = Some(Instant::now());
            }
            self.read_progress = Instant::now();
        }
        let stalled = self.input.backpressure && self.input.reply_bytes > max / 2;
        match (stalled, self.input.stalled_since) {
            (true, None) => self.input.stalled_since = Some(Instant::now()),
            (false, Some(_)) => self.input.stalled_since = None,
            _ => {}
        }
    }

    fn trace_sent(&self, t: MessageType, detail: impl fmt::Display) {
        if self.config.trace_protocol >= 1 {
            tracing::info!(target: "floe::protocol", "sending {t}{detail}\n{}", self.conn);
        }
    }

    /// Handles `first` and the commands queued behind it (up to [`WRITE_BATCH`] in all), so
    /// that requests queued together (by other tasks, or several oneways sent without
    /// waiting) go out in one write.
    fn on_commands(&mut self, first: Command) -> Option<End> {
        if let Some(end) = self.on_command(first) {
            return Some(end);
        }
        for _ in 1..WRITE_BATCH {
            let Ok(cmd) = self.rx.try_recv() else {
                break;
            };
            if let Some(end) = self.on_command(cmd) {
                return Some(end);
            }
        }
        None
    }

    fn on_command(&mut self, cmd: Command) -> Option<End> {
        if let Command::Request { .. } | Command::Raw { .. } = cmd {
            self.took_from_channel();
        }
        match cmd {
            Command::Request {
                message,
                compress,
                twoway,
                reply,
            } => {
                // A oneway whose caller did not wait was queued while the connection was
                // active: it still goes out ahead of CloseConnection while the connection
                // closes.
                let late = match &reply {
                    None => self.state == State::CloseSent,
                    Some(_) => self.state != State::Active,
                };
                if late {
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(Err(InvokeFailure {
                                error: Error::CloseConnection,
                                sent: false,
                            }));
                        }
                        None => self.lost_oneway(message.len(), &Error::CloseConnection),
                    }
                    return None;
                }
                let size = message.len();
                let (id, done) = match reply {
                    None => (0, Some(Done::Queued(size))),
                    Some(reply) if twoway => (self.conn.inner.requests.lock().add(reply), None),
                    Some(reply) => (0, Some(Done::Oneway(reply))),
                };
                self.trace_sent(
                    MessageType::Request,
                    format_args!(" (request id {id}, {size} bytes)"),
                );
                self.push_request(message, id, compress, done);
            }
            Command::Raw { message, done } => {
                if self.state != State::Active {
                    done(Err(Error::CloseConnection));
                    return None;
                }
                self.push(message, None, Some(Done::Raw(done)));
            }
            Command::Heartbeat => {
                if self.state == State::Active {
                    self.push(validate_connection_message(), None, None);
                }
            }
            Command::Flush => self.claim(),
            Command::Abort(error) => {
                // Claimed first: a request a caller is writing now is counted below, and no
                // caller writes after.
                self.claim();
                let waiting = std::mem::take(&mut self.conn.inner.requests.lock().waiting);
                for (_, p) in waiting {
                    let _ = p.reply.send(Err(InvokeFailure {
                        error: error.clone(),
                        sent: p.sent,
                    }));
                }
                if self.state == State::Active {
                    self.state = State::Closing;
                    self.conn.inner.active.store(false, Ordering::Release);
                }
            }
            Command::Close { graceful } => {
                if !graceful {
                    return Some(End::Forced);
                }
                if self.state == State::Active {
                    self.state = State::Closing;
                    self.conn.inner.active.store(false, Ordering::Release);
                }
            }
        }
        None
    }

    fn on_written(&mut self, n: usize) {
        self.write_progress = Instant::now();
        if let Some(gate) = &self.conn.inner.gate {
            gate.note_write();
        }
        self.offset += n;
        while let Some(front) = self.queue.front() {
            if self.offset < front.bytes.len() {
                break;
            }
            self.offset -= front.bytes.len();
            let Some(out) = self.queue.pop_front() else {
                break;
            };
            self.last_activity = Instant::now();
            if out.reply {
                self.input.reply_bytes -= out.bytes.len();
            }
            if let Some(id) = out.request_id {
                self.conn.inner.requests.lock().mark_sent(id);
            }
            match out.done {
                Some(Done::Oneway(tx)) => {
                    let _ = tx.send(Ok(None));
                }
                Some(Done::Queued(n)) => {
                    self.conn
                        .inner
                        .queued_oneways
                        .fetch_sub(n, Ordering::AcqRel);
                }
                Some(Done::Raw(done)) => done(Ok(())),
                None => {}
            }
        }
    }

    /// Looks at the message at the front of the read buffer after a read or once a message was
    /// taken: whether it is whole, when its first byte came, and, when it is not all there,
    /// takes room for it in the pool of incomplete messages (waiting when there is none) and
    /// in the buffer.
    fn examine_input(&mut self) -> Option<End> {
        if self.rbuf.is_empty() {
            self.input.started = None;
            self.input.complete = false;
            self.input.room = None;
            return None;
        }
        self.input.started.get_or_insert(self.read_progress);
        let header = match self.decoder.peek(&self.rbuf) {
            Ok(Some(h)) => h,
            Ok(None) => {
                self.input.complete = false;
                return None;
            }
            Err(e) => return Some(End::Failed(e)),
        };
        self.input.complete = self.rbuf.len() >= header.size;
        if self.input.complete || self.input.room_wait.is_some() {
            return None;
        }
        if self.input.room.is_none() {
            if let Some(pool) = &self.config.limits.incomplete {
                let need = pool.room_for(header.size);
                match pool.room.clone().try_acquire_many_owned(need) {
                    Ok(room) => self.input.room = Some(room),
                    Err(_) => {
                        if self.config.trace_network >= 2 {
                            tracing::debug!(
                                target: "floe::network",
                                "waiting for room for a message of {} bytes \
                                 (Ice.Connection.MaxIncompleteBytes)\n{}",
                                header.size,
                                self.conn
                            );
                        }
                        let room = pool.room.clone();
                        self.input.room_wait =
                            Some(Box::pin(
                                async move { room.acquire_many_owned(need).await.ok() },
                            ));
                        return None;
                    }
                }
            }
        }
        self.rbuf.reserve(header.size - self.rbuf.len());
        None
    }

    /// Handles the whole messages at the front of the read buffer, up to [`FRAME_BATCH`],
    /// while nothing makes the connection wait: compressed messages that inflate to more than
    /// [`INLINE_INFLATE_MAX`] are decompressed on the blocking pool (the connection goes on
    /// once they are), and the decompression budget may run out.
    fn handle_messages(&mut self) -> Option<End> {
        for _ in 0..FRAME_BATCH {
            self.update_backpressure();
            if !self.input.complete || self.input.paused() || self.holding() {
                break;
            }
            let max = self.decoder.max_size();
            let (header, body) = match self.decoder.peek(&self.rbuf) {
                Ok(Some(header)) => {
                    let inflated =
                        match crate::protocol::uncompressed_size(&header, &self.rbuf, max) {
                            Ok(n) => n,
                            Err(e) => return Some(End::Failed(e)),
                        };
                    if header.compression == 2 && !self.take_budget(inflated) {
                        break;
                    }
                    match self.decoder.split(&mut self.rbuf) {
                        Ok(Some((header, body))) if header.compression == 2 => {
                            if inflated > INLINE_INFLATE_MAX {
                                self.input.inflating =
                                    Some(Box::pin(inflate_elsewhere(header, body, max)));
                                self.after_message();
                                return self.examine_input();
                            }
                            (header, body)
                        }
                        Ok(Some(x)) => x,
                        Ok(None) => break,
                        Err(e) => return Some(End::Failed(e)),
                    }
                }
                Ok(None) => break,
                Err(e) => return Some(End::Failed(e)),
            };
            self.after_message();
            let end = crate::protocol::inflate(header, body, max)
                .map_or_else(|e| Some(End::Failed(e)), |frame| self.on_frame(frame));
            if end.is_some() {
                return end;
            }
            if let Some(end) = self.examine_input() {
                return Some(end);
            }
        }
        None
    }

    /// The message at the front was taken from the read buffer: its room in the pool of
    /// incomplete messages is free, and the clock of the next one starts.
    fn after_message(&mut self) {
        self.input.room = None;
        self.input.started = None;
        self.input.complete = false;
    }

    /// Takes `n` decompressed bytes from the connection's budget; false (and the connection
    /// waits) when it has run out. A message larger than a second's budget waits for a full
    /// budget and leaves it in debt.
    fn take_budget(&mut self, n: usize) -> bool {
        let Some(rate) = self.config.limits.decompressed_per_second else {
            return true;
        };
        let rate = rate as f64;
        let now = Instant::now();
        let elapsed = now
            .saturating_duration_since(self.input.budget_at)
            .as_secs_f64();
        self.input.budget = (self.input.budget + elapsed * rate).min(rate);
        self.input.budget_at = now;
        let need = (n as f64).min(rate);
        if self.input.budget >= need {
            self.input.budget -= n as f64;
            return true;
        }
        let wait = Duration::from_secs_f64((need - self.input.budget) / rate);
        if self.config.trace_network >= 2 {
            tracing::debug!(
                target: "floe::network",
                "decompression budget spent (Ice.Connection.MaxDecompressedBytesPerSecond): \
                 waiting {} ms\n{}",
                wait.as_millis(),
                self.conn
            );
        }
        self.input.throttled = Some(now + wait);
        false
    }

    /// Handles one whole (decompressed) message.
    fn on_frame(&mut self, frame: Frame) -> Option<End> {
        self.last_activity = Instant::now();
        let compress_reply = frame.header.compression != 0;
        let held = HEADER_SIZE + frame.body.len();
        let msg = match Message::parse(&frame) {
            Ok(m) => m,
            Err(e) => return Some(End::Failed(e)),
        };
        if self.config.trace_protocol >= 1 {
            let detail = describe(&msg);
            tracing::info!(
                target: "floe::protocol",
                "received {} (compression {}, {} bytes){detail}\n{}",
                frame.header.message_type,
                frame.header.compression,
                frame.header.size,
                self.conn
            );
        }
        match msg {
            Message::ValidateConnection => {
                let callback = self.conn.inner.heartbeat_callback.lock().clone();
                if let Some(callback) = callback {
                    callback(&self.conn);
                }
            }
            Message::CloseConnection => {
                return Some(match self.state {
                    State::CloseSent => graceful_close("closed gracefully"),
                    _ => End::Graceful(Error::CloseConnection),
                });
            }
            Message::Reply(reply) => {
                let waiting = self
                    .conn
                    .inner
                    .requests
                    .lock()
                    .waiting
                    .remove(&reply.request_id);
                if let Some(p) = waiting {
                    let _ = p.reply.send(Ok(Some(reply)));
                }
            }
            Message::Request(req) => {
                if self.takes_requests() {
                    self.dispatch(vec![req], compress_reply, held);
                }
            }
            Message::Batch(reqs) => {
                if self.takes_requests() && !reqs.is_empty() {
                    self.dispatch(reqs, false, held);
                }
            }
        }
        None
    }

    /// Whether requests that arrive now are dispatched: not once the connection is closing,
    /// which starts when `close` is called (an adapter's deactivation, for instance), even
    /// before this task has seen the command. The peer gets CloseConnection and may retry them
    /// elsewhere, as Ice's clients do.
    fn takes_requests(&self) -> bool {
        self.state == State::Active && self.conn.inner.active.load(Ordering::Acquire)
    }

    /// Dispatches a request (or the requests of a batch) that arrived in a message of `held`
    /// bytes, counted against the connection's bound until the dispatch is over.
    fn dispatch(&mut self, reqs: Vec<RequestData>, compress: bool, held: usize) {
        self.dispatches += 1;
        self.input.dispatch_bytes += held;
        let handler = self.conn.inner.handler.read().clone();
        let params: usize = reqs.iter().map(|r| r.params.len()).sum();
        let heavy = params > INLINE_DISPATCH_MAX
            && handler
                .as_ref()
                .is_some_and(|h| reqs.iter().any(|r| h.may_decode_slowly(r)));
        let last_id = reqs.last().map_or(0, |r| r.request_id);
        let mut dispatch: DispatchFuture = Box::pin(dispatch_all(
            handler,
            self.conn.clone(),
            reqs,
            compress,
            held,
        ));
        // Large parameters may take long to decode (class graphs): the start of such a
        // dispatch runs on the blocking pool, off the threads serving connections.
        if heavy {
            dispatch = Box::pin(start_elsewhere(dispatch, held, last_id, compress));
        }
        // A serialized connection queues a request behind those still being dispatched; with
        // none in progress (`dispatches` counts this one), it is dispatched at once like the rest.
        if self.config.serialize && self.dispatches > 1 {
            self.serial.push_back(dispatch);
            return;
        }
        // A dispatch that completes without waiting (most servants) is answered right here:
        // no task to spawn, no hop to another thread and back for the reply. One that waits
        // goes on in its own task (or, serialized, in this connection's task ahead of
        // the requests that follow it), so it holds up neither this connection nor other
        // requests.
        match futures_util::FutureExt::now_or_never(dispatch.as_mut()) {
            Some(done) => self.on_dispatched(done),
            None if self.config.serialize => self.serial.push_back(dispatch),
            None => {
                let done_tx = self.done_tx.clone();
                tokio::spawn(async move {
                    let _ = done_tx.send(dispatch.await);
                });
            }
        }
    }

    /// Handles `first` and the dispatches finished behind it (up to [`WRITE_BATCH`] in all),
    /// so that their replies go out in one write.
    fn on_dispatches(&mut self, first: Finished) {
        self.on_dispatched(first);
        for _ in 1..WRITE_BATCH {
            let Ok(done) = self.done_rx.try_recv() else {
                break;
            };
            self.on_dispatched(done);
        }
    }

    /// A dispatch is over: its reply (the one to its last request, if twoway) is queued.
    fn on_dispatched(&mut self, finished: Finished) {
        self.dispatches = self.dispatches.saturating_sub(1);
        self.input.dispatch_bytes = self.input.dispatch_bytes.saturating_sub(finished.held);
        let Some(done) = finished.reply else {
            return;
        };
        let forced = self.conn.inner.forced.load(Ordering::Acquire);
        if done.request_id != 0 && self.state != State::CloseSent && !forced {
            let body = ReplyData {
                request_id: done.request_id,
                body: done.reply,
            }
            .to_body();
            let msg = build_message(MessageType::Reply, &body, done.compress);
            self.trace_sent(
                MessageType::Reply,
                format_args!(" (request id {}, {} bytes)", done.request_id, msg.len()),
            );
            self.push_outgoing(Outgoing {
                bytes: msg,
                request_id: None,
                done: None,
                reply: true,
            });
        }
    }

    /// How many twoway requests wait for their replies.
    fn waiting(&self) -> usize {
        self.conn.inner.requests.lock().waiting.len()
    }

    /// Whether the connection's adapter holds: nothing is read and ACM is suspended.
    fn holding(&self) -> bool {
        self.config.hold.as_ref().is_some_and(|h| *h.borrow())
    }

    fn on_acm_tick(&mut self) -> Option<End> {
        if let Some(limit) = self.config.idle_timeout {
            if self.state == State::Active
                && !self.holding()
                && self.dispatches == 0
                && self.waiting() == 0
                && self.queue.is_empty()
                && self.rbuf.is_empty()
                && Instant::now().saturating_duration_since(self.read_progress) >= limit
            {
                if self.config.trace_network >= 1 {
                    tracing::info!(target: "floe::network", "closing a connection idle for {limit:?} (Ice.Connection.IdleTimeout)\n{}", self.conn);
                }
                self.state = State::Closing;
                return None;
            }
        }
        let acm = self.config.acm;
        // As in Ice, a holding connection neither sends heartbeats nor closes: its peer's ACM
        // decides (a call waiting on a held adapter times out).
        if acm.timeout.is_zero() || self.state != State::Active || self.holding() {
            return None;
        }
        let waiting = {
            let mut requests = self.conn.inner.requests.lock();
            requests.waiting.retain(|_, p| !p.reply.is_closed());
            requests.waiting.len()
        };
        let now = Instant::now();
        // Requests callers wrote themselves are activity too.
        if self
            .conn
            .inner
            .gate
            .as_ref()
            .is_some_and(direct::Gate::take_wrote)
        {
            self.last_activity = now;
        }
        let idle = now.saturating_duration_since(self.last_activity);
        let wants_heartbeat = acm.heartbeat == AcmHeartbeat::Always
            || (acm.heartbeat != AcmHeartbeat::Off
                && self.queue.is_empty()
                && idle >= acm.timeout / 4);
        if wants_heartbeat && (acm.heartbeat != AcmHeartbeat::OnDispatch || self.dispatches > 0) {
            if self.config.trace_network >= 3 {
                tracing::trace!(target: "floe::network", "sending heartbeat\n{}", self.conn);
            }
            self.push(validate_connection_message(), None, None);
        }
        if self.rbuf.len() > HEADER_SIZE || !self.queue.is_empty() {
            return None;
        }
        if acm.close != AcmClose::Off && idle >= acm.timeout {
            if acm.close == AcmClose::OnIdleForceful
                || (acm.close != AcmClose::OnIdle && waiting > 0)
            {
                return Some(End::Failed(Error::ConnectionTimeout));
            } else if acm.close != AcmClose::OnInvocation && self.dispatches == 0 && waiting == 0 {
                self.state = State::Closing;
            }
        }
        None
    }
}

/// What an actor does whatever its reader and writer.
impl<R, W> Actor<R, W> {
    /// Queues the rest of a request a caller wrote in part: it goes out before anything else.
    fn push_leftover(&mut self, leftover: direct::Leftover) {
        if self.queue.is_empty() {
            self.write_progress = Instant::now();
        }
        let direct::Leftover {
            frames,
            request_id,
            mut done,
        } = leftover;
        let last = frames.len().saturating_sub(1);
        for (i, bytes) in frames.into_iter().enumerate() {
            let end = i == last;
            self.queue.push_back(Outgoing {
                bytes,
                request_id: if end { request_id } else { None },
                done: if end { done.take() } else { None },
                reply: false,
            });
        }
    }

    /// The connection ended with `reason`: callers stop writing to the socket, and every request
    /// waiting for its reply and every message not yet written fails. Whether a request reached
    /// the peer is in its `sent` flag (false: safe to retry).
    fn fail_all(&mut self, reason: &Error) {
        self.conn.inner.active.store(false, Ordering::Release);
        if let Some(leftover) = self.conn.inner.gate.as_ref().and_then(direct::Gate::shut) {
            self.push_leftover(leftover);
        }
        let waiting = std::mem::take(&mut self.conn.inner.requests.lock().waiting);
        for (_, p) in waiting {
            let _ = p.reply.send(Err(InvokeFailure {
                error: reason.clone(),
                sent: p.sent,
            }));
        }
        for out in std::mem::take(&mut self.queue) {
            match out.done {
                Some(Done::Oneway(tx)) => {
                    let _ = tx.send(Err(InvokeFailure {
                        error: reason.clone(),
                        sent: false,
                    }));
                }
                Some(Done::Queued(n)) => self.lost_oneway(n, reason),
                Some(Done::Raw(done)) => done(Err(reason.clone())),
                None => {}
            }
        }
    }

    /// A oneway request queued without its caller waiting cannot be written any more.
    fn lost_oneway(&self, size: usize, why: &Error) {
        self.conn
            .inner
            .queued_oneways
            .fetch_sub(size, Ordering::AcqRel);
        if self.config.trace_network >= 1 {
            tracing::info!(
                target: "floe::network",
                "a queued oneway request ({size} bytes) was not sent: {why}\n{}",
                self.conn
            );
        }
    }
}

impl<R, W> Drop for Actor<R, W> {
    /// A task dropped before its end (its runtime shut down, or it panicked) still fails what
    /// waits on it; after a normal end there is nothing left to fail.
    fn drop(&mut self) {
        self.fail_all(&Error::ConnectionLost("the connection's task ended".into()));
    }
}

/// Runs the first of a serialized connection's waiting dispatches to completion.
async fn next_serial(serial: &mut VecDeque<DispatchFuture>) -> Finished {
    match serial.front_mut() {
        Some(dispatch) => dispatch.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Waits for the next change of a hold flag; `Err` once its adapter is gone.
async fn hold_changed(
    hold: &mut Option<tokio::sync::watch::Receiver<bool>>,
) -> std::result::Result<(), tokio::sync::watch::error::RecvError> {
    match hold {
        Some(h) => h.changed().await,
        None => std::future::pending().await,
    }
}

/// Dispatches one request (or a batch, in order) and returns the reply to the last one.
async fn dispatch_all(
    handler: Option<Arc<dyn RequestHandler>>,
    conn: Connection,
    reqs: Vec<RequestData>,
    compress: bool,
    held: usize,
) -> Finished {
    let mut last = None;
    for req in reqs {
        let request_id = req.request_id;
        let reply = match &handler {
            Some(h) => h.handle(req, Some(conn.clone())).await,
            None => ReplyBody::ObjectNotExist(RequestFailed {
                name: req.name,
                category: req.category,
                facet: req.facet,
                operation: req.operation,
            }),
        };
        last = Some(DispatchDone {
            request_id,
            compress,
            reply,
        });
    }
    Finished { held, reply: last }
}

/// Runs the first poll of `dispatch` (where generated code decodes the parameters) on the
/// blocking pool, once a slot of [`heavy_work`] is free, and the rest (what it waits for) as
/// usual. A dispatch that panics there is answered with UnknownException.
async fn start_elsewhere(
    mut dispatch: DispatchFuture,
    held: usize,
    request_id: i32,
    compress: bool,
) -> Finished {
    let slot = heavy_work().acquire_owned().await.ok();
    let polled = tokio::task::spawn_blocking(move || {
        let done = futures_util::FutureExt::now_or_never(dispatch.as_mut());
        drop(slot);
        (dispatch, done)
    })
    .await;
    match polled {
        Ok((_, Some(finished))) => finished,
        Ok((dispatch, None)) => dispatch.await,
        Err(e) => Finished {
            held,
            reply: Some(DispatchDone {
                request_id,
                compress,
                reply: ReplyBody::UnknownException(format!("dispatch failed: {e}")),
            }),
        },
    }
}

/// Decompresses a message on the blocking pool, once a slot of [`heavy_work`] is free.
async fn inflate_elsewhere(header: Header, body: Bytes, max_size: usize) -> Result<Frame> {
    let slot = heavy_work().acquire_owned().await.ok();
    let inflated = tokio::task::spawn_blocking(move || {
        let frame = crate::protocol::inflate(header, body, max_size);
        drop(slot);
        frame
    })
    .await;
    inflated.unwrap_or_else(|e| Err(Error::Protocol(format!("bzip2 decompression failed: {e}"))))
}

/// Waits for the future in `f`, if any (for an optional branch of `select!`).
async fn pending_opt<T>(f: &mut Option<BoxFuture<'static, T>>) -> T {
    match f {
        Some(f) => f.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The fields of a message worth a protocol trace.
fn describe(msg: &Message) -> String {
    match msg {
        Message::Request(r) => format!(
            "\nrequest id = {}\nidentity = {}\nfacet = {}\noperation = {}\nmode = {}",
            r.request_id,
            crate::identity::Identity::new(r.name.clone(), r.category.clone()),
            r.facet,
            r.operation,
            r.mode.ice_name()
        ),
        Message::Batch(reqs) => format!("\nnumber of requests = {}", reqs.len()),
        Message::Reply(r) => format!(
            "\nrequest id = {}\nreply status = {}",
            r.request_id,
            r.body.status()
        ),
        _ => String::new(),
    }
}

/// The frames that carry Request `message` with request id `id`: the header and id in a small
/// buffer of their own and the rest as it is, shared with the caller (which keeps it to retry),
/// so that large parameters are not copied; a small message, or one to compress, as one frame.
fn request_frames(message: Bytes, id: i32, compress: bool) -> (Bytes, Option<Bytes>) {
    let id_end = crate::protocol::REQUEST_ID_OFFSET + 4;
    if message.len() < id_end {
        return (message, None);
    }
    if compress && message.len() >= crate::protocol::COMPRESSION_THRESHOLD {
        let mut body = BytesMut::from(&message[HEADER_SIZE..]);
        body[..4].copy_from_slice(&id.to_le_bytes());
        return (build_message(MessageType::Request, &body, true), None);
    }
    let split = if message.len() <= SMALL_MESSAGE {
        message.len()
    } else {
        id_end
    };
    let mut head = BytesMut::from(&message[..split]);
    head[9] = u8::from(compress);
    head[crate::protocol::REQUEST_ID_OFFSET..id_end].copy_from_slice(&id.to_le_bytes());
    let tail = (split < message.len()).then(|| message.slice(split..));
    (head.freeze(), tail)
}

/// Requests up to this size are copied whole with their request id rather than sent as two
/// frames.
const SMALL_MESSAGE: usize = 1024;

/// Most queued messages handed to one (vectored) write.
const WRITE_BATCH: usize = 64;

/// Writes as much of the queue as the socket takes in one call: every queued message (up to
/// [`WRITE_BATCH`]) goes in one vectored write, so replies and requests that pile up while the
/// socket is busy leave in one system call instead of one each.
async fn write_some<W: AsyncWrite + Unpin>(
    writer: &mut W,
    queue: &VecDeque<Outgoing>,
    offset: usize,
) -> std::io::Result<usize> {
    let Some(front) = queue.front() else {
        return std::future::pending().await;
    };
    let n = if queue.len() == 1 || !writer.is_write_vectored() {
        writer.write(&front.bytes[offset..]).await?
    } else {
        let mut slices = [std::io::IoSlice::new(&[]); WRITE_BATCH];
        let mut count = 0;
        for (slot, out) in slices.iter_mut().zip(queue.iter()) {
            let bytes = if count == 0 {
                &out.bytes[offset..]
            } else {
                &out.bytes[..]
            };
            *slot = std::io::IoSlice::new(bytes);
            count += 1;
        }
        writer.write_vectored(&slices[..count]).await?
    };
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            "socket closed",
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    //! ACM behaviour under paused time, on in-memory pipes.

    use super::*;
    use crate::protocol::{Header, ReplyBody, empty_encapsulation};
    use tokio::io::{DuplexStream, ReadHalf, WriteHalf};

    struct Slow(Duration);

    impl RequestHandler for Slow {
        fn handle(
            &self,
            _request: RequestData,
            _c: Option<Connection>,
        ) -> BoxFuture<'static, ReplyBody> {
            let d = self.0;
            Box::pin(async move {
                tokio::time::sleep(d).await;
                ReplyBody::Ok(empty_encapsulation(1, 1))
            })
        }
    }

    fn config(acm: AcmConfig) -> ConnectionConfig {
        ConnectionConfig {
            max_message_size: 1 << 20,
            acm,
            limits: Limits::default(),
            close_timeout: Duration::from_secs(10),
            trace_network: 0,
            trace_protocol: 0,
            io_timeout: None,
            serialize: false,
            hold: None,
            idle_timeout: None,
            instance: std::sync::Weak::<()>::new(),
        }
    }

    fn pipe(
        server: bool,
        acm: AcmConfig,
        handler: Option<Arc<dyn RequestHandler>>,
    ) -> (Connection, ReadHalf<DuplexStream>, WriteHalf<DuplexStream>) {
        pipe_with(server, config(acm), handler)
    }

    fn pipe_with(
        server: bool,
        config: ConnectionConfig,
        handler: Option<Arc<dyn RequestHandler>>,
    ) -> (Connection, ReadHalf<DuplexStream>, WriteHalf<DuplexStream>) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (ar, aw) = tokio::io::split(a);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let conn = start_on(ar, aw, Peer::plain(addr, addr), config, handler, server);
        let (br, bw) = tokio::io::split(b);
        (conn, br, bw)
    }

    /// Reads one message; `None` at end of stream.
    async fn read_msg(r: &mut ReadHalf<DuplexStream>) -> Option<(MessageType, Vec<u8>)> {
        let mut h = [0u8; HEADER_SIZE];
        r.read_exact(&mut h).await.ok()?;
        let header = Header::parse(&h, 1 << 20).unwrap();
        let mut body = vec![0u8; header.size - HEADER_SIZE];
        r.read_exact(&mut body).await.ok()?;
        Some((header.message_type, body))
    }

    fn ping_request(id: i32) -> Bytes {
        let req = RequestData {
            request_id: id,
            name: "x".into(),
            operation: "ice_ping".into(),
            mode: crate::protocol::OperationMode::Nonmutating,
            params: empty_encapsulation(1, 1),
            ..Default::default()
        };
        build_message(MessageType::Request, &req.request_body(), false)
    }

    #[tokio::test(start_paused = true)]
    async fn server_sends_heartbeats_only_while_dispatching() {
        let acm = AcmConfig {
            timeout: Duration::from_secs(4),
            heartbeat: AcmHeartbeat::OnDispatch,
            close: AcmClose::OnInvocation,
        };
        let (_conn, mut r, mut w) =
            pipe(true, acm, Some(Arc::new(Slow(Duration::from_millis(9500)))));
        assert_eq!(
            read_msg(&mut r).await.unwrap().0,
            MessageType::ValidateConnection
        );
        // Idle and not dispatching: silence.
        assert!(
            tokio::time::timeout(Duration::from_secs(10), read_msg(&mut r))
                .await
                .is_err()
        );
        let start = Instant::now();
        w.write_all(&ping_request(1)).await.unwrap();
        let mut heartbeats = Vec::new();
        loop {
            let (t, _) = read_msg(&mut r).await.unwrap();
            let at = start.elapsed().as_secs_f64();
            match t {
                MessageType::ValidateConnection => heartbeats.push(at),
                MessageType::Reply => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        // Checked every 2 s (timeout / 2), sent when idle for 1 s (timeout / 4): 4 during 9.5 s.
        assert_eq!(heartbeats.len(), 4, "{heartbeats:?}");
        for pair in heartbeats.windows(2) {
            assert!((pair[1] - pair[0] - 2.0).abs() < 0.1, "{heartbeats:?}");
        }
        assert!((start.elapsed().as_secs_f64() - 9.5).abs() < 0.1);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_client_connection_closes_gracefully() {
        let acm = AcmConfig {
            timeout: Duration::from_secs(2),
            heartbeat: AcmHeartbeat::Off,
            close: AcmClose::OnIdle,
        };
        let (conn, mut r, w) = pipe(false, acm, None);
        let start = Instant::now();
        let (t, _) = read_msg(&mut r).await.unwrap();
        assert_eq!(t, MessageType::CloseConnection);
        let at = start.elapsed().as_secs_f64();
        assert!((2.0..=3.1).contains(&at), "closed at {at}");
        // The peer closes its side: the handshake completes.
        drop(w);
        drop(r);
        assert!(matches!(
            conn.wait_closed().await,
            Error::ConnectionClosed(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_with_pending_request_is_dropped() {
        let acm = AcmConfig::default_for(false);
        let acm = AcmConfig {
            timeout: Duration::from_secs(2),
            ..acm
        };
        let (conn, mut r, _w) = pipe(false, acm, None);
        let message = ping_request(0);
        let call = tokio::spawn({
            let conn = conn.clone();
            async move { conn.send_request(message, false, true).await }
        });
        assert_eq!(read_msg(&mut r).await.unwrap().0, MessageType::Request);
        let failure = call.await.unwrap().unwrap_err();
        assert_eq!(failure.error, Error::ConnectionTimeout);
        assert!(failure.sent);
        // Forceful: no CloseConnection, just the end of the stream.
        assert!(read_msg(&mut r).await.is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever a client sends, the server-side actor never panics and ends once the client
        /// is gone; valid messages mixed in are answered.
        #[test]
        fn server_actor_survives_any_input(
            chunks in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                    proptest::strategy::Just(ping_request(7).to_vec()),
                    proptest::strategy::Just(validate_connection_message().to_vec()),
                ],
                0..6,
            )
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
            rt.block_on(async {
                let acm = AcmConfig::default_for(true);
                let handler: Arc<dyn RequestHandler> = Arc::new(Slow(Duration::from_millis(1)));
                let (conn, mut r, mut w) = pipe(true, acm, Some(handler));
                for c in &chunks {
                    if w.write_all(c).await.is_err() {
                        break;
                    }
                }
                let _ = w.shutdown().await;
                // Drain what the server sends until it closes.
                let drain = async { while read_msg(&mut r).await.is_some() {} };
                tokio::time::timeout(Duration::from_secs(120), drain).await.expect("server closes");
                tokio::time::timeout(Duration::from_secs(120), conn.wait_closed()).await.expect("actor ends");
            });
        }
    }

    /// Counts the writes that reach the peer, and writes vectors as one write (as a socket does).
    struct CountingWriter {
        inner: WriteHalf<DuplexStream>,
        writes: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl AsyncWrite for CountingWriter {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
            if matches!(r, std::task::Poll::Ready(Ok(_))) {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
            r
        }

        fn poll_write_vectored(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &joined)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// ACM off on a client connection: nothing but what a test sends.
    fn no_acm() -> AcmConfig {
        AcmConfig {
            timeout: Duration::ZERO,
            ..AcmConfig::default_for(false)
        }
    }

    /// A oneway Request message of `size` bytes in all, its parameters filled with `fill`.
    fn oneway_request(size: usize, fill: u8) -> Bytes {
        let mut m = BytesMut::from(&ping_request(0)[..]);
        m.resize(size, fill);
        crate::protocol::finish_request_message(&mut m).unwrap();
        m.freeze()
    }

    #[tokio::test]
    async fn oneways_return_once_queued_up_to_the_bound_then_once_written() {
        let mut cfg = config(no_acm());
        cfg.limits.max_queued_oneway_bytes = 100 << 10;
        let (conn, mut r, _w) = pipe_with(false, cfg, None);
        // Nothing is written before this task yields (the runtime has one thread): two
        // requests of 50 KiB fill the bound and return at once.
        for i in 0..2 {
            let sent = futures_util::FutureExt::now_or_never(conn.send_request(
                oneway_request(50 << 10, i),
                false,
                false,
            ));
            assert!(
                matches!(sent, Some(Ok(None))),
                "oneway {i} should return once queued"
            );
        }
        let third = conn.send_request(oneway_request(50 << 10, 2), false, false);
        tokio::pin!(third);
        assert!(futures_util::FutureExt::now_or_never(third.as_mut()).is_none());
        // The pipe takes 64 KiB and the peer reads nothing: the third stays unwritten.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            futures_util::FutureExt::now_or_never(third.as_mut()).is_none(),
            "past the bound a oneway returns only once written"
        );
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let (t, body) = read_msg(&mut r).await.unwrap();
                assert_eq!(t, MessageType::Request);
                assert_eq!(body.len(), (50 << 10) - HEADER_SIZE);
                assert_eq!(&body[..4], &[0; 4], "oneway request id");
                seen.push(body[body.len() - 1]);
            }
            seen
        });
        assert!(matches!(third.await, Ok(None)));
        assert_eq!(reader.await.unwrap(), vec![0, 1, 2], "requests in order");
        assert_eq!(conn.inner.queued_oneways.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_queued_oneway_goes_out_before_close_connection() {
        let (conn, mut r, _w) = pipe(false, no_acm(), None);
        // Queued while the connection is active, handled after the close began.
        conn.send_request(oneway_request(100, 1), false, false)
            .await
            .unwrap();
        conn.close(true);
        assert_eq!(read_msg(&mut r).await.unwrap().0, MessageType::Request);
        assert_eq!(
            read_msg(&mut r).await.unwrap().0,
            MessageType::CloseConnection
        );
        // Once the connection no longer takes requests, a oneway fails unsent (to be retried).
        let failure = conn
            .send_request(oneway_request(100, 2), false, false)
            .await
            .unwrap_err();
        assert!(!failure.sent);
    }

    #[tokio::test]
    async fn a_large_request_keeps_its_parameters_and_gets_its_id() {
        let (conn, mut r, _w) = pipe(false, no_acm(), None);
        let message = oneway_request(200 << 10, 9);
        let call = tokio::spawn({
            let conn = conn.clone();
            let message = message.clone();
            async move { conn.send_request(message, false, true).await }
        });
        let (t, body) = read_msg(&mut r).await.unwrap();
        assert_eq!(t, MessageType::Request);
        assert_eq!(&body[..4], &1i32.to_le_bytes(), "first request id");
        assert_eq!(&body[4..], &message[HEADER_SIZE + 4..]);
        // The caller's message is untouched (it resends it on a retry).
        assert_eq!(&message[HEADER_SIZE..HEADER_SIZE + 4], &[0; 4]);
        call.abort();
    }

    #[tokio::test]
    async fn with_no_room_for_queued_oneways_a_oneway_returns_once_written() {
        let mut cfg = config(no_acm());
        cfg.limits.max_queued_oneway_bytes = 0;
        let (conn, mut r, _w) = pipe_with(false, cfg, None);
        // Larger than the pipe: it cannot be all written before the peer reads.
        let call = conn.send_request(oneway_request(100 << 10, 1), false, false);
        tokio::pin!(call);
        assert!(futures_util::FutureExt::now_or_never(call.as_mut()).is_none());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            futures_util::FutureExt::now_or_never(call.as_mut()).is_none(),
            "a oneway returns once written, as in Ice"
        );
        let reader = tokio::spawn(async move { read_msg(&mut r).await.unwrap().0 });
        assert!(matches!(call.await, Ok(None)));
        assert_eq!(reader.await.unwrap(), MessageType::Request);
    }

    #[tokio::test]
    async fn messages_queued_together_leave_in_one_write() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let (ar, aw) = tokio::io::split(a);
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer = CountingWriter {
            inner: aw,
            writes: writes.clone(),
        };
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let acm = AcmConfig {
            timeout: Duration::ZERO,
            ..AcmConfig::default_for(false)
        };
        let conn = start_on(
            ar,
            writer,
            Peer::plain(addr, addr),
            config(acm),
            None,
            false,
        );
        // Queued before the connection's task runs (this runtime has one thread).
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..40 {
            let tx = tx.clone();
            conn.send_raw_then(ping_request(0), move |r| {
                let _ = tx.send((i, r.is_ok()));
            });
        }
        for i in 0..40 {
            assert_eq!(rx.recv().await, Some((i, true)));
        }
        assert_eq!(
            writes.load(Ordering::SeqCst),
            1,
            "forty messages, one write"
        );
        let (mut br, _bw) = tokio::io::split(b);
        for _ in 0..40 {
            assert_eq!(read_msg(&mut br).await.unwrap().0, MessageType::Request);
        }
    }

    /// Counts the requests it is given.
    struct Count(Arc<std::sync::atomic::AtomicUsize>);

    impl RequestHandler for Count {
        fn handle(
            &self,
            _request: RequestData,
            _c: Option<Connection>,
        ) -> BoxFuture<'static, ReplyBody> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { ReplyBody::Ok(empty_encapsulation(1, 1)) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn decompression_budget_spreads_inflation_over_time() {
        let acm = AcmConfig {
            timeout: Duration::ZERO,
            ..AcmConfig::default_for(true)
        };
        let mut cfg = config(acm);
        cfg.limits.decompressed_per_second = Some(1 << 20);
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (_conn, mut r, mut w) = pipe_with(true, cfg, Some(Arc::new(Count(count.clone()))));
        assert_eq!(
            read_msg(&mut r).await.unwrap().0,
            MessageType::ValidateConnection
        );
        // Oneway requests inflating to 512 KiB each, four of them: a second's budget (1 MiB)
        // covers two at once, the others wait half a second each.
        let req = RequestData {
            request_id: 0,
            name: "x".into(),
            operation: "op".into(),
            params: crate::protocol::encapsulate(1, 1, &vec![0u8; (512 << 10) - 64]),
            ..Default::default()
        };
        let msg = build_message(MessageType::Request, &req.request_body(), true);
        assert_eq!(msg[9], 2, "compressed");
        let start = Instant::now();
        for _ in 0..4 {
            w.write_all(&msg).await.unwrap();
        }
        let mut handled = Vec::new();
        while handled.len() < 4 {
            let n = count.load(Ordering::SeqCst);
            if n > handled.len() {
                handled.resize(n, start.elapsed().as_secs_f64());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(handled[1] < 0.1, "{handled:?}");
        assert!((0.45..0.65).contains(&handled[2]), "{handled:?}");
        assert!((0.95..1.15).contains(&handled[3]), "{handled:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_always_keeps_talking() {
        let acm = AcmConfig {
            timeout: Duration::from_secs(2),
            heartbeat: AcmHeartbeat::Always,
            close: AcmClose::Off,
        };
        let (_conn, mut r, _w) = pipe(false, acm, None);
        let start = Instant::now();
        for i in 1..=3 {
            assert_eq!(
                read_msg(&mut r).await.unwrap().0,
                MessageType::ValidateConnection
            );
            assert!((start.elapsed().as_secs_f64() - i as f64).abs() < 0.1);
        }
    }

    /// A client connection over real TCP whose callers write to the socket themselves, and
    /// the other end as a bare socket. `buffers`: the socket buffer sizes of both ends.
    async fn tcp_client(buffers: Option<usize>) -> (Connection, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (client, other) = (client.unwrap(), accepted.unwrap().0);
        if let Some(size) = buffers {
            socket2::SockRef::from(&client)
                .set_send_buffer_size(size)
                .unwrap();
            socket2::SockRef::from(&other)
                .set_recv_buffer_size(size)
                .unwrap();
        }
        let (r, w) = client.into_split();
        let w = Arc::new(w);
        let peer = Peer {
            gate: Some(direct::Gate::new(w.clone())),
            ..Peer::plain(addr, addr)
        };
        let conn = start_on(
            r,
            direct::SharedWrite(w),
            peer,
            config(no_acm()),
            None,
            false,
        );
        (conn, other)
    }

    /// Reads one message of up to 16 MiB from `r`: its type, and its body.
    async fn read_any<R: AsyncRead + Unpin>(r: &mut R) -> (MessageType, Vec<u8>) {
        let mut h = [0u8; HEADER_SIZE];
        r.read_exact(&mut h).await.unwrap();
        let header = Header::parse(&h, 16 << 20).unwrap();
        let mut body = vec![0u8; header.size - HEADER_SIZE];
        r.read_exact(&mut body).await.unwrap();
        (header.message_type, body)
    }

    fn reply_message(id: i32) -> Bytes {
        let body = ReplyData {
            request_id: id,
            body: ReplyBody::Ok(empty_encapsulation(1, 1)),
        }
        .to_body();
        build_message(MessageType::Reply, &body, false)
    }

    fn gate(conn: &Connection) -> &direct::Gate {
        conn.inner
            .gate
            .as_ref()
            .expect("a client TCP connection has a gate")
    }

    #[tokio::test]
    async fn an_idle_connections_caller_writes_its_request_itself() {
        let (conn, mut peer) = tcp_client(None).await;
        let call = tokio::spawn({
            let conn = conn.clone();
            async move { conn.send_request(ping_request(0), false, true).await }
        });
        let (t, body) = read_any(&mut peer).await;
        assert_eq!(t, MessageType::Request);
        assert_eq!(&body[..4], &1i32.to_le_bytes());
        assert!(gate(&conn).take_wrote(), "the caller wrote the request");
        assert!(!gate(&conn).is_claimed());
        peer.write_all(&reply_message(1)).await.unwrap();
        let reply = call.await.unwrap().unwrap().unwrap();
        assert_eq!(reply.request_id, 1);
    }

    #[tokio::test]
    async fn what_the_socket_did_not_take_from_a_caller_goes_out_before_anything_else() {
        let (conn, mut peer) = tcp_client(Some(32 << 10)).await;
        let big = oneway_request(4 << 20, 7);
        let first = tokio::spawn({
            let conn = conn.clone();
            let big = big.clone();
            async move { conn.send_request(big, false, false).await }
        });
        // The peer reads nothing yet: the socket takes part of the 4 MiB, the task the rest.
        tokio::time::timeout(Duration::from_secs(5), async {
            while !gate(&conn).take_wrote() && !gate(&conn).is_claimed() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert!(
            gate(&conn).is_claimed(),
            "the caller left part of its request to the task"
        );
        let later = tokio::spawn({
            let conn = conn.clone();
            async move {
                conn.send_request(oneway_request(100, 3), false, false)
                    .await?;
                conn.send_request(ping_request(0), false, true).await
            }
        });
        let (t, body) = read_any(&mut peer).await;
        assert_eq!(t, MessageType::Request);
        assert_eq!(
            &body[..],
            &big[HEADER_SIZE..],
            "the large request arrives whole"
        );
        first.await.unwrap().unwrap();
        let (_, body) = read_any(&mut peer).await;
        assert_eq!(body.len(), 100 - HEADER_SIZE);
        assert_eq!(body.last(), Some(&3));
        let (_, body) = read_any(&mut peer).await;
        assert_eq!(
            &body[..4],
            &1i32.to_le_bytes(),
            "the twoway request comes last"
        );
        peer.write_all(&reply_message(1)).await.unwrap();
        later.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_message_left_to_the_task_is_not_overtaken_by_the_callers_next_request() {
        let (conn, mut peer) = tcp_client(None).await;
        // A raw message always goes through the task; the request after it finds the socket
        // free, but must not be written ahead of it.
        conn.send_raw_then(oneway_request(100, 1), |r| r.unwrap());
        conn.send_request(oneway_request(100, 2), false, false)
            .await
            .unwrap();
        for fill in [1, 2] {
            let (_, body) = read_any(&mut peer).await;
            assert_eq!(body.last(), Some(&fill), "message {fill} in its place");
        }
        // Once the task wrote what it had, the next request is the caller's to write.
        tokio::time::timeout(Duration::from_secs(5), async {
            while gate(&conn).is_claimed() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        gate(&conn).take_wrote();
        tokio::time::sleep(direct::DIRECT_GAP * 2).await;
        conn.send_request(oneway_request(100, 3), false, false)
            .await
            .unwrap();
        assert!(gate(&conn).take_wrote());
        assert_eq!(read_any(&mut peer).await.1.last(), Some(&3));
    }

    #[tokio::test]
    async fn a_raw_message_is_written_at_once_only_when_the_task_has_nothing_to_write() {
        let (conn, mut peer) = tcp_client(None).await;
        let now = conn.send_raw_now_or_then(oneway_request(100, 1), |_| {
            panic!("a message written at once is not reported later")
        });
        assert!(now, "written at once on an idle connection");
        assert_eq!(read_any(&mut peer).await.1.last(), Some(&1));
        let (tx, rx) = oneshot::channel();
        conn.send_raw_then(oneway_request(100, 2), |r| r.unwrap());
        let now = conn.send_raw_now_or_then(oneway_request(100, 3), move |r| {
            let _ = tx.send(r);
        });
        assert!(!now, "queued behind the message the task has to write");
        rx.await.unwrap().unwrap();
        for fill in [2, 3] {
            assert_eq!(read_any(&mut peer).await.1.last(), Some(&fill));
        }
    }

    #[tokio::test]
    async fn a_burst_of_requests_is_left_to_the_task() {
        let (conn, mut peer) = tcp_client(None).await;
        const BURST: usize = 200;
        let mut direct = 0;
        for i in 0..BURST {
            conn.send_request(oneway_request(100, i as u8), false, false)
                .await
                .unwrap();
            direct += usize::from(gate(&conn).take_wrote());
        }
        // Each follows the previous by less than DIRECT_GAP, but for the odd preemption.
        assert!(
            direct < BURST / 4,
            "{direct} of {BURST} written by the caller"
        );
        for i in 0..BURST {
            assert_eq!(read_any(&mut peer).await.1.last(), Some(&(i as u8)));
        }
    }

    #[tokio::test]
    async fn a_oneway_the_socket_took_in_part_returns_once_queued() {
        let (conn, mut peer) = tcp_client(Some(32 << 10)).await;
        let message = oneway_request(300 << 10, 5);
        // The peer reads nothing: the rest waits for the task, within the bound on queued
        // oneways, and the call returns at once.
        tokio::time::timeout(
            Duration::from_secs(5),
            conn.send_request(message.clone(), false, false),
        )
        .await
        .expect("the call returns before the peer reads")
        .unwrap();
        assert!(gate(&conn).take_wrote(), "the caller wrote part of it");
        let queued = conn.inner.queued_oneways.load(Ordering::Acquire);
        assert!(
            queued > 0 && queued < message.len(),
            "{queued} bytes left to the task"
        );
        let (_, body) = read_any(&mut peer).await;
        assert_eq!(&body[..], &message[HEADER_SIZE..]);
        tokio::time::timeout(Duration::from_secs(5), async {
            while conn.inner.queued_oneways.load(Ordering::Acquire) > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
    }

    #[test]
    fn a_request_waiting_for_its_reply_fails_when_the_connections_runtime_goes_away() {
        let home = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (conn, mut peer) = home.block_on(tcp_client(None));
        let callers = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let call = callers.spawn({
            let conn = conn.clone();
            async move { conn.send_request(ping_request(0), false, true).await }
        });
        let (t, _) = home.block_on(read_any(&mut peer));
        assert_eq!(t, MessageType::Request);
        // The connection's task is dropped with its runtime, before any reply.
        drop(home);
        let result = callers
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), call).await })
            .expect("the caller is not left waiting")
            .unwrap();
        let failure = result.expect_err("no reply can come any more");
        assert!(failure.sent, "the request was written");
        assert!(!conn.is_active());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_callers_requests_keep_their_order_whoever_writes_them() {
        let (conn, peer) = tcp_client(Some(64 << 10)).await;
        let (mut pr, mut pw) = peer.into_split();
        const SENDERS: usize = 4;
        const ONEWAYS: usize = 300;
        // Sender k's oneway i has size SIZES[i % 4] + k (so the size tells the sender) and its
        // bytes are i.
        const SIZES: [usize; 4] = [40, 3000, 20 << 10, 100 << 10];
        let senders: Vec<_> = (0..SENDERS)
            .map(|k| {
                let conn = conn.clone();
                let messages: Vec<Bytes> = (0..ONEWAYS)
                    .map(|i| oneway_request(SIZES[i % SIZES.len()] + k, i as u8))
                    .collect();
                tokio::spawn(async move {
                    for message in messages {
                        conn.send_request(message, false, false).await.unwrap();
                    }
                })
            })
            .collect();
        let caller = tokio::spawn({
            let conn = conn.clone();
            async move {
                let mut calls = 0;
                while senders.iter().any(|s| !s.is_finished()) {
                    conn.send_request(ping_request(0), false, true)
                        .await
                        .unwrap();
                    calls += 1;
                }
                calls
            }
        });
        let mut next = [0usize; SENDERS];
        let mut replies = 0;
        while next.iter().any(|&n| n < ONEWAYS) {
            let (t, body) = read_any(&mut pr).await;
            assert_eq!(t, MessageType::Request);
            let id = i32::from_le_bytes(body[..4].try_into().unwrap());
            if id != 0 {
                pw.write_all(&reply_message(id)).await.unwrap();
                replies += 1;
                continue;
            }
            let size = body.len() + HEADER_SIZE;
            let k = size % 4;
            let i = next[k];
            assert_eq!(size, SIZES[i % SIZES.len()] + k, "sender {k}'s oneway {i}");
            assert!(
                body[body.len().min(60)..].iter().all(|&b| b == i as u8),
                "sender {k}'s oneway {i} arrives whole and in order"
            );
            next[k] += 1;
        }
        // The last twoway call may still wait for its reply.
        let last = tokio::spawn(async move {
            loop {
                let (_, body) = read_any(&mut pr).await;
                let id = i32::from_le_bytes(body[..4].try_into().unwrap());
                pw.write_all(&reply_message(id)).await.unwrap();
            }
        });
        let calls = caller.await.unwrap();
        last.abort();
        assert!(
            calls >= replies && calls > 0,
            "{calls} calls, {replies} replies"
        );
    }
}
