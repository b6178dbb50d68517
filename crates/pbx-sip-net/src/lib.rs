//! Tokio SIP transports (UDP, TCP, TLS; IPv4 and IPv6) driving pbx-sip-engine.
//!
//! (Crate documentation is completed with the endpoint driver.)

mod admission;
mod config;
mod connection;
mod endpoint;
mod error;
mod flow;
mod socket;
mod stream;
#[cfg(feature = "test-tu")]
mod test_tu;
pub mod tls;
mod transports;
mod tu;
mod udp;

pub use admission::{AdmitAll, SourceFilter};
pub use config::{Limits, ListenerConfig, TlsConfig, TransportConfig};
pub use connection::ConnectionLimit;
pub use endpoint::{Command, Endpoint, EndpointError, EndpointHandle, RunningEndpoint};
pub use error::{BindError, SendError, TlsSetupError};
pub use flow::{ConnectionId, Destination, Flow, Transport};
pub use socket::ipv6_loopback_available;
#[cfg(feature = "test-tu")]
pub use test_tu::TestTu;
pub use transports::{BoundTransports, TransportHandle, TransportStats, Transports};
pub use tu::{Context, TransactionUser};

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
