//! The relay with real UDP "phones" on loopback (127.0.0.1 and [::1]); every wait is bounded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use pbx_media::{
    Flow, MediaEvent, MediaEventKind, MediaRelay, MediaSession, RelayConfig, RelayError, Side,
};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(5);
const LOCAL4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Every test gets its own port range (tests run in parallel within the binary; nextest runs
/// them in separate processes, so the range also depends on the process id).
fn ports(pairs: u16) -> RangeInclusive<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 40_000 + (std::process::id() % 200) as u16 * 100;
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
    let (_relay, _events, session, mut a, mut b) = call(ip);
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
}

#[test]
fn relays_rtp_both_ways_ipv4() {
    both_ways(LOCAL4);
}

#[test]
fn relays_rtp_both_ways_ipv6() {
    both_ways(LOCAL6);
}
