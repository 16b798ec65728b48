//! Holds one test, `tests/rustdoc.rs`: it generates Rust for every Slice file of the project, the
//! golden file and ZeroC's installed Slice (`/usr/share/ice/slice`), writes a crate including it
//! under `target/slice-doc`, and runs `cargo doc` on that crate with warnings denied, so that every
//! doc comment turned into rustdoc must render without a broken link, stray HTML or bare URL.
