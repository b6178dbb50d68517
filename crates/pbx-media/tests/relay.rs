//! The relay with real UDP "phones" on loopback (127.0.0.1 and [::1]); every wait is bounded.

// Test helpers outside #[test] fns: a failed unwrap there is a failed test, as in the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use pbx_media::{
    Flow, IpFamily, MediaEvent, MediaEventKind, MediaRelay, MediaSession, RelayAddress,
    RelayConfig, RelayError, Side,
};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(5);
const LOCAL4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Every test gets its own port range, below the ephemeral range (32768+) so that the phones'
/// port-0 sockets never take a relay port. Tests run in parallel within the binary; nextest runs
/// them in separate processes, so the range also depends on the process id.
fn ports(pairs: u16) -> RangeInclusive<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 21_000 + (std::process::id() % 55) as u16 * 200;
    let offset = NEXT.fetch_add(pairs * 2, Ordering::Relaxed);
    let start = base + offset;
    start..=start + pairs * 2 - 1
}

fn config(ip: IpAddr, pairs: u16) -> RelayConfig {
    let mut config = RelayConfig::new(ip, ports(pairs));
    config.rtp_timeout = Duration::from_millis(400);
    config.one_way_after = Duration::from_millis(400);
    config.relatch_after = Duration::from_millis(300);
    config
}

/// A UDP endpoint playing a phone.
struct Phone {
    socket: UdpSocket,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
}

impl Phone {
    fn new(ip: IpAddr) -> Phone {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Phone {
            socket,
            ssrc: 0x1234_0000 ^ rand_ish(),
            seq: 100,
            timestamp: 8000,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn rtp(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x80, 0];
        packet.extend_from_slice(&self.seq.to_be_bytes());
        packet.extend_from_slice(&self.timestamp.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        packet.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        packet
    }

    fn send_rtp(&mut self, to: SocketAddr, payload: &[u8]) {
        let packet = self.rtp(payload);
        self.socket.send_to(&packet, to).unwrap();
    }

    /// Receives until a datagram whose tail is `payload` arrives (bounded by WAIT).
    fn expect(&self, payload: &[u8]) -> (Vec<u8>, SocketAddr) {
        let deadline = Instant::now() + WAIT;
        let mut buffer = [0u8; 2048];
        while Instant::now() < deadline {
            if let Ok((len, from)) = self.socket.recv_from(&mut buffer)
                && buffer[..len].ends_with(payload)
            {
                return (buffer[..len].to_vec(), from);
            }
        }
        panic!(
            "{:?} never arrived at {}",
            String::from_utf8_lossy(payload),
            self.addr()
        );
    }

    /// Nothing arrives for `quiet`.
    fn expect_nothing(&self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        let mut buffer = [0u8; 2048];
        while Instant::now() < deadline {
            if let Ok((len, from)) = self.socket.recv_from(&mut buffer) {
                panic!("unexpected {len} bytes from {from}");
            }
        }
    }
}

fn rand_ish() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn rtcp_of(side: SocketAddr) -> SocketAddr {
    SocketAddr::new(side.ip(), side.port() + 1)
}

async fn next_event(events: &mut Receiver<MediaEvent>) -> MediaEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("no event in time")
        .expect("channel open")
}

/// Waits for an event of the session matching `want`, skipping others (bounded).
async fn wait_event(
    events: &mut Receiver<MediaEvent>,
    session: &MediaSession,
    want: impl Fn(&MediaEventKind) -> bool,
) -> MediaEvent {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let event = next_event(events).await;
        if event.session == session.id() && want(&event.kind) {
            return event;
        }
    }
    panic!("event not seen");
}

/// Polls `condition` until true (bounded).
fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("condition not reached in time");
}

fn call(ip: IpAddr) -> (MediaRelay, Receiver<MediaEvent>, MediaSession, Phone, Phone) {
    let (relay, events) = MediaRelay::start(config(ip, 4)).unwrap();
    let session = relay.allocate("call").unwrap();
    let a = Phone::new(ip);
    let b = Phone::new(ip);
    session.set_remote(Side::A, a.addr(), None).unwrap();
    session.set_remote(Side::B, b.addr(), None).unwrap();
    (relay, events, session, a, b)
}

