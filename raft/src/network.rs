//! openraft's network over Floe: each RPC is an Ice operation on the peer's `raft` object.
//!
//! A peer that cannot be connected to is reported as `Unreachable`, so openraft backs off
//! (`Raft.Backoff`) instead of retrying at once; every call has an invocation timeout taken
//! from openraft's own deadline for it, and every peer has its own connection and replication
//! task, so one stalled peer never holds the others. An AppendEntries whose encoding would pass
//! the peer's message size limit is refused before it is sent (`PayloadTooLarge`), and openraft
//! sends fewer entries; snapshots go in chunks of `Raft.SnapshotChunkSize` bytes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use floe::{Communicator, Error as IceError};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    SnapshotMismatch, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, SnapshotSegmentId};

use crate::slice::floe_raft::{self as wire, NodePrx, node};
use crate::types::{
    NodeAddr, NodeId, TypeConfig, entry_to_wire, log_id_from_wire, opt_log_id_from_wire,
    opt_log_id_to_wire, signed, snapshot_meta_to_wire, vote_from_wire, vote_to_wire,
};

/// The identity of a node's Raft object.
pub const RAFT_IDENTITY: &str = "raft";

/// How a node reaches its peers.
#[derive(Debug, Clone)]
pub struct Network {
    communicator: Communicator,
    /// Overrides of the membership's endpoints, by node id (`Raft.Route.<id>`).
    routes: Arc<HashMap<NodeId, String>>,
    /// Largest request the peers accept, in bytes (`Ice.MessageSizeMax`).
    message_size_max: usize,
    backoff: Duration,
    connect_timeout: i32,
}

impl Network {
    pub(crate) fn new(
        communicator: Communicator,
        routes: HashMap<NodeId, String>,
        message_size_max: usize,
        backoff: Duration,
        connect_timeout: Duration,
    ) -> Network {
        Network {
            communicator,
            routes: Arc::new(routes),
            message_size_max,
            backoff,
            connect_timeout: i32::try_from(connect_timeout.as_millis()).unwrap_or(i32::MAX),
        }
    }

    /// The Raft object of `target`, reached by its route if it has one, else by `node`'s
    /// endpoints.
    pub(crate) fn proxy(&self, target: NodeId, node: &NodeAddr) -> Result<NodePrx, IceError> {
        let endpoints = self
            .routes
            .get(&target)
            .map_or(node.endpoints.as_str(), String::as_str);
        let prx = self
            .communicator
            .string_to_proxy(&format!("{RAFT_IDENTITY}:{endpoints}"))?
            .ok_or_else(|| IceError::ProxyParse(format!("node {target} has no endpoints")))?;
        Ok(NodePrx::unchecked_cast(
            prx.ice_timeout(self.connect_timeout),
        ))
    }
}

/// openraft's handle on one peer.
#[derive(Debug)]
pub struct Peer {
    target: NodeId,
    proxy: Result<NodePrx, String>,
    message_size_max: usize,
    backoff: Duration,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> Peer {
        Peer {
            target,
            proxy: self.proxy(target, node).map_err(|e| e.to_string()),
            message_size_max: self.message_size_max,
            backoff: self.backoff,
        }
    }
}

/// Whether a failure means the peer is down or cut off (back off) rather than a passing error.
/// A call that merely timed out is not: a loaded peer answers late now and then, and backing
/// off from it for `Raft.Backoff` would stall commits.
fn unreachable_error(e: &IceError) -> bool {
    matches!(
        e,
        IceError::ConnectionRefused(_)
            | IceError::ConnectFailed(_)
            | IceError::ConnectTimeout(_)
            | IceError::ConnectionTimeout
            | IceError::ObjectNotExist(_)
            | IceError::CommunicatorDestroyed
            | IceError::ObjectAdapterDeactivated(_)
            | IceError::NoEndpoint(_)
            | IceError::ProxyParse(_)
            | IceError::EndpointParse(_)
    )
}

fn rpc_error<E: std::error::Error>(target: NodeId, e: IceError) -> RPCError<NodeId, NodeAddr, E> {
    let _ = target;
    if unreachable_error(&e) {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

/// A remote failure (the peer's Raft is stopping, or it refused the request as malformed):
/// reported as unreachable, so openraft backs off and tries again later.
fn remote_failure<E: std::error::Error>(
    target: NodeId,
    f: wire::RaftFailure,
) -> RPCError<NodeId, NodeAddr, E> {
    tracing::debug!(target: "floe_raft::network", node = target, reason = %f.reason, "peer refused the request");
    RPCError::Unreachable(Unreachable::new(&AnyError::error(format!(
        "node {target}: {}",
        f.reason
    ))))
}

fn timeout_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1)
}

