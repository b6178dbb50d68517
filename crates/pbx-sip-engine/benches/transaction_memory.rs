//! Memory held per completed UDP non-INVITE server transaction (a benchmark, not a test).
//!
//! A REGISTER over UDP answered 200 leaves its server transaction in Completed for Timer J
//! (64 × T1 = 32 s) so that a retransmitted REGISTER gets the same answer; at a sustained
//! rate R the endpoint holds about 32 × R such transactions, which is what
//! `Config::max_transactions` must leave room for. This feeds N realistic REGISTERs (a
//! SIPp-style request with digest `Authorization`, ~640 bytes) from distinct clients,
//! answers each 200 with its Contact and `expires` like the registrar does, and reports the
//! process's resident memory growth per live transaction, then fires Timer J and checks that
//! every transaction is gone.
//!
//! Run: `cargo bench -p pbx-sip-engine --bench transaction_memory` (env `TRANSACTIONS`,
//! default 200,000). The figure includes the allocator's overhead (glibc malloc here; the
//! server uses mimalloc) and the endpoint's hash-map and timer-queue growth.

// A benchmark binary: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use pbx_sip::{HeaderName, StatusCode};
use pbx_sip_engine::{AcceptedTransaction, Config, Endpoint, TransportInfo};
use pbx_test_support::VirtualClock;

fn main() {
    let count: usize = std::env::var("TRANSACTIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(200_000);
    let clock = VirtualClock::start();
    let now = clock.now();
    let config = Config {
        max_transactions: usize::MAX,
        ..Config::default()
    };
    let mut endpoint = Endpoint::new(config, 0x5eed);
    // Warm the allocator and the code paths with a first batch that expires, so the
    // measurement starts from a heap in use rather than a fresh one.
    run_batch(&mut endpoint, now, 0, 10_000);
    let later = now + Duration::from_secs(40);
    endpoint.handle_timeout(later);
    while endpoint.poll_event().is_some() {}
    assert_eq!(endpoint.transaction_count(), 0);

    let before = rss_kib();
    let request_bytes = run_batch(&mut endpoint, later, 10_000, count);
    let after = rss_kib();
    assert_eq!(
        endpoint.transaction_count(),
        count,
        "all live, in Completed"
    );
    let per_transaction = (after.saturating_sub(before)) as f64 * 1024.0 / count as f64;
    println!(
        "{count} completed UDP REGISTER transactions (request {request_bytes} bytes each): \
         RSS {before} -> {after} KiB, {per_transaction:.0} bytes per transaction"
    );
    for limit in [100_000_u64, 250_000, 500_000, 1_000_000] {
        println!(
            "  max_transactions {limit:>9}: {:>6.0} MiB worst case, sustains {:>6} REGISTER/s over UDP (Timer J 32 s)",
            per_transaction * limit as f64 / (1024.0 * 1024.0),
            limit / 32,
        );
    }
    endpoint.handle_timeout(later + Duration::from_secs(33));
    while endpoint.poll_event().is_some() {}
    assert_eq!(endpoint.transaction_count(), 0, "Timer J ended them all");
    println!("after Timer J: 0 transactions, RSS {} KiB", rss_kib());
}

/// Receives, accepts and answers `count` REGISTERs numbered from `first`; returns the size
/// of one request.
fn run_batch(
    endpoint: &mut Endpoint,
    now: std::time::Instant,
    first: usize,
    count: usize,
) -> usize {
    let mut size = 0;
    for index in first..first + count {
        let source = client(index);
        let request = register(index, source);
        size = request.len();
        let incoming = endpoint
            .handle_datagram(now, TransportInfo::udp(source), request)
            .expect("a new request");
        let contact = incoming
            .request()
            .headers()
            .get_bytes(&HeaderName::Contact)
            .expect("Contact");
        let AcceptedTransaction::NonInvite(transaction) = endpoint.accept(now, incoming).unwrap()
        else {
            panic!("REGISTER is non-INVITE");
        };
        let mut response = endpoint.response(transaction, StatusCode::OK).unwrap();
        let mut bound = contact.to_vec();
        bound.extend_from_slice(b";expires=3600");
        response
            .headers_mut()
            .push(HeaderName::Contact, Bytes::from(bound));
        response.headers_mut().push(
            HeaderName::Date,
            Bytes::from_static(b"Thu, 26 Nov 2026 17:00:00 GMT"),
        );
        endpoint.send_response(now, transaction, response).unwrap();
        while endpoint.poll_transmit().is_some() {}
        while endpoint.poll_event().is_some() {}
    }
    size
}

fn client(index: usize) -> SocketAddr {
    let host = u32::try_from(index).unwrap();
    SocketAddr::from((
        [10, (host >> 16) as u8, (host >> 8) as u8, host as u8],
        5060,
    ))
}

/// A REGISTER as SIPp's `reg_auth.xml` sends it after the 401.
fn register(index: usize, source: SocketAddr) -> Bytes {
    let ip = source.ip();
    let user = 10_000 + index;
    Bytes::from(format!(
        "REGISTER sip:bench.pbx.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP {ip}:5060;branch=z9hG4bK-{index}-1-2\r\n\
         From: <sip:{user}@bench.pbx.test>;tag={index}SIPpTag001\r\n\
         To: <sip:{user}@bench.pbx.test>\r\n\
         Call-ID: {index}-reg@{ip}\r\n\
         CSeq: 2 REGISTER\r\n\
         Contact: <sip:{user}@{ip}:5060;transport=udp>\r\n\
         Authorization: Digest username=\"abcdefghijklmnop\",realm=\"cloudpbx\",\
         nonce=\"AAAAAGcT1kYAAAAAAAAAAAAAAAAAAAAAAAAAAA\",uri=\"sip:bench.pbx.test\",\
         response=\"0123456789abcdef0123456789abcdef\",algorithm=MD5\r\n\
         Max-Forwards: 70\r\n\
         Expires: 3600\r\n\
         User-Agent: SIPp\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// Resident set size of this process, from /proc (Linux).
#[allow(clippy::disallowed_methods)] // Reason: a measurement tool, not the sans-IO library.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
