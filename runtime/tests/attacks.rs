//! Hostile peers against a Floe server, over real sockets on 127.0.0.1 (issue 14): a client that
//! pipelines requests and never reads the replies, one that reads them too slowly, floods of
//! small bzip2 messages that inflate to 1 MiB, class-graph bombs, half-sent messages (many of
//! them, or one byte at a time), idle connections that exhaust file descriptors, and oversized
//! or fragmented WebSocket control frames.
//!
//! The server runs in a child process (this test binary run again with `FLOE_ATTACK_SERVER`
//! set, see [`child_server`]) so that its memory can be read from `/proc/<pid>/status` and its
//! file-descriptor limit set without touching the test process. Every attack checks a stated
//! bound on the server's memory (peak resident set, `VmHWM`, over the attack) and that a
//! well-behaved client on its own connection keeps being answered within a stated time.
//!
//! The tests run one at a time (they measure time and memory).

mod common;
#[path = "common/tracked.rs"]
#[allow(dead_code)]
mod tracked;

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use floe::codegen::{BoxFuture, OutputStream, ValueRef};
use floe::{EncodingVersion, Identity, IncomingRequest, OutgoingResponse, Proxy};
use floe_test_support::ChildGuard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests measure time and memory: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: u64 = 1024 * 1024;

/// The longest a well-behaved client's call may take while the server is under attack.
const ANSWER_WITHIN: Duration = Duration::from_millis(1500);

// ---------------------------------------------------------------------------------------------
// The server child
// ---------------------------------------------------------------------------------------------

/// What the server child prints once it listens.
const READY: &str = "FLOE-ATTACK-SERVER";

/// `::FloeAttack::Graph::take(sequence<Tracked>) -> int`: decodes a sequence of class instances
/// and answers how many arrived.
struct GraphDispatcher;

impl floe::Dispatcher for GraphDispatcher {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, floe::Result<OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "take" => {
                    let n = request.read_params(|is| {
                        let n = is.read_size()?;
                        let mut graph = Vec::with_capacity(n.min(1 << 16));
                        for _ in 0..n {
                            graph.push(is.read_value()?);
                        }
                        is.read_pending_values()?;
                        Ok(graph.len())
                    })?;
                    Ok(request.reply(None, |os| os.write(&(n as i32))))
                }
                _ => floe::dispatch_builtin(request, "::FloeAttack::Graph", &[]).await,
            }
        })
    }
}

/// Prints WARN events (and the rest at INFO) on stderr, one line each, for the parent to read.
struct StderrLog;

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}").replace('\n', " | "));
        }
    }
}

