//! The UDP receive loop of one socket.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;

use crate::Inbound;
use crate::flow::{Flow, Transport};
use crate::telemetry;
use crate::transports::Shared;

/// Largest UDP payload plus one, so an oversized datagram is noticed rather than cut.
const RECV_BUFFER: usize = 65_536;

/// Receive datagrams until shutdown. Banned sources and keep-alive datagrams are dropped
/// before any parsing; when the inbound queue is full the datagram is dropped and counted
/// (UDP has no back-pressure; the sender retransmits).
pub(crate) async fn receive_loop(
    socket: Arc<UdpSocket>,
    local: std::net::SocketAddr,
    shared: Arc<Shared>,
) {
    let mut buffer = vec![0u8; RECV_BUFFER];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            () = shared.shutdown.cancelled() => break,
        };
        let (len, remote) = match received {
            Ok(received) => received,
            Err(error) => {
                // ICMP port-unreachable from an earlier send surfaces here on some OSes.
                tracing::debug!(%local, %error, "UDP receive error");
                continue;
            }
        };
        if !shared.filter.0.admit(remote, Transport::Udp) {
            shared.stats.dropped_banned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Some(datagram) = buffer.get(..len) else {
            continue;
        };
        if datagram
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            // Keep-alive (CRLF, or a NAT refresh of a few NULs): nothing to parse.
            continue;
        }
        let flow = Flow {
            transport: Transport::Udp,
            remote,
            local,
            connection: None,
        };
        let inbound = Inbound {
            flow,
            data: Bytes::copy_from_slice(datagram),
            received: tokio::time::Instant::now().into_std(),
        };
        match shared.inbound.try_send(inbound) {
            Ok(()) => telemetry::message_received(&shared.stats, Transport::Udp),
            Err(TrySendError::Full(_)) => {
                let dropped = shared
                    .stats
                    .dropped_overload
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                // Logged at 1, 2, 4, 8, … drops so a flood cannot flood the log too.
                if dropped.is_power_of_two() {
                    tracing::warn!(%remote, dropped, "inbound queue full, datagram dropped");
                }
            }
            Err(TrySendError::Closed(_)) => break,
        }
    }
    tracing::debug!(%local, "UDP receive loop stopped");
}
