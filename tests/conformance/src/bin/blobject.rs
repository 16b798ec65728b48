//! Server of ZeroC's `Ice/blobject` test: `test` (a `::Test::Hello`) on `TestAdapter` at
//! `Test.BasePort`. The client reaches it through a router it runs itself (a Blobject that
//! forwards every request with `ice_invoke`), so requests arrive as the client's forwarder
//! re-sends them: twoway, oneway, batched, with contexts.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use floe::codegen::{Current, Error};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/blobject/Server.rs"));
}

use generated::test::{self, UE, hello};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TestI;

impl test::Hello for TestI {
    async fn say_hello(&self, delay: i32, _: &Current) -> Res<()> {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        Ok(())
    }
    async fn add(&self, s1: i32, s2: i32, _: &Current) -> Res<i32> {
        Ok(s1.wrapping_add(s2))
    }
    async fn raise_ue(&self, _: &Current) -> Result<(), hello::RaiseUEError> {
        Err(UE::default().into())
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    // Batch oneways may still be dispatched while the adapter deactivates.
    floe_conformance::serve("blobject", &[("Ice.Warn.Dispatch", "0")], |_, adapter| {
        adapter.add(
            Arc::new(test::HelloDispatcher(Arc::new(TestI))),
            "test".parse()?,
        )?;
        Ok(())
    })
}
