//! RTP/RTCP media relay for the CloudPBX B2BUA: every call's media is anchored on our own ports
//! so that calls work behind NAT, with per-stream statistics for the CDR and events that let
//! the call engine tear down calls whose media stopped.
//!
//! # Model
//!
//! * [`MediaRelay::start`] spawns a small fixed number of relay threads (`RelayConfig::threads`,
//!   default 1). Each runs a level-triggered epoll loop over non-blocking UDP sockets: one
//!   `recvfrom` per readable socket, then one `sendto` (or `send` on a pinned stream, see below)
//!   from the opposite side's socket; a socket with a backlog is drained in one batch sent with
//!   `sendmmsg`. No allocation, lock, channel or task wake-up happens per packet; statistics
//!   are published with relaxed atomic stores that [`MediaSession::stats`] reads. Benchmark and
//!   figures: `bench/media/README.md`.
//! * [`MediaRelay::allocate`] is synchronous and non-blocking (it takes two port pairs from a
//!   relay thread's pool and queues the session for that thread), so it can run inside a SIP
//!   transaction-user callback. A pair's sockets are bound the first time the pair is used and
//!   then stay open and watched by its thread for the life of the relay (packets reaching an
//!   idle pair are read and dropped, so nothing piles up in the kernel): a call costs no
//!   `socket`, `bind`, `close` or epoll registration. A session
//!   has two sides: side A is the caller leg, side B the callee leg. Each side owns an RTP port
//!   (even) and an RTCP port (RTP + 1) from the pool; [`MediaSession::local`] is the address to
//!   put in the SDP sent *to* that side. A packet received on side A's port is sent from side
//!   B's port to side B's remote address, and vice versa; RTCP likewise on the RTCP ports.
//! * [`MediaRelay::allocate_families`] puts each side on an address of a chosen IP family
//!   (`bind_ip` or `RelayConfig::alternate`), so one session can bridge an IPv6 phone and an
//!   IPv4 trunk.
//! * Commands ([`MediaSession::set_remote`], [`MediaSession::set_hold`], close) go to the relay
//!   thread through a short mutex-protected queue plus an eventfd, off the packet path; a burst
//!   of commands costs one eventfd write. A close wakes nobody (the thread applies it within
//!   one 50 ms tick), and with [`RelayConfig::batch_commands`] the other commands wait for
//!   [`MediaRelay::flush`] too, so the SIP thread wakes the relay thread once per message.
//! * Events ([`MediaEvent`]) come out of a bounded tokio channel returned by `start`. A
//!   timeout or one-way event that does not fit is retried on the next timer tick (every 50 ms),
//!   never lost; a `Latched` event (informational) is dropped when the channel is full.
//! * Dropping or [`MediaSession::close`]-ing a session detaches its sockets on the relay thread
//!   (a pinned socket is disconnected) and then returns its ports to the pool (at the back of
//!   the queue: reused as late as possible).
//!
//! # Latching (symmetric RTP) and hijack protection
//!
//! The address from the SDP ([`MediaSession::set_remote`]) is only a hint: the relay sends to it
//! until the side's own packets show where it really is. Per side and per port (RTP, RTCP):
//!
//! 1. Not latched yet: the first packet's source is latched (a NATed phone's SDP says a private
//!    address; its packets come from the NAT's public address).
//! 2. Latched to `L`, packet from `S ≠ L`:
//!    * `S` is exactly the SDP address and `L` is not: relatch at once (the advertised address is
//!      authoritative once it actually sends; a third party that got in first loses the stream);
//!    * `L` has been silent for at least `RelayConfig::relatch_after` and `S` has the same IP as
//!      `L` (a NAT that rebound the phone to a new port): relatch;
//!    * otherwise the packet is dropped and counted in [`StreamStats::dropped`]; a third party
//!      can never take over a stream whose source keeps sending, nor one from another IP.
//! 3. A new SDP address (`set_remote` with a different RTP address, e.g. a re-INVITE after the
//!    phone moved) clears the latch, so rule 1 applies again. `c=0.0.0.0` or port 0 changes
//!    nothing.
//!
//! Every RTP latch and relatch raises [`MediaEventKind::Latched`].
//!
//! Pinning: while a side sends from exactly its SDP address (no NAT, or a SIP ALG that rewrote
//! the SDP), the side's socket is `connect`ed to it. The kernel then delivers only that source's
//! packets (a third party's never reach the relay and are not counted in `dropped`) and sends
//! skip the per-packet route lookup. A pinned stream silent for `relatch_after` is unpinned on
//! the next 50 ms tick, so rule 2's NAT rebinding still works; its next packet pins it again.
//!
//! # Media supervision
//!
//! Supervision starts once both sides have a remote address (after the offer/answer). Then:
//!
//! * [`MediaEventKind::RtpTimeout`]: no RTP from either side for `rtp_timeout` (`hold_timeout`
//!   while [`MediaSession::set_hold`] is on). Raised once; raised again only after media resumed
//!   and stopped again.
//! * [`MediaEventKind::OneWayAudio`]: one side sent RTP within the last `one_way_after` while
//!   the other sent none for `one_way_after`. Not raised while on hold. Raised once per episode.
//!
//! Per-direction [`StreamStats`]: packets, bytes, RTCP, loss from the RTP sequence numbers
//! (RFC 3550 A.1/A.3, summed over SSRCs), interarrival jitter (RFC 3550 A.8) for payload types
//! whose clock rate is known (RFC 3551 static types, or [`MediaSession::set_clock_rate`] for
//! dynamic ones; leave telephone-event out so DTMF does not inflate the jitter), SSRC changes
//! (the sequence/jitter state restarts, nothing is dropped), dropped packets.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pbx_media::RelayError> {
//! use pbx_media::{MediaRelay, RelayConfig, Side};
//! let config = RelayConfig::new("127.0.0.1".parse().unwrap(), 30000..=30999);
//! let (relay, mut events) = MediaRelay::start(config)?;
//! let session = relay.allocate("call-1")?;
//! let towards_caller = session.local(Side::A); // c=/m= of the SDP sent to the caller
//! session.set_remote(Side::A, "192.168.1.20:4000".parse().unwrap(), None)?; // caller's offer
//! session.set_remote(Side::B, "10.0.0.7:5004".parse().unwrap(), None)?; // callee's answer
//! while let Some(event) = events.recv().await {
//!     println!("{}: {:?}", event.label, event.kind);
//! }
//! let stats = session.stats(); // for the CDR
//! session.close();
//! # let _ = (towards_caller, stats); Ok(()) }
//! ```

