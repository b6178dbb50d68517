//! Errors of the transport layer, one enum per operation.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::flow::{ConnectionId, Transport};

/// Binding the configured listeners failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// No listener was configured.
    #[error("no listener configured")]
    NoListeners,
    /// The OS refused to create or bind a socket.
    #[error("cannot bind {transport} listener on {addr}: {source}")]
    Socket {
        /// Transport of the listener.
        transport: Transport,
        /// Address it was to bind.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The TLS identity could not be loaded or generated.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

/// Building the TLS configuration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// Only one of `cert_path` and `key_path` was configured.
    #[error("tls.cert_path and tls.key_path must be set together")]
    IncompleteIdentity,
    /// A PEM file could not be read or holds no usable item.
    #[error("cannot read PEM file {path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the certificate, key or protocol settings.
    #[error("rustls rejected the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Sending bytes failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The flow's connection is closed (a NAT binding lost, an idle timeout).
    #[error("connection {0} is closed")]
    ConnectionClosed(ConnectionId),
    /// The connection's outbound queue is full: the peer does not read fast enough.
    #[error("outbound queue of connection {0} is full")]
    QueueFull(ConnectionId),
    /// No listener of that transport and address family exists to send from.
    #[error("no {transport} socket to send to {addr} from")]
    NoSocket {
        /// The transport asked for.
        transport: Transport,
        /// The destination.
        addr: SocketAddr,
    },
    /// Opening a connection to the destination failed or timed out.
    #[error("cannot connect over {transport} to {addr}: {source}")]
    Connect {
        /// The transport asked for.
        transport: Transport,
        /// The destination.
        addr: SocketAddr,
        /// The OS or TLS error.
        #[source]
        source: io::Error,
    },
    /// No open connection to the destination, and the non-blocking send does not open one.
    #[error("no open {transport} connection to {addr}")]
    NoConnection {
        /// The transport asked for.
        transport: Transport,
        /// The destination.
        addr: SocketAddr,
    },
    /// The connection limit (total) is reached.
    #[error("connection limit reached")]
    TooManyConnections,
    /// A datagram could not be sent.
    #[error("cannot send datagram to {addr}: {source}")]
    Datagram {
        /// The destination.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The transports are shutting down.
    #[error("transports are shutting down")]
    ShuttingDown,
}
