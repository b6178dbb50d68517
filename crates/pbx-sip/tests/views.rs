//! The borrowed views (`top_via_ref()`, `from_ref()`, `contacts_ref()`, ...) accept and
//! reject exactly what the owned accessors do, with the same values and the same errors, on
//! every RFC 4475 / RFC 5118 torture message (PROTOS cases: `tests/protos.rs`).

// Test code: a failed expectation must abort the test with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use pbx_sip::Message;
use pbx_test_support::conformance::{read_bytes, read_index, require_or_skip};

mod common;
use common::views::views_agree;

#[test]
fn views_agree_with_owned_accessors_on_the_torture_corpora() {
    let mut checked = 0;
    let mut total = 0;
    for corpus in ["rfc4475", "rfc5118"] {
        let Some(dir) = require_or_skip(corpus) else {
            continue;
        };
        let index = read_index(&dir).expect("index.tsv readable");
        let mut files: Vec<String> = index
            .values()
            .map(|row| match row.get("wire_file") {
                "" => row.get("file").to_owned(),
                wire => wire.to_owned(),
            })
            .collect();
        files.sort();
        for file in files {
            let bytes = Bytes::from(read_bytes(&dir, &file).expect("corpus file readable"));
            total += 1;
            if let Ok(m) = Message::parse_datagram(bytes) {
                views_agree(&m);
                checked += 1;
            }
        }
    }
    if total > 0 {
        assert!(
            checked >= 40,
            "only {checked} of {total} corpus messages parsed"
        );
    }
}

#[test]
fn views_agree_on_edge_values() {
    // Values where splitting, quoting and error precedence matter.
    let values: &[&[u8]] = &[
        b"<sip:a@b>;expires=1, <sip:c@d>;q=0.5",
        b"\"x, y\" <sip:a@b>",
        b"<sip:a@b>;p=\"unterminated",
        b"<sip:a@b;p=1",
        b"\"unterminated <sip:a@b>",
        b"*",
        b"*, <sip:a@b>",
        b"",
        b" , ",
        b"sip:a@b;x=<y>",
        b"<sip:a@b>;+sip.instance=\"<urn:uuid:1\\\"2>\";reg-id=1",
        b"<sip:a@192.0.2.1;pn-provider=apns;pn-prid=t>;pn-param=z",
    ];
    for v in values {
        for name in ["Contact", "From", "To", "Route", "Via", "Call-ID"] {
            let raw = [
                b"OPTIONS sip:x@y SIP/2.0\r\n".as_slice(),
                name.as_bytes(),
                b": ",
                v,
                b"\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP ",
                v,
                b"\r\n\r\n",
            ]
            .concat();
            if let Ok(m) = Message::parse_datagram(Bytes::from(raw)) {
                views_agree(&m);
            }
        }
    }
}
