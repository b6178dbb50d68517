//! Binding the listeners, accepting connections, and the `send` API (connection reuse).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rustls_pki_types::CertificateDer;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Inbound;
use crate::admission::{AdmitAll, FilterRef, SourceFilter};
use crate::config::{Limits, ListenerConfig, TransportConfig};
use crate::connection::Connections;
use crate::error::{BindError, SendError};
use crate::flow::{ConnectionId, Flow, Transport};
use crate::{socket, stream, tls, udp};

/// Counters of traffic the transports dropped (read with [`TransportHandle::stats`]).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) dropped_banned: AtomicU64,
    pub(crate) dropped_overload: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) shed: AtomicU64,
    /// Messages handed to the driver, by transport (UDP, TCP, TLS).
    pub(crate) received: [AtomicU64; 3],
    /// `sendmmsg` calls and the datagrams they sent.
    pub(crate) batches_sent: AtomicU64,
    pub(crate) datagrams_batched: AtomicU64,
}

/// A snapshot of the transport counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Datagrams dropped and connections closed because the source filter refused them.
    pub dropped_banned: u64,
    /// Datagrams dropped because the inbound queue was full.
    pub dropped_overload: u64,
    /// Connections refused by the per-source or total limit.
    pub connections_refused: u64,
    /// New requests answered 503 because they waited too long in the inbound queue
    /// ([`crate::Limits::shed_after`]).
    pub shed: u64,
    /// Currently open TCP/TLS connections.
    pub open_connections: usize,
    /// Messages (datagrams, stream frames) handed to the endpoint driver: UDP, TCP, TLS.
    pub messages_received: [u64; 3],
    /// UDP send batches (one `sendmmsg` each) and the datagrams they carried; datagrams
    /// sent alone are not counted.
    pub batches_sent: u64,
    pub datagrams_batched: u64,
}

/// State shared by the listener tasks, the connection tasks and the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) filter: FilterRef,
    pub(crate) inbound: mpsc::Sender<Inbound>,
    /// Flows of TCP/TLS connections that closed, for the driver's
    /// [`crate::TransactionUser::on_flow_closed`].
    pub(crate) closed: mpsc::Sender<Flow>,
    /// Cancelled to stop everything (connections, UDP loops).
    pub(crate) shutdown: CancellationToken,
    /// Cancelled to stop accepting new connections (first phase of a graceful shutdown).
    pub(crate) accepting: CancellationToken,
    pub(crate) connections: Connections,
    pub(crate) stats: Stats,
    pub(crate) tasks: TaskTracker,
    pub(crate) udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    pub(crate) tls_server: Option<Arc<rustls::ServerConfig>>,
    pub(crate) tls_client: Option<Arc<rustls::ClientConfig>>,
    tls_certificate: Option<CertificateDer<'static>>,
}

/// The configured transports, not yet bound.
#[derive(Debug)]
pub struct Transports {
    config: TransportConfig,
    filter: FilterRef,
}

impl Transports {
    /// Transports for `config`, admitting every source.
    #[must_use]
    pub fn new(config: TransportConfig) -> Self {
        Self {
            config,
            filter: FilterRef(Arc::new(AdmitAll)),
        }
    }

    /// Install the source-admission hook (bans), checked before parsing and on accept.
    #[must_use]
    pub fn with_source_filter(mut self, filter: impl SourceFilter) -> Self {
        self.filter = FilterRef(Arc::new(filter));
        self
    }

