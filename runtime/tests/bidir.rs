//! Ice's `bidir` suite, cut down: a client attaches an object adapter to its outgoing
//! connection, and the server calls the client back over that same connection with a fixed
//! proxy (`current.con.create_proxy(id)`), between Floe and ZeroC in both directions.

mod common;

use std::sync::Arc;

use common::*;
use floe::{Error, Identity, Proxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_called_back_by_floe_server() {
    require_zeroc();
    let server = start_floe_server(&[]).await;
    run_python_client(&server.proxy.to_string(), "bidir", &[]).await;
    server.communicator.destroy().await;
}

async fn called_back(target: &str, comm: &floe::Communicator, expected: &str) {
    let hello = HelloPrx::from_object(comm.string_to_proxy(target).unwrap().unwrap());
    // Without an adapter on the connection the callback fails on the server's side.
    assert!(hello.callback("cb").await.is_err());
    let adapter = comm
        .create_object_adapter_with_endpoints("", "")
        .await
        .unwrap();
    let cb = Arc::new(CallbackDispatcher::default());
    adapter.add(cb.clone(), Identity::new("cb", "")).unwrap();
    adapter.activate().unwrap();
    hello
        .ice_get_connection()
        .await
        .unwrap()
        .set_adapter(Some(&adapter));
    hello.callback("cb").await.unwrap();
    hello.callback("cb").await.unwrap();
    assert_eq!(
        *cb.0.lock(),
        vec![expected.to_string(), expected.to_string()]
    );
    // A callback to an unknown identity fails in the server with the client's ObjectNotExist,
    // which the server passes on unchanged (its fields are already filled in).
    match hello.callback("nobody").await {
        Err(Error::ObjectNotExist(f)) => {
            assert_eq!((f.name.as_str(), f.operation.as_str()), ("nobody", "ping"))
        }
        other => panic!("expected ObjectNotExist, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_called_back_by_zeroc_and_floe_servers() {
    require_zeroc();
    let py = start_python_server();
    let comm = client_communicator(&[]);
    called_back(&py.proxy, &comm, "from python").await;
    let floe_server = start_floe_server(&[]).await;
    called_back(&floe_server.proxy.to_string(), &comm, "from server").await;
    let _ = HelloPrx::from_object(comm.string_to_proxy(&py.proxy).unwrap().unwrap())
        .shutdown()
        .await;
    comm.destroy().await;
    floe_server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_proxy_fails_once_its_connection_is_closed() {
    let server = start_floe_server(&[]).await;
    let comm = client_communicator(&[]);
    let hello = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    let conn = hello.ice_get_connection().await.unwrap();
    let fixed = conn.create_proxy(Identity::new("hello", "")).unwrap();
    assert_eq!(fixed.to_string(), "hello -t -e 1.1");
    fixed.ice_ping().await.unwrap();
    conn.close(false);
    conn.wait_closed().await;
    assert!(fixed.ice_ping().await.is_err());
    // The ordinary proxy reconnects.
    hello.ice_ping().await.unwrap();
    comm.destroy().await;
    server.communicator.destroy().await;
}
