//! The [`Communicator`]: configuration, proxies from strings and properties, the outgoing
//! connection cache, object adapters, and an explicit, idempotent shutdown.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::adapter::ObjectAdapter;
use crate::connection::{self, AcmConfig, Connection, ConnectionConfig};
use crate::encoding::EncodingVersion;
use crate::endpoint::{DEFAULT_TIMEOUT_MS, IpEndpoint, parse_version};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::properties::Properties;
use crate::protocol::{DEFAULT_MESSAGE_SIZE_MAX_KIB, message_size_max_bytes};
use crate::proxy::ObjectPrx;

type ConnKey = (String, u16, i32, crate::endpoint::Transport);

/// The state shared by a communicator's handles, proxies and adapters.
pub(crate) struct Instance {
    pub(crate) properties: Properties,
    pub(crate) default_encoding: EncodingVersion,
    pub(crate) default_host: String,
    pub(crate) default_timeout: i32,
    pub(crate) default_invocation_timeout: i32,
    pub(crate) override_compress: Option<bool>,
    /// `Ice.Override.Timeout`: replaces every endpoint timeout.
    override_timeout: Option<i32>,
    /// `Ice.Override.ConnectTimeout`: replaces the endpoint timeout when connecting.
    override_connect_timeout: Option<i32>,
    pub(crate) max_message_size: usize,
    pub(crate) client_acm: AcmConfig,
    pub(crate) server_acm: AcmConfig,
    /// `Ice.Connection.*`: what every connection of the communicator lets its peer make it
    /// hold (the pool of incomplete messages is shared by all of them).
    pub(crate) connection_limits: connection::Limits,
    pub(crate) close_timeout: Duration,
    pub(crate) retry_intervals: Vec<i32>,
    pub(crate) trace_network: i32,
    pub(crate) trace_protocol: i32,
    pub(crate) trace_retry: i32,
    pub(crate) warn_dispatch: i32,
    /// `Ice.Default.SlicedFormat`: the format of classes and exceptions sent by operations
    /// without `["format:…"]` metadata.
    pub(crate) default_format: crate::encoding::FormatType,
    /// `Ice.AcceptClassCycles`: whether received class graphs may have cycles.
    pub(crate) accept_class_cycles: bool,
    connections: Mutex<HashMap<ConnKey, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
    adapters: Mutex<HashMap<String, ObjectAdapter>>,
    /// Adapters created without a name (bidirectional clients' adapters, for instance): shut
    /// down and destroyed with the others.
    unnamed_adapters: Mutex<Vec<ObjectAdapter>>,
    udp_sockets: tokio::sync::Mutex<HashMap<String, Arc<crate::udp::UdpSocket>>>,
    /// TLS for `ssl` and `wss` endpoints, built from `IceSSL.*` on first use.
    ssl: std::sync::OnceLock<Result<Arc<crate::transport::ssl::SslEngine>>>,
    pub(crate) self_ref: std::sync::Weak<Instance>,
    batches: Mutex<Vec<std::sync::Weak<crate::proxy::Reference>>>,
    locations: Mutex<HashMap<String, Vec<crate::endpoint::Endpoint>>>,
    /// The admin object's facets and adapter (see [`crate::admin`]).
    pub(crate) admin: crate::admin::Admin,
    shutdown: watch::Sender<bool>,
    destroyed: AtomicBool,
}

impl Instance {
    pub(crate) fn check_not_destroyed(&self) -> Result<()> {
        if self.destroyed.load(Ordering::Acquire) {
            Err(Error::CommunicatorDestroyed)
        } else {
            Ok(())
        }
    }

