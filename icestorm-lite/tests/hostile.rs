//! The broker against hostile clients on loopback: subscriptions that loop events back into the
//! broker, subscribers that never read, events that outgrow the size limit once forwarded,
//! unbounded topic creation, and events that crash ZeroC subscribers.

mod clients;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clients::{qos, setup, subscribe, subscribe_deaf, topic_manager};
use common::*;
use floe::codegen::BoxFuture;
use floe::encoding::{Encodable, OutputStream};
use floe::{Blobject, BlobjectDispatcher, Current, EncodingVersion, Error, OperationMode};
use floe_test_support::write_config;
use icestorm_lite::Broker;
use icestorm_lite::class_graph::sliced_chain;
use icestorm_lite::slice::ice_storm::{
    TopicPrx, topic::LinkError, topic::SubscribeAndGetPublisherError, topic_manager::CreateError,
};

/// An encapsulation 1.1 around `body`.
fn encaps(body: &[u8]) -> Bytes {
    let mut v = ((body.len() + 6) as i32).to_le_bytes().to_vec();
    v.extend_from_slice(&[1, 1]);
    v.extend_from_slice(body);
    Bytes::from(v)
}

/// A topic impostor: `getLinkProxy` answers with a proxy of the attacker's choice.
struct FakeTopic(floe::ObjectPrx);

