//! The runtime's one error type. Its variants follow Ice's local exceptions.

use std::fmt;

/// Shorthand for results whose error is the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure in the runtime, named after the Ice local exception it corresponds to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Data could not be encoded or decoded (Ice's `MarshalException` and its subclasses).
    #[error("marshal error: {0}")]
    Marshal(String),
    /// A message or encapsulation is larger than allowed (Ice's `MemoryLimitException`).
    #[error("memory limit: {0}")]
    MemoryLimit(String),
    /// A datagram is larger than the sending socket carries (Ice's `DatagramLimitException`):
    /// the message's size and the limit, `min(65507, Ice.UDP.SndSize - 28)`.
    #[error("datagram of {size} bytes exceeds the limit of {limit} bytes")]
    DatagramLimit {
        /// The message's size.
        size: usize,
        /// The largest datagram the socket carries.
        limit: usize,
    },
    /// The peer violated the protocol (Ice's `ProtocolException` family).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// An encoding version that this runtime does not support.
    #[error("unsupported encoding {0}")]
    UnsupportedEncoding(String),
    /// A class of an unknown type arrived in the compact format (Ice's `NoValueFactoryException`).
    #[error("no value factory for type `{0}`")]
    NoValueFactory(String),
    /// A user exception the receiver does not know (Ice's `UnknownUserException`).
    #[error("unknown user exception `{0}`")]
    UnknownUserException(String),
    /// A stringified identity could not be parsed (Ice's `IdentityParseException`).
    #[error("identity parse error: {0}")]
    IdentityParse(String),
    /// The operation needs a reply but the proxy is oneway or batch oneway.
    #[error("operation `{0}` can only be called twoway")]
    TwowayOnly(String),
    /// Bad configuration or start-up failure (Ice's `InitializationException`).
    #[error("initialization failed: {0}")]
    Initialization(String),
    /// The communicator was destroyed (Ice's `CommunicatorDestroyedException`).
    #[error("communicator destroyed")]
    CommunicatorDestroyed,
    /// The object adapter is deactivated (Ice's `ObjectAdapterDeactivatedException`).
    #[error("object adapter `{0}` deactivated")]
    ObjectAdapterDeactivated(String),
    /// The peer refused the connection (Ice's `ConnectionRefusedException`).
    #[error("connection refused: {0}")]
    ConnectionRefused(String),
    /// Connecting failed for another reason (Ice's `ConnectFailedException`).
    #[error("connect failed: {0}")]
    ConnectFailed(String),
    /// Connecting took longer than the endpoint timeout (Ice's `ConnectTimeoutException`).
    #[error("connect timed out: {0}")]
    ConnectTimeout(String),
    /// The connection was lost (Ice's `ConnectionLostException` / `SocketException`).
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The peer closed the connection gracefully with CloseConnection before replying (Ice's
    /// `CloseConnectionException`); the request was not dispatched and is safe to retry.
    #[error("connection closed by peer")]
    CloseConnection,
    /// The connection was closed locally (Ice's `ConnectionManuallyClosedException`).
    #[error("connection closed: {0}")]
    ConnectionClosed(String),
    /// The connection was idle or silent for longer than allowed (Ice's
    /// `ConnectionTimeoutException`, raised by ACM).
    #[error("connection timed out (Ice.ACM timeout)")]
    ConnectionTimeout,
    /// No reply arrived within the invocation timeout (Ice's `InvocationTimeoutException`).
    #[error("invocation timed out after {0} ms (ice_invocation_timeout)")]
    InvocationTimeout(u64),
    /// The target object does not exist (reply status 2).
    #[error("object does not exist: {0}")]
    ObjectNotExist(Box<RequestFailed>),
    /// The target object exists but not with this facet (reply status 3).
    #[error("facet does not exist: {0}")]
    FacetNotExist(Box<RequestFailed>),
    /// The target object does not implement the operation (reply status 4).
    #[error("operation does not exist: {0}")]
    OperationNotExist(Box<RequestFailed>),
    /// The server failed with a local exception (reply status 5); the text is the server's.
    #[error("unknown local exception: {0}")]
    UnknownLocalException(String),
    /// The server failed with an exception that is neither local nor user (reply status 7).
    #[error("unknown exception: {0}")]
    UnknownException(String),
    /// A proxy string could not be parsed (Ice's `ProxyParseException`).
    #[error("cannot parse proxy: {0}")]
    ProxyParse(String),
    /// An endpoint string could not be parsed (Ice's `EndpointParseException`).
    #[error("cannot parse endpoint: {0}")]
    EndpointParse(String),
    /// A servant or object is already registered (Ice's `AlreadyRegisteredException`).
    #[error("{kind} `{id}` is already registered")]
    AlreadyRegistered {
        /// What was registered ("servant", "object adapter", ...).
        kind: String,
        /// Its name or identity.
        id: String,
    },
    /// A servant or object is not registered (Ice's `NotRegisteredException`).
    #[error("{kind} `{id}` is not registered")]
    NotRegistered {
        /// What was looked up.
        kind: String,
        /// Its name or identity.
        id: String,
    },
    /// A proxy has no usable endpoint (Ice's `NoEndpointException`).
    #[error("no suitable endpoint for proxy `{0}`")]
    NoEndpoint(String),
    /// A feature this runtime does not implement (Ice's `FeatureNotSupportedException`).
    #[error("feature not supported: {0}")]
    FeatureNotSupported(String),
    /// A fixed proxy or other illegal use of the API (Ice's `IllegalArgumentException` family).
    #[error("illegal argument: {0}")]
    IllegalArgument(String),
    /// A TLS handshake failed, or the peer's certificate was refused (Ice's `SecurityException`
    /// raised by IceSSL). `reason` says what went wrong for code to match on; `message` names
    /// the peer, the certificate and the IceSSL property involved.
    #[error("security error ({reason}): {message}")]
    Security {
        /// What failed.
        reason: SecurityReason,
        /// The details, for people.
        message: String,
    },
}

