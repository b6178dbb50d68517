//! Runtime configuration of the transports (already validated; the server maps its TOML
//! schema onto these types).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::flow::Transport;

/// One listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Transport served on this address.
    pub transport: Transport,
    /// Address to bind; port 0 picks a free port (see [`crate::BoundTransports::local_addrs`]).
    pub addr: SocketAddr,
}

impl ListenerConfig {
    /// A listener for `transport` on `addr`.
    #[must_use]
    pub fn new(transport: Transport, addr: SocketAddr) -> Self {
        Self { transport, addr }
    }
}

/// TLS identity and trust. With no certificate configured a self-signed one is generated at
/// bind time (ring provider) for `self_signed_names`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. Must be set together with `key_path`.
    pub cert_path: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: Option<PathBuf>,
    /// Subject alternative names of the generated certificate (DNS names or IP literals).
    pub self_signed_names: Vec<String>,
    /// Extra PEM CA files trusted when we connect out over TLS. Our own certificate is always
    /// trusted too, so nodes sharing one certificate can talk to each other.
    pub extra_ca_paths: Vec<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_path: None,
            key_path: None,
            self_signed_names: vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ],
            extra_ca_paths: Vec::new(),
        }
    }
}

/// Limits and timeouts. Every queue in the crate is bounded by one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open TCP+TLS connections allowed from one source IP address.
    pub max_connections_per_source: usize,
    /// Open TCP+TLS connections allowed in total (inbound and outbound).
    pub max_connections: usize,
    /// A connection with no traffic in either direction for this long is closed. CRLF
    /// keep-alives (RFC 5626 §4.4.1) count as traffic.
    pub idle_timeout: Duration,
    /// Time allowed for a TLS handshake on an accepted or opened connection.
    pub tls_handshake_timeout: Duration,
    /// Time allowed to open an outbound TCP connection (and its TLS handshake).
    pub connect_timeout: Duration,
    /// Largest SIP message accepted on a stream (headers + body); a larger one closes the
    /// connection.
    pub max_message_bytes: usize,
    /// Largest header section accepted on a stream before its blank line is seen.
    pub max_header_bytes: usize,
    /// Received messages waiting for the endpoint driver; UDP datagrams beyond it are dropped
    /// (and counted), stream readers wait (TCP back-pressure).
    pub inbound_queue: usize,
    /// Messages waiting to be written on one connection; beyond it a send fails with
    /// [`crate::SendError::QueueFull`].
    pub outbound_queue_per_connection: usize,
    /// Events waiting for the transaction user; beyond it new requests are answered 503.
    pub tu_queue: usize,
    /// Commands (responses, requests) waiting for the endpoint driver.
    pub command_queue: usize,
    /// SO_RCVBUF for UDP sockets; `None` keeps the OS default.
    pub udp_recv_buffer_bytes: Option<usize>,
    /// listen(2) backlog for TCP/TLS listeners.
    pub tcp_backlog: i32,
    /// On shutdown, how long in-flight transactions may run before the driver stops.
    pub shutdown_grace: Duration,
    /// Load shedding: a new request that waited longer than this in the inbound queue, with
    /// more messages still queued behind it (a backlog, not a scheduling hiccup), is
    /// answered `503 Service Unavailable` with `Retry-After` ([`Self::shed_retry_after`])
    /// instead of being processed. Past saturation the oldest work goes first and cheaply,
    /// so the requests that are processed are answered before their senders retransmit
    /// (T1 = 500 ms), and the successful rate stays near capacity instead of collapsing
    /// into retransmissions. Responses and retransmissions of live transactions are always
    /// processed. `None` disables shedding.
    pub shed_after: Option<Duration>,
    /// The `Retry-After` of a shed request, in seconds.
    pub shed_retry_after: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections_per_source: 32,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            tls_handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            inbound_queue: 4096,
            outbound_queue_per_connection: 256,
            tu_queue: 1024,
            command_queue: 1024,
            udp_recv_buffer_bytes: Some(1 << 20),
            tcp_backlog: 1024,
            shutdown_grace: Duration::from_secs(5),
            shed_after: Some(Duration::from_millis(200)),
            shed_retry_after: 5,
        }
    }
}

/// Everything needed to bind the transports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportConfig {
    /// Listening sockets; UDP and TCP usually share an address, TLS uses its own port.
    pub listeners: Vec<ListenerConfig>,
    /// TLS identity, used when any listener is TLS or when connecting out over TLS.
    pub tls: TlsConfig,
    /// Limits and timeouts.
    pub limits: Limits,
}

impl TransportConfig {
    /// A config with the given listeners and default TLS settings and limits.
    #[must_use]
    pub fn with_listeners(listeners: Vec<ListenerConfig>) -> Self {
        Self {
            listeners,
            ..Self::default()
        }
    }
}
