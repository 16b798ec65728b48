//! The service's settings, read from Ice properties.

use std::path::PathBuf;
use std::time::Duration;

use floe::Properties;

use crate::ServiceError;

/// Name of the object adapter that holds the Manager, the sessions and the query objects.
pub const ADAPTER_NAME: &str = "usersmanageradapter";
/// Endpoints of the adapter when `usersmanageradapter.Endpoints` is not set.
pub const DEFAULT_ENDPOINTS: &str = "tcp -h 127.0.0.1 -p 0";
/// Identity of the Manager object.
pub const MANAGER_IDENTITY: &str = "manager";
/// Property naming the broker's topic manager.
pub const TOPIC_MANAGER_PROPERTY: &str = "IceStorm.TopicManager.Proxy";
/// Property naming the topic the instances exchange queries on.
pub const TOPIC_PROPERTY: &str = "UsersManager.Topic";
/// Default topic name.
pub const DEFAULT_TOPIC: &str = "ManagerQuery";
/// Property naming the directory users are stored in.
pub const DATA_DIR_PROPERTY: &str = "UsersManager.DataDir";
/// Default data directory (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "usersmanager-data";
/// Property: session lifetime in milliseconds.
pub const SESSION_LIFETIME_PROPERTY: &str = "UsersManager.SessionLifetime";
/// The spec's session lifetime: two minutes.
pub const DEFAULT_SESSION_LIFETIME_MS: i32 = 120_000;
/// Property: how long a query waits for answers, in milliseconds.
pub const QUERY_TIMEOUT_PROPERTY: &str = "UsersManager.QueryTimeout";
/// The spec's wait for answers: five seconds.
pub const DEFAULT_QUERY_TIMEOUT_MS: i32 = 5_000;
/// Property: how long an expired session stays answerable (`isAlive` false, `refresh`
/// SessionExpired) before it is forgotten, in milliseconds.
pub const SESSION_RETENTION_PROPERTY: &str = "UsersManager.SessionRetention";
/// Default retention of expired sessions: ten minutes.
pub const DEFAULT_SESSION_RETENTION_MS: i32 = 600_000;

/// Property: the cluster secret; with it, queries and answers are signed and checked.
pub const CLUSTER_KEY_PROPERTY: &str = "UsersManager.ClusterKey";
/// Property: a file whose contents (without surrounding blanks) are the cluster secret.
pub const CLUSTER_KEY_FILE_PROPERTY: &str = "UsersManager.ClusterKeyFile";
/// Shortest cluster secret accepted, in bytes.
pub const CLUSTER_KEY_MIN_BYTES: usize = 16;
/// Property: how far a signed message's timestamp may be from the receiver's clock, ms.
pub const SIGNATURE_MAX_AGE_PROPERTY: &str = "UsersManager.SignatureMaxAge";
/// Default of [`SIGNATURE_MAX_AGE_PROPERTY`]: thirty seconds.
pub const DEFAULT_SIGNATURE_MAX_AGE_MS: i32 = 30_000;
/// Property: how often an instance checks its subscription and the topic's subscribers, ms.
pub const SUBSCRIPTION_CHECK_PROPERTY: &str = "UsersManager.SubscriptionCheck";
/// Default of [`SUBSCRIPTION_CHECK_PROPERTY`]: five seconds.
pub const DEFAULT_SUBSCRIPTION_CHECK_MS: i32 = 5_000;
/// Property: failed logins of one user name allowed within the login window.
pub const LOGIN_ATTEMPTS_PROPERTY: &str = "UsersManager.LoginAttempts";
/// Default of [`LOGIN_ATTEMPTS_PROPERTY`].
pub const DEFAULT_LOGIN_ATTEMPTS: i32 = 5;
/// Property: failed logins from one client address allowed within the login window.
pub const LOGIN_ATTEMPTS_PER_ADDRESS_PROPERTY: &str = "UsersManager.LoginAttemptsPerAddress";
/// Default of [`LOGIN_ATTEMPTS_PER_ADDRESS_PROPERTY`].
pub const DEFAULT_LOGIN_ATTEMPTS_PER_ADDRESS: i32 = 20;
/// Property: the window failed logins are counted in, ms.
pub const LOGIN_WINDOW_PROPERTY: &str = "UsersManager.LoginWindow";
/// Default of [`LOGIN_WINDOW_PROPERTY`]: one minute.
pub const DEFAULT_LOGIN_WINDOW_MS: i32 = 60_000;

/// The data directory `properties` name (`UsersManager.DataDir`, or its default).
pub fn data_dir(properties: &Properties) -> PathBuf {
    PathBuf::from(properties.get_property_with_default(DATA_DIR_PROPERTY, DEFAULT_DATA_DIR))
}