    /// An open connection to `ep`, from the cache or newly established.
    pub(crate) async fn get_connection(&self, ep: &IpEndpoint) -> Result<Connection> {
        self.check_not_destroyed()?;
        let host = if ep.host.is_empty() {
            self.default_host.clone()
        } else {
            ep.host.clone()
        };
        let key = (host, ep.port, ep.timeout, ep.transport);
        let slot = self.connections.lock().entry(key).or_default().clone();
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if c.is_active() {
                return Ok(c.clone());
            }
        }
        let mut target = ep.clone();
        if target.host.is_empty() {
            target.host = self.default_host.clone();
        }
        let config = ConnectionConfig {
            max_message_size: self.max_message_size,
            acm: self.client_acm,
            limits: self.connection_limits.clone(),
            close_timeout: self.close_timeout,
            trace_network: self.trace_network,
            trace_protocol: self.trace_protocol,
            serialize: self
                .properties
                .get_property_as_int("Ice.ThreadPool.Client.Serialize")
                > 0,
            io_timeout: timeout_ms(self.override_timeout.unwrap_or(ep.timeout)),
            hold: None,
            idle_timeout: None,
            instance: self.self_ref.clone(),
        };
        let timeout = timeout_ms(
            self.override_connect_timeout
                .or(self.override_timeout)
                .unwrap_or(ep.timeout),
        );
        let ws = || connection::WsTarget {
            host: target.host.clone(),
            port: target.port,
            resource: target.resource.clone(),
        };
        let dial = match target.transport {
            crate::endpoint::Transport::Ws => connection::Dial::Ws(ws()),
            crate::endpoint::Transport::Ssl => connection::Dial::Ssl {
                engine: self.ssl_engine()?,
                host: target.host.clone(),
                ws: None,
            },
            crate::endpoint::Transport::Wss => connection::Dial::Ssl {
                engine: self.ssl_engine()?,
                host: target.host.clone(),
                ws: Some(ws()),
            },
            _ => connection::Dial::Tcp,
        };
        let conn =
            connection::connect(&target.socket_address(), dial, timeout, config, None).await?;
        conn.set_endpoint(crate::endpoint::Endpoint::Ip(target.clone()));
        if self.destroyed.load(Ordering::Acquire) {
            conn.close(false);
            return Err(Error::CommunicatorDestroyed);
        }
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// The communicator's TLS engine (IceSSL's properties read and files loaded on first use).
    pub(crate) fn ssl_engine(&self) -> Result<Arc<crate::transport::ssl::SslEngine>> {
        self.ssl
            .get_or_init(|| crate::transport::ssl::SslEngine::new(&self.properties).map(Arc::new))
            .clone()
    }

    /// A UDP socket connected to `ep` (one per destination, interface and TTL, as Ice's datagram
    /// connections).
    pub(crate) async fn udp_socket(
        &self,
        ep: &crate::endpoint::IpEndpoint,
    ) -> Result<Arc<crate::udp::UdpSocket>> {
        let addr = ep.socket_address();
        let key = format!("{addr} {} {}", ep.interface, ep.ttl);
        let mut sockets = self.udp_sockets.lock().await;
        if let Some(s) = sockets.get(&key) {
            return Ok(s.clone());
        }
        let target: std::net::SocketAddr = tokio::net::lookup_host(&addr)
            .await
            .map_err(|e| Error::ConnectFailed(format!("{addr}: {e}")))?
            .next()
            .ok_or_else(|| Error::ConnectFailed(format!("{addr}: no address")))?;
        let socket = crate::udp::bind_client(target, ep, &self.properties)
            .map_err(|e| Error::ConnectFailed(format!("udp socket for {addr}: {e}")))?;
        let socket = Arc::new(socket);
        sockets.insert(key, socket.clone());
        Ok(socket)
    }

    pub(crate) fn cached_location(&self, key: &str) -> Option<Vec<crate::endpoint::Endpoint>> {
        self.locations.lock().get(key).cloned()
    }

    pub(crate) fn cache_location(&self, key: String, endpoints: Vec<crate::endpoint::Endpoint>) {
        self.locations.lock().insert(key, endpoints);
    }

    pub(crate) fn forget_location(&self, key: &str) {
        self.locations.lock().remove(key);
    }

    /// Remembers a batch proxy that has queued requests, for
    /// [`Communicator::flush_batch_requests`].
    pub(crate) fn register_batch(&self, r: std::sync::Weak<crate::proxy::Reference>) {
        let mut b = self.batches.lock();
        b.retain(|w| w.strong_count() > 0);
        b.push(r);
    }

    pub(crate) fn forget_connection(&self, conn: &Connection) {
        let slots: Vec<_> = self.connections.lock().values().cloned().collect();
        for slot in slots {
            if let Ok(mut g) = slot.try_lock() {
                if g.as_ref() == Some(conn) {
                    *g = None;
                }
            }
        }
    }

