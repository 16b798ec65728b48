//! [`SliceType`]: the encoding of builtins, strings, sequences and dictionaries.

use std::collections::HashMap;
use std::hash::Hash;

use super::{InputStream, OptionalFormat, OutputStream};
use crate::error::Error;

/// A type with a Slice encoding (structs, enums, sequences, dictionaries, builtins, proxies).
///
/// Generated code implements it for structs and enums; the runtime for everything else.
pub trait SliceType: Sized + Send + Sync + 'static {
    /// Fewest bytes one value occupies on the wire; decoders check counts against it.
    const MIN_WIRE_SIZE: usize;
    /// `Some(n)` when every value encodes to exactly `n` bytes (Slice's "fixed size").
    const FIXED_SIZE: Option<usize> = None;
    /// Format used when the type is an optional (tagged) value in encoding 1.1.
    const TAG_FORMAT: OptionalFormat = match Self::FIXED_SIZE {
        Some(_) => OptionalFormat::VSize,
        None => OptionalFormat::FSize,
    };
    /// True when the encoding starts with a size that counts every byte that follows (strings,
    /// sequences of one-byte elements): such a `VSize` optional gets no extra length prefix.
    const OPTIONAL_SELF_SIZED: bool = false;

    /// Writes the value.
    fn encode(&self, os: &mut OutputStream);

    /// Reads a value.
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error>;

    /// The order in which dictionary keys of this type are written. Ice's C++ senders write
    /// dictionaries sorted by key (`std::map`), so builtins compare naturally; the default
    /// (everything equal) keeps the map's iteration order.
    fn dictionary_key_order(&self, _other: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }

    /// Writes a sequence of this type: the count, then the elements. Types with a bulk layout
    /// (bytes, bools, numbers) override it.
    fn encode_seq(items: &[Self], os: &mut OutputStream) {
        os.write_size(items.len());
        for item in items {
            item.encode(os);
        }
    }

    /// Reads a sequence of this type, checking the count against the bytes left first.
    fn decode_seq(is: &mut InputStream<'_>) -> Result<Vec<Self>, Error> {
        let n = is.read_count(Self::MIN_WIRE_SIZE)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(Self::decode(is)?);
        }
        Ok(out)
    }
}

/// Anything [`OutputStream::write`] accepts: every [`SliceType`], plus `str` and `[T]` so that
/// borrowed parameters (`&str`, `&[T]`) are written without a copy.
pub trait Encodable {
    /// Format used when the value is an optional (tagged) value in encoding 1.1.
    const TAG_FORMAT: OptionalFormat;
    /// See [`SliceType::OPTIONAL_SELF_SIZED`].
    const OPTIONAL_SELF_SIZED: bool;
    /// Writes the value.
    fn encode_to(&self, os: &mut OutputStream);
}

impl<T: SliceType> Encodable for T {
    const TAG_FORMAT: OptionalFormat = T::TAG_FORMAT;
    const OPTIONAL_SELF_SIZED: bool = T::OPTIONAL_SELF_SIZED;
    fn encode_to(&self, os: &mut OutputStream) {
        self.encode(os);
    }
}

impl Encodable for str {
    const TAG_FORMAT: OptionalFormat = OptionalFormat::VSize;
    const OPTIONAL_SELF_SIZED: bool = true;
    fn encode_to(&self, os: &mut OutputStream) {
        os.write_string(self);
    }
}

impl<T: SliceType> Encodable for [T] {
    const TAG_FORMAT: OptionalFormat = <Vec<T> as SliceType>::TAG_FORMAT;
    const OPTIONAL_SELF_SIZED: bool = <Vec<T> as SliceType>::OPTIONAL_SELF_SIZED;
    fn encode_to(&self, os: &mut OutputStream) {
        T::encode_seq(self, os);
    }
}

impl SliceType for bool {
    const MIN_WIRE_SIZE: usize = 1;
    const FIXED_SIZE: Option<usize> = Some(1);
    const TAG_FORMAT: OptionalFormat = OptionalFormat::F1;
    fn encode(&self, os: &mut OutputStream) {
        os.write_bool(*self);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        is.read_bool()
    }
    fn dictionary_key_order(&self, other: &Self) -> std::cmp::Ordering {
        self.cmp(other)
    }
    fn encode_seq(items: &[Self], os: &mut OutputStream) {
        os.write_size(items.len());
        for b in items {
            os.write_u8(u8::from(*b));
        }
    }
    fn decode_seq(is: &mut InputStream<'_>) -> Result<Vec<Self>, Error> {
        let n = is.read_count(1)?;
        Ok(is.read_bytes(n)?.iter().map(|b| *b != 0).collect())
    }
}

