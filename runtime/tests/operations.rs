//! Ice's `operations` suite, cut down: a ZeroC Python client calls a Floe server (twoway,
//! idempotent, sequences, contexts, encoding 1.0, compression), and a Floe client calls a ZeroC
//! Python server with raw `ice_invoke` and the built-in operations.

mod common;

use bytes::Bytes;
use common::*;
use floe::encoding::{EncodingVersion, InputStream, OutputStream};
use floe::{Context, OperationMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_calls_floe_server() {
    require_zeroc();
    let server = start_floe_server(&[]).await;
    run_python_client(&server.proxy.to_string(), "operations", &[]).await;
    server.communicator.destroy().await;
}

fn encaps(f: impl FnOnce(&mut OutputStream)) -> Bytes {
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(EncodingVersion::V1_1, Default::default());
    f(&mut os);
    os.end_encapsulation();
    os.finish().unwrap().into()
}

fn decode<T>(b: &Bytes, f: impl FnOnce(&mut InputStream<'_>) -> floe::Result<T>) -> T {
    let mut is = InputStream::new(b, EncodingVersion::V1_0);
    is.start_encapsulation().unwrap();
    let v = f(&mut is).unwrap();
    is.end_encapsulation().unwrap();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_calls_zeroc_server() {
    require_zeroc();
    let py = start_python_server();
    let comm = client_communicator(&[]);
    let prx = comm.string_to_proxy(&py.proxy).unwrap().unwrap();
    prx.ice_ping().await.unwrap();
    assert!(prx.ice_is_a("::FloeTest::Hello").await.unwrap());
    assert!(!prx.ice_is_a("::FloeTest::Admin").await.unwrap());
    assert_eq!(prx.ice_id().await.unwrap(), "::FloeTest::Hello");
    assert_eq!(
        prx.ice_ids().await.unwrap(),
        vec!["::FloeTest::Hello", "::Ice::Object"]
    );

    let (ok, out) = prx
        .ice_invoke(
            "sayHello",
            OperationMode::Normal,
            encaps(|os| os.write("floe")),
            None,
        )
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(decode(&out, |is| is.read::<String>()), "Hello, floe!");

    let (ok, out) = prx
        .ice_invoke(
            "add",
            OperationMode::Idempotent,
            encaps(|os| {
                os.write(&20i32);
                os.write(&22i32)
            }),
            None,
        )
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(decode(&out, |is| is.read::<i32>()), 42);

    let mut ctx = Context::new();
    ctx.insert("user".into(), "bob".into());
    let (_, out) = prx
        .ice_context(ctx.clone())
        .ice_invoke("getContext", OperationMode::Normal, encaps(|_| {}), None)
        .await
        .unwrap();
    assert_eq!(
        decode(&out, |is| is
            .read::<std::collections::HashMap<String, String>>()),
        ctx
    );

    // Large payload both ways, with and without compression.
    let big: Vec<u8> = (0..20000u32).map(|i| (i % 7) as u8).collect();
    for p in [prx.clone(), prx.ice_compress(true)] {
        let (ok, out) = p
            .ice_invoke(
                "echoBytes",
                OperationMode::Normal,
                encaps(|os| os.write(&big)),
                None,
            )
            .await
            .unwrap();
        assert!(ok);
        assert_eq!(decode(&out, |is| is.read::<Vec<u8>>()), big);
    }

    // Encoding 1.0.
    let old = prx.ice_encoding_version(EncodingVersion::V1_0);
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(EncodingVersion::V1_0, Default::default());
    os.write("old");
    os.end_encapsulation();
    let (ok, out) = old
        .ice_invoke(
            "sayHello",
            OperationMode::Normal,
            os.finish().unwrap().into(),
            None,
        )
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(&out[4..6], &[1, 0], "reply in the request's encoding");
    assert_eq!(decode(&out, |is| is.read::<String>()), "Hello, old!");

    // Oneway and batch oneway.
    for i in 0..3 {
        prx.ice_oneway()
            .ice_invoke(
                "notify",
                OperationMode::Normal,
                encaps(|os| os.write(&format!("o{i}"))),
                None,
            )
            .await
            .unwrap();
    }
    let batch = prx.ice_batch_oneway();
    for i in 0..4 {
        batch
            .ice_invoke(
                "notify",
                OperationMode::Normal,
                encaps(|os| os.write(&format!("b{i}"))),
                None,
            )
            .await
            .unwrap();
    }
    batch.ice_flush_batch_requests().await.unwrap();
    // The server dispatches on several threads: wait until the 7 notifications are counted.
    let mut count = 0;
    for _ in 0..200 {
        let (_, out) = prx
            .ice_invoke(
                "notifyCount",
                OperationMode::Idempotent,
                encaps(|_| {}),
                None,
            )
            .await
            .unwrap();
        count = decode(&out, |is| is.read::<i32>());
        if count == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(count, 7);

    let (ok, _) = prx
        .ice_invoke("shutdown", OperationMode::Normal, encaps(|_| {}), None)
        .await
        .unwrap();
    assert!(ok);
    comm.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_proxy_against_zeroc_server() {
    require_zeroc();
    let py = start_python_server();
    let comm = client_communicator(&[]);
    let base = comm.string_to_proxy(&py.proxy).unwrap().unwrap();
    let hello = HelloPrx::checked_cast(&base)
        .await
        .unwrap()
        .expect("is a Hello");
    assert_eq!(hello.say_hello("typed").await.unwrap(), "Hello, typed!");
    assert_eq!(hello.add(-2, 5).await.unwrap(), 3);
    match hello.fail("why").await {
        Err(FailError::TestFailure(e)) => assert_eq!(e.reason, "why"),
        other => panic!("expected TestFailure, got {other:?}"),
    }
    let old = HelloPrx(hello.ice_encoding_version(EncodingVersion::V1_0));
    match old.fail("old why").await {
        Err(FailError::TestFailure(e)) => assert_eq!(e.reason, "old why"),
        other => panic!("expected TestFailure, got {other:?}"),
    }
    let p = comm
        .string_to_proxy("cat/obj -f fac -o:tcp -h 127.0.0.1 -p 4061 -t 5000 -z")
        .unwrap()
        .unwrap();
    let back = hello.echo_proxy(Some(&p)).await.unwrap().unwrap();
    assert_eq!(back, p);
    assert_eq!(
        back.to_string(),
        "cat/obj -f fac -o -e 1.1:tcp -h 127.0.0.1 -p 4061 -t 5000 -z"
    );
    // A 1.0 stream carries no proxy encoding version: the proxy comes back as 1.0, as in Ice.
    assert_eq!(
        old.echo_proxy(Some(&p)).await.unwrap().unwrap(),
        p.ice_encoding_version(EncodingVersion::V1_0)
    );
    assert_eq!(hello.echo_proxy(None).await.unwrap(), None);
    // A twoway-only operation on a oneway proxy fails before anything is sent.
    let ow = HelloPrx(hello.ice_oneway());
    assert!(matches!(
        ow.say_hello("x").await,
        Err(floe::Error::TwowayOnly(_))
    ));
    let before = hello.notify_count().await.unwrap();
    ow.notify("one").await.unwrap();
    let mut n = before;
    for _ in 0..100 {
        n = hello.notify_count().await.unwrap();
        if n > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(n, before + 1);
    hello.shutdown().await.unwrap();
    comm.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_oneway_batch_and_concurrency() {
    require_zeroc();
    let server = start_floe_server(&[]).await;
    run_python_client(&server.proxy.to_string(), "oneway", &[]).await;
    run_python_client(&server.proxy.to_string(), "concurrent", &[]).await;
    assert_eq!(
        server
            .hello
            .notifications
            .load(std::sync::atomic::Ordering::SeqCst),
        8
    );
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn communicator_flushes_every_batch_proxy() {
    use floe::Proxy;
    let server = start_floe_server(&[]).await;
    let comm = client_communicator(&[]);
    let hello = HelloPrx::from_object(
        comm.string_to_proxy(&server.proxy.to_string())
            .unwrap()
            .unwrap(),
    );
    let b1 = HelloPrx(hello.ice_batch_oneway());
    let b2 = HelloPrx(hello.ice_batch_datagram());
    for i in 0..3 {
        b1.notify(&format!("a{i}")).await.unwrap();
        b2.notify(&format!("b{i}")).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        hello.notify_count().await.unwrap(),
        0,
        "nothing is sent before the flush"
    );
    comm.flush_batch_requests().await.unwrap();
    let mut n = 0;
    for _ in 0..200 {
        n = hello.notify_count().await.unwrap();
        if n == 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(n, 6);
    // Flushing again sends nothing more.
    comm.flush_batch_requests().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(hello.notify_count().await.unwrap(), 6);
    comm.destroy().await;
    server.communicator.destroy().await;
}

struct Recorder(parking_lot::Mutex<Vec<i32>>);

impl floe::Blobject for Recorder {
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: bytes::Bytes,
        current: &'a floe::Current,
    ) -> floe::codegen::BoxFuture<'a, floe::Result<(bool, bytes::Bytes)>> {
        Box::pin(async move {
            if current.operation != "record" {
                return Ok((true, floe::protocol::empty_encapsulation(1, 1)));
            }
            let n = decode(&in_encaps, |is| is.read::<i32>());
            // Uneven dispatch times would reorder concurrent dispatches.
            let micros: u64 = rand::random::<u64>() % 300;
            tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
            self.0.lock().push(n);
            Ok((true, floe::protocol::empty_encapsulation(1, 1)))
        })
    }
}

async fn record_oneways(serialize: bool) -> Vec<i32> {
    let props: &[(&str, &str)] = if serialize {
        &[("Test.ThreadPool.Serialize", "1")]
    } else {
        &[]
    };
    let server = start_floe_server(props).await;
    let recorder = std::sync::Arc::new(Recorder(Default::default()));
    let prx = server
        .adapter
        .add(
            std::sync::Arc::new(floe::BlobjectDispatcher(recorder.clone())),
            floe::Identity::new("rec", ""),
        )
        .unwrap();
    let comm = client_communicator(&[]);
    let prx = comm.string_to_proxy(&prx.to_string()).unwrap().unwrap();
    let ow = prx.ice_oneway();
    for i in 0..200 {
        ow.ice_invoke(
            "record",
            OperationMode::Normal,
            encaps(|os| os.write(&i)),
            None,
        )
        .await
        .unwrap();
    }
    prx.ice_ping().await.unwrap();
    for _ in 0..300 {
        if recorder.0.lock().len() == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    comm.destroy().await;
    server.communicator.destroy().await;
    recorder.0.lock().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialized_adapter_dispatches_in_arrival_order() {
    let got = record_oneways(true).await;
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    let mut unordered = record_oneways(false).await;
    unordered.sort();
    assert_eq!(
        unordered,
        (0..200).collect::<Vec<_>>(),
        "every request is dispatched either way"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_pool_size_max_bounds_concurrent_dispatches() {
    use floe::Proxy;
    for (size_max, concurrent) in [("1", false), ("", true)] {
        let props: Vec<(&str, &str)> = if size_max.is_empty() {
            vec![]
        } else {
            vec![("Test.ThreadPool.SizeMax", size_max)]
        };
        let server = start_floe_server(&props).await;
        let comm = client_communicator(&[]);
        let hello = HelloPrx::from_object(
            comm.string_to_proxy(&server.proxy.to_string())
                .unwrap()
                .unwrap(),
        );
        hello.ice_ping().await.unwrap();
        let start = std::time::Instant::now();
        let (a, b) = tokio::join!(hello.slow(400), hello.slow(400));
        a.unwrap();
        b.unwrap();
        let took = start.elapsed();
        if concurrent {
            assert!(took < std::time::Duration::from_millis(750), "{took:?}");
        } else {
            assert!(took >= std::time::Duration::from_millis(800), "{took:?}");
        }
        comm.destroy().await;
        server.communicator.destroy().await;
    }
}
