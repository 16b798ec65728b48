//! Building this crate is the test that generated Rust compiles without warnings: its build script
//! compiles every Slice file of the project, the golden file, and ZeroC's installed Slice.
#![deny(warnings)]
#![allow(missing_debug_implementations)]

include!(concat!(env!("OUT_DIR"), "/all.rs"));
