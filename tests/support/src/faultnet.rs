//! Fault injection for real-socket tests: TCP forwarders on 127.0.0.1 that a test can cut, heal
//! and reset while every process keeps running.
//!
//! A [`Link`] listens on a free loopback port and forwards every connection it accepts to a
//! target port. [`Link::cut`] stops forwarding in both directions without dropping a byte (the
//! data waits in kernel buffers and senders eventually block, as on a dead network path);
//! [`Link::heal`] resumes every held stream intact. [`Link::reset`] closes every connection at
//! once, as a crashed NAT would.
//!
//! A [`Mesh`] holds one link for every ordered pair of nodes, so node `i` reaches node `j` at
//! `127.0.0.1:mesh.port(i, j)` and a test can partition groups of nodes from each other.
//!
//! Each link runs on its own thread with its own small tokio runtime, so it works the same from
//! plain `#[test]` functions and from `#[tokio::test]` ones; dropping it stops the thread and
//! closes its port and every connection.
//!
//! ```
//! use floe_test_support::faultnet::Mesh;
//! use floe_test_support::free_port;
//!
//! // The nodes' own listening ports; the nodes may start after the mesh.
//! let mesh = Mesh::new(&[(1, free_port()), (2, free_port()), (3, free_port())]);
//! // Node 1 is configured with peers 127.0.0.1:{mesh.port(1, 2)} and 127.0.0.1:{mesh.port(1, 3)}, ...
//! mesh.partition(&[1], &[2, 3]);
//! assert!(mesh.link(2, 1).is_cut() && !mesh.link(2, 3).is_cut());
//! mesh.heal_all();
//! assert!(!mesh.link(2, 1).is_cut());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes read ahead per direction of a forwarded connection.
const BUFFER: usize = 64 * 1024;

/// How long [`Link::reset`] waits for the link's thread to close the connections it resets.
const RESET_LIMIT: Duration = Duration::from_secs(2);

/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// What a link is told to do; every connection task watches it.
#[derive(Clone, Copy, Debug, Default)]
struct State {
    /// Forwarding is suspended.
    cut: bool,
    /// Incremented by every reset; a connection accepted in an older epoch closes.
    epoch: u64,
    /// The link is being dropped.
    stopped: bool,
}

/// The live connections of a link, shared between the link's thread and its handle.
#[derive(Debug, Default)]
struct Tally {
    counts: Mutex<Counts>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Counts {
    /// Connections connected onward (the number [`Link::connections`] reports).
    forwarded: usize,
    /// The last epoch the accept loop has started: every connection of an older one that was
    /// still waiting in the listen backlog has been closed.
    drained: u64,
    /// Accepted connections not yet closed, by the epoch they were accepted in.
    live: BTreeMap<u64, usize>,
}

impl Tally {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One accepted connection's entry in the [`Tally`]; removed on drop, however the task ends
/// (including when the runtime is dropped under it).
struct Live {
    tally: Arc<Tally>,
    epoch: u64,
    forwarded: bool,
}

impl Live {
    /// Registers a connection accepted in `epoch`.
    fn register(tally: &Arc<Tally>, epoch: u64) -> Live {
        *tally.lock().live.entry(epoch).or_default() += 1;
        Live {
            tally: Arc::clone(tally),
            epoch,
            forwarded: false,
        }
    }

    fn set_forwarded(&mut self) {
        self.tally.lock().forwarded += 1;
        self.forwarded = true;
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut counts = self.tally.lock();
        if self.forwarded {
            counts.forwarded -= 1;
        }
        if let Some(n) = counts.live.get_mut(&self.epoch) {
            *n -= 1;
            if *n == 0 {
                counts.live.remove(&self.epoch);
            }
        }
        drop(counts);
        self.tally.changed.notify_all();
    }
}

/// One TCP forwarder: listens on `127.0.0.1:<free port>` and forwards every accepted connection
/// to `127.0.0.1:<target>`, until [cut](Link::cut), [reset](Link::reset) or dropped.
///
/// The onward connection is made per accepted connection, when it is accepted (or when the link
/// is healed, if it is cut then), so the target need not listen yet when the link starts; if the
/// onward connect fails, the accepted connection is closed. Both sockets use `TCP_NODELAY`, and
/// a half-close (EOF) is forwarded as one.
pub struct Link {
    port: u16,
    target: u16,
    state: watch::Sender<State>,
    tally: Arc<Tally>,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts a forwarder to `127.0.0.1:target_port` on its own thread and returns once it
    /// listens. Panics if it cannot bind a loopback port or start its thread.
    pub fn start(target_port: u16) -> Link {
        let listener =
            StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("faultnet: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("faultnet: non-blocking listener");
        let port = listener
            .local_addr()
            .expect("faultnet: local address")
            .port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("faultnet: build a tokio runtime");
        let (state, watcher) = watch::channel(State::default());
        let tally = Arc::new(Tally::default());
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, target_port));
        let thread = {
            let tally = Arc::clone(&tally);
            std::thread::Builder::new()
                .name(format!("faultnet {port}->{target_port}"))
                .spawn(move || {
                    runtime.block_on(serve(listener, target, watcher, tally));
                    // Dropping the runtime here drops every connection task still running,
                    // which closes its sockets.
                })
                .expect("faultnet: spawn the link's thread")
        };
        Link {
            port,
            target: target_port,
            state,
            tally,
            thread: Some(thread),
        }
    }

