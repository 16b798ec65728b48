//! A stalled subscriber never slows the others: one twoway-ordered subscriber whose servant never
//! answers, and one oneway subscriber whose peer accepts the connection and then never reads
//! (its socket buffers fill and the broker's writes block). The healthy subscribers receive the
//! same burst of events about as fast as without them.

mod clients;
mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clients::{subscribe, subscribe_deaf, topic_manager};
use common::*;
use icestorm_lite::Broker;
use icestorm_lite::slice::ice_storm::TopicPrx;

const EVENTS: i32 = 1500;

/// Publishes a burst oneway and returns how long until every healthy subscriber had it all.
async fn burst(
    publisher: &clock::demo::ClockPrx,
    source: &str,
    healthy: &[Arc<Recorder>],
) -> Duration {
    let started = Instant::now();
    for i in 0..EVENTS {
        publisher.tick(source, i, now_micros()).await.unwrap();
    }
    for r in healthy {
        assert!(
            r.wait(source, EVENTS as usize, Duration::from_secs(60))
                .await,
            "a healthy subscriber received {} of {EVENTS} events while another was stalled",
            r.count(source)
        );
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscribers_do_not_slow_the_others() {
    // The stalled subscribers fall about 100 MB behind: bounds above that, since this test is
    // about time (the byte bounds have their own test in hostile.rs).
    let props = transient_props();
    props.set_property("IceStorm.Send.QueueMemoryMax", "262144");
    props.set_property("IceStorm.MemoryMax", "524288");
    let broker = Broker::start(props).await.unwrap();
    let (comm, adapter) = floe_subscriber_side().await;
    let tm = topic_manager(&comm, &broker.topic_manager().to_string());
    let topic: TopicPrx = tm.create("slow").await.unwrap().unwrap();
    let mut healthy = Vec::new();
    for kind in ["twoway", "ordered", "oneway"] {
        let (rec, prx) = add_recorder(&adapter, &format!("healthy-{kind}"));
        subscribe(&topic, prx, kind).await;
        healthy.push(rec);
    }
    let publisher = clock::demo::ClockPrx::unchecked_cast(
        topic.get_publisher().await.unwrap().unwrap().ice_oneway(),
    );
    // A twoway publish is answered once its event is written to idle subscribers: a subscriber
    // that stops reading must not hold those answers up.
    let twoway_publisher = clock::demo::ClockPrx::unchecked_cast(
        topic.get_publisher().await.unwrap().unwrap().ice_twoway(),
    );
    // Large events, so that a peer that does not read fills its socket buffers quickly.
    let source = |tag: &str| format!("{tag}{}", "x".repeat(16 * 1024));
    // Twoway bursts carry more than a socket buffers here (48 MB), so that the deaf subscriber's
    // socket fills under a write started by a twoway publish.
    let big_source = |tag: &str| format!("{tag}{}", "x".repeat(32 * 1024));

    let baseline = burst(&publisher, &source("baseline"), &healthy).await;
    let baseline_twoway = burst(&twoway_publisher, &big_source("baseline-twoway"), &healthy).await;

    // A subscriber whose servant never answers, on its own endpoint.
    let stalled_adapter = comm
        .create_object_adapter_with_endpoints("Stalled", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    stalled_adapter.activate().unwrap();
    let (stalled, prx) = add_recorder(&stalled_adapter, "stalled-ordered");
    stalled.stall.store(true, Ordering::Relaxed);
    subscribe(&topic, prx, "ordered").await;
    // A oneway subscriber that never reads.
    let deaf_task = subscribe_deaf(&comm, &topic, "deaf").await;
    assert_eq!(topic.get_subscribers().await.unwrap().len(), 5);

    // Twoway first: the deaf subscriber's socket fills during this burst.
    let twoway_with_stalled =
        burst(&twoway_publisher, &big_source("stalled-twoway"), &healthy).await;
    let with_stalled = burst(&publisher, &source("stalled"), &healthy).await;
    let with_stalled_again = burst(&publisher, &source("again"), &healthy).await;
    eprintln!(
        "baseline {baseline:?} (twoway publisher {baseline_twoway:?}), with stalled subscribers \
         {with_stalled:?}, {with_stalled_again:?} (twoway publisher {twoway_with_stalled:?})"
    );
    for (t, base) in [
        (with_stalled, baseline),
        (with_stalled_again, baseline),
        (twoway_with_stalled, baseline_twoway),
    ] {
        assert!(
            t <= base * 3 + Duration::from_millis(500),
            "healthy subscribers slowed down by stalled ones: {t:?} against {base:?} without them"
        );
    }
    // The stalled subscribers are still subscribed (Send.Timeout is a minute) and got nothing.
    assert_eq!(stalled.count(&source("stalled")), 0);
    assert_eq!(topic.get_subscribers().await.unwrap().len(), 5);
    stalled.unstall();
    deaf_task.abort();
    comm.destroy().await;
    broker.shutdown_within(Duration::from_millis(100)).await;
}
