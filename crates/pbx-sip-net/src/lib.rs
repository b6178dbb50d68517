//! Tokio SIP transports (UDP, TCP, TLS; IPv4 and IPv6) driving pbx-sip-engine.
//!
//! (Crate documentation is completed with the endpoint driver.)

mod admission;
mod config;
mod connection;
mod error;
mod flow;
pub mod framing;
mod socket;
mod stream;
pub mod tls;
mod transports;
mod udp;

pub use admission::{AdmitAll, SourceFilter};
pub use config::{Limits, ListenerConfig, TlsConfig, TransportConfig};
pub use connection::ConnectionLimit;
pub use error::{BindError, SendError, TlsSetupError};
pub use flow::{ConnectionId, Destination, Flow, Transport};
pub use socket::ipv6_loopback_available;
pub use transports::{BoundTransports, TransportHandle, TransportStats, Transports};

use bytes::Bytes;

/// One received message (a UDP datagram, or one framed message from a stream) with the flow
/// it arrived on. Not parsed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Where it came from and on which socket/connection.
    pub flow: Flow,
    /// The raw message.
    pub data: Bytes,
}
