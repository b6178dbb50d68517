//! The pbx-media relay as a stand-alone process for `bench/media/` (same command-line contract
//! as the anchors' `udprelay`, so the anchors' `rtpblast` drives both the same way):
//!
//! ```text
//! relay_bench NCALLS BASE_PORT A_PORT B_PORT SECONDS PORTSFILE [THREADS]
//! ```
//!
//! Allocates NCALLS sessions on 127.0.0.1 (ports from BASE_PORT up, busy ports skipped), sets
//! side A's SDP address to 127.0.0.1:A_PORT and side B's to 127.0.0.1:B_PORT (what the call
//! engine does from the offer and answer), writes "PA PB" per call to PORTSFILE, prints
//! `ready`, relays for SECONDS and prints totals as key=value. Only 127.0.0.1 is used.

// A benchmark tool: bad arguments end it with a message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use pbx_media::{MediaRelay, RelayConfig, Side};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        eprintln!(
            "usage: {} NCALLS BASE_PORT A_PORT B_PORT SECONDS PORTSFILE [THREADS]",
            args[0]
        );
        std::process::exit(2);
    }
    let number = |i: usize| -> u64 { args[i].parse().expect("a number") };
    let calls = number(1) as usize;
    let base = number(2) as u16;
    let (a_port, b_port) = (number(3) as u16, number(4) as u16);
    let seconds: f64 = args[5].parse().expect("seconds");
    let threads = args.get(7).map_or(1, |t| t.parse().expect("threads"));
    assert!(
        calls > 0 && calls <= 14_000 && seconds > 0.0 && seconds <= 600.0,
        "bad bounds"
    );

    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut config = RelayConfig::new(localhost, base..=u16::MAX - 1);
    config.threads = threads;
    config.rtp_timeout = Duration::from_secs(3600);
    config.one_way_after = Duration::from_secs(3600);
    config.socket_receive_buffer = Some(1 << 20);
    let (relay, events) = MediaRelay::start(config).expect("relay");
    let mut sessions = Vec::with_capacity(calls);
    let mut ports = String::new();
    for i in 0..calls {
        let session = relay.allocate(format!("bench-{i}")).expect("allocate");
        session
            .set_remote(Side::A, SocketAddr::new(localhost, a_port), None)
            .expect("remote");
        session
            .set_remote(Side::B, SocketAddr::new(localhost, b_port), None)
            .expect("remote");
        ports.push_str(&format!(
            "{} {}\n",
            session.local(Side::A).port(),
            session.local(Side::B).port()
        ));
        sessions.push(session);
    }
    std::fs::write(&args[6], ports).expect("ports file");
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    std::thread::sleep(Duration::from_secs_f64(seconds));

    let mut totals = [0u64; 5];
    for session in &sessions {
        let stats = session.stats();
        for s in [stats.a_to_b, stats.b_to_a] {
            totals[0] += s.packets;
            totals[1] += s.lost;
            totals[2] += s.dropped;
            totals[3] += u64::from(s.ssrc_changes);
            totals[4] = totals[4].max((s.max_jitter_ms * 1000.0) as u64);
        }
    }
    println!(
        "relay=pbx-media calls={calls} threads={threads} packets={} lost={} dropped={} ssrc_changes={} max_jitter_us={} events_queued={}",
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        totals[4],
        events.len()
    );
    drop(sessions);
    relay.shutdown();
}
