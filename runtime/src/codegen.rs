//! The items generated code uses; see docs/codegen-surface.md. Generated code names them as
//! `::floe::codegen::Item` and uses nothing else of the runtime.

pub use futures_util::future::BoxFuture;

pub use crate::checksums::SliceChecksum;
pub use crate::dispatch::{
    Current, Dispatcher, IncomingRequest, OutgoingResponse, dispatch_builtin,
};
pub use crate::encoding::{
    AnyUserException, DispatchError, Encodable, EncodingVersion, ExceptionFactory, FormatType,
    InputStream, OperationError, OptionalFormat, OutputStream, SliceInfo, SliceType, UserException,
    Value, ValueFactory, ValueRef, inventory,
};
pub use crate::error::Error;
pub use crate::identity::Identity;
pub use crate::protocol::{Context, OperationMode};
pub use crate::proxy::{ObjectPrx, Proxy};
