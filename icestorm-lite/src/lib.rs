//! icestorm-lite: an event broker that IceStorm 3.7 clients cannot tell from ZeroC's IceStorm.
//!
//! Publishers and subscribers use the `IceStorm` Slice interfaces unchanged (ZeroC's Python,
//! C++ or Java `IceStorm.TopicManagerPrx`, or the Rust proxies in [`slice::ice_storm`]); the
//! broker reads ZeroC's configuration properties (see [`config`]) and keeps topics,
//! subscribers and links in a sled database.
//!
//! # Quick start
//!
//! Run the binary with a configuration written for ZeroC's IceStorm service:
//!
//! ```text
//! icestorm-lite --Ice.Config=config.icestorm
//! ```
//!
//! or embed a broker in a process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), icestorm_lite::BrokerError> {
//! let props = floe::Properties::new();
//! props.set_property("IceStorm.Transient", "1");
//! let broker = icestorm_lite::Broker::start(props).await?;
//! println!("topic manager: {}", broker.topic_manager()); // IceStorm/TopicManager -t -e 1.1:tcp ...
//! broker.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Objects and identities (`I` = `IceStorm.InstanceName`)
//!
//! | object | identity | adapter |
//! | --- | --- | --- |
//! | topic manager | `I/TopicManager` | `IceStorm.TopicManager` |
//! | finder | `IceStorm/Finder` | `IceStorm.TopicManager` |
//! | topic `T` | `I/topic.T` | `IceStorm.TopicManager` |
//! | publisher of `T` | `I/T.publish` | `IceStorm.Publish` |
//! | link object of `T` | `I/T.link` | `IceStorm.Publish` |
//! | publisher for subscriber `S` of `T` | `I/topic.T.publish.S` | `IceStorm.Publish` |
//!
//! # Delivery rules
//!
//! These are ZeroC's IceStorm 3.7 rules; where ours differ it is said.
//!
//! - A publisher object accepts **any operation** with any mode, context and parameters. It does
//!   not decode the parameters: the operation name, the mode byte, the context and the parameter
//!   encapsulation (header included) are forwarded byte for byte. A twoway publish is answered
//!   with an empty success once the event is queued and written to the oneway subscribers that
//!   had no write in flight (as ZeroC's IceStorm writes to them before answering, so the event
//!   leaves first), waiting at most 1 ms for those writes; never after delivery.
//! - Each subscriber has **its own queue and its own delivery task**, so a slow or dead
//!   subscriber never delays the others. The queue holds at most `IceStorm.Send.QueueSizeMax`
//!   events (65536 by default; ZeroC's default is unlimited, `-1` gives that) and
//!   `IceStorm.Send.QueueMemoryMax` KiB of them (64 MiB; ours), and while the whole broker holds
//!   more than `IceStorm.MemoryMax` KiB of events (256 MiB; ours) a queue with a backlog counts
//!   as full. When it is full the subscriber is removed
//!   (`IceStorm.Send.QueueSizeMaxPolicy=RemoveSubscriber`, the default) or the oldest queued
//!   event is dropped (`DropEvents`).
//! - An event that would exceed `Ice.MessageSizeMax` once addressed to a subscriber (its
//!   identity and facet replace the publisher's) is dropped for that subscriber and counted in
//!   the log (1st, 2nd, 4th... drop); the subscriber is kept, as in ZeroC's IceStorm.
//! - How events are sent depends on the subscriber's proxy and QoS:
//!   - twoway with `reliability=ordered`: one request outstanding at a time, so events arrive
//!     in the order the broker received them;
//!   - twoway without QoS: up to 5 requests outstanding (order not guaranteed);
//!   - oneway or datagram: oneway requests, in queue order;
//!   - batch oneway or batch datagram: queued and flushed as one batch every
//!     `IceStorm.Flush.Timeout` ms.
//!
//!   Events from one publisher connection are queued in the order they arrive (the publish
//!   adapter dispatches each connection's requests one at a time).
//! - Subscriber proxies get the endpoint timeout `IceStorm.Send.Timeout` (ms): a subscriber that
//!   stops reading fails its delivery after that long.
//! - A delivery fails when the request cannot be sent or, for twoway subscribers, when the reply
//!   is a failure other than a user exception (a user exception counts as delivered; so an event
//!   the subscriber does not implement fails with OperationNotExist).
//! - **ObjectNotExist** and **NotRegistered** failures (and a full queue under
//!   `RemoveSubscriber`) remove the subscriber at once.
//! - Other failures use the subscription's `retryCount` QoS (default 0; -1 = forever): while
//!   fewer than `retryCount` consecutive failures have happened, the subscriber goes **offline**
//!   for `IceStorm.Discard.Interval` seconds: its queue is dropped and events published meanwhile
//!   are discarded; the first event after the interval puts it back online. One more failure
//!   removes it. A successful delivery resets the count. With the default `retryCount` of 0 the
//!   first failure removes the subscriber: a subscriber proxy that points nowhere is reaped on
//!   the first event.
//! - `reliability` other than `""` or `ordered` is refused with `BadQoS("invalid reliability:
//!   X")`, `ordered` with a oneway proxy with `BadQoS("ordered reliability requires a twoway
//!   proxy")`; a null subscriber with `InvalidSubscriber`; an identity already subscribed with
//!   `AlreadySubscribed`. Unlike ZeroC, a subscriber whose identity has the form of one of this
//!   broker's publisher or link objects (`I/T.publish`, `I/topic.T.publish.S`, `I/T.link`) is
//!   refused with `InvalidSubscriber`, and a link whose link object is such a publisher with an
//!   `UnknownException`: events sent to them would come back to the broker forever.
//! - **Links** (`Topic::link(other, cost)`) forward every event published on this topic to the
//!   other topic's link object (`TopicLink::forward`, so links work with ZeroC's IceStorm too),
//!   in batches, one batch outstanding. With a non-zero link cost, events whose `cost` context
//!   entry is higher than the link's cost are not forwarded. Events that arrived over a link are
//!   delivered to subscribers but never forwarded again. A link retries forever (offline for
//!   `IceStorm.Discard.Interval` after each failure) unless the linked topic answers
//!   ObjectNotExist.
//! - Topic names must be 1 to [`config::MAX_TOPIC_NAME_BYTES`] bytes long (ZeroC accepts an
//!   empty name); `create` refuses others with an `UnknownException` that says why, as it does
//!   a topic beyond `IceStorm.TopicsMax` or one that would make `retrieveAll`'s answer larger
//!   than `Ice.MessageSizeMax`.
//! - With `IceStorm.CheckClassGraphs=1`, an event (published or forwarded by a link) holding a
//!   chain of sliced class instances deeper than `Ice.ClassGraphDepthMax` is refused (a
//!   `MarshalException` for a twoway publisher): ZeroC 3.7 subscribers crash decoding it (see
//!   [`class_graph`]).
//! - Topics, subscribers (with their QoS) and links are **persistent** (`IceStorm.LMDB.Path`
//!   names the data directory) and written to disk before the call that made them is answered;
//!   events are not: events queued when the broker stops are lost, as in ZeroC's IceStorm.

