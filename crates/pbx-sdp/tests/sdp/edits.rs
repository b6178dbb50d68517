//! B2BUA edits: connection/port rewrite, direction, hold, origin versions, unknown lines kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pbx_sdp::{Attribute, Direction, EditError, LegOrigin, Line, SessionDescription};

use crate::{fixture, parsed};

const RELAY: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

/// Lines of the printed description as text.
fn lines(sdp: &SessionDescription) -> Vec<String> {
    String::from_utf8(sdp.to_bytes().to_vec())
        .unwrap()
        .split("\r\n")
        .map(str::to_owned)
        .collect()
}

#[test]
fn anchoring_rewrite_changes_only_the_touched_lines() {
    let original = parsed("srtp-crypto.sdp");
    let mut sdp = original.clone();
    sdp.rewrite_connection(RELAY);
    sdp.set_media_port(0, 30000).unwrap();
    let before = lines(&original);
    let after = lines(&sdp);
    assert_eq!(before.len(), after.len());
    let changed: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(
        changed,
        [
            "o=- 1190421315 1190421316 IN IP4 203.0.113.1",
            "c=IN IP4 203.0.113.1",
            "m=audio 30000 RTP/SAVP 0 8 101",
            "a=rtcp:30001",
        ]
    );
    // a=crypto lines are byte-identical and in place.
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNf"))
    );
}

#[test]
fn rewrite_covers_media_level_connection_and_rtcp_address() {
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\na=rtcp:4001 IN IP4 192.0.2.1\r\n";
    let mut sdp = SessionDescription::parse(text.as_bytes()).unwrap();
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    sdp.rewrite_connection(v6);
    assert_eq!(
        sdp.connection().and_then(|c| c.ip()),
        Some(v6),
        "session c= added"
    );
    assert_eq!(sdp.media()[0].connection().and_then(|c| c.ip()), Some(v6));
    assert_eq!(
        sdp.media()[0]
            .rtcp()
            .and_then(|r| r.connection.as_ref())
            .and_then(|c| c.ip()),
        Some(v6)
    );
    assert_eq!(sdp.origin().addr_type, "IP6");
    let printed = lines(&sdp);
    assert_eq!(printed[3], "c=IN IP6 2001:db8::1", "c= goes before t=");
    assert_eq!(SessionDescription::parse(&sdp.to_bytes()).unwrap(), sdp);
}

#[test]
fn legacy_hold_survives_rewrite_but_ice_placeholder_does_not() {
    let mut hold = parsed("hold-rfc2543.sdp");
    assert!(hold.is_hold());
    hold.rewrite_connection(RELAY);
    assert!(hold.connection().is_some_and(|c| c.is_unspecified()));
    assert!(hold.is_hold(), "the other leg still sees the hold");
    let mut webrtc = parsed("webrtc.sdp");
    webrtc.rewrite_connection(RELAY);
    assert_eq!(
        webrtc.effective_connection(0).and_then(|c| c.ip()),
        Some(RELAY)
    );
    assert_eq!(
        webrtc.media()[0]
            .rtcp()
            .and_then(|r| r.connection.as_ref())
            .and_then(|c| c.ip()),
        Some(RELAY)
    );
    webrtc.media_mut(0).unwrap().remove_attributes("candidate");
    assert_eq!(
        webrtc.media()[0]
            .attributes()
            .filter(|a| a.name() == "candidate")
            .count(),
        0
    );
}

