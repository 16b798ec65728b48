//! `dispotify-bench`: Dispotify against the disk and against nginx, on one machine, in one run.
//!
//! - Starts a users manager and 4 Dispotify nodes in this process
//!   (`dispotify::cluster::Cluster::start`, `Dispotify.Replication=3`), each with its HTTP
//!   gateway on loopback; with 4 nodes and R=3 one node holds no replica of a file, and serves
//!   it from another node's over Ice ("remote").
//! - Upload: `RUNS` distinct WAV files of `SIZE_MB` MB (`dispotify::tags::write_test_wav`, mono
//!   16-bit at 44,100 Hz, a different tone each), each uploaded once over HTTP
//!   (`POST /music/upload`, multipart, with the session cookie of `POST /music/login`) and once
//!   over Ice (`dispotify::client::upload_file`), to a node of the file's placement; timed until
//!   the acknowledgement (a quorum of 2 replicas verified, the song in the catalog) and until
//!   the third replica is verified too. The floor: the same bytes written R times to files in
//!   the cluster's data directory, each followed by `fsync` (best of `RUNS`).
//! - Streaming: `GET /music/stream/{id}` from a node holding a replica and from the node that
//!   holds none, and `GET /song.wav` from nginx serving the same file from a temporary root
//!   (`sendfile on`), by the same client code (hyper's HTTP/1.1 client over one fresh loopback
//!   connection per download, the body counted and dropped), `RUNS` rounds in rotating order,
//!   best of each. Each source is downloaded once first, unmeasured, and its SHA-256 checked.
//! - Search: `SONGS` synthetic songs inserted into a `dispotify::search::SearchIndex`, then
//!   `QUERIES` queries of 1 to 3 words timed one by one (page of 20); and, on the cluster, the
//!   same songs entered in the catalog through the Raft log (`AddSong` commands written to the
//!   leader, 64 at a time), then `HTTP_QUERIES` queries over `GET /music/search` on one
//!   keep-alive connection, and the same queries through `Node::search` in the process.
//! - Where the time goes: SHA-256 per MB, a node's chunked reads of its own replica, reads of
//!   another node's replica (one `Storage.readReplica` round trip per 256 KiB chunk) one at a
//!   time and several in flight, and the steps of an upload one by one.
//!
//! Usage: `dispotify-bench [--runs N] [--size-mb MB] [--songs N] [--queries N]
//! [--http-queries N] [--catalog-songs N] [--dir DIR] [--nginx PATH]`; `dispotify-bench --fetch
//! ADDR PATH [N]` only downloads `http://ADDR/PATH` N times with the benchmark's client.
//! Progress goes to stderr (and warnings of the nodes, `RUST_LOG`), the tables (Markdown) to
//! stdout.

use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dispotify::catalog::{Catalog, SongRecord};
use dispotify::cluster::Cluster;
use dispotify::node::Node;
use dispotify::search::SearchIndex;
use dispotify::slice::dispotify as api;
use dispotify::storage::{CHUNK, Replicas, hash_file, hex};
use floe::Properties;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

const MB: f64 = 1e6;
const R: usize = 3;
const NODES: usize = 4;
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
const SAMPLE_RATE: u32 = 44_100;

fn note(s: impl AsRef<str>) {
    eprintln!("== {}", s.as_ref());
}

#[derive(Debug, Clone)]
struct Args {
    runs: usize,
    size_mb: f64,
    songs: usize,
    queries: usize,
    http_queries: usize,
    catalog_songs: usize,
    dir: PathBuf,
    nginx: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        runs: 3,
        size_mb: 50.0,
        songs: 100_000,
        queries: 1_000,
        http_queries: 300,
        catalog_songs: 100_000,
        dir: std::env::temp_dir().join(format!("dispotify-bench-{}", std::process::id())),
        nginx: "nginx".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|e| format!("{s}: {e}"));
        match k.as_str() {
            "--runs" => a.runs = num(v()?)?.max(1),
            "--size-mb" => a.size_mb = v()?.parse::<f64>().map_err(|e| e.to_string())?,
            "--songs" => a.songs = num(v()?)?,
            "--queries" => a.queries = num(v()?)?,
            "--http-queries" => a.http_queries = num(v()?)?,
            "--catalog-songs" => a.catalog_songs = num(v()?)?,
            "--dir" => a.dir = PathBuf::from(v()?),
            "--nginx" => a.nginx = v()?,
            "-h" | "--help" => {
                println!(
                    "dispotify-bench [--runs N] [--size-mb MB] [--songs N] [--queries N] [--http-queries N] [--catalog-songs N] [--dir DIR] [--nginx PATH]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,openraft=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    // `dispotify-bench --fetch ADDR PATH [N]`: the benchmark's download alone, N times (to
    // compare its client with another, e.g. curl).
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--fetch") {
        let (addr, path) = (
            argv.get(2).cloned().unwrap_or_default(),
            argv.get(3).cloned().unwrap_or_default(),
        );
        let n: usize = argv.get(4).and_then(|v| v.parse().ok()).unwrap_or(3);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        for _ in 0..n {
            let (a, p) = (addr.clone(), path.clone());
            match rt.block_on(on_client(move || download(a, p, false))) {
                Ok(d) => println!(
                    "{} bytes in {:.4} s: {:.1} MB/s",
                    d.bytes,
                    d.time.as_secs_f64(),
                    mbps(d.bytes, d.time)
                ),
                Err(e) => println!("{e}"),
            }
        }
        return;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dispotify-bench: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(run(args.clone()));
    rt.shutdown_timeout(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&args.dir);
    if let Err(e) = result {
        eprintln!("dispotify-bench: {e}");
        std::process::exit(1);
    }
}

// ----- a client on a thread of its own -----

/// Runs `make()`'s future on a new thread with a current-thread runtime of its own, as a client
/// process would, apart from the cluster's runtime.
async fn on_client<T, F, Fut>(make: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        let out = rt.block_on(make());
        let _ = tx.send(out);
    });
    rx.await.expect("client thread")
}

// ----- HTTP -----

type Body = BoxBody<Bytes, std::io::Error>;

