//! The parameter and reply encapsulations of the captured RPC scenarios (`rpc_events.json`,
//! scenarios 20-42, 47 and 48), decoded with hand-written types that follow the codegen contract
//! the way generated code does, compared with the values the capture script sent, and re-encoded
//! byte for byte.

mod vectors_common;

use std::collections::HashMap;

use floe::Error;
use floe::encoding::{
    DispatchError, EncodingVersion, EndpointData, FormatType, InputStream, OperationError,
    OutputStream, ProxyData, ProxyMode, UserException, ValueRef,
};
use vectors_common::*;

floe::encoding::inventory::submit! { BASE }
floe::encoding::inventory::submit! { DERIVED }
floe::encoding::inventory::submit! { COMPACT }
floe::encoding::inventory::submit! { WITHOPT }

/// The params (request) or payload (reply) of the `index`-th message of that kind in a scenario.
fn body(scenario: &str, request: bool) -> (EncodingVersion, Vec<u8>) {
    let json = fixture("rpc_events.json");
    let events = json["events"].as_array().expect("events");
    for e in events {
        if e["scenario"] != scenario || e["kind"] != "msg" {
            continue;
        }
        let d = &e["decoded"];
        let ty = d["type"].as_str().unwrap_or("");
        let part = match (request, &ty[..1]) {
            (true, "0") => &d["params"],
            (false, "2") => &d["payload"],
            _ => continue,
        };
        let enc = encoding_of(part["encoding"].as_str().expect("an encapsulation"));
        return (enc, unhex(part["body_hex"].as_str().expect("body_hex")));
    }
    panic!(
        "scenario {scenario} has no {}",
        if request { "request" } else { "reply" }
    );
}

