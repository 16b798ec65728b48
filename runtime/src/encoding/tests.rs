//! Unit tests of the streams: sizes, primitives, strings, containers, enums, encapsulations.

use std::collections::HashMap;

use super::*;
use crate::error::Error;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn encode<T: Encodable + ?Sized>(v: &T, enc: EncodingVersion) -> Vec<u8> {
    let mut os = OutputStream::new(enc);
    os.write(v);
    os.finish().unwrap()
}

fn decode<T: SliceType>(bytes: &[u8], enc: EncodingVersion) -> Result<T, Error> {
    let mut is = InputStream::new(bytes, enc);
    let v = is.read::<T>()?;
    assert!(is.is_at_end(), "trailing bytes after decode");
    Ok(v)
}

#[test]
fn sizes_use_one_byte_below_255_and_ff_int32_above() {
    for (n, expected) in [
        (0usize, "00"),
        (254, "fe"),
        (255, "ffff000000"),
        (256, "ff00010000"),
        (300, "ff2c010000"),
    ] {
        let mut os = OutputStream::new(EncodingVersion::V1_1);
        os.write_size(n);
        let bytes = os.finish().unwrap();
        assert_eq!(hex(&bytes), expected);
        let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
        assert_eq!(is.read_size().unwrap(), n);
    }
    // The long form is accepted for small values; negative sizes are refused.
    assert_eq!(
        InputStream::new(&unhex("ff05000000"), EncodingVersion::V1_1)
            .read_size()
            .unwrap(),
        5
    );
    assert!(
        InputStream::new(&unhex("ffffffffff"), EncodingVersion::V1_1)
            .read_size()
            .is_err()
    );
    assert!(
        InputStream::new(&unhex("ff0500"), EncodingVersion::V1_1)
            .read_size()
            .is_err()
    );
}

#[test]
fn primitives_are_little_endian() {
    let e = EncodingVersion::V1_1;
    assert_eq!(hex(&encode(&true, e)), "01");
    assert_eq!(hex(&encode(&255u8, e)), "ff");
    assert_eq!(hex(&encode(&-2i16, e)), "feff");
    assert_eq!(hex(&encode(&0x12345678i32, e)), "78563412");
    assert_eq!(hex(&encode(&0x0102030405060708i64, e)), "0807060504030201");
    assert_eq!(hex(&encode(&-1.5f32, e)), "0000c0bf");
    assert_eq!(hex(&encode(&std::f64::consts::PI, e)), "182d4454fb210940");
    assert_eq!(decode::<i16>(&unhex("3412"), e).unwrap(), 0x1234);
    assert_eq!(decode::<f64>(&unhex("00000000000002c0"), e).unwrap(), -2.25);
    assert!(decode::<i64>(&unhex("01020304"), e).is_err());
}

#[test]
fn strings_are_utf8_with_a_byte_count() {
    let e = EncodingVersion::V1_0;
    assert_eq!(hex(&encode("", e)), "00");
    assert_eq!(hex(&encode("héllo", e)), "0668c3a96c6c6f");
    let long = "x".repeat(255);
    let bytes = encode(long.as_str(), e);
    assert_eq!(hex(&bytes[..5]), "ffff000000");
    assert_eq!(decode::<String>(&bytes, e).unwrap(), long);
    let err = decode::<String>(&unhex("02c328"), e).unwrap_err();
    assert!(matches!(err, Error::Marshal(_)), "{err:?}");
    assert!(decode::<String>(&unhex("05616263"), e).is_err());
}

