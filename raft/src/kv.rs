//! The worked example: a replicated key-value store (`slice/RaftKv.ice`, binary
//! `floe-raft-kv`), the smallest complete service on floe-raft. `docs/raft.md` walks through it.
//!
//! - [`KvMachine`] is the [`StateMachine`]: a sorted map, commands and snapshots in Ice's
//!   encoding.
//! - [`StoreI`] is the Ice servant every node serves next to its Raft object: writes go through
//!   [`RaftNode::write_as`] (any node; followers forward), reads through [`RaftNode::read`],
//!   locks through the node's lock table.

use std::collections::BTreeMap;
use std::time::Duration;

use floe::codegen::{Current, InputStream, OutputStream, SliceType};

use crate::RaftError;
use crate::machine::{ApplyContext, StateMachine};
use crate::node::{Consistency, RaftNode};
use crate::types::ENCODING;

/// Code generated from `slice/RaftKv.ice`.
#[allow(missing_docs, clippy::all)]
pub mod slice {
    floe::include_slice!("RaftKv");
}

use slice::raft_kv::{self as api, store};

/// The identity of the store object on every node.
pub const STORE_IDENTITY: &str = "kv";

/// The replicated map.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvMachine {
    /// The keys and their values.
    pub map: BTreeMap<String, String>,
}

/// A command of the store: set `key` to `value`.
pub fn put_command(key: &str, value: &str) -> Vec<u8> {
    let mut os = OutputStream::new(ENCODING);
    os.write(&key.to_string());
    os.write(&value.to_string());
    os.finish().unwrap_or_default()
}

fn read_put(command: &[u8]) -> Result<(String, String), floe::Error> {
    let mut is = InputStream::new(command, ENCODING);
    let key = String::decode(&mut is)?;
    let value = String::decode(&mut is)?;
    Ok((key, value))
}

impl StateMachine for KvMachine {
    fn apply(&mut self, command: &[u8], _: &ApplyContext) -> Vec<u8> {
        // A command this version cannot read changes nothing (and says so to its writer).
        match read_put(command) {
            Ok((key, value)) => {
                self.map.insert(key, value);
                Vec::new()
            }
            Err(e) => format!("unreadable command: {e}").into_bytes(),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut os = OutputStream::new(ENCODING);
        os.write_size(self.map.len());
        for (k, v) in &self.map {
            os.write(k);
            os.write(v);
        }
        os.finish().unwrap_or_default()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let mut is = InputStream::new(snapshot, ENCODING);
        let n = is.read_size().map_err(|e| e.to_string())?;
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let k = String::decode(&mut is).map_err(|e| e.to_string())?;
            let v = String::decode(&mut is).map_err(|e| e.to_string())?;
            map.insert(k, v);
        }
        self.map = map;
        Ok(())
    }
}

/// The `RaftKv::Store` servant of one node.
#[derive(Debug)]
pub struct StoreI {
    node: RaftNode<KvMachine>,
}

impl StoreI {
    /// A servant answering through `node`.
    pub fn new(node: RaftNode<KvMachine>) -> StoreI {
        StoreI { node }
    }
}

fn unavailable(e: RaftError) -> api::Unavailable {
    api::Unavailable {
        reason: e.to_string(),
    }
}

fn lock_error<E: From<api::Unavailable> + From<api::LockRefused>>(e: RaftError) -> E {
    match e {
        RaftError::LockRefused { reason, holder } => api::LockRefused { reason, holder }.into(),
        e => unavailable(e).into(),
    }
}

impl api::Store for StoreI {
    async fn put(
        &self,
        key: String,
        value: String,
        client: i64,
        serial: i64,
        floor: i64,
        _: &Current,
    ) -> Result<(), store::PutError> {
        let answer = self
            .node
            .write_as(
                client as u64,
                serial.max(0) as u64,
                floor.max(0) as u64,
                put_command(&key, &value),
            )
            .await
            .map_err(unavailable)?;
        if answer.is_empty() {
            Ok(())
        } else {
            Err(api::Unavailable {
                reason: String::from_utf8_lossy(&answer).into_owned(),
            }
            .into())
        }
    }

