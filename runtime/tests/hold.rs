//! `ObjectAdapter::hold`: a holding adapter dispatches nothing and accepts no connection; its
//! connections stop reading, so a sender whose buffers fill up blocks; `activate` resumes and
//! every held request is then dispatched. `Ice.TCP.RcvSize` makes the receive buffers of the
//! accepted connections small. A holding connection sends no heartbeats (they come back with
//! `activate`), which `Connection::set_heartbeat_callback` lets a peer observe. (ZeroC's
//! Ice/ami, Ice/timeout and Ice/acm tests rely on all of this.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use floe::codegen::BoxFuture;
use floe::{Blobject, BlobjectDispatcher, Communicator, Current, OperationMode, Properties};

#[derive(Debug, Default)]
struct Counter(AtomicUsize);

impl Blobject for Counter {
    fn ice_invoke<'a>(
        &'a self,
        _in_encaps: Bytes,
        _current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok((true, empty()))
        })
    }
}

fn empty() -> Bytes {
    Bytes::from_static(&[6, 0, 0, 0, 1, 1])
}

/// An encapsulation carrying `n` bytes of payload (a byte sequence).
fn payload(n: usize) -> Bytes {
    let mut v = Vec::with_capacity(n + 11);
    let size = (6 + 5 + n) as i32;
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&[1, 1, 255]);
    v.extend_from_slice(&(n as i32).to_le_bytes());
    v.resize(v.len() + n, 7);
    Bytes::from(v)
}

async fn server(rcv_size: Option<&str>) -> (Communicator, floe::ObjectAdapter, Arc<Counter>) {
    let p = Properties::new();
    if let Some(s) = rcv_size {
        p.set_property("Ice.TCP.RcvSize", s);
    }
    let communicator = Communicator::with_properties(p).unwrap();
    let adapter = communicator
        .create_object_adapter_with_endpoints("", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let counter = Arc::new(Counter::default());
    adapter
        .add(
            Arc::new(BlobjectDispatcher(counter.clone())),
            "counter".parse().unwrap(),
        )
        .unwrap();
    adapter.activate().unwrap();
    (communicator, adapter, counter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_wait_until_the_adapter_is_activated_again() {
    let (server, adapter, counter) = server(None).await;
    let client = Communicator::with_properties(Properties::new()).unwrap();
    let prx = client
        .string_to_proxy(&format!("counter:{}", adapter.endpoints()[0]))
        .unwrap()
        .unwrap();
    prx.ice_invoke("op", OperationMode::Normal, empty(), None)
        .await
        .unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);

    adapter.hold();
    assert!(adapter.is_holding());
    let call = {
        let prx = prx.clone();
        tokio::spawn(async move {
            prx.ice_invoke("op", OperationMode::Normal, empty(), None)
                .await
        })
    };
    // The first connection after hold() (the accept loop was already waiting for it) is not
    // validated while the adapter holds: a connect timeout expires.
    let impatient = Communicator::with_properties(Properties::new()).unwrap();
    let short = impatient
        .string_to_proxy(&format!("counter:{}", adapter.endpoints()[0]))
        .unwrap()
        .unwrap()
        .ice_timeout(100);
    assert!(
        matches!(short.ice_ping().await, Err(floe::Error::ConnectTimeout(_))),
        "connecting to a holding adapter times out"
    );
    impatient.destroy().await;
    // A second client connects while the adapter holds: not accepted until it resumes.
    let other = Communicator::with_properties(Properties::new()).unwrap();
    let other_prx = other
        .string_to_proxy(&format!("counter:{}", adapter.endpoints()[0]))
        .unwrap()
        .unwrap();
    let other_call = tokio::spawn(async move {
        other_prx
            .ice_invoke("op", OperationMode::Normal, empty(), None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "a held request is not answered");
    assert!(
        !other_call.is_finished(),
        "a new connection is not accepted"
    );
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "nothing dispatched");

    adapter.activate().unwrap();
    assert!(!adapter.is_holding());
    let (ok, _) = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("answered after activate")
        .unwrap()
        .unwrap();
    assert!(ok);
    tokio::time::timeout(Duration::from_secs(5), other_call)
        .await
        .expect("accepted after activate")
        .unwrap()
        .unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 3);
    other.destroy().await;
    client.destroy().await;
    server.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_blocks_once_a_held_connection_stops_reading() {
    let (server, adapter, counter) = server(Some("50000")).await;
    let client = Communicator::with_properties(Properties::new()).unwrap();
    let prx = client
        .string_to_proxy(&format!("counter:{}", adapter.endpoints()[0]))
        .unwrap()
        .unwrap();
    prx.ice_invoke("op", OperationMode::Normal, empty(), None)
        .await
        .unwrap();
    let prx = prx.ice_oneway();
    let before = counter.0.load(Ordering::SeqCst);
    assert_eq!(before, 1);
    adapter.hold();
    // 32 MiB of oneway requests cannot all be written into the buffers of a connection that
    // is not read: the writes stall.
    let chunk = payload(512 << 10);
    let sends = {
        let prx = prx.clone();
        tokio::spawn(async move {
            for _ in 0..64 {
                prx.ice_invoke("op", OperationMode::Normal, chunk.clone(), None)
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!sends.is_finished(), "the sender is blocked");
    assert_eq!(counter.0.load(Ordering::SeqCst), before);
    adapter.activate().unwrap();
    tokio::time::timeout(Duration::from_secs(30), sends)
        .await
        .expect("the sender resumes")
        .unwrap();
    let twoway = prx.ice_twoway();
    twoway
        .ice_invoke("op", OperationMode::Normal, empty(), None)
        .await
        .unwrap();
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        before + 65,
        "every held request dispatched"
    );
    client.destroy().await;
    server.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holding_connection_sends_no_heartbeats() {
    let p = Properties::new();
    p.set_property("Beats.Endpoints", "tcp -h 127.0.0.1 -p 0");
    p.set_property("Beats.ACM.Timeout", "1");
    p.set_property("Beats.ACM.Heartbeat", "3"); // always
    let server = Communicator::with_properties(p).unwrap();
    let adapter = server.create_object_adapter("Beats").await.unwrap();
    adapter
        .add(
            Arc::new(BlobjectDispatcher(Arc::new(Counter::default()))),
            "counter".parse().unwrap(),
        )
        .unwrap();
    adapter.activate().unwrap();
    let client = Communicator::with_properties(Properties::new()).unwrap();
    let prx = client
        .string_to_proxy(&format!("counter:{}", adapter.endpoints()[0]))
        .unwrap()
        .unwrap();
    prx.ice_ping().await.unwrap();
    let beats = Arc::new(AtomicUsize::new(0));
    let counter = beats.clone();
    prx.ice_get_connection()
        .await
        .unwrap()
        .set_heartbeat_callback(Some(Arc::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })));

    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(beats.load(Ordering::SeqCst) >= 1, "heartbeats while active");
    adapter.hold();
    tokio::time::sleep(Duration::from_millis(600)).await;
    beats.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(beats.load(Ordering::SeqCst), 0, "none while holding");
    adapter.activate().unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        beats.load(Ordering::SeqCst) >= 1,
        "heartbeats again once active"
    );
    client.destroy().await;
    server.destroy().await;
}
