//! Ice's `acm` suite, cut down: heartbeats during long dispatches (so ZeroC clients with short ACM
//! timeouts keep slow calls), idle closes, client heartbeats, and a client dropping a silent
//! connection.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use floe::encoding::{EncodingVersion, OutputStream};
use floe::{Error, OperationMode};

fn encaps(f: impl FnOnce(&mut OutputStream)) -> Bytes {
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(EncodingVersion::V1_1, Default::default());
    f(&mut os);
    os.end_encapsulation();
    os.finish().unwrap().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_keeps_slow_call_because_floe_server_heartbeats() {
    require_zeroc();
    // The client drops a connection silent for 2 s; the server checks every 1 s and sends a
    // heartbeat when it has been silent for 0.5 s while dispatching.
    let server = start_floe_server(&[("Ice.ACM.Server.Timeout", "2")]).await;
    run_python_client(
        &server.proxy.to_string(),
        "slow",
        &["4500", "--Ice.ACM.Client.Timeout=2"],
    )
    .await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_heartbeats_the_zeroc_client_drops_the_slow_call() {
    // The control experiment for the test above: it shows the heartbeats are what keeps the call.
    require_zeroc();
    let server = start_floe_server(&[
        ("Ice.ACM.Server.Timeout", "2"),
        ("Ice.ACM.Server.Heartbeat", "0"),
    ])
    .await;
    let (ok, out) = try_python_client(
        &server.proxy.to_string(),
        "slow",
        &["4500", "--Ice.ACM.Client.Timeout=2"],
    )
    .await;
    assert!(!ok, "the call should have timed out:\n{out}");
    assert!(out.contains("ConnectionTimeoutException"), "{out}");
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_closes_idle_connection_gracefully() {
    let server = start_floe_server(&[]).await;
    let comm = client_communicator(&[
        ("Ice.ACM.Client.Timeout", "1"),
        ("Ice.ACM.Client.Heartbeat", "0"),
        ("Ice.ACM.Client.Close", "1"),
    ]);
    let prx = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    prx.ice_ping().await.unwrap();
    let conn = prx.ice_get_connection().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(4), conn.wait_closed())
        .await
        .expect("closed by ACM");
    assert!(
        matches!(reason, Error::ConnectionClosed(_)),
        "graceful close, got {reason:?}"
    );
    // A new call opens a new connection.
    prx.ice_ping().await.unwrap();
    assert_ne!(prx.ice_get_connection().await.unwrap(), conn);
    comm.destroy().await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_heartbeats_keep_connection_open() {
    // The server closes connections idle for 2 s forcefully; the client's heartbeats (every
    // 0.5 s) keep it alive.
    let server = start_floe_server(&[
        ("Ice.ACM.Server.Timeout", "2"),
        ("Ice.ACM.Server.Close", "4"),
    ])
    .await;
    let comm = client_communicator(&[
        ("Ice.ACM.Client.Timeout", "1"),
        ("Ice.ACM.Client.Heartbeat", "3"),
    ]);
    let prx = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    prx.ice_ping().await.unwrap();
    let conn = prx.ice_get_connection().await.unwrap();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert!(!conn.is_closed(), "closed: {:?}", conn.closed_reason());
    prx.ice_ping().await.unwrap();
    assert_eq!(prx.ice_get_connection().await.unwrap(), conn);
    comm.destroy().await;

    // Without heartbeats the same server drops the idle connection.
    let comm = client_communicator(&[("Ice.ACM.Client.Heartbeat", "0")]);
    let prx = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    prx.ice_ping().await.unwrap();
    let conn = prx.ice_get_connection().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(6), conn.wait_closed())
        .await
        .expect("dropped by the server");
    assert!(matches!(reason, Error::ConnectionLost(_)), "{reason:?}");
    comm.destroy().await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_drops_silent_connection_with_pending_call() {
    let server = start_floe_server(&[("Ice.ACM.Server.Heartbeat", "0")]).await;
    let comm = client_communicator(&[("Ice.ACM.Client.Timeout", "1")]);
    let prx = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    let started = std::time::Instant::now();
    let r = prx
        .ice_invoke(
            "slow",
            OperationMode::Normal,
            encaps(|os| os.write(&4000i32)),
            None,
        )
        .await;
    assert!(matches!(r, Err(Error::ConnectionTimeout)), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "{:?}",
        started.elapsed()
    );
    comm.destroy().await;
    server.communicator.destroy().await;
}
