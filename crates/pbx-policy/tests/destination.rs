//! Destination classification table and the outbound policy matrix.

// Test helpers outside #[test] functions unwrap on fixed, valid literals.
#![allow(clippy::unwrap_used, clippy::panic)]

use pbx_domain::ClassOfService;
use pbx_policy::{
    BlockReason, Decision, DestinationClass as D, OutboundPolicy, PolicyDefaults, TenantExceptions,
    Verdict, classify,
};

fn class(dialled: &str) -> D {
    classify(dialled, "NL", 3).class
}

fn e164(dialled: &str) -> Option<String> {
    classify(dialled, "NL", 3).e164
}

#[test]
fn classification_table() {
    let intl = |c: &str| D::International {
        country: c.to_owned(),
    };
    let table: &[(&str, D)] = &[
        ("0201234567", D::NationalFixed),
        ("020 123 4567", D::NationalFixed),
        ("+31201234567", D::NationalFixed),
        ("0031201234567", D::NationalFixed),
        ("0612345678", D::Mobile),
        ("+31612345678", D::Mobile),
        ("08001234", D::TollFree),
        ("0800-1234567", D::TollFree),
        ("09001234", D::PremiumRate),
        ("0900-1234567", D::PremiumRate),
        ("0906-1234567", D::PremiumRate),
        ("0909-1234567", D::PremiumRate),
        ("+319091234567", D::PremiumRate),
        ("112", D::Emergency),
        ("911", D::Emergency),
        ("0900-8844", D::Special),
        ("116123", D::Special),
        ("14020", D::Special),
        ("*98", D::Special),
        ("201", D::Internal),
        ("+442079460000", intl("GB")),
        ("00442079460000", intl("GB")),
        ("+4930123456", intl("DE")),
        ("+8816123456789", D::Satellite),
        ("+881612345678", D::Satellite),
        ("+870772123456", D::Satellite),
        ("+979123456789", D::PremiumRate),
        ("+5372345678", intl("CU")),
        ("", D::Invalid),
        ("+", D::Invalid),
        ("abc", D::Invalid),
        ("+31", D::Invalid),
        ("0123", D::Invalid),
        ("12345678901234567890123456789012345", D::Invalid),
    ];
    let mut wrong = Vec::new();
    for (dialled, expected) in table {
        let got = class(dialled);
        if &got != expected {
            wrong.push(format!("{dialled:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn normalisation_to_e164() {
    assert_eq!(e164("0201234567").as_deref(), Some("+31201234567"));
    assert_eq!(e164("0031 20 123 4567").as_deref(), Some("+31201234567"));
    assert_eq!(e164("+31 (0)20"), None, "(0) style is not a valid number");
    assert_eq!(e164("00442079460000").as_deref(), Some("+442079460000"));
    assert_eq!(e164("112"), None);
    assert_eq!(e164("201"), None);
    // Extension length follows the tenant's plan.
    assert_eq!(classify("2001", "NL", 4).class, D::Internal);
    assert_ne!(classify("2001", "NL", 3).class, D::Internal);
    // Another tenant country: a German number is national there.
    assert_eq!(classify("+4930123456", "DE", 3).class, D::NationalFixed);
    assert_eq!(classify("999", "GB", 4).class, D::Emergency);
}

#[test]
fn high_risk_ranges_are_flagged() {
    let cuba = classify("+5372345678", "NL", 3);
    assert_eq!(cuba.high_risk.as_deref(), Some("+53 Cuba"));
    assert!(classify("+442079460000", "NL", 3).high_risk.is_none());
    let inet = classify("+882345678901", "NL", 3);
    assert_eq!(inet.class, D::Special);
    assert!(inet.high_risk.is_some());
}

fn check(cos: ClassOfService, dialled: &str, ex: &TenantExceptions) -> Verdict {
    OutboundPolicy::check(
        cos,
        &classify(dialled, "NL", 3),
        ex,
        &PolicyDefaults::default(),
    )
}

#[test]
fn class_of_service_matrix() {
    use ClassOfService::{InternalOnly as I, International as X, National as N};
    let none = TenantExceptions::default();
    // (dialled, InternalOnly, National, International)
    let matrix: &[(&str, bool, bool, bool)] = &[
        ("201", true, true, true),
        ("112", true, true, true),
        ("911", true, true, true),
        ("0201234567", false, true, true),
        ("0612345678", false, true, true),
        ("08001234", false, true, true),
        ("0900-8844", false, true, true),
        ("+442079460000", false, false, true),
        ("09001234", false, false, false),
        ("0906-1234567", false, false, false),
        ("0909-1234567", false, false, false),
        ("+979123456789", false, false, false),
        ("+8816123456789", false, false, false),
        ("+5372345678", false, false, false),
        ("nonsense", false, false, false),
    ];
    for (dialled, i, n, x) in matrix {
        for (cos, want) in [(I, i), (N, n), (X, x)] {
            let verdict = check(cos, dialled, &none);
            assert_eq!(
                verdict.is_allowed(),
                *want,
                "{dialled} with {cos:?}: {verdict:?}"
            );
        }
    }
}

#[test]
fn emergency_always_allowed_even_with_tenant_blocks() {
    let ex = TenantExceptions {
        allow: vec![],
        block: vec!["+".into(), "1".into(), "+31".into()],
    };
    assert_eq!(
        check(ClassOfService::InternalOnly, "112", &ex),
        Verdict::Allow
    );
    let everything_blocked = PolicyDefaults {
        block_premium_rate: true,
        block_satellite: true,
        block_high_risk: true,
    };
    let verdict = OutboundPolicy::check(
        ClassOfService::InternalOnly,
        &classify("112", "NL", 3),
        &ex,
        &everything_blocked,
    );
    assert_eq!(verdict, Verdict::Allow);
}

#[test]
fn tenant_exceptions() {
    let ex = TenantExceptions {
        allow: vec!["+53".into(), "+31909".into()],
        block: vec!["+44".into(), "+5399".into()],
    };
    use ClassOfService::{International as X, National as N};
    // Allowed exception lifts the default block...
    assert!(check(X, "+5372345678", &ex).is_allowed());
    assert!(check(X, "0909-1234567", &ex).is_allowed());
    assert!(
        check(N, "0909-1234567", &ex).is_allowed(),
        "premium is national"
    );
    // ...but not the class of service.
    assert_eq!(
        check(N, "+5372345678", &ex),
        Verdict::Block {
            reason: BlockReason::ClassOfService
        }
    );
    // 0900 and 0906 stay blocked (only 0909 was allowed).
    assert_eq!(
        check(X, "0906-1234567", &ex),
        Verdict::Block {
            reason: BlockReason::PremiumRate
        }
    );
    // Extra blocked prefix, and longest prefix wins.
    assert_eq!(
        check(X, "+442079460000", &ex),
        Verdict::Block {
            reason: BlockReason::TenantBlocked {
                prefix: "+44".into()
            }
        }
    );
    assert!(!check(X, "+539912345", &ex).is_allowed());
}

#[test]
fn block_answer_is_403_with_reason() {
    let verdict = check(
        ClassOfService::International,
        "0906-1234567",
        &TenantExceptions::default(),
    );
    match verdict.decision() {
        Decision::Reject { status, reason } => {
            assert_eq!(status, 403);
            assert!(reason.starts_with("Q.850;cause=21;text=\""), "{reason}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let cos = check(
        ClassOfService::InternalOnly,
        "0201234567",
        &TenantExceptions::default(),
    );
    assert_eq!(
        cos.decision(),
        Decision::Reject {
            status: 403,
            reason: "Q.850;cause=57;text=\"Destination not allowed by class of service\"".into()
        }
    );
}
