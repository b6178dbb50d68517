//! Brute-force guard behaviour on a virtual clock.

// Test helpers outside #[test] functions unwrap on fixed, valid literals.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;

use pbx_domain::TenantId;
use pbx_policy::guard::{GuardState, SCANNER_USER_AGENTS};
use pbx_policy::{
    BanReason, Guard, GuardConfig, LiftedBy, Observation, ObservationKind as K, SecurityEvent,
    SourceKey, scanner_user_agent,
};

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const T0: u64 = 1_780_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn obs(source: &str, user: Option<&'static str>, kind: K) -> Observation<'static> {
    Observation {
        source: ip(source),
        user_name: user,
        tenant: None,
        kind,
        exempt_source: false,
        recently_authenticated_source: false,
    }
}

/// Records `n` auth failures one minute apart starting at `start`; returns the events.
fn fail(g: &mut Guard, source: &str, start: u64, n: u64) -> Vec<SecurityEvent> {
    let mut events = Vec::new();
    for i in 0..n {
        events.extend(g.record(start + i * MIN, obs(source, Some("u1"), K::AuthFailed)));
    }
    events
}

fn ban_of(events: &[SecurityEvent]) -> Option<(u64, u32, BanReason)> {
    events.iter().find_map(|e| match e {
        SecurityEvent::SourceBanned {
            until,
            level,
            reason,
            ..
        } => Some((*until, *level, *reason)),
        _ => None,
    })
}

#[test]
fn five_failures_in_ten_minutes_ban_for_fifteen() {
    let mut g = Guard::new(GuardConfig::default());
    assert!(ban_of(&fail(&mut g, "198.51.100.7", T0, 4)).is_none());
    assert!(!g.is_banned(ip("198.51.100.7"), T0 + 4 * MIN));
    let events = fail(&mut g, "198.51.100.7", T0 + 4 * MIN, 1);
    let (until, level, reason) = ban_of(&events).unwrap();
    assert_eq!(
        (until, level, reason),
        (T0 + 4 * MIN + 15 * MIN, 0, BanReason::AuthFailures)
    );
    assert!(g.is_banned(ip("198.51.100.7"), T0 + 5 * MIN));
    assert!(!g.is_banned(ip("198.51.100.8"), T0 + 5 * MIN));
    assert!(!g.is_banned(ip("198.51.100.7"), until));
}

#[test]
fn failures_spread_wider_than_the_window_do_not_ban() {
    let mut g = Guard::new(GuardConfig::default());
    for i in 0..20 {
        let events = g.record(T0 + i * 3 * MIN, obs("198.51.100.7", None, K::UnknownUser));
        assert!(ban_of(&events).is_none(), "failure {i}");
    }
}

#[test]
fn escalation_times_four_capped_at_24h_then_decay() {
    let mut g = Guard::new(GuardConfig::default());
    let mut t = T0;
    let mut lengths = Vec::new();
    for _ in 0..6 {
        let events = fail(&mut g, "203.0.113.9", t, 5);
        let ban_time = t + 4 * MIN;
        let (until, level, _) = ban_of(&events).unwrap();
        lengths.push(((until - ban_time) / MIN, level));
        t = until + MIN; // comes back right after the ban ends
    }
    assert_eq!(
        lengths,
        vec![(15, 0), (60, 1), (240, 2), (960, 3), (1440, 4), (1440, 5)]
    );
    // Behaves for the whole history window (7 days): back to level 0.
    let later = t + 7 * 24 * HOUR + HOUR;
    let (until, level, _) = ban_of(&fail(&mut g, "203.0.113.9", later, 5)).unwrap();
    assert_eq!((level, until - (later + 4 * MIN)), (0, 15 * MIN));
}

#[test]
fn ipv6_rotation_within_a_64_is_one_source() {
    let mut g = Guard::new(GuardConfig::default());
    let mut events = Vec::new();
    for i in 0..5u64 {
        let src = format!("2001:db8:aa:bb:{:x}::{:x}", i * 7 + 1, i + 100);
        events.extend(g.record(T0 + i * MIN, obs(&src, None, K::AuthFailed)));
    }
    assert!(ban_of(&events).is_some());
    assert!(g.is_banned(ip("2001:db8:aa:bb:ffff:ffff:ffff:ffff"), T0 + 5 * MIN));
    assert!(
        !g.is_banned(ip("2001:db8:aa:bc::1"), T0 + 5 * MIN),
        "different /64"
    );
    let list = g.ban_list(T0 + 5 * MIN);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].source.to_string(), "2001:db8:aa:bb::/64");
}

#[test]
fn ipv6_prefix_length_is_configurable() {
    let mut g = Guard::new(GuardConfig {
        ipv6_prefix_len: 48,
        ..Default::default()
    });
    for i in 0..5u64 {
        g.record(
            T0 + i,
            obs(&format!("2001:db8:aa:{i:x}::1"), None, K::AuthFailed),
        );
    }
    assert!(g.is_banned(ip("2001:db8:aa:ffff::1"), T0 + 10));
}

