//! Property tests: generated messages print back byte-identical, parse to the generated
//! values, and stay stable through print → parse → print; arbitrary or mutated input never
//! panics.

// Test code: a failed expectation must abort the test with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use pbx_sip::framing::{Frame, StreamDecoder};
use pbx_sip::{HeaderName, Message, Method, NameAddr, Request, Response, StatusCode, Uri, Via};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,12}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,8}){0,3}",
        (any::<u8>(), any::<u8>(), any::<u8>(), 1u8..255)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
    ]
}

fn sip_uri() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,12}|[a-z]{1,4}%[0-9A-F]{2}[a-z]{0,3}"),
        host(),
        prop::option::of(1u16..),
        prop::collection::vec(
            (
                "[a-z][a-z0-9-]{0,8}",
                prop::option::of("[a-zA-Z0-9.-]{1,8}"),
            ),
            0..3,
        ),
    )
        .prop_map(|(user, host, port, params)| {
            let mut s = String::from("sip:");
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            for (k, v) in params {
                s.push(';');
                s.push_str(&k);
                if let Some(v) = v {
                    s.push('=');
                    s.push_str(&v);
                }
            }
            s
        })
}

/// A display name: tokens, or a quoted string with escapes and UTF-8.
fn display_name() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        "[A-Za-z0-9]{1,8}( [A-Za-z0-9]{1,8}){0,2}",
        "[ A-Za-z0-9,;:<>@éü\u{43d}]{0,12}".prop_map(|s| format!("\"{s}\"")),
        "[A-Za-z ]{0,6}".prop_map(|s| format!("\"{s}\\\"x\\\\\"")),
    ])
}

fn name_addr() -> impl Strategy<Value = (String, Option<String>, String)> {
    (display_name(), sip_uri(), prop::option::of(token())).prop_map(|(dn, uri, tag)| {
        let mut s = String::new();
        if let Some(dn) = &dn {
            s.push_str(dn);
            s.push(' ');
        }
        s.push('<');
        s.push_str(&uri);
        s.push('>');
        if let Some(t) = &tag {
            s.push_str(";tag=");
            s.push_str(t);
        }
        (s, tag, uri)
    })
}

/// Inserts a fold (CRLF + WSP) at a space, if there is one.
fn fold(value: &str, at: usize) -> String {
    let spaces: Vec<usize> = value.match_indices(' ').map(|(i, _)| i).collect();
    if spaces.is_empty() {
        return value.to_owned();
    }
    let i = spaces[at % spaces.len()];
    format!("{}\r\n\t{}", &value[..i], &value[i + 1..])
}

#[derive(Debug, Clone)]
struct Generated {
    bytes: Vec<u8>,
    method: String,
    vias: Vec<(String, String)>,
    from_tag: Option<String>,
    call_id: String,
    cseq: u32,
    max_forwards: u8,
    body: Vec<u8>,
    unknown: Vec<(String, Vec<u8>)>,
}

