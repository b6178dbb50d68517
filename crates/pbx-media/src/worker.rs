//! One relay thread: a level-triggered epoll loop over the sockets of its sessions.
//!
//! Per readable socket the loop does exactly one `recvfrom` and at most one `sendto` (the same
//! syscall count as a minimal C relay with `recvmmsg`/`sendmmsg` at one packet per wake-up);
//! level triggering means no extra `recvfrom` that ends in `EAGAIN`. A backlog on one socket is
//! served one packet per epoll round, round-robin with every other socket. The clock is read
//! once per epoll round. Commands are applied after the round's packets, so an epoll token
//! never refers to a session slot that was reused within the round.

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
use tokio::sync::mpsc;

use crate::pool::PortPool;
use crate::stats::{self, Datagram, RtpReceiver};
use crate::{MediaEvent, MediaEventKind, RelayConfig, RelayError, SessionShared, Side, lock};

const WAKE_TOKEN: u64 = u64::MAX;
const RTP: usize = 0;
const RTCP: usize = 1;
/// Timer resolution of the media supervision (timeouts, one-way audio, event retries).
const TICK_NS: u64 = 50_000_000;
/// Events per `epoll_wait`.
const EVENTS: usize = 256;
/// Receive buffer: the largest UDP payload, so nothing is ever truncated.
const BUFFER: usize = 65_536;

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

/// A session handed to the relay thread: its sockets (`[side][rtp, rtcp]`) and RTP ports.
#[derive(Debug)]
pub(crate) struct NewSession {
    pub(crate) shared: Arc<SessionShared>,
    pub(crate) sockets: [[UdpSocket; 2]; 2],
    pub(crate) ports: [u16; 2],
}

/// The part of a relay thread that session handles talk to.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    queue: Mutex<VecDeque<Command>>,
    wake: OwnedFd,
    stopped: AtomicBool,
    queued_sessions: AtomicUsize,
}

impl WorkerShared {
    /// Queues a command and wakes the thread; gives the command back when the thread stopped.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        if self.is_stopped() {
            return Err(command);
        }
        if matches!(command, Command::Add(_)) {
            self.queued_sessions.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.queue).push_back(command);
        self.wake();
        Ok(())
    }

    pub(crate) fn queued_sessions(&self) -> usize {
        self.queued_sessions.load(Ordering::Relaxed)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        // An eventfd write only fails when the counter would overflow (it is already readable).
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

pub(crate) fn spawn(
    index: usize,
    config: &RelayConfig,
    pool: Arc<Mutex<PortPool>>,
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
        queue: Mutex::new(VecDeque::new()),
        wake,
        stopped: AtomicBool::new(false),
        queued_sessions: AtomicUsize::new(0),
    });
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let worker = Worker {
        shared: shared.clone(),
        epoll: epoll_fd,
        sessions: Vec::new(),
        free_slots: Vec::new(),
        by_id: HashMap::new(),
        pool,
        live_sessions,
        events,
        timers: Timers {
            rtp_timeout: nanos(config.rtp_timeout),
            hold_timeout: nanos(config.hold_timeout),
            one_way: nanos(config.one_way_after),
            relatch: nanos(config.relatch_after),
        },
        epoch: Instant::now(),
        buffer: vec![0u8; BUFFER].into_boxed_slice(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("media-relay-{index}"))
        .spawn(move || worker.run())?;
    Ok((shared, thread))
}

#[derive(Debug, Clone, Copy)]
struct Timers {
    rtp_timeout: u64,
    hold_timeout: u64,
    one_way: u64,
    relatch: u64,
}

struct Worker {
    shared: Arc<WorkerShared>,
    epoll: OwnedFd,
    sessions: Vec<Option<Session>>,
    free_slots: Vec<usize>,
    by_id: HashMap<u64, usize>,
    pool: Arc<Mutex<PortPool>>,
    live_sessions: Arc<AtomicU64>,
    events: mpsc::Sender<MediaEvent>,
    timers: Timers,
    epoch: Instant,
    buffer: Box<[u8]>,
}

/// One side's address on one port kind (RTP or RTCP).
#[derive(Debug, Clone, Copy, Default)]
struct Peer {
    /// The source learnt from the side's packets.
    latched: Option<SocketAddr>,
    /// The address from the SDP.
    hint: Option<SocketAddr>,
    /// When the latched source last sent (relay clock, ns).
    last_rx: u64,
}

impl Peer {
    /// The latching rule of the crate doc, for a packet from `source` that is not the latched one.
    fn accepts(&self, source: SocketAddr, now: u64, relatch_after: u64) -> bool {
        let Some(latched) = self.latched else {
            return true;
        };
        if self.hint == Some(source) {
            return true;
        }
        now.saturating_sub(self.last_rx) >= relatch_after && source.ip() == latched.ip()
    }
}

