//! Server of ZeroC's `Ice/acm` test: `communicator` (a `::Test::RemoteCommunicator`) on
//! `TestAdapter` at `Test.BasePort` (its own ACM off, `Ice.ACM.Timeout` 1 s otherwise). The
//! client has it create adapters with given server-side ACM settings, each serving `test` (a
//! `::Test::TestIntf` that sleeps, holds its adapter, and counts the client's heartbeats), and
//! checks heartbeats and idle closes in both directions.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floe::ObjectAdapter;
use floe::codegen::{Current, Error};
use tokio::sync::{Notify, watch};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/acm/Server.rs"));
}

use generated::test::{self, RemoteObjectAdapterPrx, TestIntfPrx};

type Res<T> = Result<T, Error>;

#[derive(Debug, Default)]
struct TestIntfI {
    /// Wakes `sleep` and `sleepAndHold` early.
    wake: Notify,
    /// Heartbeats received since `startHeartbeatCount`.
    heartbeats: Mutex<Option<watch::Sender<i32>>>,
}

impl TestIntfI {
    async fn nap(&self, seconds: i32) {
        let wake = self.wake.notified();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(seconds.max(0) as u64)) => {}
            _ = wake => {}
        }
    }
}

impl test::TestIntf for TestIntfI {
    async fn sleep(&self, seconds: i32, _: &Current) -> Res<()> {
        self.nap(seconds).await;
        Ok(())
    }
    async fn sleep_and_hold(&self, seconds: i32, current: &Current) -> Res<()> {
        current.adapter.hold();
        self.nap(seconds).await;
        Ok(())
    }
    async fn interrupt_sleep(&self, _: &Current) -> Res<()> {
        self.wake.notify_waiters();
        Ok(())
    }
    async fn start_heartbeat_count(&self, current: &Current) -> Res<()> {
        let con = current
            .con
            .as_ref()
            .ok_or_else(|| Error::marshal("startHeartbeatCount: no connection"))?;
        let count = watch::Sender::new(0);
        let counter = count.clone();
        con.set_heartbeat_callback(Some(Arc::new(move |_| counter.send_modify(|c| *c += 1))));
        if let Ok(mut h) = self.heartbeats.lock() {
            *h = Some(count);
        }
        Ok(())
    }
    async fn wait_for_heartbeat_count(&self, count: i32, _: &Current) -> Res<()> {
        let mut rx = self
            .heartbeats
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(|s| s.subscribe()))
            .ok_or_else(|| Error::marshal("waitForHeartbeatCount before startHeartbeatCount"))?;
        rx.wait_for(|c| *c >= count)
            .await
            .map_err(|_| Error::marshal("heartbeat counter gone"))?;
        Ok(())
    }
}

#[derive(Debug)]
struct RemoteObjectAdapterI {
    adapter: ObjectAdapter,
    test_intf: TestIntfPrx,
}

impl test::RemoteObjectAdapter for RemoteObjectAdapterI {
    async fn get_test_intf(&self, _: &Current) -> Res<Option<TestIntfPrx>> {
        Ok(Some(self.test_intf.clone()))
    }
    async fn activate(&self, _: &Current) -> Res<()> {
        self.adapter.activate()
    }
    async fn hold(&self, _: &Current) -> Res<()> {
        self.adapter.hold();
        Ok(())
    }
    async fn deactivate(&self, _: &Current) -> Res<()> {
        self.adapter.destroy().await;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct RemoteCommunicatorI {
    next: AtomicU32,
}

impl test::RemoteCommunicator for RemoteCommunicatorI {
    async fn create_object_adapter(
        &self,
        timeout: i32,
        close: i32,
        heartbeat: i32,
        current: &Current,
    ) -> Res<Option<RemoteObjectAdapterPrx>> {
        let communicator = current.adapter.communicator();
        let properties = communicator.properties();
        let protocol = properties.get_property_with_default("Ice.Default.Protocol", "tcp");
        // A fresh name per adapter (ZeroC's server uses a UUID).
        let name = format!("ACMAdapter{}", self.next.fetch_add(1, Ordering::SeqCst));
        for (key, value) in [
            ("Timeout", timeout),
            ("Close", close),
            ("Heartbeat", heartbeat),
        ] {
            if value >= 0 {
                properties.set_property(&format!("{name}.ACM.{key}"), &value.to_string());
            }
        }
        properties.set_property(&format!("{name}.ThreadPool.Size"), "2");
        let adapter = communicator
            .create_object_adapter_with_endpoints(&name, &format!("{protocol} -h 127.0.0.1"))
            .await?;
        let test_intf = TestIntfPrx::unchecked_cast(adapter.add(
            Arc::new(test::TestIntfDispatcher(Arc::new(TestIntfI::default()))),
            "test".parse()?,
        )?);
        adapter.activate()?;
        let servant = RemoteObjectAdapterI { adapter, test_intf };
        let prx = current
            .adapter
            .add_with_uuid(Arc::new(test::RemoteObjectAdapterDispatcher(Arc::new(
                servant,
            ))))?;
        Ok(Some(RemoteObjectAdapterPrx::unchecked_cast(prx)))
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    // The command line sets only `Ice.*` and `Test.*`: `TestAdapter.ACM.Timeout` as a default
    // is what ZeroC's server sets once the communicator exists.
    let defaults = [
        ("Ice.Warn.Connections", "0"),
        ("Ice.ACM.Timeout", "1"),
        ("TestAdapter.ACM.Timeout", "0"),
    ];
    floe_conformance::serve("acm", &defaults, |_, adapter| {
        adapter.add(
            Arc::new(test::RemoteCommunicatorDispatcher(Arc::new(
                RemoteCommunicatorI::default(),
            ))),
            "communicator".parse()?,
        )?;
        Ok(())
    })
}