    /// Forgets a destroyed adapter.
    pub(crate) fn remove_adapter(&self, adapter: &ObjectAdapter) {
        if adapter.name().is_empty() {
            self.unnamed_adapters.lock().retain(|a| a != adapter);
        } else {
            self.adapters.lock().remove(adapter.name());
        }
    }

    /// Every adapter, named or not.
    fn all_adapters(&self) -> Vec<ObjectAdapter> {
        let mut all: Vec<ObjectAdapter> = self.adapters.lock().values().cloned().collect();
        all.extend(self.unnamed_adapters.lock().iter().cloned());
        all
    }
}

/// Raises the soft limit on open file descriptors to the hard limit, once per process.
fn raise_descriptor_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        {
            use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
            let limit = getrlimit(Resource::Nofile);
            // An unlimited hard limit is not a value the soft one may take for descriptors:
            // Linux caps it at fs.nr_open.
            let target = limit.maximum.or_else(|| {
                std::fs::read_to_string("/proc/sys/fs/nr_open")
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
            });
            if let (Some(current), Some(target)) = (limit.current, target) {
                if current < target {
                    let raised = Rlimit {
                        current: Some(target),
                        maximum: limit.maximum,
                    };
                    match setrlimit(Resource::Nofile, raised) {
                        Ok(()) => tracing::debug!(
                            target: "floe::network",
                            "raised the file-descriptor limit from {current} to {target}"
                        ),
                        Err(e) => tracing::debug!(
                            target: "floe::network",
                            "cannot raise the file-descriptor limit from {current} to {target}: {e}"
                        ),
                    }
                }
            }
        }
    });
}

/// A timeout property in milliseconds, when set (-1 = infinite).
fn override_ms(p: &Properties, key: &str) -> Option<i32> {
    (!p.get_property(key).is_empty()).then(|| p.get_property_as_int_with_default(key, -1))
}

/// A timeout in milliseconds as a duration; zero or negative means no timeout.
pub(crate) fn timeout_ms(v: i32) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v as u64))
}

/// The entry point of the runtime: a `Clone` handle over one configured instance.
#[derive(Clone)]
pub struct Communicator {
    inner: Arc<Instance>,
}

impl fmt::Debug for Communicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Communicator").finish_non_exhaustive()
    }
}

impl PartialEq for Communicator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// Creates a communicator from command-line arguments (`--Ice.Config=`, `ICE_CONFIG`,
/// `--Ice.*` overrides; see [`Properties::from_args`]). The Ice options are removed from `args`.
pub fn initialize(args: &mut Vec<String>) -> Result<Communicator> {
    Communicator::with_properties(Properties::from_args(args)?)
}

