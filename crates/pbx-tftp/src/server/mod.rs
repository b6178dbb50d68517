//! The tokio driver: one listening socket for requests, one task and one ephemeral socket per
//! transfer (the server's TID, RFC 1350 §4).
//!
//! The listener only parses and decides; it never awaits a file open. Per datagram on the
//! request port it runs, in order: the source-admission hook (bans; a `false` drops the
//! datagram before parsing), [`Request::parse`] (malformed → ERROR 4 from the listener), the
//! write refusal (WRQ → ERROR 2), de-duplication of a retransmitted RRQ from a peer whose
//! transfer is already running, and the global cap on concurrent transfers. Then a task opens
//! the file through the [`FileSource`] (with a timeout), binds its socket and runs the
//! [`Transfer`](crate::proto::Transfer) state machine.

mod session;
mod source;

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

pub use source::{FileSource, MemorySource, TftpRefusal, TransferEvent, TransferResult};

use crate::proto::packet::encode_error;
use crate::proto::{ErrorCode, Request, RequestKind, TransferConfig};

/// What to do with a read request when `max_transfers` are running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BusyPolicy {
    /// Drop it silently: the client retransmits its RRQ after its timeout and is served when a
    /// slot frees. Best for boot storms: phones treat an ERROR as a failed provisioning.
    #[default]
    Drop,
    /// Answer ERROR 0 "Server busy".
    Error,
}

/// Server limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Negotiation limits and retransmission for each transfer.
    pub transfer: TransferConfig,
    /// Concurrent transfers (and pending opens) at most.
    pub max_transfers: usize,
    /// Largest content served; larger gets ERROR 3.
    pub max_file_size: usize,
    /// How long [`FileSource::open`] may take.
    pub open_timeout: Duration,
    /// What to do beyond `max_transfers`.
    pub busy_policy: BusyPolicy,
    /// Receive buffer asked for the request socket (the kernel caps it at `net.core.rmem_max`).
    /// The default 208 KiB holds only a few hundred RRQs, so a boot storm would lose requests
    /// and wait for the phones' retransmissions.
    pub request_recv_buffer_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            transfer: TransferConfig::default(),
            max_transfers: 4096,
            max_file_size: 256 * 1024 * 1024,
            open_timeout: Duration::from_secs(5),
            busy_policy: BusyPolicy::Drop,
            request_recv_buffer_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Counters, readable while the server runs.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Transfers (tasks) running now.
    pub active: AtomicU64,
    /// Transfers that ended with every block acknowledged.
    pub completed: AtomicU64,
    /// Transfers that started and then failed (timeout, peer error).
    pub failed: AtomicU64,
    /// Requests refused (file source, size, open timeout, writes).
    pub refused: AtomicU64,
    /// Requests turned away by the concurrency cap.
    pub busy: AtomicU64,
    /// Datagrams on the request port that were not valid requests.
    pub malformed: AtomicU64,
    /// Datagrams dropped by the source-admission hook.
    pub source_rejected: AtomicU64,
    /// Retransmitted RRQs ignored because the peer's transfer already runs.
    pub duplicate_requests: AtomicU64,
    /// Timeout-driven resends, summed over ended transfers.
    pub retransmissions: AtomicU64,
}

/// Source admission: `true` lets the datagram be parsed.
pub type AdmissionHook = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;
/// Receives one [`TransferEvent`] per request; must be cheap and non-blocking (e.g. a
/// `try_send` into a bounded channel).
pub type EventHook = Arc<dyn Fn(TransferEvent) + Send + Sync>;

/// A bound TFTP server; call [`TftpServer::run`] (usually in its own task).
pub struct TftpServer<S> {
    socket: UdpSocket,
    shared: Shared<S>,
}

impl<S> std::fmt::Debug for TftpServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TftpServer")
            .field("socket", &self.socket)
            .field("config", &self.shared.config)
            .finish()
    }
}

struct Shared<S> {
    source: S,
    config: ServerConfig,
    admission: Option<AdmissionHook>,
    events: Option<EventHook>,
    stats: Arc<ServerStats>,
    active_peers: Mutex<HashSet<SocketAddr>>,
    permits: Arc<Semaphore>,
    local: SocketAddr,
}

