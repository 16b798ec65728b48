//! User exceptions: the [`UserException`] trait, factories, and the error types of operations.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{InputStream, OutputStream};
use crate::error::Error;

/// A user exception. Object-safe.
pub trait UserException: std::error::Error + Send + Sync + 'static {
    /// The Slice type id of the most-derived type (`::M::E`).
    fn ice_id(&self) -> &'static str;
    /// Writes every slice, most-derived first.
    fn encode_exception(&self, os: &mut OutputStream);
    /// Whether any member (recursively) is a class: the 1.0 `usesClasses` byte.
    fn uses_classes(&self) -> bool;
}

/// Registration of a user exception so that it can be decoded from its type id alone.
/// Generated code submits one per exception with `inventory::submit!`.
#[derive(Debug)]
pub struct ExceptionFactory {
    /// The exception's type id.
    pub type_id: &'static str,
    /// Decodes the exception; the runtime has already read the first slice's header.
    pub decode: fn(&mut InputStream<'_>) -> Result<Box<dyn UserException>, Error>,
}

inventory::collect!(ExceptionFactory);

/// The factory registered for an exception type id.
pub fn find_exception_factory(type_id: &str) -> Option<&'static ExceptionFactory> {
    static REGISTRY: OnceLock<HashMap<&'static str, &'static ExceptionFactory>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            inventory::iter::<ExceptionFactory>
                .into_iter()
                .map(|f| (f.type_id, f))
                .collect()
        })
        .get(type_id)
        .copied()
}

/// What a servant's error becomes in the dispatcher.
#[derive(Debug)]
pub enum DispatchError {
    /// A user exception, marshaled in a reply with status 1.
    User(Box<dyn UserException>),
    /// A runtime error, turned into the reply Ice sends for it.
    Runtime(Error),
}

/// The error type of an operation: [`Error`] for operations without `throws`, a generated enum
/// for the others.
pub trait OperationError: From<Error> + Send + 'static {
    /// Called for each slice type id of a received exception, most-derived first; returns
    /// `Some` when this operation knows the type, after decoding it from the stream.
    fn decode_user_exception(
        type_id: &str,
        is: &mut InputStream<'_>,
    ) -> Option<Result<Self, Error>>;
    /// Splits the error for the dispatcher: a user exception to marshal, or a runtime error.
    fn into_dispatch(self) -> DispatchError;
}

impl OperationError for Error {
    fn decode_user_exception(
        _type_id: &str,
        _is: &mut InputStream<'_>,
    ) -> Option<Result<Self, Error>> {
        None
    }
    fn into_dispatch(self) -> DispatchError {
        DispatchError::Runtime(self)
    }
}

/// Any registered user exception, or [`Error`]: used when a caller has no operation-specific
/// error type (forwarding, tests).
#[derive(Debug)]
pub enum AnyUserException {
    /// A decoded user exception.
    User(Box<dyn UserException>),
    /// Decoding failed, or the type is unknown here.
    Runtime(Error),
}

impl From<Error> for AnyUserException {
    fn from(e: Error) -> Self {
        AnyUserException::Runtime(e)
    }
}

impl OperationError for AnyUserException {
    fn decode_user_exception(
        type_id: &str,
        is: &mut InputStream<'_>,
    ) -> Option<Result<Self, Error>> {
        let factory = find_exception_factory(type_id)?;
        Some((factory.decode)(is).map(AnyUserException::User))
    }
    fn into_dispatch(self) -> DispatchError {
        match self {
            AnyUserException::User(e) => DispatchError::User(e),
            AnyUserException::Runtime(e) => DispatchError::Runtime(e),
        }
    }
}
