//! Accessor tests over whole messages: one per typed header, plus the error mapping.

use bytes::Bytes;

use crate::error::{ParseError, ValueError};
use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;
use crate::typed::{Contact, Refresher, Replaces};
use crate::uri::{Host, Uri};

fn msg(headers: &str) -> Message {
    let text =
        format!("OPTIONS sip:a@example.com SIP/2.0\r\n{headers}\r\nContent-Length: 0\r\n\r\n");
    Message::parse(Bytes::from(text)).unwrap()
}

fn err_kind(e: ParseError) -> (HeaderName, ValueError) {
    match e {
        ParseError::InvalidHeaderValue { name, kind } => (name, kind),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn via_list_across_fields_and_commas() {
    let m = msg(
        "Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5070;branch=z9hG4bK2\r\nv: SIP/2.0/TLS [::1];branch=z9hG4bK3",
    );
    let v = m.via().unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[1].sent_by(), (&Host::Domain("b".into()), Some(5070)));
    assert_eq!(v[2].host, Host::Ipv6(std::net::Ipv6Addr::LOCALHOST));
    assert_eq!(m.top_via().unwrap(), v[0]);
    assert_eq!(
        msg("X: y").top_via(),
        Err(ParseError::MissingHeader(HeaderName::Via))
    );
    let (name, kind) = err_kind(msg("Via: SIP/2.0/UDP a,,").via().unwrap_err());
    assert_eq!((name, kind), (HeaderName::Via, ValueError::EmptyElement));
}

#[test]
fn from_to_call_id_cseq_singletons() {
    let m = msg(
        "From: \"A\" <sip:a@x>;tag=1\r\nt: <sip:b@x>\r\ni: abc@h\r\nCSeq: 7 OPTIONS\r\nMax-Forwards: 70",
    );
    assert_eq!(m.from().unwrap().tag.as_deref(), Some(&b"1"[..]));
    assert_eq!(m.to().unwrap().tag, None);
    assert_eq!(&m.call_id().unwrap()[..], b"abc@h");
    assert_eq!(m.cseq().unwrap().method, Method::Options);
    assert_eq!(m.max_forwards().unwrap(), Some(70));
    let dup = msg("From: <sip:a@x>\r\nFrom: <sip:b@x>");
    assert_eq!(
        dup.from(),
        Err(ParseError::DuplicateSingletonHeader(HeaderName::From))
    );
    assert_eq!(
        msg("X: 1").to(),
        Err(ParseError::MissingHeader(HeaderName::To))
    );
    assert_eq!(
        err_kind(msg("Max-Forwards: 256").max_forwards().unwrap_err()).1,
        ValueError::OutOfRange
    );
    assert_eq!(
        err_kind(msg("Call-ID: a b").call_id().unwrap_err()).1,
        ValueError::UnexpectedChar
    );
}

#[test]
fn contacts_and_wildcard() {
    let m = msg("Contact: <sip:a@h>;expires=60, \"B\" <sip:b@h>;q=0.5\r\nm: sip:c@h");
    let c = m.contacts().unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].address().unwrap().expires, Some(60));
    assert!(matches!(
        msg("Contact: *").contacts().unwrap()[..],
        [Contact::Wildcard]
    ));
    assert!(msg("Contact: *, <sip:a@h>").contacts().is_err());
    assert!(msg("X: 1").contacts().unwrap().is_empty());
}

#[test]
fn routes_and_path() {
    let m = msg(
        "Route: <sip:p1;lr>, <sip:p2;lr>\r\nRecord-Route: <sip:rr;lr>\r\nPath: <sip:edge;lr;ob>",
    );
    assert_eq!(m.route().unwrap().len(), 2);
    assert_eq!(m.record_route().unwrap().len(), 1);
    let path = m.path().unwrap();
    assert!(path[0].uri.as_sip().unwrap().params.contains("ob"));
}

#[test]
fn deltas() {
    let m = msg(
        "Expires: 3600\r\nMin-Expires: 60\r\nMin-SE: 90;x=1\r\nSession-Expires: 1800;refresher=uas",
    );
    assert_eq!(m.expires().unwrap(), Some(3600));
    assert_eq!(m.min_expires().unwrap(), Some(60));
    assert_eq!(m.min_se().unwrap(), Some(90));
    let se = m.session_expires().unwrap().unwrap();
    assert_eq!((se.delta, se.refresher), (1800, Some(Refresher::Uas)));
    assert_eq!(m.content_length().unwrap(), Some(0));
    assert_eq!(
        err_kind(msg("Expires: 99999999999").expires().unwrap_err()).1,
        ValueError::OutOfRange
    );
    assert_eq!(msg("X: 1").expires().unwrap(), None);
}

#[test]
fn option_tags_and_allow() {
    let m = msg(
        "Supported: timer, replaces\r\nk: path\r\nRequire: 100rel\r\nProxy-Require: sec-agree\r\nUnsupported: foo\r\nAllow: INVITE, ACK,BYE, FOO",
    );
    let tags: Vec<Bytes> = m.supported().unwrap();
    assert_eq!(tags, vec!["timer", "replaces", "path"]);
    assert_eq!(m.require().unwrap(), vec!["100rel"]);
    assert_eq!(m.proxy_require().unwrap(), vec!["sec-agree"]);
    assert_eq!(m.unsupported().unwrap(), vec!["foo"]);
    let allow = m.allow().unwrap();
    assert_eq!(allow[..3], [Method::Invite, Method::Ack, Method::Bye]);
    assert!(allow[3].is_extension());
    assert!(msg("Supported:").supported().unwrap().is_empty());
    assert!(msg("Supported: a b").supported().is_err());
}