#[test]
fn sequences_and_dictionaries() {
    let e = EncodingVersion::V1_1;
    assert_eq!(hex(&encode(&vec![1i32, -1], e)), "0201000000ffffffff");
    assert_eq!(hex(&encode(&[true, false][..], e)), "020100");
    assert_eq!(hex(&encode(&vec![1u8, 2, 3], e)), "03010203");
    let strings = vec![String::new(), "a".into(), "bc".into()];
    assert_eq!(hex(&encode(&strings, e)), "03000161026263");
    assert_eq!(
        decode::<Vec<String>>(&unhex("03000161026263"), e).unwrap(),
        strings
    );
    assert_eq!(
        decode::<Vec<bool>>(&unhex("03010002"), e).unwrap(),
        vec![true, false, true]
    );
    assert_eq!(
        decode::<Vec<f32>>(&unhex("010000803f"), e).unwrap(),
        vec![1.0]
    );
    let dict = decode::<HashMap<String, i32>>(&unhex("02016101000000016202000000"), e).unwrap();
    assert_eq!(dict.len(), 2);
    assert_eq!(dict["a"], 1);
    assert_eq!(dict["b"], 2);
    let one: HashMap<String, i32> = [("a".to_string(), 1)].into_iter().collect();
    assert_eq!(hex(&encode(&one, e)), "01016101000000");
}

#[test]
fn counts_are_checked_before_allocating() {
    let e = EncodingVersion::V1_1;
    // 2^31-1 ints announced, 4 bytes present.
    let err = decode::<Vec<i32>>(&unhex("ffffffff7f01000000"), e).unwrap_err();
    assert!(matches!(err, Error::Marshal(_)));
    assert!(decode::<Vec<String>>(&unhex("ff00000010"), e).is_err());
    assert!(decode::<HashMap<i32, i32>>(&unhex("0201000000"), e).is_err());
    assert!(decode::<Vec<u8>>(&unhex("0301"), e).is_err());
}

#[test]
fn enums_are_sizes_in_1_1_and_fixed_width_in_1_0() {
    let cases = [
        (2, 2, "02", "02"),
        (300, 301, "ff2c010000", "2c01"),
        (0, 301, "00", "0000"),
        (70000, 70000, "ff70110100", "70110100"),
        (0, 70000, "00", "00000000"),
    ];
    for (v, max, in11, in10) in cases {
        for (enc, expected) in [(EncodingVersion::V1_1, in11), (EncodingVersion::V1_0, in10)] {
            let mut os = OutputStream::new(enc);
            os.write_enum(v, max);
            let bytes = os.finish().unwrap();
            assert_eq!(hex(&bytes), expected);
            let mut is = InputStream::new(&bytes, enc);
            assert_eq!(is.read_enum(max).unwrap(), v);
            assert!(is.is_at_end());
        }
    }
}

#[test]
fn encapsulations_nest_and_carry_their_version() {
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(EncodingVersion::V1_1, FormatType::Compact);
    os.write(&7i32);
    os.start_encapsulation(EncodingVersion::V1_0, FormatType::Compact);
    os.write_enum(300, 301);
    os.end_encapsulation();
    assert_eq!(os.encoding(), EncodingVersion::V1_1);
    os.end_encapsulation();
    os.write_empty_encapsulation(EncodingVersion::V1_1);
    let bytes = os.finish().unwrap();
    assert_eq!(
        hex(&bytes),
        "1200000001010700000008000000010 02c01060000000101".replace(' ', "")
    );

    let mut is = InputStream::new(&bytes, EncodingVersion::V1_0);
    assert_eq!(is.start_encapsulation().unwrap(), EncodingVersion::V1_1);
    assert_eq!(is.read::<i32>().unwrap(), 7);
    assert_eq!(is.start_encapsulation().unwrap(), EncodingVersion::V1_0);
    assert_eq!(is.read_enum(301).unwrap(), 300);
    is.end_encapsulation().unwrap();
    is.end_encapsulation().unwrap();
    assert_eq!(is.start_encapsulation().unwrap(), EncodingVersion::V1_1);
    is.end_encapsulation().unwrap();
    assert!(is.is_at_end());
}

#[test]
fn encapsulation_reads_are_bounded_and_checked_at_the_end() {
    // A read past the encapsulation's end fails even though the buffer has more bytes.
    let bytes = unhex("0700000001010102030405");
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
    is.start_encapsulation().unwrap();
    assert!(is.read::<i32>().is_err());

    // 1.1: the exact end is required.
    let bytes = unhex("08000000010101 02");
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
    is.start_encapsulation().unwrap();
    is.read_u8().unwrap();
    assert!(is.end_encapsulation().is_err());

    // 1.0: one trailing byte is tolerated, two are not.
    let data = unhex("08000000010001 02");
    let mut is = InputStream::new(&data, EncodingVersion::V1_0);
    is.start_encapsulation().unwrap();
    is.read_u8().unwrap();
    is.end_encapsulation().unwrap();
    assert!(is.is_at_end());
    let data = unhex("09000000010001 0203");
    let mut is = InputStream::new(&data, EncodingVersion::V1_0);
    is.start_encapsulation().unwrap();
    is.read_u8().unwrap();
    assert!(is.end_encapsulation().is_err());
}

