//! One relay thread: a level-triggered epoll loop over the sockets of its sessions.
//!
//! Per readable socket the loop does exactly one `recvfrom` and at most one `sendto` (the same
//! syscall count as a minimal C relay with `recvmmsg`/`sendmmsg` at one packet per wake-up);
//! level triggering means no extra `recvfrom` that ends in `EAGAIN`. A socket that is readable
//! in two consecutive rounds has a backlog and is drained in a batch (`sendmmsg`). The clock is
//! read once per epoll round. Commands are applied at the start of the round that reports the
//! eventfd, before its packets; an event of that round for a session slot closed (or reused) by
//! a command then finds no session, or a socket of the new session, where the non-blocking
//! `recvfrom` simply finds nothing (or a packet that really is for it).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::{MMsgHdr, RecvFlags, SendAncillaryBuffer, SendFlags, SocketAddrAny};
use std::io::IoSlice;
use tokio::sync::mpsc;

use crate::pool::PortPool;
use crate::session::{Session, Timers};
use crate::{MediaEvent, MediaEventKind, RelayConfig, RelayError, SessionShared, Side, lock};

const WAKE_TOKEN: u64 = u64::MAX;
/// Timer resolution of the media supervision (timeouts, one-way audio, event retries).
const TICK_NS: u64 = 50_000_000;
/// Events per `epoll_wait`.
const EVENTS: usize = 256;
/// One receive buffer: the largest UDP payload, so nothing is ever truncated.
const SLOT: usize = 65_536;
/// Packets drained from one socket with a backlog, sent with one `sendmmsg`.
const BATCH: usize = 16;
/// Route-table size: every port of both relay addresses.
const ROUTES: usize = crate::pool::ADDRESSES << 16;

pub(crate) enum Command {
    Add(Box<NewSession>),
    Remote {
        id: u64,
        side: Side,
        rtp: SocketAddr,
        rtcp: Option<SocketAddr>,
    },
    Hold {
        id: u64,
        held: bool,
    },
    ClockRate {
        id: u64,
        payload_type: u8,
        clock_rate: u32,
    },
    Close {
        id: u64,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Add(new) => write!(f, "Add({})", new.shared.id),
            Command::Remote {
                id,
                side,
                rtp,
                rtcp,
            } => write!(f, "Remote({id}, {side:?}, {rtp}, {rtcp:?})"),
            Command::Hold { id, held } => write!(f, "Hold({id}, {held})"),
            Command::ClockRate {
                id,
                payload_type,
                clock_rate,
            } => {
                write!(f, "ClockRate({id}, {payload_type}, {clock_rate})")
            }
            Command::Close { id } => write!(f, "Close({id})"),
        }
    }
}

/// A session handed to the relay thread: per side its RTP port, the relay address it is on
/// (`pool::PRIMARY`/`ALTERNATE`) and, when the pair was bound just now, its new `[rtp, rtcp]`
/// sockets (else the thread holds them, idle, already).
#[derive(Debug)]
pub(crate) struct NewSession {
    pub(crate) shared: Arc<SessionShared>,
    pub(crate) ports: [u16; 2],
    pub(crate) addresses: [usize; 2],
    pub(crate) fresh: [Option<[UdpSocket; 2]>; 2],
}

/// The epoll token (and route-table index) of the socket on `port` of relay address
/// `address`. An RTP port is even, so `token & 1` is the kind (RTP 0, RTCP 1).
pub(crate) fn token(address: usize, port: u16) -> u64 {
    (address as u64) << 16 | u64::from(port)
}

/// The part of a relay thread that session handles talk to.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    /// The thread's port pairs (it holds the sockets of the bound ones).
    pub(crate) pool: Mutex<PortPool>,
    queue: Mutex<VecDeque<Command>>,
    wake: OwnedFd,
    /// An eventfd write is outstanding (the thread clears it when it reads the eventfd), so a
    /// burst of commands costs one write and one wake-up.
    signalled: AtomicBool,
    /// Commands were queued without a wake-up (`Wake::Later`) and no flush followed yet.
    pending: AtomicBool,
    stopped: AtomicBool,
    queued_sessions: AtomicUsize,
    /// Published by the relay thread on every timer tick: `[relayed, dropped, batches]`.
    counters: [AtomicU64; 3],
}

