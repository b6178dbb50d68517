//! SDP: parse → print → parse must succeed and print identically; read accessors and the
//! B2BUA edits (connection rewrite, port, direction) never panic and keep the body parseable.
#![no_main]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use pbx_sdp::{Direction, SessionDescription};

/// Keeps a value alive for the optimiser; errors are expected results here.
fn touch<T>(value: T) {
    let _ = black_box(value);
}

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = SessionDescription::parse(data) else {
        return;
    };
    let printed = sdp.to_bytes();
    assert_eq!(
        printed.len(),
        sdp.encoded_len(),
        "encoded_len disagrees with to_bytes"
    );
    let again = match SessionDescription::parse(&printed) {
        Ok(again) => again,
        Err(e) => panic!("printed SDP does not parse again: {e}\n{printed:?}"),
    };
    assert_eq!(
        again.to_bytes(),
        printed,
        "print is not stable over a round trip"
    );

    // Read accessors.
    touch(sdp.origin());
    touch(sdp.connection());
    touch(sdp.direction());
    touch(sdp.is_hold());
    for (i, m) in sdp.media().iter().enumerate() {
        touch((m.media_type(), m.port(), m.proto(), m.formats(), m.is_rtp()));
        touch((m.ptime(), m.maxptime(), m.direction()));
        touch(m.rtpmaps().count());
        touch(m.fmtps().count());
        touch(sdp.effective_connection(i));
        touch(sdp.effective_direction(i));
        touch(sdp.is_media_hold(i));
    }

    // Edits a B2BUA makes on every leg.
    let mut edited = again;
    let v6 = data.len().is_multiple_of(2);
    let relay = if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))
    };
    edited.rewrite_connection(relay);
    let count = edited.media().len();
    for i in 0..count {
        let _ = edited.set_media_port(i, 40_000 + (i as u16 & 0xff) * 2);
    }
    edited.set_direction(if v6 {
        Direction::SendOnly
    } else {
        Direction::Inactive
    });
    edited.bump_version();
    let out = edited.to_bytes();
    if let Err(e) = SessionDescription::parse(&out) {
        panic!("edited SDP does not parse again: {e}\n{out:?}");
    }
});
