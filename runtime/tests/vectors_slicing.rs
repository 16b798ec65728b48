//! A receiver that knows `Base` but not `Derived` (as `vectors/slice/VectorsPartial.ice`), fed
//! the replies captured by `check_slicing.py` (`slicing_events.json`), plus instances of which
//! no type is known, which must be kept and forwarded unchanged.

mod vectors_common;

use floe::Error;
use floe::encoding::{EncodingVersion, FormatType, OutputStream, UnknownSlicedValue, ValueRef};
use vectors_common::*;

floe::encoding::inventory::submit! { BASE }

fn reply(scenario: &str) -> Vec<u8> {
    let json = fixture("slicing_events.json");
    for e in json["events"].as_array().expect("events") {
        let d = &e["decoded"];
        if e["scenario"] == scenario && d["type"].as_str().is_some_and(|t| t.starts_with('2')) {
            let p = &d["payload"];
            assert_eq!(p["encoding"], "1.1");
            let mut os = OutputStream::new(EncodingVersion::V1_0);
            os.write_encapsulation(
                EncodingVersion::V1_1,
                &unhex(p["body_hex"].as_str().unwrap()),
            );
            return os.finish().unwrap();
        }
    }
    panic!("no reply in {scenario}");
}

fn read_class(encaps: &[u8]) -> Result<Option<ValueRef>, Error> {
    decode_encaps(encaps, |is| is.read_value())
}

#[test]
fn a_sliced_unknown_derived_class_arrives_as_its_known_base() {
    let v = read_class(&reply("makeDerivedSliced_sliced")).unwrap();
    assert_eq!(py_value(&v), "Base{'id': '5', 'tag': \"'made'\"}");
}

#[test]
fn a_compact_unknown_class_is_no_value_factory() {
    let err = read_class(&reply("makeDerived_compact")).unwrap_err();
    assert_eq!(err, Error::NoValueFactory("::Wire::Derived".into()));
    // Compact ids of unknown classes are reported by number.
    let err = read_class(&unhex("0d000000010101230705000000")).unwrap_err();
    assert_eq!(err, Error::NoValueFactory("7".into()));
}

/// `01`, then an instance of the unknown `::Wire::Xyz` whose only slice holds an index into its
/// indirection table, whose one entry is an inline `Base{2,"b2"}`; then a reference to that Base.
const UNKNOWN_WITH_TABLE: &str = concat!(
    "01 39 0b 3a3a576972653a3a58797a 05000000 01",
    "   01 01 31 0c 3a3a576972653a3a42617365 0b000000 02000000 026232",
    "03"
);

#[test]
fn an_instance_of_no_known_type_is_kept_with_its_slices_and_forwarded_unchanged() {
    let body = unhex(UNKNOWN_WITH_TABLE);
    let mut encaps = OutputStream::new(EncodingVersion::V1_0);
    encaps.write_encapsulation(EncodingVersion::V1_1, &body);
    let encaps = encaps.finish().unwrap();
    let (x, base) = decode_encaps(&encaps, |is| Ok((is.read_value()?, is.read_value()?))).unwrap();
    let x = x.unwrap();
    {
        let unknown = x
            .read_as::<UnknownSlicedValue>()
            .expect("kept as an unknown sliced value");
        assert_eq!(unknown.unknown_type_id, "::Wire::Xyz");
        assert_eq!(unknown.slices.len(), 1);
        let slice = &unknown.slices[0];
        assert_eq!(
            (slice.type_id.as_str(), hex(&slice.bytes)),
            ("::Wire::Xyz", "01".to_string())
        );
        assert!(slice.is_last_slice && !slice.has_optional_members);
        assert_eq!(slice.instances.len(), 1);
        assert!(
            slice.instances[0].ptr_eq(base.as_ref().unwrap()),
            "the table entry is the Base"
        );
    }
    assert_eq!(py_value(&base), "Base{'id': '2', 'tag': \"'b2'\"}");

    let again = encode_encaps(EncodingVersion::V1_1, FormatType::Sliced, |os| {
        os.write_value(&Some(x.clone()));
        os.write_value(&base);
    });
    assert_eq!(hex(&again[6..]), hex(&body));
}

#[test]
fn unknown_slices_with_optional_members_keep_them() {
    // `::Wire::Xyz` slice with an optional int (tag 1) and the end marker, size 4+4+5+1.
    let body = unhex("01 35 0b 3a3a576972653a3a58797a 0e000000 07000000 0a 09000000 ff");
    let mut encaps = OutputStream::new(EncodingVersion::V1_0);
    encaps.write_encapsulation(EncodingVersion::V1_1, &body);
    let encaps = encaps.finish().unwrap();
    let x = decode_encaps(&encaps, |is| is.read_value())
        .unwrap()
        .unwrap();
    let unknown = x.read_as::<UnknownSlicedValue>().unwrap();
    assert!(unknown.slices[0].has_optional_members);
    assert_eq!(hex(&unknown.slices[0].bytes), "070000000a09000000");
    drop(unknown);
    let again = encode_encaps(EncodingVersion::V1_1, FormatType::Sliced, |os| {
        os.write_value(&Some(x))
    });
    assert_eq!(hex(&again[6..]), hex(&body));
}

#[test]
fn an_unknown_class_in_1_0_is_no_value_factory() {
    // pBase 1.0 with Derived unknown: Derived's slice is skipped and Base is found.
    let derived_10 = "5d0000000100ffffffff0101000000000f3a3a576972653a3a4465726976656410000000000000000000e03f00000000000c3a3a576972653a3a426173650a000000010000000164000d3a3a4963653a3a4f626a656374050000000000";
    let v = decode_encaps(&unhex(derived_10), |is| {
        let v = is.read_value()?;
        is.read_pending_values()?;
        Ok(v)
    })
    .unwrap();
    assert_eq!(py_value(&v), "Base{'id': '1', 'tag': \"'d'\"}");
    // pCompact 1.0: only ::Wire::Compact and ::Ice::Object, both unknown here.
    let compact_10 = "3d0000000100ffffffff0101000000000f3a3a576972653a3a436f6d706163740800000005000000000d3a3a4963653a3a4f626a656374050000000000";
    let err = decode_encaps(&unhex(compact_10), |is| {
        let v = is.read_value()?;
        is.read_pending_values()?;
        Ok(v)
    })
    .unwrap_err();
    assert_eq!(err, Error::NoValueFactory("::Wire::Compact".into()));
}
