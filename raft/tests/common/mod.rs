//! A cluster of `floe-raft-kv` processes on 127.0.0.1 for the fault tests: nodes started,
//! SIGKILLed, restarted (with their disk or an empty one) and partitioned through a mesh of
//! fault-injecting links; a Floe client for their stores and Raft objects.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floe::Communicator;
use floe_raft::kv::slice::raft_kv::{StorePrx, store};
use floe_raft::slice::floe_raft::{NodePrx, NodeStatus};
use floe_test_support::faultnet::Mesh;
use floe_test_support::{ChildGuard, first_line, free_port};

/// Timings that make elections take a few hundred milliseconds.
pub const FAST: &[(&str, &str)] = &[
    ("Raft.HeartbeatInterval", "50"),
    ("Raft.ElectionTimeoutMin", "300"),
    ("Raft.ElectionTimeoutMax", "600"),
    ("Raft.Backoff", "100"),
    ("Raft.ConnectTimeout", "300"),
    ("Raft.RequestTimeout", "3000"),
];

pub struct Node {
    pub id: u64,
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub process: Option<ChildGuard>,
}

pub struct Cluster {
    pub tmp: tempfile::TempDir,
    pub nodes: BTreeMap<u64, Node>,
    pub mesh: Option<Mesh>,
    pub extra: Vec<(String, String)>,
    pub communicator: Communicator,
    /// Nodes that are not initial members: they join through node 1.
    pub joiners: std::collections::BTreeSet<u64>,
}

impl Cluster {
    /// `n` nodes with ids 1..=n, all initial members; with `mesh`, every node reaches the
    /// others through the fault-injecting links.
    pub fn new(n: u64, mesh: bool, extra: &[(&str, &str)]) -> Cluster {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let mut nodes = BTreeMap::new();
        let ports = floe_test_support::free_ports(n as usize);
        for id in 1..=n {
            let dir = tmp.path().join(format!("node-{id}"));
            let log = tmp.path().join(format!("node-{id}.log"));
            nodes.insert(
                id,
                Node {
                    id,
                    port: ports[id as usize - 1],
                    dir,
                    log,
                    process: None,
                },
            );
        }
        let mesh =
            mesh.then(|| Mesh::new(&nodes.values().map(|n| (n.id, n.port)).collect::<Vec<_>>()));
        let properties = floe::Properties::new();
        properties.set_property("Ice.Default.Timeout", "1000");
        Cluster {
            tmp,
            nodes,
            mesh,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            communicator: Communicator::with_properties(properties).expect("client communicator"),
            joiners: Default::default(),
        }
    }

    /// Adds node `id`, not an initial member, which joins the cluster through node 1.
    pub fn add_joiner(&mut self, id: u64) {
        let dir = self.tmp.path().join(format!("node-{id}"));
        let log = self.tmp.path().join(format!("node-{id}.log"));
        self.nodes.insert(
            id,
            Node {
                id,
                port: free_port(),
                dir,
                log,
                process: None,
            },
        );
        self.joiners.insert(id);
    }

    fn args(&self, id: u64) -> Vec<String> {
        let node = &self.nodes[&id];
        let mut args = vec![
            "node".to_string(),
            format!("--Raft.NodeId={id}"),
            format!("--Raft.Endpoints=tcp -h 127.0.0.1 -p {}", node.port),
            format!("--Raft.DataDir={}", node.dir.display()),
        ];
        if self.joiners.contains(&id) {
            args.push(format!(
                "--Raft.Join=raft:tcp -h 127.0.0.1 -p {}",
                self.nodes[&1].port
            ));
        }
        for other in self.nodes.values() {
            if !self.joiners.contains(&other.id) {
                args.push(format!(
                    "--Raft.Peer.{}=tcp -h 127.0.0.1 -p {}",
                    other.id, other.port
                ));
            }
            if let Some(mesh) = &self.mesh
                && other.id != id
            {
                args.push(format!(
                    "--Raft.Route.{}=tcp -h 127.0.0.1 -p {}",
                    other.id,
                    mesh.port(id, other.id)
                ));
            }
        }
        for (k, v) in FAST
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(self.extra.iter().cloned())
        {
            args.push(format!("--{k}={v}"));
        }
        args
    }