fn both_ways(ip: IpAddr) {
    let (relay, _events, session, mut a, mut b) = call(ip);
    assert_eq!(session.local(Side::A).ip(), ip);
    assert_ne!(session.local(Side::A), session.local(Side::B));
    for i in 0..20u8 {
        a.send_rtp(session.local(Side::A), &[b'a', i]);
        let (_, from) = b.expect(&[b'a', i]);
        assert_eq!(
            from,
            session.local(Side::B),
            "B hears the relay's B-side port"
        );
        b.send_rtp(session.local(Side::B), &[b'b', i]);
        let (_, from) = a.expect(&[b'b', i]);
        assert_eq!(from, session.local(Side::A));
    }
    let stats = session.stats();
    assert_eq!(stats.a_to_b.packets, 20);
    assert_eq!(stats.b_to_a.packets, 20);
    assert_eq!(stats.a_to_b.bytes, 20 * 14);
    assert_eq!(stats.a_to_b.lost, 0);
    assert_eq!(stats.a_to_b.ssrc, Some(a.ssrc));
    assert_eq!(session.remote(Side::A), Some(a.addr()));
    assert_eq!(session.remote(Side::B), Some(b.addr()));
    // Relay-wide counters are published on the 50 ms tick.
    eventually(|| relay.counters().packets_relayed == 40);
    assert_eq!(relay.counters().packets_dropped, 0);
}

#[test]
fn relays_rtp_both_ways_ipv4() {
    both_ways(LOCAL4);
}

#[test]
fn relays_rtp_both_ways_ipv6() {
    both_ways(LOCAL6);
}

#[test]
fn session_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MediaRelay>();
    assert_send_sync::<MediaSession>();
}

#[tokio::test]
async fn latches_to_the_real_source_when_sdp_says_a_private_address() {
    let (relay, mut events) = MediaRelay::start(config(LOCAL4, 4)).unwrap();
    let session = relay.allocate("nat-call").unwrap();
    let mut a = Phone::new(LOCAL4);
    let mut b = Phone::new(LOCAL4);
    // The caller is behind NAT: its SDP names a private address it is not reachable at.
    session
        .set_remote(Side::A, "192.168.1.20:4000".parse().unwrap(), None)
        .unwrap();
    session.set_remote(Side::B, b.addr(), None).unwrap();
    // Before A sends, B's audio goes to the SDP address (unreachable from loopback): lost.
    b.send_rtp(session.local(Side::B), b"early");
    a.expect_nothing(Duration::from_millis(100));
    a.send_rtp(session.local(Side::A), b"hello");
    b.expect(b"hello");
    let event = wait_event(&mut events, &session, |k| {
        matches!(k, MediaEventKind::Latched { side: Side::A, .. })
    })
    .await;
    assert_eq!(
        event.kind,
        MediaEventKind::Latched {
            side: Side::A,
            addr: a.addr()
        }
    );
    assert_eq!(&*event.label, "nat-call");
    assert_eq!(session.remote(Side::A), Some(a.addr()));
    b.send_rtp(session.local(Side::B), b"reply");
    a.expect(b"reply");
    let stats = session.stats();
    assert_eq!(stats.b_to_a.packets, 2);
    assert_eq!(
        stats.b_to_a.dropped, 0,
        "the early packet was sent towards the SDP address"
    );
}