mod pool;
mod session;
mod stats;
mod worker;

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc;

pub use stats::StreamStats;

use pool::{ALTERNATE, PRIMARY, PortPool};
use stats::DirCounters;
use worker::{Command, NewSession, Wake, WorkerShared};

/// Relay configuration. [`RelayConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The only address the relay's sockets bind to.
    pub bind_ip: IpAddr,
    /// The address put in the SDP `c=` line (differs from `bind_ip` behind 1:1 NAT).
    pub advertised_ip: IpAddr,
    /// Port range; every even port `p` with `p + 1` in range is a pair (RTP `p`, RTCP `p + 1`).
    /// A session takes two pairs.
    pub ports: RangeInclusive<u16>,
    /// No RTP from either side for this long raises [`MediaEventKind::RtpTimeout`]. Default 60 s.
    pub rtp_timeout: Duration,
    /// The same while the session is on hold ([`MediaSession::set_hold`]). Default 1 h.
    pub hold_timeout: Duration,
    /// Media in only one direction for this long raises [`MediaEventKind::OneWayAudio`].
    /// Default 10 s.
    pub one_way_after: Duration,
    /// A latched source silent for this long may be replaced by a new port of the same IP
    /// (see the crate doc, "Latching"). Default 1 s.
    pub relatch_after: Duration,
    /// Relay threads (sessions are spread over them). Default 1.
    pub threads: usize,
    /// `SO_RCVBUF` for every relay socket; `None` keeps the system default.
    pub socket_receive_buffer: Option<usize>,
    /// Capacity of the event channel. Default 1024.
    pub event_capacity: usize,
    /// Most queued new sessions per relay thread before `allocate` answers
    /// [`RelayError::Overloaded`]. Default 4096.
    pub command_capacity: usize,
    /// An address of the other IP family, for sessions that bridge IPv4 and IPv6 (an IPv6 phone
    /// and an IPv4 trunk): see [`MediaRelay::allocate_families`]. Default none.
    pub alternate: Option<RelayAddress>,
    /// Batch the commands of [`MediaRelay::allocate`] and the session setters: they wake the
    /// relay thread only at the next [`MediaRelay::flush`] (call it before sending the SDP that
    /// names the session's ports), so a SIP message that allocates a session and sets its
    /// remote costs the relay thread one wake-up, not one per command. Unflushed commands are
    /// still applied at the thread's next packet or timer tick (50 ms). Default false (every
    /// burst of commands wakes the thread at once).
    pub batch_commands: bool,
}

