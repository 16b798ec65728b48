//! Server of ZeroC's `Ice/udp` test, for its C++ client (ZeroC has no Python one). The runner
//! starts five of them, the `n`th with the argument `n` (0 … 4). Each serves `control` (a
//! `::Test::TestIntf`) on tcp at `Test.BasePort + n`, whatever the run's protocol, and `test`
//! on the multicast group `udp -h 239.255.1.1 -p <Test.BasePort + 10>`, which all five join;
//! server 0 also serves `test` on udp at `Test.BasePort`. The client sends datagrams to `test`
//! carrying a datagram proxy of its own `::Test::PingReply`, and counts the `reply` datagrams
//! the servers send back: one per ping to server 0, one from every server per ping to the
//! group, and for `pingBiDir` one sent back over the datagram's own connection. Both sides
//! have UDP buffers of 16 KiB (`Ice.UDP.SndSize`, `Ice.UDP.RcvSize`): the client checks that a
//! larger datagram fails to send, and that one larger than the server receives gets no answer.

use std::process::ExitCode;
use std::sync::Arc;

use floe::Identity;
use floe::codegen::{Current, Error};
use floe_conformance::TestHelper;

#[allow(clippy::all, non_upper_case_globals, dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/udp/Server.rs"));
}

use generated::ice;
use generated::test::{self, PingReplyPrx, TestIntfPrx};

type Res<T> = Result<T, Error>;

/// The multicast group every server joins.
const GROUP: &str = "239.255.1.1";

#[derive(Debug)]
struct TestIntfI;

/// Sends `reply` to `proxy` (a datagram proxy: it returns once the datagram is sent). ZeroC's
/// servant treats a failure as a bug of the test; it is written to stderr, which the runner
/// shows when the client fails.
async fn reply(proxy: &PingReplyPrx, op: &str) -> Res<()> {
    proxy.reply().await.inspect_err(|e| {
        eprintln!("{op}: reply to {proxy:?} failed: {e}");
    })
}

impl test::TestIntf for TestIntfI {
    async fn ping(&self, reply_prx: Option<PingReplyPrx>, _: &Current) -> Res<()> {
        match reply_prx {
            Some(p) => reply(&p, "ping").await,
            None => Ok(()),
        }
    }

    async fn send_byte_seq(
        &self,
        _seq: test::ByteSeq,
        reply_prx: Option<PingReplyPrx>,
        _: &Current,
    ) -> Res<()> {
        match reply_prx {
            Some(p) => reply(&p, "sendByteSeq").await,
            None => Ok(()),
        }
    }

    async fn ping_bi_dir(&self, id: ice::Identity, current: &Current) -> Res<()> {
        let con = current.con.as_ref().ok_or_else(|| {
            Error::IllegalArgument("pingBiDir needs the connection of its request".into())
        })?;
        let id = Identity::new(id.name, id.category);
        // More than the 16 KiB the socket sends: refused, and the connection stays usable.
        let big = vec![0u8; 32 * 1024];
        match TestIntfPrx::unchecked_cast(con.create_proxy(id.clone())?)
            .send_byte_seq(&big, None)
            .await
        {
            Ok(()) | Err(Error::DatagramLimit { .. }) => {}
            Err(e) => {
                eprintln!("pingBiDir: the 32 KiB datagram failed otherwise: {e}");
                return Err(e);
            }
        }
        // The reply, through the connection the request came in on.
        reply(
            &PingReplyPrx::unchecked_cast(con.create_proxy(id)?),
            "pingBiDir",
        )
        .await
    }

    async fn shutdown(&self, current: &Current) -> Res<()> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    floe_conformance::run(|| async move {
        let helper = TestHelper::with_args(&mut args, &[])?;
        // Set over the command line's, as ZeroC's server does.
        for (key, value) in [
            ("Ice.Warn.Connections", "0"),
            ("Ice.UDP.SndSize", "16384"),
            ("Ice.UDP.RcvSize", "16384"),
        ] {
            helper.properties().set_property(key, value);
        }
        let num = match args.iter().find(|a| !a.starts_with('-')) {
            Some(a) => a
                .parse::<i32>()
                .map_err(|_| Error::IllegalArgument(format!("bad server number {a}")))?,
            None => 0,
        };
        let servant = || Arc::new(test::TestIntfDispatcher(Arc::new(TestIntfI)));

        let control = helper
            .adapter_with_endpoints("ControlAdapter", &helper.endpoint_for(num, "tcp"))
            .await?;
        control.add(servant(), "control".parse()?)?;
        control.activate()?;

        if num == 0 {
            let adapter = helper
                .adapter_with_endpoints("TestAdapter", &helper.endpoint_for(num, "udp"))
                .await?;
            adapter.add(servant(), "test".parse()?)?;
            adapter.activate()?;
        }

        // On Linux ZeroC's server joins the group on the interface the system picks (it names
        // the loopback interface on macOS and Windows only), and so does this one.
        let mcast = helper
            .adapter_with_endpoints(
                "McastTestAdapter",
                &format!("udp -h {GROUP} -p {}", helper.port(10)),
            )
            .await?;
        mcast.add(servant(), "test".parse()?)?;
        mcast.activate()?;

        helper.ready("udp");
        helper.wait_and_destroy().await;
        Ok(())
    })
}
