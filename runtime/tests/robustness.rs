//! Malformed input closes only the connection it arrived on: garbage, a wrong magic, an
//! unsupported protocol or encoding, a truncated frame, a 2 GiB size field, a message over
//! `Ice.MessageSizeMax`, an unknown message type, a request whose header cannot be read. As in
//! Ice, these are disorderly closes (no CloseConnection). A well-behaved client calling at the
//! same time sees no error.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use floe::Proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn header(magic: &[u8; 4], proto: (u8, u8), enc: (u8, u8), ty: u8, size: i32) -> Vec<u8> {
    let mut v = magic.to_vec();
    v.extend_from_slice(&[proto.0, proto.1, enc.0, enc.1, ty, 0]);
    v.extend_from_slice(&size.to_le_bytes());
    v
}

fn request(params_len: usize) -> Vec<u8> {
    let mut body = vec![1, 0, 0, 0]; // request id 1
    body.extend_from_slice(b"\x05hello\x00"); // identity
    body.push(0); // facet
    body.extend_from_slice(b"\x08ice_ping\x01\x00"); // operation, mode, context
    let encaps_len = 6 + params_len;
    body.extend_from_slice(&(encaps_len as i32).to_le_bytes());
    body.extend_from_slice(&[1, 1]);
    body.extend(std::iter::repeat_n(0u8, params_len));
    let mut msg = header(b"IceP", (1, 0), (1, 0), 0, (14 + body.len()) as i32);
    msg.extend(body);
    msg
}

/// Collects WARN events of target `floe::network`, to check that each close is logged with why.
#[derive(Default)]
struct WarnLog(parking_lot::Mutex<Vec<String>>);

struct Collector(Arc<WarnLog>);

struct MessageVisitor<'a>(&'a mut String);

impl tracing::field::Visit for MessageVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        }
    }
}

impl tracing::Subscriber for Collector {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() == tracing::Level::WARN && m.target() == "floe::network"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut text = String::new();
        e.record(&mut MessageVisitor(&mut text));
        self.0.0.lock().push(text);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

const VALIDATE: [u8; 14] = [0x49, 0x63, 0x65, 0x50, 1, 0, 1, 0, 3, 0, 14, 0, 0, 0];

/// Connects, checks the server's ValidateConnection, sends `bytes` (then half-closes when
/// `eof`), and returns what the server sent before closing.
async fn send_bad(addr: &str, bytes: &[u8], eof: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut v = [0u8; 14];
    s.read_exact(&mut v).await.unwrap();
    assert_eq!(v, VALIDATE);
    s.write_all(bytes).await.unwrap();
    if eof {
        s.shutdown().await.unwrap();
    }
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection")
        .unwrap();
    rest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_its_connection() {
    let log = Arc::new(WarnLog::default());
    tracing::subscriber::set_global_default(Collector(log.clone())).unwrap();
    let server = start_floe_server(&[("Ice.MessageSizeMax", "1")]).await;
    let port = match &server.adapter.endpoints()[0] {
        floe::Endpoint::Ip(ip) => ip.port,
        other => panic!("{other:?}"),
    };
    let addr = format!("127.0.0.1:{port}");

    // A well-behaved client keeps calling on its own connection the whole time.
    let comm = client_communicator(&[]);
    let hello = HelloPrx::from_object(
        comm.string_to_proxy(&server.proxy.to_string())
            .unwrap()
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let good = {
        let (stop, calls, hello) = (stop.clone(), calls.clone(), hello.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let r = hello.say_hello("steady").await;
                assert_eq!(
                    r.as_deref(),
                    Ok("Hello, steady!"),
                    "the good client saw an error"
                );
                calls.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let mut truncated = request(10);
    truncated.truncate(30);
    let mut bad_request_header = header(b"IceP", (1, 0), (1, 0), 0, 14 + 8);
    bad_request_header.extend_from_slice(&[1, 0, 0, 0, 200, b'a', b'b', b'c']);
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "garbage",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            false,
        ),
        ("wrong magic", header(b"IceX", (1, 0), (1, 0), 3, 14), false),
        (
            "unsupported protocol",
            header(b"IceP", (2, 0), (1, 0), 0, 14),
            false,
        ),
        (
            "unsupported protocol encoding",
            header(b"IceP", (1, 0), (1, 1), 0, 14),
            false,
        ),
        ("truncated frame", truncated, true),
        (
            "2 GiB size field",
            header(b"IceP", (1, 0), (1, 0), 0, i32::MAX),
            false,
        ),
        (
            "negative size",
            header(b"IceP", (1, 0), (1, 0), 0, -20),
            false,
        ),
        ("over Ice.MessageSizeMax", request(2048), false),
        (
            "unknown message type",
            header(b"IceP", (1, 0), (1, 0), 9, 14),
            false,
        ),
        ("unreadable request header", bad_request_header, false),
        (
            "validate with a body",
            {
                let mut v = header(b"IceP", (1, 0), (1, 0), 3, 15);
                v.push(0);
                v
            },
            false,
        ),
    ];
    for (what, bytes, eof) in cases {
        let sent = send_bad(&addr, &bytes, eof).await;
        assert!(
            sent.is_empty(),
            "{what}: expected a disorderly close, server sent {sent:02x?}"
        );
    }

    // A well-formed request on a raw connection is answered, and CloseConnection is honoured.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut v = [0u8; 14];
    s.read_exact(&mut v).await.unwrap();
    s.write_all(&request(0)).await.unwrap();
    let mut reply = [0u8; 25];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(
        &reply[..14],
        &[0x49, 0x63, 0x65, 0x50, 1, 0, 1, 0, 2, 0, 25, 0, 0, 0]
    );
    assert_eq!(&reply[14..], &[1, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1]);
    s.write_all(&[0x49, 0x63, 0x65, 0x50, 1, 0, 1, 0, 4, 1, 14, 0, 0, 0])
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());

    stop.store(true, Ordering::SeqCst);
    good.await.unwrap();
    assert!(
        calls.load(Ordering::SeqCst) > 10,
        "the good client kept working"
    );
    // The good client's connection was never dropped.
    hello.say_hello("after").await.unwrap();
    comm.destroy().await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refuses_a_server_that_does_not_validate() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.0\r\n").await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            });
        }
    });
    let comm = client_communicator(&[]);
    let prx = comm
        .string_to_proxy(&format!("x:tcp -h 127.0.0.1 -p {port} -t 1000"))
        .unwrap()
        .unwrap();
    let err = prx.ice_ping().await.unwrap_err();
    assert!(matches!(err, floe::Error::ConnectFailed(_)), "{err:?}");
    comm.destroy().await;
}
