//! The state of one instance (users, sessions, pending queries) and the rules of the spec.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use floe::endpoint::Endpoint;
use floe::{Error, Identity, ObjectAdapter, ObjectPrx};
use parking_lot::Mutex;
use rand::RngCore;
use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, warn};

use crate::auth::{ClusterKey, Refused};
use crate::config::Config;
use crate::limits::LoginThrottle;
use crate::slice::users_manager::{ManagerQueryResponsePrx, SessionExpired, SessionPrx};
use crate::store::{RECORD_VERSION, StoreError, UserRecord, UserStore};
use crate::subscription::{Member, Subscription};

/// Category of session identities.
pub const SESSION_CATEGORY: &str = "session";
/// Category of the callback objects of pending queries.
pub const RESPONSE_CATEGORY: &str = "response";
/// Category of the object subscribed to the query topic.
pub const QUERY_CATEGORY: &str = "query";

/// `n` random bytes from the operating system's generator, as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One open session.
#[derive(Debug, Clone)]
pub struct SessionEntry {
    /// The user's name.
    pub user: String,
    /// The id of the user's record when the session was opened.
    pub user_id: String,
    /// When the session stops being alive.
    pub expires: Instant,
}

impl SessionEntry {
    /// Whether the session is alive now.
    pub fn alive(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// What a session proxy is, as far as this instance can tell.
#[derive(Debug)]
pub enum Ownership {
    /// A session this instance created, reached through this instance's endpoints.
    Mine(SessionEntry),
    /// Cannot be a session of any instance: this instance's endpoints with an identity it never
    /// created, or one of its session identities behind other endpoints.
    Forged,
    /// Neither the identity nor the endpoints are this instance's: maybe another instance's.
    NotMine,
}

/// The kinds of query, and of the answer each one expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// `ManagerQuery::login`, answered by `sendSession`.
    Login,
    /// `ManagerQuery::checkUsername`, answered by `userExists`.
    CheckUsername,
    /// `ManagerQuery::removeUserBySession`, answered by `userRemoved`.
    RemoveUserBySession,
    /// `ManagerQuery::checkSession`, answered by `sessionVerified`.
    CheckSession,
}

impl QueryKind {
    /// The operation of `ManagerQuery` that carries this query.
    pub fn operation(self) -> &'static str {
        match self {
            QueryKind::Login => "login",
            QueryKind::CheckUsername => "checkUsername",
            QueryKind::RemoveUserBySession => "removeUserBySession",
            QueryKind::CheckSession => "checkSession",
        }
    }
}

/// A query to publish, with its parameters.
#[derive(Debug)]
pub enum Query {
    /// `ManagerQuery::login`.
    Login {
        /// The user's name.
        username: String,
        /// The password, in clear (sealed with the cluster key when there is one).
        password: String,
    },
    /// `ManagerQuery::checkUsername`.
    CheckUsername {
        /// The name to look for.
        username: String,
    },
    /// `ManagerQuery::removeUserBySession`.
    RemoveUserBySession {
        /// A live session of the user.
        session: SessionPrx,
    },
    /// `ManagerQuery::checkSession`.
    CheckSession {
        /// The session to verify.
        session: SessionPrx,
    },
}

impl Query {
    /// The kind of this query.
    pub fn kind(&self) -> QueryKind {
        match self {
            Query::Login { .. } => QueryKind::Login,
            Query::CheckUsername { .. } => QueryKind::CheckUsername,
            Query::RemoveUserBySession { .. } => QueryKind::RemoveUserBySession,
            Query::CheckSession { .. } => QueryKind::CheckSession,
        }
    }
}

/// An answer received through a callback object.
#[derive(Debug)]
pub enum Answer {
    /// `sendSession`.
    Session(Option<SessionPrx>),
    /// `userExists`.
    UserExists,
    /// `userRemoved`.
    UserRemoved,
    /// `sessionVerified`.
    SessionVerified,
}

