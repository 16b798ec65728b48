//! Telegraph deployments for the tests: a broker and identity managers as real `telegraph`
//! processes on 127.0.0.1 (SIGKILLed and partitioned for real), clients in the test process
//! (real Floe peers on their own ports).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floe::{Communicator, Properties};
use floe_raft::slice::floe_raft::NodePrx;
use floe_test_support::faultnet::Mesh;
use floe_test_support::{ChildGuard, first_line, free_port};
use telegraph::client::{Client, ClientConfig, Event};
use telegraph::slice::telegraph::ManagerPrx;

pub const FAST_RAFT: &[(&str, &str)] = &[
    ("Telegraph.Raft.HeartbeatInterval", "50"),
    ("Telegraph.Raft.ElectionTimeoutMin", "300"),
    ("Telegraph.Raft.ElectionTimeoutMax", "600"),
    ("Telegraph.Raft.Backoff", "100"),
    ("Telegraph.Raft.ConnectTimeout", "300"),
    ("Telegraph.Raft.RequestTimeout", "3000"),
    ("Telegraph.TickInterval", "200"),
    ("Telegraph.FlushInterval", "100"),
    ("Telegraph.OfflineAfter", "1500"),
];

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_telegraph")
}

pub struct Deployment {
    pub tmp: tempfile::TempDir,
    pub broker: ChildGuard,
    pub topic_manager: String,
    pub ports: BTreeMap<u64, u16>,
    /// Each manager's UDP discovery port.
    pub discovery: BTreeMap<u64, u16>,
    pub managers: BTreeMap<u64, Option<ChildGuard>>,
    pub mesh: Option<Mesh>,
    pub communicator: Communicator,
}

impl Deployment {
    /// A broker and `n` managers (ids 1..=n), all initial members; with `mesh`, managers reach
    /// each other through fault-injecting links.
    pub fn start(n: u64, mesh: bool) -> Deployment {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let broker_port = free_port();
        let mut child = Command::new(exe())
            .arg("broker")
            .arg(format!(
                "--IceStorm.TopicManager.Endpoints=tcp -h 127.0.0.1 -p {broker_port}"
            ))
            .arg("--IceStorm.Publish.Endpoints=tcp -h 127.0.0.1 -p 0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the broker");
        let topic_manager =
            first_line(&mut child, Duration::from_secs(20)).expect("the broker's topic manager");
        let broker = ChildGuard::new(child);
        let ports: BTreeMap<u64, u16> = (1..=n)
            .zip(floe_test_support::free_ports(n as usize))
            .collect();
        let mesh =
            mesh.then(|| Mesh::new(&ports.iter().map(|(id, p)| (*id, *p)).collect::<Vec<_>>()));
        let properties = Properties::new();
        properties.set_property("Ice.Default.Timeout", "1000");
        let discovery = (1..=n).map(|id| (id, free_udp_port())).collect();
        let mut d = Deployment {
            tmp,
            broker,
            topic_manager,
            ports,
            discovery,
            managers: BTreeMap::new(),
            mesh,
            communicator: Communicator::with_properties(properties).expect("communicator"),
        };
        for id in 1..=n {
            d.start_manager(id);
        }
        d
    }

    pub fn log(&self, id: u64) -> PathBuf {
        self.tmp.path().join(format!("manager-{id}.log"))
    }

