//! A Dispotify node: its Raft node (the catalog), its replicas, the upload pipeline (staged on
//! disk, verified, pushed to the file's placement, acknowledged at a quorum of replicas, then
//! entered in the catalog), reads from a local or remote replica, and the background work:
//! health checks (the leader marks nodes down after the grace period and up again), repair and
//! rebalancing (every node makes sure it holds what the ring gives it and drops what it no
//! longer needs once the placement holds it), the scrub of replicas at rest and the collection
//! of leftovers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe::{ObjectPrx, Properties, Proxy};
use floe_raft::{Consistency, NodeAddr, RaftError, RaftNode};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::catalog::{Answer, Catalog, Command, SongRecord};
use crate::ring::Ring;
use crate::slice::dispotify::{self as api, StoragePrx};
use crate::storage::{CHUNK, Replicas, StorageError, collect_older, hash_file, hex, valid_id};

/// The property prefix of a node's Raft settings (and the name of its adapter).
pub const RAFT_PREFIX: &str = "Dispotify.Raft";
/// Identity of the public API object.
pub const CATALOG_IDENTITY: &str = "catalog";
/// Identity of the storage object.
pub const STORAGE_IDENTITY: &str = "storage";

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No such song or upload.
    #[error("{0}")]
    NotFound(String),
    /// A request breaking a rule.
    #[error("{0}")]
    InvalidArgument(String),
    /// Bytes that do not hash to what they should.
    #[error("{0}")]
    ChecksumMismatch(String),
    /// No (valid) session.
    #[error("{0}")]
    Unauthorized(String),
    /// The cluster cannot do it now.
    #[error("{0}")]
    Unavailable(String),
}

impl From<StorageError> for NodeError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(s) => NodeError::NotFound(format!("no replica of {s}")),
            StorageError::Checksum(s) => NodeError::ChecksumMismatch(s),
            StorageError::Invalid(s) => NodeError::InvalidArgument(s),
            StorageError::Io(e) => NodeError::Unavailable(format!("disk: {e}")),
        }
    }
}

impl From<RaftError> for NodeError {
    fn from(e: RaftError) -> Self {
        NodeError::Unavailable(format!("catalog: {e}"))
    }
}

/// A node's settings (`Dispotify.*` properties).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// All properties.
    pub properties: Properties,
    /// Where replicas, uploads and the Raft data live (`Dispotify.DataDir`).
    pub data_dir: PathBuf,
    /// Replicas per file (`Dispotify.Replication`).
    pub replication: usize,
    /// Ring points per node (`Dispotify.VirtualNodes`).
    pub vnodes: usize,
    /// Largest upload (`Dispotify.MaxUploadSize`, bytes).
    pub max_upload: u64,
    /// Between health checks (`Dispotify.HealthInterval`, ms).
    pub health_interval: Duration,
    /// How long a node may not answer before its files are re-replicated
    /// (`Dispotify.GracePeriod`, ms).
    pub grace: Duration,
    /// Between repair passes (`Dispotify.RepairInterval`, ms).
    pub repair_interval: Duration,
    /// Between scrubs of the replicas at rest (`Dispotify.ScrubInterval`, ms).
    pub scrub_interval: Duration,
    /// Age after which abandoned uploads and staged replicas are collected
    /// (`Dispotify.StagingLifetime`, ms).
    pub staging_lifetime: Duration,
    /// The users manager (`Dispotify.UsersManager.Proxy`): uploads need one of its sessions.
    pub users_manager: Option<String>,
    /// Uploads without a session (`Dispotify.OpenUploads=1`; for demos and tests).
    pub open_uploads: bool,
    /// Searching and listening need a session (`Dispotify.PrivateReads=1`).
    pub private_reads: bool,
    /// The HTTP gateway's address (`Dispotify.Http`, e.g. `127.0.0.1:8080`; unset: none).
    pub http: Option<String>,
}

fn millis(p: &Properties, key: &str, default: u64) -> Result<Duration, String> {
    let t = p.get_property(key);
    if t.trim().is_empty() {
        return Ok(Duration::from_millis(default));
    }
    t.trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{key}={t}: expected a positive number of milliseconds"))
}

