//! A node that was down while the log moved past a snapshot and was purged catches up from
//! the snapshot, sent in chunks.

mod common;

use std::time::Duration;

use common::{Client, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_many_writes_catches_up_by_snapshot() {
    let mut cluster = Cluster::new(
        3,
        false,
        &[
            ("Raft.SnapshotInterval", "50"),
            ("Raft.LogsToKeep", "10"),
            ("Raft.MaxPayloadEntries", "20"),
            ("Raft.SnapshotChunkSize", "4096"),
        ],
    );
    cluster.start_all();
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await;
    let down = if leader == 3 { 2 } else { 3 };
    cluster.kill(down);

    let mut client = Client::new();
    let value = "v".repeat(40);
    for i in 0..300 {
        client
            .put(
                &cluster,
                &[leader],
                &format!("key-{i:04}"),
                &value,
                Duration::from_secs(5),
            )
            .await
            .expect("write");
    }
    let status = cluster.status(leader).await.expect("status");
    assert!(
        status.snapshot_index >= 250,
        "the leader took no snapshot: {status:?}"
    );

    cluster.start(down);
    cluster
        .wait_applied(down, status.applied_index, Duration::from_secs(15))
        .await;
    let caught_up = cluster.status(down).await.expect("status");
    assert!(
        caught_up.snapshot_index >= 250,
        "node {down} did not install a snapshot: {caught_up:?}"
    );
    let log = std::fs::read_to_string(&cluster.nodes[&down].log).unwrap_or_default();
    assert!(
        log.contains("snapshot installed"),
        "node {down}'s log does not show a snapshot installed:\n{}",
        cluster.log_tail(down)
    );
    for i in [0, 149, 299] {
        let r = cluster
            .store(down)
            .get(&format!("key-{i:04}"), true)
            .await
            .expect("stale read");
        assert_eq!(
            (r.return_value, r.value.as_str()),
            (true, value.as_str()),
            "key {i} on node {down}"
        );
    }
}
