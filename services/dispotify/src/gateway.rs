//! The HTTP gateway of a node and its web player.
//!
//! Browsers are the one kind of client that does not speak Ice: the gateway serves them HTTP
//! (axum) and translates every request to the same [`Node`] calls the Ice servants make.
//!
//! | route | what it does |
//! | --- | --- |
//! | `GET /` | the web player (one page, no external resources) |
//! | `POST /music/login` | JSON `{"user","password"}` or a form: logs in to the users manager, sets the cookie `dispotify_session` (the session proxy, percent-encoded; `HttpOnly`, `SameSite=Strict`) and answers `{"user"}`; a wrong password is 401 |
//! | `POST /music/logout` | clears the cookie |
//! | `GET /music/me` | `{"user","session"}` of the cookie's session (refreshing it at the users manager), 401 without a valid one (unless `Dispotify.OpenUploads=1`) |
//! | `POST /music/upload` | `multipart/form-data`: optional fields `title`, `artist`, `album`, `track` (before the file), then `file`; streamed to disk, never held whole; 201 and the song |
//! | `GET /music/search?q=&offset=&limit=` | `{"songs":[...],"total":n}` (`limit` 20 by default, at most 100) |
//! | `GET /music/songs/{id}` | the song |
//! | `GET /music/stream/{id}` | the audio: `Accept-Ranges: bytes`, `ETag: "<id>"` (`If-None-Match` gives 304, `If-Range` is honoured), one `Range` gives 206 and `Content-Range`; several ranges are answered with the whole file (200); a range past the end is 416 with `Content-Range: bytes */size`; the body is read chunk by chunk from this node's replica or another node's |
//! | `GET /music/status` | the cluster as this node sees it (nodes, leader, replicas of every file) |
//!
//! Errors are JSON `{"error": "..."}` with the status of their kind: 400 for a malformed
//! request or a file that is not audio (or whose checksum does not match), 401 without a valid
//! session, 404 for an unknown song, 413 for a body or file larger than
//! `Dispotify.MaxUploadSize` (a `Content-Length` past it is refused before the body is read),
//! 416 for an unsatisfiable range, 503 when the cluster cannot answer now.
//!
//! With `Dispotify.PrivateReads=1` searching, reading songs, listening and the status need a
//! session too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, extract::multipart::MultipartError};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::node::{Node, NodeError};
use crate::slice::dispotify as api;
use crate::storage::{CHUNK, valid_id};

/// The cookie that holds a browser's session (a users manager Session proxy, percent-encoded).
pub const SESSION_COOKIE: &str = "dispotify_session";

/// The web player.
const PLAYER: &str = include_str!("player.html");

/// The player's Content-Security-Policy: nothing but this origin and the page's own inline
/// script and style.
const PLAYER_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; media-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The largest body of any request but an upload (a login form).
const SMALL_BODY: usize = 16 * 1024;

/// What a multipart upload may hold besides the file (boundaries, headers, the text fields).
const MULTIPART_SLACK: u64 = 64 * 1024;

/// The largest text field of an upload (title, artist, album, track).
const FIELD_MAX: usize = 4 * 1024;

/// How much of a refused upload's body is read (and dropped) so that the client sees the answer
/// instead of a reset connection; past this the connection is closed.
const DRAIN_LIMIT: u64 = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Songs per search page by default, and at most.
const SEARCH_LIMIT: usize = 20;
const SEARCH_MAX: usize = 100;

/// Binds the gateway's listener (`Dispotify.Http`, e.g. `127.0.0.1:8080`; port 0 picks one).
pub async fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves HTTP on `listener` for `node` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, node: Node) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        info!(target: "dispotify::http", node = node.raft().id(), %addr, "serving HTTP and the web player");
    }
    axum::serve(listener, router(node)).await
}

/// The gateway's routes for `node` (what [`serve`] serves).
pub fn router(node: Node) -> Router {
    let limit = node.config().max_upload.saturating_add(MULTIPART_SLACK);
    Router::new()
        .route("/", get(player))
        .route("/music/login", post(login))
        .route("/music/logout", post(logout))
        .route("/music/me", get(me))
        .route(
            "/music/upload",
            post(upload).layer(DefaultBodyLimit::max(
                usize::try_from(limit).unwrap_or(usize::MAX),
            )),
        )
        .route("/music/search", get(search))
        .route("/music/songs/{id}", get(song))
        .route("/music/stream/{id}", get(stream))
        .route("/music/status", get(status))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .layer(middleware::from_fn_with_state(limit, guard))
        .with_state(node)
}

