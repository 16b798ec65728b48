//! Runs ZeroC's own Ice 3.7 Python test clients (`python/test/Ice/<test>/Client.py` of the
//! zeroc-ice source package named by `FLOE_ICE_SOURCE`) against the Floe servers of this crate,
//! in every variant ZeroC's test driver runs them with, and prints a table: test, variant,
//! pass/fail, seconds. Any failure fails the run (exit code 1) after printing the client's and
//! the server's output.
//!
//! Each client runs as ZeroC's driver runs it:
//! `cd python/test/Ice/<test>; PYTHONPATH=$PWD /usr/bin/python3 ../../TestHelper.py Client.py
//! --Ice.Default.Host=127.0.0.1 --Test.BasePort=<port> --Ice.Warn.Connections=1 --Ice.IPv6=0
//! --Ice.PrintStackTraces=1 --Ice.Default.Protocol=tcp <variant properties>`; the server gets
//! the same properties, as ZeroC's driver gives them to both processes.
//!
//! Arguments: words select the tests whose name contains one of them (`cargo test -p
//! floe-conformance --test zeroc -- exceptions`); options starting with `-` (those cargo passes
//! to test binaries) are ignored. `FLOE_CONFORMANCE_JOBS` sets how many runs go in parallel
//! (default 2).

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use floe_test_support::{ChildGuard, PYTHON, python_imports};

/// One variant of a test: a name and the properties both processes get.
#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    props: &'static [&'static str],
}

const DEFAULT: Variant = Variant {
    name: "default",
    props: &[],
};
const DEFAULT_ENCODING: Variant = Variant {
    name: "default encoding",
    props: &[],
};
const COMPACT: Variant = Variant {
    name: "compact format",
    props: &[],
};
const SLICED: Variant = Variant {
    name: "sliced format",
    props: &["--Ice.Default.SlicedFormat=1"],
};
const ENCODING_10: Variant = Variant {
    name: "1.0 encoding",
    props: &["--Ice.Default.EncodingVersion=1.0"],
};
const COMPRESS: Variant = Variant {
    name: "compress",
    props: &["--Ice.Override.Compress=1"],
};
const SERIALIZE: Variant = Variant {
    name: "serialize",
    props: &["--Ice.ThreadPool.Server.Serialize=1"],
};

/// A ZeroC test and the variants it runs in.
///
/// The variants are the test cases of ZeroC's `scripts/tests/Ice/<test>.py` (the default
/// client/server case when the test has no such script), plus the `compress` and `serialize`
/// options of ZeroC's option matrix (`--all`) unless the test's script excludes them. The AMD
/// server cases are the same client against the same Floe server (Floe servants are always
/// asynchronous), and collocated cases have no server, so neither adds a run. Only the `tcp`
/// protocol runs.
#[derive(Debug, Clone, Copy)]
struct TestCase {
    /// The folder under `python/test/Ice`; the server binary is its name with `/` as `_`.
    name: &'static str,
    variants: &'static [Variant],
    /// Ports the test uses above `Test.BasePort`.
    ports: u16,
    /// How long the client may run.
    timeout: Duration,
    /// The client also uses fixed ports of its own (Ice/info listens on 15000): its runs never
    /// overlap.
    serial: bool,
    /// The open-file limit ZeroC's driver gives the server (`RLIMIT_NOFILE`), if any.
    nofile: Option<u32>,
    /// 0: one server. n: n servers, the i-th started with the argument `i`, and the client
    /// given `1 … n` (Ice/faultTolerance). As ZeroC's driver does for them
    /// (`waitForShutdown=False`), servers still running when the client is done are stopped
    /// without failing the run; one that exits must exit cleanly.
    instances: u16,
}

impl TestCase {
    /// A test of one server on one port, which may run beside others, with no file limit.
    const fn new(name: &'static str, variants: &'static [Variant], timeout_secs: u64) -> TestCase {
        TestCase {
            name,
            variants,
            ports: 1,
            timeout: Duration::from_secs(timeout_secs),
            serial: false,
            nofile: None,
            instances: 0,
        }
    }
}

/// The variants of a test whose script has no cases of its own.
const STANDARD: &[Variant] = &[DEFAULT, COMPRESS, SERIALIZE];