fn bad_reply<E: std::error::Error>(e: impl std::fmt::Display) -> RPCError<NodeId, NodeAddr, E> {
    RPCError::Network(NetworkError::new(&AnyError::error(format!(
        "malformed reply: {e}"
    ))))
}

impl Peer {
    fn proxy<E: std::error::Error>(
        &self,
        option: &RPCOption,
    ) -> Result<NodePrx, RPCError<NodeId, NodeAddr, E>> {
        match &self.proxy {
            Ok(p) => Ok(NodePrx::unchecked_cast(
                p.ice_invocation_timeout(timeout_ms(option.hard_ttl())),
            )),
            Err(e) => Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(e)))),
        }
    }
}

/// Bytes an encoded request may take: the peer's limit less room for the message header and
/// the request's own fields.
fn payload_budget(message_size_max: usize) -> usize {
    message_size_max.saturating_sub(1024).max(1024)
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        let entries: Vec<wire::Entry> = rpc.entries.iter().map(entry_to_wire).collect();
        let size: usize = entries
            .iter()
            .map(|e| {
                e.payload.len()
                    + 64
                    + e.membership
                        .nodes
                        .values()
                        .map(|n| n.endpoints.len() + 32)
                        .sum::<usize>()
            })
            .sum();
        if size > payload_budget(self.message_size_max) && entries.len() > 1 {
            let hint = (entries.len() as u64 * payload_budget(self.message_size_max) as u64
                / size as u64)
                .max(1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        let request = wire::AppendRequest {
            vote: vote_to_wire(&rpc.vote),
            prev_log_id: opt_log_id_to_wire(rpc.prev_log_id.as_ref()),
            entries,
            leader_commit: opt_log_id_to_wire(rpc.leader_commit.as_ref()),
        };
        let reply = match self.proxy(&option)?.append_entries(&request).await {
            Ok(r) => r,
            Err(node::AppendEntriesError::RaftFailure(f)) => {
                return Err(remote_failure(self.target, f));
            }
            Err(node::AppendEntriesError::Runtime(e)) => return Err(rpc_error(self.target, e)),
        };
        Ok(match reply.status {
            wire::AppendStatus::Success => AppendEntriesResponse::Success,
            wire::AppendStatus::PartialSuccess => AppendEntriesResponse::PartialSuccess(
                opt_log_id_from_wire(&reply.matched, "append reply").map_err(bad_reply)?,
            ),
            wire::AppendStatus::Conflict => AppendEntriesResponse::Conflict,
            wire::AppendStatus::HigherVote => AppendEntriesResponse::HigherVote(
                vote_from_wire(&reply.vote, "append reply").map_err(bad_reply)?,
            ),
        })
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeAddr, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let chunk = wire::SnapshotChunk {
            vote: vote_to_wire(&rpc.vote),
            meta: snapshot_meta_to_wire(&rpc.meta),
            offset: signed(rpc.offset),
            data: rpc.data,
            done: rpc.done,
        };
        match self.proxy(&option)?.install_snapshot(&chunk).await {
            Ok(vote) => Ok(InstallSnapshotResponse {
                vote: vote_from_wire(&vote, "snapshot reply").map_err(bad_reply)?,
            }),
            Err(node::InstallSnapshotError::SnapshotMismatch(m)) => {
                let mismatch = SnapshotMismatch {
                    expect: SnapshotSegmentId {
                        id: m.expected_id,
                        offset: m.expected_offset.max(0) as u64,
                    },
                    got: SnapshotSegmentId {
                        id: m.got_id,
                        offset: m.got_offset.max(0) as u64,
                    },
                };
                Err(RPCError::RemoteError(RemoteError::new(
                    self.target,
                    RaftError::APIError(InstallSnapshotError::SnapshotMismatch(mismatch)),
                )))
            }
            Err(node::InstallSnapshotError::RaftFailure(f)) => Err(remote_failure(self.target, f)),
            Err(node::InstallSnapshotError::Runtime(e)) => Err(rpc_error(self.target, e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        let request = wire::VoteRequest {
            vote: vote_to_wire(&rpc.vote),
            last_log_id: opt_log_id_to_wire(rpc.last_log_id.as_ref()),
        };
        let reply = match self.proxy(&option)?.vote(&request).await {
            Ok(r) => r,
            Err(node::VoteError::RaftFailure(f)) => return Err(remote_failure(self.target, f)),
            Err(node::VoteError::Runtime(e)) => return Err(rpc_error(self.target, e)),
        };
        Ok(VoteResponse {
            vote: vote_from_wire(&reply.vote, "vote reply").map_err(bad_reply)?,
            vote_granted: reply.granted,
            last_log_id: match reply.last_log_id.as_slice() {
                [] => None,
                [id] => Some(log_id_from_wire(id, "vote reply").map_err(bad_reply)?),
                _ => return Err(bad_reply("several last log ids")),
            },
        })
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.backoff))
    }
}
