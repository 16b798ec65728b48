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
