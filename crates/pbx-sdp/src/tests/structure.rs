//! Structure errors, line ends, lenient parsing and edits on small descriptions.

use std::net::{IpAddr, Ipv6Addr};

use super::{audio, sdp};
use crate::*;

#[test]
fn effective_direction_levels() {
    let parsed = sdp(
        "a=sendonly\n",
        "m=audio 1 RTP/AVP 0\nm=audio 2 RTP/AVP 0\na=inactive\n",
    )
    .unwrap();
    assert_eq!(parsed.direction(), Some(Direction::SendOnly));
    assert_eq!(parsed.effective_direction(0), Some(Direction::SendOnly));
    assert_eq!(parsed.effective_direction(1), Some(Direction::Inactive));
    assert_eq!(parsed.effective_direction(2), None);
    let plain = audio("").unwrap();
    assert_eq!(plain.effective_direction(0), Some(Direction::SendRecv));
}

#[test]
fn structure_errors() {
    let parse = |t: &str| SessionDescription::parse(t.as_bytes());
    assert_eq!(parse(""), Err(SdpError::Empty));
    assert_eq!(parse("\r\n\r\n"), Err(SdpError::Empty));
    assert_eq!(parse("o=- 1 1 IN IP4 a\n"), Err(SdpError::MissingVersion));
    assert_eq!(
        parse("v=1\n"),
        Err(SdpError::UnsupportedVersion { line: 1 })
    );
    assert_eq!(
        parse("v=0\ns=-\n"),
        Err(SdpError::MissingOrigin { line: 2 })
    );
    assert_eq!(parse("v=0\n"), Err(SdpError::MissingOrigin { line: 2 }));
    assert_eq!(
        parse("v=0\no=- 1 1 IN IP4 a\nt=0 0\n"),
        Err(SdpError::MissingSessionName { line: 3 })
    );
    assert_eq!(
        parse("v=0\no=- 1 1 IN IP4 a\ns=-\n"),
        Err(SdpError::MissingTiming)
    );
    assert_eq!(
        parse("v=0\no=- 1 1 IN IP4 a\ns=-\nc=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP 0\nt=0 0\n"),
        Err(SdpError::MissingTiming)
    );
    assert_eq!(
        sdp("", "m=audio 1 RTP/AVP 0\nt=0 0\n"),
        Err(SdpError::LineOutOfPlace { line: 7, kind: 't' })
    );
    assert_eq!(
        sdp("x=1\n", ""),
        Err(SdpError::UnknownLineType { line: 6, kind: 'x' })
    );
    assert_eq!(
        sdp("c=IN IP4 192.0.2.2\n", ""),
        Err(SdpError::DuplicateLine { line: 6, kind: 'c' })
    );
    assert_eq!(
        sdp("o=- 1 1 IN IP4 a\n", ""),
        Err(SdpError::DuplicateLine { line: 6, kind: 'o' })
    );
    assert_eq!(sdp("\na=x\n", ""), Err(SdpError::BlankLine { line: 6 }));
    assert_eq!(sdp("A=x\n", ""), Err(SdpError::MalformedLine { line: 6 }));
    assert_eq!(sdp("a x\n", ""), Err(SdpError::MalformedLine { line: 6 }));
    assert_eq!(
        sdp("a=x\ry\n", ""),
        Err(SdpError::InvalidCharacter { line: 6 })
    );
    assert_eq!(
        sdp("a=x\0\n", ""),
        Err(SdpError::InvalidCharacter { line: 6 })
    );
    let no_c =
        parse("v=0\no=- 1 1 IN IP4 a\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\nm=video 0 RTP/AVP 31\n");
    assert_eq!(no_c, Err(SdpError::MissingConnection { line: 5 }));
    let rejected_without_c = parse("v=0\no=- 1 1 IN IP4 a\ns=-\nt=0 0\nm=video 0 RTP/AVP 31\n");
    assert!(rejected_without_c.is_ok());
    let big = vec![b'a'; MAX_SDP_LEN + 1];
    assert!(matches!(
        SessionDescription::parse(&big),
        Err(SdpError::TooLarge { .. })
    ));
}