/// When a queued command reaches the relay thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Wake the thread now (one eventfd write per burst).
    Now,
    /// At the next [`WorkerShared::flush`], the thread's next packet or its next timer tick
    /// (50 ms), whichever comes first.
    Later,
}

impl WorkerShared {
    /// Queues a command; gives it back when the thread stopped.
    pub(crate) fn send(&self, command: Command, wake: Wake) -> Result<(), Command> {
        if self.is_stopped() {
            return Err(command);
        }
        if matches!(command, Command::Add(_)) {
            self.queued_sessions.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.queue).push_back(command);
        match wake {
            Wake::Now => self.wake(),
            Wake::Later => self.pending.store(true, Ordering::Release),
        }
        Ok(())
    }

    /// Wakes the thread if commands were queued with [`Wake::Later`] since the last flush.
    pub(crate) fn flush(&self) {
        if self.pending.swap(false, Ordering::AcqRel) {
            self.wake();
        }
    }

    /// Packets relayed, packets dropped, backlog batches (as of the last timer tick).
    pub(crate) fn counters(&self) -> [u64; 3] {
        self.counters.each_ref().map(|c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn queued_sessions(&self) -> usize {
        self.queued_sessions.load(Ordering::Relaxed)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop_wake();
    }

    /// Returns a pair taken for a session that never reached the thread; `fresh` sockets (bound
    /// for it) are closed, so the pair is no longer bound.
    pub(crate) fn give_back(&self, port: u16, address: usize, fresh: Option<[UdpSocket; 2]>) {
        let mut pool = lock(&self.pool);
        if fresh.is_some() {
            pool.set_bound(port, address, false);
        }
        drop(fresh);
        pool.push(port);
    }

    fn wake(&self) {
        if self.signalled.swap(true, Ordering::AcqRel) {
            return;
        }
        // An eventfd write only fails when the counter would overflow (it is already readable).
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn stop_wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

pub(crate) fn spawn(
    index: usize,
    config: &RelayConfig,
    pool: PortPool,
    live_sessions: Arc<AtomicU64>,
    events: mpsc::Sender<MediaEvent>,
) -> Result<(Arc<WorkerShared>, JoinHandle<()>), RelayError> {
    let epoll_fd = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(io::Error::from)?;
    let wake =
        eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(io::Error::from)?;
    epoll::add(
        &epoll_fd,
        &wake,
        epoll::EventData::new_u64(WAKE_TOKEN),
        epoll::EventFlags::IN,
    )
    .map_err(io::Error::from)?;
    let shared = Arc::new(WorkerShared {
        pool: Mutex::new(pool),
        queue: Mutex::new(VecDeque::new()),
        wake,
        signalled: AtomicBool::new(false),
        pending: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        queued_sessions: AtomicUsize::new(0),
        counters: Default::default(),
    });
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let worker = Worker {
        shared: shared.clone(),
        epoll: epoll_fd,
        sessions: Vec::new(),
        free_slots: Vec::new(),
        by_id: HashMap::new(),
        route: vec![0; ROUTES].into_boxed_slice(),
        idle: HashMap::new(),
        live_sessions,
        events,
        timers: Timers {
            rtp_timeout: nanos(config.rtp_timeout),
            hold_timeout: nanos(config.hold_timeout),
            one_way: nanos(config.one_way_after),
            relatch: nanos(config.relatch_after),
        },
        epoch: Instant::now(),
        arena: vec![0u8; SLOT * BATCH].into_boxed_slice(),
        round: 0,
        relayed: 0,
        dropped: 0,
        batches: 0,
    };
    let watched = shared.clone();
    let thread = std::thread::Builder::new()
        .name(format!("media-relay-{index}"))
        .spawn(move || {
            // A bug must not leave sessions that silently relay nothing: a panicking relay
            // thread marks itself stopped, so `allocate` and the session commands answer
            // `RelayError::Stopped` from then on.
            let run = std::panic::AssertUnwindSafe(move || worker.run());
            if std::panic::catch_unwind(run).is_err() {
                watched.stopped.store(true, Ordering::Release);
                tracing::error!(thread = index, "media relay thread panicked and stopped");
            }
        })?;
    Ok((shared, thread))
}

struct Worker {
    shared: Arc<WorkerShared>,
    epoll: OwnedFd,
    sessions: Vec<Option<Session>>,
    free_slots: Vec<usize>,
    by_id: HashMap<u64, usize>,
    /// Per socket token: 0 for an idle socket, else `(slot + 1) << 1 | side` of its session.
    route: Box<[u32]>,
    /// The bound sockets of pairs in the pool, by token: still watched, their packets dropped.
    idle: HashMap<u64, UdpSocket>,
    live_sessions: Arc<AtomicU64>,
    events: mpsc::Sender<MediaEvent>,
    timers: Timers,
    epoch: Instant,
    /// `BATCH` receive buffers of `SLOT` bytes (the first one serves the single-packet path).
    arena: Box<[u8]>,
    /// Epoll round counter (see `Session::served`).
    round: u32,
    /// Relay-wide totals, published to `WorkerShared::counters` on every tick.
    relayed: u64,
    dropped: u64,
    batches: u64,
}

/// `recvfrom(2)` straight through rustix: no libc wrapper, so no per-call cancellation-point
/// bookkeeping (it showed as ~4 % of the relay's CPU with std's `UdpSocket::recv_from`).
#[inline]
fn recv_from(socket: &UdpSocket, buffer: &mut [u8]) -> Option<(usize, SocketAddr)> {
    let (len, _, source) = rustix::net::recvfrom(socket, buffer, RecvFlags::DONTWAIT).ok()?;
    Some((len, SocketAddr::try_from(source?).ok()?))
}

#[inline]
fn send_to(socket: &UdpSocket, packet: &[u8], destination: &SocketAddr) -> io::Result<usize> {
    rustix::net::sendto(socket, packet, SendFlags::DONTWAIT, destination).map_err(io::Error::from)
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Worker {
    fn run(mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(EVENTS);
        let mut next_tick = 0u64;
        loop {
            let wait = next_tick.saturating_sub(self.now()).min(TICK_NS);
            let timeout = Timespec {
                tv_sec: 0,
                tv_nsec: wait as i64,
            };
            events.clear();
            match epoll::wait(&self.epoll, spare_capacity(&mut events), Some(&timeout)) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(error) => {
                    tracing::error!(%error, "epoll_wait failed, media relay thread stops");
                    break;
                }
            }
            let now = self.now();
            // Starts at 1 after the first wait, so a never-served socket (0) has no backlog.
            self.round = self.round.wrapping_add(1).max(1);
            // Commands first: a `set_remote` queued before a packet arrived applies to it (its
            // eventfd write preceded the packet, so both are in this round at the latest).
            let woken = events.iter().any(|event| {
                let data = event.data;
                data.u64() == WAKE_TOKEN
            });
            if woken && self.on_wake(now) == Flow::Stop {
                break;
            }
            if !woken && now >= next_tick {
                // Commands queued without a wake-up (closes, or an unflushed batch).
                self.apply_queued(now);
            }
            for event in &events {
                let data = event.data;
                let token = data.u64();
                if token != WAKE_TOKEN {
                    self.on_readable(token, now);
                }
            }
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK_NS;
            }
        }
        self.shared.stopped.store(true, Ordering::Release);
        let ids: Vec<u64> = self.by_id.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
        // Sessions queued after the stop: close their sockets, free their ports.
        let queued: Vec<Command> = lock(&self.shared.queue).drain(..).collect();
        for command in queued {
            if let Command::Add(new) = command {
                let NewSession {
                    ports,
                    addresses,
                    fresh: [a, b],
                    ..
                } = *new;
                self.shared.give_back(ports[0], addresses[0], a);
                self.shared.give_back(ports[1], addresses[1], b);
            }
        }
    }

    fn now(&self) -> u64 {
        // Starts at 1 so that 0 can mean "never".
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    #[inline]
    fn on_readable(&mut self, token: u64, now: u64) {
        let route = match self.route.get(token as usize) {
            Some(0) => {
                // Perhaps the first packet of a session whose `Add` is queued without a
                // wake-up yet: apply the queue, then look again.
                self.apply_queued(now);
                match self.route.get(token as usize) {
                    Some(0) | None => return self.discard(token),
                    Some(&route) => route,
                }
            }
            Some(&route) => route,
            None => return,
        };
        let slot = (route >> 1) as usize - 1;
        let side = (route & 1) as usize;
        let kind = (token & 1) as usize;
        let Some(Some(session)) = self.sessions.get_mut(slot) else {
            return;
        };
        let backlog = session.served[side][kind] == self.round.wrapping_sub(1);
        session.served[side][kind] = self.round;
        if backlog {
            self.drain(slot, side, kind, now);
            return;
        }
        let Some((len, source)) = recv_from(&session.sockets[side][kind], &mut self.arena) else {
            // WouldBlock (spurious wake-up) or a queued ICMP error: nothing to relay.
            return;
        };
        let packet = &self.arena[..len.min(SLOT)];
        let admitted = session.admit(side, kind, packet, source, now, self.timers.relatch);
        if let Some(destination) = admitted.destination {
            // A send error (ICMP unreachable from an earlier packet, full buffer) loses this
            // packet only; RTP tolerates it and the next packet tries again.
            let socket = &session.sockets[side ^ 1][kind];
            let sent = if admitted.connected {
                rustix::net::send(socket, packet, SendFlags::DONTWAIT).map_err(io::Error::from)
            } else {
                send_to(socket, packet, &destination)
            };
            if sent.is_ok() {
                self.relayed += 1;
            }
        } else {
            self.dropped += 1;
        }
        if let Some(addr) = admitted.latched {
            self.latched(slot, side, addr);
        }
    }

    /// An idle pair's socket is readable (stray packets of an ended call, or a scan): read and
    /// drop up to a batch, so nothing piles up in the kernel.
    fn discard(&mut self, token: u64) {
        let Some(socket) = self.idle.get(&token) else {
            return;
        };
        let buffer = &mut self.arena[..SLOT];
        for _ in 0..BATCH {
            if recv_from(socket, buffer).is_none() {
                break;
            }
            self.dropped += 1;
        }
    }

    /// A socket with a backlog (readable in two consecutive rounds, which at 50 packets/s per
    /// stream only happens when the relay fell behind): receive up to `BATCH` packets, then send
    /// them with one `sendmmsg`, as the C relay's `recvmmsg`/`sendmmsg` does.
    fn drain(&mut self, slot: usize, side: usize, kind: usize, now: u64) {
        let Some(Some(session)) = self.sessions.get_mut(slot) else {
            return;
        };
        let mut lens = [0usize; BATCH];
        let mut destinations = [None; BATCH];
        let mut connected = [false; BATCH];
        let mut count = 0;
        let mut latched = None;
        for buffer in self.arena.chunks_exact_mut(SLOT) {
            let Some((len, source)) = recv_from(&session.sockets[side][kind], buffer) else {
                break;
            };
            let len = len.min(SLOT);
            let admitted =
                session.admit(side, kind, &buffer[..len], source, now, self.timers.relatch);
            latched = admitted.latched.or(latched);
            lens[count] = len;
            destinations[count] = admitted.destination;
            connected[count] = admitted.connected;
            count += 1;
        }
        self.batches += 1;
        let mut buffers = self.arena.chunks_exact(SLOT);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let addresses: [SocketAddrAny; BATCH] =
            std::array::from_fn(|i| SocketAddrAny::from(destinations[i].unwrap_or(unspecified)));
        let slices: [IoSlice<'_>; BATCH] = std::array::from_fn(|i| {
            IoSlice::new(buffers.next().map_or(&[][..], |b| &b[..lens[i]]))
        });
        let mut controls: [SendAncillaryBuffer<'_, '_, '_>; BATCH] =
            std::array::from_fn(|_| SendAncillaryBuffer::default());
        let mut index = 0;
        let mut messages = controls.each_mut().map(|control| {
            let iov = std::slice::from_ref(&slices[index]);
            let message = if connected[index] {
                MMsgHdr::new(iov, control)
            } else {
                MMsgHdr::new_with_addr(&addresses[index], iov, control)
            };
            index += 1;
            message
        });
        // Packets without a destination (dropped, counted) are skipped; runs of the others go
        // out with one sendmmsg each (normally a single run).
        let socket = &session.sockets[side ^ 1][kind];
        let mut start = 0;
        while start < count {
            if destinations[start].is_none() {
                self.dropped += 1;
                start += 1;
                continue;
            }
            let end = (start..count)
                .find(|&i| destinations[i].is_none())
                .unwrap_or(count);
            match rustix::net::sendmmsg(socket, &mut messages[start..end], SendFlags::DONTWAIT) {
                Ok(sent) if sent > 0 => {
                    start += sent;
                    self.relayed += sent as u64;
                }
                // As for a single send: lose this packet only.
                _ => start += 1,
            }
        }
        if let Some(addr) = latched {
            self.latched(slot, side, addr);
        }
    }

    fn latched(&self, slot: usize, side: usize, addr: SocketAddr) {
        let Some(Some(session)) = self.sessions.get(slot) else {
            return;
        };
        let side = Side::from_index(side);
        tracing::debug!(session = session.shared.id, ?side, %addr, "RTP latched");
        let event = MediaEvent {
            session: session.shared.id,
            label: session.shared.label.clone(),
            kind: MediaEventKind::Latched { side, addr },
        };
        // Informational: dropped when the channel is full.
        let _ = self.events.try_send(event);
    }

    fn on_wake(&mut self, now: u64) -> Flow {
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(&self.shared.wake, &mut counter);
        // Cleared before the queue is drained: a command queued from here on writes again.
        self.shared.signalled.store(false, Ordering::Release);
        if self.shared.is_stopped() {
            return Flow::Stop;
        }
        self.apply_queued(now);
        Flow::Continue
    }

    /// Applies every queued command.
    fn apply_queued(&mut self, now: u64) {
        loop {
            // Take one command at a time so that allocate() never waits for a whole batch.
            let Some(command) = lock(&self.shared.queue).pop_front() else {
                break;
            };
            self.apply(command, now);
        }
    }

    fn apply(&mut self, command: Command, now: u64) {
        match command {
            Command::Add(new) => {
                self.shared.queued_sessions.fetch_sub(1, Ordering::Relaxed);
                self.add(*new);
            }
            Command::Remote {
                id,
                side,
                rtp,
                rtcp,
            } => {
                let Some(session) = self.session_mut(id) else {
                    return;
                };
                session.set_remote(side.index(), rtp, rtcp, now);
            }
            Command::Hold { id, held } => {
                let Some(session) = self.session_mut(id) else {
                    return;
                };
                if session.held && !held {
                    // Resumed: give the sides a fresh `one_way_after` before judging them.
                    session.armed_at = Some(now);
                    session.last_rtp = [0, 0];
                }
                session.held = held;
            }
            Command::ClockRate {
                id,
                payload_type,
                clock_rate,
            } => {
                let Some(session) = self.session_mut(id) else {
                    return;
                };
                session.clock_rates.retain(|(pt, _)| *pt != payload_type);
                session.clock_rates.push((payload_type, clock_rate));
            }
            Command::Close { id } => self.close(id),
        }
    }

    fn session_mut(&mut self, id: u64) -> Option<&mut Session> {
        let slot = *self.by_id.get(&id)?;
        self.sessions.get_mut(slot)?.as_mut()
    }

    fn add(&mut self, new: NewSession) {
        let NewSession {
            shared,
            ports,
            addresses,
            fresh: [a_fresh, b_fresh],
        } = new;
        let id = shared.id;
        let a = self.adopt(addresses[0], ports[0], a_fresh);
        let b = self.adopt(addresses[1], ports[1], b_fresh);
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => {
                tracing::error!(
                    session = id,
                    "cannot watch a media socket, session not relayed"
                );
                for (side, pair) in [a, b].into_iter().enumerate() {
                    if let Some(pair) = pair {
                        self.park(token(addresses[side], ports[side]), pair);
                    }
                }
                self.release_ports(ports);
                self.live_sessions.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        };
        let slot = self.free_slots.pop().unwrap_or(self.sessions.len());
        let tokens = [0, 1].map(|side| {
            let rtp = token(addresses[side], ports[side]);
            [rtp, rtp | 1]
        });
        for (side, pair) in tokens.iter().enumerate() {
            for &token in pair {
                if let Some(route) = self.route.get_mut(token as usize) {
                    *route = ((slot as u32 + 1) << 1) | side as u32;
                }
            }
        }
        let session = Session::new(shared, [a, b], ports, tokens);
        if slot == self.sessions.len() {
            self.sessions.push(Some(session));
        } else if let Some(entry) = self.sessions.get_mut(slot) {
            *entry = Some(session);
        }
        self.by_id.insert(id, slot);
    }

    /// The `[rtp, rtcp]` sockets of a pair for a new session: `fresh` ones (bound just now)
    /// are registered with epoll; otherwise the idle ones the thread holds. `None` (logged by
    /// the caller) when that fails; a fresh pair is then closed and marked unbound.
    fn adopt(
        &mut self,
        address: usize,
        port: u16,
        fresh: Option<[UdpSocket; 2]>,
    ) -> Option<[UdpSocket; 2]> {
        let rtp = token(address, port);
        let Some(pair) = fresh else {
            let sockets = [self.idle.remove(&rtp), self.idle.remove(&(rtp | 1))];
            return match sockets {
                [Some(rtp_socket), Some(rtcp_socket)] => Some([rtp_socket, rtcp_socket]),
                [first, second] => {
                    // Not reachable while the pool's `bound` flags are right; keep what exists.
                    for (token, socket) in [(rtp, first), (rtp | 1, second)] {
                        if let Some(socket) = socket {
                            self.idle.insert(token, socket);
                        }
                    }
                    None
                }
            };
        };
        for (kind, socket) in pair.iter().enumerate() {
            let result = epoll::add(
                &self.epoll,
                socket,
                epoll::EventData::new_u64(rtp | kind as u64),
                epoll::EventFlags::IN,
            );
            if let Err(error) = result {
                tracing::error!(%error, port, "cannot watch a media socket");
                if kind == 1 {
                    let _ = epoll::delete(&self.epoll, &pair[0]);
                }
                lock(&self.shared.pool).set_bound(port, address, false);
                return None;
            }
        }
        Some(pair)
    }

    /// Keeps a pair's sockets idle (still watched; their packets are dropped).
    fn park(&mut self, rtp: u64, pair: [UdpSocket; 2]) {
        for (kind, socket) in pair.into_iter().enumerate() {
            let token = rtp | kind as u64;
            if let Some(route) = self.route.get_mut(token as usize) {
                *route = 0;
            }
            self.idle.insert(token, socket);
        }
    }

    fn close(&mut self, id: u64) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let Session {
            sockets,
            tokens,
            peers,
            ports,
            ..
        } = session;
        for (side, pair) in sockets.into_iter().enumerate() {
            for (kind, socket) in pair.iter().enumerate() {
                // The next session on this pair must see every source again.
                if peers[side][kind].connected
                    && let Err(error) = rustix::net::connect_unspec(socket)
                {
                    tracing::warn!(%error, "cannot disconnect a media socket");
                }
            }
            self.park(tokens[side][0], pair);
        }
        self.release_ports(ports);
        self.free_slots.push(slot);
        self.live_sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// Returns a session's pairs to the pool (their sockets stay with the thread, idle).
    fn release_ports(&self, ports: [u16; 2]) {
        let mut pool = lock(&self.shared.pool);
        pool.push(ports[0]);
        pool.push(ports[1]);
    }

    fn tick(&mut self, now: u64) {
        let totals = [self.relayed, self.dropped, self.batches];
        for (counter, value) in self.shared.counters.iter().zip(totals) {
            counter.store(value, Ordering::Relaxed);
        }
        let timers = self.timers;
        for session in self.sessions.iter_mut().flatten() {
            session.unpin_silent(now, timers.relatch);
            let Some(kind) = session.check(now, &timers) else {
                continue;
            };
            let is_timeout = kind == MediaEventKind::RtpTimeout;
            let event = MediaEvent {
                session: session.shared.id,
                label: session.shared.label.clone(),
                kind,
            };
            let delivered = match self.events.try_send(event) {
                Ok(()) => true,
                // Retried on the next tick.
                Err(mpsc::error::TrySendError::Full(_)) => false,
                // Nobody listens any more: do not retry forever.
                Err(mpsc::error::TrySendError::Closed(_)) => true,
            };
            if delivered {
                if is_timeout {
                    session.timeout_reported = true;
                } else {
                    session.one_way_reported = true;
                }
            }
        }
    }
}
