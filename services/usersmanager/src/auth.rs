//! The authenticated cluster (`UsersManager.ClusterKey`): queries and answers carry an
//! HMAC-SHA256 signature, a timestamp and a nonce in their request context, and the password of
//! a `login` query travels encrypted.
//!
//! Two keys are derived from the cluster secret: `HMAC(secret, "usersmanager-1 sign")` signs,
//! `HMAC(secret, "usersmanager-1 encrypt")` encrypts. A signature covers a label (the operation,
//! `query:` or `answer:` before it), the topic, the timestamp, the nonce and every parameter
//! (proxies as strings), each with its length, so no field can be moved into another. A
//! password is XORed with the stream `HMAC(encrypt key, nonce || counter)` and sent in hex; the
//! signature covers the ciphertext. A message is accepted when its signature matches, its
//! timestamp is within `UsersManager.SignatureMaxAge` of the receiver's clock, and its nonce has
//! not been seen within that time.
//!
//! Context entries: `um.ts` (milliseconds since the Unix epoch), `um.nonce` (32 hex digits),
//! `um.sig` (64 hex digits).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

use floe::Context;

use crate::core::random_hex;

type HmacSha256 = Hmac<Sha256>;

/// Context entry of the timestamp.
pub const TIMESTAMP: &str = "um.ts";
/// Context entry of the nonce.
pub const NONCE: &str = "um.nonce";
/// Context entry of the signature.
pub const SIGNATURE: &str = "um.sig";
/// Most nonces remembered at once; past that, messages are refused until some expire.
const NONCES_MAX: usize = 65_536;

/// The cluster secret and what it guards against replay.
pub struct ClusterKey {
    sign: [u8; 32],
    encrypt: [u8; 32],
    topic: String,
    max_age: Duration,
    seen: Mutex<Nonces>,
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterKey")
            .field("topic", &self.topic)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Nonces {
    expiry: HashMap<String, u64>,
    order: VecDeque<(u64, String)>,
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut m = mac(secret);
    m.update(label.as_bytes());
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No signature, or one that does not match.
    Unsigned,
    /// The timestamp is too far from the receiver's clock.
    Stale,
    /// The nonce was seen before.
    Replayed,
    /// Too many nonces to remember.
    Busy,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Unsigned => "not signed with the cluster key (UsersManager.ClusterKey)",
            Refused::Stale => "timestamp outside UsersManager.SignatureMaxAge",
            Refused::Replayed => "replayed (nonce already seen)",
            Refused::Busy => "too many messages to check for replay",
        })
    }
}

impl ClusterKey {
    /// A key from the cluster `secret`, for messages on `topic`, accepted for `max_age`.
    pub fn new(secret: &[u8], topic: &str, max_age: Duration) -> ClusterKey {
        ClusterKey {
            sign: derive(secret, "usersmanager-1 sign"),
            encrypt: derive(secret, "usersmanager-1 encrypt"),
            topic: topic.to_string(),
            max_age,
            seen: Mutex::new(Nonces::default()),
        }
    }

