//! The managers' replicated state: accounts, sessions and presence, as a [`StateMachine`] of
//! floe-raft. Commands and snapshots are JSON (`docs/telegraph.md`, "What the managers store").
//!
//! Everything time-based is decided by log time: a login or a batch of heartbeats marks users
//! seen at the log time of its entry, and the leader's periodic `Tick` marks offline every user
//! not seen for `offline_after` ms and forgets sessions unused for `session_lifetime` ms (both
//! carried by the tick itself, so every manager applies the same rule).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use floe_raft::{ApplyContext, StateMachine};
use serde::{Deserialize, Serialize};

use crate::slice::telegraph::UserInfo;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// argon2id hash of the password, PHC string.
    pub hash: String,
    /// Ed25519 public key.
    pub identity_key: Vec<u8>,
    /// X25519 public key.
    pub exchange_key: Vec<u8>,
    /// The Inbox proxy of the user's running client, as a string.
    pub inbox: String,
    /// Whether the user is online (seen within the offline delay).
    pub online: bool,
    /// Log time of the last login or heartbeat (0: never).
    pub last_seen: i64,
    /// Log time of the registration.
    pub created: i64,
}

/// A session, known by the SHA-256 of its token (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Whose session.
    pub name: String,
    /// Log time of its last use (login or heartbeat).
    pub last_used: i64,
}

/// A command of the managers' log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates an account.
    Register {
        /// User name (checked by the manager that proposes it).
        name: String,
        /// argon2id hash of the password.
        hash: String,
        /// Ed25519 public key.
        identity_key: Vec<u8>,
        /// X25519 public key.
        exchange_key: Vec<u8>,
    },
    /// Opens a session (the password was checked by the proposing manager).
    Login {
        /// Who.
        name: String,
        /// SHA-256 of the session token, hex.
        token_hash: String,
        /// Where the user's client receives now.
        inbox: String,
    },
    /// Heartbeats gathered by one manager: session token hashes, with a new inbox address when
    /// one changed.
    Seen {
        /// (token hash, new inbox or None).
        sessions: Vec<(String, Option<String>)>,
    },
    /// Ends a session.
    Logout {
        /// SHA-256 of the session token, hex.
        token_hash: String,
    },
    /// The leader's periodic sweep.
    Tick {
        /// Users not seen for this long (ms of log time) go offline.
        offline_after: i64,
        /// Sessions unused for this long are forgotten.
        session_lifetime: i64,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The name is taken.
    UserExists,
    /// No such user.
    UnknownUser,
    /// No such session (never opened, logged out or expired).
    UnknownSession,
    /// The command could not be read.
    Malformed(String),
}

/// The answer to a command: its result and the presence changes it caused (the proposing
/// manager publishes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// `None` when the command was applied.
    pub refused: Option<Refusal>,
    /// Users whose presence or address changed.
    pub changes: Vec<String>,
}

/// The replicated state.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts {
    /// Accounts by name.
    pub users: BTreeMap<String, Account>,
    /// Sessions by token hash.
    pub sessions: HashMap<String, Session>,
    /// Names of the users online now.
    pub online: BTreeSet<String>,
}

impl Accounts {
    /// The public view of an account.
    pub fn info(&self, name: &str) -> Option<UserInfo> {
        self.users.get(name).map(|a| UserInfo {
            name: name.to_string(),
            inbox: a.inbox.clone(),
            online: a.online,
            last_seen: a.last_seen,
            identity_key: a.identity_key.clone(),
            exchange_key: a.exchange_key.clone(),
        })
    }

    /// The user of a session, if the session exists.
    pub fn session_user(&self, token_hash: &str) -> Option<&str> {
        self.sessions.get(token_hash).map(|s| s.name.as_str())
    }

    fn seen(&mut self, name: &str, inbox: Option<&str>, time: i64, changes: &mut Vec<String>) {
        if let Some(a) = self.users.get_mut(name) {
            let mut changed = !a.online;
            if let Some(inbox) = inbox
                && a.inbox != inbox
            {
                a.inbox = inbox.to_string();
                changed = true;
            }
            a.online = true;
            a.last_seen = time;
            self.online.insert(name.to_string());
            if changed {
                changes.push(name.to_string());
            }
        }
    }

