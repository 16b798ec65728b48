//! End-to-end encryption and signatures of messages and receipts, format v1.
//!
//! `docs/telegraph-crypto.md` is the specification; this module implements it exactly, and a test
//! vector computed independently (Python's `cryptography`) pins the bytes so that other clients
//! interoperate. In short:
//!
//! - Every user has an [`Identity`]: an Ed25519 **identity key** that signs its messages and
//!   receipts, and an X25519 **exchange key** that messages to it are encrypted to. Only the
//!   public halves ever leave the client.
//! - [`seal`] makes a fresh X25519 key pair `e`, `E` per message, derives
//!   `key = HKDF-SHA256(salt = E ‖ Rx, ikm = X25519(e, Rx), info = "telegraph-v1 key")`, encrypts
//!   the text with ChaCha20-Poly1305 under a random 12-byte nonce with the [header](header_bytes)
//!   as associated data, and signs `header ‖ nonce ‖ ciphertext` with the sender's identity key.
//! - [`open`] runs every check of the specification's "Opening a message", in its order, and
//!   returns the first failure as a [`CryptoError`] (the inbox turns it into
//!   `Telegraph::Rejected`).
//! - [`sign_receipt`] and [`verify_receipt`] sign and check `Telegraph::Receipt`s.
//!
//! The header is
//! `"telegraph-v1 message\n" id "\n" sender "\n" recipient "\n" counter "\n" sentAt "\n" hex(E) "\n"`;
//! names follow [`valid_name`], so they never contain the newlines used as separators.
//!
//! ```
//! use telegraph::crypto::{self, Identity};
//!
//! let (alice, bob) = (Identity::generate(), Identity::generate());
//! let id = crypto::new_message_id();
//! let envelope = crypto::seal(&alice, "alice", "bob", &bob.exchange_public(), &id, 1, 0, "hi")?;
//! let text = crypto::open(&bob, "bob", &alice.identity_public(), &envelope)?;
//! assert_eq!(text, "hi");
//! # Ok::<(), crypto::CryptoError>(())
//! ```

use std::fmt;
use std::fmt::Write as _;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::slice::telegraph::{Envelope, Receipt, ReceiptKind};

/// The longest text a message may carry, in UTF-8 bytes.
pub const MAX_TEXT: usize = 16_384;

/// The longest user name, in bytes.
const MAX_NAME: usize = 32;
/// The ChaCha20-Poly1305 tag appended to every ciphertext.
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const SIGNATURE_LEN: usize = 64;
const ID_HEX_LEN: usize = 32;

const MESSAGE_LABEL: &str = "telegraph-v1 message\n";
const RECEIPT_LABEL: &str = "telegraph-v1 receipt\n";
const KEY_INFO: &[u8] = b"telegraph-v1 key";

/// Why a message or receipt cannot be sealed, opened or verified.
///
/// [`open`] returns one variant per check of the specification's "Opening a message", at the
/// first check that fails; [`seal`] refuses with the same variants what [`open`] would reject.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The envelope's `recipient` is not the name of the client opening it.
    #[error("message is addressed to {got:?}, not to {expected:?}")]
    WrongRecipient {
        /// The opening client's own name.
        expected: String,
        /// The envelope's `recipient` (shortened when very long).
        got: String,
    },
    /// A user name breaks the rule of [`valid_name`]; the text says why.
    #[error("invalid user name: {0}")]
    BadName(String),
    /// A message id is not 32 lowercase hex digits.
    #[error("message id is not 32 lowercase hex digits")]
    BadId,
    /// A byte field of an envelope or receipt has the wrong length.
    #[error("`{field}` is {len} bytes, expected {}", expected_len(field))]
    BadLength {
        /// The field (`ephemeral`, `nonce`, `signature`, `ciphertext`).
        field: &'static str,
        /// Its actual length in bytes.
        len: usize,
    },
    /// The Ed25519 signature does not verify with the signer's (pinned) identity key.
    #[error("signature does not verify with the sender's identity key")]
    BadSignature,
    /// X25519 gave an all-zero shared secret: the other side's key has a low order.
    #[error("X25519 key of low order (all-zero shared secret)")]
    LowOrderKey,
    /// ChaCha20-Poly1305 refused the ciphertext (not for this key, or altered).
    #[error("ciphertext does not decrypt (wrong key or altered)")]
    Decrypt,
    /// The decrypted text is not UTF-8.
    #[error("decrypted text is not UTF-8")]
    NotUtf8,
    /// The text to seal is longer than [`MAX_TEXT`] bytes.
    #[error("text of {0} bytes exceeds the limit of {MAX_TEXT} bytes")]
    TextTooLong(usize),
    /// A key given by the caller (public key, or secret key material) is malformed.
    #[error("bad key: {0}")]
    BadKey(&'static str),
}

/// The expected length of a [`CryptoError::BadLength`] field, for its message.
fn expected_len(field: &str) -> &'static str {
    match field {
        "ephemeral" => "32",
        "nonce" => "12",
        "signature" => "64",
        "ciphertext" => "16 to 16400 (16-byte tag, text of at most 16384)",
        _ => "another length",
    }
}

