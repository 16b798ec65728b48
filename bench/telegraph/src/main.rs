//! `telegraph-bench MODE [OPTIONS]`: the load generator of bench/telegraph.sh. Figures are
//! printed as `name value` lines on stdout (names end in the number of pairs or callers);
//! notes go to stderr, starting with `#`.
//!
//! Modes:
//!
//! - `cluster`: a [`Cluster`] of 3 managers (and its presence broker) with default timings, data
//!   in `--dir`; prints `PROXY <managers proxy>` and runs until killed.
//! - `telegraph --managers PROXY`: `--pairs` pairs of clients, each registered with
//!   `Client::start(config, true)` (own data directory, sled, and communicator); every sender
//!   sends `--text-bytes`-byte texts to its receiver one at a time for `--seconds`: latency =
//!   from the `send` call to the receiver's `Event::Received` of that message (one process, one
//!   clock). Without `--managers`, a cluster is started in this process.
//! - `floor`: the bare Floe round trip: per pair a server communicator whose adapter serves a
//!   no-op `Telegraph::Inbox` and a client communicator calling it, one call at a time:
//!   `deliver` of an envelope sealed as Telegraph seals it (same bytes); `--op ping`: `ice_ping`.
//! - `mqtt --port P`: per pair an MQTT sender publishing (QoS 1) payloads of the sealed
//!   envelope's encoded size to a topic its receiver subscribes to (QoS 1), one at a time;
//!   latency = from `publish` to the receiver's event loop yielding the message. With
//!   `--seal`, the sender seals each message (`telegraph::crypto::seal`, encoded as Telegraph
//!   encodes it) and the receiver opens it (`crypto::open`) before it counts.
//! - `managers --managers PROXY`: register, login and lookup calls per second through the
//!   Manager proxy with `--callers` concurrent callers (each on a communicator of its own,
//!   caller i on manager (i mod 3) + 1 of the proxy's endpoints).
//! - `parts`: the pieces of one message alone: seal, open, receipt signature and check, the
//!   sender's store write + flush as `Client::send` does it, the receiver's as
//!   `Client::receive` does it.
//! - `fanin`: `--pairs` tasks writing and flushing one store at once, as a client's inbox does
//!   when that many senders deliver to it at the same time; a watchdog reports a hang.
//! - `aggregate SIDE FILE...`: merges the `--out` files of several processes into one figure.
//!
//! With `--out FILE`, `telegraph`, `floor` and `mqtt` write their raw figures there instead
//! (a line `count elapsed_s cpu_s`, then one latency in µs per line); with `--ready FILE` and
//! `--go FILE` they create the first after their warm-up and wait for the second before they
//! measure, so that several processes measure over the same seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floe::codegen::{Current, OutputStream, SliceType};
use floe::{Communicator, EncodingVersion, Properties, Proxy};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, NetworkOptions, Packet, QoS};
use telegraph::client::{Client, ClientConfig, Event};
use telegraph::cluster::Cluster;
use telegraph::crypto::{self, Identity};
use telegraph::slice::telegraph::{self as api, Envelope, InboxPrx, ManagerPrx, ReceiptKind};
use telegraph::store::{Message, Outgoing, State, Store};
use tokio::sync::mpsc;

type Res<T> = Result<T, String>;

