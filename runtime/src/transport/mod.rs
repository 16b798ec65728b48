//! Transports beneath the connection: TLS for `ssl` and `wss` endpoints (IceSSL's properties,
//! on rustls), the peer information a secure connection exposes, and the distinguished names
//! IceSSL's trust rules are written in.
//!
//! A connection is a TCP stream, optionally wrapped in TLS (`ssl`), optionally carrying
//! WebSocket frames (`ws`, and `wss` = TLS then WebSocket); the connection actor runs on any
//! of them. `connection::connect` and the object adapter's accept loop call the handshakes
//! here.

pub(crate) mod certs;
pub(crate) mod ssl;
pub(crate) mod tcp;
pub(crate) mod trust;
pub(crate) mod udp;
pub(crate) mod ws;

pub use ssl::SslConnectionInfo;
pub use trust::DistinguishedName;
