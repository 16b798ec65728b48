//! Bad input and failing subscribers: any bytes as an event, subscribers that point nowhere or
//! at nothing, the retry rules, bad topic names and QoS, and links with costs.

mod clients;
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clients::{qos, setup, subscribe};
use common::*;
use floe::codegen::BoxFuture;
use floe::{Blobject, BlobjectDispatcher, Context, Current, Error, OperationMode};
use icestorm_lite::slice::ice_storm::{
    TopicPrx, topic::LinkError, topic::SubscribeAndGetPublisherError, topic::UnlinkError,
    topic_manager::CreateError, topic_manager::RetrieveError,
};
use parking_lot::Mutex;

/// A subscriber that records every request exactly as received.
#[derive(Default)]
struct Raw(Mutex<Vec<(String, OperationMode, Context, Bytes)>>);

impl Blobject for Raw {
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        Box::pin(async move {
            self.0.lock().push((
                current.operation.clone(),
                current.mode,
                current.ctx.clone(),
                in_encaps,
            ));
            Ok((true, floe::protocol::empty_encapsulation(1, 1)))
        })
    }
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn encaps(body: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(body.len() + 6);
    v.extend_from_slice(&((body.len() + 6) as i32).to_le_bytes());
    v.extend_from_slice(&[1, 1]);
    v.extend_from_slice(body);
    Bytes::from(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_event_bytes_are_forwarded_untouched() {
    let (broker, comm, adapter, tm) = setup(transient_props()).await;
    let topic = tm.create("raw").await.unwrap().unwrap();
    let raw = Arc::new(Raw::default());
    let prx = adapter
        .add(
            Arc::new(BlobjectDispatcher(raw.clone())),
            "raw-sub".parse().unwrap(),
        )
        .unwrap();
    subscribe(&topic, prx, "twoway").await;
    let publisher = topic.get_publisher().await.unwrap().unwrap();

    let mut sent = Vec::new();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..50usize {
        let mut body = Vec::new();
        for _ in 0..(i * 37 % 700) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.push(seed as u8);
        }
        let mode = [
            OperationMode::Normal,
            OperationMode::Nonmutating,
            OperationMode::Idempotent,
        ][i % 3];
        let op = if i % 5 == 0 {
            "ice_ping".to_string()
        } else {
            format!("op{i}\u{e9}")
        };
        let mut ctx = Context::new();
        ctx.insert(format!("k{i}"), "v\0x".to_string());
        let (ok, out) = publisher
            .ice_invoke(&op, mode, encaps(&body), Some(&ctx))
            .await
            .unwrap();
        assert!(ok);
        assert_eq!(&out[..], &[6, 0, 0, 0, 1, 1], "ZeroC's empty reply");
        sent.push((op, mode, ctx, encaps(&body)));
    }
    // A request whose encapsulation lies about its size is a protocol error for its connection
    // only: the broker keeps working.
    let bad = Bytes::from_static(&[0xff, 0xff, 0xff, 0x7f, 1, 1, 0]);
    assert!(
        publisher
            .ice_invoke("bad", OperationMode::Normal, bad, None)
            .await
            .is_err()
    );

    eventually("every event forwarded", async || {
        raw.0.lock().len() >= sent.len()
    })
    .await;
    assert_eq!(
        *raw.0.lock(),
        sent,
        "operation, mode, context and bytes unchanged, in order"
    );
    assert_eq!(
        tm.retrieve("raw")
            .await
            .unwrap()
            .unwrap()
            .get_name()
            .await
            .unwrap(),
        "raw"
    );
    comm.destroy().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_that_point_nowhere_are_reaped() {
    let (broker, comm, adapter, tm) = setup(transient_props()).await;
    let topic = tm.create("reap").await.unwrap().unwrap();
    let (alive, alive_prx) = add_recorder(&adapter, "alive");
    subscribe(&topic, alive_prx, "twoway").await;
    // Nobody listens on this port.
    let nowhere = comm
        .string_to_proxy(&format!("nowhere:tcp -h 127.0.0.1 -p {}", free_port()))
        .unwrap()
        .unwrap();
    subscribe(&topic, nowhere, "twoway").await;
    // An adapter that is up but has no such object: ObjectNotExist removes at once, even with
    // retries left.
    let missing = adapter.create_proxy("missing".parse().unwrap());
    topic
        .subscribe_and_get_publisher(&qos(&[("retryCount", "5")]), Some(missing))
        .await
        .unwrap();
    assert_eq!(topic.get_subscribers().await.unwrap().len(), 3);

    let clock =
        clock::demo::ClockPrx::unchecked_cast(topic.get_publisher().await.unwrap().unwrap());
    clock.tick("reap", 0, 0).await.unwrap();
    eventually("the two dead subscribers are removed", async || {
        topic.get_subscribers().await.unwrap().len() == 1
    })
    .await;
    let left = topic.get_subscribers().await.unwrap();
    assert_eq!(left[0].name, "alive");
    clock.tick("reap", 1, 0).await.unwrap();
    assert!(alive.wait("reap", 2, Duration::from_secs(5)).await);
    comm.destroy().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_count_keeps_a_failing_subscriber_offline_then_back() {
    let props = transient_props();
    props.set_property("IceStorm.Discard.Interval", "0.3");
    let (broker, comm, _adapter, tm) = setup(props).await;
    let topic = tm.create("retry").await.unwrap().unwrap();
    // The subscriber's port is closed at first.
    let port = free_port();
    let sub = comm
        .string_to_proxy(&format!("flaky:tcp -h 127.0.0.1 -p {port}"))
        .unwrap()
        .unwrap();
    topic
        .subscribe_and_get_publisher(&qos(&[("retryCount", "-1")]), Some(sub))
        .await
        .unwrap();
    let clock =
        clock::demo::ClockPrx::unchecked_cast(topic.get_publisher().await.unwrap().unwrap());
    clock.tick("lost", 0, 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Offline: events published during the discard interval are dropped.
    clock.tick("lost", 1, 0).await.unwrap();
    assert_eq!(
        topic.get_subscribers().await.unwrap().len(),
        1,
        "retryCount -1 keeps it"
    );

    let (comm2, adapter2) = {
        let c = floe::Communicator::with_properties(floe::Properties::new()).unwrap();
        let a = c
            .create_object_adapter_with_endpoints("Flaky", &format!("tcp -h 127.0.0.1 -p {port}"))
            .await
            .unwrap();
        a.activate().unwrap();
        (c, a)
    };
    let (rec, _) = add_recorder(&adapter2, "unused");
    adapter2
        .add(
            Arc::new(clock::demo::ClockDispatcher(rec.clone())),
            "flaky".parse().unwrap(),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    for i in 0..5 {
        clock.tick("back", i, 0).await.unwrap();
    }
    assert!(
        rec.wait("back", 5, Duration::from_secs(5)).await,
        "got {}",
        rec.count("back")
    );
    assert_eq!(
        rec.count("lost"),
        0,
        "events of the offline period were discarded"
    );
    comm2.destroy().await;
    comm.destroy().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_qos_and_subscribers_get_clear_errors() {
    let (broker, comm, adapter, tm) = setup(transient_props()).await;
    match tm.create("").await {
        Err(CreateError::Runtime(Error::UnknownException(m))) => {
            assert!(m.contains("must not be empty"), "{m}")
        }
        other => panic!("empty name: {other:?}"),
    }
    match tm.create(&"n".repeat(100_000)).await {
        Err(CreateError::Runtime(Error::UnknownException(m))) => {
            assert!(m.contains("100000 bytes") && m.contains("512"), "{m}")
        }
        other => panic!("long name: {other:?}"),
    }
    match tm.retrieve("").await {
        Err(RetrieveError::NoSuchTopic(e)) => assert_eq!(e.name, ""),
        other => panic!("retrieve empty: {other:?}"),
    }
    let topic: TopicPrx = tm.create("q").await.unwrap().unwrap();
    match tm.create("q").await {
        Err(CreateError::TopicExists(e)) => assert_eq!(e.name, "q"),
        other => panic!("{other:?}"),
    }
    let (_r, prx) = add_recorder(&adapter, "q-sub");
    match topic
        .subscribe_and_get_publisher(&qos(&[("reliability", "sometimes")]), Some(prx.clone()))
        .await
    {
        Err(SubscribeAndGetPublisherError::BadQoS(e)) => {
            assert_eq!(e.reason, "invalid reliability: sometimes")
        }
        other => panic!("{other:?}"),
    }
    match topic
        .subscribe_and_get_publisher(&qos(&[("reliability", "ordered")]), Some(prx.ice_oneway()))
        .await
    {
        Err(SubscribeAndGetPublisherError::BadQoS(e)) => {
            assert_eq!(e.reason, "ordered reliability requires a twoway proxy")
        }
        other => panic!("{other:?}"),
    }
    match topic
        .subscribe_and_get_publisher(&HashMap::new(), None)
        .await
    {
        Err(SubscribeAndGetPublisherError::InvalidSubscriber(e)) => {
            assert_eq!(e.reason, "subscriber is a null proxy")
        }
        other => panic!("{other:?}"),
    }
    topic
        .subscribe_and_get_publisher(&HashMap::new(), Some(prx.clone()))
        .await
        .unwrap();
    match topic
        .subscribe_and_get_publisher(&HashMap::new(), Some(prx.ice_oneway()))
        .await
    {
        Err(SubscribeAndGetPublisherError::AlreadySubscribed(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        topic.get_subscribers().await.unwrap().len(),
        1,
        "refused ones were not added"
    );
    topic.unsubscribe(Some(prx)).await.unwrap();
    assert!(topic.get_subscribers().await.unwrap().is_empty());
    topic.destroy().await.unwrap();
    assert!(matches!(
        topic.get_name().await,
        Err(Error::ObjectNotExist(_))
    ));
    assert!(matches!(
        tm.retrieve("q").await,
        Err(RetrieveError::NoSuchTopic(_))
    ));
    comm.destroy().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_forward_one_hop_within_their_cost() {
    let (broker, comm, adapter, tm) = setup(transient_props()).await;
    let a = tm.create("a").await.unwrap().unwrap();
    let b = tm.create("b").await.unwrap().unwrap();
    let c = tm.create("c").await.unwrap().unwrap();
    a.link(Some(b.clone()), 5).await.unwrap();
    b.link(Some(c.clone()), 0).await.unwrap();
    match a.link(Some(b.clone()), 1).await {
        Err(LinkError::LinkExists(e)) => assert_eq!(e.name, "b"),
        other => panic!("{other:?}"),
    }
    let info = a.get_link_info_seq().await.unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!((info[0].name.as_str(), info[0].cost), ("b", 5));
    let (on_b, prx) = add_recorder(&adapter, "on-b");
    subscribe(&b, prx, "twoway").await;
    let (on_c, prx) = add_recorder(&adapter, "on-c");
    subscribe(&c, prx, "twoway").await;

    let publisher = a.get_publisher().await.unwrap().unwrap();
    for (cost, source) in [("3", "cheap"), ("9", "dear"), ("5", "cheap"), ("", "free")] {
        let mut ctx = Context::new();
        if !cost.is_empty() {
            ctx.insert("cost".into(), cost.into());
        }
        let clock = clock::demo::ClockPrx::unchecked_cast(publisher.ice_context(ctx));
        clock.tick(source, 0, 0).await.unwrap();
    }
    assert!(on_b.wait("cheap", 2, Duration::from_secs(5)).await);
    assert!(on_b.wait("free", 1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(on_b.count("dear"), 0, "cost 9 is above the link's 5");
    assert_eq!(
        on_c.ticks.lock().len(),
        0,
        "forwarded events are not forwarded again"
    );

    a.unlink(Some(b.clone())).await.unwrap();
    match a.unlink(Some(b.clone())).await {
        Err(UnlinkError::NoSuchLink(e)) => assert_eq!(e.name, "b"),
        other => panic!("{other:?}"),
    }
    assert!(a.get_link_info_seq().await.unwrap().is_empty());
    comm.destroy().await;
    broker.shutdown().await;
}

/// The binary refuses a thread count it cannot use, saying which property is wrong.
#[test]
fn binary_refuses_a_bad_thread_count() {
    for bad in ["0", "two", "-1"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_icestorm-lite"))
            .arg("--IceStorm.Transient=1")
            .arg(format!("--IceStorm.Threads={bad}"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "IceStorm.Threads={bad} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("IceStorm.Threads") && err.contains(bad),
            "unclear error for IceStorm.Threads={bad}: {err}"
        );
    }
}
