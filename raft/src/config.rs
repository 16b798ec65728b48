//! A node's settings, read from Ice properties under a prefix (`Raft` by default; a service
//! may give its own, e.g. `Dispotify.Raft`). The node's object adapter is named after the
//! prefix, so `<prefix>.Endpoints` and `<prefix>.PublishedEndpoints` are Ice's adapter
//! properties. Every property is listed, with its default, in `docs/raft.md`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use floe::Properties;

use crate::RaftError;
use crate::types::NodeId;

/// The prefix used when a service gives none.
pub const DEFAULT_PREFIX: &str = "Raft";
/// Endpoints of the node's adapter when `<prefix>.Endpoints` is not set.
pub const DEFAULT_ENDPOINTS: &str = "tcp -h 127.0.0.1 -p 0";
/// Default data directory (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "raft-data";

/// Everything a node needs, taken from its properties.
#[derive(Debug, Clone)]
pub struct Config {
    /// All properties (Ice's included).
    pub properties: Properties,
    /// The property prefix, also the name of the node's object adapter.
    pub prefix: String,
    /// This node's id (`<prefix>.NodeId`, required).
    pub node_id: NodeId,
    /// Endpoints the node's adapter listens on (`<prefix>.Endpoints`).
    pub endpoints: String,
    /// Directory of the node's sled database (`<prefix>.DataDir`).
    pub data_dir: PathBuf,
    /// The initial members, by id (`<prefix>.Peer.<id>=<endpoints>`, this node included). A
    /// node listed here that starts on an empty disk forms the cluster with the others, unless
    /// one of them reports that the cluster already exists.
    pub peers: BTreeMap<NodeId, String>,
    /// A proxy (or endpoints) of any member to join through (`<prefix>.Join`), for a node that
    /// is not among the initial members.
    pub join: Option<String>,
    /// Where this node reaches other nodes when that is not where the membership says
    /// (`<prefix>.Route.<id>=<endpoints>`: a NAT, a port mapping, a fault-injecting proxy).
    pub routes: HashMap<NodeId, String>,
    /// Attributes published with this node in the membership (`<prefix>.Attribute.<name>`).
    pub attributes: BTreeMap<String, String>,
    /// Leader heartbeat interval (`<prefix>.HeartbeatInterval`, ms); also the timeout of an
    /// AppendEntries call.
    pub heartbeat_interval: Duration,
    /// Election timeout range (`<prefix>.ElectionTimeoutMin` / `Max`, ms).
    pub election_timeout: (Duration, Duration),
    /// How long connecting to a peer may take (`<prefix>.ConnectTimeout`, ms).
    pub connect_timeout: Duration,
    /// Pause before calling a peer again after it was unreachable (`<prefix>.Backoff`, ms).
    pub backoff: Duration,
    /// How long a forwarded write, a forwarded read check or a membership change may take
    /// (`<prefix>.RequestTimeout`, ms).
    pub request_timeout: Duration,
    /// Snapshot after this many applied entries (`<prefix>.SnapshotInterval`).
    pub snapshot_interval: u64,
    /// Entries kept in the log behind a snapshot (`<prefix>.LogsToKeep`).
    pub logs_to_keep: u64,
    /// Timeout of a snapshot chunk's transfer and installation (`<prefix>.SnapshotTimeout`, ms).
    pub snapshot_timeout: Duration,
    /// Bytes of snapshot per InstallSnapshot call (`<prefix>.SnapshotChunkSize`; at most half
    /// of `Ice.MessageSizeMax`).
    pub snapshot_chunk_size: usize,
    /// Entries per AppendEntries call at most (`<prefix>.MaxPayloadEntries`).
    pub max_payload_entries: u64,
    /// How long log time a client's deduplication record is kept after its last write
    /// (`<prefix>.ClientSessionLifetime`, ms).
    pub client_session_lifetime: Duration,
    /// Serve "linearizable" reads from local state without checking leadership
    /// (`<prefix>.UnsafeStaleReads=1`): a deliberately broken mode for testing the
    /// linearizability checker. Never set it in production.
    pub unsafe_stale_reads: bool,
}

fn config_error(key: &str, text: &str, what: &str) -> RaftError {
    RaftError::Config(format!("{key}={text}: expected {what}"))
}

