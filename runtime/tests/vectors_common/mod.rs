//! Shared by the fixture tests: loading the captured vectors, hex helpers, and the `Wire` types
//! of `vectors/slice/Vectors.ice` written by hand exactly as generated code would write them.

#![allow(dead_code)]

use std::any::Any;
use std::path::PathBuf;

use floe::Error;
use floe::encoding::{
    EncodingVersion, FormatType, InputStream, OptionalFormat, OutputStream, SliceType,
    UserException, Value, ValueFactory, ValueRef,
};

/// `shared/ice/vectors/out/<name>`, found beside the repository root, or `$FLOE_VECTORS/<name>`.
pub fn fixture(name: &str) -> serde_json::Value {
    let dir = match std::env::var_os("FLOE_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("runtime/ has a parent")
            .join("../shared/ice/vectors/out"),
    };
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} is missing ({e}): the captured Ice vectors must be at ../shared/ice/vectors \
             relative to the repository root, or in the directory FLOE_VECTORS names",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

pub fn encoding_of(s: &str) -> EncodingVersion {
    match s {
        "1.0" => EncodingVersion::V1_0,
        "1.1" => EncodingVersion::V1_1,
        other => panic!("unexpected encoding {other}"),
    }
}

/// Decodes the contents of a whole encapsulation with `read`, checking its end. Class cycles
/// are accepted (the captures have some), as ZeroC's own stream tests set
/// `Ice.AcceptClassCycles`.
pub fn decode_encaps<T>(
    encaps: &[u8],
    read: impl FnOnce(&mut InputStream<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut is = InputStream::new(encaps, EncodingVersion::V1_0);
    is.set_accept_class_cycles(true);
    is.start_encapsulation()?;
    let v = read(&mut is)?;
    is.end_encapsulation()?;
    if !is.is_at_end() {
        return Err(Error::marshal("bytes after the encapsulation"));
    }
    Ok(v)
}

/// Encodes an encapsulation of the given encoding and format with `write`.
pub fn encode_encaps(
    encoding: EncodingVersion,
    format: FormatType,
    write: impl FnOnce(&mut OutputStream),
) -> Vec<u8> {
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(encoding, format);
    write(&mut os);
    os.end_encapsulation();
    os.finish().expect("encoding succeeds")
}

// ----------------------------------------------------------------------------------------------
// Python-like rendering, as the capture scripts print values.

pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

pub fn py_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

pub fn py_bytes(b: &[u8]) -> String {
    let mut out = String::from("b'");
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('\'');
    out
}

/// `Name{'field': 'rendered', ...}` as the capture scripts print structs and classes.
pub fn py_struct(name: &str, fields: &[(&str, String)]) -> String {
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("'{k}': {}", py_str(v)))
        .collect();
    format!("{name}{{{}}}", inner.join(", "))
}

pub fn py_opt<T>(v: &Option<T>, f: impl Fn(&T) -> String) -> String {
    match v {
        Some(v) => f(v),
        None => "Unset".into(),
    }
}

// ----------------------------------------------------------------------------------------------
// module Wire

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Color {
    #[default]
    Red = 0,
    Green = 1,
    Blue = 2,
}

impl SliceType for Color {
    const MIN_WIRE_SIZE: usize = 1;
    const TAG_FORMAT: OptionalFormat = OptionalFormat::Size;
    fn encode(&self, os: &mut OutputStream) {
        os.write_enum(*self as i32, 2);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        match is.read_enum(2)? {
            0 => Ok(Color::Red),
            1 => Ok(Color::Green),
            2 => Ok(Color::Blue),
            v => Err(Error::marshal(format!(
                "invalid enumerator {v} for ::Wire::Color"
            ))),
        }
    }
}

