//! Where topics, subscribers and links are kept: [`Store`], with [`SledStore`] (on disk) and
//! [`MemoryStore`] (transient). Events are never stored, as in ZeroC's IceStorm.
//!
//! Every mutation is durable when its method returns (sled is flushed), so whatever the broker
//! acknowledged survives a SIGKILL.

use std::collections::BTreeMap;
use std::path::Path;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::BrokerError;

/// A subscriber (or link) as stored: its proxy as a string, so it can be rebuilt in any
/// communicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberRecord {
    /// The stringified identity of the subscriber (or of the linked topic), unique per topic.
    pub key: String,
    /// The subscriber's proxy (for a link: the linked topic's link object).
    pub proxy: String,
    /// The quality of service asked for.
    pub qos: BTreeMap<String, String>,
    /// Whether this is a link to another topic.
    pub link: bool,
    /// The cost of a link (0 for subscribers).
    pub cost: i32,
    /// For a link: the linked topic's proxy.
    pub topic: Option<String>,
}

/// Persistence of the broker's state.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Every topic with its subscribers, as last stored.
    fn load(&self) -> Result<BTreeMap<String, Vec<SubscriberRecord>>, BrokerError>;
    /// Records a new topic.
    fn create_topic(&self, name: &str) -> Result<(), BrokerError>;
    /// Removes a topic and all its subscribers.
    fn destroy_topic(&self, name: &str) -> Result<(), BrokerError>;
    /// Adds (or replaces) a subscriber of `topic`.
    fn put_subscriber(&self, topic: &str, rec: &SubscriberRecord) -> Result<(), BrokerError>;
    /// Removes subscribers of `topic` by key.
    fn remove_subscribers(&self, topic: &str, keys: &[String]) -> Result<(), BrokerError>;
    /// Makes everything durable and releases the store.
    fn close(&self) -> Result<(), BrokerError>;
}

/// Keeps the state in memory only (`IceStorm.Transient=1`, or no data directory).
#[derive(Debug, Default)]
pub struct MemoryStore {
    topics: Mutex<BTreeMap<String, BTreeMap<String, SubscriberRecord>>>,
}

impl Store for MemoryStore {
    fn load(&self) -> Result<BTreeMap<String, Vec<SubscriberRecord>>, BrokerError> {
        Ok(self
            .topics
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.values().cloned().collect()))
            .collect())
    }
    fn create_topic(&self, name: &str) -> Result<(), BrokerError> {
        self.topics.lock().entry(name.to_string()).or_default();
        Ok(())
    }
    fn destroy_topic(&self, name: &str) -> Result<(), BrokerError> {
        self.topics.lock().remove(name);
        Ok(())
    }
    fn put_subscriber(&self, topic: &str, rec: &SubscriberRecord) -> Result<(), BrokerError> {
        self.topics
            .lock()
            .entry(topic.to_string())
            .or_default()
            .insert(rec.key.clone(), rec.clone());
        Ok(())
    }
    fn remove_subscribers(&self, topic: &str, keys: &[String]) -> Result<(), BrokerError> {
        if let Some(t) = self.topics.lock().get_mut(topic) {
            for k in keys {
                t.remove(k);
            }
        }
        Ok(())
    }
    fn close(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

/// Keeps the state in a sled database in `DIR/icestorm-lite.sled`.
///
/// One tree, two kinds of keys: `T` + topic name for a topic; `S` + topic name length (u32, big
/// endian) + topic name + subscriber key for a subscriber, whose value is the JSON of its
/// [`SubscriberRecord`]. A topic and its subscribers are removed in one atomic batch.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
}

fn store_err(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Store(format!("{what}: {e}"))
}

fn topic_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(b'T');
    k.extend_from_slice(name.as_bytes());
    k
}

fn subscriber_prefix(topic: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + topic.len());
    k.push(b'S');
    k.extend_from_slice(&(topic.len() as u32).to_be_bytes());
    k.extend_from_slice(topic.as_bytes());
    k
}

fn subscriber_key(topic: &str, key: &str) -> Vec<u8> {
    let mut k = subscriber_prefix(topic);
    k.extend_from_slice(key.as_bytes());
    k
}

/// Splits a subscriber key into (topic, subscriber key), checking every length.
fn parse_subscriber_key(k: &[u8]) -> Option<(String, String)> {
    let rest = k.strip_prefix(b"S")?;
    let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let rest = &rest[4..];
    if rest.len() < len {
        return None;
    }
    let topic = std::str::from_utf8(&rest[..len]).ok()?.to_string();
    let key = std::str::from_utf8(&rest[len..]).ok()?.to_string();
    Some((topic, key))
}

