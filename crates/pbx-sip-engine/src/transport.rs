//! What the engine knows about transports: where a message came from, where one should go.
//!
//! The engine opens no socket. The driver tells it, for every message, which transport and
//! which connection ([`FlowId`]) it arrived on and from which address ([`TransportInfo`]);
//! the engine answers with [`Transmit`]s naming the transport, the destination address and,
//! for connection-oriented transports, the flow to reuse.

use std::net::SocketAddr;

use bytes::Bytes;
use pbx_sip::Transport;

use crate::transaction::TransactionId;

/// A connection (TCP, TLS, WebSocket) as numbered by the driver. The engine only hands it
/// back: responses to a request received on a flow go out on that flow (RFC 3261 §18.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// How a message reached us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportInfo {
    /// The transport it arrived on.
    pub transport: Transport,
    /// The source address of the datagram or connection.
    pub source: SocketAddr,
    /// The connection it arrived on (`None` for UDP).
    pub flow: Option<FlowId>,
}

impl TransportInfo {
    /// A UDP datagram from `source`.
    pub fn udp(source: SocketAddr) -> Self {
        Self {
            transport: Transport::Udp,
            source,
            flow: None,
        }
    }

    /// A message read from connection `flow` of kind `transport`, whose peer is `source`.
    pub fn stream(transport: Transport, source: SocketAddr, flow: FlowId) -> Self {
        Self {
            transport,
            source,
            flow: Some(flow),
        }
    }

    /// Whether the transport is reliable (no retransmission timers, zero wait timers).
    pub fn is_reliable(&self) -> bool {
        self.transport.is_reliable()
    }
}

/// Where a request goes: the outcome of RFC 3263 resolution, done by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Transport to use.
    pub transport: Transport,
    /// Destination address.
    pub address: SocketAddr,
    /// An existing connection to reuse (`None`: the driver picks or opens one).
    pub flow: Option<FlowId>,
}

impl Target {
    /// UDP to `address`.
    pub fn udp(address: SocketAddr) -> Self {
        Self {
            transport: Transport::Udp,
            address,
            flow: None,
        }
    }

    /// A reliable transport to `address`, optionally on an existing flow.
    pub fn stream(transport: Transport, address: SocketAddr, flow: Option<FlowId>) -> Self {
        Self {
            transport,
            address,
            flow,
        }
    }

    /// Whether the transport is reliable.
    pub fn is_reliable(&self) -> bool {
        self.transport.is_reliable()
    }

    pub(crate) fn transmit(&self, contents: Bytes, transaction: Option<TransactionId>) -> Transmit {
        Transmit {
            transport: self.transport.clone(),
            destination: self.address,
            flow: self.flow,
            contents,
            transaction,
        }
    }
}

/// A message the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport to send on.
    pub transport: Transport,
    /// Destination address (for a flow: the peer, used if the flow is gone, §18.2.2).
    pub destination: SocketAddr,
    /// The connection to send on, when one must be reused.
    pub flow: Option<FlowId>,
    /// The printed message.
    pub contents: Bytes,
    /// The transaction it belongs to, to report a send failure with
    /// `Endpoint::handle_transport_error` (`None` for stateless sends).
    pub transaction: Option<TransactionId>,
}
