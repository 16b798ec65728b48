//! What a client keeps on its own disk (sled, `Telegraph.Client.DataDir`): its keys, the keys it
//! pinned for its contacts, its conversations, the ids it has seen and its outbox. Formats in
//! `docs/telegraph.md` ("What a client stores").

use std::path::Path;

use floe::EncodingVersion;
use floe::codegen::{InputStream, OutputStream, SliceType};
use serde::{Deserialize, Serialize};

use crate::crypto::Identity;
use crate::slice::telegraph::{Envelope, Receipt};

/// A failure of the client's store.
#[derive(Debug, thiserror::Error)]
#[error("client store: {0}")]
pub struct StoreError(pub String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// The keys pinned for a contact, and keys seen since that differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Ed25519 public key pinned at first sight.
    pub identity_key: Vec<u8>,
    /// X25519 public key pinned at first sight.
    pub exchange_key: Vec<u8>,
    /// Other keys the managers gave since; shown to the user until accepted.
    pub changed_to: Option<(Vec<u8>, Vec<u8>)>,
}

/// Where a message of a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum State {
    /// Outgoing, not yet delivered.
    Pending,
    /// Outgoing, stored by the recipient.
    Delivered,
    /// Outgoing, read by the recipient; or incoming, read here.
    Read,
    /// Incoming, not yet read here.
    Unread,
}

/// A message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message's id.
    pub id: String,
    /// The other end of the conversation.
    pub peer: String,
    /// Sent by this client.
    pub outgoing: bool,
    /// The sender's counter in the conversation.
    pub counter: i64,
    /// The sender's clock when written.
    pub sent_at: i64,
    /// This client's clock when stored.
    pub stored_at: i64,
    /// The text.
    pub text: String,
    /// Where it stands.
    pub state: State,
}

/// Something waiting to be delivered to `to`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A sealed message.
    Message(Envelope),
    /// A receipt.
    Receipt(Receipt),
}

fn encode<T: SliceType>(v: &T) -> Vec<u8> {
    let mut os = OutputStream::new(EncodingVersion::V1_1);
    v.encode(&mut os);
    os.finish().unwrap_or_default()
}

fn decode<T: SliceType>(bytes: &[u8]) -> Result<T, StoreError> {
    let mut is = InputStream::new(bytes, EncodingVersion::V1_1);
    T::decode(&mut is).map_err(err)
}

/// The client's database.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    contacts: sled::Tree,
    messages: sled::Tree,
    ids: sled::Tree,
    outbox: sled::Tree,
}

fn message_key(peer: &str, outgoing: bool, counter: i64) -> Vec<u8> {
    let mut k = peer.as_bytes().to_vec();
    k.push(0);
    k.push(u8::from(outgoing));
    k.extend_from_slice(&(counter as u64).to_be_bytes());
    k
}

