//! An identity manager: a floe-raft node replicating [`Accounts`], the `Telegraph::Manager`
//! servant (identity `manager`, on the node's adapter), the batching of heartbeats into the
//! log, the leader's periodic sweep, and the publication of presence changes on the broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use floe::codegen::Current;
use floe::{Communicator, ObjectPrx, Properties, Proxy};
use floe_raft::{Consistency, RaftError, RaftNode};
use icestorm_lite::slice::ice_storm::TopicManagerPrx;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::accounts::{Accounts, Answer, Command, Refusal};
use crate::crypto::valid_name;
use crate::slice::telegraph::{self as api, InboxPrx, PresencePrx, manager as ops};

/// The property prefix of a manager's Raft node (and the name of its adapter).
pub const RAFT_PREFIX: &str = "Telegraph.Raft";
/// The identity of the Manager object.
pub const MANAGER_IDENTITY: &str = "manager";
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD: usize = 1024;
/// Longest inbox proxy accepted, in bytes.
pub const MAX_INBOX: usize = 1024;

/// A manager's settings (`Telegraph.*` properties; the Raft node's are `Telegraph.Raft.*`).
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// All properties.
    pub properties: Properties,
    /// Users not seen for this long go offline (`Telegraph.OfflineAfter`, ms).
    pub offline_after: Duration,
    /// Sessions unused for this long are forgotten (`Telegraph.SessionLifetime`, ms).
    pub session_lifetime: Duration,
    /// How often the leader sweeps (`Telegraph.TickInterval`, ms).
    pub tick_interval: Duration,
    /// How often a manager writes the heartbeats it gathered (`Telegraph.FlushInterval`, ms).
    pub flush_interval: Duration,
    /// Failed logins allowed per name in a minute (`Telegraph.LoginFailures`).
    pub login_failures: u32,
    /// The broker's topic manager (`IceStorm.TopicManager.Proxy`), if presence is published.
    pub topic_manager: Option<String>,
    /// The presence topic (`Telegraph.PresenceTopic`).
    pub presence_topic: String,
}

fn millis(p: &Properties, key: &str, default: u64) -> Result<Duration, String> {
    let text = p.get_property(key);
    if text.trim().is_empty() {
        return Ok(Duration::from_millis(default));
    }
    match text.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "{key}={text}: expected a positive number of milliseconds"
        )),
    }
}

impl ManagerConfig {
    /// Reads the manager's settings.
    pub fn from_properties(properties: Properties) -> Result<ManagerConfig, String> {
        let failures = properties.get_property_as_int_with_default("Telegraph.LoginFailures", 5);
        Ok(ManagerConfig {
            offline_after: millis(&properties, "Telegraph.OfflineAfter", 15_000)?,
            session_lifetime: millis(&properties, "Telegraph.SessionLifetime", 86_400_000)?,
            tick_interval: millis(&properties, "Telegraph.TickInterval", 1_000)?,
            flush_interval: millis(&properties, "Telegraph.FlushInterval", 250)?,
            login_failures: u32::try_from(failures.max(1)).unwrap_or(5),
            topic_manager: Some(properties.get_property("IceStorm.TopicManager.Proxy"))
                .filter(|s| !s.trim().is_empty()),
            presence_topic: properties
                .get_property_with_default("Telegraph.PresenceTopic", "TelegraphPresence"),
            properties,
        })
    }
}

/// SHA-256 of a session token, hex: what the log stores instead of the token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Failed logins per name, in the last minute (per manager, in memory).
#[derive(Debug, Default)]
struct Throttle {
    failures: HashMap<String, Vec<Instant>>,
}

impl Throttle {
    const WINDOW: Duration = Duration::from_secs(60);

