//! Requests a peer should never send: malformed payloads, a node that is not a member, a
//! snapshot from a stale term. Each gets a clear error, and nothing is stored or applied.

mod common;

use std::time::Duration;

use common::{Client, Cluster};
use floe::OperationMode;
use floe_raft::slice::floe_raft::{self as wire, node};

fn failure_reason<T: std::fmt::Debug>(r: Result<T, node::AppendEntriesError>) -> String {
    match r {
        Err(node::AppendEntriesError::RaftFailure(f)) => f.reason,
        other => panic!("expected RaftFailure, got {other:?}"),
    }
}

fn entry(term: i64, leader: i64, index: i64) -> wire::Entry {
    wire::Entry {
        id: wire::LogId {
            leader: wire::LeaderId { term, node: leader },
            index,
        },
        kind: wire::EntryKind::Blank,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_requests_are_refused_and_change_nothing() {
    let mut cluster = Cluster::new(3, false, &[]);
    cluster.start_all();
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await;
    let mut client = Client::new();
    client
        .put(&cluster, &[leader], "k", "v", Duration::from_secs(5))
        .await
        .expect("write");
    let follower = if leader == 1 { 2 } else { 1 };
    let before = cluster.status(follower).await.expect("status");
    cluster
        .wait_applied(
            follower,
            cluster.status(leader).await.unwrap().applied_index,
            Duration::from_secs(5),
        )
        .await;
    let before = cluster.status(follower).await.unwrap_or(before);
    let target = cluster.raft(follower);
    let term = before.term;
    let vote = wire::Vote {
        leader: wire::LeaderId {
            term,
            node: leader as i64,
        },
        committed: true,
    };

    // Bytes that are not an AppendRequest at all: the runtime refuses them before the servant.
    let mut garbage = vec![0u8; 6];
    garbage[0] = 16;
    garbage[4] = 1;
    garbage[5] = 1;
    garbage.extend_from_slice(&[0xff; 10]);
    let raw = target
        .ice_invoke(
            "appendEntries",
            OperationMode::Normal,
            bytes::Bytes::from(garbage),
            None,
        )
        .await;
    assert!(raw.is_err(), "garbage parameters were accepted: {raw:?}");

    // Two "previous" log ids.
    let two_prev = wire::AppendRequest {
        vote: vote.clone(),
        prev_log_id: vec![entry(1, 1, 1).id, entry(1, 1, 2).id],
        ..Default::default()
    };
    let reason = failure_reason(target.append_entries(&two_prev).await);
    assert!(
        reason.contains("malformed append request") && reason.contains("at most one"),
        "{reason}"
    );

    // Entries that skip an index.
    let last = before.last_log_index;
    let prev = vec![wire::LogId {
        leader: wire::LeaderId {
            term,
            node: leader as i64,
        },
        index: last,
    }];
    let gap = wire::AppendRequest {
        vote: vote.clone(),
        prev_log_id: prev.clone(),
        entries: vec![entry(term, leader as i64, last + 2)],
        ..Default::default()
    };
    let reason = failure_reason(target.append_entries(&gap).await);
    assert!(
        reason.contains(&format!("entry {} where {} was due", last + 2, last + 1)),
        "{reason}"
    );

    // An entry from a term after the sender's own.
    let future = wire::AppendRequest {
        vote: vote.clone(),
        prev_log_id: prev.clone(),
        entries: vec![entry(term + 5, leader as i64, last + 1)],
        ..Default::default()
    };
    let reason = failure_reason(target.append_entries(&future).await);
    assert!(reason.contains("after the leader's"), "{reason}");

    // A Normal entry whose payload is not a command.
    let mut bad_command = entry(term, leader as i64, last + 1);
    bad_command.kind = wire::EntryKind::Normal;
    bad_command.payload = vec![1, 2, 3];
    let bad = wire::AppendRequest {
        vote: vote.clone(),
        prev_log_id: prev.clone(),
        entries: vec![bad_command],
        ..Default::default()
    };
    let reason = failure_reason(target.append_entries(&bad).await);
    assert!(reason.contains("malformed command"), "{reason}");

    // A membership whose voter is not among its nodes.
    let mut bad_config = entry(term, leader as i64, last + 1);
    bad_config.kind = wire::EntryKind::Config;
    bad_config.membership = wire::Membership {
        configs: vec![vec![7]],
        nodes: Default::default(),
    };
    let bad = wire::AppendRequest {
        vote: vote.clone(),
        prev_log_id: prev.clone(),
        entries: vec![bad_config],
        ..Default::default()
    };
    let reason = failure_reason(target.append_entries(&bad).await);
    assert!(
        reason.contains("voter 7 is not among the nodes"),
        "{reason}"
    );

    // A node that is not a member asks for a vote in a newer term, or acts as leader.
    let stranger = wire::Vote {
        leader: wire::LeaderId {
            term: term + 10,
            node: 99,
        },
        committed: false,
    };
    match target
        .vote(&wire::VoteRequest {
            vote: stranger,
            last_log_id: prev.clone(),
        })
        .await
    {
        Err(node::VoteError::RaftFailure(f)) => {
            assert!(f.reason.contains("node 99 is not a member"), "{}", f.reason)
        }
        other => panic!("a stranger's vote request got {other:?}"),
    }
    let stranger_leader = wire::Vote {
        leader: wire::LeaderId { term, node: 99 },
        committed: true,
    };
    let reason = failure_reason(
        target
            .append_entries(&wire::AppendRequest {
                vote: stranger_leader,
                prev_log_id: prev.clone(),
                ..Default::default()
            })
            .await,
    );
    assert!(reason.contains("node 99 is not a member"), "{reason}");

    // A snapshot chunk from a term before the node's: answered with the node's newer vote.
    let stale = wire::Vote {
        leader: wire::LeaderId {
            term: term - 1,
            node: leader as i64,
        },
        committed: true,
    };
    let chunk = wire::SnapshotChunk {
        vote: stale,
        meta: wire::SnapshotMeta {
            last_log_id: vec![entry(term - 1, leader as i64, last + 100).id],
            snapshot_id: "stale".into(),
            ..Default::default()
        },
        offset: 0,
        data: vec![0; 16],
        done: true,
    };
    let reply = target
        .install_snapshot(&chunk)
        .await
        .expect("a stale chunk is answered");
    assert!(
        reply.leader.term >= term,
        "the node's answer {reply:?} does not show its newer term"
    );
    // A negative offset is malformed.
    let negative = wire::SnapshotChunk {
        offset: -1,
        vote: vote.clone(),
        ..chunk.clone()
    };
    match target.install_snapshot(&negative).await {
        Err(node::InstallSnapshotError::RaftFailure(f)) => {
            assert!(f.reason.contains("negative offset"), "{}", f.reason)
        }
        other => panic!("a negative offset got {other:?}"),
    }

    // Membership requests with bad arguments.
    match target
        .join(
            -3,
            &wire::NodeInfo {
                endpoints: "tcp -p 1".into(),
                ..Default::default()
            },
        )
        .await
    {
        Err(node::JoinError::RaftFailure(f)) => {
            assert!(f.reason.contains("negative node id"), "{}", f.reason)
        }
        other => panic!("a negative id got {other:?}"),
    }
    match target
        .join(
            9,
            &wire::NodeInfo {
                endpoints: "tcp -p notaport".into(),
                ..Default::default()
            },
        )
        .await
    {
        Err(node::JoinError::RaftFailure(f)) => {
            assert!(f.reason.contains("endpoints"), "{}", f.reason)
        }
        other => panic!("bad endpoints got {other:?}"),
    }

    // Nothing was stored or applied, the term did not move, the leader is the same.
    let after = cluster.status(follower).await.expect("status");
    assert_eq!(
        (
            after.term,
            after.leader,
            after.last_log_index,
            after.applied_index,
            after.snapshot_index
        ),
        (
            before.term,
            before.leader,
            before.last_log_index,
            before.applied_index,
            before.snapshot_index
        )
    );
    assert_eq!(after.membership, before.membership);
    let r = cluster.store(follower).get("k", false).await.expect("read");
    assert_eq!(r.value, "v");
    client
        .put(&cluster, &[follower], "k", "w", Duration::from_secs(5))
        .await
        .expect("the cluster still takes writes");
}
