//! The state a communicator's handles, proxies, connections and adapters share: its
//! configuration read once from the properties (defaults, limits, ACM, tracing), the outgoing
//! connection cache, UDP sockets, the TLS engine and the location cache. It sits below proxies
//! and adapters, which hold it, and above connections and transports, which it opens; the
//! registries of things above it (object adapters, batch proxies, the admin object) hold them
//! type-erased, and the layer that owns each type reads them back.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::connection::{self, AcmConfig, Connection, ConnectionConfig};
use crate::encoding::EncodingVersion;
use crate::endpoint::IpEndpoint;
use crate::error::{Error, Result};
use crate::properties::Properties;

/// Something of a layer above this one, kept here for it.
pub(crate) type Erased = Arc<dyn Any + Send + Sync>;

pub(crate) type ConnKey = (String, u16, i32, crate::endpoint::Transport);

/// The state shared by a communicator's handles, proxies and adapters.
pub(crate) struct Instance {
    pub(crate) properties: Properties,
    pub(crate) default_encoding: EncodingVersion,
    pub(crate) default_host: String,
    pub(crate) default_timeout: i32,
    pub(crate) default_invocation_timeout: i32,
    pub(crate) override_compress: Option<bool>,
    /// `Ice.Override.Timeout`: replaces every endpoint timeout.
    pub(crate) override_timeout: Option<i32>,
    /// `Ice.Override.ConnectTimeout`: replaces the endpoint timeout when connecting.
    pub(crate) override_connect_timeout: Option<i32>,
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
    pub(crate) connections: Mutex<HashMap<ConnKey, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
    /// Named object adapters (`crate::adapter::ObjectAdapter`), by name.
    pub(crate) adapters: Mutex<HashMap<String, Erased>>,
    /// Adapters created without a name (bidirectional clients' adapters, for instance): shut
    /// down and destroyed with the others.
    pub(crate) unnamed_adapters: Mutex<Vec<Erased>>,
    pub(crate) udp_sockets:
        tokio::sync::Mutex<HashMap<String, Arc<crate::transport::udp::UdpSocket>>>,
    /// TLS for `ssl` and `wss` endpoints, built from `IceSSL.*` on first use.
    pub(crate) ssl: std::sync::OnceLock<Result<Arc<crate::transport::ssl::SslEngine>>>,
    pub(crate) self_ref: std::sync::Weak<Instance>,
    /// Proxies (`crate::proxy::Reference`) with queued batch requests.
    pub(crate) batches: Mutex<Vec<std::sync::Weak<dyn Any + Send + Sync>>>,
    pub(crate) locations: Mutex<HashMap<String, Vec<crate::endpoint::Endpoint>>>,
    /// The admin object's facets and adapter (`crate::admin::Admin`).
    pub(crate) admin: std::sync::OnceLock<Erased>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) destroyed: AtomicBool,
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
    ) -> Result<Arc<crate::transport::udp::UdpSocket>> {
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
        let socket = crate::transport::udp::bind_client(target, ep, &self.properties)
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
    pub(crate) fn register_batch(&self, r: std::sync::Weak<dyn Any + Send + Sync>) {
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
}

/// Raises the soft limit on open file descriptors to the hard limit, once per process.
pub(crate) fn raise_descriptor_limit() {
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
pub(crate) fn override_ms(p: &Properties, key: &str) -> Option<i32> {
    (!p.get_property(key).is_empty()).then(|| p.get_property_as_int_with_default(key, -1))
}

/// A timeout in milliseconds as a duration; zero or negative means no timeout.
pub(crate) fn timeout_ms(v: i32) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v as u64))
}

/// The entry point of the runtime: a `Clone` handle over one configured instance.
#[derive(Clone)]
pub struct Communicator {
    pub(crate) inner: Arc<Instance>,
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

impl Communicator {
    pub(crate) fn from_instance(inner: Arc<Instance>) -> Communicator {
        Communicator { inner }
    }

    pub(crate) fn instance(&self) -> &Arc<Instance> {
        &self.inner
    }
}
