//! Usage limits, running-call checks and the baseline, on a virtual clock.

// Test helpers outside #[test] functions unwrap on fixed, valid literals.
#![allow(clippy::unwrap_used, clippy::panic)]

use pbx_domain::{TenantId, UserId};
use pbx_policy::baseline::hour_of_week as how;
use pbx_policy::limits::UsageConfig;
use pbx_policy::{
    BaselineConfig, BlockReason, BreachEvent, DestinationClass as D, LiftedBy, LimitKind, Limits,
    Scope, SecurityEvent, UsageTracker, Verdict,
};

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
/// Monday 2026-06-01 00:00 UTC.
const T0: u64 = 1_780_272_000_000;

fn ids(n: u8) -> (UserId, TenantId) {
    (
        UserId::from_parts(T0, &[n; 10]),
        TenantId::from_parts(T0, &[n + 100; 10]),
    )
}

/// Limits so high only the one under test matters; baseline floor out of the way.
fn config(account: Limits) -> UsageConfig {
    UsageConfig {
        account,
        tenant: Limits::unlimited(),
        baseline: BaselineConfig {
            floor_minutes: 1e9,
            floor_calls: u32::MAX,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn limit_of(v: &Verdict) -> Option<LimitKind> {
    match v {
        Verdict::Block {
            reason: BlockReason::Limit { limit },
        } => Some(*limit),
        _ => None,
    }
}

#[test]
fn concurrent_calls() {
    let (a, t) = ids(1);
    let mut u = UsageTracker::new(config(Limits {
        max_concurrent: Some(2),
        ..Limits::unlimited()
    }));
    let c1 = u.call_started(a, t, T0, &D::NationalFixed);
    let _c2 = u.call_started(a, t, T0, &D::NationalFixed);
    let v = u.check_setup(a, t, T0, &D::NationalFixed);
    assert_eq!(limit_of(&v), Some(LimitKind::Concurrent));
    assert_eq!(v.decision().status(), Some(403));
    // Emergency is never limited.
    assert_eq!(u.check_setup(a, t, T0, &D::Emergency), Verdict::Allow);
    u.call_ended(c1, T0 + MIN);
    assert_eq!(
        u.check_setup(a, t, T0 + MIN, &D::NationalFixed),
        Verdict::Allow
    );
    let events = u.take_events();
    assert!(matches!(
        events.as_slice(),
        [SecurityEvent::ThresholdBreached {
            scope: Scope::Account { .. },
            limit: LimitKind::Concurrent,
            value: 2,
            max: 2
        }]
    ));
}

#[test]
fn calls_per_minute_and_per_hour() {
    let (a, t) = ids(2);
    let limits = Limits {
        calls_per_minute: Some(3),
        calls_per_hour: Some(5),
        ..Limits::unlimited()
    };
    let mut u = UsageTracker::new(config(limits));
    for i in 0..3 {
        assert_eq!(u.check_setup(a, t, T0 + i, &D::Mobile), Verdict::Allow);
        let c = u.call_started(a, t, T0 + i, &D::Mobile);
        u.call_ended(c, T0 + i + 1);
    }
    assert_eq!(
        limit_of(&u.check_setup(a, t, T0 + 10, &D::Mobile)),
        Some(LimitKind::CallsPerMinute)
    );
    // A minute later the minute window is clear; two more reach the hourly limit.
    for i in 0..2 {
        let now = T0 + 2 * MIN + i;
        assert_eq!(u.check_setup(a, t, now, &D::Mobile), Verdict::Allow);
        let c = u.call_started(a, t, now, &D::Mobile);
        u.call_ended(c, now);
    }
    assert_eq!(
        limit_of(&u.check_setup(a, t, T0 + 5 * MIN, &D::Mobile)),
        Some(LimitKind::CallsPerHour)
    );
    assert_eq!(
        u.check_setup(a, t, T0 + 61 * MIN, &D::Mobile),
        Verdict::Allow
    );
}

#[test]
fn tenant_limits_apply_across_accounts() {
    let (a1, t) = ids(3);
    let (a2, _) = ids(4);
    let mut u = UsageTracker::new(UsageConfig {
        account: Limits::unlimited(),
        tenant: Limits {
            max_concurrent: Some(1),
            ..Limits::unlimited()
        },
        ..config(Limits::unlimited())
    });
    u.call_started(a1, t, T0, &D::NationalFixed);
    let v = u.check_setup(a2, t, T0, &D::NationalFixed);
    assert_eq!(limit_of(&v), Some(LimitKind::Concurrent));
    assert!(u.take_events().iter().any(|e| matches!(e,
        SecurityEvent::ThresholdBreached { scope: Scope::Tenant { tenant }, .. } if *tenant == t)));
}

#[test]
fn minutes_per_day_and_reset_next_day() {
    let (a, t) = ids(5);
    let mut u = UsageTracker::new(config(Limits {
        minutes_per_day: Some(30),
        ..Limits::unlimited()
    }));
    let c = u.call_started(a, t, T0, &D::NationalFixed);
    u.call_answered(c, T0);
    u.call_ended(c, T0 + 30 * MIN);
    assert_eq!(
        limit_of(&u.check_setup(a, t, T0 + 31 * MIN, &D::NationalFixed)),
        Some(LimitKind::MinutesPerDay)
    );
    assert_eq!(
        u.check_setup(a, t, T0 + DAY, &D::NationalFixed),
        Verdict::Allow
    );
}

#[test]
fn unanswered_calls_cost_nothing() {
    let (a, t) = ids(6);
    let mut u = UsageTracker::new(config(Limits {
        minutes_per_day: Some(1),
        ..Limits::unlimited()
    }));
    let c = u.call_started(
        a,
        t,
        T0,
        &D::International {
            country: "GB".into(),
        },
    );
    u.call_ended(c, T0 + 10 * MIN);
    assert_eq!(
        u.check_setup(a, t, T0 + 10 * MIN, &D::NationalFixed),
        Verdict::Allow
    );
}

#[test]
fn cost_per_day_with_default_tariff() {
    let (a, t) = ids(7);
    // €1 a day; international is 20 cents a minute by default: 5 minutes.
    let mut u = UsageTracker::new(config(Limits {
        cost_per_day: Some(100_000),
        ..Limits::unlimited()
    }));
    let intl = D::International {
        country: "GB".into(),
    };
    let c = u.call_started(a, t, T0, &intl);
    u.call_answered(c, T0);
    u.call_ended(c, T0 + 4 * MIN);
    assert_eq!(u.check_setup(a, t, T0 + 5 * MIN, &intl), Verdict::Allow);
    let c = u.call_started(a, t, T0 + 5 * MIN, &intl);
    u.call_answered(c, T0 + 5 * MIN);
    u.call_ended(c, T0 + 6 * MIN);
    assert_eq!(
        limit_of(&u.check_setup(a, t, T0 + 7 * MIN, &intl)),
        Some(LimitKind::CostPerDay)
    );
}

#[test]
fn running_call_is_caught_while_it_runs() {
    let (a, t) = ids(8);
    let mut u = UsageTracker::new(config(Limits {
        minutes_per_day: Some(60),
        ..Limits::unlimited()
    }));
    let c = u.call_started(a, t, T0, &D::Mobile);
    u.call_answered(c, T0);
    // Checked every minute: nothing until an hour has run.
    for m in 1..60 {
        assert!(u.check_running(T0 + m * MIN).is_empty(), "minute {m}");
    }
    let at_limit = u.check_running(T0 + 60 * MIN);
    assert!(
        matches!(
            at_limit.as_slice(),
            [BreachEvent::Alert {
                event: SecurityEvent::ThresholdBreached {
                    limit: LimitKind::MinutesPerDay,
                    value: 60,
                    max: 60,
                    ..
                }
            }]
        ),
        "{at_limit:?}"
    );
    assert!(u.check_running(T0 + 61 * MIN).is_empty(), "alert once");
    // Critical at 1.5 x: the call is ended.
    let critical = u.check_running(T0 + 90 * MIN);
    assert_eq!(
        critical,
        vec![BreachEvent::EndCalls {
            calls: vec![c],
            reason: BlockReason::Limit {
                limit: LimitKind::MinutesPerDay
            },
        }]
    );
    u.call_ended(c, T0 + 90 * MIN);
    assert_eq!(u.running_calls(), 0);
}

#[test]
fn open_line_is_ended() {
    let (a, t) = ids(9);
    let mut u = UsageTracker::new(UsageConfig {
        max_call_ms: Some(4 * HOUR),
        ..config(Limits::unlimited())
    });
    let c = u.call_started(a, t, T0, &D::TollFree);
    u.call_answered(c, T0);
    assert!(u.check_running(T0 + 4 * HOUR).is_empty());
    let out = u.check_running(T0 + 4 * HOUR + MIN);
    assert!(
        matches!(out.as_slice(), [BreachEvent::EndCalls { calls, .. }] if calls == &vec![c]),
        "{out:?}"
    );
}

/// Eight weeks of a normal pattern: 3 calls of 5 minutes on weekdays at 10:00.
fn learn(u: &mut UsageTracker, a: UserId, t: TenantId) {
    for w in 0..8 {
        for d in 0..5 {
            let start = T0 + w * WEEK + d * DAY + 10 * HOUR;
            for k in 0..3 {
                let s = start + k * 10 * MIN;
                assert_eq!(
                    u.check_setup(a, t, s, &D::NationalFixed),
                    Verdict::Allow,
                    "week {w} day {d}"
                );
                let c = u.call_started(a, t, s, &D::NationalFixed);
                u.call_answered(c, s);
                u.call_ended(c, s + 5 * MIN);
            }
        }
    }
}

#[test]
fn baseline_learns_then_blocks_anomaly_and_lift() {
    let (a, t) = ids(10);
    let baseline = BaselineConfig {
        multiplier: 3.0,
        floor_minutes: 30.0,
        floor_calls: 10,
        critical_factor: 2.0,
        weeks: 4.0,
    };
    let mut u = UsageTracker::new(UsageConfig {
        account: Limits::unlimited(),
        tenant: Limits::unlimited(),
        baseline,
        ..Default::default()
    });
    learn(&mut u, a, t);
    u.take_events();
    // Week 9, Monday 10:00: 3 calls are normal...
    let start = T0 + 8 * WEEK + 10 * HOUR;
    for k in 0..9 {
        assert_eq!(
            u.check_setup(a, t, start + k, &D::NationalFixed),
            Verdict::Allow,
            "call {k}"
        );
        u.call_started(a, t, start + k, &D::NationalFixed);
    }
    // ...the 11th call in the hour is above both 3 x ~2.7 and the floor of 10.
    assert_eq!(
        u.check_setup(a, t, start + 10, &D::NationalFixed),
        Verdict::Allow
    );
    u.call_started(a, t, start + 10, &D::NationalFixed);
    let v = u.check_setup(a, t, start + 11, &D::NationalFixed);
    assert_eq!(
        v,
        Verdict::Block {
            reason: BlockReason::AccountBlocked
        }
    );
    assert!(u.is_blocked(a));
    let events = u.take_events();
    assert!(events.iter().any(
        |e| matches!(e, SecurityEvent::BaselineAnomaly { hour_of_week, .. }
        if *hour_of_week == how(start))
    ));
    assert!(events.contains(&SecurityEvent::AccountBlocked {
        account: a,
        tenant: t
    }));
    // Stays blocked until lifted, even in a quiet hour.
    assert!(
        !u.check_setup(a, t, start + 5 * HOUR, &D::NationalFixed)
            .is_allowed()
    );
    assert_eq!(u.blocked_accounts(), vec![(a, t)]);
    assert_eq!(
        u.lift(a, start + 5 * HOUR),
        Some(SecurityEvent::AccountUnblocked {
            account: a,
            by: LiftedBy::Admin
        })
    );
    assert_eq!(u.lift(a, start + 5 * HOUR), None);
    assert_eq!(
        u.check_setup(a, t, start + 5 * HOUR, &D::NationalFixed),
        Verdict::Allow
    );
    // Other accounts were never affected.
    let (b, _) = ids(11);
    assert_eq!(
        u.check_setup(b, t, start + 12, &D::NationalFixed),
        Verdict::Allow
    );
}

#[test]
fn baseline_anomaly_during_running_calls_ends_them_when_critical() {
    let (a, t) = ids(12);
    let baseline = BaselineConfig {
        multiplier: 3.0,
        floor_minutes: 30.0,
        floor_calls: 100,
        critical_factor: 2.0,
        weeks: 4.0,
    };
    let mut u = UsageTracker::new(UsageConfig {
        account: Limits::unlimited(),
        tenant: Limits::unlimited(),
        baseline,
        max_call_ms: None,
        ..Default::default()
    });
    learn(&mut u, a, t);
    // Night, no history: 4 long calls start at 02:00 Monday of week 9.
    let start = T0 + 8 * WEEK + 2 * HOUR;
    let calls: Vec<_> = (0..4)
        .map(|k| {
            let c = u.call_started(
                a,
                t,
                start + k,
                &D::International {
                    country: "GB".into(),
                },
            );
            u.call_answered(c, start + k);
            c
        })
        .collect();
    // 4 calls x 7 min = 28 min < floor 30: nothing.
    assert!(u.check_running(start + 7 * MIN + 10).is_empty());
    // 4 x 8 min = 32 min: blocked, alert, not yet critical.
    let out = u.check_running(start + 8 * MIN + 10);
    assert!(
        matches!(
            out.as_slice(),
            [BreachEvent::Alert {
                event: SecurityEvent::AccountBlocked { .. }
            }]
        ),
        "{out:?}"
    );
    assert!(u.is_blocked(a));
    // 4 x 16 min = 64 min > 2 x 30: critical, all four calls ended.
    let out = u.check_running(start + 16 * MIN + 10);
    assert_eq!(
        out,
        vec![BreachEvent::EndCalls {
            calls,
            reason: BlockReason::AccountBlocked
        }]
    );
}

#[test]
fn events_serialise() {
    let (a, t) = ids(13);
    let e = SecurityEvent::AccountBlocked {
        account: a,
        tenant: t,
    };
    let json = serde_json::to_string(&e).unwrap();
    assert!(json.contains("\"type\":\"account_blocked\""), "{json}");
    assert_eq!(serde_json::from_str::<SecurityEvent>(&json).unwrap(), e);
}

#[test]
fn blocks_and_baselines_survive_restart() {
    let (a, t) = ids(14);
    let mut u = UsageTracker::new(config(Limits::unlimited()));
    learn(&mut u, a, t);
    u.block(a, t);
    let json = serde_json::to_string(&u.export()).unwrap();
    let mut restarted = UsageTracker::new(config(Limits::unlimited()));
    restarted.import(serde_json::from_str(&json).unwrap());
    assert!(restarted.is_blocked(a));
    assert_eq!(restarted.export(), u.export());
    assert_eq!(
        restarted.check_setup(a, t, T0 + 9 * WEEK, &D::NationalFixed),
        Verdict::Block {
            reason: BlockReason::AccountBlocked
        }
    );
}

#[test]
fn overrides_replace_the_defaults_until_removed() {
    let (a, t) = ids(15);
    let (b, _) = ids(16);
    let mut u = UsageTracker::new(config(Limits {
        calls_per_minute: Some(10),
        ..Limits::unlimited()
    }));
    let two = Limits {
        calls_per_minute: Some(2),
        ..Limits::unlimited()
    };
    u.set_account_limits(a, two.clone());
    assert_eq!(u.account_limits(&a), two);
    for n in 0..2 {
        assert_eq!(
            u.check_setup(a, t, T0 + n, &D::NationalFixed),
            Verdict::Allow
        );
        u.call_started(a, t, T0 + n, &D::NationalFixed);
    }
    let v = u.check_setup(a, t, T0 + 2, &D::NationalFixed);
    assert_eq!(limit_of(&v), Some(LimitKind::CallsPerMinute));
    // Another account of the tenant keeps the default.
    assert_eq!(u.account_limits(&b).calls_per_minute, Some(10));
    assert_eq!(
        u.check_setup(b, t, T0 + 2, &D::NationalFixed),
        Verdict::Allow
    );
    // Removed: the default (10) applies again to the same window.
    assert!(u.remove_account_limits(a));
    assert!(!u.remove_account_limits(a));
    assert_eq!(
        u.check_setup(a, t, T0 + 3, &D::NationalFixed),
        Verdict::Allow
    );

    // A tenant override counts every account of the tenant.
    u.set_tenant_limits(
        t,
        Limits {
            calls_per_minute: Some(3),
            ..Limits::unlimited()
        },
    );
    u.call_started(b, t, T0 + 4, &D::NationalFixed);
    let v = u.check_setup(b, t, T0 + 5, &D::NationalFixed);
    assert_eq!(limit_of(&v), Some(LimitKind::CallsPerMinute));
    assert!(u.remove_tenant_limits(t));
    assert_eq!(u.tenant_limits(&t), Limits::unlimited());
}

#[test]
fn a_manual_block_refuses_new_calls_and_names_the_running_ones() {
    let (a, t) = ids(17);
    let (b, _) = ids(18);
    let mut u = UsageTracker::new(config(Limits::unlimited()));
    let first = u.call_started(a, t, T0, &D::NationalFixed);
    let _other = u.call_started(b, t, T0, &D::NationalFixed);
    let second = u.call_started(a, t, T0 + 1, &D::Mobile);
    assert_eq!(
        u.block(a, t),
        Some(SecurityEvent::AccountBlocked {
            account: a,
            tenant: t
        })
    );
    assert_eq!(u.block(a, t), None, "already blocked");
    assert_eq!(u.account_calls(a), vec![first, second]);
    assert_eq!(
        u.check_setup(a, t, T0 + 2, &D::NationalFixed),
        Verdict::Block {
            reason: BlockReason::AccountBlocked
        }
    );
    assert_eq!(
        u.check_setup(b, t, T0 + 2, &D::NationalFixed),
        Verdict::Allow
    );
    assert!(u.lift(a, T0 + 3).is_some());
    assert_eq!(
        u.check_setup(a, t, T0 + 4, &D::NationalFixed),
        Verdict::Allow
    );
}