fn empty() -> Body {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

fn full(b: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(b.into())
        .map_err(|never| match never {})
        .boxed()
}

/// One HTTP/1.1 connection (hyper's client connection API).
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Body>,
    host: String,
}

impl Conn {
    async fn open(addr: &str) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            host: addr.to_string(),
        })
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        let req = b.body(body).map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        self.sender
            .send_request(req)
            .await
            .map_err(|e| format!("{path}: {e}"))
    }

    /// A request whose answer is read whole.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), String> {
        let resp = self.send(method, path, headers, body).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, headers, body))
    }
}

/// A download: bytes received, time from the request to its last byte, SHA-256 if asked.
struct Download {
    bytes: u64,
    time: Duration,
    sha256: Option<String>,
}

/// GETs `path` from `addr` over a fresh connection, counting (and dropping) the body.
async fn download(addr: String, path: String, check: bool) -> Result<Download, String> {
    let mut conn = Conn::open(&addr).await?;
    let start = Instant::now();
    let resp = conn.send(Method::GET, &path, &[], empty()).await?;
    if resp.status() != StatusCode::OK {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(format!(
            "GET {path} at {addr}: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let mut body = resp.into_body();
    let mut bytes = 0u64;
    let mut hasher = check.then(Sha256::new);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("GET {path} at {addr}: body: {e}"))?;
        if let Ok(data) = frame.into_data() {
            bytes += data.len() as u64;
            if let Some(h) = hasher.as_mut() {
                h.update(&data);
            }
        }
    }
    let time = start.elapsed();
    Ok(Download {
        bytes,
        time,
        sha256: hasher.map(|h| hex(&h.finalize())),
    })
}

/// Logs in over HTTP; returns the `Cookie` header value.
async fn http_login(addr: &str) -> Result<String, String> {
    let mut conn = Conn::open(addr).await?;
    let body = serde_json::json!({ "user": USER, "password": PASSWORD }).to_string();
    let (status, headers, text) = conn
        .call(
            Method::POST,
            "/music/login",
            &[("content-type", "application/json".into())],
            full(body),
        )
        .await?;
    if status != StatusCode::OK {
        return Err(format!(
            "POST /music/login: {status} {}",
            String::from_utf8_lossy(&text)
        ));
    }
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .ok_or("POST /music/login: no Set-Cookie")?;
    Ok(cookie.split(';').next().unwrap_or("").trim().to_string())
}

/// POSTs the file at `path` as `multipart/form-data` (field `file`), streamed from disk;
/// returns the time from the request to the answer, and the song.
async fn http_upload(
    addr: String,
    cookie: String,
    path: PathBuf,
) -> Result<(Instant, Instant, serde_json::Value), String> {
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    let boundary = "dispotify-bench-3f9a1c";
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: audio/wav\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + size + tail.len() as u64;
    let mut conn = Conn::open(&addr).await?;
    let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
    enum Part {
        Head(String, std::fs::File, String),
        File(std::fs::File, String),
        Done,
    }
    let stream = futures_util::stream::unfold(Part::Head(head, file, tail), |part| async move {
        match part {
            Part::Head(h, f, t) => Some((Ok(Frame::data(Bytes::from(h))), Part::File(f, t))),
            Part::File(mut f, t) => {
                let mut buf = vec![0u8; CHUNK];
                match f.read(&mut buf) {
                    Ok(0) => Some((Ok(Frame::data(Bytes::from(t))), Part::Done)),
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Frame::data(Bytes::from(buf))), Part::File(f, t)))
                    }
                    Err(e) => Some((Err(e), Part::Done)),
                }
            }
            Part::Done => None,
        }
    });
    let body: Body = StreamBody::new(stream).boxed();
    let start = Instant::now();
    let (status, _, text) = conn
        .call(
            Method::POST,
            "/music/upload",
            &[
                (
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                ),
                ("content-length", length.to_string()),
                ("cookie", cookie),
            ],
            body,
        )
        .await?;
    let acked = Instant::now();
    if status != StatusCode::CREATED {
        return Err(format!(
            "POST /music/upload: {status} {}",
            String::from_utf8_lossy(&text)
        ));
    }
    let song: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("upload answer: {e}"))?;
    Ok((start, acked, song))
}

/// Uploads the file over Ice with `dispotify::client::upload_file` (hash, begin, chunks,
/// finish), from a communicator of its own.
async fn ice_upload(
    proxy: String,
    session: String,
    path: PathBuf,
) -> Result<(Instant, Instant, api::Song), String> {
    let communicator =
        floe::Communicator::with_properties(Properties::new()).map_err(|e| e.to_string())?;
    let result = async {
        let prx = communicator
            .string_to_proxy(&proxy)
            .map_err(|e| e.to_string())?
            .ok_or("null proxy")?;
        let catalog = api::CatalogPrx::unchecked_cast(prx.ice_invocation_timeout(120_000));
        let start = Instant::now();
        let song =
            dispotify::client::upload_file(&catalog, &session, &path, api::Overrides::default())
                .await?;
        Ok((start, Instant::now(), song))
    }
    .await;
    communicator.destroy().await;
    result
}

// ----- figures -----

fn mbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / MB / t.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        0.0
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    }
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ----- test data -----

/// A WAV of `size_mb` MB with a tone of its own (so a different SHA-256).
fn make_wav(path: &Path, size_mb: f64, tone: usize) -> Result<(), String> {
    let seconds = (size_mb * MB / (f64::from(SAMPLE_RATE) * 2.0)) as f32;
    dispotify::tags::write_test_wav(
        path,
        seconds,
        SAMPLE_RATE,
        220.0 + 7.0 * tone as f32,
        &format!("Bench tone {tone}"),
        "Dispotify Bench",
        "Fifty Megabytes",
        tone as u32 + 1,
    )
    .map_err(|e| format!("{}: {e}", path.display()))
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Skewed towards small numbers (a few common words, many rare ones).
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * n as f64) as usize % n
    }
}

/// Synthetic songs: titles of 1 to 4 words from a vocabulary of 20,000 made-up words (common
/// words far more frequent than rare ones), artists from 8,000 names, albums from 20,000.
struct Library {
    songs: Vec<(String, String, String, String)>,
}