// ----- errors -----

/// An error answer: its status and `{"error": message}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        let status = match &e {
            NodeError::NotFound(_) => StatusCode::NOT_FOUND,
            NodeError::InvalidArgument(m) if m.contains("MaxUploadSize") => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            NodeError::InvalidArgument(_) | NodeError::ChecksumMismatch(_) => {
                StatusCode::BAD_REQUEST
            }
            NodeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            NodeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> ApiError {
        let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError(status, format!("multipart body: {}", e.body_text()))
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
}

/// Every request: refuses a declared body larger than any request may be (before reading it),
/// and marks every answer `nosniff`.
async fn guard(State(limit): State<u64>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut response = match declared {
        Some(n) if n > limit => {
            debug!(target: "dispotify::http", length = n, limit, "body refused: too large");
            let mut r = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("a body of {n} bytes passes Dispotify.MaxUploadSize (at most {limit} bytes with the form's fields)")).into_response();
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        _ => next.run(request).await,
    };
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

// ----- sessions -----

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The session proxy of the request's cookie, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| name.trim() == SESSION_COOKIE)
        .and_then(|(_, value)| percent_decode(value.trim().trim_matches('"')))
        .filter(|s| !s.trim().is_empty())
}

fn session_cookie_header(session: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        percent_encode(session)
    ))
    .unwrap_or_else(|_| clear_cookie_header())
}

fn clear_cookie_header() -> HeaderValue {
    HeaderValue::from_static("dispotify_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The user of the request's session (`node.authorize`, which also decides whether a request
/// without a session may upload).
async fn user_of(node: &Node, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(node
        .authorize(&session_cookie(headers).unwrap_or_default())
        .await?)
}

/// With `Dispotify.PrivateReads=1`, reading needs a valid session.
async fn check_reader(node: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    if !node.config().private_reads {
        return Ok(());
    }
    match session_cookie(headers) {
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "log in first")),
        Some(s) => node.authorize(&s).await.map(|_| ()).map_err(ApiError::from),
    }
}

/// Extends a verified session's life at the users manager (a browser's session lives while its
/// page is open).
async fn refresh_session(node: &Node, session: &str) {
    use usersmanager::slice::users_manager::SessionPrx;
    let Ok(Some(prx)) = node.raft().communicator().string_to_proxy(session) else {
        return;
    };
    if let Err(e) = SessionPrx::unchecked_cast(prx.ice_invocation_timeout(5_000))
        .refresh()
        .await
    {
        debug!(target: "dispotify::http", error = ?e, "session not refreshed");
    }
}

#[derive(Debug, Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

async fn login(State(node): State<Node>, request: Request) -> Result<Response, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let creds = if content_type.starts_with("application/json") {
        Json::<Credentials>::from_request(request, &())
            .await
            .map_err(|e| ApiError(e.status(), e.body_text()))?
            .0
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Form::<Credentials>::from_request(request, &())
            .await
            .map_err(|e| ApiError(e.status(), e.body_text()))?
            .0
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send {\"user\", \"password\"} as JSON or as a form",
        ));
    };
    let user = creds.user.trim();
    if user.is_empty() {
        return Err(ApiError::bad("a user name is needed"));
    }
    let session = match node.login(user, &creds.password).await {
        Ok(s) => s,
        Err(NodeError::Unauthorized(why)) => {
            debug!(target: "dispotify::http", user = %user.escape_debug(), why = %why.escape_debug(), "login refused");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong user name or password",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let mut response = Json(json!({ "user": user })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header(&session));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn logout() -> Response {
    let mut response = Json(json!({ "user": null })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie_header());
    response
}

async fn me(State(node): State<Node>, headers: HeaderMap) -> Result<Response, ApiError> {
    let session = session_cookie(&headers);
    if session.is_none() && !node.config().open_uploads {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "not logged in"));
    }
    match node.authorize(session.as_deref().unwrap_or("")).await {
        Ok(user) => {
            if let Some(s) = &session {
                refresh_session(&node, s).await;
            }
            let mut response =
                Json(json!({ "user": user, "session": session.is_some() })).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(e) => {
            let mut response = ApiError::from(e).into_response();
            if response.status() == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, clear_cookie_header());
            }
            Ok(response)
        }
    }
}