impl tracing::Subscriber for StderrLog {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut f = Fields(String::new());
        e.record(&mut f);
        eprintln!(
            "{} {}: {}",
            e.metadata().level(),
            e.metadata().target(),
            f.0
        );
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The server side of every attack. As a test it does nothing; run by [`Server::start`] with
/// `FLOE_ATTACK_SERVER` set it sets the file-descriptor limit it is told to, starts a Floe
/// server (with `hello` and `graph`) configured by the properties it is given, prints its ports
/// and file-descriptor limits, and serves until its standard input closes.
#[test]
fn child_server() {
    let Ok(props) = std::env::var("FLOE_ATTACK_SERVER") else {
        return;
    };
    if let Ok(limits) = std::env::var("FLOE_ATTACK_NOFILE") {
        let (soft, hard) = limits.split_once(' ').expect("`soft hard`");
        let limit = rustix::process::Rlimit {
            current: Some(soft.parse().unwrap()),
            maximum: Some(hard.parse().unwrap()),
        };
        rustix::process::setrlimit(rustix::process::Resource::Nofile, limit)
            .expect("set the file-descriptor limit");
    }
    tracing::subscriber::set_global_default(StderrLog).unwrap();
    let endpoints =
        std::env::var("FLOE_ATTACK_ENDPOINTS").unwrap_or_else(|_| "tcp -h 127.0.0.1 -p 0".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let props: Vec<(&str, &str)> = props.lines().filter_map(|l| l.split_once('=')).collect();
        let server = start_floe_server_on(&endpoints, &props).await;
        server
            .adapter
            .add(Arc::new(GraphDispatcher), Identity::new("graph", ""))
            .unwrap();
        if std::env::var("FLOE_ATTACK_HOLD").is_ok() {
            server.adapter.hold();
        }
        let ports: Vec<String> = server
            .adapter
            .endpoints()
            .iter()
            .map(|e| match e {
                floe::Endpoint::Ip(ip) => ip.port.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        println!(
            "{READY} ports={} nofile={},{}",
            ports.join(","),
            nofile.current.unwrap_or(u64::MAX),
            nofile.maximum.unwrap_or(u64::MAX)
        );
        // Serve until the parent closes our standard input (or kills us).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
        std::process::exit(0);
    });
}

/// A server child.
struct Server {
    child: ChildGuard,
    ports: Vec<u16>,
    /// Its soft and hard file-descriptor limits once its communicator started.
    nofile: (u64, u64),
    /// The lines it wrote on stderr so far.
    stderr: Arc<parking_lot::Mutex<Vec<String>>>,
}

/// How [`Server::start`] sets up the child.
#[derive(Default)]
struct Setup<'a> {
    props: &'a [(&'a str, &'a str)],
    endpoints: Option<&'a str>,
    /// Soft and hard file-descriptor limits set before the communicator starts.
    nofile: Option<(u64, u64)>,
    hold: bool,
}

impl Server {
    fn start(setup: Setup<'_>) -> Server {
        let exe = std::env::current_exe().expect("this test binary");
        let props: String = setup
            .props
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let mut cmd = Command::new(exe);
        cmd.args(["child_server", "--exact", "--nocapture", "--test-threads=1"])
            .env("FLOE_ATTACK_SERVER", props)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(e) = setup.endpoints {
            cmd.env("FLOE_ATTACK_ENDPOINTS", e);
        }
        if let Some((soft, hard)) = setup.nofile {
            cmd.env("FLOE_ATTACK_NOFILE", format!("{soft} {hard}"));
        }
        if setup.hold {
            cmd.env("FLOE_ATTACK_HOLD", "1");
        }
        let mut child = ChildGuard::new(cmd.spawn().expect("start the server child"));
        let stderr = Arc::new(parking_lot::Mutex::new(Vec::new()));
        {
            let pipe = child.stderr.take().unwrap();
            let lines = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("[server] {line}");
                    lines.lock().push(line);
                }
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest's `test child_server ... ` may precede it on the line.
                if let (false, Some(at)) = (sent, line.find(READY)) {
                    let _ = tx.send(line[at..].to_string());
                    sent = true;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server child starts within 20 s");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .to_string()
        };
        let ports = field("ports=")
            .split(',')
            .map(|p| p.parse().unwrap())
            .collect();
        let nofile = field("nofile=");
        let (soft, hard) = nofile.split_once(',').unwrap();
        Server {
            child,
            ports,
            nofile: (soft.parse().unwrap(), hard.parse().unwrap()),
            stderr,
        }
    }

    fn port(&self) -> u16 {
        self.ports[0]
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// A field of `/proc/<pid>/status`, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server child is running");
        text.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"))
    }

    /// Resident memory now, in bytes.
    fn rss(&self) -> u64 {
        self.status_kib("VmRSS:") * 1024
    }

    /// Peak resident memory so far, in bytes.
    fn peak(&self) -> u64 {
        self.status_kib("VmHWM:") * 1024
    }

