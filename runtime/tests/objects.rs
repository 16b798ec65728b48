//! Ice's `objects` suite, cut down: class graphs with cycles and derived classes (with an
//! optional member) exchanged with ZeroC's C++ server, in encodings 1.1 and 1.0.

mod common;

use common::types::{Label, LabeledNode, Node, TypesPrx, node_parts};
use common::*;
use floe::EncodingVersion;
use floe::codegen::ValueRef;

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
    let comm = client_communicator(&[]);
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
