//! `module FloeTypes` of `tests/slice/Types.ice`, written by hand the way slice2rs generates it
//! (docs/codegen-surface.md): the client side the interop tests use against ZeroC's C++ server.

use std::any::Any;
use std::collections::HashMap;

use floe::codegen::{
    DispatchError, InputStream, OperationError, OptionalFormat, OutputStream, Proxy, SliceType,
    UserException, Value, ValueFactory, ValueRef,
};
use floe::{Error, ObjectPrx, OperationMode, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Color {
    #[default]
    Red = 0,
    Green = 5,
    Blue = 6,
}

impl SliceType for Color {
    const MIN_WIRE_SIZE: usize = 1;
    const TAG_FORMAT: OptionalFormat = OptionalFormat::Size;
    fn encode(&self, os: &mut OutputStream) {
        os.write_enum(*self as i32, 6);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self> {
        match is.read_enum(6)? {
            0 => Ok(Color::Red),
            5 => Ok(Color::Green),
            6 => Ok(Color::Blue),
            v => Err(Error::marshal(format!(
                "invalid enumerator {v} for ::FloeTypes::Color"
            ))),
        }
    }
    fn dictionary_key_order(&self, other: &Self) -> std::cmp::Ordering {
        (*self as i32).cmp(&(*other as i32))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Basics {
    pub b: bool,
    pub y: u8,
    pub s: i16,
    pub i: i32,
    pub l: i64,
    pub f: f32,
    pub d: f64,
    pub str: String,
    pub c: Color,
}

impl SliceType for Basics {
    const MIN_WIRE_SIZE: usize = 1 + 1 + 2 + 4 + 8 + 4 + 8 + 1 + 1;
    fn encode(&self, os: &mut OutputStream) {
        self.b.encode(os);
        self.y.encode(os);
        self.s.encode(os);
        self.i.encode(os);
        self.l.encode(os);
        self.f.encode(os);
        self.d.encode(os);
        self.str.encode(os);
        self.c.encode(os);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self> {
        Ok(Basics {
            b: is.read()?,
            y: is.read()?,
            s: is.read()?,
            i: is.read()?,
            l: is.read()?,
            f: is.read()?,
            d: is.read()?,
            str: is.read()?,
            c: is.read()?,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Nested {
    pub basics: Basics,
    pub keys: Vec<String>,
    pub counts: HashMap<String, i32>,
    pub target: Option<ObjectPrx>,
}

impl SliceType for Nested {
    const MIN_WIRE_SIZE: usize = Basics::MIN_WIRE_SIZE + 1 + 1 + 2;
    fn encode(&self, os: &mut OutputStream) {
        self.basics.encode(os);
        self.keys.encode(os);
        self.counts.encode(os);
        self.target.encode(os);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self> {
        Ok(Nested {
            basics: is.read()?,
            keys: is.read()?,
            counts: is.read()?,
            target: is.read()?,
        })
    }
}

macro_rules! value_boilerplate {
    () => {
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
    };
}

/// `class Node { int value; Node next; }`
#[derive(Debug, Default)]
pub struct Node {
    pub value: i32,
    pub next: Option<ValueRef>,
}

impl Value for Node {
    fn ice_id(&self) -> &'static str {
        "::FloeTypes::Node"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::FloeTypes::Node", None, true);
        os.write(&self.value);
        os.write_value(&self.next);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<()> {
        is.start_slice()?;
        self.value = is.read()?;
        self.next = is.read_value()?;
        is.end_slice()
    }
    value_boilerplate!();
}

/// `class LabeledNode extends Node { string label; optional(1) double weight; }`
#[derive(Debug, Default)]
pub struct LabeledNode {
    pub value: i32,
    pub next: Option<ValueRef>,
    pub label: String,
    pub weight: Option<f64>,
}

impl Value for LabeledNode {
    fn ice_id(&self) -> &'static str {
        "::FloeTypes::LabeledNode"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::FloeTypes::LabeledNode", None, false);
        os.write(&self.label);
        os.write_tagged(1, &self.weight);
        os.end_slice();
        os.start_slice("::FloeTypes::Node", None, true);
        os.write(&self.value);
        os.write_value(&self.next);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<()> {
        is.start_slice()?;
        self.label = is.read()?;
        self.weight = is.read_tagged(1)?;
        is.end_slice()?;
        is.start_slice()?;
        self.value = is.read()?;
        self.next = is.read_value()?;
        is.end_slice()
    }
    value_boilerplate!();
}

floe::codegen::inventory::submit! {
    ValueFactory { type_id: "::FloeTypes::Node", compact_id: None, create: || Box::new(Node::default()) }
}
floe::codegen::inventory::submit! {
    ValueFactory { type_id: "::FloeTypes::LabeledNode", compact_id: None, create: || Box::new(LabeledNode::default()) }
}

/// A `LabeledNode`'s label and weight.
pub type Label = (String, Option<f64>);

/// The value and next node of a `Node` or `LabeledNode`, and the label of a `LabeledNode`.
pub fn node_parts(v: &ValueRef) -> (i32, Option<ValueRef>, Option<Label>) {
    if let Some(n) = v.read_as::<LabeledNode>() {
        return (n.value, n.next.clone(), Some((n.label.clone(), n.weight)));
    }
    let n = v.read_as::<Node>().expect("a Node");
    (n.value, n.next.clone(), None)
}

/// `exception Base { string reason; }`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Base {
    pub reason: String,
}

/// `exception Derived extends Base { int code; }`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derived {
    pub reason: String,
    pub code: i32,
}

impl std::fmt::Display for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "::FloeTypes::Base {{ reason: {:?} }}", self.reason)
    }
}

impl std::fmt::Display for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "::FloeTypes::Derived {{ reason: {:?}, code: {} }}",
            self.reason, self.code
        )
    }
}

impl std::error::Error for Base {}
impl std::error::Error for Derived {}

impl UserException for Base {
    fn ice_id(&self) -> &'static str {
        "::FloeTypes::Base"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::FloeTypes::Base", None, true);
        os.write(&self.reason);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl UserException for Derived {
    fn ice_id(&self) -> &'static str {
        "::FloeTypes::Derived"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::FloeTypes::Derived", None, false);
        os.write(&self.code);
        os.end_slice();
        os.start_slice("::FloeTypes::Base", None, true);
        os.write(&self.reason);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl Base {
    pub fn decode_exception(is: &mut InputStream<'_>) -> Result<Base> {
        is.start_slice()?;
        let reason = is.read()?;
        is.end_slice()?;
        Ok(Base { reason })
    }
}

impl Derived {
    pub fn decode_exception(is: &mut InputStream<'_>) -> Result<Derived> {
        is.start_slice()?;
        let code = is.read()?;
        is.end_slice()?;
        let base = Base::decode_exception(is)?;
        Ok(Derived {
            reason: base.reason,
            code,
        })
    }
}

/// The error of every `throws Base` operation (`types::ThrowError` as generated).
#[derive(Debug)]
pub enum ThrowError {
    Base(Base),
    Derived(Derived),
    Runtime(Error),
}

impl From<Error> for ThrowError {
    fn from(e: Error) -> Self {
        ThrowError::Runtime(e)
    }
}

impl OperationError for ThrowError {
    fn decode_user_exception(type_id: &str, is: &mut InputStream<'_>) -> Option<Result<Self>> {
        match type_id {
            "::FloeTypes::Base" => Some(Base::decode_exception(is).map(ThrowError::Base)),
            "::FloeTypes::Derived" => Some(Derived::decode_exception(is).map(ThrowError::Derived)),
            _ => None,
        }
    }
    fn into_dispatch(self) -> DispatchError {
        match self {
            ThrowError::Base(e) => DispatchError::User(Box::new(e)),
            ThrowError::Derived(e) => DispatchError::User(Box::new(e)),
            ThrowError::Runtime(e) => DispatchError::Runtime(e),
        }
    }
}

/// `::FloeTypes::Types*`
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypesPrx(pub ObjectPrx);

impl Proxy for TypesPrx {
    const TYPE_ID: &'static str = "::FloeTypes::Types";
    fn from_object(prx: ObjectPrx) -> Self {
        TypesPrx(prx)
    }
    fn as_object(&self) -> &ObjectPrx {
        &self.0
    }
}

impl std::ops::Deref for TypesPrx {
    type Target = ObjectPrx;
    fn deref(&self) -> &ObjectPrx {
        &self.0
    }
}

impl TypesPrx {
    pub async fn checked_cast(prx: &ObjectPrx) -> Result<Option<TypesPrx>> {
        Ok(if prx.ice_is_a(Self::TYPE_ID).await? {
            Some(TypesPrx(prx.clone()))
        } else {
            None
        })
    }

    pub fn with(&self, f: impl FnOnce(&ObjectPrx) -> ObjectPrx) -> TypesPrx {
        TypesPrx(f(&self.0))
    }

    pub async fn next(&self, b: &Basics) -> Result<Basics> {
        self.0
            .invoke(
                "next",
                OperationMode::Normal,
                None,
                true,
                |os| os.write(b),
                |is| is.read::<Basics>(),
            )
            .await
    }

    pub async fn sort_basics(&self, s: &[Basics]) -> Result<(Vec<Basics>, i32)> {
        self.0
            .invoke(
                "sortBasics",
                OperationMode::Normal,
                None,
                true,
                |os| os.write(s),
                |is| {
                    let count = is.read::<i32>()?;
                    let ret = is.read::<Vec<Basics>>()?;
                    Ok((ret, count))
                },
            )
            .await
    }

    pub async fn scale(&self, v: &[f64], k: f64) -> Result<(Vec<f64>, Vec<bool>)> {
        self.0
            .invoke(
                "scale",
                OperationMode::Normal,
                None,
                true,
                |os| {
                    os.write(v);
                    os.write(&k);
                },
                |is| {
                    let negative = is.read::<Vec<bool>>()?;
                    let ret = is.read::<Vec<f64>>()?;
                    Ok((ret, negative))
                },
            )
            .await
    }

    pub async fn split(&self, lines: &[String]) -> Result<Vec<Vec<String>>> {
        self.0
            .invoke(
                "split",
                OperationMode::Idempotent,
                None,
                true,
                |os| os.write(lines),
                |is| is.read::<Vec<Vec<String>>>(),
            )
            .await
    }

    pub async fn invert(&self, d: &HashMap<String, i32>) -> Result<HashMap<i32, String>> {
        self.0
            .invoke(
                "invert",
                OperationMode::Idempotent,
                None,
                true,
                |os| os.write(d),
                |is| is.read::<HashMap<i32, String>>(),
            )
            .await
    }

    pub async fn shift_colors(
        &self,
        names: &HashMap<Color, Vec<String>>,
    ) -> Result<HashMap<Color, Vec<String>>> {
        self.0
            .invoke(
                "shiftColors",
                OperationMode::Normal,
                None,
                true,
                |os| os.write(names),
                |is| is.read::<HashMap<Color, Vec<String>>>(),
            )
            .await
    }

    pub async fn wrap(&self, n: &Nested) -> Result<Nested> {
        self.0
            .invoke(
                "wrap",
                OperationMode::Normal,
                None,
                true,
                |os| os.write(n),
                |is| is.read::<Nested>(),
            )
            .await
    }

    async fn node_op(&self, op: &'static str, n: Option<i32>) -> Result<Option<ValueRef>> {
        self.0
            .invoke(
                op,
                OperationMode::Normal,
                None,
                true,
                |os| {
                    if let Some(n) = n {
                        os.write(&n);
                    }
                },
                |is| {
                    let ret = is.read_value()?;
                    is.read_pending_values()?;
                    Ok(ret)
                },
            )
            .await
    }

    pub async fn make_ring(&self, n: i32) -> Result<Option<ValueRef>> {
        self.node_op("makeRing", Some(n)).await
    }

    pub async fn make_server_node_sliced(&self) -> Result<Option<ValueRef>> {
        self.node_op("makeServerNodeSliced", None).await
    }

    pub async fn make_server_node_compact(&self) -> Result<Option<ValueRef>> {
        self.node_op("makeServerNodeCompact", None).await
    }

    pub async fn sum_ring(&self, n: Option<ValueRef>) -> Result<i32> {
        self.0
            .invoke(
                "sumRing",
                OperationMode::Normal,
                None,
                true,
                |os| {
                    os.write_value(&n);
                    os.write_pending_values();
                },
                |is| is.read::<i32>(),
            )
            .await
    }

    pub async fn op_optional(
        &self,
        s: Option<String>,
        b: Option<Basics>,
    ) -> Result<(Option<i32>, Option<Vec<String>>)> {
        self.0
            .invoke(
                "opOptional",
                OperationMode::Normal,
                None,
                true,
                |os| {
                    os.write_tagged(2, &s);
                    os.write_tagged(3, &b);
                },
                |is| {
                    let ret = is.read_tagged::<i32>(1)?;
                    let words = is.read_tagged::<Vec<String>>(4)?;
                    Ok((ret, words))
                },
            )
            .await
    }

    pub async fn throw_base(&self, reason: &str) -> std::result::Result<(), ThrowError> {
        self.0
            .invoke(
                "throwBase",
                OperationMode::Normal,
                None,
                false,
                |os| os.write(reason),
                |_| Ok(()),
            )
            .await
    }

    pub async fn throw_derived(
        &self,
        reason: &str,
        code: i32,
    ) -> std::result::Result<(), ThrowError> {
        self.0
            .invoke(
                "throwDerived",
                OperationMode::Normal,
                None,
                false,
                |os| {
                    os.write(reason);
                    os.write(&code);
                },
                |_| Ok(()),
            )
            .await
    }

    pub async fn throw_server_only_compact(
        &self,
        reason: &str,
    ) -> std::result::Result<(), ThrowError> {
        self.0
            .invoke(
                "throwServerOnlyCompact",
                OperationMode::Normal,
                None,
                false,
                |os| os.write(reason),
                |_| Ok(()),
            )
            .await
    }

    pub async fn throw_server_only_sliced(
        &self,
        reason: &str,
    ) -> std::result::Result<(), ThrowError> {
        self.0
            .invoke(
                "throwServerOnlySliced",
                OperationMode::Normal,
                None,
                false,
                |os| os.write(reason),
                |_| Ok(()),
            )
            .await
    }
}