    fn stderr_lines_with(&self, text: &str) -> usize {
        self.stderr
            .lock()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// The well-behaved client
// ---------------------------------------------------------------------------------------------

/// Calls `sayHello` on its own connection every 20 ms, timing each call.
struct GoodClient {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Duration, Vec<String>)>,
    communicator: floe::Communicator,
}

/// What the well-behaved client saw.
#[derive(Debug)]
struct GoodReport {
    calls: usize,
    slowest: Duration,
    errors: Vec<String>,
}

impl GoodClient {
    async fn start(port: u16) -> GoodClient {
        let communicator = client_communicator(&[("Ice.Default.InvocationTimeout", "5000")]);
        let hello = HelloPrx::from_object(
            communicator
                .string_to_proxy(&format!("hello:tcp -h 127.0.0.1 -p {port}"))
                .unwrap()
                .unwrap(),
        );
        assert_eq!(hello.say_hello("good").await.unwrap(), "Hello, good!");
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let (mut calls, mut slowest, mut errors) = (0, Duration::ZERO, Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    match hello.say_hello("good").await {
                        Ok(s) if s == "Hello, good!" => {}
                        Ok(s) => errors.push(format!("wrong answer {s:?}")),
                        Err(e) => errors.push(e.to_string()),
                    }
                    slowest = slowest.max(t.elapsed());
                    calls += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (calls, slowest, errors)
            }
        });
        GoodClient {
            stop,
            task,
            communicator,
        }
    }

    async fn finish(self) -> GoodReport {
        self.stop.store(true, Ordering::SeqCst);
        let (calls, slowest, errors) = self.task.await.unwrap();
        self.communicator.destroy().await;
        GoodReport {
            calls,
            slowest,
            errors,
        }
    }
}

/// Fails unless the well-behaved client made calls throughout, each answered within
/// [`ANSWER_WITHIN`] and without error.
fn assert_served(report: &GoodReport, what: &str) {
    eprintln!("{what}: well-behaved client {report:?}");
    assert!(
        report.errors.is_empty(),
        "{what}: the well-behaved client saw errors: {:?}",
        report.errors
    );
    assert!(
        report.slowest <= ANSWER_WITHIN,
        "{what}: a call of the well-behaved client took {:?} (bound {ANSWER_WITHIN:?})",
        report.slowest
    );
    assert!(
        report.calls >= 10,
        "{what}: the well-behaved client made only {} calls",
        report.calls
    );
}

