//! `cargo bench` — pbx-sip vs rsipstack on the same bytes (see README.md).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parser_compare::{CASES, pbx_side, rsip_side};

fn compare(c: &mut Criterion) {
    for (name, bytes) in CASES {
        // Both parsers must accept the message and find every typed value, or the
        // comparison means nothing.
        pbx_side::parse_typed(Bytes::from_static(bytes)).expect("pbx-sip parses the message");
        rsip_side::parse_typed(bytes).expect("rsipstack parses the message");

        let mut group = c.benchmark_group(format!("{name}/parse_typed"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("pbx-sip", |b| {
            b.iter(|| pbx_side::parse_typed(black_box(Bytes::from_static(bytes))))
        });
        group.bench_function("rsipstack", |b| {
            b.iter(|| rsip_side::parse_typed(black_box(bytes)))
        });
        group.finish();

        let mut group = c.benchmark_group(format!("{name}/parse_print"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("pbx-sip", |b| {
            b.iter(|| pbx_side::parse_print(black_box(Bytes::from_static(bytes))))
        });
        group.bench_function("rsipstack", |b| {
            b.iter(|| rsip_side::parse_print(black_box(bytes)))
        });
        group.finish();
    }
}

criterion_group!(benches, compare);
criterion_main!(benches);
