//! The reading half of the encoding: [`InputStream`].

use std::collections::{HashMap, HashSet};

use super::exception::OperationError;
use super::output::{ICE_OBJECT_TYPE_ID, SliceKind, flags};
use super::types::SliceType;
use super::value::{
    SliceInfo, UnknownSlicedValue, Value, ValueRef, find_value_factory,
    find_value_factory_by_compact_id,
};
use super::{EncodingVersion, OptionalFormat};
use crate::error::Error;

/// The deepest class graph a decoder accepts (Ice's `Ice.ClassGraphDepthMax` default).
pub const CLASS_GRAPH_DEPTH_MAX: usize = 100;

/// The reason of the error that refuses a class graph with a cycle, as ZeroC's
/// `MarshalException` gives it.
pub const CLASS_CYCLE_REFUSED: &str = "cycle detected during Value unmarshaling";

/// The state of a class instance or exception being read.
#[derive(Debug)]
struct ReadInstance {
    kind: SliceKind,
    /// The instance's id in the encapsulation (0 for an exception).
    id: i32,
    skip_first_slice: bool,
    /// Whether a slice header has been read for this instance.
    started: bool,
    flags: u8,
    type_id: String,
    compact_id: Option<i32>,
    /// The slice size (including its own 4 bytes), or 0 without one.
    size: usize,
    /// Position of the slice's first member byte.
    slice_start: usize,
    /// The slice's indirection table, read ahead of its members.
    table: Vec<ValueRef>,
    /// Position just after the indirection table.
    table_end: usize,
}

impl ReadInstance {
    fn new(kind: SliceKind) -> Self {
        ReadInstance {
            kind,
            id: 0,
            skip_first_slice: false,
            started: false,
            flags: 0,
            type_id: String::new(),
            compact_id: None,
            size: 0,
            slice_start: 0,
            table: Vec::new(),
            table_end: 0,
        }
    }

    /// The type id of the slice, or its compact id in decimal.
    fn type_name(&self) -> String {
        match self.compact_id {
            Some(id) => id.to_string(),
            None => self.type_id.clone(),
        }
    }
}

/// Class bookkeeping of one encapsulation.
#[derive(Debug, Default)]
struct ReadClasses {
    instances: HashMap<i32, ValueRef>,
    /// Ids referenced whose instance has not been read yet.
    unfilled: HashSet<i32>,
    last_id: i32,
    type_ids: Vec<String>,
    stack: Vec<ReadInstance>,
    /// Depth in the class graph of the instance being decoded (0: outside any instance).
    depth: usize,
    /// 1.0: for each referenced instance not read yet, the deepest depth it was referenced
    /// from; the instance sits one level below.
    referenced_from: HashMap<i32, usize>,
    /// Class references read from within an instance (referencing id → referenced id), kept
    /// when cycles are refused, for [`ReadClasses::check_acyclic`].
    edges: Vec<(i32, i32)>,
    /// 1.1: a reference to an instance not read yet was seen (Ice never sends one, but the
    /// eager check cannot see a cycle through it), so the edges must be checked in full.
    forward_reference: bool,
}

impl ReadClasses {
    fn new(encoding: EncodingVersion) -> Self {
        ReadClasses {
            last_id: if encoding.is_1_0() { 0 } else { 1 },
            ..Default::default()
        }
    }

    /// Empties every instance read so far; see [`InputStream::discard_values`].
    fn discard(&mut self) {
        for cell in self.instances.values() {
            cell.clear();
        }
        self.instances.clear();
        self.unfilled.clear();
        self.edges.clear();
        for cur in &mut self.stack {
            cur.table.clear();
        }
    }

    /// The id of the innermost class instance being read (0 outside any instance, or in an
    /// exception's own members).
    fn current_instance(&self) -> i32 {
        self.stack.last().map_or(0, |cur| cur.id)
    }

    /// Records that the instance being read references instance `to`; refuses a reference of
    /// an instance to itself at once (in 1.1 the caller refuses every back edge).
    fn add_edge(&mut self, to: i32) -> Result<(), Error> {
        let from = self.current_instance();
        if from == 0 {
            return Ok(());
        }
        if from == to {
            return Err(Error::marshal(CLASS_CYCLE_REFUSED));
        }
        self.edges.push((from, to));
        Ok(())
    }

