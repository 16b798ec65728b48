//! Ice's `blobject` suite, cut down: a Floe Blobject servant forwards every request (any
//! operation, mode, context and parameter encapsulation) with `ice_invoke` to a ZeroC server, the
//! way IceStorm forwards events; a ZeroC client calls through it and cannot tell the difference.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use floe::codegen::BoxFuture;
use floe::{Blobject, BlobjectDispatcher, Current, Error, Identity, ObjectPrx, Result};

struct Forwarder {
    target: ObjectPrx,
}

impl Blobject for Forwarder {
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, Result<(bool, Bytes)>> {
        Box::pin(async move {
            let target = if current.facet.is_empty() {
                self.target.clone()
            } else {
                self.target.ice_facet(&current.facet)
            };
            let target = if current.request_id == 0 {
                target.ice_oneway()
            } else {
                target
            };
            target
                .ice_invoke(
                    &current.operation,
                    current.mode,
                    in_encaps,
                    Some(&current.ctx),
                )
                .await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_through_floe_blobject_to_zeroc_server() {
    require_zeroc();
    let py = start_python_server();
    let comm = client_communicator(&[]);
    let target = comm.string_to_proxy(&py.proxy).unwrap().unwrap();
    let adapter = comm
        .create_object_adapter_with_endpoints("Forward", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let prx = adapter
        .add(
            Arc::new(BlobjectDispatcher(Arc::new(Forwarder {
                target: target.clone(),
            }))),
            Identity::new("fwd", ""),
        )
        .unwrap();
    adapter.activate().unwrap();
    // Every scenario of the ZeroC client runs unchanged through the forwarder, except the ones
    // that check Floe's own servants (facets named "admin", default servants).
    run_python_client(&prx.to_string(), "operations", &[]).await;
    run_python_client(&prx.to_string(), "oneway", &[]).await;
    let hello = HelloPrx(prx.clone());
    match hello.fail("forwarded").await {
        Err(FailError::TestFailure(e)) => assert_eq!(e.reason, "forwarded"),
        other => panic!("expected TestFailure, got {other:?}"),
    }
    match HelloPrx(prx.ice_facet("nope")).say_hello("x").await {
        Err(Error::FacetNotExist(f)) => assert_eq!(f.facet, "nope"),
        other => panic!("expected FacetNotExist from the far end, got {other:?}"),
    }
    HelloPrx(target).shutdown().await.unwrap();
    comm.destroy().await;
}

struct Echo;

impl Blobject for Echo {
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: Bytes,
        _current: &'a Current,
    ) -> BoxFuture<'a, Result<(bool, Bytes)>> {
        Box::pin(async move { Ok((true, in_encaps)) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobject_gets_any_encapsulation_unchanged() {
    // Like Ice's Blobject, the raw servant sees the bytes as sent, even in an encoding this
    // runtime cannot read (a broker forwards them; only the final receiver checks).
    let comm = client_communicator(&[]);
    let adapter = comm
        .create_object_adapter_with_endpoints("Echo", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let prx = adapter
        .add(
            Arc::new(BlobjectDispatcher(Arc::new(Echo))),
            Identity::new("echo", ""),
        )
        .unwrap();
    adapter.activate().unwrap();
    for encaps in [
        &[6u8, 0, 0, 0, 1, 2][..],
        &[9, 0, 0, 0, 1, 1, 1, 2, 3],
        &[6, 0, 0, 0, 1, 0],
    ] {
        let (ok, out) = prx
            .ice_invoke(
                "anything",
                floe::OperationMode::Idempotent,
                Bytes::copy_from_slice(encaps),
                None,
            )
            .await
            .unwrap();
        assert!(ok);
        assert_eq!(&out[..], encaps);
    }
    comm.destroy().await;
}

/// Several oneway Requests built by hand and written together with `Connection::send_raw` (as
/// IceStorm forwarders do to save a write per event) reach a ZeroC server as separate requests,
/// in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneway_requests_written_together_with_send_raw() {
    require_zeroc();
    let py = start_python_server();
    let comm = client_communicator(&[]);
    let hello = comm.string_to_proxy(&py.proxy).unwrap().unwrap();
    let before = notify_count(&hello).await;
    let conn = hello.ice_get_connection().await.unwrap();
    let mut many = bytes::BytesMut::new();
    for i in 0..10 {
        let mut os = floe::codegen::OutputStream::new(floe::EncodingVersion::V1_0);
        os.start_encapsulation(floe::EncodingVersion::V1_1, Default::default());
        os.write(&format!("raw {i}"));
        os.end_encapsulation();
        let request = floe::protocol::RequestData {
            request_id: 0,
            name: hello.ice_get_identity().name.clone(),
            category: hello.ice_get_identity().category.clone(),
            operation: "notify".into(),
            params: os.finish().unwrap().into(),
            ..Default::default()
        };
        many.extend_from_slice(&floe::protocol::build_message(
            floe::protocol::MessageType::Request,
            &request.request_body(),
            false,
        ));
    }
    conn.send_raw(many.freeze()).await.unwrap();
    // The server may dispatch the oneways on several threads: wait until all ten were counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut count = notify_count(&hello).await;
    while count < before + 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        count = notify_count(&hello).await;
    }
    assert_eq!(
        count,
        before + 10,
        "every request of the one write was dispatched once"
    );
    comm.destroy().await;
}

async fn notify_count(hello: &ObjectPrx) -> i32 {
    hello
        .invoke::<i32, Error>(
            "notifyCount",
            floe::OperationMode::Idempotent,
            None,
            true,
            |_| {},
            |is| is.read::<i32>(),
        )
        .await
        .unwrap()
}
