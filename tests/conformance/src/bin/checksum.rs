//! Server of ZeroC's `Ice/checksum` test: `test` (a `::Test::Checksum`) on `TestAdapter` at
//! `Test.BasePort`, answering `getSliceChecksums` with the checksums `slice2rs --checksum`
//! generated for the test's `Test.ice` and `STypes.ice`. The client holds the checksums of
//! `Test.ice` and `CTypes.ice`, whose types of the same names differ wherever a name ends in a
//! number above 1; it checks that exactly those checksums differ.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/checksum/Test.rs"));
}

/// The server's own versions of the types, compiled only for their checksums.
#[allow(clippy::all, non_upper_case_globals, dead_code, unused_imports)]
mod server_types {
    include!(concat!(env!("OUT_DIR"), "/checksum/STypes.rs"));
}

use generated::test;

#[derive(Debug)]
struct ChecksumI;

impl test::Checksum for ChecksumI {
    async fn get_slice_checksums(&self, _: &Current) -> Result<HashMap<String, String>, Error> {
        Ok(floe::slice_checksums())
    }

    async fn shutdown(&self, current: &Current) -> Result<(), Error> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("checksum", &[], |_, adapter| {
        adapter.add(
            Arc::new(test::ChecksumDispatcher(Arc::new(ChecksumI))),
            "test".parse()?,
        )?;
        Ok(())
    })
}
