//! User exceptions with class members, optional class members and three-level hierarchies,
//! captured from Ice 3.7.8 (Python servant, replies fetched raw with `ice_invoke`) for this test.
//! The Slice (ours) was:
//!
//! ```text
//! module ExcX {
//!     class Node { int v; Node next; }
//!     exception OptClassErr { int code; optional(3) Node n; }
//!     exception MidErr extends OptClassErr { string why; }
//!     exception LeafErr extends MidErr { Node extra; }
//!     interface Thrower {  // each pair: default (compact) format, then ["format:sliced"]
//!         void optClass() throws OptClassErr; // OptClassErr{1, n = Node{2, next = itself}}
//!         void mid() throws OptClassErr;      // MidErr{3, n unset, "w"}
//!         void leaf() throws OptClassErr;     // LeafErr{4, n = x, "why", extra = x}, x = Node{2, next = x}
//!     }
//! }
//! ```

mod vectors_common;

use std::any::Any;

use floe::Error;
use floe::encoding::{
    DispatchError, EncodingVersion, FormatType, InputStream, OperationError, OutputStream,
    UserException, Value, ValueFactory, ValueRef,
};
use vectors_common::{encode_encaps, hex, unhex};

const ROWS: &[(&str, &str, &str)] = &[
    (
        "optClass",
        "1.1",
        "35000000010124133a3a457863583a3a4f7074436c617373457272010000001f01210c3a3a457863583a3a4e6f64650200000002ff",
    ),
    (
        "optClassSliced",
        "1.1",
        "4100000001013c133a3a457863583a3a4f7074436c6173734572720b000000010000001f01ff0101390c3a3a457863583a3a4e6f64650900000002000000010102",
    ),
    (
        "mid",
        "1.1",
        "310000000101000e3a3a457863583a3a4d6964457272017720133a3a457863583a3a4f7074436c61737345727203000000",
    ),
    (
        "midSliced",
        "1.1",
        "390000000101100e3a3a457863583a3a4d696445727206000000017730133a3a457863583a3a4f7074436c6173734572720800000003000000",
    ),
    (
        "leaf",
        "1.1",
        "5b0000000101000f3a3a457863583a3a4c65616645727201210c3a3a457863583a3a4e6f64650200000002000e3a3a457863583a3a4d69644572720377687924133a3a457863583a3a4f7074436c617373457272040000001f02ff",
    ),
    (
        "leafSliced",
        "1.1",
        "710000000101180f3a3a457863583a3a4c65616645727205000000010101390c3a3a457863583a3a4e6f64650900000002000000010102100e3a3a457863583a3a4d696445727208000000037768793c133a3a457863583a3a4f7074436c6173734572720b000000040000001f01ff0102",
    ),
    (
        "optClass",
        "1.0",
        "23000000010000133a3a457863583a3a4f7074436c6173734572720800000001000000",
    ),
    (
        "optClassSliced",
        "1.0",
        "23000000010000133a3a457863583a3a4f7074436c6173734572720800000001000000",
    ),
    (
        "mid",
        "1.0",
        "380000000100000e3a3a457863583a3a4d6964457272060000000177133a3a457863583a3a4f7074436c6173734572720800000003000000",
    ),
    (
        "midSliced",
        "1.0",
        "380000000100000e3a3a457863583a3a4d6964457272060000000177133a3a457863583a3a4f7074436c6173734572720800000003000000",
    ),
    (
        "leaf",
        "1.0",
        "860000000100010f3a3a457863583a3a4c65616645727208000000ffffffff0e3a3a457863583a3a4d69644572720800000003776879133a3a457863583a3a4f7074436c61737345727208000000040000000101000000000c3a3a457863583a3a4e6f64650c00000002000000ffffffff000d3a3a4963653a3a4f626a656374050000000000",
    ),
    (
        "leafSliced",
        "1.0",
        "860000000100010f3a3a457863583a3a4c65616645727208000000ffffffff0e3a3a457863583a3a4d69644572720800000003776879133a3a457863583a3a4f7074436c61737345727208000000040000000101000000000c3a3a457863583a3a4e6f64650c00000002000000ffffffff000d3a3a4963653a3a4f626a656374050000000000",
    ),
];

