//! Parse throughput: a typical REGISTER and a ~600-byte INVITE with SDP, parsed with typed
//! access to Via/From/To/Call-ID/CSeq/Contact; and parse + print.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pbx_sip::Message;

mod common;

use common::{INVITE, REGISTER, parse_typed};

fn bench(c: &mut Criterion) {
    let invite = Bytes::from_static(INVITE);
    let register = Bytes::from_static(REGISTER);
    let mut g = c.benchmark_group("parse");
    for (name, buf) in [("invite", &invite), ("register", &register)] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("{name}_typed"), |b| {
            b.iter(|| parse_typed(black_box(buf)))
        });
        g.bench_function(format!("{name}_parse_only"), |b| {
            b.iter(|| Message::parse_datagram(black_box(buf).clone()).is_ok())
        });
        g.bench_function(format!("{name}_parse_print"), |b| {
            b.iter(|| Message::parse_datagram(black_box(buf).clone()).map(|m| m.to_bytes().len()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
