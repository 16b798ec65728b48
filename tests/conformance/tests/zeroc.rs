//! Runs ZeroC's own Ice 3.7 Python test clients (`python/test/Ice/<test>/Client.py` of the
//! zeroc-ice source package named by `FLOE_ICE_SOURCE`) against the Floe servers of this crate,
//! in every variant ZeroC's test driver runs them with, and prints a table: test, variant,
//! pass/fail, seconds. Any failure fails the run (exit code 1) after printing the client's and
//! the server's output.
//!
//! Each client runs as ZeroC's driver runs it:
//! `cd python/test/Ice/<test>; PYTHONPATH=$PWD /usr/bin/python3 ../../TestHelper.py Client.py
//! --Ice.Default.Host=127.0.0.1 --Test.BasePort=<port> --Ice.Warn.Connections=1 --Ice.IPv6=0
//! --Ice.PrintStackTraces=1 --Ice.Default.Protocol=<protocol> <variant properties>`; the server
//! gets the same properties (with ssl and wss its own `IceSSL.CertFile`), as ZeroC's driver
//! gives them to both processes. Ice/location also runs ZeroC's C++ client, built at test time,
//! and Ice/udp, which has no Python client, runs only its C++ one (in `cpp/test/Ice/<test>`).
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

/// A test case of ZeroC's `scripts/tests/Ice/<test>.py` (the default client/server case when the
/// test has no such script): a name and the properties it gives both processes.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    props: &'static [&'static str],
}

const DEFAULT: Case = Case {
    name: "",
    props: &[],
};
const DEFAULT_ENCODING: Case = Case {
    name: "default encoding",
    props: &[],
};
const COMPACT: Case = Case {
    name: "compact format",
    props: &[],
};
const SLICED: Case = Case {
    name: "sliced format",
    props: &["--Ice.Default.SlicedFormat=1"],
};
const ENCODING_10: Case = Case {
    name: "1.0 encoding",
    props: &["--Ice.Default.EncodingVersion=1.0"],
};

/// The option set ZeroC's `scripts/Component.py` (`Ice.getOptions`) gives a client/server test
/// case; the driver's `--all` runs each case once per row of it (`Config.getAll`, below).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Options {
    /// `transportOptions`, for the tests of `isCross`: protocol tcp, ssl, wss, ws; compress,
    /// ipv6, serialize, mx each false, true.
    Transport,
    /// `coreOptions`, for the other Ice tests: protocol ssl, ws; compress, ipv6, serialize, mx
    /// each false, true.
    Core,
    /// `serviceOptions`, for Ice/binding, Ice/faultTolerance and Ice/location: protocol ssl; mx
    /// true; the others false.
    Service,
}

/// One configuration of the driver: the protocol and the options it turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Config {
    protocol: &'static str,
    compress: bool,
    serialize: bool,
}

impl Config {
    /// The plain run (`allTests.py` without `--all`): tcp, no option.
    const PLAIN: Config = Config {
        protocol: "tcp",
        compress: false,
        serialize: false,
    };

    fn name(&self) -> String {
        let mut name = self.protocol.to_string();
        if self.compress {
            name.push_str("+compress");
        }
        if self.serialize {
            name.push_str("+serialize");
        }
        name
    }

    fn secure(&self) -> bool {
        matches!(self.protocol, "ssl" | "wss")
    }
}

/// One run of a test: a case of its script in one configuration of the driver.
#[derive(Debug, Clone)]
struct Variant {
    case: Case,
    config: Config,
    /// Which client runs: ZeroC's Python one, or its C++ one (`cpp`).
    client: Client,
}

impl Variant {
    fn name(&self) -> String {
        let mut name = String::new();
        if self.client == Client::Cpp {
            name.push_str("C++ client / ");
        }
        if !self.case.name.is_empty() {
            name.push_str(self.case.name);
            name.push_str(" / ");
        }
        name.push_str(&self.config.name());
        name
    }