/// A bind address and the address advertised for it in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayAddress {
    /// The address the sockets bind to.
    pub bind_ip: IpAddr,
    /// The address put in the SDP `c=` line.
    pub advertised_ip: IpAddr,
}

/// An IP address family, to choose each side's address in [`MediaRelay::allocate_families`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpFamily {
    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> IpFamily {
        match ip {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
}

impl RelayConfig {
    /// A configuration binding and advertising `bind_ip`, using `ports`, with default timers.
    pub fn new(bind_ip: IpAddr, ports: RangeInclusive<u16>) -> Self {
        Self {
            bind_ip,
            advertised_ip: bind_ip,
            ports,
            rtp_timeout: Duration::from_secs(60),
            hold_timeout: Duration::from_secs(3600),
            one_way_after: Duration::from_secs(10),
            relatch_after: Duration::from_secs(1),
            threads: 1,
            socket_receive_buffer: None,
            event_capacity: 1024,
            command_capacity: 4096,
            alternate: None,
            batch_commands: false,
        }
    }
}

/// One leg of a session: A is the caller side, B the callee side (by convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg.
    A,
    /// The callee's leg.
    B,
}

impl Side {
    /// The opposite leg.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    pub(crate) fn from_index(index: usize) -> Side {
        if index == 0 { Side::A } else { Side::B }
    }
}

/// A direction of media through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// Received from side A, relayed to side B.
    AToB,
    /// Received from side B, relayed to side A.
    BToA,
}

impl Flow {
    /// The direction whose media comes from `side`.
    pub fn from_side(side: Side) -> Flow {
        match side {
            Side::A => Flow::AToB,
            Side::B => Flow::BToA,
        }
    }
}

/// Something the call engine may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaEvent {
    /// [`MediaSession::id`] of the session.
    pub session: u64,
    /// The label given to [`MediaRelay::allocate`] (e.g. the call id).
    pub label: Arc<str>,
    /// What happened.
    pub kind: MediaEventKind,
}

/// What happened to a session's media.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEventKind {
    /// No RTP from either side for `rtp_timeout` (`hold_timeout` on hold): tear the call down.
    RtpTimeout,
    /// Only `direction` carried RTP for `one_way_after`; the other side sends nothing.
    OneWayAudio {
        /// The direction that still flows.
        direction: Flow,
    },
    /// `side`'s RTP stream latched (or relatched) to `addr`: the side's real address.
    Latched {
        /// The side whose source was learnt.
        side: Side,
        /// Its RTP source address.
        addr: SocketAddr,
    },
}

