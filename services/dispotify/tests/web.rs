//! The HTTP gateway and the web player.
//!
//! `web_player_in_chromium` drives the player in a real headless Chromium through WebDriver
//! (chromedriver, spoken to over HTTP by the small client below): log in, upload a WAV file
//! through the form, search for it, play it, seek, and read the cluster-health panel. It needs
//! the Debian packages `chromium` and `chromium-driver` and fails (never skips) without them.
//! `DISPOTIFY_WEB_SCREENSHOTS=<dir>` keeps screenshots of the page there.
//!
//! `http_contract` checks the gateway's answers without a browser: ranges, ETags, errors,
//! sessions and size limits. `remote_replica_through_the_gateway` reads a file through the
//! gateways of the nodes that hold no replica of it (over Ice from the one that does), and
//! gets a 503 once that node is gone.
//!
//! Each runs a users manager (with its embedded broker) and one or three Dispotify nodes in
//! the test process. `RUST_LOG=dispotify=debug` shows the service's traces.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dispotify::node::{Node, NodeConfig};
use serde_json::{Value, json};
use usersmanager::slice::users_manager::ManagerPrx;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

// ----- the service under test -----

/// A users manager and Dispotify nodes, each with its gateway, in this process.
struct Service {
    runtime: tokio::runtime::Runtime,
    users: Option<usersmanager::Service>,
    /// Node `i + 1`.
    nodes: Vec<Node>,
    /// `http://127.0.0.1:<port>` of node `i + 1`'s gateway.
    bases: Vec<String>,
    dir: tempfile::TempDir,
}

