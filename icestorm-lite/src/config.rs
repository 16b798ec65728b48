//! The broker's configuration, read from the same properties as ZeroC's IceStorm service.
//!
//! | property | default | meaning |
//! | --- | --- | --- |
//! | `IceStorm.InstanceName` | `IceStorm` | category of every identity (`IceStorm/TopicManager`, `IceStorm/topic.NAME`, ...) |
//! | `IceStorm.TopicManager.Endpoints` | `tcp -h 127.0.0.1 -p 0` | endpoints of the topic manager and topic objects |
//! | `IceStorm.Publish.Endpoints` | `tcp -h 127.0.0.1 -p 0` | endpoints of the publisher and link objects |
//! | `IceStorm.Transient` | `0` | `1`: keep nothing on disk |
//! | `IceStorm.LMDB.Path` | none (library), `IceStorm` (binary) | directory of the database (sled, in `DIR/icestorm-lite.sled`) |
//! | `IceStorm.Send.Timeout` | `60000` | ms; endpoint timeout applied to subscriber proxies |
//! | `IceStorm.Discard.Interval` | `60` | seconds (fractions accepted) a failing subscriber stays offline, its events discarded |
//! | `IceStorm.Flush.Timeout` | `1000` | ms between flushes of batch-oneway subscribers |
//! | `IceStorm.Send.QueueSizeMax` | `65536` | events queued per subscriber at most; `-1` = no limit |
//! | `IceStorm.Send.QueueSizeMaxPolicy` | `RemoveSubscriber` | or `DropEvents` (drop the oldest queued event) |
//! | `IceStorm.Send.QueueMemoryMax` | `65536` | KiB of events queued per subscriber at most (64 MiB); `-1` = no limit. A full queue follows `QueueSizeMaxPolicy` (icestorm-lite's own) |
//! | `IceStorm.MemoryMax` | `262144` | KiB of events the whole broker holds at most (256 MiB) before subscribers with a backlog count as full; `-1` = no limit (icestorm-lite's own) |
//! | `IceStorm.TopicsMax` | `10000` | topics at most; `create` also refuses a topic that would make `retrieveAll`'s answer larger than `Ice.MessageSizeMax` (icestorm-lite's own) |
//! | `IceStorm.CheckClassGraphs` | `0` | `1`: refuse events holding a chain of sliced class instances deeper than `Ice.ClassGraphDepthMax` (default 100), which ZeroC 3.7 subscribers cannot decode without crashing (icestorm-lite's own; on in usersmanager's brokers) |
//! | `IceStorm.Trace.TopicManager`, `.Topic`, `.Subscriber` | `0` | tracing levels (targets `icestorm::topic_manager`, `icestorm::topic`, `icestorm::subscriber`) |
//! | `IceStorm.Threads` | `1` | threads the `icestorm-lite` binary runs on (icestorm-lite's own; an embedded broker runs on its host's runtime). One thread forwards several hundred thousand events a second and saves the hand-overs between threads that cost more than the forwarding itself (see `bench/RESULTS.md`, "IceStorm") |
//!
//! `Ice.MessageSizeMax` (KiB, default 1024) is also the size of the largest request sent to a
//! subscriber or a link: an event that would grow past it once addressed to a subscriber (a
//! longer identity, a facet) is dropped for that subscriber and counted, the subscriber kept.
//!
//! Adapter properties (`IceStorm.TopicManager.PublishedEndpoints`, `.ThreadPool.*`, ...) and every
//! `Ice.*` property apply as usual, since the adapters are named `IceStorm.TopicManager` and
//! `IceStorm.Publish` as in ZeroC's service.

use std::path::PathBuf;
use std::time::Duration;

use floe::Properties;

use crate::BrokerError;

/// The endpoints used when none are configured: a port of the loopback interface chosen by the
/// system.
pub const DEFAULT_ENDPOINTS: &str = "tcp -h 127.0.0.1 -p 0";

/// Longest topic name accepted by `TopicManager::create`, in bytes.
pub const MAX_TOPIC_NAME_BYTES: usize = 512;

/// Default of `IceStorm.Send.QueueMemoryMax`, in KiB (64 MiB).
pub const DEFAULT_QUEUE_MEMORY_MAX_KIB: i32 = 64 * 1024;
/// Default of `IceStorm.MemoryMax`, in KiB (256 MiB).
pub const DEFAULT_MEMORY_MAX_KIB: i32 = 256 * 1024;
/// Default of `IceStorm.TopicsMax`.
pub const DEFAULT_TOPICS_MAX: i32 = 10_000;

