//! Server of ZeroC's `Ice/faultTolerance` test: the runner starts twelve of them, the `n`th
//! with the argument `n`, serving `test` (a `::Test::TestIntf`) at `Test.BasePort + n`. The
//! client's proxy lists all twelve endpoints; it aborts the servers one by one (the process
//! exits at once, as ZeroC's does with `os._exit`) and checks that its calls fail over to the
//! next one, and are retried only when that is safe.

use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error};
use floe_conformance::TestHelper;

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/faultTolerance/Server.rs"));
}

use generated::test;

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TestI;

impl test::TestIntf for TestI {
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn abort(&self, _: &Current) -> Res<()> {
        println!("aborting...");
        std::process::exit(0)
    }
    async fn idempotent_abort(&self, _: &Current) -> Res<()> {
        std::process::exit(0)
    }
    async fn pid(&self, _: &Current) -> Res<i32> {
        Ok(std::process::id() as i32)
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    floe_conformance::run(|| async move {
        // A longer idle time, as in ZeroC's server, so servers wait to be used.
        let helper = TestHelper::with_args(&mut args, &[("Ice.ServerIdleTime", "120")])?;
        let mut port = None;
        for arg in args.iter().filter(|a| !a.starts_with('-')) {
            if port.is_some() {
                return Err(Error::IllegalArgument(
                    "only one port can be specified".into(),
                ));
            }
            port = Some(
                arg.parse::<i32>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| Error::IllegalArgument(format!("bad port {arg}")))?,
            );
        }
        let port = port.ok_or_else(|| Error::IllegalArgument("no port specified".into()))?;
        let adapter = helper.adapter("TestAdapter", port).await?;
        adapter.add(
            Arc::new(test::TestIntfDispatcher(Arc::new(TestI))),
            "test".parse()?,
        )?;
        adapter.activate()?;
        helper.ready("faultTolerance");
        helper.wait_and_destroy().await;
        Ok(())
    })
}