    /// How long `name` must wait, if it is locked out.
    fn wait(&mut self, name: &str, limit: u32) -> Option<Duration> {
        let now = Instant::now();
        let list = self.failures.get_mut(name)?;
        list.retain(|t| now.duration_since(*t) < Self::WINDOW);
        if list.len() >= limit as usize {
            list.first()
                .map(|first| Self::WINDOW.saturating_sub(now.duration_since(*first)))
        } else {
            None
        }
    }

    fn failed(&mut self, name: &str) {
        if self.failures.len() > 100_000 {
            let now = Instant::now();
            self.failures.retain(|_, l| {
                l.last()
                    .is_some_and(|t| now.duration_since(*t) < Self::WINDOW)
            });
        }
        self.failures
            .entry(name.to_string())
            .or_default()
            .push(Instant::now());
    }
}

struct Shared {
    node: RaftNode<Accounts>,
    config: ManagerConfig,
    /// Heartbeats gathered since the last flush: token hash → new inbox (if it changed).
    pending: Mutex<HashMap<String, Option<String>>>,
    throttle: Mutex<Throttle>,
    hashing: Semaphore,
    presence: Option<PresencePrx>,
}

/// A running identity manager.
#[derive(Clone)]
pub struct Manager {
    shared: Arc<Shared>,
    proxy: ObjectPrx,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("proxy", &self.proxy.to_string())
            .finish()
    }
}

fn unavailable(e: RaftError) -> api::Unavailable {
    api::Unavailable {
        reason: e.to_string(),
    }
}

fn unauthorized(reason: impl Into<String>) -> api::Unauthorized {
    api::Unauthorized {
        reason: reason.into(),
    }
}

fn invalid(reason: impl Into<String>) -> api::InvalidArgument {
    api::InvalidArgument {
        reason: reason.into(),
    }
}

impl Manager {
    /// Starts a manager: its Raft node (with its own communicator), its servant and its
    /// background tasks.
    pub async fn start(config: ManagerConfig) -> Result<Manager, String> {
        let raft_config =
            floe_raft::Config::from_properties(config.properties.clone(), RAFT_PREFIX)
                .map_err(|e| e.to_string())?;
        let node = RaftNode::start(raft_config, Accounts::default())
            .await
            .map_err(|e| e.to_string())?;
        match Self::serve(node.clone(), config).await {
            Ok(m) => Ok(m),
            Err(e) => {
                node.shutdown().await;
                Err(e)
            }
        }
    }

