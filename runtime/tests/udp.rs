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

/// Waits until `count()` reaches `n` (at most 5 s) and returns what it last saw.
async fn wait_count(n: i32, count: impl Fn() -> i32) -> i32 {
    for _ in 0..500 {
        if count() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    count()
}

fn notifications(server: &FloeServer) -> i32 {
    server
        .hello
        .notifications
        .load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_datagrams_reach_every_floe_and_zeroc_member_of_the_group() {
    require_zeroc();
    let group = format!(
        "udp -h 239.255.1.1 -p {} --interface 127.0.0.1",
        floe_test_support::free_port()
    );
    let endpoints = format!("tcp -h 127.0.0.1 -p 0:{group}");
    let one = start_floe_server_on(&endpoints, &[]).await;
    let two = start_floe_server_on(&endpoints, &[]).await;
    let py = start_python_server_with(&[&format!("--Py.Endpoints={endpoints}")]);
    let comm = client_communicator(&[]);
    let py_hello = HelloPrx::from_object(comm.string_to_proxy(&py.proxy).unwrap().unwrap());
    assert_eq!(py_hello.notify_count().await.unwrap(), 0);

    // ZeroC sends to the group: both Floe servers get every datagram.
    let target = format!("hello -d:{group}");
    run_python_client(&target, "send_datagrams", &["5", "10"]).await;
    for server in [&one, &two] {
        assert_eq!(wait_count(5, || notifications(server)).await, 5);
    }

    // Floe sends to the group (with a TTL): the Floe servers and ZeroC's get every datagram.
    let to_group = HelloPrx::from_object(
        comm.string_to_proxy(&format!("hello -d:{group} --ttl 1"))
            .unwrap()
            .unwrap(),
    );
    for i in 0..5 {
        to_group.notify(&format!("m{i}")).await.unwrap();
    }
    for server in [&one, &two] {
        assert_eq!(wait_count(10, || notifications(server)).await, 10);
    }
    let mut seen = 0;
    for _ in 0..500 {
        seen = py_hello.notify_count().await.unwrap();
        if seen >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, 10, "ZeroC's member of the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_larger_than_the_buffers_fail_to_send_and_are_dropped_on_receipt() {
    require_zeroc();
    // Asked for 4096 bytes, Linux reports 8192: the receiver carries at most 8192 - 28 bytes,
    // as a ZeroC server with the same setting does.
    let server = start_floe_server_on(
        "tcp -h 127.0.0.1 -p 0:udp -h 127.0.0.1 -p 0",
        &[("Ice.UDP.RcvSize", "4096")],
    )
    .await;
    let proxy = server.proxy.to_string();
    run_python_client(&proxy, "send_datagrams", &["1", "12000"]).await;
    run_python_client(&proxy, "send_datagrams", &["2", "100"]).await;
    assert_eq!(wait_count(2, || notifications(&server)).await, 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        notifications(&server),
        2,
        "the datagram over Ice.UDP.RcvSize was dropped"
    );

    // The sender refuses a message over its own limit, and sends one under it.
    let comm = client_communicator(&[("Ice.UDP.SndSize", "4096")]);
    let hello = HelloPrx(
        comm.string_to_proxy(&proxy)
            .unwrap()
            .unwrap()
            .ice_datagram(),
    );
    match hello.notify(&"x".repeat(12000)).await {
        Err(Error::DatagramLimit { size, limit }) => {
            assert!((4096 - 28..12000).contains(&limit), "limit {limit}");
            assert!(size > 12000, "{size}");
        }
        other => panic!("a 12000-byte datagram gave {other:?}"),
    }
    hello.notify(&"x".repeat(3000)).await.unwrap();
    assert_eq!(wait_count(3, || notifications(&server)).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floe_servant_calls_back_over_the_datagram_connection_of_its_request() {
    require_zeroc();
    let server = start_floe_server(&[]).await;
    // The ZeroC client listens on its own datagram connection; the Floe servant's callback goes
    // back to it from the adapter's UDP socket.
    run_python_client(&server.proxy.to_string(), "udp_bidir", &[]).await;
}
