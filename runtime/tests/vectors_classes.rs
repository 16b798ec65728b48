//! Class graphs written by Floe itself: cycles and sharing in every encoding and format, the
//! graph depth cap, and references whose instance never arrives.

mod vectors_common;

use floe::Error;
use floe::encoding::{
    CLASS_GRAPH_DEPTH_MAX, EncodingVersion, FormatType, InputStream, OutputStream, ValueRef,
};
use vectors_common::*;

floe::encoding::inventory::submit! { BASE }
floe::encoding::inventory::submit! { DERIVED }
floe::encoding::inventory::submit! { COMPACT }
floe::encoding::inventory::submit! { WITHOPT }

const MODES: [(EncodingVersion, FormatType); 4] = [
    (EncodingVersion::V1_1, FormatType::Compact),
    (EncodingVersion::V1_1, FormatType::Sliced),
    (EncodingVersion::V1_0, FormatType::Compact),
    (EncodingVersion::V1_0, FormatType::Sliced),
];

fn write_values(os: &mut OutputStream, values: &[Option<ValueRef>]) {
    for v in values {
        os.write_value(v);
    }
    os.write_pending_values();
}

fn read_values(is: &mut InputStream<'_>, n: usize) -> Result<Vec<Option<ValueRef>>, Error> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(is.read_value()?);
    }
    is.read_pending_values()?;
    Ok(out)
}

fn derived(id: i32, next: Option<ValueRef>) -> ValueRef {
    ValueRef::new(Derived {
        id,
        tag: format!("d{id}"),
        value: f64::from(id) / 2.0,
        next,
    })
}

fn next_of(v: &ValueRef) -> Option<ValueRef> {
    v.read_as::<Derived>().expect("a Derived").next.clone()
}

#[test]
fn a_two_node_cycle_and_a_shared_instance_survive_every_mode() {
    for (enc, format) in MODES {
        let a = derived(1, None);
        let b = derived(2, Some(a.clone()));
        a.write_as::<Derived>().unwrap().next = Some(b.clone());
        let shared = ValueRef::new(Base {
            id: 9,
            tag: "shared".into(),
        });
        let values = vec![
            Some(a.clone()),
            None,
            Some(shared.clone()),
            Some(b.clone()),
            Some(shared.clone()),
        ];
        let bytes = encode_encaps(enc, format, |os| write_values(os, &values));
        let got = decode_encaps(&bytes, |is| read_values(is, values.len()))
            .unwrap_or_else(|e| panic!("{enc} {format:?}: {e}"));
        let (a2, b2) = (got[0].clone().unwrap(), got[3].clone().unwrap());
        assert!(got[1].is_none());
        assert!(
            next_of(&a2).unwrap().ptr_eq(&b2),
            "{enc} {format:?}: a.next is b"
        );
        assert!(
            next_of(&b2).unwrap().ptr_eq(&a2),
            "{enc} {format:?}: b.next is a"
        );
        assert!(got[2].as_ref().unwrap().ptr_eq(got[4].as_ref().unwrap()));
        assert!(!a2.ptr_eq(&a), "decoding makes new instances");
        assert_eq!(a2.read_as::<Derived>().unwrap().tag, "d1");
        assert_eq!(
            got[2].as_ref().unwrap().read_as::<Base>().unwrap().tag,
            "shared"
        );
        // And the decoded graph encodes to the same bytes.
        assert_eq!(
            hex(&encode_encaps(enc, format, |os| write_values(os, &got))),
            hex(&bytes)
        );
    }
}

fn chain(depth: usize) -> ValueRef {
    let mut head = None;
    for i in 0..depth {
        head = Some(derived(i as i32, head));
    }
    head.unwrap()
}

#[test]
fn class_graphs_deeper_than_the_cap_are_refused() {
    // In 1.0 the instances follow the parameters one after the other, yet Ice counts their
    // depth too (ZeroC's Ice/objects test expects the refusal in both encodings).
    for (enc, format) in MODES {
        let ok = encode_encaps(enc, format, |os| {
            write_values(os, &[Some(chain(CLASS_GRAPH_DEPTH_MAX))])
        });
        assert!(
            decode_encaps(&ok, |is| read_values(is, 1)).is_ok(),
            "{enc} {format:?}"
        );
        let deep = encode_encaps(enc, format, |os| {
            write_values(os, &[Some(chain(CLASS_GRAPH_DEPTH_MAX + 1))])
        });
        let err = decode_encaps(&deep, |is| read_values(is, 1)).unwrap_err();
        assert!(
            matches!(&err, Error::Marshal(m) if m.contains("ClassGraphDepthMax")),
            "{err}"
        );
    }
}

