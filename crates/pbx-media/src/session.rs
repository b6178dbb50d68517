//! Per-session relay state owned by a relay thread: the latching rule, the destination of each
//! packet, statistics and media supervision. No I/O here: the worker receives and sends.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use crate::stats::{self, Datagram, RtpReceiver};
use crate::{Flow, MediaEventKind, SessionShared, lock};

pub(crate) const RTP: usize = 0;
pub(crate) const RTCP: usize = 1;

/// Supervision and latching timers in relay-clock nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    pub(crate) rtp_timeout: u64,
    pub(crate) hold_timeout: u64,
    pub(crate) one_way: u64,
    pub(crate) relatch: u64,
}

/// One side's address on one port kind (RTP or RTCP).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Peer {
    /// The source learnt from the side's packets.
    pub(crate) latched: Option<SocketAddr>,
    /// The address from the SDP.
    pub(crate) hint: Option<SocketAddr>,
    /// When the latched source last sent (relay clock, ns).
    pub(crate) last_rx: u64,
    /// The side's socket is `connect`ed to `latched` (which is then the SDP address): the kernel
    /// delivers only that source's packets, and sends skip the per-packet route lookup.
    pub(crate) connected: bool,
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

pub(crate) struct Session {
    pub(crate) shared: Arc<SessionShared>,
    /// `[side][RTP, RTCP]`.
    pub(crate) sockets: [[UdpSocket; 2]; 2],
    pub(crate) ports: [u16; 2],
    /// `[side][RTP, RTCP]`: the sockets' epoll tokens.
    pub(crate) tokens: [[u64; 2]; 2],
    /// `[side][RTP, RTCP]`.
    pub(crate) peers: [[Peer; 2]; 2],
    /// Indexed by the sending side.
    receivers: [RtpReceiver; 2],
    pub(crate) clock_rates: Vec<(u8, u32)>,
    /// Last RTP packet per sending side (0 = none yet).
    pub(crate) last_rtp: [u64; 2],
    /// When supervision started (both sides have an address), `None` before.
    pub(crate) armed_at: Option<u64>,
    pub(crate) held: bool,
    pub(crate) timeout_reported: bool,
    pub(crate) one_way_reported: bool,
    /// `[side][RTP, RTCP]`: the epoll round in which the socket was last served. A socket that
    /// is readable again in the very next round has a backlog and is drained in a batch.
    pub(crate) served: [[u32; 2]; 2],
}

/// What to do with an admitted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admitted {
    /// Where to send it (from the other side's socket of the same kind); `None` = dropped
    /// (already counted).
    pub(crate) destination: Option<SocketAddr>,
    /// The sending socket is connected to `destination`: use `send`, not `sendto`.
    pub(crate) connected: bool,
    /// The side's new RTP source, when this packet latched it.
    pub(crate) latched: Option<SocketAddr>,
}

impl Session {
    pub(crate) fn new(
        shared: Arc<SessionShared>,
        sockets: [[UdpSocket; 2]; 2],
        ports: [u16; 2],
        tokens: [[u64; 2]; 2],
    ) -> Self {
        Session {
            shared,
            sockets,
            ports,
            tokens,
            peers: Default::default(),
            receivers: Default::default(),
            clock_rates: Vec::new(),
            last_rtp: [0, 0],
            armed_at: None,
            held: false,
            timeout_reported: false,
            one_way_reported: false,
            served: [[0; 2]; 2],
        }
    }