struct Session {
    shared: Arc<SessionShared>,
    /// `[side][RTP, RTCP]`.
    sockets: [[UdpSocket; 2]; 2],
    ports: [u16; 2],
    /// `[side][RTP, RTCP]`.
    peers: [[Peer; 2]; 2],
    /// Indexed by the sending side.
    receivers: [RtpReceiver; 2],
    clock_rates: Vec<(u8, u32)>,
    /// Last RTP packet per sending side (0 = none yet).
    last_rtp: [u64; 2],
    /// When supervision started (both sides have an address), `None` before.
    armed_at: Option<u64>,
    held: bool,
    timeout_reported: bool,
    one_way_reported: bool,
}

impl Session {
    /// Accounts and relays one packet received on `side`'s `kind` socket. Returns the new RTP
    /// source when this packet latched the side.
    #[inline]
    fn relay(
        &mut self,
        side: usize,
        kind: usize,
        packet: &[u8],
        source: SocketAddr,
        now: u64,
        relatch_after: u64,
    ) -> Option<SocketAddr> {
        let counters = &self.shared.counters[side];
        let peer = &mut self.peers[side][kind];
        let mut latched = None;
        if peer.latched != Some(source) {
            if !peer.accepts(source, now, relatch_after) {
                counters.count_dropped();
                return None;
            }
            peer.latched = Some(source);
            if kind == RTP {
                lock(&self.shared.latched)[side] = Some(source);
                latched = Some(source);
            }
        }
        peer.last_rx = now;
        if kind == RTP {
            match stats::classify(packet) {
                Datagram::Rtp(header) => {
                    let rates = &self.clock_rates;
                    let receiver = &mut self.receivers[side];
                    receiver.on_rtp(header, packet.len(), now, |pt| clock_rate(rates, pt));
                    receiver.publish(counters);
                    self.last_rtp[side] = now;
                }
                Datagram::Rtcp => counters.count_rtcp(packet.len()),
                Datagram::Other => {}
            }
        } else {
            counters.count_rtcp(packet.len());
        }
        let other = side ^ 1;
        match self.destination(other, kind) {
            // A send error (ICMP unreachable from an earlier packet, full buffer) loses this
            // packet only; RTP tolerates it and the next packet tries again.
            Some(destination) => {
                let _ = self.sockets[other][kind].send_to(packet, destination);
            }
            None => counters.count_dropped(),
        }
        latched
    }

    /// Where packets for `side` on `kind` go: the latched source, else the SDP address; RTCP
    /// falls back to the latched RTP address + 1 when the RTP stream latched elsewhere than SDP.
    fn destination(&self, side: usize, kind: usize) -> Option<SocketAddr> {
        let peer = &self.peers[side][kind];
        if let Some(latched) = peer.latched {
            return Some(latched);
        }
        if kind == RTCP {
            let rtp = &self.peers[side][RTP];
            if let Some(latched) = rtp.latched
                && rtp.hint != Some(latched)
            {
                return latched
                    .port()
                    .checked_add(1)
                    .map(|port| SocketAddr::new(latched.ip(), port));
            }
        }
        peer.hint
    }

    fn has_addresses(&self) -> bool {
        self.peers
            .iter()
            .all(|side| side[RTP].hint.is_some() || side[RTP].latched.is_some())
    }

    /// Media supervision; returns the event to raise, if any. `emitted` is called back by the
    /// worker once the event was queued.
    fn check(&mut self, now: u64, timers: &Timers) -> Option<MediaEventKind> {
        if self.armed_at.is_none() && self.has_addresses() {
            self.armed_at = Some(now);
        }
        let armed = self.armed_at?;
        let last = [self.last_rtp[0].max(armed), self.last_rtp[1].max(armed)];
        let timeout = if self.held {
            timers.hold_timeout
        } else {
            timers.rtp_timeout
        };
        if now.saturating_sub(last[0].max(last[1])) >= timeout {
            if !self.timeout_reported {
                return Some(MediaEventKind::RtpTimeout);
            }
        } else {
            self.timeout_reported = false;
        }
        if self.held {
            return None;
        }
        let active =
            |side: usize| self.last_rtp[side] != 0 && now - self.last_rtp[side] < timers.one_way;
        let silent = |side: usize| now.saturating_sub(last[side]) >= timers.one_way;
        let (a_active, b_active) = (active(0), active(1));
        if a_active && b_active {
            self.one_way_reported = false;
            return None;
        }
        if self.one_way_reported {
            return None;
        }
        if a_active && silent(1) {
            return Some(MediaEventKind::OneWayAudio {
                direction: crate::Flow::AToB,
            });
        }
        if b_active && silent(0) {
            return Some(MediaEventKind::OneWayAudio {
                direction: crate::Flow::BToA,
            });
        }
        None
    }
}