fn make_word(rng: &mut Rng) -> String {
    const ONSETS: &[&str] = &[
        "b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "pl",
        "r", "s", "sh", "st", "t", "tr", "v", "w", "z",
    ];
    const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "oo", "y"];
    const CODAS: &[&str] = &["", "", "n", "r", "s", "l", "nd", "st", "x", "m"];
    let syllables = 1 + rng.below(3);
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(ONSETS[rng.below(ONSETS.len())]);
        w.push_str(VOWELS[rng.below(VOWELS.len())]);
    }
    w.push_str(CODAS[rng.below(CODAS.len())]);
    w
}

fn phrase(rng: &mut Rng, words: &[String], min: usize, max: usize) -> String {
    let n = min + rng.below(max - min + 1);
    let mut out: Vec<&str> = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(&words[rng.skewed(words.len())]);
    }
    let mut s = out.join(" ");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s
}

impl Library {
    fn new(n: usize, seed: u64) -> Library {
        let mut rng = Rng(seed);
        let words: Vec<String> = (0..20_000).map(|_| make_word(&mut rng)).collect();
        let artists: Vec<String> = (0..8_000).map(|_| phrase(&mut rng, &words, 1, 3)).collect();
        let albums: Vec<String> = (0..20_000)
            .map(|_| phrase(&mut rng, &words, 1, 3))
            .collect();
        let songs = (0..n)
            .map(|i| {
                let id = hex(&Sha256::digest(format!("bench-song-{i}").as_bytes()));
                let title = phrase(&mut rng, &words, 1, 4);
                let artist = artists[rng.skewed(artists.len())].clone();
                let album = albums[rng.below(albums.len())].clone();
                (id, title, artist, album)
            })
            .collect();
        Library { songs }
    }

    /// Queries as people type them: 1 to 3 words of some song's title, artist or album, the
    /// last one often unfinished (at least 3 letters of it).
    fn queries(&self, n: usize, seed: u64) -> Vec<String> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|_| {
                let (_, title, artist, album) = &self.songs[rng.below(self.songs.len())];
                let mut pool: Vec<String> = Vec::new();
                for field in [title, artist, album] {
                    pool.extend(field.split_whitespace().map(|w| w.to_lowercase()));
                }
                let k = (1 + rng.below(3)).min(pool.len());
                let start = rng.below(pool.len() - k + 1);
                let mut words: Vec<String> = pool[start..start + k].to_vec();
                if rng.below(2) == 0
                    && let Some(last) = words.last_mut()
                    && last.len() > 3
                {
                    let keep = 3 + rng.below(last.len() - 3);
                    last.truncate(keep);
                }
                words.join(" ")
            })
            .collect()
    }
}

/// A catalog entry of a synthetic song (no file behind it).
fn bench_song(i: usize, id: &str, title: &str, artist: &str, album: &str) -> SongRecord {
    SongRecord {
        id: id.to_string(),
        name: format!("{title}.mp3"),
        title: title.to_string(),
        artist: artist.to_string(),
        album: album.to_string(),
        track: (i % 12) as i32 + 1,
        duration_ms: 180_000,
        size: 5_000_000,
        mime: "audio/mpeg".into(),
        uploaded: 0,
        uploader: USER.into(),
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ----- nginx -----

struct Nginx {
    child: Child,
    addr: String,
}

impl Drop for Nginx {
    /// Stops nginx with SIGTERM (its fast shutdown, which stops the workers too: a SIGKILL of
    /// the master would leave them running), then SIGKILL after 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Starts nginx in the foreground serving `root` on a free loopback port, with a minimal
/// configuration: one worker, `sendfile on`, no access log.
fn start_nginx(binary: &str, prefix: &Path, root: &Path) -> Result<Nginx, String> {
    let port = free_port()?;
    std::fs::create_dir_all(prefix.join("logs")).map_err(|e| e.to_string())?;
    let p = prefix.display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\nmaster_process on;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  sendfile on;\n  tcp_nopush on;\n  access_log off;\n  default_type application/octet-stream;\n\
         client_body_temp_path {p}/client_body;\n  proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
         server {{\n    listen 127.0.0.1:{port};\n    root {};\n  }}\n}}\n",
        root.display()
    );
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{binary}: {e} (bench/dispotify.sh installs Debian's nginx)"))?;
    let addr = format!("127.0.0.1:{port}");
    let nginx = Nginx {
        child,
        addr: addr.clone(),
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Ok(nginx);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "nginx did not listen on {addr}: see {p}/logs/error.log"
    ))
}

fn nginx_version(binary: &str) -> String {
    Command::new(binary)
        .arg("-v")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .replace("nginx version: ", "")
        })
        .unwrap_or_default()
}

// ----- the cluster -----

fn holders(cluster: &Cluster, id: &str) -> Vec<u64> {
    cluster
        .nodes()
        .iter()
        .filter(|(n, _)| n.replicas().has(id))
        .map(|(n, _)| n.raft().id())
        .collect()
}

fn node_by_id(cluster: &Cluster, id: u64) -> &(Node, String) {
    cluster
        .nodes()
        .iter()
        .find(|(n, _)| n.raft().id() == id)
        .expect("node")
}

