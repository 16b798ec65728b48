//! The writing half of the encoding: [`OutputStream`].

use super::types::Encodable;
use super::{EncodingVersion, FormatType};
use crate::error::Error;

/// An encapsulation that has been started and not yet ended.
#[derive(Debug)]
struct OpenEncaps {
    /// Position of the encapsulation's int32 size.
    start: usize,
    encoding: EncodingVersion,
    format: FormatType,
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
        self.encaps.push(OpenEncaps {
            start: self.buf.len(),
            encoding: self.encoding,
            format: self.format,
        });
        self.write_i32(0);
        self.write_u8(encoding.major);
        self.write_u8(encoding.minor);
        self.encoding = encoding;
        self.format = format;
        self.push_encaps_state();
    }

    /// Ends the innermost encapsulation and writes its size.
    pub fn end_encapsulation(&mut self) {
        let Some(open) = self.encaps.pop() else {
            self.fail(Error::marshal(
                "end_encapsulation without start_encapsulation",
            ));
            return;
        };
        self.pop_encaps_state();
        let size = self.buf.len() - open.start;
        match i32::try_from(size) {
            Ok(size) => self.rewrite_i32(open.start, size),
            Err(_) => self.fail(Error::MemoryLimit(format!(
                "encapsulation of {size} bytes does not fit in an int32"
            ))),
        }
        self.encoding = open.encoding;
        self.format = open.format;
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

    fn push_encaps_state(&mut self) {}

    fn pop_encaps_state(&mut self) {}
}
