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

/// Records the `record` requests it dispatches; with `every_other`, even numbers complete at
/// once and odd ones wait, otherwise every dispatch waits a random time.
struct Recorder(parking_lot::Mutex<Vec<i32>>, bool);

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
            if !self.1 || n % 2 == 1 {
                let micros: u64 = rand::random::<u64>() % 300;
                tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
            }
            self.0.lock().push(n);
            Ok((true, floe::protocol::empty_encapsulation(1, 1)))
        })
    }
}

async fn record_oneways(serialize: bool) -> Vec<i32> {
    record_oneways_with(serialize, false).await
}

async fn record_oneways_with(serialize: bool, every_other: bool) -> Vec<i32> {
    let props: &[(&str, &str)] = if serialize {
        &[("Test.ThreadPool.Serialize", "1")]
    } else {
        &[]
    };
    let server = start_floe_server(props).await;
    let recorder = std::sync::Arc::new(Recorder(Default::default(), every_other));
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

/// A serialized connection answers at once the dispatches that complete without waiting, but
/// only when none is in progress: one that arrives behind a waiting dispatch waits its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialized_adapter_keeps_order_of_immediate_and_waiting_dispatches() {
    let got = record_oneways_with(true, true).await;
    assert_eq!(got, (0..200).collect::<Vec<_>>());
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

/// A ZeroC C++ server (`tests/cpp/server.cpp`, built with slice2cpp and g++) called by a Floe
/// client with typed proxies: checked casts, the built-in operations, twoway calls with
/// contexts, sequences (plain and compressed), encoding 1.0, proxies as values, facets, default
/// servants, oneway and batch oneway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_calls_zeroc_cpp_server() {
    let cpp = cpp::start_cpp_server();
    let comm = client_communicator(&[]);
    let base = comm.string_to_proxy(&cpp.hello).unwrap().unwrap();
    base.ice_ping().await.unwrap();
    assert!(base.ice_is_a("::FloeTest::Hello").await.unwrap());
    assert!(!base.ice_is_a("::FloeTest::Admin").await.unwrap());
    assert_eq!(base.ice_id().await.unwrap(), "::FloeTest::Hello");
    assert_eq!(
        base.ice_ids().await.unwrap(),
        vec!["::FloeTest::Hello", "::Ice::Object"]
    );
    let types = comm.string_to_proxy(&cpp.types).unwrap().unwrap();
    assert!(HelloPrx::checked_cast(&types).await.unwrap().is_none());
    let hello = HelloPrx::checked_cast(&base)
        .await
        .unwrap()
        .expect("is a Hello");

    assert_eq!(hello.say_hello("floe").await.unwrap(), "Hello, floe!");
    assert_eq!(hello.add(i32::MAX, 1).await.unwrap(), i32::MIN);
    assert_eq!(hello.add(-2, 44).await.unwrap(), 42);

    let mut ctx = Context::new();
    ctx.insert("user".into(), "bob".into());
    ctx.insert("trace".into(), "é1".into());
    let (ok, out) = hello
        .ice_context(ctx.clone())
        .ice_invoke("getContext", OperationMode::Normal, encaps(|_| {}), None)
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(
        decode(&out, |is| is
            .read::<std::collections::HashMap<String, String>>()),
        ctx
    );

    // Sequences, small and large, with and without compression (the C++ server compresses its
    // reply when the request was compressed).
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for p in [hello.0.clone(), hello.ice_compress(true)] {
        for data in [vec![], vec![0u8, 1, 255], big.clone()] {
            let (ok, out) = p
                .ice_invoke(
                    "echoBytes",
                    OperationMode::Normal,
                    encaps(|os| os.write(&data)),
                    None,
                )
                .await
                .unwrap();
            assert!(ok);
            assert_eq!(decode(&out, |is| is.read::<Vec<u8>>()), data);
        }
    }

    // Encoding 1.0.
    let old = HelloPrx(hello.ice_encoding_version(EncodingVersion::V1_0));
    assert_eq!(old.say_hello("old").await.unwrap(), "Hello, old!");
    let (ok, out) = old
        .ice_invoke(
            "sayHello",
            OperationMode::Normal,
            {
                let mut os = OutputStream::new(EncodingVersion::V1_0);
                os.start_encapsulation(EncodingVersion::V1_0, Default::default());
                os.write("raw old");
                os.end_encapsulation();
                os.finish().unwrap().into()
            },
            None,
        )
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(&out[4..6], &[1, 0], "reply in the request's encoding");
    assert_eq!(decode(&out, |is| is.read::<String>()), "Hello, raw old!");

    // Proxies as values, in both encodings.
    let p = comm
        .string_to_proxy("cat/obj -f fac -o:tcp -h 127.0.0.1 -p 4061 -t 5000 -z")
        .unwrap()
        .unwrap();
    assert_eq!(hello.echo_proxy(Some(&p)).await.unwrap(), Some(p.clone()));
    assert_eq!(
        old.echo_proxy(Some(&p)).await.unwrap(),
        Some(p.ice_encoding_version(EncodingVersion::V1_0))
    );
    assert_eq!(hello.echo_proxy(None).await.unwrap(), None);

    // The facet and the default servant of category "any".
    let admin = hello.ice_facet("admin");
    assert!(admin.ice_is_a("::FloeTest::Admin").await.unwrap());
    let (_, out) = admin
        .ice_invoke("name", OperationMode::Normal, encaps(|_| {}), None)
        .await
        .unwrap();
    assert_eq!(decode(&out, |is| is.read::<String>()), "c++ admin");
    let any = HelloPrx(hello.ice_identity(floe::Identity::new("whatever", "any")));
    assert_eq!(
        any.say_hello("x").await.unwrap(),
        "Hello, x! (default servant for any/whatever)"
    );

    // Oneway and batch oneway: nothing is lost, and the batch waits for its flush.
    let before = hello.notify_count().await.unwrap();
    let ow = HelloPrx(hello.ice_oneway());
    assert!(matches!(
        ow.say_hello("x").await,
        Err(floe::Error::TwowayOnly(_))
    ));
    for i in 0..20 {
        ow.notify(&format!("o{i}")).await.unwrap();
    }
    let batch = HelloPrx(hello.ice_batch_oneway());
    for i in 0..5 {
        batch.notify(&format!("b{i}")).await.unwrap();
    }
    let mut n = 0;
    for _ in 0..300 {
        n = hello.notify_count().await.unwrap() - before;
        if n >= 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(n, 20, "the oneways arrived, the batch is still queued");
    batch.ice_flush_batch_requests().await.unwrap();
    for _ in 0..300 {
        n = hello.notify_count().await.unwrap() - before;
        if n == 25 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(n, 25);

    // Concurrent twoway calls on one connection while a slow dispatch is running.
    let slow = hello.slow(800);
    let fast = async {
        let start = std::time::Instant::now();
        let calls: Vec<_> = (0..16).map(|i| hello.add(i, i)).collect();
        let results = futures_util::future::join_all(calls).await;
        (start.elapsed(), results)
    };
    let (slow, (took, results)) = tokio::join!(slow, fast);
    slow.unwrap();
    assert!(took < std::time::Duration::from_millis(700), "{took:?}");
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), 2 * i as i32);
    }

    hello.shutdown().await.unwrap();
    comm.destroy().await;
}