const TESTS: &[TestCase] = &[
    TestCase::new("operations", STANDARD, 120),
    TestCase {
        ports: 3,
        ..TestCase::new(
            "exceptions",
            &[COMPACT, SLICED, ENCODING_10, COMPRESS, SERIALIZE],
            120,
        )
    },
    TestCase::new("proxy", STANDARD, 120),
    TestCase::new(
        "enums",
        &[DEFAULT_ENCODING, ENCODING_10, COMPRESS, SERIALIZE],
        60,
    ),
    TestCase::new("inheritance", STANDARD, 60),
    TestCase::new("facets", STANDARD, 60),
    TestCase::new("scope", STANDARD, 60),
    TestCase::new(
        "objects",
        &[COMPACT, SLICED, ENCODING_10, COMPRESS, SERIALIZE],
        120,
    ),
    TestCase::new("optional", &[COMPACT, SLICED, COMPRESS, SERIALIZE], 120),
    TestCase::new("slicing/exceptions", &[DEFAULT, ENCODING_10, COMPRESS], 120),
    TestCase::new(
        "slicing/objects",
        &[DEFAULT, ENCODING_10, COMPRESS, SERIALIZE],
        120,
    ),
    TestCase {
        ports: 2,
        ..TestCase::new("ami", &[DEFAULT], 180)
    },
    TestCase::new("adapterDeactivation", STANDARD, 120),
    TestCase::new("servantLocator", STANDARD, 120),
    TestCase {
        serial: true,
        ..TestCase::new("info", &[DEFAULT, SERIALIZE], 60)
    },
    TestCase {
        // The server creates adapters on the ports above the base port.
        ports: 120,
        // ZeroC's scripts/tests/Ice/binding.py: at most 92 open files for the server.
        nofile: Some(92),
        ..TestCase::new("binding", STANDARD, 180)
    },
    TestCase {
        ports: 2,
        ..TestCase::new("timeout", &[DEFAULT, SERIALIZE], 240)
    },
    TestCase::new("acm", STANDARD, 240),
    TestCase::new("asyncio", STANDARD, 60),
    TestCase::new("packagemd", STANDARD, 60),
    TestCase::new("blobject", STANDARD, 60),
    TestCase::new("custom", STANDARD, 60),
    TestCase {
        // Twelve servers, at the base port + 1 … 12.
        ports: 13,
        instances: 12,
        ..TestCase::new("faultTolerance", STANDARD, 120)
    },
    TestCase {
        // The locator at the base port; the client starts nine servers, each with two adapters
        // on the next two ports.
        ports: 19,
        // ZeroC's scripts/Component.py runs Ice/location (with Ice/binding and
        // Ice/faultTolerance) with its service options only: no compress, no serialize.
        ..TestCase::new("location", &[DEFAULT], 120)
    },
];

/// One run of one client against one server.
#[derive(Debug)]
struct Outcome {
    test: &'static str,
    variant: &'static str,
    passed: bool,
    seconds: f64,
    /// Why it failed, with the client's and server's output.
    detail: String,
}

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let source = match ice_source() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zeroc conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = python_imports("Ice", "python3-zeroc-ice") {
        eprintln!("zeroc conformance: {e}");
        return ExitCode::FAILURE;
    }
    let jobs: usize = std::env::var("FLOE_CONFORMANCE_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .filter(|&j| j > 0)
        .unwrap_or(2);

    let mut runs = Vec::new();
    for test in TESTS {
        if !filters.is_empty() && !filters.iter().any(|f| test.name.contains(f.as_str())) {
            continue;
        }
        for variant in test.variants {
            runs.push((*test, *variant));
        }
    }
    if runs.is_empty() {
        eprintln!("zeroc conformance: no test matches {filters:?}");
        return ExitCode::FAILURE;
    }

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.min(runs.len()))
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some((test, variant)) = runs.get(i) else {
                            break;
                        };
                        let outcome = run_one(&source, test, variant);
                        eprintln!(
                            "zeroc conformance: Ice/{} ({}): {} in {:.1}s",
                            outcome.test,
                            outcome.variant,
                            if outcome.passed { "pass" } else { "FAIL" },
                            outcome.seconds
                        );
                        if let Ok(mut r) = results.lock() {
                            r.push((i, outcome));
                        }
                    }
                })
            })
            .collect();
        // A worker that panicked leaves its runs without a result: the run fails below.
        for w in workers {
            let _ = w.join();
        }
    });

    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let failed: Vec<&Outcome> = results
        .iter()
        .map(|(_, o)| o)
        .filter(|o| !o.passed)
        .collect();
    for o in &failed {
        println!(
            "\n==== Ice/{} ({}) failed ====\n{}",
            o.test, o.variant, o.detail
        );
    }
    println!("\n| test | variant | result | seconds |");
    println!("| --- | --- | --- | --- |");
    for (_, o) in &results {
        println!(
            "| Ice/{} | {} | {} | {:.1} |",
            o.test,
            o.variant,
            if o.passed { "pass" } else { "FAIL" },
            o.seconds
        );
    }
    println!(
        "\n{} runs, {} passed, {} failed, {:.0}s with {} in parallel",
        results.len(),
        results.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        jobs
    );
    if failed.is_empty() && results.len() == runs.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The unpacked zeroc-ice source tree: `FLOE_ICE_SOURCE` at run time, else the one the crate
