//! Profiling helper: parses the bench INVITE (or REGISTER) N times with typed access, for
//! `perf stat` / callgrind instruction counts that do not depend on machine load.
//! `cargo run --release --example parse_loop -- [invite|register] [iterations]`

use std::hint::black_box;

use bytes::Bytes;

#[path = "../benches/common/mod.rs"]
mod common;

use common::{INVITE, REGISTER, parse_typed};

/// The INVITE of `bench/parser-compare` (613 octets), accessed the same way.
const INVITE600: &[u8] = b"INVITE sip:1002@pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.23:5062;branch=z9hG4bK2048576131;rport\r\n\
From: \"Alice\" <sip:1001@pbx.example.com>;tag=3219548744\r\n\
To: <sip:1002@pbx.example.com>\r\n\
Call-ID: 1_3512694783@192.168.1.23\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:1001@192.168.1.23:5062>\r\n\
Max-Forwards: 70\r\n\
User-Agent: Yealink SIP-T46U\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 223\r\n\
\r\n\
v=0\r\n\
o=- 20024 20024 IN IP4 192.168.1.23\r\n\
s=SDP data\r\n\
c=IN IP4 192.168.1.23\r\n\
t=0 0\r\n\
m=audio 11800 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "invite".into());
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let buf = Bytes::from_static(match which.trim_end_matches("-shared") {
        "register" => REGISTER,
        "invite600" => INVITE600,
        _ => INVITE,
    });
    // `*-shared`: a fresh heap buffer per message, as a transport produces (refcounted
    // slices pay an atomic each, unlike the static buffer).
    let shared = which.ends_with("-shared");
    let mut total = 0;
    for _ in 0..n {
        if shared {
            total += parse_typed(black_box(&Bytes::copy_from_slice(&buf)));
        } else {
            total += parse_typed(black_box(&buf));
        }
    }
    println!("{which} x{n}: {total}");
}
