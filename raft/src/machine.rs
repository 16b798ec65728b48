//! The replicated state machine: the application's own ([`StateMachine`]), the table of client
//! sessions that makes a retried write apply once, and the lock table. It lives in memory; the
//! latest snapshot is kept in the node's sled database (tree `snapshot`) and restored at start,
//! after which openraft applies the committed entries that follow it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use parking_lot::RwLock;

use crate::slice::floe_raft as wire;
use crate::types::{
    NodeAddr, NodeId, TypeConfig, decode, encode, opt_log_id_from_wire, opt_log_id_to_wire, signed,
    snapshot_meta_from_wire, snapshot_meta_to_wire, stored_membership_from_wire,
    stored_membership_to_wire,
};

/// The application's part of the replicated state: a deterministic machine fed the committed
/// commands in log order, the same on every node.
///
/// `apply` must depend only on the machine's state, the command and the [`ApplyContext`]
/// (never on the node's clock, randomness or I/O), so that every node reaches the same state.
pub trait StateMachine: Send + Sync + 'static {
    /// Applies one committed command and returns the answer given to the writer.
    fn apply(&mut self, command: &[u8], ctx: &ApplyContext) -> Vec<u8>;
    /// The whole state as bytes (taken while no command is applied).
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with one taken by [`StateMachine::snapshot`] (on this node or
    /// another). An error stops the node: the snapshot came from this cluster's own nodes.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// What a command is applied with besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyContext {
    /// The log index of the command.
    pub index: u64,
    /// Log time: milliseconds since the Unix epoch as stamped by the leaders, never going back.
    /// Use it for anything that expires, never the node's own clock.
    pub time: i64,
    /// The writer's client id (0 when the write was not deduplicated).
    pub client: u64,
}

/// Most unacknowledged replies kept for one client; a client with more writes in flight gets
/// its further writes refused until it raises its floor.
pub const MAX_PENDING_PER_CLIENT: usize = 1024;
/// Most client sessions kept; the least recently seen is forgotten first.
pub const MAX_SESSIONS: usize = 100_000;
/// Most locks kept (held or expired but not yet swept); beyond, acquiring a new name is refused.
pub const MAX_LOCKS: usize = 100_000;
/// Longest lease a lock may be granted for (one day of log time).
pub const MAX_LOCK_TTL: i64 = 86_400_000;
/// Sessions and expired locks are swept at every multiple of this log index.
const SWEEP_EVERY: u64 = 1024;

#[derive(Debug, Default, Clone)]
struct Session {
    floor: u64,
    last_seen: i64,
    replies: BTreeMap<u64, wire::Outcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Lock {
    owner: String,
    token: i64,
    expires: i64,
}

/// Everything applied so far.
#[derive(Debug)]
pub(crate) struct Machine<S> {
    pub(crate) app: S,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, NodeAddr>,
    log_time: i64,
    last_token: i64,
    sessions: HashMap<u64, Session>,
    locks: BTreeMap<String, Lock>,
    session_lifetime: i64,
}

fn refused(reason: impl Into<String>) -> wire::Outcome {
    wire::Outcome {
        kind: wire::OutcomeKind::Refused,
        reason: reason.into(),
        ..Default::default()
    }
}

impl<S: StateMachine> Machine<S> {
    fn new(app: S, session_lifetime: i64) -> Machine<S> {
        Machine {
            app,
            last_applied: None,
            membership: StoredMembership::default(),
            log_time: 0,
            last_token: 0,
            sessions: HashMap::new(),
            locks: BTreeMap::new(),
            session_lifetime,
        }
    }

    /// The holder of a lock at the current log time.
    pub(crate) fn lock_holder(&self, name: &str) -> Option<(String, i64, i64)> {
        self.locks
            .get(name)
            .filter(|l| l.expires > self.log_time)
            .map(|l| (l.owner.clone(), l.token, l.expires))
    }

    pub(crate) fn log_time(&self) -> i64 {
        self.log_time
    }

    fn apply_entry(&mut self, entry: &Entry<TypeConfig>) -> wire::Outcome {
        self.last_applied = Some(entry.log_id);
        let outcome = match &entry.payload {
            EntryPayload::Blank => wire::Outcome {
                kind: wire::OutcomeKind::Noop,
                ..Default::default()
            },
            EntryPayload::Membership(m) => {
                self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                wire::Outcome {
                    kind: wire::OutcomeKind::Noop,
                    ..Default::default()
                }
            }
            EntryPayload::Normal(cmd) => self.apply_command(cmd, entry.log_id.index),
        };
        if entry.log_id.index % SWEEP_EVERY == 0 {
            self.sweep();
        }
        outcome
    }