    /// The properties the driver gives the server (`server`) or the client beyond the common
    /// ones: the case's, the configuration's, and with ssl/wss the IceSSL ones of
    /// `CppMapping.getSSLProps` (which ZeroC's Python mapping uses too) with the certificates
    /// in `certs`.
    fn props(&self, server: bool, certs: Option<&Path>) -> Vec<String> {
        let mut props: Vec<String> =
            vec![format!("--Ice.Default.Protocol={}", self.config.protocol)];
        if self.config.compress {
            props.push("--Ice.Override.Compress=1".into());
        }
        if self.config.serialize {
            props.push("--Ice.ThreadPool.Server.Serialize=1".into());
        }
        if self.config.secure() {
            let dir = certs.map(|d| d.display().to_string()).unwrap_or_default();
            props.extend([
                "--Ice.Plugin.IceSSL=IceSSL:createIceSSL".to_string(),
                "--IceSSL.Password=password".into(),
                format!("--IceSSL.DefaultDir={dir}"),
                "--IceSSL.CAs=cacert.pem".into(),
                format!(
                    "--IceSSL.CertFile={}",
                    if server { "server.p12" } else { "client.p12" }
                ),
            ]);
        }
        props.extend(self.case.props.iter().map(|p| p.to_string()));
        props
    }
}

/// Which of ZeroC's clients a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Python,
    Cpp,
}

/// The servers the runner starts for one run of a test, as the test's script in ZeroC's
/// `scripts/tests/Ice` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Servers {
    /// One server, without arguments.
    One,
    /// `n` servers, the i-th (1 … n) started with the argument `i`; the client is given
    /// `1 … n` (Ice/faultTolerance). As ZeroC's driver does for them
    /// (`waitForShutdown=False`), servers still running when the client is done are stopped
    /// without failing the run; one that exits must exit cleanly.
    Ports(u16),
    /// `n` servers, the i-th (0 … n - 1) started with the argument `i`; the client is given
    /// `n` (Ice/udp). Each must exit, cleanly, once the client is done.
    Count(u16),
}

impl Servers {
    /// The argument of each server (none for [`Servers::One`]).
    fn numbers(self) -> Vec<Option<u16>> {
        match self {
            Servers::One => vec![None],
            Servers::Ports(n) => (1..=n).map(Some).collect(),
            Servers::Count(n) => (0..n).map(Some).collect(),
        }
    }

    /// The client's arguments.
    fn client_args(self) -> Vec<String> {
        match self {
            Servers::One => Vec::new(),
            Servers::Ports(n) => (1..=n).map(|i| i.to_string()).collect(),
            Servers::Count(n) => vec![n.to_string()],
        }
    }

    /// Whether every server must exit by itself once the client is done (ZeroC's
    /// `waitForShutdown`).
    fn wait_for_shutdown(self) -> bool {
        !matches!(self, Servers::Ports(_))
    }
}

