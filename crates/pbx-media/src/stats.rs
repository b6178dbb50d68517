//! Receive-side RTP statistics for one direction of a session: packet and byte counts, loss from
//! the sequence numbers (RFC 3550 A.1/A.3) and interarrival jitter (RFC 3550 6.4.1, A.8).
//!
//! Sans-IO: the arrival time comes in as nanoseconds on the relay's monotonic clock. The relay
//! thread owns a [`RtpReceiver`] per direction and publishes its numbers into the
//! [`DirCounters`] that [`crate::MediaSession::stats`] reads without a lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A sequence jump larger than this is a restart candidate (RFC 3550 A.1 `MAX_DROPOUT`).
const MAX_DROPOUT: u16 = 3000;
/// Packets this far behind the highest sequence are late arrivals (RFC 3550 A.1 `MAX_MISORDER`).
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// Statistics of the media flowing in one direction (received from one side and relayed to the
/// other), as [`crate::MediaSession::stats`] returns them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamStats {
    /// RTP packets received from the sending side (relayed or not).
    pub packets: u64,
    /// RTP bytes (UDP payload) received from the sending side.
    pub bytes: u64,
    /// RTCP packets received from the sending side (on the RTCP port, or muxed on the RTP port).
    pub rtcp_packets: u64,
    /// RTCP bytes received from the sending side.
    pub rtcp_bytes: u64,
    /// Packets lost according to the RTP sequence numbers, summed over every SSRC the side used
    /// (expected − received per SSRC, never negative).
    pub lost: u64,
    /// Interarrival jitter of the current SSRC in milliseconds (RFC 3550 6.4.1), 0 while the
    /// clock rate of the payload type is unknown.
    pub jitter_ms: f64,
    /// Highest jitter seen during the session, in milliseconds.
    pub max_jitter_ms: f64,
    /// The SSRC currently being received, if any packet came.
    pub ssrc: Option<u32>,
    /// How often the SSRC changed after the first one (a new stream from the same side; the
    /// loss and jitter state restart, packets keep flowing).
    pub ssrc_changes: u32,
    /// Packets received but not relayed: from a source that may not take over the latched
    /// stream, or with no known destination yet.
    pub dropped: u64,
}

/// Lock-free counters written by the relay thread (single writer), read by `stats()`.
#[derive(Debug, Default)]
pub(crate) struct DirCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
    rtcp_packets: AtomicU64,
    rtcp_bytes: AtomicU64,
    lost: AtomicU64,
    jitter_us: AtomicU32,
    max_jitter_us: AtomicU32,
    /// `u64::MAX` = none yet, else the SSRC.
    ssrc: AtomicU64,
    ssrc_changes: AtomicU32,
    dropped: AtomicU64,
}

impl DirCounters {
    pub(crate) fn new() -> Self {
        let counters = Self::default();
        counters.ssrc.store(u64::MAX, Ordering::Relaxed);
        counters
    }

    pub(crate) fn snapshot(&self) -> StreamStats {
        let ssrc = self.ssrc.load(Ordering::Relaxed);
        StreamStats {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            rtcp_packets: self.rtcp_packets.load(Ordering::Relaxed),
            rtcp_bytes: self.rtcp_bytes.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            jitter_ms: f64::from(self.jitter_us.load(Ordering::Relaxed)) / 1000.0,
            max_jitter_ms: f64::from(self.max_jitter_us.load(Ordering::Relaxed)) / 1000.0,
            ssrc: u32::try_from(ssrc).ok(),
            ssrc_changes: self.ssrc_changes.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// Single writer: a plain load + store, no read-modify-write needed.
    #[inline]
    fn bump(counter: &AtomicU64, by: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(by),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub(crate) fn count_rtcp(&self, len: usize) {
        Self::bump(&self.rtcp_packets, 1);
        Self::bump(&self.rtcp_bytes, len as u64);
    }

    #[inline]
    pub(crate) fn count_dropped(&self) {
        Self::bump(&self.dropped, 1);
    }
}

/// Sequence and jitter state of the SSRC currently received in one direction.
#[derive(Debug, Clone, Default)]
pub(crate) struct RtpReceiver {
    ssrc: Option<u32>,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    /// RFC 3550 A.1 `bad_seq`: the sequence that would confirm a restart.
    bad_seq: u32,
    received: u64,
    /// Loss of earlier SSRCs and sequence restarts.
    lost_before: u64,
    /// Jitter estimate ×16 in timestamp units (RFC 3550 A.8).
    jitter16: u32,
    /// Last transit time (arrival − RTP timestamp, both in timestamp units) and the payload type
    /// it was measured for; `None` until a packet with a known clock rate arrived.
    transit: Option<(u8, u32)>,
    /// Cached clock rate lookup for the last payload type.
    last_pt: Option<(u8, u32)>,
    max_jitter_us: u32,
    packets: u64,
    bytes: u64,
    ssrc_changes: u32,
}

/// The RTP header fields the statistics need, from a datagram that looks like RTP (version 2,
/// at least 12 bytes, not an RTCP packet type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpHeader {
    pub(crate) payload_type: u8,
    pub(crate) seq: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
}

/// What a datagram on an RTP port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Datagram {
    Rtp(RtpHeader),
    /// RTCP multiplexed on the RTP port (RFC 5761: packet types 192–223).
    Rtcp,
    /// Not RTP (STUN, garbage); relayed but not counted in the RTP statistics.
    Other,
}

#[inline]
pub(crate) fn classify(packet: &[u8]) -> Datagram {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return Datagram::Other;
    }
    if (192..=223).contains(&packet[1]) {
        return Datagram::Rtcp;
    }
    Datagram::Rtp(RtpHeader {
        payload_type: packet[1] & 0x7f,
        seq: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    })
}

