//! Stringified identities against Ice 3.7.8 (`vectors/out/string_vectors.json`): every mode of
//! `identityToString`, and `stringToIdentity` including its errors.

mod vectors_common;

use floe::identity::{Identity, ToStringMode};
use vectors_common::fixture;

#[test]
fn identity_to_string_matches_ice_in_every_mode() {
    let json = fixture("string_vectors.json");
    let cases = json["identityToString"]
        .as_array()
        .expect("identityToString cases");
    assert!(cases.len() >= 10);
    for c in cases {
        let id = Identity::new(c["name"].as_str().unwrap(), c["category"].as_str().unwrap());
        for (key, mode) in [
            ("Unicode", ToStringMode::Unicode),
            ("ASCII", ToStringMode::Ascii),
            ("Compat", ToStringMode::Compat),
        ] {
            let expected = c[key].as_str().unwrap();
            assert_eq!(id.to_string_mode(mode), expected, "{id:?} in {key} mode");
            // Every mode's output parses back to the same identity.
            assert_eq!(
                expected.parse::<Identity>().unwrap(),
                id,
                "parsing {expected:?}"
            );
        }
    }
}

#[test]
fn string_to_identity_matches_ice() {
    let json = fixture("string_vectors.json");
    let cases = json["stringToIdentity"]
        .as_array()
        .expect("stringToIdentity cases");
    assert!(cases.len() >= 10);
    for c in cases {
        let input = c["input"].as_str().unwrap();
        let parsed = input.parse::<Identity>();
        if c.get("error").is_some() {
            assert!(
                matches!(parsed, Err(floe::Error::IdentityParse(_))),
                "{input:?} must be refused, got {parsed:?}"
            );
        } else {
            let expected =
                Identity::new(c["name"].as_str().unwrap(), c["category"].as_str().unwrap());
            assert_eq!(parsed.unwrap(), expected, "parsing {input:?}");
        }
    }
}
