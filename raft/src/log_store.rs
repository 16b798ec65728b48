//! The Raft log, the vote and the commit index in sled.
//!
//! Trees of the node's database (see "Persistence format" in `docs/raft.md`):
//! - `log`: the log index as 8 big-endian bytes → the entry, Ice 1.1 encoding of
//!   `FloeRaft::Entry`;
//! - `raft`: `vote` → `FloeRaft::Vote`, `committed` and `purged` → `FloeRaft::OptLogId`.
//!
//! An append, a truncation, a purge and a vote are reported done only after sled has flushed
//! them to disk. The commit index is written without a flush: after a crash it may be older,
//! and the leader tells the node again.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote,
};
use parking_lot::Mutex;

use crate::slice::floe_raft as wire;
use crate::types::{
    NodeId, TypeConfig, decode, encode, entry_from_wire, entry_to_wire, opt_log_id_from_wire,
    opt_log_id_to_wire, vote_from_wire, vote_to_wire,
};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";

/// The log store of one node: shared by openraft's log task and its log readers (replication
/// tasks), all through sled's own concurrency.
#[derive(Clone)]
pub struct LogStore {
    log: sled::Tree,
    meta: sled::Tree,
    committed: Arc<Mutex<Option<LogId<NodeId>>>>,
    flusher: tokio::sync::mpsc::Sender<Flush>,
}

/// A node's database and the means to make what it holds durable.
#[derive(Clone)]
pub(crate) struct Disk {
    db: sled::Db,
    /// sled's data file, opened once: sled's own flush ends in `sync_file_range`, which leaves
    /// the drive's cache and the file's metadata unsynced, so a flush is followed by
    /// `fdatasync` of this file.
    data: Option<Arc<std::fs::File>>,
}

impl Disk {
    /// The database `db` stored in `dir`.
    pub(crate) fn new(db: &sled::Db, dir: &std::path::Path) -> Disk {
        Disk {
            db: db.clone(),
            data: std::fs::File::open(dir.join("db")).ok().map(Arc::new),
        }
    }

    /// Writes everything inserted so far to disk, on a blocking thread. (Never through sled
    /// 0.34's `flush_async`, whose process-wide pool of seven threads deadlocks once seven
    /// flushes wait at once.)
    pub(crate) async fn sync(&self) -> Result<(), sled::Error> {
        let (db, data) = (self.db.clone(), self.data.clone());
        let done = tokio::task::spawn_blocking(move || -> Result<(), sled::Error> {
            db.flush()?;
            if let Some(f) = data {
                f.sync_data()?;
            }
            Ok(())
        })
        .await;
        match done {
            Ok(r) => r,
            Err(e) => Err(sled::Error::Io(std::io::Error::other(e.to_string()))),
        }
    }
}

/// What the flusher task is asked: confirm an append once it is on disk, or report when
/// everything before is.
enum Flush {
    Append(LogFlushed<TypeConfig>),
    Barrier(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// Appends waiting for the flusher at most (openraft keeps few in flight; this bounds them).
const FLUSH_QUEUE: usize = 4096;

/// Group commit: every request queued while a flush runs is answered by the next one.
async fn flusher(disk: Disk, mut rx: tokio::sync::mpsc::Receiver<Flush>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = disk.sync().await.map_err(|e| e.to_string());
        for item in batch {
            match item {
                Flush::Append(callback) => {
                    callback.log_io_completed(result.clone().map_err(std::io::Error::other))
                }
                Flush::Barrier(tx) => {
                    let _ = tx.send(result.clone());
                }
            }
        }
    }
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("entries", &self.log.len())
            .finish()
    }
}

