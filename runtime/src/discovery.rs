//! IceDiscovery: finding object adapters and objects on a LAN by UDP multicast, with no
//! registry, compatible with ZeroC's IceDiscovery plugin in both directions.
//!
//! [`Discovery::start`] gives a communicator three adapters and a default locator:
//! - `IceDiscovery.Multicast` joins the multicast group (`udp -h 239.255.0.1 -p 4061` unless
//!   `IceDiscovery.Address`/`Port`/`Interface` or `IceDiscovery.Multicast.Endpoints` say
//!   otherwise) and serves `IceDiscovery/Lookup`: it answers `findAdapterById` and
//!   `findObjectById` for the adapters this communicator registered, in the same
//!   `IceDiscovery.DomainId`, by a datagram to the asker's reply proxy.
//! - `IceDiscovery.Reply` (`udp`, on the interface) receives those answers.
//! - `IceDiscovery.Locator` serves the locator and its registry. ZeroC keeps this adapter
//!   collocated, without endpoints; Floe has no collocated calls, so it listens on
//!   `tcp -h 127.0.0.1 -p 0` (or `IceDiscovery.Locator.Endpoints`) and only this process uses it.
//!
//! The locator multicasts each lookup to `IceDiscovery.Lookup` (by default the group on the
//! interface), waits `IceDiscovery.Timeout` (300 ms) for an answer and sends again up to
//! `IceDiscovery.RetryCount` (3) times. The first answer for an adapter ends the search; an
//! answer for a replica group waits `IceDiscovery.LatencyMultiplier` (1) times the first
//! answer's delay for other members, and their endpoints are merged. Nothing found is a null
//! proxy, which callers see as an adapter or object not found.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::adapter::{ObjectAdapter, uuid_v4};
use crate::communicator::Communicator;
use crate::dispatch::{Dispatcher, IncomingRequest, OutgoingResponse, dispatch_builtin};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::protocol::OperationMode;
use crate::proxy::ObjectPrx;
use futures_util::future::BoxFuture;

const LOOKUP_TYPE_ID: &str = "::IceDiscovery::Lookup";
const LOOKUP_TYPE_IDS: &[&str] = &["::Ice::Object", "::IceDiscovery::Lookup"];
const LOOKUP_REPLY_TYPE_ID: &str = "::IceDiscovery::LookupReply";
const LOOKUP_REPLY_TYPE_IDS: &[&str] = &["::Ice::Object", "::IceDiscovery::LookupReply"];
const LOCATOR_TYPE_ID: &str = "::Ice::Locator";
const LOCATOR_TYPE_IDS: &[&str] = &["::Ice::Locator", "::Ice::Object"];
const REGISTRY_TYPE_ID: &str = "::Ice::LocatorRegistry";
const REGISTRY_TYPE_IDS: &[&str] = &["::Ice::LocatorRegistry", "::Ice::Object"];

/// Answers waiting for one lookup: at most this many are kept, the rest dropped.
const ANSWERS_QUEUED: usize = 64;
/// Lookups in flight at once; a lookup beyond this many waits for one to end.
const LOOKUPS_IN_FLIGHT: usize = 256;
/// How long a ping of a local adapter may take when finding which one holds an object.
const PING_TIMEOUT_MS: i32 = 2_000;

/// The settings ZeroC's plugin reads, with its defaults.
#[derive(Debug, Clone)]
struct Settings {
    domain: String,
    timeout: Duration,
    retries: u32,
    latency_multiplier: u32,
}

/// A running IceDiscovery on one communicator. [`Discovery::destroy`] stops it; dropping it
/// leaves it running until the communicator is destroyed.
#[derive(Debug, Clone)]
pub struct Discovery {
    adapters: [ObjectAdapter; 3],
    locator: ObjectPrx,
}

