//! Ice's `proxy` suite, cut down: stringified proxies parse and print exactly as ZeroC 3.7.8
//! does (`ice/vectors/out/string_vectors.json`), bad strings are refused with the matching error,
//! and proxy builders return new proxies.

mod common;

use std::path::PathBuf;

use floe::encoding::EncodingVersion;
use floe::{Communicator, Error, InvocationMode, Properties};
use serde_json::Value;

fn vectors() -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        root.join("ice/vectors/out"),
        root.join("../shared/ice/vectors/out"),
    ];
    let dir = std::env::var("FLOE_VECTORS")
        .map(PathBuf::from)
        .ok()
        .or_else(|| {
            candidates
                .iter()
                .find(|c| c.join("string_vectors.json").exists())
                .cloned()
        })
        .unwrap_or_else(|| {
            panic!("string_vectors.json not found in {candidates:?} (or set FLOE_VECTORS)")
        });
    serde_json::from_str(&std::fs::read_to_string(dir.join("string_vectors.json")).unwrap())
        .unwrap()
}

fn communicator() -> Communicator {
    Communicator::with_properties(Properties::new()).unwrap()
}

#[test]
fn proxies_round_trip_like_zeroc() {
    let comm = communicator();
    let v = vectors();
    let cases = v["proxyRoundTrip"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let parsed = comm
            .string_to_proxy(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"));
        match case["toString"].as_str() {
            None => assert!(parsed.is_none(), "{input} should be a null proxy"),
            Some(expected) => {
                let prx = parsed.unwrap_or_else(|| panic!("{input} parsed to null"));
                assert_eq!(prx.to_string(), expected, "{input}");
                assert_eq!(
                    prx.ice_get_identity().name,
                    case["identity"]["name"].as_str().unwrap()
                );
                assert_eq!(
                    prx.ice_get_identity().category,
                    case["identity"]["category"].as_str().unwrap()
                );
                assert_eq!(prx.ice_get_facet(), case["facet"].as_str().unwrap());
                assert_eq!(
                    prx.ice_get_adapter_id(),
                    case["adapterId"].as_str().unwrap()
                );
                let eps: Vec<String> = prx
                    .ice_get_endpoints()
                    .iter()
                    .map(|e| e.to_string())
                    .collect();
                let want: Vec<&str> = case["endpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap())
                    .collect();
                assert_eq!(eps, want, "{input}");
                // Printing then parsing again gives an equal proxy.
                let again = comm.string_to_proxy(expected).unwrap().unwrap();
                assert_eq!(again, prx, "{input}");
            }
        }
    }
}

#[test]
fn bad_proxies_are_refused_like_zeroc() {
    let comm = communicator();
    let v = vectors();
    for case in v["proxyErrors"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        let err = comm.string_to_proxy(input).expect_err(input);
        let expected = case["error"].as_str().unwrap();
        let ok = match expected {
            "::Ice::ProxyParseException" => matches!(err, Error::ProxyParse(_)),
            "::Ice::EndpointParseException" => matches!(err, Error::EndpointParse(_)),
            "::Ice::IllegalIdentityException" => matches!(err, Error::IllegalArgument(_)),
            "::Ice::IdentityParseException" => is_identity_parse(&err),
            other => panic!("unexpected case {other}"),
        };
        assert!(ok, "{input}: expected {expected}, got {err:?}");
    }
}

fn is_identity_parse(err: &Error) -> bool {
    matches!(err, Error::IdentityParse(_))
}

#[test]
fn builders_return_new_proxies() {
    let comm = communicator();
    let base = comm
        .string_to_proxy("cat/id:tcp -h 127.0.0.1 -p 4061")
        .unwrap()
        .unwrap();
    let ow = base.ice_oneway();
    assert_eq!(base.ice_get_mode(), InvocationMode::Twoway);
    assert_eq!(ow.ice_get_mode(), InvocationMode::Oneway);
    assert_ne!(base, ow);
    assert_eq!(ow.ice_twoway(), base);
    assert_eq!(
        base.ice_batch_oneway().to_string(),
        "cat/id -O -e 1.1:tcp -h 127.0.0.1 -p 4061 -t 60000"
    );
    assert_eq!(
        base.ice_facet("f").to_string(),
        "cat/id -f f -t -e 1.1:tcp -h 127.0.0.1 -p 4061 -t 60000"
    );
    assert_eq!(
        base.ice_encoding_version(EncodingVersion::V1_0)
            .ice_timeout(500)
            .to_string(),
        "cat/id -t -e 1.0:tcp -h 127.0.0.1 -p 4061 -t 500"
    );
    assert_eq!(
        base.ice_invocation_timeout(20).ice_get_invocation_timeout(),
        20
    );
    assert_eq!(base.ice_get_invocation_timeout(), -1);
    let props = comm.properties();
    props.set_property("Hello.Proxy", "hello:tcp -h 127.0.0.1 -p 1");
    props.set_property("Hello.Proxy.InvocationTimeout", "250");
    let p = comm.property_to_proxy("Hello.Proxy").unwrap().unwrap();
    assert_eq!(p.ice_get_invocation_timeout(), 250);
    assert!(comm.property_to_proxy("Missing.Proxy").unwrap().is_none());
    let props = Properties::new();
    props.set_property("Ice.Default.InvocationTimeout", "1500");
    props.set_property("Ice.Default.EncodingVersion", "1.0");
    let comm = Communicator::with_properties(props).unwrap();
    let p = comm
        .string_to_proxy("id:tcp -h 127.0.0.1 -p 1")
        .unwrap()
        .unwrap();
    assert_eq!(p.ice_get_invocation_timeout(), 1500);
    assert_eq!(p.to_string(), "id -t -e 1.0:tcp -h 127.0.0.1 -p 1 -t 60000");
}

#[test]
fn identities_print_like_zeroc() {
    let comm = communicator();
    let v = vectors();
    for case in v["identityToString"].as_array().unwrap() {
        let id = floe::Identity::new(
            case["name"].as_str().unwrap(),
            case["category"].as_str().unwrap(),
        );
        assert_eq!(
            comm.identity_to_string(&id),
            case["Unicode"].as_str().unwrap()
        );
    }
    for case in v["stringToIdentity"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        match case.get("error") {
            Some(_) => assert!(comm.string_to_identity(input).is_err(), "{input}"),
            None => {
                let id = comm.string_to_identity(input).unwrap();
                assert_eq!(id.name, case["name"].as_str().unwrap(), "{input}");
                assert_eq!(id.category, case["category"].as_str().unwrap(), "{input}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroc_printed_proxy_reaches_zeroc_server() {
    common::require_zeroc();
    let py = common::start_python_server();
    let comm = communicator();
    let prx = comm.string_to_proxy(&py.proxy).unwrap().unwrap();
    assert_eq!(
        prx.to_string(),
        py.proxy,
        "Floe prints ZeroC's proxy back unchanged"
    );
    prx.ice_ping().await.unwrap();
    assert_eq!(
        prx.ice_facet("admin").ice_id().await.unwrap(),
        "::FloeTest::Admin"
    );
    comm.destroy().await;
}
