//! Publishers and subscribers written with ZeroC's Python (unmodified `Ice` and `IceStorm`
//! modules) and with Floe's generated code, through an icestorm-lite broker, in every
//! combination.

mod clients;
mod common;

use std::time::Duration;

use clients::{subscribe, topic_manager};
use common::*;
use icestorm_lite::Broker;
use icestorm_lite::slice::ice_storm::{TopicManagerPrx, TopicPrx};

async fn broker() -> (Broker, String) {
    let b = Broker::start(transient_props()).await.unwrap();
    let tm = b.topic_manager().to_string();
    (b, tm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publishers_and_subscribers_receive_every_event() {
    let (b, tm) = broker().await;
    // create, TopicExists, retrieve, NoSuchTopic, retrieveAll; twoway, ordered, oneway and
    // batch subscribers; 300 ticks from a twoway publisher and 300 from a oneway one.
    run_clock_py(&tm, &["all", "py-news", "300"]).await;
    b.shutdown().await;
}

/// Subscribes twoway, twoway ordered, oneway and batch-oneway Floe recorders to `topic`.
async fn floe_subscribers(
    topic: &TopicPrx,
    adapter: &floe::ObjectAdapter,
    tag: &str,
) -> Vec<(&'static str, std::sync::Arc<Recorder>)> {
    let mut out = Vec::new();
    for kind in ["twoway", "ordered", "oneway", "batch"] {
        let (rec, prx) = add_recorder(adapter, &format!("{tag}-{kind}"));
        let publisher = subscribe(topic, prx, kind).await;
        assert!(publisher.is_some(), "a per-subscriber publisher");
        out.push((kind, rec));
    }
    out
}

async fn check_received(subs: &[(&'static str, std::sync::Arc<Recorder>)], source: &str, n: usize) {
    for (kind, rec) in subs {
        assert!(
            rec.wait(source, n, Duration::from_secs(30)).await,
            "{kind} subscriber received {} of {n} ticks from {source}",
            rec.count(source)
        );
        let seqs = rec.seqs(source);
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            (0..n as i32).collect::<Vec<_>>(),
            "{kind}: every tick once"
        );
        if *kind == "ordered" {
            assert_eq!(
                seqs, sorted,
                "the ordered subscriber receives ticks in order"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_publishers_and_subscribers_receive_every_event() {
    let (b, tm_str) = broker().await;
    let (comm, adapter) = floe_subscriber_side().await;
    let tm = TopicManagerPrx::checked_cast(&comm.string_to_proxy(&tm_str).unwrap().unwrap())
        .await
        .unwrap()
        .expect("a TopicManager");
    let topic = tm.create("floe-news").await.unwrap().expect("a topic");
    assert_eq!(topic.get_name().await.unwrap(), "floe-news");
    let subs = floe_subscribers(&topic, &adapter, "floe").await;
    assert_eq!(topic.get_subscribers().await.unwrap().len(), 4);

    let publisher = topic.get_publisher().await.unwrap().expect("a publisher");
    let clock = clock::demo::ClockPrx::unchecked_cast(publisher.ice_twoway());
    for i in 0..300 {
        clock.tick("floe-twoway", i, now_micros()).await.unwrap();
    }
    let clock = clock::demo::ClockPrx::unchecked_cast(publisher.ice_oneway());
    for i in 0..300 {
        clock.tick("floe-oneway", i, now_micros()).await.unwrap();
    }
    check_received(&subs, "floe-twoway", 300).await;
    check_received(&subs, "floe-oneway", 300).await;
    comm.destroy().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publisher_to_floe_subscribers() {
    let (b, tm_str) = broker().await;
    let (comm, adapter) = floe_subscriber_side().await;
    let tm = topic_manager(&comm, &tm_str);
    let topic = tm.create("mixed-a").await.unwrap().unwrap();
    let subs = floe_subscribers(&topic, &adapter, "mixed-a").await;
    run_clock_py(&tm_str, &["publish", "mixed-a", "200", "py-twoway"]).await;
    run_clock_py(&tm_str, &["publish", "mixed-a", "-200", "py-oneway"]).await;
    check_received(&subs, "py-twoway", 200).await;
    check_received(&subs, "py-oneway", 200).await;
    comm.destroy().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_publisher_to_python_subscribers() {
    let (b, tm_str) = broker().await;
    let mut py = spawn_clock_py(&tm_str, &["subscribe", "mixed-b", "400", "floe-pub"]);
    py.wait_line("READY").await;
    let (comm, _adapter) = floe_subscriber_side().await;
    let tm = topic_manager(&comm, &tm_str);
    let topic = tm.retrieve("mixed-b").await.unwrap().unwrap();
    assert_eq!(topic.get_subscribers().await.unwrap().len(), 3);
    let publisher = topic.get_publisher().await.unwrap().unwrap();
    let twoway = clock::demo::ClockPrx::unchecked_cast(publisher.ice_twoway());
    let oneway = clock::demo::ClockPrx::unchecked_cast(publisher.ice_oneway());
    for i in 0..400 {
        // Alternate twoway and oneway publishing on the same connection: order is kept.
        if i % 2 == 0 {
            twoway.tick("floe-pub", i, now_micros()).await.unwrap();
        } else {
            oneway.tick("floe-pub", i, now_micros()).await.unwrap();
        }
    }
    let out = py.finish().await;
    assert!(out.ok, "python subscribers:\n{}", out.text);
    comm.destroy().await;
    b.shutdown().await;
}