/// Fails unless the server's peak memory grew by less than `bound_mib` over `base`.
fn assert_memory(server: &Server, base: u64, bound_mib: u64, what: &str) {
    let peak = server.peak();
    let growth = peak.saturating_sub(base);
    eprintln!(
        "{what}: server peak resident memory {} MiB, {} MiB over the {} MiB before the attack",
        peak / MIB,
        growth / MIB,
        base / MIB
    );
    assert!(
        growth < bound_mib * MIB,
        "{what}: the server grew by {} MiB (bound {bound_mib} MiB)",
        growth / MIB
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-made Ice messages
// ---------------------------------------------------------------------------------------------

fn put_size(out: &mut Vec<u8>, n: usize) {
    if n < 255 {
        out.push(n as u8);
    } else {
        out.push(255);
        out.extend_from_slice(&(n as i32).to_le_bytes());
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_size(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// An encapsulation (encoding 1.1) holding `content`.
fn encaps(content: &[u8]) -> Vec<u8> {
    let mut out = ((6 + content.len()) as i32).to_le_bytes().to_vec();
    out.extend_from_slice(&[1, 1]);
    out.extend_from_slice(content);
    out
}

/// The body of a Request message (id 0: oneway).
fn request_body(id: i32, identity: &str, operation: &str, params: &[u8]) -> Vec<u8> {
    let mut out = id.to_le_bytes().to_vec();
    put_string(&mut out, identity);
    put_string(&mut out, "");
    put_size(&mut out, 0); // facet
    put_string(&mut out, operation);
    out.push(0); // mode
    put_size(&mut out, 0); // context
    out.extend_from_slice(params);
    out
}

fn header(message_type: u8, compression: u8, size: usize) -> Vec<u8> {
    let mut out = b"IceP".to_vec();
    out.extend_from_slice(&[1, 0, 1, 0, message_type, compression]);
    out.extend_from_slice(&(size as i32).to_le_bytes());
    out
}

fn message(message_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = header(message_type, 0, 14 + body.len());
    out.extend_from_slice(body);
    out
}

/// A bzip2-compressed message (compression byte 2) whose body is `body`.
fn compressed_message(message_type: u8, body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    enc.write_all(body).unwrap();
    let packed = enc.finish().unwrap();
    let mut out = header(message_type, 2, 14 + 4 + packed.len());
    out.extend_from_slice(&((14 + body.len()) as i32).to_le_bytes());
    out.extend_from_slice(&packed);
    out
}

/// A twoway `sayHello(name)` to `hello`.
fn say_hello(name: &str) -> Vec<u8> {
    let mut params = Vec::new();
    put_string(&mut params, name);
    message(0, &request_body(1, "hello", "sayHello", &encaps(&params)))
}

const VALIDATE: [u8; 14] = [0x49, 0x63, 0x65, 0x50, 1, 0, 1, 0, 3, 0, 14, 0, 0, 0];

/// Connects to the server and reads its ValidateConnection.
async fn attacker(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut v = [0u8; 14];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut v))
        .await
        .expect("validated within 5 s")
        .expect("read ValidateConnection");
    assert_eq!(v, VALIDATE);
    s
}

/// Writes `bytes` again and again until `until`; returns how many bytes were written.
async fn flood(s: &mut TcpStream, bytes: &[u8], until: tokio::time::Instant) -> u64 {
    let mut sent = 0;
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout_at(until, s.write_all(bytes)).await {
            Ok(Ok(())) => sent += bytes.len() as u64,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sent
}

/// Whether the server closed `s`: reads (and drops) what arrives until the end of the stream
/// or an error, for at most `limit`; returns how long that took, or `None`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| start.elapsed())
}

// ---------------------------------------------------------------------------------------------
// 1. Replies that are never read
// ---------------------------------------------------------------------------------------------

/// A client pipelines `sayHello` requests (4 KiB in, 4 KiB out) as fast as it can and never
/// reads a reply. Without backpressure the server queues every reply (it grew by more than
/// 1 GB in 20 s); with it, the connection stops being read once 1 MiB of replies is waiting,
/// TCP pushes back, and the attacker's writes stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_whose_replies_are_never_read() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup {
        props: &[("Ice.Connection.MaxPendingReplyBytes", "1048576")],
        ..Default::default()
    });
    let good = GoodClient::start(server.port()).await;
    let base = server.rss();
    let request = say_hello(&"x".repeat(4096));
    let batch = request.repeat(16);
    // Every attacker connects first, then they all start at once.
    let go = Arc::new(tokio::sync::Semaphore::new(0));
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let mut s = attacker(&server.addr()).await;
        let batch = batch.clone();
        let go = go.clone();
        attackers.push(tokio::spawn(async move {
            let _ = go.acquire().await;
            let sent = flood(
                &mut s,
                &batch,
                tokio::time::Instant::now() + Duration::from_secs(5),
            )
            .await;
            (sent, s)
        }));
    }
    let mut sent = 0;
    go.add_permits(2);
    let mut held = Vec::new();
    for a in attackers {
        let (n, s) = a.await.unwrap();
        sent += n;
        held.push(s);
    }
    eprintln!("the attackers wrote {} MiB", sent / MIB);
    assert_memory(&server, base, 48, "unread replies");
    assert_served(&good.finish().await, "unread replies");
    // TCP pushed back: the attackers could write little more than the bound and the sockets'
    // buffers.
    assert!(
        sent < 64 * MIB,
        "the attackers wrote {} MiB: the server kept reading",
        sent / MIB
    );
}

