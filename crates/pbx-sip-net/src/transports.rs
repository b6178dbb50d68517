//! Binding the listeners, accepting connections, and the `send` API (connection reuse).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Inbound;
use crate::admission::{AdmitAll, FilterRef, SourceFilter};
use crate::config::{Limits, ListenerConfig, TransportConfig};
use crate::connection::{ConnectionGuard, Connections};
use crate::error::{BindError, SendError};
use crate::flow::{Destination, Flow, Transport};
use crate::{socket, stream, tls, udp};

/// Counters of traffic the transports dropped (read with [`TransportHandle::stats`]).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) dropped_banned: AtomicU64,
    pub(crate) dropped_overload: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
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
    /// Currently open TCP/TLS connections.
    pub open_connections: usize,
}

/// State shared by the listener tasks, the connection tasks and the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) filter: FilterRef,
    pub(crate) inbound: mpsc::Sender<Inbound>,
    /// Cancelled to stop everything (connections, UDP loops).
    pub(crate) shutdown: CancellationToken,
    /// Cancelled to stop accepting new connections (first phase of a graceful shutdown).
    pub(crate) accepting: CancellationToken,
    pub(crate) connections: Connections,
    pub(crate) stats: Stats,
    pub(crate) tasks: TaskTracker,
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    tls_server: Option<Arc<rustls::ServerConfig>>,
    tls_client: Option<Arc<rustls::ClientConfig>>,
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
        let shared = Arc::new(Shared {
            limits,
            filter,
            inbound: inbound_tx,
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
            shared
                .tasks
                .spawn(accept_loop(listener, transport, local, Arc::clone(&shared)));
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
        })
    }
}

/// Bound, running transports: a handle to send with and the queue of received messages.
#[derive(Debug)]
pub struct BoundTransports {
    handle: TransportHandle,
    inbound: mpsc::Receiver<Inbound>,
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
}

/// Cheap, cloneable handle to the running transports.
#[derive(Debug, Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
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
            open_connections: self.shared.connections.len(),
        }
    }

    /// Open connections from one source IP (inbound).
    #[must_use]
    pub fn connections_from(&self, ip: std::net::IpAddr) -> usize {
        self.shared.connections.from_source(ip)
    }

    /// Send `bytes` (one complete SIP message) to `destination`. A flow is used as is; an
    /// address reuses an open connection to it, or opens one (TCP/TLS). Returns the flow used.
    ///
    /// # Errors
    /// [`SendError`] when the connection is closed or congested, no socket fits, or opening a
    /// connection fails.
    pub async fn send(
        &self,
        destination: impl Into<Destination>,
        bytes: Bytes,
    ) -> Result<Flow, SendError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(SendError::ShuttingDown);
        }
        match destination.into() {
            Destination::Flow(flow) => match (flow.transport, flow.connection) {
                (Transport::Udp, _) => {
                    self.send_datagram(Some(flow.local), flow.remote, bytes)
                        .await
                }
                (_, Some(id)) => self.shared.connections.send_on(id, bytes),
                (transport, None) => self.send_stream(transport, flow.remote, bytes).await,
            },
            Destination::Address {
                transport: Transport::Udp,
                addr,
            } => self.send_datagram(None, addr, bytes).await,
            Destination::Address { transport, addr } => {
                self.send_stream(transport, addr, bytes).await
            }
        }
    }

    /// Whether sending to `destination` would need a new connection (so the caller may want
    /// to do it off its hot loop).
    #[must_use]
    pub fn needs_connect(&self, destination: &Destination) -> bool {
        match destination {
            Destination::Flow(_)
            | Destination::Address {
                transport: Transport::Udp,
                ..
            } => false,
            Destination::Address { transport, addr } => {
                !self.shared.connections.has_peer(*transport, *addr)
            }
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

    async fn send_datagram(
        &self,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        bytes: Bytes,
    ) -> Result<Flow, SendError> {
        let udp = &self.shared.udp;
        let socket = local
            .and_then(|local| udp.iter().find(|(addr, _)| *addr == local))
            .or_else(|| {
                udp.iter().find(|(addr, _)| {
                    addr.is_ipv6() == remote.is_ipv6()
                        && (addr.ip().is_unspecified()
                            || addr.ip().is_loopback() == remote.ip().is_loopback())
                })
            })
            .or_else(|| {
                udp.iter()
                    .find(|(addr, _)| addr.is_ipv6() == remote.is_ipv6())
            });
        let Some((local, socket)) = socket else {
            return Err(SendError::NoSocket {
                transport: Transport::Udp,
                addr: remote,
            });
        };
        let sent = tokio::time::timeout(Duration::from_secs(1), socket.send_to(&bytes, remote))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        sent.map_err(|source| SendError::Datagram {
            addr: remote,
            source,
        })?;
        Ok(Flow {
            transport: Transport::Udp,
            remote,
            local: *local,
            connection: None,
        })
    }

    async fn send_stream(
        &self,
        transport: Transport,
        remote: SocketAddr,
        bytes: Bytes,
    ) -> Result<Flow, SendError> {
        if let Some(sent) = self
            .shared
            .connections
            .send_to_peer(transport, remote, bytes.clone())
        {
            return sent;
        }
        let flow = connect(&self.shared, transport, remote).await?;
        let Some(id) = flow.connection else {
            return Err(SendError::NoSocket {
                transport,
                addr: remote,
            });
        };
        self.shared.connections.send_on(id, bytes)
    }
}

async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    listen_addr: SocketAddr,
    shared: Arc<Shared>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.accepting.cancelled() => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%listen_addr, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !shared.filter.0.admit(remote, transport) {
            shared.stats.dropped_banned.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%remote, %transport, "connection from refused source closed");
            continue;
        }
        let guard = match shared.connections.reserve(transport, remote, true) {
            Ok(guard) => guard,
            Err(limit) => {
                shared
                    .stats
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(%remote, %transport, %limit, "connection refused");
                continue;
            }
        };
        socket::tune_stream(&stream);
        let local = stream.local_addr().unwrap_or(listen_addr);
        let flow = Flow {
            transport,
            remote,
            local,
            connection: Some(guard.id()),
        };
        let task_shared = Arc::clone(&shared);
        shared.tasks.spawn(async move {
            let shared = task_shared;
            if transport == Transport::Tls {
                let Some(server) = shared.tls_server.clone() else {
                    return;
                };
                let acceptor = TlsAcceptor::from(server);
                let timeout = shared.limits.tls_handshake_timeout;
                match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => start(tls, flow, shared, guard).await,
                    Ok(Err(error)) => tracing::info!(%flow, %error, "TLS handshake failed"),
                    Err(_) => tracing::info!(%flow, "TLS handshake timed out"),
                }
            } else {
                start(stream, flow, shared, guard).await;
            }
        });
    }
    tracing::debug!(%listen_addr, %transport, "accept loop stopped");
}