pub mod class_graph;
pub mod config;
pub mod store;
mod subscriber;
mod topic;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use floe::codegen::Current;
use floe::{Communicator, Error, Identity, ObjectAdapter, ObjectPrx, Properties};

pub use config::Config;
pub use store::{MemoryStore, SledStore, Store, SubscriberRecord};

use slice::ice_storm::{self, NoSuchTopic, TopicExists, TopicManagerPrx, TopicPrx, topic_manager};
use subscriber::Memory;
use topic::TopicImpl;

/// The code generated from `slice/IceStorm/IceStorm.ice` and `IceStormInternal.ice`: proxies
/// (`ice_storm::TopicManagerPrx`, `ice_storm::TopicPrx`), servant traits, types and exceptions.
#[allow(missing_docs, clippy::all)]
pub mod slice {
    floe::include_slice!("IceStormInternal");
}

/// Why the broker could not start or do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// A configuration property has a value the broker cannot use.
    #[error("configuration: {0}")]
    Config(String),
    /// The data directory could not be read or written.
    #[error("store: {0}")]
    Store(String),
    /// The runtime failed (an endpoint could not be bound, ...).
    #[error(transparent)]
    Runtime(#[from] Error),
}

impl From<BrokerError> for Error {
    fn from(e: BrokerError) -> Error {
        match e {
            BrokerError::Runtime(e) => e,
            other => Error::UnknownException(other.to_string()),
        }
    }
}

