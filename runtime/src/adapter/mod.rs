//! Object adapters: listening endpoints, the servant map (identity + facet), default servants per
//! category, activation and deactivation, and concurrent dispatch of incoming requests.

pub mod dispatch;
pub mod servant_locator;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::Instrument;

use crate::connection::{self, AcmConfig, Connection, ConnectionConfig, RequestHandler};
use crate::dispatch::{Current, Dispatcher, IncomingRequest, reply_for};
use crate::encoding::{AnyUserException, DispatchError, EncodingVersion};
use crate::endpoint::{Endpoint, Transport};
use crate::error::{Error, RequestFailed, Result};
use crate::identity::Identity;
use crate::instance::{Communicator, Instance};
use crate::protocol::{ReplyBody, RequestData};
use crate::proxy::ObjectPrx;
use crate::servant_locator::ServantLocator;

type Servant = Arc<dyn Dispatcher>;

/// A bound socket waiting for activation.
enum Listener {
    Tcp(TcpListener),
    Ws(TcpListener),
    /// `ssl` (`ws` false) and `wss` (`ws` true): a TLS handshake first.
    Ssl {
        listener: TcpListener,
        engine: Arc<crate::transport::ssl::SslEngine>,
        ws: bool,
    },
    /// A UDP socket and the endpoint it serves.
    Udp(crate::transport::udp::UdpSocket, Option<Endpoint>),
}

/// What an accept loop does with a new connection before Ice's protocol starts.
#[derive(Clone)]
enum Accept {
    Tcp,
    Ws,
    Ssl {
        engine: Arc<crate::transport::ssl::SslEngine>,
        ws: bool,
    },
}

#[derive(Default)]
struct ServantMap {
    servants: HashMap<Identity, HashMap<String, Servant>>,
    defaults: HashMap<String, Servant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdapterState {
    Created,
    Active,
    Deactivated,
}

struct AdapterInner {
    name: String,
    instance: Arc<Instance>,
    servants: RwLock<ServantMap>,
    /// Servant locators by category.
    locators: RwLock<HashMap<String, Arc<dyn ServantLocator>>>,
    endpoints: Vec<Endpoint>,
    published: Vec<Endpoint>,
    listeners: Mutex<Vec<Listener>>,
    accept_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The unregistration from the locator that deactivation started, for
    /// [`ObjectAdapter::wait_for_deactivate`] to finish.
    unregistering: Mutex<Option<tokio::task::JoinHandle<()>>>,
    connections: Mutex<HashSet<Connection>>,
    state: watch::Sender<AdapterState>,
    /// True while the adapter holds: no connection is accepted and its connections stop
    /// reading (`hold()`; `activate()` resumes).
    hold: watch::Sender<bool>,
    config: ConnectionConfig,
    /// Bounds concurrent dispatches (`<name>.ThreadPool.SizeMax` or
    /// `Ice.ThreadPool.Server.SizeMax`); unbounded when unset.
    dispatch_limit: Option<Arc<tokio::sync::Semaphore>>,
    /// Most connections open at once (`<name>.MaxConnections`); more are closed at once.
    max_connections: Option<usize>,
    /// WebSocket upgrades in progress (counted against `max_connections`).
    upgrading: std::sync::atomic::AtomicUsize,
}

/// A set of servants reachable through a set of endpoints. Cheap to clone (a handle).
#[derive(Clone)]
pub struct ObjectAdapter {
    inner: Arc<AdapterInner>,
}

impl fmt::Debug for ObjectAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectAdapter({})", self.inner.name)
    }
}