    fn signature(&self, label: &str, ts: &str, nonce: &str, fields: &[&str]) -> HmacSha256 {
        let mut m = mac(&self.sign);
        for part in [label, self.topic.as_str(), ts, nonce].iter().chain(fields) {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part.as_bytes());
        }
        m
    }

    /// A fresh context signing `label` and `fields`; its nonce also serves [`ClusterKey::seal`].
    pub fn sign(&self, label: &str, nonce: &str, fields: &[&str]) -> Context {
        let ts = now_ms().to_string();
        let sig = self.signature(label, &ts, nonce, fields).finalize();
        let mut ctx = Context::new();
        ctx.insert(TIMESTAMP.into(), ts);
        ctx.insert(NONCE.into(), nonce.to_string());
        ctx.insert(SIGNATURE.into(), hex(&sig.into_bytes()));
        ctx
    }

    /// A new nonce.
    pub fn nonce() -> String {
        random_hex(16)
    }

    /// Checks the signature of `label` and `fields` in `ctx`, its age and its nonce (which is
    /// then remembered). Returns the nonce.
    pub fn verify<'c>(
        &self,
        label: &str,
        ctx: &'c Context,
        fields: &[&str],
    ) -> Result<&'c str, Refused> {
        let (Some(ts), Some(nonce), Some(sig)) =
            (ctx.get(TIMESTAMP), ctx.get(NONCE), ctx.get(SIGNATURE))
        else {
            return Err(Refused::Unsigned);
        };
        let sig = unhex(sig).ok_or(Refused::Unsigned)?;
        self.signature(label, ts, nonce, fields)
            .verify_slice(&sig)
            .map_err(|_| Refused::Unsigned)?;
        let ts: u64 = ts.parse().map_err(|_| Refused::Unsigned)?;
        let now = now_ms();
        let max_age = self.max_age.as_millis() as u64;
        if ts.abs_diff(now) > max_age {
            return Err(Refused::Stale);
        }
        let mut seen = self.seen.lock();
        while seen.order.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, n)) = seen.order.pop_front() {
                seen.expiry.remove(&n);
            }
        }
        if seen.expiry.contains_key(nonce.as_str()) {
            return Err(Refused::Replayed);
        }
        if seen.expiry.len() >= NONCES_MAX {
            return Err(Refused::Busy);
        }
        // Remembered until its timestamp can no longer be accepted.
        let until = ts + max_age + 1;
        seen.expiry.insert(nonce.clone(), until);
        let at = seen.order.partition_point(|(t, _)| *t <= until);
        seen.order.insert(at, (until, nonce.clone()));
        Ok(nonce)
    }

    fn keystream(&self, nonce: &str, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut counter: u32 = 0;
        while out.len() < len {
            let mut m = mac(&self.encrypt);
            m.update(nonce.as_bytes());
            m.update(&counter.to_be_bytes());
            out.extend_from_slice(&m.finalize().into_bytes());
            counter += 1;
        }
        out.truncate(len);
        out
    }

    /// Encrypts `password` under `nonce`, as hex.
    pub fn seal(&self, nonce: &str, password: &str) -> String {
        let stream = self.keystream(nonce, password.len());
        let bytes: Vec<u8> = password.bytes().zip(stream).map(|(p, k)| p ^ k).collect();
        hex(&bytes)
    }

    /// Decrypts what [`ClusterKey::seal`] made; `None` when it is not such a text.
    pub fn open(&self, nonce: &str, sealed: &str) -> Option<String> {
        let bytes = unhex(sealed)?;
        let stream = self.keystream(nonce, bytes.len());
        String::from_utf8(bytes.iter().zip(stream).map(|(c, k)| c ^ k).collect()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field_and_are_accepted_once() {
        let key = ClusterKey::new(b"secret", "T", Duration::from_secs(30));
        let nonce = ClusterKey::nonce();
        let ctx = key.sign("query:login", &nonce, &["bob", "x"]);
        let other = ClusterKey::new(b"other", "T", Duration::from_secs(30));
        assert_eq!(
            other.verify("query:login", &ctx, &["bob", "x"]),
            Err(Refused::Unsigned)
        );
        for (label, fields) in [
            ("query:login", &["bob", "y"][..]),
            ("query:login", &["bo", "bx"]),
            ("query:checkUsername", &["bob", "x"]),
        ] {
            assert_eq!(key.verify(label, &ctx, fields), Err(Refused::Unsigned));
        }
        assert_eq!(
            key.verify("query:login", &ctx, &["bob", "x"]),
            Ok(nonce.as_str())
        );
        assert_eq!(
            key.verify("query:login", &ctx, &["bob", "x"]),
            Err(Refused::Replayed)
        );
        assert_eq!(
            key.verify("query:login", &Context::new(), &[]),
            Err(Refused::Unsigned)
        );
        let mut old = key.sign("a", &ClusterKey::nonce(), &[]);
        let ts = (now_ms() - 60_000).to_string();
        old.insert(TIMESTAMP.into(), ts.clone());
        let sig = key
            .signature("a", &ts, &old[NONCE], &[])
            .finalize()
            .into_bytes();
        old.insert(SIGNATURE.into(), hex(&sig));
        assert_eq!(key.verify("a", &old, &[]), Err(Refused::Stale));
    }

    #[test]
    fn sealed_passwords_open_only_with_the_key_and_nonce() {
        let key = ClusterKey::new(b"secret", "T", Duration::from_secs(30));
        let nonce = ClusterKey::nonce();
        let password = "correct horse battery staple, and then some more words";
        let sealed = key.seal(&nonce, password);
        assert!(!sealed.contains("horse"));
        assert_eq!(sealed.len(), 2 * password.len());
        assert_eq!(key.open(&nonce, &sealed).as_deref(), Some(password));
        assert_ne!(
            key.open(&ClusterKey::nonce(), &sealed).as_deref(),
            Some(password)
        );
        let other = ClusterKey::new(b"other", "T", Duration::from_secs(30));
        assert_ne!(other.open(&nonce, &sealed).as_deref(), Some(password));
    }
}
