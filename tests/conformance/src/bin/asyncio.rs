//! Server of ZeroC's `Ice/asyncio` test: `test` (a `::Test::TestIntf`) on `TestAdapter` at
//! `Test.BasePort`. ZeroC's servant is a set of Python coroutines; Floe's servants are async
//! already: results and exceptions come before or after an await, and `callOpOn` awaits calls
//! on the proxy it is given from within the dispatch.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use floe::codegen::{Current, Error};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/asyncio/Server.rs"));
}

use generated::test::{self, TestException, TestIntfPrx, test_intf as r};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TestIntfI;

impl test::TestIntf for TestIntfI {
    async fn op(&self, _: &Current) -> Res<i32> {
        Ok(5)
    }
    async fn call_op_on(&self, proxy: Option<TestIntfPrx>, _: &Current) -> Res<i32> {
        let proxy = proxy.ok_or_else(|| Error::marshal("callOpOn: null proxy"))?;
        proxy.sleep(10).await?;
        proxy.op().await
    }
    async fn throw_user_exception1(&self, _: &Current) -> Result<(), r::ThrowUserException1Error> {
        Err(TestException::default().into())
    }
    async fn throw_user_exception2(&self, _: &Current) -> Result<(), r::ThrowUserException2Error> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Err(TestException::default().into())
    }
    async fn throw_unhandled_exception1(&self, _: &Current) -> Res<()> {
        Err(Error::UnknownException("unexpected".into()))
    }
    async fn throw_unhandled_exception2(&self, _: &Current) -> Res<()> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Err(Error::UnknownException("unexpected".into()))
    }
    async fn sleep(&self, ms: i32, _: &Current) -> Res<()> {
        tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)).await;
        Ok(())
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("asyncio", &[("Ice.Warn.Dispatch", "0")], |_, adapter| {
        adapter.add(
            Arc::new(test::TestIntfDispatcher(Arc::new(TestIntfI))),
            "test".parse()?,
        )?;
        Ok(())
    })
}