fn fail(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

struct Opts {
    mode: String,
    seconds: f64,
    pairs: Vec<usize>,
    callers: Vec<usize>,
    text_bytes: usize,
    port: u16,
    managers: Option<String>,
    seal: bool,
    broker_pid: Option<u32>,
    dir: Option<PathBuf>,
    /// Index of this process's first pair (names and topics) and a prefix for user names.
    first: usize,
    tag: String,
    op: String,
    out: Option<PathBuf>,
    ready: Option<PathBuf>,
    go: Option<PathBuf>,
    rest: Vec<String>,
}

fn list(s: &str) -> Res<Vec<usize>> {
    s.split([',', ' ']).filter(|p| !p.is_empty()).map(|p| p.parse::<usize>().map_err(fail)).collect()
}

fn parse() -> Res<Opts> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("usage: telegraph-bench cluster|telegraph|floor|mqtt|managers|parts|fanin|aggregate [--seconds S] [--pairs 1,16] [--callers 1,16] [--text-bytes N] [--port P] [--seal] [--op deliver|ping] [--managers PROXY] [--dir DIR] [--first I] [--tag T] [--out FILE] [--ready FILE] [--go FILE]")?;
    let mut o = Opts {
        mode,
        seconds: 5.0,
        pairs: vec![1, 16],
        callers: vec![1, 16],
        text_bytes: 100,
        port: 1883,
        managers: None,
        seal: false,
        broker_pid: None,
        dir: None,
        first: 0,
        tag: String::new(),
        op: "deliver".into(),
        out: None,
        ready: None,
        go: None,
        rest: Vec::new(),
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => o.seconds = value()?.parse().map_err(fail)?,
            "--pairs" => o.pairs = list(&value()?)?,
            "--callers" => o.callers = list(&value()?)?,
            "--text-bytes" => o.text_bytes = value()?.parse().map_err(fail)?,
            "--port" => o.port = value()?.parse().map_err(fail)?,
            "--managers" => o.managers = Some(value()?),
            "--seal" => o.seal = true,
            "--broker-pid" => o.broker_pid = Some(value()?.parse().map_err(fail)?),
            "--dir" => o.dir = Some(PathBuf::from(value()?)),
            "--first" => o.first = value()?.parse().map_err(fail)?,
            "--tag" => o.tag = value()?,
            "--op" => o.op = value()?,
            "--out" => o.out = Some(PathBuf::from(value()?)),
            "--ready" => o.ready = Some(PathBuf::from(value()?)),
            "--go" => o.go = Some(PathBuf::from(value()?)),
            _ if !a.starts_with("--") => o.rest.push(a),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    Ok(o)
}

fn main() {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let _ = TAG.set(opts.tag.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = rt.block_on(async {
        match opts.mode.as_str() {
            "cluster" => cluster_mode(&opts).await,
            "fanin" => fanin_mode(&opts).await,
            "aggregate" => aggregate_mode(&opts),
            "telegraph" => telegraph_mode(&opts).await,
            "floor" => floor_mode(&opts).await,
            "mqtt" => mqtt_mode(&opts).await,
            "managers" => managers_mode(&opts).await,
            "parts" => parts_mode(&opts).await,
            m => Err(format!("unknown mode {m}")),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    if let Err(e) = result {
        eprintln!("telegraph-bench {}: {e}", opts.mode);
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Figures

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// CPU time (user + system) of process `pid` (`self` for this one), from /proc.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ = 100 on Linux
}

struct Cpu {
    own: Option<Duration>,
    broker: Option<Duration>,
    broker_pid: Option<u32>,
}

impl Cpu {
    fn start(broker_pid: Option<u32>) -> Cpu {
        Cpu { own: cpu_time("self"), broker: broker_pid.and_then(|p| cpu_time(&p.to_string())), broker_pid }
    }

    /// This process's CPU seconds since `start`.
    fn seconds(&self) -> Option<f64> {
        self.own.zip(cpu_time("self")).map(|(a, b)| (b - a).as_secs_f64())
    }

    /// (this process, the broker) CPU µs per message since `start`.
    fn per_message(&self, messages: usize) -> (Option<f64>, Option<f64>) {
        let n = messages.max(1) as f64;
        let own = self.own.zip(cpu_time("self")).map(|(a, b)| (b - a).as_secs_f64() * 1e6 / n);
        let broker = self.broker.zip(self.broker_pid.and_then(|p| cpu_time(&p.to_string()))).map(|(a, b)| (b - a).as_secs_f64() * 1e6 / n);
        (own, broker)
    }
}

/// Prints p50, p99 (µs), rate and count of one measurement.
fn report(side: &str, n: usize, mut latencies: Vec<Duration>, elapsed: Duration, cpu: (Option<f64>, Option<f64>)) {
    latencies.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("{side}_p50_us_{n} {:.1}", us(percentile(&latencies, 0.50)));
    println!("{side}_p99_us_{n} {:.1}", us(percentile(&latencies, 0.99)));
    println!("{side}_per_s_{n} {:.1}", latencies.len() as f64 / elapsed.as_secs_f64());
    println!("{side}_count_{n} {}", latencies.len());
    if let Some(c) = cpu.0 {
        println!("{side}_cpu_us_{n} {c:.1}");
    }
    if let Some(c) = cpu.1 {
        println!("{side}_brokercpu_us_{n} {c:.1}");
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn text_of(bytes: usize) -> String {
    let words = "the quick brown fox jumps over the lazy dog ";
    words.chars().cycle().take(bytes).collect()
}

fn encode(envelope: &Envelope) -> Vec<u8> {
    let mut os = OutputStream::new(EncodingVersion::V1_1);
    envelope.encode(&mut os);
    os.finish().unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Res<Envelope> {
    let mut is = floe::codegen::InputStream::new(bytes, EncodingVersion::V1_1);
    Envelope::decode(&mut is).map_err(fail)
}

/// A prefix for user names and topics (`--tag`), so that runs against one cluster differ.
static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn sender_name(i: usize) -> String {
    format!("{}sender{i:02}", TAG.get().map_or("", |t| t.as_str()))
}

fn receiver_name(i: usize) -> String {
    format!("{}receiver{i:02}", TAG.get().map_or("", |t| t.as_str()))
}

/// An envelope as Telegraph seals it from pair `i`'s sender to its receiver.
fn sample_envelope(i: usize, text: &str) -> Res<(Envelope, Identity, Identity)> {
    let (s, r) = (Identity::generate(), Identity::generate());
    let e = crypto::seal(&s, &sender_name(i), &receiver_name(i), &r.exchange_public(), &crypto::new_message_id(), 1, now_ms(), text).map_err(fail)?;
    Ok((e, s, r))
}

fn work_dir(o: &Opts) -> Res<tempfile::TempDir> {
    match &o.dir {
        Some(d) => tempfile::tempdir_in(d).map_err(fail),
        None => tempfile::tempdir().map_err(fail),
    }
}

/// Runs `n` loops of `one(i)` (one message or call at a time each) for `seconds`; returns
/// every latency and the time from the start to the end of the last loop.
async fn run_loops<F, Fut>(n: usize, seconds: f64, one: F) -> Res<(Vec<Duration>, Duration)>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Res<Duration>> + Send + 'static,
{
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for i in 0..n {
        let one = one.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                lat.push(one(i).await?);
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(fail)??);
    }
    Ok((all, start.elapsed()))
}

/// Creates `--ready` and waits (at most 5 minutes) until `--go` exists.
async fn barrier(o: &Opts) -> Res<()> {
    if let Some(ready) = &o.ready {
        std::fs::write(ready, b"").map_err(|e| format!("{}: {e}", ready.display()))?;
    }
    if let Some(go) = &o.go {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !go.exists() {
            if Instant::now() > deadline {
                return Err(format!("{} did not appear within 5 minutes", go.display()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(())
}

/// Warms up (0.5 s of every loop), then measures: with `--out`, all pairs of this process once
/// (after the barrier), raw figures to the file; otherwise each count of `--pairs` in turn,
/// reported as `side`.
async fn measure<F, Fut>(o: &Opts, side: &str, broker_pid: Option<u32>, one: F) -> Res<()>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Res<Duration>> + Send + 'static,
{
    let most = o.pairs.iter().copied().max().unwrap_or(1);
    run_loops(most, 0.5, one.clone()).await?;
    if let Some(out) = &o.out {
        barrier(o).await?;
        let cpu = Cpu::start(None);
        let (lat, elapsed) = run_loops(most, o.seconds, one).await?;
        let mut text = format!("{} {:.6} {:.3}\n", lat.len(), elapsed.as_secs_f64(), cpu.seconds().unwrap_or(0.0));
        for d in &lat {
            text.push_str(&format!("{:.1}\n", d.as_secs_f64() * 1e6));
        }
        return std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()));
    }
    for &n in &o.pairs {
        let cpu = Cpu::start(broker_pid);
        let (lat, elapsed) = run_loops(n, o.seconds, one.clone()).await?;
        let count = lat.len();
        report(side, n, lat, elapsed, cpu.per_message(count));
    }
    Ok(())
}

/// `aggregate SIDE FILE...`: one figure from the `--out` files of processes that measured over
/// the same seconds: latencies merged, rates added, CPU added.
fn aggregate_mode(o: &Opts) -> Res<()> {
    let (side, files) = o.rest.split_first().ok_or("aggregate SIDE FILE...")?;
    let (mut lat, mut rate, mut cpu) = (Vec::new(), 0.0, 0.0);
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        let mut lines = text.lines();
        let head: Vec<f64> = lines.next().unwrap_or("").split_whitespace().filter_map(|v| v.parse().ok()).collect();
        let [count, elapsed, seconds] = head[..] else { return Err(format!("{f}: no header")) };
        rate += count / elapsed;
        cpu += seconds;
        for l in lines {
            lat.push(Duration::from_secs_f64(l.parse::<f64>().map_err(fail)? / 1e6));
        }
    }
    let n = lat.len();
    let elapsed = Duration::from_secs_f64(n as f64 / rate.max(1e-9));
    report(side, files.len(), lat, elapsed, (Some(cpu * 1e6 / n.max(1) as f64), None));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// telegraph

fn client_config(managers: &str, dir: &Path, name: &str) -> Res<ClientConfig> {
    let p = Properties::new();
    p.set_property("Telegraph.Managers", managers);
    p.set_property("Telegraph.Client.DataDir", &dir.join(name).display().to_string());
    ClientConfig::from_properties(p, name, &format!("{name}-password-0123")).map_err(fail)
}

struct Pair {
    sender: Client,
    receiver: Client,
    /// The receiver's `Received` events from the sender: (id, when).
    arrivals: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Instant)>>,
    listener: tokio::task::JoinHandle<()>,
}

impl Pair {
    async fn start(managers: &str, dir: &Path, i: usize) -> Res<Pair> {
        let sender = Client::start(client_config(managers, dir, &sender_name(i))?, true).await.map_err(|e| format!("{}: {e}", sender_name(i)))?;
        let receiver = Client::start(client_config(managers, dir, &receiver_name(i))?, true).await.map_err(|e| format!("{}: {e}", receiver_name(i)))?;
        let mut events = receiver.events();
        let (tx, rx) = mpsc::unbounded_channel();
        let from = sender.name().to_string();
        let listener = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Received(m)) if m.peer == from => {
                        let _ = tx.send((m.id, Instant::now()));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
        Ok(Pair { sender, receiver, arrivals: tokio::sync::Mutex::new(rx), listener })
    }

    /// Sends one message and waits for its arrival; returns the latency.
    async fn one(&self, text: &str) -> Res<Duration> {
        let mut arrivals = self.arrivals.lock().await;
        let t0 = Instant::now();
        let m = self.sender.send(self.receiver.name(), text).await.map_err(fail)?;
        let (id, t1) = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
            .await
            .map_err(|_| format!("{} -> {}: message {} not received within 30 s", self.sender.name(), self.receiver.name(), m.id))?
            .ok_or("event stream closed")?;
        if id != m.id {
            return Err(format!("{}: expected message {}, got {id}", self.receiver.name(), m.id));
        }
        Ok(t1 - t0)
    }
}

async fn telegraph_mode(o: &Opts) -> Res<()> {
    let tmp = work_dir(o)?;
    let (cluster, managers) = match &o.managers {
        Some(p) => (None, p.clone()),
        None => {
            let t = Instant::now();
            let c = Cluster::start(3, &Properties::new(), &tmp.path().join("managers")).await?;
            eprintln!("# cluster of 3 managers up in {:.1} s: {}", t.elapsed().as_secs_f64(), c.managers_proxy());
            let p = c.managers_proxy();
            (Some(c), p)
        }
    };
    let result = telegraph_pairs(o, &managers, tmp.path()).await;
    if let Some(c) = cluster {
        c.shutdown().await;
    }
    result
}

async fn telegraph_pairs(o: &Opts, managers: &str, dir: &Path) -> Res<()> {
    let text = text_of(o.text_bytes);
    let most = o.pairs.iter().copied().max().unwrap_or(1);
    let t = Instant::now();
    let mut pairs = Vec::new();
    for i in o.first..o.first + most {
        pairs.push(Pair::start(managers, dir, i).await?);
    }
    eprintln!("# {} clients registered and logged in in {:.1} s", 2 * most, t.elapsed().as_secs_f64());
    let (sample, _, _) = sample_envelope(0, &text)?;
    eprintln!("# text {} bytes, sealed envelope {} bytes encoded", text.len(), encode(&sample).len());
    let pairs = Arc::new(pairs);
    let text = Arc::new(text);
    let one = {
        let (pairs, text) = (pairs.clone(), text.clone());
        move |i: usize| {
            let (pairs, text) = (pairs.clone(), text.clone());
            async move { pairs[i].one(&text).await }
        }
    };
    // The first message of each pair (in the warm-up) looks its recipient up, pins its keys and
    // opens the connection.
    measure(o, "telegraph", None, one).await?;
    for p in pairs.iter() {
        p.listener.abort();
        p.sender.shutdown().await;
        p.receiver.shutdown().await;
    }
    Ok(())
}


// ---------------------------------------------------------------------------------------------
// floor

/// An inbox that takes every message and does nothing with it.
struct NoopInbox;

impl api::Inbox for NoopInbox {
    async fn deliver(&self, _: Envelope, _: &Current) -> Result<(), api::inbox::DeliverError> {
        Ok(())
    }

    async fn receipt(&self, _: api::Receipt, _: &Current) -> Result<(), api::inbox::ReceiptError> {
        Ok(())
    }
}

async fn floor_mode(o: &Opts) -> Res<()> {
    let text = text_of(o.text_bytes);
    let most = o.pairs.iter().copied().max().unwrap_or(1);
    let mut communicators = Vec::new();
    let mut targets = Vec::new();
    for i in o.first..o.first + most {
        let server = Communicator::with_properties(Properties::new()).map_err(fail)?;
        let adapter = server.create_object_adapter_with_endpoints(&format!("Floor{i}"), "tcp -h 127.0.0.1 -p 0").await.map_err(fail)?;
        let id: floe::Identity = format!("inbox/{}", receiver_name(i)).parse().map_err(fail)?;
        let prx = adapter.add(Arc::new(api::InboxDispatcher(Arc::new(NoopInbox))), id).map_err(fail)?;
        adapter.activate().map_err(fail)?;
        let client = Communicator::with_properties(Properties::new()).map_err(fail)?;
        let prx = client.string_to_proxy(&prx.to_string()).map_err(fail)?.ok_or("null proxy")?;
        let (envelope, _, _) = sample_envelope(i, &text)?;
        targets.push((InboxPrx::unchecked_cast(prx), envelope));
        communicators.push(server);
        communicators.push(client);
    }
    eprintln!("# floor: Inbox.deliver of a {}-byte encoded envelope to a no-op servant (--op ping: ice_ping)", encode(&targets[0].1).len());
    let targets = Arc::new(targets);
    let deliver = {
        let targets = targets.clone();
        move |i: usize| {
            let targets = targets.clone();
            async move {
                let t0 = Instant::now();
                targets[i].0.deliver(&targets[i].1).await.map_err(fail)?;
                Ok(t0.elapsed())
            }
        }
    };
    let ping = {
        let targets = targets.clone();
        move |i: usize| {
            let targets = targets.clone();
            async move {
                let t0 = Instant::now();
                targets[i].0.as_object().ice_ping().await.map_err(fail)?;
                Ok(t0.elapsed())
            }
        }
    };
    match o.op.as_str() {
        "ping" => measure(o, "ping", None, ping).await?,
        _ => measure(o, "floor", None, deliver).await?,
    }
    for c in communicators {
        c.destroy().await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// mqtt

struct MqttPair {
    index: usize,
    sender: AsyncClient,
    _receiver: AsyncClient,
    topic: String,
    /// The sender's keys and the receiver's exchange key (`--seal`).
    keys: (Identity, [u8; 32]),
    /// The payload of `--seal`-less messages: an encoded envelope, its first 8 bytes replaced
    /// by the message's number.
    template: Vec<u8>,
    next: std::sync::atomic::AtomicU64,
    arrivals: tokio::sync::Mutex<mpsc::UnboundedReceiver<Res<(u64, Instant)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn mqtt_options(id: &str, port: u16) -> (AsyncClient, rumqttc::EventLoop) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(opts, 64);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    events.set_network_options(net);
    (client, events)
}

impl MqttPair {
    async fn start(i: usize, port: u16, text: &str, seal: bool) -> Res<MqttPair> {
        let (sample, sid, rid) = sample_envelope(i, text)?;
        let pid = std::process::id();
        let topic = format!("telegraph-bench/{pid}/{}", receiver_name(i));
        let (receiver, mut rloop) = mqtt_options(&format!("bench-{pid}-{}", receiver_name(i)), port);
        let (sender, mut sloop) = mqtt_options(&format!("bench-{pid}-{}", sender_name(i)), port);
        receiver.subscribe(topic.clone(), QoS::AtLeastOnce).await.map_err(fail)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let sender_identity = sid.identity_public();
        let receiver_exchange = rid.exchange_public();
        let rtask = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            loop {
                match rloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready_tx.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let got = if seal {
                            decode(&p.payload).and_then(|e| {
                                crypto::open(&rid, &receiver_name(i), &sender_identity, &e).map_err(fail)?;
                                Ok((e.counter as u64, Instant::now()))
                            })
                        } else {
                            let mut n = [0u8; 8];
                            n.copy_from_slice(&p.payload[..8]);
                            Ok((u64::from_be_bytes(n), Instant::now()))
                        };
                        let _ = tx.send(got);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(format!("receiver {i}: {e}")));
                        return;
                    }
                }
            }
        });
        let stask = tokio::spawn(async move {
            loop {
                if let Err(e) = sloop.poll().await {
                    eprintln!("# mqtt sender {i}: {e}");
                    return;
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready).await.map_err(|_| format!("pair {i}: no SUBACK within 10 s"))?.map_err(fail)?;
        Ok(MqttPair {
            index: i,
            sender,
            _receiver: receiver,
            topic,
            keys: (sid, receiver_exchange),
            template: encode(&sample),
            next: std::sync::atomic::AtomicU64::new(1),
            arrivals: tokio::sync::Mutex::new(rx),
            tasks: vec![rtask, stask],
        })
    }

    async fn one(&self, text: &str, seal: bool) -> Res<Duration> {
        let mut arrivals = self.arrivals.lock().await;
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t0 = Instant::now();
        let payload = if seal {
            let i = self.index;
            let e = crypto::seal(&self.keys.0, &sender_name(i), &receiver_name(i), &self.keys.1, &crypto::new_message_id(), n as i64, now_ms(), text).map_err(fail)?;
            encode(&e)
        } else {
            let mut p = self.template.clone();
            p[..8].copy_from_slice(&n.to_be_bytes());
            p
        };
        self.sender.publish(self.topic.clone(), QoS::AtLeastOnce, false, payload).await.map_err(fail)?;
        let (got, t1) = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
            .await
            .map_err(|_| format!("pair {}: message {n} not received within 30 s", self.index))?
            .ok_or("receiver stopped")??;
        if got != n {
            return Err(format!("pair {}: expected message {n}, got {got}", self.index));
        }
        Ok(t1 - t0)
    }
}

async fn mqtt_mode(o: &Opts) -> Res<()> {
    let text = Arc::new(text_of(o.text_bytes));
    let most = o.pairs.iter().copied().max().unwrap_or(1);
    let mut pairs = Vec::new();
    for i in o.first..o.first + most {
        pairs.push(MqttPair::start(i, o.port, &text, o.seal).await?);
    }
    eprintln!("# mqtt: QoS 1 publish and subscription, {}-byte payloads{}", pairs[0].template.len(), if o.seal { ", sealed and opened per message" } else { "" });
    let pairs = Arc::new(pairs);
    let seal = o.seal;
    let one = {
        let (pairs, text) = (pairs.clone(), text.clone());
        move |i: usize| {
            let (pairs, text) = (pairs.clone(), text.clone());
            async move { pairs[i].one(&text, seal).await }
        }
    };
    measure(o, if o.seal { "mqttseal" } else { "mqtt" }, o.broker_pid, one).await?;
    for p in pairs.iter() {
        let _ = p.sender.disconnect().await;
        for t in &p.tasks {
            t.abort();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// managers

const PASSWORD: &str = "bench-password-0123";

async fn managers_mode(o: &Opts) -> Res<()> {
    if let Some(proxy) = &o.managers {
        // `manager:ENDPOINT:ENDPOINT:...`: one endpoint per manager.
        let endpoints: Vec<String> = proxy.split(':').skip(1).map(str::to_string).collect();
        eprintln!("# managers: {} at {proxy}; caller i calls manager (i mod {}) + 1", endpoints.len(), endpoints.len());
        return managers_run(o, endpoints).await;
    }
    let tmp = work_dir(o)?;
    let cluster = Cluster::start(3, &Properties::new(), &tmp.path().join("managers")).await?;
    let endpoints: Vec<String> = cluster.managers().iter().map(|m| m.node().address().endpoints.clone()).collect();
    let leader = cluster.managers()[0].node().leader().map(|(id, _)| id);
    eprintln!("# managers: 3 in this process, leader node {leader:?}; caller i calls manager (i mod 3) + 1");
    let result = managers_run(o, endpoints).await;
    cluster.shutdown().await;
    result
}

async fn managers_run(o: &Opts, endpoints: Vec<String>) -> Res<()> {
    let most = o.callers.iter().copied().max().unwrap_or(1);
    let mut communicators = Vec::new();
    let mut prxs = Vec::new();
    for i in 0..most {
        let c = Communicator::with_properties(Properties::new()).map_err(fail)?;
        let prx = c.string_to_proxy(&format!("manager:{}", endpoints[i % endpoints.len()])).map_err(fail)?.ok_or("null proxy")?;
        prxs.push(ManagerPrx::unchecked_cast(prx.ice_invocation_timeout(60_000)));
        communicators.push(c);
    }
    let prxs = Arc::new(prxs);
    let names: Arc<Vec<std::sync::Mutex<Vec<String>>>> = Arc::new((0..most).map(|_| std::sync::Mutex::new(Vec::new())).collect());
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for &c in &o.callers {
        let register = {
            let (prxs, names, counter) = (prxs.clone(), names.clone(), counter.clone());
            move |i: usize| {
                let (prxs, names, counter) = (prxs.clone(), names.clone(), counter.clone());
                async move {
                    let name = format!("{}user{}", TAG.get().map_or("", |t| t.as_str()), counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                    let (ik, xk) = (rand::random::<[u8; 32]>(), rand::random::<[u8; 32]>());
                    let t0 = Instant::now();
                    prxs[i].register(&name, PASSWORD, &ik, &xk).await.map_err(fail)?;
                    let d = t0.elapsed();
                    names[i].lock().map_err(fail)?.push(name);
                    Ok(d)
                }
            }
        };
        let (lat, elapsed) = run_loops(c, o.seconds, register).await?;
        report("register", c, lat, elapsed, (None, None));
        let login = {
            let (prxs, names) = (prxs.clone(), names.clone());
            let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            move |i: usize| {
                let (prxs, names, turn) = (prxs.clone(), names.clone(), turn.clone());
                async move {
                    let name = {
                        let mine = names[i].lock().map_err(fail)?;
                        mine[turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % mine.len()].clone()
                    };
                    let t0 = Instant::now();
                    prxs[i].login(&name, PASSWORD, None).await.map_err(fail)?;
                    Ok(t0.elapsed())
                }
            }
        };
        let (lat, elapsed) = run_loops(c, o.seconds, login).await?;
        report("login", c, lat, elapsed, (None, None));
        let mut sessions = Vec::new();
        for (i, prx) in prxs.iter().enumerate().take(c) {
            let name = names[i].lock().map_err(fail)?[0].clone();
            sessions.push(prx.login(&name, PASSWORD, None).await.map_err(fail)?);
        }
        let all: Arc<Vec<String>> = Arc::new(names.iter().flat_map(|n| n.lock().map(|v| v.clone()).unwrap_or_default()).collect());
        let sessions = Arc::new(sessions);
        let lookup = {
            let (prxs, all, sessions) = (prxs.clone(), all.clone(), sessions.clone());
            let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            move |i: usize| {
                let (prxs, all, sessions, turn) = (prxs.clone(), all.clone(), sessions.clone(), turn.clone());
                async move {
                    let name = &all[turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % all.len()];
                    let t0 = Instant::now();
                    let info = prxs[i].lookup(&sessions[i], name).await.map_err(fail)?;
                    if &info.name != name {
                        return Err(format!("lookup {name} gave {}", info.name));
                    }
                    Ok(t0.elapsed())
                }
            }
        };
        let (lat, elapsed) = run_loops(c, o.seconds, lookup).await?;
        report("lookup", c, lat, elapsed, (None, None));
    }
    for c in communicators {
        c.destroy().await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// parts

/// Runs `f` one call after the other for `seconds`; returns every duration and the total.
fn time_sync(seconds: f64, mut f: impl FnMut() -> Res<()>) -> Res<(Vec<Duration>, Duration)> {
    let start = Instant::now();
    let mut lat = Vec::new();
    while start.elapsed().as_secs_f64() < seconds {
        let t0 = Instant::now();
        f()?;
        lat.push(t0.elapsed());
    }
    Ok((lat, start.elapsed()))
}

/// What `Client::send` reads, writes and flushes, for a message to `to`.
async fn sender_store(store: &Store, to: &str, envelope: &Envelope, text: &str) -> Res<()> {
    let _pinned = store.contact(to).map_err(fail)?;
    let counter = store.next_counter(to).map_err(fail)?;
    let mut e = envelope.clone();
    e.counter = counter;
    e.id = crypto::new_message_id();
    let m = Message { id: e.id.clone(), peer: to.to_string(), outgoing: true, counter, sent_at: now_ms(), stored_at: now_ms(), text: text.to_string(), state: State::Pending };
    store.put_message(&m).map_err(fail)?;
    store.queue(to, &Outgoing::Message(e)).map_err(fail)?;
    store.flush().await.map_err(fail)
}

/// Counters of the messages `receiver_store` stores.
static RECEIVED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

/// What `Client::receive` reads, writes and flushes for a message from `from` (its receipt
/// signed beforehand).
async fn receiver_store(store: &Store, from: &str, receipt: &api::Receipt, text: &str) -> Res<()> {
    let id = crypto::new_message_id();
    let counter = RECEIVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if store.seen(&id).map_err(fail)? {
        return Err("a fresh id seen".into());
    }
    let _contact = store.contact(from).map_err(fail)?;
    if store.message_at(from, false, counter).map_err(fail)?.is_some() {
        return Err("a fresh counter used".into());
    }
    let m = Message { id: id.clone(), peer: from.to_string(), outgoing: false, counter, sent_at: now_ms(), stored_at: now_ms(), text: text.to_string(), state: State::Unread };
    store.put_message(&m).map_err(fail)?;
    let mut r = receipt.clone();
    r.message_id = id;
    store.queue(from, &Outgoing::Receipt(r)).map_err(fail)?;
    store.flush().await.map_err(fail)
}

async fn parts_mode(o: &Opts) -> Res<()> {
    let tmp = work_dir(o)?;
    let text = text_of(o.text_bytes);
    let (envelope, sid, rid) = sample_envelope(0, &text)?;
    let secs = o.seconds.min(2.0);
    let (lat, el) = time_sync(secs, || {
        crypto::seal(&sid, &sender_name(0), &receiver_name(0), &rid.exchange_public(), &crypto::new_message_id(), 1, now_ms(), &text).map(|_| ()).map_err(fail)
    })?;
    report("seal", 1, lat, el, (None, None));
    let (lat, el) = time_sync(secs, || crypto::open(&rid, &receiver_name(0), &sid.identity_public(), &envelope).map(|_| ()).map_err(fail))?;
    report("open", 1, lat, el, (None, None));
    let receipt = crypto::sign_receipt(&rid, &envelope.id, &receiver_name(0), &sender_name(0), ReceiptKind::Delivered, now_ms());
    let (lat, el) = time_sync(secs, || {
        let _ = crypto::sign_receipt(&rid, &envelope.id, &receiver_name(0), &sender_name(0), ReceiptKind::Delivered, now_ms());
        Ok(())
    })?;
    report("receiptsign", 1, lat, el, (None, None));
    let (lat, el) = time_sync(secs, || crypto::verify_receipt(&rid.identity_public(), &receipt).map_err(fail))?;
    report("receiptverify", 1, lat, el, (None, None));

    // The stores of one pair (sled, in --dir or the temporary directory), one message at a
    // time: the sender's write + flush, the receiver's, and both one after the other. (Not
    // with more pairs at once: with 7 or more flushes waiting in one process sled 0.34's
    // flush_async hangs; see the `fanin` mode.)
    let most = 1;
    let mut stores = Vec::new();
    for i in 0..most {
        let s = Store::open(&tmp.path().join(sender_name(i))).map_err(fail)?;
        let r = Store::open(&tmp.path().join(receiver_name(i))).map_err(fail)?;
        stores.push((s, r));
    }
    let stores = Arc::new(stores);
    let (envelope, receipt, text) = (Arc::new(envelope), Arc::new(receipt), Arc::new(text));
    let step = |which: u8| {
        let (stores, envelope, receipt, text) = (stores.clone(), envelope.clone(), receipt.clone(), text.clone());
        move |i: usize| {
            let (stores, envelope, receipt, text) = (stores.clone(), envelope.clone(), receipt.clone(), text.clone());
            async move {
                let (s, r) = &stores[i];
                let t0 = Instant::now();
                if which & 1 != 0 {
                    sender_store(s, &receiver_name(i), &envelope, &text).await?;
                }
                if which & 2 != 0 {
                    receiver_store(r, &sender_name(i), &receipt, &text).await?;
                }
                Ok(t0.elapsed())
            }
        }
    };
    run_loops(most, 0.5, step(3)).await?;
    let (lat, el) = run_loops(1, o.seconds, step(1)).await?;
    report("sendstore", 1, lat, el, (None, None));
    let (lat, el) = run_loops(1, o.seconds, step(2)).await?;
    report("recvstore", 1, lat, el, (None, None));
    let (lat, el) = run_loops(1, o.seconds, step(3)).await?;
    report("twostores", 1, lat, el, (None, None));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// cluster, fanin

async fn cluster_mode(o: &Opts) -> Res<()> {
    let tmp = work_dir(o)?;
    let cluster = Cluster::start(3, &Properties::new(), &tmp.path().join("managers")).await?;
    let leader = cluster.managers()[0].node().leader().map(|(id, _)| id);
    eprintln!("# cluster: 3 managers, leader node {leader:?}, data in {}", tmp.path().display());
    println!("PROXY {}", cluster.managers_proxy());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// `--pairs` tasks at once on one receiver's store, each storing an incoming message and its
/// receipt and flushing, as `Client::receive` does for each sender delivering at that moment.
async fn fanin_mode(o: &Opts) -> Res<()> {
    let tmp = work_dir(o)?;
    let n = o.pairs.iter().copied().max().unwrap_or(1);
    let limit = o.seconds + 20.0;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(limit));
        println!("fanin_hung_{n} 1");
        eprintln!("# fanin: {n} concurrent writers on one store did not finish within {limit} s (hung)");
        std::process::exit(3);
    });
    let text = Arc::new(text_of(o.text_bytes));
    let (envelope, _, rid) = sample_envelope(0, &text)?;
    let receipt = Arc::new(crypto::sign_receipt(&rid, &envelope.id, &receiver_name(0), &sender_name(0), ReceiptKind::Delivered, now_ms()));
    let store = Arc::new(Store::open(&tmp.path().join(receiver_name(0))).map_err(fail)?);
    let one = move |i: usize| {
        let (store, receipt, text) = (store.clone(), receipt.clone(), text.clone());
        async move {
            let t0 = Instant::now();
            receiver_store(&store, &sender_name(i), &receipt, &text).await?;
            Ok(t0.elapsed())
        }
    };
    let (lat, elapsed) = run_loops(n, o.seconds, one).await?;
    println!("fanin_hung_{n} 0");
    report("fanin", n, lat, elapsed, (None, None));
    Ok(())
}