impl Answer {
    /// The query kind this answer belongs to.
    pub fn kind(&self) -> QueryKind {
        match self {
            Answer::Session(_) => QueryKind::Login,
            Answer::UserExists => QueryKind::CheckUsername,
            Answer::UserRemoved => QueryKind::RemoveUserBySession,
            Answer::SessionVerified => QueryKind::CheckSession,
        }
    }
}

struct Pending {
    kind: QueryKind,
    tx: Option<oneshot::Sender<Answer>>,
}

/// Why an internal step failed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The user store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed or a blocking task died.
    #[error("password hashing: {0}")]
    Hash(String),
    /// The broker or another instance could not be reached.
    #[error("{0}")]
    Runtime(#[from] Error),
}

impl From<CoreError> for Error {
    fn from(e: CoreError) -> Error {
        match e {
            CoreError::Runtime(e) => e,
            other => Error::UnknownException(other.to_string()),
        }
    }
}

/// The shared state of one instance.
pub struct Core {
    /// The settings.
    pub config: Config,
    store: Arc<dyn UserStore>,
    adapter: ObjectAdapter,
    sessions: Mutex<HashMap<String, SessionEntry>>,
    creating: Mutex<HashSet<String>>,
    pending: Mutex<HashMap<String, Pending>>,
    subscription: OnceLock<Subscription>,
    hashing: Semaphore,
    /// The cluster key (`None` in the lab-compatible mode).
    pub key: Option<ClusterKey>,
    /// Failed logins per user name and client address.
    pub throttle: LoginThrottle,
    /// Queries and answers refused by the cluster key.
    refusals: AtomicU64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("adapter", &self.adapter.name())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core serving on `adapter` with users in `store`.
    pub fn new(config: Config, store: Arc<dyn UserStore>, adapter: ObjectAdapter) -> Core {
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let key = config
            .cluster_key
            .as_ref()
            .map(|k| ClusterKey::new(k, &config.topic, config.signature_max_age));
        let throttle = LoginThrottle::new(
            config.login_window,
            config.login_attempts,
            config.login_attempts_per_address,
        );
        Core {
            key,
            throttle,
            config,
            store,
            adapter,
            sessions: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashMap::new()),
            subscription: OnceLock::new(),
            refusals: AtomicU64::new(0),
            hashing: Semaphore::new(parallel * 2),
        }
    }

    /// Sets the subscription queries are published through (once the topic is known).
    pub fn set_subscription(&self, subscription: Subscription) {
        let _ = self.subscription.set(subscription);
    }

    fn subscription(&self) -> Result<&Subscription, Error> {
        self.subscription
            .get()
            .ok_or_else(|| Error::IllegalArgument("the query topic is not set up".into()))
    }

    /// The topic's subscribers now, after checking this instance's own subscription; `Err`
    /// with the reason to give a caller when a subscriber seen lately is missing (it may not
    /// hear a query published now).
    pub async fn cluster_members(&self) -> Result<Result<HashSet<Member>, String>, Error> {
        let subscription = self.subscription()?;
        let present = subscription.members().await?;
        let missing = subscription.missing(&present);
        if missing.is_empty() {
            return Ok(Ok(present));
        }
        Ok(Err(format!(
            "the cluster is incomplete: {} subscriber(s) of the query topic seen in the last {} \
             ms are missing (unsubscribed or restarting); try again later",
            missing.len(),
            self.config.member_grace().as_millis()
        )))
    }

    /// Checks the subscription and records the members (the periodic check).
    pub async fn check_subscription(&self) -> Result<(), Error> {
        self.subscription()?.members().await.map(drop)
    }

    /// Unsubscribes from the query topic.
    pub async fn unsubscribe(&self) -> Result<(), Error> {
        self.subscription()?.unsubscribe().await
    }

    /// Checks a query received as `current` with parameters `fields` (proxies as strings): in
    /// the lab-compatible mode every query passes (`Ok(None)`); with a cluster key it must be
    /// signed, fresh and new, and its nonce is returned.
    pub fn authenticate_query(
        &self,
        current: &floe::Current,
        fields: &[&str],
    ) -> Result<Option<String>, Refused> {
        match &self.key {
            None => Ok(None),
            Some(key) => key
                .verify(
                    &format!("query:{}", current.operation),
                    &current.ctx,
                    fields,
                )
                .map(|n| Some(n.to_string())),
        }
    }

    /// Counts a query or answer refused by the cluster key, logging the 1st, 2nd, 4th...
    /// refusal (an outsider's flood must not flood the log).
    pub fn refused(&self, operation: &str, why: &Refused) {
        let n = self.refusals.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            warn!(target: "usersmanager::query", op = %crate::limits::Escaped(operation), refused = n, "refused: {why}");
        } else {
            debug!(target: "usersmanager::query", op = %crate::limits::Escaped(operation), "refused: {why}");
        }
    }

    /// Checks an answer received as `current` (see [`Core::authenticate_query`]); `extra` is
    /// the session of a `sendSession`.
    pub fn authenticate_answer(
        &self,
        current: &floe::Current,
        extra: Option<&str>,
    ) -> Result<(), Refused> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let mut fields = vec![current.id.name.as_str()];
        fields.extend(extra);
        key.verify(
            &format!("answer:{}", current.operation),
            &current.ctx,
            &fields,
        )
        .map(drop)
    }

    /// `cb` ready to carry the answer `operation` (with `extra`, the session of a
    /// `sendSession`): signed when there is a cluster key.
    pub fn answer_through(
        &self,
        cb: &ManagerQueryResponsePrx,
        operation: &str,
        extra: Option<&str>,
    ) -> ManagerQueryResponsePrx {
        let Some(key) = &self.key else {
            return cb.clone();
        };
        let name = cb.ice_get_identity().name.clone();
        let mut fields = vec![name.as_str()];
        fields.extend(extra);
        let ctx = key.sign(
            &format!("answer:{operation}"),
            &ClusterKey::nonce(),
            &fields,
        );
        ManagerQueryResponsePrx::unchecked_cast(cb.ice_context(ctx))
    }

    // ---- users --------------------------------------------------------------------------

    /// The stored record of `name`.
    pub fn user(&self, name: &str) -> Result<Option<UserRecord>, CoreError> {
        Ok(self.store.get(name)?)
    }

    /// Whether `name` is stored here or being created here.
    pub fn knows_name(&self, name: &str) -> Result<bool, CoreError> {
        Ok(self.creating.lock().contains(name) || self.store.get(name)?.is_some())
    }

    /// Checks `password` against the stored user `name`: `Some(record)` when they match.
    pub async fn check_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<UserRecord>, CoreError> {
        match self.user(name)? {
            Some(record) if self.password_matches(&record, password).await? => Ok(Some(record)),
            _ => Ok(None),
        }
    }

    /// Whether `password` is the password of `record`.
    pub async fn password_matches(
        &self,
        record: &UserRecord,
        password: &str,
    ) -> Result<bool, CoreError> {
        let phc = record.password.clone();
        let password = password.to_string();
        self.blocking(move || {
            let parsed = PasswordHash::new(&phc).map_err(|e| e.to_string())?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
    }

    /// Hashes a password with argon2id and a fresh 128-bit salt.
    pub async fn hash_password(&self, password: String) -> Result<String, CoreError> {
        self.blocking(move || {
            let mut salt = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut salt);
            let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, CoreError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| CoreError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| CoreError::Hash(e.to_string()))?
            .map_err(CoreError::Hash)
    }

    /// Marks `name` as being created here; false when it is stored or already being created.
    pub fn begin_creation(&self, name: &str) -> Result<bool, CoreError> {
        let mut creating = self.creating.lock();
        if creating.contains(name) || self.store.get(name)?.is_some() {
            return Ok(false);
        }
        creating.insert(name.to_string());
        Ok(true)
    }

    /// Ends the creation of `name` started by [`Core::begin_creation`].
    pub fn end_creation(&self, name: &str) {
        self.creating.lock().remove(name);
    }

    /// Stores a new user durably; false when the name was taken meanwhile.
    pub async fn store_user(
        &self,
        name: &str,
        phc: String,
    ) -> Result<Option<UserRecord>, CoreError> {
        let record = UserRecord {
            version: RECORD_VERSION,
            id: random_hex(8),
            password: phc,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        if !self.store.insert_new(name, &record)? {
            return Ok(None);
        }
        self.flush().await?;
        Ok(Some(record))
    }

    /// Removes the user `name` whose record has id `id`, durably.
    pub async fn remove_user(&self, name: &str, id: &str) -> Result<bool, CoreError> {
        let removed = self.store.remove(name, id)?;
        if removed {
            self.flush().await?;
        }
        Ok(removed)
    }

    async fn flush(&self) -> Result<(), CoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| CoreError::Hash(e.to_string()))??;
        Ok(())
    }

    // ---- sessions -----------------------------------------------------------------------

    /// Opens a session for `record` and returns its proxy.
    pub fn open_session(&self, name: &str, record: &UserRecord) -> SessionPrx {
        let id = random_hex(32);
        self.sessions.lock().insert(
            id.clone(),
            SessionEntry {
                user: name.to_string(),
                user_id: record.id.clone(),
                expires: Instant::now() + self.config.session_lifetime,
            },
        );
        SessionPrx::unchecked_cast(
            self.adapter
                .create_proxy(Identity::new(id, SESSION_CATEGORY)),
        )
    }

    /// The session with identity name `id`.
    pub fn session(&self, id: &str) -> Option<SessionEntry> {
        self.sessions.lock().get(id).cloned()
    }

    /// Extends session `id` if it is alive: `Ok(entry)`, or `Err(SessionExpired)` when it had
    /// expired.
    pub fn extend_session(&self, id: &str) -> Option<Result<SessionEntry, SessionExpired>> {
        let mut sessions = self.sessions.lock();
        let entry = sessions.get_mut(id)?;
        if !entry.alive() {
            return Some(Err(SessionExpired {}));
        }
        entry.expires = Instant::now() + self.config.session_lifetime;
        Some(Ok(entry.clone()))
    }

    /// Forgets sessions expired for longer than the retention period.
    pub fn sweep_sessions(&self) -> usize {
        let now = Instant::now();
        let retention = self.config.session_retention;
        let mut sessions = self.sessions.lock();
        let before = sessions.len();
        sessions.retain(|_, e| e.expires + retention > now);
        before - sessions.len()
    }

    /// Whether every endpoint of `prx` is one of this instance's published endpoints.
    pub fn has_my_endpoints(&self, prx: &ObjectPrx) -> bool {
        let mine = self.adapter.published_endpoints();
        let endpoints = prx.ice_get_endpoints();
        !endpoints.is_empty()
            && prx.ice_get_adapter_id().is_empty()
            && endpoints
                .iter()
                .all(|e| mine.iter().any(|m| same_endpoint(e, m)))
    }

    /// What `prx` is to this instance (see [`Ownership`]).
    pub fn ownership(&self, prx: &ObjectPrx) -> Ownership {
        let id = prx.ice_get_identity();
        let entry = (id.category == SESSION_CATEGORY)
            .then(|| self.session(&id.name))
            .flatten();
        let endpoints = self.has_my_endpoints(prx) && prx.ice_get_facet().is_empty();
        match (entry, endpoints) {
            (Some(e), true) => Ownership::Mine(e),
            (Some(_), false) | (None, true) => Ownership::Forged,
            (None, false) => Ownership::NotMine,
        }
    }

    // ---- queries ------------------------------------------------------------------------

    /// Whether `cb` is the callback of one of this instance's own pending queries.
    pub fn is_own_callback(&self, cb: &ObjectPrx) -> bool {
        let id = cb.ice_get_identity();
        id.category == RESPONSE_CATEGORY && self.pending.lock().contains_key(&id.name)
    }

    /// Delivers an answer to the pending query `id`; false when there is none (late or unknown),
    /// or it expects another kind of answer.
    pub fn deliver(&self, id: &str, answer: Answer) -> bool {
        let mut pending = self.pending.lock();
        match pending.get_mut(id) {
            Some(p) if p.kind == answer.kind() => {
                if let Some(tx) = p.tx.take() {
                    let _ = tx.send(answer);
                }
                true
            }
            _ => false,
        }
    }

    /// Publishes `query` with a fresh callback object (signed, its password sealed, when there
    /// is a cluster key) and waits for the first answer, at most the configured query timeout.
    /// `Ok(None)` means nobody answered in time.
    pub async fn ask(&self, query: Query) -> Result<Option<Answer>, Error> {
        let publisher = self.subscription()?.publisher();
        let kind = query.kind();
        let id = random_hex(16);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .insert(id.clone(), Pending { kind, tx: Some(tx) });
        let _guard = PendingGuard {
            core: self,
            id: id.clone(),
        };
        let cb = ManagerQueryResponsePrx::unchecked_cast(
            self.adapter
                .create_proxy(Identity::new(id.clone(), RESPONSE_CATEGORY)),
        );
        let cb_text = cb.to_string();
        let nonce = ClusterKey::nonce();
        let (publisher, query) = match (&self.key, query) {
            (None, query) => (publisher, query),
            (Some(key), query) => {
                let query = match query {
                    Query::Login { username, password } => Query::Login {
                        password: key.seal(&nonce, &password),
                        username,
                    },
                    other => other,
                };
                let session_text;
                let fields: Vec<&str> = match &query {
                    Query::Login { username, password } => vec![username, password, &cb_text],
                    Query::CheckUsername { username } => vec![username, &cb_text],
                    Query::RemoveUserBySession { session } | Query::CheckSession { session } => {
                        session_text = session.to_string();
                        vec![&session_text, &cb_text]
                    }
                };
                let ctx = key.sign(&format!("query:{}", kind.operation()), &nonce, &fields);
                (
                    crate::slice::users_manager::ManagerQueryPrx::unchecked_cast(
                        publisher.ice_context(ctx),
                    ),
                    query,
                )
            }
        };
        match query {
            Query::Login { username, password } => {
                publisher.login(&username, &password, Some(cb)).await?
            }
            Query::CheckUsername { username } => {
                publisher.check_username(&username, Some(cb)).await?
            }
            Query::RemoveUserBySession { session } => {
                publisher
                    .remove_user_by_session(Some(session), Some(cb))
                    .await?
            }
            Query::CheckSession { session } => {
                publisher.check_session(Some(session), Some(cb)).await?
            }
        }
        match tokio::time::timeout(self.config.query_timeout, rx).await {
            Ok(Ok(answer)) => Ok(Some(answer)),
            _ => Ok(None),
        }
    }
}

struct PendingGuard<'a> {
    core: &'a Core,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.core.pending.lock().remove(&self.id);
    }
}

/// Whether two endpoints reach the same place (transport, host and port; timeouts and
/// compression do not matter).
pub fn same_endpoint(a: &Endpoint, b: &Endpoint) -> bool {
    match (a, b) {
        (Endpoint::Ip(a), Endpoint::Ip(b)) => {
            a.transport == b.transport
                && a.port == b.port
                && a.host.eq_ignore_ascii_case(&b.host)
                && a.resource == b.resource
        }
        _ => false,
    }
}
