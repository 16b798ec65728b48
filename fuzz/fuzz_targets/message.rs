//! Bytes as received on a connection: framing (header, size, bzip2), then request, batch and
//! reply bodies, then the encapsulations inside them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| floe_fuzz::messages(data));