/// A latched stream under attack. `behind_nat`: the caller's SDP names a private address, so
/// the stream is latched to another source and the relay applies the rules itself (every refused
/// packet counted). Otherwise the caller sends from its SDP address and the stream is pinned in
/// the kernel (connected socket) while it is active: foreign packets do not even reach the relay.
fn hijack_attempts(behind_nat: bool) {
    let (_relay, _events, session, mut a, b) = call(LOCAL4);
    if behind_nat {
        session
            .set_remote(Side::A, "192.168.1.20:4000".parse().unwrap(), None)
            .unwrap();
    }
    a.send_rtp(session.local(Side::A), b"a-1");
    b.expect(b"a-1");
    // Another host (127.0.0.2) sends into A's port while A is active, and after A went silent.
    let mut intruder = Phone::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    intruder.send_rtp(session.local(Side::A), b"evil-1");
    a.send_rtp(session.local(Side::A), b"a-2");
    b.expect(b"a-2");
    std::thread::sleep(Duration::from_millis(400)); // > relatch_after
    intruder.send_rtp(session.local(Side::A), b"evil-2");
    b.expect_nothing(Duration::from_millis(150));
    assert_eq!(session.remote(Side::A), Some(a.addr()));
    // After A's silence a pinned stream is unpinned (on the relay's 50 ms tick) and the relay
    // itself refuses evil-2; only the unpinned (NAT) case counts deterministically.
    let dropped = session.stats().a_to_b.dropped;
    if behind_nat {
        assert_eq!(dropped, 2);
    } else {
        assert!(dropped <= 1, "{dropped}");
    }
    // Same IP, new port (a NAT rebinding) while A is still active: refused too.
    let mut rebound = Phone::new(LOCAL4);
    a.send_rtp(session.local(Side::A), b"a-3");
    b.expect(b"a-3");
    rebound.send_rtp(session.local(Side::A), b"rebind-early");
    b.expect_nothing(Duration::from_millis(100));
    if behind_nat {
        assert_eq!(session.stats().a_to_b.dropped, 3);
    }
    // ...but accepted once the old source was silent for relatch_after (retried: a pinned
    // stream is released on the relay's timer tick).
    std::thread::sleep(Duration::from_millis(400));
    let deadline = Instant::now() + WAIT;
    loop {
        rebound.send_rtp(session.local(Side::A), b"rebind-late");
        let mut buffer = [0u8; 64];
        if let Ok((len, _)) = b.socket.recv_from(&mut buffer)
            && buffer[..len].ends_with(b"rebind-late")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rebound source was never accepted"
        );
    }
    assert_eq!(session.remote(Side::A), Some(rebound.addr()));
    let mut back = [0u8; 64];
    let mut b = b;
    b.send_rtp(session.local(Side::B), b"to-rebound");
    let (len, _) = rebound.socket.recv_from(&mut back).unwrap();
    assert!(back[..len].ends_with(b"to-rebound"));
}

#[test]
fn a_third_party_cannot_hijack_a_latched_stream() {
    hijack_attempts(false);
}

#[test]
fn a_third_party_cannot_hijack_a_latched_stream_behind_nat() {
    hijack_attempts(true);
}

#[test]
fn the_sdp_address_wins_over_an_earlier_foreign_latch() {
    let (_relay, _events, session, mut a, mut b) = call(LOCAL4);
    // A stranger's packet arrives first and gets latched (nothing is known yet)...
    let mut stranger = Phone::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
    stranger.send_rtp(session.local(Side::A), b"first");
    b.expect(b"first");
    // ...but the moment the real caller sends from its SDP address, the stream is its.
    a.send_rtp(session.local(Side::A), b"real");
    b.expect(b"real");
    assert_eq!(session.remote(Side::A), Some(a.addr()));
    b.send_rtp(session.local(Side::B), b"to-real");
    a.expect(b"to-real");
    stranger.send_rtp(session.local(Side::A), b"again");
    b.expect_nothing(Duration::from_millis(100));
}

#[test]
fn a_new_sdp_address_clears_the_latch() {
    let (_relay, _events, session, mut a, b) = call(LOCAL4);
    a.send_rtp(session.local(Side::A), b"one");
    b.expect(b"one");
    // Re-INVITE: the caller moved to another address (here another port on another IP).
    let mut moved = Phone::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)));
    session.set_remote(Side::A, moved.addr(), None).unwrap();
    eventually(|| session.remote(Side::A).is_none());
    moved.send_rtp(session.local(Side::A), b"two");
    b.expect(b"two");
    assert_eq!(session.remote(Side::A), Some(moved.addr()));
}

#[test]
fn ssrc_change_keeps_relaying_and_restarts_the_stream_statistics() {
    let (_relay, _events, session, mut a, b) = call(LOCAL4);
    for i in 0..5u8 {
        a.send_rtp(session.local(Side::A), &[b'x', i]);
        b.expect(&[b'x', i]);
    }
    let first = a.ssrc;
    a.ssrc = first.wrapping_add(99);
    a.seq = 40_000; // a new stream starts anywhere
    for i in 0..5u8 {
        a.send_rtp(session.local(Side::A), &[b'y', i]);
        b.expect(&[b'y', i]);
    }
    let stats = session.stats().a_to_b;
    assert_eq!(stats.packets, 10);
    assert_eq!(stats.ssrc, Some(first.wrapping_add(99)));
    assert_eq!(stats.ssrc_changes, 1);
    assert_eq!(
        stats.lost, 0,
        "the sequence jump of the new SSRC is not loss"
    );
}