    /// Starts (or restarts) node `id` and waits for its ready line.
    pub fn start(&mut self, id: u64) {
        let args = self.args(id);
        let node = self.nodes.get_mut(&id).expect("known node");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("node log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_floe-raft-kv"))
            .args(&args)
            .env("RUST_LOG", "info,openraft=error")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start floe-raft-kv");
        let line = first_line(&mut child, Duration::from_secs(20));
        let mut guard = ChildGuard::new(child);
        match line {
            Some(l) if l.starts_with("ready ") => {}
            other => {
                guard.stop();
                panic!(
                    "node {id} did not start ({other:?}); its log:\n{}",
                    self.log_tail(id)
                );
            }
        }
        self.nodes.get_mut(&id).unwrap().process = Some(guard);
    }

    pub fn start_all(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.start(id);
        }
    }

    /// SIGKILLs node `id`.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut p) = self.nodes.get_mut(&id).unwrap().process.take() {
            p.stop();
        }
    }

    /// Removes node `id`'s data directory (its process must be stopped).
    pub fn wipe(&mut self, id: u64) {
        let dir = &self.nodes[&id].dir;
        if dir.exists() {
            std::fs::remove_dir_all(dir).expect("remove the node's data");
        }
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.process.is_some())
            .map(|n| n.id)
            .collect()
    }

    pub fn log_tail(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.nodes[&id].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn logs(&self) -> String {
        self.nodes
            .keys()
            .map(|id| format!("--- node {id}\n{}", self.log_tail(*id)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn proxy(&self, id: u64, identity: &str, timeout_ms: i32) -> floe::ObjectPrx {
        self.communicator
            .string_to_proxy(&format!(
                "{identity}:tcp -h 127.0.0.1 -p {}",
                self.nodes[&id].port
            ))
            .expect("proxy")
            .expect("not null")
            .ice_invocation_timeout(timeout_ms)
    }

    pub fn store(&self, id: u64) -> StorePrx {
        StorePrx::unchecked_cast(self.proxy(id, "kv", 5000))
    }

    pub fn store_with_timeout(&self, id: u64, timeout_ms: i32) -> StorePrx {
        StorePrx::unchecked_cast(self.proxy(id, "kv", timeout_ms))
    }

    pub fn raft(&self, id: u64) -> NodePrx {
        NodePrx::unchecked_cast(self.proxy(id, "raft", 2000))
    }

    pub async fn status(&self, id: u64) -> Option<NodeStatus> {
        self.raft(id).status().await.ok()
    }

    /// Waits until the running nodes in `among` agree on one leader among them; returns it.
    pub async fn wait_leader(&self, among: &[u64], limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            let mut leaders = Vec::new();
            for id in among {
                if let Some(s) = self.status(*id).await {
                    leaders.push((s.leader, s.role == "Leader", s.id));
                }
            }
            if let Some(&(l, _, _)) = leaders.first()
                && l >= 0
                && among.contains(&(l as u64))
                && leaders.len() == among.len()
                && leaders.iter().all(|(x, _, _)| *x == l)
                && leaders.iter().any(|(_, is, id)| *is && *id == l)
            {
                return l as u64;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?} within {limit:?}: {leaders:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: i64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.status(id).await
                && s.applied_index >= index
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not apply index {index} within {limit:?}\n{}",
                self.log_tail(id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A client of the stores with its own id and serials, as a service's client would be.
pub struct Client {
    pub id: i64,
    pub serial: i64,
}

impl Client {
    pub fn new() -> Client {
        Client {
            id: (rand::random::<u64>() >> 1) as i64 | 1,
            serial: 0,
        }
    }

    /// A put that is retried with the same serial until it succeeds or `limit` passes (the
    /// store deduplicates, so the value is written once).
    pub async fn put(
        &mut self,
        cluster: &Cluster,
        nodes: &[u64],
        key: &str,
        value: &str,
        limit: Duration,
    ) -> Result<(), String> {
        self.serial += 1;
        let serial = self.serial;
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        let mut i = 0;
        while Instant::now() < deadline {
            let node = nodes[i % nodes.len()];
            i += 1;
            match cluster
                .store(node)
                .put(key, value, self.id, serial, serial)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("node {node}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(last)
    }
}

pub async fn get(
    cluster: &Cluster,
    node: u64,
    key: &str,
) -> Result<Option<String>, store::GetError> {
    let r = cluster.store(node).get(key, false).await?;
    Ok(r.return_value.then_some(r.value))
}