/// Checks the Names rule: 1 to 32 bytes of `a`–`z`, `0`–`9`, `_`, `.`, `-`, starting with a
/// letter or a digit.
///
/// The error says, for a person, why the name is refused.
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name cannot be empty".to_owned());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "a name of {} bytes is longer than {MAX_NAME} bytes",
            name.len()
        ));
    }
    for (i, c) in name.char_indices() {
        let allowed = c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-');
        if !allowed {
            return Err(format!(
                "{name:?} has {c:?} at byte {i}; names use only a-z, 0-9, '_', '.', '-'"
            ));
        }
        if i == 0 && !c.is_ascii_alphanumeric() {
            return Err(format!(
                "{name:?} starts with {c:?}; names start with a letter or a digit"
            ));
        }
    }
    Ok(())
}

/// A fresh message id: 16 bytes from the operating system's generator, as 32 lowercase hex
/// digits.
pub fn new_message_id() -> String {
    let mut bytes = [0u8; ID_HEX_LEN / 2];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A user's two key pairs: the Ed25519 identity key and the X25519 exchange key.
///
/// Made once, when the client registers; the secret halves stay in the client's data directory
/// ([`Identity::to_secret_bytes`]). `Debug` shows only the public keys.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    exchange: StaticSecret,
}

impl Identity {
    /// Makes both key pairs from the operating system's generator.
    pub fn generate() -> Identity {
        Identity {
            signing: SigningKey::generate(&mut OsRng),
            exchange: StaticSecret::random_from_rng(OsRng),
        }
    }

    /// The secret halves for the client's key file: Ed25519 secret (32 bytes) followed by the
    /// X25519 secret (32 bytes).
    pub fn to_secret_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.signing.to_bytes());
        out[32..].copy_from_slice(&self.exchange.to_bytes());
        out
    }

    /// Rebuilds an identity from [`Identity::to_secret_bytes`]; anything but 64 bytes is
    /// [`CryptoError::BadKey`].
    pub fn from_secret_bytes(b: &[u8]) -> Result<Identity, CryptoError> {
        let b: &[u8; 64] = b.try_into().map_err(|_| {
            CryptoError::BadKey("secret key material must be 64 bytes (Ed25519 || X25519)")
        })?;
        let mut signing = [0u8; 32];
        let mut exchange = [0u8; 32];
        signing.copy_from_slice(&b[..32]);
        exchange.copy_from_slice(&b[32..]);
        Ok(Identity {
            signing: SigningKey::from_bytes(&signing),
            exchange: StaticSecret::from(exchange),
        })
    }

    /// The Ed25519 public key (registered with the managers as `identityKey`).
    pub fn identity_public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The X25519 public key (registered with the managers as `exchangeKey`).
    pub fn exchange_public(&self) -> [u8; 32] {
        PublicKey::from(&self.exchange).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("identity_public", &hex(&self.identity_public()))
            .field("exchange_public", &hex(&self.exchange_public()))
            .finish_non_exhaustive()
    }
}

/// Seals `text` from `sender_name` to `recipient_name`, whose exchange public key (from the
/// managers, pinned) is `recipient_exchange`, with a fresh ephemeral key and a random nonce.
///
/// `id` comes from [`new_message_id`], `counter` is the sender's next number in this
/// conversation and `sent_at` its clock in ms since the Unix epoch. Refuses (rather than sends
/// something the recipient would reject) invalid names or id, a text over [`MAX_TEXT`] bytes, a
/// malformed or low-order exchange key.
#[allow(clippy::too_many_arguments)] // the fields of the envelope, as the specification lists them
pub fn seal(
    sender: &Identity,
    sender_name: &str,
    recipient_name: &str,
    recipient_exchange: &[u8],
    id: &str,
    counter: i64,
    sent_at: i64,
    text: &str,
) -> Result<Envelope, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ephemeral = StaticSecret::random_from_rng(OsRng);
    seal_with(
        sender,
        sender_name,
        recipient_name,
        recipient_exchange,
        id,
        counter,
        sent_at,
        text,
        ephemeral.to_bytes(),
        nonce,
    )
}

/// [`seal`] with the ephemeral X25519 secret and the nonce given: for test vectors.
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal_with(
    sender: &Identity,
    sender_name: &str,
    recipient_name: &str,
    recipient_exchange: &[u8],
    id: &str,
    counter: i64,
    sent_at: i64,
    text: &str,
    ephemeral_secret: [u8; 32],
    nonce: [u8; NONCE_LEN],
) -> Result<Envelope, CryptoError> {
    seal_bytes(
        sender,
        sender_name,
        recipient_name,
        recipient_exchange,
        id,
        counter,
        sent_at,
        text.as_bytes(),
        ephemeral_secret,
        nonce,
    )
}

