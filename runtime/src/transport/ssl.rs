//! TLS for `ssl` and `wss` endpoints, configured by IceSSL's properties and behaving as
//! ZeroC's IceSSL (OpenSSL build) does: rustls with the ring provider underneath.
//!
//! One [`SslEngine`] per communicator, built from its properties on first use. A client
//! verifies the server's certificate against `IceSSL.CAs` (`IceSSL.VerifyPeer` > 0) and, with
//! `IceSSL.CheckCertName`, the host it dialled; a server asks for a client certificate
//! (`VerifyPeer` 1) or requires one (2). After the handshake both sides apply
//! `IceSSL.VerifyDepthMax` and `IceSSL.TrustOnly*`, whatever `VerifyPeer` says, as IceSSL does.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, CommonState, DigitallySignedStruct,
    RootCertStore, ServerConfig, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::certs;
use super::trust::{DistinguishedName, TrustManager};
use crate::error::{Error, Result, SecurityReason};
use crate::properties::Properties;

/// What an `ssl` or `wss` connection knows about its peer: IceSSL's `ConnectionInfo`. Reach it
/// with [`Connection::ssl_info`](crate::Connection::ssl_info), from a dispatch through
/// `current.con`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslConnectionInfo {
    /// The negotiated cipher suite, by its IANA name (`TLS13_AES_256_GCM_SHA384`).
    pub cipher: String,
    /// The TLS version: `TLSv1.2` or `TLSv1.3`.
    pub protocol: String,
    /// The peer's certificate chain as DER, its own certificate first, then its issuers up to
    /// the trusted CA when they are known (sent by the peer or in `IceSSL.CAs`). Empty when the
    /// peer sent no certificate (a client of a server with `IceSSL.VerifyPeer=0`, for instance).
    pub certs: Vec<Vec<u8>>,
    /// Whether the chain was verified against `IceSSL.CAs` (and, with `IceSSL.CheckCertName`,
    /// the host name). False when no certificate came, or when `IceSSL.VerifyPeer=0` let an
    /// unverifiable one through.
    pub verified: bool,
    /// For an outgoing connection, the host dialled; empty for an incoming one.
    pub host: String,
}

impl SslConnectionInfo {
    /// The subject of the peer's certificate, as IceSSL writes it
    /// (`CN=client,OU=Ice,O=ZeroC,C=US`); `None` without certificate.
    pub fn peer_subject(&self) -> Option<DistinguishedName> {
        self.certs
            .first()
            .and_then(|c| DistinguishedName::subject_of(c))
    }

    /// The issuer of the peer's certificate; `None` without certificate.
    pub fn peer_issuer(&self) -> Option<DistinguishedName> {
        self.certs
            .first()
            .and_then(|c| DistinguishedName::issuer_of(c))
    }
}

/// The TLS state of a communicator, built from `IceSSL.*` once.
pub(crate) struct SslEngine {
    client: Arc<ClientConfig>,
    server: std::result::Result<Arc<ServerConfig>, String>,
    verifier: Arc<ServerVerifier>,
    ca_certs: Vec<CertificateDer<'static>>,
    verify_peer: i32,
    verify_depth_max: i32,
    trust: TrustManager,
    trace: i32,
}

impl std::fmt::Debug for SslEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslEngine")
            .field("verify_peer", &self.verify_peer)
            .field("verify_depth_max", &self.verify_depth_max)
            .finish_non_exhaustive()
    }
}

fn init_error(message: impl std::fmt::Display) -> Error {
    Error::Initialization(format!("IceSSL: {message}"))
}

/// `IceSSL.Protocols`: which TLS versions to offer (default both 1.2 and 1.3).
fn protocols(props: &Properties) -> Result<Vec<&'static rustls::SupportedProtocolVersion>> {
    let list = props.get_property_as_list("IceSSL.Protocols");
    if list.is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut versions = Vec::new();
    for p in list {
        let v = match p.to_ascii_uppercase().as_str() {
            "TLS1_2" | "TLSV1_2" => &rustls::version::TLS12,
            "TLS1_3" | "TLSV1_3" => &rustls::version::TLS13,
            "SSL3" | "SSLV3" | "TLS" | "TLS1" | "TLSV1" | "TLS1_0" | "TLSV1_0" | "TLS1_1"
            | "TLSV1_1" => {
                return Err(init_error(format!(
                    "IceSSL.Protocols: {p} is not supported (only tls1_2 and tls1_3 are)"
                )));
            }
            _ => {
                return Err(init_error(format!(
                    "IceSSL.Protocols: unrecognized protocol `{p}`"
                )));
            }
        };
        if !versions.contains(&v) {
            versions.push(v);
        }
    }
    Ok(versions)
}