/// A client pipelines requests and reads a little of its replies now and then (4 KiB every
/// 200 ms). It is cut off once its replies stay above half the bound for longer than
/// `Ice.Connection.MessageTimeout` (2 s here); before, such a client was never cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_reads_replies_too_slowly_is_cut_off() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup {
        props: &[
            ("Ice.Connection.MaxPendingReplyBytes", "262144"),
            ("Ice.Connection.MessageTimeout", "2000"),
            ("Ice.TCP.SndSize", "65536"),
        ],
        ..Default::default()
    });
    let good = GoodClient::start(server.port()).await;
    let base = server.rss();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut s = socket
        .connect(server.addr().parse().unwrap())
        .await
        .unwrap();
    let mut v = [0u8; 14];
    s.read_exact(&mut v).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let batch = say_hello(&"x".repeat(4096)).repeat(16);
    let writer = tokio::spawn(async move { while w.write_all(&batch).await.is_ok() {} });
    let start = Instant::now();
    let mut buf = vec![0u8; 4096];
    let closed = loop {
        if start.elapsed() > Duration::from_secs(15) {
            break None;
        }
        match tokio::time::timeout(Duration::from_secs(1), r.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break Some(start.elapsed()),
            Ok(Ok(_)) | Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    writer.abort();
    eprintln!("slow reader closed after {closed:?}");
    assert_memory(&server, base, 32, "slow reader");
    assert_served(&good.finish().await, "slow reader");
    let closed = closed.expect("the server never cut off a client taking 20 KB/s of replies");
    assert!(closed < Duration::from_secs(12), "cut off after {closed:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. Floods of decompression and decoding work
// ---------------------------------------------------------------------------------------------

/// Two clients send, as fast as they can, oneway requests of about 100 bytes that bzip2
/// inflates to 1 MiB. Before, every buffered frame was inflated on the connection's task
/// before it yielded, and the server stopped answering others; now inflation of large bodies
/// runs off the tasks serving connections, each connection gets a budget of decompressed bytes
/// per second (default 16 MiB/s), and the well-behaved client is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bzip2_bombs_do_not_starve_other_clients() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup::default());
    let good = GoodClient::start(server.port()).await;
    let base = server.rss();
    let params = encaps(&vec![0u8; 1024 * 1024 - 200]);
    let bomb = compressed_message(0, &request_body(0, "nobody", "ice_ping", &params));
    eprintln!("one bomb: {} bytes inflating to 1 MiB", bomb.len());
    assert!(bomb.len() < 200, "{}", bomb.len());
    let batch = bomb.repeat(64);
    // Every attacker connects first, then they all start at once.
    let go = Arc::new(tokio::sync::Semaphore::new(0));
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let mut s = attacker(&server.addr()).await;
        let batch = batch.clone();
        let go = go.clone();
        attackers.push(tokio::spawn(async move {
            let _ = go.acquire().await;
            let sent = flood(
                &mut s,
                &batch,
                tokio::time::Instant::now() + Duration::from_secs(5),
            )
            .await;
            (sent, s)
        }));
    }
    go.add_permits(2);
    let mut held = Vec::new();
    for a in attackers {
        let (sent, s) = a.await.unwrap();
        eprintln!("an attacker wrote {} KiB of bombs", sent / 1024);
        held.push(s);
    }
    assert_served(&good.finish().await, "bzip2 bombs");
    assert_memory(&server, base, 64, "bzip2 bombs");
}

/// Two clients send requests carrying a sequence of 100,000 class instances (about 0.6 MB
/// that take long to decode), back to back. The decoding runs off the tasks serving other
/// connections, and the well-behaved client is answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_graph_bombs_do_not_starve_other_clients() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup::default());
    let good = GoodClient::start(server.port()).await;
    let base = server.rss();
    let mut os = OutputStream::new(EncodingVersion::V1_0);
    os.start_encapsulation(EncodingVersion::V1_1, Default::default());
    os.write_size(100_000);
    for _ in 0..100_000 {
        os.write_value(&Some(ValueRef::new(tracked::Tracked::default())));
    }
    os.write_pending_values();
    os.end_encapsulation();
    let params = os.finish().unwrap();
    let bomb = message(0, &request_body(0, "graph", "take", &params));
    eprintln!("one class-graph bomb: {} bytes", bomb.len());
    // Every attacker connects first, then they all start at once.
    let go = Arc::new(tokio::sync::Semaphore::new(0));
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let mut s = attacker(&server.addr()).await;
        let bomb = bomb.clone();
        let go = go.clone();
        attackers.push(tokio::spawn(async move {
            let _ = go.acquire().await;
            let sent = flood(
                &mut s,
                &bomb,
                tokio::time::Instant::now() + Duration::from_secs(5),
            )
            .await;
            (sent, s)
        }));
    }
    go.add_permits(2);
    let mut held = Vec::new();
    for a in attackers {
        let (sent, s) = a.await.unwrap();
        eprintln!("an attacker wrote {} MiB of class graphs", sent / MIB);
        held.push(s);
    }
    assert_served(&good.finish().await, "class-graph bombs");
    assert_memory(&server, base, 128, "class-graph bombs");
}