    pub fn logs(&self) -> String {
        self.ports
            .keys()
            .map(|id| {
                let text = std::fs::read_to_string(self.log(*id)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "--- manager {id}\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn start_manager(&mut self, id: u64) {
        let mut args = vec![
            "manager".to_string(),
            format!("--Telegraph.Raft.NodeId={id}"),
            format!(
                "--Telegraph.Raft.Endpoints=tcp -h 127.0.0.1 -p {}",
                self.ports[&id]
            ),
            format!(
                "--Telegraph.Raft.DataDir={}",
                self.tmp.path().join(format!("manager-{id}")).display()
            ),
            format!("--IceStorm.TopicManager.Proxy={}", self.topic_manager),
            format!(
                "--Telegraph.Discovery.Endpoints=udp -h 127.0.0.1 -p {}",
                self.discovery[&id]
            ),
        ];
        for (other, port) in &self.ports {
            args.push(format!(
                "--Telegraph.Raft.Peer.{other}=tcp -h 127.0.0.1 -p {port}"
            ));
            if let Some(mesh) = &self.mesh
                && *other != id
            {
                args.push(format!(
                    "--Telegraph.Raft.Route.{other}=tcp -h 127.0.0.1 -p {}",
                    mesh.port(id, *other)
                ));
            }
        }
        args.extend(FAST_RAFT.iter().map(|(k, v)| format!("--{k}={v}")));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(id))
            .expect("log file");
        let mut child = Command::new(exe())
            .args(&args)
            .env("RUST_LOG", "info,openraft=error")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start a manager");
        let line = first_line(&mut child, Duration::from_secs(20));
        assert!(
            line.is_some_and(|l| l.starts_with("manager")),
            "manager {id} did not start:\n{}",
            self.logs()
        );
        self.managers.insert(id, Some(ChildGuard::new(child)));
    }

    pub fn kill(&mut self, id: u64) {
        if let Some(Some(mut p)) = self.managers.insert(id, None) {
            p.stop();
        }
    }

    /// A proxy with the endpoints of `ids`.
    pub fn managers_proxy(&self, ids: &[u64]) -> String {
        let endpoints: Vec<String> = ids
            .iter()
            .map(|id| format!("tcp -h 127.0.0.1 -p {}", self.ports[id]))
            .collect();
        format!("manager:{}", endpoints.join(":"))
    }

    pub fn all(&self) -> Vec<u64> {
        self.ports.keys().copied().collect()
    }

    pub fn manager(&self, ids: &[u64]) -> ManagerPrx {
        let prx = self
            .communicator
            .string_to_proxy(&self.managers_proxy(ids))
            .unwrap()
            .unwrap();
        ManagerPrx::unchecked_cast(prx.ice_invocation_timeout(8000))
    }

    /// The leader as the managers in `among` agree on it.
    pub async fn wait_leader(&self, among: &[u64], limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            let mut seen = Vec::new();
            for id in among {
                let prx = self
                    .communicator
                    .string_to_proxy(&format!("raft:tcp -h 127.0.0.1 -p {}", self.ports[id]))
                    .unwrap()
                    .unwrap()
                    .ice_invocation_timeout(1000);
                if let Ok(s) = NodePrx::unchecked_cast(prx).status().await {
                    seen.push((s.leader, s.role == "Leader", s.id));
                }
            }
            if seen.len() == among.len()
                && let Some(&(l, _, _)) = seen.first()
                && l >= 0
                && among.contains(&(l as u64))
                && seen.iter().all(|(x, _, _)| *x == l)
                && seen.iter().any(|(_, is, id)| *is && *id == l)
            {
                return l as u64;
            }
            assert!(
                Instant::now() < deadline,
                "no leader among {among:?}: {seen:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client of user `name` (data in the deployment's directory), with fast retries.
    pub fn client_config(&self, name: &str, extra: &[(&str, String)]) -> ClientConfig {
        let p = Properties::new();
        p.set_property("Telegraph.Managers", &self.managers_proxy(&self.all()));
        p.set_property(
            "Telegraph.Client.DataDir",
            &self.client_dir(name).display().to_string(),
        );
        p.set_property("IceStorm.TopicManager.Proxy", &self.topic_manager);
        p.set_property("Telegraph.HeartbeatInterval", "300");
        p.set_property("Telegraph.RetryMin", "100");
        p.set_property("Telegraph.RetryMax", "1000");
        p.set_property("Ice.Default.Timeout", "1000");
        for (k, v) in extra {
            p.set_property(k, v);
        }
        ClientConfig::from_properties(p, name, &format!("{name}-password")).expect("client config")
    }

    pub fn client_dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(format!("client-{name}"))
    }

    pub async fn client(&self, name: &str, register: bool) -> Client {
        Client::start(self.client_config(name, &[]), register)
            .await
            .unwrap_or_else(|e| panic!("client {name}: {e}\n{}", self.logs()))
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("bind udp")
        .local_addr()
        .expect("address")
        .port()
}

/// Waits for an event matching `f`, at most `limit`.
pub async fn wait_event(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    limit: Duration,
    mut f: impl FnMut(&Event) -> bool,
) -> Event {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(e)) if f(&e) => return e,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream ended: {e}"),
            Err(_) => panic!("no matching event within {limit:?}"),
        }
    }
}

/// Polls `f` until it holds, at most `limit`.
pub async fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether any file under `dir` contains `needle`.
pub fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            if dir_contains(&path, needle) {
                return true;
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            return true;
        }
    }
    false
}
