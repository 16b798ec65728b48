//! `Ice.Default.SlicedFormat` and preserved exception slices.
//!
//! - A server whose communicator has `Ice.Default.SlicedFormat=1` writes user exceptions of
//!   operations without format metadata in the sliced format, and `reply_error_with_format`
//!   lets an operation's own `["format:…"]` win; a client with the property sends class
//!   parameters sliced.
//! - A receiver that knows only a base exception keeps the skipped slices
//!   (`take_exception_sliced_data`) and writes them back (`write_sliced_data`) so that the
//!   exception it passes on is byte for byte the one it received (ZeroC's
//!   Ice/slicing/exceptions relays this way).

mod vectors_common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe::codegen::{BoxFuture, Dispatcher, IncomingRequest, OutgoingResponse};
use floe::encoding::{
    AnyUserException, EncodingVersion, FormatType, InputStream, OperationError, OutputStream,
    SliceInfo, UserException, ValueRef,
};
use floe::{Blobject, BlobjectDispatcher, Communicator, Current, Error, OperationMode, Properties};
use vectors_common::*;

floe::encoding::inventory::submit! { BASE }

/// The slice flags byte of the first slice in a 1.1 exception encapsulation: after the
/// 6-byte header.
fn first_slice_flags(encaps: &[u8]) -> u8 {
    encaps[6]
}

const HAS_SLICE_SIZE: u8 = 0x10;

/// Replies to every request with a `DerivedErr`, in the operation's format `format`.
#[derive(Debug)]
struct Thrower(Option<FormatType>);

impl Dispatcher for Thrower {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse, Error>> {
        Box::pin(async move {
            let e = AnyUserException::User(Box::new(DerivedErr {
                code: 7,
                detail: "d".into(),
            }));
            request.reply_error_with_format(self.0, e)
        })
    }
}

/// Keeps the parameters of the last request.
#[derive(Debug, Default)]
struct Recorder(Mutex<Option<Bytes>>);

impl Blobject for Recorder {
    fn ice_invoke<'a>(
        &'a self,
        in_encaps: Bytes,
        _current: &'a Current,
    ) -> BoxFuture<'a, floe::Result<(bool, Bytes)>> {
        Box::pin(async move {
            *self.0.lock().unwrap() = Some(in_encaps);
            Ok((true, Bytes::from_static(&[6, 0, 0, 0, 1, 1])))
        })
    }
}

fn communicator(sliced: bool) -> Communicator {
    let p = Properties::new();
    if sliced {
        p.set_property("Ice.Default.SlicedFormat", "1");
    }
    Communicator::with_properties(p).unwrap()
}

#[tokio::test]
async fn the_default_format_property_applies_to_replies_and_requests() {
    for sliced in [false, true] {
        let server = communicator(sliced);
        let adapter = server
            .create_object_adapter_with_endpoints("", "tcp -h 127.0.0.1 -p 0")
            .await
            .unwrap();
        adapter
            .add(Arc::new(Thrower(None)), "default".parse().unwrap())
            .unwrap();
        adapter
            .add(
                Arc::new(Thrower(Some(FormatType::Compact))),
                "compact".parse().unwrap(),
            )
            .unwrap();
        let recorder = Arc::new(Recorder::default());
        adapter
            .add(
                Arc::new(BlobjectDispatcher(recorder.clone())),
                "recorder".parse().unwrap(),
            )
            .unwrap();
        adapter.activate().unwrap();
        let client = communicator(sliced);
        let endpoint = adapter.endpoints()[0].to_string();
        let prx = |id: &str| {
            client
                .string_to_proxy(&format!("{id}:{endpoint}"))
                .unwrap()
                .unwrap()
        };

        let empty = Bytes::from_static(&[6, 0, 0, 0, 1, 1]);
        let (ok, encaps) = prx("default")
            .ice_invoke("op", OperationMode::Normal, empty.clone(), None)
            .await
            .unwrap();
        assert!(!ok);
        assert_eq!(
            first_slice_flags(&encaps) & HAS_SLICE_SIZE != 0,
            sliced,
            "sliced={sliced}: {}",
            hex(&encaps)
        );
        let (ok, encaps) = prx("compact")
            .ice_invoke("op", OperationMode::Normal, empty, None)
            .await
            .unwrap();
        assert!(!ok);
        assert_eq!(
            first_slice_flags(&encaps) & HAS_SLICE_SIZE,
            0,
            "format:compact wins: {}",
            hex(&encaps)
        );

        // A class parameter from a typed invocation without format metadata.
        let value = Some(ValueRef::new(Base {
            id: 1,
            tag: "b".into(),
        }));
        prx("recorder")
            .invoke::<(), Error>(
                "op",
                OperationMode::Normal,
                None,
                false,
                |os| os.write_value(&value),
                |_| Ok(()),
            )
            .await
            .unwrap();
        let params = recorder.0.lock().unwrap().clone().unwrap();
        // Header, the instance marker (1), then the slice flags.
        assert_eq!(
            params[7] & HAS_SLICE_SIZE != 0,
            sliced,
            "sliced={sliced}: {}",
            hex(&params)
        );
        client.destroy().await;
        server.destroy().await;
    }
}

