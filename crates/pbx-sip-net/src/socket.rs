//! Socket creation with socket2: options the std/tokio constructors do not expose.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Bind a UDP socket: SO_REUSEADDR, IPV6_V6ONLY on IPv6 (so `[::]` and `0.0.0.0` can both be
/// bound on one port), an optional receive buffer size.
pub(crate) fn bind_udp(addr: SocketAddr, recv_buffer: Option<usize>) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    if let Some(bytes) = recv_buffer
        && let Err(error) = socket.set_recv_buffer_size(bytes)
    {
        tracing::warn!(%addr, bytes, %error, "cannot set UDP receive buffer size");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Bind a TCP listener (used for TCP and TLS): SO_REUSEADDR so a restart does not wait for
/// TIME_WAIT, IPV6_V6ONLY on IPv6, the given backlog.
pub(crate) fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

/// Options for every accepted or opened stream: no Nagle delay (SIP messages are small and
/// latency-sensitive) and TCP keep-alive probes so dead NAT bindings are noticed even when
/// the peer sends no CRLF keep-alives.
pub(crate) fn tune_stream(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(15));
    if let Err(error) = SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%error, "cannot set TCP keep-alive");
    }
}

/// Whether this host can bind an IPv6 loopback socket (some sandboxes have no IPv6).
#[must_use]
pub fn ipv6_loopback_available() -> bool {
    let addr: SocketAddr = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0));
    std::net::UdpSocket::bind(addr).is_ok()
}
