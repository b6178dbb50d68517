//! RFC 3264 answers, codec intersection and restriction.

use std::net::{IpAddr, Ipv4Addr};

use pbx_sdp::{
    AnswerOptions, Codec, Direction, NegotiationError, Origin, SessionDescription, negotiate_answer,
};

use crate::parsed;

const RELAY: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

fn options(ports: &[u16]) -> AnswerOptions {
    AnswerOptions::new(Origin::new("cloudpbx", 77, 1, RELAY), RELAY, ports.to_vec())
}

fn answer(
    offer: &SessionDescription,
    supported: &[Codec],
) -> Result<SessionDescription, NegotiationError> {
    negotiate_answer(offer, supported, &options(&[30000, 30002, 30004]))
}

fn offer(media: &str) -> SessionDescription {
    let text =
        format!("v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n{media}");
    SessionDescription::parse(text.as_bytes()).unwrap()
}

#[test]
fn common_codec_in_offer_order_with_offer_payload_types() {
    let answer = answer(
        &parsed("yealink.sdp"),
        &[Codec::PCMA, Codec::PCMU, Codec::TELEPHONE_EVENT],
    )
    .unwrap();
    let media = &answer.media()[0];
    assert_eq!(media.formats(), ["0", "8", "101"]);
    assert_eq!(media.port(), 30000);
    assert_eq!(answer.connection().and_then(|c| c.ip()), Some(RELAY));
    assert_eq!(answer.origin().username, "cloudpbx");
    assert_eq!(
        media.rtpmap(101).map(|r| r.encoding.as_str()),
        Some("telephone-event")
    );
    assert_eq!(media.fmtp("101").map(|f| f.params.as_str()), Some("0-15"));
    assert_eq!(media.ptime(), Some(20));
    assert_eq!(media.direction(), Some(Direction::SendRecv));
    // The printed answer parses back to the same thing.
    assert_eq!(
        SessionDescription::parse(&answer.to_bytes()).unwrap(),
        answer
    );
}

#[test]
fn dynamic_payload_types_are_matched_by_codec_not_number() {
    // Linphone puts opus on 96; we answer with 96.
    let answer = answer(&parsed("linphone.sdp"), &Codec::DEFAULT_SUPPORTED).unwrap();
    let media = &answer.media()[0];
    assert_eq!(media.formats(), ["96", "0", "8", "101", "100"]);
    assert_eq!(
        media.fmtp("96").map(|f| f.params.as_str()),
        Some("useinbandfec=1")
    );
    // telephone-event/16000 has no 16 kHz codec chosen (speex refused): left out.
    assert!(media.rtpmap(99).is_none());
}

#[test]
fn telephone_event_matched_by_clock_rate() {
    let webrtc = parsed("webrtc.sdp");
    let opus_only = answer(
        &webrtc,
        &[
            Codec::OPUS,
            Codec::TELEPHONE_EVENT,
            Codec::TELEPHONE_EVENT_48K,
        ],
    )
    .unwrap();
    assert_eq!(opus_only.media()[0].formats(), ["111", "110"]);
    let pcmu_only = answer(
        &webrtc,
        &[
            Codec::PCMU,
            Codec::TELEPHONE_EVENT,
            Codec::TELEPHONE_EVENT_48K,
        ],
    )
    .unwrap();
    assert_eq!(pcmu_only.media()[0].formats(), ["0", "126"]);
    let no_events = answer(&webrtc, &[Codec::PCMU]).unwrap();
    assert!(!no_events.media()[0].has_telephone_event());
    assert!(
        no_events.media()[0].rtcp_mux(),
        "rtcp-mux offered and accepted"
    );
}

