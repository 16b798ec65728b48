//! Ice's `timeout` suite, cut down: invocation timeouts, abandoned calls that leave the
//! connection usable, and refused connections.

mod common;

use std::time::{Duration, Instant};

use common::*;
use floe::{Error, Proxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_timeout_and_abandoned_calls() {
    let server = start_floe_server(&[]).await;
    let comm = client_communicator(&[]);
    let hello = HelloPrx::from_object(
        comm.string_to_proxy(&server.proxy.to_string())
            .unwrap()
            .unwrap(),
    );
    hello.ice_ping().await.unwrap();
    let conn = hello.ice_get_connection().await.unwrap();

    let t = HelloPrx(hello.ice_invocation_timeout(200));
    let start = Instant::now();
    let r = t.slow(3000).await;
    assert!(matches!(r, Err(Error::InvocationTimeout(200))), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );

    // Dropping a call's future does not poison the connection.
    let dropped = tokio::time::timeout(Duration::from_millis(100), hello.slow(500)).await;
    assert!(dropped.is_err());
    assert_eq!(hello.say_hello("still").await.unwrap(), "Hello, still!");
    // The late replies arrive and are ignored.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(hello.add(1, 1).await.unwrap(), 2);
    assert_eq!(hello.ice_get_connection().await.unwrap(), conn);
    assert!(!conn.is_closed());
    comm.destroy().await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let comm = client_communicator(&[]);
    let prx = comm
        .string_to_proxy(&format!("hello:tcp -h 127.0.0.1 -p {port}"))
        .unwrap()
        .unwrap();
    let r = prx.ice_ping().await;
    assert!(matches!(r, Err(Error::ConnectionRefused(_))), "{r:?}");
    comm.destroy().await;
    assert!(matches!(
        prx.ice_ping().await,
        Err(Error::CommunicatorDestroyed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_connection_is_not_reused() {
    let server = start_floe_server(&[]).await;
    let comm = client_communicator(&[]);
    let hello = HelloPrx::from_object(
        comm.string_to_proxy(&server.proxy.to_string())
            .unwrap()
            .unwrap(),
    );
    hello.ice_ping().await.unwrap();
    let conn = hello.ice_get_connection().await.unwrap();
    let slow = tokio::spawn({
        let hello = hello.clone();
        async move { hello.slow(400).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A graceful close waits for the pending reply; meanwhile new calls use a new connection.
    conn.close(true);
    assert!(!conn.is_active());
    assert_eq!(
        hello.say_hello("meanwhile").await.unwrap(),
        "Hello, meanwhile!"
    );
    assert_ne!(hello.ice_get_connection().await.unwrap(), conn);
    slow.await.unwrap().unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), conn.wait_closed())
        .await
        .unwrap();
    assert!(matches!(reason, Error::ConnectionClosed(_)), "{reason:?}");
    comm.destroy().await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_timeout_covers_connecting() {
    // A peer that accepts but never validates the connection: the endpoint timeout (60 s) would
    // wait, the invocation timeout does not.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            held.push(s);
        }
    });
    let comm = client_communicator(&[]);
    let prx = comm
        .string_to_proxy(&format!("x:tcp -h 127.0.0.1 -p {port}"))
        .unwrap()
        .unwrap()
        .ice_invocation_timeout(300);
    let start = Instant::now();
    let r = prx.ice_ping().await;
    assert!(matches!(r, Err(Error::InvocationTimeout(300))), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    silent.abort();
    comm.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_fails_pending_calls_at_once() {
    let server = start_floe_server(&[]).await;
    let comm = client_communicator(&[]);
    let hello = HelloPrx::from_object(
        comm.string_to_proxy(&server.proxy.to_string())
            .unwrap()
            .unwrap(),
    );
    hello.ice_ping().await.unwrap();
    let slow = tokio::spawn({
        let hello = hello.clone();
        async move { hello.slow(5000).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    comm.destroy().await;
    let r = slow.await.unwrap();
    assert!(matches!(r, Err(Error::CommunicatorDestroyed)), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(
        hello.ice_ping().await,
        Err(Error::CommunicatorDestroyed)
    ));
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_write_times_out_with_the_endpoint_timeout() {
    // A peer that validates the connection and then never reads: the endpoint timeout (-t 300)
    // closes the connection once a write has made no progress for 300 ms.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stuck = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            use tokio::io::AsyncWriteExt;
            s.write_all(&[0x49, 0x63, 0x65, 0x50, 1, 0, 1, 0, 3, 0, 14, 0, 0, 0])
                .await
                .unwrap();
            held.push(s);
        }
    });
    let comm = client_communicator(&[]);
    let prx = comm
        .string_to_proxy(&format!("x:tcp -h 127.0.0.1 -p {port} -t 300"))
        .unwrap()
        .unwrap();
    const LEN: i32 = 64 * 1024 * 1024;
    let mut params = (6 + 5 + LEN).to_le_bytes().to_vec();
    params.extend_from_slice(&[1, 1, 0xff]);
    params.extend_from_slice(&LEN.to_le_bytes());
    params.resize(6 + 5 + LEN as usize, 7);
    let start = Instant::now();
    let r = prx
        .ice_invoke("big", floe::OperationMode::Normal, params.into(), None)
        .await;
    assert!(matches!(r, Err(Error::ConnectionTimeout)), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    stuck.abort();
    comm.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_connect_timeout_replaces_the_endpoint_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            held.push(s);
        }
    });
    let comm = client_communicator(&[("Ice.Override.ConnectTimeout", "200")]);
    let prx = comm
        .string_to_proxy(&format!("x:tcp -h 127.0.0.1 -p {port} -t 60000"))
        .unwrap()
        .unwrap();
    let start = Instant::now();
    let r = prx.ice_ping().await;
    assert!(matches!(r, Err(Error::ConnectTimeout(_))), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    silent.abort();
    comm.destroy().await;
}