impl Service {
    /// Starts a users manager and `count` nodes (node 1 forms the cluster, the others join
    /// it); `extra` are more `Dispotify.*` properties of every node.
    fn start(count: usize, extra: &[(&str, &str)]) -> Service {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temporary directory");
        let (users, nodes, bases) = runtime.block_on(async {
            let props = floe::Properties::new();
            props.set_property("usersmanageradapter.Endpoints", "tcp -h 127.0.0.1 -p 0");
            props.set_property(
                "UsersManager.DataDir",
                &dir.path().join("users").display().to_string(),
            );
            props.set_property("UsersManager.QueryTimeout", "200");
            let users = usersmanager::Service::start(
                usersmanager::Config::from_properties(props).expect("users manager properties"),
            )
            .await
            .expect("users manager starts");
            let manager = ManagerPrx::unchecked_cast(users.manager_proxy().clone());
            manager
                .create_user(USER, PASSWORD)
                .await
                .expect("createUser");

            let (mut nodes, mut bases) = (Vec::<Node>::new(), Vec::new());
            for id in 1..=count {
                let listener = dispotify::gateway::bind("127.0.0.1:0")
                    .await
                    .expect("bind the gateway");
                let addr: SocketAddr = listener.local_addr().expect("gateway address");
                let props = floe::Properties::new();
                props.set_property(
                    "Dispotify.DataDir",
                    &dir.path().join(format!("node{id}")).display().to_string(),
                );
                props.set_property("Dispotify.Raft.NodeId", &id.to_string());
                props.set_property("Dispotify.Raft.Endpoints", "tcp -h 127.0.0.1 -p 0");
                props.set_property("Dispotify.Raft.Attribute.http", &addr.to_string());
                props.set_property("Dispotify.Replication", "1");
                props.set_property("Dispotify.HealthInterval", "300");
                props.set_property(
                    "Dispotify.UsersManager.Proxy",
                    &users.manager_proxy().to_string(),
                );
                if let Some(first) = nodes.first() {
                    let (members, _) = first.raft().members();
                    props.set_property("Dispotify.Raft.Join", &members[&1].endpoints);
                }
                for (k, v) in extra {
                    props.set_property(k, v);
                }
                let node =
                    Node::start(NodeConfig::from_properties(props).expect("node properties"))
                        .await
                        .expect("node starts");
                let deadline = Instant::now() + Duration::from_secs(30);
                while node.raft().leader().is_none()
                    || nodes.first().unwrap_or(&node).raft().members().0.len() < id
                {
                    assert!(
                        Instant::now() < deadline,
                        "node {id} is not in a cluster with a leader after 30 s"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::spawn(dispotify::gateway::serve(listener, node.clone()));
                nodes.push(node);
                bases.push(format!("http://{addr}"));
            }
            (users, nodes, bases)
        });
        Service {
            runtime,
            users: Some(users),
            nodes,
            bases,
            dir,
        }
    }

    /// Node 1's gateway.
    fn base(&self) -> &str {
        &self.bases[0]
    }

    fn addr(&self) -> &str {
        self.base().trim_start_matches("http://")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let nodes = self.nodes.clone();
        let users = self.users.take();
        self.runtime.block_on(async move {
            for node in nodes {
                node.shutdown().await;
            }
            if let Some(u) = users {
                u.shutdown().await;
            }
        });
    }
}

/// A tagged WAV tone of `seconds` at 8 kHz.
fn wav(
    dir: &Path,
    name: &str,
    seconds: f32,
    title: &str,
    artist: &str,
    album: &str,
    track: u32,
) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    dispotify::tags::write_test_wav(&path, seconds, 8000, 440.0, title, artist, album, track)
        .expect("write the test WAV");
    let bytes = std::fs::read(&path).expect("read the test WAV");
    (path, bytes)
}

// ----- plain HTTP -----

struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` of a JSON error body.
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no `error` in {}", String::from_utf8_lossy(&self.body)))
            .to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let result = match body {
        Some(b) => agent.run(builder.body(b).expect("request")),
        None => agent.run(builder.body(()).expect("request")),
    };
    let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e}"));
    Reply {
        status,
        headers,
        body,
    }
}

/// A multipart/form-data body: text fields, then the file (if any); its content type.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----floe-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, data)) = file {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The status line of a request sent by hand: its headers only (declaring a body it never
/// sends), then whatever the server answers.
fn raw_status(addr: &str, head: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the gateway");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(head.as_bytes()).expect("send the request head");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) => panic!(
                "reading the answer: {e} (so far: {})",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn http_contract() {
    const MAX: u64 = 700_000;
    let service = Service::start(1, &[("Dispotify.MaxUploadSize", &MAX.to_string())]);
    let base = service.base().to_string();
    let url = |path: &str| format!("{base}{path}");
    let http = agent();

    // The page.
    let page = request(&http, "GET", &url("/"), &[], None);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    assert!(String::from_utf8_lossy(&page.body).contains("id=\"audio\""));

    // Sessions.
    let wrong = request(
        &http,
        "POST",
        &url("/music/login"),
        &[("content-type", "application/json")],
        Some(
            json!({"user": USER, "password": "wrong"})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(
        wrong.status,
        401,
        "{}",
        String::from_utf8_lossy(&wrong.body)
    );
    assert!(wrong.header("set-cookie").is_none());
    assert!(!wrong.error().is_empty());
    let bad_json = request(
        &http,
        "POST",
        &url("/music/login"),
        &[("content-type", "application/json")],
        Some(b"{\"user\":".to_vec()),
    );
    assert_eq!(bad_json.status, 400);
    bad_json.error();
    let login = request(
        &http,
        "POST",
        &url("/music/login"),
        &[("content-type", "application/json")],
        Some(
            json!({"user": USER, "password": PASSWORD})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(
        login.status,
        200,
        "{}",
        String::from_utf8_lossy(&login.body)
    );
    assert_eq!(login.json()["user"], USER);
    let set_cookie = login
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(set_cookie.starts_with("dispotify_session="), "{set_cookie}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Strict"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let form_login = request(
        &http,
        "POST",
        &url("/music/login"),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(format!("user={USER}&password=correct+horse").into_bytes()),
    );
    assert_eq!(
        form_login.status,
        200,
        "{}",
        String::from_utf8_lossy(&form_login.body)
    );
    let me = request(
        &http,
        "GET",
        &url("/music/me"),
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!((me.status, me.json()["user"].as_str()), (200, Some(USER)));
    assert_eq!(
        request(&http, "GET", &url("/music/me"), &[], None).status,
        401
    );
    let logout = request(
        &http,
        "POST",
        &url("/music/logout"),
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!(logout.status, 200);
    assert!(
        logout
            .header("set-cookie")
            .unwrap_or("")
            .contains("Max-Age=0")
    );

    // Uploads: a session is needed, the file must be audio and at most MaxUploadSize.
    let (_, song_bytes) = wav(
        service.dir.path(),
        "long.wav",
        37.0,
        "Long Tone",
        "Zoë Keating",
        "Into the Trees",
        2,
    );
    assert!(
        song_bytes.len() as u64 > 2 * dispotify::storage::CHUNK as u64
            && (song_bytes.len() as u64) < MAX,
        "{} bytes",
        song_bytes.len()
    );
    let (ct, body) = multipart(
        &[("title", "Overridden Title")],
        Some(("long.wav", &song_bytes)),
    );
    let anonymous = request(
        &http,
        "POST",
        &url("/music/upload"),
        &[("content-type", &ct)],
        Some(body.clone()),
    );
    assert_eq!(
        anonymous.status,
        401,
        "{}",
        String::from_utf8_lossy(&anonymous.body)
    );
    anonymous.error();
    let forged = request(
        &http,
        "POST",
        &url("/music/upload"),
        &[
            ("content-type", &ct),
            ("cookie", "dispotify_session=nonsense%20-t%20-e%201.1"),
        ],
        Some(body.clone()),
    );
    assert_eq!(
        forged.status,
        401,
        "{}",
        String::from_utf8_lossy(&forged.body)
    );

    let not_audio: Vec<u8> = b"this is not a song at all\n"
        .iter()
        .copied()
        .cycle()
        .take(20_000)
        .collect();
    let (nct, nbody) = multipart(&[], Some(("notes.mp3", &not_audio)));
    let refused = request(
        &http,
        "POST",
        &url("/music/upload"),
        &[("content-type", &nct), ("cookie", &cookie)],
        Some(nbody),
    );
    assert_eq!(
        refused.status,
        400,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert!(refused.error().contains("audio"), "{}", refused.error());

    let no_file = multipart(&[("title", "x")], None);
    let missing = request(
        &http,
        "POST",
        &url("/music/upload"),
        &[("content-type", &no_file.0), ("cookie", &cookie)],
        Some(no_file.1),
    );
    assert_eq!(missing.status, 400);
    assert!(missing.error().contains("file"));
    let bad_track = multipart(&[("track", "two")], Some(("long.wav", &song_bytes)));
    assert_eq!(
        request(
            &http,
            "POST",
            &url("/music/upload"),
            &[("content-type", &bad_track.0), ("cookie", &cookie)],
            Some(bad_track.1)
        )
        .status,
        400
    );
    let not_multipart = request(
        &http,
        "POST",
        &url("/music/upload"),
        &[("content-type", "application/json"), ("cookie", &cookie)],
        Some(b"{}".to_vec()),
    );
    assert_eq!(not_multipart.status, 400);
    not_multipart.error();

    // Over the limit: declared (refused before the body is read) and streamed (the file part
    // alone passes the limit while the request stays under the multipart allowance).
    let over = raw_status(
        service.addr(),
        &format!(
            "POST /music/upload HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
            service.addr(),
            MAX * 4
        ),
    );
    assert!(over.contains(" 413 "), "{over}");
    let big: Vec<u8> = (0..MAX + 1000).map(|i| (i % 251) as u8).collect();
    let (bct, bbody) = multipart(&[], Some(("big.wav", &big)));
    let too_big = request(
        &http,
        "POST",
        &url("/music/upload"),
        &[("content-type", &bct), ("cookie", &cookie)],
        Some(bbody),
    );
    assert_eq!(
        too_big.status,
        413,
        "{}",
        String::from_utf8_lossy(&too_big.body)
    );
    assert!(
        too_big.error().contains("MaxUploadSize"),
        "{}",
        too_big.error()
    );

    let created = request(
        &http,
        "POST",
        &url("/music/upload"),
        &[("content-type", &ct), ("cookie", &cookie)],
        Some(body),
    );
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let song = created.json();
    let id = song["id"].as_str().expect("id").to_string();
    assert_eq!(id, dispotify::node::content_id(&song_bytes));
    assert_eq!(song["title"], "Overridden Title");
    assert_eq!(song["artist"], "Zoë Keating");
    assert_eq!(song["track"], 2);
    assert_eq!(song["size"], song_bytes.len() as u64);
    assert_eq!(song["uploader"], USER);
    assert_eq!(song["mime"], "audio/wav");
    assert!(song["duration_ms"].as_i64().unwrap_or(0) > 36_000, "{song}");
    let size = song_bytes.len() as u64;

    // Songs.
    let info = request(&http, "GET", &url(&format!("/music/songs/{id}")), &[], None);
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["title"], "Overridden Title");
    let unknown = "0".repeat(64);
    let missing = request(
        &http,
        "GET",
        &url(&format!("/music/songs/{unknown}")),
        &[],
        None,
    );
    assert_eq!(missing.status, 404);
    missing.error();
    for bad in ["xyz", &id.to_uppercase(), &format!("{id}0"), "%ff%fe"] {
        let r = request(
            &http,
            "GET",
            &url(&format!("/music/songs/{bad}")),
            &[],
            None,
        );
        assert_eq!(r.status, 400, "/music/songs/{bad}");
        r.error();
        let r = request(
            &http,
            "GET",
            &url(&format!("/music/stream/{bad}")),
            &[],
            None,
        );
        assert_eq!(r.status, 400, "/music/stream/{bad}");
    }
    assert_eq!(
        request(
            &http,
            "GET",
            &url(&format!("/music/stream/{unknown}")),
            &[],
            None
        )
        .status,
        404
    );

    // Search.
    let found = request(&http, "GET", &url("/music/search?q=ZOE%20keat"), &[], None);
    assert_eq!(found.status, 200);
    let found = found.json();
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["songs"][0]["id"], id.as_str());
    assert_eq!(found["songs"][0]["duration_ms"], song["duration_ms"]);
    assert_eq!(
        request(
            &http,
            "GET",
            &url("/music/search?q=nothing%20like%20it"),
            &[],
            None
        )
        .json()["total"],
        0
    );
    assert_eq!(
        request(
            &http,
            "GET",
            &url("/music/search?q=tone&limit=1000&offset=0"),
            &[],
            None
        )
        .status,
        200
    );
    for bad in [
        "limit=abc",
        "offset=-1",
        "limit=1.5",
        "offset=99999999999999999999999",
    ] {
        let r = request(
            &http,
            "GET",
            &url(&format!("/music/search?q=tone&{bad}")),
            &[],
            None,
        );
        assert_eq!(r.status, 400, "{bad}");
        r.error();
    }

    // Streaming: the whole, ranges, conditional requests.
    let stream_url = url(&format!("/music/stream/{id}"));
    let whole = request(&http, "GET", &stream_url, &[], None);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, song_bytes, "the whole file, byte for byte");
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.header("content-type"), Some("audio/wav"));
    assert_eq!(
        whole.header("content-length"),
        Some(size.to_string().as_str())
    );
    let etag = whole.header("etag").expect("an ETag").to_string();
    assert_eq!(etag, format!("\"{id}\""));

    let chunk = dispotify::storage::CHUNK as u64;
    for (range, from, to) in [
        ("bytes=0-0".to_string(), 0, 0),
        ("bytes=100-199".to_string(), 100, 199),
        (
            format!("bytes={}-{}", chunk - 10, chunk + 10),
            chunk - 10,
            chunk + 10,
        ),
        (
            format!("bytes={}-{}", chunk - 1, 2 * chunk + 5),
            chunk - 1,
            2 * chunk + 5,
        ),
        ("bytes=1000-".to_string(), 1000, size - 1),
        ("bytes=-500".to_string(), size - 500, size - 1),
        (format!("bytes=-{}", size * 2), 0, size - 1),
        (format!("bytes=5-{}", size * 10), 5, size - 1),
        (format!("bytes={}-", size - 1), size - 1, size - 1),
    ] {
        let r = request(&http, "GET", &stream_url, &[("range", &range)], None);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {from}-{to}/{size}").as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((to - from + 1).to_string().as_str()),
            "{range}"
        );
        assert!(
            r.body == song_bytes[from as usize..=to as usize],
            "{range}: the bytes differ"
        );
    }
    for range in [
        format!("bytes={size}-"),
        format!("bytes={}-{}", size + 10, size + 20),
        "bytes=-0".to_string(),
    ] {
        let r = request(&http, "GET", &stream_url, &[("range", &range)], None);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{size}").as_str()),
            "{range}"
        );
        r.error();
    }
    // Several ranges, a malformed one, another unit: the whole file.
    for range in ["bytes=0-9,20-29", "bytes=9-2", "bytes=abc", "items=0-9"] {
        let r = request(&http, "GET", &stream_url, &[("range", range)], None);
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.body.len() as u64, size, "{range}");
    }
    let cached = request(&http, "GET", &stream_url, &[("if-none-match", &etag)], None);
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    assert_eq!(
        request(
            &http,
            "GET",
            &stream_url,
            &[("if-none-match", "\"other\"")],
            None
        )
        .status,
        200
    );
    assert_eq!(
        request(
            &http,
            "GET",
            &stream_url,
            &[("if-none-match", &format!("\"x\", W/{etag}"))],
            None
        )
        .status,
        304
    );
    let if_range = request(
        &http,
        "GET",
        &stream_url,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
        None,
    );
    assert_eq!((if_range.status, if_range.body.len()), (206, 10));
    let stale = request(
        &http,
        "GET",
        &stream_url,
        &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
        None,
    );
    assert_eq!((stale.status, stale.body.len() as u64), (200, size));

    // The cluster.
    let status = request(&http, "GET", &url("/music/status"), &[], None);
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["leader"], 1, "{status}");
    assert_eq!(status["replication"], 1);
    assert_eq!(status["nodes"][0]["id"], 1);
    assert_eq!(status["nodes"][0]["up"], true);
    assert_eq!(status["nodes"][0]["leader"], true);
    assert_eq!(status["nodes"][0]["files"], 1);
    assert_eq!(status["nodes"][0]["http"], service.addr());
    assert_eq!(status["files"][0]["id"], id.as_str());
    assert_eq!(status["files"][0]["verified"], json!(["1"]));

    // Anything else.
    let nowhere = request(&http, "GET", &url("/music/nowhere"), &[], None);
    assert_eq!(nowhere.status, 404);
    nowhere.error();
    let wrong_method = request(&http, "GET", &url("/music/upload"), &[], None);
    assert_eq!(wrong_method.status, 405);
    wrong_method.error();
    let large_login = request(
        &http,
        "POST",
        &url("/music/login"),
        &[("content-type", "application/json")],
        Some(vec![b' '; 100_000]),
    );
    assert_eq!(large_login.status, 413);
    large_login.error();
}

/// Logs in through `base`'s gateway; the session cookie (`name=value`).
fn login(http: &ureq::Agent, base: &str) -> String {
    let r = request(
        http,
        "POST",
        &format!("{base}/music/login"),
        &[("content-type", "application/json")],
        Some(
            json!({"user": USER, "password": PASSWORD})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn remote_replica_through_the_gateway() {
    let service = Service::start(3, &[]);
    let http = agent();
    let cookie = login(&http, &service.bases[1]);
    let (_, song_bytes) = wav(
        service.dir.path(),
        "remote.wav",
        37.0,
        "Elsewhere",
        "Floe",
        "Replicas",
        1,
    );
    let size = song_bytes.len();
    let (ct, body) = multipart(&[], Some(("remote.wav", &song_bytes)));
    let created = request(
        &http,
        "POST",
        &format!("{}/music/upload", service.bases[1]),
        &[("content-type", &ct), ("cookie", &cookie)],
        Some(body),
    );
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let id = created.json()["id"].as_str().expect("id").to_string();

    // With one replica, two of the three nodes hold none: their gateways read it over Ice.
    let holders: Vec<usize> = (0..3)
        .filter(|i| service.nodes[*i].replicas().has(&id))
        .collect();
    assert_eq!(
        holders.len(),
        1,
        "one replica (Dispotify.Replication=1): {holders:?}"
    );
    let holder = holders[0];
    eprintln!("the replica is on node {}", holder + 1);
    let chunk = dispotify::storage::CHUNK;
    for i in (0..3).filter(|i| *i != holder) {
        let url = format!("{}/music/stream/{id}", service.bases[i]);
        let whole = request(&http, "GET", &url, &[], None);
        assert_eq!(
            whole.status,
            200,
            "node {}: {}",
            i + 1,
            String::from_utf8_lossy(&whole.body)
        );
        assert!(
            whole.body == song_bytes,
            "node {}: the whole file read from node {}",
            i + 1,
            holder + 1
        );
        let (from, to) = (chunk - 7, 2 * chunk + 7);
        let part = request(
            &http,
            "GET",
            &url,
            &[("range", &format!("bytes={from}-{to}"))],
            None,
        );
        assert_eq!(part.status, 206);
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {from}-{to}/{size}").as_str())
        );
        assert!(
            part.body == song_bytes[from..=to],
            "node {}: the range read from node {}",
            i + 1,
            holder + 1
        );
        assert!(
            !service.nodes[i].replicas().has(&id),
            "reading through a node does not store a replica there"
        );
    }

    // Every gateway shows the same cluster: three nodes up, the file's replica on its holder.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = request(
            &http,
            "GET",
            &format!("{}/music/status", service.bases[2]),
            &[],
            None,
        )
        .json();
        let nodes = status["nodes"].as_array().cloned().unwrap_or_default();
        let all_up = nodes.len() == 3 && nodes.iter().all(|n| n["up"] == true);
        if all_up {
            for (i, n) in nodes.iter().enumerate() {
                assert_eq!(n["id"], i as u64 + 1, "{status}");
                assert_eq!(
                    n["http"],
                    service.bases[i].trim_start_matches("http://"),
                    "{status}"
                );
            }
            assert_eq!(
                status["files"][0]["verified"],
                json!([(holder + 1).to_string()]),
                "{status}"
            );
            assert_eq!(
                status["files"][0]["placement"],
                json!([(holder + 1).to_string()]),
                "{status}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every node is up after 20 s: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The only replica gone: the other gateways answer 503 (JSON), not a broken body.
    service.runtime.block_on(service.nodes[holder].shutdown());
    let reader = (0..3).find(|i| *i != holder).expect("another node");
    let gone = request(
        &http,
        "GET",
        &format!("{}/music/stream/{id}", service.bases[reader]),
        &[],
        None,
    );
    assert_eq!(gone.status, 503, "{}", String::from_utf8_lossy(&gone.body));
    gone.error();
}

// ----- WebDriver -----

/// A chromedriver and the headless Chromium session it drives; both end when this is dropped
/// (printing the page, the browser's console and chromedriver's log first if the test failed).
struct Browser {
    agent: ureq::Agent,
    driver: Child,
    url: String,
    session: Option<String>,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    fn start() -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: this test drives a real headless Chromium; install the Debian packages `chromium` and `chromium-driver` (apt-get install chromium chromium-driver; `{package}` provides {path})"
            );
        }
        let mut profile = tempfile::tempdir().expect("a profile directory");
        let log = profile.path().join("chromedriver.log");
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(CHROMEDRIVER);
            command
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            let driver = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
            let mut browser = Browser {
                agent: agent(),
                driver,
                url: format!("http://127.0.0.1:{port}"),
                session: None,
                log: log.clone(),
                _profile: profile,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            let ready = loop {
                if let Ok(v) = browser.call("GET", "/status", None)
                    && v["ready"] == true
                {
                    break true;
                }
                if Instant::now() > deadline || browser.driver.try_wait().ok().flatten().is_some() {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            if !ready {
                last = format!(
                    "chromedriver on port {port} did not become ready: {}",
                    browser.driver_log()
                );
                profile = std::mem::replace(
                    &mut browser._profile,
                    tempfile::tempdir().expect("a directory"),
                );
                drop(browser);
                continue;
            }
            let user_data = browser._profile.path().join("user-data");
            let capabilities = json!({
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:loggingPrefs": { "browser": "ALL" },
                        "goog:chromeOptions": {
                            "binary": CHROMIUM,
                            "args": [
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--disable-dev-shm-usage",
                                "--autoplay-policy=no-user-gesture-required",
                                "--window-size=1280,900",
                                format!("--user-data-dir={}", user_data.display()),
                            ]
                        }
                    }
                }
            });
            let session = browser
                .call("POST", "/session", Some(capabilities))
                .unwrap_or_else(|e| panic!("no Chromium session: {e}\n{}", browser.driver_log()));
            browser.session = Some(
                session["sessionId"]
                    .as_str()
                    .expect("sessionId")
                    .to_string(),
            );
            return browser;
        }
        panic!("{last}");
    }

    /// A WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.url);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        let result = match body {
            Some(b) => {
                builder = builder.header("content-type", "application/json; charset=utf-8");
                self.agent.run(
                    builder
                        .body(b.to_string().into_bytes())
                        .map_err(|e| e.to_string())?,
                )
            }
            None => self.agent.run(builder.body(()).map_err(|e| e.to_string())?),
        };
        let mut response = result.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{method} {path}: {e}: {text}"))?;
        if status != 200 {
            return Err(format!(
                "{method} {path}: {status} {}: {}",
                v["value"]["error"], v["value"]["message"]
            ));
        }
        Ok(v["value"].clone())
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let session = self.session.as_deref().expect("a session");
        self.call(method, &format!("/session/{session}{path}"), body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.command("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.command(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn js(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    fn text(&self, css: &str) -> String {
        self.js(&format!(
            "const e = document.querySelector({}); return e ? e.textContent : null;",
            json!(css)
        ))
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// Whether the element is shown (it and its parents take room on the page).
    fn visible(&self, css: &str) -> bool {
        self.js(&format!("const e = document.querySelector({}); return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';", json!(css))) == true
    }

    /// Waits (at most `timeout`) for `probe` to give something.
    fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&Browser) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = probe(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a screenshot of the page as PNG.
    fn screenshot(&self, path: &Path) {
        let data = self.command("GET", "/screenshot", None);
        let png = base64_decode(data.as_str().unwrap_or("")).expect("a base64 screenshot");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    fn driver_log(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// What the page and the browser say, for a failed test.
    fn diagnostics(&self) -> String {
        let Some(session) = &self.session else {
            return self.driver_log();
        };
        let source = self
            .call("GET", &format!("/session/{session}/source"), None)
            .map(|v| v.as_str().unwrap_or("").to_string())
            .unwrap_or_else(|e| e);
        let console = match self.call(
            "POST",
            &format!("/session/{session}/se/log"),
            Some(json!({ "type": "browser" })),
        ) {
            Ok(Value::Array(entries)) => entries
                .iter()
                .map(|e| format!("{} {}", e["level"], e["message"]))
                .collect::<Vec<_>>()
                .join("\n"),
            Ok(other) => other.to_string(),
            Err(e) => e,
        };
        let audio = self
            .call(
                "POST",
                &format!("/session/{session}/execute/sync"),
                Some(json!({ "script": "const a = document.querySelector('#audio'); return a ? {src: a.currentSrc, time: a.currentTime, paused: a.paused, ready: a.readyState, network: a.networkState, error: a.error && a.error.message} : null;", "args": [] })),
            )
            .map(|v| v.to_string())
            .unwrap_or_else(|e| e);
        format!(
            "----- page source -----\n{source}\n----- browser console -----\n{console}\n----- audio -----\n{audio}\n----- chromedriver log (end) -----\n{}",
            self.driver_log()
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        if let Some(session) = self.session.take() {
            let _ = self.call("DELETE", &format!("/session/{session}"), None);
        }
        let pid = self.driver.id();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Whatever chromedriver started and left behind (its process group).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `DISPOTIFY_WEB_SCREENSHOTS=<dir>` keeps screenshots of the player's steps there.
fn screenshot(browser: &Browser, step: &str) {
    if let Some(dir) = std::env::var_os("DISPOTIFY_WEB_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        browser.screenshot(&dir.join(format!("{step}.png")));
    }
}

#[test]
fn web_player_in_chromium() {
    let service = Service::start(1, &[]);
    let (wav_path, wav_bytes) = wav(
        service.dir.path(),
        "floe-tone.wav",
        8.0,
        "Floe Tone",
        "Zoë Keating",
        "Into the Trees",
        3,
    );
    let id = dispotify::node::content_id(&wav_bytes);
    let browser = Browser::start();
    let secs = Duration::from_secs;

    browser.goto(&format!("{}/", service.base()));
    assert_eq!(browser.js("return document.title;"), "Dispotify");
    assert!(
        browser.visible("#login-form") && !browser.visible("#logout"),
        "logged out at first"
    );

    // Log in through the form.
    browser.type_into("#user", USER);
    browser.type_into("#password", PASSWORD);
    browser.click("#login");
    browser.wait("the page to show the logged-in user", secs(15), |b| {
        (b.text("#who") == USER).then_some(())
    });
    assert!(
        !browser.visible("#login-form"),
        "the login form is hidden once logged in"
    );
    assert!(browser.visible("#logout"));

    // Upload through the form (the album overridden).
    browser.type_into("#file", &wav_path.display().to_string());
    browser.type_into("#album", "Played In Chromium");
    browser.click("#upload");
    let result = browser.wait("the upload's result", secs(30), |b| {
        let t = b.text("#upload-result");
        (!t.is_empty()).then_some(t)
    });
    assert!(
        result.contains("Uploaded") && result.contains("Floe Tone"),
        "upload result: {result}"
    );
    assert!(
        result.contains("Played In Chromium"),
        "upload result: {result}"
    );
    let song = service
        .runtime
        .block_on(service.nodes[0].song(&id))
        .expect("the song is in the catalog");
    assert_eq!(
        (
            song.title.as_str(),
            song.artist.as_str(),
            song.album.as_str(),
            song.uploader.as_str()
        ),
        ("Floe Tone", "Zoë Keating", "Played In Chromium", USER)
    );

    // Search by artist, another case and no accent.
    browser.type_into("#q", "ZOE keating");
    browser.click("#search");
    browser.wait("a search result", secs(15), |b| {
        (b.js("return document.querySelectorAll('#results .song').length;") == 1).then_some(())
    });
    assert_eq!(browser.text("#results .song .title"), "Floe Tone");
    assert_eq!(browser.text("#results .song .artist"), "Zoë Keating");
    assert_eq!(browser.text("#results .song .duration"), "0:08");
    assert_eq!(
        browser.js("return document.querySelector('#results .song').dataset.id;"),
        id.as_str()
    );

    // Play it: the audio element plays the stream and its time advances.
    browser.click("#results .song");
    browser.wait("the audio to play past 0.5 s", secs(20), |b| {
        let t = b
            .js("return document.querySelector('#audio').currentTime;")
            .as_f64()
            .unwrap_or(0.0);
        (t > 0.5).then_some(())
    });
    let audio = browser.js("const a = document.querySelector('#audio'); return {src: a.currentSrc, paused: a.paused, duration: a.duration, seekable: a.seekable.length ? a.seekable.end(0) : 0};");
    assert!(
        audio["src"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("/music/stream/{id}")),
        "{audio}"
    );
    assert_eq!(audio["paused"], false, "{audio}");
    let duration = audio["duration"].as_f64().unwrap_or(0.0);
    assert!((duration - 8.0).abs() < 0.1, "{audio}");
    assert!(
        audio["seekable"].as_f64().unwrap_or(0.0) > 7.9,
        "the whole file is seekable: {audio}"
    );
    assert!(browser.text("#now-playing").contains("Floe Tone"));
    screenshot(&browser, "1-playing");

    // Seek to 5 s: playing goes on from there.
    browser.js("document.querySelector('#audio').currentTime = 5; return null;");
    let at = browser.wait("the seek to 5 s", secs(10), |b| {
        let t = b
            .js("return document.querySelector('#audio').currentTime;")
            .as_f64()
            .unwrap_or(0.0);
        (t >= 5.0).then_some(t)
    });
    let later = browser.wait("the time to advance after the seek", secs(10), |b| {
        let t = b
            .js("return document.querySelector('#audio').currentTime;")
            .as_f64()
            .unwrap_or(0.0);
        (t > at + 0.3).then_some(t)
    });
    assert!((5.0..=8.0).contains(&later), "{later}");

    // The health panel: the node is up and the leader, the file has its one replica.
    browser.wait("the health panel to show the node up", secs(15), |b| {
        (b.js(
            "const r = document.querySelector('#health #node-1'); return r ? r.dataset.up : null;",
        ) == "true")
            .then_some(())
    });
    let summary = browser.text("#health-summary");
    assert!(
        summary.contains("1 of 1 node up") && summary.contains("leader: node 1"),
        "{summary}"
    );
    browser.wait("the health panel to show the file's replica", secs(15), |b| {
        (b.js(&format!("const r = document.querySelector('#health-files tr[data-id=\"{id}\"]'); return r ? r.dataset.replicas : null;")) == "1").then_some(())
    });

    screenshot(&browser, "2-health");

    // Log out.
    browser.click("#logout");
    browser.wait("the login form again", secs(10), |b| {
        b.visible("#login-form").then_some(())
    });
    assert!(!browser.visible("#logout"));
}
