//! Property tests: no panics on arbitrary input, memory bounded under arbitrary streams.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pbx_domain::ClassOfService;
use pbx_policy::{
    Guard, GuardConfig, Observation, ObservationKind, OutboundPolicy, PolicyDefaults,
    TenantExceptions, classify, scanner_user_agent,
};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = ObservationKind> {
    prop_oneof![
        Just(ObservationKind::AuthFailed),
        Just(ObservationKind::UnknownUser),
        Just(ObservationKind::ChallengeUnanswered),
        Just(ObservationKind::ScannerUserAgent),
        Just(ObservationKind::Request),
    ]
}

fn source() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        (0u32..64).prop_map(|v| IpAddr::V4(Ipv4Addr::from(0xC000_0200 + v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
    ]
}

proptest! {
    #[test]
    fn classify_never_panics(s in "\\PC{0,40}", country in "[A-Z]{2}|[a-z]{0,3}", len in 0usize..8) {
        let d = classify(&s, &country, len);
        let v = OutboundPolicy::check(ClassOfService::International, &d, &TenantExceptions::default(), &PolicyDefaults::default());
        let _ = v.decision();
        if let Some(e) = &d.e164 {
            prop_assert!(e.starts_with('+') && e[1..].bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn classify_dial_like_strings(s in "[+]?[0-9*# ()-]{0,24}") {
        let d = classify(&s, "NL", 3);
        if d.class == pbx_policy::DestinationClass::Emergency {
            let v = OutboundPolicy::check(ClassOfService::InternalOnly, &d, &TenantExceptions::default(), &PolicyDefaults::default());
            prop_assert!(v.is_allowed());
        }
    }

    #[test]
    fn scanner_check_never_panics(ua in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = scanner_user_agent(&ua);
    }

    #[test]
    fn guard_never_panics_and_stays_bounded(
        stream in proptest::collection::vec(
            (source(), kind(), 0u64..120_000, proptest::option::of("[a-z]{1,3}|\\PC{0,200}"), any::<bool>(), any::<bool>()),
            0..400,
        ),
        prefix in 0u8..=255,
    ) {
        let config = GuardConfig {
            ipv6_prefix_len: prefix,
            max_sources: 32,
            max_bans: 16,
            max_users: 8,
            max_tenants: 4,
            flood_burst: 5,
            flood_rate_per_second: 1,
            ..Default::default()
        };
        let mut g = Guard::new(config);
        let mut now = 1_780_000_000_000u64;
        for (src, kind, dt, user, exempt, recent) in &stream {
            now += dt;
            let _ = g.record(now, Observation {
                source: *src,
                user_name: user.as_deref(),
                tenant: None,
                kind: *kind,
                exempt_source: *exempt,
                recently_authenticated_source: *recent,
            });
            let _ = g.is_banned(*src, now);
            let s = g.stats();
            prop_assert!(s.sources <= 32 && s.bans <= 16 && s.users <= 8 && s.tenants <= 4, "{s:?}");
        }
        let _ = g.expire(now + 1);
        let state = g.export();
        let mut back = Guard::new(g.config().clone());
        back.import(state, now);
        prop_assert_eq!(back.ban_list(now), g.ban_list(now));
    }
}
