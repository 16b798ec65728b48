//! Server-side dispatch: [`Current`], [`IncomingRequest`], [`OutgoingResponse`], the
//! [`Dispatcher`] trait that servants implement (through generated code or by hand), the built-in
//! `Ice::Object` operations, and raw (Blobject-style) servants.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;

use crate::adapter::ObjectAdapter;
use crate::connection::Connection;
use crate::encoding::{
    DispatchError, EncodingVersion, FormatType, InputStream, OperationError, OutputStream,
};
use crate::error::{Error, RequestFailed, Result};
use crate::identity::Identity;
use crate::protocol::{Context, OperationMode, ReplyBody, encapsulate, put_size, put_string};

/// Information about the request being dispatched.
#[derive(Debug, Clone)]
pub struct Current {
    /// The object adapter that received the request.
    pub adapter: ObjectAdapter,
    /// The target identity.
    pub id: Identity,
    /// The target facet ("" for the default facet).
    pub facet: String,
    /// The operation name.
    pub operation: String,
    /// The mode the caller sent.
    pub mode: OperationMode,
    /// The request context.
    pub ctx: Context,
    /// The request id (0 for oneway and batched requests).
    pub request_id: i32,
    /// The encoding of the parameters (and of the reply).
    pub encoding: EncodingVersion,
    /// The connection the request arrived on.
    pub con: Option<Connection>,
}

/// A request as the dispatcher sees it: its [`Current`] and its parameter encapsulation.
#[derive(Debug)]
pub struct IncomingRequest {
    current: Current,
    params: Bytes,
}

/// The answer to a request: out-parameters or a user exception, as an encapsulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingResponse {
    pub(crate) body: ReplyBody,
}

impl OutgoingResponse {
    /// A successful reply carrying `encaps` (a whole encapsulation, header included).
    pub fn ok(encaps: Bytes) -> Self {
        OutgoingResponse {
            body: ReplyBody::Ok(encaps),
        }
    }

    /// A user-exception reply carrying `encaps` (a whole encapsulation, header included).
    pub fn user_exception(encaps: Bytes) -> Self {
        OutgoingResponse {
            body: ReplyBody::UserException(encaps),
        }
    }

    /// Whether this is a successful reply.
    pub fn is_ok(&self) -> bool {
        matches!(self.body, ReplyBody::Ok(_))
    }

    /// The encapsulation carried by this reply.
    pub fn encapsulation(&self) -> &Bytes {
        match &self.body {
            ReplyBody::Ok(b) | ReplyBody::UserException(b) => b,
            // A response whose encoding failed carries no encapsulation.
            _ => {
                static EMPTY: Bytes = Bytes::from_static(&[]);
                &EMPTY
            }
        }
    }
}

impl IncomingRequest {
    pub(crate) fn new(current: Current, params: Bytes) -> Self {
        IncomingRequest { current, params }
    }

    /// The format of replies without `["format:…"]` metadata (`Ice.Default.SlicedFormat`).
    fn default_format(&self) -> FormatType {
        self.current.adapter.instance().default_format
    }

    /// The request's [`Current`].
    pub fn current(&self) -> &Current {
        &self.current
    }

    /// The parameter encapsulation exactly as received, its 6-byte header included.
    pub fn params(&self) -> &Bytes {
        &self.params
    }

    /// Checks the mode the caller sent against the operation's declared mode, as Ice's generated
    /// code does: they must be equal, except that an `idempotent` operation also accepts
    /// Nonmutating. A mismatch is a marshaling error (reply status 5).
    pub fn check_mode(&self, expected: OperationMode) -> Result<()> {
        let received = self.current.mode;
        if received == expected
            || (expected == OperationMode::Idempotent && received == OperationMode::Nonmutating)
        {
            return Ok(());
        }
        Err(Error::Marshal(format!(
            "unexpected operation mode. expected = {} received = {}",
            expected.ice_name(),
            received.ice_name()
        )))
    }

    /// Checks the parameter encapsulation's header and encoding and returns its body.
    pub fn params_body(&self) -> Result<&[u8]> {
        crate::encoding::check_encoding(&self.params)?;
        Ok(&self.params[6..])
    }

