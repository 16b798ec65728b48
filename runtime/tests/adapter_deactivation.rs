//! Ice's `adapterDeactivation` suite, cut down: adapters from `<Adapter>.Endpoints` with an
//! ephemeral port reported back, activation and deactivation, and the communicator's idempotent
//! shutdown / wait_for_shutdown / destroy; plus `floe::initialize` with a config file.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use floe::{Endpoint, Error, Identity, Proxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle() {
    let dir = std::env::temp_dir().join(format!("floe-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.server");
    std::fs::write(
        &config,
        "# server config\nHello.Endpoints=tcp -h 127.0.0.1 -p 0\nIce.Trace.Network=0\n",
    )
    .unwrap();
    let mut args = vec![
        "server".to_string(),
        format!("--Ice.Config={}", config.display()),
        "rest".to_string(),
    ];
    let server = floe::initialize(&mut args).unwrap();
    assert_eq!(args, vec!["server", "rest"]);

    let adapter = server.create_object_adapter("Hello").await.unwrap();
    let port = match &adapter.endpoints()[0] {
        Endpoint::Ip(ip) => ip.port,
        other => panic!("{other:?}"),
    };
    assert_ne!(port, 0, "the ephemeral port is reported");
    assert!(matches!(
        server.create_object_adapter("Hello").await,
        Err(Error::AlreadyRegistered { .. })
    ));
    let prx = adapter
        .add(
            Arc::new(HelloDispatcher(Arc::default())),
            Identity::new("hello", ""),
        )
        .unwrap();
    assert_eq!(
        prx.to_string(),
        format!("hello -t -e 1.1:tcp -h 127.0.0.1 -p {port} -t 60000")
    );

    let client = client_communicator(&[]);
    let hello = HelloPrx::from_object(client.string_to_proxy(&prx.to_string()).unwrap().unwrap());
    // Before activation connections wait; after it, calls go through.
    let pending = tokio::spawn({
        let hello = hello.clone();
        async move { hello.say_hello("early").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished(), "no dispatch before activate()");
    adapter.activate().unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), "Hello, early!");

    // A servant shuts the communicator down; wait_for_shutdown returns; everything is idempotent.
    let waiter = tokio::spawn({
        let server = server.clone();
        async move { server.wait_for_shutdown().await }
    });
    hello.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(server.is_shutdown());
    assert!(adapter.is_deactivated());
    server.shutdown();
    server.destroy().await;
    server.destroy().await;
    assert!(matches!(
        adapter.activate(),
        Err(Error::ObjectAdapterDeactivated(_))
    ));
    assert!(matches!(
        server
            .create_object_adapter_with_endpoints("Other", "tcp -h 127.0.0.1 -p 0")
            .await,
        Err(Error::CommunicatorDestroyed)
    ));
    // The client's next call finds nobody listening.
    let r = hello.ice_ping().await;
    assert!(matches!(r, Err(Error::ConnectionRefused(_))), "{r:?}");
    client.destroy().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_waits_for_dispatches_and_replies() {
    let server = start_floe_server(&[]).await;
    let client = client_communicator(&[]);
    let hello = HelloPrx::from_object(
        client
            .string_to_proxy(&server.proxy.to_string())
            .unwrap()
            .unwrap(),
    );
    hello.ice_ping().await.unwrap();
    let slow = tokio::spawn({
        let hello = hello.clone();
        async move { hello.slow(500).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.adapter.deactivate();
    // The dispatch in progress still completes and its reply is delivered before the close.
    slow.await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.adapter.wait_for_deactivate())
        .await
        .unwrap();
    client.destroy().await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_endpoints_go_into_proxies() {
    let comm = client_communicator(&[
        ("Pub.Endpoints", "tcp -h 127.0.0.1 -p 0"),
        (
            "Pub.PublishedEndpoints",
            "tcp -h 127.0.0.1 -p 9999:tcp -h 127.0.0.1 -p 9998",
        ),
    ]);
    let adapter = comm.create_object_adapter("Pub").await.unwrap();
    let prx = adapter.create_proxy(Identity::new("x", "y"));
    assert_eq!(
        prx.to_string(),
        "y/x -t -e 1.1:tcp -h 127.0.0.1 -p 9999 -t 60000:tcp -h 127.0.0.1 -p 9998 -t 60000"
    );
    match &adapter.endpoints()[0] {
        Endpoint::Ip(ip) => assert_ne!(ip.port, 0),
        other => panic!("{other:?}"),
    }
    comm.destroy().await;
}