impl Communicator {
    /// Creates a communicator configured by `properties`. The first one of the process raises
    /// the soft limit on open file descriptors to the hard one (a server that accepts many
    /// connections runs out of descriptors at the usual soft limit of 1,024 long before it
    /// runs out of anything else).
    pub fn with_properties(properties: Properties) -> Result<Communicator> {
        raise_descriptor_limit();
        let p = &properties;
        let default_encoding = {
            let s = p.get_property_with_default("Ice.Default.EncodingVersion", "1.1");
            let v = parse_version(&s)
                .map_err(|m| Error::Initialization(format!("Ice.Default.EncodingVersion: {m}")))?;
            if v.major != 1 || v.minor > 1 {
                return Err(Error::Initialization(format!(
                    "Ice.Default.EncodingVersion {v} is not supported"
                )));
            }
            v
        };
        let default_timeout =
            p.get_property_as_int_with_default("Ice.Default.Timeout", DEFAULT_TIMEOUT_MS);
        let dflt_client = AcmConfig::from_properties(p, "Ice.ACM", AcmConfig::default_for(false));
        let dflt_server = AcmConfig::from_properties(p, "Ice.ACM", AcmConfig::default_for(true));
        let retry_intervals = {
            let list = p.get_property_as_list_with_default("Ice.RetryIntervals", &["0"]);
            let v: Vec<i32> = list.iter().filter_map(|s| s.parse().ok()).collect();
            if v.len() == 1 && v[0] == -1 {
                Vec::new()
            } else {
                v.into_iter().map(|x| x.max(0)).collect()
            }
        };
        let (shutdown, _) = watch::channel(false);
        let mut instance = Instance {
            self_ref: std::sync::Weak::new(),
            default_encoding,
            default_host: p.get_property("Ice.Default.Host"),
            default_timeout: if default_timeout < 1 && default_timeout != -1 {
                DEFAULT_TIMEOUT_MS
            } else {
                default_timeout
            },
            default_invocation_timeout: p
                .get_property_as_int_with_default("Ice.Default.InvocationTimeout", -1),
            override_timeout: override_ms(p, "Ice.Override.Timeout"),
            override_connect_timeout: override_ms(p, "Ice.Override.ConnectTimeout"),
            override_compress: {
                let v = p.get_property("Ice.Override.Compress");
                if v.is_empty() {
                    None
                } else {
                    Some(p.get_property_as_int("Ice.Override.Compress") > 0)
                }
            },
            max_message_size: message_size_max_bytes(p.get_property_as_int_with_default(
                "Ice.MessageSizeMax",
                DEFAULT_MESSAGE_SIZE_MAX_KIB,
            )),
            client_acm: AcmConfig::from_properties(p, "Ice.ACM.Client", dflt_client),
            server_acm: AcmConfig::from_properties(p, "Ice.ACM.Server", dflt_server),
            connection_limits: connection::Limits::from_properties(p),
            close_timeout: Duration::from_millis(
                p.get_property_as_int_with_default("Ice.Override.CloseTimeout", 10000)
                    .max(1) as u64,
            ),
            retry_intervals,
            trace_network: p.get_property_as_int("Ice.Trace.Network"),
            trace_protocol: p.get_property_as_int("Ice.Trace.Protocol"),
            trace_retry: p.get_property_as_int("Ice.Trace.Retry"),
            warn_dispatch: p.get_property_as_int_with_default("Ice.Warn.Dispatch", 1),
            default_format: if p.get_property_as_int("Ice.Default.SlicedFormat") > 0 {
                crate::encoding::FormatType::Sliced
            } else {
                crate::encoding::FormatType::Compact
            },
            accept_class_cycles: p.get_property_as_int("Ice.AcceptClassCycles") > 0,
            connections: Mutex::new(HashMap::new()),
            adapters: Mutex::new(HashMap::new()),
            unnamed_adapters: Mutex::new(Vec::new()),
            udp_sockets: tokio::sync::Mutex::new(HashMap::new()),
            ssl: std::sync::OnceLock::new(),
            batches: Mutex::new(Vec::new()),
            locations: Mutex::new(HashMap::new()),
            admin: crate::admin::Admin::default(),
            shutdown,
            destroyed: AtomicBool::new(false),
            properties,
        };
        Ok(Communicator {
            inner: Arc::new_cyclic(move |self_ref| {
                instance.self_ref = self_ref.clone();
                instance
            }),
        })
    }

    pub(crate) fn from_instance(inner: Arc<Instance>) -> Communicator {
        Communicator { inner }
    }

    pub(crate) fn instance(&self) -> &Arc<Instance> {
        &self.inner
    }