impl<S: FileSource> TftpServer<S> {
    /// Binds the request socket (port 69 needs privileges; pass port 0 in tests).
    ///
    /// # Errors
    /// The bind error.
    pub async fn bind(addr: SocketAddr, config: ServerConfig, source: S) -> io::Result<Self> {
        let socket = bind_request_socket(addr, config.request_recv_buffer_bytes)?;
        let local = socket.local_addr()?;
        let shared = Shared {
            source,
            config,
            admission: None,
            events: None,
            stats: Arc::new(ServerStats::default()),
            active_peers: Mutex::new(HashSet::new()),
            permits: Arc::new(Semaphore::new(config.max_transfers.max(1))),
            local,
        };
        Ok(Self { socket, shared })
    }

    /// Installs the source-admission hook (bans), run before a datagram is parsed.
    #[must_use]
    pub fn with_admission(
        mut self,
        hook: impl Fn(SocketAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.shared.admission = Some(Arc::new(hook));
        self
    }

    /// Installs the per-request event callback.
    #[must_use]
    pub fn with_events(mut self, hook: impl Fn(TransferEvent) + Send + Sync + 'static) -> Self {
        self.shared.events = Some(Arc::new(hook));
        self
    }

    /// The request socket's address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Shared counters.
    #[must_use]
    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Serves requests until the task is dropped or aborted. Transfers already running keep
    /// going in their own tasks.
    ///
    /// # Errors
    /// Never returns `Ok`; an error only if the request socket fails permanently.
    pub async fn run(self) -> io::Result<()> {
        let socket = self.socket;
        let shared = Arc::new(self.shared);
        let mut buf = vec![0u8; 2048];
        loop {
            let (len, peer) = match socket.recv_from(&mut buf).await {
                Ok(received) => received,
                Err(error) if is_transient(&error) => continue,
                Err(error) => return Err(error),
            };
            shared.dispatch(&socket, peer, &buf[..len]);
        }
    }
}

impl<S: FileSource> Shared<S> {
    fn dispatch(self: &Arc<Self>, socket: &UdpSocket, peer: SocketAddr, datagram: &[u8]) {
        if let Some(admission) = &self.admission
            && !admission(peer)
        {
            self.stats.source_rejected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let request = match Request::parse(datagram) {
            Ok(request) => request,
            Err(error) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                reply_error(socket, peer, error.code(), error.message());
                return;
            }
        };
        if request.kind == RequestKind::Write {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            reply_error(socket, peer, ErrorCode::AccessViolation, "Access violation");
            self.emit(TransferEvent {
                peer,
                path: request.path,
                mode: request.mode,
                bytes: 0,
                retransmissions: 0,
                duration: Duration::ZERO,
                result: TransferResult::WriteRefused,
            });
            return;
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            self.stats.busy.fetch_add(1, Ordering::Relaxed);
            if self.config.busy_policy == BusyPolicy::Error {
                reply_error(socket, peer, ErrorCode::Undefined, "Server busy");
            }
            return;
        };
        if !self.lock_peers().insert(peer) {
            self.stats
                .duplicate_requests
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(session::run(Arc::clone(self), request, peer, permit));
    }

    fn emit(&self, event: TransferEvent) {
        if let Some(events) = &self.events {
            events(event);
        }
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashSet<SocketAddr>> {
        // A poisoned set only means a panic elsewhere; the set itself is still consistent.
        self.active_peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sends an ERROR without waiting: if the socket buffer is full the error is dropped (the
/// client times out), so a flood cannot stall the listener.
fn reply_error(socket: &UdpSocket, peer: SocketAddr, code: ErrorCode, message: &str) {
    let mut packet = Vec::with_capacity(8 + message.len());
    encode_error(&mut packet, code, message);
    let _ = socket.try_send_to(&packet, peer);
}

fn bind_request_socket(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: a smaller buffer only costs retransmissions under load.
    let _ = socket.set_recv_buffer_size(recv_buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::Interrupted
    )
}