// ----- uploads -----

/// Reads (and drops) what is left of a refused request's body, within bounds.
async fn drain_body(body: Body) {
    let mut data = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0u64;
        while let Some(Ok(chunk)) = data.next().await {
            n += chunk.len() as u64;
            if n > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

async fn drain_multipart(multipart: &mut Multipart) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0u64;
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                n += chunk.len() as u64;
                if n > DRAIN_LIMIT {
                    return;
                }
            }
        }
    })
    .await;
}

async fn small_field(
    field: &mut axum::extract::multipart::Field<'_>,
    name: &str,
) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if buf.len() + chunk.len() > FIELD_MAX {
            return Err(ApiError::bad(format!(
                "the field `{name}` is longer than {FIELD_MAX} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::bad(format!("the field `{name}` is not UTF-8")))
}

async fn upload(State(node): State<Node>, request: Request) -> Result<Response, ApiError> {
    let user = match user_of(&node, request.headers()).await {
        Ok(u) => u,
        Err(e) => {
            drain_body(request.into_body()).await;
            return Err(e);
        }
    };
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad(e.body_text()))?;
    let result = receive(&node, &user, &mut multipart).await;
    match result {
        Ok(song) => {
            info!(target: "dispotify::http", id = %song.id, user = %user.escape_debug(), "uploaded");
            let mut response = (StatusCode::CREATED, Json(&song)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/music/songs/{}", song.id)) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            Ok(response)
        }
        Err(e) => {
            debug!(target: "dispotify::http", status = %e.0, error = %e.1.escape_debug(), "upload refused");
            drain_multipart(&mut multipart).await;
            Err(e)
        }
    }
}

/// Reads the upload's fields: the overrides, then the file, streamed to the node.
async fn receive(
    node: &Node,
    user: &str,
    multipart: &mut Multipart,
) -> Result<crate::catalog::SongRecord, ApiError> {
    let mut overrides = api::Overrides::default();
    loop {
        let Some(mut field) = multipart.next_field().await? else {
            return Err(ApiError::bad(
                "no `file` field: send the audio as the multipart/form-data field `file`",
            ));
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "file" => {
                let file_name = field
                    .file_name()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .unwrap_or("upload")
                    .to_string();
                let too_large = Arc::new(AtomicBool::new(false));
                let flag = too_large.clone();
                let data = field.map(move |chunk| {
                    chunk.map_err(|e| {
                        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                            flag.store(true, Ordering::Relaxed);
                        }
                        e.body_text()
                    })
                });
                let result = node
                    .upload_stream(user, &file_name, Box::pin(data), overrides)
                    .await;
                return match result {
                    Err(_) if too_large.load(Ordering::Relaxed) => Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the file passes Dispotify.MaxUploadSize ({} bytes)",
                            node.config().max_upload
                        ),
                    )),
                    other => other.map_err(ApiError::from),
                };
            }
            "title" => overrides.title = small_field(&mut field, &name).await?.trim().to_string(),
            "artist" => overrides.artist = small_field(&mut field, &name).await?.trim().to_string(),
            "album" => overrides.album = small_field(&mut field, &name).await?.trim().to_string(),
            "track" => {
                let t = small_field(&mut field, &name).await?;
                let t = t.trim();
                overrides.track = if t.is_empty() {
                    0
                } else {
                    t.parse::<i32>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                        ApiError::bad(format!(
                            "track `{}`: expected a whole number",
                            t.escape_debug()
                        ))
                    })?
                };
            }
            // Other fields are skipped (the next `next_field` reads past them).
            _ => {}
        }
    }
}

// ----- reading -----

fn song_json(s: &api::Song) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "title": s.title,
        "artist": s.artist,
        "album": s.album,
        "track": s.track,
        "duration_ms": s.duration_ms,
        "size": s.size,
        "mime": s.mime,
        "uploaded": s.uploaded,
        "uploader": s.uploader,
    })
}

fn song_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad(e.body_text()))?;
    if !valid_id(&id) {
        return Err(ApiError::bad(
            "a song id is 64 lowercase hex digits (the SHA-256 of the file)",
        ));
    }
    Ok(id)
}

