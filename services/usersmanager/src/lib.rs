//! `usersmanager`: the user-management service of the lab spec on Floe.
//!
//! Redundant instances that never know about each other keep users (persistently, in sled) and
//! sessions (in memory), and answer each other's queries through an IceStorm topic. An instance
//! is a drop-in member of a cluster of the lab's Python instances: same Slice
//! (`slice/UsersManager.ice`), adapter, identities, properties and queries.
//!
//! ```no_run
//! # async fn demo() -> Result<(), usersmanager::ServiceError> {
//! let properties = floe::Properties::new();
//! properties.set_property("IceStorm.TopicManager.Proxy", "IceStorm/TopicManager:tcp -h 127.0.0.1 -p 10000");
//! properties.set_property("UsersManager.DataDir", "/tmp/users");
//! let service = usersmanager::Service::start(usersmanager::Config::from_properties(properties)?).await?;
//! println!("{}", service.manager_proxy());
//! service.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod cluster;
pub mod config;
pub mod core;
pub mod limits;
pub mod servants;
pub mod store;
pub mod subscription;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use floe::{Communicator, Identity, ObjectPrx};
use tracing::{info, warn};

pub use config::Config;
use core::{Core, QUERY_CATEGORY, RESPONSE_CATEGORY, SESSION_CATEGORY, random_hex};
use icestorm_lite::slice::ice_storm::TopicManagerPrx;
use servants::{ManagerI, ManagerQueryI, ResponseI, SessionI};
use slice::users_manager::{
    ManagerDispatcher, ManagerQueryDispatcher, ManagerQueryResponseDispatcher, SessionDispatcher,
};
use store::SledStore;
use subscription::Subscription;

/// Code generated from `slice/UsersManager.ice`.
#[allow(missing_docs, clippy::all)]
pub mod slice {
    floe::include_slice!("UsersManager");
}

/// Why an instance could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A property has a bad value.
    #[error("configuration: {0}")]
    Config(String),
    /// The user database cannot be used.
    #[error("data directory {dir}: {reason}")]
    Storage {
        /// The data directory.
        dir: String,
        /// What went wrong.
        reason: String,
    },
    /// The broker cannot be reached or refused something.
    #[error("IceStorm broker: {0}")]
    Broker(String),
    /// The runtime failed (bad endpoint, port in use, ...).
    #[error("{0}")]
    Runtime(#[from] floe::Error),
}

/// A running instance.
#[derive(Debug)]
pub struct Service {
    communicator: Communicator,
    manager: ObjectPrx,
    core: Arc<Core>,
    sweeper: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
    broker: Option<icestorm_lite::Broker>,
}

