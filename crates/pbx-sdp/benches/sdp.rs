//! Parse + rewrite + print of a typical desk-phone offer, the work the call engine does per leg.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use pbx_sdp::{Codec, Direction, SessionDescription};

const OFFER: &[u8] = include_bytes!("../tests/fixtures/yealink.sdp");
const WEBRTC: &[u8] = include_bytes!("../tests/fixtures/webrtc.sdp");

fn bench(c: &mut Criterion) {
    let relay = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
    c.bench_function("parse_yealink", |b| {
        b.iter(|| SessionDescription::parse(black_box(OFFER)))
    });
    c.bench_function("parse_rewrite_print_yealink", |b| {
        b.iter(|| {
            let Ok(mut sdp) = SessionDescription::parse(black_box(OFFER)) else {
                return 0;
            };
            let _ = sdp.restrict_to(&Codec::DEFAULT_SUPPORTED);
            sdp.rewrite_connection(relay);
            let _ = sdp.set_media_port(0, 30_000);
            sdp.set_direction(Direction::SendRecv);
            sdp.bump_version();
            sdp.to_bytes().len()
        })
    });
    c.bench_function("parse_print_webrtc", |b| {
        b.iter(|| match SessionDescription::parse(black_box(WEBRTC)) {
            Ok(sdp) => sdp.to_bytes().len(),
            Err(_) => 0,
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
