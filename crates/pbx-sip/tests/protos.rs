//! PROTOS c07-sip (4527 templated malformed INVITEs + teardowns): the parser, every typed
//! accessor and the validation step must survive each case, and the reference case 0 must
//! parse and validate.

// Test code: a failed expectation must abort the test with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use pbx_sip::{Message, Method, Policy};
use pbx_test_support::conformance::{read_bytes, require_or_skip};

mod common;
use common::views::views_agree;

/// Splits `<L1> SP <L1 bytes> <L2> SP <L2 bytes>` into the two templates.
fn templates(file: &[u8]) -> Option<(&[u8], &[u8])> {
    fn take(s: &[u8]) -> Option<(&[u8], &[u8])> {
        let sp = s.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&s[..sp]).ok()?.parse().ok()?;
        let body = s.get(sp + 1..sp + 1 + len)?;
        Some((body, &s[sp + 1 + len..]))
    }
    let (invite, rest) = take(file)?;
    let (teardown, _) = take(rest)?;
    Some((invite, teardown))
}

/// Fills the placeholders as the corpus README says (Content-Length last).
fn fill(template: &[u8], case: usize) -> Vec<u8> {
    let mut text = template.to_vec();
    let subs: [(&[u8], String); 9] = [
        (b"<To>", "protos@127.0.0.1:5060".into()),
        (b"<From-Address>", "192.0.2.1".into()),
        (b"<From-IP>", "192.0.2.1".into()),
        (b"<From>", "caller@192.0.2.1:5070".into()),
        (b"<Local-Port>", "5070".into()),
        (b"<Branch-ID>", format!("{case:x}ab")),
        (b"<Call-ID>", format!("c{case}")),
        (b"<CSeq>", "8000".into()),
        (b"<Teardown-Method>", "CANCEL".into()),
    ];
    for (token, value) in subs {
        text = replace(&text, token, value.as_bytes());
    }
    let body_len = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| text.len() - i - 4);
    replace(&text, b"<Content-Length>", body_len.to_string().as_bytes())
}

fn replace(hay: &[u8], token: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(token) {
            out.extend_from_slice(value);
            i += token.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Parses as a datagram and runs every accessor and check (the borrowed views must agree
/// with the owned accessors); returns whether it validated.
fn survive(bytes: Vec<u8>) -> bool {
    let Ok(m) = Message::parse_datagram(Bytes::from(bytes)) else {
        return false;
    };
    views_agree(&m);
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
        m.expires(),
        m.content_type(),
    );
    let _ = (
        m.supported(),
        m.require(),
        m.allow(),
        m.content_length(),
        m.to_bytes(),
    );
    match &m {
        Message::Request(r) => r.validate_for_uas(&Policy::default()).is_ok(),
        Message::Response(r) => r.validate().is_ok(),
    }
}

#[test]
fn protos_c07_every_case_survives_and_case_0_is_valid() {
    let Some(dir) = require_or_skip("protos-c07-sip") else {
        return;
    };
    let mut accepted = 0;
    let mut total = 0;
    for case in 0..4527 {
        let file = read_bytes(&dir.join("cases"), &format!("{case:07}")).unwrap();
        let (invite, teardown) = templates(&file).unwrap_or_else(|| panic!("case {case} framing"));
        let ok = survive(fill(invite, case));
        survive(fill(teardown, case));
        if case == 0 {
            assert!(ok, "reference INVITE must parse and validate");
            let m = Message::parse_datagram(Bytes::from(fill(invite, 0))).unwrap();
            assert_eq!(m.as_request().unwrap().method(), &Method::Invite);
            let t = Message::parse_datagram(Bytes::from(fill(teardown, 0))).unwrap();
            assert_eq!(t.as_request().unwrap().method(), &Method::Cancel);
            assert!(t.as_request().unwrap().validate().is_ok());
        }
        accepted += usize::from(ok);
        total += 1;
    }
    assert_eq!(total, 4527);
    eprintln!(
        "PROTOS c07-sip: {accepted} of {total} INVITEs parsed and validated, the rest rejected"
    );
    assert!(
        accepted < total,
        "most cases are malformed and must be rejected"
    );
}