    /// Reads an empty parameter list. In encoding 1.1 any content (unknown optionals) is skipped;
    /// in 1.0 the encapsulation must be empty, as in Ice.
    pub fn read_empty_params(&mut self) -> Result<()> {
        let body = self.params_body()?;
        if self.current.encoding == EncodingVersion::V1_0 && !body.is_empty() {
            return Err(Error::Marshal(format!(
                "{} unexpected bytes in empty encapsulation",
                body.len()
            )));
        }
        Ok(())
    }

    /// Reads the parameters: opens the encapsulation, runs `f` on it, and checks that `f` read
    /// everything.
    pub fn read_params<T>(
        &mut self,
        f: impl FnOnce(&mut InputStream<'_>) -> Result<T>,
    ) -> Result<T> {
        crate::encoding::check_encoding(&self.params)?;
        let instance = self.current.adapter.instance();
        crate::proxy::with_decode_instance(instance, || {
            let mut is = InputStream::new(&self.params, EncodingVersion::V1_0);
            is.set_accept_class_cycles(instance.accept_class_cycles);
            is.read_encapsulated(f)
        })
    }

    /// The reply for an operation's error: a user exception is marshaled (reply status 1, in the
    /// compact format); a runtime error is returned as `Err` and becomes the reply Ice sends for
    /// it.
    pub fn reply_error<E: OperationError>(&self, e: E) -> Result<OutgoingResponse> {
        self.reply_error_with_format(None, e)
    }

    /// [`IncomingRequest::reply_error`] for an operation with `["format:…"]` metadata: a user
    /// exception is written in `format` (`None`: `Ice.Default.SlicedFormat`).
    pub fn reply_error_with_format<E: OperationError>(
        &self,
        format: Option<FormatType>,
        e: E,
    ) -> Result<OutgoingResponse> {
        match e.into_dispatch() {
            DispatchError::Runtime(err) => Err(err),
            DispatchError::User(ex) => {
                let enc = self.current.encoding;
                let mut os = OutputStream::new(EncodingVersion::V1_0);
                os.start_encapsulation(enc, format.unwrap_or_else(|| self.default_format()));
                os.write_exception(&*ex);
                os.end_encapsulation();
                Ok(OutgoingResponse::user_exception(Bytes::from(os.finish()?)))
            }
        }
    }

    /// A successful reply whose out-parameters `f` writes, in the request's encoding and in
    /// `format` (compact when `None`).
    pub fn reply(
        &self,
        format: Option<FormatType>,
        f: impl FnOnce(&mut OutputStream),
    ) -> OutgoingResponse {
        let enc = self.current.encoding;
        let mut os = OutputStream::new(EncodingVersion::V1_0);
        os.start_encapsulation(enc, format.unwrap_or_else(|| self.default_format()));
        f(&mut os);
        os.end_encapsulation();
        match os.finish() {
            Ok(bytes) => OutgoingResponse::ok(Bytes::from(bytes)),
            Err(e) => OutgoingResponse {
                body: ReplyBody::from_error(&e),
            },
        }
    }

    /// A successful reply whose encapsulation body is `body`, in the request's encoding.
    pub fn reply_raw(&self, body: &[u8]) -> OutgoingResponse {
        let enc = self.current.encoding;
        OutgoingResponse::ok(encapsulate(enc.major, enc.minor, body))
    }

    /// A successful reply with no out-parameters.
    pub fn reply_empty(&self) -> OutgoingResponse {
        self.reply_raw(&[])
    }
}

/// Dispatches the requests for one servant (generated `XDispatcher<T>` implements this).
pub trait Dispatcher: Send + Sync + 'static {
    /// Runs the operation named by `request.current().operation` and builds the reply.
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>>;

    /// Whether decoding the parameters of the operation of this name may take long for their
    /// size, because they may hold classes (a graph of many small instances). A connection starts
    /// the dispatch of a request whose parameters are large (over 64 KiB) on the blocking pool
    /// when this says so, and in place otherwise, sparing a thread hop to operations that take
    /// large byte sequences, strings or structs.
    ///
    /// The default is `true`, the safe answer for a dispatcher written by hand; generated
    /// dispatchers answer from the operations' parameter types, and `ice_ping`, `ice_isA`,
    /// `ice_id` and `ice_ids` are never asked about.
    fn may_decode_slowly(&self, _operation: &str) -> bool {
        true
    }
}

