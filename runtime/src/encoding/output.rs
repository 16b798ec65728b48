//! The writing half of the encoding: [`OutputStream`].

use std::collections::HashMap;

use super::types::{Encodable, SliceType};
use super::value::{SliceInfo, ValueRef};
use super::{EncodingVersion, FormatType, OptionalFormat, UserException};
use crate::error::Error;

/// Slice flag bits shared by classes and exceptions (ice-wire.md §13.1).
pub(crate) mod flags {
    pub const TYPE_ID_STRING: u8 = 0x01;
    pub const TYPE_ID_INDEX: u8 = 0x02;
    pub const TYPE_ID_COMPACT: u8 = 0x03;
    pub const TYPE_ID_MASK: u8 = 0x03;
    pub const HAS_OPTIONAL_MEMBERS: u8 = 0x04;
    pub const HAS_INDIRECTION_TABLE: u8 = 0x08;
    pub const HAS_SLICE_SIZE: u8 = 0x10;
    pub const IS_LAST_SLICE: u8 = 0x20;
    pub const OPTIONAL_END_MARKER: u8 = 0xFF;
}

/// The type id of the root slice of every 1.0 class instance.
pub(crate) const ICE_OBJECT_TYPE_ID: &str = "::Ice::Object";

/// Whether an instance being written is a class instance or an exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SliceKind {
    Value,
    Exception,
}

/// The state of a class instance or exception being written.
#[derive(Debug)]
struct WriteInstance {
    kind: SliceKind,
    first_slice: bool,
    in_slice: bool,
    flags_pos: usize,
    flags: u8,
    size_pos: Option<usize>,
    indirection: Vec<ValueRef>,
    indirection_map: HashMap<usize, usize>,
}

impl WriteInstance {
    fn new(kind: SliceKind) -> Self {
        WriteInstance {
            kind,
            first_slice: true,
            in_slice: false,
            flags_pos: 0,
            flags: 0,
            size_pos: None,
            indirection: Vec::new(),
            indirection_map: HashMap::new(),
        }
    }
}

/// Class bookkeeping of one encapsulation: instance ids, type-id indexes, pending instances.
#[derive(Debug, Default)]
struct WriteClasses {
    /// Instances written (1.1) or registered (1.0), by address, with their id.
    ids: HashMap<usize, (i32, ValueRef)>,
    /// The last instance id given out.
    last_id: i32,
    type_ids: HashMap<String, usize>,
    /// 1.0: instances referenced and not written yet, in id order.
    pending: Vec<(i32, ValueRef)>,
    stack: Vec<WriteInstance>,
}

impl WriteClasses {
    fn new(encoding: EncodingVersion) -> Self {
        WriteClasses {
            // 1.1 instance ids start at 2 (1 means "inline instance follows"), 1.0 ids at 1.
            last_id: if encoding.is_1_0() { 0 } else { 1 },
            ..Default::default()
        }
    }
}

/// An encapsulation that has been started and not yet ended.
#[derive(Debug)]
struct OpenEncaps {
    /// Position of the encapsulation's int32 size.
    start: usize,
    encoding: EncodingVersion,
    format: FormatType,
    classes: WriteClasses,
}

/// A growable buffer that encodes values in one encoding (1.0 or 1.1) and class format.
///
/// Writing never fails on the spot: a request that cannot be encoded (a size over `i32::MAX`, an
/// unbalanced `end_encapsulation`) is remembered and reported by [`OutputStream::finish`].
#[derive(Debug)]
pub struct OutputStream {
    buf: Vec<u8>,
    encoding: EncodingVersion,
    format: FormatType,
    encaps: Vec<OpenEncaps>,
    classes: WriteClasses,
    error: Option<Error>,
}

impl OutputStream {
    /// An empty stream whose data outside any encapsulation uses `encoding` and the compact format.
    pub fn new(encoding: EncodingVersion) -> Self {
        Self::with_format(encoding, FormatType::Compact)
    }

    /// An empty stream with the given encoding and class/exception format.
    pub fn with_format(encoding: EncodingVersion, format: FormatType) -> Self {
        OutputStream {
            buf: Vec::new(),
            encoding,
            format,
            encaps: Vec::new(),
            classes: WriteClasses::new(encoding),
            error: None,
        }
    }

    /// The encoding of the data being written now (that of the innermost open encapsulation).
    pub fn encoding(&self) -> EncodingVersion {
        self.encoding
    }

    /// The class and exception format used now.
    pub fn format(&self) -> FormatType {
        self.format
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded bytes, or the first error met while writing (including encapsulations left open).
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.encaps.is_empty() {
            return Err(Error::marshal(
                "an encapsulation was started and never ended",
            ));
        }
        Ok(self.buf)
    }