#[test]
fn telephone_event_alone_is_not_a_common_codec() {
    let offer = offer("m=audio 4000 RTP/AVP 18 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    let err = answer(&offer, &Codec::DEFAULT_SUPPORTED).unwrap_err();
    assert_eq!(err, NegotiationError::NoCommonCodec);
    assert_eq!(err.sip_status(), 488);
}

#[test]
fn no_common_codec_is_488() {
    let err = answer(&parsed("polycom.sdp"), &[Codec::OPUS]).unwrap_err();
    assert_eq!(err, NegotiationError::NoCommonCodec);
    assert_eq!(err.sip_status(), 488);
    let video_only = offer("m=video 5000 RTP/AVP 31\r\n");
    let err = answer(&video_only, &Codec::DEFAULT_SUPPORTED).unwrap_err();
    assert_eq!(err, NegotiationError::NoAcceptableMedia);
    assert_eq!(err.sip_status(), 488);
}

#[test]
fn direction_answered_per_rfc3264() {
    for (offered, ours, expected) in [
        ("sendonly", Direction::SendRecv, Direction::RecvOnly),
        ("recvonly", Direction::SendRecv, Direction::SendOnly),
        ("inactive", Direction::SendRecv, Direction::Inactive),
        ("sendrecv", Direction::SendRecv, Direction::SendRecv),
        ("sendrecv", Direction::SendOnly, Direction::SendOnly),
        ("sendonly", Direction::SendOnly, Direction::Inactive),
    ] {
        let offer = offer(&format!("m=audio 4000 RTP/AVP 0\r\na={offered}\r\n"));
        let mut options = options(&[30000]);
        options.direction = ours;
        let answer = negotiate_answer(&offer, &Codec::DEFAULT_SUPPORTED, &options).unwrap();
        assert_eq!(
            answer.media()[0].direction(),
            Some(expected),
            "offer {offered}, we want {ours:?}"
        );
    }
}

#[test]
fn unwanted_and_disabled_streams_are_rejected_with_port_zero() {
    let offer = offer(concat!(
        "m=audio 4000 RTP/AVP 0\r\n",
        "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
        "m=audio 0 RTP/AVP 8\r\n",
        "m=audio 6000 RTP/AVP 18\r\n",
    ));
    let answer = answer(&offer, &Codec::DEFAULT_SUPPORTED).unwrap();
    let ports: Vec<_> = answer.media().iter().map(|m| m.port()).collect();
    assert_eq!(ports, [30000, 0, 0, 0]);
    assert_eq!(answer.media()[1].formats(), ["96"]);
    assert_eq!(answer.media()[1].lines().len(), 0);
    assert_eq!(
        answer.media()[3].formats(),
        ["18"],
        "no common codec: rejected, still valid"
    );
}

#[test]
fn t38_stream_echoed_when_image_accepted() {
    let offer = parsed("t38-reinvite.sdp");
    let mut options = options(&[30000, 30002]);
    options.media_types.push("image".into());
    let answer = negotiate_answer(&offer, &Codec::DEFAULT_SUPPORTED, &options).unwrap();
    assert_eq!(answer.media()[0].port(), 0);
    let image = &answer.media()[1];
    assert_eq!((image.port(), image.proto()), (30002, "udptl"));
    assert!(image.attribute("T38FaxMaxDatagram").is_some());
    assert_eq!(image.direction(), Some(Direction::SendRecv));
}

#[test]
fn missing_local_port_is_our_500() {
    let err = negotiate_answer(&parsed("sipp-uac.sdp"), &[Codec::PCMU], &options(&[])).unwrap_err();
    assert_eq!(err, NegotiationError::MissingLocalPort { index: 0 });
    assert_eq!(err.sip_status(), 500);
}

#[test]
fn answer_copies_offer_timing() {
    let offer = SessionDescription::parse(
        b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=3034423619 3042462419\r\nm=audio 1 RTP/AVP 0\r\n",
    )
    .unwrap();
    let answer = answer(&offer, &[Codec::PCMU]).unwrap();
    let timings: Vec<_> = answer.timings().map(|t| (t.start, t.stop)).collect();
    assert_eq!(timings, [(3034423619, 3042462419)]);
}

#[test]
fn intersection_of_two_descriptions() {
    let yealink = parsed("yealink.sdp");
    let baresip = parsed("baresip.sdp");
    let common: Vec<_> = yealink
        .common_audio_codecs(&baresip)
        .into_iter()
        .map(|f| f.payload_type)
        .collect();
    assert_eq!(common, [0, 8, 9, 101]);
    let reverse: Vec<_> = baresip
        .common_audio_codecs(&yealink)
        .into_iter()
        .map(|f| f.payload_type)
        .collect();
    assert_eq!(reverse, [9, 0, 8, 101]);
    assert!(
        yealink
            .common_audio_codecs(&parsed("t38-reinvite.sdp"))
            .is_empty()
    );
}

#[test]
fn restrict_to_filters_formats_and_their_lines() {
    let mut sdp = parsed("webrtc.sdp");
    sdp.restrict_to(&[
        Codec::PCMA,
        Codec::PCMU,
        Codec::TELEPHONE_EVENT,
        Codec::TELEPHONE_EVENT_48K,
    ])
    .unwrap();
    let media = &sdp.media()[0];
    assert_eq!(media.formats(), ["0", "8", "126"]);
    assert!(
        media.rtpmap(111).is_none() && media.fmtp("111").is_none() && media.fmtp("63").is_none()
    );
    assert!(
        media
            .attributes()
            .all(|a| !a.name().eq_ignore_ascii_case("rtcp-fb"))
    );
    // Everything unrelated to the dropped formats is still there, in order.
    assert_eq!(
        media
            .attributes()
            .filter(|a| a.name() == "candidate")
            .count(),
        2
    );
    assert!(media.attribute("fingerprint").is_some() && media.attribute("ssrc").is_some());
    let reparsed = SessionDescription::parse(&sdp.to_bytes()).unwrap();
    assert_eq!(reparsed, sdp);
}

#[test]
fn restrict_to_without_common_codec_changes_nothing() {
    let mut sdp = parsed("linphone.sdp");
    let before = sdp.to_bytes();
    assert_eq!(
        sdp.restrict_to(&[Codec::G722]),
        Err(NegotiationError::NoCommonCodec)
    );
    assert_eq!(sdp.to_bytes(), before);
}

#[test]
fn restrict_to_disables_a_stream_with_nothing_left() {
    let mut sdp =
        offer("m=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 18\r\nm=image 4004 udptl t38\r\n");
    sdp.restrict_to(&[Codec::PCMU]).unwrap();
    let ports: Vec<_> = sdp.media().iter().map(|m| m.port()).collect();
    assert_eq!(ports, [4000, 0, 4004]);
}

#[test]
fn restrict_to_keeps_bytes_when_nothing_is_dropped() {
    for name in ["sipp-uac.sdp", "hold-rfc2543.sdp", "ipv6.sdp"] {
        let mut sdp = parsed(name);
        sdp.restrict_to(&Codec::DEFAULT_SUPPORTED).unwrap();
        assert_eq!(sdp.to_bytes(), crate::fixture(name), "{name}");
    }
}

#[test]
fn legacy_hold_offer_is_answered_recvonly() {
    let held = answer(&parsed("hold-rfc2543.sdp"), &Codec::DEFAULT_SUPPORTED).unwrap();
    assert_eq!(held.media()[0].direction(), Some(Direction::RecvOnly));
    // ICE's 0.0.0.0 placeholder is not a hold.
    let ice = answer(&parsed("webrtc.sdp"), &Codec::DEFAULT_SUPPORTED).unwrap();
    assert_eq!(ice.media()[0].direction(), Some(Direction::SendRecv));
}

#[test]
fn all_streams_disabled_is_answered_not_refused() {
    let offer = offer("m=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n");
    let answer = answer(&offer, &Codec::DEFAULT_SUPPORTED).unwrap();
    assert!(answer.media().iter().all(|m| m.is_rejected()));
    assert_eq!(answer.media().len(), 2);
}

#[test]
fn pbx_made_offer_round_trips_through_negotiation() {
    let relay = RELAY;
    let mut sdp = SessionDescription::new(Origin::new("cloudpbx", 9, 1, relay), "-").unwrap();
    sdp.push_line(pbx_sdp::Line::from_connection(pbx_sdp::Connection::new(relay)).unwrap())
        .unwrap();
    let codecs = [
        Codec::OPUS,
        Codec::G722,
        Codec::PCMU,
        Codec::TELEPHONE_EVENT_48K,
        Codec::TELEPHONE_EVENT,
    ];
    sdp.push_media(
        pbx_sdp::MediaDescription::rtp_offer("audio", 30000, "RTP/AVP", &codecs, Some(20)).unwrap(),
    );
    let printed = sdp.to_bytes();
    let text = std::str::from_utf8(&printed).unwrap();
    assert!(
        text.contains("m=audio 30000 RTP/AVP 96 9 0 97 98\r\n"),
        "{text}"
    );
    assert!(
        text.contains("a=rtpmap:96 opus/48000/2\r\n") && text.contains("a=fmtp:98 0-16\r\n"),
        "{text}"
    );
    let offer = SessionDescription::parse(&printed).unwrap();
    assert_eq!(offer.media()[0].codecs(), codecs);
    let answer = answer(&offer, &[Codec::PCMU, Codec::TELEPHONE_EVENT]).unwrap();
    assert_eq!(answer.media()[0].formats(), ["0", "98"]);
}

#[test]
fn pbx_made_offer_runs_out_of_dynamic_payload_types_cleanly() {
    let many = vec![Codec::OPUS; 33];
    assert!(pbx_sdp::MediaDescription::rtp_offer("audio", 1, "RTP/AVP", &many[..32], None).is_ok());
    assert!(pbx_sdp::MediaDescription::rtp_offer("audio", 1, "RTP/AVP", &many, None).is_err());
}