    /// Serves the Manager on a started node.
    pub async fn serve(node: RaftNode<Accounts>, config: ManagerConfig) -> Result<Manager, String> {
        let presence = match &config.topic_manager {
            Some(tm) => {
                Some(presence_publisher(node.communicator(), tm, &config.presence_topic).await?)
            }
            None => None,
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shared = Arc::new(Shared {
            node: node.clone(),
            config,
            pending: Mutex::new(HashMap::new()),
            throttle: Mutex::new(Throttle::default()),
            hashing: Semaphore::new(cores * 2),
            presence,
        });
        let identity: floe::Identity = MANAGER_IDENTITY
            .parse()
            .map_err(|e: floe::Error| e.to_string())?;
        node.adapter()
            .add(
                Arc::new(api::ManagerDispatcher(Arc::new(ManagerI {
                    shared: shared.clone(),
                }))),
                identity.clone(),
            )
            .map_err(|e| e.to_string())?;
        let proxy = node.adapter().create_proxy(identity);
        let discovery = shared
            .config
            .properties
            .get_property("Telegraph.Discovery.Endpoints");
        if !discovery.trim().is_empty() {
            let adapter = node
                .communicator()
                .create_object_adapter_with_endpoints("Telegraph.Discovery", &discovery)
                .await
                .map_err(|e| format!("Telegraph.Discovery.Endpoints `{discovery}`: {e}"))?;
            let servant = crate::discovery::DiscoveryI {
                manager: api::ManagerPrx::unchecked_cast(proxy.clone()),
                budget: Mutex::new((Instant::now(), 0)),
            };
            adapter
                .add(
                    Arc::new(api::DiscoveryDispatcher(Arc::new(servant))),
                    crate::discovery::DISCOVERY_IDENTITY
                        .parse()
                        .map_err(|e: floe::Error| e.to_string())?,
                )
                .map_err(|e| e.to_string())?;
            adapter.activate().map_err(|e| e.to_string())?;
            info!(target: "telegraph::discovery", endpoints = %discovery, "answering UDP lookups");
        }
        let manager = Manager {
            shared: shared.clone(),
            proxy,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        let (flush, tick) = (shared.clone(), shared.clone());
        manager
            .tasks
            .lock()
            .push(tokio::spawn(async move { flush.flush_loop().await }));
        manager
            .tasks
            .lock()
            .push(tokio::spawn(async move { tick.tick_loop().await }));
        Ok(manager)
    }

    /// This manager's proxy (identity `manager`).
    pub fn proxy(&self) -> &ObjectPrx {
        &self.proxy
    }

    /// The manager's Raft node.
    pub fn node(&self) -> &RaftNode<Accounts> {
        &self.shared.node
    }

    /// Stops the manager and its node.
    pub async fn shutdown(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        self.shared.node.shutdown().await;
    }
}

async fn presence_publisher(
    communicator: &Communicator,
    tm: &str,
    topic: &str,
) -> Result<PresencePrx, String> {
    let tm = communicator
        .string_to_proxy(tm)
        .map_err(|e| format!("IceStorm.TopicManager.Proxy: {e}"))?
        .ok_or("IceStorm.TopicManager.Proxy is a null proxy")?;
    let tm = TopicManagerPrx::unchecked_cast(tm);
    let topic = icestorm_lite::open_topic(&tm, topic)
        .await
        .map_err(|e| format!("broker: {e}"))?;
    let publisher = topic
        .get_publisher()
        .await
        .map_err(|e| format!("broker: {e}"))?
        .ok_or("the broker returned no publisher")?;
    Ok(PresencePrx::unchecked_cast(publisher.ice_oneway()))
}

impl Shared {
    /// Proposes a command; returns its answer, or a refusal.
    async fn write(&self, command: &Command) -> Result<Answer, RaftError> {
        let bytes = serde_json::to_vec(command).map_err(|e| RaftError::Failed(e.to_string()))?;
        let reply = self.node.write(bytes).await?;
        let answer: Answer = serde_json::from_slice(&reply)
            .map_err(|e| RaftError::Failed(format!("unreadable answer: {e}")))?;
        if !answer.changes.is_empty() {
            self.publish(&answer.changes).await;
        }
        Ok(answer)
    }

    /// Publishes the presence of `names` as the log has it now.
    async fn publish(&self, names: &[String]) {
        let Some(presence) = &self.presence else {
            return;
        };
        let infos = match self
            .node
            .read(Consistency::Stale, |a| {
                names.iter().filter_map(|n| a.info(n)).collect::<Vec<_>>()
            })
            .await
        {
            Ok(i) => i,
            Err(_) => return,
        };
        for info in infos {
            info!(target: "telegraph::presence", user = %info.name, online = info.online, "presence");
            if let Err(e) = presence.changed(&info).await {
                warn!(target: "telegraph::presence", error = %e, "presence not published");
            }
        }
    }

    async fn flush_loop(self: Arc<Self>) {
        let mut timer = tokio::time::interval(self.config.flush_interval);
        loop {
            timer.tick().await;
            let batch: Vec<(String, Option<String>)> = self.pending.lock().drain().collect();
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = self.write(&Command::Seen { sessions: batch }).await {
                warn!(target: "telegraph::manager", error = %e, "heartbeats not recorded");
            }
        }
    }

    async fn tick_loop(self: Arc<Self>) {
        let mut timer = tokio::time::interval(self.config.tick_interval);
        loop {
            timer.tick().await;
            if self.node.leader().map(|(id, _)| id) != Some(self.node.id()) {
                continue;
            }
            let tick = Command::Tick {
                offline_after: self.config.offline_after.as_millis() as i64,
                session_lifetime: self.config.session_lifetime.as_millis() as i64,
            };
            if let Err(e) = self.write(&tick).await {
                warn!(target: "telegraph::manager", error = %e, "sweep not recorded");
            }
        }
    }

    /// The user of a session: from this manager's state, or after a linearizable read when the
    /// session is not there yet (it may have just been opened through another manager).
    async fn session_user(&self, session: &str) -> Result<String, SessionError> {
        let hash = token_hash(session);
        let lookup = |a: &Accounts| a.session_user(&hash).map(str::to_string);
        if let Ok(Some(name)) = self.node.read(Consistency::Stale, lookup).await {
            return Ok(name);
        }
        match self.node.read(Consistency::Linearizable, lookup).await {
            Ok(Some(name)) => Ok(name),
            Ok(None) => Err(SessionError::Unauthorized(unauthorized(
                "unknown or expired session: log in again",
            ))),
            Err(e) => Err(SessionError::Unavailable(unavailable(e))),
        }
    }

    async fn hash_password(&self, password: String) -> Result<String, String> {
        let _permit = self.hashing.acquire().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn verify_password(&self, password: String, hash: Option<String>) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            // An unknown name costs the same as a wrong password.
            let phc = hash.unwrap_or_else(|| "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0vBbqT7cEqnWPe5X9BIkfcHHpYgD4yzX1hYs4l4t+1k".into());
            match PasswordHash::new(&phc) {
                Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
                Err(_) => false,
            }
        })
        .await
        .unwrap_or(false)
    }
}

