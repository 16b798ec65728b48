//! `telegraph chat` in a real terminal: alice and bob each run the terminal client in a tmux
//! session (120x30) against three managers and a broker started in this process; what they see
//! is read with `tmux capture-pane`.
//!
//! Needs tmux (the Debian package `tmux`); the test fails, never skips, without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use telegraph::cluster::Cluster;

/// The longest wait for one step.
const STEP: Duration = Duration::from_secs(15);
/// The first step also waits for two processes to start and log in.
const START: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Three managers and a broker on their own thread and runtime (the test itself blocks on
/// tmux), stopped when dropped.
struct Managers {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    proxy: String,
    topic_manager: String,
}

impl Managers {
    fn start(dir: &Path) -> Managers {
        let dir = dir.to_path_buf();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime for the managers");
            runtime.block_on(async move {
                let props = floe::Properties::new();
                for (k, v) in [
                    ("Telegraph.Raft.HeartbeatInterval", "50"),
                    ("Telegraph.Raft.ElectionTimeoutMin", "300"),
                    ("Telegraph.TickInterval", "200"),
                    ("Telegraph.FlushInterval", "100"),
                    ("Telegraph.OfflineAfter", "2000"),
                ] {
                    props.set_property(k, v);
                }
                let cluster = match Cluster::start(3, &props, &dir).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((
                    cluster.managers_proxy(),
                    cluster.topic_manager().to_string(),
                )));
                let _ = stopped.await;
                cluster.shutdown().await;
            });
        });
        let (proxy, topic_manager) = ready
            .recv_timeout(Duration::from_secs(60))
            .expect("the managers did not start in 60 s")
            .unwrap_or_else(|e| panic!("the managers did not start: {e}"));
        Managers {
            stop: Some(stop),
            thread: Some(thread),
            proxy,
            topic_manager,
        }
    }
}

impl Drop for Managers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tmux server on its own socket, killed when dropped (also when the test fails).
struct Tmux {
    socket: String,
    /// The server's socket file, removed with the server.
    socket_path: std::cell::RefCell<Option<PathBuf>>,
}

