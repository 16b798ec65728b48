//! Random and mutated bytes fed to every reader: decoding may fail, but it never panics, never
//! allocates more than the input justifies, and always terminates.

mod vectors_common;

use std::collections::HashMap;
use std::sync::OnceLock;

use floe::Error;
use floe::encoding::{
    AnyUserException, EncodingVersion, ExceptionFactory, InputStream, OutputStream, ProxyData,
    UserException, ValueRef,
};
use floe::identity::{Identity, unescape_string};
use proptest::prelude::*;
use vectors_common::*;

floe::encoding::inventory::submit! { BASE }
floe::encoding::inventory::submit! { DERIVED }
floe::encoding::inventory::submit! { COMPACT }
floe::encoding::inventory::submit! { WITHOPT }

fn boxed<E: UserException>(r: Result<E, Error>) -> Result<Box<dyn UserException>, Error> {
    r.map(|e| Box::new(e) as Box<dyn UserException>)
}

floe::encoding::inventory::submit! {
    ExceptionFactory { type_id: "::Wire::BaseErr", decode: |is| boxed(BaseErr::decode_exception(is)) }
}
floe::encoding::inventory::submit! {
    ExceptionFactory { type_id: "::Wire::DerivedErr", decode: |is| boxed(DerivedErr::decode_exception(is)) }
}
floe::encoding::inventory::submit! {
    ExceptionFactory { type_id: "::Wire::OptErr", decode: |is| boxed(OptErr::decode_exception(is)) }
}
floe::encoding::inventory::submit! {
    ExceptionFactory { type_id: "::Wire::ClassErr", decode: |is| boxed(ClassErr::decode_exception(is)) }
}

type Reader = fn(&mut InputStream<'_>) -> Result<(), Error>;

fn readers() -> Vec<Reader> {
    vec![
        |is| is.read::<bool>().map(drop),
        |is| is.read::<i64>().map(drop),
        |is| is.read::<f64>().map(drop),
        |is| is.read_size().map(drop),
        |is| is.read::<String>().map(drop),
        |is| is.read::<Vec<u8>>().map(drop),
        |is| is.read::<Vec<bool>>().map(drop),
        |is| is.read::<Vec<i32>>().map(drop),
        |is| is.read::<Vec<f32>>().map(drop),
        |is| is.read::<Vec<String>>().map(drop),
        |is| is.read::<Vec<Vec<Point>>>().map(drop),
        |is| is.read::<Vec<Person>>().map(drop),
        |is| is.read::<HashMap<String, i32>>().map(drop),
        |is| is.read::<HashMap<i32, Point>>().map(drop),
        |is| is.read::<Color>().map(drop),
        |is| is.read::<Big>().map(drop),
        |is| is.read::<Huge>().map(drop),
        |is| is.read::<Identity>().map(drop),
        |is| is.read::<Option<ProxyData>>().map(drop),
        |is| is.read::<Vec<Option<ProxyData>>>().map(drop),
        |is| {
            is.read_value()?;
            is.read_value()?;
            is.read_pending_values()
        },
        |is| {
            is.read::<Vec<Option<ValueRef>>>()
                .and_then(|_| is.read_pending_values())
        },
        |is| {
            is.read_tagged::<i32>(1)?;
            is.read_tagged::<String>(2)?;
            is.read_tagged::<Point>(5)?;
            is.read_tagged::<Vec<String>>(6)?;
            is.read_tagged::<Color>(7)?;
            is.read_tagged::<Person>(8)?;
            is.read_tagged::<Option<ValueRef>>(9)?;
            is.read_tagged::<Option<ProxyData>>(10)?;
            is.read_tagged::<i64>(40).map(drop)
        },
        |is| match is.read_exception::<AnyUserException>() {
            AnyUserException::User(_) => Ok(()),
            AnyUserException::Runtime(e) => Err(e),
        },
        |is| is.read_encapsulation().map(drop),
        |is| {
            is.start_encapsulation()?;
            is.read::<Vec<String>>()?;
            is.end_encapsulation()
        },
    ]
}

/// Runs every reader on `bytes`, raw and as an encapsulation, in both encodings.
fn run_all(bytes: &[u8]) {
    for enc in [EncodingVersion::V1_0, EncodingVersion::V1_1] {
        for reader in readers() {
            let mut is = InputStream::new(bytes, enc);
            let _ = reader(&mut is);
            let mut is = InputStream::new(bytes, enc);
            if is.start_encapsulation().is_ok() {
                let _ = reader(&mut is);
                let _ = is.end_encapsulation();
            }
        }
    }
}

/// Every captured encapsulation: the marshal vectors and the RPC parameter/reply bodies.
fn seeds() -> &'static Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds: Vec<Vec<u8>> = fixture("marshal_vectors.json")
            .as_array()
            .unwrap()
            .iter()
            .map(|r| unhex(r["encaps_hex"].as_str().unwrap()))
            .collect();
        let rpc = fixture("rpc_events.json");
        for e in rpc["events"].as_array().unwrap() {
            let d = &e["decoded"];
            for part in [&d["params"], &d["payload"]] {
                if let (Some(enc), Some(body)) =
                    (part["encoding"].as_str(), part["body_hex"].as_str())
                {
                    let mut os = OutputStream::new(EncodingVersion::V1_0);
                    // Any version, 1.2 of the unsupported-encoding scenario included.
                    let (major, minor) = enc.split_once('.').expect("X.Y");
                    let v = EncodingVersion {
                        major: major.parse().unwrap(),
                        minor: minor.parse().unwrap(),
                    };
                    os.write_encapsulation(v, &unhex(body));
                    seeds.push(os.finish().unwrap());
                }
            }
        }
        assert!(seeds.len() > 300, "fixtures loaded");
        seeds
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (
            any::<usize>(),
            prop_oneof![Just(0xffu8), Just(0x7f), Just(0x01), any::<u8>()]
        )
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Set(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % n] = b;
                }
            }
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Remove(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % n);
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
        }
    }
    bytes
}