enum SessionError {
    Unauthorized(api::Unauthorized),
    Unavailable(api::Unavailable),
}

macro_rules! session_error {
    ($e:expr) => {
        match $e {
            SessionError::Unauthorized(u) => u.into(),
            SessionError::Unavailable(u) => u.into(),
        }
    };
}

fn inbox_string(inbox: &Option<InboxPrx>) -> Result<String, api::InvalidArgument> {
    let s = inbox
        .as_ref()
        .map(|p| p.as_object().to_string())
        .unwrap_or_default();
    if s.len() > MAX_INBOX {
        return Err(invalid(format!(
            "an inbox proxy of {} bytes (at most {MAX_INBOX})",
            s.len()
        )));
    }
    Ok(s)
}

fn check_password(password: &str) -> Result<(), api::InvalidArgument> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(invalid(format!(
            "a password must have 1 to {MAX_PASSWORD} bytes"
        )));
    }
    Ok(())
}

struct ManagerI {
    shared: Arc<Shared>,
}

impl api::Manager for ManagerI {
    async fn register(
        &self,
        name: String,
        password: String,
        identity_key: Vec<u8>,
        exchange_key: Vec<u8>,
        _: &Current,
    ) -> Result<(), ops::RegisterError> {
        valid_name(&name).map_err(invalid)?;
        check_password(&password)?;
        if identity_key.len() != 32 || exchange_key.len() != 32 {
            return Err(invalid("the identity and exchange keys are 32 bytes each").into());
        }
        let hash = self
            .shared
            .hash_password(password)
            .await
            .map_err(|e| api::Unavailable { reason: e })?;
        let answer = self
            .shared
            .write(&Command::Register {
                name: name.clone(),
                hash,
                identity_key,
                exchange_key,
            })
            .await
            .map_err(unavailable)?;
        match answer.refused {
            None => {
                info!(target: "telegraph::manager", user = %name, "registered");
                Ok(())
            }
            Some(Refusal::UserExists) => Err(api::UserExists {
                reason: format!("the name {name} is taken"),
            }
            .into()),
            Some(r) => Err(api::Unavailable {
                reason: format!("{r:?}"),
            }
            .into()),
        }
    }

