//! One group of tests per line type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{audio, first_attribute, sdp};
use crate::*;

#[test]
fn origin_fields() {
    let parsed = sdp("", "").unwrap();
    let origin = parsed.origin();
    assert_eq!(origin.username, "-");
    assert_eq!(origin.session_id, "1");
    assert_eq!(origin.session_version, 2);
    assert_eq!(
        (origin.net_type.as_str(), origin.addr_type.as_str()),
        ("IN", "IP4")
    );
    assert_eq!(origin.address, "192.0.2.1");
}

#[test]
fn origin_errors() {
    let bad =
        |o: &str| SessionDescription::parse(format!("v=0\r\no={o}\r\ns=-\r\nt=0 0\r\n").as_bytes());
    assert_eq!(
        bad("- 1 2 IN IP4"),
        Err(SdpError::InvalidOrigin { line: 2 })
    );
    assert_eq!(
        bad("- 1 x IN IP4 a"),
        Err(SdpError::InvalidOrigin { line: 2 })
    );
    assert_eq!(
        bad("- 1 2 IN IP4 a extra"),
        Err(SdpError::InvalidOrigin { line: 2 })
    );
    assert_eq!(
        bad("- 1 99999999999999999999999 IN IP4 a"),
        Err(SdpError::InvalidOrigin { line: 2 })
    );
    assert!(bad("alice 28908 1 IN IP4 host.example.com").is_ok());
}

#[test]
fn session_name_is_raw_bytes() {
    let text = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=Caf\xe9 Latin-1\r\nt=0 0\r\n";
    let parsed = SessionDescription::parse(text).unwrap();
    assert_eq!(parsed.session_name(), b"Caf\xe9 Latin-1");
    assert_eq!(&parsed.to_bytes()[..], &text[..]);
    let empty = SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 a\r\ns=\r\nt=0 0\r\n").unwrap();
    assert_eq!(empty.session_name(), b"");
}

#[test]
fn connection_variants() {
    let conn = |c: &str| {
        sdp("", &format!("m=audio 1 RTP/AVP 0\nc={c}\n"))
            .map(|s| s.media()[0].connection().cloned())
    };
    let v4 = conn("IN IP4 198.51.100.7").unwrap().unwrap();
    assert_eq!(v4.ip(), Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))));
    assert_eq!(v4.addr_type, AddrType::Ip4);
    let v6 = conn("IN IP6 2001:db8::1").unwrap().unwrap();
    assert_eq!(
        v6.ip(),
        Some(IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()))
    );
    let multicast = conn("IN IP4 224.2.36.42/127/3").unwrap().unwrap();
    assert_eq!((multicast.ttl, multicast.count), (Some(127), Some(3)));
    let v6_multi = conn("IN IP6 ff15::101/3").unwrap().unwrap();
    assert_eq!((v6_multi.ttl, v6_multi.count), (None, Some(3)));
    let host = conn("IN IP4 media.example.com").unwrap().unwrap();
    assert_eq!(
        host.address,
        ConnectionAddress::Host("media.example.com".into())
    );
    assert!(conn("IN IP4 0.0.0.0").unwrap().unwrap().is_unspecified());
    for bad in [
        "IN IP4",
        "IN IP4 1.2.3",
        "IN IP6 192.0.2.1",
        "IN IP4 2001:db8::1",
        "ATM NSAP x",
        "IN IP4 1.2.3.4/300",
        "IN IP4 a b",
    ] {
        assert_eq!(
            conn(bad),
            Err(SdpError::InvalidConnection { line: 7 }),
            "{bad}"
        );
    }
}

#[test]
fn bandwidth_and_timing() {
    let parsed = sdp("b=AS:64\nb=TIAS:64000\n", "").unwrap();
    let kinds: Vec<_> = parsed
        .bandwidths()
        .map(|b| (b.bw_type.as_str(), b.bandwidth))
        .collect();
    assert_eq!(kinds, [("AS", 64), ("TIAS", 64000)]);
    assert_eq!(parsed.timings().next(), Some(&Timing { start: 0, stop: 0 }));
    assert_eq!(
        sdp("b=AS\n", "").unwrap_err(),
        SdpError::InvalidBandwidth { line: 6 }
    );
    assert_eq!(
        sdp("b=A S:1\n", "").unwrap_err(),
        SdpError::InvalidBandwidth { line: 6 }
    );
    let bad_t = SessionDescription::parse(b"v=0\no=- 1 1 IN IP4 a\ns=-\nt=0\n");
    assert_eq!(bad_t, Err(SdpError::InvalidTiming { line: 4 }));
    let repeat = sdp("r=604800 3600 0 90000\nz=2882844526 -1h\n", "").unwrap();
    assert_eq!(
        repeat.lines().iter().map(Line::kind).collect::<String>(),
        "ctrz"
    );
}

