//! openraft's type configuration for Floe, and the conversions between openraft's messages and
//! their Slice spelling (`slice/FloeRaft.ice`), used on the wire and on disk.
//!
//! Decoding checks everything a peer controls: optional log ids carry at most one element,
//! entries are consecutive, node ids are not negative, a configuration's voters are nodes.
//! A malformed message is refused with [`Malformed`] before openraft sees it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Cursor;

use floe::EncodingVersion;
use floe::codegen::{InputStream, OutputStream, SliceType};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, StoredMembership, Vote,
};

use crate::slice::floe_raft as wire;

/// A node's id in the cluster.
pub type NodeId = u64;

/// How to reach a node: the endpoints of its Raft adapter, plus attributes a service publishes
/// through the membership (the endpoints of its own adapters, an HTTP address, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeAddr {
    /// Endpoints of the node's `Raft` adapter, in Ice's syntax (`tcp -h 127.0.0.1 -p 4061`).
    pub endpoints: String,
    /// Free-form attributes (sorted by name).
    pub attributes: BTreeMap<String, String>,
}

impl NodeAddr {
    /// A node reached at `endpoints`, without attributes.
    pub fn new(endpoints: impl Into<String>) -> NodeAddr {
        NodeAddr {
            endpoints: endpoints.into(),
            attributes: BTreeMap::new(),
        }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.endpoints)
    }
}

