//! The connection table: every open TCP/TLS connection, indexed by id and by peer, with
//! per-source and total limits. Entries are removed by a guard that the connection task owns,
//! so a connection that ends in any way (error, idle, shutdown, panic) frees its slot.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::SendError;
use crate::flow::{ConnectionId, Flow, Transport};

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionLimit {
    /// The source IP address already has `max_connections_per_source` connections.
    #[error("too many connections from {0}")]
    PerSource(IpAddr),
    /// The table already holds `max_connections` connections.
    #[error("too many connections in total")]
    Total,
}

#[derive(Debug)]
struct Entry {
    transport: Transport,
    remote: SocketAddr,
    /// Counted against the remote IP's per-source limit (inbound connections only).
    inbound: bool,
    /// Set once the connection is established (after the TLS handshake).
    live: Option<(Flow, mpsc::Sender<Bytes>)>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    entries: HashMap<ConnectionId, Entry>,
    by_remote: HashMap<(Transport, SocketAddr), ConnectionId>,
    per_source: HashMap<IpAddr, usize>,
}

/// Shared, lock-protected connection table. Critical sections are a few map operations; no
/// lock is held across an await.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    table: Arc<Mutex<Table>>,
    max_per_source: usize,
    max_total: usize,
}

impl Connections {
    pub(crate) fn new(max_per_source: usize, max_total: usize) -> Self {
        Self {
            table: Arc::default(),
            max_per_source,
            max_total,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than refusing all traffic would; keep serving.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserve a slot for a connection with `remote`. Inbound connections count against the
    /// per-source limit. The returned guard frees the slot when dropped.
    pub(crate) fn reserve(
        &self,
        transport: Transport,
        remote: SocketAddr,
        inbound: bool,
    ) -> Result<ConnectionGuard, ConnectionLimit> {
        let mut table = self.lock();
        if table.entries.len() >= self.max_total {
            return Err(ConnectionLimit::Total);
        }
        if inbound {
            let count = table.per_source.entry(remote.ip()).or_insert(0);
            if *count >= self.max_per_source {
                return Err(ConnectionLimit::PerSource(remote.ip()));
            }
            *count += 1;
        }
        table.next_id += 1;
        let id = ConnectionId(table.next_id);
        table.entries.insert(
            id,
            Entry {
                transport,
                remote,
                inbound,
                live: None,
            },
        );
        Ok(ConnectionGuard {
            connections: self.clone(),
            id,
        })
    }

    /// Mark a reserved connection as established: it can now be found by id and by peer
    /// (the newest connection to a peer wins the peer index).
    pub(crate) fn establish(&self, flow: Flow, sender: mpsc::Sender<Bytes>) {
        let Some(id) = flow.connection else { return };
        let mut table = self.lock();
        let Some(entry) = table.entries.get_mut(&id) else {
            return;
        };
        entry.live = Some((flow, sender));
        table.by_remote.insert((flow.transport, flow.remote), id);
    }

    /// Queue `bytes` on connection `id`.
    pub(crate) fn send_on(&self, id: ConnectionId, bytes: Bytes) -> Result<Flow, SendError> {
        let (flow, sender) = {
            let table = self.lock();
            match table.entries.get(&id).and_then(|entry| entry.live.clone()) {
                Some(live) => live,
                None => return Err(SendError::ConnectionClosed(id)),
            }
        };
        queue(&sender, id, bytes)?;
        Ok(flow)
    }

    /// Queue `bytes` on an established connection to `remote`, if there is one.
    /// `None` means no connection exists (the caller opens one).
    pub(crate) fn send_to_peer(
        &self,
        transport: Transport,
        remote: SocketAddr,
        bytes: Bytes,
    ) -> Option<Result<Flow, SendError>> {
        let (id, flow, sender) = {
            let table = self.lock();
            let id = *table.by_remote.get(&(transport, remote))?;
            let (flow, sender) = table.entries.get(&id)?.live.clone()?;
            (id, flow, sender)
        };
        if sender.is_closed() {
            return None;
        }
        Some(queue(&sender, id, bytes).map(|()| flow))
    }

    /// Whether an established connection to `remote` exists.
    pub(crate) fn has_peer(&self, transport: Transport, remote: SocketAddr) -> bool {
        let table = self.lock();
        table
            .by_remote
            .get(&(transport, remote))
            .and_then(|id| table.entries.get(id))
            .is_some_and(|entry| entry.live.as_ref().is_some_and(|(_, tx)| !tx.is_closed()))
    }

    /// Open connections (established or handshaking).
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Open connections from (inbound) one source IP.
    pub(crate) fn count_from(&self, ip: IpAddr) -> usize {
        self.lock().per_source.get(&ip).copied().unwrap_or(0)
    }

    fn remove(&self, id: ConnectionId) {
        let mut table = self.lock();
        let Some(entry) = table.entries.remove(&id) else {
            return;
        };
        if table.by_remote.get(&(entry.transport, entry.remote)) == Some(&id) {
            table.by_remote.remove(&(entry.transport, entry.remote));
            // Another connection to the same peer may still be open: let it take over.
            let other = table
                .entries
                .iter()
                .filter(|(_, other)| {
                    other.transport == entry.transport
                        && other.remote == entry.remote
                        && other.live.is_some()
                })
                .map(|(other_id, _)| *other_id)
                .max();
            if let Some(other) = other {
                table
                    .by_remote
                    .insert((entry.transport, entry.remote), other);
            }
        }
        if entry.inbound
            && let Some(count) = table.per_source.get_mut(&entry.remote.ip())
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                table.per_source.remove(&entry.remote.ip());
            }
        }
    }
}

