//! The same raw requests to ZeroC's IceStorm (Debian's icebox) and to icestorm-lite get the same
//! reply bytes: TopicExists, NoSuchTopic, AlreadySubscribed, BadQoS and InvalidSubscriber, and
//! publisher and topic proxies of the same form.

mod clients;
mod common;

use bytes::Bytes;
use clients::qos;
use common::*;
use floe::{EncodingVersion, ObjectPrx, OperationMode};
use floe_test_support::IceBox;
use icestorm_lite::Broker;

fn params(f: impl FnOnce(&mut floe::codegen::OutputStream)) -> Bytes {
    let mut os = floe::codegen::OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(EncodingVersion::V1_1, Default::default());
    f(&mut os);
    os.end_encapsulation();
    os.finish().unwrap().into()
}

/// The replies of one broker to the scenario, with its own port numbers masked.
async fn scenario(
    comm: &floe::Communicator,
    tm_port: u16,
    pub_port: u16,
    sub: &ObjectPrx,
) -> Vec<(bool, String)> {
    let tm = comm
        .string_to_proxy(&format!(
            "IceStorm/TopicManager:tcp -h 127.0.0.1 -p {tm_port}"
        ))
        .unwrap()
        .unwrap();
    // Ports differ between the brokers: their little-endian bytes in proxies are masked.
    let call = async |prx: &ObjectPrx, op: &str, mode: OperationMode, params: Bytes| {
        let (ok, reply) = prx.ice_invoke(op, mode, params, None).await.unwrap();
        let mut v = reply.to_vec();
        for (port, mark) in [(tm_port, b"<TM>"), (pub_port, b"<PB>")] {
            let pat = i32::from(port).to_le_bytes();
            let mut i = 0;
            while i + 4 <= v.len() {
                if v[i..i + 4] == pat {
                    v[i..i + 4].copy_from_slice(mark);
                    i += 4;
                } else {
                    i += 1;
                }
            }
        }
        (ok, String::from_utf8_lossy(&v).into_owned())
    };
    let name = params(|os| os.write("news"));
    let missing = params(|os| os.write("missing"));
    let mut out = vec![
        call(&tm, "create", OperationMode::Normal, name.clone()).await,
        call(&tm, "create", OperationMode::Normal, name).await,
        call(&tm, "retrieve", OperationMode::Nonmutating, missing).await,
    ];
    let topic = comm
        .string_to_proxy(&format!(
            "IceStorm/topic.news:tcp -h 127.0.0.1 -p {tm_port}"
        ))
        .unwrap()
        .unwrap();
    out.push(
        call(
            &topic,
            "getPublisher",
            OperationMode::Nonmutating,
            params(|_| {}),
        )
        .await,
    );
    for (pairs, subscriber) in [
        (vec![], Some(sub.clone())),
        (vec![], Some(sub.clone())),
        (
            vec![("reliability", "sometimes")],
            Some(sub.ice_identity("other".parse().unwrap())),
        ),
        (
            vec![("reliability", "ordered")],
            Some(sub.ice_identity("third".parse().unwrap()).ice_oneway()),
        ),
        (vec![], None),
    ] {
        let p = params(|os| {
            os.write(&qos(&pairs));
            os.write(&subscriber);
        });
        out.push(call(&topic, "subscribeAndGetPublisher", OperationMode::Normal, p).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_replies_and_proxies_match_zerocs_icestorm() {
    let icebox = IceBox::start("");
    let (zc_tm, zc_pub) = (icebox.topic_manager_port, icebox.publish_port);
    let (lite_tm, lite_pub) = (free_port(), free_port());
    let props = transient_props();
    props.set_property(
        "IceStorm.TopicManager.Endpoints",
        &format!("tcp -h 127.0.0.1 -p {lite_tm}"),
    );
    props.set_property(
        "IceStorm.Publish.Endpoints",
        &format!("tcp -h 127.0.0.1 -p {lite_pub}"),
    );
    let broker = Broker::start(props).await.unwrap();
    let (comm, adapter) = floe_subscriber_side().await;
    let sub = adapter.create_proxy("subs/s1".parse().unwrap());
    let theirs = scenario(&comm, zc_tm, zc_pub, &sub).await;
    let ours = scenario(&comm, lite_tm, lite_pub, &sub).await;
    assert_eq!(theirs.len(), 9);
    assert!(
        !theirs[1].0 && !theirs[2].0 && !theirs[5].0,
        "user exceptions from ZeroC: {theirs:?}"
    );
    for (i, (t, o)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(o, t, "reply {i} differs from ZeroC's");
    }
    comm.destroy().await;
    broker.shutdown().await;
}
