//! Real-world shaped samples: byte-exact round trip and typed views.

use pbx_sdp::{Attribute, Codec, Direction, SessionDescription};

use crate::{FIXTURES, fixture, parsed};

#[test]
fn every_fixture_round_trips_byte_exact() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let sdp = SessionDescription::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sdp.to_bytes(), bytes, "{name}");
        assert_eq!(sdp.encoded_len(), bytes.len(), "{name}");
    }
}

#[test]
fn every_fixture_round_trips_from_lf() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let lf: Vec<u8> = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\r\n", "\n")
            .into_bytes();
        let sdp = SessionDescription::parse(&lf).unwrap();
        assert_eq!(sdp.to_bytes(), bytes, "{name}: LF input prints as CRLF");
    }
}

#[test]
fn sipp_offer() {
    let sdp = parsed("sipp-uac.sdp");
    assert_eq!(sdp.origin().username, "user1");
    assert_eq!(sdp.origin().session_version, 2353687637);
    assert_eq!(sdp.media().len(), 1);
    assert_eq!(sdp.media()[0].port(), 6000);
    assert_eq!(sdp.media()[0].codecs(), [Codec::PCMU]);
    assert!(!sdp.is_hold());
}

#[test]
fn baresip_offer() {
    let sdp = parsed("baresip.sdp");
    let media = &sdp.media()[0];
    let codecs = media.codecs();
    assert!(codecs[0].matches(&Codec::OPUS));
    assert!(codecs[1].matches(&Codec::G722));
    assert_eq!(media.telephone_events().collect::<Vec<_>>(), [(101, 8000)]);
    assert_eq!(media.bandwidths().next().map(|b| b.bandwidth), Some(106));
    assert_eq!(media.ptime(), Some(20));
    assert_eq!(media.direction(), Some(Direction::SendRecv));
    assert!(media.attribute("rtcp-rsize").is_some());
}

#[test]
fn linphone_offer_has_three_telephone_event_rates() {
    let sdp = parsed("linphone.sdp");
    let media = &sdp.media()[0];
    let mut events: Vec<_> = media.telephone_events().map(|(_, rate)| rate).collect();
    events.sort_unstable();
    assert_eq!(events, [8000, 16000, 48000]);
    assert!(sdp.attribute("record").is_some());
    // G.729 (18) is static, described only by its fmtp.
    assert!(media.codecs().iter().any(|c| c.encoding == "G729"));
}

#[test]
fn yealink_and_polycom() {
    let yealink = parsed("yealink.sdp");
    assert_eq!(yealink.session_name(), b"SDP data");
    assert_eq!(yealink.media()[0].formats(), ["0", "8", "18", "9", "101"]);
    let polycom = parsed("polycom.sdp");
    assert_eq!(polycom.direction(), Some(Direction::SendRecv));
    assert_eq!(polycom.media()[0].direction(), None);
    assert_eq!(polycom.effective_direction(0), Some(Direction::SendRecv));
    assert_eq!(
        polycom.media()[0].rtpmap(102).map(|r| r.clock_rate),
        Some(16000)
    );
}

#[test]
fn srtp_offer_keeps_crypto_typed_as_other() {
    let sdp = parsed("srtp-crypto.sdp");
    let media = &sdp.media()[0];
    assert_eq!(media.proto(), "RTP/SAVP");
    let crypto: Vec<_> = media
        .attributes()
        .filter(|a| a.name() == "crypto")
        .collect();
    assert_eq!(crypto.len(), 2);
    assert!(
        matches!(crypto[0], Attribute::Other { value: Some(v), .. } if v.starts_with(b"1 AES_CM_128_HMAC_SHA1_80 inline:"))
    );
    assert_eq!(media.rtcp().map(|r| r.port), Some(17587));
    assert_eq!(media.maxptime(), Some(150));
}

#[test]
fn t38_image_stream() {
    let sdp = parsed("t38-reinvite.sdp");
    assert!(sdp.media()[0].is_rejected());
    let image = &sdp.media()[1];
    assert_eq!(
        (image.media_type(), image.proto(), image.formats()),
        ("image", "udptl", &["t38".to_owned()][..])
    );
    assert!(image.payload_formats().is_empty());
    assert_eq!(image.attributes().count(), 6);
    assert!(image.attribute("T38FaxUdpEC").is_some());
}

#[test]
fn webrtc_offer() {
    let sdp = parsed("webrtc.sdp");
    assert_eq!(sdp.connection(), None);
    let media = &sdp.media()[0];
    assert!(media.rtcp_mux());
    assert_eq!(
        media
            .rtcp()
            .and_then(|r| r.connection.clone())
            .map(|c| c.is_unspecified()),
        Some(true)
    );
    assert_eq!(
        media
            .attributes()
            .filter(|a| a.name() == "candidate")
            .count(),
        2
    );
    let mut events: Vec<_> = media.telephone_events().collect();
    events.sort_unstable();
    assert_eq!(events, [(110, 48000), (126, 8000)]);
    // c=0.0.0.0 in an ICE offer is a placeholder (RFC 8839), and the stream is sendrecv.
    assert_eq!(sdp.is_media_hold(0), Some(false));
    assert!(!sdp.is_hold());
}

#[test]
fn ipv6_sendonly() {
    let sdp = parsed("ipv6.sdp");
    assert_eq!(
        sdp.effective_connection(0).and_then(|c| c.ip()),
        Some("2001:db8::20".parse().unwrap())
    );
    assert!(sdp.is_hold());
}
