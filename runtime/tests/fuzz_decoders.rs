//! Property tests: the framing, message, proxy-string, endpoint and property-line parsers never
//! panic, whatever they are fed, and the framing never asks for more memory than the limit.

use bytes::BytesMut;
use floe::protocol::{FrameDecoder, Message, MessageType, build_message};
use floe::{Communicator, Properties};
use proptest::prelude::*;

fn header(ty: u8, comp: u8, size: i32) -> Vec<u8> {
    let mut v = b"IceP\x01\x00\x01\x00".to_vec();
    v.push(ty);
    v.push(comp);
    v.extend_from_slice(&size.to_le_bytes());
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn framing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dec = FrameDecoder::new(64 * 1024);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = dec.decode(&mut buf) {
            let _ = Message::parse(&frame);
        }
        prop_assert!(buf.capacity() <= 64 * 1024 + 400);
    }

    #[test]
    fn message_bodies_never_panic(ty in 0u8..3, comp in 0u8..3, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dec = FrameDecoder::new(64 * 1024);
        let mut msg = header(ty, comp, (14 + body.len()) as i32);
        msg.extend_from_slice(&body);
        if let Ok(Some(frame)) = dec.decode(&mut BytesMut::from(&msg[..])) {
            let _ = Message::parse(&frame);
        }
    }

    #[test]
    fn compressed_bodies_never_panic(claimed in any::<i32>(), tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let dec = FrameDecoder::new(64 * 1024);
        let mut body = claimed.to_le_bytes().to_vec();
        body.extend_from_slice(b"BZh1");
        body.extend_from_slice(&tail);
        let mut msg = header(0, 2, (14 + body.len()) as i32);
        msg.extend_from_slice(&body);
        let _ = dec.decode(&mut BytesMut::from(&msg[..]));
    }

    #[test]
    fn compression_round_trips(body in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let dec = FrameDecoder::new(1 << 20);
        let msg = build_message(MessageType::Reply, &body, true);
        let frame = dec.decode(&mut BytesMut::from(&msg[..])).unwrap().unwrap();
        prop_assert_eq!(&frame.body[..], &body[..]);
    }

    #[test]
    fn proxy_strings_never_panic(s in "[ -~]{0,60}") {
        let comm = Communicator::with_properties(Properties::new()).unwrap();
        if let Ok(Some(p)) = comm.string_to_proxy(&s) {
            // Whatever parses prints to a string that parses to the same proxy.
            let again = comm.string_to_proxy(&p.to_string()).unwrap().unwrap();
            prop_assert_eq!(again, p);
        }
    }

    #[test]
    fn structured_proxy_strings_round_trip(
        name in "[a-z/\\\\ :@\"']{1,8}",
        facet in "[a-z :]{0,5}",
        mode in prop::sample::select(vec!["-t", "-o", "-O", "-d", "-D"]),
        port in any::<u16>(),
        timeout in prop::sample::select(vec!["", " -t 1", " -t infinite", " -t 90000"]),
        z in any::<bool>(),
    ) {
        let comm = Communicator::with_properties(Properties::new()).unwrap();
        let id = floe::Identity::new(name, "");
        let facet = if facet.is_empty() { String::new() } else { format!(" -f \"{facet}\"") };
        let z = if z { " -z" } else { "" };
        let s = format!("\"{id}\"{facet} {mode}:tcp -h 127.0.0.1 -p {port}{timeout}{z}");
        let p = comm.string_to_proxy(&s).unwrap().unwrap();
        prop_assert_eq!(&p.ice_get_identity().name, &id.name);
        let again = comm.string_to_proxy(&p.to_string()).unwrap().unwrap();
        prop_assert_eq!(again, p);
    }

    #[test]
    fn endpoint_strings_never_panic(s in "[ -~]{0,60}") {
        let _ = floe::Endpoint::parse(&s, "", 60000);
    }

    #[test]
    fn property_lines_never_panic(s in "\\PC{0,60}") {
        Properties::new().parse_line(&s);
    }
}