/// A ZeroC test and the runs it has.
///
/// Its runs are those of ZeroC's driver (`scripts/Util.py`, `scripts/Component.py`): each test
/// case of its script, once plain (tcp, as `allTests.py` runs it) and once per configuration
/// `allTests.py --all` gives it. `--all` walks the option set of the test (see [`Options`]),
/// narrowed by the options of the test's `TestSuite` (and, for Python-only tests, its
/// `python/test/Ice/<test>/test.py`), taking the i-th value of every option together in row i
/// (each list repeated round), as many rows as the longest list has values. So a core test runs
/// plain, in `ssl`, and in `ws` with compress and serialize; a cross test in tcp, `ssl` with
/// compress and serialize, `wss`, and `ws` with compress and serialize. The ipv6 and mx options,
/// which the driver turns on in the rows with compress and serialize, are not given: every run
/// is on IPv4 loopback and has no IceMX metrics (Floe has none). The AMD server cases are the
/// same client against the same Floe server (Floe servants are always asynchronous), and
/// collocated cases have no server, so neither adds a run.
#[derive(Debug, Clone, Copy)]
struct TestCase {
    /// The folder under `python/test/Ice`; the server binary is its name with `/` as `_`.
    name: &'static str,
    cases: &'static [Case],
    options: Options,
    /// The protocols the test's `TestSuite` allows (empty: those of `options`).
    protocols: &'static [&'static str],
    /// False when the test's `TestSuite` gives `compress: [False]`.
    compress: bool,
    /// False when the test's `TestSuite` gives `serialize: [False]`.
    serialize: bool,
    /// Ports the test uses above `Test.BasePort`.
    ports: u16,
    /// How long the client may run.
    timeout: Duration,
    /// The client also uses fixed ports of its own (Ice/info listens on 15000): its runs never
    /// overlap.
    serial: bool,
    /// The open-file limit ZeroC's driver gives the server (`RLIMIT_NOFILE`), if any.
    nofile: Option<u32>,
    /// The server processes of a run, and what the client is told of them.
    servers: Servers,
    /// ZeroC's clients run against the server, each in every configuration: its Python one,
    /// and its C++ one (`cpp/test/Ice/<test>`, built at test time, see [`build_cpp_client`]).
    clients: &'static [Client],
    /// What the client prints on a failure it does not count as one, and goes on: a run whose
    /// client prints it fails.
    quiet_failure: Option<&'static str>,
    /// A known gap of Floe's runtime that makes the runs on these protocols (all when empty)
    /// fail, and why. Such a run is still made and shown as "known gap"; it fails the
    /// conformance run only if it passes (then the gap is closed and this must go).
    gap: Option<(&'static [&'static str], &'static str)>,
}

impl TestCase {
    /// A core test (see [`Options::Core`]) of one server on one port, which may run beside
    /// others, with no file limit.
    const fn new(name: &'static str, timeout_secs: u64) -> TestCase {
        TestCase {
            name,
            cases: &[DEFAULT],
            options: Options::Core,
            protocols: &[],
            compress: true,
            serialize: true,
            ports: 1,
            timeout: Duration::from_secs(timeout_secs),
            serial: false,
            nofile: None,
            servers: Servers::One,
            clients: &[Client::Python],
            quiet_failure: None,
            gap: None,
        }
    }

    /// A cross test (see [`Options::Transport`]) with the cases `cases`.
    const fn cross(name: &'static str, cases: &'static [Case], timeout_secs: u64) -> TestCase {
        TestCase {
            cases,
            options: Options::Transport,
            ..TestCase::new(name, timeout_secs)
        }
    }

