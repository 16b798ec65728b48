//! Server of ZeroC's `Ice/adapterDeactivation` test: `TestAdapter` at `Test.BasePort` has no
//! servant of its own; a servant locator for every category makes a `::Test::TestIntf` servant
//! (with a cookie) for `test`, and serves `router` (an `::Ice::Router`, for the client's
//! adapter with a router). The server exits once the client has the adapter deactivated.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use floe::codegen::{BoxFuture, Current, DispatchError, Dispatcher, Error, ObjectPrx};
use floe::{Cookie, Located, ServantLocator};
use floe_conformance::TestHelper;

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/adapterDeactivation/Server.rs"));
}

use generated::{ice, test};

type Res<T> = Result<T, Error>;

#[derive(Debug)]
struct TestI;

impl test::TestIntf for TestI {
    async fn transient(&self, current: &Current) -> Res<()> {
        let communicator = current.adapter.communicator();
        let adapter = communicator
            .create_object_adapter_with_endpoints("TransientTestAdapter", "default")
            .await?;
        adapter.activate()?;
        adapter.destroy().await;
        Ok(())
    }
    async fn deactivate(&self, current: &Current) -> Res<()> {
        current.adapter.deactivate();
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
}

/// Hands out a new server proxy, on the next port, each time it is asked.
#[derive(Debug)]
struct RouterI {
    next_port: AtomicI32,
}

impl ice::Router for RouterI {
    async fn get_client_proxy(&self, _: &Current) -> Res<ice::router::GetClientProxyResult> {
        Ok(ice::router::GetClientProxyResult {
            return_value: None,
            has_routing_table: Some(false),
        })
    }
    async fn get_server_proxy(&self, current: &Current) -> Res<Option<ObjectPrx>> {
        let port = self.next_port.fetch_add(1, Ordering::SeqCst);
        current
            .adapter
            .communicator()
            .string_to_proxy(&format!("dummy:tcp -h localhost -p {port} -t 30000"))
    }
    async fn add_proxies(
        &self,
        _proxies: Vec<Option<ObjectPrx>>,
        _: &Current,
    ) -> Res<Vec<Option<ObjectPrx>>> {
        Ok(Vec::new())
    }
}

/// The cookie `locate` hands to `finished`.
#[derive(Debug)]
struct CookieI;

impl CookieI {
    fn message(&self) -> &'static str {
        "blahblah"
    }
}

fn failure(what: &str) -> DispatchError {
    DispatchError::Runtime(Error::UnknownException(format!("servant locator: {what}")))
}

struct ServantLocatorI {
    router: Arc<dyn Dispatcher>,
}

impl std::fmt::Debug for ServantLocatorI {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServantLocatorI")
    }
}

impl ServantLocator for ServantLocatorI {
    fn locate<'a>(
        &'a self,
        current: &'a Current,
    ) -> BoxFuture<'a, Result<Option<Located>, DispatchError>> {
        Box::pin(async move {
            if current.id.name == "router" {
                return Ok(Some(Located::new(self.router.clone())));
            }
            if !current.id.category.is_empty() || current.id.name != "test" {
                return Err(failure(&format!("unexpected identity {}", current.id)));
            }
            let servant: Arc<dyn Dispatcher> = Arc::new(test::TestIntfDispatcher(Arc::new(TestI)));
            Ok(Some(Located::with_cookie(servant, CookieI)))
        })
    }
    fn finished<'a>(
        &'a self,
        current: &'a Current,
        _servant: Arc<dyn Dispatcher>,
        cookie: Cookie,
    ) -> BoxFuture<'a, Result<(), DispatchError>> {
        Box::pin(async move {
            if current.id.name == "router" {
                return Ok(());
            }
            match cookie.as_ref().and_then(|c| c.downcast_ref::<CookieI>()) {
                Some(c) if c.message() == "blahblah" => Ok(()),
                _ => Err(failure("finished without the cookie of locate")),
            }
        })
    }
    fn deactivate(&self, _category: &str) {}
}

fn main() -> ExitCode {
    floe_conformance::run(|| async {
        let helper = TestHelper::new(&[])?;
        let adapter = helper.adapter("TestAdapter", 0).await?;
        let router = Arc::new(ice::RouterDispatcher(Arc::new(RouterI {
            next_port: AtomicI32::new(23456),
        })));
        adapter.add_servant_locator(Arc::new(ServantLocatorI { router }), "")?;
        adapter.activate()?;
        helper.ready("adapterDeactivation");
        adapter.wait_for_deactivate().await;
        helper.communicator().destroy().await;
        Ok(())
    })
}