    fn apply_command(&mut self, cmd: &wire::Command, index: u64) -> wire::Outcome {
        self.log_time = self.log_time.max(cmd.time);
        let client = cmd.client as u64;
        if client == 0 {
            return self.execute(cmd, index);
        }
        let (serial, floor) = (cmd.serial as u64, cmd.floor as u64);
        if !self.sessions.contains_key(&client) && self.sessions.len() >= MAX_SESSIONS {
            self.forget_oldest_session();
        }
        let session = self.sessions.entry(client).or_default();
        session.last_seen = self.log_time;
        if floor > session.floor {
            session.floor = floor;
            session.replies = session.replies.split_off(&floor);
        }
        if serial < session.floor {
            return refused(format!(
                "write {serial} of client {client:x} was answered before (the client's floor is {})",
                session.floor
            ));
        }
        if let Some(reply) = session.replies.get(&serial) {
            return reply.clone();
        }
        if session.replies.len() >= MAX_PENDING_PER_CLIENT {
            return refused(format!(
                "client {client:x} has {MAX_PENDING_PER_CLIENT} unacknowledged writes; raise its floor"
            ));
        }
        let outcome = self.execute(cmd, index);
        if let Some(session) = self.sessions.get_mut(&client) {
            session.replies.insert(serial, outcome.clone());
        }
        outcome
    }

    fn execute(&mut self, cmd: &wire::Command, index: u64) -> wire::Outcome {
        match cmd.kind {
            wire::CommandKind::Application => {
                let ctx = ApplyContext {
                    index,
                    time: self.log_time,
                    client: cmd.client as u64,
                };
                let data = self.app.apply(&cmd.data, &ctx);
                wire::Outcome {
                    kind: wire::OutcomeKind::Applied,
                    data,
                    ..Default::default()
                }
            }
            wire::CommandKind::LockAcquire => {
                self.acquire(&cmd.lock_name, &cmd.lock_owner, cmd.lock_ttl)
            }
            wire::CommandKind::LockRelease => {
                self.release(&cmd.lock_name, &cmd.lock_owner, cmd.lock_token)
            }
            wire::CommandKind::Noop => wire::Outcome {
                kind: wire::OutcomeKind::Noop,
                ..Default::default()
            },
        }
    }

    fn acquire(&mut self, name: &str, owner: &str, ttl: i64) -> wire::Outcome {
        if owner.is_empty() {
            return refused("a lock needs an owner");
        }
        if ttl <= 0 || ttl > MAX_LOCK_TTL {
            return refused(format!(
                "lease of {ttl} ms: it must be between 1 and {MAX_LOCK_TTL} ms"
            ));
        }
        let now = self.log_time;
        let expires = now.saturating_add(ttl);
        match self.locks.get_mut(name) {
            Some(l) if l.expires > now && l.owner != owner => wire::Outcome {
                holder: l.owner.clone(),
                ..refused(format!(
                    "lock {name:?} is held by {:?} until {}",
                    l.owner, l.expires
                ))
            },
            Some(l) if l.expires > now => {
                // The owner renews: same grant, longer lease.
                l.expires = expires;
                wire::Outcome {
                    kind: wire::OutcomeKind::Granted,
                    token: l.token,
                    expires,
                    ..Default::default()
                }
            }
            _ => {
                if !self.locks.contains_key(name) && self.locks.len() >= MAX_LOCKS {
                    self.sweep_locks();
                    if self.locks.len() >= MAX_LOCKS {
                        return refused(format!("{MAX_LOCKS} locks are held"));
                    }
                }
                self.last_token += 1;
                let token = self.last_token;
                self.locks.insert(
                    name.to_string(),
                    Lock {
                        owner: owner.to_string(),
                        token,
                        expires,
                    },
                );
                wire::Outcome {
                    kind: wire::OutcomeKind::Granted,
                    token,
                    expires,
                    ..Default::default()
                }
            }
        }
    }