// ---------------------------------------------------------------------------------------------
// 3. Half-sent messages
// ---------------------------------------------------------------------------------------------

/// 100 connections each send all but the last byte of a 1 MiB request. Before, each got a
/// 1 MiB buffer (1,500 such connections held 1.56 GB); now the bytes held for incomplete
/// messages are capped for the whole communicator (`Ice.Connection.MaxIncompleteBytes`, 8 MiB
/// here): beyond it, a connection stops reading until there is room. Every such message must
/// also be complete within `Ice.Connection.MessageTimeout` (2 s here) of its first byte, so
/// the stuck ones are closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_messages_are_capped_and_timed_out() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup {
        props: &[
            ("Ice.Connection.MaxIncompleteBytes", "8388608"),
            ("Ice.Connection.MessageTimeout", "2000"),
        ],
        ..Default::default()
    });
    let good = GoodClient::start(server.port()).await;
    let base = server.rss();
    let params = encaps(&vec![7u8; 1024 * 1024 - 200]);
    let mut big = message(0, &request_body(1, "hello", "ice_ping", &params));
    big.pop();
    let big = Arc::new(big);
    let start = Instant::now();
    let mut attackers = Vec::new();
    for _ in 0..100 {
        let mut s = attacker(&server.addr()).await;
        let big = big.clone();
        attackers.push(tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(4), s.write_all(&big)).await;
            closed_within(&mut s, Duration::from_secs(8)).await
        }));
    }
    let mut closed = Vec::new();
    for a in attackers {
        closed.push(a.await.unwrap());
    }
    let open = closed.iter().filter(|c| c.is_none()).count();
    eprintln!(
        "half-sent messages: {open} of 100 connections still open {:?} after the start",
        start.elapsed()
    );
    assert_memory(&server, base, 40, "half-sent messages");
    assert_served(&good.finish().await, "half-sent messages");
    assert_eq!(
        open, 0,
        "connections with a message stuck half-way stay open"
    );
}