async fn search(
    State(node): State<Node>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    check_reader(&node, &headers).await?;
    let number = |key: &str, default: usize| -> Result<usize, ApiError> {
        match params.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError::bad(format!(
                    "{key}={}: expected a whole number",
                    v.escape_debug()
                ))
            }),
        }
    };
    let offset = number("offset", 0)?;
    let limit = number("limit", SEARCH_LIMIT)?.min(SEARCH_MAX);
    let q = params.get("q").map(String::as_str).unwrap_or("");
    let (songs, total) = node.search(q, offset, limit).await?;
    Ok(Json(
        json!({ "songs": songs.iter().map(song_json).collect::<Vec<_>>(), "total": total, "offset": offset, "limit": limit }),
    ))
}

async fn song(
    State(node): State<Node>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = song_id(path)?;
    check_reader(&node, &headers).await?;
    Ok(Json(node.song(&id).await?).into_response())
}

/// What a `Range` header asks for, for a representation of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// No range, or one the server ignores (not bytes, malformed, several ranges): the whole.
    Whole,
    /// Bytes `start..end` (end exclusive).
    Part(u64, u64),
    /// No byte of the range exists.
    Unsatisfiable,
}

fn parse_range(value: &str, size: u64) -> Ranged {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return Ranged::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranged::Whole;
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let [spec] = specs.as_slice() else {
        return Ranged::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Digits past u64 are as large as can be.
    let number = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
    match (first.is_empty(), last.is_empty()) {
        (true, false) if digits(last) => {
            let n = number(last);
            if n == 0 || size == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(size.saturating_sub(n), size)
            }
        }
        (false, true) if digits(first) => {
            let a = number(first);
            if a >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(a, size)
            }
        }
        (false, false) if digits(first) && digits(last) => {
            let (a, b) = (number(first), number(last));
            if b < a {
                Ranged::Whole
            } else if a >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(a, b.saturating_add(1).min(size))
            }
        }
        _ => Ranged::Whole,
    }
}

/// Whether an `If-None-Match` list names `etag` (weak comparison) or is `*`.
fn etag_listed(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// The length of the next read at `offset`: up to the end of its stored chunk.
fn next_read(offset: u64, end: u64) -> usize {
    let to_boundary = CHUNK as u64 - offset % CHUNK as u64;
    to_boundary.min(end - offset) as usize
}

async fn stream(
    State(node): State<Node>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = song_id(path)?;
    check_reader(&node, &headers).await?;
    let song = node.song(&id).await?;
    let size = u64::try_from(song.size).unwrap_or(0);
    let etag = format!("\"{id}\"");
    let common = |builder: axum::http::response::Builder| {
        builder
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::ETAG, &etag)
            .header(
                header::CACHE_CONTROL,
                if node.config().private_reads {
                    "private, max-age=31536000, immutable"
                } else {
                    "public, max-age=31536000, immutable"
                },
            )
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_listed(v, &etag))
    {
        return common(Response::builder().status(StatusCode::NOT_MODIFIED))
            .body(Body::empty())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
    }
    // `If-Range` with anything but this file's tag (a date, another tag) asks for the whole.
    let if_range = headers
        .get(header::IF_RANGE)
        .map(|v| v.to_str().map(|v| v.trim() == etag).unwrap_or(false))
        .unwrap_or(true);
    let ranged = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range => parse_range(r, size),
        _ => Ranged::Whole,
    };
    let (status, start, end) = match ranged {
        Ranged::Whole => (StatusCode::OK, 0, size),
        Ranged::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Ranged::Unsatisfiable => {
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range is past the end of the file ({size} bytes)"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r.headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(r);
        }
    };
    // The first chunk is read before answering, so that an unreachable replica is a 503, not a
    // broken body.
    let first = if start < end {
        node.read(&id, start, next_read(start, end)).await?
    } else {
        Vec::new()
    };
    if start < end && first.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the replica of {id} is shorter than the catalog says"),
        ));
    }
    debug!(target: "dispotify::http", id = %id, status = status.as_u16(), start, end, size, "streaming");
    let mime = HeaderValue::from_str(&song.mime)
        .ok()
        .filter(|_| !song.mime.is_empty())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut builder = common(Response::builder().status(status))
        .header(header::CONTENT_TYPE, mime)
        .header(header::CONTENT_LENGTH, end - start);
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end - 1),
        );
    }
    let body = Body::from_stream(chunks(node.clone(), id, start, end, first));
    builder
        .body(body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The bytes `start..end` of song `id` as a stream: `first` (already read from `start`), then
/// one stored chunk per read.
fn chunks(
    node: Node,
    id: String,
    start: u64,
    end: u64,
    first: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct Reading {
        node: Node,
        id: String,
        offset: u64,
        end: u64,
        first: Option<Vec<u8>>,
    }
    let mut first = first;
    first.truncate((end - start) as usize);
    let offset = start + first.len() as u64;
    let state = Reading {
        node,
        id,
        offset,
        end,
        first: Some(first).filter(|f| !f.is_empty()),
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if let Some(b) = st.first.take() {
            return Some((Ok(Bytes::from(b)), st));
        }
        if st.offset >= st.end {
            return None;
        }
        let failed = match st
            .node
            .read(&st.id, st.offset, next_read(st.offset, st.end))
            .await
        {
            Ok(mut b) if !b.is_empty() => {
                b.truncate((st.end - st.offset) as usize);
                st.offset += b.len() as u64;
                return Some((Ok(Bytes::from(b)), st));
            }
            Ok(_) => "the replica is shorter than the catalog says".to_string(),
            Err(e) => e.to_string(),
        };
        warn!(target: "dispotify::http", id = %st.id, offset = st.offset, error = %failed, "stream broken off");
        st.offset = st.end;
        Some((Err(std::io::Error::other(failed)), st))
    })
}

