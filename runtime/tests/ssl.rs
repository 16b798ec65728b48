//! `ssl` and `wss` between Floe and ZeroC (Python, and C++ on OpenSSL), both ways: server and
//! client certificates, every `IceSSL.VerifyPeer` level, `CheckCertName`, `VerifyDepthMax`,
//! `TrustOnly`, `Protocols`, PKCS#12 and PEM files, the peer's certificate seen through
//! `current.con`, and a clear error for each handshake failure (expired, untrusted issuer,
//! wrong host name, no client certificate).
//!
//! Certificates are made at test time (`floe_test_support::certs`) under the names and password
//! ZeroC's test driver uses: its own expired on 2024-10-29.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{HELLO_TYPE_ID, HELLO_TYPE_IDS, HelloPrx, PYTHON, python_dir, require_zeroc};
use floe::codegen::{BoxFuture, Proxy};
use floe::transport::DistinguishedName;
use floe::{
    Communicator, Context, Dispatcher, Error, Identity, IncomingRequest, ObjectPrx, OperationMode,
    OutgoingResponse, Properties, Result, SecurityReason, dispatch_builtin,
};
use floe_test_support::ChildGuard;
use serde_json::Value;

const SERVER_SUBJECT: &str = "CN=127.0.0.1,OU=Ice,O=ZeroC,L=Jupiter,ST=Florida,C=US";
const CLIENT_SUBJECT: &str = "CN=client,OU=Ice,O=ZeroC,L=Jupiter,ST=Florida,C=US";