impl SslEngine {
    /// Reads IceSSL's properties and loads the files they name.
    pub(crate) fn new(props: &Properties) -> Result<SslEngine> {
        let verify_peer = props.get_property_as_int_with_default("IceSSL.VerifyPeer", 2);
        if !(0..=2).contains(&verify_peer) {
            return Err(init_error(
                "invalid value for IceSSL.VerifyPeer (0, 1 or 2)",
            ));
        }
        let check_cert_name = props.get_property_as_int_with_default("IceSSL.CheckCertName", 0);
        let verify_depth_max = props.get_property_as_int_with_default("IceSSL.VerifyDepthMax", 3);
        let default_dir = props.get_property("IceSSL.DefaultDir");
        // ring rather than aws-lc-rs: no C toolchain beyond cc, a fraction of the build time.
        // rustls deprecates ring's provider for lacking post-quantum key exchange, which
        // ZeroC's peers (OpenSSL 3.0 on Debian 12) do not offer either.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = protocols(props)?;

        let ca_certs = certs::load_cas(
            &props.get_property("IceSSL.CAs"),
            &default_dir,
            props.get_property_as_int("IceSSL.UsePlatformCAs") > 0,
        )?;
        let mut roots = RootCertStore::empty();
        for c in &ca_certs {
            roots
                .add(c.clone())
                .map_err(|e| init_error(format!("IceSSL.CAs: unusable CA certificate: {e}")))?;
        }
        let roots = Arc::new(roots);
        let identity = certs::load_identity(
            &props.get_property("IceSSL.CertFile"),
            &props.get_property("IceSSL.KeyFile"),
            &props.get_property("IceSSL.Password"),
            &default_dir,
        )?;

        let verifier = Arc::new(ServerVerifier {
            roots: roots.clone(),
            provider: provider.clone(),
            verify_peer,
            check_cert_name: check_cert_name > 0,
        });
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(init_error)?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let mut client = match &identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| {
                    init_error(format!("IceSSL.CertFile: unusable certificate or key: {e}"))
                })?,
            None => builder.with_no_client_auth(),
        };
        // IceSSL sends the host name (SNI) only with CheckCertName > 1.
        client.enable_sni = check_cert_name > 1;

        let server = match identity {
            None => Err("IceSSL.CertFile is not set: a server needs a certificate".to_string()),
            Some(id) => {
                let builder = ServerConfig::builder_with_provider(provider.clone())
                    .with_protocol_versions(&versions)
                    .map_err(init_error)?;
                let builder = if verify_peer == 0 {
                    builder.with_no_client_auth()
                } else if roots.is_empty() {
                    return Err(init_error(format!(
                        "IceSSL.VerifyPeer={verify_peer} makes servers verify client certificates, \
                         but IceSSL.CAs names no CA certificate to verify them with"
                    )));
                } else {
                    let mut b = WebPkiClientVerifier::builder_with_provider(
                        roots.clone(),
                        provider.clone(),
                    );
                    if verify_peer == 1 {
                        b = b.allow_unauthenticated();
                    }
                    builder.with_client_cert_verifier(b.build().map_err(init_error)?)
                };
                Ok(Arc::new(
                    builder.with_single_cert(id.chain, id.key).map_err(|e| {
                        init_error(format!("IceSSL.CertFile: unusable certificate or key: {e}"))
                    })?,
                ))
            }
        };
        Ok(SslEngine {
            client: Arc::new(client),
            server,
            verifier,
            ca_certs,
            verify_peer,
            verify_depth_max,
            trust: TrustManager::from_properties(props)?,
            trace: props.get_property_as_int("IceSSL.Trace.Security"),
        })
    }

    /// Fails unless this engine can accept connections (it has a certificate).
    pub(crate) fn check_server(&self) -> Result<()> {
        self.server.as_ref().map(|_| ()).map_err(init_error)
    }

    /// The client handshake on a connected socket to `host` (`addr` for messages).
    pub(crate) async fn connect(
        &self,
        stream: TcpStream,
        host: &str,
        addr: &str,
    ) -> Result<(TlsStream<TcpStream>, SslConnectionInfo)> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| Error::Security {
            reason: SecurityReason::Handshake,
            message: format!(
                "cannot use `{host}` as a TLS server name (neither a DNS name nor an IP address)"
            ),
        })?;
        let connector = tokio_rustls::TlsConnector::from(self.client.clone());
        let tls = connector
            .connect(name.clone(), stream)
            .await
            .map_err(|e| handshake_error(e, false, addr, self.verify_peer))?;
        let info = self.finish(tls.get_ref().1, false, host, Some(&name), None, addr)?;
        Ok((TlsStream::Client(tls), info))
    }

    /// The server handshake on a socket accepted by `adapter`.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
        adapter: &str,
        addr: &str,
    ) -> Result<(TlsStream<TcpStream>, SslConnectionInfo)> {
        let config = self.server.as_ref().map_err(init_error)?.clone();
        let tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(stream)
            .await
            .map_err(|e| handshake_error(e, true, addr, self.verify_peer))?;
        let info = self.finish(tls.get_ref().1, true, "", None, Some(adapter), addr)?;
        Ok((TlsStream::Server(tls), info))
    }

    /// After the handshake: the connection info, `IceSSL.VerifyDepthMax` and the trust manager.
    fn finish(
        &self,
        state: &CommonState,
        incoming: bool,
        host: &str,
        name: Option<&ServerName<'_>>,
        adapter: Option<&str>,
        addr: &str,
    ) -> Result<SslConnectionInfo> {
        let sent = state.peer_certificates().unwrap_or(&[]);
        let verified = match (sent.split_first(), incoming, name) {
            (None, _, _) => false,
            (Some(_), true, _) => self.verify_peer > 0,
            (Some(_), false, _) if self.verify_peer > 0 => true,
            (Some((leaf, rest)), false, Some(name)) => self
                .verifier
                .check(leaf, rest, name, UnixTime::now())
                .is_ok(),
            (Some(_), false, None) => false,
        };
        let info = SslConnectionInfo {
            cipher: state
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str())
                .unwrap_or("")
                .to_string(),
            protocol: match state.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            },
            certs: self.chain(sent),
            verified,
            host: host.to_string(),
        };
        let direction = if incoming { "incoming" } else { "outgoing" };
        let peer = if incoming { "from" } else { "to" };
        if self.verify_depth_max > 0 && info.certs.len() > self.verify_depth_max as usize {
            return Err(Error::Security {
                reason: SecurityReason::ChainTooLong,
                message: format!(
                    "{direction} ssl connection {peer} {addr} rejected: length of peer's certificate \
                     chain ({}) exceeds maximum of {} (IceSSL.VerifyDepthMax)",
                    info.certs.len(),
                    self.verify_depth_max
                ),
            });
        }
        let subject = info.peer_subject();
        if !self.trust.trusts(subject.as_ref(), adapter) {
            let who = match &subject {
                Some(s) => format!("certificate `{s}`"),
                None => "peer without certificate".to_string(),
            };
            return Err(Error::Security {
                reason: SecurityReason::NotTrusted,
                message: format!(
                    "{direction} ssl connection {peer} {addr} rejected by the trust manager: {who} \
                     is not trusted by IceSSL.TrustOnly and IceSSL.TrustOnly.{}",
                    if incoming {
                        "Server[.<Adapter>]"
                    } else {
                        "Client"
                    }
                ),
            });
        }
        if self.trace >= 1 {
            tracing::info!(
                target: "floe::security",
                "SSL summary for {direction} connection {peer} {addr}\ncipher = {}\nprotocol = {}\n\
                 subject = {}\nverified = {}",
                info.cipher,
                info.protocol,
                subject.map(|s| s.to_string()).unwrap_or_default(),
                info.verified
            );
        }
        Ok(info)
    }

    /// The peer's chain from its certificate up: each next certificate is the issuer of the
    /// last, taken from what the peer sent or from the CA certificates.
    fn chain(&self, sent: &[CertificateDer<'_>]) -> Vec<Vec<u8>> {
        let Some(leaf) = sent.first() else {
            return Vec::new();
        };
        let names = |der: &[u8]| -> Option<Names> {
            let (_, c) = X509Certificate::from_der(der).ok()?;
            Some((c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
        };
        let candidates: Vec<(&[u8], Names)> = sent[1..]
            .iter()
            .chain(self.ca_certs.iter())
            .filter_map(|c| Some((c.as_ref(), names(c.as_ref())?)))
            .collect();
        let mut chain = vec![leaf.to_vec()];
        let Some((mut subject, mut issuer)) = names(leaf.as_ref()) else {
            return chain;
        };
        while subject != issuer && chain.len() < 16 {
            let Some((der, (s, i))) = candidates
                .iter()
                .find(|(der, (s, _))| *s == issuer && !chain.iter().any(|c| c == der))
            else {
                break;
            };
            chain.push(der.to_vec());
            subject = s.clone();
            issuer = i.clone();
        }
        chain
    }
}

/// A certificate's subject and issuer, DER-encoded.
type Names = (Vec<u8>, Vec<u8>);

/// A handshake failure as a [`Error::Security`] (a TLS error) or a lost connection.
fn handshake_error(e: std::io::Error, incoming: bool, addr: &str, verify_peer: i32) -> Error {
    let direction = if incoming { "incoming" } else { "outgoing" };
    let peer = if incoming { "from" } else { "to" };
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => security_error(
            tls,
            incoming,
            &format!("{direction} ssl connection {peer} {addr}"),
            verify_peer,
        ),
        None => Error::ConnectionLost(format!(
            "{direction} ssl connection {peer} {addr}: TLS handshake: {e}"
        )),
    }
}

/// An I/O error on an established `ssl`/`wss` stream: a TLS alert the peer sent after the
/// handshake (a TLS 1.3 server refusing the client's certificate) becomes a security error.
pub(crate) fn stream_error(e: &std::io::Error, addr: &str) -> Option<Error> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(security_error(
        tls,
        false,
        &format!("outgoing ssl connection to {addr}"),
        2,
    ))
}

