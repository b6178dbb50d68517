//! Sending: `TransportHandle::send` / `try_send`, with connection reuse (RFC 3261 §18.1,
//! RFC 5923-style reuse of a connection the peer opened) and UDP socket choice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;

use crate::error::SendError;
use crate::flow::{Destination, Flow, Transport};
use crate::stream;
use crate::transports::TransportHandle;

impl TransportHandle {
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

    /// Send without waiting: UDP datagrams are sent only if the socket is writable now, stream
    /// messages are queued on an open connection. Fails with [`SendError::NoConnection`]
    /// when a connection would have to be opened (use [`Self::send`] for that).
    ///
    /// # Errors
    /// [`SendError`] as for [`Self::send`], plus `NoConnection` and a `Datagram` error with
    /// `WouldBlock` when the UDP socket buffer is full.
    pub fn try_send(
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
                    self.try_send_datagram(Some(flow.local), flow.remote, &bytes)
                }
                (_, Some(id)) => self.shared.connections.send_on(id, bytes),
                (transport, None) => self.try_send_stream(transport, flow.remote, bytes),
            },
            Destination::Address {
                transport: Transport::Udp,
                addr,
            } => self.try_send_datagram(None, addr, &bytes),
            Destination::Address { transport, addr } => {
                self.try_send_stream(transport, addr, bytes)
            }
        }
    }

    fn try_send_stream(
        &self,
        transport: Transport,
        remote: SocketAddr,
        bytes: Bytes,
    ) -> Result<Flow, SendError> {
        self.shared
            .connections
            .send_to_peer(transport, remote, bytes)
            .unwrap_or(Err(SendError::NoConnection {
                transport,
                addr: remote,
            }))
    }

    fn try_send_datagram(
        &self,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        bytes: &[u8],
    ) -> Result<Flow, SendError> {
        let (local, socket) = self.udp_socket_for(local, remote)?;
        socket
            .try_send_to(bytes, remote)
            .map_err(|source| SendError::Datagram {
                addr: remote,
                source,
            })?;
        Ok(Flow {
            transport: Transport::Udp,
            remote,
            local,
            connection: None,
        })
    }

    /// Sends UDP datagrams `(remote, message)` in order with one `sendmmsg` from the socket
    /// that serves the first remote (as [`Self::try_send`] would pick it), as far as that same
    /// socket serves the ones after it. Returns how many were sent, counted from the first:
    /// 0 when the first could not be sent now (full buffer, no socket, shutting down, or an
    /// error of that message) — the caller then sends it alone, which reports why.
    pub(crate) fn try_send_datagram_batch(&self, batch: &[(SocketAddr, &[u8])]) -> usize {
        use rustix::net::addr::SocketAddrArg as _;
        use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags};
        use std::io::IoSlice;
        let Some(&(first, _)) = batch.first() else {
            return 0;
        };
        if self.shared.shutdown.is_cancelled() {
            return 0;
        }
        let Ok((_, socket)) = self.udp_socket_for(None, first) else {
            return 0;
        };
        let same = batch
            .iter()
            .take_while(|(remote, _)| {
                self.udp_socket_for(None, *remote)
                    .is_ok_and(|(_, other)| Arc::ptr_eq(other, socket))
            })
            .count();
        let batch = batch.get(..same).unwrap_or_default();
        let addrs: Vec<_> = batch.iter().map(|(remote, _)| remote.as_any()).collect();
        let slices: Vec<[IoSlice<'_>; 1]> = batch
            .iter()
            .map(|(_, message)| [IoSlice::new(message)])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = batch
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut messages: Vec<MMsgHdr<'_>> = addrs
            .iter()
            .zip(&slices)
            .zip(controls.iter_mut())
            .map(|((addr, slice), control)| MMsgHdr::new_with_addr(addr, slice, control))
            .collect();
        // `try_io` clears the socket's write readiness on WouldBlock, as `try_send_to` does.
        let sent = socket
            .try_io(tokio::io::Interest::WRITABLE, || {
                rustix::net::sendmmsg(&**socket, &mut messages, SendFlags::empty())
                    .map_err(std::io::Error::from)
            })
            .unwrap_or(0);
        if sent > 0 {
            let stats = &self.shared.stats;
            stats
                .batches_sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            stats
                .datagrams_batched
                .fetch_add(sent as u64, std::sync::atomic::Ordering::Relaxed);
        }
        sent
    }

    fn udp_socket_for(
        &self,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<(SocketAddr, &Arc<UdpSocket>), SendError> {
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
        socket
            .map(|(addr, socket)| (*addr, socket))
            .ok_or(SendError::NoSocket {
                transport: Transport::Udp,
                addr: remote,
            })
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
        let flow = stream::connect(&self.shared, transport, remote).await?;
        let Some(id) = flow.connection else {
            return Err(SendError::NoSocket {
                transport,
                addr: remote,
            });
        };
        self.shared.connections.send_on(id, bytes)
    }
}
