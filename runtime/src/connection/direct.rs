//! Requests written by the calling task itself.
//!
//! On an outgoing plain-TCP connection whose task has nothing to write, a caller writes its
//! request to the socket at once, as Ice's own clients do, instead of handing it to the
//! connection's task and waiting for that task to be scheduled: one wake-up (often one thread
//! switch) less per call. The connection's task still reads every reply.
//!
//! Only a message that follows the connection's previous write by at least [`DIRECT_GAP`] is
//! written this way: messages that come faster (a burst of oneways, events forwarded under
//! load) go to the task, which writes all those queued meanwhile in one system call and one
//! TCP segment, instead of one each.
//!
//! The [`Gate`] keeps the messages whole and in order:
//! - a caller writes only while it holds the gate's lock (taken with `try_lock`: a caller never
//!   waits for it), the task has claimed nothing, and no request or raw message waits in the
//!   task's channel (what one caller queued there is never overtaken by its next request);
//! - the task claims the gate before it queues anything to write, and releases it once its
//!   queue is empty and its channel holds no request;
//! - a caller whose message the socket did not take whole leaves the rest with the gate
//!   (claimed on the task's behalf), and the task writes that rest before anything else.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use super::Done;

/// The write half of a TCP connection, shared by its task (through this `AsyncWrite`) and the
/// callers that write to it directly (through the [`Gate`]).
pub(super) struct SharedWrite(pub(super) Arc<OwnedWriteHalf>);

impl SharedWrite {
    fn stream(&self) -> &TcpStream {
        (*self.0).as_ref()
    }

    /// Waits until the socket is writable, then `write`s; again if it was not after all.
    fn poll_with(
        &self,
        cx: &mut Context<'_>,
        write: impl Fn(&TcpStream) -> std::io::Result<usize>,
    ) -> Poll<std::io::Result<usize>> {
        let stream = self.stream();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match write(stream) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }
}

impl AsyncWrite for SharedWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_with(cx, |stream| stream.try_write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_with(cx, |stream| stream.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let sock = socket2::SockRef::from(self.stream());
        Poll::Ready(sock.shutdown(std::net::Shutdown::Write))
    }
}

/// How long after the connection's previous write a caller may write a message itself.
pub(super) const DIRECT_GAP: Duration = Duration::from_micros(20);

/// Nanoseconds since the first call, plus one (0 stands for never), on a monotonic clock.
fn now_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// Who may write to a connection's socket now: a caller, or only the connection's task.
pub(super) struct Gate {
    state: parking_lot::Mutex<GateState>,
    /// Requests and raw messages sent to the task's channel and not yet taken by the task.
    in_channel: AtomicUsize,
    /// Set by every request a caller wrote; the task counts it as activity (ACM).
    wrote: AtomicBool,
    /// When the socket was last written to ([`now_ns`]; 0: never), by a caller or the task.
    last_write: AtomicU64,
}

struct GateState {
    /// The socket; `None` once the connection's task has ended.
    socket: Option<Arc<OwnedWriteHalf>>,
    /// The task has claimed the socket: it has something to write, or will have.
    claimed: bool,
    /// What a caller's write left over, for the task to write first.
    leftover: Option<Leftover>,
}

/// The part of a request the socket did not take from its caller.
pub(super) struct Leftover {
    pub frames: Vec<Bytes>,
    pub request_id: Option<i32>,
    pub done: Option<Done>,
}

/// The socket, held by a caller that may write to it: while it lives, nobody else writes.
pub(super) struct Free<'a> {
    gate: &'a Gate,
    state: parking_lot::MutexGuard<'a, GateState>,
}