    /// The driver's configurations for this test: the plain one, then the rows of `--all`.
    fn configs(&self) -> Vec<Config> {
        let (protocols, options_len): (&[&'static str], usize) = match self.options {
            Options::Transport => (&["tcp", "ssl", "wss", "ws"], 2),
            Options::Core => (&["ssl", "ws"], 2),
            Options::Service => (&["ssl"], 1),
        };
        let protocols = if self.protocols.is_empty() {
            protocols
        } else {
            self.protocols
        };
        let service = self.options == Options::Service;
        let compress: &[bool] = if service || !self.compress {
            &[false]
        } else {
            &[false, true]
        };
        let serialize: &[bool] = if service || !self.serialize {
            &[false]
        } else {
            &[false, true]
        };
        // mx has `options_len` values in every set and no test here narrows it: the rows are
        // at least that many.
        let rows = protocols.len().max(options_len);
        let mut configs = vec![Config::PLAIN];
        for i in 0..rows {
            let config = Config {
                protocol: protocols[i % protocols.len()],
                compress: compress[i % compress.len()],
                serialize: serialize[i % serialize.len()],
            };
            if !configs.contains(&config) {
                configs.push(config);
            }
        }
        configs
    }

    /// Every run of this test.
    fn variants(&self) -> Vec<Variant> {
        let mut variants = Vec::new();
        for &client in self.clients {
            // The cases are those of the Python client's script; the C++ client runs the
            // default one.
            let cases: &[Case] = match client {
                Client::Python => self.cases,
                Client::Cpp => &[DEFAULT],
            };
            for case in cases {
                for config in self.configs() {
                    variants.push(Variant {
                        case: *case,
                        config,
                        client,
                    });
                }
            }
        }
        variants
    }
}

const TESTS: &[TestCase] = &[
    TestCase::cross("operations", &[DEFAULT], 120),
    TestCase {
        ports: 3,
        ..TestCase::cross("exceptions", &[COMPACT, SLICED, ENCODING_10], 120)
    },
    TestCase::cross("proxy", &[DEFAULT], 120),
    TestCase::cross("enums", &[DEFAULT_ENCODING, ENCODING_10], 60),
    TestCase::cross("inheritance", &[DEFAULT], 60),
    TestCase::cross("facets", &[DEFAULT], 60),
    TestCase::new("scope", 60),
    TestCase::cross("objects", &[COMPACT, SLICED, ENCODING_10], 120),
    TestCase::cross("optional", &[COMPACT, SLICED], 120),
    TestCase {
        // scripts/tests/Ice/slicing/exceptions.py: serialize false only.
        serialize: false,
        ..TestCase::cross("slicing/exceptions", &[DEFAULT, ENCODING_10], 120)
    },
    TestCase::cross("slicing/objects", &[DEFAULT, ENCODING_10], 120),
    TestCase {
        ports: 2,
        // scripts/tests/Ice/ami.py: compress and serialize false only.
        compress: false,
        serialize: false,
        ..TestCase::cross("ami", &[DEFAULT], 180)
    },
    TestCase::new("adapterDeactivation", 120),
    TestCase::new("servantLocator", 120),
    TestCase {
        serial: true,
        // scripts/tests/Ice/info.py: compress (and ipv6) false only.
        compress: false,
        ..TestCase::new("info", 60)
    },
    TestCase {
        // The server creates adapters on the ports above the base port.
        ports: 120,
        // ZeroC's scripts/tests/Ice/binding.py: at most 92 open files for the server.
        nofile: Some(92),
        options: Options::Service,
        ..TestCase::new("binding", 180)
    },
    TestCase {
        ports: 2,
        // scripts/tests/Ice/timeout.py: compress false only.
        compress: false,
        ..TestCase::new("timeout", 240)
    },
    TestCase::new("acm", 240),
    TestCase::new("asyncio", 60),
    TestCase::new("packagemd", 60),
    TestCase {
        // python/test/Ice/blobject/test.py: tcp only.
        protocols: &["tcp"],
        ..TestCase::new("blobject", 60)
    },
    TestCase::new("custom", 60),
    TestCase {
        // Twelve servers, at the base port + 1 … 12.
        ports: 13,
        servers: Servers::Ports(12),
        options: Options::Service,
        ..TestCase::new("faultTolerance", 120)
    },
    TestCase {
        // The locator at the base port; the Python client starts nine servers, the C++ one
        // ten, each with two adapters on the next two ports; the C++ one also makes a proxy to
        // the base port + 99, where nothing may listen.
        ports: 99,
        options: Options::Service,
        // Issue 13: ZeroC's C++ location client too.
        clients: &[Client::Python, Client::Cpp],
        ..TestCase::new("location", 120)
    },
    // scripts/tests/Ice/admin.py narrows only ipv6 (false), which no run sets. The admin
    // objects listen on `Ice.Admin.Endpoints` the client gives (`tcp -h 127.0.0.1`, a port the
    // system picks), not above the base port.
    TestCase {
        ..TestCase::new("admin", 30)
    },
    // No script of ZeroC's narrows Ice/checksum: every configuration of the driver.
    TestCase::new("checksum", 60),
    // Issue 13: ZeroC has no Python Ice/udp client, so its C++ one runs. Five servers, started
    // with 0 … 4, as scripts/tests/Ice/udp.py starts them, the client with 5. Each server's
    // `control` is at the base port + its number on tcp (`getTestEndpoint(num, "tcp")` names
    // the protocol, so ssl and ws runs keep it), server 0's `test` is at the base port on udp,
    // and all five join a multicast group on the base port + 10. The script narrows no option:
    // the core configurations, in which only the client's proxies to its own reply objects
    // and its bidirectional datagram connection see the protocol.
    TestCase {
        ports: 11,
        servers: Servers::Count(5),
        clients: &[Client::Cpp],
        // When no server answers its multicast pings, the client says so and carries on.
        quiet_failure: Some("failed (is a firewall enabled?)"),
        ..TestCase::new("udp", 60)
    },
];

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunResult {
    Pass,
    Fail,
    /// It failed, as the test's known gap says it does.
    KnownGap,
    /// It passed although the test's known gap says it fails: the gap must go.
    GapClosed,
}

impl RunResult {
    fn ok(self) -> bool {
        matches!(self, RunResult::Pass | RunResult::KnownGap)
    }