#[test]
fn opaque_values() {
    let m = msg(
        "User-Agent: Yealink \u{fc} 1.0\r\nServer: x\r\nAuthorization: Digest username=\"a\", realm=\"r\"\r\nWWW-Authenticate: Digest realm=\"r\", algorithm=SHA-256\r\nWWW-Authenticate: Digest realm=\"r\", algorithm=MD5\r\nProxy-Authenticate: Digest realm=\"p\"\r\nProxy-Authorization: Digest username=\"b\"",
    );
    assert_eq!(m.user_agent().unwrap(), "Yealink \u{fc} 1.0".as_bytes());
    assert_eq!(m.server().unwrap(), "x");
    assert_eq!(
        m.authorization(),
        vec!["Digest username=\"a\", realm=\"r\""]
    );
    assert_eq!(m.www_authenticate().len(), 2);
    assert_eq!(m.proxy_authenticate().len(), 1);
    assert_eq!(m.proxy_authorization().len(), 1);
}

#[test]
fn content_type_retry_reason_event_state() {
    let m = msg(
        "c: application/sdp\r\nRetry-After: 30\r\nReason: SIP;cause=200;text=\"Call completed elsewhere\", Q.850;cause=16\r\no: dialog;id=1\r\nSubscription-State: active;expires=600",
    );
    assert!(m.content_type().unwrap().unwrap().is("application", "sdp"));
    assert_eq!(m.retry_after().unwrap().unwrap().delta, 30);
    let reasons = m.reason().unwrap();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].cause, Some(200));
    assert_eq!(
        reasons[0].text.as_deref(),
        Some(&b"Call completed elsewhere"[..])
    );
    assert_eq!(&m.event().unwrap().unwrap().package[..], b"dialog");
    assert_eq!(m.subscription_state().unwrap().unwrap().expires, Some(600));
}

#[test]
fn refer_to_and_replaces() {
    let m = msg(
        "r: <sip:c@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\nReplaces: abc@h;to-tag=1;from-tag=2",
    );
    let refer = m.refer_to().unwrap().unwrap();
    assert!(
        refer
            .uri
            .as_sip()
            .unwrap()
            .headers
            .as_deref()
            .unwrap()
            .starts_with(b"Replaces=")
    );
    let rep = m.replaces().unwrap().unwrap();
    assert_eq!(
        (&rep.call_id[..], &rep.to_tag[..], &rep.from_tag[..]),
        (&b"abc@h"[..], &b"1"[..], &b"2"[..])
    );
    let m = msg("Refer-To: sip:c@h");
    assert!(matches!(m.refer_to().unwrap().unwrap().uri, Uri::Sip(_)));
    let rep = Replaces::parse(b"abc@h;from-tag=2;to-tag=1").unwrap();
    assert_eq!((&rep.to_tag[..], &rep.from_tag[..]), (&b"1"[..], &b"2"[..]));
    assert!(Replaces::parse(b"abc@h;to-tag=1").is_err());
}

#[test]
fn tel_uri_in_from() {
    let m = msg("From: <tel:+31201234567;phone-context=example.com>;tag=9");
    let Uri::Tel(tel) = m.from().unwrap().uri else {
        panic!("tel expected")
    };
    assert_eq!(&tel.number[..], b"+31201234567");
    assert_eq!(tel.params.value("phone-context"), Some(&b"example.com"[..]));
}

#[test]
fn non_utf8_values_are_kept() {
    let raw = b"OPTIONS sip:a@b SIP/2.0\r\nFrom: \"Jos\xe9\" <sip:j@b>;tag=1\r\nX-L: caf\xe9\r\nl: 0\r\n\r\n";
    let m = Message::parse(Bytes::from_static(raw)).unwrap();
    assert_eq!(
        m.from().unwrap().display_name.as_deref(),
        Some(&b"\"Jos\xe9\""[..])
    );
    assert_eq!(
        m.headers().get(&HeaderName::from("x-l")),
        Some(&b"caf\xe9"[..])
    );
    assert_eq!(&m.to_bytes()[..], &raw[..]);
}

#[test]
fn list_length_is_capped() {
    let many = vec!["<sip:a@h>"; super::MAX_LIST_VALUES + 1].join(",");
    let m = msg(&format!("Route: {many}"));
    assert_eq!(
        err_kind(m.route().unwrap_err()).1,
        ValueError::TooManyValues
    );
    let ok = vec!["<sip:a@h>"; super::MAX_LIST_VALUES].join(",");
    assert_eq!(
        msg(&format!("Route: {ok}")).route().unwrap().len(),
        super::MAX_LIST_VALUES
    );
}

/// 16 header fields must fit one allocation of at most 1 KiB (the allocator's fast path).
#[test]
fn header_fields_are_compact() {
    assert!(crate::header::field_size() <= 64);
}