fn security_error(tls: &rustls::Error, incoming: bool, what: &str, verify_peer: i32) -> Error {
    let whose = if incoming { "client's" } else { "server's" };
    let (reason, detail) = match tls {
        rustls::Error::InvalidCertificate(c) => {
            let reason = match c {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    SecurityReason::CertificateExpired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    SecurityReason::CertificateNotYetValid
                }
                CertificateError::UnknownIssuer => SecurityReason::UntrustedIssuer,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    SecurityReason::HostNameMismatch
                }
                _ => SecurityReason::BadCertificate,
            };
            let what = match reason {
                SecurityReason::UntrustedIssuer => {
                    "it was not issued by a CA of IceSSL.CAs".to_string()
                }
                SecurityReason::HostNameMismatch => format!("{c} (IceSSL.CheckCertName)"),
                _ => c.to_string(),
            };
            (
                reason,
                format!(
                    "the {whose} certificate failed verification: {what}; \
                     IceSSL.VerifyPeer={verify_peer} refuses it"
                ),
            )
        }
        rustls::Error::NoCertificatesPresented => (
            SecurityReason::NoClientCertificate,
            "the client sent no certificate, and IceSSL.VerifyPeer=2 requires one".to_string(),
        ),
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => (
            SecurityReason::CertificateRejectedByPeer,
            "the server requires a client certificate (set IceSSL.CertFile)".to_string(),
        ),
        rustls::Error::AlertReceived(
            a @ (AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied),
        ) => (
            SecurityReason::CertificateRejectedByPeer,
            format!("the peer refused our certificate ({a:?} alert)"),
        ),
        rustls::Error::AlertReceived(a) => (
            SecurityReason::Handshake,
            format!(
                "the peer aborted the handshake ({a:?} alert: no protocol version or cipher suite in \
                 common (IceSSL.Protocols), or a client certificate it requires is missing)"
            ),
        ),
        other => (SecurityReason::Handshake, other.to_string()),
    };
    Error::Security {
        reason,
        message: format!("{what}: {detail}"),
    }
}

