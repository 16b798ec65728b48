//! Golden test: the generated Rust for `golden/Everything.ice` (every construct) is exactly the
//! checked-in `golden/Everything.rs`. Regenerate with `FLOE_UPDATE_GOLDEN=1 cargo test -p floe-slice --test golden`
//! after a deliberate change, and review the diff.

use std::path::PathBuf;

mod common;

#[test]
fn everything_matches_the_golden_output() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let ice = dir.join("Everything.ice");
    let generated = common::generate_valid(&ice);
    let golden_path = dir.join("Everything.rs");
    if std::env::var_os("FLOE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &generated).expect("write golden file");
    }
    let golden = std::fs::read_to_string(&golden_path).expect("golden/Everything.rs exists");
    if generated != golden {
        let first = generated
            .lines()
            .zip(golden.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(generated.lines().count().min(golden.lines().count()));
        panic!(
            "generated code differs from golden/Everything.rs at line {}:\n  generated: {:?}\n  golden:    {:?}",
            first + 1,
            generated.lines().nth(first),
            golden.lines().nth(first)
        );
    }
    for construct in [
        "pub enum Color",
        "pub const Answer: i32 = 42i32;",
        "pub struct Point",
        "pub type Bytes = ::std::vec::Vec<u8>;",
        "pub type Ages = ::std::collections::HashMap<::std::string::String, i32>;",
        "impl ::floe::codegen::UserException for DerivedError",
        "impl ::floe::codegen::Value for Circle",
        "compact_id: ::std::option::Option::Some(7)",
        "pub struct DerivedPrx(::floe::codegen::ObjectPrx);",
        "pub trait Derived: super::everything::Base + super::everything::Other",
        "pub struct DerivedDispatcher<T>",
        "pub enum EchoError",
        "pub struct OutsResult",
        "pub mod nested",
        "::floe::codegen::FormatType::Sliced",
        "::floe::codegen::OperationMode::Idempotent",
    ] {
        assert!(
            generated.contains(construct),
            "generated code lacks `{construct}`"
        );
    }
}