    /// Applies the latching rule and the statistics to one packet received on `side`'s `kind`
    /// socket, and says where to relay it.
    #[inline]
    pub(crate) fn admit(
        &mut self,
        side: usize,
        kind: usize,
        packet: &[u8],
        source: SocketAddr,
        now: u64,
        relatch_after: u64,
    ) -> Admitted {
        let counters = &self.shared.counters[side];
        let peer = &mut self.peers[side][kind];
        let mut latched = None;
        if peer.latched != Some(source) {
            if !peer.accepts(source, now, relatch_after) {
                counters.count_dropped();
                return Admitted {
                    destination: None,
                    connected: false,
                    latched: None,
                };
            }
            // A packet queued before the socket was pinned may relatch it elsewhere: unpin, so
            // that the socket sends where `latched` says.
            if std::mem::take(&mut peer.connected) {
                let _ = rustix::net::connect_unspec(&self.sockets[side][kind]);
            }
            peer.latched = Some(source);
            if kind == RTP {
                lock(&self.shared.latched)[side] = Some(source);
                latched = Some(source);
            }
        }
        peer.last_rx = now;
        // The side sends from its SDP address: pin the stream to it in the kernel (see
        // `unpin_silent`). Behind NAT the source differs from the SDP address and the socket
        // stays unconnected, so that the relatch rules keep seeing other sources.
        if !peer.connected && peer.hint == Some(source) {
            peer.connected = rustix::net::connect(&self.sockets[side][kind], &source).is_ok();
        }
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
        let destination = self.destination(side ^ 1, kind);
        if destination.is_none() {
            self.shared.counters[side].count_dropped();
        }
        Admitted {
            destination,
            connected: self.peers[side ^ 1][kind].connected,
            latched,
        }
    }

    /// The side's addresses from its SDP. A changed RTP address clears the latch (the side
    /// moved); an unspecified address or port 0 (`c=0.0.0.0` hold, a rejected stream) changes
    /// nothing, so the stream stays latched where it is.
    pub(crate) fn set_remote(
        &mut self,
        side: usize,
        rtp: SocketAddr,
        rtcp: Option<SocketAddr>,
        now: u64,
    ) {
        if rtp.ip().is_unspecified() || rtp.port() == 0 {
            return;
        }
        let rtcp = rtcp
            .filter(|rtcp| !rtcp.ip().is_unspecified() && rtcp.port() != 0)
            .or_else(|| {
                rtp.port()
                    .checked_add(1)
                    .map(|port| SocketAddr::new(rtp.ip(), port))
            });
        if self.peers[side][RTP].hint.is_some_and(|hint| hint != rtp) {
            // The side moved: learn both of its sources again.
            self.unlatch(side, RTP);
            self.unlatch(side, RTCP);
            lock(&self.shared.latched)[side] = None;
        } else if self.peers[side][RTCP]
            .hint
            .is_some_and(|hint| Some(hint) != rtcp)
        {
            self.unlatch(side, RTCP);
        }
        self.peers[side][RTP].hint = Some(rtp);
        self.peers[side][RTCP].hint = rtcp;
        if self.armed_at.is_none() && self.has_addresses() {
            self.armed_at = Some(now);
        }
    }

    fn unlatch(&mut self, side: usize, kind: usize) {
        self.peers[side][kind].latched = None;
        self.unpin(side, kind);
    }

    fn unpin(&mut self, side: usize, kind: usize) {
        if std::mem::take(&mut self.peers[side][kind].connected)
            && let Err(error) = rustix::net::connect_unspec(&self.sockets[side][kind])
        {
            tracing::warn!(%error, "cannot disconnect a media socket");
        }
    }

    /// A pinned (connected) stream whose source has been silent for `relatch_after` is
    /// unpinned, so that the relatch rule (same IP, new port) can see a NAT's new mapping; the
    /// next packet from the SDP address pins it again.
    pub(crate) fn unpin_silent(&mut self, now: u64, relatch_after: u64) {
        for side in 0..2 {
            for kind in [RTP, RTCP] {
                let peer = &self.peers[side][kind];
                if peer.connected && now.saturating_sub(peer.last_rx) >= relatch_after {
                    self.unpin(side, kind);
                }
            }
        }
    }

    /// Where packets for `side` on `kind` go: the latched source, else the SDP address; RTCP
    /// falls back to the latched RTP address + 1 when the RTP stream latched elsewhere than SDP.
    pub(crate) fn destination(&self, side: usize, kind: usize) -> Option<SocketAddr> {
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

    pub(crate) fn has_addresses(&self) -> bool {
        self.peers
            .iter()
            .all(|side| side[RTP].hint.is_some() || side[RTP].latched.is_some())
    }

    /// Media supervision; returns the event to raise, if any. `emitted` is called back by the
    /// worker once the event was queued.
    pub(crate) fn check(&mut self, now: u64, timers: &Timers) -> Option<MediaEventKind> {
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
                direction: Flow::AToB,
            });
        }
        if b_active && silent(0) {
            return Some(MediaEventKind::OneWayAudio {
                direction: Flow::BToA,
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