    /// Fails when the references recorded so far form a cycle (an iterative depth-first
    /// search, so that long chains cannot exhaust the stack), then forgets them.
    fn check_acyclic(&mut self) -> Result<(), Error> {
        let edges = std::mem::take(&mut self.edges);
        self.forward_reference = false;
        if edges.is_empty() {
            return Ok(());
        }
        let mut adjacency: HashMap<i32, Vec<i32>> = HashMap::new();
        for &(from, to) in &edges {
            adjacency.entry(from).or_default().push(to);
        }
        // 1: on the current path; 2: done.
        let mut state: HashMap<i32, u8> = HashMap::with_capacity(adjacency.len());
        let mut path: Vec<(i32, usize)> = Vec::new();
        for &start in adjacency.keys() {
            if state.contains_key(&start) {
                continue;
            }
            state.insert(start, 1);
            path.push((start, 0));
            while let Some(&mut (node, ref mut next)) = path.last_mut() {
                let successors = adjacency.get(&node).map_or(&[][..], Vec::as_slice);
                match successors.get(*next) {
                    Some(&succ) => {
                        *next += 1;
                        match state.get(&succ) {
                            Some(1) => return Err(Error::marshal(CLASS_CYCLE_REFUSED)),
                            Some(_) => {}
                            None => {
                                state.insert(succ, 1);
                                path.push((succ, 0));
                            }
                        }
                    }
                    None => {
                        state.insert(node, 2);
                        path.pop();
                    }
                }
            }
        }
        Ok(())
    }

    /// The cell of instance `id`, created empty on first reference.
    fn cell(&mut self, id: i32) -> ValueRef {
        if let Some(v) = self.instances.get(&id) {
            return v.clone();
        }
        let v = ValueRef::unset();
        self.instances.insert(id, v.clone());
        self.unfilled.insert(id);
        v
    }
}

/// An encapsulation being read.
#[derive(Debug)]
struct ReadEncaps {
    /// One past its last byte.
    end: usize,
    /// The limit, encoding and class state in force before it started.
    outer_end: usize,
    outer_encoding: EncodingVersion,
    outer_classes: ReadClasses,
}

/// A cursor over received bytes that decodes values in encoding 1.0 or 1.1.
///
/// Every read is bounds-checked against the end of the innermost encapsulation, and every count
/// is checked against the bytes left before anything is allocated: no input makes it panic.
#[derive(Debug)]
pub struct InputStream<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Reads may not go past this position (the end of the innermost encapsulation).
    end: usize,
    encoding: EncodingVersion,
    encaps: Vec<ReadEncaps>,
    classes: ReadClasses,
    /// Slices of the exception being read whose types were not known, most-derived first.
    exception_slices: Vec<SliceInfo>,
    /// `Ice.AcceptClassCycles`: whether class graphs with cycles are accepted.
    accept_class_cycles: bool,
}

pub(crate) fn out_of_bounds() -> Error {
    Error::marshal("unmarshal out of bounds: the data ends too early")
}

impl<'a> InputStream<'a> {
    /// A stream over `buf` whose data outside any encapsulation uses `encoding`.
    pub fn new(buf: &'a [u8], encoding: EncodingVersion) -> Self {
        InputStream {
            buf,
            pos: 0,
            end: buf.len(),
            encoding,
            encaps: Vec::new(),
            classes: ReadClasses::new(encoding),
            exception_slices: Vec::new(),
            accept_class_cycles: false,
        }
    }

    /// Whether class graphs with cycles are accepted (Ice's `Ice.AcceptClassCycles`; refused
    /// by default). A refused cycle fails decoding with [`Error::Marshal`] and the reason
    /// [`CLASS_CYCLE_REFUSED`], in both encodings; typed invocations and dispatch set this from
    /// their communicator. Reference counting never frees a cycle: whoever accepts one must
    /// break it (or call [`ValueRef::clear_graph`]) to free it.
    pub fn set_accept_class_cycles(&mut self, accept: bool) {
        self.accept_class_cycles = accept;
    }

    /// Whether class graphs with cycles are accepted.
    pub fn accept_class_cycles(&self) -> bool {
        self.accept_class_cycles
    }

    /// The encoding of the data being read now (that of the innermost encapsulation).
    pub fn encoding(&self) -> EncodingVersion {
        self.encoding
    }

    /// The read position, from the start of the buffer.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left before the end of the innermost encapsulation (or of the buffer).
    pub fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// Whether the innermost encapsulation (or the buffer) has been read to its end.
    pub fn is_at_end(&self) -> bool {
        self.pos >= self.end
    }

