//! Shared pieces of the icestorm-lite tests: brokers (in-process and as a child process), ZeroC's
//! Python programs, and a Floe subscriber generated from `tests/slice/Clock.ice`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floe::codegen::{Current, Error};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;

pub mod clock {
    include!(concat!(env!("OUT_DIR"), "/Clock.rs"));
}

use floe_test_support::{ChildGuard, config_arg, wait_listening};
#[allow(unused_imports)]
pub use floe_test_support::{PYTHON, free_port};

/// Fails (never skips) when ZeroC's Python mapping or its IceStorm module is missing.
pub fn require_zeroc_python() {
    floe_test_support::require_python("Ice, IceStorm", "python3-zeroc-ice zeroc-ice-slice");
}

pub fn clock_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/clock.py")
}

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Properties of a transient in-process broker on loopback ports chosen by the system.
pub fn transient_props() -> floe::Properties {
    let p = floe::Properties::new();
    p.set_property("IceStorm.Transient", "1");
    p
}

/// A Python program's result: whether it printed `OK` and exited 0, and what it printed.
pub struct PyOutcome {
    pub ok: bool,
    pub text: String,
}

/// A running `clock.py`; killed on drop.
pub struct PyProcess {
    pub child: ChildGuard,
    stdout: Option<BufReader<std::process::ChildStdout>>,
}

pub fn spawn_clock_py(tm: &str, args: &[&str]) -> PyProcess {
    require_zeroc_python();
    let mut child = Command::new(PYTHON)
        .arg(clock_py())
        .arg(tm)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3");
    let stdout = child.stdout.take().map(BufReader::new);
    PyProcess {
        child: ChildGuard::new(child),
        stdout,
    }
}

impl PyProcess {
    /// Waits for a line starting with `prefix` (e.g. READY), failing with the output otherwise.
    pub async fn wait_line(&mut self, prefix: &str) {
        let mut reader = self.stdout.take().expect("stdout");
        let p = prefix.to_string();
        let (reader, line) = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with(&p) {
                    return (reader, line);
                }
            }
        })
        .await
        .unwrap();
        self.stdout = Some(reader);
        if !line.starts_with(prefix) {
            let out = self.finish().await;
            panic!("python did not print {prefix}:\n{}", out.text);
        }
    }

    /// Waits (at most 90 s) for the program to end.
    pub async fn finish(&mut self) -> PyOutcome {
        let status = self.child.wait_or_kill_async(Duration::from_secs(90)).await;
        let mut out = String::new();
        if let Some(mut r) = self.stdout.take() {
            let _ = r.read_to_string(&mut out);
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        PyOutcome {
            ok: status.is_some_and(|s| s.success()) && out.contains("OK "),
            text: format!("status: {status:?}\nstdout:\n{out}\nstderr:\n{err}"),
        }
    }
}

/// Runs `clock.py` to the end and fails the test unless it succeeded.
pub async fn run_clock_py(tm: &str, args: &[&str]) {
    let mut p = spawn_clock_py(tm, args);
    let out = p.finish().await;
    assert!(out.ok, "clock.py {args:?} failed:\n{}", out.text);
}

/// A Floe `Demo::Clock` servant recording (source, seq) of every tick, optionally stalling.
#[derive(Debug, Default)]
pub struct Recorder {
    pub ticks: Mutex<Vec<(String, i32)>>,
    pub latencies: Mutex<Vec<i64>>,
    pub stall: std::sync::atomic::AtomicBool,
    pub release: tokio::sync::Notify,
}

impl clock::demo::Clock for Recorder {
    async fn tick(
        &self,
        source: String,
        seq: i32,
        sent_micros: i64,
        _current: &Current,
    ) -> Result<(), Error> {
        if self.stall.load(std::sync::atomic::Ordering::Relaxed) {
            self.release.notified().await;
        }
        self.latencies.lock().push(now_micros() - sent_micros);
        self.ticks.lock().push((source, seq));
        Ok(())
    }
}

impl Recorder {
    /// Lets every stalled dispatch return.
    pub fn unstall(&self) {
        self.stall
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.release.notify_waiters();
    }

    pub fn count(&self, source: &str) -> usize {
        self.ticks.lock().iter().filter(|t| t.0 == source).count()
    }

    pub fn seqs(&self, source: &str) -> Vec<i32> {
        self.ticks
            .lock()
            .iter()
            .filter(|t| t.0 == source)
            .map(|t| t.1)
            .collect()
    }

    /// Waits until `n` ticks from `source` arrived (at most `limit`); returns whether they did.
    pub async fn wait(&self, source: &str, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.count(source) < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// A Floe communicator for clients and subscribers, with an adapter on a free loopback port
/// whose connections dispatch in arrival order (so oneway ticks stay in order).
pub async fn floe_subscriber_side() -> (floe::Communicator, floe::ObjectAdapter) {
    let p = floe::Properties::new();
    p.set_property("Subs.ThreadPool.Serialize", "1");
    let comm = floe::Communicator::with_properties(p).unwrap();
    let adapter = comm
        .create_object_adapter_with_endpoints("Subs", "tcp -h 127.0.0.1 -p 0")
        .await
        .unwrap();
    adapter.activate().unwrap();
    (comm, adapter)
}

/// Adds a recorder to `adapter` and returns it with its proxy.
pub fn add_recorder(adapter: &floe::ObjectAdapter, name: &str) -> (Arc<Recorder>, floe::ObjectPrx) {
    let r = Arc::new(Recorder::default());
    let prx = adapter
        .add(
            Arc::new(clock::demo::ClockDispatcher(r.clone())),
            floe::Identity::new(name, "floe-subs"),
        )
        .unwrap();
    (r, prx)
}

/// The `icestorm-lite` binary as a child process; killed (SIGKILL) on drop.
pub struct BrokerProcess {
    pub child: ChildGuard,
    pub topic_manager: String,
}

/// Starts the binary with `config` (a property file) and waits until its topic manager answers.
pub fn start_broker_process(config: &Path, tm_port: u16) -> BrokerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_icestorm-lite"))
        .arg(config_arg(config))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start icestorm-lite");
    let child = ChildGuard::new(child);
    wait_listening(tm_port, "icestorm-lite");
    BrokerProcess {
        child,
        topic_manager: format!("IceStorm/TopicManager:tcp -h 127.0.0.1 -p {tm_port}"),
    }
}

/// A peer that completes Ice's connection handshake and then never reads a byte.
pub async fn deaf_peer() -> (tokio::task::JoinHandle<()>, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            // ValidateConnection: magic, protocol 1.0, encoding 1.0, type 3, no compression, size 14.
            let _ = s
                .write_all(&[b'I', b'c', b'e', b'P', 1, 0, 1, 0, 3, 0, 14, 0, 0, 0])
                .await;
            held.push(s);
        }
    });
    (task, port)
}