fn queue(sender: &mpsc::Sender<Bytes>, id: ConnectionId, bytes: Bytes) -> Result<(), SendError> {
    sender.try_send(bytes).map_err(|error| match error {
        mpsc::error::TrySendError::Full(_) => SendError::QueueFull(id),
        mpsc::error::TrySendError::Closed(_) => SendError::ConnectionClosed(id),
    })
}

/// Owns a connection's slot in the table; dropping it removes the connection.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    connections: Connections,
    id: ConnectionId,
}

impl ConnectionGuard {
    pub(crate) fn id(&self) -> ConnectionId {
        self.id
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.connections.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_source_limit_counts_inbound_only_and_frees_on_drop() {
        let connections = Connections::new(2, 10);
        let a = connections
            .reserve(Transport::Tcp, addr("10.0.0.1:1000"), true)
            .unwrap();
        let _b = connections
            .reserve(Transport::Tls, addr("10.0.0.1:1001"), true)
            .unwrap();
        assert_eq!(
            connections
                .reserve(Transport::Tcp, addr("10.0.0.1:1002"), true)
                .unwrap_err(),
            ConnectionLimit::PerSource("10.0.0.1".parse().unwrap())
        );
        // Outbound connections to the same IP are not limited per source.
        let _out = connections
            .reserve(Transport::Tcp, addr("10.0.0.1:5060"), false)
            .unwrap();
        drop(a);
        assert_eq!(connections.count_from("10.0.0.1".parse().unwrap()), 1);
        assert!(
            connections
                .reserve(Transport::Tcp, addr("10.0.0.1:1003"), true)
                .is_ok()
        );
    }

    #[test]
    fn total_limit() {
        let connections = Connections::new(10, 1);
        let _a = connections
            .reserve(Transport::Tcp, addr("10.0.0.1:1000"), true)
            .unwrap();
        assert_eq!(
            connections
                .reserve(Transport::Tcp, addr("10.0.0.2:1000"), true)
                .unwrap_err(),
            ConnectionLimit::Total
        );
    }

    #[test]
    fn peer_index_falls_back_to_other_live_connection() {
        let connections = Connections::new(10, 10);
        let remote = addr("10.0.0.1:5060");
        let local = addr("127.0.0.1:5060");
        let first = connections.reserve(Transport::Tcp, remote, false).unwrap();
        let second = connections.reserve(Transport::Tcp, remote, false).unwrap();
        let (tx1, mut rx1) = mpsc::channel(4);
        let (tx2, _rx2) = mpsc::channel(4);
        let flow = |id| Flow {
            transport: Transport::Tcp,
            remote,
            local,
            connection: Some(id),
        };
        connections.establish(flow(first.id()), tx1);
        connections.establish(flow(second.id()), tx2);
        drop(second);
        let sent = connections.send_to_peer(Transport::Tcp, remote, Bytes::from_static(b"x"));
        assert_eq!(sent.unwrap().unwrap().connection, Some(first.id()));
        assert_eq!(rx1.try_recv().unwrap(), Bytes::from_static(b"x"));
        let closed = second_id_closed(&connections, first.id());
        assert!(closed);
    }

    fn second_id_closed(connections: &Connections, live: ConnectionId) -> bool {
        matches!(
            connections.send_on(ConnectionId(live.0 + 1), Bytes::new()),
            Err(SendError::ConnectionClosed(_))
        )
    }

    #[test]
    fn full_queue_is_reported() {
        let connections = Connections::new(10, 10);
        let remote = addr("10.0.0.1:5060");
        let guard = connections.reserve(Transport::Tcp, remote, false).unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let flow = Flow {
            transport: Transport::Tcp,
            remote,
            local: remote,
            connection: Some(guard.id()),
        };
        connections.establish(flow, tx);
        assert!(
            connections
                .send_on(guard.id(), Bytes::from_static(b"a"))
                .is_ok()
        );
        assert!(matches!(
            connections.send_on(guard.id(), Bytes::from_static(b"b")),
            Err(SendError::QueueFull(_))
        ));
    }
}
