//! Server of ZeroC's `Ice/ami` test: `test` (a `::Test::TestIntf`) and `test2` (a
//! `::Test::Outer::Inner::TestIntf`) on `TestAdapter` at `Test.BasePort`, and
//! `testController` on `ControllerAdapter` at `+1`, which holds and resumes `TestAdapter` so
//! that the client's requests pile up unsent. `Ice.TCP.RcvSize` is 50000, as in ZeroC's server,
//! so the client's writes block soon once the adapter holds.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floe::ObjectAdapter;
use floe::codegen::{Current, Error};
use floe_conformance::TestHelper;
use tokio::sync::{oneshot, watch};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/ami/Server.rs"));
}

use generated::test::{self, CloseMode, PingReplyPrx};

type Res<T> = Result<T, Error>;

#[derive(Debug, Default)]
struct Dispatches {
    shutdown: bool,
    /// Completes the pending `startDispatch`.
    pending: Option<oneshot::Sender<()>>,
}

#[derive(Debug)]
struct TestIntfI {
    batch_count: watch::Sender<i32>,
    dispatches: Mutex<Dispatches>,
}

impl TestIntfI {
    fn new() -> TestIntfI {
        TestIntfI {
            batch_count: watch::Sender::new(0),
            dispatches: Mutex::new(Dispatches::default()),
        }
    }

    fn dispatches(&self) -> Res<std::sync::MutexGuard<'_, Dispatches>> {
        self.dispatches
            .lock()
            .map_err(|_| Error::marshal("dispatch state poisoned"))
    }
}

impl test::TestIntf for TestIntfI {
    async fn op(&self, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn op_with_payload(&self, _seq: Vec<u8>, _: &Current) -> Res<()> {
        Ok(())
    }
    async fn op_with_result(&self, _: &Current) -> Res<i32> {
        Ok(15)
    }
    async fn op_with_ue(&self, _: &Current) -> Result<(), test::test_intf::OpWithUEError> {
        Err(test::TestIntfException::default().into())
    }
    async fn op_batch(&self, _: &Current) -> Res<()> {
        self.batch_count.send_modify(|c| *c += 1);
        Ok(())
    }
    async fn op_batch_count(&self, _: &Current) -> Res<i32> {
        Ok(*self.batch_count.borrow())
    }
    async fn wait_for_batch(&self, count: i32, _: &Current) -> Res<bool> {
        let mut rx = self.batch_count.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|c| *c >= count)).await;
        let reached = *self.batch_count.borrow() == count;
        self.batch_count.send_replace(0);
        Ok(reached)
    }
    async fn close(&self, mode: CloseMode, current: &Current) -> Res<()> {
        let con = current
            .con
            .as_ref()
            .ok_or_else(|| Error::marshal("close: no connection"))?;
        con.close(mode != CloseMode::Forcefully);
        Ok(())
    }
    async fn sleep(&self, ms: i32, _: &Current) -> Res<()> {
        tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)).await;
        Ok(())
    }
    async fn start_dispatch(&self, _: &Current) -> Res<()> {
        let rx = {
            let mut d = self.dispatches()?;
            if d.shutdown {
                return Ok(());
            }
            if let Some(previous) = d.pending.take() {
                let _ = previous.send(());
            }
            let (tx, rx) = oneshot::channel();
            d.pending = Some(tx);
            rx
        };
        let _ = rx.await;
        Ok(())
    }
    async fn finish_dispatch(&self, _: &Current) -> Res<()> {
        let mut d = self.dispatches()?;
        if let Some(pending) = d.pending.take() {
            let _ = pending.send(());
        }
        Ok(())
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        {
            let mut d = self.dispatches()?;
            d.shutdown = true;
            if let Some(pending) = d.pending.take() {
                let _ = pending.send(());
            }
        }
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn supports_amd(&self, _: &Current) -> Res<bool> {
        Ok(true)
    }
    async fn supports_functional_tests(&self, _: &Current) -> Res<bool> {
        Ok(false)
    }
    async fn ping_bi_dir(&self, reply: Option<PingReplyPrx>, current: &Current) -> Res<()> {
        let reply = reply.ok_or_else(|| Error::marshal("pingBiDir: null proxy"))?;
        let con = current
            .con
            .as_ref()
            .ok_or_else(|| Error::marshal("pingBiDir: no connection"))?;
        let fixed =
            PingReplyPrx::unchecked_cast(con.create_proxy(reply.ice_get_identity().clone())?);
        fixed.reply().await
    }
}

#[derive(Debug)]
struct TestIntfII;

impl test::outer::inner::TestIntf for TestIntfII {
    floe_conformance::echo! {
        op(i32) -> test::outer::inner::test_intf::OpResult { j };
    }
}

#[derive(Debug)]
struct TestIntfControllerI(ObjectAdapter);

impl test::TestIntfController for TestIntfControllerI {
    async fn hold_adapter(&self, _: &Current) -> Res<()> {
        self.0.hold();
        Ok(())
    }
    async fn resume_adapter(&self, _: &Current) -> Res<()> {
        self.0.activate()
    }
}

fn main() -> ExitCode {
    floe_conformance::run(|| async {
        // This test kills connections: no warnings. A small receive buffer makes the client's
        // sends block soon while the adapter holds.
        let helper =
            TestHelper::new(&[("Ice.Warn.Connections", "0"), ("Ice.TCP.RcvSize", "50000")])?;
        let adapter = helper.adapter("TestAdapter", 0).await?;
        helper
            .properties()
            .set_property("ControllerAdapter.ThreadPool.Size", "1");
        let adapter2 = helper.adapter("ControllerAdapter", 1).await?;
        adapter.add(
            Arc::new(test::TestIntfDispatcher(Arc::new(TestIntfI::new()))),
            "test".parse()?,
        )?;
        adapter.add(
            Arc::new(test::outer::inner::TestIntfDispatcher(Arc::new(TestIntfII))),
            "test2".parse()?,
        )?;
        adapter.activate()?;
        let controller = TestIntfControllerI(adapter.clone());
        adapter2.add(
            Arc::new(test::TestIntfControllerDispatcher(Arc::new(controller))),
            "testController".parse()?,
        )?;
        adapter2.activate()?;
        helper.ready("ami");
        helper.wait_and_destroy().await;
        Ok(())
    })
}