impl Color {
    pub fn py(&self) -> String {
        format!("Color.{:?}({})", self, *self as i32)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Big {
    #[default]
    BigA = 0,
    BigB = 300,
    BigC = 301,
}

impl SliceType for Big {
    const MIN_WIRE_SIZE: usize = 1;
    const TAG_FORMAT: OptionalFormat = OptionalFormat::Size;
    fn encode(&self, os: &mut OutputStream) {
        os.write_enum(*self as i32, 301);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        match is.read_enum(301)? {
            0 => Ok(Big::BigA),
            300 => Ok(Big::BigB),
            301 => Ok(Big::BigC),
            v => Err(Error::marshal(format!(
                "invalid enumerator {v} for ::Wire::Big"
            ))),
        }
    }
}

impl Big {
    pub fn py(&self) -> String {
        format!("Big.{:?}({})", self, *self as i32)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Huge {
    #[default]
    HugeA = 0,
    HugeB = 70000,
}

impl SliceType for Huge {
    const MIN_WIRE_SIZE: usize = 1;
    const TAG_FORMAT: OptionalFormat = OptionalFormat::Size;
    fn encode(&self, os: &mut OutputStream) {
        os.write_enum(*self as i32, 70000);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        match is.read_enum(70000)? {
            0 => Ok(Huge::HugeA),
            70000 => Ok(Huge::HugeB),
            v => Err(Error::marshal(format!(
                "invalid enumerator {v} for ::Wire::Huge"
            ))),
        }
    }
}

impl Huge {
    pub fn py(&self) -> String {
        format!("Huge.{:?}({})", self, *self as i32)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

impl SliceType for Point {
    const MIN_WIRE_SIZE: usize = 8;
    const FIXED_SIZE: Option<usize> = Some(8);
    fn encode(&self, os: &mut OutputStream) {
        self.x.encode(os);
        self.y.encode(os);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        Ok(Point {
            x: is.read()?,
            y: is.read()?,
        })
    }
}

impl Point {
    pub fn py(&self) -> String {
        py_struct(
            "Point",
            &[("x", self.x.to_string()), ("y", self.y.to_string())],
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Person {
    pub name: String,
    pub age: i32,
    pub fav: Color,
}

impl SliceType for Person {
    const MIN_WIRE_SIZE: usize = 6;
    fn encode(&self, os: &mut OutputStream) {
        self.name.encode(os);
        self.age.encode(os);
        self.fav.encode(os);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        Ok(Person {
            name: is.read()?,
            age: is.read()?,
            fav: is.read()?,
        })
    }
}

impl Person {
    pub fn py(&self) -> String {
        py_struct(
            "Person",
            &[
                ("name", py_str(&self.name)),
                ("age", self.age.to_string()),
                ("fav", self.fav.py()),
            ],
        )
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

#[derive(Debug, Default)]
pub struct Base {
    pub id: i32,
    pub tag: String,
}

impl Value for Base {
    fn ice_id(&self) -> &'static str {
        "::Wire::Base"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::Base", None, true);
        os.write(&self.id);
        os.write(&self.tag);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<(), Error> {
        is.start_slice()?;
        self.id = is.read()?;
        self.tag = is.read()?;
        is.end_slice()
    }
    value_boilerplate!();
}

#[derive(Debug, Default)]
pub struct Derived {
    pub id: i32,
    pub tag: String,
    pub value: f64,
    pub next: Option<ValueRef>,
}

impl Value for Derived {
    fn ice_id(&self) -> &'static str {
        "::Wire::Derived"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::Derived", None, false);
        os.write(&self.value);
        os.write_value(&self.next);
        os.end_slice();
        os.start_slice("::Wire::Base", None, true);
        os.write(&self.id);
        os.write(&self.tag);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<(), Error> {
        is.start_slice()?;
        self.value = is.read()?;
        self.next = is.read_value()?;
        is.end_slice()?;
        is.start_slice()?;
        self.id = is.read()?;
        self.tag = is.read()?;
        is.end_slice()
    }
    value_boilerplate!();
}

#[derive(Debug, Default)]
pub struct Compact {
    pub v: i32,
}

impl Value for Compact {
    fn ice_id(&self) -> &'static str {
        "::Wire::Compact"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::Compact", Some(7), true);
        os.write(&self.v);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<(), Error> {
        is.start_slice()?;
        self.v = is.read()?;
        is.end_slice()
    }
    value_boilerplate!();
}

#[derive(Debug, Default)]
pub struct WithOpt {
    pub a: i32,
    pub s: Option<String>,
    pub i: Option<i32>,
    pub p: Option<Point>,
}

impl Value for WithOpt {
    fn ice_id(&self) -> &'static str {
        "::Wire::WithOpt"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::WithOpt", None, true);
        os.write(&self.a);
        os.write_tagged(1, &self.s);
        os.write_tagged(2, &self.i);
        os.write_tagged(10, &self.p);
        os.end_slice();
    }
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<(), Error> {
        is.start_slice()?;
        self.a = is.read()?;
        self.s = is.read_tagged(1)?;
        self.i = is.read_tagged(2)?;
        self.p = is.read_tagged(10)?;
        is.end_slice()
    }
    value_boilerplate!();
}

/// Renders a class reference as the capture scripts do; `outer` detects self-references.
pub fn py_value(v: &Option<ValueRef>) -> String {
    py_value_in(v, None)
}

fn py_value_in(v: &Option<ValueRef>, outer: Option<&ValueRef>) -> String {
    let Some(r) = v else { return "None".into() };
    if outer.is_some_and(|o| o.ptr_eq(r)) {
        return "<self>".into();
    }
    let guard = r.read();
    if let Some(b) = guard.downcast_ref::<Base>() {
        return py_struct("Base", &[("id", b.id.to_string()), ("tag", py_str(&b.tag))]);
    }
    if let Some(d) = guard.downcast_ref::<Derived>() {
        let next = d.next.clone();
        return py_struct(
            "Derived",
            &[
                ("id", d.id.to_string()),
                ("tag", py_str(&d.tag)),
                ("value", py_float(d.value)),
                ("next", py_value_in(&next, Some(r))),
            ],
        );
    }
    if let Some(c) = guard.downcast_ref::<Compact>() {
        return py_struct("Compact", &[("v", c.v.to_string())]);
    }
    if let Some(w) = guard.downcast_ref::<WithOpt>() {
        return py_struct(
            "WithOpt",
            &[
                ("a", w.a.to_string()),
                ("s", py_opt(&w.s, |s| py_str(s))),
                ("i", py_opt(&w.i, |i| i.to_string())),
                ("p", py_opt(&w.p, Point::py)),
            ],
        );
    }
    format!("<{}>", guard.ice_id())
}

// ----------------------------------------------------------------------------------------------
// Exceptions

#[derive(Debug, Default, Clone, PartialEq)]
pub struct BaseErr {
    pub code: i32,
}

impl std::fmt::Display for BaseErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "::Wire::BaseErr")
    }
}
impl std::error::Error for BaseErr {}

impl UserException for BaseErr {
    fn ice_id(&self) -> &'static str {
        "::Wire::BaseErr"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::BaseErr", None, true);
        os.write(&self.code);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl BaseErr {
    pub fn decode_exception(is: &mut InputStream<'_>) -> Result<BaseErr, Error> {
        is.start_slice()?;
        let code = is.read()?;
        is.end_slice()?;
        Ok(BaseErr { code })
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct DerivedErr {
    pub code: i32,
    pub detail: String,
}

impl std::fmt::Display for DerivedErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "::Wire::DerivedErr")
    }
}
impl std::error::Error for DerivedErr {}

impl UserException for DerivedErr {
    fn ice_id(&self) -> &'static str {
        "::Wire::DerivedErr"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::DerivedErr", None, false);
        os.write(&self.detail);
        os.end_slice();
        os.start_slice("::Wire::BaseErr", None, true);
        os.write(&self.code);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl DerivedErr {
    pub fn decode_exception(is: &mut InputStream<'_>) -> Result<DerivedErr, Error> {
        is.start_slice()?;
        let detail = is.read()?;
        is.end_slice()?;
        is.start_slice()?;
        let code = is.read()?;
        is.end_slice()?;
        Ok(DerivedErr { code, detail })
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct OptErr {
    pub code: i32,
    pub note: Option<String>,
}

impl std::fmt::Display for OptErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "::Wire::OptErr")
    }
}
impl std::error::Error for OptErr {}

impl UserException for OptErr {
    fn ice_id(&self) -> &'static str {
        "::Wire::OptErr"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::OptErr", None, true);
        os.write(&self.code);
        os.write_tagged(1, &self.note);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl OptErr {
    pub fn decode_exception(is: &mut InputStream<'_>) -> Result<OptErr, Error> {
        is.start_slice()?;
        let code = is.read()?;
        let note = is.read_tagged(1)?;
        is.end_slice()?;
        Ok(OptErr { code, note })
    }
}

#[derive(Debug, Default, Clone)]
pub struct ClassErr {
    pub obj: Option<ValueRef>,
}

impl std::fmt::Display for ClassErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "::Wire::ClassErr")
    }
}
impl std::error::Error for ClassErr {}

impl UserException for ClassErr {
    fn ice_id(&self) -> &'static str {
        "::Wire::ClassErr"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::Wire::ClassErr", None, true);
        os.write_value(&self.obj);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        true
    }
}

impl ClassErr {
    pub fn decode_exception(is: &mut InputStream<'_>) -> Result<ClassErr, Error> {
        is.start_slice()?;
        let obj = is.read_value()?;
        is.end_slice()?;
        Ok(ClassErr { obj })
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Unauthorized {
    pub reason: String,
}

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "::UsersManager::Unauthorized")
    }
}
impl std::error::Error for Unauthorized {}

impl UserException for Unauthorized {
    fn ice_id(&self) -> &'static str {
        "::UsersManager::Unauthorized"
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.start_slice("::UsersManager::Unauthorized", None, true);
        os.write(&self.reason);
        os.end_slice();
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

impl Unauthorized {
    pub fn decode_exception(is: &mut InputStream<'_>) -> Result<Unauthorized, Error> {
        is.start_slice()?;
        let reason = is.read()?;
        is.end_slice()?;
        Ok(Unauthorized { reason })
    }
}

pub fn base_factory() -> Box<dyn Value> {
    Box::new(Base::default())
}
pub fn derived_factory() -> Box<dyn Value> {
    Box::new(Derived::default())
}
pub fn compact_factory() -> Box<dyn Value> {
    Box::new(Compact::default())
}
pub fn withopt_factory() -> Box<dyn Value> {
    Box::new(WithOpt::default())
}

/// The factories of every `Wire` class; each test binary submits the ones it knows.
pub const BASE: ValueFactory = ValueFactory {
    type_id: "::Wire::Base",
    compact_id: None,
    create: base_factory,
};
pub const DERIVED: ValueFactory = ValueFactory {
    type_id: "::Wire::Derived",
    compact_id: None,
    create: derived_factory,
};
pub const COMPACT: ValueFactory = ValueFactory {
    type_id: "::Wire::Compact",
    compact_id: Some(7),
    create: compact_factory,
};
pub const WITHOPT: ValueFactory = ValueFactory {
    type_id: "::Wire::WithOpt",
    compact_id: None,
    create: withopt_factory,
};