async fn status(State(node): State<Node>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    check_reader(&node, &headers).await?;
    let s = node.status().await;
    let nodes: Vec<Value> = s
        .nodes
        .iter()
        .map(|n| json!({ "id": n.id, "endpoints": n.endpoints, "http": n.http, "up": n.up, "leader": n.leader, "files": n.files }))
        .collect();
    let files: Vec<Value> = s
        .files
        .iter()
        .map(|f| json!({ "id": f.id, "placement": f.placement, "verified": f.verified }))
        .collect();
    Ok(Json(
        json!({ "leader": s.leader, "replication": s.replication, "nodes": nodes, "files": files }),
    ))
}

async fn player() -> Response {
    let mut response = axum::response::Html(PLAYER).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PLAYER_CSP),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ranged::Part(0, 10));
        assert_eq!(parse_range("bytes=90-", 100), Ranged::Part(90, 100));
        assert_eq!(parse_range("bytes=-10", 100), Ranged::Part(90, 100));
        assert_eq!(parse_range("bytes=-1000", 100), Ranged::Part(0, 100));
        assert_eq!(parse_range("bytes=50-1000", 100), Ranged::Part(50, 100));
        assert_eq!(parse_range("bytes=100-", 100), Ranged::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Ranged::Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 100),
            Ranged::Unsatisfiable
        );
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ranged::Whole);
        assert_eq!(parse_range("bytes=0-1, ", 100), Ranged::Part(0, 2));
        assert_eq!(parse_range("bytes=5-1", 100), Ranged::Whole);
        assert_eq!(parse_range("bytes=a-b", 100), Ranged::Whole);
        assert_eq!(parse_range("bytes=+1-2", 100), Ranged::Whole);
        assert_eq!(parse_range("items=0-1", 100), Ranged::Whole);
        assert_eq!(parse_range("bytes", 100), Ranged::Whole);
        assert_eq!(parse_range("bytes=-", 100), Ranged::Whole);
    }

    #[test]
    fn cookies() {
        let session = "4f2a/9c1e -t -e 1.1:tcp -h 127.0.0.1 -p 4061 -t 60000";
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!(
                "a=b; {SESSION_COOKIE}={}; c=d",
                percent_encode(session)
            ))
            .unwrap(),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some(session));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("dispotify_session=%zz"),
        );
        assert_eq!(session_cookie(&headers), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("dispotify_session=%4"),
        );
        assert_eq!(session_cookie(&headers), None);
        assert!(etag_listed("W/\"x\", \"y\"", "\"x\""));
        assert!(etag_listed("*", "\"x\""));
        assert!(!etag_listed("\"y\"", "\"x\""));
    }
}