/// Decodes `body` as the contents of an encapsulation, re-encodes the value and compares bytes.
fn round_trip<T>(
    what: &str,
    (enc, body): (EncodingVersion, Vec<u8>),
    format: FormatType,
    read: impl FnOnce(&mut InputStream<'_>) -> Result<T, Error>,
    write: impl FnOnce(&mut OutputStream, &T),
) -> T {
    let mut encaps = OutputStream::new(EncodingVersion::V1_0);
    encaps.write_encapsulation(enc, &body);
    let encaps = encaps.finish().unwrap();
    let v = decode_encaps(&encaps, read).unwrap_or_else(|e| panic!("{what}: decoding failed: {e}"));
    let again = encode_encaps(enc, format, |os| write(os, &v));
    assert_eq!(hex(&again[6..]), hex(&body), "{what}: re-encoding");
    v
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn basics() {
    type P = (bool, u8, i16, i32, i64, f32, f64, String);
    let v: P = round_trip(
        "basics request",
        body("types_basics", true),
        FormatType::Compact,
        |is| -> Result<P, Error> {
            Ok((
                is.read()?,
                is.read()?,
                is.read()?,
                is.read()?,
                is.read()?,
                is.read()?,
                is.read()?,
                is.read()?,
            ))
        },
        |os, v| {
            os.write(&v.0);
            os.write(&v.1);
            os.write(&v.2);
            os.write(&v.3);
            os.write(&v.4);
            os.write(&v.5);
            os.write(&v.6);
            os.write(v.7.as_str());
        },
    );
    assert_eq!(v, (true, 127, -2, 0x12345678, -1, 1.5, -2.25, s("héllo")));
    let (enc, reply) = body("types_basics", false);
    assert_eq!((enc, reply.len()), (EncodingVersion::V1_1, 0));
}

type Containers = (
    Vec<bool>,
    Vec<u8>,
    Vec<i32>,
    Vec<String>,
    Vec<Point>,
    Vec<Person>,
    HashMap<String, i32>,
    HashMap<i32, Point>,
);

fn read_containers(is: &mut InputStream<'_>) -> Result<Containers, Error> {
    Ok((
        is.read()?,
        is.read()?,
        is.read()?,
        is.read()?,
        is.read()?,
        is.read()?,
        is.read()?,
        is.read()?,
    ))
}

fn write_containers(os: &mut OutputStream, v: &Containers) {
    // Parameters are passed by reference: sequences as slices.
    os.write(&v.0[..]);
    os.write(&v.1[..]);
    os.write(&v.2[..]);
    os.write(&v.3[..]);
    os.write(&v.4[..]);
    os.write(&v.5[..]);
    os.write(&v.6);
    os.write(&v.7);
}

type KeysAndDict = (Vec<String>, HashMap<String, i32>);

fn read_keys_and_dict(is: &mut InputStream<'_>) -> Result<KeysAndDict, Error> {
    // Out parameters first, then the return value.
    Ok((is.read()?, is.read()?))
}

fn write_keys_and_dict(os: &mut OutputStream, v: &KeysAndDict) {
    os.write(&v.0);
    os.write(&v.1);
}

#[test]
fn containers() {
    let v = round_trip(
        "containers request",
        body("types_containers", true),
        FormatType::Compact,
        read_containers,
        write_containers,
    );
    let dict: HashMap<String, i32> = [(s("one"), 1), (s("two"), 2)].into_iter().collect();
    assert_eq!(v.0, vec![true, false, true]);
    assert_eq!(v.1, vec![1, 2, 255]);
    assert_eq!(v.2, vec![1, -1, 256]);
    assert_eq!(v.3, vec![s("a"), s(""), s("xyz")]);
    assert_eq!(v.4, vec![Point { x: 1, y: 2 }, Point { x: -1, y: 0 }]);
    assert_eq!(
        v.5,
        vec![Person {
            name: s("bob"),
            age: 42,
            fav: Color::Blue
        }]
    );
    assert_eq!(v.6, dict);
    assert_eq!(v.7, [(7, Point { x: 3, y: 4 })].into_iter().collect());

    let r = round_trip(
        "containers reply",
        body("types_containers", false),
        FormatType::Compact,
        read_keys_and_dict,
        write_keys_and_dict,
    );
    assert_eq!(r, (vec![s("one"), s("two")], dict));
}

#[test]
fn long_containers_use_five_byte_sizes() {
    let v = round_trip(
        "long containers request",
        body("types_containers_long", true),
        FormatType::Compact,
        read_containers,
        write_containers,
    );
    assert_eq!(v.2, (0..300).collect::<Vec<i32>>());
    assert_eq!(v.3, vec!["x".repeat(300)]);
    assert!(v.0.is_empty() && v.1.is_empty() && v.4.is_empty() && v.5.is_empty());
    assert!(v.6.is_empty() && v.7.is_empty());
    let r = round_trip(
        "long containers reply",
        body("types_containers_long", false),
        FormatType::Compact,
        read_keys_and_dict,
        write_keys_and_dict,
    );
    assert!(r.0.is_empty() && r.1.is_empty());
}

#[test]
fn enums_in_both_encodings() {
    for (scenario, enc) in [
        ("types_enums_11", EncodingVersion::V1_1),
        ("types_enums_10", EncodingVersion::V1_0),
    ] {
        let req = body(scenario, true);
        assert_eq!(req.0, enc);
        let v = round_trip(
            scenario,
            req,
            FormatType::Compact,
            |is| Ok((is.read::<Color>()?, is.read::<Big>()?, is.read::<Huge>()?)),
            |os, v| {
                os.write(&v.0);
                os.write(&v.1);
                os.write(&v.2);
            },
        );
        assert_eq!(v, (Color::Blue, Big::BigB, Huge::HugeB));
        // Reply: the out Big first, then the returned Color.
        let r = round_trip(
            scenario,
            body(scenario, false),
            FormatType::Compact,
            |is| Ok((is.read::<Big>()?, is.read::<Color>()?)),
            |os, v| {
                os.write(&v.0);
                os.write(&v.1);
            },
        );
        assert_eq!(r, (Big::BigB, Color::Blue));
    }
}

#[test]
fn structs() {
    let v = round_trip(
        "structs request",
        body("types_structs", true),
        FormatType::Compact,
        |is| Ok((is.read::<Point>()?, is.read::<Person>()?)),
        |os, v| {
            os.write(&v.0);
            os.write(&v.1);
        },
    );
    let ann = Person {
        name: s("ann"),
        age: 30,
        fav: Color::Green,
    };
    assert_eq!(v, (Point { x: 1, y: 2 }, ann.clone()));
    let r = round_trip(
        "structs reply",
        body("types_structs", false),
        FormatType::Compact,
        |is| is.read::<Person>(),
        |os, v| os.write(v),
    );
    assert_eq!(r, ann);
}

#[derive(Debug, PartialEq)]
struct OptionalsIn {
    req: i32,
    s: Option<String>,
    i: Option<i32>,
    p: Option<Point>,
    ss: Option<Vec<String>>,
    c: Option<Color>,
    big: Option<i64>,
    per: Option<Person>,
}

fn read_optionals_in(is: &mut InputStream<'_>) -> Result<OptionalsIn, Error> {
    // Required parameters, then the optional ones by ascending tag.
    let req = is.read()?;
    let s = is.read_tagged(1)?;
    let i = is.read_tagged(2)?;
    let p = is.read_tagged(5)?;
    let ss = is.read_tagged(6)?;
    let c = is.read_tagged(7)?;
    let per = is.read_tagged(8)?;
    let big = is.read_tagged(40)?;
    Ok(OptionalsIn {
        req,
        s,
        i,
        p,
        ss,
        c,
        big,
        per,
    })
}

fn write_optionals_in(os: &mut OutputStream, v: &OptionalsIn) {
    os.write(&v.req);
    os.write_tagged_ref::<str>(1, v.s.as_deref());
    os.write_tagged(2, &v.i);
    os.write_tagged(5, &v.p);
    os.write_tagged_ref::<[String]>(6, v.ss.as_deref());
    os.write_tagged(7, &v.c);
    os.write_tagged(8, &v.per);
    os.write_tagged(40, &v.big);
}

fn read_optionals_out(is: &mut InputStream<'_>) -> Result<(Option<i32>, Option<String>), Error> {
    // The optional return (tag 3) and the optional out (tag 4), merged by tag.
    Ok((is.read_tagged(3)?, is.read_tagged(4)?))
}

fn write_optionals_out(os: &mut OutputStream, v: &(Option<i32>, Option<String>)) {
    os.write_tagged(3, &v.0);
    os.write_tagged(4, &v.1);
}

#[test]
fn optionals_set_unset_and_dropped_in_1_0() {
    let v = round_trip(
        "optionals set",
        body("types_optionals_set", true),
        FormatType::Compact,
        read_optionals_in,
        write_optionals_in,
    );
    assert_eq!(
        v,
        OptionalsIn {
            req: 1,
            s: Some(s("opt")),
            i: Some(5),
            p: Some(Point { x: 7, y: 8 }),
            ss: Some(vec![s("a"), s("b")]),
            c: Some(Color::Green),
            big: Some(1 << 40),
            per: Some(Person {
                name: s("p"),
                age: 1,
                fav: Color::Red
            }),
        }
    );
    let r = round_trip(
        "optionals set reply",
        body("types_optionals_set", false),
        FormatType::Compact,
        read_optionals_out,
        write_optionals_out,
    );
    assert_eq!(r, (Some(2), Some(s("out-opt"))));

    let v = round_trip(
        "optionals unset",
        body("types_optionals_unset", true),
        FormatType::Compact,
        read_optionals_in,
        write_optionals_in,
    );
    assert_eq!(
        v,
        OptionalsIn {
            req: 1,
            s: None,
            i: None,
            p: None,
            ss: None,
            c: None,
            big: None,
            per: None
        }
    );
    let r = round_trip(
        "optionals unset reply",
        body("types_optionals_unset", false),
        FormatType::Compact,
        read_optionals_out,
        write_optionals_out,
    );
    assert_eq!(r, (Some(2), Some(s("out-unset"))));

    let v = round_trip(
        "optionals 1.0",
        body("types_optionals_enc10", true),
        FormatType::Compact,
        read_optionals_in,
        write_optionals_in,
    );
    assert_eq!(v.req, 1);
    assert_eq!(v.s, None);
    let r = round_trip(
        "optionals 1.0 reply",
        body("types_optionals_enc10", false),
        FormatType::Compact,
        read_optionals_out,
        write_optionals_out,
    );
    assert_eq!(r, (None, None));
    // Setting the optionals changes nothing in 1.0.
    let full = OptionalsIn {
        req: 1,
        s: Some(s("x")),
        i: Some(1),
        p: None,
        ss: None,
        c: None,
        big: Some(1),
        per: None,
    };
    assert_eq!(
        hex(&encode_encaps(
            EncodingVersion::V1_0,
            FormatType::Compact,
            |os| write_optionals_in(os, &full)
        )),
        "0a000000010001000000"
    );
}

fn read_two_classes(
    is: &mut InputStream<'_>,
) -> Result<(Option<ValueRef>, Option<ValueRef>), Error> {
    let b1 = is.read_value()?;
    let b2 = is.read_value()?;
    is.read_pending_values()?;
    Ok((b1, b2))
}

fn write_two_classes(os: &mut OutputStream, v: &(Option<ValueRef>, Option<ValueRef>)) {
    os.write_value(&v.0);
    os.write_value(&v.1);
    os.write_pending_values();
}

fn read_one_class(is: &mut InputStream<'_>) -> Result<Option<ValueRef>, Error> {
    let v = is.read_value()?;
    is.read_pending_values()?;
    Ok(v)
}

fn write_one_class(os: &mut OutputStream, v: &Option<ValueRef>) {
    os.write_value(v);
    os.write_pending_values();
}

#[test]
fn class_graphs_share_instances() {
    let b2_text = py_struct("Base", &[("id", s("2")), ("tag", py_str("b2"))]);
    let b1_text = py_struct(
        "Derived",
        &[
            ("id", s("1")),
            ("tag", py_str("d1")),
            ("value", s("2.5")),
            ("next", b2_text.clone()),
        ],
    );
    for (scenario, format) in [
        ("classes_compact", FormatType::Compact),
        ("classes_sliced", FormatType::Sliced),
        ("classes_enc10", FormatType::Compact),
    ] {
        let (b1, b2) = round_trip(
            scenario,
            body(scenario, true),
            format,
            read_two_classes,
            write_two_classes,
        );
        assert_eq!(py_value(&b1), b1_text, "{scenario}");
        assert_eq!(py_value(&b2), b2_text, "{scenario}");
        let b1 = b1.unwrap();
        let next = b1.read_as::<Derived>().expect("a Derived").next.clone();
        assert!(
            next.unwrap().ptr_eq(b2.as_ref().unwrap()),
            "{scenario}: b1.next is b2 itself"
        );
        let r = round_trip(
            scenario,
            body(scenario, false),
            format,
            read_one_class,
            write_one_class,
        );
        assert_eq!(py_value(&r), b1_text, "{scenario} reply");
    }
}

#[test]
fn class_cycles_nulls_indexes_compact_ids_and_optional_members() {
    let (d, null) = round_trip(
        "cycle",
        body("classes_cycle_null", true),
        FormatType::Compact,
        read_two_classes,
        write_two_classes,
    );
    assert!(null.is_none());
    let d = d.unwrap();
    assert_eq!(
        py_value(&Some(d.clone())),
        "Derived{'id': '3', 'tag': \"'self'\", 'value': '1.0', 'next': '<self>'}"
    );
    assert!(
        d.read_as::<Derived>()
            .unwrap()
            .next
            .as_ref()
            .unwrap()
            .ptr_eq(&d)
    );
    round_trip(
        "cycle reply",
        body("classes_cycle_null", false),
        FormatType::Compact,
        read_one_class,
        write_one_class,
    );

    let (a, b) = round_trip(
        "typeid index",
        body("classes_typeid_index", true),
        FormatType::Compact,
        read_two_classes,
        write_two_classes,
    );
    assert_eq!(py_value(&a), "Base{'id': '1', 'tag': \"'a'\"}");
    assert_eq!(py_value(&b), "Base{'id': '2', 'tag': \"'b'\"}");

    for dir in [true, false] {
        let c = round_trip(
            "compact id",
            body("class_compact_id", dir),
            FormatType::Compact,
            read_one_class,
            write_one_class,
        );
        assert_eq!(py_value(&c), "Compact{'v': '5'}");
        let w = round_trip(
            "optional members",
            body("class_optional_members", dir),
            FormatType::Compact,
            read_one_class,
            write_one_class,
        );
        assert_eq!(
            py_value(&w),
            "WithOpt{'a': '1', 's': \"'x'\", 'i': 'Unset', 'p': \"Point{'x': '1', 'y': '2'}\"}"
        );
    }
}

/// The error type generated code would give an operation that throws `BaseErr`, `OptErr` and
/// `ClassErr` (derived exceptions included).
#[derive(Debug)]
enum WireError {
    Base(BaseErr),
    Derived(DerivedErr),
    Opt(OptErr),
    Class(ClassErr),
    Runtime(Error),
}

impl From<Error> for WireError {
    fn from(e: Error) -> Self {
        WireError::Runtime(e)
    }
}

impl OperationError for WireError {
    fn decode_user_exception(
        type_id: &str,
        is: &mut InputStream<'_>,
    ) -> Option<Result<Self, Error>> {
        match type_id {
            "::Wire::BaseErr" => Some(BaseErr::decode_exception(is).map(WireError::Base)),
            "::Wire::DerivedErr" => Some(DerivedErr::decode_exception(is).map(WireError::Derived)),
            "::Wire::OptErr" => Some(OptErr::decode_exception(is).map(WireError::Opt)),
            "::Wire::ClassErr" => Some(ClassErr::decode_exception(is).map(WireError::Class)),
            _ => None,
        }
    }
    fn into_dispatch(self) -> DispatchError {
        match self {
            WireError::Base(e) => DispatchError::User(Box::new(e)),
            WireError::Derived(e) => DispatchError::User(Box::new(e)),
            WireError::Opt(e) => DispatchError::User(Box::new(e)),
            WireError::Class(e) => DispatchError::User(Box::new(e)),
            WireError::Runtime(e) => DispatchError::Runtime(e),
        }
    }
}

fn exception(scenario: &str, format: FormatType) -> WireError {
    let (enc, reply) = body(scenario, false);
    let mut encaps = OutputStream::new(EncodingVersion::V1_0);
    encaps.write_encapsulation(enc, &reply);
    let encaps = encaps.finish().unwrap();
    let mut is = InputStream::new(&encaps, EncodingVersion::V1_0);
    is.set_accept_class_cycles(true);
    is.start_encapsulation().unwrap();
    let e = is.read_exception::<WireError>();
    is.end_encapsulation()
        .unwrap_or_else(|err| panic!("{scenario}: {err}"));
    // The dispatcher's side: marshal the user exception again.
    let DispatchError::User(user) = e.into_dispatch() else {
        panic!("{scenario}: not a user exception")
    };
    let again = encode_encaps(enc, format, |os| os.write_exception(user.as_ref()));
    assert_eq!(hex(&again[6..]), hex(&reply), "{scenario}: re-encoding");
    let mut is = InputStream::new(&encaps, EncodingVersion::V1_0);
    is.set_accept_class_cycles(true);
    is.start_encapsulation().unwrap();
    is.read_exception::<WireError>()
}

#[test]
fn exceptions_compact_sliced_and_1_0() {
    for (scenario, format) in [
        ("exc_derived_compact", FormatType::Compact),
        ("exc_derived_sliced", FormatType::Sliced),
        ("exc_derived_enc10", FormatType::Compact),
    ] {
        match exception(scenario, format) {
            WireError::Derived(e) => assert_eq!(
                e,
                DerivedErr {
                    code: 7,
                    detail: s("detail text")
                }
            ),
            other => panic!("{scenario}: {other:?}"),
        }
    }
    match exception("exc_optional_member", FormatType::Compact) {
        WireError::Opt(e) => assert_eq!(
            e,
            OptErr {
                code: 5,
                note: Some(s("a note"))
            }
        ),
        other => panic!("{other:?}"),
    }
    for (scenario, format) in [
        ("exc_class_member_compact", FormatType::Compact),
        ("exc_class_member_sliced", FormatType::Sliced),
        ("exc_class_member_enc10", FormatType::Compact),
    ] {
        match exception(scenario, format) {
            WireError::Class(e) => {
                assert_eq!(
                    py_value(&e.obj),
                    "Base{'id': '11', 'tag': \"'in-exception'\"}",
                    "{scenario}"
                )
            }
            other => panic!("{scenario}: {other:?}"),
        }
    }
    // The request of throwDerived carries the code.
    let code = round_trip(
        "throwDerived",
        body("exc_derived_compact", true),
        FormatType::Compact,
        |is| is.read::<i32>(),
        |os, v| os.write(v),
    );
    assert_eq!(code, 7);
}

#[test]
fn a_base_only_operation_gets_the_base_of_a_sliced_exception_and_unknown_for_compact() {
    #[derive(Debug)]
    enum OnlyBase {
        Base(BaseErr),
        Runtime(Error),
    }
    impl From<Error> for OnlyBase {
        fn from(e: Error) -> Self {
            OnlyBase::Runtime(e)
        }
    }
    impl OperationError for OnlyBase {
        fn decode_user_exception(
            type_id: &str,
            is: &mut InputStream<'_>,
        ) -> Option<Result<Self, Error>> {
            (type_id == "::Wire::BaseErr")
                .then(|| BaseErr::decode_exception(is).map(OnlyBase::Base))
        }
        fn into_dispatch(self) -> DispatchError {
            match self {
                OnlyBase::Base(e) => DispatchError::User(Box::new(e)),
                OnlyBase::Runtime(e) => DispatchError::Runtime(e),
            }
        }
    }
    let read = |scenario: &str| {
        let (enc, reply) = body(scenario, false);
        let mut encaps = OutputStream::new(EncodingVersion::V1_0);
        encaps.write_encapsulation(enc, &reply);
        let encaps = encaps.finish().unwrap();
        let mut is = InputStream::new(&encaps, EncodingVersion::V1_0);
        is.set_accept_class_cycles(true);
        is.start_encapsulation().unwrap();
        let e = is.read_exception::<OnlyBase>();
        (e, is.end_encapsulation())
    };
    let (e, end) = read("exc_derived_sliced");
    assert!(matches!(e, OnlyBase::Base(BaseErr { code: 7 })), "{e:?}");
    end.unwrap();
    let (e, _) = read("exc_derived_compact");
    assert!(
        matches!(&e, OnlyBase::Runtime(Error::UnknownUserException(id)) if id == "::Wire::DerivedErr"),
        "{e:?}"
    );
    // 1.0 has sizes in every slice: the base is found as in the sliced format.
    let (e, end) = read("exc_derived_enc10");
    assert!(matches!(e, OnlyBase::Base(BaseErr { code: 7 })), "{e:?}");
    end.unwrap();
    // Nothing known at all: UnknownUserException with the most-derived id.
    let (e, _) = read("exc_optional_member");
    assert!(
        matches!(&e, OnlyBase::Runtime(Error::UnknownUserException(id)) if id == "::Wire::OptErr"),
        "{e:?}"
    );
}

fn read_proxies(
    is: &mut InputStream<'_>,
) -> Result<(Option<ProxyData>, Vec<Option<ProxyData>>), Error> {
    Ok((is.read()?, is.read()?))
}

#[test]
fn proxies_in_both_encodings() {
    for (scenario, enc) in [
        ("proxies_11", EncodingVersion::V1_1),
        ("proxies_10", EncodingVersion::V1_0),
    ] {
        let (p, ps) = round_trip(
            scenario,
            body(scenario, true),
            FormatType::Compact,
            read_proxies,
            |os, (p, ps)| {
                os.write(p);
                os.write(&ps[..]);
            },
        );
        let p = p.expect("a proxy");
        assert_eq!(p.identity.to_string(), "obj");
        assert!(
            matches!(&p.endpoints[..], [EndpointData::Tcp(t)] if t.host == "127.0.0.1" && t.timeout == 60000)
        );
        assert_eq!(ps.len(), 8);
        assert!(ps[7].is_none());
        let named = ps[0].as_ref().unwrap();
        assert_eq!(
            (named.identity.to_string().as_str(), named.facet.as_str()),
            ("cat/name", "facet1")
        );
        assert_eq!((named.mode, named.secure), (ProxyMode::Oneway, true));
        if enc == EncodingVersion::V1_1 {
            assert_eq!(named.encoding, EncodingVersion::V1_0, "the proxy's -e 1.0");
        }
        assert_eq!(ps[1].as_ref().unwrap().adapter_id, "");
        assert!(ps[1].as_ref().unwrap().endpoints.is_empty());
        assert_eq!(ps[2].as_ref().unwrap().adapter_id, "MyAdapter");
        let multi = ps[3].as_ref().unwrap();
        assert_eq!(multi.mode, ProxyMode::Datagram);
        assert!(
            matches!(&multi.endpoints[..], [EndpointData::Udp(_), EndpointData::Ws(w)] if w.resource == "/ice")
        );
        let opq = ps[4].as_ref().unwrap();
        assert!(
            matches!(&opq.endpoints[..], [EndpointData::Opaque(o)] if o.endpoint_type == 99 && o.bytes == [1, 2, 3, 4])
        );
        let batchy = ps[6].as_ref().unwrap();
        assert_eq!(batchy.mode, ProxyMode::BatchOneway);
        assert!(matches!(&batchy.endpoints[..], [EndpointData::Tcp(t)] if t.timeout == -1));

        // Reply: the out sequence, then the returned proxy.
        let (out, ret) = round_trip(
            scenario,
            body(scenario, false),
            FormatType::Compact,
            |is| {
                Ok((
                    is.read::<Vec<Option<ProxyData>>>()?,
                    is.read::<Option<ProxyData>>()?,
                ))
            },
            |os, (out, ret)| {
                os.write(out);
                os.write(ret);
            },
        );
        assert_eq!(out, ps);
        assert_eq!(ret, Some(p));
    }
}

#[test]
fn user_exception_trait_objects_report_their_type() {
    let e: Box<dyn UserException> = Box::new(DerivedErr {
        code: 1,
        detail: s("d"),
    });
    assert_eq!(e.ice_id(), "::Wire::DerivedErr");
    assert!(!e.uses_classes());
}
