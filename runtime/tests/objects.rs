//! Ice's `objects` suite, cut down: class graphs with cycles and derived classes (with an
//! optional member) exchanged with ZeroC's C++ server, in encodings 1.1 and 1.0.

mod common;
#[path = "common/tracked.rs"]
mod tracked;

use common::types::{Label, LabeledNode, Node, TypesPrx, node_parts};
use common::*;
use floe::EncodingVersion;
use floe::codegen::ValueRef;
use tracked::live;

/// Walks a ring from `start`, returning (value, label, weight) per node until it comes back.
fn walk(start: &ValueRef) -> Vec<(i32, Option<Label>)> {
    let mut out = Vec::new();
    let mut cur = start.clone();
    loop {
        let (value, next, labeled) = node_parts(&cur);
        out.push((value, labeled));
        assert!(out.len() <= 100, "the ring does not close");
        match next {
            Some(n) if n.ptr_eq(start) => return out,
            Some(n) => cur = n,
            None => panic!("the ring is broken after {} nodes", out.len()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_exchanges_class_graphs_with_zeroc_cpp() {
    let cpp = cpp::start_cpp_server();
    // By default a ring is refused, as ZeroC's C++ client refuses it (in 1.0 too, where ZeroC
    // catches only a node referencing itself).
    let refusing = client_communicator(&[]);
    let types = TypesPrx(refusing.string_to_proxy(&cpp.types).unwrap().unwrap());
    for encoding in [EncodingVersion::V1_1, EncodingVersion::V1_0] {
        let types = types.with(|p| p.ice_encoding_version(encoding));
        // Rings of five nodes and of one node referencing itself.
        for n in [5, 1] {
            match types.make_ring(n).await {
                Err(floe::Error::Marshal(reason)) => {
                    assert_eq!(reason, floe::encoding::CLASS_CYCLE_REFUSED, "{encoding}")
                }
                other => panic!("{encoding}: a ring of {n} was not refused: {other:?}"),
            }
        }
        assert!(types.make_ring(0).await.unwrap().is_none(), "{encoding}");
    }
    refusing.destroy().await;
    // As ZeroC's Ice/objects client does.
    let comm = client_communicator(&[("Ice.AcceptClassCycles", "1")]);
    let types = TypesPrx(comm.string_to_proxy(&cpp.types).unwrap().unwrap());
    for encoding in [EncodingVersion::V1_1, EncodingVersion::V1_0] {
        let types = types.with(|p| p.ice_encoding_version(encoding));
        assert!(types.make_ring(0).await.unwrap().is_none(), "null class");

        // A ring built by C++: the cycle arrives as one shared instance.
        let ring = types.make_ring(5).await.unwrap().expect("a ring");
        let nodes = walk(&ring);
        let weight = |i: i32| match encoding {
            EncodingVersion::V1_0 => None,
            _ => Some(i as f64 / 2.0),
        };
        assert_eq!(
            nodes,
            vec![
                (0, None),
                (1, Some(("n1".into(), weight(1)))),
                (2, None),
                (3, Some(("n3".into(), weight(3)))),
                (4, None),
            ],
            "{encoding}"
        );

        // A ring built here, summed by C++ (each node once, 1000 more per LabeledNode).
        let first = ValueRef::new(Node {
            value: 10,
            next: None,
        });
        let second = ValueRef::new(LabeledNode {
            value: 20,
            next: None,
            label: "second".into(),
            weight: Some(1.0),
        });
        let third = ValueRef::new(Node {
            value: 30,
            next: Some(first.clone()),
        });
        second.write_as::<LabeledNode>().unwrap().next = Some(third);
        first.write_as::<Node>().unwrap().next = Some(second);
        assert_eq!(types.sum_ring(Some(first.clone())).await.unwrap(), 1060);
        // A list (no cycle) and a single node.
        let single = ValueRef::new(Node {
            value: 5,
            next: None,
        });
        assert_eq!(types.sum_ring(Some(single)).await.unwrap(), 5);
        assert_eq!(types.sum_ring(None).await.unwrap(), 0);
        // The ring C++ made, sent back.
        assert_eq!(types.sum_ring(Some(ring.clone())).await.unwrap(), 2010);
        // Break the cycles so the instances are freed.
        first.write_as::<Node>().unwrap().next = None;
        ring.write_as::<Node>().unwrap().next = None;
    }
    comm.destroy().await;
}

/// A 1.1 encapsulation holding one `Tracked` whose `next` is itself, then a stray byte.
fn self_cycle_then_garbage() -> bytes::Bytes {
    let mut body = vec![0x01, 0x21, 21];
    body.extend_from_slice(b"::FloeCycles::Tracked");
    body.extend_from_slice(&[0x02, 0x00]);
    let mut encaps = ((body.len() + 6) as i32).to_le_bytes().to_vec();
    encaps.extend_from_slice(&[1, 1]);
    encaps.extend_from_slice(&body);
    encaps.into()
}

/// Takes one `Tracked` parameter (`take`), or answers `give` with [`self_cycle_then_garbage`].
struct CycleServant;

impl floe::Dispatcher for CycleServant {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut floe::IncomingRequest,
    ) -> floe::codegen::BoxFuture<'a, floe::Result<floe::OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "take" => {
                    let v = request.read_params(|is| is.read_value())?;
                    drop(v);
                    Ok(request.reply(None, |_| {}))
                }
                "give" => Ok(floe::OutgoingResponse::ok(self_cycle_then_garbage())),
                _ => floe::dispatch_builtin(request, "::FloeCycles::S", &["::Ice::Object"]).await,
            }
        })
    }
}

/// Regression (found by the `message` fuzz target): a class graph with a cycle in a message
/// that then fails to decode was kept alive by its own cycle, on the server (parameters) and
/// on the client (results). Every instance read is now freed with the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cyclic_graph_in_a_message_that_fails_to_decode_is_freed() {
    // Cycles accepted, so that the graph is read in full before the stray byte fails decoding.
    let accept = [("Ice.AcceptClassCycles", "1")];
    let server = start_floe_server(&accept).await;
    let prx = server
        .adapter
        .add(
            std::sync::Arc::new(CycleServant),
            floe::Identity::new("cycles", ""),
        )
        .unwrap();
    let comm = client_communicator(&accept);
    let prx = comm.string_to_proxy(&prx.to_string()).unwrap().unwrap();
    for _ in 0..3 {
        match prx
            .ice_invoke(
                "take",
                floe::OperationMode::Normal,
                self_cycle_then_garbage(),
                None,
            )
            .await
        {
            Err(floe::Error::UnknownLocalException(text)) => {
                assert!(text.contains("MarshalException"), "{text}")
            }
            other => panic!("expected a marshaling failure, got {other:?}"),
        }
    }
    assert_eq!(live(), 0, "server side: instances leaked");
    for _ in 0..3 {
        let r: floe::Result<Option<ValueRef>> = prx
            .invoke(
                "give",
                floe::OperationMode::Normal,
                None,
                true,
                |_| {},
                |is| is.read_value(),
            )
            .await;
        assert!(r.is_err(), "{r:?}");
    }
    assert_eq!(live(), 0, "client side: instances leaked");
    comm.destroy().await;
    server.communicator.destroy().await;
}
