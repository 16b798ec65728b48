//! A `["preserve-slice"]` class: a receiver that knows `Base` but not `Derived` keeps the
//! `Derived` slices it skipped and sends the instance on unchanged (sliced format).

mod vectors_common;

use std::any::Any;

use floe::Error;
use floe::encoding::{
    EncodingVersion, FormatType, InputStream, OutputStream, SliceInfo, Value, ValueFactory,
    ValueRef,
};
use vectors_common::{decode_encaps, encode_encaps, fixture, hex, unhex};

/// `Base` as generated for `["preserve-slice"] class Base`.
#[derive(Debug, Default)]
struct PreservingBase {
    id: i32,
    tag: String,
    preserved: Option<Vec<SliceInfo>>,
}

impl Value for PreservingBase {
    fn ice_id(&self) -> &'static str {
        "::Wire::Base"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::Base", None, true);
        os.write(&self.id);
        os.write(self.tag.as_str());
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<(), Error> {
        is.start_slice()?;
        self.id = is.read()?;
        self.tag = is.read()?;
        is.end_slice()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn preserved_slices(&self) -> Option<&[SliceInfo]> {
        self.preserved.as_deref()
    }
    fn set_preserved_slices(&mut self, slices: Vec<SliceInfo>) {
        self.preserved = Some(slices);
    }
}

floe::encoding::inventory::submit! {
    ValueFactory { type_id: "::Wire::Base", compact_id: None, create: || Box::new(PreservingBase::default()) }
}

fn rpc_body(scenario: &str) -> Vec<u8> {
    let json = fixture("rpc_events.json");
    for e in json["events"].as_array().unwrap() {
        let d = &e["decoded"];
        if e["scenario"] == scenario && d["type"].as_str().is_some_and(|t| t.starts_with('0')) {
            let mut os = OutputStream::new(EncodingVersion::V1_0);
            os.write_encapsulation(
                EncodingVersion::V1_1,
                &unhex(d["params"]["body_hex"].as_str().unwrap()),
            );
            return os.finish().unwrap();
        }
    }
    panic!("no request in {scenario}");
}

#[test]
fn unknown_derived_slices_with_their_tables_are_forwarded_unchanged() {
    // classesSliced(b1 = Derived{1, "d1", 2.5, next = b2}, b2 = Base{2, "b2"}).
    let encaps = rpc_body("classes_sliced");
    let (b1, b2) = decode_encaps(&encaps, |is| Ok((is.read_value()?, is.read_value()?))).unwrap();
    let (b1, b2) = (b1.unwrap(), b2.unwrap());
    {
        let base = b1
            .read_as::<PreservingBase>()
            .expect("sliced to the known Base");
        assert_eq!((base.id, base.tag.as_str()), (1, "d1"));
        let slices = base.preserved.as_ref().expect("the Derived slice is kept");
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0].type_id, "::Wire::Derived");
        assert!(!slices[0].is_last_slice);
        assert!(slices[0].instances[0].ptr_eq(&b2), "Derived.next is b2");
    }
    let again = encode_encaps(EncodingVersion::V1_1, FormatType::Sliced, |os| {
        os.write_value(&Some(b1.clone()));
        os.write_value(&Some(b2.clone()));
    });
    assert_eq!(hex(&again), hex(&encaps));

    // In the compact format nothing can carry the slices: only the Base part is sent.
    let compact = encode_encaps(EncodingVersion::V1_1, FormatType::Compact, |os| {
        os.write_value(&Some(b1.clone()));
    });
    let back = decode_encaps(&compact, |is| is.read_value())
        .unwrap()
        .unwrap();
    let back: Option<ValueRef> = Some(back);
    let base = back.as_ref().unwrap().read_as::<PreservingBase>().unwrap();
    assert_eq!((base.id, base.preserved.is_none()), (1, true));
}