impl NodeConfig {
    /// Reads the settings.
    pub fn from_properties(properties: Properties) -> Result<NodeConfig, String> {
        let number = |key: &str, default: u64| -> Result<u64, String> {
            let t = properties.get_property(key);
            if t.trim().is_empty() {
                return Ok(default);
            }
            t.trim()
                .parse::<u64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{key}={t}: expected a positive whole number"))
        };
        Ok(NodeConfig {
            data_dir: PathBuf::from(
                properties.get_property_with_default("Dispotify.DataDir", "dispotify-data"),
            ),
            replication: number("Dispotify.Replication", 3)? as usize,
            vnodes: number("Dispotify.VirtualNodes", 64)? as usize,
            max_upload: number("Dispotify.MaxUploadSize", 512 * 1024 * 1024)?,
            health_interval: millis(&properties, "Dispotify.HealthInterval", 2_000)?,
            grace: millis(&properties, "Dispotify.GracePeriod", 60_000)?,
            repair_interval: millis(&properties, "Dispotify.RepairInterval", 10_000)?,
            scrub_interval: millis(&properties, "Dispotify.ScrubInterval", 3_600_000)?,
            staging_lifetime: millis(&properties, "Dispotify.StagingLifetime", 3_600_000)?,
            users_manager: Some(properties.get_property("Dispotify.UsersManager.Proxy"))
                .filter(|s| !s.trim().is_empty()),
            open_uploads: properties.get_property("Dispotify.OpenUploads") == "1",
            private_reads: properties.get_property("Dispotify.PrivateReads") == "1",
            http: Some(properties.get_property("Dispotify.Http")).filter(|s| !s.trim().is_empty()),
            properties,
        })
    }
}

/// An upload being received.
#[derive(Debug, Clone)]
struct Upload {
    name: String,
    size: u64,
    sha256: String,
    uploader: String,
}

pub(crate) struct Inner {
    pub(crate) config: NodeConfig,
    pub(crate) raft: RaftNode<Catalog>,
    pub(crate) replicas: Replicas,
    uploads_dir: PathBuf,
    uploads: Mutex<HashMap<String, Upload>>,
    /// When each node last answered a health check.
    health: Mutex<BTreeMap<u64, Instant>>,
    repair_now: Notify,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    users: Option<usersmanager::slice::users_manager::ManagerPrx>,
    started: Instant,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.raft.id())
            .finish()
    }
}