impl Free<'_> {
    /// Writes as much of `head` and `tail` as the socket takes at once, without waiting;
    /// returns how many bytes it took (0 when it took none or failed: the task's own write
    /// finds out which).
    pub(super) fn write(&mut self, head: &[u8], tail: &[u8]) -> usize {
        let Some(socket) = self.state.socket.as_ref() else {
            return 0;
        };
        let stream: &TcpStream = (**socket).as_ref();
        let written = loop {
            let r = if tail.is_empty() {
                stream.try_write(head)
            } else {
                stream.try_write_vectored(&[IoSlice::new(head), IoSlice::new(tail)])
            };
            match r {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break 0,
            }
        };
        if written > 0 {
            self.gate.note_write();
            self.gate.wrote.store(true, Ordering::Relaxed);
        }
        written
    }

    /// Leaves the rest of a message to the connection's task, which writes it before anything
    /// else; the caller then wakes the task ([`super::Command::Flush`]).
    pub(super) fn leave(mut self, leftover: Leftover) {
        self.state.claimed = true;
        self.state.leftover = Some(leftover);
    }
}

impl Gate {
    pub(super) fn new(socket: Arc<OwnedWriteHalf>) -> Gate {
        Gate {
            state: parking_lot::Mutex::new(GateState {
                socket: Some(socket),
                claimed: false,
                leftover: None,
            }),
            in_channel: AtomicUsize::new(0),
            wrote: AtomicBool::new(false),
            last_write: AtomicU64::new(0),
        }
    }

    /// The socket, if a caller may write to it now: the connection's previous write was at
    /// least [`DIRECT_GAP`] ago, nobody else holds it, the task has claimed nothing, no request
    /// waits in the task's channel, and `open` (asked while the socket is held, so that a
    /// closing task sees every request written before it decides) says the connection still
    /// takes requests.
    pub(super) fn free(&self, open: impl FnOnce() -> bool) -> Option<Free<'_>> {
        let last = self.last_write.load(Ordering::Relaxed);
        if last != 0 && now_ns().saturating_sub(last) < DIRECT_GAP.as_nanos() as u64 {
            return None;
        }
        let state = self.state.try_lock()?;
        if state.claimed
            || state.socket.is_none()
            || self.in_channel.load(Ordering::Acquire) != 0
            || !open()
        {
            return None;
        }
        Some(Free { gate: self, state })
    }

    /// A request or raw message goes to the task's channel: until the task takes it, no
    /// caller writes directly. Undone with [`Gate::unqueued`] if the send fails.
    pub(super) fn queued(&self) {
        self.in_channel.fetch_add(1, Ordering::AcqRel);
    }

    /// The task took a request or raw message from its channel (after claiming the gate), or
    /// a send to the channel failed.
    pub(super) fn unqueued(&self) {
        self.in_channel.fetch_sub(1, Ordering::AcqRel);
    }

    /// The task claims the socket, and takes what a caller left over.
    pub(super) fn claim(&self) -> Option<Leftover> {
        let mut state = self.state.lock();
        state.claimed = true;
        state.leftover.take()
    }

    /// The task's queue is empty: callers may write again unless a request waits in the
    /// channel. Returns whether the claim was released.
    pub(super) fn release(&self) -> bool {
        let mut state = self.state.lock();
        // A caller leaves something over only while the socket is not claimed.
        debug_assert!(state.leftover.is_none());
        if self.in_channel.load(Ordering::Acquire) != 0 {
            return false;
        }
        state.claimed = false;
        true
    }

    /// The task ends: no caller writes from now on. Returns a caller's leftover, if any.
    pub(super) fn shut(&self) -> Option<Leftover> {
        let mut state = self.state.lock();
        state.claimed = true;
        state.socket = None;
        state.leftover.take()
    }

    /// Whether the task (or a caller's leftover) holds the socket.
    #[cfg(test)]
    pub(super) fn is_claimed(&self) -> bool {
        self.state.lock().claimed
    }

    /// The task wrote to the socket.
    pub(super) fn note_write(&self) {
        self.last_write.store(now_ns(), Ordering::Relaxed);
    }

    /// Whether a caller wrote a request since the last call.
    pub(super) fn take_wrote(&self) -> bool {
        self.wrote.swap(false, Ordering::Relaxed)
    }
}