impl PartialEq for ObjectAdapter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl ObjectAdapter {
    /// Creates an adapter and binds its endpoints (port 0 gets an ephemeral port, reported by
    /// [`ObjectAdapter::endpoints`]). It accepts connections once activated.
    pub(crate) async fn create(
        instance: Arc<Instance>,
        name: &str,
        endpoints: &str,
    ) -> Result<ObjectAdapter> {
        let props = &instance.properties;
        let mut bound = Vec::new();
        let mut listeners = Vec::new();
        for ep_str in crate::endpoint::split_endpoints(endpoints)? {
            let ep = Endpoint::parse(&ep_str, &instance.default_host, instance.default_timeout)?;
            let Endpoint::Ip(ip) = ep else {
                return Err(Error::EndpointParse(format!(
                    "cannot listen on opaque endpoint `{ep_str}`"
                )));
            };
            // An ssl or wss endpoint needs the communicator's TLS engine, with a certificate.
            let engine = match ip.transport {
                Transport::Ssl | Transport::Wss => {
                    let engine = instance.ssl_engine()?;
                    engine.check_server().map_err(|e| {
                        Error::Initialization(format!(
                            "adapter `{name}` cannot listen on `{ep_str}`: {e}"
                        ))
                    })?;
                    Some(engine)
                }
                _ => None,
            };
            let host = if ip.host.is_empty() || ip.host == "*" {
                "0.0.0.0".to_string()
            } else {
                ip.host.clone()
            };
            let addr = if host.contains(':') {
                format!("[{host}]:{}", ip.port)
            } else {
                format!("{host}:{}", ip.port)
            };
            let cannot = |e: std::io::Error| {
                Error::Initialization(format!("adapter `{name}` cannot listen on {addr}: {e}"))
            };
            let (listener, local) = if ip.transport == Transport::Udp {
                let at = tokio::net::lookup_host(&addr)
                    .await
                    .map_err(cannot)?
                    .next()
                    .ok_or_else(|| cannot(std::io::ErrorKind::NotFound.into()))?;
                let socket = crate::transport::udp::bind_server(at, &ip, props).map_err(cannot)?;
                let local = socket.socket.local_addr().map_err(cannot)?;
                (Listener::Udp(socket, None), local)
            } else {
                let listener = crate::transport::tcp::listen(&addr, props)
                    .await
                    .map_err(cannot)?;
                let local = listener.local_addr().map_err(cannot)?;
                match engine {
                    Some(engine) => (
                        Listener::Ssl {
                            listener,
                            engine,
                            ws: ip.transport == Transport::Wss,
                        },
                        local,
                    ),
                    None if ip.transport == Transport::Ws => (Listener::Ws(listener), local),
                    None => (Listener::Tcp(listener), local),
                }
            };
            let mut actual = ip.clone();
            actual.port = local.port();
            if instance.trace_network >= 1 {
                let shown = Endpoint::Ip(actual.clone());
                tracing::info!(target: "floe::network", "listening at {shown}");
            }
            let listener = match listener {
                Listener::Udp(socket, _) => {
                    Listener::Udp(socket, Some(Endpoint::Ip(actual.clone())))
                }
                other => other,
            };
            bound.push(Endpoint::Ip(actual));
            listeners.push(listener);
        }
        let published_str = props.get_property(&format!("{name}.PublishedEndpoints"));
        let published = if published_str.is_empty() {
            bound
                .iter()
                .map(|e| match e {
                    Endpoint::Ip(ip)
                        if ip.host.is_empty() || ip.host == "0.0.0.0" || ip.host == "*" =>
                    {
                        let mut p = ip.clone();
                        p.host = primary_address();
                        Endpoint::Ip(p)
                    }
                    other => other.clone(),
                })
                .collect()
        } else {
            crate::endpoint::split_endpoints(&published_str)?
                .iter()
                .map(|s| Endpoint::parse(s, &instance.default_host, instance.default_timeout))
                .collect::<Result<Vec<_>>>()?
        };
        let acm = AcmConfig::from_properties(props, &format!("{name}.ACM"), instance.server_acm);
        let max_kib = props.get_property_as_int_with_default(&format!("{name}.MessageSizeMax"), -1);
        let hold = watch::Sender::new(false);
        let config = ConnectionConfig {
            max_message_size: if max_kib < 0 {
                instance.max_message_size
            } else {
                crate::protocol::message_size_max_bytes(max_kib)
            },
            acm,
            limits: instance.connection_limits.clone(),
            close_timeout: instance.close_timeout,
            trace_network: instance.trace_network,
            trace_protocol: instance.trace_protocol,
            serialize: props.get_property_as_int_with_default(
                &format!("{name}.ThreadPool.Serialize"),
                props.get_property_as_int("Ice.ThreadPool.Server.Serialize"),
            ) > 0,
            io_timeout: bound.iter().find_map(|e| match e {
                Endpoint::Ip(ip) if ip.transport != Transport::Udp => {
                    crate::instance::timeout_ms(ip.timeout)
                }
                _ => None,
            }),
            hold: Some(hold.subscribe()),
            idle_timeout: instance.connection_limits.idle_timeout,
            instance: Arc::downgrade(&(instance.clone() as crate::instance::Erased)),
        };
        let size_max = props.get_property_as_int_with_default(
            &format!("{name}.ThreadPool.SizeMax"),
            props.get_property_as_int("Ice.ThreadPool.Server.SizeMax"),
        );
        let dispatch_limit =
            (size_max > 0).then(|| Arc::new(tokio::sync::Semaphore::new(size_max as usize)));
        let max_connections = match props.get_property(&format!("{name}.MaxConnections")) {
            v if v.is_empty() => default_max_connections(),
            _ => {
                let n = props.get_property_as_int(&format!("{name}.MaxConnections"));
                (n > 0).then_some(n as usize)
            }
        };
        let (state, _) = watch::channel(AdapterState::Created);
        Ok(ObjectAdapter {
            inner: Arc::new(AdapterInner {
                name: name.to_string(),
                instance,
                servants: RwLock::new(ServantMap::default()),
                locators: RwLock::new(HashMap::new()),
                endpoints: bound,
                published,
                listeners: Mutex::new(listeners),
                accept_tasks: Mutex::new(Vec::new()),
                unregistering: Mutex::new(None),
                connections: Mutex::new(HashSet::new()),
                state,
                hold,
                config,
                dispatch_limit,
                max_connections,
                upgrading: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// The adapter's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The communicator that created this adapter.
    pub fn communicator(&self) -> Communicator {
        Communicator::from_instance(self.inner.instance.clone())
    }

    /// The communicator's instance, without a handle to it.
    pub(crate) fn instance(&self) -> &Arc<Instance> {
        &self.inner.instance
    }

    /// The endpoints the adapter listens on, with the ports actually bound.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.inner.endpoints.clone()
    }

    /// The endpoints put in proxies created by this adapter (`<name>.PublishedEndpoints`, or the
    /// bound endpoints with a wildcard host replaced by the address of the default route, as
    /// Ice publishes the machine's addresses).
    pub fn published_endpoints(&self) -> Vec<Endpoint> {
        self.inner.published.clone()
    }

    /// Starts accepting connections and dispatching requests; on a holding adapter, resumes
    /// (Ice's `activate` after `hold`).
    pub fn activate(&self) -> Result<()> {
        if !self.start()? {
            return Ok(());
        }
        if self.adapter_id().is_some() {
            let adapter = self.clone();
            tokio::spawn(async move {
                if let Err(e) = adapter.register_with_locator(true).await {
                    tracing::warn!(
                        target: "floe::network",
                        "adapter `{}` could not register with the locator: {e}",
                        adapter.name()
                    );
                }
            });
        }
        Ok(())
    }

    /// [`ObjectAdapter::activate`], registering the adapter's endpoints with the locator before
    /// it returns, as Ice's `activate` does: a client that looks the adapter up afterwards finds
    /// it, and the registry's refusal is this call's error.
    pub async fn activate_and_register(&self) -> Result<()> {
        let started = self.start()?;
        if started || *self.inner.state.borrow() == AdapterState::Active {
            self.register_with_locator(true).await?;
        }
        Ok(())
    }

    /// Resumes a holding adapter and, the first time, starts its listeners: true when it was
    /// started now.
    fn start(&self) -> Result<bool> {
        self.inner.hold.send_replace(false);
        match *self.inner.state.borrow() {
            AdapterState::Deactivated => {
                return Err(Error::ObjectAdapterDeactivated(self.inner.name.clone()));
            }
            AdapterState::Active => return Ok(false),
            AdapterState::Created => {}
        }
        self.inner.state.send_replace(AdapterState::Active);
        let listeners: Vec<Listener> = self.inner.listeners.lock().drain(..).collect();
        let mut tasks = self.inner.accept_tasks.lock();
        for listener in listeners {
            let weak = Arc::downgrade(&self.inner);
            tasks.push(match listener {
                Listener::Tcp(l) => tokio::spawn(accept_loop(l, weak, Accept::Tcp)),
                Listener::Ws(l) => tokio::spawn(accept_loop(l, weak, Accept::Ws)),
                Listener::Ssl {
                    listener,
                    engine,
                    ws,
                } => tokio::spawn(accept_loop(listener, weak, Accept::Ssl { engine, ws })),
                Listener::Udp(u, ep) => tokio::spawn(datagram_loop(u, ep, weak)),
            });
        }
        drop(tasks);
        Ok(true)
    }

    /// Holds the adapter, as Ice's `hold`: new connections wait in the listen backlog and the
    /// adapter's connections stop reading, so requests queue up in the network (and, once its
    /// buffers are full, senders block) until [`ObjectAdapter::activate`] resumes. Dispatches
    /// already running go on. Idempotent.
    pub fn hold(&self) {
        if *self.inner.state.borrow() != AdapterState::Deactivated {
            self.inner.hold.send_replace(true);
        }
    }

    /// Whether the adapter is holding ([`ObjectAdapter::hold`]).
    pub fn is_holding(&self) -> bool {
        *self.inner.hold.borrow()
    }

    /// Stops accepting connections and closes the existing ones gracefully (after their
    /// dispatches finish). Idempotent.
    pub fn deactivate(&self) {
        if *self.inner.state.borrow() == AdapterState::Deactivated {
            return;
        }
        self.inner.state.send_replace(AdapterState::Deactivated);
        // Closing needs the connections to read again (the peer's side of the close).
        self.inner.hold.send_replace(false);
        if self.adapter_id().is_some() && tokio::runtime::Handle::try_current().is_ok() {
            // Best effort, as in Ice: the registry forgets the endpoints of a deactivated adapter.
            let adapter = self.clone();
            // Bounded, so that an unreachable registry cannot hold up a shutdown.
            *self.inner.unregistering.lock() = Some(tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    adapter.register_with_locator(false),
                )
                .await;
            }));
        }
        for t in self.inner.accept_tasks.lock().drain(..) {
            t.abort();
        }
        self.inner.listeners.lock().clear();
        for c in self.inner.connections.lock().iter() {
            c.close(true);
        }
    }

    /// Waits until the adapter is deactivated, the locator's registry has forgotten its
    /// endpoints (when it had registered them) and its connections are closed.
    pub async fn wait_for_deactivate(&self) {
        let mut rx = self.inner.state.subscribe();
        let _ = rx.wait_for(|s| *s == AdapterState::Deactivated).await;
        let unregistering = self.inner.unregistering.lock().take();
        if let Some(task) = unregistering {
            let _ = task.await;
        }
        let conns: Vec<Connection> = self.inner.connections.lock().iter().cloned().collect();
        for c in conns {
            c.wait_closed().await;
        }
    }

    /// Deactivates the adapter, waits for it, and removes every servant.
    pub async fn destroy(&self) {
        self.deactivate();
        self.wait_for_deactivate().await;
        *self.inner.servants.write() = ServantMap::default();
        let locators: Vec<(String, Arc<dyn ServantLocator>)> =
            self.inner.locators.write().drain().collect();
        for (category, locator) in locators {
            locator.deactivate(&category);
        }
        self.inner.instance.remove_adapter(self);
    }

    /// Whether [`ObjectAdapter::deactivate`] was called.
    pub fn is_deactivated(&self) -> bool {
        *self.inner.state.borrow() == AdapterState::Deactivated
    }

    /// Registers a servant for `id` (default facet) and returns a proxy for it.
    pub fn add(&self, servant: Arc<dyn Dispatcher>, id: Identity) -> Result<ObjectPrx> {
        self.add_facet(servant, id, "")
    }

    /// Registers a servant for `id` and `facet` and returns a proxy for it.
    pub fn add_facet(
        &self,
        servant: Arc<dyn Dispatcher>,
        id: Identity,
        facet: &str,
    ) -> Result<ObjectPrx> {
        if id.name.is_empty() {
            return Err(Error::IllegalArgument("identity with an empty name".into()));
        }
        let mut map = self.inner.servants.write();
        let facets = map.servants.entry(id.clone()).or_default();
        if facets.contains_key(facet) {
            let mut what = id.to_string();
            if !facet.is_empty() {
                what.push_str(&format!(" -f {facet}"));
            }
            return Err(Error::AlreadyRegistered {
                kind: "servant".into(),
                id: what,
            });
        }
        facets.insert(facet.to_string(), servant);
        drop(map);
        Ok(self.create_proxy(id).ice_facet(facet))
    }

    /// Registers a servant under a fresh UUID identity and returns a proxy for it.
    pub fn add_with_uuid(&self, servant: Arc<dyn Dispatcher>) -> Result<ObjectPrx> {
        self.add(servant, Identity::new(uuid_v4(), ""))
    }

    /// Registers a servant locator for `category` (`""`: for every category without its own
    /// locator); see [`ServantLocator`].
    pub fn add_servant_locator(
        &self,
        locator: Arc<dyn ServantLocator>,
        category: &str,
    ) -> Result<()> {
        let mut map = self.inner.locators.write();
        if map.contains_key(category) {
            return Err(Error::AlreadyRegistered {
                kind: "servant locator".into(),
                id: category.to_string(),
            });
        }
        map.insert(category.to_string(), locator);
        Ok(())
    }

    /// Removes the servant locator of `category` (without calling its `deactivate`).
    pub fn remove_servant_locator(&self, category: &str) -> Result<Arc<dyn ServantLocator>> {
        self.inner
            .locators
            .write()
            .remove(category)
            .ok_or_else(|| Error::NotRegistered {
                kind: "servant locator".into(),
                id: category.to_string(),
            })
    }

    /// The servant locator registered for `category`.
    pub fn find_servant_locator(&self, category: &str) -> Option<Arc<dyn ServantLocator>> {
        self.inner.locators.read().get(category).cloned()
    }

    /// The locator asked for an identity of `category`: its own, else the one of `""`.
    fn locator_for(&self, category: &str) -> Option<Arc<dyn ServantLocator>> {
        let map = self.inner.locators.read();
        map.get(category).or_else(|| map.get("")).cloned()
    }

    /// Registers a default servant for `category` ("" for every category without its own):
    /// it receives the requests, whatever their facet, for identities that have no servant of
    /// their own for that facet (as in Ice).
    pub fn add_default_servant(&self, servant: Arc<dyn Dispatcher>, category: &str) -> Result<()> {
        let mut map = self.inner.servants.write();
        if map.defaults.contains_key(category) {
            return Err(Error::AlreadyRegistered {
                kind: "default servant".into(),
                id: category.to_string(),
            });
        }
        map.defaults.insert(category.to_string(), servant);
        Ok(())
    }

    /// Removes the default servant of `category`.
    pub fn remove_default_servant(&self, category: &str) -> Result<Arc<dyn Dispatcher>> {
        self.inner
            .servants
            .write()
            .defaults
            .remove(category)
            .ok_or_else(|| Error::NotRegistered {
                kind: "default servant".into(),
                id: category.to_string(),
            })
    }

    /// The default servant registered for `category`, if any.
    pub fn find_default_servant(&self, category: &str) -> Option<Arc<dyn Dispatcher>> {
        self.inner.servants.read().defaults.get(category).cloned()
    }

    /// Removes the servant of `id` (default facet).
    pub fn remove(&self, id: &Identity) -> Result<Arc<dyn Dispatcher>> {
        self.remove_facet(id, "")
    }

    /// Removes the servant of `id` and `facet`.
    pub fn remove_facet(&self, id: &Identity, facet: &str) -> Result<Arc<dyn Dispatcher>> {
        let mut map = self.inner.servants.write();
        let removed = map.servants.get_mut(id).and_then(|f| f.remove(facet));
        if map.servants.get(id).is_some_and(|f| f.is_empty()) {
            map.servants.remove(id);
        }
        removed.ok_or_else(|| Error::NotRegistered {
            kind: "servant".into(),
            id: id.to_string(),
        })
    }

    /// Removes every facet of `id`.
    pub fn remove_all_facets(&self, id: &Identity) -> Result<HashMap<String, Arc<dyn Dispatcher>>> {
        self.inner
            .servants
            .write()
            .servants
            .remove(id)
            .ok_or_else(|| Error::NotRegistered {
                kind: "servant".into(),
                id: id.to_string(),
            })
    }

    /// The servant registered for `id` and `facet`, if any (default servants not included).
    pub fn find_facet(&self, id: &Identity, facet: &str) -> Option<Arc<dyn Dispatcher>> {
        self.inner
            .servants
            .read()
            .servants
            .get(id)
            .and_then(|f| f.get(facet))
            .cloned()
    }

    /// The servant registered for `id` (default facet), if any.
    pub fn find(&self, id: &Identity) -> Option<Arc<dyn Dispatcher>> {
        self.find_facet(id, "")
    }

    /// A proxy for `id`: indirect through the replica group (`<name>.ReplicaGroupId`) when the
    /// adapter belongs to one, else through its adapter id when it has one, else direct with the
    /// adapter's published endpoints. This is the proxy to hand out, as Ice's `createProxy`.
    pub fn create_proxy(&self, id: Identity) -> ObjectPrx {
        let direct = self.create_direct_proxy(id);
        match (self.replica_group_id(), self.adapter_id()) {
            (Some(group), Some(_)) => direct.ice_adapter_id(&group),
            (_, Some(adapter_id)) => direct.ice_adapter_id(&adapter_id),
            _ => direct,
        }
    }

    /// A proxy for `id` through this adapter's own adapter id (not its replica group), as Ice's
    /// `createIndirectProxy`; direct when the adapter has no adapter id.
    pub fn create_indirect_proxy(&self, id: Identity) -> ObjectPrx {
        let direct = self.create_direct_proxy(id);
        match self.adapter_id() {
            Some(adapter_id) => direct.ice_adapter_id(&adapter_id),
            None => direct,
        }
    }

    /// A proxy for `id` with this adapter's published endpoints, even when the adapter has an
    /// adapter id.
    pub fn create_direct_proxy(&self, id: Identity) -> ObjectPrx {
        ObjectPrx::new_direct(
            self.inner.instance.clone(),
            id,
            self.inner.published.clone(),
        )
    }

    /// `<name>.AdapterId`, when set: proxies created by the adapter are then indirect
    /// (`id @ adapter-id`), and activation registers the adapter's endpoints with the locator.
    pub fn adapter_id(&self) -> Option<String> {
        let id = self
            .inner
            .instance
            .properties
            .get_property(&format!("{}.AdapterId", self.inner.name));
        (!id.is_empty()).then_some(id)
    }

    /// `<name>.ReplicaGroupId`, when set: the replica group the adapter registers in (beside its
    /// adapter id, which must then be set too), and the id its proxies go through.
    pub fn replica_group_id(&self) -> Option<String> {
        let id = self
            .inner
            .instance
            .properties
            .get_property(&format!("{}.ReplicaGroupId", self.inner.name));
        (!id.is_empty()).then_some(id)
    }

    /// Registers (or, with `register == false`, unregisters) the adapter's endpoints under its
    /// adapter id with the locator's registry: `setAdapterDirectProxy`, or
    /// `setReplicatedAdapterDirectProxy` when the adapter is in a replica group. Activation and
    /// deactivation do this by themselves; this lets a caller wait for it.
    ///
    /// The registry's refusals come back as Ice reports them: an adapter (or replica group) the
    /// registry does not know and will not register dynamically is [`Error::NotRegistered`], an
    /// adapter id another live server already registered is [`Error::AlreadyRegistered`].
    pub async fn register_with_locator(&self, register: bool) -> Result<()> {
        let Some(adapter_id) = self.adapter_id() else {
            return Ok(());
        };
        let direct = self.create_direct_proxy(Identity::new("dummy", ""));
        let Some(locator) = direct.ice_get_locator() else {
            return Ok(());
        };
        let registry = locator
            .invoke::<Option<ObjectPrx>, Error>(
                "getRegistry",
                crate::protocol::OperationMode::Nonmutating,
                None,
                true,
                |_| {},
                |is| is.read::<Option<ObjectPrx>>(),
            )
            .await?
            .ok_or_else(|| Error::NotRegistered {
                kind: "locator registry".into(),
                id: locator.to_string(),
            })?;
        let proxy = register.then_some(direct);
        let group = self.replica_group_id();
        let op = if group.is_some() {
            "setReplicatedAdapterDirectProxy"
        } else {
            "setAdapterDirectProxy"
        };
        let outcome = registry
            .invoke::<(), Error>(
                op,
                crate::protocol::OperationMode::Idempotent,
                None,
                false,
                |os| {
                    os.write(adapter_id.as_str());
                    if let Some(group) = &group {
                        os.write(group.as_str());
                    }
                    os.write(&proxy);
                },
                |_| Ok(()),
            )
            .await;
        match outcome {
            Err(Error::UnknownUserException(type_id)) => Err(match type_id.as_str() {
                "::Ice::AdapterNotFoundException" => Error::NotRegistered {
                    kind: "object adapter".into(),
                    id: adapter_id,
                },
                "::Ice::InvalidReplicaGroupIdException" => Error::NotRegistered {
                    kind: "replica group".into(),
                    id: group.unwrap_or_default(),
                },
                "::Ice::AdapterAlreadyActiveException" => Error::AlreadyRegistered {
                    kind: "object adapter with the locator registry".into(),
                    id: adapter_id,
                },
                _ => Error::UnknownUserException(type_id),
            }),
            other => other,
        }
    }

    fn lookup(&self, id: &Identity, facet: &str) -> std::result::Result<Servant, bool> {
        let map = self.inner.servants.read();
        if let Some(s) = map.servants.get(id).and_then(|f| f.get(facet)) {
            return Ok(s.clone());
        }
        let default = map
            .defaults
            .get(&id.category)
            .or_else(|| map.defaults.get(""));
        if let Some(s) = default {
            return Ok(s.clone());
        }
        Err(map.servants.contains_key(id))
    }
}

async fn accept_loop(listener: TcpListener, adapter: std::sync::Weak<AdapterInner>, how: Accept) {
    // Failures that repeat (out of file descriptors, at the connection cap) are logged at most
    // once per period each, with the number left out.
    let mut accept_failed = RateLimited::new();
    let mut refused = RateLimited::new();
    loop {
        // A holding adapter leaves new connections in the listen backlog.
        if !resumed(&adapter).await {
            return;
        }
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                accept_failed.warn(format_args!("accept failed: {e}"));
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Accepted while the adapter started holding: the connection is not validated before
        // the adapter resumes (the peer's connect timeout runs meanwhile, as with Ice).
        if !resumed(&adapter).await {
            return;
        }
        let Some(inner) = adapter.upgrade() else {
            return;
        };
        if *inner.state.borrow() == AdapterState::Deactivated {
            return;
        }
        if let Some(max) = inner.max_connections {
            if open_connections(&inner) >= max {
                refused.warn(format_args!(
                    "adapter `{}` refused a connection from {peer}: {max} connections are open \
                     ({}.MaxConnections)",
                    inner.name, inner.name
                ));
                refuse(stream, !matches!(how, Accept::Tcp));
                continue;
            }
        }
        let handler: Arc<dyn RequestHandler> = Arc::new(AdapterHandler(ObjectAdapter {
            inner: inner.clone(),
        }));
        match &how {
            Accept::Tcp => {}
            Accept::Ws => {
                // The upgrade runs in its own task so a slow client does not hold up the others.
                inner
                    .upgrading
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                tokio::spawn(async move {
                    let accepted =
                        connection::accept_ws(stream, inner.config.clone(), handler).await;
                    match accepted {
                        Ok(conn) => register_connection(&inner, conn),
                        Err(e) => {
                            tracing::warn!(target: "floe::network", "websocket upgrade from {peer}: {e}")
                        }
                    }
                    inner
                        .upgrading
                        .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                });
                continue;
            }
            Accept::Ssl { engine, ws } => {
                // So does the TLS handshake.
                let (engine, ws) = (engine.clone(), *ws);
                inner
                    .upgrading
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                tokio::spawn(async move {
                    let config = inner.config.clone();
                    match connection::accept_ssl(stream, &engine, ws, config, handler).await {
                        Ok(conn) => register_connection(&inner, conn),
                        Err(e) => tracing::warn!(target: "floe::network", "{e}"),
                    }
                    inner
                        .upgrading
                        .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                });
                continue;
            }
        }
        match connection::accept(stream, inner.config.clone(), handler) {
            Ok(conn) => register_connection(&inner, conn),
            Err(e) => {
                tracing::warn!(target: "floe::network", "cannot start connection from {peer}: {e}")
            }
        }
    }
}

/// Connections of the adapter that are open or being upgraded to WebSocket.
fn open_connections(inner: &AdapterInner) -> usize {
    let mut conns = inner.connections.lock();
    conns.retain(|c| !c.is_closed());
    conns.len() + inner.upgrading.load(std::sync::atomic::Ordering::Acquire)
}

/// Closes a connection over the adapter's cap at once. A TCP peer gets ValidateConnection and
/// then CloseConnection, as from a server that is closing (Ice clients may retry elsewhere); a
/// WebSocket or TLS peer, whose handshake has not started, just sees the socket close.
fn refuse(stream: tokio::net::TcpStream, closed_only: bool) {
    if !closed_only {
        let validate = crate::protocol::validate_connection_message();
        let close = crate::protocol::close_connection_message();
        let mut both = Vec::with_capacity(validate.len() + close.len());
        both.extend_from_slice(&validate);
        both.extend_from_slice(&close);
        // A fresh socket's send buffer takes 28 bytes at once; if it does not, the peer sees
        // the socket close, which says the same.
        let _ = stream.try_write(&both);
    }
    drop(stream);
}

/// The cap on an adapter's connections when `<name>.MaxConnections` is not set: three
/// quarters of the process's limit on open files (as raised when the communicator started),
/// leaving the rest for its outgoing connections and files. `None` without a limit.
fn default_max_connections() -> Option<usize> {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        limit
            .current
            .map(|n| usize::try_from(n / 4 * 3).unwrap_or(usize::MAX).max(1))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A warning that may repeat quickly (every failed accept while out of file descriptors):
/// logged at most once per [`RateLimited::PERIOD`], with the number of repeats left out.
struct RateLimited {
    last: Option<std::time::Instant>,
    left_out: u64,
}

impl RateLimited {
    const PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

    fn new() -> Self {
        RateLimited {
            last: None,
            left_out: 0,
        }
    }

    fn warn(&mut self, message: fmt::Arguments<'_>) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::PERIOD)
        {
            self.left_out += 1;
            return;
        }
        if self.left_out > 0 {
            tracing::warn!(
                target: "floe::network",
                "{message} ({} more like it in the last {} s)",
                self.left_out,
                Self::PERIOD.as_secs()
            );
        } else {
            tracing::warn!(target: "floe::network", "{message}");
        }
        self.last = Some(now);
        self.left_out = 0;
    }
}

/// The reply for an error of a servant locator: a user exception is marshaled as the
/// operation's own would be.
fn error_reply(e: DispatchError, incoming: &IncomingRequest) -> ReplyBody {
    let current = incoming.current();
    match e {
        DispatchError::Runtime(err) => reply_for(Err(err), current),
        DispatchError::User(ex) => {
            reply_for(incoming.reply_error(AnyUserException::User(ex)), current)
        }
    }
}

/// Returns once the adapter does not hold: true, or false when the adapter is gone (the
/// adapter itself is not kept alive meanwhile).
async fn resumed(adapter: &std::sync::Weak<AdapterInner>) -> bool {
    let Some(mut hold) = adapter.upgrade().map(|inner| inner.hold.subscribe()) else {
        return false;
    };
    hold.wait_for(|h| !*h).await.is_ok()
}

fn register_connection(inner: &AdapterInner, conn: Connection) {
    // The endpoint it came through: the stream endpoint bound to its local port.
    let port = conn.local_address().port();
    if let Some(ep) = inner.endpoints.iter().find(
        |e| matches!(e, Endpoint::Ip(ip) if ip.port == port && ip.transport != Transport::Udp),
    ) {
        conn.set_endpoint(ep.clone());
    }
    let mut conns = inner.connections.lock();
    conns.retain(|c| !c.is_closed());
    if *inner.state.borrow() == AdapterState::Deactivated {
        conn.close(true);
    }
    conns.insert(conn);
}

impl Connection {
    /// Dispatches the requests that arrive on this connection to `adapter` (or refuses them with
    /// ObjectNotExist, for `None`). On an outgoing connection this makes it bidirectional: the
    /// server can call back the client's objects over it (with `current.con.create_proxy(id)`).
    pub fn set_adapter(&self, adapter: Option<&ObjectAdapter>) {
        self.set_handler(
            adapter.map(|a| Arc::new(AdapterHandler(a.clone())) as Arc<dyn RequestHandler>),
        );
    }
}

/// Receives datagrams: each one holds a whole Request or BatchRequest, dispatched as oneway.
/// Anything else is dropped with a warning, as Ice does, and so is a datagram larger than the
/// socket's limit (`Ice.UDP.RcvSize`; it arrives truncated).
///
/// Each request's `current.con` is a datagram connection to its sender: proxies it creates send
/// datagrams back from this socket (Ice's bidirectional UDP).
async fn datagram_loop(
    udp: crate::transport::udp::UdpSocket,
    endpoint: Option<Endpoint>,
    adapter: std::sync::Weak<AdapterInner>,
) {
    let max_datagram = udp.max_receive;
    let udp = Arc::new(udp);
    let socket = &udp.socket;
    // One byte more than the limit tells a datagram that was cut short from one that fits.
    let mut buf = vec![0u8; max_datagram + 1];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(target: "floe::network", "udp receive failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(inner) = adapter.upgrade() else {
            return;
        };
        if n > max_datagram {
            tracing::warn!(
                target: "floe::network",
                "dropping a datagram from {peer} larger than {max_datagram} bytes (Ice.UDP.RcvSize)"
            );
            continue;
        }
        let decoder = crate::protocol::FrameDecoder::new(inner.config.max_message_size);
        let mut data = bytes::BytesMut::from(&buf[..n]);
        let requests = match decoder.decode(&mut data).and_then(|f| match f {
            Some(frame) if data.is_empty() => crate::protocol::Message::parse(&frame),
            _ => Err(Error::Protocol(
                "datagram does not hold exactly one message".into(),
            )),
        }) {
            Ok(crate::protocol::Message::Request(r)) => vec![r],
            Ok(crate::protocol::Message::Batch(rs)) => rs,
            Ok(other) => {
                tracing::warn!(target: "floe::network", "ignoring {other:?} datagram from {peer}");
                continue;
            }
            Err(e) => {
                tracing::warn!(target: "floe::network", "ignoring bad datagram from {peer}: {e}");
                continue;
            }
        };
        let handler = AdapterHandler(ObjectAdapter {
            inner: inner.clone(),
        });
        let connection = endpoint.clone().and_then(|ep| {
            let owner: crate::instance::Erased = inner.instance.clone();
            Connection::datagram(
                udp.clone(),
                peer,
                ep,
                Some(Arc::new(AdapterHandler(ObjectAdapter {
                    inner: inner.clone(),
                }))),
                Arc::downgrade(&owner),
            )
            .ok()
        });
        tokio::spawn(async move {
            for mut r in requests {
                r.request_id = 0;
                let _ = handler.handle(r, connection.clone()).await;
            }
        });
    }
}

struct AdapterHandler(ObjectAdapter);

impl RequestHandler for AdapterHandler {
    fn adapter_name(&self) -> String {
        self.0.inner.name.clone()
    }

