//! Cost of the guard's hot-path decisions:
//!
//! - `banned_packet`: the transport check for a datagram from a banned source
//!   (`Guard::is_banned`, an IPv4 and an IPv6 /64 key) with 100 000 bans held;
//! - `admit_request`: the ban check plus the flood bucket for an admitted source;
//! - `record_failure`: one failed authentication counted (source, user name, tenant);
//! - `outbound_check`: classify a dialled number and apply the destination policy.
//!
//! Run: `cargo bench -p pbx-policy --bench policy`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use pbx_domain::{ClassOfService, TenantId};
use pbx_policy::{
    BanReason, Guard, GuardConfig, Observation, ObservationKind, OutboundPolicy, PolicyDefaults,
    SourceKey, TenantExceptions, classify,
};

const NOW: u64 = 1_790_000_000_000;

fn guard_with_bans(n: u32) -> Guard {
    let mut guard = Guard::new(GuardConfig::default());
    for i in 0..n {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        guard.ban(SourceKey::from_ip(ip, 64), NOW, BanReason::Flood);
    }
    let v6: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    guard.ban(SourceKey::from_ip(v6, 64), NOW, BanReason::Flood);
    guard
}

fn bench(c: &mut Criterion) {
    let guard = guard_with_bans(100_000);
    let banned_v4 = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 4242));
    let banned_v6 = IpAddr::V6("2001:db8:1:2:dead:beef::9".parse::<Ipv6Addr>().unwrap());
    assert!(guard.is_banned(banned_v4, NOW + 1));
    assert!(guard.is_banned(banned_v6, NOW + 1));
    c.bench_function("banned_packet/v4", |b| {
        b.iter(|| guard.is_banned(black_box(banned_v4), black_box(NOW + 1)));
    });
    c.bench_function("banned_packet/v6_prefix", |b| {
        b.iter(|| guard.is_banned(black_box(banned_v6), black_box(NOW + 1)));
    });

    let mut guard = guard_with_bans(100_000);
    let legit = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let mut now = NOW;
    c.bench_function("admit_request/allowed", |b| {
        b.iter(|| {
            // 1 ms apart: within the default 50/s + burst the bucket never runs dry.
            now += 20;
            guard.admit_request(black_box(now), black_box(legit), false)
        });
    });

    let mut guard = Guard::new(GuardConfig {
        source_failures: u32::MAX,
        user_failures: u32::MAX,
        tenant_failures: u32::MAX,
        ..GuardConfig::default()
    });
    let tenant = TenantId::from_parts(1, &[7; 10]);
    let mut i = 0u32;
    c.bench_function("record_failure", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let source = IpAddr::V4(Ipv4Addr::from(0xc633_6400 + (i % 4096)));
            guard.record(
                NOW,
                Observation {
                    source,
                    user_name: Some("a1b2c3d4e5f6a7b8c9d0"),
                    tenant: Some(tenant),
                    kind: ObservationKind::AuthFailed,
                    exempt_source: false,
                    recently_authenticated_source: false,
                },
            )
        });
    });

    let exceptions = TenantExceptions::default();
    let defaults = PolicyDefaults::default();
    for (name, dialled) in [
        ("national", "020 794 6000"),
        ("premium_0900", "0900 1234567"),
        ("international", "+44 20 7946 0000"),
    ] {
        c.bench_function(&format!("outbound_check/{name}"), |b| {
            b.iter(|| {
                let dest = classify(black_box(dialled), "NL", 3);
                OutboundPolicy::check(ClassOfService::International, &dest, &exceptions, &defaults)
            });
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