/// Errors of the relay's control operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Every port pair is in use (or could not be bound): answer 503.
    #[error("media port pool exhausted")]
    PoolExhausted,
    /// Too many commands are queued for the relay thread: answer 503 and retry later.
    #[error("media relay overloaded")]
    Overloaded,
    /// The relay has shut down.
    #[error("media relay stopped")]
    Stopped,
    /// No configured address has the IP family asked for ([`MediaRelay::allocate_families`]).
    #[error("no media address of the requested IP family is configured")]
    FamilyUnavailable,
    /// The configuration cannot work (empty port range, zero threads).
    #[error("invalid media relay configuration: {0}")]
    InvalidConfig(&'static str),
    /// A system call failed (socket, epoll, thread creation).
    #[error("media relay I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Both directions of a session's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionStats {
    /// Media received from side A (relayed to B).
    pub a_to_b: StreamStats,
    /// Media received from side B (relayed to A).
    pub b_to_a: StreamStats,
}

impl SessionStats {
    /// The statistics of the media sent by `side`.
    pub fn from_side(&self, side: Side) -> &StreamStats {
        match side {
            Side::A => &self.a_to_b,
            Side::B => &self.b_to_a,
        }
    }
}

/// Relay-wide numbers for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayCounters {
    /// Sessions currently allocated.
    pub sessions: u64,
    /// Port pairs free in the pool.
    pub free_pairs: usize,
    /// Port pairs in the pool.
    pub total_pairs: usize,
    /// `allocate` calls refused because the pool was exhausted.
    pub allocation_failures: u64,
    /// Packets (RTP and RTCP) relayed since start (updated every 50 ms).
    pub packets_relayed: u64,
    /// Packets received but not relayed: refused by the latching rule or no destination yet.
    pub packets_dropped: u64,
    /// Times a socket had a backlog and was drained in a batch (the relay fell behind).
    pub backlog_batches: u64,
}

/// Handle to the relay; cheap to clone. The relay threads stop when the last handle and the last
/// session are dropped (or at [`MediaRelay::shutdown`]).
#[derive(Debug, Clone)]
pub struct MediaRelay {
    inner: Arc<RelayInner>,
}

#[derive(Debug)]
struct RelayInner {
    config: RelayConfig,
    workers: Vec<Arc<WorkerShared>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    sessions: Arc<AtomicU64>,
    allocation_failures: AtomicU64,
}

/// Shared between a [`MediaSession`] handle and its relay thread.
#[derive(Debug)]
pub(crate) struct SessionShared {
    pub(crate) id: u64,
    pub(crate) label: Arc<str>,
    /// Indexed by the sending side.
    pub(crate) counters: [DirCounters; 2],
    /// Latched RTP source per side (written on latch only).
    pub(crate) latched: Mutex<[Option<SocketAddr>; 2]>,
}

