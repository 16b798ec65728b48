//! Indirect (`id @ adapter`) and well-known (`id`) proxies resolved through a locator
//! (`Ice.Default.Locator` or `ice_locator`), here a ZeroC Python servant implementing
//! `::Ice::Locator`: `findAdapterById`, `findObjectById` (an answer that is itself indirect is
//! resolved again), unknown adapters and objects, and the cache being refreshed when the
//! endpoints it holds stop working.

mod common;

use common::*;
use floe::{Error, Identity, Proxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_resolves_through_zeroc_locator() {
    require_zeroc();
    let py = start_python_server();
    let hello_direct = py.proxy.clone();
    let locator = hello_direct.replacen("hello -t", "locator -t", 1);
    assert_ne!(locator, hello_direct);
    let comm = client_communicator(&[("Ice.Default.Locator", &locator)]);

    let indirect = HelloPrx::from_object(
        comm.string_to_proxy("hello @ HelloAdapter")
            .unwrap()
            .unwrap(),
    );
    assert_eq!(indirect.to_string(), "hello -t -e 1.1 @ HelloAdapter");
    assert_eq!(
        indirect.say_hello("indirect").await.unwrap(),
        "Hello, indirect!"
    );

    // Well-known: the locator answers with an indirect proxy, resolved in turn.
    let well_known = HelloPrx::from_object(comm.string_to_proxy("hello").unwrap().unwrap());
    assert_eq!(
        well_known.say_hello("well-known").await.unwrap(),
        "Hello, well-known!"
    );
    // Well-known, answered with a direct proxy (whose identity the call does not change).
    let direct = comm.string_to_proxy("direct-hello").unwrap().unwrap();
    assert!(direct.ice_get_locator().is_some());
    direct
        .ice_identity(Identity::new("hello", ""))
        .ice_ping()
        .await
        .unwrap();

    match comm
        .string_to_proxy("x @ NoSuchAdapter")
        .unwrap()
        .unwrap()
        .ice_ping()
        .await
    {
        Err(Error::NotRegistered { kind, id }) => assert_eq!(
            (kind.as_str(), id.as_str()),
            ("object adapter", "NoSuchAdapter")
        ),
        other => panic!("expected NotRegistered, got {other:?}"),
    }
    match comm
        .string_to_proxy("nobody")
        .unwrap()
        .unwrap()
        .ice_ping()
        .await
    {
        Err(Error::NotRegistered { kind, .. }) => assert_eq!(kind, "object"),
        other => panic!("expected NotRegistered, got {other:?}"),
    }

    // Without a locator, indirect proxies have no endpoint.
    let plain = client_communicator(&[]);
    let r = plain
        .string_to_proxy("hello @ HelloAdapter")
        .unwrap()
        .unwrap()
        .ice_ping()
        .await;
    assert!(matches!(r, Err(Error::NoEndpoint(_))), "{r:?}");
    // ice_locator gives one.
    let with = plain
        .string_to_proxy("hello @ HelloAdapter")
        .unwrap()
        .unwrap()
        .ice_locator(plain.string_to_proxy(&locator).unwrap());
    with.ice_ping().await.unwrap();

    let _ = indirect.shutdown().await;
    plain.destroy().await;
    comm.destroy().await;
}

/// A Floe `::Ice::Locator` whose answer for `findAdapterById` the test changes.
struct MovableLocator(parking_lot::Mutex<Option<floe::ObjectPrx>>);

impl floe::Dispatcher for MovableLocator {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut floe::IncomingRequest,
    ) -> floe::codegen::BoxFuture<'a, floe::Result<floe::OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "findAdapterById" => {
                    request.check_mode(floe::OperationMode::Idempotent)?;
                    let _id = request.read_params(|is| is.read::<String>())?;
                    let answer = self.0.lock().clone();
                    Ok(request.reply(None, |os| os.write(&answer)))
                }
                _ => {
                    floe::dispatch_builtin(
                        request,
                        "::Ice::Locator",
                        &["::Ice::Locator", "::Ice::Object"],
                    )
                    .await
                }
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_locations_are_refreshed() {
    let first = start_floe_server(&[]).await;
    let loc_comm = client_communicator(&[]);
    let loc_adapter = loc_comm
        .create_object_adapter_with_endpoints("Loc", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let movable = std::sync::Arc::new(MovableLocator(parking_lot::Mutex::new(Some(
        first.proxy.clone(),
    ))));
    let locator = loc_adapter
        .add(movable.clone(), Identity::new("locator", ""))
        .unwrap();
    loc_adapter.activate().unwrap();

    let comm = client_communicator(&[("Ice.Default.Locator", &locator.to_string())]);
    let hello = HelloPrx::from_object(comm.string_to_proxy("hello @ Movable").unwrap().unwrap());
    assert_eq!(hello.say_hello("one").await.unwrap(), "Hello, one!");
    assert_eq!(
        first
            .hello
            .notifications
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // The adapter moves: the old endpoints refuse connections, the locator knows the new ones.
    let second = start_floe_server(&[]).await;
    *movable.0.lock() = Some(second.proxy.clone());
    first.communicator.destroy().await;
    hello.notify("moved").await.unwrap();
    assert_eq!(
        second
            .hello
            .notifications
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    comm.destroy().await;
    loc_comm.destroy().await;
    second.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapter_with_adapter_id_registers_with_the_locator() {
    require_zeroc();
    let py = start_python_server();
    let locator = py.proxy.replacen("hello -t", "locator -t", 1);
    let server = client_communicator(&[
        ("Ice.Default.Locator", &locator),
        ("Reg.AdapterId", "FloeAdapter"),
    ]);
    let adapter = server
        .create_object_adapter_with_endpoints("Reg", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    let prx = adapter
        .add(
            std::sync::Arc::new(HelloDispatcher(Default::default())),
            Identity::new("hello", ""),
        )
        .unwrap();
    assert_eq!(
        prx.to_string(),
        "hello -t -e 1.1 @ FloeAdapter",
        "proxies of the adapter are indirect"
    );
    adapter.activate().unwrap();
    adapter.register_with_locator(true).await.unwrap();

    // A ZeroC client and a Floe client both find the Floe adapter through the ZeroC locator.
    run_python_client(
        &prx.to_string(),
        "operations",
        &[&format!("--Ice.Default.Locator={locator}")],
    )
    .await;
    let client = client_communicator(&[("Ice.Default.Locator", &locator)]);
    let hello = HelloPrx::from_object(
        client
            .string_to_proxy("hello @ FloeAdapter")
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        hello.say_hello("registered").await.unwrap(),
        "Hello, registered!"
    );

    // Unregistered: the locator no longer knows the adapter.
    adapter.register_with_locator(false).await.unwrap();
    let fresh = client_communicator(&[("Ice.Default.Locator", &locator)]);
    let r = fresh
        .string_to_proxy("hello @ FloeAdapter")
        .unwrap()
        .unwrap()
        .ice_ping()
        .await;
    assert!(matches!(r, Err(Error::NotRegistered { .. })), "{r:?}");

    let _ = HelloPrx::from_object(client.string_to_proxy(&py.proxy).unwrap().unwrap())
        .shutdown()
        .await;
    fresh.destroy().await;
    client.destroy().await;
    server.destroy().await;
}
