//! Server of ZeroC's `Ice/proxy` test: `test` (a `::Test::MyDerivedClass`) on `TestAdapter` at
//! `Test.BasePort`. `echo` returns the proxy it receives, so proxies of every kind (opaque
//! endpoints included) make the round trip through Floe's decoder and encoder; `getContext`
//! returns the context of the last `ice_isA`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use floe::codegen::{BoxFuture, Current, Dispatcher, Error, ObjectPrx};
use floe::{IncomingRequest, OutgoingResponse};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/proxy/Server.rs"));
}

use generated::test;

type Res<T> = Result<T, Error>;

#[derive(Debug, Default)]
struct MyDerivedClassI {
    /// The context of the last `ice_isA`.
    ctx: Mutex<HashMap<String, String>>,
}

impl test::MyClass for MyDerivedClassI {
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn get_context(&self, _: &Current) -> Res<HashMap<String, String>> {
        Ok(self.ctx.lock().map(|c| c.clone()).unwrap_or_default())
    }
}

impl test::MyDerivedClass for MyDerivedClassI {
    async fn echo(&self, obj: Option<ObjectPrx>, _: &Current) -> Res<Option<ObjectPrx>> {
        Ok(obj)
    }
}

/// Records the context of `ice_isA` requests, then lets the generated dispatcher answer.
#[derive(Debug)]
struct RecordIsA {
    servant: Arc<MyDerivedClassI>,
    inner: test::MyDerivedClassDispatcher<MyDerivedClassI>,
}

impl Dispatcher for RecordIsA {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse, Error>> {
        if request.current().operation == "ice_isA" {
            if let Ok(mut ctx) = self.servant.ctx.lock() {
                *ctx = request.current().ctx.clone();
            }
        }
        self.inner.dispatch(request)
    }
}

fn main() -> ExitCode {
    let defaults = [("Ice.Warn.Dispatch", "0"), ("Ice.Warn.Connections", "0")];
    floe_conformance::serve("proxy", &defaults, |_, adapter| {
        let servant = Arc::new(MyDerivedClassI::default());
        let dispatcher = RecordIsA {
            servant: servant.clone(),
            inner: test::MyDerivedClassDispatcher(servant),
        };
        adapter.add(Arc::new(dispatcher), "test".parse()?)?;
        Ok(())
    })
}
