//! Dispotify nodes as real `dispotify node` processes on 127.0.0.1 (SIGKILLed and partitioned
//! for real), test audio made by the tests, and a client for their catalogs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dispotify::slice::dispotify::{CatalogPrx, Overrides, Song};
use floe::Communicator;
use floe_test_support::faultnet::Mesh;
use floe_test_support::{ChildGuard, first_line};

pub const FAST: &[(&str, &str)] = &[
    ("Dispotify.Raft.HeartbeatInterval", "50"),
    ("Dispotify.Raft.ElectionTimeoutMin", "300"),
    ("Dispotify.Raft.ElectionTimeoutMax", "600"),
    ("Dispotify.Raft.Backoff", "100"),
    ("Dispotify.Raft.ConnectTimeout", "300"),
    ("Dispotify.Raft.RequestTimeout", "3000"),
    ("Dispotify.OpenUploads", "1"),
    ("Dispotify.HealthInterval", "200"),
    ("Dispotify.GracePeriod", "2000"),
    ("Dispotify.RepairInterval", "300"),
    ("Dispotify.StagingLifetime", "1500"),
    ("Ice.Default.Timeout", "1000"),
];

pub struct Nodes {
    pub tmp: tempfile::TempDir,
    pub ports: BTreeMap<u64, u16>,
    pub procs: BTreeMap<u64, Option<ChildGuard>>,
    pub mesh: Option<Mesh>,
    pub extra: Vec<(String, String)>,
    pub communicator: Communicator,
    /// Nodes that are not initial members: they join through node 1.
    pub joiners: Vec<u64>,
}

impl Nodes {
    pub fn start(n: u64, mesh: bool, extra: &[(&str, &str)]) -> Nodes {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let ports: BTreeMap<u64, u16> = (1..=n)
            .zip(floe_test_support::free_ports(n as usize))
            .collect();
        let mesh =
            mesh.then(|| Mesh::new(&ports.iter().map(|(i, p)| (*i, *p)).collect::<Vec<_>>()));
        let props = floe::Properties::new();
        props.set_property("Ice.Default.Timeout", "2000");
        let mut nodes = Nodes {
            tmp,
            ports,
            procs: BTreeMap::new(),
            mesh,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            communicator: Communicator::with_properties(props).expect("communicator"),
            joiners: Vec::new(),
        };
        for id in 1..=n {
            nodes.start_node(id);
        }
        nodes
    }

    pub fn dir(&self, id: u64) -> PathBuf {
        self.tmp.path().join(format!("node-{id}"))
    }

    pub fn log(&self, id: u64) -> PathBuf {
        self.tmp.path().join(format!("node-{id}.log"))
    }

    pub fn logs(&self) -> String {
        self.ports
            .keys()
            .map(|id| {
                let t = std::fs::read_to_string(self.log(*id)).unwrap_or_default();
                let l: Vec<&str> = t.lines().collect();
                format!(
                    "--- node {id}\n{}",
                    l[l.len().saturating_sub(25)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn start_node(&mut self, id: u64) {
        let mut args = vec![
            "node".to_string(),
            format!("--Dispotify.Raft.NodeId={id}"),
            format!(
                "--Dispotify.Raft.Endpoints=tcp -h 127.0.0.1 -p {}",
                self.ports[&id]
            ),
            format!("--Dispotify.DataDir={}", self.dir(id).display()),
        ];
        if self.joiners.contains(&id) {
            args.push(format!(
                "--Dispotify.Raft.Join=raft:tcp -h 127.0.0.1 -p {}",
                self.ports[&1]
            ));
        }
        for (other, port) in &self.ports {
            if !self.joiners.contains(other) {
                args.push(format!(
                    "--Dispotify.Raft.Peer.{other}=tcp -h 127.0.0.1 -p {port}"
                ));
            }
            if let Some(mesh) = &self.mesh
                && *other != id
            {
                args.push(format!(
                    "--Dispotify.Raft.Route.{other}=tcp -h 127.0.0.1 -p {}",
                    mesh.port(id, *other)
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
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(id))
            .expect("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dispotify"))
            .args(&args)
            .env("RUST_LOG", "info,openraft=error")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start dispotify");
        let line = first_line(&mut child, Duration::from_secs(20));
        assert!(
            line.is_some_and(|l| l.starts_with("catalog")),
            "node {id} did not start:\n{}",
            self.logs()
        );
        self.procs.insert(id, Some(ChildGuard::new(child)));
    }

    /// Starts node `id`, not an initial member: it joins through node 1.
    pub fn join_node(&mut self, id: u64) {
        self.ports.insert(id, floe_test_support::free_port());
        self.joiners.push(id);
        self.start_node(id);
    }

    pub fn kill(&mut self, id: u64) {
        if let Some(Some(mut p)) = self.procs.insert(id, None) {
            p.stop();
        }
    }

    pub fn all(&self) -> Vec<u64> {
        self.ports.keys().copied().collect()
    }

    pub fn catalog(&self, id: u64) -> CatalogPrx {
        let prx = self
            .communicator
            .string_to_proxy(&format!("catalog:tcp -h 127.0.0.1 -p {}", self.ports[&id]))
            .unwrap()
            .unwrap();
        CatalogPrx::unchecked_cast(prx.ice_invocation_timeout(20_000))
    }

    /// The replicas node `id` holds (its verified files on disk).
    pub fn held(&self, id: u64) -> Vec<String> {
        let files = self.dir(id).join("files");
        let mut out: Vec<String> = std::fs::read_dir(&files)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 64 && files.join(format!("{n}.sums")).exists())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Which nodes hold `song`.
    pub fn holders(&self, song: &str) -> Vec<u64> {
        self.all()
            .into_iter()
            .filter(|id| self.held(*id).iter().any(|h| h == song))
            .collect()
    }

    /// Waits until every node of `among` agrees on a leader among them.
    pub async fn wait_leader(&self, among: &[u64], limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            let mut leaders = Vec::new();
            for id in among {
                if let Ok(s) = self.catalog(*id).status().await {
                    leaders.push(s.leader);
                }
            }
            if leaders.len() == among.len()
                && let Some(l) = leaders.first().copied()
                && l >= 0
                && among.contains(&(l as u64))
                && leaders.iter().all(|x| *x == l)
            {
                return l as u64;
            }
            assert!(
                Instant::now() < deadline,
                "no leader among {among:?}: {leaders:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Makes a test song (a tagged WAV) and returns its path, bytes and id.
pub fn song_file(
    dir: &std::path::Path,
    name: &str,
    seconds: f32,
    frequency: f32,
    title: &str,
    artist: &str,
    album: &str,
) -> (PathBuf, Vec<u8>, String) {
    let path = dir.join(name);
    dispotify::tags::write_test_wav(&path, seconds, 8000, frequency, title, artist, album, 1)
        .expect("write test audio");
    let bytes = std::fs::read(&path).unwrap();
    let id = dispotify::node::content_id(&bytes);
    (path, bytes, id)
}

pub async fn upload(catalog: &CatalogPrx, path: &std::path::Path) -> Result<Song, String> {
    dispotify::client::upload_file(catalog, "", path, Overrides::default()).await
}

pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn read_all(catalog: &CatalogPrx, id: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    dispotify::client::download(catalog, id, &mut out).await?;
    Ok(out)
}