/// was built from.
fn ice_source() -> Result<PathBuf, String> {
    let dir = std::env::var_os("FLOE_ICE_SOURCE")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| option_env!("FLOE_ICE_SOURCE").map(PathBuf::from))
        .ok_or_else(|| {
            "FLOE_ICE_SOURCE is not set: run scripts/test.sh, or set it to an unpacked zeroc-ice 3.7.8 source tree".to_string()
        })?;
    if dir.join("python/test/TestHelper.py").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "{} has no python/test/TestHelper.py: FLOE_ICE_SOURCE must name an unpacked zeroc-ice 3.7.8 source tree",
            dir.display()
        ))
    }
}

/// A block of `count` consecutive free ports on 127.0.0.1, different from every block given
/// before by this process. The blocks stay below Linux's ephemeral range (32768 and up), from
/// which the clients' own sockets take their local ports: a server that binds its ports later
/// (Ice/binding creates adapters as it goes) must not find one taken by a client.
fn free_ports(count: u16) -> u16 {
    const FIRST: u16 = 20000;
    const LAST: u16 = 32000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    if NEXT.load(Ordering::SeqCst) == 0 {
        let seed = (std::process::id() % 100) as u16 * 100;
        let _ = NEXT.compare_exchange(0, FIRST + seed, Ordering::SeqCst, Ordering::SeqCst);
    }
    loop {
        let base = NEXT.fetch_add(count + 1, Ordering::SeqCst);
        if base.saturating_add(count + 1) > LAST {
            let _ = NEXT.compare_exchange(
                base.wrapping_add(count + 1),
                FIRST,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            continue;
        }
        let all_free =
            (base..base + count + 1).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return base;
        }
    }
}

fn run_one(source: &Path, test: &TestCase, variant: &Variant) -> Outcome {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = test
        .serial
        .then(|| SERIAL.lock().unwrap_or_else(|e| e.into_inner()));
    let started = Instant::now();
    let result = run_client_server(source, test, variant);
    let seconds = started.elapsed().as_secs_f64();
    let (passed, detail) = match result {
        Ok(()) => (true, String::new()),
        Err(d) => (false, d),
    };
    Outcome {
        test: test.name,
        variant: variant.name,
        passed,
        seconds,
        detail,
    }
}

/// The output of a process, as a failed run shows it: `label`'s stdout, then its stderr.
fn output_text(
    label: &str,
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
) -> String {
    let text = |h: Option<std::thread::JoinHandle<String>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    format!(
        "--- {label} stdout:\n{}--- {label} stderr:\n{}",
        text(out),
        text(err)
    )
}

/// Reads a pipe to its end on a thread; the text comes back through the handle.
fn collect(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A started server process and the threads collecting its output.
struct StartedServer {
    /// Killed on drop, so a failed run leaves no server behind.
    process: ChildGuard,
    out: std::thread::JoinHandle<String>,
    err: Option<std::thread::JoinHandle<String>>,
    ready: mpsc::Receiver<()>,
}

impl StartedServer {
    /// Its output so far (waits for the pipes to close: kill it first if it still runs).
    fn output(self, label: &str) -> String {
        output_text(label, Some(self.out), self.err)
    }
}

fn start_server(test: &TestCase, args: &[String]) -> Result<StartedServer, String> {
    let server_exe = server_binary(test.name)?;
    let mut command = match test.nofile {
        // The shell sets the limit, then becomes the server.
        Some(n) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(&server_exe);
            c
        }
        None => Command::new(&server_exe),
    };
    let mut process = ChildGuard::new(
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", server_exe.display()))?,
    );
    let err = process.stderr.take().map(collect);
    let stdout = process.stdout.take();
    let (ready_tx, ready) = mpsc::channel();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stdout) = stdout {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if line.ends_with(" ready") {
                    let _ = ready_tx.send(());
                }
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    });
    Ok(StartedServer {
        process,
        out,
        err,
        ready,
    })
}

