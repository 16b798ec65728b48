//! `dispotify`: distributed music on Floe.
//!
//! Identical nodes, each a Raft participant (the catalog, membership and health marks, through
//! [`floe_raft`]), a storage node (audio files on a consistent-hash ring with R replicas,
//! checked by SHA-256 in transit and at rest, repaired and rebalanced in the background) and an
//! API server (`Dispotify::Catalog` over Ice, and HTTP with a web player for browsers).
//! `docs/dispotify.md` describes the design, the formats and every property.

pub mod catalog;
pub mod client;
pub mod cluster;
pub mod gateway;
pub mod node;
pub mod ring;
pub mod search;
pub mod servants;
pub mod storage;
pub mod tags;

/// Code generated from `slice/Dispotify.ice`.
#[allow(missing_docs, clippy::all)]
pub mod slice {
    floe::include_slice!("Dispotify");
}