impl Service {
    /// Opens the user database, connects to the broker, serves the Manager and subscribes to the
    /// query topic.
    pub async fn start(config: Config) -> Result<Service, ServiceError> {
        let dir = config.data_dir.clone();
        let storage_error = |reason: String| ServiceError::Storage {
            dir: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(&dir).map_err(|e| storage_error(e.to_string()))?;
        let store = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || SledStore::open(&dir))
                .await
                .map_err(|e| storage_error(e.to_string()))?
                .map_err(|e| storage_error(e.to_string()))?
        };
        let (tm_string, broker) = match &config.topic_manager {
            Some(tm) => (tm.clone(), None),
            None => {
                let broker = start_embedded_broker(&config).await?;
                (broker.topic_manager().to_string(), Some(broker))
            }
        };
        let communicator = Communicator::with_properties(config.properties.clone())?;
        match Self::start_on(config, Arc::new(store), communicator.clone(), &tm_string).await {
            Ok(mut s) => {
                s.broker = broker;
                Ok(s)
            }
            Err(e) => {
                communicator.destroy().await;
                if let Some(b) = broker {
                    b.shutdown().await;
                }
                Err(e)
            }
        }
    }

    async fn start_on(
        config: Config,
        store: Arc<SledStore>,
        communicator: Communicator,
        tm_string: &str,
    ) -> Result<Service, ServiceError> {
        let tm = communicator
            .string_to_proxy(tm_string)
            .map_err(|e| ServiceError::Config(format!("{}: {e}", config::TOPIC_MANAGER_PROPERTY)))?
            .ok_or_else(|| {
                ServiceError::Config(format!(
                    "{} is a null proxy",
                    config::TOPIC_MANAGER_PROPERTY
                ))
            })?;
        let tm = TopicManagerPrx::unchecked_cast(tm);
        // The broker is checked before anything listens.
        subscription::open_topic(&tm, &config.topic)
            .await
            .map_err(|e| ServiceError::Broker(format!("{tm_string}: {e}")))?;

        let adapter = communicator
            .create_object_adapter_with_endpoints(config::ADAPTER_NAME, &config.endpoints)
            .await
            .map_err(|e| {
                ServiceError::Config(format!(
                    "{}.Endpoints `{}`: {e}",
                    config::ADAPTER_NAME,
                    config.endpoints
                ))
            })?;
        let core = Arc::new(Core::new(config, store, adapter.clone()));
        let manager = adapter.add(
            Arc::new(ManagerDispatcher(Arc::new(ManagerI(core.clone())))),
            Identity::new(config::MANAGER_IDENTITY, ""),
        )?;
        adapter.add_default_servant(
            Arc::new(SessionDispatcher(Arc::new(SessionI(core.clone())))),
            SESSION_CATEGORY,
        )?;
        adapter.add_default_servant(
            Arc::new(ManagerQueryResponseDispatcher(Arc::new(ResponseI(
                core.clone(),
            )))),
            RESPONSE_CATEGORY,
        )?;
        let subscriber = adapter.add(
            Arc::new(ManagerQueryDispatcher(Arc::new(ManagerQueryI(
                core.clone(),
            )))),
            Identity::new(random_hex(16), QUERY_CATEGORY),
        )?;
        adapter.activate()?;

        let subscription = Subscription::open(
            tm,
            &core.config.topic,
            subscriber.ice_oneway(),
            core.config.member_grace(),
        )
        .await
        .map_err(|e| ServiceError::Broker(format!("topic `{}`: {e}", core.config.topic)))?;
        core.set_subscription(subscription);

        let sweeper = tokio::spawn({
            let period = (core.config.session_retention / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(60));
            let core = Arc::downgrade(&core);
            async move {
                loop {
                    tokio::time::sleep(period).await;
                    let Some(core) = core.upgrade() else { break };
                    let n = core.sweep_sessions();
                    if n > 0 {
                        info!(target: "usersmanager::session", forgotten = n, "expired sessions forgotten");
                    }
                }
            }
        });
        let watcher = tokio::spawn({
            let period = core.config.subscription_check;
            let core = Arc::downgrade(&core);
            async move {
                loop {
                    tokio::time::sleep(period).await;
                    let Some(core) = core.upgrade() else { break };
                    if let Err(e) = core.check_subscription().await {
                        warn!(target: "usersmanager", error = %limits::Escaped(&e.to_string()), "cannot check the subscription to the query topic");
                    }
                }
            }
        });
        info!(target: "usersmanager", manager = %manager, topic = %limits::Escaped(&core.config.topic), authenticated = core.key.is_some(), "ready");
        Ok(Service {
            communicator,
            manager,
            core,
            sweeper,
            watcher,
            broker: None,
        })
    }

    /// The embedded broker's topic manager, when this instance runs one.
    pub fn embedded_broker(&self) -> Option<ObjectPrx> {
        self.broker.as_ref().map(|b| b.topic_manager())
    }

    /// The Manager's proxy (`manager -t -e 1.1:<endpoints>`).
    pub fn manager_proxy(&self) -> &ObjectPrx {
        &self.manager
    }

    /// The communicator of the instance.
    pub fn communicator(&self) -> &Communicator {
        &self.communicator
    }

    /// Unsubscribes from the topic and stops serving.
    pub async fn shutdown(self) {
        self.watcher.abort();
        if let Err(e) = self.core.unsubscribe().await {
            warn!(target: "usersmanager", error = %e, "could not unsubscribe from the topic");
        }
        self.sweeper.abort();
        self.communicator.destroy().await;
        if let Some(broker) = self.broker {
            broker.shutdown().await;
        }
    }
}

/// Starts icestorm-lite in this process for an instance configured without
/// `IceStorm.TopicManager.Proxy`. It reads the instance's `IceStorm.*` properties (so
/// `IceStorm.TopicManager.Endpoints` can give it a fixed port other instances join on) and keeps
/// its topics in memory unless `IceStorm.LMDB.Path` names a directory.
async fn start_embedded_broker(config: &Config) -> Result<icestorm_lite::Broker, ServiceError> {
    let props = config.properties.deep_clone();
    if props.get_property("IceStorm.LMDB.Path").is_empty() {
        props.set_property("IceStorm.Transient", "1");
    }
    // Python instances (ZeroC) may join: an event that would crash them is refused.
    if props.get_property("IceStorm.CheckClassGraphs").is_empty() {
        props.set_property("IceStorm.CheckClassGraphs", "1");
    }
    let broker = icestorm_lite::Broker::start(props)
        .await
        .map_err(|e| ServiceError::Broker(format!("embedded icestorm-lite: {e}")))?;
    info!(target: "usersmanager", topic_manager = %broker.topic_manager(), "embedded broker started (no IceStorm.TopicManager.Proxy)");
    Ok(broker)
}

/// Runs one instance until `shutdown` completes: prints the Manager's proxy on stdout when
/// ready, then serves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServiceError> {
    let service = Service::start(config).await?;
    println!("{}", service.manager_proxy());
    let communicator = service.communicator().clone();
    tokio::select! {
        _ = shutdown => {}
        _ = communicator.wait_for_shutdown() => {}
    }
    service.shutdown().await;
    Ok(())
}