proptest! {
    // 512 cases by default; PROPTEST_CASES raises it for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        run_all(&bytes);
    }

    #[test]
    fn mutated_captures_never_panic(seed in any::<prop::sample::Index>(), mutations in proptest::collection::vec(mutation(), 1..4)) {
        let seeds = seeds();
        let bytes = apply(seeds[seed.index(seeds.len())].clone(), &mutations);
        run_all(&bytes);
    }

    #[test]
    fn identity_strings_never_panic(s in "(\\PC|\\\\[0-7xuU/]|[\\\\/])*") {
        let _ = s.parse::<Identity>();
        let _ = unescape_string(&s, "/");
        if let Ok(id) = s.parse::<Identity>() {
            // Whatever parses prints back to a string that parses to the same identity.
            prop_assert_eq!(id.to_string().parse::<Identity>().unwrap(), id);
        }
    }
}

#[test]
fn every_capture_decodes_under_every_reader_without_panicking() {
    for s in seeds() {
        run_all(s);
    }
}

#[test]
fn registered_exception_factories_decode_any_user_exception() {
    let seeds = seeds();
    // exc_derived_compact's reply: 00 12"::Wire::DerivedErr" ... (1.1, compact).
    let derived = unhex(
        "3b000000 0101 00123a3a576972653a3a446572697665644572720b64657461696c2074657874200f3a3a576972653a3a4261736545727207000000",
    );
    assert!(seeds.contains(&derived));
    let mut is = InputStream::new(&derived, EncodingVersion::V1_0);
    is.start_encapsulation().unwrap();
    match is.read_exception::<AnyUserException>() {
        AnyUserException::User(e) => assert_eq!(e.ice_id(), "::Wire::DerivedErr"),
        AnyUserException::Runtime(e) => panic!("{e}"),
    }
    is.end_encapsulation().unwrap();
}

#[test]
fn huge_counts_fail_fast() {
    // 2^31-1 strings, 2^31-1 proxies, 2^31-1 class references: refused before allocating.
    for reader in readers() {
        for enc in [EncodingVersion::V1_0, EncodingVersion::V1_1] {
            let bytes = unhex("ffffffff7f00");
            let mut is = InputStream::new(&bytes, enc);
            let _ = reader(&mut is);
        }
    }
    let bytes = unhex("ffffffff7f00");
    let mut is = InputStream::new(&bytes, EncodingVersion::V1_1);
    assert!(is.read::<Vec<String>>().is_err());
}