    /// Asks the servant `handle` would dispatch to. The built-in operations decode at most a
    /// string; a request for an object with neither servant nor locator is answered
    /// ObjectNotExist (or FacetNotExist) without decoding anything; one that a servant locator
    /// will place could reach any servant.
    fn may_decode_slowly(&self, request: &RequestData) -> bool {
        if matches!(
            request.operation.as_str(),
            "ice_ping" | "ice_isA" | "ice_id" | "ice_ids"
        ) {
            return false;
        }
        // Only asked for large requests: two short strings copied are nothing beside them.
        let id = Identity {
            name: request.name.clone(),
            category: request.category.clone(),
        };
        match self.0.lookup(&id, &request.facet) {
            Ok(servant) => servant.may_decode_slowly(&request.operation),
            Err(_) => self.0.locator_for(&id.category).is_some(),
        }
    }

    fn handle(
        &self,
        request: RequestData,
        connection: Option<Connection>,
    ) -> BoxFuture<'static, ReplyBody> {
        let adapter = self.0.clone();
        Box::pin(async move {
            let encoding = request
                .params
                .get(4..6)
                .map(|v| EncodingVersion {
                    major: v[0],
                    minor: v[1],
                })
                .unwrap_or(EncodingVersion::V1_1);
            let current = Current {
                adapter: adapter.clone(),
                id: Identity {
                    name: request.name,
                    category: request.category,
                },
                facet: request.facet,
                operation: request.operation,
                mode: request.mode,
                ctx: request.context,
                request_id: request.request_id,
                encoding,
                con: connection,
            };
            let span = tracing::debug_span!(
                target: "floe::protocol",
                "dispatch",
                operation = %current.operation,
                identity = %current.id.to_string(),
                request_id = current.request_id
            );
            let not_exist = |has_identity: bool| {
                let failed = RequestFailed {
                    name: current.id.name.clone(),
                    category: current.id.category.clone(),
                    facet: current.facet.clone(),
                    operation: current.operation.clone(),
                };
                if has_identity {
                    ReplyBody::FacetNotExist(failed)
                } else {
                    ReplyBody::ObjectNotExist(failed)
                }
            };
            let (servant, located) = match adapter.lookup(&current.id, &current.facet) {
                Ok(s) => (s, None),
                Err(has_identity) => match adapter.locator_for(&current.id.category) {
                    None => return not_exist(has_identity),
                    Some(locator) => match locator.locate(&current).await {
                        Ok(Some(l)) => (l.servant, Some((locator, l.cookie))),
                        Ok(None) => return not_exist(has_identity),
                        Err(e) => {
                            let incoming = IncomingRequest::new(current.clone(), request.params);
                            return error_reply(e, &incoming);
                        }
                    },
                },
            };
            let _permit = match &adapter.inner.dispatch_limit {
                Some(limit) => limit.clone().acquire_owned().await.ok(),
                None => None,
            };
            let mut incoming = IncomingRequest::new(current, request.params);
            let result = std::panic::AssertUnwindSafe(servant.dispatch(&mut incoming))
                .catch_unwind()
                .instrument(span)
                .await;
            let current = incoming.current();
            let mut reply = match result {
                Ok(r) => reply_for(r, current),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "servant panicked".into());
                    ReplyBody::UnknownException(format!("servant panicked: {what}"))
                }
            };
            if let Some((locator, cookie)) = located {
                if let Err(e) = locator.finished(current, servant, cookie).await {
                    reply = error_reply(e, &incoming);
                }
            }
            if let ReplyBody::UnknownLocalException(text) | ReplyBody::UnknownException(text) =
                &reply
            {
                if adapter.inner.instance.warn_dispatch > 0 {
                    tracing::warn!(
                        target: "floe::dispatch",
                        "dispatch exception: {text}\nidentity: {}\nfacet: {}\noperation: {}",
                        current.id,
                        current.facet,
                        current.operation
                    );
                }
            }
            reply
        })
    }
}

