//! Clusters of `floe-raft-kv` processes on loopback: elections, the leader SIGKILLed, a node
//! back with its disk or with an empty one, nodes joining and leaving.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Cluster, get};

/// ElectionTimeoutMax of `common::FAST`.
const ELECTION_MAX: Duration = Duration::from_millis(600);

async fn leader_failover(n: u64) {
    let mut cluster = Cluster::new(n, false, &[]);
    cluster.start_all();
    let all: Vec<u64> = (1..=n).collect();
    let leader = cluster.wait_leader(&all, Duration::from_secs(10)).await;

    // Writes through every node (followers forward to the leader), each acknowledged.
    let mut client = Client::new();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let node = all[i % all.len()];
        client
            .put(&cluster, &[node], &key, &value, Duration::from_secs(5))
            .await
            .expect("a write on a healthy cluster");
        acknowledged.push((key, value));
    }

    cluster.kill(leader);
    let killed_at = Instant::now();
    let survivors: Vec<u64> = all.iter().copied().filter(|id| *id != leader).collect();
    client
        .put(
            &cluster,
            &survivors,
            "after",
            "kill",
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("no write after the leader's kill: {e}\n{}", cluster.logs()));
    let served = killed_at.elapsed();
    let new_leader = cluster
        .wait_leader(&survivors, Duration::from_secs(5))
        .await;
    assert_ne!(new_leader, leader);
    // "Within a few election timeouts": the old leader's followers notice its silence after one
    // timeout, then one election or two.
    assert!(
        served < ELECTION_MAX * 6,
        "the new leader served its first write {served:?} after the kill"
    );
    println!("{n} nodes: a write was served {served:?} after the leader's SIGKILL");

    // Nothing acknowledged before the kill is lost, on any survivor.
    for id in &survivors {
        for (key, value) in &acknowledged {
            assert_eq!(
                get(&cluster, *id, key)
                    .await
                    .expect("linearizable read")
                    .as_deref(),
                Some(value.as_str()),
                "node {id}, key {key}"
            );
        }
    }

    // The old leader comes back with its disk and catches up.
    cluster.start(leader);
    let target = cluster
        .status(new_leader)
        .await
        .expect("status")
        .applied_index;
    cluster
        .wait_applied(leader, target, Duration::from_secs(10))
        .await;
    let stale = cluster
        .store(leader)
        .get("after", true)
        .await
        .expect("stale read");
    assert_eq!((stale.return_value, stale.value.as_str()), (true, "kill"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_and_survive_the_leaders_sigkill() {
    leader_failover(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_elect_and_survive_the_leaders_sigkill() {
    leader_failover(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_with_an_empty_disk_rejoins() {
    let mut cluster = Cluster::new(3, false, &[]);
    cluster.start_all();
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await;
    let follower = if leader == 1 { 2 } else { 1 };
    let mut client = Client::new();
    for i in 0..10 {
        client
            .put(
                &cluster,
                &[leader],
                &format!("a{i}"),
                "1",
                Duration::from_secs(5),
            )
            .await
            .expect("write");
    }
    cluster.kill(follower);
    cluster.wipe(follower);
    for i in 0..10 {
        client
            .put(
                &cluster,
                &[leader],
                &format!("b{i}"),
                "2",
                Duration::from_secs(5),
            )
            .await
            .expect("write with a node down");
    }
    cluster.start(follower);
    let target = cluster.status(leader).await.expect("status").applied_index;
    cluster
        .wait_applied(follower, target, Duration::from_secs(10))
        .await;
    for key in ["a0", "a9", "b0", "b9"] {
        let r = cluster
            .store(follower)
            .get(key, true)
            .await
            .expect("stale read");
        assert!(
            r.return_value,
            "the wiped node misses {key} after catching up"
        );
    }
    // The leader neither panicked nor lost its place.
    for id in [1, 2, 3] {
        let p = cluster
            .nodes
            .get_mut(&id)
            .unwrap()
            .process
            .as_mut()
            .unwrap();
        assert!(
            p.try_wait().expect("process state").is_none(),
            "node {id} exited:\n{}",
            cluster.log_tail(id)
        );
    }
    client
        .put(&cluster, &[follower], "c", "3", Duration::from_secs(5))
        .await
        .expect("write through the rejoined node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_through_any_member_and_leave() {
    let mut cluster = Cluster::new(3, false, &[]);
    cluster.add_joiner(4);
    cluster.start(1);
    cluster.start(2);
    cluster.start(3);
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await;
    let mut client = Client::new();
    client
        .put(
            &cluster,
            &[leader],
            "before",
            "join",
            Duration::from_secs(5),
        )
        .await
        .expect("write");

    // Node 4 joins through node 1 (whichever role it has): learner, then voter.
    cluster.start(4);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = cluster.status(leader).await.expect("status");
        if s.membership.configs.len() == 1 && s.membership.configs[0].len() == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 4 did not become a voter: {:?}\n{}",
            s.membership,
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get(&cluster, 4, "before")
            .await
            .expect("read on the new node")
            .as_deref(),
        Some("join")
    );

    // A removal asked of a follower is carried out by the leader.
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    cluster
        .raft(follower)
        .leave(4)
        .await
        .expect("leave through a follower");
    let s = cluster.status(leader).await.expect("status");
    assert_eq!(s.membership.configs, vec![vec![1, 2, 3]]);
    assert!(!s.membership.nodes.contains_key(&4));
    client
        .put(
            &cluster,
            &[follower],
            "after",
            "leave",
            Duration::from_secs(5),
        )
        .await
        .expect("write after the removal");
    // A removed node's votes are refused: it is not a member any more.
    cluster.kill(4);
}