/// One call's media: two sides with an RTP/RTCP port pair each. Closing or dropping it frees
/// the ports.
#[derive(Debug)]
pub struct MediaSession {
    shared: Arc<SessionShared>,
    relay: Arc<RelayInner>,
    worker: usize,
    local: [SocketAddr; 2],
    closed: bool,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MediaRelay {
    /// Starts the relay threads. Returns the handle and the receiver of [`MediaEvent`]s.
    pub fn start(
        config: RelayConfig,
    ) -> Result<(MediaRelay, mpsc::Receiver<MediaEvent>), RelayError> {
        if config.threads == 0 {
            return Err(RelayError::InvalidConfig("threads must be at least 1"));
        }
        // Each thread owns every `threads`-th pair of the range and needs two for a session.
        let pools: Vec<PortPool> = (0..config.threads)
            .map(|index| PortPool::new(&config.ports, index, config.threads))
            .collect();
        if pools.iter().any(|pool| pool.total() < 2) {
            return Err(RelayError::InvalidConfig(
                "the port range must hold at least two port pairs per relay thread",
            ));
        }
        let (event_tx, event_rx) = mpsc::channel(config.event_capacity.max(1));
        let sessions = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::with_capacity(config.threads);
        let mut threads = Vec::with_capacity(config.threads);
        for (index, pool) in pools.into_iter().enumerate() {
            let (shared, thread) =
                worker::spawn(index, &config, pool, sessions.clone(), event_tx.clone())?;
            workers.push(shared);
            threads.push(thread);
        }
        let inner = RelayInner {
            config,
            workers,
            threads: Mutex::new(threads),
            next_id: AtomicU64::new(1),
            sessions,
            allocation_failures: AtomicU64::new(0),
        };
        Ok((
            MediaRelay {
                inner: Arc::new(inner),
            },
            event_rx,
        ))
    }

    /// Reserves two port pairs (side A, side B) and starts relaying between them. Synchronous
    /// and non-blocking. `label` comes back in every [`MediaEvent`] of the session.
    pub fn allocate(&self, label: impl Into<Arc<str>>) -> Result<MediaSession, RelayError> {
        self.allocate_on(label.into(), [PRIMARY, PRIMARY])
    }

    /// Like [`MediaRelay::allocate`], with each side on the configured address of the given
    /// family (`bind_ip` or `RelayConfig::alternate`): a call between an IPv6 phone (side A) and
    /// an IPv4 trunk (side B) is relayed across the families. [`RelayError::FamilyUnavailable`]
    /// when no configured address has the family.
    pub fn allocate_families(
        &self,
        label: impl Into<Arc<str>>,
        a: IpFamily,
        b: IpFamily,
    ) -> Result<MediaSession, RelayError> {
        let address = |family: IpFamily| {
            if IpFamily::of(self.inner.config.bind_ip) == family {
                return Ok(PRIMARY);
            }
            match self.inner.config.alternate {
                Some(alternate) if IpFamily::of(alternate.bind_ip) == family => Ok(ALTERNATE),
                _ => Err(RelayError::FamilyUnavailable),
            }
        };
        self.allocate_on(label.into(), [address(a)?, address(b)?])
    }

    /// The bind and advertised addresses of address index `address` (`PRIMARY`/`ALTERNATE`).
    fn address(&self, address: usize) -> RelayAddress {
        let config = &self.inner.config;
        match config.alternate {
            Some(alternate) if address == ALTERNATE => alternate,
            _ => RelayAddress {
                bind_ip: config.bind_ip,
                advertised_ip: config.advertised_ip,
            },
        }
    }

    /// Tries the relay thread chosen by the session id first, then the others when its pool is
    /// exhausted.
    fn allocate_on(
        &self,
        label: Arc<str>,
        addresses: [usize; 2],
    ) -> Result<MediaSession, RelayError> {
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let count = inner.workers.len().max(1);
        let preferred = (id % count as u64) as usize;
        for offset in 0..count {
            match self.allocate_in((preferred + offset) % count, id, &label, addresses) {
                Err(RelayError::PoolExhausted) => continue,
                other => return other,
            }
        }
        inner.allocation_failures.fetch_add(1, Ordering::Relaxed);
        Err(RelayError::PoolExhausted)
    }

    fn allocate_in(
        &self,
        worker: usize,
        id: u64,
        label: &Arc<str>,
        addresses: [usize; 2],
    ) -> Result<MediaSession, RelayError> {
        let inner = &self.inner;
        let shared_worker = inner.workers.get(worker).ok_or(RelayError::Stopped)?;
        if shared_worker.is_stopped() {
            return Err(RelayError::Stopped);
        }
        if shared_worker.queued_sessions() >= inner.config.command_capacity {
            return Err(RelayError::Overloaded);
        }
        let [a_address, b_address] = addresses.map(|address| self.address(address));
        let a = self.take_pair(shared_worker, addresses[0], a_address.bind_ip)?;
        let b = match self.take_pair(shared_worker, addresses[1], b_address.bind_ip) {
            Ok(pair) => pair,
            Err(error) => {
                shared_worker.give_back(a.port, addresses[0], a.fresh);
                return Err(error);
            }
        };
        let local = [
            SocketAddr::new(a_address.advertised_ip, a.port),
            SocketAddr::new(b_address.advertised_ip, b.port),
        ];
        let shared = Arc::new(SessionShared {
            id,
            label: label.clone(),
            counters: [DirCounters::new(), DirCounters::new()],
            latched: Mutex::new([None, None]),
        });
        let new = NewSession {
            shared: shared.clone(),
            ports: [a.port, b.port],
            addresses,
            fresh: [a.fresh, b.fresh],
        };
        if let Err(new) = shared_worker.send(Command::Add(Box::new(new)), self.wake()) {
            // The relay thread is gone: nobody will close these sockets but us.
            if let Command::Add(new) = new {
                let NewSession {
                    ports,
                    addresses,
                    fresh: [a_fresh, b_fresh],
                    ..
                } = *new;
                shared_worker.give_back(ports[0], addresses[0], a_fresh);
                shared_worker.give_back(ports[1], addresses[1], b_fresh);
            }
            return Err(RelayError::Stopped);
        }
        inner.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(MediaSession {
            shared,
            relay: inner.clone(),
            worker,
            local,
            closed: false,
        })
    }

    /// Takes the first pair of `worker`'s pool that is bound on `address` already or can be
    /// bound now (then its new sockets come along, for the thread to adopt).
    fn take_pair(
        &self,
        worker: &WorkerShared,
        address: usize,
        ip: IpAddr,
    ) -> Result<ReservedPair, RelayError> {
        let attempts = lock(&worker.pool).available();
        for _ in 0..attempts {
            let (port, bound) = {
                let mut pool = lock(&worker.pool);
                let Some(port) = pool.pop() else {
                    break;
                };
                (port, pool.is_bound(port, address))
            };
            if bound {
                return Ok(ReservedPair { port, fresh: None });
            }
            match bind_pair(&self.inner.config, ip, port) {
                Ok(pair) => {
                    lock(&worker.pool).set_bound(port, address, true);
                    return Ok(ReservedPair {
                        port,
                        fresh: Some(pair),
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                    tracing::debug!(port, "media port pair in use by someone else, skipped");
                    lock(&worker.pool).push(port);
                }
                Err(error) => {
                    lock(&worker.pool).push(port);
                    return Err(RelayError::Io(error));
                }
            }
        }
        Err(RelayError::PoolExhausted)
    }

    /// Wakes the relay threads for the commands queued since the last flush (with
    /// [`RelayConfig::batch_commands`]; a no-op otherwise and when nothing is queued).
    pub fn flush(&self) {
        for worker in &self.inner.workers {
            worker.flush();
        }
    }

    fn wake(&self) -> Wake {
        self.inner.wake()
    }

    /// Relay-wide counters.
    pub fn counters(&self) -> RelayCounters {
        let (mut free_pairs, mut total_pairs) = (0, 0);
        for worker in &self.inner.workers {
            let pool = lock(&worker.pool);
            free_pairs += pool.available();
            total_pairs += pool.total();
        }
        let mut totals = [0u64; 3];
        for worker in &self.inner.workers {
            for (total, value) in totals.iter_mut().zip(worker.counters()) {
                *total += value;
            }
        }
        RelayCounters {
            sessions: self.inner.sessions.load(Ordering::Relaxed),
            free_pairs,
            total_pairs,
            allocation_failures: self.inner.allocation_failures.load(Ordering::Relaxed),
            packets_relayed: totals[0],
            packets_dropped: totals[1],
            backlog_batches: totals[2],
        }
    }

    /// The configuration the relay runs with.
    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// Stops the relay threads (open sessions stop relaying; their ports are closed) and waits
    /// for them to exit.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

impl RelayInner {
    /// How a control command reaches the relay thread (see [`RelayConfig::batch_commands`]).
    fn wake(&self) -> Wake {
        if self.config.batch_commands {
            Wake::Later
        } else {
            Wake::Now
        }
    }

    fn shutdown(&self) {
        for worker in &self.workers {
            worker.stop();
        }
        let threads: Vec<_> = lock(&self.threads).drain(..).collect();
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("media relay thread panicked");
            }
        }
    }
}

impl Drop for RelayInner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A pair taken from a thread's pool for a new session; `fresh` holds its RTP and RTCP sockets
/// when they were bound just now (else the thread holds them already).
struct ReservedPair {
    port: u16,
    fresh: Option<[UdpSocket; 2]>,
}

fn bind_pair(config: &RelayConfig, ip: IpAddr, port: u16) -> io::Result<[UdpSocket; 2]> {
    let rtp = bind_one(config, ip, port)?;
    let rtcp = bind_one(config, ip, port.wrapping_add(1))?;
    Ok([rtp, rtcp])
}

fn bind_one(config: &RelayConfig, ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM.cloexec(),
        Some(Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Some(size) = config.socket_receive_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl MediaSession {
    /// Relay-unique id of the session (also in its events).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The label given to [`MediaRelay::allocate`].
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// The RTP address to advertise *towards* `side` (its SDP `c=` address and `m=` port).
    pub fn local(&self, side: Side) -> SocketAddr {
        self.local[side.index()]
    }

    /// The RTCP address towards `side` (RTP port + 1, for an `a=rtcp:` line if wanted).
    pub fn local_rtcp(&self, side: Side) -> SocketAddr {
        let rtp = self.local[side.index()];
        SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
    }

    /// Sets `side`'s media address from its SDP (`rtcp` from `a=rtcp:`, else RTP port + 1). A
    /// hint only: latching on the side's real packets wins (see the crate doc). A changed RTP
    /// address clears the side's latch; an unspecified address or port 0 (`c=0.0.0.0` hold, a
    /// rejected stream) is ignored, so the stream stays latched.
    pub fn set_remote(
        &self,
        side: Side,
        rtp: SocketAddr,
        rtcp: Option<SocketAddr>,
    ) -> Result<(), RelayError> {
        self.command(Command::Remote {
            id: self.shared.id,
            side,
            rtp,
            rtcp,
        })
    }

    /// On hold (either side sendonly/inactive): no one-way event, and the timeout becomes
    /// `hold_timeout`. Packets are still relayed.
    pub fn set_hold(&self, held: bool) -> Result<(), RelayError> {
        self.command(Command::Hold {
            id: self.shared.id,
            held,
        })
    }

    /// Declares the RTP clock rate of a dynamic payload type (from `a=rtpmap`), for jitter.
    /// Static payload types (RFC 3551) are known already; telephone-event is best left out.
    pub fn set_clock_rate(&self, payload_type: u8, clock_rate: u32) -> Result<(), RelayError> {
        self.command(Command::ClockRate {
            id: self.shared.id,
            payload_type,
            clock_rate,
        })
    }

    /// The address `side`'s RTP stream is latched to, if any packet came yet.
    pub fn remote(&self, side: Side) -> Option<SocketAddr> {
        lock(&self.shared.latched)[side.index()]
    }

    /// Current statistics of both directions (lock-free; exact up to the last packet relayed).
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            a_to_b: self.shared.counters[0].snapshot(),
            b_to_a: self.shared.counters[1].snapshot(),
        }
    }

    /// Stops relaying and frees the ports (also done on drop) — on the relay thread's next
    /// wake-up, packet or timer tick, so within 50 ms.
    pub fn close(mut self) {
        self.close_inner();
    }

    fn close_inner(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        if let Some(worker) = self.relay.workers.get(self.worker) {
            // A stopped relay thread already closed every socket.
            // Not urgent: applied at the thread's next wake-up, packet or tick (≤ 50 ms).
            let _ = worker.send(Command::Close { id: self.shared.id }, Wake::Later);
        }
    }

    fn command(&self, command: Command) -> Result<(), RelayError> {
        let worker = self
            .relay
            .workers
            .get(self.worker)
            .ok_or(RelayError::Stopped)?;
        worker
            .send(command, self.relay.wake())
            .map_err(|_| RelayError::Stopped)
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.close_inner();
    }
}