#[test]
fn whitelisted_office_nat_throttles_user_not_source() {
    let mut g = Guard::new(GuardConfig::default());
    let tenant = TenantId::from_parts(T0, &[1; 10]);
    assert!(!g.any_user_throttled(T0));
    let mut events = Vec::new();
    for i in 0..10u64 {
        events.extend(g.record(
            T0 + i * MIN,
            Observation {
                tenant: Some(tenant),
                exempt_source: true,
                ..obs("192.0.2.10", Some("misconfigured-phone"), K::AuthFailed)
            },
        ));
    }
    assert!(ban_of(&events).is_none(), "{events:?}");
    assert!(!g.is_banned(ip("192.0.2.10"), T0 + 10 * MIN));
    assert!(events.iter().any(|e| matches!(e,
        SecurityEvent::UserThrottled { user, until } if user == "misconfigured-phone" && *until == T0 + 4 * MIN + 15 * MIN)));
    assert!(g.is_user_throttled("misconfigured-phone", T0 + 10 * MIN));
    assert!(!g.is_user_throttled("colleague", T0 + 10 * MIN));
    // The shortcut the server takes before reading credentials: someone is throttled until
    // the throttle ends, nobody after.
    assert!(g.any_user_throttled(T0 + 10 * MIN));
    assert!(!g.any_user_throttled(T0 + 4 * MIN + 15 * MIN));
    assert!(g.unthrottle_user("misconfigured-phone"));
    assert!(!g.is_user_throttled("misconfigured-phone", T0 + 10 * MIN));
}

#[test]
fn recently_authenticated_source_is_exempt() {
    let mut g = Guard::new(GuardConfig::default());
    let mut events = Vec::new();
    for i in 0..6u64 {
        events.extend(g.record(
            T0 + i,
            Observation {
                recently_authenticated_source: true,
                ..obs("192.0.2.20", Some("old-password"), K::AuthFailed)
            },
        ));
    }
    assert!(ban_of(&events).is_none());
    assert!(!g.is_banned(ip("192.0.2.20"), T0 + 10));
    assert!(g.is_user_throttled("old-password", T0 + 10));
    // The same failures from an unknown source do ban it.
    assert!(ban_of(&fail(&mut g, "192.0.2.21", T0, 5)).is_some());
}

#[test]
fn scanner_user_agent_bans_at_once_unless_configured_otherwise() {
    assert!(scanner_user_agent(b"friendly-scanner"));
    assert!(SCANNER_USER_AGENTS.len() >= 9);
    let mut g = Guard::new(GuardConfig::default());
    let events = g.record(T0, obs("198.51.100.50", None, K::ScannerUserAgent));
    assert_eq!(ban_of(&events).map(|b| b.2), Some(BanReason::Scanner));
    assert!(g.is_banned(ip("198.51.100.50"), T0 + 1));

    let mut lenient = Guard::new(GuardConfig {
        scanner_immediate_ban: false,
        ..Default::default()
    });
    for i in 0..4 {
        assert!(
            lenient
                .record(T0 + i, obs("198.51.100.51", None, K::ScannerUserAgent))
                .is_empty()
        );
    }
    assert!(
        ban_of(&lenient.record(T0 + 5, obs("198.51.100.51", None, K::ScannerUserAgent))).is_some()
    );
}

#[test]
fn flood_bans_a_source_but_not_a_whitelisted_one() {
    let config = GuardConfig {
        flood_burst: 20,
        flood_rate_per_second: 10,
        ..Default::default()
    };
    let mut g = Guard::new(config);
    // 10 requests a second for a minute: within the rate.
    for i in 0..600u64 {
        assert!(
            g.record(T0 + i * 100, obs("198.51.100.60", None, K::Request))
                .is_empty()
        );
    }
    // 1000 requests in one second: flood.
    let mut events = Vec::new();
    for i in 0..1000u64 {
        events.extend(g.record(T0 + 60_000 + i, obs("198.51.100.61", None, K::Request)));
    }
    assert_eq!(ban_of(&events).map(|b| b.2), Some(BanReason::Flood));
    assert_eq!(events.len(), 1, "banned once; later packets are ignored");
    let mut exempt = Vec::new();
    for i in 0..1000u64 {
        exempt.extend(g.record(
            T0 + 60_000 + i,
            Observation {
                exempt_source: true,
                ..obs("192.0.2.62", None, K::Request)
            },
        ));
    }
    assert!(exempt.is_empty());
}

#[test]
fn tenant_under_distributed_attack_raises_one_event_per_window() {
    let mut g = Guard::new(GuardConfig::default());
    let tenant = TenantId::from_parts(T0, &[2; 10]);
    let mut alerts = 0;
    for i in 0..200u64 {
        let src = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
        let o = Observation {
            tenant: Some(tenant),
            ..obs(&src, None, K::UnknownUser)
        };
        alerts += g
            .record(T0 + i * 1000, o)
            .iter()
            .filter(|e| matches!(e, SecurityEvent::TenantUnderAttack { .. }))
            .count();
    }
    assert_eq!(
        alerts, 1,
        "200 failures within 200 s: one alert for the 10-minute window"
    );
}

