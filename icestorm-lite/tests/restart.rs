//! The broker binary is killed with SIGKILL and started again on the same data directory: every
//! topic, subscriber and link it acknowledged is back, and publishing reaches every subscriber
//! (Floe subscribers in this process and a ZeroC Python subscriber in its own).

mod clients;
mod common;

use std::time::Duration;

use clients::{subscribe, topic_manager};
use common::*;
use floe_test_support::write_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_keeps_topics_subscribers_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let (tm_port, pub_port) = (free_port(), free_port());
    // The configuration a ZeroC IceStorm service would use (icebox's IceStorm.* properties).
    let config = write_config(
        dir.path(),
        "config.icestorm",
        &format!(
            "IceStorm.InstanceName=IceStorm\n\
             IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p {tm_port}\n\
             IceStorm.Publish.Endpoints=tcp -h 127.0.0.1 -p {pub_port}\n\
             IceStorm.LMDB.Path={}\n\
             IceStorm.Trace.TopicManager=1\n",
            dir.path().join("db").display()
        ),
    );
    let broker = start_broker_process(&config, tm_port);
    let tm_str = broker.topic_manager.clone();

    let (comm, adapter) = floe_subscriber_side().await;
    let tm = topic_manager(&comm, &tm_str);
    let mut recorders = Vec::new();
    for name in ["r1", "r2"] {
        let topic = tm.create(name).await.unwrap().unwrap();
        for kind in ["twoway", "ordered", "oneway"] {
            let (rec, prx) = add_recorder(&adapter, &format!("{name}-{kind}"));
            subscribe(&topic, prx, kind).await;
            recorders.push((name, kind, rec));
        }
    }
    let r1 = tm.retrieve("r1").await.unwrap().unwrap();
    let r2 = tm.retrieve("r2").await.unwrap().unwrap();
    r1.link(Some(r2.clone()), 0).await.unwrap();
    let mut py = spawn_clock_py(&tm_str, &["subscribe", "r3", "50", "after-restart"]);
    py.wait_line("READY").await;

    // SIGKILL: no chance to flush anything that was not already on disk.
    let mut broker = broker;
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    drop(broker);
    let broker = start_broker_process(&config, tm_port);

    let all = tm.retrieve_all().await.unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    assert_eq!(names, ["r1", "r2", "r3"]);
    let links = r1.get_link_info_seq().await.unwrap();
    assert_eq!(links.len(), 1, "the link r1 -> r2 survived");
    assert_eq!(links[0].name, "r2");
    // r2 also has the link from r1 as a subscriber of r1, not of r2.
    assert_eq!(r2.get_subscribers().await.unwrap().len(), 3);
    assert_eq!(
        r1.get_subscribers().await.unwrap().len(),
        4,
        "3 subscribers and the link"
    );

    for (name, n) in [("r1", 40), ("r2", 40), ("r3", 50)] {
        let topic = tm.retrieve(name).await.unwrap().unwrap();
        let clock =
            clock::demo::ClockPrx::unchecked_cast(topic.get_publisher().await.unwrap().unwrap());
        for i in 0..n {
            clock.tick("after-restart", i, now_micros()).await.unwrap();
        }
    }
    for (name, kind, rec) in &recorders {
        // r2's subscribers also get r1's events through the link.
        let n = if *name == "r2" { 80 } else { 40 };
        assert!(
            rec.wait("after-restart", n, Duration::from_secs(20)).await,
            "{name}/{kind} received {} of {n} events after the restart",
            rec.count("after-restart")
        );
        if *kind == "ordered" && *name == "r1" {
            assert_eq!(rec.seqs("after-restart"), (0..40).collect::<Vec<_>>());
        }
    }
    let out = py.finish().await;
    assert!(
        out.ok,
        "python subscriber across the restart:\n{}",
        out.text
    );
    drop(broker);
    comm.destroy().await;
}