impl SledStore {
    /// Opens (or creates) the database under `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, BrokerError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| store_err(&format!("cannot create {}", dir.display()), e))?;
        let path = dir.join("icestorm-lite.sled");
        let db = sled::Config::new()
            .path(&path)
            .open()
            .map_err(|e| store_err(&format!("cannot open {}", path.display()), e))?;
        Ok(SledStore { db })
    }

    fn flush(&self) -> Result<(), BrokerError> {
        self.db.flush().map_err(|e| store_err("flush", e))?;
        Ok(())
    }
}

impl Store for SledStore {
    fn load(&self) -> Result<BTreeMap<String, Vec<SubscriberRecord>>, BrokerError> {
        let mut topics: BTreeMap<String, Vec<SubscriberRecord>> = BTreeMap::new();
        for item in self.db.scan_prefix(b"T") {
            let (k, _) = item.map_err(|e| store_err("read", e))?;
            let name = std::str::from_utf8(&k[1..])
                .map_err(|e| store_err("topic name is not UTF-8", e))?;
            topics.insert(name.to_string(), Vec::new());
        }
        let mut orphans = Vec::new();
        for item in self.db.scan_prefix(b"S") {
            let (k, v) = item.map_err(|e| store_err("read", e))?;
            let Some((topic, _)) = parse_subscriber_key(&k) else {
                return Err(BrokerError::Store(format!(
                    "malformed subscriber key {:?}",
                    k.as_ref()
                )));
            };
            match topics.get_mut(&topic) {
                Some(subs) => subs.push(
                    serde_json::from_slice(&v)
                        .map_err(|e| store_err("malformed subscriber record", e))?,
                ),
                None => orphans.push(k),
            }
        }
        // Subscribers whose topic was destroyed by an older version of the store.
        for k in orphans {
            self.db.remove(k).map_err(|e| store_err("write", e))?;
        }
        Ok(topics)
    }

    fn create_topic(&self, name: &str) -> Result<(), BrokerError> {
        self.db
            .insert(topic_key(name), &[][..])
            .map_err(|e| store_err("write", e))?;
        self.flush()
    }

    fn destroy_topic(&self, name: &str) -> Result<(), BrokerError> {
        let mut batch = sled::Batch::default();
        batch.remove(topic_key(name));
        for item in self.db.scan_prefix(subscriber_prefix(name)) {
            let (k, _) = item.map_err(|e| store_err("read", e))?;
            batch.remove(k);
        }
        self.db
            .apply_batch(batch)
            .map_err(|e| store_err("write", e))?;
        self.flush()
    }

    fn put_subscriber(&self, topic: &str, rec: &SubscriberRecord) -> Result<(), BrokerError> {
        let value = serde_json::to_vec(rec).map_err(|e| store_err("encode", e))?;
        self.db
            .insert(subscriber_key(topic, &rec.key), value)
            .map_err(|e| store_err("write", e))?;
        self.flush()
    }

    fn remove_subscribers(&self, topic: &str, keys: &[String]) -> Result<(), BrokerError> {
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(subscriber_key(topic, k));
        }
        self.db
            .apply_batch(batch)
            .map_err(|e| store_err("write", e))?;
        self.flush()
    }

    fn close(&self) -> Result<(), BrokerError> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str) -> SubscriberRecord {
        SubscriberRecord {
            key: key.into(),
            proxy: format!("{key} -o:tcp -h 127.0.0.1 -p 1"),
            qos: [("reliability".to_string(), "ordered".to_string())].into(),
            link: false,
            cost: 0,
            topic: None,
        }
    }

    #[test]
    fn sled_keeps_topics_and_subscribers_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.create_topic("news").unwrap();
            s.create_topic("news\0x").unwrap();
            s.create_topic("").unwrap();
            s.put_subscriber("news", &rec("a")).unwrap();
            s.put_subscriber("news", &rec("b")).unwrap();
            s.put_subscriber("news\0x", &rec("c")).unwrap();
            s.remove_subscribers("news", &["a".into()]).unwrap();
            s.create_topic("gone").unwrap();
            s.put_subscriber("gone", &rec("d")).unwrap();
            s.destroy_topic("gone").unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let t = s.load().unwrap();
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(t["news"], vec![rec("b")]);
        assert_eq!(t["news\0x"], vec![rec("c")]);
        assert!(t[""].is_empty());
    }

    #[test]
    fn malformed_keys_are_rejected_not_panicked_on() {
        assert_eq!(parse_subscriber_key(b"S\0\0"), None);
        assert_eq!(parse_subscriber_key(b"S\0\0\0\x09abc"), None);
        assert_eq!(
            parse_subscriber_key(b"S\0\0\0\x01ab"),
            Some(("a".into(), "b".into()))
        );
    }
}