/// Everything an instance needs, taken from its properties.
#[derive(Debug, Clone)]
pub struct Config {
    /// All properties (Ice's included); the communicator is built from them.
    pub properties: Properties,
    /// Endpoints of `usersmanageradapter`.
    pub endpoints: String,
    /// The broker's topic manager, as a proxy string; `None` runs an embedded broker.
    pub topic_manager: Option<String>,
    /// Topic the instances exchange queries on.
    pub topic: String,
    /// Directory of the user database.
    pub data_dir: PathBuf,
    /// Validity of a session after creation or refresh.
    pub session_lifetime: Duration,
    /// How long a query waits for an answer.
    pub query_timeout: Duration,
    /// How long an expired session is kept before it is forgotten.
    pub session_retention: Duration,
    /// The cluster secret (`None`: the lab-compatible mode, nothing signed).
    pub cluster_key: Option<Vec<u8>>,
    /// How far a signed message's timestamp may be from this instance's clock.
    pub signature_max_age: Duration,
    /// How often the subscription and the topic's subscribers are checked.
    pub subscription_check: Duration,
    /// Failed logins per user name within `login_window`.
    pub login_attempts: usize,
    /// Failed logins per client address within `login_window`.
    pub login_attempts_per_address: usize,
    /// The window failed logins are counted in.
    pub login_window: Duration,
}

impl Config {
    /// How long a member of the cluster may be missing from the topic's subscribers before it
    /// is taken as gone: three subscription checks, time enough for it to subscribe again.
    pub fn member_grace(&self) -> Duration {
        self.subscription_check * 3
    }
}

/// Reads the cluster secret from `UsersManager.ClusterKey` or `UsersManager.ClusterKeyFile`.
fn cluster_key(properties: &Properties) -> Result<Option<Vec<u8>>, ServiceError> {
    let inline = properties.get_property(CLUSTER_KEY_PROPERTY);
    let file = properties.get_property(CLUSTER_KEY_FILE_PROPERTY);
    let (key, from) = match (inline.is_empty(), file.trim().is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {
            return Err(ServiceError::Config(format!(
                "set {CLUSTER_KEY_PROPERTY} or {CLUSTER_KEY_FILE_PROPERTY}, not both"
            )));
        }
        (false, true) => (inline.into_bytes(), CLUSTER_KEY_PROPERTY.to_string()),
        (true, false) => {
            let text = std::fs::read(file.trim()).map_err(|e| {
                ServiceError::Config(format!("{CLUSTER_KEY_FILE_PROPERTY}={file}: {e}"))
            })?;
            let trimmed = String::from_utf8_lossy(&text).trim().as_bytes().to_vec();
            (trimmed, format!("{CLUSTER_KEY_FILE_PROPERTY}={file}"))
        }
    };
    if key.len() < CLUSTER_KEY_MIN_BYTES {
        return Err(ServiceError::Config(format!(
            "{from}: the cluster key is {} bytes, at least {CLUSTER_KEY_MIN_BYTES} are required",
            key.len()
        )));
    }
    Ok(Some(key))
}

impl Config {
    /// Reads and checks the settings in `properties`.
    pub fn from_properties(properties: Properties) -> Result<Config, ServiceError> {
        let endpoints = properties
            .get_property_with_default(&format!("{ADAPTER_NAME}.Endpoints"), DEFAULT_ENDPOINTS);
        if endpoints.trim().is_empty() {
            return Err(ServiceError::Config(format!(
                "{ADAPTER_NAME}.Endpoints is empty: the Manager needs an endpoint clients can reach"
            )));
        }
        let topic_manager =
            Some(properties.get_property(TOPIC_MANAGER_PROPERTY)).filter(|s| !s.trim().is_empty());
        let topic = properties.get_property_with_default(TOPIC_PROPERTY, DEFAULT_TOPIC);
        if topic.is_empty() {
            return Err(ServiceError::Config(format!("{TOPIC_PROPERTY} is empty")));
        }
        let data_dir = data_dir(&properties);
        let millis = |key: &str, default: i32| -> Result<Duration, ServiceError> {
            let text = properties.get_property(key);
            if text.trim().is_empty() {
                return Ok(Duration::from_millis(default as u64));
            }
            match text.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                _ => Err(ServiceError::Config(format!(
                    "{key}={text}: expected a positive number of milliseconds"
                ))),
            }
        };
        let count = |key: &str, default: i32| -> Result<usize, ServiceError> {
            let text = properties.get_property(key);
            if text.trim().is_empty() {
                return Ok(default as usize);
            }
            match text.trim().parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(ServiceError::Config(format!(
                    "{key}={text}: expected a positive number"
                ))),
            }
        };
        Ok(Config {
            endpoints,
            topic_manager,
            topic,
            data_dir,
            session_lifetime: millis(SESSION_LIFETIME_PROPERTY, DEFAULT_SESSION_LIFETIME_MS)?,
            query_timeout: millis(QUERY_TIMEOUT_PROPERTY, DEFAULT_QUERY_TIMEOUT_MS)?,
            session_retention: millis(SESSION_RETENTION_PROPERTY, DEFAULT_SESSION_RETENTION_MS)?,
            cluster_key: cluster_key(&properties)?,
            signature_max_age: millis(SIGNATURE_MAX_AGE_PROPERTY, DEFAULT_SIGNATURE_MAX_AGE_MS)?,
            subscription_check: millis(SUBSCRIPTION_CHECK_PROPERTY, DEFAULT_SUBSCRIPTION_CHECK_MS)?,
            login_attempts: count(LOGIN_ATTEMPTS_PROPERTY, DEFAULT_LOGIN_ATTEMPTS)?,
            login_attempts_per_address: count(
                LOGIN_ATTEMPTS_PER_ADDRESS_PROPERTY,
                DEFAULT_LOGIN_ATTEMPTS_PER_ADDRESS,
            )?,
            login_window: millis(LOGIN_WINDOW_PROPERTY, DEFAULT_LOGIN_WINDOW_MS)?,
            properties,
        })
    }
}