fn run_client_server(source: &Path, test: &TestCase, variant: &Variant) -> Result<(), String> {
    let port = free_ports(test.ports);
    let mut args: Vec<String> = [
        "--Ice.Default.Host=127.0.0.1".to_string(),
        format!("--Test.BasePort={port}"),
        "--Ice.Warn.Connections=1".into(),
        "--Ice.IPv6=0".into(),
        "--Ice.PrintStackTraces=1".into(),
        "--Ice.Default.Protocol=tcp".into(),
    ]
    .into();
    args.extend(variant.props.iter().map(|p| p.to_string()));

    // One server, or `instances` servers numbered from 1 (the number is their argument, and
    // the client gets them all).
    let numbers: Vec<Option<u16>> = if test.instances == 0 {
        vec![None]
    } else {
        (1..=test.instances).map(Some).collect()
    };
    let mut servers = Vec::new();
    for n in &numbers {
        let mut server_args = args.clone();
        server_args.extend(n.map(|n| n.to_string()));
        let mut server = start_server(test, &server_args)?;
        if server.ready.recv_timeout(Duration::from_secs(30)).is_err() {
            let status = server.process.try_wait().ok().flatten();
            server.process.stop();
            return Err(format!(
                "the server did not print `{} ready` within 30s (exit: {status:?})\n{}",
                test.name,
                server.output("server")
            ));
        }
        servers.push(server);
    }

    let dir = source.join("python/test/Ice").join(test.name);
    let test_helper = "../".repeat(test.name.matches('/').count() + 2) + "TestHelper.py";
    let mut client = ChildGuard::new(
        Command::new(PYTHON)
            .current_dir(&dir)
            .env("PYTHONPATH", &dir)
            .arg(&test_helper)
            .arg("Client.py")
            .args(&args)
            .args(numbers.iter().flatten().map(|n| n.to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {PYTHON} in {}: {e}", dir.display()))?,
    );
    let client_out = client.stdout.take().map(collect);
    let client_err = client.stderr.take().map(collect);
    let client_status = client.wait_or_kill(test.timeout);
    let client_text = output_text("client", client_out, client_err);
    let command = format!(
        "cd {}; PYTHONPATH=$PWD {PYTHON} {test_helper} Client.py {}",
        dir.display(),
        args.join(" ")
    );

    // The client's last call is shutdown() (or abort()): each server must exit by itself, and
    // cleanly. A failed client may never have called it.
    let grace = match client_status {
        Some(c) if c.success() && test.instances == 0 => Duration::from_secs(15),
        Some(c) if c.success() => Duration::from_secs(2),
        _ => Duration::from_millis(500),
    };
    let mut server_problem = None;
    let mut server_text = String::new();
    for (mut server, n) in servers.into_iter().zip(&numbers) {
        let status = server.process.wait_or_kill(grace);
        let label = match n {
            Some(n) => format!("server {n}"),
            None => "server".to_string(),
        };
        if server_problem.is_none() {
            server_problem = match status {
                None if test.instances > 0 => None,
                None => Some(format!(
                    "the {label} did not exit within {}s of the client's end (shutdown)",
                    grace.as_secs()
                )),
                Some(s) if !s.success() => Some(format!("the {label} failed ({s})")),
                _ => None,
            };
        }
        server_text.push_str(&server.output(&label));
    }
    let problem = match client_status {
        None => Some(format!(
            "the client did not finish within {}s",
            test.timeout.as_secs()
        )),
        Some(c) if !c.success() => Some(format!("the client failed ({c})")),
        Some(_) => server_problem,
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(format!("{p}\n$ {command}\n{client_text}{server_text}")),
    }
}

/// The server binary of a test, built by cargo next to this test binary.
fn server_binary(test: &str) -> Result<PathBuf, String> {
    let name = test.replace('/', "_");
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    // target/<profile>/deps/zeroc-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "server binary {} is missing: build it with `cargo build -p floe-conformance`",
            path.display()
        ))
    }
}
