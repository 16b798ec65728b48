//! Server of ZeroC's `Ice/binding` test: `communicator` (a `::Test::RemoteCommunicator`) on
//! `TestAdapter` at `Test.BasePort`. The client has it create and destroy object adapters, each
//! serving `test` (a `::Test::TestIntf` that answers its adapter's name), to check how proxies
//! bind to endpoints. Adapters created without a port get the next port above
//! `Test.BasePort` (ZeroC's server counts from 10002; the runner reserves the ports above the
//! base port instead, so that runs can go in parallel).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use floe::ObjectAdapter;
use floe::codegen::{Current, Error};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/binding/Server.rs"));
}

use generated::test::{self, RemoteObjectAdapterPrx, TestIntfPrx};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TestI;

impl test::TestIntf for TestI {
    async fn get_adapter_name(&self, current: &Current) -> Res<String> {
        Ok(current.adapter.name().to_string())
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
    async fn deactivate(&self, _: &Current) -> Res<()> {
        self.adapter.destroy().await;
        Ok(())
    }
}

#[derive(Debug)]
struct RemoteCommunicatorI {
    next_port: AtomicI32,
}

impl test::RemoteCommunicator for RemoteCommunicatorI {
    async fn create_object_adapter(
        &self,
        name: String,
        endpoints: String,
        current: &Current,
    ) -> Res<Option<RemoteObjectAdapterPrx>> {
        let communicator = current.adapter.communicator();
        let port = self.next_port.fetch_add(1, Ordering::SeqCst);
        let mut endpoints = endpoints;
        if !endpoints.contains("-p") {
            let host = communicator
                .properties()
                .get_property_with_default("Ice.Default.Host", "127.0.0.1");
            endpoints.push_str(&format!(" -h \"{host}\" -p {port}"));
        }
        communicator
            .properties()
            .set_property(&format!("{name}.ThreadPool.Size"), "1");
        let adapter = communicator
            .create_object_adapter_with_endpoints(&name, &endpoints)
            .await?;
        let test_intf = TestIntfPrx::unchecked_cast(adapter.add(
            Arc::new(test::TestIntfDispatcher(Arc::new(TestI))),
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
    async fn deactivate_object_adapter(
        &self,
        adapter: Option<RemoteObjectAdapterPrx>,
        _: &Current,
    ) -> Res<()> {
        match adapter {
            Some(a) => a.deactivate().await,
            None => Ok(()),
        }
    }
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    floe_conformance::serve("binding", &[], |helper, adapter| {
        let servant = RemoteCommunicatorI {
            next_port: AtomicI32::new(helper.port(1)),
        };
        adapter.add(
            Arc::new(test::RemoteCommunicatorDispatcher(Arc::new(servant))),
            "communicator".parse()?,
        )?;
        Ok(())
    })
}