impl SliceType for u8 {
    const MIN_WIRE_SIZE: usize = 1;
    const FIXED_SIZE: Option<usize> = Some(1);
    const TAG_FORMAT: OptionalFormat = OptionalFormat::F1;
    fn encode(&self, os: &mut OutputStream) {
        os.write_u8(*self);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        is.read_u8()
    }
    fn dictionary_key_order(&self, other: &Self) -> std::cmp::Ordering {
        self.cmp(other)
    }
    fn encode_seq(items: &[Self], os: &mut OutputStream) {
        os.write_size(items.len());
        os.write_bytes(items);
    }
    fn decode_seq(is: &mut InputStream<'_>) -> Result<Vec<Self>, Error> {
        let n = is.read_count(1)?;
        Ok(is.read_bytes(n)?.to_vec())
    }
}

macro_rules! numeric_slice_type {
    ($t:ty, $n:expr, $fmt:ident, $write:ident, $read:ident) => {
        impl SliceType for $t {
            const MIN_WIRE_SIZE: usize = $n;
            const FIXED_SIZE: Option<usize> = Some($n);
            const TAG_FORMAT: OptionalFormat = OptionalFormat::$fmt;
            fn encode(&self, os: &mut OutputStream) {
                os.$write(*self);
            }
            fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
                is.$read()
            }
            fn dictionary_key_order(&self, other: &Self) -> std::cmp::Ordering {
                self.partial_cmp(other).unwrap_or(std::cmp::Ordering::Equal)
            }
            fn encode_seq(items: &[Self], os: &mut OutputStream) {
                os.write_size(items.len());
                let mut bytes = Vec::with_capacity(items.len() * $n);
                for v in items {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                os.write_bytes(&bytes);
            }
            fn decode_seq(is: &mut InputStream<'_>) -> Result<Vec<Self>, Error> {
                let n = is.read_count($n)?;
                let bytes = is.read_bytes(n * $n)?;
                Ok(bytes
                    .chunks_exact($n)
                    .map(|c| {
                        let mut a = [0u8; $n];
                        a.copy_from_slice(c);
                        <$t>::from_le_bytes(a)
                    })
                    .collect())
            }
        }
    };
}

numeric_slice_type!(i16, 2, F2, write_i16, read_i16);
numeric_slice_type!(i32, 4, F4, write_i32, read_i32);
numeric_slice_type!(i64, 8, F8, write_i64, read_i64);
numeric_slice_type!(f32, 4, F4, write_f32, read_f32);
numeric_slice_type!(f64, 8, F8, write_f64, read_f64);

impl SliceType for String {
    const MIN_WIRE_SIZE: usize = 1;
    const TAG_FORMAT: OptionalFormat = OptionalFormat::VSize;
    const OPTIONAL_SELF_SIZED: bool = true;
    fn encode(&self, os: &mut OutputStream) {
        os.write_string(self);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        is.read_string()
    }
    fn dictionary_key_order(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl<T: SliceType> SliceType for Vec<T> {
    const MIN_WIRE_SIZE: usize = 1;
    const TAG_FORMAT: OptionalFormat = match T::FIXED_SIZE {
        Some(_) => OptionalFormat::VSize,
        None => OptionalFormat::FSize,
    };
    const OPTIONAL_SELF_SIZED: bool = matches!(T::FIXED_SIZE, Some(1));
    fn encode(&self, os: &mut OutputStream) {
        T::encode_seq(self, os);
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        T::decode_seq(is)
    }
}

impl<K, V, S> SliceType for HashMap<K, V, S>
where
    K: SliceType + Eq + Hash,
    V: SliceType,
    S: std::hash::BuildHasher + Default + Send + Sync + 'static,
{
    const MIN_WIRE_SIZE: usize = 1;
    const TAG_FORMAT: OptionalFormat = match (K::FIXED_SIZE, V::FIXED_SIZE) {
        (Some(_), Some(_)) => OptionalFormat::VSize,
        _ => OptionalFormat::FSize,
    };
    fn encode(&self, os: &mut OutputStream) {
        os.write_size(self.len());
        let mut entries: Vec<(&K, &V)> = self.iter().collect();
        entries.sort_by(|a, b| a.0.dictionary_key_order(b.0));
        for (k, v) in entries {
            k.encode(os);
            v.encode(os);
        }
    }
    fn decode(is: &mut InputStream<'_>) -> Result<Self, Error> {
        let n = is.read_count(K::MIN_WIRE_SIZE + V::MIN_WIRE_SIZE)?;
        let mut map = HashMap::with_capacity_and_hasher(n, S::default());
        for _ in 0..n {
            let k = K::decode(is)?;
            let v = V::decode(is)?;
            map.insert(k, v);
        }
        Ok(map)
    }
}