    /// Records the first error; later writes go on so that positions stay consistent.
    pub(crate) fn fail(&mut self, error: Error) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Writes any encodable value: `os.write(&3i32)`, `os.write("text")`, `os.write(&vec)`.
    pub fn write<T: Encodable + ?Sized>(&mut self, value: &T) {
        value.encode_to(self);
    }

    /// Appends raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Writes a byte.
    pub fn write_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a bool as one byte, 0 or 1.
    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// Writes a short (little-endian).
    pub fn write_i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes an int (little-endian).
    pub fn write_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a long (little-endian).
    pub fn write_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a float (IEEE-754 binary32, little-endian).
    pub fn write_f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a double (IEEE-754 binary64, little-endian).
    pub fn write_f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a size: one byte below 255, else `0xFF` and an int32.
    pub fn write_size(&mut self, n: usize) {
        if n < 255 {
            self.buf.push(n as u8);
        } else {
            let v = match i32::try_from(n) {
                Ok(v) => v,
                Err(_) => {
                    self.fail(Error::marshal(format!("size {n} does not fit in an int32")));
                    i32::MAX
                }
            };
            self.buf.push(0xFF);
            self.write_i32(v);
        }
    }

    /// Writes a string: its UTF-8 byte count as a size, then the bytes.
    pub fn write_string(&mut self, s: &str) {
        self.write_size(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Writes an enumerator: a size in 1.1; in 1.0 a byte, short or int chosen from `max_value`.
    pub fn write_enum(&mut self, value: i32, max_value: i32) {
        if self.encoding.is_1_0() {
            if max_value < 127 {
                self.write_u8(value as u8);
            } else if max_value < 32767 {
                self.write_i16(value as i16);
            } else {
                self.write_i32(value);
            }
        } else if value < 0 {
            self.fail(Error::marshal(format!("negative enumerator {value}")));
            self.write_size(0);
        } else {
            self.write_size(value as usize);
        }
    }

    /// Overwrites four bytes at `pos` with an int32 (for sizes known only afterwards).
    pub fn rewrite_i32(&mut self, pos: usize, v: i32) {
        match self.buf.get_mut(pos..pos + 4) {
            Some(dst) => dst.copy_from_slice(&v.to_le_bytes()),
            None => self.fail(Error::marshal(format!("rewrite at {pos} is out of bounds"))),
        }
    }

    /// Overwrites one byte at `pos`.
    pub(crate) fn rewrite_u8(&mut self, pos: usize, v: u8) {
        match self.buf.get_mut(pos) {
            Some(b) => *b = v,
            None => self.fail(Error::marshal(format!("rewrite at {pos} is out of bounds"))),
        }
    }

    /// Inserts bytes at `pos`, moving what follows.
    pub(crate) fn insert_bytes(&mut self, pos: usize, bytes: &[u8]) {
        if pos > self.buf.len() {
            self.fail(Error::marshal(format!("insert at {pos} is out of bounds")));
            return;
        }
        self.buf.splice(pos..pos, bytes.iter().copied());
    }

    /// Starts an encapsulation whose contents use `encoding` and `format`; close it with
    /// [`OutputStream::end_encapsulation`].
    pub fn start_encapsulation(&mut self, encoding: EncodingVersion, format: FormatType) {
        if !encoding.is_supported() {
            self.fail(Error::UnsupportedEncoding(encoding.to_string()));
        }
        let classes = std::mem::replace(&mut self.classes, WriteClasses::new(encoding));
        self.encaps.push(OpenEncaps {
            start: self.buf.len(),
            encoding: self.encoding,
            format: self.format,
            classes,
        });
        self.write_i32(0);
        self.write_u8(encoding.major);
        self.write_u8(encoding.minor);
        self.encoding = encoding;
        self.format = format;
    }

    /// Ends the innermost encapsulation and writes its size.
    pub fn end_encapsulation(&mut self) {
        let Some(open) = self.encaps.pop() else {
            self.fail(Error::marshal(
                "end_encapsulation without start_encapsulation",
            ));
            return;
        };
        let size = self.buf.len() - open.start;
        match i32::try_from(size) {
            Ok(size) => self.rewrite_i32(open.start, size),
            Err(_) => self.fail(Error::MemoryLimit(format!(
                "encapsulation of {size} bytes does not fit in an int32"
            ))),
        }
        if !self.classes.pending.is_empty() {
            self.fail(Error::marshal(
                "class instances left unwritten: call write_pending_values after the last parameter",
            ));
        }
        self.encoding = open.encoding;
        self.format = open.format;
        self.classes = open.classes;
    }

    /// Writes an empty encapsulation (`06000000` and the version).
    pub fn write_empty_encapsulation(&mut self, encoding: EncodingVersion) {
        self.write_i32(6);
        self.write_u8(encoding.major);
        self.write_u8(encoding.minor);
    }

    /// Writes an encapsulation around already-encoded contents.
    pub fn write_encapsulation(&mut self, encoding: EncodingVersion, body: &[u8]) {
        match i32::try_from(body.len() + 6) {
            Ok(size) => self.write_i32(size),
            Err(_) => {
                self.fail(Error::MemoryLimit(format!(
                    "encapsulation of {} bytes does not fit in an int32",
                    body.len()
                )));
                self.write_i32(0);
            }
        }
        self.write_u8(encoding.major);
        self.write_u8(encoding.minor);
        self.write_bytes(body);
    }

    /// Writes the tag byte (and, for tags of 30 and more, the tag as a size) of an optional.
    fn write_optional_header(&mut self, tag: i32, format: OptionalFormat) {
        let code = format as u8;
        if (0..30).contains(&tag) {
            self.write_u8(((tag as u8) << 3) | code);
        } else {
            self.write_u8(0xF0 | code);
            match usize::try_from(tag) {
                Ok(t) => self.write_size(t),
                Err(_) => {
                    self.fail(Error::marshal(format!("negative tag {tag}")));
                    self.write_size(0);
                }
            }
        }
        if let Some(cur) = self.classes.stack.last_mut() {
            if cur.in_slice {
                cur.flags |= flags::HAS_OPTIONAL_MEMBERS;
            }
        }
    }

    /// Writes an optional (tagged) value if it is set and the encoding is 1.1; does nothing
    /// otherwise.
    pub fn write_tagged<T: SliceType>(&mut self, tag: i32, value: &Option<T>) {
        self.write_tagged_ref(tag, value.as_ref());
    }

    /// Writes an optional class or proxy, whose Rust type is a single `Option` (unset and null
    /// are both `None`, so `None` writes nothing): `os.write_tagged_nullable(1, &self.node)`.
    pub fn write_tagged_nullable<T>(&mut self, tag: i32, value: &Option<T>)
    where
        Option<T>: SliceType,
    {
        if value.is_some() {
            self.write_tagged_ref::<Option<T>>(tag, Some(value));
        }
    }

    /// [`OutputStream::write_tagged`] for borrowed values: `Option<&T>`, where `T` may also be
    /// `str` or `[E]` (optional parameters are passed as `Option<&str>`, `Option<&[E]>`).
    pub fn write_tagged_ref<T: Encodable + ?Sized>(&mut self, tag: i32, value: Option<&T>) {
        let Some(value) = value else { return };
        if self.encoding.is_1_0() {
            return;
        }
        self.write_optional_header(tag, T::TAG_FORMAT);
        match T::TAG_FORMAT {
            OptionalFormat::VSize if !T::OPTIONAL_SELF_SIZED => {
                let start = self.buf.len();
                value.encode_to(self);
                let len = self.buf.len() - start;
                let mut prefix = OutputStream::new(self.encoding);
                prefix.write_size(len);
                self.insert_bytes(start, &prefix.buf);
            }
            OptionalFormat::FSize => {
                let start = self.buf.len();
                self.write_i32(0);
                value.encode_to(self);
                let len = self.buf.len() - start - 4;
                match i32::try_from(len) {
                    Ok(len) => self.rewrite_i32(start, len),
                    Err(_) => self.fail(Error::marshal("optional value too large")),
                }
            }
            _ => value.encode_to(self),
        }
    }

    /// Writes a class reference: inline instance or instance id in 1.1 (an indirection-table
    /// index inside a sliced-format slice); a negative id in 1.0, with the instance itself
    /// written later by [`OutputStream::write_pending_values`].
    pub fn write_value(&mut self, value: &Option<ValueRef>) {
        let Some(v) = value else {
            if self.encoding.is_1_0() {
                self.write_i32(0);
            } else {
                self.write_size(0);
            }
            return;
        };
        if self.encoding.is_1_0() {
            let id = self.register_pending(v);
            self.write_i32(-id);
            return;
        }
        let sliced = self.format == FormatType::Sliced;
        if let Some(cur) = self.classes.stack.last_mut() {
            if sliced && cur.in_slice {
                let key = v.addr();
                let index = match cur.indirection_map.get(&key) {
                    Some(i) => *i,
                    None => {
                        cur.indirection.push(v.clone());
                        let i = cur.indirection.len();
                        cur.indirection_map.insert(key, i);
                        i
                    }
                };
                self.write_size(index);
                return;
            }
        }
        self.write_instance(v);
    }

    /// 1.0: the id of an instance, registering it to be written with the pending instances.
    fn register_pending(&mut self, v: &ValueRef) -> i32 {
        let key = v.addr();
        if let Some((id, _)) = self.classes.ids.get(&key) {
            return *id;
        }
        self.classes.last_id = self.classes.last_id.saturating_add(1);
        let id = self.classes.last_id;
        self.classes.ids.insert(key, (id, v.clone()));
        self.classes.pending.push((id, v.clone()));
        id
    }

    /// 1.1: writes an instance inline (`01` then its slices) or its id when already written.
    fn write_instance(&mut self, v: &ValueRef) {
        let key = v.addr();
        if let Some((id, _)) = self.classes.ids.get(&key) {
            let id = *id as usize;
            self.write_size(id);
            return;
        }
        self.classes.last_id = self.classes.last_id.saturating_add(1);
        let id = self.classes.last_id;
        self.classes.ids.insert(key, (id, v.clone()));
        self.write_size(1);
        self.encode_instance(v);
    }

    /// Writes the slices of an instance.
    fn encode_instance(&mut self, v: &ValueRef) {
        self.classes
            .stack
            .push(WriteInstance::new(SliceKind::Value));
        match v.try_read() {
            Some(guard) => {
                // Slices of unknown more-derived types kept by a ["preserve-slice"] class go
                // first, as they came; only the sliced format can carry them.
                if !self.encoding.is_1_0() && self.format == FormatType::Sliced {
                    if let Some(slices) = guard.preserved_slices() {
                        self.write_preserved_slices(slices);
                    }
                }
                guard.encode_value(self)
            }
            None => self.fail(Error::marshal("class instance is locked for writing")),
        }
        if self.encoding.is_1_0() {
            // Every 1.0 instance ends with the `::Ice::Object` slice and its empty facet map.
            self.start_slice_dyn(ICE_OBJECT_TYPE_ID, None, false);
            self.write_size(0);
            self.end_slice();
        }
        self.classes.stack.pop();
    }

    /// Every instance reachable from `root` (itself included), found by writing the graph in
    /// the sliced format, which also follows the instances of preserved slices.
    pub(crate) fn reachable_values(root: &ValueRef) -> Vec<ValueRef> {
        let mut os = OutputStream::with_format(EncodingVersion::V1_1, FormatType::Sliced);
        os.write_value(&Some(root.clone()));
        os.classes.ids.into_values().map(|(_, v)| v).collect()
    }

    /// Writes the class instances referenced so far and not yet written (encoding 1.0), in
    /// rounds, then the terminating `00`. Call it after the last parameter of any parameter list
    /// that contains a class; it does nothing in 1.1.
    pub fn write_pending_values(&mut self) {
        if !self.encoding.is_1_0() {
            return;
        }
        while !self.classes.pending.is_empty() {
            let round = std::mem::take(&mut self.classes.pending);
            self.write_size(round.len());
            for (id, v) in round {
                self.write_i32(id);
                self.encode_instance(&v);
            }
        }
        self.write_size(0);
    }

    /// Writes a user exception: its slices (and in 1.0 the `usesClasses` byte and pending
    /// instances).
    pub fn write_exception(&mut self, ex: &dyn UserException) {
        let uses_classes = self.encoding.is_1_0() && ex.uses_classes();
        if self.encoding.is_1_0() {
            self.write_bool(uses_classes);
        }
        self.classes
            .stack
            .push(WriteInstance::new(SliceKind::Exception));
        ex.encode_exception(self);
        self.classes.stack.pop();
        if uses_classes {
            self.write_pending_values();
        }
    }

    /// Starts a slice of the class instance or exception being written. `compact_id` is used
    /// for classes in 1.1 only; `last` marks the least-derived slice.
    pub fn start_slice(&mut self, type_id: &'static str, compact_id: Option<i32>, last: bool) {
        self.start_slice_dyn(type_id, compact_id, last);
    }

    pub(crate) fn start_slice_dyn(&mut self, type_id: &str, compact_id: Option<i32>, last: bool) {
        let Some(cur) = self.classes.stack.last() else {
            self.fail(Error::marshal(
                "start_slice outside a class instance or exception",
            ));
            return;
        };
        let kind = cur.kind;
        let first = cur.first_slice;
        let sliced = self.format == FormatType::Sliced;
        let flags_pos = self.buf.len();
        let mut f = 0u8;
        let mut size_pos = None;
        if self.encoding.is_1_0() {
            if kind == SliceKind::Value {
                match self.classes.type_ids.get(type_id) {
                    Some(i) => {
                        let i = *i;
                        self.write_bool(true);
                        self.write_size(i);
                    }
                    None => {
                        let i = self.classes.type_ids.len() + 1;
                        self.classes.type_ids.insert(type_id.to_owned(), i);
                        self.write_bool(false);
                        self.write_string(type_id);
                    }
                }
            } else {
                self.write_string(type_id);
            }
            size_pos = Some(self.buf.len());
            self.write_i32(0);
        } else {
            self.write_u8(0);
            if sliced {
                f |= flags::HAS_SLICE_SIZE;
            }
            if last {
                f |= flags::IS_LAST_SLICE;
            }
            if kind == SliceKind::Exception {
                self.write_string(type_id);
            } else if sliced || first {
                if let Some(id) = compact_id.filter(|id| *id >= 0) {
                    f |= flags::TYPE_ID_COMPACT;
                    self.write_size(id as usize);
                } else if let Some(i) = self.classes.type_ids.get(type_id) {
                    let i = *i;
                    f |= flags::TYPE_ID_INDEX;
                    self.write_size(i);
                } else {
                    let i = self.classes.type_ids.len() + 1;
                    self.classes.type_ids.insert(type_id.to_owned(), i);
                    f |= flags::TYPE_ID_STRING;
                    self.write_string(type_id);
                }
            }
            if sliced {
                size_pos = Some(self.buf.len());
                self.write_i32(0);
            }
        }
        if let Some(cur) = self.classes.stack.last_mut() {
            cur.first_slice = false;
            cur.in_slice = true;
            cur.flags_pos = flags_pos;
            cur.flags = f;
            cur.size_pos = size_pos;
            cur.indirection.clear();
            cur.indirection_map.clear();
        }
    }

    /// Ends the current slice: writes the optional end marker, the slice size, the indirection
    /// table (sliced format) and the flags.
    pub fn end_slice(&mut self) {
        let Some(cur) = self.classes.stack.last_mut() else {
            self.fail(Error::marshal(
                "end_slice outside a class instance or exception",
            ));
            return;
        };
        if !cur.in_slice {
            self.fail(Error::marshal("end_slice without start_slice"));
            return;
        }
        cur.in_slice = false;
        let mut f = cur.flags;
        let flags_pos = cur.flags_pos;
        let size_pos = cur.size_pos;
        let table = std::mem::take(&mut cur.indirection);
        cur.indirection_map.clear();
        let v10 = self.encoding.is_1_0();
        if !v10 && f & flags::HAS_OPTIONAL_MEMBERS != 0 {
            self.write_u8(flags::OPTIONAL_END_MARKER);
        }
        if let Some(pos) = size_pos {
            let size = self.buf.len() - pos;
            match i32::try_from(size) {
                Ok(size) => self.rewrite_i32(pos, size),
                Err(_) => self.fail(Error::marshal("slice too large")),
            }
        }
        if !v10 {
            if !table.is_empty() {
                f |= flags::HAS_INDIRECTION_TABLE;
                self.write_size(table.len());
                for v in &table {
                    self.write_instance(v);
                }
            }
            self.rewrite_u8(flags_pos, f);
        }
    }

    /// Writes the preserved slices of a `["preserve-slice"]` exception (generated code calls it
    /// first in `encode_exception`): only encoding 1.1 in the sliced format can carry them, so
    /// otherwise nothing is written.
    pub fn write_sliced_data(&mut self, slices: &[SliceInfo]) {
        if !self.encoding.is_1_0() && self.format == FormatType::Sliced {
            self.write_preserved_slices(slices);
        }
    }

    /// Writes preserved slices of an instance whose type was unknown to the receiver that
    /// decoded it, with their indirection tables, so that it can be forwarded unchanged.
    pub(crate) fn write_preserved_slices(&mut self, slices: &[SliceInfo]) {
        for slice in slices {
            self.start_slice_dyn(&slice.type_id, slice.compact_id, slice.is_last_slice);
            self.write_bytes(&slice.bytes);
            let sliced = self.format == FormatType::Sliced;
            if let Some(cur) = self.classes.stack.last_mut() {
                if slice.has_optional_members {
                    cur.flags |= flags::HAS_OPTIONAL_MEMBERS;
                }
                if sliced {
                    for v in &slice.instances {
                        cur.indirection.push(v.clone());
                        let i = cur.indirection.len();
                        cur.indirection_map.insert(v.addr(), i);
                    }
                }
            }
            self.end_slice();
        }
    }
}