#[test]
fn encapsulation_headers_are_validated() {
    let e = EncodingVersion::V1_1;
    let err = InputStream::new(&unhex("060000000102"), e)
        .start_encapsulation()
        .unwrap_err();
    assert_eq!(err, Error::UnsupportedEncoding("1.2".into()));
    let err = InputStream::new(&unhex("060000000201"), e)
        .start_encapsulation()
        .unwrap_err();
    assert_eq!(err, Error::UnsupportedEncoding("2.1".into()));
    assert!(
        InputStream::new(&unhex("050000000101"), e)
            .start_encapsulation()
            .is_err()
    );
    assert!(
        InputStream::new(&unhex("ffffffff0101"), e)
            .start_encapsulation()
            .is_err()
    );
    assert!(
        InputStream::new(&unhex("0a0000000101"), e)
            .start_encapsulation()
            .is_err()
    );
    // Raw reading keeps an unknown version.
    let data = unhex("080000000102abcd");
    let mut is = InputStream::new(&data, e);
    let (body, v) = is.read_encapsulation().unwrap();
    assert_eq!(
        (hex(body), v),
        ("abcd".to_string(), EncodingVersion { major: 1, minor: 2 })
    );
}

#[test]
fn unbalanced_output_is_reported_by_finish() {
    let mut os = OutputStream::new(EncodingVersion::V1_1);
    os.start_encapsulation(EncodingVersion::V1_1, FormatType::Compact);
    assert!(os.finish().is_err());
    let mut os = OutputStream::new(EncodingVersion::V1_1);
    os.end_encapsulation();
    assert!(os.finish().is_err());
}

fn encaps_11(body: &str) -> Vec<u8> {
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.write_encapsulation(EncodingVersion::V1_1, &unhex(body));
    os.finish().unwrap()
}

#[test]
fn tag_bytes_follow_the_30_rule() {
    for (tag, expected) in [
        (1, "0a07000000"),
        (29, "ea07000000"),
        (30, "f21e07000000"),
        (300, "f2ff2c01000007000000"),
    ] {
        let mut os = OutputStream::new(EncodingVersion::V1_1);
        os.write_tagged(tag, &Some(7i32));
        let bytes = os.finish().unwrap();
        assert_eq!(hex(&bytes), expected);
        let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
        assert_eq!(is.read_tagged::<i32>(tag).unwrap(), Some(7));
        assert!(is.is_at_end());
    }
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.write_tagged(1, &Some(7i32));
    assert!(
        os.finish().unwrap().is_empty(),
        "optionals are never written in 1.0"
    );
}

#[test]
fn unknown_optionals_are_skipped_by_format() {
    // Tags 1 (F1), 2 (F2), 3 (F8), 4 (Size), 5 (VSize), 6 (FSize), 40 (F4), then the wanted 41.
    let body = "08 01 11 0200 1b 0800000000000000 24 ff2c010000 2d 03616263 36 03000000 010203 \
                f2 28 04000000 f2 29 05000000";
    let bytes = encaps_11(body);
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
    is.start_encapsulation().unwrap();
    assert_eq!(is.read_tagged::<i32>(41).unwrap(), Some(5));
    is.end_encapsulation().unwrap();

    // Reading an absent smaller tag after that does not move backwards; a larger one rewinds.
    let bytes = encaps_11("1a 03000000 2a 05000000");
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
    is.start_encapsulation().unwrap();
    assert_eq!(is.read_tagged::<i32>(2).unwrap(), None);
    assert_eq!(is.read_tagged::<i32>(3).unwrap(), Some(3));
    assert_eq!(is.read_tagged::<String>(4).unwrap(), None);
    assert_eq!(is.read_tagged::<i32>(5).unwrap(), Some(5));
    is.end_encapsulation().unwrap();
}