/// Answers `ice_ping`, `ice_isA`, `ice_id` and `ice_ids` for a servant whose most-derived type id
/// is `type_id` and whose sorted list of type ids is `type_ids`; any other operation fails with
/// [`Error::OperationNotExist`]. The mode of these four is not checked, as in Ice.
pub async fn dispatch_builtin(
    request: &mut IncomingRequest,
    type_id: &str,
    type_ids: &[&str],
) -> Result<OutgoingResponse> {
    match request.current.operation.as_str() {
        "ice_ping" => {
            request.read_empty_params()?;
            Ok(request.reply_empty())
        }
        "ice_isA" => {
            let body = request.params_body()?;
            let (s, used) = read_string(body)?;
            if used != body.len() {
                return Err(Error::Marshal(
                    "unexpected bytes after ice_isA parameter".into(),
                ));
            }
            let yes = type_ids.contains(&s.as_str());
            Ok(request.reply_raw(&[u8::from(yes)]))
        }
        "ice_id" => {
            request.read_empty_params()?;
            let mut out = BytesMut::new();
            put_string(&mut out, type_id);
            Ok(request.reply_raw(&out))
        }
        "ice_ids" => {
            request.read_empty_params()?;
            let mut out = BytesMut::new();
            put_size(&mut out, type_ids.len());
            for id in type_ids {
                put_string(&mut out, id);
            }
            Ok(request.reply_raw(&out))
        }
        _ => Err(Error::OperationNotExist(Box::default())),
    }
}

fn read_string(b: &[u8]) -> Result<(String, usize)> {
    let oob = || Error::Marshal("out of bounds during unmarshaling".into());
    let (&first, rest) = b.split_first().ok_or_else(oob)?;
    let (len, start) = if first == 255 {
        let v = i32::from_le_bytes(
            rest.get(..4)
                .ok_or_else(oob)?
                .try_into()
                .map_err(|_| oob())?,
        );
        (usize::try_from(v).map_err(|_| oob())?, 5)
    } else {
        (first as usize, 1)
    };
    let s = b.get(start..start + len).ok_or_else(oob)?;
    let s =
        std::str::from_utf8(s).map_err(|_| Error::Marshal("string is not valid UTF-8".into()))?;
    Ok((s.to_string(), start + len))
}

/// A servant that receives every request raw: any operation, any mode, the parameter
/// encapsulation as bytes (Ice's `Blobject`). IceStorm's publisher objects are Blobjects.
pub trait Blobject: Send + Sync + 'static {
    /// Handles one request. Returns `(true, encaps)` for a successful reply or `(false, encaps)`
    /// for a user exception, where `encaps` is a whole encapsulation (header included).
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: Bytes,
        current: &'a Current,
    ) -> BoxFuture<'a, Result<(bool, Bytes)>>;
}

/// Adapts a [`Blobject`] to [`Dispatcher`].
#[derive(Debug)]
pub struct BlobjectDispatcher<T>(pub Arc<T>);

impl<T: Blobject> Dispatcher for BlobjectDispatcher<T> {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            let (ok, encaps) = self
                .0
                .ice_invoke(request.params.clone(), &request.current)
                .await?;
            Ok(if ok {
                OutgoingResponse::ok(encaps)
            } else {
                OutgoingResponse::user_exception(encaps)
            })
        })
    }

    /// A Blobject receives the parameters as bytes: nothing is decoded.
    fn may_decode_slowly(&self, _operation: &str) -> bool {
        false
    }
}

/// Turns the result of a dispatch into the reply sent on the wire, filling the identity, facet
/// and operation of ObjectNotExist/FacetNotExist/OperationNotExist from the request when the
/// servant left them empty (as Ice does).
pub(crate) fn reply_for(result: Result<OutgoingResponse>, current: &Current) -> ReplyBody {
    match result {
        Ok(r) => r.body,
        Err(err) => {
            let fill = |f: &RequestFailed| {
                let mut f = f.clone();
                if f.name.is_empty() {
                    f.name = current.id.name.clone();
                    f.category = current.id.category.clone();
                }
                if f.facet.is_empty() {
                    f.facet = current.facet.clone();
                }
                if f.operation.is_empty() {
                    f.operation = current.operation.clone();
                }
                f
            };
            match &err {
                Error::ObjectNotExist(f) => ReplyBody::ObjectNotExist(fill(f)),
                Error::FacetNotExist(f) => ReplyBody::FacetNotExist(fill(f)),
                Error::OperationNotExist(f) => ReplyBody::OperationNotExist(fill(f)),
                _ => ReplyBody::from_error(&err),
            }
        }
    }
}