    /// Bind every listener and start receiving. Port 0 binds a free port; the bound
    /// addresses are in [`BoundTransports::local_addrs`].
    ///
    /// # Errors
    /// [`BindError`] when a socket cannot be bound or the TLS identity cannot be set up.
    pub async fn bind(self) -> Result<BoundTransports, BindError> {
        let Self { config, filter } = self;
        if config.listeners.is_empty() {
            return Err(BindError::NoListeners);
        }
        let limits = config.limits;
        let wants_tls = config
            .listeners
            .iter()
            .any(|l| l.transport == Transport::Tls);
        let (tls_server, tls_client, tls_certificate) = if wants_tls {
            let identity = tls::TlsIdentity::from_config(&config.tls)?;
            if identity.self_signed {
                tracing::warn!("no TLS certificate configured, using a generated self-signed one");
            }
            let server = tls::server_config(&identity)?;
            let client = tls::client_config(&identity, &config.tls)?;
            (Some(server), Some(client), identity.chain.first().cloned())
        } else {
            (None, None, None)
        };

        let mut bound = Vec::new();
        let mut udp_sockets = Vec::new();
        let mut tcp_listeners = Vec::new();
        for listener in &config.listeners {
            let socket_error = |source| BindError::Socket {
                transport: listener.transport,
                addr: listener.addr,
                source,
            };
            match listener.transport {
                Transport::Udp => {
                    let socket = socket::bind_udp(listener.addr, limits.udp_recv_buffer_bytes)
                        .map_err(socket_error)?;
                    let local = socket.local_addr().map_err(socket_error)?;
                    udp_sockets.push((local, Arc::new(socket)));
                    bound.push(ListenerConfig::new(Transport::Udp, local));
                }
                transport => {
                    let listener = socket::bind_tcp(listener.addr, limits.tcp_backlog)
                        .map_err(socket_error)?;
                    let local = listener.local_addr().map_err(socket_error)?;
                    tcp_listeners.push((transport, local, listener));
                    bound.push(ListenerConfig::new(transport, local));
                }
            }
        }

        let (inbound_tx, inbound_rx) = mpsc::channel(limits.inbound_queue.max(1));
        // One message per closed connection; sized so that every open connection closing at
        // once still fits.
        let (closed_tx, closed_rx) = mpsc::channel(limits.max_connections.clamp(1, 65_536));
        let shared = Arc::new(Shared {
            limits,
            filter,
            inbound: inbound_tx,
            closed: closed_tx,
            shutdown: CancellationToken::new(),
            accepting: CancellationToken::new(),
            connections: Connections::new(
                limits.max_connections_per_source,
                limits.max_connections,
            ),
            stats: Stats::default(),
            tasks: TaskTracker::new(),
            udp: udp_sockets.clone(),
            tls_server,
            tls_client,
            tls_certificate,
        });
        for (local, socket) in udp_sockets {
            shared
                .tasks
                .spawn(udp::receive_loop(socket, local, Arc::clone(&shared)));
        }
        for (transport, local, listener) in tcp_listeners {
            shared.tasks.spawn(stream::accept_loop(
                listener,
                transport,
                local,
                Arc::clone(&shared),
            ));
        }
        for listener in &bound {
            tracing::info!(transport = %listener.transport, addr = %listener.addr, "SIP listener bound");
        }
        let handle = TransportHandle {
            shared,
            listeners: Arc::new(bound),
        };
        Ok(BoundTransports {
            handle,
            inbound: inbound_rx,
            closed: closed_rx,
        })
    }
}

/// Bound, running transports: a handle to send with and the queue of received messages.
#[derive(Debug)]
pub struct BoundTransports {
    handle: TransportHandle,
    inbound: mpsc::Receiver<Inbound>,
    closed: mpsc::Receiver<Flow>,
}

impl BoundTransports {
    /// The bound listeners, with real ports.
    #[must_use]
    pub fn local_addrs(&self) -> &[ListenerConfig] {
        self.handle.local_addrs()
    }

    /// A handle for sending and control.
    #[must_use]
    pub fn handle(&self) -> TransportHandle {
        self.handle.clone()
    }

    /// Split into the handle and the inbound queue (what the endpoint driver consumes).
    #[must_use]
    pub fn into_parts(self) -> (TransportHandle, mpsc::Receiver<Inbound>) {
        (self.handle, self.inbound)
    }

    /// [`Self::into_parts`] plus the queue of closed connection flows (the driver's).
    pub(crate) fn into_driver_parts(
        self,
    ) -> (
        TransportHandle,
        mpsc::Receiver<Inbound>,
        mpsc::Receiver<Flow>,
    ) {
        (self.handle, self.inbound, self.closed)
    }
}

/// Cheap, cloneable handle to the running transports.
#[derive(Debug, Clone)]
pub struct TransportHandle {
    pub(crate) shared: Arc<Shared>,
    listeners: Arc<Vec<ListenerConfig>>,
}

impl TransportHandle {
    /// The bound listeners, with real ports.
    #[must_use]
    pub fn local_addrs(&self) -> &[ListenerConfig] {
        &self.listeners
    }

