//! Test harness: real brokers (ZeroC's IceStorm under icebox), real `usersmanager` processes,
//! ZeroC Python programs, all on 127.0.0.1 with ports picked by the system.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use floe_test_support::{ChildGuard, config_arg, first_line, write_config};
#[allow(unused_imports)]
pub use floe_test_support::{IceBox, PYTHON, free_port};

/// ZeroC's IceStorm (transient) in icebox, batch subscribers flushed every 50 ms.
pub fn start_icebox() -> IceBox {
    IceBox::start("IceStorm.Flush.Timeout=50\nIce.Default.Host=127.0.0.1\n")
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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
                // As in usersmanager's own brokers: Python instances may join.
                props.set_property("IceStorm.CheckClassGraphs", "1");
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
            Broker::ZeroC(b) => b.topic_manager(),
        }
    }
}

/// Short waits so that timeout paths take a fraction of a second.
pub const QUERY_TIMEOUT_MS: u64 = 700;

/// One `usersmanager` process.
pub struct Instance {
    child: ChildGuard,
    pub manager: String,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Instance {
    /// Writes `dir/NAME.config` with the broker, the data directory `dir/NAME-data`, short
    /// waits and `extra` lines, and starts the binary on it.
    pub fn start(dir: &Path, name: &str, topic_manager: Option<&str>, extra: &str) -> Instance {
        let data_dir = dir.join(format!("{name}-data"));
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
        let config = write_config(dir, &format!("{name}.config"), &text);
        Self::start_with_config(&config, &data_dir, &dir.join(format!("{name}.log")))
    }

    /// Starts the binary on an existing config file.
    pub fn start_with_config(config: &Path, data_dir: &Path, log: &Path) -> Instance {
        let mut command = Command::new(env!("CARGO_BIN_EXE_usersmanager"));
        command.arg(config_arg(config)).env("RUST_LOG", "info");
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
        let config = write_config(
            dir,
            &format!("{name}.config"),
            &format!(
                "usersmanageradapter.Endpoints=tcp -h 127.0.0.1 -p 0\n\
                 UsersManager.DataDir={}\n\
                 UsersManager.QueryTimeout={QUERY_TIMEOUT_MS}\n\
                 IceStorm.TopicManager.Proxy={topic_manager}\n{extra}",
                data_dir.display()
            ),
        );
        let mut command = Command::new(PYTHON);
        command
            .arg(python_program("usersmanager_py.py"))
            .arg(stubs)
            .arg(config_arg(&config));
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
        let mut child = ChildGuard::new(
            command
                .stdout(Stdio::piped())
                .stderr(logfile)
                .spawn()
                .expect("start the instance"),
        );
        let manager = first_line(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
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
        self.child.stop();
    }

    /// The instance's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Runs the binary expecting it to fail; returns (exit code, stderr).
pub fn start_failing(config_text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "bad.config", config_text);
    let mut child = ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_usersmanager"))
            .arg(config_arg(&config))
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start usersmanager"),
    );
    let Some(status) = child.wait_or_kill(Duration::from_secs(30)) else {
        panic!("usersmanager kept running with a bad config:\n{config_text}");
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.code(), err)
}

/// Checks that ZeroC's Python is there, with a message saying what to install.
pub fn require_python_ice() {
    floe_test_support::require_python("Ice", "python3-zeroc-ice");
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