    async fn login(
        &self,
        name: String,
        password: String,
        inbox: Option<InboxPrx>,
        current: &Current,
    ) -> Result<String, ops::LoginError> {
        valid_name(&name).map_err(invalid)?;
        check_password(&password)?;
        let inbox = inbox_string(&inbox)?;
        if let Some(wait) = self
            .shared
            .throttle
            .lock()
            .wait(&name, self.shared.config.login_failures)
        {
            return Err(unauthorized(format!(
                "too many failed logins for {name}: try again in {} s",
                wait.as_secs().max(1)
            ))
            .into());
        }
        let hash = self
            .shared
            .node
            .read(Consistency::Linearizable, |a| {
                a.users.get(&name).map(|u| u.hash.clone())
            })
            .await
            .map_err(unavailable)?;
        let known = hash.is_some();
        if !self.shared.verify_password(password, hash).await || !known {
            self.shared.throttle.lock().failed(&name);
            let from = current
                .con
                .as_ref()
                .map(|c| c.remote_address().to_string())
                .unwrap_or_default();
            info!(target: "telegraph::manager", user = %name, from = %from, "failed login");
            return Err(unauthorized("wrong name or password").into());
        }
        let token = hex(&rand::random::<[u8; 32]>());
        let answer = self
            .shared
            .write(&Command::Login {
                name: name.clone(),
                token_hash: token_hash(&token),
                inbox,
            })
            .await
            .map_err(unavailable)?;
        match answer.refused {
            None => Ok(token),
            Some(_) => Err(unauthorized("wrong name or password").into()),
        }
    }

    async fn heartbeat(
        &self,
        session: String,
        inbox: Option<InboxPrx>,
        _: &Current,
    ) -> Result<(), ops::HeartbeatError> {
        let name = self
            .shared
            .session_user(&session)
            .await
            .map_err(|e| -> ops::HeartbeatError { session_error!(e) })?;
        let inbox = inbox_string(&inbox).map_err(|e| api::Unavailable { reason: e.reason })?;
        let current = self
            .shared
            .node
            .read(Consistency::Stale, |a| {
                a.users.get(&name).map(|u| u.inbox.clone())
            })
            .await
            .ok()
            .flatten();
        let changed = (current.as_deref() != Some(inbox.as_str())).then_some(inbox);
        let mut pending = self.shared.pending.lock();
        let entry = pending.entry(token_hash(&session)).or_insert(None);
        if changed.is_some() {
            *entry = changed;
        }
        Ok(())
    }

    async fn logout(&self, session: String, _: &Current) -> Result<(), ops::LogoutError> {
        let answer = self
            .shared
            .write(&Command::Logout {
                token_hash: token_hash(&session),
            })
            .await
            .map_err(unavailable)?;
        match answer.refused {
            None => Ok(()),
            Some(_) => Err(unauthorized("unknown or expired session").into()),
        }
    }

    async fn lookup(
        &self,
        session: String,
        name: String,
        _: &Current,
    ) -> Result<api::UserInfo, ops::LookupError> {
        self.shared
            .session_user(&session)
            .await
            .map_err(|e| -> ops::LookupError { session_error!(e) })?;
        let info = self
            .shared
            .node
            .read(Consistency::Linearizable, |a| a.info(&name))
            .await
            .map_err(unavailable)?;
        info.ok_or_else(|| {
            api::UnknownUser {
                reason: format!("no user is called {name}"),
                name,
            }
            .into()
        })
    }

    async fn users(
        &self,
        session: String,
        _: &Current,
    ) -> Result<Vec<api::UserInfo>, ops::UsersError> {
        self.shared
            .session_user(&session)
            .await
            .map_err(|e| -> ops::UsersError { session_error!(e) })?;
        self.shared
            .node
            .read(Consistency::Linearizable, |a| {
                a.users.keys().filter_map(|n| a.info(n)).collect()
            })
            .await
            .map_err(|e| unavailable(e).into())
    }
}