impl Blobject for FakeTopic {
    fn ice_invoke<'a>(
        &'a self,
        _in_encaps: Bytes,
        _current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        let mut os = OutputStream::new(EncodingVersion::V1_1);
        Some(self.0.clone()).encode_to(&mut os);
        let body = os.finish().expect("encode the proxy");
        Box::pin(async move { Ok((true, encaps(&body))) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_never_delivers_to_the_brokers_own_publishers_or_links() {
    let (broker, comm, adapter, tm) = setup(transient_props()).await;
    let topic: TopicPrx = tm.create("loop").await.unwrap().unwrap();
    let other: TopicPrx = tm.create("other").await.unwrap().unwrap();
    let (rec, prx) = add_recorder(&adapter, "loop-watcher");
    let own_publisher = subscribe(&topic, prx, "twoway").await.unwrap();
    let publisher = topic.get_publisher().await.unwrap().unwrap();
    let link_object = broker
        .communicator()
        .string_to_proxy(&format!(
            "IceStorm/loop.link:{}",
            publisher.to_string().split_once(':').unwrap().1
        ))
        .unwrap()
        .unwrap();

    // The topic's publisher (ZeroC accepts it: one event then loops forever), another topic's
    // publisher, a subscriber's own publisher, and a link object, in every delivery mode.
    let loops = [
        ("its own publisher", publisher.clone()),
        (
            "another topic's publisher",
            other.get_publisher().await.unwrap().unwrap(),
        ),
        ("a subscriber's own publisher", own_publisher.clone()),
        ("its link object", link_object),
    ];
    for (what, prx) in &loops {
        for mode in ["twoway", "oneway", "batch"] {
            let prx = match mode {
                "twoway" => prx.ice_twoway(),
                "oneway" => prx.ice_oneway(),
                _ => prx.ice_batch_oneway(),
            };
            match topic
                .subscribe_and_get_publisher(&qos(&[]), Some(prx))
                .await
            {
                Err(SubscribeAndGetPublisherError::InvalidSubscriber(e)) => assert!(
                    e.reason.contains("publisher or link object of this broker"),
                    "{what}: {}",
                    e.reason
                ),
                other => panic!("{what} ({mode}) was accepted as a subscriber: {other:?}"),
            }
        }
    }
    // A link to an impostor whose link object is the topic's own publisher: forwarded events
    // would be published again, and forwarded again.
    let impostor = adapter
        .add(
            Arc::new(BlobjectDispatcher(Arc::new(FakeTopic(publisher.clone())))),
            "impostor".parse().unwrap(),
        )
        .unwrap();
    match topic
        .link(Some(TopicPrx::unchecked_cast(impostor)), 0)
        .await
    {
        Err(LinkError::Runtime(Error::UnknownException(m))) => {
            assert!(m.contains("publisher or link object of this broker"), "{m}")
        }
        other => panic!("a link to the topic's own publisher was accepted: {other:?}"),
    }
    assert_eq!(topic.get_subscribers().await.unwrap().len(), 1);

    // One event is delivered once.
    let clock = clock::demo::ClockPrx::unchecked_cast(publisher);
    clock.tick("once", 0, 0).await.unwrap();
    assert!(rec.wait("once", 1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rec.count("once"), 1, "the event came back");
    comm.destroy().await;
    broker.shutdown().await;
}

/// The most memory the process `pid` has used (VmHWM), in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kib / 1024
}

/// Events of almost 1 MiB (the default Ice.MessageSizeMax) published oneway.
const BIG: usize = 1000 * 1024;
const BIG_EVENTS: i32 = 300;

/// Starts the broker binary with `extra` properties, subscribes three peers that never read to
/// one topic, publishes [`BIG_EVENTS`] events of [`BIG`] bytes (about 300 MB) and returns the
/// broker's peak memory in MiB and how many deaf subscribers are left.
async fn flood_deaf_subscribers(extra: &str) -> (u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let tm_port = free_port();
    let config = write_config(
        dir.path(),
        "config.icestorm",
        &format!(
            "IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p {tm_port}\n\
             IceStorm.Transient=1\n{extra}"
        ),
    );
    let broker = start_broker_process(&config, tm_port);
    let (comm, _adapter) = floe_subscriber_side().await;
    let tm = topic_manager(&comm, &broker.topic_manager);
    let topic = tm.create("flood").await.unwrap().unwrap();
    let mut deaf = Vec::new();
    for i in 0..3 {
        deaf.push(subscribe_deaf(&comm, &topic, &format!("deaf{i}")).await);
    }
    let publisher = clock::demo::ClockPrx::unchecked_cast(
        topic.get_publisher().await.unwrap().unwrap().ice_oneway(),
    );
    let source = "x".repeat(BIG);
    let started = Instant::now();
    for i in 0..BIG_EVENTS {
        publisher.tick(&source, i, 0).await.unwrap();
    }
    // A twoway call after the oneway ones: every event has reached the broker.
    let left = topic.get_subscribers().await.unwrap().len();
    eprintln!(
        "published {} MB in {:?}",
        (BIG * BIG_EVENTS as usize) >> 20,
        started.elapsed()
    );
    let peak = peak_mib(broker.child.id());
    for t in deaf {
        t.abort();
    }
    comm.destroy().await;
    (peak, left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_that_never_read_hold_a_bounded_number_of_bytes() {
    // Per subscriber: 8 MiB each, oldest events dropped, subscribers kept.
    let (peak, left) = flood_deaf_subscribers(
        "IceStorm.Send.QueueMemoryMax=8192\nIceStorm.Send.QueueSizeMaxPolicy=DropEvents\n",
    )
    .await;
    eprintln!("per-subscriber bound: peak {peak} MiB");
    assert_eq!(left, 3, "DropEvents keeps the subscribers");
    assert!(
        peak < 120,
        "the broker peaked at {peak} MiB with three 8 MiB queues"
    );

    // For the whole broker: 16 MiB; subscribers with a backlog past it are removed.
    let (peak, left) = flood_deaf_subscribers("IceStorm.MemoryMax=16384\n").await;
    eprintln!("broker bound: peak {peak} MiB");
    assert_eq!(
        left, 0,
        "RemoveSubscriber removes the subscribers that fell behind"
    );
    assert!(
        peak < 120,
        "the broker peaked at {peak} MiB with IceStorm.MemoryMax at 16 MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_outgrows_the_size_limit_is_dropped_and_its_subscriber_kept() {
    let (broker, comm, adapter, tm) = setup(transient_props()).await;
    let topic: TopicPrx = tm.create("big").await.unwrap().unwrap();
    // A long identity makes every request to this subscriber 300 bytes longer than the
    // publisher's.
    let (rec, prx) = add_recorder(&adapter, &"s".repeat(300));
    subscribe(&topic, prx, "twoway").await;
    let clock =
        clock::demo::ClockPrx::unchecked_cast(topic.get_publisher().await.unwrap().unwrap());
    // 70 bytes of request around the source string reach the publisher: 100 bytes under 1 MiB.
    let just_under = "b".repeat((1 << 20) - 70 - 100);
    clock.tick(&just_under, 0, 0).await.unwrap();
    clock.tick("small", 1, 0).await.unwrap();
    assert!(
        rec.wait("small", 1, Duration::from_secs(5)).await,
        "the event after the large one did not arrive"
    );
    assert_eq!(rec.count(&just_under), 0);
    assert_eq!(
        topic.get_subscribers().await.unwrap().len(),
        1,
        "the subscriber was removed"
    );

    // A link forwards events that together exceed Ice.MessageSizeMax in several calls.
    let a: TopicPrx = tm.create("a").await.unwrap().unwrap();
    a.link(Some(topic.clone()), 0).await.unwrap();
    let on_a = clock::demo::ClockPrx::unchecked_cast(
        a.get_publisher().await.unwrap().unwrap().ice_oneway(),
    );
    let part = "p".repeat(400 * 1024);
    for i in 0..6 {
        on_a.tick(&part, i, 0).await.unwrap();
    }
    assert!(
        rec.wait(&part, 6, Duration::from_secs(10)).await,
        "{} of 6 linked events arrived",
        rec.count(&part)
    );
    assert_eq!(a.get_link_info_seq().await.unwrap().len(), 1);
    comm.destroy().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_limited_and_retrieve_all_always_fits_a_default_client() {
    let props = transient_props();
    props.set_property("IceStorm.TopicsMax", "20");
    let broker = Broker::start(props).await.unwrap();
    let comm = floe::Communicator::with_properties(floe::Properties::new()).unwrap();
    let tm = topic_manager(&comm, &broker.topic_manager().to_string());
    for i in 0..20 {
        tm.create(&format!("t{i}")).await.unwrap();
    }
    match tm.create("one-too-many").await {
        Err(CreateError::Runtime(Error::UnknownException(m))) => {
            assert!(
                m.contains("20 topics") && m.contains("IceStorm.TopicsMax"),
                "{m}"
            )
        }
        other => panic!("topic 21 of 20: {other:?}"),
    }
    tm.retrieve("t3")
        .await
        .unwrap()
        .unwrap()
        .destroy()
        .await
        .unwrap();
    tm.create("one-more")
        .await
        .expect("room again after a destroy");
    broker.shutdown().await;

    // Default limits, names of the longest length accepted: creation stops before
    // retrieveAll's answer outgrows a default client's Ice.MessageSizeMax.
    let broker = Broker::start(transient_props()).await.unwrap();
    let tm = topic_manager(&comm, &broker.topic_manager().to_string());
    let mut created = 0;
    let refusal = loop {
        let name = format!("{created:05}{}", "n".repeat(507));
        match tm.create(&name).await {
            Ok(_) => created += 1,
            Err(e) => break e,
        }
        assert!(
            created < 4000,
            "4000 topics of 512-byte names were accepted"
        );
    };
    match refusal {
        CreateError::Runtime(Error::UnknownException(m)) => {
            assert!(m.contains("Ice.MessageSizeMax"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let all = tm
        .retrieve_all()
        .await
        .expect("retrieveAll fits a default client");
    assert_eq!(all.len(), created);
    eprintln!("{created} topics of 512-byte names");
    comm.destroy().await;
    broker.shutdown().await;
}

/// A `tick` whose parameters end with a tagged class parameter holding a chain of `depth`
/// sliced instances: a ZeroC subscriber skips the tag it does not expect by decoding it.
fn poisoned_tick(depth: usize) -> Bytes {
    let mut prefix = Vec::new();
    prefix.push(6);
    prefix.extend_from_slice(b"poison");
    prefix.extend_from_slice(&0i32.to_le_bytes());
    prefix.extend_from_slice(&0i64.to_le_bytes());
    // Tag 1, format Class (7).
    prefix.push((1 << 3) | 7);
    Bytes::from(sliced_chain(&prefix, depth))
}

/// Starts a broker (`check` sets IceStorm.CheckClassGraphs), a ZeroC Python subscriber on topic
/// `poison`, publishes a poisoned tick (twoway) then an ordinary one; returns the poisoned
/// publish's result and whether the Python subscriber received the ordinary tick.
async fn poison_python_subscriber(check: bool) -> (floe::Result<(bool, Bytes)>, PyOutcome) {
    let props = transient_props();
    props.set_property("IceStorm.CheckClassGraphs", if check { "1" } else { "0" });
    let broker = Broker::start(props).await.unwrap();
    let tm_str = broker.topic_manager().to_string();
    let mut py = spawn_clock_py(&tm_str, &["subscribe", "poison", "1", "after"]);
    py.wait_line("READY").await;
    let comm = floe::Communicator::with_properties(floe::Properties::new()).unwrap();
    let tm = topic_manager(&comm, &tm_str);
    let publisher = tm
        .retrieve("poison")
        .await
        .unwrap()
        .unwrap()
        .get_publisher()
        .await
        .unwrap()
        .unwrap();
    let poisoned = publisher
        .ice_invoke("tick", OperationMode::Normal, poisoned_tick(60_000), None)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    clock::demo::ClockPrx::unchecked_cast(publisher)
        .tick("after", 0, 0)
        .await
        .unwrap();
    let outcome = py.finish().await;
    comm.destroy().await;
    broker.shutdown().await;
    (poisoned, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_event_kills_zeroc_subscribers_unless_class_graphs_are_checked() {
    // Without the check the event is forwarded untouched, as ZeroC's IceStorm does, and the
    // ZeroC subscriber dies decoding it.
    let (poisoned, outcome) = poison_python_subscriber(false).await;
    assert!(poisoned.is_ok(), "{poisoned:?}");
    assert!(
        !outcome.ok,
        "the ZeroC subscriber survived the poisoned event:\n{}",
        outcome.text
    );

    let (poisoned, outcome) = poison_python_subscriber(true).await;
    match poisoned {
        Err(e) => assert!(e.to_string().contains("Ice.ClassGraphDepthMax"), "{e}"),
        Ok(_) => panic!("the poisoned event was accepted"),
    }
    assert!(
        outcome.ok,
        "the ZeroC subscriber did not get the next event:\n{}",
        outcome.text
    );
}