/// Waits until every node of `placement` holds a verified replica of `id`.
async fn wait_replicas(
    cluster: &Cluster,
    id: &str,
    placement: &[u64],
    limit: Duration,
) -> Result<Instant, String> {
    let deadline = Instant::now() + limit;
    loop {
        if placement
            .iter()
            .all(|p| node_by_id(cluster, *p).0.replicas().has(id))
        {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{id}: replicas on {:?}, placement {placement:?}",
                holders(cluster, id)
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The floor: `data` written `copies` times to files of `dir`, each `fsync`ed.
fn floor_write(dir: &Path, data: &[u8], copies: usize) -> Result<Duration, String> {
    let start = Instant::now();
    for i in 0..copies {
        let path = dir.join(format!("floor-{i}"));
        let mut f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        for part in data.chunks(1 << 20) {
            f.write_all(part).map_err(|e| e.to_string())?;
        }
        f.sync_all().map_err(|e| e.to_string())?;
    }
    fsync_dir(dir);
    let t = start.elapsed();
    for i in 0..copies {
        let _ = std::fs::remove_file(dir.join(format!("floor-{i}")));
    }
    Ok(t)
}

struct Row {
    measure: String,
    dispotify: String,
    reference: String,
    ratio: String,
    aim: String,
}

fn row(measure: &str, dispotify: String, reference: String, ratio: String, aim: &str) -> Row {
    Row {
        measure: measure.into(),
        dispotify,
        reference,
        ratio,
        aim: aim.into(),
    }
}

fn print_table(header: [&str; 5], rows: &[Row]) {
    println!(
        "| {} | {} | {} | {} | {} |",
        header[0], header[1], header[2], header[3], header[4]
    );
    println!("| --- | --- | --- | --- | --- |");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.measure, r.dispotify, r.reference, r.ratio, r.aim
        );
    }
}

async fn run(args: Args) -> Result<(), String> {
    let dir = args.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files = dir.join("files");
    let data_dir = dir.join("cluster");
    let www = dir.join("www");
    for d in [&files, &data_dir, &www] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }

    // ----- the cluster -----
    note(format!(
        "starting {NODES} nodes with R={R} in {}",
        data_dir.display()
    ));
    let props = Properties::new();
    props.set_property("Dispotify.Replication", &R.to_string());
    // No repair pass during the run: the catalog gets songs without files for the search
    // measurement, which a repair pass would try to fetch.
    props.set_property("Dispotify.RepairInterval", "3600000");
    let cluster = Cluster::start(NODES, &props, &data_dir, Some((USER, PASSWORD))).await?;
    let result = bench(&args, &cluster, &files, &data_dir, &www).await;
    note("stopping the cluster");
    cluster.shutdown().await;
    result
}