fn basics(i: i32, str: &str, c: common::types::Color) -> common::types::Basics {
    common::types::Basics {
        b: i % 2 == 0,
        y: 250u8.wrapping_add(i as u8),
        s: -300 + i as i16,
        i,
        l: i as i64 * 1_000_000_000_007 - 3,
        f: 1.5 * i as f32,
        d: -0.25 * i as f64,
        str: str.to_string(),
        c,
    }
}

/// Every Slice type category (builtins, strings, enums with explicit values, structs, sequences
/// of builtins, structs and sequences, dictionaries keyed by strings, integers and enums, nested
/// structs with proxies) passed to and computed on by the ZeroC C++ server, in encodings 1.1
/// and 1.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_passes_every_type_category_to_zeroc_cpp() {
    use common::types::{Basics, Color, Nested, TypesPrx};
    use std::collections::HashMap;
    let cpp = cpp::start_cpp_server();
    let comm = client_communicator(&[]);
    let base = comm.string_to_proxy(&cpp.types).unwrap().unwrap();
    let types11 = TypesPrx::checked_cast(&base)
        .await
        .unwrap()
        .expect("a Types");
    let types10 = types11.with(|p| p.ice_encoding_version(EncodingVersion::V1_0));
    for types in [types11, types10] {
        let b = basics(7, "grüße", Color::Green);
        let n = types.next(&b).await.unwrap();
        assert_eq!(
            n,
            Basics {
                b: true,
                y: 2,
                s: -292,
                i: 8,
                l: 7 * 1_000_000_000_007 - 2,
                f: 21.0,
                d: -3.5,
                str: "grüße!".into(),
                c: Color::Blue,
            }
        );
        let wrapped = types
            .next(&Basics {
                i: i32::MAX,
                l: i64::MAX,
                y: 255,
                s: i16::MAX,
                c: Color::Blue,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (wrapped.i, wrapped.l, wrapped.y, wrapped.s, wrapped.c),
            (i32::MIN, i64::MIN, 0, i16::MIN, Color::Red)
        );

        let list: Vec<Basics> = [5, -3, 9, 0]
            .iter()
            .map(|&i| basics(i, &format!("s{i}"), Color::Red))
            .collect();
        let (sorted, count) = types.sort_basics(&list).await.unwrap();
        assert_eq!(count, 4);
        assert_eq!(
            sorted.iter().map(|b| b.i).collect::<Vec<_>>(),
            vec![-3, 0, 5, 9]
        );
        assert_eq!(sorted[0], list[1]);
        assert_eq!(types.sort_basics(&[]).await.unwrap(), (vec![], 0));

        let (scaled, negative) = types.scale(&[1.0, -2.5, 0.0, 1e300], -2.0).await.unwrap();
        assert_eq!(scaled, vec![-2.0, 5.0, -0.0, -2e300]);
        assert_eq!(negative, vec![false, true, false, false]);

        let lines = vec![
            "a bb  ccc".to_string(),
            String::new(),
            "ünï cödé".to_string(),
        ];
        assert_eq!(
            types.split(&lines).await.unwrap(),
            vec![
                vec!["a".to_string(), "bb".into(), "ccc".into()],
                vec![],
                vec!["ünï".to_string(), "cödé".into()],
            ]
        );

        let d: HashMap<String, i32> = [("one", 1), ("minus", -1), ("big", i32::MAX)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let inv = types.invert(&d).await.unwrap();
        assert_eq!(inv.len(), 3);
        assert_eq!(inv[&-1], "minus");
        assert_eq!(inv[&i32::MAX], "big");
        assert!(types.invert(&HashMap::new()).await.unwrap().is_empty());

        let mut names = HashMap::new();
        names.insert(Color::Red, vec!["rose".to_string(), "cherry".into()]);
        names.insert(Color::Blue, vec![]);
        let shifted = types.shift_colors(&names).await.unwrap();
        let mut expected = HashMap::new();
        expected.insert(Color::Green, vec!["cherry".to_string(), "rose".into()]);
        expected.insert(Color::Red, vec![]);
        assert_eq!(shifted, expected);

        let nested = Nested {
            basics: basics(1, "n", Color::Red),
            keys: vec!["ignored".into()],
            counts: d.clone(),
            target: None,
        };
        let out = types.wrap(&nested).await.unwrap();
        assert_eq!(out.basics, types.next(&nested.basics).await.unwrap());
        assert_eq!(out.keys, vec!["big", "minus", "one"]);
        assert_eq!(out.counts, d);
        let target = out.target.expect("the server's own proxy");
        assert_eq!(target.ice_get_identity(), types.ice_get_identity());
        assert_eq!(
            target.ice_get_encoding_version(),
            types.ice_get_encoding_version(),
            "a proxy marshaled in 1.0 carries no encoding version"
        );
        target.ice_ping().await.unwrap();
    }
    comm.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_go_oneway_but_other_builtins_need_a_reply() {
    let server = start_floe_server(&[]).await;
    let client = client_communicator(&[]);
    let prx = client
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    prx.ice_oneway().ice_ping().await.unwrap();
    let batch = prx.ice_batch_oneway();
    batch.ice_ping().await.unwrap();
    batch.ice_flush_batch_requests().await.unwrap();
    assert!(matches!(
        prx.ice_oneway().ice_is_a("::Test::Hello").await,
        Err(floe::Error::TwowayOnly(_))
    ));
    assert!(matches!(
        prx.ice_oneway().ice_id().await,
        Err(floe::Error::TwowayOnly(_))
    ));
    prx.ice_ping().await.unwrap();
    client.destroy().await;
    server.communicator.destroy().await;
}

/// `Connection::send_raw_then` queues without waiting: messages queued one after the other are
/// dispatched in that order, each callback reports its write, and on a closed connection the
/// callback reports the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_raw_then_writes_in_order_and_reports_each_write() {
    let server = start_floe_server(&[("Test.ThreadPool.Serialize", "1")]).await;
    let recorder = std::sync::Arc::new(Recorder(Default::default(), true));
    let prx = server
        .adapter
        .add(
            std::sync::Arc::new(floe::BlobjectDispatcher(recorder.clone())),
            floe::Identity::new("rec", ""),
        )
        .unwrap();
    let comm = client_communicator(&[]);
    let prx = comm.string_to_proxy(&prx.to_string()).unwrap().unwrap();
    let conn = prx.ice_get_connection().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..100 {
        let request = floe::protocol::RequestData {
            name: "rec".into(),
            operation: "record".into(),
            params: encaps(|os| os.write(&i)),
            ..Default::default()
        };
        let message = floe::protocol::build_message(
            floe::protocol::MessageType::Request,
            &request.request_body(),
            false,
        );
        let tx = tx.clone();
        conn.send_raw_then(message, move |r| {
            let _ = tx.send((i, r));
        });
    }
    for i in 0..100 {
        let (n, r) = rx.recv().await.unwrap();
        assert_eq!(n, i, "callbacks come in write order");
        r.unwrap();
    }
    prx.ice_ping().await.unwrap();
    for _ in 0..300 {
        if recorder.0.lock().len() == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(*recorder.0.lock(), (0..100).collect::<Vec<_>>());

    conn.close(false);
    conn.wait_closed().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    conn.send_raw_then(Bytes::from_static(b"never written"), move |r| {
        let _ = tx.send(r);
    });
    assert!(
        rx.await.unwrap().is_err(),
        "a closed connection reports the failure"
    );
    comm.destroy().await;
    server.communicator.destroy().await;
}

/// Requests a serialized connection read before its peer went away are still dispatched, in
/// order, even when they were waiting behind a slow one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialized_requests_read_before_the_peer_leaves_are_dispatched() {
    let server = start_floe_server(&[("Test.ThreadPool.Serialize", "1")]).await;
    let recorder = std::sync::Arc::new(Recorder(Default::default(), false));
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
    for i in 0..50 {
        ow.ice_invoke(
            "record",
            OperationMode::Normal,
            encaps(|os| os.write(&i)),
            None,
        )
        .await
        .unwrap();
    }
    let conn = prx.ice_get_connection().await.unwrap();
    conn.close(false);
    for _ in 0..300 {
        if recorder.0.lock().len() == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(*recorder.0.lock(), (0..50).collect::<Vec<_>>());
    comm.destroy().await;
    server.communicator.destroy().await;
}
