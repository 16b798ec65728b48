//! The runtime's one error type. Its variants follow Ice's local exceptions.

use std::fmt;

/// Shorthand for results whose error is the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure in the runtime, named after the Ice local exception it corresponds to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Data could not be encoded or decoded (Ice's `MarshalException` and its subclasses).
    #[error("marshal error: {0}")]
    Marshal(String),
    /// A message or encapsulation is larger than allowed (Ice's `MemoryLimitException`).
    #[error("memory limit: {0}")]
    MemoryLimit(String),
    /// The peer violated the protocol (Ice's `ProtocolException` family).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// An encoding version that this runtime does not support.
    #[error("unsupported encoding {0}")]
    UnsupportedEncoding(String),
    /// A class of an unknown type arrived in the compact format (Ice's `NoValueFactoryException`).
    #[error("no value factory for type `{0}`")]
    NoValueFactory(String),
    /// A user exception the receiver does not know (Ice's `UnknownUserException`).
    #[error("unknown user exception `{0}`")]
    UnknownUserException(String),
    /// A stringified identity could not be parsed (Ice's `IdentityParseException`).
    #[error("identity parse error: {0}")]
    IdentityParse(String),
    /// The operation needs a reply but the proxy is oneway or batch oneway.
    #[error("operation `{0}` can only be called twoway")]
    TwowayOnly(String),
}

impl Error {
    /// A [`Error::Marshal`] with the given message.
    pub fn marshal(message: impl fmt::Display) -> Self {
        Error::Marshal(message.to_string())
    }
}
