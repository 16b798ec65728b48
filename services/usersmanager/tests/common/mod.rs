//! Test harness: real brokers (ZeroC's IceStorm under icebox), real `usersmanager` processes,
//! ZeroC Python programs, all on 127.0.0.1 with ports picked by the system.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const PYTHON: &str = "/usr/bin/python3";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ZeroC's IceStorm (transient) running in icebox.
pub struct IceBox {
    child: Child,
    _dir: tempfile::TempDir,
    pub topic_manager: String,
}

impl Drop for IceBox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl IceBox {
    pub fn start() -> IceBox {
        let ok = Command::new("icebox")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            ok.is_ok(),
            "`icebox` is missing: apt-get install -y zeroc-icebox libzeroc-icestorm3.7 (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let (tm, publish) = (free_port(), free_port());
        let cfg = dir.path().join("icebox.cfg");
        std::fs::write(
            &cfg,
            format!(
                "IceBox.InheritProperties=1\n\
                 IceBox.Service.IceStorm=IceStormService,37:createIceStorm\n\
                 IceStorm.InstanceName=IceStorm\n\
                 IceStorm.Transient=1\n\
                 IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p {tm}\n\
                 IceStorm.Publish.Endpoints=tcp -h 127.0.0.1 -p {publish}\n\
                 IceStorm.Flush.Timeout=50\n\
                 Ice.Default.Host=127.0.0.1\n\
                 Ice.Warn.Connections=0\n"
            ),
        )
        .expect("write icebox config");
        let child = Command::new("icebox")
            .arg(format!("--Ice.Config={}", cfg.display()))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start icebox");
        let icebox = IceBox {
            child,
            _dir: dir,
            topic_manager: format!("IceStorm/TopicManager:tcp -h 127.0.0.1 -p {tm}"),
        };
        wait_listening(tm, "icebox");
        wait_listening(publish, "icebox");
        icebox
    }
}

/// icestorm-lite running in this test process (on its own thread and runtime, so sync and
/// async tests can use it alike), in memory.
pub struct LiteBroker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub topic_manager: String,
}

impl LiteBroker {
    pub fn start() -> LiteBroker {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("broker runtime");
            runtime.block_on(async move {
                let props = floe::Properties::new();
                props.set_property("IceStorm.Transient", "1");
                let broker = icestorm_lite::Broker::start(props)
                    .await
                    .expect("start icestorm-lite");
                let _ = ready_tx.send(broker.topic_manager().to_string());
                let _ = stopped.await;
                broker.shutdown().await;
            });
        });
        let topic_manager = ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("icestorm-lite did not start");
        LiteBroker {
            stop: Some(stop),
            thread: Some(thread),
            topic_manager,
        }
    }
}

impl Drop for LiteBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Either broker, for tests that run on both.
pub enum Broker {
    Lite(LiteBroker),
    ZeroC(IceBox),
}

impl Broker {
    pub fn topic_manager(&self) -> &str {
        match self {
            Broker::Lite(b) => &b.topic_manager,
            Broker::ZeroC(b) => &b.topic_manager,
        }
    }
}

/// Short waits so that timeout paths take a fraction of a second.
pub const QUERY_TIMEOUT_MS: u64 = 700;

/// One `usersmanager` process.
pub struct Instance {
    child: Child,
    pub manager: String,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the first stdout line of `child` within `timeout`, keeping the rest drained.
pub fn first_line(child: &mut Child, timeout: Duration) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx.recv_timeout(timeout)
        .ok()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

impl Instance {
    /// Writes `dir/NAME.config` with the broker, the data directory `dir/NAME-data`, short
    /// waits and `extra` lines, and starts the binary on it.
    pub fn start(dir: &Path, name: &str, topic_manager: Option<&str>, extra: &str) -> Instance {
        let data_dir = dir.join(format!("{name}-data"));
        let config = dir.join(format!("{name}.config"));
        let mut text = format!(
            "usersmanageradapter.Endpoints=tcp -h 127.0.0.1 -p 0\n\
             UsersManager.DataDir={}\n\
             UsersManager.QueryTimeout={QUERY_TIMEOUT_MS}\n",
            data_dir.display()
        );
        if let Some(tm) = topic_manager {
            text.push_str(&format!("IceStorm.TopicManager.Proxy={tm}\n"));
        }
        text.push_str(extra);
        std::fs::write(&config, text).expect("write instance config");
        Self::start_with_config(&config, &data_dir, &dir.join(format!("{name}.log")))
    }