/// Outbox keys sort by recipient, then messages by counter, then receipts.
fn outbox_key(to: &str, item: &Outgoing) -> Vec<u8> {
    let mut k = to.as_bytes().to_vec();
    k.push(0);
    match item {
        Outgoing::Message(e) => {
            k.push(0);
            k.extend_from_slice(&(e.counter as u64).to_be_bytes());
        }
        Outgoing::Receipt(r) => {
            k.push(1);
            k.extend_from_slice(r.message_id.as_bytes());
            k.push(r.kind as u8);
        }
    }
    k
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        let db = sled::open(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        Ok(Store {
            meta: db.open_tree("meta").map_err(err)?,
            contacts: db.open_tree("contacts").map_err(err)?,
            messages: db.open_tree("messages").map_err(err)?,
            ids: db.open_tree("ids").map_err(err)?,
            outbox: db.open_tree("outbox").map_err(err)?,
            db,
        })
    }

    /// Flushes everything written so far to disk.
    /// (On a blocking thread: sled 0.34's `flush_async` deadlocks once seven flushes wait at
    /// once in a process.)
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(err)?
            .map(|_| ())
            .map_err(err)
    }

    /// The client's keys, made and stored on first use; refuses a store made for another name.
    pub fn identity(&self, name: &str) -> Result<Identity, StoreError> {
        match self.meta.get("name").map_err(err)? {
            Some(n) if n.as_ref() != name.as_bytes() => {
                return Err(StoreError(format!(
                    "this data directory belongs to {}",
                    String::from_utf8_lossy(&n)
                )));
            }
            Some(_) => {}
            None => {
                self.meta.insert("name", name.as_bytes()).map_err(err)?;
            }
        }
        if let Some(bytes) = self.meta.get("keys").map_err(err)? {
            return Identity::from_secret_bytes(&bytes).map_err(err);
        }
        let identity = Identity::generate();
        self.meta
            .insert("keys", identity.to_secret_bytes().to_vec())
            .map_err(err)?;
        self.db.flush().map_err(err)?;
        Ok(identity)
    }

    /// The keys pinned for `name`.
    pub fn contact(&self, name: &str) -> Result<Option<Contact>, StoreError> {
        match self.contacts.get(name).map_err(err)? {
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(err),
            None => Ok(None),
        }
    }

    /// Stores `contact` for `name`.
    pub fn set_contact(&self, name: &str, contact: &Contact) -> Result<(), StoreError> {
        self.contacts
            .insert(name, serde_json::to_vec(contact).map_err(err)?)
            .map_err(err)?;
        Ok(())
    }

    /// The next counter of the conversation with `peer` (1, 2, ...).
    pub fn next_counter(&self, peer: &str) -> Result<i64, StoreError> {
        let key = format!("counter/{peer}");
        let next = self
            .meta
            .update_and_fetch(key, |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(err)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(1, u64::from_be_bytes);
        Ok(next as i64)
    }

    /// Whether a message with this id was stored.
    pub fn seen(&self, id: &str) -> Result<bool, StoreError> {
        self.ids.contains_key(id).map_err(err)
    }

    /// Stores a message of a conversation (and its id).
    pub fn put_message(&self, m: &Message) -> Result<(), StoreError> {
        let key = message_key(&m.peer, m.outgoing, m.counter);
        self.messages
            .insert(&key, serde_json::to_vec(m).map_err(err)?)
            .map_err(err)?;
        self.ids.insert(m.id.as_bytes(), key).map_err(err)?;
        Ok(())
    }

    /// The message of a conversation at a counter, if any.
    pub fn message_at(
        &self,
        peer: &str,
        outgoing: bool,
        counter: i64,
    ) -> Result<Option<Message>, StoreError> {
        match self
            .messages
            .get(message_key(peer, outgoing, counter))
            .map_err(err)?
        {
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(err),
            None => Ok(None),
        }
    }

    /// The message with this id.
    pub fn message(&self, id: &str) -> Result<Option<Message>, StoreError> {
        let Some(key) = self.ids.get(id).map_err(err)? else {
            return Ok(None);
        };
        match self.messages.get(key).map_err(err)? {
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(err),
            None => Ok(None),
        }
    }

    /// The conversation with `peer`, in order: by the time each side wrote, each side's own
    /// messages by counter.
    pub fn conversation(&self, peer: &str) -> Result<Vec<Message>, StoreError> {
        let mut prefix = peer.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.messages.scan_prefix(prefix) {
            let (_, v) = item.map_err(err)?;
            out.push(serde_json::from_slice::<Message>(&v).map_err(err)?);
        }
        out.sort_by_key(|m| (m.sent_at, !m.outgoing, m.counter));
        Ok(out)
    }

    /// Every peer with a conversation.
    pub fn peers(&self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for item in self.messages.iter() {
            let (k, _) = item.map_err(err)?;
            let peer = k
                .split(|b| *b == 0)
                .next()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            if out.last() != Some(&peer) {
                out.push(peer);
            }
        }
        Ok(out)
    }

    /// Queues `item` for `to`.
    pub fn queue(&self, to: &str, item: &Outgoing) -> Result<(), StoreError> {
        let value = match item {
            Outgoing::Message(e) => [vec![0u8], encode(e)].concat(),
            Outgoing::Receipt(r) => [vec![1u8], encode(r)].concat(),
        };
        self.outbox
            .insert(outbox_key(to, item), value)
            .map_err(err)?;
        Ok(())
    }

    /// Removes `item` from the outbox.
    pub fn dequeue(&self, to: &str, item: &Outgoing) -> Result<(), StoreError> {
        self.outbox.remove(outbox_key(to, item)).map_err(err)?;
        Ok(())
    }

    /// How many items wait in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Everything waiting, by recipient, messages in counter order before receipts.
    pub fn outbox(&self) -> Result<Vec<(String, Outgoing)>, StoreError> {
        let mut out = Vec::new();
        for item in self.outbox.iter() {
            let (k, v) = item.map_err(err)?;
            let to = k
                .split(|b| *b == 0)
                .next()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            let item = match v.first() {
                Some(0) => Outgoing::Message(decode(&v[1..])?),
                Some(1) => Outgoing::Receipt(decode(&v[1..])?),
                _ => return Err(StoreError("unreadable outbox entry".into())),
            };
            out.push((to, item));
        }
        Ok(out)
    }

    /// Changes the state of the message `id` if `state` is further on.
    pub fn advance(&self, id: &str, state: State) -> Result<Option<Message>, StoreError> {
        let Some(mut m) = self.message(id)? else {
            return Ok(None);
        };
        let rank = |s: State| match s {
            State::Pending | State::Unread => 0,
            State::Delivered => 1,
            State::Read => 2,
        };
        if rank(state) > rank(m.state) {
            m.state = state;
            self.put_message(&m)?;
        }
        Ok(Some(m))
    }
}
