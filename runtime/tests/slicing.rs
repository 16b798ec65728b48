//! Ice's `slicing` suite (exceptions and objects), cut down: ZeroC's C++ server sends instances
//! and exceptions of types only it knows. In the sliced format (and always in encoding 1.0) the
//! Floe client skips the unknown slices and gets the most-derived type it knows; in the compact
//! format of 1.1 it cannot, and says so as Ice does.

mod common;

use common::types::{Derived, LabeledNode, Node, ThrowError, TypesPrx};
use common::*;
use floe::{EncodingVersion, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_zeroc_cpp_exceptions_are_sliced_to_a_known_base() {
    let cpp = cpp::start_cpp_server();
    let comm = client_communicator(&[]);
    let types11 = TypesPrx(comm.string_to_proxy(&cpp.types).unwrap().unwrap());
    let types10 = types11.with(|p| p.ice_encoding_version(EncodingVersion::V1_0));

    // Sliced format: ServerOnly's slice is skipped, Derived is what the client knows.
    match types11.throw_server_only_sliced("sliced").await {
        Err(ThrowError::Derived(e)) => assert_eq!(
            e,
            Derived {
                reason: "sliced".into(),
                code: 78
            }
        ),
        other => panic!("expected Derived, got {other:?}"),
    }
    // Compact format: no slice sizes, so nothing can be skipped.
    match types11.throw_server_only_compact("compact").await {
        Err(ThrowError::Runtime(Error::UnknownUserException(id))) => {
            assert_eq!(id, "::FloeTypes::ServerOnly")
        }
        other => panic!("expected UnknownUserException, got {other:?}"),
    }
    // Encoding 1.0 always has slice sizes.
    for (reason, code) in [("a", 77), ("b", 78)] {
        let r = if code == 77 {
            types10.throw_server_only_compact(reason).await
        } else {
            types10.throw_server_only_sliced(reason).await
        };
        match r {
            Err(ThrowError::Derived(e)) => assert_eq!(
                e,
                Derived {
                    reason: reason.into(),
                    code
                }
            ),
            other => panic!("1.0: expected Derived, got {other:?}"),
        }
    }
    comm.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_zeroc_cpp_classes_are_sliced_to_a_known_base() {
    let cpp = cpp::start_cpp_server();
    let comm = client_communicator(&[]);
    let types11 = TypesPrx(comm.string_to_proxy(&cpp.types).unwrap().unwrap());
    let types10 = types11.with(|p| p.ice_encoding_version(EncodingVersion::V1_0));

    for (types, weight) in [(&types11, Some(2.5)), (&types10, None)] {
        let v = types
            .make_server_node_sliced()
            .await
            .unwrap()
            .expect("an instance");
        let n = v.read_as::<LabeledNode>().expect("sliced to LabeledNode");
        assert_eq!((n.value, n.label.as_str(), n.weight), (7, "server", weight));
        let next = n.next.as_ref().expect("next");
        assert_eq!(next.read_as::<Node>().expect("a Node").value, 8);
    }
    // Compact format in 1.1: the unknown type cannot be sliced.
    match types11.make_server_node_compact().await {
        Err(Error::NoValueFactory(id)) => assert_eq!(id, "::FloeTypes::ServerNode"),
        other => panic!("expected NoValueFactory, got {other:?}"),
    }
    // 1.0 is always sliced.
    let v = types10.make_server_node_compact().await.unwrap().unwrap();
    assert_eq!(v.read_as::<LabeledNode>().unwrap().label, "server");
    comm.destroy().await;
}