async fn bench(
    args: &Args,
    cluster: &Cluster,
    files: &Path,
    data_dir: &Path,
    www: &Path,
) -> Result<(), String> {
    let size_label = format!("{:.0} MB", args.size_mb);
    let first_http = cluster.nodes()[0].1.clone();
    let cookie = on_client({
        let a = first_http.clone();
        move || async move { http_login(&a).await }
    })
    .await?;
    let session = cluster.nodes()[0]
        .0
        .login(USER, PASSWORD)
        .await
        .map_err(|e| e.to_string())?;

    // ----- uploads and the floor -----
    let mut floor = Vec::new();
    let mut http_ack = Vec::new();
    let mut http_all = Vec::new();
    let mut ice_ack = Vec::new();
    let mut ice_all = Vec::new();
    let mut stream_song: Option<(String, PathBuf, Vec<u64>)> = None;
    let mut size = 0u64;
    for run in 0..args.runs {
        for (k, over_http) in [(0, true), (1, false)] {
            let tone = run * 2 + k;
            let path = files.join(format!("tone-{tone}.wav"));
            make_wav(&path, args.size_mb, tone)?;
            size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
            let id = hash_file(&path).map_err(|e| e.to_string())?;
            let placement = cluster.nodes()[0].0.placement(&id);
            let (target, http) = node_by_id(cluster, placement[0]).clone();
            if k == 0 {
                let data = std::fs::read(&path).map_err(|e| e.to_string())?;
                let t = floor_write(data_dir, &data, R)?;
                floor.push(mbps(size, t));
                note(format!(
                    "floor, run {}: {R} × {size} bytes written and fsynced in {:.3} s: {:.1} MB/s",
                    run + 1,
                    t.as_secs_f64(),
                    mbps(size, t)
                ));
            }
            let (start, acked) = if over_http {
                let (c, p) = (cookie.clone(), path.clone());
                let (start, acked, song) = on_client(move || http_upload(http, c, p)).await?;
                if song["id"].as_str() != Some(id.as_str()) {
                    return Err(format!("the upload answered {song}, not id {id}"));
                }
                (start, acked)
            } else {
                let (proxy, s, p) = (
                    target.catalog_proxy().to_string(),
                    session.clone(),
                    path.clone(),
                );
                let (start, acked, song) = on_client(move || ice_upload(proxy, s, p)).await?;
                if song.id != id {
                    return Err(format!("the upload gave id {}, not {id}", song.id));
                }
                (start, acked)
            };
            let all = wait_replicas(cluster, &id, &placement, Duration::from_secs(120)).await?;
            let (ack_t, all_t) = (acked - start, all.max(acked) - start);
            let how = if over_http { "HTTP" } else { "Ice" };
            note(format!(
                "upload over {how}, run {}: {size} bytes to node {} of placement {placement:?}: acknowledged in {:.3} s ({:.1} MB/s), {R} replicas verified at {:.3} s ({:.1} MB/s)",
                run + 1,
                target.raft().id(),
                ack_t.as_secs_f64(),
                mbps(size, ack_t),
                all_t.as_secs_f64(),
                mbps(size, all_t)
            ));
            if over_http {
                http_ack.push(mbps(size, ack_t));
                http_all.push(mbps(size, all_t));
                if stream_song.is_none() {
                    stream_song = Some((id.clone(), path.clone(), placement.clone()));
                }
            } else {
                ice_ack.push(mbps(size, ack_t));
                ice_all.push(mbps(size, all_t));
            }
        }
    }

    // ----- streaming -----
    let (id, path, placement) = stream_song.ok_or("no song uploaded")?;
    let local = node_by_id(cluster, placement[0]).clone();
    let remote = cluster
        .nodes()
        .iter()
        .find(|(n, _)| !placement.contains(&n.raft().id()))
        .cloned()
        .ok_or("every node is in the placement")?;
    if !local.0.replicas().has(&id) || remote.0.replicas().has(&id) {
        return Err(format!(
            "replicas of {id} are on {:?}: expected node {} to hold one and node {} none",
            holders(cluster, &id),
            local.0.raft().id(),
            remote.0.raft().id()
        ));
    }
    std::fs::copy(&path, www.join("song.wav")).map_err(|e| e.to_string())?;
    // nginx's workers may run as another user.
    for p in [www.parent().unwrap_or(www), www] {
        let _ = std::process::Command::new("chmod")
            .arg("a+rx")
            .arg(p)
            .status();
    }
    let _ = std::process::Command::new("chmod")
        .arg("a+r")
        .arg(www.join("song.wav"))
        .status();
    let nginx = start_nginx(&args.nginx, &www.parent().unwrap_or(www).join("nginx"), www)?;
    let nginx_v = nginx_version(&args.nginx);
    note(format!(
        "nginx {nginx_v} on {}; Dispotify local: node {} ({}), remote: node {} ({})",
        nginx.addr,
        local.0.raft().id(),
        local.1,
        remote.0.raft().id(),
        remote.1
    ));
    let stream_path = format!("/music/stream/{id}");
    let sources: [(&str, String, String); 3] = [
        ("local", local.1.clone(), stream_path.clone()),
        ("remote", remote.1.clone(), stream_path.clone()),
        ("nginx", nginx.addr.clone(), "/song.wav".to_string()),
    ];
    for (name, addr, p) in &sources {
        let (a, p) = (addr.clone(), p.clone());
        let d = on_client(move || download(a, p, true)).await?;
        if d.bytes != size || d.sha256.as_deref() != Some(id.as_str()) {
            return Err(format!(
                "{name}: {} bytes with SHA-256 {:?}, expected {size} bytes of {id}",
                d.bytes, d.sha256
            ));
        }
    }
    let mut streams: [Vec<f64>; 3] = Default::default();
    for round in 0..args.runs {
        for k in 0..3 {
            let i = (round + k) % 3;
            let (name, addr, p) = &sources[i];
            let (a, p2) = (addr.clone(), p.clone());
            let d = on_client(move || download(a, p2, false)).await?;
            if d.bytes != size {
                return Err(format!("{name}: {} bytes, expected {size}", d.bytes));
            }
            note(format!(
                "stream {name}, round {}: {} bytes in {:.3} s: {:.1} MB/s",
                round + 1,
                d.bytes,
                d.time.as_secs_f64(),
                mbps(d.bytes, d.time)
            ));
            streams[i].push(mbps(d.bytes, d.time));
        }
    }
    drop(nginx);

    // ----- where the time goes -----
    note("where the time goes");
    let limits = limits(
        cluster,
        &id,
        &path,
        size,
        &local,
        &remote,
        files,
        args.size_mb,
    )
    .await?;

    // ----- search -----
    note(format!(
        "search: {} synthetic songs in a SearchIndex",
        args.songs
    ));
    let library = Library::new(args.songs.max(args.catalog_songs), 7);
    let queries = library.queries(args.queries, 11);
    let t = Instant::now();
    let mut index = SearchIndex::new();
    for (id, title, artist, album) in &library.songs[..args.songs] {
        index.insert(id, title, artist, album);
    }
    let build = t.elapsed();
    let mut lat = Vec::with_capacity(queries.len());
    let mut matched = 0usize;
    let mut totals = Vec::new();
    for q in &queries {
        let t = Instant::now();
        let (page, total) = index.search(q, 0, 20);
        lat.push(t.elapsed());
        std::hint::black_box(&page);
        matched += usize::from(total > 0);
        totals.push(total);
    }
    lat.sort();
    totals.sort();
    let index_p50 = percentile(&lat, 50.0);
    let index_p99 = percentile(&lat, 99.0);
    let index_max = *lat.last().unwrap_or(&Duration::ZERO);
    note(format!(
        "index of {} songs built in {:.2} s; {} queries: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; {} matched something; matches per query p50 {}, p99 {}",
        index.len(),
        build.as_secs_f64(),
        queries.len(),
        us(index_p50),
        us(index_p99),
        us(index_max),
        matched,
        totals[totals.len() / 2],
        totals[(totals.len() * 99 / 100).min(totals.len() - 1)]
    ));
    drop(index);

    let mut http_search: Option<(Duration, Duration, Duration, Duration, Duration, f64)> = None;
    if args.catalog_songs > 0 && args.http_queries > 0 {
        note(format!(
            "search on the cluster: {} songs entered in the catalog through the Raft log",
            args.catalog_songs
        ));
        let leader_id = cluster.nodes()[0]
            .0
            .raft()
            .leader()
            .map(|(l, _)| l)
            .ok_or("no leader")?;
        let leader = node_by_id(cluster, leader_id).0.clone();
        let songs = Arc::new(library.songs[..args.catalog_songs].to_vec());
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (leader, songs, next) = (leader.clone(), songs.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((id, title, artist, album)) = songs.get(i) else {
                        return Ok::<(), String>(());
                    };
                    let song = bench_song(i, id, title, artist, album);
                    let bytes = serde_json::to_vec(&dispotify::catalog::Command::AddSong(song))
                        .map_err(|e| e.to_string())?;
                    leader
                        .raft()
                        .write(bytes)
                        .await
                        .map_err(|e| format!("AddSong: {e}"))?;
                }
            }));
        }
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        let load = t.elapsed();
        // Queries go to a follower (searches read the node's own copy of the catalog).
        let (qnode, qhttp) = cluster
            .nodes()
            .iter()
            .find(|(n, _)| n.raft().id() != leader_id)
            .cloned()
            .ok_or("no follower")?;
        let expected = args.catalog_songs + 2 * args.runs;
        let deadline = Instant::now() + Duration::from_secs(120);
        while qnode.raft().read_now(|c: &Catalog| c.songs.len()) < expected {
            if Instant::now() > deadline {
                return Err("the follower did not catch up".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let caught_up = t.elapsed();
        note(format!(
            "{} AddSong writes in {:.1} s ({:.0}/s); node {} had them all at {:.1} s",
            args.catalog_songs,
            load.as_secs_f64(),
            args.catalog_songs as f64 / load.as_secs_f64(),
            qnode.raft().id(),
            caught_up.as_secs_f64()
        ));
        let hq: Vec<String> = library.queries(args.http_queries, 13);
        // In the process, without HTTP.
        let mut direct = Vec::new();
        for q in &hq {
            let t = Instant::now();
            let r = qnode.search(q, 0, 20).await.map_err(|e| e.to_string())?;
            direct.push(t.elapsed());
            std::hint::black_box(r);
        }
        direct.sort();
        let paths: Vec<String> = hq
            .iter()
            .map(|q| format!("/music/search?q={}&limit=20", url_encode(q)))
            .collect();
        let mut over_http = on_client(move || async move {
            let mut conn = Conn::open(&qhttp).await?;
            let mut lat = Vec::new();
            for p in &paths {
                let t = Instant::now();
                let (status, _, body) = conn.call(Method::GET, p, &[], empty()).await?;
                lat.push(t.elapsed());
                if status != StatusCode::OK {
                    return Err(format!(
                        "GET {p}: {status} {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
            Ok::<_, String>(lat)
        })
        .await?;
        over_http.sort();
        note(format!(
            "{} queries: Node::search p50 {:.1} µs p99 {:.1} µs; GET /music/search p50 {:.1} µs p99 {:.1} µs",
            hq.len(),
            us(percentile(&direct, 50.0)),
            us(percentile(&direct, 99.0)),
            us(percentile(&over_http, 50.0)),
            us(percentile(&over_http, 99.0))
        ));
        http_search = Some((
            percentile(&direct, 50.0),
            percentile(&direct, 99.0),
            percentile(&over_http, 50.0),
            percentile(&over_http, 99.0),
            load,
            args.catalog_songs as f64 / load.as_secs_f64(),
        ));
    }

    // The catalog's snapshot (floe-raft takes one every 5,000 entries by default) and its
    // restore (which rebuilds the search index), at this size.
    let mut snap: Option<(usize, Duration, usize, Duration)> = None;
    if args.catalog_songs > 0 {
        let mut catalog = Catalog::default();
        for (i, (id, title, artist, album)) in
            library.songs[..args.catalog_songs].iter().enumerate()
        {
            catalog
                .songs
                .insert(id.clone(), bench_song(i, id, title, artist, album));
        }
        let t = Instant::now();
        let image = floe_raft::StateMachine::snapshot(&catalog);
        let ts = t.elapsed();
        let mut restored = Catalog::default();
        let t = Instant::now();
        floe_raft::StateMachine::restore(&mut restored, &image)?;
        let tr = t.elapsed();
        note(format!(
            "catalog of {} songs: snapshot {} bytes in {:.0} ms, restore in {:.0} ms",
            args.catalog_songs,
            image.len(),
            ts.as_secs_f64() * 1e3,
            tr.as_secs_f64() * 1e3
        ));
        snap = Some((args.catalog_songs, ts, image.len(), tr));
    }

    // ----- tables -----
    let fl = best(&floor);
    let ng = best(&streams[2]);
    let ratio = |x: f64, y: f64| {
        if y > 0.0 {
            format!("{:.2}", x / y)
        } else {
            "-".into()
        }
    };
    println!();
    println!(
        "Dispotify ({NODES} nodes in one process, R={R}; {} distinct {size_label} WAVs of {size} bytes, each uploaded once, the first one streamed; MB = 10^6 bytes; best of {} runs, every run in brackets) against the floor of writing the file {R} times with fsync, and nginx {nginx_v}",
        2 * args.runs,
        args.runs
    );
    println!();
    let rows = vec![
        row(
            &format!("upload over HTTP, acknowledged (2 of {R} replicas), MB/s"),
            format!("{:.1} [{}]", best(&http_ack), list(&http_ack)),
            format!("floor {fl:.1} [{}]", list(&floor)),
            ratio(best(&http_ack), fl),
            "≥ 0.50",
        ),
        row(
            &format!("upload over HTTP, all {R} replicas verified, MB/s"),
            format!("{:.1} [{}]", best(&http_all), list(&http_all)),
            format!("floor {fl:.1}"),
            ratio(best(&http_all), fl),
            "≥ 0.50",
        ),
        row(
            "upload over Ice (`upload_file`), acknowledged, MB/s",
            format!("{:.1} [{}]", best(&ice_ack), list(&ice_ack)),
            format!("floor {fl:.1}"),
            ratio(best(&ice_ack), fl),
            "≥ 0.50",
        ),
        row(
            &format!("upload over Ice, all {R} replicas verified, MB/s"),
            format!("{:.1} [{}]", best(&ice_all), list(&ice_all)),
            format!("floor {fl:.1}"),
            ratio(best(&ice_all), fl),
            "≥ 0.50",
        ),
        row(
            "stream over HTTP from a node holding a replica, MB/s",
            format!("{:.0} [{}]", best(&streams[0]), list(&streams[0])),
            format!("nginx {ng:.0} [{}]", list(&streams[2])),
            format!(
                "{} (medians: {})",
                ratio(best(&streams[0]), ng),
                ratio(median(&streams[0]), median(&streams[2]))
            ),
            "≥ 1.00",
        ),
        row(
            "stream over HTTP from a node holding none, MB/s",
            format!("{:.0} [{}]", best(&streams[1]), list(&streams[1])),
            format!("nginx {ng:.0}"),
            format!(
                "{} (medians: {})",
                ratio(best(&streams[1]), ng),
                ratio(median(&streams[1]), median(&streams[2]))
            ),
            "≥ 0.50",
        ),
        row(
            &format!("search p50, SearchIndex of {} songs, µs", args.songs),
            format!("{:.1}", us(index_p50)),
            "-".into(),
            "-".into(),
            "< 1000",
        ),
        row(
            &format!("search p99, SearchIndex of {} songs, µs", args.songs),
            format!("{:.1}", us(index_p99)),
            "-".into(),
            "-".into(),
            "< 1000",
        ),
    ];
    let mut rows = rows;
    if let Some((dp50, dp99, hp50, hp99, _, _)) = http_search {
        rows.push(row(
            &format!(
                "search p50, `Node::search`, catalog of {} songs, µs",
                args.catalog_songs + 2 * args.runs
            ),
            format!("{:.1}", us(dp50)),
            "-".into(),
            "-".into(),
            "-",
        ));
        rows.push(row(
            &format!(
                "search p99, `Node::search`, catalog of {} songs, µs",
                args.catalog_songs + 2 * args.runs
            ),
            format!("{:.1}", us(dp99)),
            "-".into(),
            "-".into(),
            "-",
        ));
        rows.push(row(
            &format!(
                "search p50, `GET /music/search`, catalog of {} songs, µs",
                args.catalog_songs + 2 * args.runs
            ),
            format!("{:.1}", us(hp50)),
            "-".into(),
            "-".into(),
            "-",
        ));
        rows.push(row(
            &format!(
                "search p99, `GET /music/search`, catalog of {} songs, µs",
                args.catalog_songs + 2 * args.runs
            ),
            format!("{:.1}", us(hp99)),
            "-".into(),
            "-".into(),
            "-",
        ));
    }
    print_table(["measure", "Dispotify", "reference", "ratio", "aim"], &rows);
    println!();
    println!("Where the time goes (in the same process, the same file, after the runs above):");
    println!();
    println!("| step | time | rate |");
    println!("| --- | --- | --- |");
    for (what, t, rate) in &limits {
        println!("| {what} | {t} | {rate} |");
    }
    if let Some((_, _, _, _, load, rate)) = http_search {
        println!(
            "| {} `AddSong` writes to the catalog (64 in flight) | {:.1} s | {rate:.0} writes/s |",
            args.catalog_songs,
            load.as_secs_f64()
        );
    }
    if let Some((n, ts, bytes, tr)) = snap {
        println!(
            "| catalog snapshot of {n} songs (JSON, as floe-raft takes one every 5,000 entries) | {:.0} ms | {:.1} MB |",
            ts.as_secs_f64() * 1e3,
            bytes as f64 / MB
        );
        println!(
            "| catalog restore from that snapshot (JSON, and the search index rebuilt) | {:.0} ms | - |",
            tr.as_secs_f64() * 1e3
        );
    }
    println!(
        "| search: {} queries of 1–3 words; matches per query p50 / p99 / max | - | {} / {} / {} |",
        queries.len(),
        totals[totals.len() / 2],
        totals[(totals.len() * 99 / 100).min(totals.len() - 1)],
        totals.last().copied().unwrap_or(0)
    );
    Ok(())
}

/// Timed pieces of an upload and of reads, one at a time, in this process.
#[allow(clippy::too_many_arguments)]
async fn limits(
    cluster: &Cluster,
    id: &str,
    path: &Path,
    size: u64,
    local: &(Node, String),
    remote: &(Node, String),
    files: &Path,
    size_mb: f64,
) -> Result<Vec<(String, String, String)>, String> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let chunks = size.div_ceil(CHUNK as u64);
    let per = |t: Duration| {
        format!(
            "{:.3} ms per MB",
            t.as_secs_f64() * 1e3 / (size as f64 / MB)
        )
    };
    let ms = |t: Duration| format!("{:.0} ms", t.as_secs_f64() * 1e3);

    // SHA-256 of the bytes in memory, in 256 KiB chunks.
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let t = Instant::now();
    for c in data.chunks(CHUNK) {
        std::hint::black_box(Sha256::digest(c));
    }
    let sha = t.elapsed();
    out.push((
        format!("SHA-256 of the {size} bytes in memory, 256 KiB at a time"),
        ms(sha),
        format!("{} ({:.0} MB/s)", per(sha), mbps(size, sha)),
    ));

    // The local replica, read as the gateway reads it: `Replicas::read` per chunk (blocking),
    // then `Node::read` (async, through spawn_blocking).
    let r = local.0.replicas().clone();
    let (idc, n) = (id.to_string(), size);
    let t = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut off = 0u64;
        while off < n {
            let b = r.read(&idc, off, CHUNK).map_err(|e| e.to_string())?;
            off += b.len() as u64;
        }
        Ok::<_, String>(t.elapsed())
    })
    .await
    .map_err(|e| e.to_string())??;
    out.push((format!("`Replicas::read` of the local replica, {chunks} chunks of 256 KiB (open, read the sums, read, check, copy)"), ms(t), format!("{:.0} µs per chunk ({:.0} MB/s)", us(t) / chunks as f64, mbps(size, t))));
    let node_read = |node: Node, len: usize| {
        let id = id.to_string();
        async move {
            let t = Instant::now();
            let mut off = 0u64;
            let mut calls = 0u64;
            while off < size {
                let want = len.min((CHUNK as u64 - off % CHUNK as u64) as usize).max(1);
                let b = node.read(&id, off, want).await.map_err(|e| e.to_string())?;
                if b.is_empty() {
                    return Err("empty read".to_string());
                }
                off += b.len() as u64;
                calls += 1;
            }
            Ok::<_, String>((t.elapsed(), calls))
        }
    };
    let (t, calls) = node_read(local.0.clone(), CHUNK).await?;
    out.push((
        format!(
            "`Node::read` on a holder, chunk by chunk as `GET /music/stream` reads ({calls} calls)"
        ),
        ms(t),
        format!(
            "{:.0} µs per chunk ({:.0} MB/s)",
            us(t) / calls as f64,
            mbps(size, t)
        ),
    ));
    let (t, calls) = node_read(remote.0.clone(), CHUNK).await?;
    out.push((format!("`Node::read` on the node holding none: one `Storage.readReplica` round trip per chunk ({calls} calls)"), ms(t), format!("{:.0} µs per chunk ({:.0} MB/s)", us(t) / calls as f64, mbps(size, t))));

    // What `read_remote` computes per chunk before its call: the ring of the live nodes.
    let live: Vec<u64> = cluster.nodes().iter().map(|(n, _)| n.raft().id()).collect();
    let t = Instant::now();
    for _ in 0..chunks {
        let ring = dispotify::ring::Ring::new(&live, remote.0.config().vnodes);
        std::hint::black_box(ring.place(id, R));
    }
    let tr = t.elapsed();
    out.push((format!("`Ring::new` + `place` ({} nodes × {} points), as `read_remote` does per chunk ({chunks} times)", live.len(), remote.0.config().vnodes), ms(tr), format!("{:.0} µs per chunk", us(tr) / chunks as f64)));

    // readReplica straight from a client communicator: one at a time, and several in flight.
    let endpoints = local.0.raft().address().endpoints.clone();
    let (idc, ep) = (id.to_string(), endpoints.clone());
    let rr = on_client(move || async move {
        let communicator =
            floe::Communicator::with_properties(Properties::new()).map_err(|e| e.to_string())?;
        let result = async {
            let prx = communicator
                .string_to_proxy(&format!("storage:{ep}"))
                .map_err(|e| e.to_string())?
                .ok_or("null")?;
            let storage = api::StoragePrx::unchecked_cast(prx.ice_invocation_timeout(30_000));
            let mut res = Vec::new();
            for inflight in [1usize, 4] {
                let t = Instant::now();
                let mut offsets: Vec<u64> = (0..size).step_by(CHUNK).collect();
                offsets.reverse();
                let mut running = futures_util::stream::FuturesUnordered::new();
                use futures_util::StreamExt;
                loop {
                    while running.len() < inflight
                        && let Some(off) = offsets.pop()
                    {
                        let (s, id) = (storage.clone(), idc.clone());
                        running.push(async move {
                            s.read_replica(&id, off as i64, CHUNK as i32)
                                .await
                                .map(|b| b.len())
                        });
                    }
                    match running.next().await {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(format!("readReplica: {e:?}")),
                        None => break,
                    }
                }
                res.push((inflight, t.elapsed()));
            }
            // The largest read the interface allows (4 chunks): does its answer fit in
            // Ice.MessageSizeMax (1024 KiB by default)?
            let big = storage
                .read_replica(&idc, 0, (4 * CHUNK) as i32)
                .await
                .map(|b| b.len())
                .map_err(|e| format!("{e:?}"));
            Ok::<_, String>((res, big))
        }
        .await;
        communicator.destroy().await;
        result
    })
    .await?;
    for (inflight, t) in &rr.0 {
        out.push((
            format!("`Storage.readReplica` of 256 KiB from a holder over Ice, {inflight} in flight ({chunks} calls)"),
            ms(*t),
            format!("{:.0} µs per chunk ({:.0} MB/s)", us(*t) / chunks as f64, mbps(size, *t)),
        ));
    }
    out.push((
        "`Storage.readReplica` of 4 × 256 KiB (the most the interface allows)".into(),
        "-".into(),
        match &rr.1 {
            Ok(n) => format!("{n} bytes"),
            Err(e) => format!(
                "fails: {}",
                e.chars().take(160).collect::<String>().replace('|', "/")
            ),
        },
    ));

    // The steps of an upload, one by one, on a new file (not in the catalog).
    let scratch = files.join("steps");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let p = scratch.join("steps.wav");
    make_wav(&p, size_mb, 1000)?;
    let sid = hash_file(&p).map_err(|e| e.to_string())?;
    let t = Instant::now();
    hash_file(&p).map_err(|e| e.to_string())?;
    let th = t.elapsed();
    out.push((
        "upload step: `hash_file` (the whole file's SHA-256, read from the page cache)".into(),
        ms(th),
        per(th),
    ));
    let t = Instant::now();
    dispotify::tags::read_tags(&p)?;
    let tt = t.elapsed();
    out.push(("upload step: `read_tags` (lofty)".into(), ms(tt), per(tt)));
    let store = Replicas::open(&scratch.join("store"), 1 << 30).map_err(|e| e.to_string())?;
    let staged = scratch.join("store").join("staging").join(&sid);
    let t = Instant::now();
    std::fs::copy(&p, &staged).map_err(|e| e.to_string())?;
    let tc = t.elapsed();
    out.push((
        "upload step: `std::fs::copy` of the upload to staging (no fsync)".into(),
        ms(tc),
        per(tc),
    ));
    let t = Instant::now();
    store.adopt(&sid, &staged).map_err(|e| e.to_string())?;
    let ta = t.elapsed();
    out.push(("upload step: `Replicas::adopt` (whole-file SHA-256, chunk sums, fsync of file, sums and directory)".into(), ms(ta), per(ta)));
    // Pushing a replica to another node over Ice as `push_replica` does, then dropping it.
    let target = cluster
        .nodes()
        .iter()
        .find(|(n, _)| n.raft().id() != local.0.raft().id())
        .map(|(n, _)| n.raft().address().endpoints.clone())
        .ok_or("no other node")?;
    let src = store.path(&sid);
    let (sidc, n) = (sid.clone(), size);
    let push = on_client(move || async move {
        let communicator =
            floe::Communicator::with_properties(Properties::new()).map_err(|e| e.to_string())?;
        let result = async {
            let prx = communicator
                .string_to_proxy(&format!("storage:{target}"))
                .map_err(|e| e.to_string())?
                .ok_or("null")?;
            let storage = api::StoragePrx::unchecked_cast(prx.ice_invocation_timeout(60_000));
            let t = Instant::now();
            storage
                .begin_replica(&sidc, n as i64)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let mut f = std::fs::File::open(&src).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; CHUNK];
            let mut off = 0u64;
            while off < n {
                let k = f.read(&mut buf).map_err(|e| e.to_string())?;
                let d = buf[..k].to_vec();
                let sum = hex(&Sha256::digest(&d));
                storage
                    .put_replica_chunk(&sidc, off as i64, &d, &sum)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                off += k as u64;
            }
            let chunks_t = t.elapsed();
            let t = Instant::now();
            storage
                .commit_replica(&sidc)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let commit_t = t.elapsed();
            storage
                .drop_replica(&sidc)
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok::<_, String>((chunks_t, commit_t))
        }
        .await;
        communicator.destroy().await;
        result
    })
    .await?;
    out.push((format!("upload step: `push_replica` to another node, {chunks} `putReplicaChunk` calls of 256 KiB, one at a time"), ms(push.0), format!("{} ({:.0} µs per chunk)", per(push.0), us(push.0) / chunks as f64)));
    out.push((
        "upload step: `commitReplica` on that node (whole-file SHA-256, chunk sums, fsync)".into(),
        ms(push.1),
        per(push.1),
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(out)
}