/// Register an established connection and run it to its end.
async fn start<S>(stream: S, flow: Flow, shared: Arc<Shared>, guard: ConnectionGuard)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (sender, receiver) = mpsc::channel(shared.limits.outbound_queue_per_connection.max(1));
    shared.connections.establish(flow, sender);
    stream::run_connection(stream, flow, Arc::clone(&shared), receiver, guard).await;
}

/// Open an outbound connection, register it and spawn its task; returns its flow.
async fn connect(
    shared: &Arc<Shared>,
    transport: Transport,
    remote: SocketAddr,
) -> Result<Flow, SendError> {
    let guard = shared
        .connections
        .reserve(transport, remote, false)
        .map_err(|_| SendError::TooManyConnections)?;
    let connect_error = |source| SendError::Connect {
        transport,
        addr: remote,
        source,
    };
    let timeout = shared.limits.connect_timeout;
    let stream = tokio::time::timeout(timeout, TcpStream::connect(remote))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        .map_err(connect_error)?;
    socket::tune_stream(&stream);
    let local = stream.local_addr().map_err(connect_error)?;
    let flow = Flow {
        transport,
        remote,
        local,
        connection: Some(guard.id()),
    };
    let (sender, receiver) = mpsc::channel(shared.limits.outbound_queue_per_connection.max(1));
    match transport {
        Transport::Tls => {
            let Some(connector) = shared.tls_client.clone().map(TlsConnector::from) else {
                return Err(SendError::NoSocket {
                    transport,
                    addr: remote,
                });
            };
            let name = ServerName::IpAddress(remote.ip().into());
            let tls = tokio::time::timeout(timeout, connector.connect(name, stream))
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
                .map_err(connect_error)?;
            shared.connections.establish(flow, sender);
            let task_shared = Arc::clone(shared);
            shared.tasks.spawn(stream::run_connection(
                tls,
                flow,
                task_shared,
                receiver,
                guard,
            ));
        }
        _ => {
            shared.connections.establish(flow, sender);
            let task_shared = Arc::clone(shared);
            shared.tasks.spawn(stream::run_connection(
                stream,
                flow,
                task_shared,
                receiver,
                guard,
            ));
        }
    }
    tracing::debug!(%flow, "outbound connection open");
    Ok(flow)
}
