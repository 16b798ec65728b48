//! Ice's `exceptions` suite, cut down: user exceptions in 1.1 and 1.0, ObjectNotExist,
//! FacetNotExist and OperationNotExist replies with the fields ZeroC expects, the operation-mode
//! check, unmarshaling failures; and a Floe client seeing a ZeroC server's exceptions.

mod common;

use bytes::Bytes;
use common::*;
use floe::encoding::{EncodingVersion, OutputStream};
use floe::{Error, Identity, OperationMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_client_sees_floe_exceptions() {
    require_zeroc();
    let server = start_floe_server(&[]).await;
    run_python_client(&server.proxy.to_string(), "exceptions", &[]).await;
    server.communicator.destroy().await;
}

fn encaps(f: impl FnOnce(&mut OutputStream)) -> Bytes {
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(EncodingVersion::V1_1, Default::default());
    f(&mut os);
    os.end_encapsulation();
    os.finish().unwrap().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_sees_zeroc_exceptions() {
    require_zeroc();
    let py = start_python_server();
    let comm = client_communicator(&[]);
    let prx = comm.string_to_proxy(&py.proxy).unwrap().unwrap();

    let (ok, out) = prx
        .ice_invoke(
            "fail",
            OperationMode::Normal,
            encaps(|os| os.write("bad")),
            None,
        )
        .await
        .unwrap();
    assert!(!ok, "user exception");
    // Compact 1.1 exception: flags 0x20, the type id, then the reason.
    assert_eq!(out[6], 0x20);
    assert!(out.windows(23).any(|w| w == b"::FloeTest::TestFailure"));

    match prx
        .ice_identity(Identity::new("nosuch", "cat"))
        .ice_ping()
        .await
    {
        Err(Error::ObjectNotExist(f)) => {
            assert_eq!(
                (f.name.as_str(), f.category.as_str(), f.operation.as_str()),
                ("nosuch", "cat", "ice_ping")
            )
        }
        other => panic!("expected ObjectNotExist, got {other:?}"),
    }
    match prx.ice_facet("nofacet").ice_ping().await {
        Err(Error::FacetNotExist(f)) => assert_eq!(f.facet, "nofacet"),
        other => panic!("expected FacetNotExist, got {other:?}"),
    }
    match prx
        .ice_invoke("noSuchOp", OperationMode::Normal, encaps(|_| {}), None)
        .await
    {
        Err(Error::OperationNotExist(f)) => assert_eq!(f.operation, "noSuchOp"),
        other => panic!("expected OperationNotExist, got {other:?}"),
    }
    match prx
        .ice_invoke("sayHello", OperationMode::Normal, encaps(|_| {}), None)
        .await
    {
        Err(Error::UnknownLocalException(text)) => {
            assert!(text.contains("UnmarshalOutOfBounds"), "{text}")
        }
        other => panic!("expected UnknownLocalException, got {other:?}"),
    }
    let _ = prx
        .ice_invoke("shutdown", OperationMode::Normal, encaps(|_| {}), None)
        .await;
    comm.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_to_floe_error_replies() {
    let server = start_floe_server(&[]).await;
    let comm = client_communicator(&[]);
    let prx = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    match prx
        .ice_invoke(
            "add",
            OperationMode::Normal,
            encaps(|os| {
                os.write(&1i32);
                os.write(&2i32)
            }),
            None,
        )
        .await
    {
        Err(Error::UnknownLocalException(text)) => assert!(
            text.contains(
                "unexpected operation mode. expected = ::Ice::Idempotent received = ::Ice::Normal"
            ),
            "{text}"
        ),
        other => panic!("expected a mode error, got {other:?}"),
    }
    // Idempotent operations accept Nonmutating.
    let (ok, _) = prx
        .ice_invoke(
            "add",
            OperationMode::Nonmutating,
            encaps(|os| {
                os.write(&1i32);
                os.write(&2i32)
            }),
            None,
        )
        .await
        .unwrap();
    assert!(ok);
    // A 1.2 encapsulation is refused with UnsupportedEncoding text (status 5).
    let bad = Bytes::from_static(&[6, 0, 0, 0, 1, 2]);
    match prx
        .ice_invoke("ice_ping", OperationMode::Nonmutating, bad, None)
        .await
    {
        Err(Error::UnknownLocalException(text)) => {
            assert!(text.contains("UnsupportedEncoding"), "{text}")
        }
        other => panic!("expected UnsupportedEncoding, got {other:?}"),
    }
    match prx
        .ice_identity(Identity::new("ghost", ""))
        .ice_ping()
        .await
    {
        Err(Error::ObjectNotExist(f)) => assert_eq!(f.name, "ghost"),
        other => panic!("expected ObjectNotExist, got {other:?}"),
    }
    comm.destroy().await;
    server.communicator.destroy().await;
}

struct Panicker;

impl floe::Dispatcher for Panicker {
    fn dispatch<'a>(
        &'a self,
        _request: &'a mut floe::IncomingRequest,
    ) -> floe::codegen::BoxFuture<'a, floe::Result<floe::OutgoingResponse>> {
        Box::pin(async move { panic!("servant bug") })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_servant_gives_unknown_exception() {
    let server = start_floe_server(&[]).await;
    let prx = server
        .adapter
        .add(std::sync::Arc::new(Panicker), Identity::new("panic", ""))
        .unwrap();
    let comm = client_communicator(&[]);
    let prx = comm.string_to_proxy(&prx.to_string()).unwrap().unwrap();
    match prx.ice_ping().await {
        Err(Error::UnknownException(text)) => assert!(text.contains("servant bug"), "{text}"),
        other => panic!("expected UnknownException, got {other:?}"),
    }
    // The connection survives and other servants still answer.
    let hello = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    hello.ice_ping().await.unwrap();
    assert_eq!(
        prx.ice_get_connection().await.unwrap(),
        hello.ice_get_connection().await.unwrap()
    );
    comm.destroy().await;
    server.communicator.destroy().await;
}

/// A Floe client against ZeroC's C++ server: user exceptions known to the client (base and
/// derived, through an operation that declares the base), in encodings 1.1 (compact) and 1.0;
/// ObjectNotExist, FacetNotExist and OperationNotExist with ZeroC's fields; a parameter
/// unmarshaling failure on the server side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_sees_zeroc_cpp_exceptions() {
    use common::types::{Base, Derived, ThrowError, TypesPrx};
    let cpp = cpp::start_cpp_server();
    let comm = client_communicator(&[]);
    let hello = HelloPrx(comm.string_to_proxy(&cpp.hello).unwrap().unwrap());
    let types = TypesPrx(comm.string_to_proxy(&cpp.types).unwrap().unwrap());
    for encoding in [EncodingVersion::V1_1, EncodingVersion::V1_0] {
        let hello = HelloPrx(hello.ice_encoding_version(encoding));
        let types = types.with(|p| p.ice_encoding_version(encoding));
        match hello.fail("why").await {
            Err(FailError::TestFailure(e)) => assert_eq!(e.reason, "why"),
            other => panic!("{encoding}: expected TestFailure, got {other:?}"),
        }
        match types.throw_base("plain").await {
            Err(ThrowError::Base(e)) => assert_eq!(
                e,
                Base {
                    reason: "plain".into()
                }
            ),
            other => panic!("{encoding}: expected Base, got {other:?}"),
        }
        match types.throw_derived("more", -9).await {
            Err(ThrowError::Derived(e)) => assert_eq!(
                e,
                Derived {
                    reason: "more".into(),
                    code: -9
                }
            ),
            other => panic!("{encoding}: expected Derived, got {other:?}"),
        }
        match hello
            .ice_identity(Identity::new("nosuch", "cat"))
            .ice_facet("f")
            .ice_ping()
            .await
        {
            Err(Error::ObjectNotExist(f)) => assert_eq!(
                (
                    f.name.as_str(),
                    f.category.as_str(),
                    f.facet.as_str(),
                    f.operation.as_str()
                ),
                ("nosuch", "cat", "f", "ice_ping")
            ),
            other => panic!("{encoding}: expected ObjectNotExist, got {other:?}"),
        }
        match hello.ice_facet("nofacet").ice_ping().await {
            Err(Error::FacetNotExist(f)) => {
                assert_eq!((f.name.as_str(), f.facet.as_str()), ("hello", "nofacet"))
            }
            other => panic!("{encoding}: expected FacetNotExist, got {other:?}"),
        }
        match hello
            .ice_invoke("noSuchOp", OperationMode::Normal, encaps(|_| {}), None)
            .await
        {
            Err(Error::OperationNotExist(f)) => assert_eq!(
                (f.name.as_str(), f.operation.as_str()),
                ("hello", "noSuchOp")
            ),
            other => panic!("{encoding}: expected OperationNotExist, got {other:?}"),
        }
    }
    // Parameters the server cannot read: ZeroC answers UnknownLocalException (status 5).
    match hello
        .ice_invoke("sayHello", OperationMode::Normal, encaps(|_| {}), None)
        .await
    {
        Err(Error::UnknownLocalException(text)) => {
            assert!(text.contains("UnmarshalOutOfBounds"), "{text}")
        }
        other => panic!("expected UnknownLocalException, got {other:?}"),
    }
    // A Normal-mode call of an idempotent operation: ZeroC checks the mode as Floe does.
    match hello
        .ice_invoke(
            "add",
            OperationMode::Normal,
            encaps(|os| {
                os.write(&1i32);
                os.write(&2i32)
            }),
            None,
        )
        .await
    {
        Err(Error::UnknownLocalException(text)) => {
            assert!(text.contains("unexpected operation mode"), "{text}")
        }
        other => panic!("expected a mode error, got {other:?}"),
    }
    comm.destroy().await;
}
