//! A running node: openraft on Floe, and what a service calls (writes, reads, locks,
//! membership, status).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floe::{Communicator, ObjectAdapter};
use openraft::error::{
    ChangeMembershipError, CheckIsLeaderError, ClientWriteError, InitializeError,
    RaftError as OpenraftError,
};
use openraft::{ChangeMembers, Raft, RaftMetrics, ServerState};
use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::RaftError;
use crate::config::{Config, message_size_max};
use crate::log_store::LogStore;
use crate::machine::{Machine, MachineStore, StateMachine, voters};
use crate::network::{Network, RAFT_IDENTITY};
use crate::servant::NodeI;
use crate::slice::floe_raft::{self as wire, NodeDispatcher, NodePrx, node as ops};
use crate::types::{
    NodeAddr, NodeId, TypeConfig, membership_to_wire, node_from_wire, node_to_wire, signed,
};

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Linearizable: the read sees every write acknowledged before it started (the leader
    /// confirms its leadership with a quorum; a follower asks the leader for the commit index
    /// and waits until it has applied it).
    Linearizable,
    /// This node's state as it is: may miss recent writes, and a node cut off from the majority
    /// goes on answering from old state.
    Stale,
}

/// A lock granted by [`RaftNode::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The fencing token: larger than every token granted before, for any lock.
    pub token: i64,
    /// Log time (ms since the Unix epoch) at which the lease ends unless renewed.
    pub expires: i64,
}

/// A lock as the state machine holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// Who holds it.
    pub owner: String,
    /// The token of its grant.
    pub token: i64,
    /// When its lease ends (log time).
    pub expires: i64,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) struct Inner<S> {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    pub(crate) raft: Raft<TypeConfig>,
    pub(crate) machine: MachineStore<S>,
    pub(crate) log: LogStore,
    network: Network,
    communicator: Communicator,
    own_communicator: bool,
    adapter: ObjectAdapter,
    address: NodeAddr,
    client: u64,
    serial: AtomicU64,
    in_flight: Mutex<BTreeSet<u64>>,
    stopped: AtomicBool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A node of a Raft cluster, replicating the state machine `S`.
///
/// Cheap to clone; every clone is the same node. See the crate documentation for an example.
pub struct RaftNode<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for RaftNode<S> {
    fn clone(&self) -> Self {
        RaftNode {
            inner: self.inner.clone(),
        }
    }
}

impl<S> std::fmt::Debug for RaftNode<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.inner.id)
            .field("address", &self.inner.address.endpoints)
            .finish()
    }
}

/// Why a single attempt at a request failed: worth trying again (the leader changed, is being
/// elected or could not be reached) or final.
pub(crate) enum Attempt {
    Retry(String),
    Final(RaftError),
}

fn open_error(dir: &std::path::Path, e: impl std::fmt::Display) -> RaftError {
    RaftError::Storage(format!("{}: {e}", dir.display()))
}

impl<S: StateMachine> RaftNode<S> {
    /// Starts a node with a communicator of its own, built from `config.properties`.
    pub async fn start(config: Config, app: S) -> Result<RaftNode<S>, RaftError> {
        let communicator = Communicator::with_properties(config.properties.clone())?;
        match Self::start_inner(config, app, communicator.clone(), true).await {
            Ok(node) => Ok(node),
            Err(e) => {
                communicator.destroy().await;
                Err(e)
            }
        }
    }

    /// Starts a node on a service's communicator (the node adds an adapter named after the
    /// config's prefix).
    pub async fn start_with(
        config: Config,
        app: S,
        communicator: &Communicator,
    ) -> Result<RaftNode<S>, RaftError> {
        Self::start_inner(config, app, communicator.clone(), false).await
    }