    fn release(&mut self, name: &str, owner: &str, token: i64) -> wire::Outcome {
        match self.locks.get(name) {
            Some(l) if l.owner == owner && l.token == token => {
                self.locks.remove(name);
                wire::Outcome {
                    kind: wire::OutcomeKind::Released,
                    token,
                    ..Default::default()
                }
            }
            Some(l) if l.expires > self.log_time => wire::Outcome {
                holder: l.owner.clone(),
                ..refused(format!(
                    "lock {name:?} is held by {:?} with another grant",
                    l.owner
                ))
            },
            _ => refused(format!(
                "lock {name:?} is not held by {owner:?} with token {token}"
            )),
        }
    }

    fn sweep(&mut self) {
        let horizon = self.log_time.saturating_sub(self.session_lifetime);
        self.sessions.retain(|_, s| s.last_seen >= horizon);
        self.sweep_locks();
    }

    fn sweep_locks(&mut self) {
        let now = self.log_time;
        self.locks.retain(|_, l| l.expires > now);
    }

    fn forget_oldest_session(&mut self) {
        if let Some(oldest) = self
            .sessions
            .iter()
            .min_by_key(|(id, s)| (s.last_seen, **id))
            .map(|(id, _)| *id)
        {
            self.sessions.remove(&oldest);
        }
    }

    fn image(&self) -> wire::MachineImage {
        let (membership_log_id, membership) = stored_membership_to_wire(&self.membership);
        let mut sessions: Vec<_> = self
            .sessions
            .iter()
            .map(|(client, s)| wire::ClientSession {
                client: *client as i64,
                floor: signed(s.floor),
                last_seen: s.last_seen,
                replies: s
                    .replies
                    .iter()
                    .map(|(serial, o)| wire::CachedReply {
                        serial: signed(*serial),
                        outcome: o.clone(),
                    })
                    .collect(),
            })
            .collect();
        sessions.sort_by_key(|s| s.client);
        wire::MachineImage {
            last_applied: opt_log_id_to_wire(self.last_applied.as_ref()),
            membership_log_id,
            membership,
            log_time: self.log_time,
            last_token: self.last_token,
            sessions,
            locks: self
                .locks
                .iter()
                .map(|(name, l)| wire::Lock {
                    name: name.clone(),
                    owner: l.owner.clone(),
                    token: l.token,
                    expires: l.expires,
                })
                .collect(),
            application: self.app.snapshot(),
        }
    }

    fn restore(&mut self, image: &wire::MachineImage) -> Result<(), String> {
        let last_applied =
            opt_log_id_from_wire(&image.last_applied, "snapshot").map_err(|e| e.to_string())?;
        let membership =
            stored_membership_from_wire(&image.membership_log_id, &image.membership, "snapshot")
                .map_err(|e| e.to_string())?;
        self.app.restore(&image.application)?;
        self.last_applied = last_applied;
        self.membership = membership;
        self.log_time = image.log_time;
        self.last_token = image.last_token;
        self.sessions = image
            .sessions
            .iter()
            .map(|s| {
                (
                    s.client as u64,
                    Session {
                        floor: s.floor as u64,
                        last_seen: s.last_seen,
                        replies: s
                            .replies
                            .iter()
                            .map(|r| (r.serial as u64, r.outcome.clone()))
                            .collect(),
                    },
                )
            })
            .collect();
        self.locks = image
            .locks
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    Lock {
                        owner: l.owner.clone(),
                        token: l.token,
                        expires: l.expires,
                    },
                )
            })
            .collect();
        Ok(())
    }
}

/// The state machine half of a node's storage, shared with the node's read path.
pub struct MachineStore<S> {
    pub(crate) machine: Arc<RwLock<Machine<S>>>,
    tree: sled::Tree,
    disk: crate::log_store::Disk,
    snapshots: Arc<AtomicU64>,
}

impl<S> Clone for MachineStore<S> {
    fn clone(&self) -> Self {
        MachineStore {
            machine: self.machine.clone(),
            tree: self.tree.clone(),
            disk: self.disk.clone(),
            snapshots: self.snapshots.clone(),
        }
    }
}

impl<S> Debug for MachineStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineStore").finish_non_exhaustive()
    }
}

const SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA: &[u8] = b"data";

fn sm_read_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(AnyError::error(e.to_string())).into()
}

fn snapshot_write_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, AnyError::error(e.to_string())).into()
}