impl Config {
    /// Reads and checks the settings in `properties` under `prefix`.
    pub fn from_properties(properties: Properties, prefix: &str) -> Result<Config, RaftError> {
        let key = |name: &str| format!("{prefix}.{name}");
        let text = |name: &str| properties.get_property(&key(name)).trim().to_string();
        let number = |name: &str, default: u64| -> Result<u64, RaftError> {
            let t = text(name);
            if t.is_empty() {
                return Ok(default);
            }
            t.parse::<u64>()
                .map_err(|_| config_error(&key(name), &t, "a whole number"))
        };
        let millis = |name: &str, default: u64| -> Result<Duration, RaftError> {
            let ms = number(name, default)?;
            if ms == 0 {
                return Err(config_error(
                    &key(name),
                    "0",
                    "a positive number of milliseconds",
                ));
            }
            Ok(Duration::from_millis(ms))
        };
        let id_text = text("NodeId");
        if id_text.is_empty() {
            return Err(RaftError::Config(format!(
                "{} is not set: every node needs an id",
                key("NodeId")
            )));
        }
        let node_id = id_text
            .parse::<u64>()
            .map_err(|_| config_error(&key("NodeId"), &id_text, "a node id (0 to 2^63-1)"))?;
        if node_id > i64::MAX as u64 {
            return Err(config_error(
                &key("NodeId"),
                &id_text,
                "a node id (0 to 2^63-1)",
            ));
        }
        let by_id = |sub: &str| -> Result<BTreeMap<NodeId, String>, RaftError> {
            let mut out = BTreeMap::new();
            let sub_prefix = key(&format!("{sub}."));
            for (k, v) in properties.get_properties_for_prefix(&sub_prefix) {
                let id_part = &k[sub_prefix.len()..];
                let id = id_part
                    .parse::<u64>()
                    .map_err(|_| config_error(&k, &v, &format!("a node id after {sub_prefix}")))?;
                if v.trim().is_empty() {
                    return Err(config_error(&k, &v, "endpoints"));
                }
                out.insert(id, v.trim().to_string());
            }
            Ok(out)
        };
        let peers = by_id("Peer")?;
        let routes = by_id("Route")?.into_iter().collect();
        let attr_prefix = key("Attribute.");
        let attributes = properties
            .get_properties_for_prefix(&attr_prefix)
            .into_iter()
            .map(|(k, v)| (k[attr_prefix.len()..].to_string(), v))
            .collect();
        let heartbeat_interval = millis("HeartbeatInterval", 100)?;
        let election_min = millis("ElectionTimeoutMin", 1000)?;
        let election_max = millis("ElectionTimeoutMax", election_min.as_millis() as u64 * 2)?;
        if election_min <= heartbeat_interval {
            return Err(RaftError::Config(format!(
                "{}={} must be longer than {}={}",
                key("ElectionTimeoutMin"),
                election_min.as_millis(),
                key("HeartbeatInterval"),
                heartbeat_interval.as_millis()
            )));
        }
        if election_max <= election_min {
            return Err(RaftError::Config(format!(
                "{} must be longer than {}",
                key("ElectionTimeoutMax"),
                key("ElectionTimeoutMin")
            )));
        }
        let message_size_max = message_size_max(&properties);
        let chunk_default = (message_size_max / 2).min(4 * 1024 * 1024) as u64;
        let snapshot_chunk_size = number("SnapshotChunkSize", chunk_default)? as usize;
        if snapshot_chunk_size == 0 || snapshot_chunk_size > message_size_max / 2 {
            return Err(config_error(
                &key("SnapshotChunkSize"),
                &text("SnapshotChunkSize"),
                &format!(
                    "1 to {} bytes (half of Ice.MessageSizeMax)",
                    message_size_max / 2
                ),
            ));
        }
        let join = Some(text("Join")).filter(|s| !s.is_empty());
        let data_dir = Some(text("DataDir"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        Ok(Config {
            prefix: prefix.to_string(),
            node_id,
            endpoints: Some(text("Endpoints"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_ENDPOINTS.into()),
            data_dir: PathBuf::from(data_dir),
            peers,
            join,
            routes,
            attributes,
            heartbeat_interval,
            election_timeout: (election_min, election_max),
            connect_timeout: millis("ConnectTimeout", 1000)?,
            backoff: millis("Backoff", 500)?,
            request_timeout: millis("RequestTimeout", 5000)?,
            snapshot_interval: number("SnapshotInterval", 5000)?.max(1),
            logs_to_keep: number("LogsToKeep", 1000)?,
            snapshot_timeout: millis("SnapshotTimeout", 5000)?,
            snapshot_chunk_size,
            max_payload_entries: number("MaxPayloadEntries", 300)?.max(1),
            client_session_lifetime: millis("ClientSessionLifetime", 3_600_000)?,
            unsafe_stale_reads: text("UnsafeStaleReads") == "1",
            properties,
        })
    }

    /// openraft's settings for this node.
    pub(crate) fn openraft(&self) -> Result<openraft::Config, RaftError> {
        let config = openraft::Config {
            cluster_name: self.prefix.clone(),
            heartbeat_interval: self.heartbeat_interval.as_millis() as u64,
            election_timeout_min: self.election_timeout.0.as_millis() as u64,
            election_timeout_max: self.election_timeout.1.as_millis() as u64,
            install_snapshot_timeout: self.snapshot_timeout.as_millis() as u64,
            max_payload_entries: self.max_payload_entries,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_interval),
            snapshot_max_chunk_size: self.snapshot_chunk_size as u64,
            max_in_snapshot_log_to_keep: self.logs_to_keep,
            replication_lag_threshold: self.snapshot_interval.saturating_add(self.logs_to_keep),
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| RaftError::Config(format!("{}: {e}", self.prefix)))
    }
}

/// `Ice.MessageSizeMax` in bytes (Ice's default, 1024 KiB, when unset; 0 means no limit, taken
/// here as 1 GiB).
pub(crate) fn message_size_max(properties: &Properties) -> usize {
    let kib = properties.get_property_as_int_with_default("Ice.MessageSizeMax", 1024);
    if kib <= 0 {
        1 << 30
    } else {
        (kib as usize) * 1024
    }
}
