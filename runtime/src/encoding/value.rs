//! Classes (Ice "values"): the [`Value`] trait, shared [`ValueRef`] cells, factories and the
//! [`UnknownSlicedValue`] that keeps the slices of a type nobody here knows.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use parking_lot::{
    MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

use super::{InputStream, OptionalFormat, OutputStream, SliceType};
use crate::error::Error;

/// A class (an Ice "value"). Object-safe.
pub trait Value: Any + Send + Sync + fmt::Debug {
    /// The Slice type id of the most-derived type (`::M::C`).
    fn ice_id(&self) -> &'static str;
    /// Writes every slice, most-derived first.
    fn encode_value(&self, os: &mut OutputStream);
    /// Reads this value's slices, starting at the slice of the most-derived known type.
    fn decode_value(&mut self, is: &mut InputStream<'_>) -> Result<(), Error>;
    /// `self` as `Any`, for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// Slices of more-derived types that were unknown when this instance was decoded, kept by
    /// classes with `["preserve-slice"]` (which override this and
    /// [`Value::set_preserved_slices`]) and written back first in the sliced format.
    fn preserved_slices(&self) -> Option<&[SliceInfo]> {
        None
    }
    /// Receives the unknown slices skipped before this instance's type was found; dropped
    /// unless the class preserves slices.
    fn set_preserved_slices(&mut self, _slices: Vec<SliceInfo>) {}
    /// `self` as mutable `Any`, for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl dyn Value {
    /// The value as a `T`, if it is one.
    pub fn downcast_ref<T: Value>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }

    /// The value as a mutable `T`, if it is one.
    pub fn downcast_mut<T: Value>(&mut self) -> Option<&mut T> {
        self.as_any_mut().downcast_mut::<T>()
    }

    /// Whether the value is a `T`.
    pub fn is<T: Value>(&self) -> bool {
        self.as_any().is::<T>()
    }
}

/// A shared, lockable cell holding any class instance. Cloning it shares the instance, as Ice
/// references do; equality is identity. Decoding may hand out a cell before its instance has
/// been read (cycles, 1.0's pending instances); it is filled before decoding completes.
#[derive(Clone)]
pub struct ValueRef(Arc<RwLock<Box<dyn Value>>>);

impl ValueRef {
    /// A new cell holding `value`.
    pub fn new<V: Value>(value: V) -> Self {
        ValueRef(Arc::new(RwLock::new(Box::new(value))))
    }

    /// A new cell holding an already boxed value.
    pub fn from_box(value: Box<dyn Value>) -> Self {
        ValueRef(Arc::new(RwLock::new(value)))
    }

    /// An empty cell, filled by the decoder once the instance has been read.
    pub(crate) fn unset() -> Self {
        Self::new(UnsetValue)
    }

    /// Locks the instance for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, Box<dyn Value>> {
        self.0.read()
    }

    /// Locks the instance for writing.
    pub fn write(&self) -> RwLockWriteGuard<'_, Box<dyn Value>> {
        self.0.write()
    }

    /// Locks for reading without blocking; `None` when a writer holds the lock.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, Box<dyn Value>>> {
        self.0.try_read()
    }

    /// Locks the instance for reading as a `T`, or `None` when it is not a `T`.
    pub fn read_as<T: Value>(&self) -> Option<MappedRwLockReadGuard<'_, T>> {
        RwLockReadGuard::try_map(self.0.read(), |v| v.as_any().downcast_ref::<T>()).ok()
    }

    /// Locks the instance for writing as a `T`, or `None` when it is not a `T`.
    pub fn write_as<T: Value>(&self) -> Option<MappedRwLockWriteGuard<'_, T>> {
        RwLockWriteGuard::try_map(self.0.write(), |v| v.as_any_mut().downcast_mut::<T>()).ok()
    }

    /// Whether the instance is a `T`.
    pub fn is<T: Value>(&self) -> bool {
        self.0.read().as_any().is::<T>()
    }

    /// The type id of the instance.
    pub fn ice_id(&self) -> &'static str {
        self.0.read().ice_id()
    }

    /// Whether both references designate the same instance.
    pub fn ptr_eq(&self, other: &ValueRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Empties every instance reachable from this one (this one included), dropping their
    /// members: the way to free a class graph with cycles, which reference counting never
    /// frees (see `Ice.AcceptClassCycles` in docs/runtime.md). Every reference into the graph,
    /// wherever it is held, then sees an empty instance of type `::Ice::Object`.
    pub fn clear_graph(&self) {
        for v in OutputStream::reachable_values(self) {
            v.clear();
        }
    }

    /// Replaces the instance held by the cell.
    pub(crate) fn set(&self, value: Box<dyn Value>) {
        *self.0.write() = value;
    }

    /// Empties the cell, dropping the instance it held (and with it the instance's own
    /// references, which breaks any cycle through this cell).
    pub(crate) fn clear(&self) {
        self.set(Box::new(UnsetValue));
    }

    /// The address of the cell, the identity of the instance in the stream's tables.
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }
}

