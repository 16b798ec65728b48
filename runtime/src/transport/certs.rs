//! Certificate and key files as IceSSL finds and reads them: paths relative to
//! `IceSSL.DefaultDir`, CA certificates in a PEM (or DER) file or a directory of them, and the
//! process's own certificate chain and key in a PKCS#12 file (`IceSSL.Password`) or in PEM
//! files (`IceSSL.CertFile`, `IceSSL.KeyFile`).

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};

fn init_error(message: String) -> Error {
    Error::Initialization(format!("IceSSL: {message}"))
}

/// Resolves `path` as IceSSL does: an absolute path as is, a relative one under `default_dir`
/// when that is set; `None` when no file (or directory, with `dir`) is there.
pub(crate) fn resolve(path: &str, default_dir: &str, dir: bool) -> Option<PathBuf> {
    let p = Path::new(path);
    let full = if p.is_absolute() || default_dir.is_empty() {
        p.to_path_buf()
    } else {
        Path::new(default_dir).join(p)
    };
    let exists = if dir { full.is_dir() } else { full.is_file() };
    exists.then_some(full)
}

fn read(path: &Path, property: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| init_error(format!("{property}: cannot read {}: {e}", path.display())))
}

/// The certificates of a PEM file, or the one certificate of a DER file.
fn certificates_in(
    bytes: &[u8],
    path: &Path,
    property: &str,
) -> Result<Vec<CertificateDer<'static>>> {
    if bytes.starts_with(&[0x30]) {
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| init_error(format!("{property}: {}: {e}", path.display())))?;
    Ok(certs)
}

/// The CA certificates of `IceSSL.CAs` (a file, else a directory whose every file is read),
/// or of the system's bundle with `IceSSL.UsePlatformCAs`.
pub(crate) fn load_cas(
    cas: &str,
    default_dir: &str,
    use_platform: bool,
) -> Result<Vec<CertificateDer<'static>>> {
    if cas.is_empty() {
        if !use_platform {
            return Ok(Vec::new());
        }
        let bundle = std::env::var("SSL_CERT_FILE")
            .ok()
            .map(PathBuf::from)
            .into_iter()
            .chain(
                [
                    "/etc/ssl/certs/ca-certificates.crt",
                    "/etc/pki/tls/certs/ca-bundle.crt",
                    "/etc/ssl/cert.pem",
                ]
                .map(PathBuf::from),
            )
            .find(|p| p.is_file())
            .ok_or_else(|| {
                init_error("IceSSL.UsePlatformCAs: no system CA bundle found".to_string())
            })?;
        return certificates_in(
            &read(&bundle, "IceSSL.UsePlatformCAs")?,
            &bundle,
            "IceSSL.UsePlatformCAs",
        );
    }
    if let Some(file) = resolve(cas, default_dir, false) {
        let certs = certificates_in(&read(&file, "IceSSL.CAs")?, &file, "IceSSL.CAs")?;
        if certs.is_empty() {
            return Err(init_error(format!(
                "IceSSL.CAs: no certificate in {}",
                file.display()
            )));
        }
        return Ok(certs);
    }
    let Some(dir) = resolve(cas, default_dir, true) else {
        return Err(init_error(format!(
            "CA certificate path not found: {cas} (IceSSL.CAs)"
        )));
    };
    let mut certs = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| init_error(format!("IceSSL.CAs: cannot list {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.is_file()) {
        // Like OpenSSL's hashed directories, files that hold no certificate are skipped.
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(found) = certificates_in(&bytes, &path, "IceSSL.CAs") {
                certs.extend(found);
            }
        }
    }
    Ok(certs)
}

/// The process's certificate chain (leaf first) and private key.
pub(crate) struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads `IceSSL.CertFile` (PKCS#12, else PEM) and `IceSSL.KeyFile` (PEM; by default the
/// certificate file itself); `None` when no certificate is configured.
pub(crate) fn load_identity(
    cert_file: &str,
    key_file: &str,
    password: &str,
    default_dir: &str,
) -> Result<Option<Identity>> {
    if cert_file.is_empty() {
        return Ok(None);
    }
    let files: Vec<&str> = cert_file.split(':').filter(|s| !s.is_empty()).collect();
    if files.len() != 1 {
        return Err(init_error(format!(
            "invalid value for IceSSL.CertFile: {cert_file} (Floe takes one certificate file)"
        )));
    }
    let path = resolve(files[0], default_dir, false).ok_or_else(|| {
        init_error(format!(
            "certificate file not found: {} (IceSSL.CertFile)",
            files[0]
        ))
    })?;
    let bytes = read(&path, "IceSSL.CertFile")?;
    if bytes.starts_with(&[0x30]) {
        let identity = pkcs12(&bytes, password, &path)?;
        return Ok(Some(identity));
    }
    let chain = certificates_in(&bytes, &path, "IceSSL.CertFile")?;
    if chain.is_empty() {
        return Err(init_error(format!(
            "unable to load certificate chain from file {}: no PEM certificate in it (IceSSL.CertFile)",
            path.display()
        )));
    }
    let key_file = if key_file.is_empty() {
        files[0]
    } else {
        key_file
    };
    let key_path = resolve(key_file, default_dir, false)
        .ok_or_else(|| init_error(format!("key file not found: {key_file} (IceSSL.KeyFile)")))?;
    let key_bytes = read(&key_path, "IceSSL.KeyFile")?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        let encrypted = String::from_utf8_lossy(&key_bytes).contains("ENCRYPTED");
        init_error(if encrypted {
            format!(
                "unable to load private key from file {}: encrypted PEM keys are not supported; \
                 use a PKCS#12 file with IceSSL.Password, or an unencrypted key (IceSSL.KeyFile)",
                key_path.display()
            )
        } else {
            format!(
                "unable to load private key from file {}: {e} (IceSSL.KeyFile)",
                key_path.display()
            )
        })
    })?;
    Ok(Some(Identity { chain, key }))
}

/// The key of a PKCS#12 file and its certificate chain: the certificate paired with the key
/// (same local key id, else the first one), then its issuers found in the file.
fn pkcs12(bytes: &[u8], password: &str, path: &Path) -> Result<Identity> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password).map_err(|e| {
        let hint = if password.is_empty() {
            " (is IceSSL.Password set?)"
        } else {
            " (is IceSSL.Password right?)"
        };
        init_error(format!(
            "unable to load certificate chain from file {}: {e}{hint}",
            path.display()
        ))
    })?;
    let key = archive.keys.first().ok_or_else(|| {
        init_error(format!(
            "unable to load SSL private key: no key in {} (IceSSL.CertFile)",
            path.display()
        ))
    })?;
    let leaf = archive
        .certs
        .iter()
        .position(|c| {
            key.local_key_id
                .as_ref()
                .is_some_and(|id| c.local_key_id.as_deref() == Some(id.0.as_slice()))
        })
        .or_else(|| (!archive.certs.is_empty()).then_some(0))
        .ok_or_else(|| {
            init_error(format!(
                "unable to load SSL certificate: no certificate in {} (IceSSL.CertFile)",
                path.display()
            ))
        })?;
    let mut chain = vec![archive.certs[leaf].cert.clone()];
    while chain.len() < 10 {
        let last = chain.last().expect("not empty");
        if last.issuer() == last.subject() {
            break;
        }
        match archive
            .certs
            .iter()
            .find(|c| c.cert.subject() == last.issuer() && !chain.contains(&c.cert))
        {
            Some(issuer) => chain.push(issuer.cert.clone()),
            None => break,
        }
    }
    Ok(Identity {
        chain: chain
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.key.as_der().to_vec())),
    })
}