/// A receiver's view of the exceptions: it knows `BaseErr` only, and keeps what it skipped.
#[derive(Debug)]
enum KnowsBase {
    Base(BaseErr, Vec<SliceInfo>),
    Runtime(Error),
}

impl From<Error> for KnowsBase {
    fn from(e: Error) -> Self {
        KnowsBase::Runtime(e)
    }
}

impl OperationError for KnowsBase {
    fn decode_user_exception(
        type_id: &str,
        is: &mut InputStream<'_>,
    ) -> Option<Result<Self, Error>> {
        (type_id == "::Wire::BaseErr").then(|| {
            let slices = is.take_exception_sliced_data();
            BaseErr::decode_exception(is).map(|b| KnowsBase::Base(b, slices))
        })
    }
    fn into_dispatch(self) -> floe::encoding::DispatchError {
        unreachable!("only decoded here")
    }
}

/// `BaseErr` with the slices it was received with, written back first.
#[derive(Debug)]
struct PreservedBase(BaseErr, Vec<SliceInfo>);

impl std::fmt::Display for PreservedBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for PreservedBase {}

impl UserException for PreservedBase {
    fn ice_id(&self) -> &'static str {
        self.0.ice_id()
    }
    fn encode_exception(&self, os: &mut OutputStream) {
        os.write_sliced_data(&self.1);
        self.0.encode_exception(os);
    }
    fn uses_classes(&self) -> bool {
        false
    }
}

fn read_as_base(bytes: &[u8]) -> (BaseErr, Vec<SliceInfo>) {
    let mut is = InputStream::new(bytes, EncodingVersion::V1_0);
    is.start_encapsulation().unwrap();
    match is.read_exception::<KnowsBase>() {
        KnowsBase::Base(base, slices) => (base, slices),
        KnowsBase::Runtime(e) => panic!("not decoded as the base: {e}"),
    }
}

#[test]
fn skipped_exception_slices_are_kept_and_written_back_unchanged() {
    let derived = DerivedErr {
        code: 3,
        detail: "lost in the middle".into(),
    };
    for (enc, format, kept) in [
        (EncodingVersion::V1_1, FormatType::Sliced, true),
        (EncodingVersion::V1_0, FormatType::Sliced, false),
    ] {
        let bytes = encode_encaps(enc, format, |os| os.write_exception(&derived));
        let (base, slices) = read_as_base(&bytes);
        assert_eq!(base.code, 3);
        assert_eq!(slices.len(), usize::from(kept), "{enc}");
        if kept {
            assert_eq!(slices[0].type_id, "::Wire::DerivedErr");
            let again = encode_encaps(enc, format, |os| {
                os.write_exception(&PreservedBase(base, slices))
            });
            assert_eq!(hex(&again), hex(&bytes), "passed on unchanged");
        }
    }
    // Written in the compact format, the preserved slices are left out: the receiver gets the
    // base exception.
    let bytes = encode_encaps(EncodingVersion::V1_1, FormatType::Sliced, |os| {
        os.write_exception(&derived)
    });
    let (base, slices) = read_as_base(&bytes);
    let compact = encode_encaps(EncodingVersion::V1_1, FormatType::Compact, |os| {
        os.write_exception(&PreservedBase(base.clone(), slices))
    });
    let plain = encode_encaps(EncodingVersion::V1_1, FormatType::Compact, |os| {
        os.write_exception(&base)
    });
    assert_eq!(hex(&compact), hex(&plain));
}