impl Tmux {
    fn start() -> Tmux {
        match Command::new("tmux").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`tmux -V` failed ({}): this test runs the terminal client in tmux; install the \
                 Debian package `tmux` (apt-get install tmux)",
                o.status
            ),
            Err(e) => panic!(
                "cannot run tmux ({e}): this test runs the terminal client in tmux; install the \
                 Debian package `tmux` (apt-get install tmux)"
            ),
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Tmux {
            socket: format!("telegraph-chat-{}-{nanos}", std::process::id()),
            socket_path: std::cell::RefCell::new(None),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn check(&self, args: &[&str]) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `command` (a shell command) in a new 120x30 session.
    fn session(&self, name: &str, env: &[(&str, &str)], command: &str) {
        let mut args = vec![
            "new-session".to_string(),
            "-d".into(),
            "-s".into(),
            name.into(),
            "-x".into(),
            "120".into(),
            "-y".into(),
            "30".into(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(command.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.check(&args);
        if self.socket_path.borrow().is_none() {
            let out = self.run(&["display-message", "-p", "#{socket_path}"]);
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                *self.socket_path.borrow_mut() = Some(PathBuf::from(path));
            }
        }
    }

    /// What the session's screen shows.
    fn capture(&self, name: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", name]);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            format!(
                "(capture-pane failed: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }
    }

    /// Presses keys (tmux key names: `Down`, `Enter`, `Escape`, `C-c`).
    fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.check(&args);
    }

    /// Types `text` literally.
    fn type_text(&self, name: &str, text: &str) {
        self.check(&["send-keys", "-t", name, "-l", text]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(path) = self.socket_path.borrow_mut().take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Quotes `s` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

const USERS: [(&str, &str); 2] = [("alice", "alice's password"), ("bob", "bob's password")];

struct Chat {
    tmux: Tmux,
    dir: PathBuf,
}

impl Chat {
    fn data_dir(&self, user: &str) -> String {
        self.dir.join(user).display().to_string()
    }

    fn log(&self, user: &str) -> PathBuf {
        self.dir.join(format!("{user}-chat.log"))
    }

    /// Fails the test, showing both screens and the end of both logs.
    fn fail(&self, what: &str) -> ! {
        let mut report = format!("{what}\n");
        for (user, _) in USERS {
            report.push_str(&format!(
                "\n----- {user}'s screen -----\n{}",
                self.tmux.capture(user)
            ));
            let log = std::fs::read_to_string(self.log(user)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            report.push_str(&format!("----- end of {user}'s log -----\n"));
            for line in tail.into_iter().rev() {
                report.push_str(line);
                report.push('\n');
            }
        }
        panic!("{report}");
    }

    /// Waits (at most `limit`) until `user`'s screen satisfies `ok`; returns the screen.
    fn wait(&self, user: &str, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.tmux.capture(user);
            if ok(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "{user}'s screen did not show {what} within {limit:?}"
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn wait_for(&self, user: &str, text: &str, limit: Duration) -> String {
        self.wait(user, &format!("{text:?}"), limit, |s| s.contains(text))
    }
}

/// The line of `screen` that contains `text`.
fn line_with<'a>(screen: &'a str, text: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(text))
}

#[test]
fn two_users_chat_in_terminals() {
    let tmux = Tmux::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let managers = Managers::start(&dir.path().join("managers"));
    let chat = Chat {
        tmux,
        dir: dir.path().to_path_buf(),
    };
    let bin = env!("CARGO_BIN_EXE_telegraph");

    let properties = |user: &str| {
        vec![
            format!("--Telegraph.Managers={}", managers.proxy),
            format!("--IceStorm.TopicManager.Proxy={}", managers.topic_manager),
            format!("--Telegraph.Client.DataDir={}", chat.data_dir(user)),
            "--Telegraph.HeartbeatInterval=500".to_string(),
            format!("--Telegraph.Chat.Log={}", chat.log(user).display()),
        ]
    };
    for (user, password) in USERS {
        let out = Command::new(bin)
            .args(["register", "--name", user])
            .args(properties(user))
            .env("TELEGRAPH_PASSWORD", password)
            .output()
            .expect("run telegraph register");
        assert!(
            out.status.success(),
            "telegraph register {user} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (user, password) in USERS {
        let mut command = format!("{} chat --name {user}", quote(bin));
        for p in properties(user) {
            command.push(' ');
            command.push_str(&quote(&p));
        }
        // Once the client ends, say how, and keep the pane for capture-pane.
        command.push_str("; echo \"[telegraph exited with $?]\"; sleep 600");
        chat.tmux.session(
            user,
            &[("TELEGRAPH_PASSWORD", password), ("LANG", "C.UTF-8")],
            &command,
        );
    }

    // Each sees the other online.
    chat.wait("alice", "bob online", START, |s| s.contains("● bob"));
    chat.wait("bob", "alice online", START, |s| s.contains("● alice"));

    // Alice selects bob and writes.
    chat.tmux.keys("alice", &["Down"]);
    chat.wait_for("alice", "To bob", STEP);
    chat.tmux.type_text("alice", "hello bob, it's alice");
    chat.wait_for("alice", "hello bob, it's alice", STEP);
    chat.tmux.keys("alice", &["Enter"]);
    chat.wait("alice", "its message, delivered", STEP, |s| {
        line_with(s, "#1 alice: hello bob, it's alice").is_some_and(|l| l.contains("[delivered]"))
    });

    // Bob is told (an unread count and a preview) without reading it yet.
    let screen = chat.wait("bob", "alice's message, unread", STEP, |s| {
        line_with(s, "● alice").is_some_and(|l| l.contains("(1)"))
            && s.contains("hello bob, it's alice")
    });
    if screen.contains("#1 alice:") {
        chat.fail("bob's screen shows the conversation before bob selected alice");
    }
    // Nothing was read: alice's message stays delivered.
    std::thread::sleep(Duration::from_millis(500));
    let alice = chat.tmux.capture("alice");
    if alice.contains("[read]") {
        chat.fail("alice's message shows as read before bob viewed it");
    }

    // Bob selects alice: viewing the conversation reads it.
    chat.tmux.keys("bob", &["Down"]);
    chat.wait_for("bob", "#1 alice: hello bob, it's alice", STEP);
    chat.wait("bob", "no unread count", STEP, |s| {
        line_with(s, "● alice").is_some_and(|l| !l.contains("(1)"))
    });
    chat.wait("alice", "its message, read", STEP, |s| {
        line_with(s, "#1 alice: hello bob, it's alice")
            .is_some_and(|l| l.contains("✓✓") && l.contains("[read]"))
    });

    // Bob answers; alice has bob's conversation on screen, so she reads it at once.
    chat.tmux.type_text("bob", "hi alice");
    chat.wait_for("bob", "hi alice", STEP);
    chat.tmux.keys("bob", &["Enter"]);
    chat.wait_for("alice", "#1 bob: hi alice", STEP);
    chat.wait("bob", "its answer, read", STEP, |s| {
        line_with(s, "#1 bob: hi alice").is_some_and(|l| l.contains("[read]"))
    });

    // Esc and Ctrl-C quit, giving the terminal back.
    chat.tmux.keys("alice", &["Escape"]);
    chat.tmux.keys("bob", &["C-c"]);
    for user in ["alice", "bob"] {
        let screen = chat.wait(user, "the client's exit", STEP, |s| {
            s.contains("[telegraph exited with")
        });
        if !screen.contains("[telegraph exited with 0]") {
            chat.fail(&format!("{user}'s client did not exit cleanly"));
        }
        if screen.contains("Users") {
            chat.fail(&format!(
                "{user}'s terminal still shows the client after it exited"
            ));
        }
    }
    drop(chat);
    drop(managers);
}
