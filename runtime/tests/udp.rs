//! Ice's `udp` suite, cut down: datagram and batch-datagram calls between Floe and ZeroC, in
//! both directions, on adapters that listen on TCP and UDP at once.

mod common;

use std::time::Duration;

use common::*;
use floe::{Endpoint, Error, Proxy};

async fn wait_for(hello: &HelloPrx, n: i32) -> i32 {
    let mut got = 0;
    for _ in 0..200 {
        got = hello.notify_count().await.unwrap();
        if got >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_sends_datagrams_to_floe() {
    require_zeroc();
    let server = start_floe_server(&[]).await;
    let eps = server.proxy.ice_get_endpoints();
    assert!(eps.iter().any(|e| matches!(e, Endpoint::Ip(ip) if ip.transport == floe::endpoint::Transport::Udp && ip.port != 0)));
    run_python_client(&server.proxy.to_string(), "datagram", &[]).await;
    assert_eq!(
        server
            .hello
            .notifications
            .load(std::sync::atomic::Ordering::SeqCst),
        5
    );
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_sends_datagrams_to_zeroc_and_floe() {
    require_zeroc();
    let py = start_python_server();
    let floe_server = start_floe_server(&[]).await;
    let comm = client_communicator(&[]);
    for target in [py.proxy.clone(), floe_server.proxy.to_string()] {
        let hello = HelloPrx::from_object(comm.string_to_proxy(&target).unwrap().unwrap());
        let start = hello.notify_count().await.unwrap();
        let d = HelloPrx(hello.ice_datagram());
        for i in 0..3 {
            d.notify(&format!("d{i}")).await.unwrap();
        }
        // Twoway-only operations and the built-ins with results cannot go by datagram; a
        // ping can (ZeroC checks ice_isA, ice_id and ice_ids only).
        assert!(matches!(d.say_hello("x").await, Err(Error::TwowayOnly(_))));
        assert!(matches!(
            d.ice_is_a("::Test::Hello").await,
            Err(Error::TwowayOnly(_))
        ));
        d.ice_ping().await.unwrap();
        let bd = HelloPrx(hello.ice_batch_datagram());
        for i in 0..2 {
            bd.notify(&format!("bd{i}")).await.unwrap();
        }
        bd.ice_flush_batch_requests().await.unwrap();
        assert_eq!(wait_for(&hello, start + 5).await, start + 5, "{target}");
        assert!(d.to_string().contains(" -d "), "{d:?}");
        assert!(bd.to_string().contains(" -D "), "{bd:?}");
    }
    let _ = HelloPrx::from_object(comm.string_to_proxy(&py.proxy).unwrap().unwrap())
        .shutdown()
        .await;
    comm.destroy().await;
    floe_server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagram_proxy_without_udp_endpoint() {
    let comm = client_communicator(&[]);
    let prx = comm
        .string_to_proxy("x -d:tcp -h 127.0.0.1 -p 1")
        .unwrap()
        .unwrap();
    let r = prx
        .ice_invoke(
            "op",
            floe::OperationMode::Normal,
            bytes::Bytes::from_static(&[6, 0, 0, 0, 1, 1]),
            None,
        )
        .await;
    assert!(matches!(r, Err(Error::NoEndpoint(_))), "{r:?}");
    comm.destroy().await;
}
