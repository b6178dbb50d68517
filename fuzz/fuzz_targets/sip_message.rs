//! Whole SIP messages (pbx-sip): parse as a stream frame and as a datagram; whatever parses
//! must print, the print must parse again and print identically (round trip). Every lazy
//! typed accessor, the validators and the response builder run on what parsed, so the value
//! parsers are fuzzed through the message too.
#![no_main]

use std::hint::black_box;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pbx_sip::{Headers, Message, Policy, Request, Response, StatusCode};

#[path = "sip_view_check.rs"]
mod sip_view_check;

/// Keeps a value alive for the optimiser; errors are expected results here.
fn touch<T>(value: T) {
    let _ = black_box(value);
}

/// Calls every typed accessor; results are only looked at, errors are fine. The borrowed
/// views must agree with the owned accessors.
fn typed(h: &Headers) {
    sip_view_check::views_agree(h);
    touch(h.via().map(|v| v.len()));
    if let Ok(via) = h.top_via() {
        touch(via.sent_by());
        touch(via.is_rfc3261_branch());
        touch(via.to_bytes());
    }
    if let Ok(from) = h.from() {
        touch(from.display_name_unquoted());
        touch(from.to_bytes());
    }
    touch(h.to().map(|t| t.to_bytes()));
    touch(h.call_id());
    touch(h.cseq());
    touch(h.max_forwards());
    if let Ok(contacts) = h.contacts() {
        for c in &contacts {
            touch((c.is_wildcard(), c.uri()));
        }
    }
    touch(h.route().map(|r| r.len()));
    touch(h.record_route().map(|r| r.len()));
    touch(h.path().map(|r| r.len()));
    touch(h.expires());
    touch(h.min_expires());
    touch(h.supported().map(|r| r.len()));
    touch(h.require().map(|r| r.len()));
    touch(h.proxy_require().map(|r| r.len()));
    touch(h.unsupported().map(|r| r.len()));
    touch(h.allow().map(|r| r.len()));
    touch(h.user_agent());
    touch(h.server());
    touch(h.content_type());
    touch(h.content_length());
    touch(h.session_expires());
    touch(h.min_se());
    touch(h.retry_after());
    touch(h.reason().map(|r| r.len()));
    touch(h.event());
    touch(h.subscription_state());
    touch(h.refer_to());
    touch(h.replaces());
    touch(h.authorization());
    touch(h.www_authenticate());
    for (name, value) in h.iter() {
        touch((name.as_bytes(), value));
    }
}

fn request(r: &Request) {
    touch((r.method(), r.uri(), r.version()));
    touch(r.validate());
    let policy = Policy {
        supported_extensions: vec!["path".into(), "100rel".into()],
        accepted_content_types: vec!["application/sdp".into()],
        accept_tel_uri: true,
    };
    touch(r.validate_for_uas(&policy));
    touch(r.validate_for_proxy(&policy));
    // What a UAS sends back for any request it can parse must itself parse.
    let answer = Response::for_request(r, StatusCode::BAD_REQUEST).with_to_tag("fz1");
    let printed = answer.to_bytes();
    if let Err(e) = Message::parse(printed.clone()) {
        panic!("response built for a parsed request does not parse: {e}\n{printed:?}");
    }
}

fn exercise(m: &Message) {
    typed(m.headers());
    match m {
        Message::Request(r) => request(r),
        Message::Response(r) => {
            touch((r.status(), r.reason_phrase(), r.version()));
            touch(r.validate());
        }
    }
}

fn round_trip(m: &Message, reparse: fn(Bytes) -> Result<Message, pbx_sip::ParseError>) {
    let printed = m.to_bytes();
    let again = match reparse(printed.clone()) {
        Ok(again) => again,
        Err(e) => panic!("printed message does not parse again: {e}\n{printed:?}"),
    };
    assert_eq!(
        again.to_bytes(),
        printed,
        "print is not stable over a round trip"
    );
    assert_eq!(again.is_request(), m.is_request());
    assert_eq!(again.body(), m.body(), "body changed over a round trip");
}

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    if let Ok(m) = Message::parse_datagram(buf.clone()) {
        exercise(&m);
        round_trip(&m, Message::parse_datagram);
    }
    if let Ok(m) = Message::parse(buf) {
        exercise(&m);
        round_trip(&m, Message::parse);
    }
});
