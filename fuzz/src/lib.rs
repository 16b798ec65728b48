//! What the fuzz targets run, as plain functions: the decoding a Floe server and a Floe client
//! apply to received bytes. The targets in `fuzz_targets/` call these; any panic is a bug.

use bytes::BytesMut;
use floe::Error;
use floe::codegen::InputStream;
use floe::encoding::{EncodingVersion, ProxyData};
use floe::protocol::{FrameDecoder, Message, ReplyBody};

/// Largest message the decoder accepts here (1 MiB, Ice.MessageSizeMax's default).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Splits `data` into frames as a connection does, parses each message, and reads what the
/// receiver reads next: the parameter encapsulation of a request (as classes, the most generic
/// content), the result or user exception of a reply.
pub fn messages(data: &[u8]) {
    let decoder = FrameDecoder::new(MAX_MESSAGE);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        assert!(frame.body.len() <= MAX_MESSAGE, "a frame over the limit");
        match Message::parse(&frame) {
            Ok(Message::Request(req)) => params(&req.params),
            Ok(Message::Batch(reqs)) => reqs.iter().for_each(|r| params(&r.params)),
            Ok(Message::Reply(reply)) => match reply.body {
                ReplyBody::Ok(encaps) => params(&encaps),
                ReplyBody::UserException(encaps) => user_exception(&encaps),
                _ => {}
            },
            Ok(_) | Err(_) => {}
        }
    }
    assert!(
        buf.capacity() <= MAX_MESSAGE + data.len(),
        "reserved past the limit"
    );
}

/// Reads an encapsulation as a list of class instances followed by the pending ones (1.0), as
/// the runtime reads parameters and results: on failure the runtime frees what was read.
fn params(encaps: &[u8]) {
    let mut is = InputStream::new(encaps, EncodingVersion::V1_0);
    let mut values = Vec::new();
    let mut read = || -> Result<(), Error> {
        is.start_encapsulation()?;
        while !is.is_at_end() {
            values.push(is.read_value()?);
        }
        is.read_pending_values()?;
        is.end_encapsulation()
    };
    let _ = read();
    // What was read, whole or not, may hold cycles: like a C++ program holding shared_ptr
    // cycles, the receiver breaks them when it is done with the values.
    drop(values);
    is.discard_values();
}

/// Reads a user exception as an operation that knows none ([`Error`] as its error type): every
/// slice is skipped (or the exception reported unknown), as for a client that lacks the
/// thrower's Slice.
fn user_exception(encaps: &[u8]) {
    let mut is = InputStream::new(encaps, EncodingVersion::V1_0);
    if is.start_encapsulation().is_ok() {
        let _: Error = is.read_exception();
        let _ = is.end_encapsulation();
    }
    is.discard_values();
}

/// Interprets `data` as a small program: byte 0 picks the encoding, byte 1 the number of reads,
/// the next bytes which reads to make (builtins, strings, sequences, dictionaries, enums,
/// optionals, classes, exceptions, proxies, slices, nested encapsulations), the rest is the
/// stream they read from.
pub fn stream(data: &[u8]) {
    let [flags, count, rest @ ..] = data else {
        return;
    };
    let count = usize::from(*count).min(rest.len());
    let (ops, bytes) = rest.split_at(count);
    let encoding = if flags & 1 == 0 {
        EncodingVersion::V1_1
    } else {
        EncodingVersion::V1_0
    };
    let mut is = InputStream::new(bytes, encoding);
    if flags & 2 != 0 && is.start_encapsulation().is_err() {
        return;
    }
    for &op in ops {
        if read_one(&mut is, op).is_err() {
            break;
        }
    }
    is.discard_values();
}

fn read_one(is: &mut InputStream<'_>, op: u8) -> Result<(), Error> {
    use std::collections::HashMap;
    match op % 24 {
        0 => drop(is.read::<bool>()?),
        1 => drop(is.read::<u8>()?),
        2 => drop(is.read::<i16>()?),
        3 => drop(is.read::<i32>()?),
        4 => drop(is.read::<i64>()?),
        5 => drop(is.read::<f32>()?),
        6 => drop(is.read::<f64>()?),
        7 => drop(is.read::<String>()?),
        8 => drop(is.read_size()?),
        9 => drop(is.read::<Vec<String>>()?),
        10 => drop(is.read::<HashMap<String, i32>>()?),
        11 => drop(is.read::<Vec<Vec<u8>>>()?),
        12 => drop(is.read::<Vec<f64>>()?),
        13 => drop(is.read_value()?),
        14 => drop(is.read_tagged::<i32>(i32::from(op / 24))?),
        15 => drop(is.read_tagged::<String>(i32::from(op / 24))?),
        16 => drop(is.read_tagged::<Vec<i16>>(i32::from(op / 24))?),
        17 => drop(is.read::<Option<ProxyData>>()?),
        18 => drop(is.read_enum(i32::from(op))?),
        19 => return Err(is.read_exception()),
        20 => drop(is.start_encapsulation()?),
        21 => is.end_encapsulation()?,
        22 => is.read_pending_values()?,
        _ => {
            is.start_slice()?;
            is.end_slice()?;
        }
    }
    Ok(())
}