    /// Runs `f` so that proxies decoded inside it (with `InputStream::read`) belong to this
    /// communicator. Typed invocations and dispatch do this by themselves; use it when decoding
    /// raw encapsulations (for instance in a [`crate::Blobject`]).
    pub fn decode_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        crate::proxy::with_decode_instance(&self.inner, f)
    }

    /// The communicator's properties.
    pub fn properties(&self) -> &Properties {
        &self.inner.properties
    }

    /// Parses a stringified proxy (`id -t -e 1.1:tcp -h host -p port`). An empty string (or
    /// `""`) is Ice's null proxy and gives `Ok(None)`.
    pub fn string_to_proxy(&self, s: &str) -> Result<Option<ObjectPrx>> {
        ObjectPrx::parse(self.inner.clone(), s)
    }

    /// The string form of a proxy (Ice's `proxyToString`); `""` for a null proxy.
    pub fn proxy_to_string(&self, proxy: Option<&ObjectPrx>) -> String {
        proxy.map(|p| p.to_string()).unwrap_or_default()
    }

    /// The proxy named by property `name`, or `None` when it is unset. `<name>.InvocationTimeout`
    /// applies if set.
    pub fn property_to_proxy(&self, name: &str) -> Result<Option<ObjectPrx>> {
        let value = self.inner.properties.get_property(name);
        if value.is_empty() {
            return Ok(None);
        }
        let prx = self.string_to_proxy(&value)?;
        let timeout = self
            .inner
            .properties
            .get_property_as_int_with_default(&format!("{name}.InvocationTimeout"), 0);
        Ok(prx.map(|p| {
            if timeout != 0 {
                p.ice_invocation_timeout(timeout)
            } else {
                p
            }
        }))
    }

    /// Ice's `identityToString` (Unicode mode).
    pub fn identity_to_string(&self, id: &Identity) -> String {
        id.to_string()
    }

    /// Ice's `stringToIdentity`.
    pub fn string_to_identity(&self, s: &str) -> Result<Identity> {
        s.parse()
    }

    /// Creates an object adapter listening on `<name>.Endpoints`.
    pub async fn create_object_adapter(&self, name: &str) -> Result<ObjectAdapter> {
        let endpoints = self
            .inner
            .properties
            .get_property(&format!("{name}.Endpoints"));
        self.create_object_adapter_with_endpoints(name, &endpoints)
            .await
    }

    /// Creates an object adapter listening on `endpoints` (for instance `tcp -h 127.0.0.1 -p 0`).
    pub async fn create_object_adapter_with_endpoints(
        &self,
        name: &str,
        endpoints: &str,
    ) -> Result<ObjectAdapter> {
        self.inner.check_not_destroyed()?;
        if !name.is_empty() && self.inner.adapters.lock().contains_key(name) {
            return Err(Error::AlreadyRegistered {
                kind: "object adapter".into(),
                id: name.to_string(),
            });
        }
        if !name.is_empty() {
            self.inner
                .properties
                .set_property(&format!("{name}.Endpoints"), endpoints);
        }
        let adapter = ObjectAdapter::create(self.inner.clone(), name, endpoints).await?;
        if name.is_empty() {
            self.inner.unnamed_adapters.lock().push(adapter.clone());
        } else {
            self.inner
                .adapters
                .lock()
                .insert(name.to_string(), adapter.clone());
        }
        Ok(adapter)
    }

    /// Sends the queued requests of every batch-oneway and batch-datagram proxy of this
    /// communicator. Returns the first error, after trying them all.
    pub async fn flush_batch_requests(&self) -> Result<()> {
        let refs: Vec<_> = std::mem::take(&mut *self.inner.batches.lock());
        let mut first_error = None;
        for r in refs.iter().filter_map(|w| w.upgrade()) {
            if let Err(e) = ObjectPrx::from_reference(r)
                .ice_flush_batch_requests()
                .await
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deactivates every object adapter. Idempotent.
    pub fn shutdown(&self) {
        for a in self.inner.all_adapters() {
            a.deactivate();
        }
        self.inner.shutdown.send_replace(true);
    }

    /// Whether [`Communicator::shutdown`] was called.
    pub fn is_shutdown(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Waits until [`Communicator::shutdown`] is called and every adapter has finished.
    pub async fn wait_for_shutdown(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
        for a in self.inner.all_adapters() {
            a.wait_for_deactivate().await;
        }
    }

    /// Shuts down, closes every outgoing connection gracefully, and makes later calls fail with
    /// [`Error::CommunicatorDestroyed`]. Idempotent.
    pub async fn destroy(&self) {
        self.shutdown();
        self.wait_for_shutdown().await;
        self.inner.destroyed.store(true, Ordering::Release);
        let slots: Vec<_> = self
            .inner
            .connections
            .lock()
            .drain()
            .map(|(_, v)| v)
            .collect();
        let mut conns = Vec::new();
        for slot in slots {
            if let Some(c) = slot.lock().await.take() {
                c.abort_and_close(Error::CommunicatorDestroyed);
                conns.push(c);
            }
        }
        for c in conns {
            let _ = tokio::time::timeout(self.inner.close_timeout, c.wait_closed()).await;
        }
        self.inner.adapters.lock().clear();
        self.inner.unnamed_adapters.lock().clear();
    }
}