impl Discovery {
    /// Starts IceDiscovery on `communicator` and makes its locator the communicator's default
    /// (`Ice.Default.Locator`), so adapters with an `AdapterId` register with it and indirect
    /// proxies are resolved by multicast. Fails when the multicast group cannot be joined.
    pub async fn start(communicator: &Communicator) -> Result<Discovery> {
        let props = communicator.properties();
        let int = |key: &str, default: i32| props.get_property_as_int_with_default(key, default);
        let address = props.get_property_with_default("IceDiscovery.Address", "239.255.0.1");
        let port = int("IceDiscovery.Port", 4061);
        let interface = props.get_property("IceDiscovery.Interface");
        let on_interface = if interface.is_empty() {
            String::new()
        } else {
            format!(" --interface \"{interface}\"")
        };
        let group = format!("udp -h \"{address}\" -p {port}{on_interface}");
        let set_default = |key: &str, value: &str| {
            if props.get_property(key).is_empty() {
                props.set_property(key, value);
            }
        };
        set_default("IceDiscovery.Multicast.Endpoints", &group);
        let reply_host = if interface.is_empty() {
            "*".to_string()
        } else {
            format!("\"{interface}\"")
        };
        set_default(
            "IceDiscovery.Reply.Endpoints",
            &format!("udp -h {reply_host}"),
        );
        set_default("IceDiscovery.Locator.Endpoints", "tcp -h 127.0.0.1 -p 0");
        let lookup_endpoints = {
            let l = props.get_property("IceDiscovery.Lookup");
            if l.is_empty() { group.clone() } else { l }
        };
        let settings = Settings {
            domain: props.get_property("IceDiscovery.DomainId"),
            timeout: Duration::from_millis(int("IceDiscovery.Timeout", 300).max(1) as u64),
            retries: int("IceDiscovery.RetryCount", 3).max(0) as u32,
            latency_multiplier: int("IceDiscovery.LatencyMultiplier", 1).max(1) as u32,
        };

        let lookup = communicator
            .string_to_proxy(&format!("IceDiscovery/Lookup -d:{lookup_endpoints}"))?
            .ok_or_else(|| Error::IllegalArgument("IceDiscovery.Lookup is empty".into()))?;
        // One proxy per lookup endpoint: each gets its own datagram.
        let lookups: Vec<ObjectPrx> = lookup
            .ice_get_endpoints()
            .iter()
            .map(|e| lookup.ice_endpoints(vec![e.clone()]))
            .collect();

        let multicast = communicator
            .create_object_adapter("IceDiscovery.Multicast")
            .await?;
        let reply = communicator
            .create_object_adapter("IceDiscovery.Reply")
            .await?;
        let locator_adapter = communicator
            .create_object_adapter("IceDiscovery.Locator")
            .await?;

        let registry = Arc::new(Registry::default());
        let pending = Arc::new(Pending::default());
        let reply_base = reply
            .create_proxy(Identity::new("dummy", ""))
            .ice_datagram();
        let state = Arc::new(State {
            settings,
            registry: registry.clone(),
            pending: pending.clone(),
            lookups,
            reply: reply_base,
            in_flight: tokio::sync::Semaphore::new(LOOKUPS_IN_FLIGHT),
        });

        multicast.add(
            Arc::new(LookupServant(state.clone())),
            Identity::new("Lookup", "IceDiscovery"),
        )?;
        reply.add_default_servant(Arc::new(ReplyServant(pending)), "")?;
        let registry_prx = locator_adapter.add_with_uuid(Arc::new(RegistryServant(registry)))?;
        let locator = locator_adapter.add_with_uuid(Arc::new(LocatorServant {
            state,
            registry: registry_prx,
        }))?;
        multicast.activate()?;
        reply.activate()?;
        locator_adapter.activate()?;
        props.set_property("Ice.Default.Locator", &locator.to_string());
        Ok(Discovery {
            adapters: [multicast, reply, locator_adapter],
            locator,
        })
    }

    /// The locator this discovery serves (also the communicator's default locator).
    pub fn locator(&self) -> &ObjectPrx {
        &self.locator
    }

    /// Stops answering lookups and closes the discovery's adapters.
    pub async fn destroy(&self) {
        for adapter in &self.adapters {
            adapter.destroy().await;
        }
    }
}

