//! Property tests: print → parse → print is stable for built descriptions, and no input of any
//! kind makes the parser or the edits panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pbx_sdp::{
    AnswerOptions, Attribute, Codec, Connection, Direction, Fmtp, MediaDescription, MediaLine,
    Origin, Rtcp, Rtpmap, SessionDescription, negotiate_answer,
};
use proptest::prelude::*;

use crate::{FIXTURES, fixture};

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!#$%&'*+^_`{|}~-]{0,11}"
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,24}"
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive)
    ]
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        (
            0u8..=127,
            token(),
            any::<u32>(),
            proptest::option::of(1u16..=8)
        )
            .prop_map(|(payload_type, encoding, clock_rate, channels)| {
                Attribute::Rtpmap(Rtpmap {
                    payload_type,
                    encoding,
                    clock_rate,
                    channels,
                })
            }),
        (0u8..=127, "[!-~]([ -~]{0,20}[!-~])?").prop_map(|(pt, params)| Attribute::Fmtp(Fmtp {
            format: pt.to_string(),
            params
        })),
        any::<u32>().prop_map(Attribute::Ptime),
        any::<u32>().prop_map(Attribute::MaxPtime),
        direction().prop_map(Attribute::Direction),
        (any::<u16>(), proptest::option::of(ip())).prop_map(|(port, address)| {
            Attribute::Rtcp(Rtcp {
                port,
                connection: address.map(Connection::new),
            })
        }),
        Just(Attribute::RtcpMux),
        ("x-[a-z0-9-]{1,10}", proptest::option::of(text()))
            .prop_map(|(name, value)| Attribute::other(&name, value.as_deref())),
    ]
}

fn media() -> impl Strategy<Value = MediaDescription> {
    let rtp = (
        prop_oneof![Just("audio"), Just("video")],
        any::<u16>(),
        prop_oneof![Just("RTP/AVP"), Just("RTP/SAVP"), Just("UDP/TLS/RTP/SAVPF")],
        proptest::collection::vec(0u8..=127, 1..6),
    )
        .prop_map(|(media, port, proto, pts)| MediaLine {
            media: media.into(),
            port,
            port_count: None,
            proto: proto.into(),
            formats: pts.iter().map(u8::to_string).collect(),
        });
    let other = any::<u16>().prop_map(|port| MediaLine {
        media: "image".into(),
        port,
        port_count: None,
        proto: "udptl".into(),
        formats: vec!["t38".into()],
    });
    (
        prop_oneof![rtp, other],
        proptest::option::of(ip()),
        proptest::collection::vec(attribute(), 0..8),
    )
        .prop_map(|(line, connection, attributes)| {
            let mut media = MediaDescription::new(line).unwrap();
            media
                .set_connection(connection.map(Connection::new))
                .unwrap();
            for attribute in attributes {
                media.push_attribute(attribute).unwrap();
            }
            media
        })
}

fn session() -> impl Strategy<Value = SessionDescription> {
    (
        ("-|[a-z]{1,8}", any::<u64>(), any::<u64>(), ip()),
        text(),
        ip(),
        proptest::collection::vec(attribute(), 0..4),
        proptest::collection::vec(media(), 0..4),
    )
        .prop_map(
            |((user, id, version, origin_ip), name, address, attributes, media)| {
                let mut sdp =
                    SessionDescription::new(Origin::new(&user, id, version, origin_ip), &name)
                        .unwrap();
                sdp.push_line(pbx_sdp::Line::from_connection(Connection::new(address)).unwrap())
                    .unwrap();
                for attribute in attributes {
                    sdp.push_line(pbx_sdp::Line::from_attribute(attribute).unwrap())
                        .unwrap();
                }
                for m in media {
                    sdp.push_media(m);
                }
                sdp
            },
        )
}

/// Never panics; when accepted, printing is stable and the edits keep the text parseable.
fn survive(input: &[u8]) {
    let Ok(sdp) = SessionDescription::parse(input) else {
        return;
    };
    let printed = sdp.to_bytes();
    let reparsed = SessionDescription::parse(&printed).expect("printed form parses");
    assert_eq!(reparsed.to_bytes(), printed);
    let relay = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
    let mut edited = sdp.clone();
    edited.rewrite_connection(relay);
    let _ = edited.set_media_port(0, 65535);
    edited.set_direction(Direction::Inactive);
    let _ = edited.restrict_to(&[Codec::PCMU, Codec::TELEPHONE_EVENT]);
    edited.bump_version();
    let _ = edited.is_hold();
    SessionDescription::parse(&edited.to_bytes()).expect("edited form parses");
    let options = AnswerOptions::new(Origin::new("pbx", 1, 1, relay), relay, vec![40000; 4]);
    if let Ok(answer) = negotiate_answer(&sdp, &Codec::DEFAULT_SUPPORTED, &options) {
        SessionDescription::parse(&answer.to_bytes()).expect("answer parses");
    }
}

/// 512 cases per property, or `PROPTEST_CASES` when set (for long hostile-input runs).
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    match std::env::var_os("PROPTEST_CASES") {
        Some(_) => default,
        None => ProptestConfig {
            cases: 512,
            ..default
        },
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn print_parse_print_is_stable(sdp in session()) {
        let printed = sdp.to_bytes();
        let parsed = SessionDescription::parse(&printed).expect("built description parses");
        prop_assert_eq!(parsed.to_bytes(), printed);
        prop_assert_eq!(parsed.origin(), sdp.origin());
        prop_assert_eq!(parsed.media().len(), sdp.media().len());
        for (a, b) in parsed.media().iter().zip(sdp.media()) {
            prop_assert_eq!(a.media_line(), b.media_line());
            prop_assert_eq!(a.lines().len(), b.lines().len());
        }
    }

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        survive(&input);
    }

    #[test]
    fn random_lines_never_panic(lines in proptest::collection::vec(
        prop_oneof![
            Just("v=0".to_owned()), Just("o=- 1 1 IN IP4 192.0.2.1".to_owned()), Just("s=-".to_owned()),
            Just("c=IN IP4 0.0.0.0".to_owned()), Just("t=0 0".to_owned()), Just("m=audio 0 RTP/AVP 0".to_owned()),
            Just("a=sendonly".to_owned()), Just("a=rtcp:9 IN IP6 ::".to_owned()), Just("a=ice-ufrag:x".to_owned()),
            "[a-z]=[ -~]{0,30}", "m=[a-z]{1,5} [0-9]{1,6} [A-Z/]{1,12}( [0-9]{1,3}){0,4}",
            "a=(rtpmap|fmtp|rtcp|ptime):[ -~]{0,24}", "c=IN IP[46] [0-9a-f.:/]{0,20}",
        ],
        0..16,
    ), lf in any::<bool>()) {
        let end = if lf { "\n" } else { "\r\n" };
        let mut text = String::from("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n");
        for line in lines {
            text.push_str(&line);
            text.push_str(end);
        }
        survive(text.as_bytes());
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = fixture(FIXTURES[which]);
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => bytes.truncate(i),
            }
        }
        survive(&bytes);
    }
}