/// Runs a store operation off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BrokerError> + Send + 'static,
) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BrokerError::Store(format!("store task failed: {e}")))?
}

/// What every part of the broker shares.
pub(crate) struct Shared {
    pub config: Config,
    pub comm: Communicator,
    pub topic_adapter: ObjectAdapter,
    pub publish_adapter: ObjectAdapter,
    pub store: Arc<dyn Store>,
    /// The bytes of the events held now.
    pub memory: Arc<Memory>,
    /// Events refused by `IceStorm.CheckClassGraphs`.
    refused_class_graphs: AtomicU64,
    /// Bytes of the entries of a `retrieveAll` answer.
    listing_bytes: AtomicUsize,
    topics: Mutex<BTreeMap<String, Arc<TopicImpl>>>,
    /// Serialises topic creation and destruction with their persistence.
    manager_ops: tokio::sync::Mutex<()>,
}

/// Bytes of a `retrieveAll` answer besides its entries: header, request id, reply status,
/// encapsulation header and the dictionary's size.
const LISTING_OVERHEAD: usize = 14 + 4 + 1 + 6 + 5;

impl Shared {
    fn trace(&self, msg: &str) {
        if self.config.trace.topic_manager > 0 {
            tracing::info!(target: "icestorm::topic_manager", "{msg}");
        }
    }