/// What the lookups of this communicator share.
struct State {
    settings: Settings,
    registry: Arc<Registry>,
    pending: Arc<Pending>,
    lookups: Vec<ObjectPrx>,
    reply: ObjectPrx,
    in_flight: tokio::sync::Semaphore,
}

/// An answer to a lookup: the proxy found and whether it stands for a replica group.
struct Answer {
    proxy: ObjectPrx,
    replica_group: bool,
}

/// Lookups waiting for answers, by request id (the identity name of the reply proxy sent).
#[derive(Default)]
struct Pending(Mutex<HashMap<String, mpsc::Sender<Answer>>>);

impl State {
    /// Multicasts `op` and collects the answers as described in the module documentation.
    async fn lookup(
        &self,
        op: &'static str,
        encode: impl Fn(&mut crate::encoding::OutputStream, &ObjectPrx),
    ) -> Option<ObjectPrx> {
        let _permit = self.in_flight.acquire().await.ok()?;
        let request_id = uuid_v4();
        let (tx, mut rx) = mpsc::channel(ANSWERS_QUEUED);
        self.pending.0.lock().insert(request_id.clone(), tx);
        let reply = self
            .reply
            .ice_identity(Identity::new(request_id.clone(), ""));
        let started = Instant::now();
        let mut found: Option<Answer> = None;
        let mut group: Vec<ObjectPrx> = Vec::new();
        'attempts: for _ in 0..=self.settings.retries {
            for lookup in &self.lookups {
                let sent = lookup
                    .invoke::<(), Error>(
                        op,
                        OperationMode::Idempotent,
                        None,
                        false,
                        |os| encode(os, &reply),
                        |_| Ok(()),
                    )
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(target: "floe::discovery", "lookup {op} on {lookup} failed: {e}");
                }
            }
            match tokio::time::timeout(self.settings.timeout, rx.recv()).await {
                Ok(Some(answer)) => {
                    found = Some(answer);
                    break 'attempts;
                }
                Ok(None) => break 'attempts,
                Err(_) => continue,
            }
        }
        if let Some(first) = &found {
            if first.replica_group {
                group.push(first.proxy.clone());
                let window = started.elapsed() * self.settings.latency_multiplier;
                let deadline = tokio::time::Instant::now() + window;
                while let Ok(Some(more)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    group.push(more.proxy);
                }
            }
        }
        self.pending.0.lock().remove(&request_id);
        let first = found?;
        if !first.replica_group || group.len() <= 1 {
            return Some(first.proxy);
        }
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for p in &group {
            for e in p.ice_get_endpoints() {
                if !endpoints.contains(e) {
                    endpoints.push(e.clone());
                }
            }
        }
        Some(first.proxy.ice_endpoints(endpoints))
    }
}