/// Clock rate of the RFC 3551 static payload types (0 = unknown or dynamic).
pub(crate) fn static_clock_rate(payload_type: u8) -> u32 {
    match payload_type {
        0..=8 | 9 | 12 | 13 | 15 | 18 => 8000, // G.722 (9) uses an 8 kHz RTP clock
        10 | 11 => 44_100,
        14 | 25 | 26 | 28 | 31..=34 => 90_000,
        16 => 11_025,
        17 => 22_050,
        _ => 0,
    }
}

impl RtpReceiver {
    /// Accounts one RTP packet of `len` bytes arriving at `now_ns`. `clock_rate` maps a payload
    /// type to its RTP clock rate (0 = unknown: no jitter for that payload type).
    #[inline]
    pub(crate) fn on_rtp(
        &mut self,
        header: RtpHeader,
        len: usize,
        now_ns: u64,
        clock_rate: impl Fn(u8) -> u32,
    ) {
        self.packets += 1;
        self.bytes += len as u64;
        if self.ssrc != Some(header.ssrc) {
            if self.ssrc.is_some() {
                self.ssrc_changes += 1;
                self.lost_before += self.current_lost();
            }
            self.ssrc = Some(header.ssrc);
            self.restart(header.seq);
            self.jitter16 = 0;
            self.transit = None;
        } else if !self.update_seq(header.seq) {
            return;
        }
        self.received += 1;
        self.update_jitter(header, now_ns, clock_rate);
    }

    fn restart(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.cycles = 0;
        self.bad_seq = SEQ_MOD + 1;
        self.received = 0;
    }