    /// The loopback port this link listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Partitions the link: from now on no byte is forwarded in either direction on existing
    /// connections (the link stops reading both sockets, so data stays in kernel buffers and
    /// senders eventually block; nothing is dropped), and new connections are accepted but not
    /// connected onward until [`Link::heal`]. Any byte the link reads after this returns is held
    /// until then. Idempotent.
    pub fn cut(&self) {
        self.state
            .send_if_modified(|s| !std::mem::replace(&mut s.cut, true));
    }

    /// Resumes forwarding on every held connection, each stream intact, and connects onward the
    /// connections accepted while cut. Idempotent.
    pub fn heal(&self) {
        self.state
            .send_if_modified(|s| std::mem::replace(&mut s.cut, false));
    }

    /// Closes every current connection on both sides at once, as a crashed NAT would: forwarded
    /// ones, ones held unconnected by a cut, and ones still waiting to be accepted; returns once
    /// they are closed. The link stays usable for new connections, and stays cut if it was.
    pub fn reset(&self) {
        let mut epoch = 0;
        self.state.send_modify(|s| {
            s.epoch += 1;
            epoch = s.epoch;
        });
        let deadline = Instant::now() + RESET_LIMIT;
        let mut counts = self.tally.lock();
        while counts.drained < epoch || counts.live.range(..epoch).next().is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            counts = self
                .tally
                .changed
                .wait_timeout(counts, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.state.borrow().cut
    }

    /// The number of open forwarded connections (those connected onward; connections held
    /// unconnected while the link is cut do not count).
    pub fn connections(&self) -> usize {
        self.tally.lock().forwarded
    }

    /// Tells the link's thread to stop, without waiting for it.
    fn signal_stop(&self) {
        self.state
            .send_if_modified(|s| !std::mem::replace(&mut s.stopped, true));
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("port", &self.port)
            .field("target", &self.target)
            .field("cut", &self.is_cut())
            .field("connections", &self.connections())
            .finish()
    }
}

impl Drop for Link {
    /// Stops the listener (its port refuses connections once this returns), closes every
    /// connection and joins the link's thread.
    fn drop(&mut self) {
        self.signal_stop();
        if let Some(thread) = self.thread.take() {
            // A panic on the link's thread must not turn into a second one here.
            let _ = thread.join();
        }
    }
}

/// Links for every ordered pair of nodes: node `from` reaches node `to` through
/// [`Mesh::port`]`(from, to)`, so the links between groups of nodes can be cut.
pub struct Mesh {
    links: BTreeMap<(u64, u64), Link>,
}

impl Mesh {
    /// Creates a [`Link`] for each ordered pair `(i, j)`, `i != j`, of the nodes in `targets`
    /// (node id, that node's real listening port) forwarding to `j`'s port. The nodes need not
    /// listen yet. Panics if a node id appears twice.
    pub fn new(targets: &[(u64, u16)]) -> Mesh {
        let mut links = BTreeMap::new();
        for (n, &(from, _)) in targets.iter().enumerate() {
            assert!(
                !targets[..n].iter().any(|&(id, _)| id == from),
                "faultnet: node {from} appears twice in the mesh"
            );
            for &(to, port) in targets {
                if from != to {
                    // The nodes' ports were free a moment ago and nothing holds them yet: a link
                    // given one of them by the system would keep its node from starting.
                    let link = loop {
                        let link = Link::start(port);
                        if !targets.iter().any(|&(_, p)| p == link.port()) {
                            break link;
                        }
                    };
                    links.insert((from, to), link);
                }
            }
        }
        Mesh { links }
    }

    /// The port node `from` must use to reach node `to`.
    pub fn port(&self, from: u64, to: u64) -> u16 {
        self.link(from, to).port()
    }

