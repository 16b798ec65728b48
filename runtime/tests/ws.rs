//! The WebSocket transport (`ws` endpoints) between Floe and ZeroC, both ways: the HTTP upgrade
//! with subprotocol `ice.zeroc.com`, masked client frames, large messages (64-bit frame
//! lengths), compression, user exceptions and oneway calls.

mod common;

use common::*;
use floe::endpoint::Transport;
use floe::{Endpoint, ObjectPrx, Proxy};

fn only_ws(prx: &ObjectPrx) -> ObjectPrx {
    let ws: Vec<Endpoint> = prx
        .ice_get_endpoints()
        .iter()
        .filter(|e| matches!(e, Endpoint::Ip(ip) if ip.transport == Transport::Ws))
        .cloned()
        .collect();
    assert_eq!(ws.len(), 1, "{prx}");
    prx.ice_endpoints(ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_over_websocket_to_floe() {
    require_zeroc();
    let server =
        start_floe_server_on("ws -h 127.0.0.1 -p 0 -r /ice:tcp -h 127.0.0.1 -p 0", &[]).await;
    let prx = only_ws(&server.proxy);
    assert!(prx.to_string().contains(":ws -h 127.0.0.1 -p "), "{prx}");
    assert!(prx.to_string().ends_with(" -t 60000 -r /ice"), "{prx}");
    run_python_client(&prx.to_string(), "operations", &[]).await;
    run_python_client(&prx.to_string(), "exceptions", &[]).await;
    run_python_client(&prx.to_string(), "oneway", &[]).await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_over_websocket_to_zeroc_and_floe() {
    require_zeroc();
    let py = start_python_server();
    let floe_server = start_floe_server_on("ws -h 127.0.0.1 -p 0", &[]).await;
    let comm = client_communicator(&[]);
    let targets = [
        only_ws(&comm.string_to_proxy(&py.proxy).unwrap().unwrap()),
        floe_server.proxy.clone(),
    ];
    for target in targets {
        let hello =
            HelloPrx::from_object(comm.string_to_proxy(&target.to_string()).unwrap().unwrap());
        assert_eq!(hello.say_hello("ws").await.unwrap(), "Hello, ws!");
        assert_eq!(hello.add(40, 2).await.unwrap(), 42);
        match hello.fail("over ws").await {
            Err(FailError::TestFailure(e)) => assert_eq!(e.reason, "over ws"),
            other => panic!("expected TestFailure, got {other:?}"),
        }
        let start = hello.notify_count().await.unwrap();
        HelloPrx(hello.ice_oneway()).notify("one").await.unwrap();
        let mut n = start;
        for _ in 0..200 {
            n = hello.notify_count().await.unwrap();
            if n > start {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(n, start + 1);
        assert!(
            hello
                .ice_get_connection()
                .await
                .unwrap()
                .remote_address()
                .port()
                > 0
        );
        for compress in [false, true] {
            let h = HelloPrx(hello.ice_compress(compress));
            let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
            let (ok, out) = h
                .ice_invoke(
                    "echoBytes",
                    floe::OperationMode::Normal,
                    {
                        let mut os = floe::codegen::OutputStream::new(floe::EncodingVersion::V1_0);
                        os.start_encapsulation(floe::EncodingVersion::V1_1, Default::default());
                        os.write(&big);
                        os.end_encapsulation();
                        os.finish().unwrap().into()
                    },
                    None,
                )
                .await
                .unwrap();
            assert!(ok);
            let mut is = floe::codegen::InputStream::new(&out, floe::EncodingVersion::V1_0);
            is.start_encapsulation().unwrap();
            assert_eq!(is.read::<Vec<u8>>().unwrap(), big);
        }
    }
    let _ = HelloPrx::from_object(comm.string_to_proxy(&py.proxy).unwrap().unwrap())
        .shutdown()
        .await;
    comm.destroy().await;
    floe_server.communicator.destroy().await;
}