    /// With `IceStorm.CheckClassGraphs`: refuses an event (operation `op`, parameters
    /// `encaps`) holding a chain of sliced class instances deeper than `Ice.ClassGraphDepthMax`,
    /// counting it and logging the 1st, 2nd, 4th... refusal.
    pub(crate) fn check_class_graphs(&self, op: &str, encaps: &[u8]) -> Result<(), String> {
        let Some(max) = self.config.class_graph_depth_max else {
            return Ok(());
        };
        class_graph::check(encaps, max).map_err(|why| {
            let n = self.refused_class_graphs.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    target: "icestorm::topic",
                    "event `{}` of {} bytes refused: {why}; {n} refused so far",
                    op.escape_debug(),
                    encaps.len()
                );
            }
            why.to_string()
        })
    }

    /// Whether `id` names one of the broker's publisher objects (`T.publish`,
    /// `topic.T.publish.S`) or, with `links`, link objects (`T.link`): events sent to them
    /// come back to the broker. Decided by the form of the identity in the broker's category,
    /// whether or not such a topic exists now.
    pub(crate) fn is_broker_object(&self, id: &Identity, links: bool) -> bool {
        id.category == self.config.instance_name
            && (id.name.ends_with(".publish")
                || (id.name.starts_with("topic.") && id.name.contains(".publish."))
                || (links && id.name.ends_with(".link")))
    }

    /// Bytes `name` and its topic's proxy take in a `retrieveAll` answer.
    fn listing_entry(&self, name: &str) -> usize {
        use floe::encoding::{Encodable, OutputStream};
        let id = Identity::new(format!("topic.{name}"), self.config.instance_name.clone());
        let proxy = TopicPrx::unchecked_cast(self.topic_adapter.create_proxy(id));
        let mut os = OutputStream::new(floe::EncodingVersion::V1_1);
        name.to_string().encode_to(&mut os);
        Some(proxy).encode_to(&mut os);
        os.finish().map_or(usize::MAX / 2, |b| b.len())
    }

    /// Refuses a topic beyond `IceStorm.TopicsMax`, or one whose entry would take
    /// `retrieveAll`'s answer past `Ice.MessageSizeMax`; returns the bytes of its entry.
    fn check_room(&self, name: &str) -> Result<usize, Error> {
        let count = self.topics.lock().len();
        if let Some(max) = self.config.topics_max {
            if count >= max {
                return Err(Error::UnknownException(format!(
                    "cannot create topic: the broker has {count} topics, the limit \
                     (IceStorm.TopicsMax)"
                )));
            }
        }
        let listing = LISTING_OVERHEAD + self.listing_bytes.load(Ordering::Relaxed);
        let entry = self.listing_entry(name);
        if listing + entry > self.config.message_size_max {
            return Err(Error::UnknownException(format!(
                "cannot create topic: retrieveAll would answer {} KiB, more than \
                 Ice.MessageSizeMax ({} KiB)",
                (listing + entry).div_ceil(1024),
                self.config.message_size_max / 1024
            )));
        }
        Ok(entry)
    }

    async fn create_topic(self: &Arc<Self>, name: &str) -> Result<Arc<TopicImpl>, CreateFailure> {
        check_topic_name(name).map_err(CreateFailure::Runtime)?;
        let _g = self.manager_ops.lock().await;
        if self.topics.lock().contains_key(name) {
            return Err(CreateFailure::Exists);
        }
        let entry = self.check_room(name).map_err(CreateFailure::Runtime)?;
        let store = self.store.clone();
        let n = name.to_string();
        blocking(move || store.create_topic(&n))
            .await
            .map_err(|e| CreateFailure::Runtime(e.into()))?;
        let topic = TopicImpl::install(self, name, Vec::new())
            .await
            .map_err(|e| CreateFailure::Runtime(e.into()))?;
        self.topics.lock().insert(name.to_string(), topic.clone());
        self.listing_bytes.fetch_add(entry, Ordering::Relaxed);
        self.trace(&format!("create topic `{name}`"));
        Ok(topic)
    }

    pub(crate) async fn remove_topic(&self, name: &str) -> Result<(), BrokerError> {
        let _g = self.manager_ops.lock().await;
        let topic = self.topics.lock().get(name).cloned();
        let Some(topic) = topic else {
            return Err(Error::ObjectNotExist(Box::default()).into());
        };
        topic.destroy().await?;
        self.topics.lock().remove(name);
        self.listing_bytes
            .fetch_sub(self.listing_entry(name), Ordering::Relaxed);
        self.trace(&format!("destroy topic `{name}`"));
        Ok(())
    }
}

enum CreateFailure {
    Exists,
    Runtime(Error),
}

/// Refuses empty and over-long topic names with a message that says which rule was broken.
fn check_topic_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::UnknownException(
            "invalid topic name: a topic name must not be empty".into(),
        ));
    }
    if name.len() > config::MAX_TOPIC_NAME_BYTES {
        return Err(Error::UnknownException(format!(
            "invalid topic name: {} bytes long, longer than the limit of {} bytes",
            name.len(),
            config::MAX_TOPIC_NAME_BYTES
        )));
    }
    Ok(())
}

struct TopicManagerServant(Arc<Shared>);

impl ice_storm::TopicManager for TopicManagerServant {
    async fn create(
        &self,
        name: String,
        _current: &Current,
    ) -> Result<Option<TopicPrx>, topic_manager::CreateError> {
        match self.0.create_topic(&name).await {
            Ok(t) => Ok(Some(t.proxy())),
            Err(CreateFailure::Exists) => Err(TopicExists { name }.into()),
            Err(CreateFailure::Runtime(e)) => Err(e.into()),
        }
    }

