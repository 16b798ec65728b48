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
        Ok(Config {
            endpoints,
            topic_manager,
            topic,
            data_dir,
            session_lifetime: millis(SESSION_LIFETIME_PROPERTY, DEFAULT_SESSION_LIFETIME_MS)?,
            query_timeout: millis(QUERY_TIMEOUT_PROPERTY, DEFAULT_QUERY_TIMEOUT_MS)?,
            session_retention: millis(SESSION_RETENTION_PROPERTY, DEFAULT_SESSION_RETENTION_MS)?,
            properties,
        })
    }
}