/// The file's content id of `data` (SHA-256, hex).
pub fn content_id(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn clean_text(s: &str, max: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).collect();
    if out.len() > max {
        let mut cut = max;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

impl Node {
    /// Starts a node: its Raft node (`Dispotify.Raft.*`, data in `<DataDir>/raft` unless
    /// `Dispotify.Raft.DataDir` is set), servants and background tasks.
    pub async fn start(config: NodeConfig) -> Result<Node, String> {
        let props = config.properties.deep_clone();
        if props
            .get_property(&format!("{RAFT_PREFIX}.DataDir"))
            .is_empty()
        {
            props.set_property(
                &format!("{RAFT_PREFIX}.DataDir"),
                &config.data_dir.join("raft").display().to_string(),
            );
        }
        let raft_config =
            floe_raft::Config::from_properties(props, RAFT_PREFIX).map_err(|e| e.to_string())?;
        let raft = RaftNode::start(raft_config, Catalog::default())
            .await
            .map_err(|e| e.to_string())?;
        match Self::serve(raft.clone(), config).await {
            Ok(n) => Ok(n),
            Err(e) => {
                raft.shutdown().await;
                Err(e)
            }
        }
    }

    /// Serves a node on a started Raft node.
    pub async fn serve(raft: RaftNode<Catalog>, config: NodeConfig) -> Result<Node, String> {
        let replicas = Replicas::open(&config.data_dir, config.max_upload)
            .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
        let uploads_dir = config.data_dir.join("uploads");
        std::fs::create_dir_all(&uploads_dir)
            .map_err(|e| format!("{}: {e}", uploads_dir.display()))?;
        let users = match &config.users_manager {
            Some(p) => {
                let prx = raft
                    .communicator()
                    .string_to_proxy(p)
                    .map_err(|e| format!("Dispotify.UsersManager.Proxy: {e}"))?
                    .ok_or("Dispotify.UsersManager.Proxy is a null proxy")?;
                Some(
                    usersmanager::slice::users_manager::ManagerPrx::unchecked_cast(
                        prx.ice_invocation_timeout(10_000),
                    ),
                )
            }
            None => None,
        };
        if users.is_none() && !config.open_uploads {
            return Err("Dispotify.UsersManager.Proxy is not set: uploads need the users manager (or Dispotify.OpenUploads=1)".into());
        }
        let node = Node {
            inner: Arc::new(Inner {
                config,
                raft: raft.clone(),
                replicas,
                uploads_dir,
                uploads: Mutex::new(HashMap::new()),
                health: Mutex::new(BTreeMap::new()),
                repair_now: Notify::new(),
                tasks: Mutex::new(Vec::new()),
                users,
                started: Instant::now(),
            }),
        };
        crate::servants::add_servants(&node).map_err(|e| e.to_string())?;
        for task in [Task::Health, Task::Repair, Task::Scrub] {
            let n = node.clone();
            node.inner
                .tasks
                .lock()
                .push(tokio::spawn(async move { n.background(task).await }));
        }
        info!(target: "dispotify::node", node = raft.id(), "serving");
        Ok(node)
    }

    /// This node's Raft node.
    pub fn raft(&self) -> &RaftNode<Catalog> {
        &self.inner.raft
    }

    /// The node's settings.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The proxy of this node's `catalog` object.
    pub fn catalog_proxy(&self) -> ObjectPrx {
        self.inner
            .raft
            .adapter()
            .create_proxy(floe::Identity::new(CATALOG_IDENTITY, ""))
    }

    /// The replica store.
    pub fn replicas(&self) -> &Replicas {
        &self.inner.replicas
    }

    /// Stops the node.
    pub async fn shutdown(&self) {
        for t in self.inner.tasks.lock().drain(..) {
            t.abort();
        }
        self.inner.raft.shutdown().await;
    }

    /// Checks a users manager session (a Session proxy, as a string); returns the user's name.
    pub async fn authorize(&self, session: &str) -> Result<String, NodeError> {
        use usersmanager::slice::users_manager::SessionPrx;
        let Some(users) = &self.inner.users else {
            return if self.inner.config.open_uploads {
                Ok("anonymous".into())
            } else {
                Err(NodeError::Unauthorized("no users manager".into()))
            };
        };
        if session.trim().is_empty() {
            return if self.inner.config.open_uploads {
                Ok("anonymous".into())
            } else {
                Err(NodeError::Unauthorized("log in first".into()))
            };
        }
        let prx = self
            .inner
            .raft
            .communicator()
            .string_to_proxy(session)
            .ok()
            .flatten()
            .ok_or_else(|| NodeError::Unauthorized("not a session proxy".into()))?;
        let session = SessionPrx::unchecked_cast(prx.ice_invocation_timeout(5_000));
        match users.verify_session(Some(session.clone())).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(NodeError::Unauthorized(
                    "the users manager does not know this session".into(),
                ));
            }
            Err(e) => return Err(NodeError::Unavailable(format!("users manager: {e}"))),
        }
        // A verified session belongs to an instance of the users manager: asking it is safe.
        match session.get_user().await {
            Ok(user) => Ok(clean_text(&user, 256)),
            Err(e) => Err(NodeError::Unauthorized(format!(
                "the session is not usable: {e:?}"
            ))),
        }
    }

    /// Logs in to the users manager; returns the session proxy (as a string).
    pub async fn login(&self, user: &str, password: &str) -> Result<String, NodeError> {
        let Some(users) = &self.inner.users else {
            return Err(NodeError::Unavailable("no users manager".into()));
        };
        match users.login(user, password).await {
            Ok(Some(s)) => Ok(s.as_object().to_string()),
            Ok(None) => Err(NodeError::Unauthorized("no session".into())),
            Err(usersmanager::slice::users_manager::manager::LoginError::Unauthorized(_)) => Err(
                NodeError::Unauthorized("wrong user name or password".into()),
            ),
            Err(e) => Err(NodeError::Unavailable(format!("users manager: {e:?}"))),
        }
    }

    /// The live storage nodes (members not marked down) and their addresses.
    fn live(&self) -> (Vec<u64>, BTreeMap<u64, NodeAddr>) {
        let (nodes, _) = self.inner.raft.members();
        let down = self.inner.raft.read_now(|c: &Catalog| c.down.clone());
        let live = nodes
            .keys()
            .copied()
            .filter(|id| !down.contains(id))
            .collect();
        (live, nodes)
    }

    /// Where file `id` belongs now.
    pub fn placement(&self, id: &str) -> Vec<u64> {
        let (live, _) = self.live();
        Ring::new(&live, self.inner.config.vnodes).place(id, self.inner.config.replication)
    }

    fn storage(&self, node: u64, addr: &NodeAddr, timeout_ms: i32) -> Option<StoragePrx> {
        let prx = self
            .inner
            .raft
            .communicator()
            .string_to_proxy(&format!("{STORAGE_IDENTITY}:{}", addr.endpoints))
            .ok()
            .flatten()?;
        let _ = node;
        Some(StoragePrx::unchecked_cast(
            prx.ice_invocation_timeout(timeout_ms),
        ))
    }

    // ----- uploads -----

    /// Starts or resumes an upload; returns its id and the bytes received.
    pub fn begin_upload(
        &self,
        uploader: &str,
        name: &str,
        size: i64,
        sha256: &str,
    ) -> Result<api::UploadState, NodeError> {
        if !valid_id(sha256) {
            return Err(NodeError::InvalidArgument(
                "sha256 must be 64 lowercase hex digits".into(),
            ));
        }
        if size <= 0 || size as u64 > self.inner.config.max_upload {
            return Err(NodeError::InvalidArgument(format!(
                "a file of {size} bytes (1 to {} accepted)",
                self.inner.config.max_upload
            )));
        }
        let name = clean_text(name, 255);
        let upload = hex(&Sha256::digest(
            format!("{name}\n{size}\n{sha256}").as_bytes(),
        ))[..32]
            .to_string();
        let path = self.inner.uploads_dir.join(format!("{upload}.part"));
        let received = std::fs::metadata(&path)
            .map(|m| m.len())
            .unwrap_or(0)
            .min(size as u64);
        if received == 0 {
            std::fs::File::create(&path).map_err(|e| NodeError::Unavailable(e.to_string()))?;
        }
        self.inner.uploads.lock().insert(
            upload.clone(),
            Upload {
                name,
                size: size as u64,
                sha256: sha256.to_string(),
                uploader: uploader.to_string(),
            },
        );
        Ok(api::UploadState {
            upload,
            received: received as i64,
            size,
        })
    }

    /// An upload in progress: what was declared, where its bytes are, how many arrived.
    fn upload_state(&self, upload: &str) -> Result<(Upload, PathBuf, u64), NodeError> {
        let missing = || NodeError::NotFound(format!("no upload {upload}"));
        let u = self
            .inner
            .uploads
            .lock()
            .get(upload)
            .cloned()
            .ok_or_else(missing)?;
        let path = self.inner.uploads_dir.join(format!("{upload}.part"));
        let received = std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|_| missing())?;
        Ok((u, path, received))
    }

    /// Adds a checked chunk to an upload.
    pub fn put_chunk(
        &self,
        upload: &str,
        offset: i64,
        data: &[u8],
        sha256: &str,
    ) -> Result<api::UploadState, NodeError> {
        let (u, path, received) = self.upload_state(upload)?;
        if offset < 0 || offset as u64 != received {
            return Err(NodeError::InvalidArgument(format!(
                "a chunk at {offset} where {received} was due"
            )));
        }
        if received + data.len() as u64 > u.size {
            return Err(NodeError::InvalidArgument(format!(
                "a chunk of {} bytes at {offset} passes the declared size {}",
                data.len(),
                u.size
            )));
        }
        if hex(&Sha256::digest(data)) != sha256 {
            return Err(NodeError::ChecksumMismatch(format!(
                "the chunk at {offset} does not match its SHA-256"
            )));
        }
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        f.write_all(data)
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        Ok(api::UploadState {
            upload: upload.to_string(),
            received: (received + data.len() as u64) as i64,
            size: u.size as i64,
        })
    }

    /// Completes an upload received through `put_chunk`.
    pub async fn finish_upload(
        &self,
        upload: &str,
        overrides: api::Overrides,
    ) -> Result<SongRecord, NodeError> {
        let (u, path, received) = self.upload_state(upload)?;
        if received != u.size {
            return Err(NodeError::InvalidArgument(format!(
                "{received} of {} bytes received",
                u.size
            )));
        }
        let song = self
            .store_file(
                &path,
                &u.name,
                u.size,
                Some(&u.sha256),
                &u.uploader,
                overrides,
            )
            .await?;
        self.inner.uploads.lock().remove(upload);
        Ok(song)
    }

    /// Receives a whole upload from a stream of bytes (the HTTP gateway's streamed body):
    /// written to disk as it comes, at most `Dispotify.MaxUploadSize`, then stored as
    /// `finish_upload` does.
    pub async fn upload_stream<S, E>(
        &self,
        uploader: &str,
        name: &str,
        mut body: S,
        overrides: api::Overrides,
    ) -> Result<SongRecord, NodeError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        let path = self
            .inner
            .uploads_dir
            .join(format!("stream-{:032x}.part", rand::random::<u128>()));
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        let mut size = 0u64;
        let result = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    NodeError::InvalidArgument(format!("the upload broke off: {e}"))
                })?;
                size += chunk.len() as u64;
                if size > self.inner.config.max_upload {
                    return Err(NodeError::InvalidArgument(format!(
                        "the file passes Dispotify.MaxUploadSize ({} bytes)",
                        self.inner.config.max_upload
                    )));
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| NodeError::Unavailable(e.to_string()))?;
            }
            file.flush()
                .await
                .map_err(|e| NodeError::Unavailable(e.to_string()))?;
            if size == 0 {
                return Err(NodeError::InvalidArgument("an empty file".into()));
            }
            self.store_file(&path, name, size, None, uploader, overrides)
                .await
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        result
    }

    /// Verifies a received file, reads its tags, puts it on a quorum of its replicas and in the
    /// catalog, and completes the other replicas in the background.
    async fn store_file(
        &self,
        path: &std::path::Path,
        name: &str,
        size: u64,
        declared: Option<&str>,
        uploader: &str,
        overrides: api::Overrides,
    ) -> Result<SongRecord, NodeError> {
        let (id, tags) = {
            let p = path.to_path_buf();
            tokio::task::spawn_blocking(move || (hash_file(&p), crate::tags::read_tags(&p)))
                .await
                .map_err(|e| NodeError::Unavailable(e.to_string()))?
        };
        let id = id.map_err(|e| NodeError::Unavailable(e.to_string()))?;
        if let Some(d) = declared
            && d != id
        {
            let _ = std::fs::remove_file(path);
            return Err(NodeError::ChecksumMismatch(format!(
                "the file hashes to {id}, not the declared {d}"
            )));
        }
        let tags = tags.map_err(|e| {
            NodeError::InvalidArgument(format!("not an audio file this service reads: {e}"))
        })?;
        let pick = |o: &str, t: &str, fallback: &str| -> String {
            let v = if !o.trim().is_empty() {
                o
            } else if !t.trim().is_empty() {
                t
            } else {
                fallback
            };
            clean_text(v, 512)
        };
        let song = SongRecord {
            id: id.clone(),
            name: clean_text(name, 255),
            title: pick(&overrides.title, &tags.title, name),
            artist: pick(&overrides.artist, &tags.artist, ""),
            album: pick(&overrides.album, &tags.album, ""),
            track: if overrides.track > 0 {
                overrides.track
            } else {
                tags.track
            },
            duration_ms: tags.duration_ms,
            size: size as i64,
            mime: tags.mime,
            uploaded: 0,
            uploader: clean_text(uploader, 256),
        };
        if let Some(existing) = self
            .inner
            .raft
            .read(Consistency::Linearizable, |c: &Catalog| {
                c.songs.get(&id).cloned()
            })
            .await?
        {
            return Ok(existing);
        }
        self.replicate(&id, path, size).await?;
        let bytes = serde_json::to_vec(&Command::AddSong(song))
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        let answer: Answer = serde_json::from_slice(&self.inner.raft.write(bytes).await?)
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        match answer {
            Answer::Added(s) => {
                info!(target: "dispotify::upload", id = %s.id, title = %s.title, "song added");
                Ok(s)
            }
            Answer::Existing(s) => Ok(s),
            other => Err(NodeError::Unavailable(format!(
                "catalog answered {other:?}"
            ))),
        }
    }

    /// Puts the file at `source` on its placement: returns once a quorum of (R+1)/2 replicas
    /// holds it verified; the others are completed in the background.
    async fn replicate(
        &self,
        id: &str,
        source: &std::path::Path,
        size: u64,
    ) -> Result<(), NodeError> {
        let (live, addrs) = self.live();
        let placement =
            Ring::new(&live, self.inner.config.vnodes).place(id, self.inner.config.replication);
        if placement.is_empty() {
            return Err(NodeError::Unavailable("no storage node is live".into()));
        }
        let quorum = self
            .inner
            .config
            .replication
            .div_ceil(2)
            .min(placement.len())
            .max(1);
        let me = self.inner.raft.id();
        // The local replica (if this node is in the placement) is made first; it is then the
        // source of the others, so the upload is read once more per remote replica, never held.
        let mut done = 0;
        let mut source = source.to_path_buf();
        if placement.contains(&me) {
            if !self.inner.replicas.has(id) {
                let staged = self.inner.replicas.scratch(id);
                let r = self.inner.replicas.clone();
                let (idc, from) = (id.to_string(), source.clone());
                tokio::task::spawn_blocking(move || -> Result<(), NodeError> {
                    std::fs::copy(&from, &staged)
                        .map_err(|e| NodeError::Unavailable(e.to_string()))?;
                    r.adopt(&idc, &staged).map_err(NodeError::from)
                })
                .await
                .map_err(|e| NodeError::Unavailable(e.to_string()))??;
            }
            source = self.inner.replicas.path(id);
            done += 1;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(placement.len());
        let mut pending = 0;
        for target in placement.iter().copied().filter(|n| *n != me) {
            let Some(addr) = addrs.get(&target).cloned() else {
                continue;
            };
            let (node, id, source, tx) = (self.clone(), id.to_string(), source.clone(), tx.clone());
            pending += 1;
            tokio::spawn(async move {
                let r = node.push_replica(target, &addr, &id, &source, size).await;
                if let Err(e) = &r {
                    warn!(target: "dispotify::replication", node = target, id = %id, error = %e, "replica not stored");
                }
                let _ = tx.send(r.is_ok()).await;
            });
        }
        drop(tx);
        while done < quorum && pending > 0 {
            match rx.recv().await {
                Some(true) => done += 1,
                Some(false) => {}
                None => break,
            }
            pending -= 1;
        }
        if done >= quorum {
            Ok(())
        } else {
            Err(NodeError::Unavailable(format!(
                "{done} of the {quorum} replicas needed were stored"
            )))
        }
    }

    /// Sends the file at `source` to `target`'s store, chunk by chunk, resuming what it has.
    async fn push_replica(
        &self,
        target: u64,
        addr: &NodeAddr,
        id: &str,
        source: &std::path::Path,
        size: u64,
    ) -> Result<(), NodeError> {
        let storage = self.storage(target, addr, 10_000).ok_or_else(|| {
            NodeError::Unavailable(format!("node {target} has no usable endpoints"))
        })?;
        let remote = |e: String| NodeError::Unavailable(format!("node {target}: {e}"));
        let mut offset = storage
            .begin_replica(id, size as i64)
            .await
            .map_err(|e| remote(format!("{e:?}")))? as u64;
        let mut file =
            std::fs::File::open(source).map_err(|e| NodeError::Unavailable(e.to_string()))?;
        let mut buf = vec![0u8; CHUNK];
        use std::io::{Read, Seek, SeekFrom};
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        while offset < size {
            let n = file
                .read(&mut buf)
                .map_err(|e| NodeError::Unavailable(e.to_string()))?;
            if n == 0 {
                return Err(NodeError::Unavailable(
                    "the source file is shorter than its size".into(),
                ));
            }
            let data = buf[..n].to_vec();
            let sum = hex(&Sha256::digest(&data));
            storage
                .put_replica_chunk(id, offset as i64, &data, &sum)
                .await
                .map_err(|e| remote(format!("{e:?}")))?;
            offset += n as u64;
        }
        storage
            .commit_replica(id)
            .await
            .map_err(|e| remote(format!("{e:?}")))?;
        debug!(target: "dispotify::replication", node = target, id = %id, "replica stored");
        Ok(())
    }

    // ----- reads -----

    /// A song of the catalog.
    pub async fn song(&self, id: &str) -> Result<SongRecord, NodeError> {
        self.inner
            .raft
            .read(Consistency::Linearizable, |c: &Catalog| {
                c.songs.get(id).cloned()
            })
            .await?
            .ok_or_else(|| NodeError::NotFound(format!("no song {id}")))
    }

    /// A page of songs matching `query` (this node's catalog: searches may trail the latest
    /// upload by the replication delay).
    pub async fn search(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<api::Song>, usize), NodeError> {
        Ok(self
            .inner
            .raft
            .read(Consistency::Stale, |c: &Catalog| {
                c.search(query, offset, limit.min(500))
            })
            .await?)
    }

    /// Up to `length` bytes of song `id` from `offset`: from the local replica (each chunk
    /// checked; a corrupt replica is dropped and repaired) or from another node's.
    pub async fn read(&self, id: &str, offset: u64, length: usize) -> Result<Vec<u8>, NodeError> {
        if !valid_id(id) {
            return Err(NodeError::InvalidArgument(
                "a song id is 64 lowercase hex digits".into(),
            ));
        }
        if self.inner.replicas.has(id) {
            let r = self.inner.replicas.clone();
            let idc = id.to_string();
            match tokio::task::spawn_blocking(move || r.read(&idc, offset, length))
                .await
                .map_err(|e| NodeError::Unavailable(e.to_string()))?
            {
                Ok(b) => return Ok(b),
                Err(StorageError::Checksum(why)) => {
                    warn!(target: "dispotify::repair", id = %id, why = %why, "corrupt replica dropped; reading another");
                    let _ = self.inner.replicas.drop_replica(id);
                    self.inner.repair_now.notify_one();
                }
                Err(StorageError::Invalid(e)) => return Err(NodeError::InvalidArgument(e)),
                Err(_) => {}
            }
        }
        self.read_remote(id, offset, length).await
    }

    async fn read_remote(
        &self,
        id: &str,
        offset: u64,
        length: usize,
    ) -> Result<Vec<u8>, NodeError> {
        let (live, addrs) = self.live();
        let me = self.inner.raft.id();
        let mut order =
            Ring::new(&live, self.inner.config.vnodes).place(id, self.inner.config.replication);
        let others: Vec<u64> = addrs
            .keys()
            .copied()
            .filter(|n| !order.contains(n))
            .collect();
        order.extend(others);
        let mut last = format!("no replica of {id} is reachable");
        for node in order.into_iter().filter(|n| *n != me) {
            let Some(storage) = addrs.get(&node).and_then(|a| self.storage(node, a, 5_000)) else {
                continue;
            };
            match storage
                .read_replica(
                    id,
                    offset as i64,
                    length.min(crate::storage::MAX_TRANSFER) as i32,
                )
                .await
            {
                Ok(b) => return Ok(b),
                Err(api::storage::ReadReplicaError::InvalidArgument(e)) => {
                    return Err(NodeError::InvalidArgument(e.reason));
                }
                Err(e) => last = format!("node {node}: {e:?}"),
            }
        }
        Err(NodeError::Unavailable(last))
    }

    // ----- background work -----

    async fn background(self, task: Task) {
        let c = &self.inner.config;
        let period = match task {
            Task::Health => c.health_interval,
            Task::Repair => c.repair_interval,
            Task::Scrub => c.scrub_interval,
        };
        let mut timer = tokio::time::interval(period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            match task {
                Task::Repair => {
                    tokio::select! {
                        _ = timer.tick() => {}
                        _ = self.inner.repair_now.notified() => {}
                    }
                }
                _ => {
                    timer.tick().await;
                }
            }
            match task {
                Task::Health => self.check_health().await,
                Task::Repair => self.repair().await,
                Task::Scrub => self.scrub().await,
            }
        }
    }

    async fn check_health(&self) {
        let (nodes, _) = self.inner.raft.members();
        let me = self.inner.raft.id();
        let timeout = self.inner.config.health_interval.as_millis().min(10_000) as i32;
        for (id, addr) in &nodes {
            let ok = *id == me
                || match self.storage(*id, addr, timeout.max(200)) {
                    Some(s) => s.ice_ping().await.is_ok(),
                    None => false,
                };
            if ok {
                self.inner.health.lock().insert(*id, Instant::now());
            }
        }
        // Only the leader turns its view into decisions, through the log.
        if self.inner.raft.leader().map(|(l, _)| l) != Some(me) {
            return;
        }
        let down = self.inner.raft.read_now(|c: &Catalog| c.down.clone());
        let grace = self.inner.config.grace;
        let started = self.inner.started;
        let mut commands = Vec::new();
        for id in nodes.keys() {
            let last = self.inner.health.lock().get(id).copied().unwrap_or(started);
            let silent = last.elapsed();
            if !down.contains(id) && silent > grace {
                commands.push((Command::MarkDown(*id), *id, "down"));
            } else if down.contains(id) && silent < self.inner.config.health_interval * 2 {
                commands.push((Command::MarkUp(*id), *id, "up"));
            }
        }
        for id in down.iter().filter(|id| !nodes.contains_key(id)) {
            commands.push((Command::MarkUp(*id), *id, "removed"));
        }
        for (command, id, what) in commands {
            let Ok(bytes) = serde_json::to_vec(&command) else {
                continue;
            };
            match self.inner.raft.write(bytes).await {
                Ok(_) => info!(target: "dispotify::health", node = id, "marked {what}"),
                Err(e) => {
                    warn!(target: "dispotify::health", node = id, error = %e, "not marked {what}")
                }
            }
        }
    }

    /// Makes this node hold what the ring gives it and drop what it no longer needs.
    async fn repair(&self) {
        let (live, addrs) = self.live();
        let me = self.inner.raft.id();
        let ring = Ring::new(&live, self.inner.config.vnodes);
        let songs: Vec<(String, i64)> = self
            .inner
            .raft
            .read_now(|c: &Catalog| c.songs.values().map(|s| (s.id.clone(), s.size)).collect());
        let r = self.inner.config.replication;
        let mut inventories: Option<BTreeMap<u64, Vec<String>>> = None;
        for (id, size) in &songs {
            let placement = ring.place(id, r);
            let held = self.inner.replicas.has(id);
            if placement.contains(&me) && !held {
                match self.fetch(id, *size as u64, &placement, &addrs).await {
                    Ok(from) => {
                        info!(target: "dispotify::repair", id = %id, from, "replica restored")
                    }
                    Err(e) => {
                        debug!(target: "dispotify::repair", id = %id, error = %e, "replica not restored yet")
                    }
                }
            } else if !placement.contains(&me) && held {
                // Dropped only once every node of the placement holds a verified copy.
                if inventories.is_none() {
                    inventories = Some(self.inventories(&live, &addrs).await);
                }
                let inv = inventories.get_or_insert_with(BTreeMap::new);
                let placed = placement.len() == r.min(live.len())
                    && placement
                        .iter()
                        .all(|n| inv.get(n).is_some_and(|i| i.binary_search(id).is_ok()));
                if placed && self.inner.replicas.drop_replica(id).is_ok() {
                    info!(target: "dispotify::repair", id = %id, "replica no longer ours: dropped");
                }
            }
        }
        // Leftovers: staged replicas and uploads abandoned, replicas the catalog never got.
        let age = self.inner.config.staging_lifetime;
        let collected =
            self.inner.replicas.collect_staging(age) + collect_older(&self.inner.uploads_dir, age);
        if collected > 0 {
            info!(target: "dispotify::repair", files = collected, "abandoned uploads collected");
        }
        if let Ok(held) = self.inner.replicas.inventory() {
            let known: std::collections::BTreeSet<&String> =
                songs.iter().map(|(id, _)| id).collect();
            for id in held.iter().filter(|id| !known.contains(id)) {
                let old = std::fs::metadata(self.inner.replicas.path(id))
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|d| d > age);
                if old && self.inner.replicas.drop_replica(id).is_ok() {
                    info!(target: "dispotify::repair", id = %id, "replica of no song collected");
                }
            }
        }
    }

    /// The replicas each of `nodes` holds, asked of all at once (a node that does not answer
    /// within a health interval is left out).
    async fn inventories(
        &self,
        nodes: &[u64],
        addrs: &BTreeMap<u64, NodeAddr>,
    ) -> BTreeMap<u64, Vec<String>> {
        let timeout = self
            .inner
            .config
            .health_interval
            .as_millis()
            .clamp(200, 5_000) as i32;
        let me = self.inner.raft.id();
        let asks = nodes
            .iter()
            .filter(|n| **n != me)
            .filter_map(|n| {
                addrs
                    .get(n)
                    .and_then(|a| self.storage(*n, a, timeout))
                    .map(|s| (*n, s))
            })
            .map(|(n, s)| async move {
                s.inventory().await.ok().map(|mut inv| {
                    inv.sort();
                    (n, inv)
                })
            });
        let mut out: BTreeMap<u64, Vec<String>> = futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        if nodes.contains(&me) {
            out.insert(me, self.inner.replicas.inventory().unwrap_or_default());
        }
        out
    }

    /// Copies `id` here from another node's verified replica.
    async fn fetch(
        &self,
        id: &str,
        size: u64,
        placement: &[u64],
        addrs: &BTreeMap<u64, NodeAddr>,
    ) -> Result<u64, NodeError> {
        let me = self.inner.raft.id();
        let mut order: Vec<u64> = placement.iter().copied().filter(|n| *n != me).collect();
        let others: Vec<u64> = addrs
            .keys()
            .copied()
            .filter(|n| *n != me && !order.contains(n))
            .collect();
        order.extend(others);
        let staged = self.inner.config.data_dir.join("staging").join(id);
        for node in order {
            let Some(storage) = addrs.get(&node).and_then(|a| self.storage(node, a, 10_000)) else {
                continue;
            };
            let mut file = match std::fs::File::create(&staged) {
                Ok(f) => f,
                Err(e) => return Err(NodeError::Unavailable(e.to_string())),
            };
            let mut offset = 0u64;
            let mut ok = true;
            while offset < size {
                match storage.read_replica(id, offset as i64, CHUNK as i32).await {
                    Ok(b) if !b.is_empty() => {
                        use std::io::Write;
                        if file.write_all(&b).is_err() {
                            ok = false;
                            break;
                        }
                        offset += b.len() as u64;
                    }
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            drop(file);
            if !ok {
                continue;
            }
            let r = self.inner.replicas.clone();
            let (idc, path) = (id.to_string(), staged.clone());
            match tokio::task::spawn_blocking(move || r.adopt(&idc, &path)).await {
                Ok(Ok(())) => return Ok(node),
                _ => continue,
            }
        }
        let _ = std::fs::remove_file(&staged);
        Err(NodeError::Unavailable(format!(
            "no node could give a verified copy of {id}"
        )))
    }

    async fn scrub(&self) {
        let Ok(held) = self.inner.replicas.inventory() else {
            return;
        };
        for id in held {
            let r = self.inner.replicas.clone();
            let idc = id.clone();
            let verdict = tokio::task::spawn_blocking(move || r.verify(&idc)).await;
            if let Ok(Ok(false)) = verdict {
                warn!(target: "dispotify::scrub", id = %id, "corrupt replica found at rest: dropped, to be repaired");
                let _ = self.inner.replicas.drop_replica(&id);
                self.inner.repair_now.notify_one();
            }
        }
    }

    /// The cluster as this node sees it.
    pub async fn status(&self) -> api::ClusterStatus {
        let (live, addrs) = self.live();
        let me = self.inner.raft.id();
        let leader = self.inner.raft.leader().map(|(l, _)| l);
        let ring = Ring::new(&live, self.inner.config.vnodes);
        let inventories = self
            .inventories(&addrs.keys().copied().collect::<Vec<_>>(), &addrs)
            .await;
        let songs: Vec<String> = self
            .inner
            .raft
            .read_now(|c: &Catalog| c.songs.keys().cloned().collect());
        let health = self.inner.health.lock().clone();
        let nodes = addrs
            .iter()
            .map(|(id, a)| api::NodeHealth {
                id: *id as i64,
                endpoints: a.endpoints.clone(),
                http: a.attributes.get("http").cloned().unwrap_or_default(),
                up: live.contains(id)
                    && (*id == me
                        || health
                            .get(id)
                            .is_some_and(|t| t.elapsed() < self.inner.config.health_interval * 3)),
                leader: leader == Some(*id),
                files: inventories.get(id).map_or(0, |i| i.len() as i32),
            })
            .collect();
        let files = songs
            .iter()
            .map(|id| api::ReplicaHealth {
                id: id.clone(),
                placement: ring
                    .place(id, self.inner.config.replication)
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
                verified: inventories
                    .iter()
                    .filter(|(_, inv)| inv.binary_search(id).is_ok())
                    .map(|(n, _)| n.to_string())
                    .collect(),
            })
            .collect();
        api::ClusterStatus {
            leader: leader.map_or(-1, |l| l as i64),
            replication: self.inner.config.replication as i32,
            nodes,
            files,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Task {
    Health,
    Repair,
    Scrub,
}
