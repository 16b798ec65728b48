//! Deactivating an adapter (or shutting its communicator down) from inside a dispatch stops
//! its connections from taking requests at once, as Ice's synchronous deactivation does: a
//! request the client sends right after the reply is not dispatched (the client gets
//! CloseConnection and retries elsewhere; ZeroC's Ice/faultTolerance client expects the next
//! server to answer). Adapters without a name are shut down and destroyed with the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use floe::codegen::BoxFuture;
use floe::{Blobject, BlobjectDispatcher, Communicator, Current, OperationMode, Properties};

#[derive(Debug, Default)]
struct Server {
    after_stop: AtomicUsize,
    stopped: std::sync::atomic::AtomicBool,
}

impl Blobject for Server {
    fn ice_invoke<'a>(
        &'a self,
        _in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        Box::pin(async move {
            if current.operation == "stop" {
                self.stopped.store(true, Ordering::SeqCst);
                current.adapter.communicator().shutdown();
            } else if self.stopped.load(Ordering::SeqCst) {
                self.after_stop.fetch_add(1, Ordering::SeqCst);
            }
            Ok((true, Bytes::from_static(&[6, 0, 0, 0, 1, 1])))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_after_shutdown_from_a_dispatch_are_not_dispatched() {
    for round in 0..20 {
        let server = Communicator::with_properties(Properties::new()).unwrap();
        let adapter = server
            .create_object_adapter_with_endpoints("Stoppable", "tcp -h 127.0.0.1 -p 0")
            .await
            .unwrap();
        let servant = Arc::new(Server::default());
        adapter
            .add(
                Arc::new(BlobjectDispatcher(servant.clone())),
                "s".parse().unwrap(),
            )
            .unwrap();
        adapter.activate().unwrap();
        let p = Properties::new();
        p.set_property("Ice.RetryIntervals", "-1");
        let client = Communicator::with_properties(p).unwrap();
        let prx = client
            .string_to_proxy(&format!("s:{}", adapter.endpoints()[0]))
            .unwrap()
            .unwrap();
        let empty = Bytes::from_static(&[6, 0, 0, 0, 1, 1]);
        prx.ice_invoke("stop", OperationMode::Normal, empty.clone(), None)
            .await
            .unwrap();
        // Right after the reply, on the same connection.
        let _ = prx
            .ice_invoke("after", OperationMode::Normal, empty, None)
            .await;
        assert_eq!(
            servant.after_stop.load(Ordering::SeqCst),
            0,
            "round {round}: a request after shutdown was dispatched"
        );
        client.destroy().await;
        server.destroy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_destroy_reach_adapters_without_a_name() {
    let communicator = Communicator::with_properties(Properties::new()).unwrap();
    let unnamed = communicator
        .create_object_adapter_with_endpoints("", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let named = communicator
        .create_object_adapter_with_endpoints("Named", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    unnamed.activate().unwrap();
    named.activate().unwrap();
    communicator.shutdown();
    assert!(named.is_deactivated());
    assert!(
        unnamed.is_deactivated(),
        "as in Ice, every adapter is deactivated"
    );
    communicator.wait_for_shutdown().await;
    communicator.destroy().await;

    // An unnamed adapter destroyed by itself is forgotten by its communicator.
    let communicator = Communicator::with_properties(Properties::new()).unwrap();
    let unnamed = communicator
        .create_object_adapter_with_endpoints("", "")
        .await
        .unwrap();
    unnamed.destroy().await;
    communicator.destroy().await;
}
