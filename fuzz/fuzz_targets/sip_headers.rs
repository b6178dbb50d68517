//! Typed header value parsers (pbx-sip), fed raw values. Byte 0 picks the header from
//! `KINDS` (keep the order in sync with fuzz/scripts/make_seeds.py); the rest is the value.
//!
//! The value is stored in a `Headers` under that name and the matching lazy accessor runs;
//! Via, name-addr headers, Contact and CSeq are also parsed directly, and Via and name-addr
//! values must survive parse → print → parse with a stable print. The borrowed views
//! (`top_via_ref()`, `from_ref()`, ...) must agree with the owned accessors.
#![no_main]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pbx_sip::{CSeq, Contact, HeaderName, Headers, NameAddr, Via};

#[path = "sip_view_check.rs"]
mod sip_view_check;

/// Keeps a value alive for the optimiser; errors are expected results here.
fn touch<T>(value: T) {
    let _ = black_box(value);
}

const KINDS: &[&str] = &[
    "Via",
    "From",
    "To",
    "Contact",
    "CSeq",
    "Call-ID",
    "Route",
    "Record-Route",
    "Max-Forwards",
    "Expires",
    "Content-Length",
    "Content-Type",
    "Path",
    "Min-Expires",
    "Supported",
    "Require",
    "Allow",
    "Session-Expires",
    "Min-SE",
    "Retry-After",
    "Reason",
    "Event",
    "Subscription-State",
    "Refer-To",
    "Replaces",
];

fn via_round_trip(value: &[u8]) {
    let Ok(via) = Via::parse(value) else { return };
    let mut out = BytesMut::new();
    via.write_to(&mut out);
    let again = match Via::parse(&out) {
        Ok(again) => again,
        Err(e) => panic!("printed Via does not parse again: {e}\n{out:?}"),
    };
    assert_eq!(again.to_bytes(), out.freeze(), "Via print is not stable");
}

fn name_addr_round_trip(value: &[u8]) {
    let Ok(na) = NameAddr::parse(value) else {
        return;
    };
    touch(na.display_name_unquoted());
    let printed = na.to_bytes();
    let again = match NameAddr::parse(&printed) {
        Ok(again) => again,
        Err(e) => panic!("printed name-addr does not parse again: {e}\n{printed:?}"),
    };
    assert_eq!(again.to_bytes(), printed, "name-addr print is not stable");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else {
        return;
    };
    let index = usize::from(selector) % KINDS.len();
    let name = HeaderName::from_bytes(KINDS[index].as_bytes());
    let mut h = Headers::new();
    h.push(name, Bytes::copy_from_slice(value));
    match index {
        0 => {
            touch(h.via().map(|v| v.len()));
            via_round_trip(value);
        }
        1 => {
            touch(h.from());
            name_addr_round_trip(value);
        }
        2 => {
            touch(h.to());
            name_addr_round_trip(value);
        }
        3 => {
            touch(h.contacts().map(|c| c.len()));
            touch(Contact::parse(value).map(|c| c.is_wildcard()));
        }
        4 => {
            touch(h.cseq());
            touch(CSeq::parse(value));
        }
        5 => touch(h.call_id()),
        6 => touch(h.route().map(|r| r.len())),
        7 => touch(h.record_route().map(|r| r.len())),
        8 => touch(h.max_forwards()),
        9 => touch(h.expires()),
        10 => touch(h.content_length()),
        11 => touch(h.content_type()),
        12 => touch(h.path().map(|r| r.len())),
        13 => touch(h.min_expires()),
        14 => touch(h.supported().map(|r| r.len())),
        15 => touch(h.require().map(|r| r.len())),
        16 => touch(h.allow().map(|r| r.len())),
        17 => touch(h.session_expires()),
        18 => touch(h.min_se()),
        19 => touch(h.retry_after()),
        20 => touch(h.reason().map(|r| r.len())),
        21 => touch(h.event()),
        22 => touch(h.subscription_state()),
        23 => {
            touch(h.refer_to());
            name_addr_round_trip(value);
        }
        _ => touch(h.replaces()),
    }
    // The borrowed views agree with the owned accessors on the same value.
    sip_view_check::views_agree(&h);
    // Printing the header block never panics either.
    let mut out = BytesMut::new();
    h.write_to(&mut out);
    touch(out);
});