openraft::declare_raft_types!(
    /// Floe's openraft types: commands are `FloeRaft::Command` structs, answers are
    /// `FloeRaft::Outcome` structs, nodes are [`NodeAddr`]s, snapshots are bytes in memory.
    pub TypeConfig:
        D = wire::Command,
        R = wire::Outcome,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

/// A message from a peer (or a stored record) that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {reason}")]
pub struct Malformed {
    /// What was being read.
    pub what: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn malformed(what: &'static str, reason: impl Into<String>) -> Malformed {
    Malformed {
        what,
        reason: reason.into(),
    }
}

/// The encoding of everything floe-raft writes: Ice's 1.1 encoding of the Slice types.
pub(crate) const ENCODING: EncodingVersion = EncodingVersion::V1_1;

/// Encodes one Slice value as bytes.
pub(crate) fn encode<T: SliceType>(value: &T) -> Vec<u8> {
    let mut os = OutputStream::new(ENCODING);
    value.encode(&mut os);
    os.finish().unwrap_or_default()
}

/// Decodes one Slice value that must fill `bytes` exactly.
pub(crate) fn decode<T: SliceType>(bytes: &[u8], what: &'static str) -> Result<T, Malformed> {
    let mut is = InputStream::new(bytes, ENCODING);
    let value = T::decode(&mut is).map_err(|e| malformed(what, e.to_string()))?;
    if !is.is_at_end() {
        return Err(malformed(
            what,
            format!("{} bytes after the value", is.remaining()),
        ));
    }
    Ok(value)
}

fn node_id(v: i64, what: &'static str) -> Result<NodeId, Malformed> {
    u64::try_from(v).map_err(|_| malformed(what, format!("negative node id {v}")))
}

fn unsigned(v: i64, what: &'static str, field: &str) -> Result<u64, Malformed> {
    u64::try_from(v).map_err(|_| malformed(what, format!("negative {field} {v}")))
}

/// Signed view of an unsigned value for the wire (ids, terms and indexes never pass i64::MAX in
/// practice; larger ones are clamped rather than wrapped).
pub(crate) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn log_id_to_wire(id: &LogId<NodeId>) -> wire::LogId {
    wire::LogId {
        leader: wire::LeaderId {
            term: signed(id.leader_id.term),
            node: signed(id.leader_id.node_id),
        },
        index: signed(id.index),
    }
}

pub(crate) fn log_id_from_wire(
    id: &wire::LogId,
    what: &'static str,
) -> Result<LogId<NodeId>, Malformed> {
    Ok(LogId::new(
        CommittedLeaderId::new(
            unsigned(id.leader.term, what, "term")?,
            node_id(id.leader.node, what)?,
        ),
        unsigned(id.index, what, "index")?,
    ))
}

pub(crate) fn opt_log_id_to_wire(id: Option<&LogId<NodeId>>) -> Vec<wire::LogId> {
    id.map(log_id_to_wire).into_iter().collect()
}

pub(crate) fn opt_log_id_from_wire(
    ids: &[wire::LogId],
    what: &'static str,
) -> Result<Option<LogId<NodeId>>, Malformed> {
    match ids {
        [] => Ok(None),
        [id] => Ok(Some(log_id_from_wire(id, what)?)),
        _ => Err(malformed(
            what,
            format!("{} log ids where at most one is allowed", ids.len()),
        )),
    }
}

pub(crate) fn vote_to_wire(v: &Vote<NodeId>) -> wire::Vote {
    wire::Vote {
        leader: wire::LeaderId {
            term: signed(v.leader_id.term),
            node: signed(v.leader_id.node_id),
        },
        committed: v.committed,
    }
}

pub(crate) fn vote_from_wire(
    v: &wire::Vote,
    what: &'static str,
) -> Result<Vote<NodeId>, Malformed> {
    let term = unsigned(v.leader.term, what, "term")?;
    let node = node_id(v.leader.node, what)?;
    Ok(if v.committed {
        Vote::new_committed(term, node)
    } else {
        Vote::new(term, node)
    })
}

pub(crate) fn node_to_wire(n: &NodeAddr) -> wire::NodeInfo {
    wire::NodeInfo {
        endpoints: n.endpoints.clone(),
        attributes: n
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

pub(crate) fn node_from_wire(n: &wire::NodeInfo) -> NodeAddr {
    NodeAddr {
        endpoints: n.endpoints.clone(),
        attributes: n
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

pub(crate) fn membership_to_wire(m: &Membership<NodeId, NodeAddr>) -> wire::Membership {
    wire::Membership {
        configs: m
            .get_joint_config()
            .iter()
            .map(|c| c.iter().map(|id| signed(*id)).collect())
            .collect(),
        nodes: m
            .nodes()
            .map(|(id, n)| (signed(*id), node_to_wire(n)))
            .collect(),
    }
}

pub(crate) fn membership_from_wire(
    m: &wire::Membership,
    what: &'static str,
) -> Result<Membership<NodeId, NodeAddr>, Malformed> {
    if m.configs.is_empty() || m.configs.len() > 2 {
        return Err(malformed(
            what,
            format!("{} voter sets (one, or two while joint)", m.configs.len()),
        ));
    }
    let mut nodes = BTreeMap::new();
    for (id, info) in &m.nodes {
        nodes.insert(node_id(*id, what)?, node_from_wire(info));
    }
    let mut configs = Vec::with_capacity(m.configs.len());
    for set in &m.configs {
        let mut voters = BTreeSet::new();
        for id in set {
            let id = node_id(*id, what)?;
            if !nodes.contains_key(&id) {
                return Err(malformed(
                    what,
                    format!("voter {id} is not among the nodes"),
                ));
            }
            voters.insert(id);
        }
        if voters.is_empty() {
            return Err(malformed(what, "an empty voter set"));
        }
        configs.push(voters);
    }
    Ok(Membership::new(configs, nodes))
}

pub(crate) fn stored_membership_from_wire(
    log_id: &[wire::LogId],
    m: &wire::Membership,
    what: &'static str,
) -> Result<StoredMembership<NodeId, NodeAddr>, Malformed> {
    let log_id = opt_log_id_from_wire(log_id, what)?;
    // An empty membership (no voter set) is the state of a node that was never initialized.
    let membership = if m.configs.is_empty() && m.nodes.is_empty() {
        Membership::default()
    } else {
        membership_from_wire(m, what)?
    };
    Ok(StoredMembership::new(log_id, membership))
}

pub(crate) fn stored_membership_to_wire(
    m: &StoredMembership<NodeId, NodeAddr>,
) -> (Vec<wire::LogId>, wire::Membership) {
    (
        opt_log_id_to_wire(m.log_id().as_ref()),
        membership_to_wire(m.membership()),
    )
}

pub(crate) fn entry_to_wire(e: &Entry<TypeConfig>) -> wire::Entry {
    let mut out = wire::Entry {
        id: log_id_to_wire(&e.log_id),
        ..Default::default()
    };
    match &e.payload {
        EntryPayload::Blank => out.kind = wire::EntryKind::Blank,
        EntryPayload::Normal(cmd) => {
            out.kind = wire::EntryKind::Normal;
            out.payload = encode(cmd);
        }
        EntryPayload::Membership(m) => {
            out.kind = wire::EntryKind::Config;
            out.membership = membership_to_wire(m);
        }
    }
    out
}

pub(crate) fn entry_from_wire(e: &wire::Entry) -> Result<Entry<TypeConfig>, Malformed> {
    const WHAT: &str = "log entry";
    let log_id = log_id_from_wire(&e.id, WHAT)?;
    let payload = match e.kind {
        wire::EntryKind::Blank => EntryPayload::Blank,
        wire::EntryKind::Normal => {
            EntryPayload::Normal(decode::<wire::Command>(&e.payload, "command")?)
        }
        wire::EntryKind::Config => {
            EntryPayload::Membership(membership_from_wire(&e.membership, WHAT)?)
        }
    };
    Ok(Entry { log_id, payload })
}

/// Checks that entries follow `prev` one index at a time with terms that never go down, and
/// none from a term after `vote`'s: openraft assumes so and must never be handed less.
pub(crate) fn check_entries(
    prev: Option<&LogId<NodeId>>,
    entries: &[Entry<TypeConfig>],
    vote: &Vote<NodeId>,
) -> Result<(), Malformed> {
    const WHAT: &str = "append request";
    let mut term = prev.map_or(0, |p| p.leader_id.term);
    for (expected, e) in (prev.map_or(0, |p| p.index + 1)..).zip(entries) {
        if e.log_id.index != expected {
            return Err(malformed(
                WHAT,
                format!("entry {} where {expected} was due", e.log_id.index),
            ));
        }
        if e.log_id.leader_id.term < term {
            return Err(malformed(
                WHAT,
                format!(
                    "entry {} goes back to term {}",
                    e.log_id.index, e.log_id.leader_id.term
                ),
            ));
        }
        if e.log_id.leader_id.term > vote.leader_id.term {
            return Err(malformed(
                WHAT,
                format!(
                    "entry {} is from term {}, after the leader's {}",
                    e.log_id.index, e.log_id.leader_id.term, vote.leader_id.term
                ),
            ));
        }
        term = e.log_id.leader_id.term;
    }
    Ok(())
}

pub(crate) fn snapshot_meta_to_wire(m: &SnapshotMeta<NodeId, NodeAddr>) -> wire::SnapshotMeta {
    let (membership_log_id, membership) = stored_membership_to_wire(&m.last_membership);
    wire::SnapshotMeta {
        last_log_id: opt_log_id_to_wire(m.last_log_id.as_ref()),
        membership_log_id,
        membership,
        snapshot_id: m.snapshot_id.clone(),
    }
}

pub(crate) fn snapshot_meta_from_wire(
    m: &wire::SnapshotMeta,
) -> Result<SnapshotMeta<NodeId, NodeAddr>, Malformed> {
    const WHAT: &str = "snapshot";
    Ok(SnapshotMeta {
        last_log_id: opt_log_id_from_wire(&m.last_log_id, WHAT)?,
        last_membership: stored_membership_from_wire(&m.membership_log_id, &m.membership, WHAT)?,
        snapshot_id: m.snapshot_id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lid(term: u64, node: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    #[test]
    fn entries_round_trip_through_their_slice_encoding() {
        let m = Membership::new(
            vec![BTreeSet::from([1, 2])],
            BTreeMap::from([
                (1, NodeAddr::new("tcp -p 1")),
                (2, NodeAddr::new("tcp -p 2")),
                (3, NodeAddr::new("tcp -p 3")),
            ]),
        );
        let cmd = wire::Command {
            client: 7,
            serial: 3,
            data: vec![1, 2, 3],
            ..Default::default()
        };
        for e in [
            Entry {
                log_id: lid(1, 1, 1),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: lid(2, 1, 2),
                payload: EntryPayload::Normal(cmd),
            },
            Entry {
                log_id: lid(2, 2, 3),
                payload: EntryPayload::Membership(m),
            },
        ] {
            let bytes = encode(&entry_to_wire(&e));
            let back = entry_from_wire(&decode::<wire::Entry>(&bytes, "entry").unwrap()).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert!(
            opt_log_id_from_wire(
                &[log_id_to_wire(&lid(1, 1, 1)), log_id_to_wire(&lid(1, 1, 2))],
                "x"
            )
            .is_err()
        );
        let negative = wire::LogId {
            leader: wire::LeaderId { term: -1, node: 1 },
            index: 0,
        };
        assert!(log_id_from_wire(&negative, "x").is_err());
        let no_node = wire::Membership {
            configs: vec![vec![4]],
            nodes: Default::default(),
        };
        assert!(
            membership_from_wire(&no_node, "x")
                .unwrap_err()
                .reason
                .contains("voter 4")
        );
        let vote = Vote::new_committed(3, 1);
        let gap = [Entry {
            log_id: lid(3, 1, 5),
            payload: EntryPayload::Blank,
        }];
        assert!(check_entries(Some(&lid(3, 1, 3)), &gap, &vote).is_err());
        let future = [Entry {
            log_id: lid(4, 1, 4),
            payload: EntryPayload::Blank,
        }];
        assert!(check_entries(Some(&lid(3, 1, 3)), &future, &vote).is_err());
        let fine = [Entry {
            log_id: lid(3, 1, 4),
            payload: EntryPayload::Blank,
        }];
        assert!(check_entries(Some(&lid(3, 1, 3)), &fine, &vote).is_ok());
        assert!(decode::<wire::Command>(&[1, 2, 3], "command").is_err());
    }
}