    /// Starts the binary on an existing config file.
    pub fn start_with_config(config: &Path, data_dir: &Path, log: &Path) -> Instance {
        let mut command = Command::new(env!("CARGO_BIN_EXE_usersmanager"));
        command
            .arg(format!("--Ice.Config={}", config.display()))
            .env("RUST_LOG", "info");
        Self::spawn(command, config, data_dir, log)
    }

    /// Starts the Python implementation of tests/usersmanager/ with the same kind of config.
    pub fn start_python(
        dir: &Path,
        name: &str,
        topic_manager: &str,
        extra: &str,
        stubs: &Path,
    ) -> Instance {
        let data_dir = dir.join(format!("{name}-data"));
        let config = dir.join(format!("{name}.config"));
        std::fs::write(
            &config,
            format!(
                "usersmanageradapter.Endpoints=tcp -h 127.0.0.1 -p 0\n\
                 UsersManager.DataDir={}\n\
                 UsersManager.QueryTimeout={QUERY_TIMEOUT_MS}\n\
                 IceStorm.TopicManager.Proxy={topic_manager}\n{extra}",
                data_dir.display()
            ),
        )
        .expect("write instance config");
        let mut command = Command::new(PYTHON);
        command
            .arg(python_program("usersmanager_py.py"))
            .arg(stubs)
            .arg(format!("--Ice.Config={}", config.display()));
        Self::spawn(
            command,
            &config,
            &data_dir,
            &dir.join(format!("{name}.log")),
        )
    }

    fn spawn(mut command: Command, config: &Path, data_dir: &Path, log: &Path) -> Instance {
        let logfile = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open instance log");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(logfile)
            .spawn()
            .expect("start the instance");
        let manager = first_line(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "the instance did not print its proxy; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        assert!(
            manager.starts_with("manager "),
            "the instance printed {manager:?} instead of the Manager's proxy"
        );
        Instance {
            child,
            manager,
            data_dir: data_dir.to_path_buf(),
            config: config.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The instance's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Runs the binary expecting it to fail; returns (exit code, stderr).
pub fn start_failing(config_text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bad.config");
    std::fs::write(&config, config_text).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_usersmanager"))
        .arg(format!("--Ice.Config={}", config.display()))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start usersmanager");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("usersmanager kept running with a bad config:\n{config_text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks that ZeroC's Python is there, with a message saying what to install.
pub fn require_python_ice() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import Ice"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot `import Ice`: apt-get install -y python3-zeroc-ice (scripts/test.sh does)"
    );
}

/// Generates the Python stubs of `slice/UsersManager.ice` with ZeroC's `slice2py` into `dir`.
pub fn python_stubs(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the stubs directory");
    let slice = repo_root().join("slice/UsersManager.ice");
    let status = Command::new("slice2py")
        .arg("--output-dir")
        .arg(dir)
        .arg(&slice)
        .status()
        .expect("slice2py is missing: apt-get install -y zeroc-ice-compilers");
    assert!(status.success(), "slice2py failed on {}", slice.display());
}

/// A Python program of tests/usersmanager/.
pub fn python_program(name: &str) -> PathBuf {
    repo_root().join("tests/usersmanager").join(name)
}

/// A client communicator for the Rust side of tests.
pub fn client() -> floe::Communicator {
    let props = floe::Properties::new();
    props.set_property("Ice.Default.Host", "127.0.0.1");
    floe::Communicator::with_properties(props).expect("client communicator")
}

/// The Manager of `instance`, seen from `communicator`.
pub fn manager_of(
    communicator: &floe::Communicator,
    instance: &Instance,
) -> usersmanager::slice::users_manager::ManagerPrx {
    let prx = communicator
        .string_to_proxy(&instance.manager)
        .expect("parse the Manager's proxy")
        .expect("not a null proxy");
    usersmanager::slice::users_manager::ManagerPrx::unchecked_cast(prx)
}
