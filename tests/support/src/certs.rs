//! Certificates for `ssl`/`wss` tests, made at test time (feature `certs`): a CA and the files
//! ZeroC's test suite uses, under the names and with the password its driver passes
//! (`IceSSL.DefaultDir=<dir>`, `IceSSL.CAs=cacert.pem`, `IceSSL.CertFile=server.p12` or
//! `client.p12`, `IceSSL.Password=password`), plus the bad certificates failure tests need.
//! ZeroC's own files expired on 2024-10-29; these are valid from 2020 to 2090.
//!
//! | file | what |
//! | --- | --- |
//! | `cacert.pem`, `cacert.der` | the CA, `CN=Ice Tests CA` |
//! | `server.p12`, `server_cert.pem` + `server_key.pem` | `CN=127.0.0.1`, IP 127.0.0.1 and DNS localhost, serverAuth and clientAuth, with the CA in the chain |
//! | `client.p12`, `client_cert.pem` + `client_key.pem` | `CN=client`, clientAuth |
//! | `s_expired.p12`, `c_expired.p12` | like server and client, expired in 2021 |
//! | `s_untrusted.p12`, `c_untrusted.p12` | like server and client, issued by `CN=Untrusted CA` (`cacert2.pem`) |
//! | `s_wrongname.p12` | a server certificate for `wrong.example` only |
//! | `s_chain.p12` | a server certificate issued by an intermediate CA (chain of 3) |
//!
//! Keys are ECDSA P-256. Subjects read `C=US, ST=Florida, L=Jupiter, O=ZeroC, OU=Ice, CN=...`.

use std::path::{Path, PathBuf};

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};

/// The password of every PKCS#12 file, as in ZeroC's test suite.
pub const PASSWORD: &str = "password";

struct Made {
    der: Vec<u8>,
    pem: String,
    key: KeyPair,
}

fn params(cn: &str, ca: bool) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (t, v) in [
        (DnType::CountryName, "US"),
        (DnType::StateOrProvinceName, "Florida"),
        (DnType::LocalityName, "Jupiter"),
        (DnType::OrganizationName, "ZeroC"),
        (DnType::OrganizationalUnitName, "Ice"),
        (DnType::CommonName, cn),
    ] {
        p.distinguished_name.push(t, v);
    }
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2090, 1, 1);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    }
    p.use_authority_key_identifier_extension = !ca;
    p
}

fn server_params(cn: &str) -> CertificateParams {
    let mut p = params(cn, false);
    p.subject_alt_names = vec![
        SanType::IpAddress("127.0.0.1".parse().expect("an IP address")),
        SanType::DnsName("localhost".try_into().expect("a DNS name")),
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p
}

fn client_params(cn: &str) -> CertificateParams {
    let mut p = params(cn, false);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}

fn self_signed(p: CertificateParams) -> (Made, CertificateParams) {
    let key = KeyPair::generate().expect("generate a key");
    let cert = p.self_signed(&key).expect("self-sign");
    (
        Made {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key,
        },
        p,
    )
}

fn signed(p: CertificateParams, issuer: &Issuer<'_, &KeyPair>) -> Made {
    let key = KeyPair::generate().expect("generate a key");
    let cert = p.signed_by(&key, issuer).expect("sign");
    Made {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key,
    }
}

fn p12(leaf: &Made, chain: &[&[u8]]) -> Vec<u8> {
    let key = PrivateKey::from_der(&leaf.key.serialize_der()).expect("a PKCS#8 key");
    let mut certs = vec![Certificate::from_der(&leaf.der).expect("a certificate")];
    for c in chain {
        certs.push(Certificate::from_der(c).expect("a certificate"));
    }
    let mut store = KeyStore::new();
    store.add_entry(
        "cert",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(vec![1u8; 20], key, certs)),
    );
    store
        .writer(PASSWORD)
        .write()
        .expect("write a PKCS#12 file")
}

/// Writes the files of the table above into `dir` (created if needed).
pub fn write_test_certs(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes);

    let (ca, ca_params) = self_signed(params("Ice Tests CA", true));
    let ca_issuer = Issuer::from_params(&ca_params, &ca.key);
    write("cacert.pem", ca.pem.as_bytes())?;
    write("cacert.der", &ca.der)?;

    let server = signed(server_params("127.0.0.1"), &ca_issuer);
    write("server.p12", &p12(&server, &[&ca.der]))?;
    write(
        "server_cert.pem",
        format!("{}{}", server.pem, ca.pem).as_bytes(),
    )?;
    write("server_key.pem", server.key.serialize_pem().as_bytes())?;

    let client = signed(client_params("client"), &ca_issuer);
    write("client.p12", &p12(&client, &[&ca.der]))?;
    write("client_cert.pem", client.pem.as_bytes())?;
    write("client_key.pem", client.key.serialize_pem().as_bytes())?;

    let expired = |mut p: CertificateParams| {
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2021, 1, 1);
        p
    };
    let s_expired = signed(expired(server_params("127.0.0.1")), &ca_issuer);
    write("s_expired.p12", &p12(&s_expired, &[&ca.der]))?;
    let c_expired = signed(expired(client_params("client")), &ca_issuer);
    write("c_expired.p12", &p12(&c_expired, &[&ca.der]))?;

    let (other_ca, other_params) = self_signed(params("Untrusted CA", true));
    let other_issuer = Issuer::from_params(&other_params, &other_ca.key);
    write("cacert2.pem", other_ca.pem.as_bytes())?;
    let s_untrusted = signed(server_params("127.0.0.1"), &other_issuer);
    write("s_untrusted.p12", &p12(&s_untrusted, &[&other_ca.der]))?;
    let c_untrusted = signed(client_params("client"), &other_issuer);
    write("c_untrusted.p12", &p12(&c_untrusted, &[&other_ca.der]))?;

    let mut wrong = server_params("wrong.example");
    wrong.subject_alt_names = vec![SanType::DnsName(
        "wrong.example".try_into().expect("a DNS name"),
    )];
    let s_wrongname = signed(wrong, &ca_issuer);
    write("s_wrongname.p12", &p12(&s_wrongname, &[&ca.der]))?;

    let mut intermediate_params = params("Ice Tests Intermediate CA", true);
    intermediate_params.use_authority_key_identifier_extension = true;
    let intermediate = signed(intermediate_params.clone(), &ca_issuer);
    let intermediate_issuer = Issuer::from_params(&intermediate_params, &intermediate.key);
    let s_chain = signed(server_params("127.0.0.1"), &intermediate_issuer);
    write("s_chain.p12", &p12(&s_chain, &[&intermediate.der, &ca.der]))?;
    Ok(())
}

/// `parent/ssl-certs`, with certificates made afresh once per process.
pub fn test_certs_dir(parent: &Path) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = parent.join("ssl-certs");
        let _ = std::fs::remove_dir_all(&dir);
        write_test_certs(&dir)
            .unwrap_or_else(|e| panic!("cannot write test certificates to {}: {e}", dir.display()));
        dir
    })
    .clone()
}
