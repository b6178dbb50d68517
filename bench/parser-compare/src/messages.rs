//! The messages both parsers are measured on (the same bytes for both).

/// A REGISTER as a Yealink desk phone sends it after the first 401: Contact with
/// `+sip.instance` / `reg-id` / `expires`, digest credentials, the usual Allow/Supported.
pub const REGISTER: &[u8] = b"REGISTER sip:pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.23:5062;branch=z9hG4bK1436276416;rport\r\n\
From: \"Alice Jones\" <sip:1001@pbx.example.com>;tag=1907423416\r\n\
To: \"Alice Jones\" <sip:1001@pbx.example.com>\r\n\
Call-ID: 0_2785231342@192.168.1.23\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:1001@192.168.1.23:5062;transport=udp>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-805ec0a1b2c3>\";expires=3600\r\n\
Authorization: Digest username=\"1001\", realm=\"pbx.example.com\", nonce=\"6f3a1c2b9d8e7f60\", uri=\"sip:pbx.example.com\", response=\"b6c1e3d2a1f0e9d8c7b6a5f4e3d2c1b0\", algorithm=MD5\r\n\
Max-Forwards: 70\r\n\
User-Agent: Yealink SIP-T46U 108.86.0.45\r\n\
Expires: 3600\r\n\
Allow: INVITE, INFO, PRACK, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REGISTER, SUBSCRIBE, REFER, PUBLISH, UPDATE, MESSAGE\r\n\
Supported: path, gruu\r\n\
Content-Length: 0\r\n\
\r\n";

/// An INVITE of 613 octets (head 390, SDP body 223) carrying a G.711/telephone-event SDP offer.
pub const INVITE600: &[u8] = b"INVITE sip:1002@pbx.example.com SIP/2.0\r\n\
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

/// The 200 OK answering [`INVITE600`] as it reaches the caller through the PBX: two Vias
/// (the top one with `received`/`rport` filled in), Record-Route, To with its tag, the
/// callee's Contact and a 197-octet SDP answer.
pub const OK200: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-7f3c2a91-1;rport=5060;received=10.0.0.5\r\n\
Via: SIP/2.0/UDP 192.168.1.23:5062;branch=z9hG4bK2048576131;rport=5062;received=198.51.100.7\r\n\
Record-Route: <sip:pbx.example.com;lr>\r\n\
From: \"Alice\" <sip:1001@pbx.example.com>;tag=3219548744\r\n\
To: <sip:1002@pbx.example.com>;tag=8321234356\r\n\
Call-ID: 1_3512694783@192.168.1.23\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:1002@192.168.1.42:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE\r\n\
Supported: replaces, timer\r\n\
Server: Yealink SIP-T46U 108.86.0.45\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 197\r\n\
\r\n\
v=0\r\n\
o=- 8734 8734 IN IP4 192.168.1.42\r\n\
s=SDP data\r\n\
c=IN IP4 192.168.1.42\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n";