#[test]
fn line_ends_and_trailing_blank_lines() {
    let lf = sdp("", "m=audio 4000 RTP/AVP 0\n").unwrap();
    let crlf_text = lf.to_bytes();
    assert!(crlf_text.windows(2).filter(|w| w == b"\r\n").count() == 6);
    assert_eq!(SessionDescription::parse(&crlf_text).unwrap(), lf);
    let no_final_eol =
        SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0").unwrap();
    assert_eq!(
        &no_final_eol.to_bytes()[..],
        b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\n"
    );
    assert!(SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\n\r\n").is_ok());
    assert_eq!(lf.encoded_len(), lf.to_bytes().len());
    assert_eq!(lf.to_string().as_bytes(), &lf.to_bytes()[..]);
}

#[test]
fn sip_status_of_negotiation_errors() {
    assert_eq!(NegotiationError::NoCommonCodec.sip_status(), 488);
    assert_eq!(NegotiationError::NoAcceptableMedia.sip_status(), 488);
    assert_eq!(
        NegotiationError::MissingLocalPort { index: 0 }.sip_status(),
        500
    );
}

#[test]
fn lenient_parse_demotes_only_malformed_known_attributes() {
    let text = "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 1 RTP/AVP 0 96\r\na=rtpmap:96 opus\r\na=ptime:20.5\r\na=sendonly:now\r\na=rtpmap:0 PCMU/8000\r\n";
    assert_eq!(
        SessionDescription::parse(text.as_bytes()),
        Err(SdpError::InvalidRtpmap { line: 7 })
    );
    let (parsed, demoted) = SessionDescription::parse_lenient(text.as_bytes()).unwrap();
    assert_eq!(
        demoted,
        [
            SdpError::InvalidRtpmap { line: 7 },
            SdpError::InvalidPtime { line: 8 },
            SdpError::UnexpectedAttributeValue { line: 9 },
        ]
    );
    assert_eq!(&parsed.to_bytes()[..], text.as_bytes());
    let media = &parsed.media()[0];
    assert_eq!(
        (media.ptime(), media.direction(), media.rtpmap(96)),
        (None, None, None)
    );
    assert_eq!(media.codecs(), [Codec::PCMU], "96 has no usable rtpmap");
    // Structure stays strict.
    assert_eq!(
        SessionDescription::parse_lenient(b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\n"),
        Err(SdpError::MissingTiming)
    );
}

#[test]
fn media_port_and_rtcp_edge_cases() {
    let mut parsed = audio("a=rtcp:4001 IN IP4 192.0.2.1\n").unwrap();
    assert!(parsed.set_media_port(0, 65535).is_err());
    assert_eq!(
        parsed.media()[0].port(),
        4000,
        "refused edit changes nothing"
    );
    parsed.set_media_port(0, 0).unwrap();
    assert_eq!(parsed.media()[0].rtcp().map(|r| r.port), Some(4001));
    parsed.set_media_port(0, 5000).unwrap();
    assert_eq!(parsed.media()[0].rtcp().map(|r| r.port), Some(5001));
    let mut no_rtcp = audio("").unwrap();
    no_rtcp.set_media_port(0, 65535).unwrap();
    assert!(no_rtcp.media()[0].rtcp().is_none());
}

#[test]
fn set_direction_skips_rejected_streams() {
    let mut parsed = sdp(
        "a=recvonly\n",
        "m=audio 1 RTP/AVP 0\nm=video 0 RTP/AVP 31\n",
    )
    .unwrap();
    parsed.set_direction(Direction::SendOnly);
    assert_eq!(parsed.direction(), None);
    assert_eq!(parsed.media()[0].direction(), Some(Direction::SendOnly));
    assert_eq!(parsed.media()[1].direction(), None);
}

#[test]
fn field_edits_keep_the_rest_of_the_line() {
    let text = "v=0\r\no=alice  7 9 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio  4000/2 RTP/AVP 0 \r\n";
    let mut parsed = SessionDescription::parse(text.as_bytes()).unwrap();
    parsed.set_media_port(0, 50000).unwrap();
    assert_eq!(parsed.bump_version(), 10);
    parsed.rewrite_connection(IpAddr::V6(Ipv6Addr::LOCALHOST));
    let printed = String::from_utf8(parsed.to_bytes().to_vec()).unwrap();
    assert!(
        printed.contains("\r\no=alice  7 10 IN IP6 ::1\r\n"),
        "{printed}"
    );
    assert!(
        printed.contains("\r\nm=audio  50000/2 RTP/AVP 0 \r\n"),
        "{printed}"
    );
    let reparsed = SessionDescription::parse(printed.as_bytes()).unwrap();
    assert_eq!(reparsed.origin(), parsed.origin());
    assert_eq!(
        reparsed.media()[0].media_line(),
        parsed.media()[0].media_line()
    );
}