    async fn retrieve(
        &self,
        name: String,
        _current: &Current,
    ) -> Result<Option<TopicPrx>, topic_manager::RetrieveError> {
        let topic = self.0.topics.lock().get(&name).cloned();
        match topic {
            Some(t) => Ok(Some(t.proxy())),
            None => Err(NoSuchTopic { name }.into()),
        }
    }

    async fn retrieve_all(
        &self,
        _current: &Current,
    ) -> Result<HashMap<String, Option<TopicPrx>>, Error> {
        Ok(self
            .0
            .topics
            .lock()
            .iter()
            .map(|(k, t)| (k.clone(), Some(t.proxy())))
            .collect())
    }

    async fn get_slice_checksums(
        &self,
        _current: &Current,
    ) -> Result<HashMap<String, String>, Error> {
        Ok(HashMap::new())
    }
}

struct FinderServant(ObjectPrx);

impl ice_storm::Finder for FinderServant {
    async fn get_topic_manager(
        &self,
        _current: &Current,
    ) -> Result<Option<TopicManagerPrx>, Error> {
        Ok(Some(TopicManagerPrx::unchecked_cast(self.0.clone())))
    }
}

/// A running broker.
pub struct Broker {
    shared: Arc<Shared>,
    topic_manager: ObjectPrx,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("topic_manager", &self.topic_manager.to_string())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Starts a broker in this process with its own floe::Communicator built from `properties`
    /// (same property names as the binary). With no TopicManager endpoints configured it listens
    /// on `tcp -h 127.0.0.1 -p 0`; with no data directory (or IceStorm.Transient=1) it keeps
    /// state in memory only.
    pub async fn start(properties: Properties) -> Result<Broker, BrokerError> {
        Self::start_with_default_dir(properties, None).await
    }

    /// [`Broker::start`], with the data directory used when `IceStorm.LMDB.Path` is not set (the
    /// binary passes ZeroC's default, `IceStorm`).
    pub async fn start_with_default_dir(
        properties: Properties,
        default_data_dir: Option<PathBuf>,
    ) -> Result<Broker, BrokerError> {
        let props = properties.deep_clone();
        let config = Config::from_properties(&props, default_data_dir)?;
        for (key, value) in [
            ("IceStorm.TopicManager.Endpoints", config::DEFAULT_ENDPOINTS),
            ("IceStorm.Publish.Endpoints", config::DEFAULT_ENDPOINTS),
            // Events from one publisher connection are queued in arrival order.
            ("IceStorm.Publish.ThreadPool.Serialize", "1"),
        ] {
            if props.get_property(key).is_empty() {
                props.set_property(key, value);
            }
        }
        let store: Arc<dyn Store> = match &config.data_dir {
            Some(dir) => {
                let dir = dir.clone();
                Arc::new(blocking(move || SledStore::open(&dir)).await?)
            }
            None => Arc::new(MemoryStore::default()),
        };
        let comm = Communicator::with_properties(props)?;
        let started = async {
            let topic_adapter = comm.create_object_adapter("IceStorm.TopicManager").await?;
            let publish_adapter = comm.create_object_adapter("IceStorm.Publish").await?;
            Ok::<_, BrokerError>((topic_adapter, publish_adapter))
        }
        .await;
        let (topic_adapter, publish_adapter) = match started {
            Ok(a) => a,
            Err(e) => {
                comm.destroy().await;
                return Err(e);
            }
        };
        let shared = Arc::new(Shared {
            config,
            comm: comm.clone(),
            topic_adapter: topic_adapter.clone(),
            publish_adapter: publish_adapter.clone(),
            store: store.clone(),
            memory: Arc::new(Memory::default()),
            refused_class_graphs: AtomicU64::new(0),
            listing_bytes: AtomicUsize::new(0),
            topics: Mutex::new(BTreeMap::new()),
            manager_ops: tokio::sync::Mutex::new(()),
        });
        let result = async {
            let s = store.clone();
            let stored = blocking(move || s.load()).await?;
            for (name, records) in stored {
                let topic = TopicImpl::install(&shared, &name, records).await?;
                shared
                    .listing_bytes
                    .fetch_add(shared.listing_entry(&name), Ordering::Relaxed);
                shared.topics.lock().insert(name, topic);
            }
            let manager_id = Identity::new("TopicManager", shared.config.instance_name.clone());
            let topic_manager = topic_adapter.add(
                Arc::new(ice_storm::TopicManagerDispatcher(Arc::new(
                    TopicManagerServant(shared.clone()),
                ))),
                manager_id,
            )?;
            topic_adapter.add(
                Arc::new(ice_storm::FinderDispatcher(Arc::new(FinderServant(
                    topic_manager.clone(),
                )))),
                Identity::new("Finder", "IceStorm"),
            )?;
            publish_adapter.activate()?;
            topic_adapter.activate()?;
            Ok::<_, BrokerError>(topic_manager)
        }
        .await;
        match result {
            Ok(topic_manager) => {
                shared.trace(&format!(
                    "started: topic manager `{topic_manager}`, {} topic(s)",
                    shared.topics.lock().len()
                ));
                Ok(Broker {
                    shared,
                    topic_manager,
                })
            }
            Err(e) => {
                for t in shared.topics.lock().values() {
                    t.stop();
                }
                comm.destroy().await;
                let _ = store.close();
                Err(e)
            }
        }
    }

