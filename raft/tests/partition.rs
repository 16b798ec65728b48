//! Partitions cut through the fault-injecting links while every process keeps running: the
//! minority refuses writes and linearizable reads, the majority goes on, and the minority
//! catches up once the links heal.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Cluster, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_refuses_writes_and_catches_up_after_healing() {
    let mut cluster = Cluster::new(5, true, &[("Raft.RequestTimeout", "1500")]);
    cluster.start_all();
    let all = [1, 2, 3, 4, 5];
    let leader = cluster.wait_leader(&all, Duration::from_secs(10)).await;
    let mut client = Client::new();
    client
        .put(&cluster, &[leader], "x", "before", Duration::from_secs(5))
        .await
        .expect("write");
    for id in all {
        cluster
            .wait_applied(
                id,
                cluster.status(leader).await.unwrap().applied_index,
                Duration::from_secs(5),
            )
            .await;
    }

    // The old leader and one follower on one side, three nodes on the other.
    let other = all.into_iter().find(|id| *id != leader).unwrap();
    let minority = [leader, other];
    let majority: Vec<u64> = all
        .into_iter()
        .filter(|id| !minority.contains(id))
        .collect();
    cluster
        .mesh
        .as_ref()
        .unwrap()
        .partition(&minority, &majority);

    // The majority elects a leader of its own and takes writes.
    let new_leader = cluster
        .wait_leader(&majority, Duration::from_secs(10))
        .await;
    client
        .put(&cluster, &majority, "x", "after", Duration::from_secs(10))
        .await
        .expect("write on the majority");

    // The minority refuses writes and linearizable reads, whichever of its nodes is asked.
    for id in minority {
        let started = Instant::now();
        let put = cluster
            .store(id)
            .put(
                "minority",
                "lost",
                client.id,
                1_000 + id as i64,
                1_000 + id as i64,
            )
            .await;
        assert!(put.is_err(), "node {id} of the minority accepted a write");
        let err = format!("{:?}", put.unwrap_err());
        assert!(
            err.contains("no leader") || err.contains("majority"),
            "node {id}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the refusal took {:?}",
            started.elapsed()
        );
        let read = cluster.store(id).get("x", false).await;
        assert!(
            read.is_err(),
            "node {id} of the minority served a linearizable read: {read:?}"
        );
        // A stale read is still served, from the old state.
        let stale = cluster
            .store(id)
            .get("x", true)
            .await
            .expect("stale read on the minority");
        assert_eq!(stale.value, "before");
    }

    // After healing, the minority follows the new leader and has the majority's writes.
    cluster.mesh.as_ref().unwrap().heal_all();
    let target = cluster
        .status(new_leader)
        .await
        .expect("status")
        .applied_index;
    for id in minority {
        cluster
            .wait_applied(id, target, Duration::from_secs(10))
            .await;
        assert_eq!(
            get(&cluster, id, "x")
                .await
                .expect("linearizable read after healing")
                .as_deref(),
            Some("after")
        );
        assert_eq!(
            get(&cluster, id, "minority")
                .await
                .expect("read")
                .as_deref(),
            None,
            "a refused write was applied"
        );
    }
    let leader_now = cluster.wait_leader(&all, Duration::from_secs(10)).await;
    assert!(
        majority.contains(&leader_now),
        "the old leader came back as leader over a newer term"
    );
}