impl<S: StateMachine> MachineStore<S> {
    /// Opens the snapshot tree of `db` (stored in `dir`) and restores the machine from the stored snapshot, if any.
    pub fn open(
        db: &sled::Db,
        dir: &std::path::Path,
        app: S,
        session_lifetime_ms: i64,
    ) -> Result<MachineStore<S>, StorageError<NodeId>> {
        let tree = db.open_tree("snapshot").map_err(sm_read_err)?;
        let store = MachineStore {
            machine: Arc::new(RwLock::new(Machine::new(app, session_lifetime_ms))),
            tree,
            disk: crate::log_store::Disk::new(db, dir),
            snapshots: Arc::new(AtomicU64::new(0)),
        };
        if let Some(data) = store.tree.get(SNAPSHOT_DATA).map_err(sm_read_err)? {
            let image: wire::MachineImage =
                decode(&data, "stored snapshot").map_err(sm_read_err)?;
            store.machine.write().restore(&image).map_err(sm_read_err)?;
        }
        Ok(store)
    }

    async fn save_snapshot(
        &self,
        meta: &SnapshotMeta<NodeId, NodeAddr>,
        data: &[u8],
    ) -> Result<(), StorageError<NodeId>> {
        let mut batch = sled::Batch::default();
        batch.insert(SNAPSHOT_META, encode(&snapshot_meta_to_wire(meta)));
        batch.insert(SNAPSHOT_DATA, data);
        self.tree.apply_batch(batch).map_err(snapshot_write_err)?;
        self.disk.sync().await.map_err(snapshot_write_err)?;
        Ok(())
    }
}

impl<S: StateMachine> RaftSnapshotBuilder<TypeConfig> for MachineStore<S> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (image, last_applied, membership) = {
            let m = self.machine.read();
            (m.image(), m.last_applied, m.membership.clone())
        };
        let data = encode(&image);
        let n = self.snapshots.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(l) => format!(
                "{}-{}-{}-{n}",
                l.leader_id.term, l.leader_id.node_id, l.index
            ),
            None => format!("0-0-0-{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        self.save_snapshot(&meta, &data).await?;
        tracing::info!(target: "floe_raft::snapshot", id = %meta.snapshot_id, bytes = data.len(), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<S: StateMachine> RaftStateMachine<TypeConfig> for MachineStore<S> {
    type SnapshotBuilder = MachineStore<S>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeAddr>), StorageError<NodeId>>
    {
        let m = self.machine.read();
        Ok((m.last_applied, m.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<wire::Outcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut m = self.machine.write();
        Ok(entries.into_iter().map(|e| m.apply_entry(&e)).collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeAddr>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let image: wire::MachineImage = decode(&data, "received snapshot").map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                AnyError::error(e.to_string()),
            ))
        })?;
        {
            let mut m = self.machine.write();
            m.restore(&image).map_err(|e| {
                StorageError::from(StorageIOError::read_snapshot(
                    Some(meta.signature()),
                    AnyError::error(e),
                ))
            })?;
            // What the snapshot's own meta says wins over what its image says.
            m.last_applied = meta.last_log_id;
            m.membership = meta.last_membership.clone();
        }
        self.save_snapshot(meta, &data).await?;
        tracing::info!(target: "floe_raft::snapshot", id = %meta.snapshot_id, bytes = data.len(), "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let meta = self.tree.get(SNAPSHOT_META).map_err(sm_read_err)?;
        let data = self.tree.get(SNAPSHOT_DATA).map_err(sm_read_err)?;
        match (meta, data) {
            (Some(meta), Some(data)) => {
                let meta: wire::SnapshotMeta =
                    decode(&meta, "stored snapshot").map_err(sm_read_err)?;
                let meta = snapshot_meta_from_wire(&meta).map_err(sm_read_err)?;
                Ok(Some(Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(data.to_vec())),
                }))
            }
            _ => Ok(None),
        }
    }
}