/// What to do when a subscriber's queue is full (`IceStorm.Send.QueueSizeMaxPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFullPolicy {
    /// Remove the subscriber, as after a hard delivery failure (ZeroC's default).
    RemoveSubscriber,
    /// Drop the oldest queued event to make room.
    DropEvents,
}

/// Tracing levels (`IceStorm.Trace.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceLevels {
    /// `IceStorm.Trace.TopicManager`.
    pub topic_manager: i32,
    /// `IceStorm.Trace.Topic`.
    pub topic: i32,
    /// `IceStorm.Trace.Subscriber`.
    pub subscriber: i32,
}

/// The broker's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Category of the broker's identities.
    pub instance_name: String,
    /// Where topics, subscribers and links are kept; `None` keeps them in memory only.
    pub data_dir: Option<PathBuf>,
    /// Endpoint timeout given to subscriber proxies, ms.
    pub send_timeout_ms: i32,
    /// How long a failing subscriber stays offline.
    pub discard_interval: Duration,
    /// Interval between flushes of batch subscribers.
    pub flush_interval: Duration,
    /// Most events queued per subscriber (`None`: no limit).
    pub queue_size_max: Option<usize>,
    /// What a full queue does.
    pub queue_full_policy: QueueFullPolicy,
    /// Most bytes of events queued per subscriber (`None`: no limit).
    pub queue_memory_max: Option<usize>,
    /// Most bytes of events the broker holds before subscribers with a backlog count as full
    /// (`None`: no limit).
    pub memory_max: Option<usize>,
    /// Most topics (`None`: no limit).
    pub topics_max: Option<usize>,
    /// Largest message sent or received, in bytes (`Ice.MessageSizeMax`).
    pub message_size_max: usize,
    /// With `IceStorm.CheckClassGraphs=1`: the deepest chain of sliced class instances an event
    /// may hold (`Ice.ClassGraphDepthMax`).
    pub class_graph_depth_max: Option<usize>,
    /// Tracing levels.
    pub trace: TraceLevels,
}

/// Reads a KiB property where `-1` (or any value below 1) means no limit, as bytes.
fn kib_limit(props: &Properties, key: &str, default_kib: i32) -> Option<usize> {
    let kib = props.get_property_as_int_with_default(key, default_kib);
    (kib > 0).then(|| kib as usize * 1024)
}

