//! Linearizability under faults: concurrent clients put and get registers on every node while
//! a nemesis SIGKILLs, restarts and partitions nodes; the recorded history is checked with
//! `floe_test_support::lincheck`. A deliberately broken mode (`Raft.UnsafeStaleReads=1`: stale
//! reads served as linearizable) shows that the check can fail.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Cluster};
use floe_raft::kv::slice::raft_kv::StorePrx;
use floe_test_support::lincheck::{self, CheckError, Operation};
use rand::Rng;

const KEYS: [&str; 3] = ["a", "b", "c"];

fn ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// One client: random puts of unique values and linearizable gets on random nodes until
/// `stop`; every put carries the client's id and a new serial.
async fn client(
    n: u64,
    stores: Vec<StorePrx>,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Operation> {
    let mut history = Vec::new();
    let id = (rand::random::<u64>() >> 1) as i64 | 1;
    let mut serial = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let (key, node, put) = {
            let mut rng = rand::thread_rng();
            (
                KEYS[rng.gen_range(0..KEYS.len())],
                rng.gen_range(0..stores.len()),
                rng.gen_bool(0.5),
            )
        };
        let store = &stores[node];
        let invoked = ns(start);
        if put {
            serial += 1;
            let value = format!("{n}-{serial}");
            let r = store.put(key, &value, id, serial, serial).await;
            // A put that failed may still have been applied (or may be, later): its outcome is
            // unknown to the checker.
            let completed = r.is_ok().then(|| ns(start));
            history.push(Operation::put(n, key, &value, invoked, completed));
        } else if let Ok(r) = store.get(key, false).await {
            let observed = r.return_value.then_some(r.value.as_str());
            history.push(Operation::get(n, key, observed, invoked, Some(ns(start))));
        }
        if rand::random::<u8>() < 32 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    history
}

/// SIGKILLs, restarts and partitions nodes until `stop`, keeping at most two of five down;
/// heals and restarts everything at the end. Returns the cluster and what it did.
fn nemesis(mut cluster: Cluster, stop: Arc<AtomicBool>) -> (Cluster, Vec<String>) {
    let mut done = Vec::new();
    let mut rng = rand::thread_rng();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..800)));
        let running = cluster.running();
        let dead: Vec<u64> = cluster
            .nodes
            .keys()
            .copied()
            .filter(|id| !running.contains(id))
            .collect();
        match rng.gen_range(0..4) {
            0 if running.len() > 3 => {
                let id = running[rng.gen_range(0..running.len())];
                cluster.kill(id);
                done.push(format!("kill {id}"));
            }
            1 if !dead.is_empty() => {
                let id = dead[rng.gen_range(0..dead.len())];
                cluster.start(id);
                done.push(format!("restart {id}"));
            }
            2 => {
                let mut ids: Vec<u64> = cluster.nodes.keys().copied().collect();
                let cut = rng.gen_range(1..=2);
                let mut side = Vec::new();
                for _ in 0..cut {
                    side.push(ids.remove(rng.gen_range(0..ids.len())));
                }
                let mesh = cluster.mesh.as_ref().unwrap();
                mesh.heal_all();
                mesh.partition(&side, &ids);
                done.push(format!("partition {side:?} | {ids:?}"));
            }
            _ => {
                cluster.mesh.as_ref().unwrap().heal_all();
                done.push("heal".into());
            }
        }
    }
    cluster.mesh.as_ref().unwrap().heal_all();
    let running = cluster.running();
    for id in cluster.nodes.keys().copied().collect::<Vec<_>>() {
        if !running.contains(&id) {
            cluster.start(id);
        }
    }
    (cluster, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_and_partitions_keep_the_history_linearizable() {
    let mut cluster = Cluster::new(5, true, &[("Raft.RequestTimeout", "1500")]);
    cluster.start_all();
    cluster
        .wait_leader(&[1, 2, 3, 4, 5], Duration::from_secs(10))
        .await;
    let stores: Vec<StorePrx> = (1..=5)
        .map(|id| cluster.store_with_timeout(id, 2500))
        .collect();
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (1..=6)
        .map(|n| tokio::spawn(client(n, stores.clone(), start, stop.clone())))
        .collect();
    let nemesis = {
        let stop = stop.clone();
        std::thread::spawn(move || nemesis(cluster, stop))
    };
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let mut history = Vec::new();
    for c in clients {
        history.extend(c.await.expect("client task"));
    }
    let (cluster, faults) =
        tokio::task::spawn_blocking(move || nemesis.join().expect("nemesis thread"))
            .await
            .unwrap();
    let puts = history
        .iter()
        .filter(|o| matches!(o.kind, lincheck::Kind::Put { .. }) && o.completed.is_some())
        .count();
    let gets = history
        .iter()
        .filter(|o| matches!(o.kind, lincheck::Kind::Get { .. }))
        .count();
    println!(
        "faults: {faults:?}\n{puts} puts acknowledged, {gets} gets answered, {} operations",
        history.len()
    );
    assert!(faults.len() >= 5, "the nemesis did too little: {faults:?}");
    assert!(
        puts >= 50 && gets >= 50,
        "too few operations went through ({puts} puts, {gets} gets) under {faults:?}\n{}",
        cluster.logs()
    );
    match lincheck::check(&history) {
        Ok(summary) => println!(
            "linearizable: {} operations, {} steps",
            summary.operations, summary.steps
        ),
        Err(e) => panic!(
            "the history is not linearizable: {e}\nfaults: {faults:?}\n{}",
            cluster.logs()
        ),
    }
}

/// Isolates a follower, writes through the majority, then reads from the isolated follower;
/// returns the history.
async fn stale_read_scenario(broken: bool) -> Vec<Operation> {
    let extra: &[(&str, &str)] = if broken {
        &[
            ("Raft.UnsafeStaleReads", "1"),
            ("Raft.RequestTimeout", "1000"),
        ]
    } else {
        &[("Raft.RequestTimeout", "1000")]
    };
    let mut cluster = Cluster::new(3, true, extra);
    cluster.start_all();
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await;
    let isolated = if leader == 3 { 2 } else { 3 };
    let start = Instant::now();
    let mut history = Vec::new();
    let mut writer = Client::new();

    let t = ns(start);
    writer
        .put(&cluster, &[leader], "x", "old", Duration::from_secs(5))
        .await
        .expect("write");
    history.push(Operation::put(1, "x", "old", t, Some(ns(start))));
    cluster
        .wait_applied(
            isolated,
            cluster.status(leader).await.unwrap().applied_index,
            Duration::from_secs(5),
        )
        .await;

    cluster.mesh.as_ref().unwrap().isolate(isolated);
    let t = ns(start);
    writer
        .put(&cluster, &[leader], "x", "new", Duration::from_secs(5))
        .await
        .expect("write on the majority");
    history.push(Operation::put(1, "x", "new", t, Some(ns(start))));

    let t = ns(start);
    if let Ok(r) = cluster.store(isolated).get("x", false).await {
        history.push(Operation::get(
            2,
            "x",
            r.return_value.then_some(r.value.as_str()),
            t,
            Some(ns(start)),
        ));
    }
    cluster.mesh.as_ref().unwrap().heal_all();
    let t = ns(start);
    let r = cluster
        .store(isolated)
        .get("x", false)
        .await
        .expect("read after healing");
    history.push(Operation::get(
        2,
        "x",
        r.return_value.then_some(r.value.as_str()),
        t,
        Some(ns(start)),
    ));
    history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_stale_reads_served_as_linearizable() {
    let broken = stale_read_scenario(true).await;
    match lincheck::check(&broken) {
        Err(CheckError::Violation { key, explanation }) => {
            assert_eq!(key, "x");
            assert!(explanation.contains("\"old\""), "{explanation}");
        }
        other => {
            panic!("stale reads served as linearizable were not caught: {other:?}\n{broken:?}")
        }
    }
    let correct = stale_read_scenario(false).await;
    lincheck::check(&correct)
        .unwrap_or_else(|e| panic!("the same scenario without the broken mode: {e}\n{correct:?}"));
}
