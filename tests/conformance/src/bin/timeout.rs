//! Server of ZeroC's `Ice/timeout` test: `timeout` (a `::Test::Timeout`) on `TestAdapter` at
//! `Test.BasePort`, and `controller` on `ControllerAdapter` at `+1`, which holds
//! `TestAdapter` (for a while, or until told to resume) so that the client's connection,
//! invocation and close timeouts expire. As in ZeroC's server, `Ice.TCP.RcvSize` is 50000 so
//! the client's writes block soon, and `Ice.MessageSizeMax` is 10000 KiB for its large
//! messages.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use floe::ObjectAdapter;
use floe::codegen::{Current, Error};
use floe_conformance::TestHelper;

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/timeout/Server.rs"));
}

use generated::test;

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TimeoutI;

impl test::Timeout for TimeoutI {
    async fn op(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn send_data(&self, _seq: Vec<u8>, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn sleep(&self, to: i32, _: &Current) -> Res<()> {
        if to > 0 {
            tokio::time::sleep(Duration::from_millis(to as u64)).await;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct ControllerI(ObjectAdapter);

impl test::Controller for ControllerI {
    async fn hold_adapter(&self, to: i32, _: &Current) -> Res<()> {
        self.0.hold();
        if to >= 0 {
            let adapter = self.0.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(to as u64)).await;
                let _ = adapter.activate();
            });
        }
        Ok(())
    }
    async fn resume_adapter(&self, _: &Current) -> Res<()> {
        self.0.activate()
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::run(|| async {
        let helper = TestHelper::new(&[
            ("Ice.Warn.Connections", "0"),
            ("Ice.MessageSizeMax", "10000"),
            ("Ice.TCP.RcvSize", "50000"),
        ])?;
        let adapter = helper.adapter("TestAdapter", 0).await?;
        adapter.add(
            Arc::new(test::TimeoutDispatcher(Arc::new(TimeoutI))),
            "timeout".parse()?,
        )?;
        adapter.activate()?;
        helper
            .properties()
            .set_property("ControllerAdapter.ThreadPool.Size", "1");
        let controller_adapter = helper.adapter("ControllerAdapter", 1).await?;
        controller_adapter.add(
            Arc::new(test::ControllerDispatcher(Arc::new(ControllerI(adapter)))),
            "controller".parse()?,
        )?;
        controller_adapter.activate()?;
        helper.ready("timeout");
        helper.wait_and_destroy().await;
        Ok(())
    })
}