/// A client sends a request one byte every 300 ms. Before, each byte restarted the 60 s
/// endpoint timeout and the connection lived for ever; now the whole message must arrive
/// within `Ice.Connection.MessageTimeout` (1.5 s here) of its first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_one_byte_at_a_time_times_out() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup {
        props: &[("Ice.Connection.MessageTimeout", "1500")],
        ..Default::default()
    });
    let good = GoodClient::start(server.port()).await;
    let base = server.rss();
    let request = say_hello("drip");
    let (mut r, mut w) = attacker(&server.addr()).await.into_split();
    let start = Instant::now();
    let dripper = tokio::spawn(async move {
        for b in request.iter().cycle() {
            if w.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await;
    dripper.abort();
    assert_memory(&server, base, 16, "one byte at a time");
    assert_served(&good.finish().await, "one byte at a time");
    let closed = closed.expect("a connection sending one byte every 300 ms stays open");
    eprintln!("the dripping connection was closed after {closed:?}");
    assert!(closed < Duration::from_secs(4), "closed after {closed:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. File descriptors, idle connections, the listen backlog
// ---------------------------------------------------------------------------------------------

/// The server runs with 256 file descriptors (soft and hard). 400 idle connections used to
/// take every descriptor and lock new clients out for good (and idle connections were never
/// closed). Now the adapter takes at most three quarters of the limit (192) and closes the
/// rest at once, and idle incoming connections are closed after `Ice.Connection.IdleTimeout`
/// (1 s here): a new client gets in within 6 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_lock_new_clients_out() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup {
        props: &[
            ("Ice.Connection.IdleTimeout", "1000"),
            ("Ice.Override.CloseTimeout", "500"),
        ],
        nofile: Some((256, 256)),
        ..Default::default()
    });
    let good = GoodClient::start(server.port()).await;
    let base = server.rss();
    let mut idle = Vec::new();
    for _ in 0..400 {
        match tokio::time::timeout(
            Duration::from_millis(500),
            TcpStream::connect(server.addr()),
        )
        .await
        {
            Ok(Ok(s)) => idle.push(s),
            _ => break,
        }
    }
    eprintln!("{} idle connections opened", idle.len());
    let start = Instant::now();
    let mut last_error = String::new();
    let got_in = loop {
        if start.elapsed() > Duration::from_secs(8) {
            break None;
        }
        let comm = client_communicator(&[
            ("Ice.Override.ConnectTimeout", "1000"),
            ("Ice.Default.InvocationTimeout", "2000"),
        ]);
        let prx = comm
            .string_to_proxy(&format!("hello:tcp -h 127.0.0.1 -p {}", server.port()))
            .unwrap()
            .unwrap();
        let r = prx.ice_ping().await;
        comm.destroy().await;
        match r {
            Ok(()) => break Some(start.elapsed()),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_memory(&server, base, 32, "idle connections");
    assert_served(&good.finish().await, "idle connections");
    let got_in = got_in
        .unwrap_or_else(|| panic!("no new client got in within 8 s; last error: {last_error}"));
    eprintln!("a new client got in after {got_in:?}");
    assert!(got_in < Duration::from_secs(6), "got in after {got_in:?}");
    drop(idle);
}

/// With no connection cap and idle connections kept (ACM close off), 100 connections exhaust
/// 64 descriptors and every accept fails with EMFILE; that failure is logged at most once per
/// 10 s (before: every 50 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_failures_are_logged_at_a_bounded_rate() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup {
        props: &[
            ("Test.MaxConnections", "-1"),
            ("Ice.ACM.Server.Close", "0"),
            ("Ice.Connection.IdleTimeout", "0"),
        ],
        nofile: Some((64, 64)),
        ..Default::default()
    });
    let mut idle = Vec::new();
    for _ in 0..100 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(500),
            TcpStream::connect(server.addr()),
        )
        .await
        {
            idle.push(s);
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lines = server.stderr_lines_with("accept failed");
    eprintln!("{lines} accept failures logged in 3 s");
    assert!(lines >= 1, "the accept failures are not logged at all");
    assert!(lines <= 2, "{lines} accept failures logged in 3 s");
    drop(idle);
}

/// The soft file-descriptor limit is raised to the hard one when the communicator starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_descriptor_limit_is_raised_to_the_hard_one() {
    let _serial = SERIAL.lock().await;
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(4096)
        .min(4096);
    let server = Server::start(Setup {
        nofile: Some((64, hard)),
        ..Default::default()
    });
    assert_eq!(server.nofile, (hard, hard));
}