fn message() -> impl Strategy<Value = Generated> {
    (
        prop_oneof![
            Just("INVITE".to_owned()),
            Just("REGISTER".to_owned()),
            Just("OPTIONS".to_owned()),
            "[A-Z][A-Z%!.-]{0,8}"
        ],
        sip_uri(),
        prop::collection::vec((host(), "[a-zA-Z0-9]{1,10}"), 1..4),
        name_addr(),
        name_addr(),
        "[a-zA-Z0-9.@!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,30}",
        any::<u32>(),
        any::<u8>(),
        prop::collection::vec(
            (
                "X-[A-Za-z0-9-]{1,10}",
                prop::collection::vec(0x20u8..=0xff, 0..40),
            ),
            0..4,
        ),
        prop::collection::vec(any::<u8>(), 0..200),
        any::<bool>(),
        any::<usize>(),
    )
        .prop_map(
            |(
                method,
                ruri,
                vias,
                from,
                to,
                call_id,
                cseq,
                max_forwards,
                unknown,
                body,
                compact,
                fold_at,
            )| {
                let mut m = Vec::new();
                m.extend_from_slice(format!("{method} {ruri} SIP/2.0\r\n").as_bytes());
                let mut via_values = Vec::new();
                for (i, (h, b)) in vias.iter().enumerate() {
                    let branch = format!("z9hG4bK{b}");
                    let name = if compact && i % 2 == 1 { "v" } else { "Via" };
                    let value = format!("SIP/2.0/UDP {h};branch={branch};rport");
                    let value = if i == 0 { fold(&value, fold_at) } else { value };
                    m.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                    via_values.push((h.clone(), branch));
                }
                m.extend_from_slice(
                    format!("{}: {}\r\n", if compact { "f" } else { "From" }, from.0).as_bytes(),
                );
                m.extend_from_slice(format!("To :  {}\r\n", to.0).as_bytes());
                m.extend_from_slice(
                    format!("{}: {call_id}\r\n", if compact { "i" } else { "Call-ID" }).as_bytes(),
                );
                m.extend_from_slice(format!("CSeq: {cseq} {method}\r\n").as_bytes());
                m.extend_from_slice(format!("Max-Forwards: {max_forwards}\r\n").as_bytes());
                let unknown: Vec<(String, Vec<u8>)> = unknown
                    .into_iter()
                    .map(|(n, v)| {
                        let v: Vec<u8> = v.into_iter().filter(|&b| b != 0x7f).collect();
                        let start = v.iter().position(|&b| b != b' ').unwrap_or(v.len());
                        let end = v.iter().rposition(|&b| b != b' ').map_or(start, |e| e + 1);
                        (n, v[start..end].to_vec())
                    })
                    .collect();
                for (n, v) in &unknown {
                    m.extend_from_slice(n.as_bytes());
                    m.extend_from_slice(b": ");
                    m.extend_from_slice(v);
                    m.extend_from_slice(b"\r\n");
                }
                m.extend_from_slice(
                    format!(
                        "{}: {}\r\n\r\n",
                        if compact { "l" } else { "Content-Length" },
                        body.len()
                    )
                    .as_bytes(),
                );
                m.extend_from_slice(&body);
                Generated {
                    bytes: m,
                    method,
                    vias: via_values,
                    from_tag: from.1,
                    call_id,
                    cseq,
                    max_forwards,
                    body,
                    unknown,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_messages_parse_print_identical(g in message()) {
        let input = Bytes::from(g.bytes.clone());
        let msg = Message::parse(input.clone()).unwrap();
        let r = msg.as_request().unwrap();
        prop_assert_eq!(r.method().as_bytes(), g.method.as_bytes());
        let vias = r.via().unwrap();
        prop_assert_eq!(vias.len(), g.vias.len());
        for (via, (_, branch)) in vias.iter().zip(&g.vias) {
            prop_assert_eq!(via.branch.as_deref(), Some(branch.as_bytes()));
            prop_assert_eq!(via.rport, Some(None));
        }
        prop_assert_eq!(r.from().unwrap().tag.map(|t| t.to_vec()), g.from_tag.map(String::into_bytes));
        r.to().unwrap();
        prop_assert_eq!(&r.call_id().unwrap()[..], g.call_id.as_bytes());
        prop_assert_eq!(r.cseq().unwrap().seq, g.cseq);
        prop_assert_eq!(r.max_forwards().unwrap(), Some(g.max_forwards));
        prop_assert!(r.validate().is_ok());
        for (n, v) in &g.unknown {
            prop_assert!(r.headers().get_all(&HeaderName::from(n.as_str())).any(|x| x == &v[..]));
        }
        prop_assert_eq!(&r.body()[..], &g.body[..]);
        let printed = msg.to_bytes();
        prop_assert_eq!(&printed[..], &input[..]);
        // Stream framing cuts the same message.
        let mut buf = BytesMut::from(&input[..]);
        prop_assert_eq!(StreamDecoder::default().decode(&mut buf).unwrap(), Some(Frame::Message(input.clone())));
    }

    #[test]
    fn edited_messages_are_stable(g in message(), tag in "[a-z0-9]{1,10}", branch in "[a-z0-9]{1,10}") {
        let mut r = Message::parse(Bytes::from(g.bytes)).unwrap().into_request().unwrap();
        let via = Via::new(pbx_sip::Transport::Tcp, pbx_sip::Host::Domain("proxy.example".into()), Some(5060), format!("z9hG4bK{branch}"));
        r.push_via(&via);
        r.set_uri(Uri::parse(Bytes::from_static(b"sip:x@example.com;lr")).unwrap());
        r.headers_mut().remove(&HeaderName::MaxForwards);
        let once = r.to_bytes();
        let again = Message::parse(once.clone()).unwrap();
        prop_assert_eq!(again.to_bytes(), once.clone());
        prop_assert_eq!(again.top_via().unwrap(), via);
        let resp = Response::for_request(&r, StatusCode::OK).with_to_tag(&tag);
        let printed = resp.to_bytes();
        let parsed = Message::parse(printed.clone()).unwrap();
        prop_assert_eq!(parsed.to_bytes(), printed);
        prop_assert!(parsed.as_response().unwrap().validate().is_ok());
        prop_assert_eq!(parsed.via().unwrap().len(), g.vias.len() + 1);
    }

    #[test]
    fn built_requests_round_trip(uri in sip_uri(), from in name_addr(), to in name_addr(), seq in any::<u32>(), body in prop::collection::vec(any::<u8>(), 0..100)) {
        let uri = Uri::parse(Bytes::from(uri)).unwrap();
        let from = NameAddr::parse(from.0.as_bytes()).unwrap();
        let to = NameAddr::parse(to.0.as_bytes()).unwrap();
        let via = Via::new(pbx_sip::Transport::Udp, pbx_sip::Host::Ipv4([192, 0, 2, 1].into()), None, "z9hG4bKx").with_rport();
        let r: Request = Request::builder(Method::Message, uri.clone())
            .via(&via).from(&from).to(&to).call_id("abc@h").cseq(seq)
            .body("text/plain", body.clone())
            .build();
        let printed = r.to_bytes();
        let parsed = Message::parse(printed.clone()).unwrap().into_request().unwrap();
        prop_assert_eq!(parsed.to_bytes(), printed);
        prop_assert_eq!(parsed.uri(), &uri);
        prop_assert_eq!(parsed.from().unwrap(), from);
        prop_assert_eq!(parsed.to().unwrap(), to);
        prop_assert_eq!(parsed.cseq().unwrap().seq, seq);
        prop_assert_eq!(&parsed.body()[..], &body[..]);
        prop_assert!(parsed.validate().is_ok());
    }

    #[test]
    fn uri_and_header_grammars_never_panic(
        text in "[0-9a-zA-Z.:;@\\[\\]<>\"=,?%_ -]{0,40}",
    ) {
        let b = Bytes::from(text.clone().into_bytes());
        let _ = pbx_sip::Host::parse(text.as_bytes());
        let _ = Uri::parse(b.clone());
        let _ = Uri::parse(Bytes::from(format!("sip:{text}")));
        let _ = NameAddr::parse(text.as_bytes());
        let _ = Via::parse(format!("SIP/2.0/UDP {text}").as_bytes());
        let _ = pbx_sip::Contact::parse(text.as_bytes());
        let _ = pbx_sip::CSeq::parse(text.as_bytes());
        let _ = pbx_sip::QValue::parse(text.as_bytes());
        let _ = pbx_sip::Params::validate(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let b = Bytes::from(data);
        if let Ok(m) = Message::parse_datagram(b.clone()) {
            exercise(&m);
        }
        let _ = Message::parse(b.clone());
        let mut buf = BytesMut::from(&b[..]);
        let mut dec = StreamDecoder::default();
        while let Ok(Some(_)) = dec.decode(&mut buf) {}
    }

    #[test]
    fn mutated_messages_never_panic(g in message(), edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut data = g.bytes;
        for (at, byte) in edits {
            let i = at % data.len();
            data[i] = byte;
        }
        if let Ok(m) = Message::parse_datagram(Bytes::from(data)) {
            exercise(&m);
            let printed = m.to_bytes();
            let again = Message::parse(printed.clone());
            prop_assert!(again.is_ok());
            prop_assert_eq!(again.unwrap().to_bytes(), printed);
        }
    }
}

/// Calls every typed accessor; errors are fine, panics are not.
fn exercise(m: &Message) {
    let _ = (
        m.via(),
        m.top_via(),
        m.from(),
        m.to(),
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
    );
    let _ = (
        m.contacts(),
        m.route(),
        m.record_route(),
        m.path(),
        m.expires(),
        m.min_expires(),
    );
    let _ = (
        m.supported(),
        m.require(),
        m.proxy_require(),
        m.unsupported(),
        m.allow(),
    );
    let _ = (
        m.user_agent(),
        m.server(),
        m.content_type(),
        m.content_length(),
        m.session_expires(),
    );
    let _ = (
        m.min_se(),
        m.retry_after(),
        m.reason(),
        m.event(),
        m.subscription_state(),
    );
    let _ = (
        m.refer_to(),
        m.replaces(),
        m.authorization(),
        m.www_authenticate(),
    );
    if let Some(r) = m.as_request() {
        let _ = r.validate_for_uas(&pbx_sip::Policy::default());
        let _ = r.validate_for_proxy(&pbx_sip::Policy::default());
    }
    if let Some(r) = m.as_response() {
        let _ = r.validate();
    }
}
