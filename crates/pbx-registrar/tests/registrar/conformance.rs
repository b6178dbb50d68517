//! RFC 4475 registrar vectors (read in place from the shared conformance corpus).

use bytes::Bytes;
use pbx_sip::{HeaderName, Request};
use pbx_test_support::conformance::{read_bytes, read_index, require_or_skip};

use crate::support::*;

/// The vector `file`, checked against its index row, or `None` when the corpus is absent.
fn vector(file: &str) -> Option<Request> {
    let corpus = require_or_skip("rfc4475")?;
    let index = read_index(&corpus).unwrap();
    let row = index
        .get(file)
        .unwrap_or_else(|| panic!("{file} not in index.tsv"));
    assert_eq!(row.get("verdict"), "valid-must-accept", "{file}");
    assert!(row.get("expected_response").contains("REGISTER succeeds") || file == "escnull.dat");
    Some(parse_request(read_bytes(&corpus, file).unwrap()))
}

/// Registers the vector as ann's desk phone: 401 first, then the same message with
/// credentials. Returns the 200 and the persisted records.
fn register_vector(
    file: &str,
) -> Option<(pbx_sip::Response, Vec<pbx_domain::BindingRecord>, Harness)> {
    let request = vector(file)?;
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("192.0.2.1:5060");
    let challenge = h.send(&request, flow);
    assert_eq!(challenge.response.status().0, 401, "{file}");
    let uri = request.uri().to_string();
    let authorization = h.authorization(&challenge.response, &ann.username, &ann.password, &uri);
    let mut authorized = request.clone();
    authorized
        .headers_mut()
        .push(HeaderName::Authorization, Bytes::from(authorization));
    let ok = h.send(&authorized, flow);
    assert_eq!(ok.response.status().0, 200, "{file}: {:?}", ok.response);
    let records = persisted(&ok.effects);
    Some((ok.response, records, h))
}

#[test]
fn cparam01_contact_param_is_not_a_url_parameter() {
    let Some((response, records, h)) = register_vector("cparam01.dat") else {
        return;
    };
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].contact_uri, "sip:+19725552222@gw1.example.net");
    assert_eq!(
        contacts(&response),
        vec!["<sip:+19725552222@gw1.example.net>;expires=3600"]
    );
    assert_eq!(
        records[0].aor, "sip:201@acme.example.com",
        "AOR from the credentials, not To"
    );
    let target = &h.registrar.lookup(h.accounts.ann_desk.user_id)[0];
    assert_eq!(
        target.request_uri.to_string(),
        "sip:+19725552222@gw1.example.net"
    );
}

#[test]
fn cparam02_url_parameter_is_kept() {
    let Some((response, records, h)) = register_vector("cparam02.dat") else {
        return;
    };
    assert_eq!(
        records[0].contact_uri,
        "sip:+19725552222@gw1.example.net;unknownparam"
    );
    assert_eq!(
        contacts(&response),
        vec!["<sip:+19725552222@gw1.example.net;unknownparam>;expires=3600"]
    );
    let target = &h.registrar.lookup(h.accounts.ann_desk.user_id)[0];
    assert_eq!(
        target.request_uri.to_string(),
        "sip:+19725552222@gw1.example.net;unknownparam"
    );
}

#[test]
fn regescrt_escaped_header_is_kept() {
    let Some((response, records, h)) = register_vector("regescrt.dat") else {
        return;
    };
    assert_eq!(
        records[0].contact_uri,
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );
    assert_eq!(
        contacts(&response),
        vec!["<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600"]
    );
    assert_eq!(h.registrar.binding_count(), 1);
}

#[test]
fn escnull_gives_two_distinct_bindings() {
    let Some((response, records, h)) = register_vector("escnull.dat") else {
        return;
    };
    let uris: Vec<&str> = records.iter().map(|r| r.contact_uri.as_str()).collect();
    assert_eq!(
        uris,
        vec!["sip:%00@host5.example.com", "sip:%00%00@host5.example.com"]
    );
    assert_eq!(contacts(&response).len(), 2);
    assert_eq!(h.registrar.lookup(h.accounts.ann_desk.user_id).len(), 2);
}
