//! TCP, the stream every connection-oriented transport runs on: listening sockets as Ice sets
//! them up (`Ice.TCP.Backlog`, `Ice.TCP.RcvSize`, `Ice.TCP.SndSize`) and dialling with Ice's
//! errors.

use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result};
use crate::properties::Properties;

/// The listen backlog when `Ice.TCP.Backlog` is not set: the system's maximum
/// (`net.core.somaxconn`; the kernel caps any larger backlog to it), as ZeroC uses
/// `SOMAXCONN`.
fn default_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4096)
}

/// Binds a TCP listener with a backlog of `Ice.TCP.Backlog` (default: the system's maximum).
/// `Ice.TCP.RcvSize` and `Ice.TCP.SndSize` (bytes) set the buffer sizes of its socket, which
/// the connections it accepts inherit (a small receive buffer makes a sender block sooner when
/// the adapter holds or dispatches slowly).
pub(crate) async fn listen(addr: &str, props: &Properties) -> std::io::Result<TcpListener> {
    let rcv = props.get_property_as_int("Ice.TCP.RcvSize");
    let snd = props.get_property_as_int("Ice.TCP.SndSize");
    let backlog = match props.get_property_as_int("Ice.TCP.Backlog") {
        n if n > 0 => n as u32,
        _ => default_backlog(),
    };
    let mut last = None;
    for sa in tokio::net::lookup_host(addr).await? {
        let socket = if sa.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if rcv > 0 {
            socket.set_recv_buffer_size(rcv as u32)?;
        }
        if snd > 0 {
            socket.set_send_buffer_size(snd as u32)?;
        }
        match socket.bind(sa).and_then(|()| socket.listen(backlog)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "no address to listen on",
        )
    }))
}

/// Connects to `addr` (`host:port`) with Nagle's algorithm off, as Ice does; a refusal is
/// Ice's `ConnectionRefusedException`, any other failure its `ConnectFailedException`.
pub(crate) async fn dial(addr: &str) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused(addr.to_string()),
        _ => Error::ConnectFailed(format!("{addr}: {e}")),
    })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
