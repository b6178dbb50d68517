//! TCP and TLS connections: the accept loop, outbound connects, and the task of one
//! connection (reads frames into the inbound queue, writes queued messages, answers CRLF
//! keep-alive pings per RFC 5626 §4.4.1, closes when idle).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pbx_sip::framing::{Frame, FramingError, Side, StreamDecoder};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::Inbound;
use crate::connection::{ConnectionGuard, ConnectionLimit};
use crate::error::SendError;
use crate::flow::{Flow, Transport};
use crate::transports::Shared;
use crate::{socket, telemetry};

pub(crate) async fn accept_loop(
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
                let label = match limit {
                    ConnectionLimit::PerSource(_) => "per_source",
                    _ => "total",
                };
                telemetry::connection_refused(transport, label);
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
    run_connection(
        stream,
        flow,
        Arc::clone(&shared),
        receiver,
        guard,
        Side::Inbound,
    )
    .await;
}

/// Open an outbound connection, register it and spawn its task; returns its flow.
pub(crate) async fn connect(
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
            shared.tasks.spawn(run_connection(
                tls,
                flow,
                task_shared,
                receiver,
                guard,
                Side::Outbound,
            ));
        }
        _ => {
            shared.connections.establish(flow, sender);
            let task_shared = Arc::clone(shared);
            shared.tasks.spawn(run_connection(
                stream,
                flow,
                task_shared,
                receiver,
                guard,
                Side::Outbound,
            ));
        }
    }
    tracing::debug!(%flow, "outbound connection open");
    Ok(flow)
}

/// Why a connection ended (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    PeerClosed,
    Idle,
    Framing,
    ReadError,
    WriteError,
    Banned,
    Shutdown,
    DriverGone,
}

impl CloseReason {
    fn label(self) -> &'static str {
        match self {
            Self::PeerClosed => "peer_closed",
            Self::Idle => "idle",
            Self::Framing => "framing",
            Self::ReadError => "read_error",
            Self::WriteError => "write_error",
            Self::Banned => "banned",
            Self::Shutdown => "shutdown",
            Self::DriverGone => "driver_gone",
        }
    }
}

/// Drive one established connection until it closes. `guard` keeps its table slot.
pub(crate) async fn run_connection<S>(
    mut stream: S,
    flow: Flow,
    shared: Arc<Shared>,
    mut outbound: mpsc::Receiver<Bytes>,
    guard: ConnectionGuard,
    side: Side,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = shared.limits;
    let mut framer = StreamDecoder::for_side(side, decoder_limits(&limits));
    let mut buffer = BytesMut::with_capacity(4096);
    let idle = limits.idle_timeout;
    let mut deadline = Instant::now() + idle;
    tracing::debug!(%flow, "connection open");
    let reason = loop {
        tokio::select! {
            read = stream.read_buf(&mut buffer) => {
                match read {
                    Ok(0) => break CloseReason::PeerClosed,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%flow, %error, "read failed");
                        break CloseReason::ReadError;
                    }
                }
                deadline = Instant::now() + idle;
                if !shared.filter.0.admit(flow.remote, flow.transport) {
                    break CloseReason::Banned;
                }
                if let Some(reason) =
                    drain_frames(&mut framer, &mut buffer, &mut stream, flow, &shared).await
                {
                    break reason;
                }
            }
            message = outbound.recv() => {
                let Some(message) = message else { break CloseReason::DriverGone };
                if let Err(error) = write(&mut stream, &message, limits.idle_timeout).await {
                    tracing::debug!(%flow, %error, "write failed");
                    break CloseReason::WriteError;
                }
                deadline = Instant::now() + idle;
            }
            () = tokio::time::sleep_until(deadline) => break CloseReason::Idle,
            () = shared.shutdown.cancelled() => break CloseReason::Shutdown,
        }
    };
    // Flush what the driver already queued (a final response on shutdown) before closing.
    if matches!(reason, CloseReason::Shutdown | CloseReason::PeerClosed) {
        while let Ok(message) = outbound.try_recv() {
            if write(&mut stream, &message, Duration::from_secs(1))
                .await
                .is_err()
            {
                break;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    tracing::info!(%flow, reason = reason.label(), "connection closed");
    telemetry::connection_closed(flow.transport, reason.label());
    drop(guard);
    // Tell the TU (a registrar drops the flow's bindings). Not at shutdown: bindings are
    // kept for the restart, and the driver is going away.
    if !matches!(reason, CloseReason::Shutdown | CloseReason::DriverGone)
        && shared.closed.try_send(flow).is_err()
    {
        tracing::debug!(%flow, "closed-flow queue full; the TU's keep-alive will notice");
    }
}

async fn drain_frames<S>(
    framer: &mut StreamDecoder,
    buffer: &mut BytesMut,
    stream: &mut S,
    flow: Flow,
    shared: &Shared,
) -> Option<CloseReason>
where
    S: AsyncWrite + Unpin,
{
    loop {
        match framer.decode(buffer) {
            Ok(None) => return None,
            Ok(Some(Frame::KeepAlivePing)) => {
                tracing::trace!(%flow, "CRLF keep-alive ping, sending pong");
                if write(stream, b"\r\n", shared.limits.idle_timeout)
                    .await
                    .is_err()
                {
                    return Some(CloseReason::WriteError);
                }
            }
            Ok(Some(Frame::KeepAlivePong)) => {}
            Ok(Some(Frame::Message(data))) => {
                let inbound = Inbound {
                    flow,
                    data,
                    received: Instant::now().into_std(),
                };
                // Back-pressure: a slow driver slows the reading of this connection only.
                tokio::select! {
                    sent = shared.inbound.send(inbound) => {
                        if sent.is_err() {
                            return Some(CloseReason::DriverGone);
                        }
                        telemetry::message_received(&shared.stats, flow.transport);
                    }
                    () = shared.shutdown.cancelled() => return Some(CloseReason::Shutdown),
                }
            }
            Err(error) => {
                log_framing_error(flow, &error);
                return Some(CloseReason::Framing);
            }
        }
    }
}

async fn write<S>(stream: &mut S, bytes: &[u8], timeout: Duration) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let written = tokio::time::timeout(timeout, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await;
    written.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

fn log_framing_error(flow: Flow, error: &FramingError) {
    // The stream position is lost: nothing can be answered reliably, the connection closes.
    tracing::info!(%flow, %error, status = error.status().0, "stream framing error, closing");
}

/// pbx-sip's framing limits from ours.
fn decoder_limits(limits: &crate::config::Limits) -> pbx_sip::Limits {
    pbx_sip::Limits {
        max_message_size: limits.max_message_bytes,
        max_header_block: limits.max_header_bytes,
        max_body_size: limits.max_message_bytes,
        ..pbx_sip::Limits::DEFAULT
    }
}