/// The adapters this communicator registered with its discovery locator.
#[derive(Default)]
struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    /// Adapter id → a proxy carrying its endpoints.
    adapters: BTreeMap<String, ObjectPrx>,
    /// Replica group id → the ids of its member adapters.
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl Registry {
    fn set(&self, adapter: &str, group: Option<&str>, proxy: Option<ObjectPrx>) {
        let mut inner = self.inner.lock();
        match proxy {
            Some(p) => {
                inner.adapters.insert(adapter.to_string(), p);
                if let Some(g) = group {
                    inner
                        .groups
                        .entry(g.to_string())
                        .or_default()
                        .insert(adapter.to_string());
                }
            }
            None => {
                inner.adapters.remove(adapter);
                if let Some(g) = group {
                    if let Some(members) = inner.groups.get_mut(g) {
                        members.remove(adapter);
                        if members.is_empty() {
                            inner.groups.remove(g);
                        }
                    }
                }
            }
        }
    }

    /// The proxy of adapter or replica group `id`, and whether it is a replica group.
    fn find_adapter(&self, id: &str) -> Option<(ObjectPrx, bool)> {
        let inner = self.inner.lock();
        if let Some(p) = inner.adapters.get(id) {
            return Some((p.clone(), false));
        }
        let members = inner.groups.get(id)?;
        let mut first: Option<ObjectPrx> = None;
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for member in members {
            if let Some(p) = inner.adapters.get(member) {
                endpoints.extend(p.ice_get_endpoints().iter().cloned());
                first.get_or_insert_with(|| p.clone());
            }
        }
        first.map(|p| (p.ice_endpoints(endpoints), true))
    }

    /// An indirect proxy for `id` through a replica group or adapter of this communicator that
    /// holds it (checked by pinging), groups first, as ZeroC's plugin does.
    async fn find_object(&self, id: &Identity) -> Option<ObjectPrx> {
        if id.name.is_empty() {
            return None;
        }
        let (groups, adapters) = {
            let inner = self.inner.lock();
            let groups: Vec<(String, Vec<ObjectPrx>)> = inner
                .groups
                .iter()
                .map(|(g, members)| {
                    (
                        g.clone(),
                        members
                            .iter()
                            .filter_map(|m| inner.adapters.get(m).cloned())
                            .collect(),
                    )
                })
                .collect();
            let adapters: Vec<(String, Vec<ObjectPrx>)> = inner
                .adapters
                .iter()
                .map(|(a, p)| (a.clone(), vec![p.clone()]))
                .collect();
            (groups, adapters)
        };
        for candidates in [groups, adapters] {
            for (name, proxies) in candidates {
                for p in proxies {
                    let target = p
                        .ice_identity(id.clone())
                        .ice_invocation_timeout(PING_TIMEOUT_MS);
                    if target.ice_ping().await.is_ok() {
                        return Some(target.ice_endpoints(Vec::new()).ice_adapter_id(&name));
                    }
                }
            }
        }
        None
    }
}

/// Sends `op` to a lookup reply proxy as a datagram, in the background.
fn answer(
    reply: Option<ObjectPrx>,
    op: &'static str,
    encode: impl FnOnce(&mut crate::encoding::OutputStream) + Send + 'static,
) {
    let Some(reply) = reply else {
        return;
    };
    tokio::spawn(async move {
        if let Err(e) = reply
            .invoke::<(), Error>(op, OperationMode::Normal, None, false, encode, |_| Ok(()))
            .await
        {
            tracing::debug!(target: "floe::discovery", "answer {op} to {reply} failed: {e}");
        }
    });
}

/// `IceDiscovery::Lookup`, on the multicast adapter.
struct LookupServant(Arc<State>);

impl Dispatcher for LookupServant {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            let state = &self.0;
            match request.current().operation.as_str() {
                "findObjectById" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    let (domain, id, reply) = request.read_params(|is| {
                        Ok((
                            is.read::<String>()?,
                            is.read::<Identity>()?,
                            is.read::<Option<ObjectPrx>>()?,
                        ))
                    })?;
                    if domain == state.settings.domain {
                        let registry = state.registry.clone();
                        tokio::spawn(async move {
                            if let Some(found) = registry.find_object(&id).await {
                                answer(reply, "foundObjectById", move |os| {
                                    os.write(&id);
                                    os.write(&Some(found));
                                });
                            }
                        });
                    }
                    Ok(request.reply(None, |_| {}))
                }
                "findAdapterById" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    let (domain, id, reply) = request.read_params(|is| {
                        Ok((
                            is.read::<String>()?,
                            is.read::<String>()?,
                            is.read::<Option<ObjectPrx>>()?,
                        ))
                    })?;
                    if domain == state.settings.domain {
                        if let Some((found, group)) = state.registry.find_adapter(&id) {
                            answer(reply, "foundAdapterById", move |os| {
                                os.write(id.as_str());
                                os.write(&Some(found));
                                os.write(&group);
                            });
                        }
                    }
                    Ok(request.reply(None, |_| {}))
                }
                _ => dispatch_builtin(request, LOOKUP_TYPE_ID, LOOKUP_TYPE_IDS).await,
            }
        })
    }
}

/// `IceDiscovery::LookupReply`, the default servant of the reply adapter: the identity's name is
/// the request id of the lookup being answered.
struct ReplyServant(Arc<Pending>);

impl ReplyServant {
    fn deliver(&self, request_id: &str, answer: Answer) {
        if let Some(tx) = self.0.0.lock().get(request_id) {
            let _ = tx.try_send(answer);
        }
    }
}