    fn text(self) -> &'static str {
        match self {
            RunResult::Pass => "pass",
            RunResult::Fail => "FAIL",
            RunResult::KnownGap => "known gap",
            RunResult::GapClosed => "FAIL (passes: remove its known gap)",
        }
    }
}

/// What every run shares.
#[derive(Debug)]
struct Setup {
    /// The unpacked zeroc-ice source tree.
    source: PathBuf,
    /// The certificates of the ssl and wss runs.
    certs: Option<PathBuf>,
    /// ZeroC's C++ clients, built, by test.
    cpp_clients: Vec<(&'static str, PathBuf)>,
}

/// One run of one client against one server.
#[derive(Debug)]
struct Outcome {
    test: &'static str,
    variant: String,
    result: RunResult,
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
        for variant in test.variants() {
            runs.push((*test, variant));
        }
    }
    if runs.is_empty() {
        eprintln!("zeroc conformance: no test matches {filters:?}");
        return ExitCode::FAILURE;
    }
    if runs.iter().any(|(_, v)| v.client == Client::Python) {
        if let Err(e) = python_imports("Ice", "python3-zeroc-ice") {
            eprintln!("zeroc conformance: {e}");
            return ExitCode::FAILURE;
        }
    }
    // ZeroC's certificates expired on 2024-10-29: ssl and wss runs use ones made now, under
    // the same names and password, in a directory removed at the end.
    let certs = if runs.iter().any(|(_, v)| v.config.secure()) {
        let dir = RemovedOnDrop(
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("zeroc-certs-{}", std::process::id())),
        );
        if let Err(e) = floe_test_support::certs::write_test_certs(&dir.0) {
            eprintln!(
                "zeroc conformance: cannot write certificates to {}: {e}",
                dir.0.display()
            );
            return ExitCode::FAILURE;
        }
        Some(dir)
    } else {
        None
    };
    let mut setup = Setup {
        source,
        certs: certs.as_ref().map(|d| d.0.clone()),
        cpp_clients: Vec::new(),
    };
    for (test, _) in runs.iter().filter(|(_, v)| v.client == Client::Cpp) {
        if setup.cpp_clients.iter().any(|(t, _)| *t == test.name) {
            continue;
        }
        match build_cpp_client(&setup.source, test.name) {
            Ok(exe) => setup.cpp_clients.push((test.name, exe)),
            Err(e) => {
                eprintln!("zeroc conformance: {e}");
                return ExitCode::FAILURE;
            }
        }
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
                        let outcome = run_one(&setup, test, variant);
                        eprintln!(
                            "zeroc conformance: Ice/{} ({}): {} in {:.1}s",
                            outcome.test,
                            outcome.variant,
                            outcome.result.text(),
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
    let count = |r: RunResult| results.iter().filter(|(_, o)| o.result == r).count();
    for (_, o) in &results {
        if o.result != RunResult::Pass {
            println!(
                "\n==== Ice/{} ({}): {} ====\n{}",
                o.test,
                o.variant,
                o.result.text(),
                o.detail
            );
        }
    }
    println!("\n| test | variant | result | seconds |");
    println!("| --- | --- | --- | --- |");
    for (_, o) in &results {
        println!(
            "| Ice/{} | {} | {} | {:.1} |",
            o.test,
            o.variant,
            o.result.text(),
            o.seconds
        );
    }
    let failed = results.iter().filter(|(_, o)| !o.result.ok()).count();
    println!(
        "\n{} runs, {} passed, {} failed, {} failed by a known gap, {:.0}s with {} in parallel",
        results.len(),
        count(RunResult::Pass),
        failed,
        count(RunResult::KnownGap),
        started.elapsed().as_secs_f64(),
        jobs
    );
    if failed == 0 && results.len() == runs.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A directory removed with what it holds when this is dropped.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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

fn run_one(setup: &Setup, test: &TestCase, variant: &Variant) -> Outcome {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = test
        .serial
        .then(|| SERIAL.lock().unwrap_or_else(|e| e.into_inner()));
    let started = Instant::now();
    let outcome = run_client_server(setup, test, variant);
    let seconds = started.elapsed().as_secs_f64();
    let gap = test.gap.filter(|(protocols, _)| {
        protocols.is_empty() || protocols.contains(&variant.config.protocol)
    });
    let (result, detail) = match (outcome, gap) {
        (Ok(()), None) => (RunResult::Pass, String::new()),
        (Ok(()), Some((_, why))) => (
            RunResult::GapClosed,
            format!("known gap: {why}\nThe run passes: remove the gap from the runner's table."),
        ),
        (Err(d), None) => (RunResult::Fail, d),
        (Err(d), Some((_, why))) => (RunResult::KnownGap, format!("known gap: {why}\n{d}")),
    };
    Outcome {
        test: test.name,
        variant: variant.name(),
        result,
        seconds,
        detail,
    }
}

/// Builds ZeroC's C++ client of `Ice/<test>` from the source package (`cpp/test/Ice/<test>`:
/// `Client.cpp`, `AllTests.cpp`, `Test.ice` through `slice2cpp`, and `cpp/test/Common`'s
/// `TestHelper.cpp`) with g++ against Debian's libzeroc-ice-dev (C++11 mapping), into the
/// target directory; a build of the same sources with the same g++ is reused.
fn build_cpp_client(source: &Path, test: &str) -> Result<PathBuf, String> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    const INSTALL: &str = "install the Debian packages g++, zeroc-ice-compilers and libzeroc-ice-dev (scripts/test.sh does)";
    let dir = source.join("cpp/test/Ice").join(test);
    let include = source.join("cpp/test/include");
    let sources = [
        dir.join("Client.cpp"),
        dir.join("AllTests.cpp"),
        dir.join("Test.ice"),
        source.join("cpp/test/Common/TestHelper.cpp"),
        include.join("TestHelper.h"),
    ];
    if !Path::new("/usr/include/Ice/Ice.h").is_file() {
        return Err(format!("/usr/include/Ice/Ice.h is missing: {INSTALL}"));
    }
    let mut hasher = DefaultHasher::new();
    for f in &sources {
        std::fs::read(f)
            .map_err(|e| format!("cannot read {} of ZeroC's C++ client: {e}", f.display()))?
            .hash(&mut hasher);
    }
    for tool in ["g++", "slice2cpp"] {
        let version = Command::new(tool)
            .arg("--version")
            .output()
            .map_err(|e| format!("{tool} cannot be run ({e}): {INSTALL}"))?;
        version.stdout.hash(&mut hasher);
        version.stderr.hash(&mut hasher);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zeroc-cpp-clients");
    let exe = root
        .join(format!(
            "{}-{:016x}",
            test.replace('/', "_"),
            hasher.finish()
        ))
        .join("client");
    if exe.is_file() {
        return Ok(exe);
    }
    eprintln!("zeroc conformance: building ZeroC's C++ client of Ice/{test}");
    let work = root.join(format!("tmp-{}", std::process::id()));
    let _cleanup = RemovedOnDrop(work.clone());
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let run = |command: &mut Command, what: &str| -> Result<(), String> {
        let out = command
            .output()
            .map_err(|e| format!("{what} cannot be run ({e}): {INSTALL}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed building ZeroC's C++ client of Ice/{test}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(
        Command::new("slice2cpp")
            .arg("--output-dir")
            .arg(&work)
            .arg("-I/usr/share/ice/slice")
            .arg(format!("-I{}", dir.display()))
            .arg(dir.join("Test.ice")),
        "slice2cpp",
    )?;
    run(
        Command::new("g++")
            .args(["-std=c++11", "-O0", "-w", "-pthread", "-DICE_CPP11_MAPPING"])
            .arg(format!("-I{}", work.display()))
            .arg(format!("-I{}", include.display()))
            .arg(&sources[0])
            .arg(&sources[1])
            .arg(work.join("Test.cpp"))
            .arg(&sources[3])
            .arg("-o")
            .arg(work.join("client"))
            .args(["-lIce++11", "-lpthread"]),
        "g++",
    )?;
    let parent = exe.parent().unwrap_or(&root);
    std::fs::create_dir_all(parent)
        .and_then(|()| std::fs::rename(work.join("client"), &exe))
        .map_err(|e| format!("cannot move the C++ client to {}: {e}", exe.display()))?;
    Ok(exe)
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

fn run_client_server(setup: &Setup, test: &TestCase, variant: &Variant) -> Result<(), String> {
    let (source, certs) = (setup.source.as_path(), setup.certs.as_deref());
    let port = free_ports(test.ports);
    let common: Vec<String> = [
        "--Ice.Default.Host=127.0.0.1".to_string(),
        format!("--Test.BasePort={port}"),
        "--Ice.Warn.Connections=1".into(),
        "--Ice.IPv6=0".into(),
        "--Ice.PrintStackTraces=1".into(),
    ]
    .into();
    let with = |server: bool| {
        let mut args = common.clone();
        args.extend(variant.props(server, certs));
        args
    };
    let (server_args, args) = (with(true), with(false));

    let numbers = test.servers.numbers();
    let mut servers = Vec::new();
    for n in &numbers {
        let mut server_args = server_args.clone();
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

    // Each client runs in its own test folder, as ZeroC's driver runs it.
    let dir = match variant.client {
        Client::Python => source.join("python/test/Ice").join(test.name),
        Client::Cpp => source.join("cpp/test/Ice").join(test.name),
    };
    let test_helper = "../".repeat(test.name.matches('/').count() + 2) + "TestHelper.py";
    let mut command = match variant.client {
        Client::Python => {
            let mut c = Command::new(PYTHON);
            c.env("PYTHONPATH", &dir).arg(&test_helper).arg("Client.py");
            c
        }
        Client::Cpp => Command::new(
            setup
                .cpp_clients
                .iter()
                .find(|(t, _)| *t == test.name)
                .map(|(_, exe)| exe)
                .ok_or("the C++ client was not built")?,
        ),
    };
    let mut client = ChildGuard::new(
        command
            .current_dir(&dir)
            .args(&args)
            .args(test.servers.client_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the client in {}: {e}", dir.display()))?,
    );
    let client_out = client.stdout.take().map(collect);
    let client_err = client.stderr.take().map(collect);
    let client_status = client.wait_or_kill(test.timeout);
    let client_text = output_text("client", client_out, client_err);
    let quiet_failure = test.quiet_failure.filter(|text| client_text.contains(text));
    let mut shown_args = args.clone();
    shown_args.extend(test.servers.client_args());
    let command = match variant.client {
        Client::Python => format!(
            "cd {}; PYTHONPATH=$PWD {PYTHON} {test_helper} Client.py {}",
            dir.display(),
            shown_args.join(" ")
        ),
        Client::Cpp => format!(
            "cd {}; {} {}",
            dir.display(),
            Path::new(command.get_program()).display(),
            shown_args.join(" ")
        ),
    };

    // The client's last call is shutdown() (or abort()): each server must exit by itself, and
    // cleanly. A failed client may never have called it.
    let grace = match client_status {
        Some(c) if c.success() && test.servers.wait_for_shutdown() => Duration::from_secs(15),
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
                None if !test.servers.wait_for_shutdown() => None,
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
        Some(_) => match quiet_failure {
            Some(text) => Some(format!("the client passed, but printed `{text}`")),
            None => server_problem,
        },
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
