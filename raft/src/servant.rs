//! The node's Raft object (`FloeRaft::Node`, identity `raft`): openraft's RPCs from the other
//! nodes, forwarded writes and read checks, membership requests and status.
//!
//! Every request is checked before openraft sees it: a malformed message is refused with
//! `RaftFailure` ("malformed ..."), and so is a vote asked by a node that is not a member, or
//! an AppendEntries or snapshot chunk from a non-member whose term is not newer than this
//! node's (a removed node that goes on acting as leader); nothing of a refused request is
//! stored or applied.

use std::time::Instant;

use floe::codegen::Current;
use openraft::error::{InstallSnapshotError, RaftError as OpenraftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};

use crate::machine::StateMachine;
use crate::node::{FORWARDED, RaftNode, addr_from_wire};
use crate::slice::floe_raft::{self as wire, Node, node as ops};
use crate::types::{
    Malformed, NodeId, check_entries, entry_from_wire, opt_log_id_from_wire, opt_log_id_to_wire,
    snapshot_meta_from_wire, vote_from_wire, vote_to_wire,
};

pub(crate) struct NodeI<S> {
    node: RaftNode<S>,
}

impl<S: StateMachine> NodeI<S> {
    pub(crate) fn new(node: RaftNode<S>) -> NodeI<S> {
        NodeI { node }
    }

    /// Refuses requests from a node outside the membership, unless it speaks for a newer term
    /// (a leader elected while this node was away, before this node learnt of it).
    fn check_member(&self, from: NodeId, term: u64, votes: bool) -> Result<(), wire::RaftFailure> {
        let m = self.node.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        if membership.nodes().next().is_none() || membership.get_node(&from).is_some() {
            return Ok(());
        }
        if !votes && term > m.current_term {
            return Ok(());
        }
        Err(failure(format!(
            "node {from} is not a member of this cluster"
        )))
    }

    fn check_running(&self) -> Result<(), wire::RaftFailure> {
        if self.node.stopped() {
            Err(failure("the node is stopping"))
        } else {
            Ok(())
        }
    }
}

impl<S: StateMachine> NodeI<S> {
    /// The answer to a forwarded membership request, which only the leader carries out.
    fn here<E: From<wire::NoLeader> + From<wire::RaftFailure>>(
        &self,
        r: Result<(), crate::node::Attempt>,
    ) -> Result<(), E> {
        r.map_err(|a| match RaftNode::<S>::retry_text(a) {
            (true, reason) => no_leader(reason).into(),
            (false, reason) => failure(reason).into(),
        })
    }
}

fn failure(reason: impl Into<String>) -> wire::RaftFailure {
    wire::RaftFailure {
        reason: reason.into(),
    }
}

fn malformed(m: Malformed) -> wire::RaftFailure {
    failure(m.to_string())
}

fn no_leader(reason: impl Into<String>) -> wire::NoLeader {
    wire::NoLeader {
        reason: reason.into(),
    }
}

fn fatal<E: std::fmt::Display>(e: E) -> wire::RaftFailure {
    failure(format!("raft stopped: {e}"))
}

impl<S: StateMachine> Node for NodeI<S> {
    async fn append_entries(
        &self,
        request: wire::AppendRequest,
        _: &Current,
    ) -> Result<wire::AppendResponse, ops::AppendEntriesError> {
        self.check_running()?;
        let vote = vote_from_wire(&request.vote, "append request").map_err(malformed)?;
        let prev_log_id =
            opt_log_id_from_wire(&request.prev_log_id, "append request").map_err(malformed)?;
        let leader_commit =
            opt_log_id_from_wire(&request.leader_commit, "append request").map_err(malformed)?;
        let entries = request
            .entries
            .iter()
            .map(entry_from_wire)
            .collect::<Result<Vec<_>, _>>()
            .map_err(malformed)?;
        check_entries(prev_log_id.as_ref(), &entries, &vote).map_err(malformed)?;
        self.check_member(vote.leader_id.node_id, vote.leader_id.term, false)?;
        let rpc = AppendEntriesRequest {
            vote,
            prev_log_id,
            entries,
            leader_commit,
        };
        let reply = self.node.raft().append_entries(rpc).await.map_err(fatal)?;
        let mut out = wire::AppendResponse::default();
        match reply {
            AppendEntriesResponse::Success => out.status = wire::AppendStatus::Success,
            AppendEntriesResponse::PartialSuccess(matched) => {
                out.status = wire::AppendStatus::PartialSuccess;
                out.matched = opt_log_id_to_wire(matched.as_ref());
            }
            AppendEntriesResponse::Conflict => out.status = wire::AppendStatus::Conflict,
            AppendEntriesResponse::HigherVote(v) => {
                out.status = wire::AppendStatus::HigherVote;
                out.vote = vote_to_wire(&v);
            }
        }
        Ok(out)
    }

