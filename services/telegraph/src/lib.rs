//! `telegraph`: peer-to-peer messaging on Floe.
//!
//! Identity managers keep the accounts (name, argon2id password hash, public keys, inbox
//! address, presence) in a Raft log ([`floe_raft`]); clients serve an `Inbox` object and send
//! end-to-end encrypted, signed messages straight to each other, keep their conversations in
//! sled, retry what could not be delivered and exchange delivered and read receipts.
//! `docs/telegraph.md` describes the design, the formats and every property.

pub mod accounts;
pub mod chat;
pub mod client;
pub mod cluster;
pub mod crypto;
pub mod discovery;
pub mod manager;
pub mod store;

/// Code generated from `slice/Telegraph.ice`.
#[allow(missing_docs, clippy::all)]
pub mod slice {
    floe::include_slice!("Telegraph");
}