#[derive(Debug, Default)]
struct Node {
    v: i32,
    next: Option<ValueRef>,
}

impl Value for Node {
    fn ice_id(&self) -> &'static str {
        "::ExcX::Node"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::ExcX::Node", None, true);
        os.write(&self.v);
        os.write_value(&self.next);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<(), Error> {
        is.start_slice()?;
        self.v = is.read()?;
        self.next = is.read_value()?;
        is.end_slice()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

floe::encoding::inventory::submit! {
    ValueFactory { type_id: "::ExcX::Node", compact_id: None, create: || Box::new(Node::default()) }
}

macro_rules! display_as_type_id {
    ($t:ty, $id:expr) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($id)
            }
        }
        impl std::error::Error for $t {}
    };
}

#[derive(Debug, Default)]
struct OptClassErr {
    code: i32,
    n: Option<ValueRef>,
}
display_as_type_id!(OptClassErr, "::ExcX::OptClassErr");

#[derive(Debug, Default)]
struct MidErr {
    code: i32,
    n: Option<ValueRef>,
    why: String,
}
display_as_type_id!(MidErr, "::ExcX::MidErr");

#[derive(Debug, Default)]
struct LeafErr {
    code: i32,
    n: Option<ValueRef>,
    why: String,
    extra: Option<ValueRef>,
}
display_as_type_id!(LeafErr, "::ExcX::LeafErr");

fn write_opt_class_slice(os: &mut OutputStream, code: i32, n: &Option<ValueRef>) {
    os.start_slice("::ExcX::OptClassErr", None, true);
    os.write(&code);
    os.write_tagged_nullable(3, n);
    os.end_slice();
}

fn read_opt_class_slice(is: &mut InputStream<'_>) -> Result<(i32, Option<ValueRef>), Error> {
    is.start_slice()?;
    let code = is.read()?;
    let n = is.read_tagged_nullable(3)?;
    is.end_slice()?;
    Ok((code, n))
}