/// The body of [`seal_with`], over bytes (so tests can seal text that is not UTF-8).
#[allow(clippy::too_many_arguments)]
fn seal_bytes(
    sender: &Identity,
    sender_name: &str,
    recipient_name: &str,
    recipient_exchange: &[u8],
    id: &str,
    counter: i64,
    sent_at: i64,
    plaintext: &[u8],
    ephemeral_secret: [u8; 32],
    nonce: [u8; NONCE_LEN],
) -> Result<Envelope, CryptoError> {
    valid_name(sender_name).map_err(CryptoError::BadName)?;
    valid_name(recipient_name).map_err(CryptoError::BadName)?;
    check_id(id)?;
    if plaintext.len() > MAX_TEXT {
        return Err(CryptoError::TextTooLong(plaintext.len()));
    }
    let rx: [u8; 32] = recipient_exchange
        .try_into()
        .map_err(|_| CryptoError::BadKey("recipient exchange key must be 32 bytes"))?;

    let e = StaticSecret::from(ephemeral_secret);
    let big_e = PublicKey::from(&e).to_bytes();
    let shared = e.diffie_hellman(&PublicKey::from(rx));
    if !shared.was_contributory() {
        return Err(CryptoError::LowOrderKey);
    }
    let key = derive_key(shared.as_bytes(), &big_e, &rx);

    let mut envelope = Envelope {
        id: id.to_owned(),
        sender: sender_name.to_owned(),
        recipient: recipient_name.to_owned(),
        counter,
        sent_at,
        ephemeral: big_e.to_vec(),
        nonce: nonce.to_vec(),
        ciphertext: Vec::new(),
        signature: Vec::new(),
    };
    let header = header_bytes(&envelope);
    envelope.ciphertext = ChaCha20Poly1305::new(Key::from_slice(&key))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &header,
            },
        )
        // Encryption fails only for inputs of gigabytes; MAX_TEXT keeps far below.
        .map_err(|_| CryptoError::TextTooLong(plaintext.len()))?;
    envelope.signature = sender
        .signing
        .sign(&signed_bytes(&envelope))
        .to_bytes()
        .to_vec();
    Ok(envelope)
}

/// Opens an envelope for `recipient` (whose own name is `recipient_name`), sent by the user whose
/// **pinned** identity public key is `sender_identity`, and returns the text.
///
/// Runs the checks of the specification in its order and fails at the first:
/// `recipient` is `recipient_name` ([`CryptoError::WrongRecipient`]); `sender` is a valid name
/// ([`CryptoError::BadName`]); `id` is 32 lowercase hex digits ([`CryptoError::BadId`]);
/// `ephemeral` is 32 bytes, `nonce` 12, `signature` 64, `ciphertext` 16 to 16,400
/// ([`CryptoError::BadLength`]); the signature verifies, strictly, with `sender_identity`
/// ([`CryptoError::BadSignature`], or [`CryptoError::BadKey`] when `sender_identity` is not an
/// Ed25519 public key); the shared secret is not all-zero ([`CryptoError::LowOrderKey`]); the
/// ciphertext decrypts ([`CryptoError::Decrypt`]); the text is UTF-8 ([`CryptoError::NotUtf8`]).
pub fn open(
    recipient: &Identity,
    recipient_name: &str,
    sender_identity: &[u8],
    envelope: &Envelope,
) -> Result<String, CryptoError> {
    if envelope.recipient != recipient_name {
        return Err(CryptoError::WrongRecipient {
            expected: recipient_name.to_owned(),
            got: shorten(&envelope.recipient),
        });
    }
    valid_name(&envelope.sender).map_err(CryptoError::BadName)?;
    check_id(&envelope.id)?;
    let ephemeral: [u8; 32] = fixed(&envelope.ephemeral, "ephemeral")?;
    let nonce: [u8; NONCE_LEN] = fixed(&envelope.nonce, "nonce")?;
    let signature: [u8; SIGNATURE_LEN] = fixed(&envelope.signature, "signature")?;
    let ct_len = envelope.ciphertext.len();
    if !(TAG_LEN..=MAX_TEXT + TAG_LEN).contains(&ct_len) {
        return Err(CryptoError::BadLength {
            field: "ciphertext",
            len: ct_len,
        });
    }

    verify(sender_identity, &signed_bytes(envelope), &signature)?;

    let rx = recipient.exchange_public();
    let shared = recipient
        .exchange
        .diffie_hellman(&PublicKey::from(ephemeral));
    if !shared.was_contributory() {
        return Err(CryptoError::LowOrderKey);
    }
    let key = derive_key(shared.as_bytes(), &ephemeral, &rx);
    let plaintext = ChaCha20Poly1305::new(Key::from_slice(&key))
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &envelope.ciphertext,
                aad: &header_bytes(envelope),
            },
        )
        .map_err(|_| CryptoError::Decrypt)?;
    String::from_utf8(plaintext).map_err(|_| CryptoError::NotUtf8)
}

/// Signs a receipt: `reader` says that it received (`Delivered`) or read (`Read`) the message
/// `message_id` that `sender_name` sent it, at `at` (ms since the Unix epoch).
pub fn sign_receipt(
    reader: &Identity,
    message_id: &str,
    reader_name: &str,
    sender_name: &str,
    kind: ReceiptKind,
    at: i64,
) -> Receipt {
    let mut receipt = Receipt {
        message_id: message_id.to_owned(),
        reader: reader_name.to_owned(),
        sender: sender_name.to_owned(),
        kind,
        at,
        signature: Vec::new(),
    };
    receipt.signature = reader
        .signing
        .sign(&receipt_bytes(&receipt))
        .to_bytes()
        .to_vec();
    receipt
}

