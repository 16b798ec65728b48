//! Persistent users: a small storage trait and its sled implementation.
//!
//! Layout (documented in the README): one sled tree `users`; the key is the user name in UTF-8,
//! the value a JSON object `{"version":1,"id":"<16 hex digits>","password":"<PHC string>",
//! "created":<unix seconds>}`, where `password` is an argon2id hash in PHC format (salt and
//! parameters included) and `id` tells apart two users created with the same name one after
//! the other. The default tree holds `format` = `usersmanager-1`.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Version written in every record.
pub const RECORD_VERSION: u32 = 1;
/// Value of the `format` key of the database.
pub const FORMAT: &str = "usersmanager-1";

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Format version of the record.
    pub version: u32,
    /// Random id of this incarnation of the user name.
    pub id: String,
    /// argon2id hash of the password, in PHC string format.
    pub password: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
}

/// Errors of the user store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("user database: {0}")]
    Db(#[from] sled::Error),
    /// A record could not be read.
    #[error("user database: record of `{user}` is unreadable: {reason}")]
    Corrupt {
        /// The user whose record is bad.
        user: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database was written by something else.
    #[error("{0}")]
    Format(String),
}

/// Where users live. Writes are durable once [`UserStore::flush`] returns.
pub trait UserStore: Send + Sync + 'static {
    /// The record of `name`, if the user exists.
    fn get(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Stores `record` under `name` unless the name is taken; returns whether it was stored.
    fn insert_new(&self, name: &str, record: &UserRecord) -> Result<bool, StoreError>;
    /// Removes `name` if its record has id `id`; returns whether it was removed.
    fn remove(&self, name: &str, id: &str) -> Result<bool, StoreError>;
    /// Makes every write so far durable (blocking).
    fn flush(&self) -> Result<(), StoreError>;
    /// Number of users stored.
    fn len(&self) -> usize;
    /// Whether no user is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn corrupt(user: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        user: user.to_string(),
        reason: e.to_string(),
    }
}

/// The sled implementation of [`UserStore`].
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    users: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`, checking that it is ours.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        match db.get("format")? {
            None => {
                db.insert("format", FORMAT)?;
                db.flush()?;
            }
            Some(v) if v.as_ref() == FORMAT.as_bytes() => {}
            Some(v) => {
                return Err(StoreError::Format(format!(
                    "{} holds a database of format `{}`, not `{FORMAT}`",
                    dir.display(),
                    String::from_utf8_lossy(&v)
                )));
            }
        }
        let users = db.open_tree("users")?;
        Ok(SledStore { db, users })
    }
}

impl UserStore for SledStore {
    fn get(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .get(name.as_bytes())?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| corrupt(name, e)))
            .transpose()
    }

    fn insert_new(&self, name: &str, record: &UserRecord) -> Result<bool, StoreError> {
        let value = serde_json::to_vec(record).map_err(|e| corrupt(name, e))?;
        Ok(self
            .users
            .compare_and_swap(name.as_bytes(), None as Option<&[u8]>, Some(value))?
            .is_ok())
    }

    fn remove(&self, name: &str, id: &str) -> Result<bool, StoreError> {
        let Some(current) = self.users.get(name.as_bytes())? else {
            return Ok(false);
        };
        let record: UserRecord = serde_json::from_slice(&current).map_err(|e| corrupt(name, e))?;
        if record.id != id {
            return Ok(false);
        }
        Ok(self
            .users
            .compare_and_swap(name.as_bytes(), Some(current), None as Option<&[u8]>)?
            .is_ok())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn len(&self) -> usize {
        self.users.len()
    }
}
