//! Floe: an RPC runtime that speaks ZeroC Ice 3.7's protocol 1.0 and encodings 1.0 and 1.1.
//!
//! Layers, each using only the ones before it: [`properties`], [`encoding`], [`protocol`],
//! transport and connection, proxies and object adapters, and the [`Communicator`].
//! Generated code (from `slice2rs`) reaches the runtime only through [`codegen`].

pub mod codegen;
pub mod encoding;
pub mod error;
pub mod identity;
pub mod properties;
pub mod protocol;

pub use error::{Error, RequestFailed, Result};
pub use identity::Identity;
pub use properties::Properties;
pub use protocol::{Context, OperationMode};