fn wrap(enc: EncodingVersion, body: &str) -> Vec<u8> {
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.write_encapsulation(enc, &unhex(body));
    os.finish().unwrap()
}

fn marshal_error(bytes: &[u8]) -> String {
    match decode_encaps(bytes, |is| read_values(is, 1)) {
        Err(Error::Marshal(m)) => m,
        other => panic!("expected a marshal error, got {other:?}"),
    }
}

#[test]
fn references_without_instances_are_refused() {
    let base_10 = "000c3a3a576972653a3a42617365 0a000000 01000000 0178 000d3a3a4963653a3a4f626a656374 05000000 00";
    // 1.0: the well-formed table for id 1 is accepted...
    let ok = wrap(
        EncodingVersion::V1_0,
        &format!("ffffffff 01 01000000 {base_10} 00"),
    );
    assert_eq!(
        py_value(&decode_encaps(&ok, |is| read_values(is, 1)).unwrap()[0]),
        "Base{'id': '1', 'tag': \"'x'\"}"
    );
    // ...a reference to id 2 with only id 1 in the table is not (id 1 itself is accepted: it may
    // be referenced only from a skipped slice),
    let m = marshal_error(&wrap(
        EncodingVersion::V1_0,
        &format!("feffffff 01 01000000 {base_10} 00"),
    ));
    assert!(m.contains("no instance"), "{m}");
    // nor an instance sent twice,
    let m = marshal_error(&wrap(
        EncodingVersion::V1_0,
        &format!("ffffffff 02 01000000 {base_10} 01000000 {base_10} 00"),
    ));
    assert!(m.contains("sent twice"), "{m}");
    // nor a table that never ends.
    let m = marshal_error(&wrap(
        EncodingVersion::V1_0,
        &format!("ffffffff 01 01000000 {base_10}"),
    ));
    assert!(m.contains("out of bounds"), "{m}");
    // 1.1: a reference to instance 5 that is never written.
    let m = marshal_error(&wrap(EncodingVersion::V1_1, "05"));
    assert!(m.contains("no instance"), "{m}");
    // 1.1: an indirection index beyond the table (index 2, table of 1).
    let m = marshal_error(&wrap(
        EncodingVersion::V1_1,
        "01 19 0f3a3a576972653a3a44657269766564 0d000000 000000000000f03f 02 \
         01 01 31 0c3a3a576972653a3a42617365 0a000000 01000000 0178 \
         32 02 0a000000 01000000 0178",
    ));
    assert!(m.contains("indirection index 2"), "{m}");
}

#[test]
fn forgetting_the_pending_values_is_reported_when_encoding() {
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(EncodingVersion::V1_0, FormatType::Compact);
    os.write_value(&Some(ValueRef::new(Base::default())));
    os.end_encapsulation();
    assert!(os.finish().is_err());
}

#[test]
fn optional_class_members_are_dropped_in_1_0_and_kept_in_1_1() {
    let w = ValueRef::new(WithOpt {
        a: 1,
        s: Some("s".into()),
        i: None,
        p: Some(Point { x: 3, y: 4 }),
    });
    for (enc, format) in MODES {
        let bytes = encode_encaps(enc, format, |os| write_values(os, &[Some(w.clone())]));
        let got = decode_encaps(&bytes, |is| read_values(is, 1)).unwrap();
        let got = got[0]
            .as_ref()
            .unwrap()
            .read_as::<WithOpt>()
            .map(|w| (w.a, w.s.clone(), w.i, w.p.clone()));
        let expected = if enc.is_1_0() {
            (1, None, None, None)
        } else {
            (1, Some("s".to_string()), None, Some(Point { x: 3, y: 4 }))
        };
        assert_eq!(got, Some(expected), "{enc} {format:?}");
    }
}