// Only required members count for the 1.0 `usesClasses` byte: optional ones are never written
// in 1.0, and Ice writes `00` for OptClassErr and MidErr.
impl UserException for OptClassErr {
    fn ice_id(&self) -> &'static str {
        "::ExcX::OptClassErr"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        write_opt_class_slice(os, self.code, &self.n);
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl UserException for MidErr {
    fn ice_id(&self) -> &'static str {
        "::ExcX::MidErr"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::ExcX::MidErr", None, false);
        os.write(self.why.as_str());
        os.end_slice();
        write_opt_class_slice(os, self.code, &self.n);
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl UserException for LeafErr {
    fn ice_id(&self) -> &'static str {
        "::ExcX::LeafErr"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::ExcX::LeafErr", None, false);
        os.write_value(&self.extra);
        os.end_slice();
        os.start_slice("::ExcX::MidErr", None, false);
        os.write(self.why.as_str());
        os.end_slice();
        write_opt_class_slice(os, self.code, &self.n);
    }
    fn uses_classes(&self) -> bool {
        true
    }
}

impl OptClassErr {
    fn decode_exception(is: &mut InputStream<'_>) -> Result<Self, Error> {
        let (code, n) = read_opt_class_slice(is)?;
        Ok(OptClassErr { code, n })
    }
}

impl MidErr {
    fn decode_exception(is: &mut InputStream<'_>) -> Result<Self, Error> {
        is.start_slice()?;
        let why = is.read()?;
        is.end_slice()?;
        let (code, n) = read_opt_class_slice(is)?;
        Ok(MidErr { code, n, why })
    }
}

impl LeafErr {
    fn decode_exception(is: &mut InputStream<'_>) -> Result<Self, Error> {
        is.start_slice()?;
        let extra = is.read_value()?;
        is.end_slice()?;
        let MidErr { code, n, why } = MidErr::decode_exception(is)?;
        Ok(LeafErr {
            code,
            n,
            why,
            extra,
        })
    }
}

/// What generated code would emit for `throws OptClassErr`: the exception and every exception
/// known to derive from it.
#[derive(Debug)]
enum ThrowsOptClass {
    OptClass(OptClassErr),
    Mid(MidErr),
    Leaf(LeafErr),
    Runtime(Error),
}

impl From<Error> for ThrowsOptClass {
    fn from(e: Error) -> Self {
        ThrowsOptClass::Runtime(e)
    }
}

impl OperationError for ThrowsOptClass {
    fn decode_user_exception(
        type_id: &str,
        is: &mut InputStream<'_>,
    ) -> Option<Result<Self, Error>> {
        match type_id {
            "::ExcX::OptClassErr" => Some(OptClassErr::decode_exception(is).map(Self::OptClass)),
            "::ExcX::MidErr" => Some(MidErr::decode_exception(is).map(Self::Mid)),
            "::ExcX::LeafErr" => Some(LeafErr::decode_exception(is).map(Self::Leaf)),
            _ => None,
        }
    }
    fn into_dispatch(self) -> DispatchError {
        match self {
            Self::OptClass(e) => DispatchError::User(Box::new(e)),
            Self::Mid(e) => DispatchError::User(Box::new(e)),
            Self::Leaf(e) => DispatchError::User(Box::new(e)),
            Self::Runtime(e) => DispatchError::Runtime(e),
        }
    }
}

/// A client built before `MidErr` and `LeafErr` existed.
#[derive(Debug)]
enum OnlyBase {
    OptClass(OptClassErr),
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
        (type_id == "::ExcX::OptClassErr")
            .then(|| OptClassErr::decode_exception(is).map(Self::OptClass))
    }
    fn into_dispatch(self) -> DispatchError {
        match self {
            Self::OptClass(e) => DispatchError::User(Box::new(e)),
            Self::Runtime(e) => DispatchError::Runtime(e),
        }
    }
}

/// Reads the captured exception; the encapsulation must then end exactly (callers stop reading
/// after a failure, as Ice does, so `check_end` is false where one is expected).
fn read_checked<E: OperationError>(
    case: &str,
    enc: &str,
    check_end: bool,
) -> (E, Vec<u8>, EncodingVersion) {
    let (_, _, h) = ROWS
        .iter()
        .find(|(c, e, _)| *c == case && *e == enc)
        .expect("captured row");
    let bytes = unhex(h);
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_0);
    is.set_accept_class_cycles(true);
    let v = is.start_encapsulation().unwrap();
    let e = is.read_exception::<E>();
    let end = is.end_encapsulation();
    if check_end {
        end.unwrap_or_else(|err| panic!("{case} {enc}: {err}"));
    }
    (e, bytes, v)
}

fn read<E: OperationError>(case: &str, enc: &str) -> (E, Vec<u8>, EncodingVersion) {
    read_checked(case, enc, true)
}

fn v_of(r: &Option<ValueRef>) -> Option<i32> {
    r.as_ref().map(|r| r.read_as::<Node>().expect("a Node").v)
}

fn is_self_cycle(r: &ValueRef) -> bool {
    r.read_as::<Node>()
        .unwrap()
        .next
        .as_ref()
        .is_some_and(|n| n.ptr_eq(r))
}