    fn execute(&mut self, command: Command, time: i64) -> Answer {
        let mut changes = Vec::new();
        let refused = match command {
            Command::Register {
                name,
                hash,
                identity_key,
                exchange_key,
            } => match self.users.entry(name) {
                std::collections::btree_map::Entry::Occupied(_) => Some(Refusal::UserExists),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(Account {
                        hash,
                        identity_key,
                        exchange_key,
                        inbox: String::new(),
                        online: false,
                        last_seen: 0,
                        created: time,
                    });
                    None
                }
            },
            Command::Login {
                name,
                token_hash,
                inbox,
            } => {
                if self.users.contains_key(&name) {
                    self.sessions.insert(
                        token_hash,
                        Session {
                            name: name.clone(),
                            last_used: time,
                        },
                    );
                    self.seen(&name, Some(&inbox), time, &mut changes);
                    None
                } else {
                    Some(Refusal::UnknownUser)
                }
            }
            Command::Seen { sessions } => {
                for (token_hash, inbox) in sessions {
                    let Some(session) = self.sessions.get_mut(&token_hash) else {
                        continue;
                    };
                    session.last_used = time;
                    let name = session.name.clone();
                    self.seen(&name, inbox.as_deref(), time, &mut changes);
                }
                None
            }
            Command::Logout { token_hash } => match self.sessions.remove(&token_hash) {
                Some(session) => {
                    let still_open = self.sessions.values().any(|s| s.name == session.name);
                    if !still_open
                        && let Some(a) = self.users.get_mut(&session.name)
                        && a.online
                    {
                        a.online = false;
                        self.online.remove(&session.name);
                        changes.push(session.name);
                    }
                    None
                }
                None => Some(Refusal::UnknownSession),
            },
            Command::Tick {
                offline_after,
                session_lifetime,
            } => {
                let horizon = time.saturating_sub(offline_after);
                let gone: Vec<String> = self
                    .online
                    .iter()
                    .filter(|n| self.users.get(*n).is_none_or(|a| a.last_seen < horizon))
                    .cloned()
                    .collect();
                for name in gone {
                    self.online.remove(&name);
                    if let Some(a) = self.users.get_mut(&name) {
                        a.online = false;
                        changes.push(name);
                    }
                }
                let expiry = time.saturating_sub(session_lifetime);
                self.sessions.retain(|_, s| s.last_used >= expiry);
                None
            }
        };
        Answer { refused, changes }
    }
}

impl StateMachine for Accounts {
    fn apply(&mut self, command: &[u8], ctx: &ApplyContext) -> Vec<u8> {
        let answer = match serde_json::from_slice::<Command>(command) {
            Ok(c) => self.execute(c, ctx.time),
            Err(e) => Answer {
                refused: Some(Refusal::Malformed(e.to_string())),
                changes: Vec::new(),
            },
        };
        serde_json::to_vec(&answer).unwrap_or_default()
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        *self = serde_json::from_slice(snapshot).map_err(|e| format!("accounts snapshot: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(a: &mut Accounts, c: Command, time: i64) -> Answer {
        let bytes = a.apply(
            &serde_json::to_vec(&c).unwrap(),
            &ApplyContext {
                index: 1,
                time,
                client: 1,
            },
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    fn register(name: &str) -> Command {
        Command::Register {
            name: name.into(),
            hash: "h".into(),
            identity_key: vec![1; 32],
            exchange_key: vec![2; 32],
        }
    }

    #[test]
    fn presence_follows_log_time() {
        let mut a = Accounts::default();
        assert_eq!(apply(&mut a, register("alice"), 0).refused, None);
        assert_eq!(
            apply(&mut a, register("alice"), 0).refused,
            Some(Refusal::UserExists)
        );
        let login = apply(
            &mut a,
            Command::Login {
                name: "alice".into(),
                token_hash: "t".into(),
                inbox: "i1".into(),
            },
            1_000,
        );
        assert_eq!(login.changes, vec!["alice".to_string()]);
        assert!(a.info("alice").unwrap().online);
        // A heartbeat with a new address is a change; one without is not.
        let moved = apply(
            &mut a,
            Command::Seen {
                sessions: vec![("t".into(), Some("i2".into()))],
            },
            2_000,
        );
        assert_eq!(moved.changes, vec!["alice".to_string()]);
        assert!(
            apply(
                &mut a,
                Command::Seen {
                    sessions: vec![("t".into(), None)]
                },
                3_000
            )
            .changes
            .is_empty()
        );
        // Not seen for longer than offline_after: offline at the next tick, session kept.
        let tick = Command::Tick {
            offline_after: 5_000,
            session_lifetime: 60_000,
        };
        assert!(apply(&mut a, tick.clone(), 7_000).changes.is_empty());
        assert_eq!(
            apply(&mut a, tick.clone(), 9_000).changes,
            vec!["alice".to_string()]
        );
        assert!(!a.info("alice").unwrap().online);
        assert_eq!(a.session_user("t"), Some("alice"));
        // Sessions unused past their lifetime are forgotten.
        apply(&mut a, tick, 70_000);
        assert_eq!(a.session_user("t"), None);
        assert_eq!(
            apply(
                &mut a,
                Command::Logout {
                    token_hash: "t".into()
                },
                70_001
            )
            .refused,
            Some(Refusal::UnknownSession)
        );
        let mut copy = Accounts::default();
        copy.restore(&a.snapshot()).unwrap();
        assert_eq!(copy, a);
    }
}