fn clock_rate(rates: &[(u8, u32)], payload_type: u8) -> u32 {
    rates
        .iter()
        .find(|(pt, _)| *pt == payload_type)
        .map_or_else(|| stats::static_clock_rate(payload_type), |(_, rate)| *rate)
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
            let mut woken = false;
            for event in &events {
                let data = event.data;
                let token = data.u64();
                if token == WAKE_TOKEN {
                    woken = true;
                } else {
                    self.on_readable(token, now);
                }
            }
            if woken && self.on_wake(now) == Flow::Stop {
                break;
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
                let mut pool = lock(&self.pool);
                pool.push(new.ports[0]);
                pool.push(new.ports[1]);
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
        let slot = (token >> 2) as usize;
        let side = ((token >> 1) & 1) as usize;
        let kind = (token & 1) as usize;
        let Some(Some(session)) = self.sessions.get_mut(slot) else {
            return;
        };
        let (len, source) = match session.sockets[side][kind].recv_from(&mut self.buffer) {
            Ok(received) => received,
            // WouldBlock (spurious wake-up) or a queued ICMP error: nothing to relay.
            Err(_) => return,
        };
        let packet = &self.buffer[..len.min(self.buffer.len())];
        if let Some(addr) = session.relay(side, kind, packet, source, now, self.timers.relatch) {
            let event = MediaEvent {
                session: session.shared.id,
                label: session.shared.label.clone(),
                kind: MediaEventKind::Latched {
                    side: Side::from_index(side),
                    addr,
                },
            };
            tracing::debug!(session = session.shared.id, side = ?Side::from_index(side), %addr, "RTP latched");
            // Informational: dropped when the channel is full.
            let _ = self.events.try_send(event);
        }
    }

    fn on_wake(&mut self, now: u64) -> Flow {
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(&self.shared.wake, &mut counter);
        if self.shared.is_stopped() {
            return Flow::Stop;
        }
        loop {
            // Take one command at a time so that allocate() never waits for a whole batch.
            let Some(command) = lock(&self.shared.queue).pop_front() else {
                break;
            };
            self.apply(command, now);
        }
        Flow::Continue
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
                let s = side.index();
                let rtp_peer = &mut session.peers[s][RTP];
                if rtp_peer.hint.is_some_and(|hint| hint != rtp) {
                    // The side moved (new SDP address): learn its source again.
                    rtp_peer.latched = None;
                    session.peers[s][RTCP].latched = None;
                    lock(&session.shared.latched)[s] = None;
                }
                session.peers[s][RTP].hint = Some(rtp);
                let rtcp = rtcp.or_else(|| {
                    rtp.port()
                        .checked_add(1)
                        .map(|port| SocketAddr::new(rtp.ip(), port))
                });
                session.peers[s][RTCP].hint = rtcp;
                if session.armed_at.is_none() && session.has_addresses() {
                    session.armed_at = Some(now);
                }
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
        let slot = self.free_slots.pop().unwrap_or(self.sessions.len());
        let id = new.shared.id;
        let mut registered = Vec::with_capacity(4);
        for (side, pair) in new.sockets.iter().enumerate() {
            for (kind, socket) in pair.iter().enumerate() {
                let token = (slot as u64) << 2 | (side as u64) << 1 | kind as u64;
                let result = epoll::add(
                    &self.epoll,
                    socket,
                    epoll::EventData::new_u64(token),
                    epoll::EventFlags::IN,
                );
                match result {
                    Ok(()) => registered.push(socket),
                    Err(error) => {
                        tracing::error!(%error, session = id, "cannot watch a media socket, session not relayed");
                        for socket in registered {
                            let _ = epoll::delete(&self.epoll, socket);
                        }
                        self.release_ports(new.ports);
                        if slot < self.sessions.len() {
                            self.free_slots.push(slot);
                        }
                        return;
                    }
                }
            }
        }
        let session = Session {
            shared: new.shared,
            sockets: new.sockets,
            ports: new.ports,
            peers: Default::default(),
            receivers: Default::default(),
            clock_rates: Vec::new(),
            last_rtp: [0, 0],
            armed_at: None,
            held: false,
            timeout_reported: false,
            one_way_reported: false,
        };
        if slot == self.sessions.len() {
            self.sessions.push(Some(session));
        } else if let Some(entry) = self.sessions.get_mut(slot) {
            *entry = Some(session);
        }
        self.by_id.insert(id, slot);
    }

    fn close(&mut self, id: u64) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(slot).and_then(Option::take) else {
            return;
        };
        for pair in &session.sockets {
            for socket in pair {
                let _ = epoll::delete(&self.epoll, socket);
            }
        }
        let ports = session.ports;
        drop(session);
        self.release_ports(ports);
        self.free_slots.push(slot);
        self.live_sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// Returns a session's pairs to the pool; only after its sockets are closed.
    fn release_ports(&self, ports: [u16; 2]) {
        let mut pool = lock(&self.pool);
        pool.push(ports[0]);
        pool.push(ports[1]);
    }

    fn tick(&mut self, now: u64) {
        let timers = self.timers;
        for session in self.sessions.iter_mut().flatten() {
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
