//! Process and port helpers shared by Floe's test suites (a dev-dependency of each crate that
//! runs real processes): free loopback ports, waiting for a port to accept, child processes
//! killed on drop, ZeroC's Python, ZeroC's IceStorm under icebox, and property files.
//!
//! Checks for ZeroC's programs fail (never skip) and name the Debian packages to install.
//!
//! ```no_run
//! use floe_test_support::{IceBox, free_port, require_python};
//!
//! require_python("Ice", "python3-zeroc-ice");
//! let icebox = IceBox::start("IceStorm.Flush.Timeout=50\n");
//! let proxy = icebox.topic_manager();
//! let unused = free_port();
//! # let _ = (proxy, unused);
//! ```

#[cfg(feature = "certs")]
pub mod certs;
pub mod faultnet;
pub mod lincheck;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The interpreter ZeroC's Python mapping is installed for (the default `python3` may be
/// another one).
pub const PYTHON: &str = "/usr/bin/python3";

/// How long [`wait_listening`] waits for a port to accept.
const LISTEN_LIMIT: Duration = Duration::from_secs(20);

/// How often a wait polls.
const POLL: Duration = Duration::from_millis(20);

/// A TCP port on 127.0.0.1 that was free a moment ago (the system picked it for a listener that
/// is closed again before this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

/// `n` distinct TCP ports on 127.0.0.1 that were free a moment ago (all held at once while
/// they are picked, so no two are the same).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// Waits until 127.0.0.1:`port` accepts connections; fails the test, naming `what`, after 20 s.
pub fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + LISTEN_LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on port {port}"
        );
        std::thread::sleep(POLL);
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing test leaves
/// nothing running. Derefs to the [`Child`].
#[derive(Debug)]
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(child)
    }

    /// Kills and reaps the process; harmless when it has already ended.
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits at most `limit` for the process to end; kills it and returns `None` if it did not.
    pub fn wait_or_kill(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => {
                    self.stop();
                    return None;
                }
            }
        }
    }

    /// [`ChildGuard::wait_or_kill`] for async tests: sleeps on the tokio timer between polls.
    pub async fn wait_or_kill_async(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                _ => {
                    self.stop();
                    return None;
                }
            }
        }
    }
}

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the first line `child` prints on its (piped) stdout, trimmed, within `limit`; `None`
/// if it printed none in time. The rest of its output is read and dropped on a thread, so the
/// child never blocks on a full pipe.
pub fn first_line(child: &mut Child, limit: Duration) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx.recv_timeout(limit)
        .ok()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// Whether [`PYTHON`] can `import modules` (e.g. `"Ice, IceStorm"`); the error says which
/// Debian `packages` to install.
pub fn python_imports(modules: &str, packages: &str) -> Result<(), String> {
    let status = Command::new(PYTHON)
        .arg("-c")
        .arg(format!("import {modules}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {PYTHON} ({e}): install the Debian package python3"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{PYTHON} cannot `import {modules}`: install the Debian packages {packages} \
             (apt-get install -y {packages}; scripts/test.sh does)"
        ))
    }
}

/// Fails the test (never skips it) unless [`PYTHON`] can `import modules`, naming the Debian
/// `packages` to install.
pub fn require_python(modules: &str, packages: &str) {
    if let Err(e) = python_imports(modules, packages) {
        panic!("{e}");
    }
}

/// Writes the property file `dir/name` and returns its path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// The `--Ice.Config=PATH` argument that makes a program read the property file `path`.
pub fn config_arg(path: &Path) -> String {
    format!("--Ice.Config={}", path.display())
}

/// ZeroC's IceStorm in transient mode, run by ZeroC's icebox on two free loopback ports. The
/// process is killed and its configuration directory removed on drop.
#[derive(Debug)]
pub struct IceBox {
    _process: ChildGuard,
    _dir: tempfile::TempDir,
    topic_manager: String,
    /// The port of `IceStorm.TopicManager.Endpoints`.
    pub topic_manager_port: u16,
    /// The port of `IceStorm.Publish.Endpoints`.
    pub publish_port: u16,
}

impl IceBox {
    /// Starts icebox with `IceStormService` (instance name `IceStorm`) and the property lines
    /// `extra` (e.g. `IceStorm.Flush.Timeout=50\n`), and waits until both of its ports accept.
    pub fn start(extra: &str) -> IceBox {
        const MISSING: &str = "`icebox` is missing: install the Debian packages zeroc-icebox \
             libzeroc-icestorm3.7 (apt-get install -y zeroc-icebox libzeroc-icestorm3.7; \
             scripts/test.sh does)";
        let found = Command::new("icebox")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(found.is_ok(), "{MISSING}");
        let dir = tempfile::tempdir().expect("temp dir");
        let (tm, publish) = (free_port(), free_port());
        let config = write_config(
            dir.path(),
            "icebox.cfg",
            &format!(
                "IceBox.InheritProperties=1\n\
                 IceBox.Service.IceStorm=IceStormService,37:createIceStorm\n\
                 IceStorm.InstanceName=IceStorm\n\
                 IceStorm.Transient=1\n\
                 IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p {tm}\n\
                 IceStorm.Publish.Endpoints=tcp -h 127.0.0.1 -p {publish}\n\
                 Ice.Warn.Connections=0\n\
                 {extra}"
            ),
        );
        let child = Command::new("icebox")
            .arg(config_arg(&config))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(MISSING);
        let icebox = IceBox {
            _process: ChildGuard::new(child),
            _dir: dir,
            topic_manager: format!("IceStorm/TopicManager:tcp -h 127.0.0.1 -p {tm}"),
            topic_manager_port: tm,
            publish_port: publish,
        };
        wait_listening(tm, "icebox");
        wait_listening(publish, "icebox");
        icebox
    }

    /// The topic manager's proxy, `IceStorm/TopicManager:tcp -h 127.0.0.1 -p PORT`.
    pub fn topic_manager(&self) -> &str {
        &self.topic_manager
    }
}