    /// The TopicManager proxy, with the real bound endpoints (usable from other processes).
    pub fn topic_manager(&self) -> floe::ObjectPrx {
        self.topic_manager.clone()
    }

    /// The broker's communicator.
    pub fn communicator(&self) -> Communicator {
        self.shared.comm.clone()
    }

    /// Stops accepting, flushes what it can, closes sled cleanly.
    pub async fn shutdown(self) {
        self.shutdown_within(Duration::from_secs(2)).await;
    }

    /// [`Broker::shutdown`], waiting at most `grace` for queued events to be handed over.
    pub async fn shutdown_within(self, grace: Duration) {
        let s = &self.shared;
        s.topic_adapter.deactivate();
        s.publish_adapter.deactivate();
        let topics: Vec<Arc<TopicImpl>> = s.topics.lock().values().cloned().collect();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !topics.iter().all(|t| t.drained()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for t in &topics {
            t.stop();
        }
        s.comm.destroy().await;
        let store = s.store.clone();
        if let Err(e) = blocking(move || store.close()).await {
            tracing::error!(target: "icestorm::topic_manager", "closing the store: {e}");
        }
    }
}

/// Runs a broker configured by `properties` until `shutdown` completes (the binary's `main`
/// passes Ctrl-C and SIGTERM), then shuts it down.
pub async fn run(
    properties: Properties,
    default_data_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BrokerError> {
    let broker = Broker::start_with_default_dir(properties, default_data_dir).await?;
    tracing::info!(target: "icestorm::topic_manager", "topic manager: {}", broker.topic_manager());
    shutdown.await;
    broker.shutdown().await;
    Ok(())
}

/// Retrieves topic `name` from a topic manager (this broker's or ZeroC's), creating it when
/// missing; a topic created or destroyed by someone else meanwhile is tried again.
pub async fn open_topic(
    tm: &slice::ice_storm::TopicManagerPrx,
    name: &str,
) -> Result<slice::ice_storm::TopicPrx, String> {
    use slice::ice_storm::topic_manager;
    for _ in 0..3 {
        match tm.retrieve(name).await {
            Ok(Some(topic)) => return Ok(topic),
            Ok(None) => return Err(format!("retrieve(`{name}`) returned a null proxy")),
            Err(topic_manager::RetrieveError::NoSuchTopic(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
        match tm.create(name).await {
            Ok(Some(topic)) => {
                tracing::info!(target: "icestorm::topic", topic = name, "topic created");
                return Ok(topic);
            }
            Ok(None) => return Err(format!("create(`{name}`) returned a null proxy")),
            Err(topic_manager::CreateError::TopicExists(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("topic `{name}` keeps appearing and disappearing"))
}
