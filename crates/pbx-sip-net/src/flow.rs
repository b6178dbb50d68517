//! Transports, connection ids and flows: where a message came from and how to answer it.

use std::fmt;
use std::net::SocketAddr;

/// A SIP transport protocol (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Transport {
    /// Datagrams over UDP: unreliable, one message per datagram.
    Udp,
    /// A TCP byte stream, framed by Content-Length.
    Tcp,
    /// TLS over TCP (the `sips:` transport), framed like TCP.
    Tls,
}

impl Transport {
    /// The transport token used in a Via header (`SIP/2.0/UDP`).
    #[must_use]
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// Whether the transport is reliable (a stream): no retransmissions, no 1300-byte rule.
    #[must_use]
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// Parse a Via transport token, case-insensitively (`udp`, `TCP`, `TLS`).
    #[must_use]
    pub fn from_via_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("UDP") {
            Some(Self::Udp)
        } else if token.eq_ignore_ascii_case("TCP") {
            Some(Self::Tcp)
        } else if token.eq_ignore_ascii_case("TLS") {
            Some(Self::Tls)
        } else {
            None
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// Identifies one TCP or TLS connection for its whole life (never reused within a process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// The path a message travelled: enough to send a request or response back the same way
/// (RFC 5626 flows; what a registrar stores for a device behind NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Transport the message used.
    pub transport: Transport,
    /// The peer's address as seen by us (the NAT's public side for a device behind NAT).
    pub remote: SocketAddr,
    /// Our local address the message arrived on (the listener for UDP; the connection's
    /// local end for TCP/TLS).
    pub local: SocketAddr,
    /// The connection, for TCP and TLS; `None` for UDP.
    pub connection: Option<ConnectionId>,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.transport, self.remote, self.local)?;
        if let Some(connection) = self.connection {
            write!(f, " ({connection})")?;
        }
        Ok(())
    }
}

/// Where to send bytes: back on a known flow, or to an address (reusing a connection to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Destination {
    /// Exactly this flow. For TCP/TLS the connection must still be open; for UDP the datagram
    /// leaves from the flow's local socket.
    Flow(Flow),
    /// Any flow to this address over this transport: an open connection to it is reused,
    /// otherwise one is opened (TCP/TLS). UDP leaves from a listener of the address family.
    Address {
        /// Transport to use.
        transport: Transport,
        /// Peer address.
        addr: SocketAddr,
    },
}

impl Destination {
    /// The transport this destination uses.
    #[must_use]
    pub fn transport(&self) -> Transport {
        match self {
            Self::Flow(flow) => flow.transport,
            Self::Address { transport, .. } => *transport,
        }
    }

    /// The peer address.
    #[must_use]
    pub fn remote(&self) -> SocketAddr {
        match self {
            Self::Flow(flow) => flow.remote,
            Self::Address { addr, .. } => *addr,
        }
    }
}

impl From<Flow> for Destination {
    fn from(flow: Flow) -> Self {
        Self::Flow(flow)
    }
}