impl Dispatcher for ReplyServant {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            let request_id = request.current().id.name.clone();
            match request.current().operation.as_str() {
                "foundObjectById" => {
                    request.check_mode(OperationMode::Normal)?;
                    let (_id, proxy) = request.read_params(|is| {
                        Ok((is.read::<Identity>()?, is.read::<Option<ObjectPrx>>()?))
                    })?;
                    if let Some(proxy) = proxy {
                        self.deliver(
                            &request_id,
                            Answer {
                                proxy,
                                replica_group: false,
                            },
                        );
                    }
                    Ok(request.reply(None, |_| {}))
                }
                "foundAdapterById" => {
                    request.check_mode(OperationMode::Normal)?;
                    let (_id, proxy, replica_group) = request.read_params(|is| {
                        Ok((
                            is.read::<String>()?,
                            is.read::<Option<ObjectPrx>>()?,
                            is.read::<bool>()?,
                        ))
                    })?;
                    if let Some(proxy) = proxy {
                        self.deliver(
                            &request_id,
                            Answer {
                                proxy,
                                replica_group,
                            },
                        );
                    }
                    Ok(request.reply(None, |_| {}))
                }
                _ => dispatch_builtin(request, LOOKUP_REPLY_TYPE_ID, LOOKUP_REPLY_TYPE_IDS).await,
            }
        })
    }
}

/// `Ice::Locator`, answered by multicast lookups.
struct LocatorServant {
    state: Arc<State>,
    registry: ObjectPrx,
}

impl Dispatcher for LocatorServant {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            let domain = self.state.settings.domain.clone();
            match request.current().operation.as_str() {
                "findObjectById" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    let id = request.read_params(|is| is.read::<Identity>())?;
                    let found = self
                        .state
                        .lookup("findObjectById", |os, reply| {
                            os.write(domain.as_str());
                            os.write(&id);
                            os.write(&Some(reply.clone()));
                        })
                        .await;
                    Ok(request.reply(None, |os| os.write(&found)))
                }
                "findAdapterById" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    let id = request.read_params(|is| is.read::<String>())?;
                    let found = self
                        .state
                        .lookup("findAdapterById", |os, reply| {
                            os.write(domain.as_str());
                            os.write(id.as_str());
                            os.write(&Some(reply.clone()));
                        })
                        .await;
                    Ok(request.reply(None, |os| os.write(&found)))
                }
                "getRegistry" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    request.read_empty_params()?;
                    let registry = Some(self.registry.clone());
                    Ok(request.reply(None, |os| os.write(&registry)))
                }
                _ => dispatch_builtin(request, LOCATOR_TYPE_ID, LOCATOR_TYPE_IDS).await,
            }
        })
    }
}

/// `Ice::LocatorRegistry`: where this communicator's adapters register their endpoints.
struct RegistryServant(Arc<Registry>);

impl Dispatcher for RegistryServant {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "setAdapterDirectProxy" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    let (id, proxy) = request.read_params(|is| {
                        Ok((is.read::<String>()?, is.read::<Option<ObjectPrx>>()?))
                    })?;
                    self.0.set(&id, None, proxy);
                    Ok(request.reply(None, |_| {}))
                }
                "setReplicatedAdapterDirectProxy" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    let (id, group, proxy) = request.read_params(|is| {
                        Ok((
                            is.read::<String>()?,
                            is.read::<String>()?,
                            is.read::<Option<ObjectPrx>>()?,
                        ))
                    })?;
                    self.0.set(&id, Some(&group), proxy);
                    Ok(request.reply(None, |_| {}))
                }
                "setServerProcessProxy" => {
                    request.check_mode(OperationMode::Idempotent)?;
                    let _ = request.read_params(|is| {
                        Ok((is.read::<String>()?, is.read::<Option<ObjectPrx>>()?))
                    })?;
                    Ok(request.reply(None, |_| {}))
                }
                _ => dispatch_builtin(request, REGISTRY_TYPE_ID, REGISTRY_TYPE_IDS).await,
            }
        })
    }
}
