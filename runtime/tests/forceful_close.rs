//! A servant that closes its own connection forcefully (`current.con.close(false)`) sends no
//! reply: the caller sees the connection lost, every time (ZeroC's Ice/ami test expects
//! ConnectionLostException for `close(Forcefully)`).

use std::sync::Arc;

use bytes::Bytes;
use floe::codegen::BoxFuture;
use floe::{Blobject, BlobjectDispatcher, Communicator, Current, Error, OperationMode, Properties};

#[derive(Debug)]
struct Closer;

impl Blobject for Closer {
    fn ice_invoke<'a>(
        &'a self,
        _in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        Box::pin(async move {
            if let Some(con) = &current.con {
                con.close(false);
            }
            Ok((true, Bytes::from_static(&[6, 0, 0, 0, 1, 1])))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forceful_close_from_a_dispatch_drops_its_reply() {
    let server = Communicator::with_properties(Properties::new()).unwrap();
    let adapter = server
        .create_object_adapter_with_endpoints("", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    adapter
        .add(
            Arc::new(BlobjectDispatcher(Arc::new(Closer))),
            "closer".parse().unwrap(),
        )
        .unwrap();
    adapter.activate().unwrap();
    let p = Properties::new();
    // Not idempotent and no retry: the loss shows.
    p.set_property("Ice.RetryIntervals", "-1");
    let client = Communicator::with_properties(p).unwrap();
    let prx = client
        .string_to_proxy(&format!("closer:{}", adapter.endpoints()[0]))
        .unwrap()
        .unwrap();
    for i in 0..50 {
        let empty = Bytes::from_static(&[6, 0, 0, 0, 1, 1]);
        match prx
            .ice_invoke("close", OperationMode::Normal, empty, None)
            .await
        {
            Err(Error::ConnectionLost(_)) => {}
            other => panic!("call {i}: expected ConnectionLost, got {other:?}"),
        }
    }
    client.destroy().await;
    server.destroy().await;
}
