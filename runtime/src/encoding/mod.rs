//! Encodings 1.0 and 1.1: input and output streams.
//!
//! Everything generated code needs from the encoding layer is re-exported here, so that
//! `floe::codegen` can `pub use crate::encoding::*` items (see docs/codegen-surface.md).
//!
//! What generated code calls, beyond the contract's `os.write(&v)` / `is.read::<T>()`:
//!
//! | Slice | write | read |
//! | --- | --- | --- |
//! | enum | `os.write_enum(v as i32, MAX)` | `is.read_enum(MAX)?` |
//! | `optional(n) T` member or owned value | `os.write_tagged(n, &opt)` | `is.read_tagged::<T>(n)?` |
//! | `optional(n)` parameter passed as `Option<&str>` / `Option<&[T]>` / `Option<&T>` | `os.write_tagged_ref(n, opt)` | as above |
//! | `optional(n)` class or proxy (one `Option`) | `os.write_tagged_nullable(n, &opt)` | `is.read_tagged_nullable::<T>(n)?` |
//! | class reference | `os.write_value(&opt)` | `is.read_value()?` |
//! | after parameters containing classes | `os.write_pending_values()` | `is.read_pending_values()?` |
//! | class or exception slice | `os.start_slice(id, compact, last)` … `os.end_slice()` | `is.start_slice()?` … `is.end_slice()?` |
//! | user exception (runtime side) | `os.write_exception(&e)` | `is.read_exception::<OpError>()` |
//!
//! Two facts from the captures that generated code must respect: a dictionary key type should
//! override [`SliceType::dictionary_key_order`] (Ice's C++ senders write keys sorted; builtins
//! already do), and [`UserException::uses_classes`] counts only *required* members (optional
//! members are never written in 1.0, and Ice writes `usesClasses = 0` for them).
//!
//! ```
//! use floe::encoding::{EncodingVersion, FormatType, InputStream, OutputStream};
//!
//! let mut os = OutputStream::new(EncodingVersion::V1_1);
//! os.start_encapsulation(EncodingVersion::V1_1, FormatType::Compact);
//! os.write("héllo");
//! os.write(&vec![1i32, -1]);
//! os.end_encapsulation();
//! let bytes = os.finish().unwrap();
//!
//! let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
//! is.start_encapsulation().unwrap();
//! assert_eq!(is.read::<String>().unwrap(), "héllo");
//! assert_eq!(is.read::<Vec<i32>>().unwrap(), vec![1, -1]);
//! is.end_encapsulation().unwrap();
//! ```

mod exception;
mod input;
mod output;
mod proxy_data;
mod types;
mod value;

pub use exception::{
    AnyUserException, DispatchError, ExceptionFactory, OperationError, UserException,
    find_exception_factory,
};
pub use input::{CLASS_CYCLE_REFUSED, CLASS_GRAPH_DEPTH_MAX, InputStream};
pub use output::OutputStream;
pub use proxy_data::{
    EndpointData, OpaqueEndpointData, ProxyData, ProxyMode, SSL_ENDPOINT_TYPE, TCP_ENDPOINT_TYPE,
    TcpEndpointData, UDP_ENDPOINT_TYPE, UdpEndpointData, WS_ENDPOINT_TYPE, WSS_ENDPOINT_TYPE,
    WsEndpointData,
};
pub use types::{Encodable, SliceType};
pub use value::{
    SliceInfo, UnknownSlicedValue, Value, ValueFactory, ValueRef, find_value_factory,
    find_value_factory_by_compact_id,
};

/// Re-exported so that generated code can write `::floe::codegen::inventory::submit!`.
pub use inventory;

use std::fmt;

/// The version of the encoding of an encapsulation (Ice's `EncodingVersion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EncodingVersion {
    /// Major version; always 1 for the encodings this runtime speaks.
    pub major: u8,
    /// Minor version: 0 or 1.
    pub minor: u8,
}

impl EncodingVersion {
    /// Encoding 1.0 (Ice 3.4 and earlier, and peers that ask for it with `-e 1.0`).
    pub const V1_0: EncodingVersion = EncodingVersion { major: 1, minor: 0 };
    /// Encoding 1.1, the default of Ice 3.5 and later.
    pub const V1_1: EncodingVersion = EncodingVersion { major: 1, minor: 1 };

    /// Whether this runtime can read and write data in this encoding (major 1, minor 0 or 1).
    pub fn is_supported(self) -> bool {
        self.major == 1 && self.minor <= 1
    }

    /// Whether this is encoding 1.0.
    pub fn is_1_0(self) -> bool {
        self == Self::V1_0
    }
}

impl Default for EncodingVersion {
    fn default() -> Self {
        Self::V1_1
    }
}

impl fmt::Display for EncodingVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version of the Ice protocol (always 1.0 in practice), as carried in proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
}

impl ProtocolVersion {
    /// Protocol 1.0, the only one Ice 3.7 speaks.
    pub const V1_0: ProtocolVersion = ProtocolVersion { major: 1, minor: 0 };
}

impl Default for ProtocolVersion {
    fn default() -> Self {
        Self::V1_0
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// How classes and exceptions are laid out in encoding 1.1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FormatType {
    /// No slice sizes: a receiver must know the most-derived type (Ice's default).
    #[default]
    Compact,
    /// Slice sizes and indirection tables, so a receiver can skip slices it does not know.
    Sliced,
}

/// The format code of an optional (tagged) value in encoding 1.1 (ice-wire.md §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OptionalFormat {
    /// One byte (bool, byte).
    F1 = 0,
    /// Two bytes (short).
    F2 = 1,
    /// Four bytes (int, float).
    F4 = 2,
    /// Eight bytes (long, double).
    F8 = 3,
    /// A size (enums).
    Size = 4,
    /// A size n then n bytes (strings, fixed-size structs and containers of fixed-size elements).
    VSize = 5,
    /// An int32 n then n bytes (variable-size structs and containers, proxies).
    FSize = 6,
    /// A class reference.
    Class = 7,
}

impl OptionalFormat {
    /// The format for a 3-bit format code.
    pub fn from_code(code: u8) -> OptionalFormat {
        match code & 7 {
            0 => OptionalFormat::F1,
            1 => OptionalFormat::F2,
            2 => OptionalFormat::F4,
            3 => OptionalFormat::F8,
            4 => OptionalFormat::Size,
            5 => OptionalFormat::VSize,
            6 => OptionalFormat::FSize,
            _ => OptionalFormat::Class,
        }
    }
}

#[cfg(test)]
mod tests;

/// Checks an encapsulation header: size matches, encoding 1.0 or 1.1.
pub(crate) fn check_encoding(encaps: &[u8]) -> crate::error::Result<EncodingVersion> {
    if encaps.len() < 6 {
        return Err(crate::error::Error::Marshal(
            "encapsulation too short".into(),
        ));
    }
    let size = i32::from_le_bytes([encaps[0], encaps[1], encaps[2], encaps[3]]);
    if size as i64 != encaps.len() as i64 {
        return Err(crate::error::Error::Marshal(format!(
            "illegal encapsulation size {size}"
        )));
    }
    let v = EncodingVersion {
        major: encaps[4],
        minor: encaps[5],
    };
    if v.major != 1 || v.minor > 1 {
        return Err(crate::error::Error::UnsupportedEncoding(format!(
            "unsupported encoding version: {v}\n\
             (can only support encodings compatible with version 1.1)"
        )));
    }
    Ok(v)
}