/// The voters of a membership (for status reports).
pub(crate) fn voters(m: &StoredMembership<NodeId, NodeAddr>) -> BTreeSet<NodeId> {
    m.membership().voter_ids().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Counter(u64);
    impl StateMachine for Counter {
        fn apply(&mut self, command: &[u8], _: &ApplyContext) -> Vec<u8> {
            self.0 += command.len() as u64;
            self.0.to_be_bytes().to_vec()
        }
        fn snapshot(&self) -> Vec<u8> {
            self.0.to_be_bytes().to_vec()
        }
        fn restore(&mut self, s: &[u8]) -> Result<(), String> {
            self.0 = u64::from_be_bytes(s.try_into().map_err(|_| "bad counter")?);
            Ok(())
        }
    }

    fn cmd(client: i64, serial: i64, floor: i64, time: i64) -> wire::Command {
        wire::Command {
            client,
            serial,
            floor,
            time,
            kind: wire::CommandKind::Application,
            data: vec![1],
            ..Default::default()
        }
    }

    fn lock(
        kind: wire::CommandKind,
        name: &str,
        owner: &str,
        ttl: i64,
        token: i64,
        time: i64,
    ) -> wire::Command {
        wire::Command {
            kind,
            lock_name: name.into(),
            lock_owner: owner.into(),
            lock_ttl: ttl,
            lock_token: token,
            time,
            ..Default::default()
        }
    }

    #[test]
    fn a_retried_write_is_applied_once_and_gets_the_same_answer() {
        let mut m = Machine::new(Counter::default(), 60_000);
        let first = m.apply_command(&cmd(5, 1, 1, 10), 1);
        let again = m.apply_command(&cmd(5, 1, 1, 11), 2);
        assert_eq!(first, again);
        assert_eq!(m.app.0, 1);
        // Concurrent serials of one client apply in any order.
        m.apply_command(&cmd(5, 3, 1, 12), 3);
        m.apply_command(&cmd(5, 2, 1, 12), 4);
        assert_eq!(m.app.0, 3);
        // Once the floor passes a serial, a late retry is refused, not applied.
        let late = m.apply_command(&cmd(5, 1, 4, 13), 5);
        assert_eq!(late.kind, wire::OutcomeKind::Refused);
        assert_eq!(m.app.0, 3);
        // Client 0 is never deduplicated.
        m.apply_command(&cmd(0, 1, 0, 14), 6);
        m.apply_command(&cmd(0, 1, 0, 14), 7);
        assert_eq!(m.app.0, 5);
    }

    #[test]
    fn locks_expire_by_log_time_and_tokens_grow() {
        use wire::CommandKind::{LockAcquire, LockRelease};
        let mut m = Machine::new(Counter::default(), 60_000);
        let a = m.apply_command(&lock(LockAcquire, "l", "a", 100, 0, 1_000), 1);
        assert_eq!(
            (a.kind, a.token, a.expires),
            (wire::OutcomeKind::Granted, 1, 1_100)
        );
        let b = m.apply_command(&lock(LockAcquire, "l", "b", 100, 0, 1_050), 2);
        assert_eq!(
            (b.kind, b.holder.as_str()),
            (wire::OutcomeKind::Refused, "a")
        );
        // Only the owner with its token releases.
        assert_eq!(
            m.apply_command(&lock(LockRelease, "l", "b", 0, 1, 1_060), 3)
                .kind,
            wire::OutcomeKind::Refused
        );
        assert_eq!(
            m.apply_command(&lock(LockRelease, "l", "a", 0, 7, 1_060), 4)
                .kind,
            wire::OutcomeKind::Refused
        );
        // A leader whose clock is behind does not bring the lease back: log time never decreases.
        let b = m.apply_command(&lock(LockAcquire, "l", "b", 100, 0, 500), 5);
        assert_eq!(b.kind, wire::OutcomeKind::Refused);
        let b = m.apply_command(&lock(LockAcquire, "l", "b", 100, 0, 1_100), 6);
        assert_eq!((b.kind, b.token), (wire::OutcomeKind::Granted, 2));
        let r = m.apply_command(&lock(LockRelease, "l", "b", 0, 2, 1_101), 7);
        assert_eq!(r.kind, wire::OutcomeKind::Released);
        assert_eq!(
            m.apply_command(&lock(LockAcquire, "l", "c", 0, 0, 1_102), 8)
                .kind,
            wire::OutcomeKind::Refused
        );
    }

    #[test]
    fn an_image_restores_the_same_machine() {
        let mut m = Machine::new(Counter::default(), 60_000);
        m.apply_command(&cmd(9, 1, 1, 10), 1);
        m.apply_command(
            &lock(wire::CommandKind::LockAcquire, "x", "o", 50, 0, 20),
            2,
        );
        let image = m.image();
        let mut copy = Machine::new(Counter::default(), 60_000);
        copy.restore(&decode(&encode(&image), "image").unwrap())
            .unwrap();
        assert_eq!(copy.app.0, 1);
        assert_eq!(copy.lock_holder("x"), Some(("o".to_string(), 1, 70)));
        assert_eq!(
            copy.apply_command(&cmd(9, 1, 1, 30), 3),
            m.apply_command(&cmd(9, 1, 1, 30), 3)
        );
    }
}
