//! UDP sockets as Ice sets them up: unicast and multicast endpoints (`udp -h 239.255.0.1 -p 4061
//! --interface 127.0.0.1 --ttl 1`), the buffer sizes `Ice.UDP.RcvSize` and `Ice.UDP.SndSize`,
//! and the largest datagram each side carries.
//!
//! Ice's rule for sizes: a socket carries datagrams of at most `min(65507, buffer - 28)` bytes
//! (28 for the IP and UDP headers), where `buffer` is the size the kernel reports for the
//! socket's buffer (on Linux, twice the size asked for). A sender refuses a larger message with an error; a receiver drops a larger
//! datagram (it arrives truncated).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use crate::endpoint::IpEndpoint;
use crate::properties::Properties;

/// IPv4 and UDP headers.
const UDP_OVERHEAD: usize = 20 + 8;
/// The largest UDP payload (IPv4).
pub(crate) const MAX_PACKET: usize = 65535 - UDP_OVERHEAD;

/// A bound UDP socket and the largest datagrams it carries each way.
#[derive(Debug)]
pub(crate) struct UdpSocket {
    pub socket: tokio::net::UdpSocket,
    /// The largest datagram it receives whole (larger ones arrive truncated and are dropped).
    pub max_receive: usize,
    /// The largest datagram it sends.
    pub max_send: usize,
}

fn payload_limit(buffer: usize) -> usize {
    MAX_PACKET.min(buffer.saturating_sub(UDP_OVERHEAD))
}

/// Applies `Ice.UDP.RcvSize`/`Ice.UDP.SndSize` (when set) and returns the sizes the kernel
/// reports back: (receive, send). As in ZeroC, the limits follow what the kernel reports, which
/// on Linux is twice what was asked (it counts its bookkeeping), so that Floe and ZeroC peers
/// with the same settings carry the same datagrams.
fn set_buffers(socket: &Socket, props: &Properties) -> io::Result<(usize, usize)> {
    let wanted = |key: &str| {
        let v = props.get_property_as_int_with_default(key, -1);
        (v > (UDP_OVERHEAD + crate::protocol::HEADER_SIZE) as i32).then_some(v as usize)
    };
    if let Some(n) = wanted("Ice.UDP.RcvSize") {
        socket.set_recv_buffer_size(n)?;
    }
    if let Some(n) = wanted("Ice.UDP.SndSize") {
        socket.set_send_buffer_size(n)?;
    }
    Ok((socket.recv_buffer_size()?, socket.send_buffer_size()?))
}

fn socket_for(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn into_tokio(socket: Socket) -> io::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::from_std(socket.into())
}

/// The interface `--interface` names, as an IPv4 address or an interface index: an address is
/// taken as is, a name (`lo`, `eth0`) is looked up in /sys/class/net.
enum Interface {
    Any,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Index(u32),
}

fn interface(name: &str) -> io::Result<Interface> {
    if name.is_empty() {
        return Ok(Interface::Any);
    }
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Ok(Interface::V4(a)),
        Ok(IpAddr::V6(a)) => Ok(Interface::V6(a)),
        Err(_) => {
            let path = format!("/sys/class/net/{name}/ifindex");
            let index = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no network interface named `{name}`"),
                    )
                })?;
            Ok(Interface::Index(index))
        }
    }
}

fn v4_interface(name: &str) -> io::Result<InterfaceIndexOrAddress> {
    Ok(match interface(name)? {
        Interface::Any => InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
        Interface::V4(a) => InterfaceIndexOrAddress::Address(a),
        Interface::Index(i) => InterfaceIndexOrAddress::Index(i),
        Interface::V6(a) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface {a} is IPv6 but the multicast group is IPv4"),
            ));
        }
    })
}

fn v6_interface(name: &str) -> io::Result<u32> {
    match interface(name)? {
        Interface::Any => Ok(0),
        Interface::Index(i) => Ok(i),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("an IPv6 multicast --interface must be an interface name, not `{name}`"),
        )),
    }
}

/// A server socket for `ep` bound at `addr`: a multicast group is joined (on `--interface`, or
/// on the system's choice) with the port shared, so several servers on one host receive each
/// datagram sent to the group.
pub(crate) fn bind_server(
    addr: SocketAddr,
    ep: &IpEndpoint,
    props: &Properties,
) -> io::Result<UdpSocket> {
    let socket = socket_for(&addr)?;
    let (rcv, snd) = set_buffers(&socket, props)?;
    if addr.ip().is_multicast() {
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&SockAddr::from(addr))?;
        match addr.ip() {
            IpAddr::V4(group) => {
                socket.join_multicast_v4_n(&group, &v4_interface(&ep.interface)?)?;
            }
            IpAddr::V6(group) => {
                socket.join_multicast_v6(&group, v6_interface(&ep.interface)?)?;
            }
        }
    } else {
        socket.bind(&SockAddr::from(addr))?;
    }
    Ok(UdpSocket {
        socket: into_tokio(socket)?,
        max_receive: payload_limit(rcv),
        max_send: payload_limit(snd),
    })
}

/// A client socket sending to `target` for `ep`: to a multicast group it sends on
/// `--interface` with `--ttl` hops, and sees its own datagrams too (another process on this
/// host may be listening).
pub(crate) fn bind_client(
    target: SocketAddr,
    ep: &IpEndpoint,
    props: &Properties,
) -> io::Result<UdpSocket> {
    let socket = socket_for(&target)?;
    let (rcv, snd) = set_buffers(&socket, props)?;
    let local: SocketAddr = match target {
        SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(a) if a.ip().is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    match target.ip() {
        IpAddr::V4(group) if group.is_multicast() => {
            match interface(&ep.interface)? {
                Interface::Any => {}
                Interface::V4(a) => socket.set_multicast_if_v4(&a)?,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "to send to IPv4 group {group}, --interface must be an IPv4 address, not `{}`",
                            ep.interface
                        ),
                    ));
                }
            }
            if ep.ttl >= 0 {
                socket.set_multicast_ttl_v4(ep.ttl as u32)?;
            }
            socket.set_multicast_loop_v4(true)?;
        }
        IpAddr::V6(group) if group.is_multicast() => {
            let index = v6_interface(&ep.interface)?;
            if index != 0 {
                socket.set_multicast_if_v6(index)?;
            }
            if ep.ttl >= 0 {
                socket.set_multicast_hops_v6(ep.ttl as u32)?;
            }
            socket.set_multicast_loop_v6(true)?;
        }
        _ => {}
    }
    socket.bind(&SockAddr::from(local))?;
    socket.connect(&SockAddr::from(target))?;
    Ok(UdpSocket {
        socket: into_tokio(socket)?,
        max_receive: payload_limit(rcv),
        max_send: payload_limit(snd),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_limit_follows_ice() {
        assert_eq!(payload_limit(1 << 20), 65507);
        assert_eq!(payload_limit(4096), 4096 - 28);
        assert_eq!(payload_limit(10), 0);
    }

    #[test]
    fn unknown_interface_name_is_an_error() {
        let err = v4_interface("no-such-interface0").err().unwrap();
        assert!(err.to_string().contains("no-such-interface0"), "{err}");
    }
}