/// Checks a receipt against the reader's pinned identity public key.
///
/// Besides the signature ([`CryptoError::BadSignature`]), refuses what no valid receipt has:
/// an invalid reader or sender name, a message id that is not 32 lowercase hex digits, a
/// signature that is not 64 bytes (the signed text uses newlines as separators, so these checks
/// keep it unambiguous).
pub fn verify_receipt(reader_identity: &[u8], receipt: &Receipt) -> Result<(), CryptoError> {
    check_id(&receipt.message_id)?;
    valid_name(&receipt.reader).map_err(CryptoError::BadName)?;
    valid_name(&receipt.sender).map_err(CryptoError::BadName)?;
    let signature: [u8; SIGNATURE_LEN] = fixed(&receipt.signature, "signature")?;
    verify(reader_identity, &receipt_bytes(receipt), &signature)
}

/// The header of the specification: the associated data of the encryption and the start of the
/// signed bytes. The UTF-8 bytes of
/// `"telegraph-v1 message\n" + id + "\n" + sender + "\n" + recipient + "\n" + counter + "\n" +
/// sentAt + "\n" + hex(ephemeral) + "\n"` (integers in decimal, hex lowercase).
pub fn header_bytes(envelope: &Envelope) -> Vec<u8> {
    format!(
        "{MESSAGE_LABEL}{}\n{}\n{}\n{}\n{}\n{}\n",
        envelope.id,
        envelope.sender,
        envelope.recipient,
        envelope.counter,
        envelope.sent_at,
        hex(&envelope.ephemeral)
    )
    .into_bytes()
}

/// What the sender signs: `header ‖ nonce ‖ ciphertext`.
fn signed_bytes(envelope: &Envelope) -> Vec<u8> {
    let mut out = header_bytes(envelope);
    out.extend_from_slice(&envelope.nonce);
    out.extend_from_slice(&envelope.ciphertext);
    out
}

/// What the reader signs for a receipt.
fn receipt_bytes(receipt: &Receipt) -> Vec<u8> {
    let kind = match receipt.kind {
        ReceiptKind::Delivered => "delivered",
        ReceiptKind::Read => "read",
    };
    format!(
        "{RECEIPT_LABEL}{}\n{}\n{}\n{kind}\n{}\n",
        receipt.message_id, receipt.reader, receipt.sender, receipt.at
    )
    .into_bytes()
}

/// HKDF-SHA256(salt = `E` ‖ `Rx`, ikm = `shared`, info = "telegraph-v1 key"), 32 bytes.
fn derive_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient_exchange: &[u8; 32],
) -> [u8; KEY_LEN] {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient_exchange);
    let mut key = [0u8; KEY_LEN];
    Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(KEY_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

/// Strict Ed25519 verification of `signature` over `message` with the public key `identity`.
fn verify(
    identity: &[u8],
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), CryptoError> {
    let identity: &[u8; 32] = identity
        .try_into()
        .map_err(|_| CryptoError::BadKey("identity public key must be 32 bytes"))?;
    let key = VerifyingKey::from_bytes(identity)
        .map_err(|_| CryptoError::BadKey("identity public key is not an Ed25519 point"))?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| CryptoError::BadSignature)
}

/// A message id is 32 lowercase hex digits.
fn check_id(id: &str) -> Result<(), CryptoError> {
    let ok = id.len() == ID_HEX_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok { Ok(()) } else { Err(CryptoError::BadId) }
}

/// A fixed-length field of an envelope or receipt.
fn fixed<const N: usize>(bytes: &[u8], field: &'static str) -> Result<[u8; N], CryptoError> {
    bytes.try_into().map_err(|_| CryptoError::BadLength {
        field,
        len: bytes.len(),
    })
}

