//! Floe: an RPC runtime that speaks ZeroC Ice 3.7's protocol 1.0 and encodings 1.0 and 1.1.
//!
//! Layers, each using only the ones before it: [`properties`], [`encoding`], [`protocol`],
//! transport and connection, proxies and object adapters, and the [`Communicator`].
//! Generated code (from `slice2rs`) reaches the runtime only through [`codegen`].

pub mod adapter;
pub mod codegen;
pub mod communicator;
pub mod connection;
pub mod dispatch;
pub mod encoding;
pub mod endpoint;
pub mod error;
mod pending_enc;
pub mod properties;
pub mod protocol;
pub mod proxy;

pub use adapter::ObjectAdapter;
pub use communicator::{Communicator, initialize};
pub use connection::Connection;
pub use dispatch::{
    Blobject, BlobjectDispatcher, Current, Dispatcher, IncomingRequest, OutgoingResponse,
    dispatch_builtin,
};
pub use encoding::EncodingVersion;
pub use endpoint::Endpoint;
pub use error::{Error, RequestFailed, Result};
pub use pending_enc::Identity;
pub use properties::Properties;
pub use protocol::{Context, OperationMode};
pub use proxy::{InvocationMode, ObjectPrx};