/// Verifies servers' certificates as IceSSL's client does: against the CA certificates, and
/// with `IceSSL.CheckCertName` against the host dialled; `IceSSL.VerifyPeer=0` lets any
/// certificate through (the handshake signatures are still checked).
#[derive(Debug)]
struct ServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    verify_peer: i32,
    check_cert_name: bool,
}

impl ServerVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> std::result::Result<(), rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.check_cert_name && !name_matches(end_entity, name) {
            // Let webpki describe the mismatch (what the certificate names instead).
            verify_server_name(&cert, name)?;
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(())
    }
}

/// IceSSL's (OpenSSL's) name check: an IP address against the IP addresses of the subject
/// alternative names; a host name against their DNS names (a `*.` wildcard covers one label),
/// or against the common name when there are none.
fn name_matches(der: &[u8], name: &ServerName<'_>) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    let sans: Vec<GeneralName<'_>> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.clone(),
        _ => Vec::new(),
    };
    match name {
        ServerName::IpAddress(ip) => {
            let ip: std::net::IpAddr = (*ip).into();
            let octets = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            sans.iter()
                .any(|g| matches!(g, GeneralName::IPAddress(b) if *b == octets.as_slice()))
        }
        ServerName::DnsName(dns) => {
            let host = dns.as_ref().to_ascii_lowercase();
            let dns_names: Vec<String> = sans
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect();
            if dns_names.is_empty() {
                return cert
                    .subject()
                    .iter_common_name()
                    .filter_map(|cn| cn.as_str().ok())
                    .any(|cn| cn.eq_ignore_ascii_case(&host));
            }
            dns_names.iter().any(|d| match d.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => *d == host,
            })
        }
        _ => false,
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, server_name, now) {
            Err(e) if self.verify_peer > 0 => Err(e),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