impl PartialEq for ValueRef {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl Eq for ValueRef {}

impl std::hash::Hash for ValueRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.addr().hash(state);
    }
}

impl fmt::Debug for ValueRef {
    /// Prints the type and the address only: instance graphs may be cyclic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.try_read() {
            Some(v) => write!(f, "ValueRef({} @ {:#x})", v.ice_id(), self.addr()),
            None => write!(f, "ValueRef(<locked> @ {:#x})", self.addr()),
        }
    }
}

impl SliceType for Option<ValueRef> {
    const MIN_WIRE_SIZE: usize = 1;
    const TAG_FORMAT: OptionalFormat = OptionalFormat::Class;
    fn encode(&self, os: &mut OutputStream) {
        os.write_value(self);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        is.read_value()
    }
}

/// The content of a cell whose instance has not been decoded yet.
#[derive(Debug)]
struct UnsetValue;

impl Value for UnsetValue {
    fn ice_id(&self) -> &'static str {
        "::Ice::Object"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.fail(Error::marshal(
            "cannot encode a class instance that was never decoded",
        ));
    }
    fn decode_value(&mut self, _is: &mut InputStream<'_>) -> Result<(), Error> {
        Err(Error::marshal("no value to decode into"))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A slice that the decoder skipped because it did not know its type (sliced format).
#[derive(Clone, Debug, PartialEq)]
pub struct SliceInfo {
    /// The slice's type id ("" when it carried a compact id).
    pub type_id: String,
    /// The slice's compact id, if it carried one.
    pub compact_id: Option<i32>,
    /// The slice's members, optional members included, without the end marker.
    pub bytes: Vec<u8>,
    /// The instances of the slice's indirection table.
    pub instances: Vec<ValueRef>,
    /// Whether the slice had optional members.
    pub has_optional_members: bool,
    /// Whether this was the least-derived slice.
    pub is_last_slice: bool,
}

/// An instance of which no slice type is known here (sliced format). Its slices are kept and
/// written back unchanged, so it can be forwarded. Only the sliced format can carry them: written
/// in the compact format, the slices lose their indirection tables.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownSlicedValue {
    /// The most-derived type id (the compact id in decimal when only that was sent).
    pub unknown_type_id: String,
    /// The slices, most-derived first.
    pub slices: Vec<SliceInfo>,
}

impl Value for UnknownSlicedValue {
    /// Always `::Ice::UnknownSlicedValue`; the real type id is in `unknown_type_id`.
    fn ice_id(&self) -> &'static str {
        "::Ice::UnknownSlicedValue"
    }
    fn encode_value(&self, os: &mut OutputStream) {
        os.write_preserved_slices(&self.slices);
    }
    fn decode_value(&mut self, _is: &mut InputStream<'_>) -> Result<(), Error> {
        Err(Error::marshal(
            "an unknown sliced value is never decoded by a factory",
        ))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Registration of a class so that decoding can create it from its type id or compact id.
/// Generated code submits one per class with `inventory::submit!`.
#[derive(Debug)]
pub struct ValueFactory {
    /// The class's type id (`::M::C`).
    pub type_id: &'static str,
    /// The compact id of `class C(n)`.
    pub compact_id: Option<i32>,
    /// Creates a default instance, which is then decoded in place.
    pub create: fn() -> Box<dyn Value>,
}

inventory::collect!(ValueFactory);

struct ValueRegistry {
    by_type_id: HashMap<&'static str, &'static ValueFactory>,
    by_compact_id: HashMap<i32, &'static ValueFactory>,
}

fn value_registry() -> &'static ValueRegistry {
    static REGISTRY: OnceLock<ValueRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut by_type_id = HashMap::new();
        let mut by_compact_id = HashMap::new();
        for f in inventory::iter::<ValueFactory> {
            by_type_id.insert(f.type_id, f);
            if let Some(id) = f.compact_id {
                by_compact_id.insert(id, f);
            }
        }
        ValueRegistry {
            by_type_id,
            by_compact_id,
        }
    })
}

/// The factory registered for a type id.
pub fn find_value_factory(type_id: &str) -> Option<&'static ValueFactory> {
    value_registry().by_type_id.get(type_id).copied()
}

/// The factory registered for a compact id.
pub fn find_value_factory_by_compact_id(compact_id: i32) -> Option<&'static ValueFactory> {
    value_registry().by_compact_id.get(&compact_id).copied()
}