#[test]
fn media_line_grammar() {
    let parsed = sdp(
        "",
        "m=audio 49170/2 RTP/AVP 0 8\nm=image 4000 udptl t38\nm=application 9 TCP/MRCPv2 1\n",
    )
    .unwrap();
    let m = parsed.media()[0].media_line();
    assert_eq!(
        (m.media.as_str(), m.port, m.port_count, m.proto.as_str()),
        ("audio", 49170, Some(2), "RTP/AVP")
    );
    assert_eq!(m.formats, ["0", "8"]);
    assert!(parsed.media()[0].is_rtp() && !parsed.media()[1].is_rtp());
    assert_eq!(parsed.media()[1].formats(), ["t38"]);
    let err = |m: &str| sdp("", m).unwrap_err();
    assert_eq!(
        err("m=audio 70000 RTP/AVP 0\n"),
        SdpError::InvalidPort { line: 6 }
    );
    assert_eq!(
        err("m=audio x RTP/AVP 0\n"),
        SdpError::InvalidPort { line: 6 }
    );
    assert_eq!(
        err("m=audio 4000 RTP/AVP\n"),
        SdpError::MissingFormats { line: 6 }
    );
    assert_eq!(
        err("m=audio 4000 RTP/AVP 128\n"),
        SdpError::InvalidPayloadType { line: 6 }
    );
    assert_eq!(
        err("m=audio 4000 RTP/AVP PCMU\n"),
        SdpError::InvalidPayloadType { line: 6 }
    );
    assert_eq!(err("m=audio\n"), SdpError::InvalidMediaLine { line: 6 });
    assert_eq!(
        err("m=audio 4000 RTP//AVP 0\n"),
        SdpError::InvalidMediaLine { line: 6 }
    );
}

#[test]
fn rtpmap_and_fmtp() {
    let parsed = audio("a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=rtpmap:8 L16/44100/2\n").unwrap();
    let media = &parsed.media()[0];
    let rtpmap = media.rtpmap(101).unwrap();
    assert_eq!(
        (rtpmap.encoding.as_str(), rtpmap.clock_rate, rtpmap.channels),
        ("telephone-event", 8000, None)
    );
    assert_eq!(media.rtpmap(8).unwrap().channels, Some(2));
    assert_eq!(media.fmtp("101").unwrap().params, "0-16");
    assert_eq!(media.telephone_events().collect::<Vec<_>>(), [(101, 8000)]);
    let opus = first_attribute("a=fmtp:111 minptime=10; useinbandfec=1\n").unwrap();
    let Attribute::Fmtp(fmtp) = opus else {
        panic!("fmtp")
    };
    assert_eq!(
        fmtp.parameters().collect::<Vec<_>>(),
        [("minptime", "10"), ("useinbandfec", "1")]
    );
    for bad in [
        "a=rtpmap:0\n",
        "a=rtpmap:200 X/8000\n",
        "a=rtpmap:0 PCMU\n",
        "a=rtpmap:0 PCMU/x\n",
        "a=rtpmap:0 PCMU/8000/1/1\n",
    ] {
        assert_eq!(
            audio(bad).unwrap_err(),
            SdpError::InvalidRtpmap { line: 7 },
            "{bad}"
        );
    }
    assert_eq!(
        audio("a=fmtp\n").unwrap_err(),
        SdpError::InvalidFmtp { line: 7 }
    );
}

#[test]
fn ptime_direction_rtcp() {
    assert_eq!(
        first_attribute("a=ptime:20\n").unwrap(),
        Attribute::Ptime(20)
    );
    assert_eq!(
        first_attribute("a=maxptime:150\n").unwrap(),
        Attribute::MaxPtime(150)
    );
    assert_eq!(
        audio("a=ptime:x\n").unwrap_err(),
        SdpError::InvalidPtime { line: 7 }
    );
    assert_eq!(
        first_attribute("a=sendonly\n").unwrap(),
        Attribute::Direction(Direction::SendOnly)
    );
    assert_eq!(
        first_attribute("a=inactive\n").unwrap(),
        Attribute::Direction(Direction::Inactive)
    );
    assert_eq!(
        audio("a=sendrecv:1\n").unwrap_err(),
        SdpError::UnexpectedAttributeValue { line: 7 }
    );
    assert_eq!(
        first_attribute("a=rtcp:4001\n").unwrap(),
        Attribute::Rtcp(Rtcp {
            port: 4001,
            connection: None
        })
    );
    let Attribute::Rtcp(rtcp) = first_attribute("a=rtcp:53020 IN IP6 2001:db8::f\n").unwrap()
    else {
        panic!("rtcp")
    };
    assert_eq!(
        rtcp.connection.unwrap().ip(),
        Some("2001:db8::f".parse().unwrap())
    );
    assert_eq!(
        audio("a=rtcp:x\n").unwrap_err(),
        SdpError::InvalidRtcp { line: 7 }
    );
    assert_eq!(
        audio("a=rtcp:1 IN IP4\n").unwrap_err(),
        SdpError::InvalidRtcp { line: 7 }
    );
    assert_eq!(first_attribute("a=rtcp-mux\n").unwrap(), Attribute::RtcpMux);
    let parsed = audio("a=rtcp-mux\na=ptime:30\n").unwrap();
    assert!(parsed.media()[0].rtcp_mux());
    assert_eq!(parsed.media()[0].ptime(), Some(30));
}

#[test]
fn unknown_attributes_keep_order_and_bytes() {
    let parsed = audio(
        "a=X-vendor:one two  three\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc|2^20\na=flag\n",
    )
    .unwrap();
    let names: Vec<_> = parsed.media()[0]
        .attributes()
        .map(Attribute::name)
        .collect();
    assert_eq!(names, ["X-vendor", "crypto", "flag"]);
    let raw: Vec<_> = parsed.media()[0].lines().iter().map(Line::raw).collect();
    assert_eq!(raw[0], b"X-vendor:one two  three");
    assert_eq!(
        audio("a=:x\n").unwrap_err(),
        SdpError::InvalidAttribute { line: 7 }
    );
    assert_eq!(
        audio("a=na me\n").unwrap_err(),
        SdpError::InvalidAttribute { line: 7 }
    );
}