/// The address other hosts reach this one at, for endpoints listening on every interface: the
/// local address of the default route (found by connecting a UDP socket, which sends nothing),
/// or 127.0.0.1 when there is none.
fn primary_address() -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
}

/// A random (version 4) UUID in its usual text form, as Ice's `generateUUID`.
pub(crate) fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The registry of a communicator's adapters, which the instance keeps type-erased.
impl crate::instance::Instance {
    /// Forgets a destroyed adapter.
    pub(crate) fn remove_adapter(&self, adapter: &ObjectAdapter) {
        if adapter.name().is_empty() {
            self.unnamed_adapters
                .lock()
                .retain(|a| a.downcast_ref::<ObjectAdapter>() != Some(adapter));
        } else {
            self.adapters.lock().remove(adapter.name());
        }
    }

    /// Every adapter, named or not.
    pub(crate) fn all_adapters(&self) -> Vec<ObjectAdapter> {
        let named: Vec<crate::instance::Erased> = self.adapters.lock().values().cloned().collect();
        let unnamed: Vec<crate::instance::Erased> = self.unnamed_adapters.lock().clone();
        named
            .iter()
            .chain(unnamed.iter())
            .filter_map(|a| a.downcast_ref::<ObjectAdapter>().cloned())
            .collect()
    }
}
