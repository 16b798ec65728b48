//! Interop with ZeroC's Python: the example client examples/telegraph-python/client.py (ZeroC
//! Ice for Python and `cryptography`) and the Rust client exchange sealed messages and signed
//! receipts, both ways, through three managers run in this process; a tampered envelope sent
//! straight to the Python inbox is rejected.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey};
use floe::Properties;
use floe_test_support::{ChildGuard, PYTHON, require_python};
use telegraph::client::{Client, ClientConfig, Event};
use telegraph::cluster::Cluster;
use telegraph::crypto::{self, Identity};
use telegraph::slice::telegraph::{Envelope, InboxPrx, ManagerPrx, inbox};
use telegraph::store::State;

/// How long any one step may take.
const LIMIT: Duration = Duration::from_secs(15);

const TO_PYTHON: &str = "hello from Rust, to Python \u{2713}";
const TO_RUST: &str = "hello from Python, to Rust \u{e9}\u{e8}";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/telegraph-python/client.py")
}

/// The example's arguments for user `py`, on `managers`, keeping its state in `data`.
fn py_args(managers: &str, data: &Path) -> Vec<String> {
    let data = data.display().to_string();
    [
        "--managers",
        managers,
        "--name",
        "py",
        "--password",
        "py-password",
        "--data-dir",
        &data,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs one command of the example to its end; returns its stdout, failing on a non-zero exit.
async fn run_py(command: &[&str], args: &[String]) -> String {
    let mut child = ChildGuard::new(
        Command::new(PYTHON)
            .arg(example())
            .args(command)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the Python client"),
    );
    let status = child.wait_or_kill_async(LIMIT).await;
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "client.py {command:?} ended with {status:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// The example running `listen`: its output is gathered line by line as it comes.
struct Listener {
    child: ChildGuard,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

fn gather(pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

impl Listener {
    fn start(args: &[String]) -> Listener {
        let mut child = ChildGuard::new(
            Command::new(PYTHON)
                .arg(example())
                .arg("listen")
                .args(args)
                .args(["--auto-read", "--heartbeat", "500"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the Python client"),
        );
        let (out, err) = (Arc::default(), Arc::default());
        gather(child.stdout.take().expect("stdout"), Arc::clone(&out));
        gather(child.stderr.take().expect("stderr"), Arc::clone(&err));
        let stdin = child.stdin.take();
        Listener {
            child,
            stdin,
            out,
            err,
        }
    }

    /// Everything the client printed so far, for failure messages.
    fn output(&self) -> String {
        format!(
            "Python client stdout:\n{}\nPython client stderr:\n{}",
            self.out.lock().unwrap().join("\n"),
            self.err.lock().unwrap().join("\n")
        )
    }

    /// The first line of stdout that `matches`, waiting for it at most LIMIT.
    async fn line(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(l) = self.out.lock().unwrap().iter().find(|l| matches(l)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the Python client did not print {what} within {LIMIT:?}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn count(&self, matches: impl Fn(&str) -> bool) -> usize {
        self.out
            .lock()
            .unwrap()
            .iter()
            .filter(|l| matches(l))
            .count()
    }

    /// Sends `NAME TEXT` on the client's stdin.
    fn send(&mut self, to: &str, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{to} {text}")
            .and_then(|()| stdin.flush())
            .expect("write to the Python client");
    }
}

/// The next event of `events` that `pick` keeps, within LIMIT.
async fn next_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    py: &Listener,
    what: &str,
    pick: impl Fn(Event) -> Option<T>,
) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(e)) => {
                if let Some(t) = pick(e) {
                    return t;
                }
            }
            Ok(Err(e)) => panic!("the Rust client's events: {e}\n{}", py.output()),
            Err(_) => panic!(
                "the Rust client saw no {what} within {LIMIT:?}\n{}",
                py.output()
            ),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_and_rust_client_exchange_messages_and_receipts() {
    require_python(
        "Ice, cryptography",
        "python3-zeroc-ice python3-cryptography",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let props = Properties::new();
    for (k, v) in [
        ("Telegraph.Raft.HeartbeatInterval", "50"),
        ("Telegraph.Raft.ElectionTimeoutMin", "300"),
        ("Telegraph.TickInterval", "200"),
        ("Telegraph.FlushInterval", "100"),
    ] {
        props.set_property(k, v);
    }
    let cluster = Cluster::start(3, &props, &dir.path().join("managers"))
        .await
        .expect("start the managers");
    let managers = cluster.managers_proxy();

    // The Rust user.
    let rust_props = props.deep_clone();
    rust_props.set_property("Telegraph.Managers", &managers);
    rust_props.set_property(
        "Telegraph.Client.DataDir",
        &dir.path().join("rust").display().to_string(),
    );
    rust_props.set_property("Telegraph.HeartbeatInterval", "500");
    rust_props.set_property("Telegraph.RetryMin", "100");
    rust_props.set_property("Telegraph.RetryMax", "1000");
    let config =
        ClientConfig::from_properties(rust_props, "rust", "rust-password").expect("client config");
    let rust = Client::start(config, true)
        .await
        .expect("start the Rust client");
    let mut events = rust.events();

    // The Python user registers, and sees both users.
    let args = py_args(&managers, &dir.path().join("py"));
    assert_eq!(run_py(&["register"], &args).await.trim(), "registered py");
    let users = run_py(&["users"], &args).await;
    assert!(
        users.lines().any(|l| l == "rust online"),
        "client.py users printed:\n{users}"
    );
    assert!(
        users.lines().any(|l| l.starts_with("py ")),
        "client.py users printed:\n{users}"
    );

    let mut py = Listener::start(&args);
    let ready = py.line("ready", |l| l.starts_with("ready ")).await;
    assert!(ready.contains("inbox/py"), "{ready}");

    // Rust -> Python: printed with the exact text; delivered, then read (--auto-read).
    let sent = rust
        .send("py", TO_PYTHON)
        .await
        .expect("the Rust client sends");
    let expected = format!("message {} from rust #1: {TO_PYTHON}", sent.id);
    py.line(&expected, |l| l == expected).await;
    let mut states = Vec::new();
    while states.last() != Some(&State::Read) {
        let id = &sent.id;
        let state = next_event(&mut events, &py, "read receipt from Python", |e| match e {
            Event::Updated(m) if m.id == *id => Some(m.state),
            _ => None,
        })
        .await;
        states.push(state);
    }
    assert_eq!(
        states[0],
        State::Delivered,
        "states of the Rust message: {states:?}"
    );
    assert!(
        states.windows(2).all(|w| w[0] <= w[1]),
        "states of the Rust message: {states:?}"
    );
    assert_eq!(
        rust.store().message(&sent.id).unwrap().map(|m| m.state),
        Some(State::Read)
    );

    // Python -> Rust: the Python client looks the Rust user up, pins its keys, and seals.
    py.send("rust", TO_RUST);
    let line = py
        .line("sent ... to rust", |l| {
            l.starts_with("sent ") && l.ends_with(" to rust")
        })
        .await;
    let py_id = line.split_whitespace().nth(1).expect("an id").to_string();
    let received = next_event(&mut events, &py, "message from Python", |e| match e {
        Event::Received(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(
        (
            received.id.as_str(),
            received.peer.as_str(),
            received.counter
        ),
        (py_id.as_str(), "py", 1)
    );
    assert_eq!(received.text, TO_RUST);
    assert_eq!(
        rust.store().message(&py_id).unwrap().map(|m| m.text),
        Some(TO_RUST.to_string())
    );
    let me = rust.lookup("rust").await.expect("look the Rust user up");
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("py/telegraph.json")).expect("the Python client's state"),
    )
    .expect("JSON");
    assert_eq!(
        saved["contacts"]["rust"]["identity"],
        hex(&me.identity_key),
        "{saved}"
    );
    assert_eq!(
        saved["contacts"]["rust"]["exchange"],
        hex(&me.exchange_key),
        "{saved}"
    );

    // Receipts for the Python message: delivered at once, read once the Rust user reads it.
    py.line("the delivered receipt", |l| {
        l == format!("receipt delivered {py_id} from rust")
    })
    .await;
    assert_eq!(rust.mark_read("py").await.expect("mark read"), 1);
    py.line("the read receipt", |l| {
        l == format!("receipt read {py_id} from rust")
    })
    .await;

    // A tampered envelope, straight to the Python inbox, is rejected; the intact one is taken,
    // once.
    let communicator =
        floe::Communicator::with_properties(Properties::new()).expect("communicator");
    let manager =
        ManagerPrx::unchecked_cast(communicator.string_to_proxy(&managers).unwrap().unwrap());
    let tester = Identity::generate();
    manager
        .register(
            "tester",
            "tester-password",
            &tester.identity_public(),
            &tester.exchange_public(),
        )
        .await
        .expect("register tester");
    let session = manager
        .login("tester", "tester-password", None)
        .await
        .expect("login tester");
    let info = manager.lookup(&session, "py").await.expect("look py up");
    let inbox_proxy = InboxPrx::unchecked_cast(
        communicator
            .string_to_proxy(&info.inbox)
            .unwrap()
            .expect("py's inbox"),
    );
    let id = crypto::new_message_id();
    let good = crypto::seal(
        &tester,
        "tester",
        "py",
        &info.exchange_key,
        &id,
        1,
        now_ms(),
        "intact",
    )
    .expect("seal");
    let mut tampered = good.clone();
    tampered.ciphertext[0] ^= 1;
    let rejected = |e: Result<(), inbox::DeliverError>, what: &str, says: &str| match e {
        Err(inbox::DeliverError::Rejected(r)) => {
            assert!(r.reason.contains(says), "{what}: {}", r.reason)
        }
        other => panic!("{what} got {other:?}\n{}", py.output()),
    };
    rejected(
        inbox_proxy.deliver(&tampered).await,
        "a flipped ciphertext byte",
        "signature",
    );
    // Signed again by the sender, the altered ciphertext still fails to decrypt.
    let signing = SigningKey::from_bytes(tester.to_secret_bytes()[..32].try_into().unwrap());
    let resign = |e: &mut Envelope| {
        let signed = [
            crypto::header_bytes(e),
            e.nonce.clone(),
            e.ciphertext.clone(),
        ]
        .concat();
        e.signature = signing.sign(&signed).to_bytes().to_vec();
    };
    resign(&mut tampered);
    rejected(
        inbox_proxy.deliver(&tampered).await,
        "a re-signed altered ciphertext",
        "decrypt",
    );
    // So does a re-signed envelope whose header (the associated data) changed.
    let mut tampered = good.clone();
    tampered.counter = 2;
    resign(&mut tampered);
    rejected(
        inbox_proxy.deliver(&tampered).await,
        "a re-signed altered header",
        "decrypt",
    );
    let mut tampered = good.clone();
    tampered.recipient = "rust".into();
    rejected(
        inbox_proxy.deliver(&tampered).await,
        "another recipient",
        "not for py",
    );
    inbox_proxy
        .deliver(&good)
        .await
        .unwrap_or_else(|e| panic!("the intact envelope: {e:?}\n{}", py.output()));
    let expected = format!("message {id} from tester #1: intact");
    py.line(&expected, |l| l == expected).await;
    inbox_proxy
        .deliver(&good)
        .await
        .unwrap_or_else(|e| panic!("a duplicate: {e:?}\n{}", py.output()));
    assert_eq!(
        py.count(|l| l.starts_with(&format!("message {id} "))),
        1,
        "{}",
        py.output()
    );
    assert_eq!(
        py.count(|l| l.starts_with("message ")),
        2,
        "{}",
        py.output()
    );
    communicator.destroy().await;

    // Closing its stdin ends the Python client cleanly (it logs out).
    py.stdin.take();
    let status = py.child.wait_or_kill_async(LIMIT).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the Python client ended with {status:?}\n{}",
        py.output()
    );
    rust.shutdown().await;
    cluster.shutdown().await;
}
