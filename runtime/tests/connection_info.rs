//! What a connection knows of itself (Ice's `Connection::getEndpoint` and `getInfo`): the
//! endpoint it was accepted on or connected to, its direction, its addresses, and the name of
//! the adapter that dispatches its requests.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe::codegen::BoxFuture;
use floe::endpoint::{Endpoint, Transport};
use floe::{Blobject, BlobjectDispatcher, Communicator, Current, Properties};

/// Remembers the connection of the last request.
#[derive(Debug, Default)]
struct Recorder(Mutex<Option<floe::Connection>>);

impl Blobject for Recorder {
    fn ice_invoke<'a>(
        &'a self,
        _in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        Box::pin(async move {
            *self.0.lock().unwrap() = current.con.clone();
            Ok((true, Bytes::from_static(&[6, 0, 0, 0, 1, 1])))
        })
    }
}

fn ip(e: Option<Endpoint>) -> floe::endpoint::IpEndpoint {
    match e {
        Some(Endpoint::Ip(ip)) => ip,
        other => panic!("expected an IP endpoint, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_know_their_endpoint_direction_and_adapter() {
    let server = Communicator::with_properties(Properties::new()).unwrap();
    server
        .properties()
        .set_property("Info.Endpoints", "tcp -h 127.0.0.1 -p 0 -t 15000");
    let adapter = server.create_object_adapter("Info").await.unwrap();
    let recorder = Arc::new(Recorder::default());
    adapter
        .add(
            Arc::new(BlobjectDispatcher(recorder.clone())),
            "r".parse().unwrap(),
        )
        .unwrap();
    adapter.activate().unwrap();
    let bound = ip(adapter.endpoints().first().cloned());

    let client = Communicator::with_properties(Properties::new()).unwrap();
    let prx = client
        .string_to_proxy(&format!("r:{}", adapter.endpoints()[0]))
        .unwrap()
        .unwrap();
    prx.ice_ping().await.unwrap();
    let outgoing = prx.ice_get_connection().await.unwrap();
    let incoming = recorder.0.lock().unwrap().clone().expect("a connection");

    assert!(incoming.is_incoming());
    assert!(!outgoing.is_incoming());
    assert_eq!(incoming.adapter_name(), "Info");
    assert_eq!(outgoing.adapter_name(), "");
    let accepted_on = ip(incoming.endpoint());
    assert_eq!(accepted_on, bound);
    assert_eq!(accepted_on.transport, Transport::Tcp);
    assert_eq!(accepted_on.timeout, 15000);
    let connected_to = ip(outgoing.endpoint());
    assert_eq!(connected_to.port, bound.port);
    assert_eq!(connected_to.host, "127.0.0.1");
    assert_eq!(incoming.local_address(), outgoing.remote_address());
    assert_eq!(incoming.remote_address(), outgoing.local_address());

    // A bidirectional connection takes the name of the adapter set on it.
    let callbacks = client
        .create_object_adapter_with_endpoints("Callbacks", "")
        .await
        .unwrap();
    outgoing.set_adapter(Some(&callbacks));
    assert_eq!(outgoing.adapter_name(), "Callbacks");
    client.destroy().await;
    server.destroy().await;
}
