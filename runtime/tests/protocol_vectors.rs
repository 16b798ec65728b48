//! Every message of the captured Ice 3.7.8 sessions (`ice/vectors/out/rpc_events.json`) goes
//! through Floe's framing: header fields and decoded fields must match the capture, and
//! re-encoding an uncompressed message must give back the captured bytes.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use floe::protocol::{
    FrameDecoder, Message, MessageType, ReplyBody, ReplyData, RequestData, build_message,
    message_size_max_bytes,
};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FLOE_VECTORS") {
        return PathBuf::from(dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for candidate in [
        root.join("ice/vectors/out"),
        root.join("../shared/ice/vectors/out"),
    ] {
        if candidate.join("rpc_events.json").exists() {
            return candidate;
        }
    }
    panic!(
        "the Ice wire captures are missing: expected rpc_events.json in {} or {} (or set FLOE_VECTORS)",
        root.join("ice/vectors/out").display(),
        root.join("../shared/ice/vectors/out").display()
    );
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn number_prefix(v: &Value) -> u64 {
    v.as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn check_request(req: &RequestData, d: &Value, what: &str) {
    assert_eq!(req.name, d["identity"]["name"].as_str().unwrap(), "{what}");
    assert_eq!(
        req.category,
        d["identity"]["category"].as_str().unwrap(),
        "{what}"
    );
    let facet: Vec<&str> = d["facet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(req.facet, facet.first().copied().unwrap_or(""), "{what}");
    assert_eq!(req.operation, d["operation"].as_str().unwrap(), "{what}");
    assert_eq!(req.mode as u64, number_prefix(&d["mode"]), "{what}");
    let ctx = d["context"].as_object().unwrap();
    assert_eq!(req.context.len(), ctx.len(), "{what}");
    for (k, v) in ctx {
        assert_eq!(req.context.get(k).map(String::as_str), v.as_str(), "{what}");
    }
    let p = &d["params"];
    assert_eq!(
        req.params.len() as u64,
        p["size"].as_u64().unwrap(),
        "{what}"
    );
    let enc = format!("{}.{}", req.params[4], req.params[5]);
    assert_eq!(enc, p["encoding"].as_str().unwrap(), "{what}");
    assert_eq!(
        &req.params[6..],
        &hex(p["body_hex"].as_str().unwrap())[..],
        "{what}"
    );
}

#[test]
fn every_captured_message_decodes_and_re_encodes() {
    let path = vectors_dir().join("rpc_events.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let decoder = FrameDecoder::new(message_size_max_bytes(1024));
    let mut checked = 0;
    let mut compressed = 0;
    let mut types = std::collections::HashSet::new();
    for ev in json["events"].as_array().unwrap() {
        if ev["kind"] != "msg" {
            continue;
        }
        let what = format!("{} seq {}", ev["scenario"], ev["seq"]);
        let bytes = hex(ev["hex"].as_str().unwrap());
        let d = &ev["decoded"];
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = decoder
            .decode(&mut buf)
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: incomplete"));
        assert!(buf.is_empty(), "{what}: bytes left over");
        assert_eq!(
            frame.header.size as u64,
            d["size"].as_u64().unwrap(),
            "{what}"
        );
        assert_eq!(
            frame.header.compression as u64,
            d["compression"].as_u64().unwrap(),
            "{what}"
        );
        assert_eq!(
            frame.header.message_type as u64,
            number_prefix(&d["type"]),
            "{what}"
        );
        types.insert(frame.header.message_type);
        if frame.header.compression == 2 {
            compressed += 1;
            let body = hex(d["uncompressed_body_hex"].as_str().unwrap());
            assert_eq!(&frame.body[..], &body[..], "{what}: decompressed body");
            assert_eq!(
                frame.body.len() as u64 + 14,
                d["uncompressedSize"].as_u64().unwrap(),
                "{what}"
            );
            // Our compressor produces a message that decodes back to the same body.
            let again = build_message(frame.header.message_type, &frame.body, true);
            assert_eq!(again[9], 2, "{what}");
            let back = decoder
                .decode(&mut BytesMut::from(&again[..]))
                .unwrap()
                .unwrap();
            assert_eq!(back.body, frame.body, "{what}");
            Message::parse(&back).unwrap();
            checked += 1;
            continue;
        }
        let msg = Message::parse(&frame).unwrap_or_else(|e| panic!("{what}: {e}"));
        let body: Bytes = match &msg {
            Message::Request(req) => {
                assert_eq!(
                    req.request_id as i64,
                    d["requestId"].as_i64().unwrap(),
                    "{what}"
                );
                check_request(req, d, &what);
                req.request_body().freeze()
            }
            Message::Batch(reqs) => {
                let want = d["requests"].as_array().unwrap();
                assert_eq!(
                    reqs.len() as u64,
                    d["batchCount"].as_u64().unwrap(),
                    "{what}"
                );
                let mut fields = BytesMut::new();
                for (r, w) in reqs.iter().zip(want) {
                    check_request(r, w, &what);
                    r.write_fields(&mut fields);
                }
                floe::protocol::batch_body(reqs.len(), &fields).freeze()
            }
            Message::Reply(reply) => {
                assert_eq!(
                    reply.request_id as i64,
                    d["requestId"].as_i64().unwrap(),
                    "{what}"
                );
                assert_eq!(
                    reply.body.status() as u64,
                    number_prefix(&d["replyStatus"]),
                    "{what}"
                );
                match &reply.body {
                    ReplyBody::Ok(e) | ReplyBody::UserException(e) => {
                        assert_eq!(
                            e.len() as u64,
                            d["payload"]["size"].as_u64().unwrap(),
                            "{what}"
                        );
                        assert_eq!(
                            &e[6..],
                            &hex(d["payload"]["body_hex"].as_str().unwrap())[..],
                            "{what}"
                        );
                    }
                    ReplyBody::ObjectNotExist(f)
                    | ReplyBody::FacetNotExist(f)
                    | ReplyBody::OperationNotExist(f) => {
                        assert_eq!(f.name, d["identity"]["name"].as_str().unwrap(), "{what}");
                        assert_eq!(
                            f.category,
                            d["identity"]["category"].as_str().unwrap(),
                            "{what}"
                        );
                        assert_eq!(f.operation, d["operation"].as_str().unwrap(), "{what}");
                        let facet = d["facet"].as_array().unwrap();
                        assert_eq!(
                            f.facet,
                            facet.first().and_then(Value::as_str).unwrap_or(""),
                            "{what}"
                        );
                    }
                    ReplyBody::UnknownLocalException(s)
                    | ReplyBody::UnknownUserException(s)
                    | ReplyBody::UnknownException(s) => {
                        assert_eq!(s, d["unknown"].as_str().unwrap(), "{what}");
                    }
                }
                ReplyData {
                    request_id: reply.request_id,
                    body: reply.body.clone(),
                }
                .to_body()
                .freeze()
            }
            Message::ValidateConnection | Message::CloseConnection => Bytes::new(),
        };
        let rebuilt = match frame.header.message_type {
            MessageType::CloseConnection => floe::protocol::close_connection_message(),
            t => build_message(t, &body, frame.header.compression == 1),
        };
        assert_eq!(
            hex_string(&rebuilt),
            hex_string(&bytes),
            "{what}: re-encoded bytes differ"
        );
        checked += 1;
    }
    assert!(checked >= 200, "only {checked} messages checked");
    assert!(
        compressed >= 2,
        "the compressed messages of 19_compression were not seen"
    );
    assert_eq!(types.len(), 5, "every message type appears in the captures");
}

#[test]
fn whole_connection_streams_split_into_the_captured_messages() {
    let text = std::fs::read_to_string(vectors_dir().join("rpc_events.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let mut streams: std::collections::BTreeMap<(u64, String), (Vec<u8>, usize)> =
        Default::default();
    for ev in json["events"].as_array().unwrap() {
        if ev["kind"] == "msg" {
            let e = streams
                .entry((
                    ev["conn"].as_u64().unwrap(),
                    ev["dir"].as_str().unwrap().to_string(),
                ))
                .or_default();
            e.0.extend(hex(ev["hex"].as_str().unwrap()));
            e.1 += 1;
        }
    }
    let decoder = FrameDecoder::new(message_size_max_bytes(1024));
    for ((conn, dir), (bytes, count)) in streams {
        let mut buf = BytesMut::new();
        let mut seen = 0;
        // Feed the stream 7 bytes at a time, as a slow socket would.
        for chunk in bytes.chunks(7) {
            buf.extend_from_slice(chunk);
            while decoder.decode(&mut buf).unwrap().is_some() {
                seen += 1;
            }
        }
        assert_eq!(seen, count, "conn {conn} {dir}");
        assert!(buf.is_empty());
    }
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
