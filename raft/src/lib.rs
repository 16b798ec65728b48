//! `floe-raft`: replicated state for Floe services.
//!
//! A cluster of nodes keeps one state machine — the service's own, plus a table of leased
//! locks — identical on every node, through a Raft log. Consensus is [openraft]'s; this crate
//! carries its messages as Ice operations between nodes (`slice/FloeRaft.ice`), keeps its log
//! and snapshots in sled, forwards writes from followers to the leader, deduplicates retried
//! writes by client id and serial, serves linearizable reads (read index, also on followers),
//! and changes membership (learner, then voter).
//!
//! A service implements [`StateMachine`] and starts a [`RaftNode`] with a [`Config`] read from
//! Ice properties:
//!
//! ```no_run
//! use floe_raft::{ApplyContext, Config, Consistency, RaftNode, StateMachine};
//!
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     fn apply(&mut self, command: &[u8], _: &ApplyContext) -> Vec<u8> {
//!         self.0 += u64::from(command.first().copied().unwrap_or(0));
//!         self.0.to_be_bytes().to_vec()
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_be_bytes().to_vec()
//!     }
//!     fn restore(&mut self, s: &[u8]) -> Result<(), String> {
//!         self.0 = u64::from_be_bytes(s.try_into().map_err(|_| "not a counter")?);
//!         Ok(())
//!     }
//! }
//!
//! # async fn demo() -> Result<(), floe_raft::RaftError> {
//! let properties = floe::Properties::new();
//! properties.set_property("Raft.NodeId", "1");
//! properties.set_property("Raft.Endpoints", "tcp -h 127.0.0.1 -p 4061");
//! properties.set_property("Raft.DataDir", "/tmp/counter-1");
//! let node = RaftNode::start(Config::from_properties(properties, "Raft")?, Counter::default()).await?;
//! node.write(vec![5]).await?;
//! let value = node.read(Consistency::Linearizable, |c| c.0).await?;
//! assert_eq!(value, 5);
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! `docs/raft.md` describes the properties, the guarantees, the persistence format and a
//! worked example (the replicated key-value store `floe-raft-kv`).

// openraft's traits fix the error types (StorageError, RPCError), which are large.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod kv;
pub mod local;
pub mod log_store;
pub mod machine;
pub mod network;
mod node;
mod servant;
pub mod signal;
pub mod types;

pub use config::Config;
pub use machine::{ApplyContext, StateMachine};
pub use node::{Consistency, Grant, LockInfo, RaftNode};
pub use types::{NodeAddr, NodeId, TypeConfig};

/// Code generated from `slice/FloeRaft.ice` (the nodes' operations).
#[allow(missing_docs, clippy::all)]
pub mod slice {
    floe::include_slice!("FloeRaft");
}

/// Why a node could not start or a request failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RaftError {
    /// A property has a bad value.
    #[error("configuration: {0}")]
    Config(String),
    /// The data directory cannot be used.
    #[error("storage: {0}")]
    Storage(String),
    /// No leader could be reached in time (an election is under way, or this node is cut off
    /// from the majority). The write may or may not have been applied; retrying it with the
    /// same client id and serial is safe.
    #[error("no leader: {0}")]
    NoLeader(String),
    /// The state machine refused the write (a serial below the client's floor, too many writes
    /// in flight).
    #[error("refused: {0}")]
    Refused(String),
    /// A lock could not be taken or given back.
    #[error("lock refused: {reason}")]
    LockRefused {
        /// Why.
        reason: String,
        /// Who holds the lock ("" when nobody does).
        holder: String,
    },
    /// openraft failed or the node is stopping; a membership change was refused.
    #[error("{0}")]
    Failed(String),
    /// The runtime failed (bad endpoint, port in use, ...).
    #[error(transparent)]
    Runtime(#[from] floe::Error),
}