    async fn start_inner(
        config: Config,
        app: S,
        communicator: Communicator,
        own: bool,
    ) -> Result<RaftNode<S>, RaftError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| open_error(&dir, e))?;
        let db = {
            let path = dir.clone();
            tokio::task::spawn_blocking(move || {
                sled::Config::new()
                    .path(&path)
                    .mode(sled::Mode::HighThroughput)
                    .open()
            })
            .await
            .map_err(|e| open_error(&dir, e))?
            .map_err(|e| open_error(&dir, e))?
        };
        let log = LogStore::open(&db, &dir).map_err(|e| open_error(&dir, e))?;
        let pristine = log.is_pristine();
        let lifetime =
            i64::try_from(config.client_session_lifetime.as_millis()).unwrap_or(i64::MAX);
        let machine =
            MachineStore::open(&db, &dir, app, lifetime).map_err(|e| open_error(&dir, e))?;

        let adapter = communicator
            .create_object_adapter_with_endpoints(&config.prefix, &config.endpoints)
            .await
            .map_err(|e| {
                RaftError::Config(format!(
                    "{}.Endpoints `{}`: {e}",
                    config.prefix, config.endpoints
                ))
            })?;
        let published = adapter
            .endpoints()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(":");
        let address = NodeAddr {
            endpoints: published,
            attributes: config.attributes.clone(),
        };

        let network = Network::new(
            communicator.clone(),
            config.routes.clone(),
            message_size_max(&config.properties),
            config.backoff,
            config.connect_timeout,
        );
        let raft = Raft::new(
            config.node_id,
            Arc::new(config.openraft()?),
            network.clone(),
            log.clone(),
            machine.clone(),
        )
        .await
        .map_err(|e| RaftError::Failed(format!("openraft did not start: {e}")))?;

        let inner = Arc::new(Inner {
            id: config.node_id,
            raft,
            machine,
            log,
            network,
            communicator,
            own_communicator: own,
            adapter: adapter.clone(),
            address,
            client: rand::random::<u64>() | 1,
            serial: AtomicU64::new(1),
            in_flight: Mutex::new(BTreeSet::new()),
            stopped: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            config,
        });
        let node = RaftNode { inner };
        adapter.add(
            Arc::new(NodeDispatcher(Arc::new(NodeI::new(node.clone())))),
            RAFT_IDENTITY.parse().map_err(RaftError::Runtime)?,
        )?;
        adapter.activate()?;
        info!(
            target: "floe_raft::membership",
            node = node.inner.id,
            endpoints = %node.inner.address.endpoints,
            pristine,
            "node started"
        );
        node.spawn(Self::trace_changes(node.inner.raft.metrics()));
        if pristine {
            node.bootstrap().await?;
        }
        Ok(node)
    }

    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.inner.tasks.lock().push(tokio::spawn(f));
    }

    /// A node on an empty disk: forms the cluster with the other initial members, rejoins one
    /// that already exists, or joins through `<prefix>.Join`.
    async fn bootstrap(&self) -> Result<(), RaftError> {
        let config = &self.inner.config;
        if config.peers.contains_key(&self.inner.id) {
            if self.cluster_exists().await {
                info!(target: "floe_raft::membership", node = self.inner.id, "the cluster exists already: waiting for its leader");
                return Ok(());
            }
            let mut members = BTreeMap::new();
            for (id, endpoints) in &config.peers {
                let addr = if *id == self.inner.id {
                    self.inner.address.clone()
                } else {
                    NodeAddr::new(endpoints.clone())
                };
                members.insert(*id, addr);
            }
            return self.initialize(members).await;
        }
        if let Some(join) = config.join.clone() {
            let node = self.clone();
            self.spawn(async move { node.join_through(&join).await });
            return Ok(());
        }
        if config.peers.is_empty() {
            return self
                .initialize(BTreeMap::from([(
                    self.inner.id,
                    self.inner.address.clone(),
                )]))
                .await;
        }
        Err(RaftError::Config(format!(
            "node {} is not among {}.Peer.* and {}.Join is not set: it cannot form or join a cluster",
            self.inner.id, config.prefix, config.prefix
        )))
    }

    async fn initialize(&self, members: BTreeMap<NodeId, NodeAddr>) -> Result<(), RaftError> {
        info!(target: "floe_raft::membership", node = self.inner.id, members = ?members.keys().collect::<Vec<_>>(), "forming the cluster");
        match self.inner.raft.initialize(members).await {
            Ok(()) | Err(OpenraftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(RaftError::Failed(format!("initializing the cluster: {e}"))),
        }
    }

    /// Whether another initial member reports a membership (this node's disk was wiped).
    async fn cluster_exists(&self) -> bool {
        let timeout = self
            .inner
            .config
            .connect_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32;
        for (id, endpoints) in &self.inner.config.peers {
            if *id == self.inner.id {
                continue;
            }
            let Ok(prx) = self
                .inner
                .network
                .proxy(*id, &NodeAddr::new(endpoints.clone()))
            else {
                continue;
            };
            let prx = NodePrx::unchecked_cast(prx.ice_invocation_timeout(timeout.max(1)));
            if let Ok(status) = prx.status().await
                && !status.membership.configs.is_empty()
            {
                return true;
            }
        }
        false
    }

    async fn join_through(&self, via: &str) {
        let text = if via.contains(':') || !via.contains(" -") {
            via.to_string()
        } else {
            format!("{RAFT_IDENTITY}:{via}")
        };
        let proxy = match self.inner.communicator.string_to_proxy(&text) {
            Ok(Some(p)) => NodePrx::unchecked_cast(p.ice_invocation_timeout(self.timeout_ms())),
            Ok(None) | Err(_) => {
                warn!(target: "floe_raft::membership", join = via, "{}.Join is not a proxy or endpoints", self.inner.config.prefix);
                return;
            }
        };
        let info = node_to_wire(&self.inner.address);
        let mut pause = self.inner.config.heartbeat_interval;
        while !self.inner.stopped.load(Ordering::Relaxed) {
            match proxy.join(signed(self.inner.id), &info).await {
                Ok(()) => {
                    info!(target: "floe_raft::membership", node = self.inner.id, via, "joined the cluster");
                    return;
                }
                Err(e) => {
                    info!(target: "floe_raft::membership", node = self.inner.id, via, error = %e, "join failed; trying again");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn trace_changes(mut metrics: watch::Receiver<RaftMetrics<NodeId, NodeAddr>>) {
        let mut last = None;
        let mut last_members = None;
        loop {
            let m = metrics.borrow_and_update().clone();
            let now = (m.state, m.current_term, m.current_leader);
            if last != Some(now) {
                info!(target: "floe_raft::election", node = m.id, role = ?m.state, term = m.current_term, leader = ?m.current_leader, "role");
                last = Some(now);
            }
            let members = membership_to_wire(m.membership_config.membership());
            if last_members.as_ref() != Some(&members) {
                info!(target: "floe_raft::membership", node = m.id, voters = ?members.configs, nodes = ?members.nodes.keys().collect::<Vec<_>>(), "membership");
                last_members = Some(members);
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    fn timeout_ms(&self) -> i32 {
        self.inner
            .config
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// How other nodes reach this one (the endpoints its Raft adapter publishes).
    pub fn address(&self) -> &NodeAddr {
        &self.inner.address
    }

    /// A proxy of this node's Raft object.
    pub fn proxy(&self) -> Result<NodePrx, RaftError> {
        Ok(NodePrx::unchecked_cast(
            self.inner.adapter.create_proxy(RAFT_IDENTITY.parse()?),
        ))
    }

    /// The node's object adapter (named after the config's prefix): a service may add its own
    /// servants to it, so that one port serves both.
    pub fn adapter(&self) -> &ObjectAdapter {
        &self.inner.adapter
    }

    /// The communicator the node runs on.
    pub fn communicator(&self) -> &Communicator {
        &self.inner.communicator
    }

    /// openraft's metrics of this node (role, term, leader, log and membership), as they change.
    pub fn metrics(&self) -> watch::Receiver<RaftMetrics<NodeId, NodeAddr>> {
        self.inner.raft.metrics()
    }

    /// The leader this node knows of, and how to reach it.
    pub fn leader(&self) -> Option<(NodeId, NodeAddr)> {
        let m = self.inner.raft.metrics().borrow().clone();
        let leader = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&leader)
            .cloned()?;
        Some((leader, addr))
    }

    /// The current members: node id → address, and the voters.
    pub fn members(&self) -> (BTreeMap<NodeId, NodeAddr>, BTreeSet<NodeId>) {
        let m = self.inner.raft.metrics().borrow().membership_config.clone();
        (
            m.membership()
                .nodes()
                .map(|(id, n)| (*id, n.clone()))
                .collect(),
            voters(&m),
        )
    }

    /// Waits until some node is known as leader.
    pub async fn wait_for_leader(&self, limit: Duration) -> Result<NodeId, RaftError> {
        let mut metrics = self.inner.raft.metrics();
        let found = tokio::time::timeout(limit, async {
            loop {
                if let Some(l) = metrics.borrow_and_update().current_leader {
                    return Some(l);
                }
                if metrics.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match found {
            Ok(Some(l)) => Ok(l),
            Ok(None) => Err(RaftError::Failed("the node stopped".into())),
            Err(_) => Err(RaftError::NoLeader(format!(
                "no leader within {} ms",
                limit.as_millis()
            ))),
        }
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> wire::NodeStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let role = match m.state {
            ServerState::Learner => "Learner",
            ServerState::Follower => "Follower",
            ServerState::Candidate => "Candidate",
            ServerState::Leader => "Leader",
            ServerState::Shutdown => "Shutdown",
        };
        let index = |l: Option<u64>| l.map_or(-1, signed);
        wire::NodeStatus {
            id: signed(self.inner.id),
            role: role.to_string(),
            term: signed(m.current_term),
            leader: m.current_leader.map_or(-1, signed),
            last_log_index: index(m.last_log_index),
            committed_index: index(self.inner.log.committed().map(|l| l.index)),
            applied_index: index(m.last_applied.map(|l| l.index)),
            snapshot_index: index(m.snapshot.map(|l| l.index)),
            membership: membership_to_wire(m.membership_config.membership()),
            millis_since_quorum_ack: m.millis_since_quorum_ack.map_or(-1, signed),
        }
    }

    /// Applies `command` to the replicated state machine and returns its answer, from any node
    /// (a follower forwards to the leader). Retried until the request timeout while the leader
    /// changes or cannot be reached; the node's client id and serial make the retries safe.
    pub async fn write(&self, command: Vec<u8>) -> Result<Vec<u8>, RaftError> {
        let outcome = self
            .write_own(wire::Command {
                kind: wire::CommandKind::Application,
                data: command,
                ..Default::default()
            })
            .await?;
        outcome_data(outcome)
    }

    /// Like [`RaftNode::write`] for a command that a remote client identifies itself: `client`
    /// and `serial` make a retry of the same write apply once, `floor` says every serial of
    /// that client below it has been answered.
    pub async fn write_as(
        &self,
        client: u64,
        serial: u64,
        floor: u64,
        command: Vec<u8>,
    ) -> Result<Vec<u8>, RaftError> {
        if client == 0 {
            return self.write(command).await;
        }
        let cmd = wire::Command {
            client: client as i64,
            serial: signed(serial),
            floor: signed(floor),
            kind: wire::CommandKind::Application,
            data: command,
            ..Default::default()
        };
        outcome_data(self.propose(cmd).await?.outcome)
    }

    /// Takes the lock `name` for `owner` for `ttl` of log time (the owner renews by acquiring
    /// again: same token, later expiry).
    pub async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Grant, RaftError> {
        let cmd = wire::Command {
            kind: wire::CommandKind::LockAcquire,
            lock_name: name.to_string(),
            lock_owner: owner.to_string(),
            lock_ttl: ttl.as_millis().min(i64::MAX as u128) as i64,
            ..Default::default()
        };
        let o = self.write_own(cmd).await?;
        match o.kind {
            wire::OutcomeKind::Granted => Ok(Grant {
                token: o.token,
                expires: o.expires,
            }),
            _ => Err(RaftError::LockRefused {
                reason: o.reason,
                holder: o.holder,
            }),
        }
    }

    /// Gives back the lock `name`; only `owner` with the token of its grant may.
    pub async fn release(&self, name: &str, owner: &str, token: i64) -> Result<(), RaftError> {
        let cmd = wire::Command {
            kind: wire::CommandKind::LockRelease,
            lock_name: name.to_string(),
            lock_owner: owner.to_string(),
            lock_token: token,
            ..Default::default()
        };
        let o = self.write_own(cmd).await?;
        match o.kind {
            wire::OutcomeKind::Released => Ok(()),
            _ => Err(RaftError::LockRefused {
                reason: o.reason,
                holder: o.holder,
            }),
        }
    }

    /// Who holds the lock `name` now (by log time), if anyone.
    pub async fn lock_holder(
        &self,
        name: &str,
        consistency: Consistency,
    ) -> Result<Option<LockInfo>, RaftError> {
        self.read_machine(consistency, |m| {
            m.lock_holder(name).map(|(owner, token, expires)| LockInfo {
                owner,
                token,
                expires,
            })
        })
        .await
    }

    /// Runs `f` on the state machine with the given consistency.
    pub async fn read<T>(
        &self,
        consistency: Consistency,
        f: impl FnOnce(&S) -> T,
    ) -> Result<T, RaftError> {
        self.read_machine(consistency, |m| f(&m.app)).await
    }

    /// Runs `f` on this node's state machine as it is now (a stale read, without waiting).
    pub fn read_now<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.inner.machine.machine.read().app)
    }

    /// The log time the state machine has reached (ms since the Unix epoch).
    pub async fn log_time(&self, consistency: Consistency) -> Result<i64, RaftError> {
        self.read_machine(consistency, |m| m.log_time()).await
    }

    async fn read_machine<T>(
        &self,
        consistency: Consistency,
        f: impl FnOnce(&Machine<S>) -> T,
    ) -> Result<T, RaftError> {
        if consistency == Consistency::Linearizable && !self.inner.config.unsafe_stale_reads {
            self.barrier().await?;
        }
        let machine = self.inner.machine.machine.read();
        Ok(f(&machine))
    }

    async fn write_own(&self, mut cmd: wire::Command) -> Result<wire::Outcome, RaftError> {
        let serial = self.inner.serial.fetch_add(1, Ordering::Relaxed);
        let floor = {
            let mut in_flight = self.inner.in_flight.lock();
            in_flight.insert(serial);
            *in_flight.first().unwrap_or(&serial)
        };
        cmd.client = self.inner.client as i64;
        cmd.serial = signed(serial);
        cmd.floor = signed(floor);
        let result = self.propose(cmd).await;
        self.inner.in_flight.lock().remove(&serial);
        Ok(result?.outcome)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the request timeout passes.
    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, RaftError>
    where
        F: FnMut(Instant) -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let pause = self
            .inner
            .config
            .heartbeat_interval
            .min(Duration::from_millis(100));
        loop {
            if self.inner.stopped.load(Ordering::Relaxed) {
                return Err(RaftError::Failed("the node is stopping".into()));
            }
            match attempt(deadline).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Retry(reason)) => {
                    if Instant::now() + pause >= deadline {
                        return Err(RaftError::NoLeader(format!(
                            "{what} not done within {} ms: {reason}",
                            self.inner.config.request_timeout.as_millis()
                        )));
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Proposes `cmd` on the leader, wherever it is.
    pub(crate) async fn propose(&self, cmd: wire::Command) -> Result<wire::WriteResult, RaftError> {
        self.retrying("write", |deadline| {
            let cmd = cmd.clone();
            async move {
                match self.leader() {
                    Some((leader, _)) if leader == self.inner.id => {
                        self.propose_local(cmd, deadline).await
                    }
                    Some((leader, addr)) => {
                        let prx = self.peer(leader, &addr, deadline)?;
                        match prx.write(&cmd).await {
                            Ok(r) => Ok(r),
                            Err(ops::WriteError::NoLeader(e)) => Err(Attempt::Retry(e.reason)),
                            Err(ops::WriteError::RaftFailure(e)) => {
                                Err(Attempt::Final(RaftError::Failed(e.reason)))
                            }
                            Err(ops::WriteError::Runtime(e)) => {
                                Err(Attempt::Retry(format!("leader {leader}: {e}")))
                            }
                        }
                    }
                    None => Err(Attempt::Retry("no leader is known".into())),
                }
            }
        })
        .await
    }

    fn peer(&self, id: NodeId, addr: &NodeAddr, deadline: Instant) -> Result<NodePrx, Attempt> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .clamp(1, i32::MAX as u128) as i32;
        self.inner
            .network
            .proxy(id, addr)
            .map(|p| NodePrx::unchecked_cast(p.ice_invocation_timeout(left)))
            .map_err(|e| Attempt::Final(RaftError::Runtime(e)))
    }

    /// Whether this leader has heard from a quorum within the election timeout (a leader cut
    /// off from the majority refuses at once instead of waiting for a commit that cannot come).
    fn quorum_recent(&self) -> bool {
        let m = self.inner.raft.metrics().borrow().clone();
        match m.millis_since_quorum_ack {
            Some(ms) => ms <= self.inner.config.election_timeout.1.as_millis() as u64,
            None => false,
        }
    }

    /// Proposes `cmd` on this node, which must be the leader.
    pub(crate) async fn propose_local(
        &self,
        mut cmd: wire::Command,
        deadline: Instant,
    ) -> Result<wire::WriteResult, Attempt> {
        if !self.quorum_recent() {
            return Err(Attempt::Retry(format!(
                "leader {} has lost contact with a majority",
                self.inner.id
            )));
        }
        cmd.time = now_ms();
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.inner.raft.client_write(cmd)).await {
            Ok(Ok(r)) => Ok(wire::WriteResult {
                index: signed(r.log_id.index),
                outcome: r.data,
            }),
            Ok(Err(OpenraftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(Attempt::Retry(format!(
                    "node {} is no longer the leader (leader: {:?})",
                    self.inner.id, f.leader_id
                )))
            }
            Ok(Err(e)) => Err(Attempt::Final(RaftError::Failed(e.to_string()))),
            Err(_) => Err(Attempt::Retry("not committed in time".into())),
        }
    }

    /// Confirms, before a linearizable read, that this node's state includes every write
    /// acknowledged so far.
    async fn barrier(&self) -> Result<(), RaftError> {
        self.retrying("linearizable read", |deadline| async move {
            let index = match self.leader() {
                Some((leader, _)) if leader == self.inner.id => {
                    self.read_index_local(deadline).await?
                }
                Some((leader, addr)) => {
                    let prx = self.peer(leader, &addr, deadline)?;
                    match prx.read_index().await {
                        Ok(i) => i,
                        Err(ops::ReadIndexError::NoLeader(e)) => {
                            return Err(Attempt::Retry(e.reason));
                        }
                        Err(ops::ReadIndexError::RaftFailure(e)) => {
                            return Err(Attempt::Final(RaftError::Failed(e.reason)));
                        }
                        Err(ops::ReadIndexError::Runtime(e)) => {
                            return Err(Attempt::Retry(format!("leader {leader}: {e}")));
                        }
                    }
                }
                None => return Err(Attempt::Retry("no leader is known".into())),
            };
            if index < 0 {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.inner
                .raft
                .wait(Some(left))
                .applied_index_at_least(Some(index as u64), "read index")
                .await
                .map(|_| ())
                .map_err(|e| Attempt::Retry(format!("index {index} not applied here in time: {e}")))
        })
        .await
    }

    /// On the leader: the index a linearizable read must wait for (-1: none), once a quorum has
    /// confirmed the leadership.
    pub(crate) async fn read_index_local(&self, deadline: Instant) -> Result<i64, Attempt> {
        if !self.quorum_recent() {
            return Err(Attempt::Retry(format!(
                "leader {} has lost contact with a majority",
                self.inner.id
            )));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.inner.raft.get_read_log_id()).await {
            Ok(Ok((read, _applied))) => Ok(read.map_or(-1, |l| signed(l.index))),
            Ok(Err(OpenraftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => Err(
                Attempt::Retry(format!("node {} is not the leader", self.inner.id)),
            ),
            Ok(Err(OpenraftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                Err(Attempt::Retry(e.to_string()))
            }
            Ok(Err(e)) => Err(Attempt::Final(RaftError::Failed(e.to_string()))),
            Err(_) => Err(Attempt::Retry("leadership not confirmed in time".into())),
        }
    }

    /// Adds node `id` (reached at `addr`) to the cluster: as a learner until it has caught up,
    /// then as a voter. Done on the leader, from any node. A node that is already a voter at
    /// that address is left as it is; a voter with a new address gets it updated.
    pub async fn add_node(&self, id: NodeId, addr: NodeAddr) -> Result<(), RaftError> {
        self.retrying("membership change", |deadline| {
            let addr = addr.clone();
            async move {
                match self.leader() {
                    Some((leader, _)) if leader == self.inner.id => {
                        self.add_node_local(id, addr).await
                    }
                    Some((leader, laddr)) => {
                        let prx = forwarded(self.peer(leader, &laddr, deadline)?);
                        match prx.join(signed(id), &node_to_wire(&addr)).await {
                            Ok(()) => Ok(()),
                            Err(ops::JoinError::NoLeader(e)) => Err(Attempt::Retry(e.reason)),
                            Err(ops::JoinError::RaftFailure(e)) => {
                                Err(Attempt::Final(RaftError::Failed(e.reason)))
                            }
                            Err(ops::JoinError::Runtime(e)) => {
                                Err(Attempt::Retry(format!("leader {leader}: {e}")))
                            }
                        }
                    }
                    None => Err(Attempt::Retry("no leader is known".into())),
                }
            }
        })
        .await
    }

    pub(crate) async fn add_node_local(&self, id: NodeId, addr: NodeAddr) -> Result<(), Attempt> {
        let (nodes, voters) = self.members();
        let raft = &self.inner.raft;
        match nodes.get(&id) {
            Some(known) if *known == addr && voters.contains(&id) => return Ok(()),
            Some(known) if *known != addr => {
                info!(target: "floe_raft::membership", node = id, endpoints = %addr.endpoints, "new address");
                raft.change_membership(
                    ChangeMembers::SetNodes(BTreeMap::from([(id, addr.clone())])),
                    true,
                )
                .await
                .map_err(membership_attempt)?;
            }
            Some(_) => {}
            None => {
                info!(target: "floe_raft::membership", node = id, endpoints = %addr.endpoints, "adding a learner");
                raft.add_learner(id, addr, true)
                    .await
                    .map_err(membership_attempt)?;
            }
        }
        if !voters.contains(&id) {
            info!(target: "floe_raft::membership", node = id, "promoting to voter");
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                .await
                .map_err(membership_attempt)?;
        }
        Ok(())
    }

    /// Removes node `id` from the cluster (voters and learners). Done on the leader, from any
    /// node; the last voter cannot be removed.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), RaftError> {
        self.retrying("membership change", |deadline| async move {
            match self.leader() {
                Some((leader, _)) if leader == self.inner.id => self.remove_node_local(id).await,
                Some((leader, laddr)) => {
                    let prx = forwarded(self.peer(leader, &laddr, deadline)?);
                    match prx.leave(signed(id)).await {
                        Ok(()) => Ok(()),
                        Err(ops::LeaveError::NoLeader(e)) => Err(Attempt::Retry(e.reason)),
                        Err(ops::LeaveError::RaftFailure(e)) => {
                            Err(Attempt::Final(RaftError::Failed(e.reason)))
                        }
                        Err(ops::LeaveError::Runtime(e)) => {
                            Err(Attempt::Retry(format!("leader {leader}: {e}")))
                        }
                    }
                }
                None => Err(Attempt::Retry("no leader is known".into())),
            }
        })
        .await
    }

    pub(crate) async fn remove_node_local(&self, id: NodeId) -> Result<(), Attempt> {
        let (nodes, voters) = self.members();
        if !nodes.contains_key(&id) {
            return Ok(());
        }
        if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(Attempt::Final(RaftError::Failed(format!(
                    "node {id} is the last voter"
                ))));
            }
            info!(target: "floe_raft::membership", node = id, "removing a voter");
            self.inner
                .raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(membership_attempt)?;
        }
        let (nodes, _) = self.members();
        if nodes.contains_key(&id) {
            self.inner
                .raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(membership_attempt)?;
        }
        Ok(())
    }

    /// Asks openraft to take a snapshot now (it also does after `SnapshotInterval` entries).
    pub async fn snapshot(&self) -> Result<(), RaftError> {
        self.inner
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| RaftError::Failed(e.to_string()))
    }

    /// Stops the node: openraft, its adapter, and its communicator if it has its own.
    pub async fn shutdown(&self) {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            warn!(target: "floe_raft::membership", error = %e, "openraft did not stop cleanly");
        }
        for t in self.inner.tasks.lock().drain(..) {
            t.abort();
        }
        self.inner.adapter.destroy().await;
        if self.inner.own_communicator {
            self.inner.communicator.destroy().await;
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.config.request_timeout
    }

    pub(crate) fn stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    pub(crate) fn raft(&self) -> &Raft<TypeConfig> {
        &self.inner.raft
    }

    pub(crate) fn retry_text(a: Attempt) -> (bool, String) {
        match a {
            Attempt::Retry(r) => (true, r),
            Attempt::Final(e) => (false, e.to_string()),
        }
    }
}

/// The context key marking a request one node forwarded to the leader: the receiver handles
/// it itself or refuses it, and never forwards it again.
pub(crate) const FORWARDED: &str = "floe-raft-forwarded";

fn forwarded(prx: NodePrx) -> NodePrx {
    NodePrx::unchecked_cast(prx.ice_context(floe::Context::from([(
        FORWARDED.to_string(),
        "1".to_string(),
    )])))
}

/// The node's answer to a write of its own: the application's bytes, or the refusal.
fn outcome_data(o: wire::Outcome) -> Result<Vec<u8>, RaftError> {
    match o.kind {
        wire::OutcomeKind::Applied => Ok(o.data),
        _ => Err(RaftError::Refused(o.reason)),
    }
}

fn membership_attempt(e: OpenraftError<NodeId, ClientWriteError<NodeId, NodeAddr>>) -> Attempt {
    match e {
        OpenraftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            Attempt::Retry("the leader changed".into())
        }
        OpenraftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(p),
        )) => Attempt::Retry(format!("another membership change is in progress: {p}")),
        e => Attempt::Final(RaftError::Failed(e.to_string())),
    }
}

/// Converts a node's address received in a request.
pub(crate) fn addr_from_wire(info: &wire::NodeInfo) -> NodeAddr {
    node_from_wire(info)
}