fn certs() -> PathBuf {
    floe_test_support::certs::test_certs_dir(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// IceSSL's properties as ZeroC's test driver sets them, with `cert` as `IceSSL.CertFile`
/// (none when empty) and `extra` on top.
fn ssl_props(cert: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut props = vec![
        (
            "IceSSL.DefaultDir".to_string(),
            certs().display().to_string(),
        ),
        ("IceSSL.CAs".to_string(), "cacert.pem".to_string()),
        ("IceSSL.Password".to_string(), "password".to_string()),
    ];
    if !cert.is_empty() {
        props.push(("IceSSL.CertFile".to_string(), cert.to_string()));
    }
    for (k, v) in extra {
        props.retain(|(pk, _)| pk != k);
        props.push((k.to_string(), v.to_string()));
    }
    props
}

fn communicator(props: &[(String, String)]) -> Communicator {
    let properties = Properties::new();
    properties.set_property("Ice.Default.InvocationTimeout", "10000");
    properties.set_property("Ice.RetryIntervals", "-1");
    for (k, v) in props {
        properties.set_property(k, v);
    }
    Communicator::with_properties(properties).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The subject of a certificate given as hex DER.
fn subject_of_hex(hex: &str) -> String {
    DistinguishedName::subject_of(&unhex(hex))
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// The Floe side: a Hello whose getContext tells what the connection knows of the client.

struct SslHello;

impl Dispatcher for SslHello {
    fn dispatch<'a>(
        &'a self,
        request: &'a mut IncomingRequest,
    ) -> BoxFuture<'a, Result<OutgoingResponse>> {
        Box::pin(async move {
            match request.current().operation.as_str() {
                "sayHello" => {
                    let name = request.read_params(|is| is.read::<String>())?;
                    Ok(request.reply(None, |os| os.write(&format!("Hello, {name}!"))))
                }
                "getContext" => {
                    request.read_empty_params()?;
                    let mut seen = Context::new();
                    let con = request.current().con.clone();
                    let info = con.as_ref().and_then(|c| c.ssl_info());
                    seen.insert(
                        "certs".into(),
                        info.map_or(0, |i| i.certs.len()).to_string(),
                    );
                    if let Some(info) = info {
                        seen.insert("verified".into(), (info.verified as i32).to_string());
                        seen.insert("cipher".into(), info.cipher.clone());
                        seen.insert("protocol".into(), info.protocol.clone());
                        if let Some(subject) = info.peer_subject() {
                            seen.insert("subject".into(), subject.to_string());
                        }
                    }
                    Ok(request.reply(None, |os| os.write(&seen)))
                }
                _ => dispatch_builtin(request, HELLO_TYPE_ID, HELLO_TYPE_IDS).await,
            }
        })
    }
}

struct FloeSslServer {
    communicator: Communicator,
    /// The `hello` proxy with every endpoint of the adapter.
    proxy: ObjectPrx,
}

impl FloeSslServer {
    /// The proxy restricted to one transport ("ssl", "wss", "tcp").
    fn proxy(&self, transport: &str) -> String {
        let eps: Vec<_> = self
            .proxy
            .ice_get_endpoints()
            .iter()
            .filter(|e| e.to_string().starts_with(&format!("{transport} ")))
            .cloned()
            .collect();
        assert_eq!(
            eps.len(),
            1,
            "{} has no single {transport} endpoint",
            self.proxy
        );
        self.proxy.ice_endpoints(eps).to_string()
    }
}

async fn floe_server(endpoints: &str, props: &[(String, String)]) -> FloeSslServer {
    let communicator = communicator(props);
    let adapter = communicator
        .create_object_adapter_with_endpoints("SslTest", endpoints)
        .await
        .unwrap();
    let proxy = adapter
        .add(Arc::new(SslHello), Identity::new("hello", ""))
        .unwrap();
    adapter.activate().unwrap();
    FloeSslServer {
        communicator,
        proxy,
    }
}

/// What a Floe client got from one server: the connection's TLS info and the server's view of
/// the client (its getContext answer).
struct Reached {
    info: floe::transport::SslConnectionInfo,
    seen: Context,
}

async fn floe_call(proxy: &str, props: &[(String, String)]) -> Result<Reached> {
    let comm = communicator(props);
    let result = async {
        let hello = HelloPrx::from_object(comm.string_to_proxy(proxy)?.expect("a proxy"));
        assert_eq!(hello.say_hello("floe").await?, "Hello, floe!");
        let seen = hello
            .invoke::<Context, Error>(
                "getContext",
                OperationMode::Normal,
                None,
                true,
                |_| {},
                |is| is.read::<Context>(),
            )
            .await?;
        let con = hello.ice_get_connection().await?;
        let info = con.ssl_info().expect("an ssl connection").clone();
        Ok(Reached { info, seen })
    }
    .await;
    comm.destroy().await;
    result
}

fn security_reason(r: Result<Reached>) -> (SecurityReason, String) {
    match r {
        Err(Error::Security { reason, message }) => (reason, message),
        Err(other) => panic!("expected a security error, got {other:?}"),
        Ok(_) => panic!("expected a security error, got a connection"),
    }
}

// ---------------------------------------------------------------------------------------------
// ZeroC Python (tests/python/ssl_peer.py).

fn props_json(props: &[(String, String)]) -> Value {
    Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

type ServerSpec<'a> = (&'a str, &'a str, Vec<(String, String)>);

/// Python servers, one communicator each: name → proxy. Killed on drop.
struct PythonServers {
    child: ChildGuard,
    proxies: std::collections::HashMap<String, String>,
}

impl PythonServers {
    /// Starts one server per (name, endpoints, properties).
    fn start(specs: &[ServerSpec<'_>]) -> PythonServers {
        require_zeroc();
        let json = Value::Array(
            specs
                .iter()
                .map(|(name, endpoints, props)| {
                    serde_json::json!({"name": name, "endpoints": endpoints, "props": props_json(props)})
                })
                .collect(),
        );
        let mut child = ChildGuard::new(
            Command::new(PYTHON)
                .arg(python_dir().join("ssl_peer.py"))
                .arg("server")
                .arg(json.to_string())
                .current_dir(python_dir())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start ssl_peer.py server"),
        );
        let mut proxies = std::collections::HashMap::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("ssl_peer.py server exited before READY")
                .unwrap();
            if line == "READY" {
                break;
            }
            let rest = line
                .strip_prefix("PROXY ")
                .unwrap_or_else(|| panic!("ssl_peer.py said {line:?}"));
            let (name, proxy) = rest.split_once(' ').unwrap();
            proxies.insert(name.to_string(), proxy.to_string());
        }
        PythonServers { child, proxies }
    }

    /// The proxy of server `name` restricted to one transport.
    fn proxy(&self, name: &str, transport: &str) -> String {
        let full = &self.proxies[name];
        let mut parts = full.split(':');
        let id = parts.next().unwrap();
        let ep = parts
            .find(|p| p.starts_with(&format!("{transport} ")))
            .unwrap_or_else(|| panic!("{full} has no {transport} endpoint"));
        format!("{id}:{ep}")
    }
}

impl Drop for PythonServers {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait_or_kill(Duration::from_secs(5));
    }
}

/// Runs one Python client process making each attempt with a fresh communicator; one JSON
/// result per attempt.
async fn python_clients(attempts: &[(String, Vec<(String, String)>)]) -> Vec<Value> {
    require_zeroc();
    let json = Value::Array(
        attempts
            .iter()
            .map(|(proxy, props)| serde_json::json!({"proxy": proxy, "props": props_json(props)}))
            .collect(),
    );
    let mut child = ChildGuard::new(
        Command::new(PYTHON)
            .arg(python_dir().join("ssl_peer.py"))
            .arg("client")
            .arg(json.to_string())
            .current_dir(python_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ssl_peer.py client"),
    );
    let status = child.wait_or_kill_async(Duration::from_secs(40)).await;
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "ssl_peer.py client failed ({status:?}):\n{out}\n{err}"
    );
    let results: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(results.len(), attempts.len(), "{out}\n{err}");
    results
}

fn assert_ok(v: &Value, what: &str) {
    assert_eq!(v["ok"], true, "{what}: {v}");
}

fn assert_refused(v: &Value, what: &str) {
    assert_eq!(v["ok"], false, "{what}: expected a failure, got {v}");
}

// ---------------------------------------------------------------------------------------------
// ZeroC C++ (tests/cpp/ssl_peer.cpp), built once per change of its source.

fn cpp_peer() -> PathBuf {
    static BUILT: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    const INSTALL: &str = "apt-get install -y g++ libzeroc-ice-dev (scripts/test.sh installs them)";
    assert!(
        Path::new("/usr/include/IceSSL/IceSSL.h").exists(),
        "/usr/include/IceSSL/IceSSL.h is missing: install the Debian package libzeroc-ice-dev; {INSTALL}"
    );
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cpp/ssl_peer.cpp");
    let mut hasher = DefaultHasher::new();
    std::fs::read(&src).unwrap().hash(&mut hasher);
    let gxx = Command::new("g++")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("g++ cannot be run ({e}): {INSTALL}"));
    gxx.stdout.hash(&mut hasher);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zeroc-cpp-ssl-peer");
    let exe = root
        .join(format!("{:016x}", hasher.finish()))
        .join("ssl_peer");
    if !exe.exists() {
        let tmp = root.join(format!("tmp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let out = Command::new("g++")
            .args(["-std=c++11", "-O0", "-DICE_CPP11_MAPPING", "-pthread", "-w"])
            .arg(&src)
            .arg("-o")
            .arg(tmp.join("ssl_peer"))
            .args(["-lIceSSL++11", "-lIce++11", "-lpthread"])
            .output()
            .unwrap_or_else(|e| panic!("g++: {e}; {INSTALL}"));
        assert!(
            out.status.success(),
            "g++ failed building {} ({INSTALL}):\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::rename(tmp.join("ssl_peer"), &exe).unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
    }
    *built = Some(exe.clone());
    exe
}

fn cpp_args(props: &[(String, String)]) -> Vec<String> {
    props.iter().map(|(k, v)| format!("--{k}={v}")).collect()
}

struct CppServer {
    child: ChildGuard,
    proxy: String,
}

impl CppServer {
    fn start(endpoints: &str, props: &[(String, String)]) -> CppServer {
        let mut child = ChildGuard::new(
            Command::new(cpp_peer())
                .arg("server")
                .arg(endpoints)
                .args(cpp_args(props))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start ssl_peer server"),
        );
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let proxy = line
            .trim()
            .strip_prefix("PROXY ")
            .unwrap_or_else(|| panic!("the C++ server said {line:?}"))
            .to_string();
        CppServer { child, proxy }
    }

    fn proxy(&self, transport: &str) -> String {
        let mut parts = self.proxy.split(':');
        let id = parts.next().unwrap();
        let ep = parts
            .find(|p| p.starts_with(&format!("{transport} ")))
            .unwrap_or_else(|| panic!("{} has no {transport} endpoint", self.proxy));
        format!("{id}:{ep}")
    }
}

impl Drop for CppServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait_or_kill(Duration::from_secs(5));
    }
}

/// Runs the C++ client: its one output line.
async fn cpp_client(proxy: &str, props: &[(String, String)]) -> String {
    let exe = cpp_peer();
    let mut child = ChildGuard::new(
        Command::new(exe)
            .arg("client")
            .arg(proxy)
            .args(cpp_args(props))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run ssl_peer client"),
    );
    let status = child.wait_or_kill_async(Duration::from_secs(30)).await;
    assert!(status.is_some(), "the C++ client hung");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out.trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// Floe server, ZeroC Python clients.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_to_floe_server_with_client_certificates() {
    // ZeroC's defaults: VerifyPeer=2 on both sides, server.p12 and client.p12.
    let server = floe_server(
        "ssl -h 127.0.0.1 -p 0:wss -h 127.0.0.1 -p 0",
        &ssl_props("server.p12", &[]),
    )
    .await;
    let client = ssl_props("client.p12", &[]);
    let results = python_clients(&[
        (server.proxy("ssl"), client.clone()),
        (server.proxy("wss"), client.clone()),
        (server.proxy("ssl"), ssl_props("", &[])),
        (server.proxy("ssl"), ssl_props("c_untrusted.p12", &[])),
        (server.proxy("ssl"), ssl_props("c_expired.p12", &[])),
    ])
    .await;
    for (r, what) in results.iter().zip(["ssl", "wss"]) {
        assert_ok(r, what);
        // ZeroC's chain: the server's certificate and the CA.
        assert_eq!(r["peer"]["certs"], "2", "{what}: {r}");
        assert_eq!(
            subject_of_hex(r["peer"]["cert0"].as_str().unwrap()),
            SERVER_SUBJECT
        );
        // What the Floe servant saw through current.con.
        assert_eq!(r["seen"]["subject"], CLIENT_SUBJECT, "{what}: {r}");
        assert_eq!(r["seen"]["verified"], "1", "{what}: {r}");
        assert_eq!(r["seen"]["certs"], "2", "{what}: {r}");
        assert_eq!(r["seen"]["protocol"], "TLSv1.3", "{what}: {r}");
    }
    assert_refused(&results[2], "no client certificate, VerifyPeer=2");
    assert_refused(&results[3], "client certificate from an untrusted CA");
    assert_refused(&results[4], "expired client certificate");
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_server_verify_peer_levels_with_python_clients() {
    // PEM certificate and key files this time.
    let pem = |vp: &str| {
        ssl_props(
            "server_cert.pem",
            &[
                ("IceSSL.KeyFile", "server_key.pem"),
                ("IceSSL.VerifyPeer", vp),
            ],
        )
    };
    let mut servers = Vec::new();
    for vp in ["0", "1", "2"] {
        servers.push(floe_server("ssl -h 127.0.0.1 -p 0", &pem(vp)).await);
    }
    let with = ssl_props("client.p12", &[]);
    let without = ssl_props("", &[]);
    let mut attempts = Vec::new();
    for s in &servers {
        attempts.push((s.proxy("ssl"), with.clone()));
        attempts.push((s.proxy("ssl"), without.clone()));
    }
    let r = python_clients(&attempts).await;
    // 0: no certificate asked for, none seen.
    assert_ok(&r[0], "VerifyPeer=0 with certificate");
    assert_eq!(r[0]["seen"]["certs"], "0", "{}", r[0]);
    assert_ok(&r[1], "VerifyPeer=0 without certificate");
    assert_eq!(r[1]["seen"]["certs"], "0", "{}", r[1]);
    // 1: asked for and verified when given, optional.
    assert_ok(&r[2], "VerifyPeer=1 with certificate");
    assert_eq!(r[2]["seen"]["subject"], CLIENT_SUBJECT, "{}", r[2]);
    assert_eq!(r[2]["seen"]["verified"], "1", "{}", r[2]);
    assert_ok(&r[3], "VerifyPeer=1 without certificate");
    assert_eq!(r[3]["seen"]["certs"], "0", "{}", r[3]);
    // 2: required.
    assert_ok(&r[4], "VerifyPeer=2 with certificate");
    assert_eq!(r[4]["seen"]["subject"], CLIENT_SUBJECT, "{}", r[4]);
    assert_refused(&r[5], "VerifyPeer=2 without certificate");
    for s in servers {
        s.communicator.destroy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_refuse_bad_floe_servers() {
    let expired = floe_server("ssl -h 127.0.0.1 -p 0", &ssl_props("s_expired.p12", &[])).await;
    let untrusted = floe_server("ssl -h 127.0.0.1 -p 0", &ssl_props("s_untrusted.p12", &[])).await;
    let wrong = floe_server("ssl -h 127.0.0.1 -p 0", &ssl_props("s_wrongname.p12", &[])).await;
    let picky = floe_server(
        "ssl -h 127.0.0.1 -p 0",
        &ssl_props("server.p12", &[("IceSSL.TrustOnly.Server", "CN=nobody")]),
    )
    .await;
    let client = ssl_props("client.p12", &[]);
    let r = python_clients(&[
        (expired.proxy("ssl"), client.clone()),
        (untrusted.proxy("ssl"), client.clone()),
        (
            wrong.proxy("ssl"),
            ssl_props("client.p12", &[("IceSSL.CheckCertName", "1")]),
        ),
        (wrong.proxy("ssl"), client.clone()),
        (
            expired.proxy("ssl"),
            ssl_props("client.p12", &[("IceSSL.VerifyPeer", "0")]),
        ),
        (picky.proxy("ssl"), client.clone()),
    ])
    .await;
    assert_refused(&r[0], "expired server certificate");
    assert_eq!(r[0]["exception"], "::Ice::SecurityException", "{}", r[0]);
    assert!(
        r[0]["message"].as_str().unwrap().contains("expired"),
        "{}",
        r[0]
    );
    assert_refused(&r[1], "untrusted server certificate");
    assert_eq!(r[1]["exception"], "::Ice::SecurityException", "{}", r[1]);
    assert_refused(&r[2], "wrong host name with CheckCertName=1");
    assert_eq!(r[2]["exception"], "::Ice::SecurityException", "{}", r[2]);
    // ZeroC does not check names by default.
    assert_ok(&r[3], "wrong host name with CheckCertName=0");
    assert_ok(&r[4], "expired server certificate with VerifyPeer=0");
    assert_refused(&r[5], "client refused by IceSSL.TrustOnly.Server");
    for s in [expired, untrusted, wrong, picky] {
        s.communicator.destroy().await;
    }
}

// ---------------------------------------------------------------------------------------------
// ZeroC Python servers, Floe clients.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_clients_to_python_servers() {
    let eps = "ssl -h 127.0.0.1 -p 0:wss -h 127.0.0.1 -p 0";
    let servers = PythonServers::start(&[
        ("good", eps, ssl_props("server.p12", &[])),
        (
            "vp0",
            eps,
            ssl_props("server.p12", &[("IceSSL.VerifyPeer", "0")]),
        ),
        (
            "vp1",
            eps,
            ssl_props("server.p12", &[("IceSSL.VerifyPeer", "1")]),
        ),
        (
            "tls12",
            eps,
            ssl_props("server.p12", &[("IceSSL.Protocols", "tls1_2")]),
        ),
        ("expired", eps, ssl_props("s_expired.p12", &[])),
        ("untrusted", eps, ssl_props("s_untrusted.p12", &[])),
        ("wrong", eps, ssl_props("s_wrongname.p12", &[])),
        ("chain", eps, ssl_props("s_chain.p12", &[])),
    ]);
    let client = ssl_props("client.p12", &[]);
    let with = |extra: &[(&str, &str)]| ssl_props("client.p12", extra);

    // Mutual authentication, over ssl and wss; the Python servant saw our certificate.
    for transport in ["ssl", "wss"] {
        let r = floe_call(&servers.proxy("good", transport), &client)
            .await
            .unwrap();
        assert!(r.info.verified, "{transport}");
        assert_eq!(r.info.protocol, "TLSv1.3");
        assert_eq!(r.info.certs.len(), 2, "server certificate and CA");
        assert_eq!(r.info.peer_subject().unwrap().to_string(), SERVER_SUBJECT);
        assert_eq!(r.info.host, "127.0.0.1");
        assert_eq!(
            subject_of_hex(&r.seen["cert0"]),
            CLIENT_SUBJECT,
            "{transport}"
        );
    }
    // TLS 1.2, by the server's choice and by ours.
    let r = floe_call(&servers.proxy("tls12", "ssl"), &client)
        .await
        .unwrap();
    assert_eq!(r.info.protocol, "TLSv1.2");
    assert_eq!(subject_of_hex(&r.seen["cert0"]), CLIENT_SUBJECT);
    let r = floe_call(
        &servers.proxy("good", "ssl"),
        &with(&[("IceSSL.Protocols", "tls1_2")]),
    )
    .await
    .unwrap();
    assert_eq!(r.info.protocol, "TLSv1.2");

    // The server's VerifyPeer: 0 asks for no certificate, 1 takes one or none, 2 requires one.
    let none = ssl_props("", &[]);
    let r = floe_call(&servers.proxy("vp0", "ssl"), &client)
        .await
        .unwrap();
    assert_eq!(r.seen["certs"], "0");
    let r = floe_call(&servers.proxy("vp1", "ssl"), &none)
        .await
        .unwrap();
    assert_eq!(r.seen["certs"], "0");
    let r = floe_call(&servers.proxy("vp1", "ssl"), &client)
        .await
        .unwrap();
    assert_eq!(subject_of_hex(&r.seen["cert0"]), CLIENT_SUBJECT);
    let (reason, message) = security_reason(floe_call(&servers.proxy("good", "ssl"), &none).await);
    assert_eq!(
        reason,
        SecurityReason::CertificateRejectedByPeer,
        "{message}"
    );
    assert!(
        message.contains("requires a client certificate"),
        "{message}"
    );
    let (_, message) = security_reason(floe_call(&servers.proxy("tls12", "ssl"), &none).await);
    assert!(message.contains("client certificate"), "{message}");

    // Bad server certificates, refused with VerifyPeer 1 and 2, let through with 0.
    let (reason, message) =
        security_reason(floe_call(&servers.proxy("expired", "ssl"), &client).await);
    assert_eq!(reason, SecurityReason::CertificateExpired, "{message}");
    assert!(message.contains("expired"), "{message}");
    let (reason, _) = security_reason(
        floe_call(
            &servers.proxy("expired", "wss"),
            &with(&[("IceSSL.VerifyPeer", "1")]),
        )
        .await,
    );
    assert_eq!(reason, SecurityReason::CertificateExpired);
    let r = floe_call(
        &servers.proxy("expired", "ssl"),
        &with(&[("IceSSL.VerifyPeer", "0")]),
    )
    .await
    .unwrap();
    assert!(!r.info.verified, "an expired certificate is not verified");
    let (reason, message) =
        security_reason(floe_call(&servers.proxy("untrusted", "ssl"), &client).await);
    assert_eq!(reason, SecurityReason::UntrustedIssuer, "{message}");
    assert!(message.contains("IceSSL.CAs"), "{message}");

    // Host names are checked only with CheckCertName, as ZeroC does.
    let r = floe_call(&servers.proxy("wrong", "ssl"), &client)
        .await
        .unwrap();
    assert!(r.info.verified);
    let (reason, message) = security_reason(
        floe_call(
            &servers.proxy("wrong", "ssl"),
            &with(&[("IceSSL.CheckCertName", "1")]),
        )
        .await,
    );
    assert_eq!(reason, SecurityReason::HostNameMismatch, "{message}");
    let r = floe_call(
        &servers.proxy("good", "ssl"),
        &with(&[("IceSSL.CheckCertName", "1")]),
    )
    .await
    .unwrap();
    assert!(r.info.verified);

    // VerifyDepthMax counts the chain up to the CA: 3 here.
    let r = floe_call(&servers.proxy("chain", "ssl"), &client)
        .await
        .unwrap();
    assert_eq!(r.info.certs.len(), 3);
    let (reason, message) = security_reason(
        floe_call(
            &servers.proxy("chain", "ssl"),
            &with(&[("IceSSL.VerifyDepthMax", "2")]),
        )
        .await,
    );
    assert_eq!(reason, SecurityReason::ChainTooLong, "{message}");

    // TrustOnly on the client side.
    floe_call(
        &servers.proxy("good", "ssl"),
        &with(&[("IceSSL.TrustOnly.Client", "CN=127.0.0.1")]),
    )
    .await
    .unwrap();
    let (reason, message) = security_reason(
        floe_call(
            &servers.proxy("good", "ssl"),
            &with(&[("IceSSL.TrustOnly", "!O=ZeroC")]),
        )
        .await,
    );
    assert_eq!(reason, SecurityReason::NotTrusted, "{message}");
    drop(servers);
}

// ---------------------------------------------------------------------------------------------
// ZeroC C++, both ways.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_both_ways() {
    // C++ servers, Floe clients.
    let good = CppServer::start(
        "ssl -h 127.0.0.1 -p 0:wss -h 127.0.0.1 -p 0",
        &ssl_props("server.p12", &[]),
    );
    let untrusted = CppServer::start("ssl -h 127.0.0.1 -p 0", &ssl_props("s_untrusted.p12", &[]));
    let client = ssl_props("client.p12", &[]);
    for transport in ["ssl", "wss"] {
        let r = floe_call(&good.proxy(transport), &client).await.unwrap();
        assert!(r.info.verified);
        assert_eq!(r.info.peer_subject().unwrap().to_string(), SERVER_SUBJECT);
        assert_eq!(r.seen["subject"], CLIENT_SUBJECT, "{transport}");
        assert_eq!(r.seen["verified"], "1", "{transport}");
    }
    let (reason, message) =
        security_reason(floe_call(&good.proxy("ssl"), &ssl_props("", &[])).await);
    assert_eq!(
        reason,
        SecurityReason::CertificateRejectedByPeer,
        "{message}"
    );
    let (reason, _) = security_reason(floe_call(&untrusted.proxy("ssl"), &client).await);
    assert_eq!(reason, SecurityReason::UntrustedIssuer);

    // Floe servers, C++ clients.
    let server = floe_server(
        "ssl -h 127.0.0.1 -p 0:wss -h 127.0.0.1 -p 0",
        &ssl_props("server.p12", &[]),
    )
    .await;
    let expired = floe_server("ssl -h 127.0.0.1 -p 0", &ssl_props("s_expired.p12", &[])).await;
    for transport in ["ssl", "wss"] {
        let line = cpp_client(&server.proxy(transport), &client).await;
        assert_eq!(
            line,
            format!(
                "OK certs=2 verified=1 subject={SERVER_SUBJECT} | seen={CLIENT_SUBJECT} | seen_certs=2"
            ),
            "{transport}"
        );
    }
    let line = cpp_client(&server.proxy("ssl"), &ssl_props("", &[])).await;
    assert!(line.starts_with("EXC "), "no client certificate: {line}");
    let line = cpp_client(&server.proxy("ssl"), &ssl_props("c_untrusted.p12", &[])).await;
    assert!(
        line.starts_with("EXC "),
        "untrusted client certificate: {line}"
    );
    let line = cpp_client(&expired.proxy("ssl"), &client).await;
    assert!(
        line.starts_with("EXC ::Ice::SecurityException") && line.contains("expired"),
        "expired server certificate: {line}"
    );
    let line = cpp_client(
        &expired.proxy("ssl"),
        &ssl_props("client.p12", &[("IceSSL.VerifyPeer", "0")]),
    )
    .await;
    assert!(line.starts_with("OK certs="), "VerifyPeer=0: {line}");
    server.communicator.destroy().await;
    expired.communicator.destroy().await;
}

// ---------------------------------------------------------------------------------------------
// Floe to Floe: endpoint selection and configuration errors.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_proxies_use_ssl_endpoints_only() {
    let server = floe_server(
        "tcp -h 127.0.0.1 -p 0:ssl -h 127.0.0.1 -p 0",
        &ssl_props("server.p12", &[("IceSSL.VerifyPeer", "1")]),
    )
    .await;
    let comm = communicator(&ssl_props("", &[]));
    let prx = comm
        .string_to_proxy(&server.proxy.to_string())
        .unwrap()
        .unwrap();
    // A plain proxy takes the tcp endpoint first, a secure one (-s) only ssl.
    let con = prx.ice_get_connection().await.unwrap();
    assert!(con.ssl_info().is_none());
    let plain = server.proxy.to_string();
    let (id, endpoints) = plain.split_once(':').unwrap();
    let secure = comm
        .string_to_proxy(&format!("{id} -s:{endpoints}"))
        .unwrap()
        .unwrap();
    assert!(secure.ice_is_secure());
    let con = secure.ice_get_connection().await.unwrap();
    let info = con.ssl_info().expect("ssl");
    assert_eq!(info.peer_subject().unwrap().to_string(), SERVER_SUBJECT);
    secure.ice_ping().await.unwrap();
    comm.destroy().await;
    server.communicator.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_name_the_property() {
    let init_error = |e: Error| match e {
        Error::Initialization(m) => m,
        other => panic!("expected an initialization error, got {other:?}"),
    };
    let comm = communicator(&ssl_props("", &[]));
    let e = comm
        .create_object_adapter_with_endpoints("A", "ssl -h 127.0.0.1 -p 0")
        .await
        .unwrap_err();
    assert!(init_error(e).contains("IceSSL.CertFile"));
    comm.destroy().await;

    let comm = communicator(&ssl_props("server.p12", &[("IceSSL.Password", "wrong")]));
    let e = comm
        .create_object_adapter_with_endpoints("A", "ssl -h 127.0.0.1 -p 0")
        .await
        .unwrap_err();
    assert!(init_error(e).contains("IceSSL.Password"));
    comm.destroy().await;

    let comm = communicator(&ssl_props("", &[("IceSSL.CAs", "missing.pem")]));
    let prx = comm
        .string_to_proxy("hello:ssl -h 127.0.0.1 -p 1")
        .unwrap()
        .unwrap();
    let m = init_error(prx.ice_ping().await.unwrap_err());
    assert!(m.contains("missing.pem") && m.contains("IceSSL.CAs"), "{m}");
    comm.destroy().await;

    let comm = communicator(&ssl_props("", &[("IceSSL.Protocols", "tls1_1")]));
    let prx = comm
        .string_to_proxy("hello:ssl -h 127.0.0.1 -p 1")
        .unwrap()
        .unwrap();
    let m = init_error(prx.ice_ping().await.unwrap_err());
    assert!(m.contains("IceSSL.Protocols"), "{m}");
    comm.destroy().await;
}
