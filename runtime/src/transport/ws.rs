//! The WebSocket transport (`ws` endpoints) as Ice 3.7 uses it: an HTTP/1.1 upgrade with the
//! subprotocol `ice.zeroc.com`, then Ice messages in binary frames (masked from client to
//! server). A close frame ends the stream; ping frames are skipped (Ice never sends them).
//! Ice reads the payloads of successive frames as one stream, so long messages may span frames.
//! As RFC 6455 (5.5) requires, a control frame (close, ping, pong) whose payload is over 125
//! bytes, or that is fragmented, fails the connection with `InvalidData`, as does a frame with
//! a reserved bit set (no extension is negotiated) or a 64-bit length with its top bit set.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::endpoint::base64_encode;
use crate::error::{Error, Result};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const PROTOCOL: &str = "ice.zeroc.com";
const MAX_HEADERS: usize = 16 * 1024;
/// Largest payload written in one frame.
const MAX_FRAME: usize = 64 * 1024;
/// Largest payload of a control frame (RFC 6455, 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

fn ws_error(m: impl Into<String>) -> Error {
    Error::ConnectFailed(format!("websocket: {}", m.into()))
}

/// Reads an HTTP head (up to the blank line); returns it and the bytes read past it.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<(String, BytesMut)> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.advance(end + 4);
            return Ok((head, buf));
        }
        if buf.len() > MAX_HEADERS {
            return Err(ws_error("HTTP headers too long"));
        }
        if s.read_buf(&mut buf)
            .await
            .map_err(|e| ws_error(e.to_string()))?
            == 0
        {
            return Err(ws_error("connection closed during the upgrade"));
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn accept_key(key: &str) -> String {
    base64_encode(&sha1(format!("{key}{GUID}").as_bytes()))
}

/// Server side of the upgrade. Returns the bytes that followed the request, and the request's
/// HTTP headers (name and value, in order), which Ice shows as `WSConnectionInfo::headers`.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
) -> Result<(BytesMut, Vec<(String, String)>)> {
    let (head, rest) = read_head(s).await?;
    let request_line = head.lines().next().unwrap_or("");
    if !request_line.starts_with("GET ") || !request_line.ends_with("HTTP/1.1") {
        return Err(ws_error(format!("bad request line `{request_line}`")));
    }
    if !header(&head, "Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(ws_error("missing Upgrade: websocket"));
    }
    if header(&head, "Sec-WebSocket-Version") != Some("13") {
        return Err(ws_error("unsupported Sec-WebSocket-Version"));
    }
    let protocol_ok =
        header(&head, "Sec-WebSocket-Protocol").map(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
    if protocol_ok == Some(false) {
        return Err(ws_error("client does not speak ice.zeroc.com"));
    }
    let key =
        header(&head, "Sec-WebSocket-Key").ok_or_else(|| ws_error("missing Sec-WebSocket-Key"))?;
    let mut response = String::from(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    if protocol_ok.is_some() {
        response.push_str(&format!("Sec-WebSocket-Protocol: {PROTOCOL}\r\n"));
    }
    response.push_str(&format!(
        "Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    ));
    s.write_all(response.as_bytes())
        .await
        .map_err(|e| ws_error(e.to_string()))?;
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok((rest, headers))
}

/// Client side of the upgrade. Returns the bytes that followed the response.
pub(crate) async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
    port: u16,
    resource: &str,
) -> Result<BytesMut> {
    let key = base64_encode(&rand::random::<[u8; 16]>());
    let resource = if resource.is_empty() { "/" } else { resource };
    let request = format!(
        "GET {resource} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Protocol: {PROTOCOL}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| ws_error(e.to_string()))?;
    let (head, rest) = read_head(s).await?;
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(ws_error(format!("upgrade refused: `{status}`")));
    }
    if header(&head, "Sec-WebSocket-Accept") != Some(accept_key(&key).as_str()) {
        return Err(ws_error("wrong Sec-WebSocket-Accept"));
    }
    if header(&head, "Sec-WebSocket-Protocol").is_some_and(|p| p != PROTOCOL) {
        return Err(ws_error("server chose another subprotocol"));
    }
    Ok(rest)
}

/// Reads the payload of binary and continuation frames as one byte stream.
pub(crate) struct WsReader<R> {
    inner: R,
    raw: BytesMut,
    /// Whether frames from the peer must be masked (we are the server).
    expect_masked: bool,
    remaining: u64,
    mask: Option<[u8; 4]>,
    mask_pos: usize,
    /// The current frame is a control frame whose payload is skipped.
    skipping: bool,
    eof: bool,
}

impl<R> WsReader<R> {
    pub(crate) fn new(inner: R, leftover: BytesMut, server: bool) -> Self {
        WsReader {
            inner,
            raw: leftover,
            expect_masked: server,
            remaining: 0,
            mask: None,
            mask_pos: 0,
            skipping: false,
            eof: false,
        }
    }

    /// Parses a frame header from `raw` if it is complete.
    fn parse_header(&mut self) -> io::Result<bool> {
        let b = &self.raw[..];
        if b.len() < 2 {
            return Ok(false);
        }
        let opcode = b[0] & 0x0f;
        let fin = b[0] & 0x80 != 0;
        let masked = b[1] & 0x80 != 0;
        if masked != self.expect_masked {
            return Err(invalid("websocket: invalid masking".into()));
        }
        if b[0] & 0x70 != 0 {
            return Err(invalid(format!(
                "websocket: reserved bits {:#x} set without an extension",
                b[0] & 0x70
            )));
        }
        let control = opcode & 0x8 != 0;
        if control && !fin {
            return Err(invalid(format!(
                "websocket: fragmented control frame (opcode {opcode:#x})"
            )));
        }
        // A control frame's length fits the first length byte; checked before waiting for
        // longer length fields.
        if control && u64::from(b[1] & 0x7f) > MAX_CONTROL_PAYLOAD {
            let len = match b[1] & 0x7f {
                126 if b.len() >= 4 => u64::from(u16::from_be_bytes([b[2], b[3]])).to_string(),
                127 if b.len() >= 10 => {
                    let mut l = [0u8; 8];
                    l.copy_from_slice(&b[2..10]);
                    u64::from_be_bytes(l).to_string()
                }
                _ => "more than 125".to_string(),
            };
            return Err(invalid(format!(
                "websocket: control frame (opcode {opcode:#x}) with a payload of {len} bytes \
                 (at most {MAX_CONTROL_PAYLOAD}, RFC 6455 5.5)"
            )));
        }
        let (len, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[2..10]);
                let len = u64::from_be_bytes(l);
                if len >> 63 != 0 {
                    return Err(invalid(format!("websocket: frame length {len:#x}")));
                }
                (len, 10)
            }
            126 | 127 => return Ok(false),
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            if b.len() < at + 4 {
                return Ok(false);
            }
            let m = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        match opcode {
            0x0 | 0x2 => self.skipping = false,
            0x8 => {
                self.eof = true;
                self.skipping = true;
            }
            0x9 | 0xA => self.skipping = true,
            other => {
                return Err(invalid(format!("websocket: unexpected opcode {other}")));
            }
        }
        self.raw.advance(at);
        self.remaining = len;
        self.mask = mask;
        self.mask_pos = 0;
        Ok(true)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for WsReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.remaining > 0 && !this.raw.is_empty() {
                let n =
                    (this.remaining.min(this.raw.len() as u64) as usize).min(if this.skipping {
                        usize::MAX
                    } else {
                        out.remaining()
                    });
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                let mut chunk = this.raw.split_to(n);
                this.remaining -= n as u64;
                if this.skipping {
                    continue;
                }
                if let Some(m) = this.mask {
                    for b in chunk.iter_mut() {
                        *b ^= m[this.mask_pos % 4];
                        this.mask_pos += 1;
                    }
                }
                out.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if this.remaining == 0 {
                if this.eof {
                    return Poll::Ready(Ok(()));
                }
                if this.parse_header()? {
                    continue;
                }
            }
            let mut tmp = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut tmp);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.raw.put_slice(rb.filled());
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Writes each `write` call as binary frames of up to 64 KiB (masked when we are the client).
pub(crate) struct WsWriter<W> {
    inner: W,
    mask: bool,
    pending: BytesMut,
    accepted: usize,
}

impl<W> WsWriter<W> {
    pub(crate) fn new(inner: W, server: bool) -> Self {
        WsWriter {
            inner,
            mask: !server,
            pending: BytesMut::new(),
            accepted: 0,
        }
    }
}

impl<W: AsyncWrite + Unpin> WsWriter<W> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for WsWriter<W> {
    /// Frames `buf` and reports it written once the frame is on its way. After `Pending`, the
    /// caller must call again with the same bytes (the connection actor always does).
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_empty() {
            // Large writes go out as several frames, so that progress (and the endpoint
            // timeout) is measured per frame; the peer reads frames as one byte stream.
            let buf = &buf[..buf.len().min(MAX_FRAME)];
            let len = buf.len();
            this.pending.reserve(len + 14);
            this.pending.put_u8(0x82);
            let mask_bit = if this.mask { 0x80 } else { 0 };
            if len < 126 {
                this.pending.put_u8(mask_bit | len as u8);
            } else if len <= 0xffff {
                this.pending.put_u8(mask_bit | 126);
                this.pending.put_u16(len as u16);
            } else {
                this.pending.put_u8(mask_bit | 127);
                this.pending.put_u64(len as u64);
            }
            if this.mask {
                let m: [u8; 4] = rand::random();
                this.pending.put_slice(&m);
                this.pending
                    .extend(buf.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
            } else {
                this.pending.put_slice(buf);
            }
            this.accepted = len;
        }
        ready!(this.poll_drain(cx))?;
        Poll::Ready(Ok(std::mem::take(&mut this.accepted)))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// SHA-1 (RFC 3174), only for the Sec-WebSocket-Accept value.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_and_accept_key_match_rfc_6455() {
        let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        // The example of RFC 6455 section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[tokio::test]
    async fn frames_round_trip_both_ways() {
        for server in [true, false] {
            let (a, b) = tokio::io::duplex(1 << 20);
            let mut w = WsWriter::new(a, !server);
            let mut r = WsReader::new(b, BytesMut::new(), server);
            let msgs: Vec<Vec<u8>> = vec![vec![1; 10], vec![2; 300], vec![3; 70000], vec![]];
            for m in &msgs {
                w.write_all(m).await.unwrap();
            }
            drop(w);
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, msgs.concat());
        }
    }

    #[tokio::test]
    async fn ping_frames_are_skipped_and_close_ends_the_stream() {
        let mut bytes = vec![
            0x89, 0x02, b'h', b'i', 0x82, 0x03, 1, 2, 3, 0x88, 0x00, 0x82, 0x01, 9,
        ];
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(&bytes).await.unwrap();
        drop(a);
        let mut r = WsReader::new(b, BytesMut::new(), false);
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, vec![1, 2, 3]);
        // A server refuses unmasked frames.
        bytes.truncate(9);
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(&bytes[4..]).await.unwrap();
        let mut r = WsReader::new(b, BytesMut::new(), true);
        let mut buf = [0u8; 8];
        assert!(r.read(&mut buf).await.is_err());
    }

    /// What a reader (a client's: frames unmasked) says of `bytes`.
    async fn read_all(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        a.write_all(bytes).await.unwrap();
        drop(a);
        let mut got = Vec::new();
        WsReader::new(b, BytesMut::new(), false)
            .read_to_end(&mut got)
            .await
            .map(|_| got)
    }

    #[tokio::test]
    async fn control_frames_over_125_bytes_or_fragmented_are_refused() {
        let mut ok = vec![0x89, 125];
        ok.extend(std::iter::repeat_n(0u8, 125));
        ok.extend_from_slice(&[0x82, 1, 7]);
        assert_eq!(read_all(&ok).await.unwrap(), vec![7]);
        let cases: [(&str, Vec<u8>, &str); 6] = [
            (
                "ping of 126",
                vec![0x89, 126, 0, 126],
                "payload of 126 bytes",
            ),
            (
                "ping of 2^62",
                [vec![0x89, 127], (1u64 << 62).to_be_bytes().to_vec()].concat(),
                "payload of 4611686018427387904 bytes",
            ),
            (
                "pong of 200",
                vec![0x8A, 126, 0, 200],
                "payload of 200 bytes",
            ),
            ("close of 126", vec![0x88, 126], "more than 125"),
            (
                "fragmented ping",
                vec![0x09, 1, 0],
                "fragmented control frame",
            ),
            ("reserved bit", vec![0xC2, 1, 0], "reserved bits"),
        ];
        for (what, bytes, reason) in cases {
            let e = read_all(&bytes).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}");
            assert!(e.to_string().contains(reason), "{what}: {e}");
        }
        let huge = [vec![0x82, 127], u64::MAX.to_be_bytes().to_vec()].concat();
        assert!(read_all(&huge).await.is_err());
    }
}