#[test]
fn captured_exceptions_decode_and_re_encode_byte_for_byte() {
    for enc in ["1.1", "1.0"] {
        for case in [
            "optClass",
            "optClassSliced",
            "mid",
            "midSliced",
            "leaf",
            "leafSliced",
        ] {
            let (e, bytes, v) = read::<ThrowsOptClass>(case, enc);
            let v11 = enc == "1.1";
            match &e {
                ThrowsOptClass::OptClass(x) => {
                    assert!(case.starts_with("optClass"));
                    assert_eq!(x.code, 1);
                    if v11 {
                        assert_eq!(v_of(&x.n), Some(2));
                        assert!(is_self_cycle(x.n.as_ref().unwrap()));
                    } else {
                        assert!(x.n.is_none(), "optionals are dropped in 1.0");
                    }
                }
                ThrowsOptClass::Mid(x) => {
                    assert!(case.starts_with("mid"));
                    assert_eq!((x.code, x.why.as_str(), x.n.is_none()), (3, "w", true));
                }
                ThrowsOptClass::Leaf(x) => {
                    assert!(case.starts_with("leaf"));
                    assert_eq!((x.code, x.why.as_str()), (4, "why"));
                    let extra = x.extra.clone().expect("extra");
                    assert!(is_self_cycle(&extra));
                    if v11 {
                        assert!(
                            x.n.as_ref().unwrap().ptr_eq(&extra),
                            "n and extra are one instance"
                        );
                    } else {
                        assert!(x.n.is_none());
                    }
                }
                ThrowsOptClass::Runtime(err) => panic!("{case} {enc}: {err}"),
            }
            let DispatchError::User(user) = e.into_dispatch() else {
                unreachable!()
            };
            let format = if case.ends_with("Sliced") {
                FormatType::Sliced
            } else {
                FormatType::Compact
            };
            let again = encode_encaps(v, format, |os| os.write_exception(user.as_ref()));
            assert_eq!(hex(&again), hex(&bytes), "{case} {enc}: re-encoding");
        }
    }
}

#[test]
fn a_client_that_knows_only_the_base_slices_off_derived_slices_holding_classes() {
    // Sliced 1.1: LeafErr's slice (with its indirection table) and MidErr's are skipped; the
    // base's optional member refers to the instance decoded from the skipped slice's table.
    let (e, _, _) = read::<OnlyBase>("leafSliced", "1.1");
    match e {
        OnlyBase::OptClass(x) => {
            assert_eq!(x.code, 4);
            assert!(is_self_cycle(x.n.as_ref().expect("n")));
        }
        OnlyBase::Runtime(err) => panic!("{err}"),
    }
    // 1.0: every slice has a size, and the pending instances after the slices are still read.
    let (e, _, _) = read::<OnlyBase>("leaf", "1.0");
    assert!(
        matches!(e, OnlyBase::OptClass(OptClassErr { code: 4, n: None })),
        "{e:?}"
    );
    // Compact 1.1: nothing can be skipped.
    let (e, _, _) = read_checked::<OnlyBase>("leaf", "1.1", false);
    assert!(
        matches!(&e, OnlyBase::Runtime(Error::UnknownUserException(id)) if id == "::ExcX::LeafErr"),
        "{e:?}"
    );
}

#[test]
fn a_1_0_exception_of_no_known_type_is_unknown_even_with_pending_instances() {
    #[derive(Debug)]
    struct KnowsNothing(Error);
    impl From<Error> for KnowsNothing {
        fn from(e: Error) -> Self {
            KnowsNothing(e)
        }
    }
    impl OperationError for KnowsNothing {
        fn decode_user_exception(_: &str, _: &mut InputStream<'_>) -> Option<Result<Self, Error>> {
            None
        }
        fn into_dispatch(self) -> DispatchError {
            DispatchError::Runtime(self.0)
        }
    }
    for (case, id) in [("leaf", "::ExcX::LeafErr"), ("mid", "::ExcX::MidErr")] {
        for enc in ["1.0", "1.1"] {
            let sliced = format!("{case}Sliced");
            let case = if enc == "1.1" { sliced.as_str() } else { case };
            let (KnowsNothing(e), _, _) = read_checked::<KnowsNothing>(case, enc, false);
            assert_eq!(e, Error::UnknownUserException(id.into()), "{case} {enc}");
        }
    }
}