#[test]
fn end_of_encapsulation_skips_unread_optionals_in_1_1_only() {
    let bytes = encaps_11("01000000 0d 0162 1a 03000000");
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
    is.start_encapsulation().unwrap();
    assert_eq!(is.read::<i32>().unwrap(), 1);
    is.end_encapsulation().unwrap();
    assert!(is.is_at_end());

    // A truncated optional is an error, not a silent skip.
    let bytes = encaps_11("01000000 1a 0300");
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
    is.start_encapsulation().unwrap();
    is.read::<i32>().unwrap();
    assert!(is.end_encapsulation().is_err());
}

#[test]
fn an_optional_with_the_wrong_format_is_an_error() {
    let bytes = encaps_11("0d 03616263");
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
    is.start_encapsulation().unwrap();
    let err = is.read_tagged::<i32>(1).unwrap_err();
    assert!(
        matches!(&err, Error::Marshal(m) if m.contains("unexpected format")),
        "{err}"
    );
}

#[test]
fn vsize_and_fsize_prefixes_follow_ice() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut os = OutputStream::new(EncodingVersion::V1_1);
                os.write_tagged(1, &Some(vec![1u8, 2]));
                os.finish().unwrap()
            },
            "0d020102",
        ),
        (
            {
                let mut os = OutputStream::new(EncodingVersion::V1_1);
                os.write_tagged(1, &Some(vec![true]));
                os.finish().unwrap()
            },
            "0d0101",
        ),
        (
            {
                let mut os = OutputStream::new(EncodingVersion::V1_1);
                os.write_tagged(1, &Some(vec![1i32, 2]));
                os.finish().unwrap()
            },
            "0d09020100000002000000",
        ),
        (
            {
                let mut os = OutputStream::new(EncodingVersion::V1_1);
                os.write_tagged(1, &Some(Vec::<i16>::new()));
                os.finish().unwrap()
            },
            "0d0100",
        ),
        (
            {
                let mut os = OutputStream::new(EncodingVersion::V1_1);
                os.write_tagged(1, &Some(vec!["a".to_string()]));
                os.finish().unwrap()
            },
            "0e03000000010161",
        ),
        (
            {
                let mut os = OutputStream::new(EncodingVersion::V1_1);
                let d: HashMap<i32, i32> = [(1, 2)].into_iter().collect();
                os.write_tagged(1, &Some(d));
                os.finish().unwrap()
            },
            "0d09010100000002000000",
        ),
        (
            {
                let mut os = OutputStream::new(EncodingVersion::V1_1);
                let d: HashMap<String, i32> = [("a".into(), 2)].into_iter().collect();
                os.write_tagged(1, &Some(d));
                os.finish().unwrap()
            },
            "0e0700000001016102000000",
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(hex(&bytes), expected);
    }
    let data = unhex("0d09020100000002000000");
    let mut is = InputStream::new(&data, EncodingVersion::V1_1);
    assert_eq!(is.read_tagged::<Vec<i32>>(1).unwrap(), Some(vec![1, 2]));
    let data = unhex("0e0700000001016102000000");
    let mut is = InputStream::new(&data, EncodingVersion::V1_1);
    let d = is.read_tagged::<HashMap<String, i32>>(1).unwrap().unwrap();
    assert_eq!(d["a"], 2);
}

#[test]
fn empty_parameter_encapsulations_are_lenient_in_1_1_only() {
    for (bytes, ok) in [
        ("060000000101", true),
        ("0b00000001010a07000000", true),
        ("060000000100", true),
        ("0700000001000a", false),
        ("060000000102", false),
    ] {
        let data = unhex(bytes);
        let mut is = InputStream::new(&data, EncodingVersion::V1_0);
        let r = is.read_empty_encapsulation();
        assert_eq!(r.is_ok(), ok, "{bytes}: {r:?}");
        if ok {
            assert!(is.is_at_end());
        }
    }
}