    /// Cuts every link between a node of `a` and a node of `b`, both directions; links within
    /// `a` and within `b` are left as they are.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                if x != y {
                    self.link(x, y).cut();
                    self.link(y, x).cut();
                }
            }
        }
    }

    /// Cuts `node` from every other node, both directions.
    pub fn isolate(&self, node: u64) {
        assert!(
            self.links.keys().any(|&(from, _)| from == node),
            "faultnet: node {node} is not in the mesh"
        );
        for (&(from, to), link) in &self.links {
            if from == node || to == node {
                link.cut();
            }
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        for link in self.links.values() {
            link.heal();
        }
    }

    /// The link node `from` uses to reach node `to`; panics if there is none.
    pub fn link(&self, from: u64, to: u64) -> &Link {
        self.links
            .get(&(from, to))
            .unwrap_or_else(|| panic!("faultnet: no link {from} -> {to} in the mesh"))
    }
}

impl fmt::Debug for Mesh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.links
                    .iter()
                    .map(|((from, to), link)| (format!("{from}->{to}"), link)),
            )
            .finish()
    }
}

impl Drop for Mesh {
    /// Stops every link at once, then joins their threads (as each [`Link`] is dropped).
    fn drop(&mut self) {
        for link in self.links.values() {
            link.signal_stop();
        }
    }
}

/// The error a connection task ends with when its link is reset or stopped.
fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "faultnet: link reset or stopped",
    )
}

/// Returns once the link is not cut; fails once the connection (accepted in `epoch`) must close.
async fn gate(state: &mut watch::Receiver<State>, epoch: u64) -> io::Result<()> {
    loop {
        let now = *state.borrow_and_update();
        if now.stopped || now.epoch != epoch {
            return Err(closed());
        }
        if !now.cut {
            return Ok(());
        }
        state.changed().await.map_err(|_| closed())?;
    }
}

