//! The encoding streams (1.0 and 1.1) driven by a program taken from the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| floe_fuzz::stream(data));
