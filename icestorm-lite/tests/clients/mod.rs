//! The Floe client side of the broker tests: the topic manager by its proxy string, QoS maps,
//! and subscriptions in each delivery mode.
#![allow(dead_code)]

use std::collections::HashMap;

use icestorm_lite::Broker;
use icestorm_lite::slice::ice_storm::{TopicManagerPrx, TopicPrx};

use crate::common::{deaf_peer, floe_subscriber_side};

/// A quality-of-service map from `(key, value)` pairs.
pub fn qos(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The topic manager `proxy` names (as a broker prints it), reached from `comm`.
pub fn topic_manager(comm: &floe::Communicator, proxy: &str) -> TopicManagerPrx {
    TopicManagerPrx::unchecked_cast(comm.string_to_proxy(proxy).unwrap().unwrap())
}

/// Subscribes `subscriber` to `topic` in one delivery mode: `twoway`, `ordered` (twoway with
/// `reliability=ordered`), `oneway` or `batch` (batch oneway); returns the subscriber's own
/// publisher.
pub async fn subscribe(
    topic: &TopicPrx,
    subscriber: floe::ObjectPrx,
    mode: &str,
) -> Option<floe::ObjectPrx> {
    let (subscriber, qos) = match mode {
        "twoway" => (subscriber.ice_twoway(), qos(&[])),
        "ordered" => (subscriber.ice_twoway(), qos(&[("reliability", "ordered")])),
        "oneway" => (subscriber.ice_oneway(), qos(&[])),
        "batch" => (subscriber.ice_batch_oneway(), qos(&[])),
        other => panic!("no delivery mode `{other}`"),
    };
    topic
        .subscribe_and_get_publisher(&qos, Some(subscriber))
        .await
        .unwrap()
}

/// An in-process broker started with `props`, a Floe communicator with a subscriber adapter,
/// and the broker's topic manager seen from it.
pub async fn setup(
    props: floe::Properties,
) -> (
    Broker,
    floe::Communicator,
    floe::ObjectAdapter,
    TopicManagerPrx,
) {
    let broker = Broker::start(props).await.unwrap();
    let (comm, adapter) = floe_subscriber_side().await;
    let tm = topic_manager(&comm, &broker.topic_manager().to_string());
    (broker, comm, adapter, tm)
}

/// Subscribes (oneway) a peer that accepts the connection and never reads, under identity
/// `name`; the returned task holds its sockets until aborted.
pub async fn subscribe_deaf(
    comm: &floe::Communicator,
    topic: &TopicPrx,
    name: &str,
) -> tokio::task::JoinHandle<()> {
    let (task, port) = deaf_peer().await;
    let prx = comm
        .string_to_proxy(&format!("{name} -o:tcp -h 127.0.0.1 -p {port}"))
        .unwrap()
        .unwrap();
    subscribe(topic, prx, "oneway").await;
    task
}