    /// The bound address of the first listener of `transport` in the family of `ipv6`.
    #[must_use]
    pub fn local_addr(&self, transport: Transport, ipv6: bool) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.transport == transport && l.addr.is_ipv6() == ipv6)
            .map(|l| l.addr)
    }

    /// The TLS server certificate (leaf), when a TLS listener exists; a client that must
    /// trust a self-signed certificate uses it as its root.
    #[must_use]
    pub fn tls_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.shared.tls_certificate.as_ref()
    }

    /// Counters of dropped traffic and open connections.
    #[must_use]
    pub fn stats(&self) -> TransportStats {
        let stats = &self.shared.stats;
        TransportStats {
            dropped_banned: stats.dropped_banned.load(Ordering::Relaxed),
            dropped_overload: stats.dropped_overload.load(Ordering::Relaxed),
            connections_refused: stats.connections_refused.load(Ordering::Relaxed),
            shed: stats.shed.load(Ordering::Relaxed),
            open_connections: self.shared.connections.len(),
            messages_received: stats.received.each_ref().map(|c| c.load(Ordering::Relaxed)),
            batches_sent: stats.batches_sent.load(Ordering::Relaxed),
            datagrams_batched: stats.datagrams_batched.load(Ordering::Relaxed),
        }
    }

    /// Open connections from one source IP (inbound).
    #[must_use]
    pub fn connections_from(&self, ip: std::net::IpAddr) -> usize {
        self.shared.connections.count_from(ip)
    }

    /// Queue `bytes` on connection `id` (the flow a message arrived on).
    ///
    /// # Errors
    /// `ConnectionClosed` or `QueueFull`.
    pub fn send_on_connection(&self, id: ConnectionId, bytes: Bytes) -> Result<Flow, SendError> {
        self.shared.connections.send_on(id, bytes)
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    /// Install `entries` as the kernel drop set of every UDP listener (a classic BPF socket
    /// filter, see [`crate::kernel_drop`]), replacing the previous set atomically; an empty
    /// set removes the filter. Entries are taken in order while the program stays within
    /// `max_instructions`; returns how many were installed (the rest are still dropped by
    /// the userspace [`SourceFilter`]).
    ///
    /// # Errors
    /// The socket option failed, or the platform has no socket filters (not Linux).
    pub fn set_kernel_drop_set(
        &self,
        entries: &[crate::kernel_drop::DropEntry],
        max_instructions: usize,
    ) -> std::io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            let program = crate::kernel_drop::program(entries, max_instructions);
            let filter = crate::kernel_drop::to_sock_filter(&program);
            for (local, socket) in &self.shared.udp {
                let socket = socket2::SockRef::from(socket.as_ref());
                if program.entries == 0 {
                    // ENOENT when no filter is attached: nothing to remove.
                    if let Err(error) = socket.detach_filter()
                        && error.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(%local, %error, "cannot remove the kernel drop set");
                        return Err(error);
                    }
                } else {
                    socket.attach_filter(&filter)?;
                }
            }
            Ok(program.entries)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (entries, max_instructions);
            Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
        }
    }

    /// Datagrams the kernel dropped on the UDP listeners since they were bound: the kernel
    /// drop set's drops plus receive-buffer overflows (the sockets' `drops` counter in
    /// `/proc/net/udp` and `/proc/net/udp6`). `None` where the platform does not tell.
    #[must_use]
    pub fn udp_kernel_drops(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            use std::os::unix::fs::MetadataExt;
            let inodes: Vec<u64> = self
                .shared
                .udp
                .iter()
                .filter_map(|(_, socket)| {
                    let fd = socket.as_raw_fd();
                    std::fs::metadata(format!("/proc/self/fd/{fd}"))
                        .ok()
                        .map(|m| m.ino())
                })
                .collect();
            let mut total = 0u64;
            let mut found = 0usize;
            for table in ["/proc/net/udp", "/proc/net/udp6"] {
                let Ok(text) = std::fs::read_to_string(table) else {
                    continue;
                };
                for line in text.lines().skip(1) {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref ptr drops
                    let inode = fields.get(9).and_then(|f| f.parse::<u64>().ok());
                    let drops = fields.last().and_then(|f| f.parse::<u64>().ok());
                    if let (Some(inode), Some(drops)) = (inode, drops)
                        && inodes.contains(&inode)
                    {
                        total += drops;
                        found += 1;
                    }
                }
            }
            (found > 0).then_some(total)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Stop accepting new connections; UDP and open connections keep running.
    pub fn stop_accepting(&self) {
        self.shared.accepting.cancel();
    }

    /// Stop everything: listeners, UDP loops and connections.
    pub fn shutdown(&self) {
        self.shared.accepting.cancel();
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
    }

    /// Wait until every transport task has ended (after [`Self::shutdown`]).
    pub async fn wait_closed(&self) {
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}