    /// The bytes not read yet, up to the end of the innermost encapsulation.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    pub(crate) fn set_pos(&mut self, pos: usize) -> Result<(), Error> {
        if pos > self.end {
            return Err(out_of_bounds());
        }
        self.pos = pos;
        Ok(())
    }

    /// Reads a value of any [`SliceType`]: `is.read::<String>()?`.
    pub fn read<T: SliceType>(&mut self) -> Result<T, Error> {
        T::decode(self)
    }

    /// Takes the next `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(out_of_bounds());
        }
        let bytes = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(out_of_bounds)?;
        self.pos += n;
        Ok(bytes)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.read_bytes(n).map(|_| ())
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.read_bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a byte.
    pub fn read_u8(&mut self) -> Result<u8, Error> {
        Ok(self.read_array::<1>()?[0])
    }

    /// Reads a bool (any non-zero byte is true, as Ice reads it).
    pub fn read_bool(&mut self) -> Result<bool, Error> {
        Ok(self.read_u8()? != 0)
    }

    /// Reads a short.
    pub fn read_i16(&mut self) -> Result<i16, Error> {
        Ok(i16::from_le_bytes(self.read_array()?))
    }

    /// Reads an int.
    pub fn read_i32(&mut self) -> Result<i32, Error> {
        Ok(i32::from_le_bytes(self.read_array()?))
    }

    /// Reads a long.
    pub fn read_i64(&mut self) -> Result<i64, Error> {
        Ok(i64::from_le_bytes(self.read_array()?))
    }

    /// Reads a float.
    pub fn read_f32(&mut self) -> Result<f32, Error> {
        Ok(f32::from_le_bytes(self.read_array()?))
    }

    /// Reads a double.
    pub fn read_f64(&mut self) -> Result<f64, Error> {
        Ok(f64::from_le_bytes(self.read_array()?))
    }

    /// Reads a size (one byte, or `0xFF` and a non-negative int32).
    pub fn read_size(&mut self) -> Result<usize, Error> {
        let b = self.read_u8()?;
        if b < 255 {
            return Ok(usize::from(b));
        }
        let v = self.read_i32()?;
        usize::try_from(v).map_err(|_| Error::marshal(format!("negative size {v}")))
    }

    /// Reads the element count of a container whose elements occupy at least `min_wire_size`
    /// bytes each, and refuses counts the remaining bytes cannot hold.
    pub fn read_count(&mut self, min_wire_size: usize) -> Result<usize, Error> {
        let n = self.read_size()?;
        self.check_count(n, min_wire_size)?;
        Ok(n)
    }

    /// Fails when `n` elements of at least `min_wire_size` bytes cannot fit in the bytes left.
    pub fn check_count(&self, n: usize, min_wire_size: usize) -> Result<(), Error> {
        match n.checked_mul(min_wire_size.max(1)) {
            Some(needed) if needed <= self.remaining() => Ok(()),
            _ => Err(out_of_bounds()),
        }
    }

    /// Reads a string; bytes that are not UTF-8 are a marshal error.
    pub fn read_string(&mut self) -> Result<String, Error> {
        let n = self.read_size()?;
        let bytes = self.read_bytes(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(Error::marshal(format!("string is not valid UTF-8: {e}"))),
        }
    }

    /// Reads an enumerator written with [`super::OutputStream::write_enum`] for the same `max_value`.
    pub fn read_enum(&mut self, max_value: i32) -> Result<i32, Error> {
        if self.encoding.is_1_0() {
            if max_value < 127 {
                Ok(i32::from(self.read_u8()?))
            } else if max_value < 32767 {
                Ok(i32::from(self.read_i16()?))
            } else {
                self.read_i32()
            }
        } else {
            let v = self.read_size()?;
            i32::try_from(v).map_err(|_| Error::marshal(format!("enumerator {v} out of range")))
        }
    }

    /// Reads an encapsulation header and enters it; its contents are read with its encoding.
    /// Refuses a size that does not fit and encodings other than 1.0 and 1.1.
    pub fn start_encapsulation(&mut self) -> Result<EncodingVersion, Error> {
        let start = self.pos;
        let (size, encoding) = self.read_encaps_header()?;
        if !encoding.is_supported() {
            return Err(Error::UnsupportedEncoding(encoding.to_string()));
        }
        let outer_classes = std::mem::replace(&mut self.classes, ReadClasses::new(encoding));
        self.encaps.push(ReadEncaps {
            end: start + size,
            outer_end: self.end,
            outer_encoding: self.encoding,
            outer_classes,
        });
        self.end = start + size;
        self.encoding = encoding;
        Ok(encoding)
    }

    /// Reads the size and version of an encapsulation and checks that it fits.
    fn read_encaps_header(&mut self) -> Result<(usize, EncodingVersion), Error> {
        let start = self.pos;
        let size = self.read_i32()?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s >= 6)
            .ok_or_else(|| Error::marshal(format!("invalid encapsulation size {size}")))?;
        if size > self.end.saturating_sub(start) {
            return Err(out_of_bounds());
        }
        let major = self.read_u8()?;
        let minor = self.read_u8()?;
        Ok((size, EncodingVersion { major, minor }))
    }

    /// Leaves the innermost encapsulation. In 1.1 unread optional values are skipped first;
    /// then the position must be at its end (1.0 tolerates one trailing byte, as Ice does).
    pub fn end_encapsulation(&mut self) -> Result<(), Error> {
        let Some(top) = self.encaps.last() else {
            return Err(Error::marshal(
                "end_encapsulation without start_encapsulation",
            ));
        };
        let end = top.end;
        if !self.encoding.is_1_0() {
            self.skip_optionals()?;
        }
        let ok = self.pos == end || (self.encoding.is_1_0() && self.pos + 1 == end);
        if !ok {
            return Err(Error::marshal(format!(
                "encapsulation not read to its end: {} byte(s) left",
                end.saturating_sub(self.pos)
            )));
        }
        self.check_instances_filled()?;
        // References read outside any instance's reach (an exception's members, for instance).
        self.check_forward_references()?;
        if let Some(top) = self.encaps.pop() {
            self.pos = top.end;
            self.end = top.outer_end;
            self.encoding = top.outer_encoding;
            self.classes = top.outer_classes;
        }
        Ok(())
    }

    /// Reads the encapsulation of a parameter list that should be empty, as Ice reads the
    /// parameters of an operation without in-parameters: in 1.1 its contents (for instance
    /// optional parameters this side does not know) are skipped; in 1.0 it must be empty.
    pub fn read_empty_encapsulation(&mut self) -> Result<EncodingVersion, Error> {
        let (size, encoding) = self.read_encaps_header()?;
        if !encoding.is_supported() {
            return Err(Error::UnsupportedEncoding(encoding.to_string()));
        }
        if encoding.is_1_0() && size != 6 {
            return Err(Error::marshal(format!(
                "1.0 encapsulation of {size} bytes where an empty one was expected"
            )));
        }
        self.skip(size - 6)?;
        Ok(encoding)
    }

    /// Skips a whole encapsulation without looking inside and returns its encoding.
    pub fn skip_encapsulation(&mut self) -> Result<EncodingVersion, Error> {
        let (_, encoding) = self.read_encapsulation()?;
        Ok(encoding)
    }

    /// Reads an encapsulation's contents with `read`: enters it, runs `read`, and checks that
    /// everything in it was read. When that fails, every class instance read so far is emptied
    /// ([`InputStream::discard_values`]), as typed invocations and dispatch need.
    pub(crate) fn read_encapsulated<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let result = (|| {
            self.start_encapsulation()?;
            let v = read(self)?;
            self.end_encapsulation()?;
            Ok(v)
        })();
        self.discard_on_error(result)
    }

    /// Reads a whole encapsulation as raw bytes: its encoding and its contents (after the
    /// 6-byte header). The version is not checked.
    pub fn read_encapsulation(&mut self) -> Result<(&'a [u8], EncodingVersion), Error> {
        let (size, encoding) = self.read_encaps_header()?;
        let body = self.read_bytes(size - 6)?;
        Ok((body, encoding))
    }

    /// Fails when a class reference was read whose instance never arrived.
    fn check_instances_filled(&self) -> Result<(), Error> {
        if self.classes.unfilled.is_empty() {
            Ok(())
        } else {
            Err(Error::marshal(
                "index for class received, but no instance in the encapsulation",
            ))
        }
    }

    /// Skips optional values up to and including an end marker `0xFF`, or to the end of the
    /// encapsulation.
    pub(crate) fn skip_optionals(&mut self) -> Result<(), Error> {
        while self.pos < self.end {
            let v = self.read_u8()?;
            if v == flags::OPTIONAL_END_MARKER {
                return Ok(());
            }
            if v >> 3 == 30 {
                self.read_size()?;
            }
            self.skip_optional(OptionalFormat::from_code(v))?;
        }
        Ok(())
    }

    /// Skips one optional value of the given format.
    fn skip_optional(&mut self, format: OptionalFormat) -> Result<(), Error> {
        match format {
            OptionalFormat::F1 => self.skip(1),
            OptionalFormat::F2 => self.skip(2),
            OptionalFormat::F4 => self.skip(4),
            OptionalFormat::F8 => self.skip(8),
            OptionalFormat::Size => self.read_size().map(|_| ()),
            OptionalFormat::VSize => {
                let n = self.read_size()?;
                self.skip(n)
            }
            OptionalFormat::FSize => {
                let n = self.read_i32()?;
                let n = usize::try_from(n)
                    .map_err(|_| Error::marshal(format!("negative optional size {n}")))?;
                self.skip(n)
            }
            // A class may be referenced again later: it has to be decoded.
            OptionalFormat::Class => self.read_value().map(|_| ()),
        }
    }

    /// Looks for optional `tag` with `format`, skipping optionals with smaller tags. Leaves the
    /// position before a larger tag or an end marker.
    fn find_optional(&mut self, tag: i32, format: OptionalFormat) -> Result<bool, Error> {
        while self.pos < self.end {
            let save = self.pos;
            let v = self.read_u8()?;
            if v == flags::OPTIONAL_END_MARKER {
                self.pos = save;
                return Ok(false);
            }
            let f = OptionalFormat::from_code(v);
            let mut t = i64::from(v >> 3);
            if t == 30 {
                t = self.read_size()? as i64;
            }
            if t > i64::from(tag) {
                self.pos = save;
                return Ok(false);
            }
            if t < i64::from(tag) {
                self.skip_optional(f)?;
                continue;
            }
            if f != format {
                return Err(Error::marshal(format!(
                    "invalid optional data member `{tag}': unexpected format {f:?}, expected {format:?}"
                )));
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads optional value `tag`: `None` when absent, always in 1.0, and inside a slice
    /// without optional members.
    pub fn read_tagged<T: SliceType>(&mut self, tag: i32) -> Result<Option<T>, Error> {
        if self.encoding.is_1_0() {
            return Ok(None);
        }
        if let Some(cur) = self.classes.stack.last() {
            if cur.started && cur.flags & flags::HAS_OPTIONAL_MEMBERS == 0 {
                return Ok(None);
            }
        }
        if !self.find_optional(tag, T::TAG_FORMAT)? {
            return Ok(None);
        }
        match T::TAG_FORMAT {
            OptionalFormat::VSize if !T::OPTIONAL_SELF_SIZED => {
                self.read_size()?;
            }
            OptionalFormat::FSize => {
                self.read_i32()?;
            }
            _ => {}
        }
        T::decode(self).map(Some)
    }

    /// Reads an optional class or proxy whose Rust type is a single `Option`: absent and null
    /// both give `None` (the counterpart of [`super::OutputStream::write_tagged_nullable`]).
    pub fn read_tagged_nullable<T>(&mut self, tag: i32) -> Result<Option<T>, Error>
    where
        Option<T>: SliceType,
    {
        Ok(self.read_tagged::<Option<T>>(tag)?.flatten())
    }

    /// Empties every class instance this stream has read (in every encapsulation still open),
    /// so that none outlives a decoding that failed. Graphs received from a peer may have
    /// cycles, which reference counting alone never frees: once the values read so far are
    /// being dropped because of an error, this breaks those cycles. Never call it while values
    /// read from the stream are still in use: they are left empty.
    pub fn discard_values(&mut self) {
        self.classes.discard();
        for e in &mut self.encaps {
            e.outer_classes.discard();
        }
    }

    /// `result`, after emptying every class instance read so far when it is an error: whatever
    /// was read is dropped with the error, and class cycles must not keep it alive.
    fn discard_on_error<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            self.discard_values();
        }
        result
    }

    /// Reads a class reference. The returned cell may still be empty: it is filled when the
    /// instance arrives later in the stream (cycles; 1.0's pending instances).
    pub fn read_value(&mut self) -> Result<Option<ValueRef>, Error> {
        if self.encoding.is_1_0() {
            let v = self.read_i32()?;
            if v > 0 {
                return Err(Error::marshal(format!("invalid class reference {v}")));
            }
            if v == 0 {
                return Ok(None);
            }
            let id = v
                .checked_neg()
                .ok_or_else(|| Error::marshal("invalid class reference"))?;
            let depth = self.classes.depth;
            let from = self.classes.referenced_from.entry(id).or_insert(0);
            *from = (*from).max(depth);
            if !self.accept_class_cycles {
                self.classes.add_edge(id)?;
            }
            return Ok(Some(self.classes.cell(id)));
        }
        let index = self.read_size()?;
        if index == 0 {
            return Ok(None);
        }
        if let Some(cur) = self.classes.stack.last() {
            if cur.started && cur.flags & flags::HAS_INDIRECTION_TABLE != 0 {
                return match cur.table.get(index - 1) {
                    // The table's entries were checked as references of this instance.
                    Some(v) => Ok(Some(v.clone())),
                    None => Err(Error::marshal(format!(
                        "indirection index {index} out of range"
                    ))),
                };
            }
        }
        self.read_instance(index).map(Some)
    }

    /// 1.1: reads an instance reference: `1` then an inline instance, or an instance id.
    fn read_instance(&mut self, index: usize) -> Result<ValueRef, Error> {
        if index > 1 {
            let id = i32::try_from(index)
                .map_err(|_| Error::marshal(format!("invalid instance id {index}")))?;
            if !self.accept_class_cycles {
                // As Ice does: an instance referenced while still being read (its own members,
                // or those of an instance inside it) closes a cycle.
                if id > self.classes.last_id {
                    self.classes.forward_reference = true;
                } else if self.classes.unfilled.contains(&id) {
                    return Err(Error::marshal(CLASS_CYCLE_REFUSED));
                }
                self.classes.add_edge(id)?;
            }
            return Ok(self.classes.cell(id));
        }
        if self.classes.depth >= CLASS_GRAPH_DEPTH_MAX {
            return Err(Error::marshal(format!(
                "class graph deeper than Ice.ClassGraphDepthMax ({CLASS_GRAPH_DEPTH_MAX})"
            )));
        }
        self.classes.last_id = self
            .classes
            .last_id
            .checked_add(1)
            .ok_or_else(|| Error::marshal("too many class instances"))?;
        let id = self.classes.last_id;
        if !self.accept_class_cycles {
            self.classes.add_edge(id)?;
        }
        let cell = self.classes.cell(id);
        self.classes.depth += 1;
        let height = self.classes.stack.len();
        let mut instance = ReadInstance::new(SliceKind::Value);
        instance.id = id;
        self.classes.stack.push(instance);
        let result = self.decode_instance_11();
        self.classes.stack.truncate(height);
        self.classes.depth -= 1;
        cell.set(result?);
        self.classes.unfilled.remove(&id);
        if height == 0 {
            // As Ice does: once the outermost instance is read, every instance it referenced
            // must have arrived.
            self.check_instances_filled()?;
            self.check_forward_references()?;
        }
        Ok(cell)
    }

    /// 1.1: a reference to an instance further on in the stream (which Ice's encoder never
    /// writes) escapes the eager cycle check of [`InputStream::read_instance`]; once one was
    /// read, the graph read so far is checked in full.
    fn check_forward_references(&mut self) -> Result<(), Error> {
        if self.accept_class_cycles || !self.classes.forward_reference {
            return Ok(());
        }
        self.classes.check_acyclic()
    }

    /// 1.1: finds the most-derived known slice of the instance on top of the stack and decodes
    /// the instance from there; keeps unknown slices when no type is known.
    fn decode_instance_11(&mut self) -> Result<Box<dyn Value>, Error> {
        self.read_slice_header()?;
        let most_derived = self.top()?.type_name();
        let mut skipped = Vec::new();
        loop {
            let cur = self.top()?;
            let factory = match cur.compact_id {
                Some(id) => find_value_factory_by_compact_id(id),
                None if cur.type_id.is_empty() => None,
                None => find_value_factory(&cur.type_id),
            };
            if let Some(factory) = factory {
                self.top_mut()?.skip_first_slice = true;
                let mut value = (factory.create)();
                value.decode_value(self)?;
                if !skipped.is_empty() {
                    value.set_preserved_slices(skipped);
                }
                return Ok(value);
            }
            let f = cur.flags;
            if f & flags::HAS_SLICE_SIZE == 0 {
                return Err(Error::NoValueFactory(most_derived));
            }
            skipped.push(self.skip_slice()?);
            if f & flags::IS_LAST_SLICE != 0 {
                return Ok(Box::new(UnknownSlicedValue {
                    unknown_type_id: most_derived,
                    slices: skipped,
                }));
            }
            self.read_slice_header()?;
        }
    }

    fn top(&self) -> Result<&ReadInstance, Error> {
        self.classes
            .stack
            .last()
            .ok_or_else(|| Error::marshal("slice outside a class instance or exception"))
    }

    fn top_mut(&mut self) -> Result<&mut ReadInstance, Error> {
        self.classes
            .stack
            .last_mut()
            .ok_or_else(|| Error::marshal("slice outside a class instance or exception"))
    }

    /// Reads a type id written as a string (registered with the next index) or an index.
    fn read_type_id(&mut self, is_index: bool) -> Result<String, Error> {
        if is_index {
            let i = self.read_size()?;
            match i.checked_sub(1).and_then(|i| self.classes.type_ids.get(i)) {
                Some(t) => Ok(t.clone()),
                None => Err(Error::marshal(format!("unknown type id index {i}"))),
            }
        } else {
            let t = self.read_string()?;
            self.classes.type_ids.push(t.clone());
            Ok(t)
        }
    }

    /// Reads the header of the next slice of the instance on top of the stack; in 1.1 sliced
    /// format also reads the slice's indirection table ahead of its members.
    fn read_slice_header(&mut self) -> Result<(), Error> {
        let kind = self.top()?.kind;
        let mut type_id = String::new();
        let mut compact_id = None;
        let mut f = 0u8;
        if self.encoding.is_1_0() {
            type_id = if kind == SliceKind::Value {
                let is_index = self.read_bool()?;
                self.read_type_id(is_index)?
            } else {
                self.read_string()?
            };
        } else {
            f = self.read_u8()?;
            if kind == SliceKind::Value {
                match f & flags::TYPE_ID_MASK {
                    flags::TYPE_ID_COMPACT => {
                        let id = self.read_size()?;
                        compact_id = Some(
                            i32::try_from(id)
                                .map_err(|_| Error::marshal(format!("invalid compact id {id}")))?,
                        );
                    }
                    flags::TYPE_ID_STRING => type_id = self.read_type_id(false)?,
                    flags::TYPE_ID_INDEX => type_id = self.read_type_id(true)?,
                    _ => {}
                }
            } else {
                type_id = self.read_string()?;
            }
        }
        let mut size = 0;
        if self.encoding.is_1_0() || f & flags::HAS_SLICE_SIZE != 0 {
            let s = self.read_i32()?;
            size = usize::try_from(s)
                .ok()
                .filter(|s| *s >= 4 && s - 4 <= self.remaining())
                .ok_or_else(|| Error::marshal(format!("invalid slice size {s}")))?;
        }
        let slice_start = self.pos;
        let mut table = Vec::new();
        let mut table_end = 0;
        if f & flags::HAS_INDIRECTION_TABLE != 0 {
            if size == 0 {
                return Err(Error::marshal(
                    "indirection table in a slice without a size",
                ));
            }
            self.pos = slice_start + size - 4;
            let n = self.read_count(1)?;
            table.reserve(n);
            for _ in 0..n {
                let index = self.read_size()?;
                if index == 0 {
                    return Err(Error::marshal("null entry in an indirection table"));
                }
                table.push(self.read_instance(index)?);
            }
            table_end = self.pos;
            self.pos = slice_start;
        }
        let cur = self.top_mut()?;
        cur.started = true;
        cur.flags = f;
        cur.type_id = type_id;
        cur.compact_id = compact_id;
        cur.size = size;
        cur.slice_start = slice_start;
        cur.table = table;
        cur.table_end = table_end;
        Ok(())
    }

    /// Skips the current slice (which must have a size) and returns what it held.
    fn skip_slice(&mut self) -> Result<SliceInfo, Error> {
        let cur = self.top()?;
        if cur.size < 4 {
            return Err(Error::marshal("cannot skip a slice without a size"));
        }
        let end = cur.slice_start + cur.size - 4;
        let bytes = self
            .buf
            .get(cur.slice_start..end)
            .ok_or_else(out_of_bounds)?;
        let has_optional_members = cur.flags & flags::HAS_OPTIONAL_MEMBERS != 0;
        let bytes = if has_optional_members {
            match bytes.split_last() {
                Some((&flags::OPTIONAL_END_MARKER, rest)) => rest,
                _ => {
                    return Err(Error::marshal(
                        "slice with optional members lacks an end marker",
                    ));
                }
            }
        } else {
            bytes
        };
        let info = SliceInfo {
            type_id: cur.type_id.clone(),
            compact_id: cur.compact_id,
            bytes: bytes.to_vec(),
            instances: cur.table.clone(),
            has_optional_members,
            is_last_slice: cur.flags & flags::IS_LAST_SLICE != 0,
        };
        let next = if cur.flags & flags::HAS_INDIRECTION_TABLE != 0 {
            cur.table_end
        } else {
            end
        };
        self.set_pos(next)?;
        Ok(info)
    }

    /// Starts reading the next slice of the class instance or exception being decoded (a no-op
    /// for the slice whose header the runtime has already read).
    pub fn start_slice(&mut self) -> Result<(), Error> {
        let v11 = !self.encoding.is_1_0();
        let cur = self.top_mut()?;
        if cur.skip_first_slice {
            cur.skip_first_slice = false;
            return Ok(());
        }
        if v11 && cur.started && cur.flags & flags::IS_LAST_SLICE != 0 {
            return Err(Error::marshal(format!(
                "slice expected after the last slice of `{}`",
                cur.type_name()
            )));
        }
        self.read_slice_header()
    }

    /// Ends the current slice: skips unread optional members and checks the slice size.
    pub fn end_slice(&mut self) -> Result<(), Error> {
        let cur = self.top()?;
        let (f, size, start, table_end) = (cur.flags, cur.size, cur.slice_start, cur.table_end);
        if !self.encoding.is_1_0() && f & flags::HAS_OPTIONAL_MEMBERS != 0 {
            self.skip_optionals()?;
        }
        if size != 0 && self.pos != start + size - 4 {
            return Err(Error::marshal(format!(
                "slice of `{}` not read to its end",
                self.top()?.type_name()
            )));
        }
        if f & flags::HAS_INDIRECTION_TABLE != 0 {
            self.set_pos(table_end)?;
        }
        Ok(())
    }

    /// Reads the class instances that follow the parameters in encoding 1.0 and fills the
    /// cells handed out by [`InputStream::read_value`]. Call it after the last parameter of any
    /// parameter list that contains a class; it does nothing in 1.1.
    pub fn read_pending_values(&mut self) -> Result<(), Error> {
        if !self.encoding.is_1_0() {
            return Ok(());
        }
        loop {
            let n = self.read_count(4)?;
            if n == 0 {
                break;
            }
            for _ in 0..n {
                self.read_instance_10()?;
            }
        }
        self.check_instances_filled()?;
        if !self.accept_class_cycles {
            // 1.0 reads instances one after the other, so a cycle is only visible once all
            // have been read. (ZeroC 3.7 catches only an instance referencing itself in 1.0.)
            self.classes.check_acyclic()?;
        }
        Ok(())
    }

    /// 1.0: reads one entry of the pending instance table (id, then slices).
    fn read_instance_10(&mut self) -> Result<(), Error> {
        let id = self.read_i32()?;
        if id <= 0 {
            return Err(Error::marshal(format!("invalid class instance id {id}")));
        }
        // An instance may be referenced only from a slice that was skipped; it is read anyway.
        if self.classes.instances.contains_key(&id) && !self.classes.unfilled.contains(&id) {
            return Err(Error::marshal(format!("class instance {id} is sent twice")));
        }
        // As Ice does in 1.0: an instance is one level deeper than the deepest instance that
        // referenced it.
        let depth = self.classes.referenced_from.get(&id).copied().unwrap_or(0) + 1;
        if depth > CLASS_GRAPH_DEPTH_MAX {
            return Err(Error::marshal(format!(
                "class graph deeper than Ice.ClassGraphDepthMax ({CLASS_GRAPH_DEPTH_MAX})"
            )));
        }
        let outer_depth = std::mem::replace(&mut self.classes.depth, depth);
        let height = self.classes.stack.len();
        let mut instance = ReadInstance::new(SliceKind::Value);
        instance.id = id;
        self.classes.stack.push(instance);
        let result = self.decode_instance_10();
        self.classes.stack.truncate(height);
        self.classes.depth = outer_depth;
        let value = result?;
        self.classes.cell(id).set(value);
        self.classes.unfilled.remove(&id);
        Ok(())
    }

    fn decode_instance_10(&mut self) -> Result<Box<dyn Value>, Error> {
        self.read_slice_header()?;
        let most_derived = self.top()?.type_id.clone();
        loop {
            let type_id = &self.top()?.type_id;
            if type_id == ICE_OBJECT_TYPE_ID {
                return Err(Error::NoValueFactory(most_derived));
            }
            if let Some(factory) = find_value_factory(type_id) {
                self.top_mut()?.skip_first_slice = true;
                let mut value = (factory.create)();
                value.decode_value(self)?;
                // The `::Ice::Object` slice: an empty facet map.
                self.start_slice()?;
                if self.read_size()? != 0 {
                    return Err(Error::marshal("invalid ::Ice::Object slice"));
                }
                self.end_slice()?;
                return Ok(value);
            }
            self.skip_slice()?;
            self.read_slice_header()?;
        }
    }

    /// Reads a user exception (the body of a reply with status 1). Each slice's type id is
    /// offered to `E`, most-derived first; unknown slices are skipped when the sliced format
    /// allows. Unknown exceptions become [`Error::UnknownUserException`] converted into `E`.
    pub fn read_exception<E: OperationError>(&mut self) -> E {
        let height = self.classes.stack.len();
        let result = self.read_exception_inner::<E>();
        self.classes.stack.truncate(height);
        self.discard_on_error(result).unwrap_or_else(E::from)
    }

    /// The slices of the exception being decoded whose types were skipped as unknown (1.1,
    /// sliced format): a `["preserve-slice"]` exception's generated `decode_exception` takes
    /// them to write them back when the exception is sent on.
    pub fn take_exception_sliced_data(&mut self) -> Vec<SliceInfo> {
        std::mem::take(&mut self.exception_slices)
    }

    fn read_exception_inner<E: OperationError>(&mut self) -> Result<E, Error> {
        self.exception_slices.clear();
        let v10 = self.encoding.is_1_0();
        let uses_classes = v10 && self.read_bool()?;
        self.classes
            .stack
            .push(ReadInstance::new(SliceKind::Exception));
        self.read_slice_header()?;
        let most_derived = self.top()?.type_id.clone();
        loop {
            self.top_mut()?.skip_first_slice = true;
            let type_id = self.top()?.type_id.clone();
            if let Some(result) = E::decode_user_exception(&type_id, self) {
                self.exception_slices.clear();
                let e = result?;
                self.classes.stack.pop();
                if uses_classes {
                    self.read_pending_values()?;
                }
                if !v10 {
                    // A flag left by a 1.1 encapsulation read earlier in the stream does not
                    // concern a 1.0 exception.
                    self.check_forward_references()?;
                }
                return Ok(e);
            }
            let cur = self.top_mut()?;
            cur.skip_first_slice = false;
            let f = cur.flags;
            if !v10 && f & flags::HAS_SLICE_SIZE == 0 {
                return Err(Error::UnknownUserException(most_derived));
            }
            let skipped = self.skip_slice()?;
            if !v10 {
                self.exception_slices.push(skipped);
            }
            if (!v10 && f & flags::IS_LAST_SLICE != 0) || (v10 && self.is_at_end()) {
                return Err(Error::UnknownUserException(most_derived));
            }
            // 1.0 has no last-slice flag: running into the pending instances (or the end) while
            // looking for a slice means no type was known, as Ice reports it.
            if let Err(e) = self.read_slice_header() {
                return Err(if v10 {
                    Error::UnknownUserException(most_derived)
                } else {
                    e
                });
            }
        }
    }
}
