//! Floe: an RPC runtime that speaks ZeroC Ice 3.7's protocol 1.0 and encodings 1.0 and 1.1.
//!
//! Layers, each using only the ones before it: [`properties`], [`encoding`], [`protocol`],
//! transport and [`connection`], proxies ([`proxy`]) and object adapters ([`adapter`]), and the
//! [`Communicator`]. Generated code (from `slice2rs`) reaches the runtime only through
//! [`codegen`].
//!
//! # Quick start
//!
//! A server (the dispatcher is what `slice2rs` generates; see `docs/runtime.md`):
//!
//! ```no_run
//! # async fn demo(dispatcher: std::sync::Arc<dyn floe::Dispatcher>) -> floe::Result<()> {
//! let mut args: Vec<String> = std::env::args().collect();
//! let communicator = floe::initialize(&mut args)?; // --Ice.Config=config.server
//! let adapter = communicator.create_object_adapter("Hello").await?; // Hello.Endpoints
//! adapter.add(dispatcher, "hello".parse()?)?;
//! adapter.activate()?;
//! communicator.wait_for_shutdown().await;
//! communicator.destroy().await;
//! # Ok(())
//! # }
//! ```
//!
//! A client:
//!
//! ```no_run
//! # async fn demo() -> floe::Result<()> {
//! let mut args: Vec<String> = std::env::args().collect();
//! let communicator = floe::initialize(&mut args)?;
//! let hello = communicator
//!     .string_to_proxy("hello:tcp -h 127.0.0.1 -p 10000")?
//!     .expect("not a null proxy");
//! hello.ice_ping().await?;
//! communicator.destroy().await;
//! # Ok(())
//! # }
//! ```

pub mod adapter;
pub mod admin;
pub mod checksums;
pub mod codegen;
pub mod communicator;
pub mod connection;
pub mod discovery;
pub mod encoding;
pub mod endpoint;
pub mod error;
pub mod identity;
mod instance;
pub mod properties;
pub mod protocol;
pub mod proxy;
pub mod transport;

pub use adapter::{dispatch, servant_locator};

pub use adapter::ObjectAdapter;
pub use checksums::slice_checksums;
pub use communicator::{Communicator, initialize};
pub use connection::{Connection, HeartbeatCallback};
pub use dispatch::{
    Blobject, BlobjectDispatcher, Current, Dispatcher, IncomingRequest, OutgoingResponse,
    dispatch_builtin,
};
pub use encoding::EncodingVersion;
pub use endpoint::Endpoint;
pub use error::{Error, RequestFailed, Result, SecurityReason};
pub use identity::Identity;
pub use properties::Properties;
pub use protocol::{Context, OperationMode};
pub use proxy::{InvocationMode, ObjectPrx, Proxy};
pub use servant_locator::{Cookie, Located, ServantLocator};

/// Includes the Rust code that `floe_slice::Builder` generated in the build script for the Slice
/// file `NAME.ice`: `floe::include_slice!("UsersManager");` brings in `OUT_DIR/UsersManager.rs`.
#[macro_export]
macro_rules! include_slice {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $name, ".rs"));
    };
}
