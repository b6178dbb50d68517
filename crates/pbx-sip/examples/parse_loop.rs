//! Profiling helper: parses the bench INVITE (or REGISTER) N times with typed access, for
//! `perf stat` / callgrind instruction counts that do not depend on machine load.
//! `cargo run --release --example parse_loop -- [invite|register] [iterations]`

use std::hint::black_box;

use bytes::Bytes;
use pbx_sip::Message;

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE\r\n\
Supported: replaces, timer\r\n\
User-Agent: Yealink SIP-T46U 108.86.0.20\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 147\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

const REGISTER: &[u8] = b"REGISTER sip:pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.55:5060;branch=z9hG4bK-524287-1---f6b5c3a2d1e0;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:201@192.0.2.55:5060;rinstance=6a2f8e31c0d9b7a4;transport=UDP>;expires=3600\r\n\
To: <sip:201@pbx.example.com>\r\n\
From: <sip:201@pbx.example.com>;tag=4f2a9c1b\r\n\
Call-ID: ZTk0NDc5OGQ1YjM3ZTBiYzFiNmI2MjQ2ZDE4YmQ0ZjE\r\n\
CSeq: 2 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, norefersub, extended-refer, timer, outbound, path, X-cisco-serviceuri\r\n\
User-Agent: Z 5.6.1 v2.10.19.9\r\n\
Allow-Events: presence, kpml, talk\r\n\
Content-Length: 0\r\n\
\r\n";

// A bench input that does not parse is a broken bench: abort loudly.
#[allow(clippy::panic)]
fn parse_typed(buf: &Bytes) -> usize {
    let Ok(Message::Request(r)) = Message::parse_datagram(buf.clone()) else {
        panic!("bench message must parse");
    };
    let via = r
        .top_via()
        .map(|v| v.branch.map_or(0, |b| b.len()))
        .unwrap_or(0);
    let from = r.from().map(|f| f.tag.map_or(0, |t| t.len())).unwrap_or(0);
    let to = r
        .to()
        .map(|t| t.display_name.is_some() as usize)
        .unwrap_or(0);
    let call_id = r.call_id().map(|c| c.len()).unwrap_or(0);
    let cseq = r.cseq().map(|c| c.seq as usize).unwrap_or(0);
    let contacts = r.contacts().map(|c| c.len()).unwrap_or(0);
    via + from + to + call_id + cseq + contacts
}

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