#[test]
fn unban_and_expiry_are_audited() {
    let mut g = Guard::new(GuardConfig::default());
    fail(&mut g, "198.51.100.70", T0, 5);
    fail(&mut g, "198.51.100.71", T0, 5);
    let key = g.source_key(ip("198.51.100.70"));
    assert_eq!(
        g.unban(key, T0 + 5 * MIN),
        Some(SecurityEvent::SourceUnbanned {
            source: key,
            by: LiftedBy::Admin
        })
    );
    assert!(!g.is_banned(ip("198.51.100.70"), T0 + 5 * MIN));
    assert_eq!(g.unban(key, T0 + 5 * MIN), None);
    // Unban forgives: the next ban is level 0 again.
    let (_, level, _) = ban_of(&fail(&mut g, "198.51.100.70", T0 + 6 * MIN, 5)).unwrap();
    assert_eq!(level, 0);
    let expired = g.expire(T0 + HOUR);
    assert_eq!(expired.len(), 2);
    assert!(expired.iter().all(|e| matches!(
        e,
        SecurityEvent::SourceUnbanned {
            by: LiftedBy::Expired,
            ..
        }
    )));
    assert!(g.expire(T0 + 2 * HOUR).is_empty(), "reported once");
}

#[test]
fn export_import_keeps_bans_counters_and_levels() {
    let mut g = Guard::new(GuardConfig::default());
    fail(&mut g, "198.51.100.80", T0, 5);
    fail(&mut g, "198.51.100.81", T0, 3);
    let state = g.export();
    let json = serde_json::to_string(&state).unwrap();
    let back: GuardState = serde_json::from_str(&json).unwrap();
    let mut restarted = Guard::new(GuardConfig::default());
    restarted.import(back, T0 + 6 * MIN);
    assert!(restarted.is_banned(ip("198.51.100.80"), T0 + 6 * MIN));
    assert_eq!(restarted.ban_list(T0 + 6 * MIN), g.ban_list(T0 + 6 * MIN));
    // Counters survive too: two more failures ban .81.
    assert!(ban_of(&fail(&mut restarted, "198.51.100.81", T0 + 6 * MIN, 2)).is_some());
    // The escalation level survives: the next ban of .80 is level 1.
    let (_, level, _) = ban_of(&fail(&mut restarted, "198.51.100.80", T0 + 30 * MIN, 5)).unwrap();
    assert_eq!(level, 1);
    // Histories older than the window are dropped on import.
    let mut much_later = Guard::new(GuardConfig::default());
    much_later.import(g.export(), T0 + 8 * 24 * HOUR);
    assert_eq!(much_later.stats().bans, 0);
}

#[test]
fn a_million_spoofed_sources_keep_memory_capped() {
    let config = GuardConfig {
        max_sources: 10_000,
        max_bans: 5_000,
        ..Default::default()
    };
    let mut g = Guard::new(config);
    for i in 0..1_000_000u64 {
        let src = IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000u32 + i as u32));
        g.record(
            T0 + i,
            Observation {
                source: src,
                user_name: None,
                tenant: None,
                kind: if i % 2 == 0 {
                    K::Request
                } else {
                    K::AuthFailed
                },
                exempt_source: false,
                recently_authenticated_source: false,
            },
        );
    }
    let stats = g.stats();
    assert!(stats.sources <= 10_000, "{stats:?}");
    assert!(stats.bans <= 5_000, "{stats:?}");
    assert!(stats.source_evictions >= 990_000, "{stats:?}");
    let _ = SourceKey::from_ip(ip("10.0.0.1"), 64);
}

#[test]
fn admit_request_drops_banned_and_flooding_sources() {
    use pbx_policy::Decision;
    let mut g = Guard::new(GuardConfig {
        flood_burst: 3,
        flood_rate_per_second: 1,
        ..Default::default()
    });
    let src = ip("198.51.100.90");
    for i in 0..3 {
        assert_eq!(g.admit_request(T0 + i, src, false), (Decision::Allow, None));
    }
    let (decision, event) = g.admit_request(T0 + 3, src, false);
    assert_eq!(decision, Decision::Drop);
    assert!(matches!(
        event,
        Some(SecurityEvent::SourceBanned {
            reason: BanReason::Flood,
            ..
        })
    ));
    assert_eq!(
        g.admit_request(T0 + 10_000, src, false),
        (Decision::Drop, None),
        "banned"
    );
    // A whitelisted office: excess dropped, never banned.
    let office = ip("192.0.2.91");
    for i in 0..3 {
        assert_eq!(g.admit_request(T0 + i, office, true).0, Decision::Allow);
    }
    assert_eq!(
        g.admit_request(T0 + 3, office, true),
        (Decision::Drop, None)
    );
    assert!(!g.is_banned(office, T0 + 3));
    assert_eq!(
        g.admit_request(T0 + 1_003, office, true).0,
        Decision::Allow,
        "refilled"
    );
}
