//! One TCP or TLS connection: reads frames into the inbound queue, writes queued messages,
//! answers CRLF keep-alive pings (RFC 5626 §4.4.1), closes when idle.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Inbound;
use crate::connection::ConnectionGuard;
use crate::flow::Flow;
use crate::framing::{Frame, FramingError, StreamFramer};
use crate::transports::Shared;

/// Why a connection ended (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    PeerClosed,
    Idle,
    Framing(FramingError),
    ReadError,
    WriteError,
    Banned,
    Shutdown,
    DriverGone,
}

/// Drive one established connection until it closes. `guard` keeps its table slot.
pub(crate) async fn run_connection<S>(
    mut stream: S,
    flow: Flow,
    shared: Arc<Shared>,
    mut outbound: mpsc::Receiver<Bytes>,
    guard: ConnectionGuard,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = shared.limits;
    let mut framer = StreamFramer::new(limits.max_header_bytes, limits.max_message_bytes);
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
    tracing::info!(%flow, reason = ?reason, "connection closed");
    drop(guard);
}

async fn drain_frames<S>(
    framer: &mut StreamFramer,
    buffer: &mut BytesMut,
    stream: &mut S,
    flow: Flow,
    shared: &Shared,
) -> Option<CloseReason>
where
    S: AsyncWrite + Unpin,
{
    loop {
        match framer.next_frame(buffer) {
            Ok(None) => return None,
            Ok(Some(Frame::Ping)) => {
                tracing::trace!(%flow, "CRLF keep-alive ping, sending pong");
                if write(stream, b"\r\n", shared.limits.idle_timeout)
                    .await
                    .is_err()
                {
                    return Some(CloseReason::WriteError);
                }
            }
            Ok(Some(Frame::Pong)) => {}
            Ok(Some(Frame::Message(data))) => {
                let inbound = Inbound { flow, data };
                // Back-pressure: a slow driver slows the reading of this connection only.
                tokio::select! {
                    sent = shared.inbound.send(inbound) => {
                        if sent.is_err() {
                            return Some(CloseReason::DriverGone);
                        }
                    }
                    () = shared.shutdown.cancelled() => return Some(CloseReason::Shutdown),
                }
            }
            Err(error) => {
                tracing::info!(%flow, %error, "stream framing error");
                return Some(CloseReason::Framing(error));
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
