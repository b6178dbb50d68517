//! The messages and the typed-access routine shared by the parse benchmark and the
//! `parse_loop` profiling example, so both measure exactly the same work.

#![allow(dead_code)] // each user takes what it needs

use bytes::Bytes;
use pbx_sip::Message;

pub const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
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

pub const REGISTER: &[u8] = b"REGISTER sip:pbx.example.com SIP/2.0\r\n\
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
pub fn parse_typed(buf: &Bytes) -> usize {
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