    async fn get(
        &self,
        key: String,
        stale: bool,
        _: &Current,
    ) -> Result<store::GetResult, store::GetError> {
        let consistency = if stale {
            Consistency::Stale
        } else {
            Consistency::Linearizable
        };
        let value = self
            .node
            .read(consistency, |kv| kv.map.get(&key).cloned())
            .await
            .map_err(unavailable)?;
        Ok(store::GetResult {
            return_value: value.is_some(),
            value: value.unwrap_or_default(),
        })
    }

    async fn acquire(
        &self,
        name: String,
        owner: String,
        ttl: i64,
        _: &Current,
    ) -> Result<api::Grant, store::AcquireError> {
        let ttl = Duration::from_millis(ttl.max(0) as u64);
        let grant = self
            .node
            .acquire(&name, &owner, ttl)
            .await
            .map_err(lock_error::<store::AcquireError>)?;
        Ok(api::Grant {
            token: grant.token,
            expires: grant.expires,
        })
    }

    async fn release(
        &self,
        name: String,
        owner: String,
        token: i64,
        _: &Current,
    ) -> Result<(), store::ReleaseError> {
        self.node
            .release(&name, &owner, token)
            .await
            .map_err(lock_error::<store::ReleaseError>)
    }
}

/// Starts a node of the store: its Raft object and its `kv` object on one adapter.
pub async fn start_node(
    config: crate::Config,
) -> Result<(RaftNode<KvMachine>, floe::ObjectPrx), RaftError> {
    let node = RaftNode::start(config, KvMachine::default()).await?;
    match serve_store(&node) {
        Ok(proxy) => Ok((node, proxy)),
        Err(e) => {
            node.shutdown().await;
            Err(e)
        }
    }
}

/// Adds the store's servant to `node`'s adapter and returns its proxy.
pub fn serve_store(node: &RaftNode<KvMachine>) -> Result<floe::ObjectPrx, RaftError> {
    let identity: floe::Identity = STORE_IDENTITY.parse()?;
    node.adapter().add(
        std::sync::Arc::new(api::StoreDispatcher(std::sync::Arc::new(StoreI::new(
            node.clone(),
        )))),
        identity.clone(),
    )?;
    Ok(node.adapter().create_proxy(identity))
}

/// A local cluster of the store in one process (the `cluster` command; see [`crate::local`]).
#[derive(Debug)]
pub struct Cluster {
    /// The nodes and the proxies of their stores.
    pub nodes: Vec<(RaftNode<KvMachine>, floe::ObjectPrx)>,
}

impl Cluster {
    /// Starts `n` nodes on loopback ports chosen by the system, with `properties`.
    pub async fn start(
        n: usize,
        properties: &floe::Properties,
        data_dir: &std::path::Path,
    ) -> Result<Cluster, RaftError> {
        let nodes = crate::local::start_nodes(
            n,
            properties,
            "Raft",
            data_dir,
            KvMachine::default,
            |node| async move { serve_store(&node) },
        )
        .await?;
        Ok(Cluster { nodes })
    }

    /// Waits until every node is a voter.
    pub async fn wait_for_voters(&self, limit: Duration) -> Result<(), RaftError> {
        let nodes: Vec<_> = self.nodes.iter().map(|(n, _)| n.clone()).collect();
        crate::local::wait_for_voters(&nodes, limit).await
    }

    /// Stops every node.
    pub async fn shutdown(&self) {
        for (node, _) in &self.nodes {
            node.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_snapshots_round_trip() {
        let mut kv = KvMachine::default();
        let ctx = ApplyContext {
            index: 1,
            time: 0,
            client: 0,
        };
        assert!(kv.apply(&put_command("a", "1"), &ctx).is_empty());
        assert!(kv.apply(&put_command("b", "2"), &ctx).is_empty());
        assert!(!kv.apply(&[0xff], &ctx).is_empty());
        let mut copy = KvMachine::default();
        copy.restore(&kv.snapshot()).unwrap();
        assert_eq!(copy, kv);
        assert!(copy.restore(&[5]).is_err());
    }
}