impl Config {
    /// Reads the settings from `props` (the `IceStorm.*` properties). `default_data_dir` is the
    /// directory used when `IceStorm.LMDB.Path` is not set and `IceStorm.Transient` is not 1.
    pub fn from_properties(
        props: &Properties,
        default_data_dir: Option<PathBuf>,
    ) -> Result<Config, BrokerError> {
        let transient = props.get_property_as_int_with_default("IceStorm.Transient", 0) > 0;
        let path = props.get_property("IceStorm.LMDB.Path");
        let data_dir = if transient {
            None
        } else if !path.is_empty() {
            Some(PathBuf::from(path))
        } else {
            default_data_dir
        };
        let discard = props.get_property("IceStorm.Discard.Interval");
        let discard_interval = if discard.trim().is_empty() {
            Duration::from_secs(60)
        } else {
            let secs: f64 = discard.trim().parse().map_err(|_| {
                BrokerError::Config(format!(
                    "IceStorm.Discard.Interval `{discard}` is not a number of seconds"
                ))
            })?;
            if !(0.0..=1e9).contains(&secs) {
                return Err(BrokerError::Config(format!(
                    "IceStorm.Discard.Interval `{discard}` is out of range"
                )));
            }
            Duration::from_secs_f64(secs)
        };
        let flush = props.get_property_as_int_with_default("IceStorm.Flush.Timeout", 1000);
        let queue_max = props.get_property_as_int_with_default("IceStorm.Send.QueueSizeMax", 65536);
        let policy = match props
            .get_property("IceStorm.Send.QueueSizeMaxPolicy")
            .as_str()
        {
            "" | "RemoveSubscriber" => QueueFullPolicy::RemoveSubscriber,
            "DropEvents" => QueueFullPolicy::DropEvents,
            other => {
                return Err(BrokerError::Config(format!(
                    "IceStorm.Send.QueueSizeMaxPolicy `{other}` is neither RemoveSubscriber nor DropEvents"
                )));
            }
        };
        let instance_name = props.get_property_with_default("IceStorm.InstanceName", "IceStorm");
        if instance_name.is_empty() {
            return Err(BrokerError::Config(
                "IceStorm.InstanceName must not be empty".into(),
            ));
        }
        let topics_max =
            props.get_property_as_int_with_default("IceStorm.TopicsMax", DEFAULT_TOPICS_MAX);
        let depth_max = props.get_property_as_int_with_default(
            "Ice.ClassGraphDepthMax",
            floe::encoding::CLASS_GRAPH_DEPTH_MAX as i32,
        );
        Ok(Config {
            instance_name,
            data_dir,
            send_timeout_ms: props
                .get_property_as_int_with_default("IceStorm.Send.Timeout", 60_000),
            discard_interval,
            flush_interval: Duration::from_millis(flush.max(1) as u64),
            queue_size_max: (queue_max > 0).then_some(queue_max as usize),
            queue_full_policy: policy,
            queue_memory_max: kib_limit(
                props,
                "IceStorm.Send.QueueMemoryMax",
                DEFAULT_QUEUE_MEMORY_MAX_KIB,
            ),
            memory_max: kib_limit(props, "IceStorm.MemoryMax", DEFAULT_MEMORY_MAX_KIB),
            topics_max: (topics_max > 0).then_some(topics_max as usize),
            message_size_max: floe::protocol::message_size_max_bytes(
                props.get_property_as_int_with_default(
                    "Ice.MessageSizeMax",
                    floe::protocol::DEFAULT_MESSAGE_SIZE_MAX_KIB,
                ),
            ),
            class_graph_depth_max: (props
                .get_property_as_int_with_default("IceStorm.CheckClassGraphs", 0)
                > 0)
            .then_some(depth_max.max(1) as usize),
            trace: TraceLevels {
                topic_manager: props.get_property_as_int("IceStorm.Trace.TopicManager"),
                topic: props.get_property_as_int("IceStorm.Trace.Topic"),
                subscriber: props.get_property_as_int("IceStorm.Trace.Subscriber"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroc_names_and_defaults() {
        let p = Properties::new();
        let c = Config::from_properties(&p, None).unwrap();
        assert_eq!(c.instance_name, "IceStorm");
        assert_eq!(c.data_dir, None);
        assert_eq!(c.send_timeout_ms, 60_000);
        assert_eq!(c.discard_interval, Duration::from_secs(60));
        assert_eq!(c.flush_interval, Duration::from_millis(1000));
        assert_eq!(c.queue_size_max, Some(65536));
        assert_eq!(c.queue_full_policy, QueueFullPolicy::RemoveSubscriber);
        assert_eq!(c.queue_memory_max, Some(64 << 20));
        assert_eq!(c.memory_max, Some(256 << 20));
        assert_eq!(c.topics_max, Some(10_000));
        assert_eq!(c.message_size_max, 1 << 20);
        assert_eq!(c.class_graph_depth_max, None);

        p.load_str(
            "IceStorm.InstanceName=Demo\nIceStorm.LMDB.Path=db\nIceStorm.Discard.Interval=0.25\n\
             IceStorm.Send.QueueSizeMax=-1\nIceStorm.Send.QueueSizeMaxPolicy=DropEvents\n\
             IceStorm.Trace.Subscriber=2\nIceStorm.Send.Timeout=500\n\
             IceStorm.Send.QueueMemoryMax=-1\nIceStorm.MemoryMax=1024\nIceStorm.TopicsMax=0\n\
             Ice.MessageSizeMax=2048\nIceStorm.CheckClassGraphs=1\nIce.ClassGraphDepthMax=50\n",
        );
        let c = Config::from_properties(&p, None).unwrap();
        assert_eq!(c.instance_name, "Demo");
        assert_eq!(c.data_dir, Some(PathBuf::from("db")));
        assert_eq!(c.discard_interval, Duration::from_millis(250));
        assert_eq!(c.queue_size_max, None);
        assert_eq!(c.queue_full_policy, QueueFullPolicy::DropEvents);
        assert_eq!(c.trace.subscriber, 2);
        assert_eq!(c.send_timeout_ms, 500);
        assert_eq!(c.queue_memory_max, None);
        assert_eq!(c.memory_max, Some(1 << 20));
        assert_eq!(c.topics_max, None);
        assert_eq!(c.message_size_max, 2 << 20);
        assert_eq!(c.class_graph_depth_max, Some(50));

        p.set_property("IceStorm.Transient", "1");
        assert_eq!(Config::from_properties(&p, None).unwrap().data_dir, None);
    }

    #[test]
    fn bad_values_are_named() {
        let p = Properties::new();
        p.set_property("IceStorm.Discard.Interval", "soon");
        let e = Config::from_properties(&p, None).unwrap_err().to_string();
        assert!(e.contains("IceStorm.Discard.Interval"), "{e}");
        let p = Properties::new();
        p.set_property("IceStorm.Send.QueueSizeMaxPolicy", "Panic");
        let e = Config::from_properties(&p, None).unwrap_err().to_string();
        assert!(e.contains("QueueSizeMaxPolicy"), "{e}");
    }
}