/// `Ice.TCP.Backlog` sets the listen backlog: with 8 and a holding adapter (which accepts
/// nothing), only about 9 of 20 connection attempts complete; the others wait for the kernel
/// to retry their SYN a second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_backlog_property_sets_the_listen_backlog() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup {
        props: &[("Ice.TCP.Backlog", "8")],
        hold: true,
        ..Default::default()
    });
    let addr = server.addr();
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(600), TcpStream::connect(addr))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
            })
        })
        .collect();
    let mut connected = Vec::new();
    for a in attempts {
        if let Some(s) = a.await.unwrap() {
            connected.push(s);
        }
    }
    eprintln!("{} of 20 connections completed", connected.len());
    assert!(
        (5..=12).contains(&connected.len()),
        "{} of 20 connections completed with a backlog of 8",
        connected.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. WebSocket control frames
// ---------------------------------------------------------------------------------------------

/// Upgrades a connection to WebSocket and reads the server's ValidateConnection frame.
async fn ws_attacker(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Protocol: ice.zeroc.com\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let mut frame = [0u8; 16];
    s.read_exact(&mut frame).await.unwrap();
    assert_eq!(&frame[..2], &[0x82, 14]);
    assert_eq!(&frame[2..], &VALIDATE);
    s
}

/// A masked client frame header.
fn ws_frame_header(first: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first];
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(&[1, 2, 3, 4]);
    out
}

/// A ping of 1 MiB (control frames carry at most 125 bytes, RFC 6455 5.5), a ping of 126
/// bytes and a fragmented ping, three times each: each closes its connection at once. Before, their payloads
/// were skipped: a ping announcing 2^62 bytes kept a connection busy for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_fragmented_websocket_control_frames_close_the_connection() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup {
        endpoints: Some("tcp -h 127.0.0.1 -p 0:ws -h 127.0.0.1 -p 0"),
        ..Default::default()
    });
    let good = GoodClient::start(server.port()).await;
    let base = server.rss();
    let ws = format!("127.0.0.1:{}", server.ports[1]);
    let cases: [(&str, Vec<u8>, usize); 3] = [
        ("a ping of 1 MiB", ws_frame_header(0x89, MIB), MIB as usize),
        ("a ping of 126 bytes", ws_frame_header(0x89, 126), 126),
        ("a fragmented ping", ws_frame_header(0x09, 10), 10),
    ];
    for (what, frame, payload) in cases.iter().cycle().take(9).cloned() {
        let mut s = ws_attacker(&ws).await;
        s.write_all(&frame).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let writer = tokio::spawn(async move {
            let chunk = vec![0u8; 16 * 1024];
            let mut left = payload;
            while left > 0 {
                let n = left.min(chunk.len());
                if w.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
            // Keep the connection open; only the server may close it.
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(w);
        });
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        writer.abort();
        assert!(closed.is_ok(), "{what}: the connection stays open");
    }
    // The well-behaved client goes on calling for a moment after the attacks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_memory(&server, base, 16, "websocket control frames");
    assert_served(&good.finish().await, "websocket control frames");
    assert!(
        server.stderr_lines_with("control frame") >= 9,
        "each close is logged with its reason"
    );
}

/// The request sent by [`say_hello`] is a valid one: the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_made_requests_are_answered() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(Setup::default());
    let mut s = attacker(&server.addr()).await;
    s.write_all(&say_hello("raw")).await.unwrap();
    let mut h = [0u8; 14];
    s.read_exact(&mut h).await.unwrap();
    assert_eq!(&h[..10], &[0x49, 0x63, 0x65, 0x50, 1, 0, 1, 0, 2, 0]);
    let size = i32::from_le_bytes([h[10], h[11], h[12], h[13]]) as usize;
    let mut body = vec![0u8; size - 14];
    s.read_exact(&mut body).await.unwrap();
    assert_eq!(&body[..5], &[1, 0, 0, 0, 0], "request id 1, status Ok");
    assert!(body.ends_with(b"Hello, raw!"), "{body:?}");
}