#[test]
fn rtcp_is_relayed_between_the_rtcp_ports() {
    let (relay, _events) = MediaRelay::start(config(LOCAL4, 4)).unwrap();
    let session = relay.allocate("rtcp").unwrap();
    let a = Phone::new(LOCAL4);
    let a_rtcp = Phone::new(LOCAL4);
    let b = Phone::new(LOCAL4);
    let b_rtcp = Phone::new(LOCAL4);
    session
        .set_remote(Side::A, a.addr(), Some(a_rtcp.addr()))
        .unwrap();
    session
        .set_remote(Side::B, b.addr(), Some(b_rtcp.addr()))
        .unwrap();
    assert_eq!(session.local_rtcp(Side::A), rtcp_of(session.local(Side::A)));
    // A receiver report (PT 201) from A's RTCP socket to our RTCP port towards A.
    let rr_a = [0x81, 201, 0, 1, 0, 0, 0, 42];
    a_rtcp
        .socket
        .send_to(&rr_a, session.local_rtcp(Side::A))
        .unwrap();
    let (_, from) = b_rtcp.expect(&rr_a);
    assert_eq!(from, session.local_rtcp(Side::B));
    let rr_b = [0x81, 201, 0, 1, 0, 0, 0, 43];
    b_rtcp
        .socket
        .send_to(&rr_b, session.local_rtcp(Side::B))
        .unwrap();
    let (_, from) = a_rtcp.expect(&rr_b);
    assert_eq!(from, session.local_rtcp(Side::A));
    // RTCP multiplexed on the RTP port (RFC 5761) is relayed on the RTP ports.
    let sr = [0x80, 200, 0, 6, 0, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0, 0];
    a.socket.send_to(&sr, session.local(Side::A)).unwrap();
    b.expect(&sr);
    let stats = session.stats();
    assert_eq!(stats.a_to_b.rtcp_packets, 2);
    assert_eq!(stats.a_to_b.rtcp_bytes, 8 + 16);
    assert_eq!(stats.a_to_b.packets, 0, "RTCP is not counted as RTP");
    assert_eq!(stats.b_to_a.rtcp_packets, 1);
    // Without a=rtcp the RTCP destination is RTP + 1.
    let session = relay.allocate("rtcp-default").unwrap();
    session.set_remote(Side::A, a.addr(), None).unwrap();
    let b_rtp = SocketAddr::new(LOCAL4, b_rtcp.addr().port() - 1);
    session.set_remote(Side::B, b_rtp, None).unwrap();
    a_rtcp
        .socket
        .send_to(&rr_a, session.local_rtcp(Side::A))
        .unwrap();
    b_rtcp.expect(&rr_a);
}

#[test]
fn loss_and_jitter_are_measured_on_a_crafted_sequence() {
    let (_relay, _events, session, mut a, b) = call(LOCAL4);
    // 50 packets sent back to back whose RTP timestamps advance 20 ms each: every packet is
    // 20 ms "early" relative to the previous one, so |D| = 160 units and the RFC 3550 jitter
    // climbs towards 20 ms: 160 × (1 − (15/16)^49) ≈ 153 units ≈ 19.2 ms. Sequence numbers
    // 110, 120 and 130..=132 are skipped: 5 lost.
    let mut sent = 0;
    for i in 0..55u16 {
        let seq = 100 + i;
        if seq == 110 || seq == 120 || (130..=132).contains(&seq) {
            a.seq = a.seq.wrapping_add(1);
            a.timestamp = a.timestamp.wrapping_add(160);
            continue;
        }
        a.send_rtp(session.local(Side::A), &i.to_be_bytes());
        sent += 1;
    }
    assert_eq!(sent, 50);
    b.expect(&54u16.to_be_bytes());
    eventually(|| session.stats().a_to_b.packets == 50);
    let stats = session.stats().a_to_b;
    assert_eq!(stats.lost, 5);
    // 19.2 ms when the 50 packets leave back to back; a sender preempted between two packets
    // (a loaded CI machine) moves it a little either way, hence the margins.
    assert!(
        (12.0..=30.0).contains(&stats.jitter_ms),
        "jitter {} ms",
        stats.jitter_ms
    );
    assert!(stats.max_jitter_ms >= stats.jitter_ms);
    // Paced at the RTP clock, the other direction shows (almost) no jitter.
    let mut b = b;
    for i in 0..10u8 {
        b.send_rtp(session.local(Side::B), &[b'p', i]);
        std::thread::sleep(Duration::from_millis(20));
    }
    a.expect(&[b'p', 9]);
    let stats = session.stats().b_to_a;
    assert_eq!(stats.lost, 0);
    assert!(stats.jitter_ms < 8.0, "paced jitter {} ms", stats.jitter_ms);
}

