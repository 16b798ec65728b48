//! Generates, with our compiler, the Rust code of each ZeroC test's own `Test.ice`, taken from
//! the unpacked zeroc-ice source tree named by `FLOE_ICE_SOURCE` (`scripts/test.sh` fetches it
//! and sets the variable). The generated file of test `Ice/<name>` lands in
//! `OUT_DIR/<name>/Test.rs` (slashes of nested tests become `_`).

use std::path::{Path, PathBuf};

/// Every test whose Slice a server of this crate is built from.
const TESTS: &[&str] = &[
    "operations",
    "exceptions",
    "proxy",
    "enums",
    "inheritance",
    "facets",
    "scope",
];

fn main() {
    println!("cargo:rerun-if-env-changed=FLOE_ICE_SOURCE");
    let source = match std::env::var_os("FLOE_ICE_SOURCE") {
        Some(s) if !s.is_empty() => PathBuf::from(s),
        _ => panic!(
            "\n\nfloe-conformance needs ZeroC's source tree: FLOE_ICE_SOURCE is not set.\n\
             Run `bash scripts/test.sh` (it fetches the zeroc-ice source package and sets it), or\n\
             `bash tests/tools/fetch-ice-source.sh build/ice-src` and then\n\
             `export FLOE_ICE_SOURCE=$PWD/build/ice-src/zeroc-ice-3.7.8`.\n\
             The crate is not a default member: plain `cargo build` / `cargo test` skip it.\n"
        ),
    };
    let tests_dir = source.join("python/test/Ice");
    if !tests_dir.is_dir() {
        panic!(
            "FLOE_ICE_SOURCE={} has no python/test/Ice: point it at an unpacked zeroc-ice 3.7.8 source tree",
            source.display()
        );
    }
    let ice_slice = Path::new("/usr/share/ice/slice");
    if !ice_slice.join("Ice/Current.ice").is_file() {
        panic!(
            "/usr/share/ice/slice/Ice/Current.ice is missing: install the Debian package zeroc-ice-slice"
        );
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for test in TESTS {
        let dir = tests_dir.join(test);
        let target = out.join(test.replace('/', "_"));
        std::fs::create_dir_all(&target)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
        if let Err(e) = floe_slice::Builder::new()
            .include(ice_slice)
            .include(&dir)
            .out_dir(&target)
            .compile(&[dir.join("Test.ice")])
        {
            panic!("Ice/{test}/Test.ice does not compile:\n{e}");
        }
    }
}