    /// RFC 3550 A.1 without the probation: returns false when the packet must not be counted
    /// (a first out-of-range sequence, which may announce a restart).
    fn update_seq(&mut self, seq: u16) -> bool {
        let delta = seq.wrapping_sub(self.max_seq);
        if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A large jump: restart only when the next packet follows it.
            if u32::from(seq) == self.bad_seq {
                self.lost_before += self.current_lost();
                self.restart(seq);
                self.transit = None;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return false;
            }
        }
        // else: duplicate or reordered packet, counted as received.
        true
    }

    fn current_lost(&self) -> u64 {
        let extended_max = u64::from(self.cycles) + u64::from(self.max_seq);
        let expected = extended_max + 1 - u64::from(self.base_seq);
        expected.saturating_sub(self.received)
    }

    fn update_jitter(&mut self, header: RtpHeader, now_ns: u64, clock_rate: impl Fn(u8) -> u32) {
        let rate = match self.last_pt {
            Some((pt, rate)) if pt == header.payload_type => rate,
            _ => {
                let rate = clock_rate(header.payload_type);
                self.last_pt = Some((header.payload_type, rate));
                rate
            }
        };
        if rate == 0 {
            return;
        }
        // Arrival time in timestamp units (mod 2^32), without a u128 division on the packet path:
        // whole seconds × rate plus the sub-second part (< 1e9 × rate fits in u64).
        let rate64 = u64::from(rate);
        let arrival = ((now_ns / 1_000_000_000).wrapping_mul(rate64)
            + (now_ns % 1_000_000_000) * rate64 / 1_000_000_000) as u32;
        let transit = arrival.wrapping_sub(header.timestamp);
        if let Some((pt, last)) = self.transit
            && pt == header.payload_type
        {
            let d = (transit.wrapping_sub(last) as i32).unsigned_abs();
            // J += (|D| - J) / 16, kept ×16 (RFC 3550 A.8).
            let j = i64::from(self.jitter16) + i64::from(d) - ((i64::from(self.jitter16) + 8) >> 4);
            self.jitter16 = u32::try_from(j.max(0)).unwrap_or(u32::MAX);
            let jitter_us = self.jitter_us(rate);
            self.max_jitter_us = self.max_jitter_us.max(jitter_us);
        }
        self.transit = Some((header.payload_type, transit));
    }

    fn jitter_us(&self, rate: u32) -> u32 {
        let units = u64::from(self.jitter16 >> 4);
        u32::try_from(units * 1_000_000 / u64::from(rate.max(1))).unwrap_or(u32::MAX)
    }

    /// Copies the numbers into the shared counters (single writer: plain stores).
    #[inline]
    pub(crate) fn publish(&self, out: &DirCounters) {
        out.packets.store(self.packets, Ordering::Relaxed);
        out.bytes.store(self.bytes, Ordering::Relaxed);
        out.lost
            .store(self.lost_before + self.current_lost(), Ordering::Relaxed);
        let rate = self.last_pt.map_or(0, |(_, rate)| rate);
        let jitter = if rate == 0 { 0 } else { self.jitter_us(rate) };
        out.jitter_us.store(jitter, Ordering::Relaxed);
        out.max_jitter_us
            .store(self.max_jitter_us, Ordering::Relaxed);
        out.ssrc
            .store(self.ssrc.map_or(u64::MAX, u64::from), Ordering::Relaxed);
        out.ssrc_changes.store(self.ssrc_changes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u16, timestamp: u32, ssrc: u32) -> RtpHeader {
        RtpHeader {
            payload_type: 0,
            seq,
            timestamp,
            ssrc,
        }
    }

    fn feed(rx: &mut RtpReceiver, seq: u16, ts: u32, ssrc: u32, now_ms: u64) {
        rx.on_rtp(
            header(seq, ts, ssrc),
            172,
            now_ms * 1_000_000,
            static_clock_rate,
        );
    }

    fn stats(rx: &RtpReceiver) -> StreamStats {
        let counters = DirCounters::new();
        rx.publish(&counters);
        counters.snapshot()
    }

    #[test]
    fn classify_rtp_rtcp_other() {
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 0x80 | 8; // marker + PCMA
        rtp[2..4].copy_from_slice(&513u16.to_be_bytes());
        rtp[8..12].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        let Datagram::Rtp(h) = classify(&rtp) else {
            panic!("not rtp")
        };
        assert_eq!((h.payload_type, h.seq, h.ssrc), (8, 513, 0xdead_beef));
        let mut rtcp = rtp;
        rtcp[1] = 200; // SR
        assert_eq!(classify(&rtcp), Datagram::Rtcp);
        assert_eq!(classify(&rtp[..11]), Datagram::Other);
        assert_eq!(classify(&[0u8; 20]), Datagram::Other); // version 0 (STUN)
    }

    #[test]
    fn loss_counted_from_gaps_and_wraparound() {
        let mut rx = RtpReceiver::default();
        // 65530..=65535, 0..=9 with 65534, 2 and 3 missing: 16 expected, 13 received.
        let mut t = 0;
        for seq in (65530u16..=65535).chain(0..=9) {
            t += 20;
            if [65534, 2, 3].contains(&seq) {
                continue;
            }
            feed(&mut rx, seq, (t * 8) as u32, 7, t);
        }
        let s = stats(&rx);
        assert_eq!(s.packets, 13);
        assert_eq!(s.bytes, 13 * 172);
        assert_eq!(s.lost, 3);
        assert_eq!(s.ssrc, Some(7));
        assert_eq!(s.ssrc_changes, 0);
    }

    #[test]
    fn reordered_and_duplicate_packets_do_not_count_as_loss() {
        let mut rx = RtpReceiver::default();
        for (i, seq) in [1u16, 2, 4, 3, 5, 5, 6].into_iter().enumerate() {
            feed(&mut rx, seq, u32::from(seq) * 160, 1, i as u64 * 20);
        }
        assert_eq!(stats(&rx).lost, 0);
    }

    #[test]
    fn jitter_zero_for_perfect_pacing_and_matches_rfc_formula() {
        let mut rx = RtpReceiver::default();
        for i in 0..100u16 {
            feed(&mut rx, i, u32::from(i) * 160, 1, u64::from(i) * 20);
        }
        assert_eq!(stats(&rx).jitter_ms, 0.0);

        // Alternate arrival offsets of 0 and +4 ms: |D| = 32 timestamp units every packet,
        // J converges to 32 units = 4 ms at 8 kHz. Reference: the floating-point formula.
        let mut rx = RtpReceiver::default();
        let mut reference = 0.0f64;
        for i in 0..400u16 {
            let offset = if i % 2 == 1 { 4 } else { 0 };
            feed(
                &mut rx,
                i,
                u32::from(i) * 160,
                1,
                u64::from(i) * 20 + offset,
            );
            if i > 0 {
                reference += (32.0 - reference) / 16.0;
            }
        }
        let s = stats(&rx);
        let expected_ms = reference / 8.0;
        assert!(
            (s.jitter_ms - expected_ms).abs() < 0.2,
            "{} vs {expected_ms}",
            s.jitter_ms
        );
        assert!(s.max_jitter_ms >= s.jitter_ms);
        assert!(s.jitter_ms > 3.5);
    }

    #[test]
    fn jitter_stays_zero_across_days_of_relay_uptime() {
        // Perfect pacing starting 5 days into the relay's clock at 90 kHz and 48 kHz.
        for (pt, rate, step) in [(26u8, 90_000u64, 3000u32), (96, 48_000, 960)] {
            let mut rx = RtpReceiver::default();
            let start = 5 * 86_400 * 1_000_000_000u64;
            for i in 0..100u32 {
                let h = RtpHeader {
                    payload_type: pt,
                    seq: i as u16,
                    timestamp: i * step,
                    ssrc: 9,
                };
                let now = start + u64::from(i) * u64::from(step) * 1_000_000_000 / rate;
                rx.on_rtp(h, 100, now, |p| if p == pt { rate as u32 } else { 0 });
            }
            assert_eq!(stats(&rx).jitter_ms, 0.0, "rate {rate}");
        }
    }

    #[test]
    fn unknown_clock_rate_gives_no_jitter() {
        let mut rx = RtpReceiver::default();
        for i in 0..50u16 {
            let h = RtpHeader {
                payload_type: 101,
                seq: i,
                timestamp: 0,
                ssrc: 1,
            };
            rx.on_rtp(h, 20, u64::from(i) * 7_000_000, static_clock_rate);
        }
        let s = stats(&rx);
        assert_eq!(s.jitter_ms, 0.0);
        assert_eq!(s.packets, 50);
    }

    #[test]
    fn ssrc_change_restarts_sequence_state_and_keeps_loss() {
        let mut rx = RtpReceiver::default();
        for seq in [10u16, 11, 13] {
            feed(&mut rx, seq, u32::from(seq) * 160, 1, u64::from(seq) * 20);
        }
        // New SSRC with an unrelated sequence: no loss from the jump, one loss from before.
        for seq in [40_000u16, 40_001, 40_002] {
            feed(
                &mut rx,
                seq,
                999 + u32::from(seq) * 160,
                2,
                400 + u64::from(seq - 40_000) * 20,
            );
        }
        let s = stats(&rx);
        assert_eq!(s.ssrc, Some(2));
        assert_eq!(s.ssrc_changes, 1);
        assert_eq!(s.lost, 1);
        assert_eq!(s.packets, 6);
    }

    #[test]
    fn sequence_restart_needs_two_consecutive_packets() {
        let mut rx = RtpReceiver::default();
        for seq in 0u16..10 {
            feed(&mut rx, seq, u32::from(seq) * 160, 1, u64::from(seq) * 20);
        }
        // One stray far-away sequence is ignored for loss...
        feed(&mut rx, 30_000, 0, 1, 220);
        feed(&mut rx, 10, 1600, 1, 240);
        assert_eq!(stats(&rx).lost, 0);
        // ...two in a row restart the sequence space without inventing loss.
        feed(&mut rx, 50_000, 0, 1, 260);
        feed(&mut rx, 50_001, 160, 1, 280);
        feed(&mut rx, 50_002, 320, 1, 300);
        assert_eq!(stats(&rx).lost, 0);
        assert_eq!(stats(&rx).packets, 15);
    }
}