#[test]
fn hold_detection_both_styles_and_resume() {
    assert!(!parsed("yealink.sdp").is_hold());
    assert!(parsed("hold-rfc2543.sdp").is_hold());
    assert!(parsed("ipv6.sdp").is_hold(), "a=sendonly");
    let mut sdp = parsed("yealink.sdp");
    sdp.set_direction(Direction::Inactive);
    assert!(sdp.is_hold());
    sdp.set_direction(Direction::RecvOnly);
    assert!(!sdp.is_hold(), "recvonly is not a hold request");
    sdp.set_direction(Direction::SendRecv);
    assert!(!sdp.is_hold());
    // Resume keeps a single direction line, in the place of the old one.
    let after = lines(&sdp);
    assert_eq!(
        after.iter().filter(|l| l.as_str() == "a=sendrecv").count(),
        1
    );
    assert_eq!(after.len(), lines(&parsed("yealink.sdp")).len());
    // Only rejected streams: nothing to hold.
    assert!(
        !SessionDescription::parse(
            b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=sendonly\r\n"
        )
        .unwrap()
        .is_hold()
    );
}

#[test]
fn session_level_direction_is_moved_to_media() {
    let mut sdp = parsed("polycom.sdp");
    sdp.set_direction(Direction::SendOnly);
    assert_eq!(sdp.direction(), None);
    assert_eq!(sdp.media()[0].direction(), Some(Direction::SendOnly));
    assert_eq!(sdp.effective_direction(0), Some(Direction::SendOnly));
}

#[test]
fn bump_version_and_leg_origin() {
    let mut sdp = parsed("sipp-uac.sdp");
    assert_eq!(sdp.bump_version(), 2353687638);
    assert!(lines(&sdp)[1].ends_with(" 2353687638 IN IP4 127.0.0.1"));

    let mut leg = LegOrigin::new("cloudpbx", 42, 1, RELAY);
    let mut first = parsed("yealink.sdp");
    assert_eq!(leg.stamp(&mut first).unwrap(), 1);
    assert_eq!(lines(&first)[1], "o=cloudpbx 42 1 IN IP4 203.0.113.1");
    let mut same = parsed("yealink.sdp");
    assert_eq!(
        leg.stamp(&mut same).unwrap(),
        1,
        "unchanged re-offer keeps the version"
    );
    let mut held = parsed("yealink.sdp");
    held.set_direction(Direction::SendOnly);
    assert_eq!(leg.stamp(&mut held).unwrap(), 2, "a change raises it");
    let mut resumed = parsed("yealink.sdp");
    assert_eq!(
        leg.stamp(&mut resumed).unwrap(),
        3,
        "changing back is a change too"
    );
    assert_eq!(leg.origin().session_version, 3);
}

#[test]
fn unknown_lines_survive_every_edit() {
    let original = fixture("webrtc.sdp");
    let mut sdp = parsed("webrtc.sdp");
    sdp.rewrite_connection(RELAY);
    sdp.set_media_port(0, 40000).unwrap();
    sdp.set_direction(Direction::SendOnly);
    sdp.bump_version();
    let printed = String::from_utf8(sdp.to_bytes().to_vec()).unwrap();
    for unknown in String::from_utf8(original)
        .unwrap()
        .split("\r\n")
        .filter(|l| {
            [
                "a=extmap",
                "a=fingerprint",
                "a=ssrc",
                "a=msid",
                "a=group",
                "a=ice-",
                "a=setup",
                "a=mid",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
    {
        assert!(
            printed.contains(&format!("{unknown}\r\n")),
            "{unknown} lost"
        );
    }
}

#[test]
fn edit_errors() {
    let mut sdp = parsed("sipp-uac.sdp");
    assert_eq!(
        sdp.set_media_port(3, 1),
        Err(EditError::NoSuchMedia { index: 3, count: 1 })
    );
    let media = sdp.media_mut(0).unwrap();
    assert!(
        media
            .push_attribute(Attribute::other("bad name", None))
            .is_err()
    );
    assert!(
        media
            .push_attribute(Attribute::other("x", Some("line\r\nbreak")))
            .is_err()
    );
    media
        .push_attribute(Attribute::other("X-ours", Some("1")))
        .unwrap();
    assert_eq!(media.lines().last().map(Line::raw), Some(&b"X-ours:1"[..]));
    assert!(
        media
            .push_line(Line::from_timing(pbx_sdp::Timing { start: 0, stop: 0 }))
            .is_err()
    );
}