    async fn vote(
        &self,
        request: wire::VoteRequest,
        _: &Current,
    ) -> Result<wire::VoteResponse, ops::VoteError> {
        self.check_running()?;
        let vote = vote_from_wire(&request.vote, "vote request").map_err(malformed)?;
        let last_log_id =
            opt_log_id_from_wire(&request.last_log_id, "vote request").map_err(malformed)?;
        self.check_member(vote.leader_id.node_id, vote.leader_id.term, true)?;
        let reply = self
            .node
            .raft()
            .vote(VoteRequest { vote, last_log_id })
            .await
            .map_err(fatal)?;
        Ok(wire::VoteResponse {
            vote: vote_to_wire(&reply.vote),
            granted: reply.vote_granted,
            last_log_id: opt_log_id_to_wire(reply.last_log_id.as_ref()),
        })
    }

    async fn install_snapshot(
        &self,
        chunk: wire::SnapshotChunk,
        _: &Current,
    ) -> Result<wire::Vote, ops::InstallSnapshotError> {
        self.check_running()?;
        let vote = vote_from_wire(&chunk.vote, "snapshot chunk").map_err(malformed)?;
        let meta = snapshot_meta_from_wire(&chunk.meta).map_err(malformed)?;
        if chunk.offset < 0 {
            return Err(malformed(Malformed {
                what: "snapshot chunk",
                reason: format!("negative offset {}", chunk.offset),
            })
            .into());
        }
        self.check_member(vote.leader_id.node_id, vote.leader_id.term, false)?;
        let rpc = InstallSnapshotRequest {
            vote,
            meta,
            offset: chunk.offset as u64,
            data: chunk.data,
            done: chunk.done,
        };
        match self.node.raft().install_snapshot(rpc).await {
            Ok(reply) => Ok(vote_to_wire(&reply.vote)),
            Err(OpenraftError::APIError(InstallSnapshotError::SnapshotMismatch(m))) => {
                Err(wire::SnapshotMismatch {
                    expected_id: m.expect.id,
                    expected_offset: m.expect.offset as i64,
                    got_id: m.got.id,
                    got_offset: m.got.offset as i64,
                }
                .into())
            }
            Err(e) => Err(fatal(e).into()),
        }
    }

    async fn write(
        &self,
        command: wire::Command,
        _: &Current,
    ) -> Result<wire::WriteResult, ops::WriteError> {
        self.check_running()?;
        let deadline = Instant::now() + self.node.request_timeout();
        self.node.propose_local(command, deadline).await.map_err(
            |a| match RaftNode::<S>::retry_text(a) {
                (true, reason) => no_leader(reason).into(),
                (false, reason) => failure(reason).into(),
            },
        )
    }

    async fn read_index(&self, _: &Current) -> Result<i64, ops::ReadIndexError> {
        self.check_running()?;
        let deadline = Instant::now() + self.node.request_timeout();
        self.node
            .read_index_local(deadline)
            .await
            .map_err(|a| match RaftNode::<S>::retry_text(a) {
                (true, reason) => no_leader(reason).into(),
                (false, reason) => failure(reason).into(),
            })
    }

    async fn join(
        &self,
        id: i64,
        info: wire::NodeInfo,
        current: &Current,
    ) -> Result<(), ops::JoinError> {
        self.check_running()?;
        let id = u64::try_from(id).map_err(|_| failure(format!("negative node id {id}")))?;
        if info.endpoints.trim().is_empty() {
            return Err(failure(format!("node {id} has no endpoints")).into());
        }
        if let Err(e) = self
            .node
            .communicator()
            .string_to_proxy(&format!("raft:{}", info.endpoints))
        {
            return Err(failure(format!("node {id}: endpoints `{}`: {e}", info.endpoints)).into());
        }
        let addr = addr_from_wire(&info);
        if current.ctx.contains_key(FORWARDED) {
            return self.here(self.node.add_node_local(id, addr).await);
        }
        self.node.add_node(id, addr).await.map_err(|e| match e {
            crate::RaftError::NoLeader(r) => no_leader(r).into(),
            e => failure(e.to_string()).into(),
        })
    }

    async fn leave(&self, id: i64, current: &Current) -> Result<(), ops::LeaveError> {
        self.check_running()?;
        let id = u64::try_from(id).map_err(|_| failure(format!("negative node id {id}")))?;
        if current.ctx.contains_key(FORWARDED) {
            return self.here(self.node.remove_node_local(id).await);
        }
        self.node.remove_node(id).await.map_err(|e| match e {
            crate::RaftError::NoLeader(r) => no_leader(r).into(),
            e => failure(e.to_string()).into(),
        })
    }

    async fn status(&self, _: &Current) -> Result<wire::NodeStatus, floe::Error> {
        Ok(self.node.status())
    }
}