/// Why an `ssl` or `wss` connection was refused ([`Error::Security`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityReason {
    /// The peer's certificate (or one of its issuers) is past its end of validity.
    CertificateExpired,
    /// The peer's certificate (or one of its issuers) is not valid yet.
    CertificateNotYetValid,
    /// The peer's certificate does not lead to a CA of `IceSSL.CAs`.
    UntrustedIssuer,
    /// The server's certificate names neither the host nor the IP address dialled
    /// (`IceSSL.CheckCertName`).
    HostNameMismatch,
    /// Some other defect of the peer's certificate: bad signature, wrong key usage, unreadable.
    BadCertificate,
    /// The client sent no certificate though the server requires one (`IceSSL.VerifyPeer=2`).
    NoClientCertificate,
    /// The peer refused the certificate we sent, or sent none that it could accept (it
    /// answered with a TLS alert).
    CertificateRejectedByPeer,
    /// The peer's certificate chain is longer than `IceSSL.VerifyDepthMax`.
    ChainTooLong,
    /// The peer's certificate is refused by `IceSSL.TrustOnly` (or `.Client`, `.Server`,
    /// `.Server.<Adapter>`).
    NotTrusted,
    /// The handshake failed for another reason: no protocol version or cipher suite in
    /// common (`IceSSL.Protocols`), a peer that does not speak TLS, a malformed message.
    Handshake,
}

impl fmt::Display for SecurityReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityReason::CertificateExpired => "certificate expired",
            SecurityReason::CertificateNotYetValid => "certificate not yet valid",
            SecurityReason::UntrustedIssuer => "untrusted issuer",
            SecurityReason::HostNameMismatch => "host name mismatch",
            SecurityReason::BadCertificate => "bad certificate",
            SecurityReason::NoClientCertificate => "no client certificate",
            SecurityReason::CertificateRejectedByPeer => "certificate rejected by peer",
            SecurityReason::ChainTooLong => "certificate chain too long",
            SecurityReason::NotTrusted => "rejected by IceSSL.TrustOnly",
            SecurityReason::Handshake => "TLS handshake failed",
        })
    }
}

/// The fields of an ObjectNotExist, FacetNotExist or OperationNotExist failure, as carried by the
/// reply: the target's identity, facet and operation. Empty fields are filled in from the request
/// by the server before replying.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestFailed {
    /// The identity's name.
    pub name: String,
    /// The identity's category.
    pub category: String,
    /// The facet ("" for the default facet).
    pub facet: String,
    /// The operation.
    pub operation: String,
}

impl fmt::Display for RequestFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.category.is_empty() {
            write!(f, "identity `{}`", self.name)?;
        } else {
            write!(f, "identity `{}/{}`", self.category, self.name)?;
        }
        if !self.facet.is_empty() {
            write!(f, " facet `{}`", self.facet)?;
        }
        write!(f, " operation `{}`", self.operation)
    }
}

impl Error {
    /// A [`Error::Marshal`] with the given message.
    pub fn marshal(message: impl fmt::Display) -> Self {
        Error::Marshal(message.to_string())
    }

    /// Whether a request that failed with this error was certainly not delivered to the servant,
    /// so that it may be sent again whatever its mode (Ice retries these for every call).
    pub fn is_retryable_unsent(&self) -> bool {
        matches!(
            self,
            Error::ConnectionRefused(_)
                | Error::ConnectFailed(_)
                | Error::ConnectTimeout(_)
                | Error::CloseConnection
        )
    }

    /// Whether a request that failed with this error may be retried when its operation is
    /// idempotent (or nonmutating): the request may have been delivered, but running it twice is
    /// harmless. ObjectNotExist/FacetNotExist/OperationNotExist, marshaling errors, timeouts of the
    /// invocation itself and user-level failures are never retried.
    pub fn is_retryable_idempotent(&self) -> bool {
        self.is_retryable_unsent()
            || matches!(
                self,
                Error::ConnectionLost(_)
                    | Error::ConnectionTimeout
                    | Error::UnknownLocalException(_)
                    | Error::UnknownException(_)
            )
    }
}