#[tokio::test]
async fn one_way_audio_and_rtp_timeout_raise_events() {
    let (_relay, mut events, session, mut a, _b) = call(LOCAL4);
    // A talks for a while, B never sends: one-way A→B after one_way_after (400 ms).
    let talk = tokio::task::spawn_blocking({
        let to = session.local(Side::A);
        move || {
            for _ in 0..40 {
                a.send_rtp(to, b"talk");
                std::thread::sleep(Duration::from_millis(20));
            }
            a
        }
    });
    let event = wait_event(&mut events, &session, |k| {
        matches!(k, MediaEventKind::OneWayAudio { .. })
    })
    .await;
    assert_eq!(
        event.kind,
        MediaEventKind::OneWayAudio {
            direction: Flow::AToB
        }
    );
    let _a = talk.await.unwrap();
    // Then nobody sends: RTP timeout after rtp_timeout (400 ms).
    let event = wait_event(&mut events, &session, |k| *k == MediaEventKind::RtpTimeout).await;
    assert_eq!(event.session, session.id());
}

#[tokio::test]
async fn hold_suppresses_one_way_and_timeout() {
    let (_relay, mut events, session, mut a, _b) = call(LOCAL4);
    session.set_hold(true).unwrap();
    for _ in 0..40 {
        a.send_rtp(session.local(Side::A), b"moh");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(event) = events.try_recv() {
        assert!(
            matches!(event.kind, MediaEventKind::Latched { .. }),
            "unexpected {event:?}"
        );
    }
    // Off hold, silence is judged again.
    session.set_hold(false).unwrap();
    let event = wait_event(&mut events, &session, |k| *k == MediaEventKind::RtpTimeout).await;
    assert_eq!(event.kind, MediaEventKind::RtpTimeout);
}

#[test]
fn pool_exhaustion_and_port_reuse() {
    // 4 pairs: two sessions.
    let (relay, _events) = MediaRelay::start(config(LOCAL4, 4)).unwrap();
    let first = relay.allocate("1").unwrap();
    let second = relay.allocate("2").unwrap();
    assert!(matches!(
        relay.allocate("3"),
        Err(RelayError::PoolExhausted)
    ));
    let counters = relay.counters();
    assert_eq!(
        (counters.sessions, counters.free_pairs, counters.total_pairs),
        (2, 0, 4)
    );
    assert_eq!(counters.allocation_failures, 1);
    let freed = [first.local(Side::A), first.local(Side::B)];
    first.close();
    eventually(|| relay.counters().free_pairs == 2);
    let third = relay.allocate("3").unwrap();
    let mut reused = [third.local(Side::A), third.local(Side::B)];
    reused.sort();
    let mut freed = freed;
    freed.sort();
    assert_eq!(reused, freed, "the freed ports serve the next call");
    // The reused ports relay for the new session.
    let mut a = Phone::new(LOCAL4);
    let b = Phone::new(LOCAL4);
    third.set_remote(Side::A, a.addr(), None).unwrap();
    third.set_remote(Side::B, b.addr(), None).unwrap();
    a.send_rtp(third.local(Side::A), b"reuse");
    b.expect(b"reuse");
    drop(second);
    eventually(|| relay.counters().free_pairs == 2 && relay.counters().sessions == 1);
}

#[test]
fn a_port_held_by_someone_else_is_skipped() {
    let range = ports(4);
    let squatter = UdpSocket::bind(SocketAddr::new(LOCAL4, *range.start())).unwrap();
    let mut config = config(LOCAL4, 1);
    config.ports = range.clone();
    let (relay, _events) = MediaRelay::start(config).unwrap();
    let session = relay.allocate("x").unwrap();
    for side in [Side::A, Side::B] {
        assert_ne!(
            session.local(side).port(),
            squatter.local_addr().unwrap().port()
        );
        assert!(range.contains(&session.local(side).port()));
    }
}

#[test]
fn ipv6_latching_and_rtcp() {
    let (_relay, _events, session, _a, mut b) = call(LOCAL6);
    let mut nat = Phone::new(LOCAL6);
    session
        .set_remote(Side::A, "[fd00::20]:4000".parse().unwrap(), None)
        .unwrap();
    eventually(|| session.remote(Side::A).is_none());
    nat.send_rtp(session.local(Side::A), b"v6");
    b.expect(b"v6");
    b.send_rtp(session.local(Side::B), b"v6-back");
    nat.expect(b"v6-back");
    assert_eq!(session.remote(Side::A), Some(nat.addr()));
}

#[test]
fn closed_relay_refuses_new_sessions() {
    let (relay, _events) = MediaRelay::start(config(LOCAL4, 4)).unwrap();
    let session = relay.allocate("before").unwrap();
    relay.shutdown();
    assert!(matches!(relay.allocate("after"), Err(RelayError::Stopped)));
    assert!(matches!(session.set_hold(true), Err(RelayError::Stopped)));
    let bad = RelayConfig::new(LOCAL4, 40_000..=40_001);
    assert!(matches!(
        MediaRelay::start(bad),
        Err(RelayError::InvalidConfig(_))
    ));
}

#[test]
fn a_burst_is_relayed_complete_and_in_order() {
    // 100 packets back to back: the relay falls behind on this socket for a moment and drains it
    // in batches (recvfrom ×N + one sendmmsg); nothing may be lost or reordered.
    let (_relay, _events, session, mut a, b) = call(LOCAL4);
    a.send_rtp(session.local(Side::A), b"warm-up");
    b.expect(b"warm-up");
    for i in 0..100u16 {
        a.send_rtp(session.local(Side::A), &i.to_be_bytes());
    }
    let mut buffer = [0u8; 256];
    for i in 0..100u16 {
        let (len, _) = b
            .socket
            .recv_from(&mut buffer)
            .expect("packet within the read timeout");
        assert_eq!(
            &buffer[len - 2..len],
            &i.to_be_bytes(),
            "packet {i} out of order"
        );
    }
    eventually(|| session.stats().a_to_b.packets == 101);
    assert_eq!(session.stats().a_to_b.lost, 0);
}

#[test]
fn hold_with_an_unspecified_address_keeps_the_latch() {
    let (_relay, _events, session, mut a, mut b) = call(LOCAL4);
    a.send_rtp(session.local(Side::A), b"before");
    b.expect(b"before");
    // Old-style hold from B (c=0.0.0.0) and a rejected stream (port 0): nothing changes.
    session
        .set_remote(Side::B, "0.0.0.0:5004".parse().unwrap(), None)
        .unwrap();
    session
        .set_remote(Side::A, SocketAddr::new(LOCAL4, 0), None)
        .unwrap();
    a.send_rtp(session.local(Side::A), b"during");
    b.expect(b"during");
    b.send_rtp(session.local(Side::B), b"back");
    a.expect(b"back");
    assert_eq!(session.remote(Side::A), Some(a.addr()));
    assert_eq!(session.remote(Side::B), Some(b.addr()));
}

#[test]
fn dynamic_payload_types_get_jitter_once_their_clock_rate_is_known() {
    let (_relay, _events, session, mut a, mut b) = call(LOCAL4);
    session.set_clock_rate(111, 48_000).unwrap(); // a=rtpmap:111 opus/48000/2
    // Back to back, timestamps 20 ms apart at 48 kHz: jitter climbs towards 20 ms for PT 111...
    for i in 0..50u16 {
        let mut packet = a.rtp(&i.to_be_bytes());
        packet[1] = 111;
        let ts = u32::from(i) * 960;
        packet[4..8].copy_from_slice(&ts.to_be_bytes());
        a.socket.send_to(&packet, session.local(Side::A)).unwrap();
    }
    b.expect(&49u16.to_be_bytes());
    eventually(|| session.stats().a_to_b.packets == 50);
    let jitter = session.stats().a_to_b.jitter_ms;
    assert!((12.0..=30.0).contains(&jitter), "opus jitter {jitter} ms");
    // ...while a dynamic type without a declared rate (PT 96 from B) yields none.
    for i in 0..50u16 {
        let mut packet = b.rtp(&i.to_be_bytes());
        packet[1] = 96;
        b.socket.send_to(&packet, session.local(Side::B)).unwrap();
    }
    a.expect(&49u16.to_be_bytes());
    eventually(|| session.stats().b_to_a.packets == 50);
    assert_eq!(session.stats().b_to_a.jitter_ms, 0.0);
}

#[test]
fn sessions_spread_over_several_relay_threads() {
    // Each thread owns every third pair of the range (4 each) and a session takes two of one
    // thread's pairs.
    let mut config = config(LOCAL4, 12);
    config.threads = 3;
    let (relay, _events) = MediaRelay::start(config).unwrap();
    let sessions: Vec<MediaSession> = (0..4)
        .map(|i| relay.allocate(format!("t{i}")).unwrap())
        .collect();
    for (i, session) in sessions.iter().enumerate() {
        let mut a = Phone::new(LOCAL4);
        let mut b = Phone::new(LOCAL4);
        session.set_remote(Side::A, a.addr(), None).unwrap();
        session.set_remote(Side::B, b.addr(), None).unwrap();
        let tag = [b'T', i as u8];
        a.send_rtp(session.local(Side::A), &tag);
        b.expect(&tag);
        b.send_rtp(session.local(Side::B), &tag);
        a.expect(&tag);
    }
    assert_eq!(relay.counters().sessions, 4);
    drop(sessions);
    eventually(|| relay.counters().free_pairs == 12 && relay.counters().sessions == 0);
    relay.shutdown();
}

#[test]
fn a_pair_is_reused_with_its_sockets_and_strays_between_calls_are_dropped() {
    // Two pairs: every session gets the same two ports.
    let (relay, _events) = MediaRelay::start(config(LOCAL4, 2)).unwrap();
    let first = relay.allocate("first").unwrap();
    let ports = [first.local(Side::A), first.local(Side::B)];
    let mut a = Phone::new(LOCAL4);
    let mut b = Phone::new(LOCAL4);
    first.set_remote(Side::A, a.addr(), None).unwrap();
    first.set_remote(Side::B, b.addr(), None).unwrap();
    // Both phones send from their SDP addresses: their streams get pinned (connected).
    a.send_rtp(ports[0], b"a1");
    b.expect(b"a1");
    b.send_rtp(ports[1], b"b1");
    a.expect(b"b1");
    first.close();
    eventually(|| relay.counters().free_pairs == 2);
    let dropped_before = relay.counters().packets_dropped;

    // The old caller keeps streaming into the idle port: read and dropped, never queued.
    for _ in 0..5 {
        a.send_rtp(ports[0], b"stray");
    }
    eventually(|| relay.counters().packets_dropped >= dropped_before + 5);

    // The next call gets the same ports; its caller is someone else, from another address.
    let second = relay.allocate("second").unwrap();
    let mut ports_again = [second.local(Side::A), second.local(Side::B)];
    ports_again.sort();
    let mut sorted = ports;
    sorted.sort();
    assert_eq!(ports_again, sorted, "the pairs are reused");
    let mut c = Phone::new(LOCAL4);
    let mut d = Phone::new(LOCAL4);
    second.set_remote(Side::A, c.addr(), None).unwrap();
    second.set_remote(Side::B, d.addr(), None).unwrap();
    // The sockets were disconnected from the first call's phones: the new ones get through.
    c.send_rtp(second.local(Side::A), b"c1");
    d.expect(b"c1");
    d.send_rtp(second.local(Side::B), b"d1");
    c.expect(b"d1");
    assert_eq!(second.remote(Side::A), Some(c.addr()));
    assert_eq!(second.remote(Side::B), Some(d.addr()));
    // The first call's phones hear nothing of it.
    a.expect_nothing(Duration::from_millis(100));
    b.expect_nothing(Duration::from_millis(100));
    relay.shutdown();
}

#[test]
fn batched_commands_apply_on_flush_on_the_first_packet_or_on_the_tick() {
    let mut config = config(LOCAL4, 6);
    config.batch_commands = true;
    let (relay, _events) = MediaRelay::start(config).unwrap();

    // Flushed: applied before the SDP would leave.
    let flushed = relay.allocate("flushed").unwrap();
    let mut a = Phone::new(LOCAL4);
    let mut b = Phone::new(LOCAL4);
    flushed.set_remote(Side::A, a.addr(), None).unwrap();
    flushed.set_remote(Side::B, b.addr(), None).unwrap();
    relay.flush();
    a.send_rtp(flushed.local(Side::A), b"f1");
    b.expect(b"f1");
    b.send_rtp(flushed.local(Side::B), b"f2");
    a.expect(b"f2");

    // Never flushed: the first packet on the new session's port applies the queue first, so
    // it is relayed, not dropped as a stray of an idle pair.
    let unflushed = relay.allocate("unflushed").unwrap();
    let mut c = Phone::new(LOCAL4);
    let d = Phone::new(LOCAL4);
    unflushed.set_remote(Side::A, c.addr(), None).unwrap();
    unflushed.set_remote(Side::B, d.addr(), None).unwrap();
    c.send_rtp(unflushed.local(Side::A), b"u1");
    d.expect(b"u1");
    assert_eq!(relay.counters().sessions, 2);

    // Closing needs no flush: the timer tick frees the ports.
    drop(flushed);
    drop(unflushed);
    eventually(|| relay.counters().free_pairs == 6);
    relay.shutdown();
}

#[test]
fn an_unbindable_pair_is_skipped_and_tried_again_later() {
    let config = config(LOCAL4, 3);
    let first_port = *config.ports.start();
    // Another program holds the first pair's RTP port.
    let squatter = UdpSocket::bind(SocketAddr::new(LOCAL4, first_port)).unwrap();
    let (relay, _events) = MediaRelay::start(config).unwrap();
    let session = relay.allocate("skips").unwrap();
    for side in [Side::A, Side::B] {
        assert_ne!(session.local(side).port(), first_port);
    }
    session.close();
    eventually(|| relay.counters().free_pairs == 3);
    drop(squatter);
    // Freed: the pair is bound once its turn comes again.
    let again = relay.allocate("again").unwrap();
    let used = [again.local(Side::A).port(), again.local(Side::B).port()];
    assert!(used.contains(&first_port), "{used:?}");
    relay.shutdown();
}

#[test]
fn a_session_bridges_ipv6_and_ipv4() {
    let mut config = config(LOCAL6, 4);
    config.alternate = Some(RelayAddress {
        bind_ip: LOCAL4,
        advertised_ip: LOCAL4,
    });
    let (relay, _events) = MediaRelay::start(config).unwrap();
    // An IPv6 phone (side A) calls out through an IPv4 trunk (side B).
    let session = relay
        .allocate_families("v6-to-v4", IpFamily::V6, IpFamily::V4)
        .unwrap();
    assert_eq!(session.local(Side::A).ip(), LOCAL6);
    assert_eq!(session.local(Side::B).ip(), LOCAL4);
    let mut phone = Phone::new(LOCAL6);
    let mut trunk = Phone::new(LOCAL4);
    session.set_remote(Side::A, phone.addr(), None).unwrap();
    session.set_remote(Side::B, trunk.addr(), None).unwrap();
    phone.send_rtp(session.local(Side::A), b"from-v6");
    let (_, from) = trunk.expect(b"from-v6");
    assert_eq!(from, session.local(Side::B));
    trunk.send_rtp(session.local(Side::B), b"from-v4");
    let (_, from) = phone.expect(b"from-v4");
    assert_eq!(from, session.local(Side::A));
    // allocate() keeps both sides on the main address; a family nobody configured is refused.
    let plain = relay.allocate("plain").unwrap();
    assert_eq!(plain.local(Side::B).ip(), LOCAL6);
    drop(plain);
    let (only_v4, _events) = MediaRelay::start(config_v4_only()).unwrap();
    assert!(matches!(
        only_v4.allocate_families("x", IpFamily::V6, IpFamily::V4),
        Err(RelayError::FamilyUnavailable)
    ));
}

fn config_v4_only() -> RelayConfig {
    config(LOCAL4, 2)
}