fn io_error(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl LogStore {
    /// Opens the log trees of `db`, stored in `dir`, and starts its flusher (on the current
    /// tokio runtime).
    pub fn open(db: &sled::Db, dir: &std::path::Path) -> Result<LogStore, sled::Error> {
        let log = db.open_tree("log")?;
        let meta = db.open_tree("raft")?;
        let disk = Disk::new(db, dir);
        let (flusher_tx, flusher_rx) = tokio::sync::mpsc::channel(FLUSH_QUEUE);
        tokio::spawn(flusher(disk.clone(), flusher_rx));
        let store = LogStore {
            log,
            meta,
            committed: Arc::new(Mutex::new(None)),
            flusher: flusher_tx,
        };
        let committed = store.read_log_id(COMMITTED).unwrap_or(None);
        *store.committed.lock() = committed;
        Ok(store)
    }

    /// The last commit index this node learnt (for status reports).
    pub fn committed(&self) -> Option<LogId<NodeId>> {
        *self.committed.lock()
    }

    /// Whether this node has never voted nor stored an entry (a new node, or one whose disk was
    /// wiped).
    pub fn is_pristine(&self) -> bool {
        self.log.is_empty()
            && !matches!(self.meta.contains_key(VOTE), Ok(true))
            && !matches!(self.meta.contains_key(PURGED), Ok(true))
    }

    fn read_log_id(&self, name: &[u8]) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let read_err = |e: AnyError| StorageError::from(StorageIOError::read(e));
        match self.meta.get(name).map_err(|e| read_err(io_error(e)))? {
            None => Ok(None),
            Some(bytes) => {
                let ids: Vec<wire::LogId> =
                    decode(&bytes, "stored log id").map_err(|e| read_err(io_error(e)))?;
                opt_log_id_from_wire(&ids, "stored log id").map_err(|e| read_err(io_error(e)))
            }
        }
    }

    /// Makes everything written so far durable, after the appends already queued.
    async fn flush(&self) -> Result<(), sled::Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || sled::Error::Io(std::io::Error::other("the flusher stopped"));
        self.flusher
            .send(Flush::Barrier(tx))
            .await
            .map_err(|_| gone())?;
        rx.await
            .map_err(|_| gone())?
            .map_err(|e| sled::Error::Io(std::io::Error::other(e)))
    }

    fn read_range(
        &self,
        start: u64,
        end: Bound<u64>,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let read_err = |e: AnyError| StorageError::from(StorageIOError::read_logs(e));
        let iter = match end {
            Bound::Included(e) => self.log.range(key(start)..=key(e)),
            Bound::Excluded(e) => self.log.range(key(start)..key(e)),
            Bound::Unbounded => self.log.range(key(start)..),
        };
        let mut out = Vec::new();
        for item in iter {
            let (_, bytes) = item.map_err(|e| read_err(io_error(e)))?;
            let wire: wire::Entry =
                decode(&bytes, "stored entry").map_err(|e| read_err(io_error(e)))?;
            out.push(entry_from_wire(&wire).map_err(|e| read_err(io_error(e)))?);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        self.read_range(start, range.end_bound().cloned())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id = self.read_log_id(PURGED)?;
        let last = match self
            .log
            .last()
            .map_err(|e| StorageIOError::read_logs(io_error(e)))?
        {
            Some((_, bytes)) => {
                let wire: wire::Entry = decode(&bytes, "stored entry")
                    .map_err(|e| StorageIOError::read_logs(io_error(e)))?;
                Some(
                    entry_from_wire(&wire)
                        .map_err(|e| StorageIOError::read_logs(io_error(e)))?
                        .log_id,
                )
            }
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let write_err = |e: AnyError| StorageError::from(StorageIOError::write_vote(e));
        self.meta
            .insert(VOTE, encode(&vote_to_wire(vote)))
            .map_err(|e| write_err(io_error(e)))?;
        self.flush().await.map_err(|e| write_err(io_error(e)))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        let read_err = |e: AnyError| StorageError::from(StorageIOError::read_vote(e));
        match self.meta.get(VOTE).map_err(|e| read_err(io_error(e)))? {
            None => Ok(None),
            Some(bytes) => {
                let v: wire::Vote =
                    decode(&bytes, "stored vote").map_err(|e| read_err(io_error(e)))?;
                Ok(Some(
                    vote_from_wire(&v, "stored vote").map_err(|e| read_err(io_error(e)))?,
                ))
            }
        }
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.meta
            .insert(COMMITTED, encode(&opt_log_id_to_wire(committed.as_ref())))
            .map_err(|e| StorageIOError::write(io_error(e)))?;
        *self.committed.lock() = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.read_log_id(COMMITTED)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        for e in entries {
            batch.insert(&key(e.log_id.index), encode(&entry_to_wire(&e)));
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(io_error(e)))?;
        // Reported done by the flusher once on disk, with whatever else is queued by then.
        self.flusher
            .send(Flush::Append(callback))
            .await
            .map_err(|_| StorageIOError::write_logs(AnyError::error("the flusher stopped")).into())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(key(log_id.index)..) {
            let (k, _) = item.map_err(|e| StorageIOError::write_logs(io_error(e)))?;
            batch.remove(k);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(io_error(e)))?;
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_logs(io_error(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // The purge mark goes first, so that a crash half-way leaves a log that starts after it.
        self.meta
            .insert(PURGED, encode(&opt_log_id_to_wire(Some(&log_id))))
            .map_err(|e| StorageIOError::write_logs(io_error(e)))?;
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_logs(io_error(e)))?;
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=key(log_id.index)) {
            let (k, _) = item.map_err(|e| StorageIOError::write_logs(io_error(e)))?;
            batch.remove(k);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(io_error(e)))?;
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_logs(io_error(e)).into())
    }
}