/// The link's accept loop, until the link is stopped.
async fn serve(
    listener: StdTcpListener,
    target: SocketAddr,
    mut state: watch::Receiver<State>,
    tally: Arc<Tally>,
) {
    // A second handle on the same socket, to empty the backlog without waiting for tokio to
    // learn that it is readable.
    let Ok(backlog) = listener.try_clone() else {
        return;
    };
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let mut epoch = 0;
    loop {
        let now = *state.borrow_and_update();
        if now.stopped {
            return;
        }
        if now.epoch != epoch {
            // A reset: connections the kernel completed before it but not accepted yet belong
            // to it too, so close them (the listener is non-blocking: this stops when empty).
            while backlog.accept().is_ok() {}
            epoch = now.epoch;
            tally.lock().drained = epoch;
            tally.changed.notify_all();
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    if state.borrow().epoch != epoch {
                        // Accepted before a reset was seen: closed with the backlog.
                        continue;
                    }
                    let live = Live::register(&tally, epoch);
                    tokio::spawn(forward(client, target, state.clone(), live));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Forwards one accepted connection: connects onward once the link is not cut, then pumps both
/// directions until both have ended, either fails, or the link is reset or stopped.
async fn forward(
    client: TcpStream,
    target: SocketAddr,
    mut state: watch::Receiver<State>,
    mut live: Live,
) {
    let epoch = live.epoch;
    let server = loop {
        if gate(&mut state, epoch).await.is_err() {
            return;
        }
        tokio::select! {
            connected = TcpStream::connect(target) => match connected {
                Ok(server) => break server,
                // The target does not listen (yet): close the accepted connection.
                Err(_) => return,
            },
            // Cut, reset or stopped while connecting: check again (a cut waits for the heal).
            _ = state.changed() => {}
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    live.set_forwarded();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, state.clone(), epoch);
    let down = pump(server_read, client_write, state, epoch);
    tokio::pin!(up, down);
    // A direction that ends with EOF leaves the other one running (a half-close); an error on
    // either closes both.
    tokio::select! {
        ended = &mut up => if ended.is_ok() { let _ = down.await; },
        ended = &mut down => if ended.is_ok() { let _ = up.await; },
    }
    drop(live);
}

/// Copies `from` to `to` through a bounded buffer, holding everything (read or not) while the
/// link is cut; forwards EOF as a write shutdown.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut state: watch::Receiver<State>,
    epoch: u64,
) -> io::Result<()> {
    let mut buf = vec![0; BUFFER];
    loop {
        gate(&mut state, epoch).await?;
        // Both `read` and `changed` are cancel safe: a state change never loses data.
        let n = tokio::select! {
            read = from.read(&mut buf) => read?,
            changed = state.changed() => {
                changed.map_err(|_| closed())?;
                continue;
            }
        };
        if n == 0 {
            gate(&mut state, epoch).await?;
            return to.shutdown().await;
        }
        let mut sent = 0;
        while sent < n {
            // Checked after the read, so bytes read after a cut wait for the heal.
            gate(&mut state, epoch).await?;
            tokio::select! {
                written = to.write(&buf[sent..n]) => match written? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    k => sent += k,
                },
                changed = state.changed() => changed.map_err(|_| closed())?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::free_port;
    use std::io::{Read, Write};
    use std::net::TcpStream as StdTcpStream;

    /// How long a cut link must hold an echo back.
    const HELD: Duration = Duration::from_millis(300);

    /// An echo server on a free loopback port (its threads end with the test process).
    fn echo_server() -> u16 {
        let listener = StdTcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || echo_on(listener));
        port
    }

    fn echo_on(listener: StdTcpListener) {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let _ = io::copy(&mut reader, &mut stream);
            });
        }
    }

    fn connect(port: u16) -> StdTcpStream {
        let stream = StdTcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn echo(stream: &mut StdTcpStream, bytes: &[u8]) {
        stream.write_all(bytes).unwrap();
        let mut back = vec![0; bytes.len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, bytes);
    }

    /// Asserts nothing arrives on `stream` within [`HELD`].
    fn assert_held(stream: &mut StdTcpStream) {
        stream.set_read_timeout(Some(HELD)).unwrap();
        let mut byte = [0];
        match stream.read(&mut byte) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            other => panic!("expected nothing within {HELD:?}, got {other:?}"),
        }
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
    }

    /// Asserts `stream` was closed by the other side (EOF or an error other than a timeout).
    fn assert_closed(stream: &mut StdTcpStream) {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0; 64];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Err(e)
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            other => panic!("expected the connection to be closed, got {other:?}"),
        }
    }

    #[test]
    fn cut_holds_bytes_and_heal_delivers_them_intact() {
        let link = Link::start(echo_server());
        let mut client = connect(link.port());
        echo(&mut client, b"hello");
        assert_eq!(link.connections(), 1);
        assert!(!link.is_cut());

        link.cut();
        assert!(link.is_cut());
        let sent = pattern(10_000, 7);
        client.write_all(&sent).unwrap();
        assert_held(&mut client);
        assert_eq!(link.connections(), 1, "a cut keeps its connections");

        link.heal();
        assert!(!link.is_cut());
        let mut back = vec![0; sent.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, sent);
        echo(&mut client, b"after");
    }

    #[test]
    fn connection_made_while_cut_gets_through_after_heal() {
        let link = Link::start(echo_server());
        link.cut();
        let mut client = connect(link.port());
        client.write_all(b"early").unwrap();
        assert_held(&mut client);
        assert_eq!(link.connections(), 0, "held, not yet connected onward");

        link.heal();
        let mut back = [0; 5];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"early");
        assert_eq!(link.connections(), 1);
    }

    #[test]
    fn reset_closes_connections_and_the_link_stays_usable() {
        let link = Link::start(echo_server());
        let mut first = connect(link.port());
        let mut second = connect(link.port());
        echo(&mut first, b"one");
        echo(&mut second, b"two");
        assert_eq!(link.connections(), 2);

        link.reset();
        assert_eq!(link.connections(), 0, "reset returns once they are closed");
        assert_closed(&mut first);
        assert_closed(&mut second);

        let mut again = connect(link.port());
        echo(&mut again, b"again");
        assert_eq!(link.connections(), 1);
    }

    #[test]
    fn reset_closes_connections_held_by_a_cut() {
        let link = Link::start(echo_server());
        let mut old = connect(link.port());
        echo(&mut old, b"x");
        link.cut();
        let mut pending = connect(link.port());
        link.reset();
        assert_closed(&mut old);
        assert_closed(&mut pending);
        assert!(link.is_cut(), "a reset leaves the cut in place");
        link.heal();
        echo(&mut connect(link.port()), b"fresh");
    }

    #[test]
    fn stream_stays_intact_while_the_link_flaps() {
        const LEN: usize = 4 << 20;
        let link = Link::start(echo_server());
        let client = connect(link.port());
        let mut writer = client.try_clone().unwrap();
        let mut reader = client;
        let sent = pattern(LEN, 3);
        let expected = sent.clone();
        // Paced, so the stream spans many cuts.
        let writing = std::thread::spawn(move || {
            for chunk in sent.chunks(BUFFER) {
                writer.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        let reading = std::thread::spawn(move || {
            let mut back = vec![0; LEN];
            reader.read_exact(&mut back).unwrap();
            back
        });
        let mut cuts = 0;
        while !reading.is_finished() {
            link.cut();
            cuts += 1;
            std::thread::sleep(Duration::from_millis(15));
            link.heal();
            std::thread::sleep(Duration::from_millis(15));
        }
        assert!(cuts >= 5, "only {cuts} cuts during the transfer");
        writing.join().unwrap();
        assert!(
            reading.join().unwrap() == expected,
            "the stream was altered"
        );
    }

    #[test]
    fn target_that_does_not_listen_yet() {
        let target = free_port();
        let link = Link::start(target);
        let mut refused = connect(link.port());
        assert_closed(&mut refused);
        assert_eq!(link.connections(), 0);

        let listener = StdTcpListener::bind(("127.0.0.1", target)).unwrap();
        std::thread::spawn(move || echo_on(listener));
        echo(&mut connect(link.port()), b"now");
    }

    #[test]
    fn half_close_is_forwarded() {
        let link = Link::start(echo_server());
        let mut client = connect(link.port());
        client.write_all(b"bye").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"bye");
    }

    #[test]
    fn mesh_partition_blocks_only_links_across_the_groups() {
        let nodes = [(1, echo_server()), (2, echo_server()), (3, echo_server())];
        let mesh = Mesh::new(&nodes);
        let pairs: Vec<(u64, u64)> = [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)].into();
        let mut clients: Vec<_> = pairs
            .iter()
            .map(|&(from, to)| {
                assert_ne!(mesh.port(from, to), nodes[to as usize - 1].1);
                let mut client = connect(mesh.port(from, to));
                echo(&mut client, b"up");
                client
            })
            .collect();

        mesh.partition(&[1, 2], &[3]);
        for (&(from, to), client) in pairs.iter().zip(&mut clients) {
            client.write_all(b"ping").unwrap();
            assert_eq!(mesh.link(from, to).is_cut(), from == 3 || to == 3);
        }
        std::thread::sleep(HELD);
        for (&(from, to), client) in pairs.iter().zip(&mut clients) {
            client.set_nonblocking(true).unwrap();
            let mut back = [0; 4];
            let got = client.read(&mut back);
            if from == 3 || to == 3 {
                assert!(
                    matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                    "{from}->{to} must be cut, got {got:?}"
                );
            } else {
                assert!(
                    matches!(got, Ok(4)) && &back == b"ping",
                    "{from}->{to} must pass, got {got:?}"
                );
            }
            client.set_nonblocking(false).unwrap();
        }

        mesh.heal_all();
        for (&(from, to), client) in pairs.iter().zip(&mut clients) {
            if from == 3 || to == 3 {
                let mut back = [0; 4];
                client.read_exact(&mut back).unwrap();
                assert_eq!(&back, b"ping");
            }
            echo(client, b"healed");
        }
    }

    #[test]
    fn mesh_isolate_cuts_one_node_from_all_others() {
        let mesh = Mesh::new(&[(1, free_port()), (2, free_port()), (3, free_port())]);
        mesh.isolate(2);
        for (from, to) in [(1, 2), (2, 1), (2, 3), (3, 2)] {
            assert!(mesh.link(from, to).is_cut(), "{from}->{to}");
        }
        assert!(!mesh.link(1, 3).is_cut() && !mesh.link(3, 1).is_cut());
        mesh.heal_all();
        assert!(!mesh.link(2, 1).is_cut());
    }

    #[test]
    fn dropping_a_link_closes_its_port_and_connections() {
        let link = Link::start(echo_server());
        let port = link.port();
        let mut client = connect(port);
        echo(&mut client, b"alive");
        let started = Instant::now();
        drop(link);
        assert_closed(&mut client);
        loop {
            match StdTcpStream::connect(("127.0.0.1", port)) {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                _ => assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "port {port} still accepts after the link was dropped"
                ),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[tokio::test]
    async fn works_inside_a_tokio_runtime() {
        let link = Link::start(echo_server());
        let mut client = tokio::net::TcpStream::connect(("127.0.0.1", link.port()))
            .await
            .unwrap();
        client.write_all(b"async").await.unwrap();
        let mut back = [0; 5];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"async");
        link.cut();
        client.write_all(b"held").await.unwrap();
        let mut held = [0; 4];
        let early = tokio::time::timeout(HELD, client.read_exact(&mut held)).await;
        assert!(early.is_err(), "echo passed a cut link");
        link.heal();
        client.read_exact(&mut held).await.unwrap();
        assert_eq!(&held, b"held");
        drop(link);
    }
}