/// A string from the network, cut to at most 64 characters for an error message.
fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "000102030405060708090a0b0c0d0e0f";

    /// A change a test makes to an envelope.
    type Tamper = fn(&mut Envelope);

    fn identity(ed: u8, x: u8) -> Identity {
        let mut b = [ed; 64];
        b[32..].fill(x);
        Identity::from_secret_bytes(&b).unwrap()
    }

    /// alice (sender), bob (recipient), a sealed "hello" from alice to bob.
    fn setup() -> (Identity, Identity, Envelope) {
        let alice = Identity::generate();
        let bob = Identity::generate();
        let env = seal(
            &alice,
            "alice",
            "bob",
            &bob.exchange_public(),
            ID,
            7,
            1_700_000_000_000,
            "hello",
        )
        .unwrap();
        (alice, bob, env)
    }

    /// Signs the envelope again as `signer`, after a test changed it.
    fn resign(signer: &Identity, env: &mut Envelope) {
        env.signature = signer.signing.sign(&signed_bytes(env)).to_bytes().to_vec();
    }

    fn open_err(bob: &Identity, alice: &Identity, env: &Envelope) -> CryptoError {
        open(bob, "bob", &alice.identity_public(), env).unwrap_err()
    }

    #[test]
    fn round_trip() {
        let (alice, bob, env) = setup();
        assert_eq!(env.id, ID);
        assert_eq!(
            (env.sender.as_str(), env.recipient.as_str()),
            ("alice", "bob")
        );
        assert_eq!((env.counter, env.sent_at), (7, 1_700_000_000_000));
        assert_eq!(
            (env.ephemeral.len(), env.nonce.len(), env.signature.len()),
            (32, 12, 64)
        );
        assert_eq!(env.ciphertext.len(), "hello".len() + TAG_LEN);
        assert_eq!(
            open(&bob, "bob", &alice.identity_public(), &env).unwrap(),
            "hello"
        );

        // Empty and maximal texts, unicode.
        for text in [String::new(), "é✓🦀".to_owned(), "x".repeat(MAX_TEXT)] {
            let env = seal(
                &alice,
                "alice",
                "bob",
                &bob.exchange_public(),
                ID,
                1,
                0,
                &text,
            )
            .unwrap();
            assert_eq!(
                open(&bob, "bob", &alice.identity_public(), &env).unwrap(),
                text
            );
        }
    }

    #[test]
    fn fresh_ephemeral_and_nonce_per_message() {
        let (alice, bob, a) = setup();
        let b = seal(
            &alice,
            "alice",
            "bob",
            &bob.exchange_public(),
            ID,
            7,
            1_700_000_000_000,
            "hello",
        )
        .unwrap();
        assert_ne!(a.ephemeral, b.ephemeral);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn header_format() {
        let env = Envelope {
            id: ID.to_owned(),
            sender: "alice".to_owned(),
            recipient: "bob".to_owned(),
            counter: -3,
            sent_at: 42,
            ephemeral: vec![0xab, 0x01],
            ..Envelope::default()
        };
        assert_eq!(
            header_bytes(&env),
            b"telegraph-v1 message\n000102030405060708090a0b0c0d0e0f\nalice\nbob\n-3\n42\nab01\n"
        );
    }

    #[test]
    fn tampering_is_detected() {
        let (alice, bob, env) = setup();
        let cases: Vec<(&str, Tamper)> = vec![
            ("ciphertext", |e| e.ciphertext[0] ^= 1),
            ("ciphertext tag", |e| {
                *e.ciphertext.last_mut().unwrap() ^= 0x80
            }),
            ("nonce", |e| e.nonce[5] ^= 1),
            ("signature", |e| e.signature[10] ^= 1),
            ("signature s", |e| e.signature[40] ^= 1),
            ("id", |e| e.id.replace_range(0..1, "1")),
            ("counter", |e| e.counter += 1),
            ("sentAt", |e| e.sent_at -= 1),
            ("sender", |e| e.sender = "alicf".to_owned()),
            ("ephemeral", |e| e.ephemeral[0] ^= 1),
        ];
        for (what, tamper) in cases {
            let mut env = env.clone();
            tamper(&mut env);
            assert!(
                matches!(open_err(&bob, &alice, &env), CryptoError::BadSignature),
                "tampered {what}"
            );
        }

        // The recipient is the first check.
        let mut e = env.clone();
        e.recipient = "bop".to_owned();
        match open_err(&bob, &alice, &e) {
            CryptoError::WrongRecipient { expected, got } => {
                assert_eq!((expected.as_str(), got.as_str()), ("bob", "bop"));
            }
            other => panic!("{other:?}"),
        }
        // An id changed to a non-hex (or uppercase) digit fails its format check first.
        for bad in ["g", "A"] {
            let mut e = env.clone();
            e.id.replace_range(0..1, bad);
            assert!(matches!(open_err(&bob, &alice, &e), CryptoError::BadId));
        }
        // A sender changed to an invalid name fails the name check.
        let mut e = env.clone();
        e.sender = "Alice".to_owned();
        assert!(matches!(
            open_err(&bob, &alice, &e),
            CryptoError::BadName(_)
        ));
        // The untouched envelope still opens.
        assert_eq!(
            open(&bob, "bob", &alice.identity_public(), &env).unwrap(),
            "hello"
        );
    }

    #[test]
    fn only_the_recipient_can_open() {
        let (alice, bob, env) = setup();
        // Eve, holding the envelope and claiming bob's name, lacks bob's exchange secret.
        let eve = Identity::generate();
        assert!(matches!(open_err(&eve, &alice, &env), CryptoError::Decrypt));
        // Bob under another name is not the recipient.
        let err = open(&bob, "carol", &alice.identity_public(), &env).unwrap_err();
        assert!(matches!(err, CryptoError::WrongRecipient { .. }));
        // A message sealed to the wrong exchange key, though validly signed, does not decrypt.
        let env = seal(
            &alice,
            "alice",
            "bob",
            &eve.exchange_public(),
            ID,
            1,
            0,
            "hi",
        )
        .unwrap();
        assert!(matches!(open_err(&bob, &alice, &env), CryptoError::Decrypt));
    }

    #[test]
    fn signature_by_another_identity_is_refused() {
        let (alice, bob, _) = setup();
        let mallory = Identity::generate();
        // Mallory seals in alice's name; bob checks with alice's pinned key.
        let env = seal(
            &mallory,
            "alice",
            "bob",
            &bob.exchange_public(),
            ID,
            1,
            0,
            "hi",
        )
        .unwrap();
        assert!(matches!(
            open_err(&bob, &alice, &env),
            CryptoError::BadSignature
        ));
        assert_eq!(
            open(&bob, "bob", &mallory.identity_public(), &env).unwrap(),
            "hi"
        );
    }

    #[test]
    fn malformed_pinned_identity_key() {
        let (_alice, bob, env) = setup();
        for key in [&[0u8; 31][..], &[0u8; 33][..]] {
            let err = open(&bob, "bob", key, &env).unwrap_err();
            assert!(matches!(err, CryptoError::BadKey(_)), "{err:?}");
        }
        // A weak (small-order) identity key never verifies under verify_strict.
        let mut weak = [0u8; 32];
        weak[0] = 1; // the identity point
        assert!(matches!(
            open(&bob, "bob", &weak, &env),
            Err(CryptoError::BadSignature)
        ));
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let (alice, bob, env) = setup();
        let cases: Vec<(&str, usize, Tamper)> = vec![
            ("ephemeral", 31, |e| {
                e.ephemeral.pop();
            }),
            ("ephemeral", 33, |e| e.ephemeral.push(0)),
            ("nonce", 11, |e| {
                e.nonce.pop();
            }),
            ("nonce", 0, |e| e.nonce.clear()),
            ("signature", 63, |e| {
                e.signature.pop();
            }),
            ("signature", 65, |e| e.signature.push(0)),
            ("ciphertext", 15, |e| e.ciphertext.truncate(15)),
            ("ciphertext", MAX_TEXT + TAG_LEN + 1, |e| {
                e.ciphertext.resize(MAX_TEXT + TAG_LEN + 1, 0)
            }),
        ];
        for (field, len, tamper) in cases {
            let mut env = env.clone();
            tamper(&mut env);
            match open_err(&bob, &alice, &env) {
                CryptoError::BadLength { field: f, len: l } => assert_eq!((f, l), (field, len)),
                other => panic!("{field} of {len}: {other:?}"),
            }
        }
        // Lengths are checked in the order of the specification.
        let mut e = env.clone();
        e.nonce.clear();
        e.ciphertext.clear();
        assert!(matches!(
            open_err(&bob, &alice, &e),
            CryptoError::BadLength { field: "nonce", .. }
        ));
        // Bounds are inclusive: 16 bytes (empty text) and 16,400 bytes reach the signature check.
        for len in [TAG_LEN, MAX_TEXT + TAG_LEN] {
            let mut e = env.clone();
            e.ciphertext.resize(len, 0);
            assert!(matches!(
                open_err(&bob, &alice, &e),
                CryptoError::BadSignature
            ));
        }
    }

    #[test]
    fn low_order_ephemeral_is_refused() {
        let (alice, bob, env) = setup();
        // Validly signed by alice, so only the all-zero shared secret check can refuse it.
        let mut e = env.clone();
        e.ephemeral = vec![0; 32];
        resign(&alice, &mut e);
        assert!(matches!(
            open_err(&bob, &alice, &e),
            CryptoError::LowOrderKey
        ));
        // A point of order 8 (from curve25519's small-order list).
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(
            &[
                0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
                0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
                0x5f, 0x49, 0xb8, 0x00,
            ][..],
        );
        let mut e = env.clone();
        e.ephemeral = order8.to_vec();
        resign(&alice, &mut e);
        assert!(matches!(
            open_err(&bob, &alice, &e),
            CryptoError::LowOrderKey
        ));
        // Sealing to a low-order exchange key is refused too.
        let err = seal(&alice, "alice", "bob", &[0u8; 32], ID, 1, 0, "hi").unwrap_err();
        assert!(matches!(err, CryptoError::LowOrderKey));
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let alice = Identity::generate();
        let bob = Identity::generate();
        let env = seal_bytes(
            &alice,
            "alice",
            "bob",
            &bob.exchange_public(),
            ID,
            1,
            0,
            &[0xff, 0xfe],
            [9; 32],
            [8; 12],
        )
        .unwrap();
        assert!(matches!(open_err(&bob, &alice, &env), CryptoError::NotUtf8));
    }

    #[test]
    fn seal_refuses_what_open_would_reject() {
        let alice = Identity::generate();
        let rx = Identity::generate().exchange_public();
        let long = "x".repeat(MAX_TEXT + 1);
        let err = seal(&alice, "alice", "bob", &rx, ID, 1, 0, &long).unwrap_err();
        assert!(matches!(err, CryptoError::TextTooLong(n) if n == MAX_TEXT + 1));
        assert!(err.to_string().contains("16384"));
        // Multi-byte characters count in bytes.
        let wide = "é".repeat(MAX_TEXT / 2 + 1);
        assert!(matches!(
            seal(&alice, "alice", "bob", &rx, ID, 1, 0, &wide),
            Err(CryptoError::TextTooLong(_))
        ));

        assert!(matches!(
            seal(&alice, "Alice", "bob", &rx, ID, 1, 0, "x"),
            Err(CryptoError::BadName(_))
        ));
        assert!(matches!(
            seal(&alice, "alice", "", &rx, ID, 1, 0, "x"),
            Err(CryptoError::BadName(_))
        ));
        assert!(matches!(
            seal(&alice, "alice", "bob", &rx, "00", 1, 0, "x"),
            Err(CryptoError::BadId)
        ));
        assert!(matches!(
            seal(&alice, "alice", "bob", &rx[..31], ID, 1, 0, "x"),
            Err(CryptoError::BadKey(_))
        ));
    }

    #[test]
    fn names_rule() {
        for ok in ["a", "0", "bob", "a.b_c-d", "9lives", &"a".repeat(32)] {
            assert_eq!(valid_name(ok), Ok(()), "{ok:?}");
        }
        let bad = [
            ("", "empty"),
            (&"a".repeat(33)[..], "33 bytes"),
            ("Bob", "'B'"),
            ("bOb", "'O'"),
            ("-bob", "starts with '-'"),
            ("_bob", "starts with '_'"),
            (".bob", "starts with '.'"),
            ("bob\n", "'\\n'"),
            ("bo b", "' '"),
            ("bob/x", "'/'"),
            ("zoë", "'ë'"),
            ("日本", "'日'"),
        ];
        for (name, says) in bad {
            let err = valid_name(name).unwrap_err();
            assert!(err.contains(says), "{name:?}: {err}");
        }
        // Length counts bytes: 17 two-byte characters are 34 bytes.
        assert!(
            valid_name(&"é".repeat(17))
                .unwrap_err()
                .contains("34 bytes")
        );
    }

    #[test]
    fn message_ids() {
        let a = new_message_id();
        assert!(check_id(&a).is_ok(), "{a}");
        assert_ne!(a, new_message_id());
        assert!(check_id(&ID.to_uppercase()).is_err());
        assert!(check_id(&ID[..31]).is_err());
        assert!(check_id(&format!("{ID}0")).is_err());
    }

    #[test]
    fn receipts() {
        let bob = Identity::generate();
        let r = sign_receipt(&bob, ID, "bob", "alice", ReceiptKind::Read, 1234);
        assert_eq!(
            (r.message_id.as_str(), r.reader.as_str(), r.sender.as_str()),
            (ID, "bob", "alice")
        );
        assert_eq!(
            (r.kind, r.at, r.signature.len()),
            (ReceiptKind::Read, 1234, 64)
        );
        verify_receipt(&bob.identity_public(), &r).unwrap();

        let d = sign_receipt(&bob, ID, "bob", "alice", ReceiptKind::Delivered, 1234);
        verify_receipt(&bob.identity_public(), &d).unwrap();
        assert_ne!(d.signature, r.signature);

        let tampers: Vec<fn(&mut Receipt)> = vec![
            |r| r.message_id.replace_range(0..1, "f"),
            |r| r.reader = "bob2".to_owned(),
            |r| r.sender = "alicf".to_owned(),
            |r| r.kind = ReceiptKind::Delivered,
            |r| r.at += 1,
            |r| r.signature[0] ^= 1,
        ];
        for (i, tamper) in tampers.iter().enumerate() {
            let mut t = r.clone();
            tamper(&mut t);
            let err = verify_receipt(&bob.identity_public(), &t).unwrap_err();
            assert!(
                matches!(err, CryptoError::BadSignature),
                "tamper {i}: {err:?}"
            );
        }
        // Signed by someone else.
        let eve = Identity::generate();
        let forged = sign_receipt(&eve, ID, "bob", "alice", ReceiptKind::Read, 1234);
        assert!(matches!(
            verify_receipt(&bob.identity_public(), &forged),
            Err(CryptoError::BadSignature)
        ));
        // Malformed.
        let mut t = r.clone();
        t.signature.pop();
        assert!(matches!(
            verify_receipt(&bob.identity_public(), &t),
            Err(CryptoError::BadLength {
                field: "signature",
                len: 63
            })
        ));
        let mut t = r.clone();
        t.message_id = "x".to_owned();
        assert!(matches!(
            verify_receipt(&bob.identity_public(), &t),
            Err(CryptoError::BadId)
        ));
        let mut t = r.clone();
        t.reader = "bob\nalice".to_owned();
        assert!(matches!(
            verify_receipt(&bob.identity_public(), &t),
            Err(CryptoError::BadName(_))
        ));
        assert!(matches!(
            verify_receipt(&[1; 16], &r),
            Err(CryptoError::BadKey(_))
        ));
    }

    #[test]
    fn secret_bytes_round_trip() {
        let id = Identity::generate();
        let bytes = id.to_secret_bytes();
        let back = Identity::from_secret_bytes(&bytes).unwrap();
        assert_eq!(back.identity_public(), id.identity_public());
        assert_eq!(back.exchange_public(), id.exchange_public());
        assert_eq!(back.to_secret_bytes(), bytes);
        assert!(matches!(
            Identity::from_secret_bytes(&bytes[..63]),
            Err(CryptoError::BadKey(_))
        ));
        assert!(matches!(
            Identity::from_secret_bytes(&[0; 65]),
            Err(CryptoError::BadKey(_))
        ));
        // A restored identity opens what was sealed to the original.
        let alice = Identity::generate();
        let env = seal(
            &alice,
            "alice",
            "bob",
            &id.exchange_public(),
            ID,
            1,
            0,
            "kept",
        )
        .unwrap();
        assert_eq!(
            open(&back, "bob", &alice.identity_public(), &env).unwrap(),
            "kept"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let id = identity(1, 3);
        let shown = format!("{id:?}");
        assert!(shown.contains(&hex(&id.identity_public())), "{shown}");
        assert!(shown.contains(&hex(&id.exchange_public())), "{shown}");
        assert!(
            !shown.contains(&hex(&[1u8; 32])) && !shown.contains(&hex(&[3u8; 32])),
            "{shown}"
        );
        assert!(
            !shown.contains("[1, 1,") && !shown.contains("[3, 3,"),
            "{shown}"
        );
    }

    /// Expected values computed independently with Python's `cryptography` (Ed25519PrivateKey,
    /// X25519PrivateKey, HKDF, ChaCha20Poly1305 following docs/telegraph-crypto.md): alice's
    /// identity secret [1; 32], ephemeral secret [2; 32], bob's exchange secret [3; 32], nonce
    /// [4; 12], id 000102…0f, counter 1, sentAt 1700000000000; bob's identity secret [7; 32]
    /// signs a `read` receipt at 1700000001234.
    #[test]
    fn interop_vector() {
        let alice = identity(1, 5);
        let bob = identity(7, 3);
        assert_eq!(
            hex(&alice.identity_public()),
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
        );
        assert_eq!(
            hex(&bob.exchange_public()),
            "5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22"
        );
        assert_eq!(
            hex(&bob.identity_public()),
            "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
        );
        let env = seal_with(
            &alice,
            "alice",
            "bob",
            &bob.exchange_public(),
            ID,
            1,
            1_700_000_000_000,
            "hello, bob \u{2713}",
            [2; 32],
            [4; 12],
        )
        .unwrap();
        assert_eq!(
            hex(&env.ephemeral),
            "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59"
        );
        assert_eq!(
            String::from_utf8(header_bytes(&env)).unwrap(),
            "telegraph-v1 message\n000102030405060708090a0b0c0d0e0f\nalice\nbob\n1\n1700000000000\n\
             ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59\n"
        );
        let shared =
            StaticSecret::from([2; 32]).diffie_hellman(&PublicKey::from(bob.exchange_public()));
        assert_eq!(
            hex(shared.as_bytes()),
            "7c425a51f6a7f2e60012b0a34dd6511017807708b502ee66a2a247f171fda96c"
        );
        let ephemeral: [u8; 32] = env.ephemeral.clone().try_into().unwrap();
        assert_eq!(
            hex(&derive_key(
                shared.as_bytes(),
                &ephemeral,
                &bob.exchange_public()
            )),
            "af73fcc14129479c22d2bacc67fbc954ac2e6f2dbabcb25198f4e4928f3cc6fe"
        );
        assert_eq!(hex(&env.nonce), "040404040404040404040404");
        assert_eq!(
            hex(&env.ciphertext),
            "1e8123b38ca22b4de21b0dcc0b1a380ee73364794dc0d96d72c74a9bb2fa"
        );
        assert_eq!(
            hex(&env.signature),
            "9def5030446b57511597ad1ebb11424e526ad89cd66bae740b58d8ab2f12d3d6\
             656ae3588ba97ec6a54ed90175611f19a2a517713b32c6f3e4ac3e83d53b1b02"
        );
        assert_eq!(
            open(&bob, "bob", &alice.identity_public(), &env).unwrap(),
            "hello, bob \u{2713}"
        );

        let r = sign_receipt(
            &bob,
            ID,
            "bob",
            "alice",
            ReceiptKind::Read,
            1_700_000_001_234,
        );
        assert_eq!(
            hex(&r.signature),
            "9480af85b350ae4df1a0397dcf9fe0ae8caab3a15039f9f2355a8f81783ad325\
             888591ddd0a4e566f696e329038070eef50b5d9b0eb721489a11575675a78d01"
        );
        verify_receipt(&bob.identity_public(), &r).unwrap();
    }

    #[test]
    fn error_messages_are_clear() {
        let e = CryptoError::BadLength {
            field: "nonce",
            len: 11,
        };
        assert_eq!(e.to_string(), "`nonce` is 11 bytes, expected 12");
        let e = CryptoError::WrongRecipient {
            expected: "bob".into(),
            got: shorten(&"a\n".repeat(100)),
        };
        let s = e.to_string();
        assert!(
            s.contains("\\n") && !s.contains('\n') && s.len() < 200,
            "{s}"
        );
    }
}
