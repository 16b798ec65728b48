//! Server of ZeroC's `Ice/info` test: `test` (a `::Test::TestIntf`) on `TestAdapter`, which
//! listens on both `tcp` and `udp` at `Test.BasePort`. Its operations report what the server
//! knows of the connection a request came on: its endpoint and its addresses.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use floe::codegen::{Current, Error};
use floe::endpoint::{Endpoint, Transport};

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/info/Server.rs"));
}

use generated::test;

type Res<T> = Result<T, Error>;

fn connection(current: &Current) -> Res<&floe::Connection> {
    current
        .con
        .as_ref()
        .ok_or_else(|| Error::marshal("the request came on no connection"))
}

#[derive(Debug)]
struct TestI;

impl test::TestIntf for TestI {
    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
    async fn get_endpoint_info_as_context(
        &self,
        current: &Current,
    ) -> Res<HashMap<String, String>> {
        let Some(Endpoint::Ip(ip)) = connection(current)?.endpoint() else {
            return Err(Error::marshal("the connection has no IP endpoint"));
        };
        let flag = |b: bool| if b { "true" } else { "false" }.to_string();
        // Ice's endpoint type codes: TCP 1, SSL 2, UDP 3, WS 4, WSS 5.
        let kind = match ip.transport {
            Transport::Tcp => 1,
            Transport::Udp => 3,
            Transport::Ws => 4,
            _ => 0,
        };
        let mut ctx = HashMap::new();
        ctx.insert("timeout".into(), ip.timeout.to_string());
        ctx.insert("compress".into(), flag(ip.compress));
        ctx.insert("datagram".into(), flag(ip.transport == Transport::Udp));
        ctx.insert("secure".into(), flag(false));
        ctx.insert("type".into(), kind.to_string());
        ctx.insert("host".into(), ip.host.clone());
        ctx.insert("port".into(), ip.port.to_string());
        Ok(ctx)
    }
    async fn get_connection_info_as_context(
        &self,
        current: &Current,
    ) -> Res<HashMap<String, String>> {
        let con = connection(current)?;
        let mut ctx = HashMap::new();
        ctx.insert("adapterName".into(), con.adapter_name());
        ctx.insert("incoming".into(), con.is_incoming().to_string());
        ctx.insert("localAddress".into(), con.local_address().ip().to_string());
        ctx.insert("localPort".into(), con.local_address().port().to_string());
        ctx.insert(
            "remoteAddress".into(),
            con.remote_address().ip().to_string(),
        );
        ctx.insert("remotePort".into(), con.remote_address().port().to_string());
        for (name, value) in con.ws_headers().unwrap_or_default() {
            ctx.insert(format!("ws.{name}"), value.clone());
        }
        Ok(ctx)
    }
}

fn main() -> ExitCode {
    floe_conformance::serve_at(
        "info",
        &[],
        |helper| format!("{}:udp -p {}", helper.endpoint(0), helper.port(0)),
        |_, adapter| {
            adapter.add(
                Arc::new(test::TestIntfDispatcher(Arc::new(TestI))),
                "test".parse()?,
            )?;
            Ok(())
        },
    )
}
