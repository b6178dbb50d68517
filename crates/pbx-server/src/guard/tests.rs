//! Unit tests of the wired guard: the SIP-path observations, the transport filter, the
//! persistence round trip and the call API. The end-to-end tests with real attack tools are
//! in `tests/fraud.rs`.

// Test helpers outside #[test] functions: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pbx_domain::{ClassOfService, DirectorySnapshot, TenantId, UserId};
use pbx_policy::{CallHandle, DestinationClass, SecurityEvent, TenantExceptions};
use pbx_registrar::{AuthFailure, Effect, RegistrationEvent};
use pbx_sip::{Message, Request, StatusCode};

use super::*;

fn settings() -> SecuritySettings {
    SecuritySection::default().validate().unwrap()
}

fn register(user: Option<&str>, ua: &str) -> Request {
    let auth = user
        .map(|u| {
            format!(
                "Authorization: Digest username=\"{u}\", realm=\"cloudpbx\", nonce=\"abc\", \
                 uri=\"sip:cloudpbx\", response=\"00000000000000000000000000000000\", \
                 qop=auth, nc=00000001, cnonce=\"x\"\r\n"
            )
        })
        .unwrap_or_default();
    let text = format!(
        "REGISTER sip:cloudpbx SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:100@cloudpbx>;tag=1\r\n\
         To: <sip:100@cloudpbx>\r\n\
         Call-ID: c1\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:100@192.0.2.1:5060>\r\n\
         User-Agent: {ua}\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    );
    Message::parse(Bytes::from(text))
        .unwrap()
        .into_request()
        .unwrap()
}

fn failed(source: SocketAddr) -> Vec<Effect> {
    vec![Effect::Event(RegistrationEvent::AuthFailed {
        reason: AuthFailure::InvalidCredentials,
        source,
        tenant_id: None,
        user_id: None,
    })]
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn drain(rx: &mut mpsc::Receiver<Recorded>) -> Vec<Recorded> {
    let mut out = Vec::new();
    while let Ok(r) = rx.try_recv() {
        out.push(r);
    }
    out
}

#[test]
fn wrong_passwords_ban_the_source_and_the_filter_drops_it() {
    let (guard, mut rx) = SecurityGuard::new(settings());
    let dir = DirectorySnapshot::default();
    let attacker = addr("192.0.2.7:5060");
    let req = register(Some("100"), "Yealink");
    for i in 0..4 {
        guard.after_register(
            attacker,
            &req,
            StatusCode::UNAUTHORIZED,
            &failed(attacker),
            &dir,
            false,
        );
        assert!(
            !guard.is_banned(attacker.ip()),
            "banned after {} failures",
            i + 1
        );
        assert!(guard.admit(attacker.ip()));
    }
    guard.after_register(
        attacker,
        &req,
        StatusCode::UNAUTHORIZED,
        &failed(attacker),
        &dir,
        false,
    );
    assert!(guard.is_banned(attacker.ip()));
    assert!(!guard.admit(attacker.ip()));
    assert!(!guard.filter().admit(attacker, Transport::Tcp));
    assert!(
        guard.admit("192.0.2.8".parse().unwrap()),
        "other sources pass"
    );
    assert_eq!(guard.metrics().dropped(), 2);
    let events = drain(&mut rx);
    assert!(events.iter().any(|r| matches!(
        r.event,
        SecurityEvent::SourceBanned {
            reason: pbx_policy::BanReason::AuthFailures,
            level: 0,
            ..
        }
    )));
    // Unknown user names (empty directory) were counted: the user name is throttled too.
    assert!(events.iter().any(|r| r.kind() == "user_throttled"));
    // The operator lifts the ban: audit event, the filter admits again.
    let source = guard.source_key(attacker.ip());
    assert_eq!(guard.bans().len(), 1);
    assert!(guard.unban(source));
    assert!(!guard.unban(source));
    assert!(guard.admit(attacker.ip()));
    assert!(drain(&mut rx).iter().any(|r| r.kind() == "source_unbanned"));
}

#[test]
fn office_behind_nat_is_not_banned_for_one_phone() {
    let (guard, _rx) = SecurityGuard::new(settings());
    let dir = DirectorySnapshot::default();
    let office = addr("198.51.100.20:5060");
    // A colleague's phone authenticates from the office address.
    guard.after_register(
        office,
        &register(Some("good"), "Yealink"),
        StatusCode::OK,
        &[],
        &dir,
        false,
    );
    let bad = register(Some("bad"), "Yealink");
    for _ in 0..20 {
        guard.after_register(
            office,
            &bad,
            StatusCode::UNAUTHORIZED,
            &failed(office),
            &dir,
            false,
        );
    }
    assert!(!guard.is_banned(office.ip()), "the office stays reachable");
    assert_eq!(guard.throttled_users().len(), 1);
    assert_eq!(guard.throttled_users()[0].0, "bad");
    // The throttled name is challenged again (credentials stripped); others are not.
    let mut again = register(Some("bad"), "Yealink");
    assert!(guard.register_throttled(&again));
    // What the SIP path then does (`sip.rs`): the registrar sees no credentials.
    again.headers_mut().remove(&HeaderName::Authorization);
    let good = register(Some("good"), "Yealink");
    assert!(!guard.register_throttled(&good));
    // A stripped request is not a new unanswered challenge.
    guard.after_register(office, &again, StatusCode::UNAUTHORIZED, &[], &dir, true);
    guard.housekeeping(unix_ms() + 3_600_000 - 1);
    assert!(!guard.is_banned(office.ip()));
    assert!(guard.unthrottle_user("bad"));
    assert!(guard.throttled_users().is_empty());
}

#[test]
fn unanswered_challenges_ban_after_the_timeout() {
    let (guard, _rx) = SecurityGuard::new(settings());
    let dir = DirectorySnapshot::default();
    let scanner = addr("203.0.113.5:5060");
    let probe = register(None, "Linphone");
    for _ in 0..5 {
        guard.after_register(scanner, &probe, StatusCode::UNAUTHORIZED, &[], &dir, false);
    }
    guard.housekeeping(unix_ms());
    assert!(!guard.is_banned(scanner.ip()), "not before the timeout");
    guard.housekeeping(unix_ms() + 33_000);
    assert!(guard.is_banned(scanner.ip()));
    // A phone that answers its challenge is never counted.
    let phone = addr("203.0.113.6:5060");
    guard.after_register(phone, &probe, StatusCode::UNAUTHORIZED, &[], &dir, false);
    guard.after_register(
        phone,
        &register(Some("100"), "Yealink"),
        StatusCode::OK,
        &[],
        &dir,
        false,
    );
    guard.housekeeping(unix_ms() + 33_000);
    assert!(!guard.is_banned(phone.ip()));
}

#[test]
fn scanner_user_agent_is_banned_at_once() {
    let (guard, mut rx) = SecurityGuard::new(settings());
    let scanner = addr("203.0.113.9:5070");
    assert!(guard.inspect(scanner, &register(None, "Yealink SIP-T54W")));
    assert!(!guard.inspect(scanner, &register(None, "friendly-scanner")));
    assert!(guard.is_banned(scanner.ip()));
    assert!(drain(&mut rx).iter().any(|r| matches!(
        r.event,
        SecurityEvent::SourceBanned {
            reason: pbx_policy::BanReason::Scanner,
            ..
        }
    )));
}

#[test]
fn flood_bans_the_flooder_but_not_an_authenticated_source() {
    let mut s = settings();
    s.guard.flood_rate_per_second = 10;
    s.guard.flood_burst = 20;
    let (guard, _rx) = SecurityGuard::new(s);
    let dir = DirectorySnapshot::default();
    let flooder: IpAddr = "127.0.0.9".parse().unwrap();
    let admitted = (0..1_000).filter(|_| guard.admit(flooder)).count();
    assert!(admitted <= 25, "{admitted}");
    assert!(guard.is_banned(flooder));
    let office = addr("127.0.0.1:5060");
    guard.after_register(
        office,
        &register(Some("100"), "SIPp"),
        StatusCode::OK,
        &[],
        &dir,
        false,
    );
    assert!((0..1_000).all(|_| guard.admit(office.ip())));
    assert!(!guard.is_banned(office.ip()));
    // A trunk's address never registers: trusted, it is never rate-limited.
    let trunk: IpAddr = "192.0.2.200".parse().unwrap();
    guard.trust_source(trunk);
    assert!((0..1_000).all(|_| guard.admit(trunk)));
}

#[test]
fn ipv6_sources_are_banned_per_prefix() {
    let (guard, _rx) = SecurityGuard::new(settings());
    let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    guard.ban(a).unwrap();
    assert!(!guard.admit(b), "same /64");
    assert!(guard.admit(c), "other /64");
    assert_eq!(guard.bans()[0].source.to_string(), "2001:db8:1:2::/64");
}

#[test]
fn bans_survive_export_and_import() {
    let (guard, _rx) = SecurityGuard::new(settings());
    let ip: IpAddr = "192.0.2.44".parse().unwrap();
    guard.ban(ip).unwrap();
    let tenant = TenantId::from_parts(1, &[1; 10]);
    guard.set_tenant_exceptions(
        tenant,
        TenantExceptions {
            allow: vec!["+53".into()],
            block: vec![],
        },
    );
    let state = guard.export_state(false).unwrap();
    assert!(guard.export_state(false).is_none(), "nothing changed since");
    let (restarted, _rx) = SecurityGuard::new(settings());
    assert!(restarted.admit(ip));
    assert_eq!(restarted.import_state(&state, unix_ms()).unwrap(), 1);
    assert!(!restarted.admit(ip));
    assert_eq!(
        restarted.tenant_exceptions(tenant).allow,
        vec!["+53".to_owned()]
    );
    // A second ban after the restart escalates (history kept): 15 min → 60 min.
    assert!(restarted.unban(restarted.source_key(ip)));
    let (again, _rx) = SecurityGuard::new(settings());
    again.import_state(&state, unix_ms()).unwrap();
    let ban = again.ban(ip).unwrap();
    assert_eq!(ban.level, 1);
    assert_eq!(ban.until - ban.since, 60 * 60_000);
}

fn ids() -> (TenantId, UserId) {
    (
        TenantId::from_parts(1, &[2; 10]),
        UserId::from_parts(1, &[3; 10]),
    )
}

fn check(guard: &SecurityGuard, cos: ClassOfService, dialled: &str) -> CallVerdict {
    let (tenant, user) = ids();
    guard.check_call(&CallCheck {
        tenant,
        user,
        class_of_service: cos,
        dialled,
        normalised: None,
    })
}

#[test]
fn premium_and_high_fraud_destinations_are_blocked_emergency_never() {
    let (guard, mut rx) = SecurityGuard::new(settings());
    for number in ["0900 1234567", "0906 1234567", "0909 1234567"] {
        match check(&guard, ClassOfService::International, number) {
            CallVerdict::Block {
                status,
                reason,
                class,
                ..
            } => {
                assert_eq!(status, 403);
                assert!(reason.starts_with("Q.850;cause=21"), "{reason}");
                assert_eq!(class, DestinationClass::PremiumRate, "{number}");
            }
            other => panic!("{number}: {other:?}"),
        }
    }
    // Cuba is on the high-fraud list; +979 is international premium rate.
    assert!(!check(&guard, ClassOfService::International, "+5351234567").is_allowed());
    assert!(!check(&guard, ClassOfService::International, "+979123456789").is_allowed());
    // Emergency always goes through, without a handle, even for internal-only users.
    match check(&guard, ClassOfService::InternalOnly, "112") {
        CallVerdict::Allow { class, handle, .. } => {
            assert_eq!(class, DestinationClass::Emergency);
            assert!(handle.is_none());
        }
        other => panic!("{other:?}"),
    }
    // Class of service: national users cannot call abroad.
    assert!(!check(&guard, ClassOfService::National, "+4420 7946 0000").is_allowed());
    let events = drain(&mut rx);
    assert_eq!(
        events
            .iter()
            .filter(|r| r.kind() == "destination_blocked")
            .count(),
        6
    );
    assert!(events.iter().all(|r| r.tenant == Some(ids().0)));
    // A tenant exception allows a blocked range for that tenant.
    guard.set_tenant_exceptions(
        ids().0,
        TenantExceptions {
            allow: vec!["+53".into()],
            block: vec![],
        },
    );
    assert!(check(&guard, ClassOfService::International, "+5351234567").is_allowed());
}

#[test]
fn a_burst_above_the_threshold_is_cut_off_at_the_threshold() {
    let (guard, mut rx) = SecurityGuard::new(settings());
    // Default account limits: 4 concurrent calls, 10 per minute.
    let mut handles = Vec::new();
    for _ in 0..4 {
        match check(&guard, ClassOfService::National, "020 794 6000") {
            CallVerdict::Allow {
                handle: Some(h), ..
            } => handles.push(h),
            other => panic!("{other:?}"),
        }
    }
    assert!(!check(&guard, ClassOfService::National, "020 794 6000").is_allowed());
    assert_eq!(guard.running_calls(), 4);
    for h in handles {
        guard.call_ended(h);
    }
    let mut allowed = 4;
    for _ in 0..20 {
        if let CallVerdict::Allow {
            handle: Some(h), ..
        } = check(&guard, ClassOfService::National, "020 794 6000")
        {
            allowed += 1;
            guard.call_ended(h);
        }
    }
    assert_eq!(allowed, 10, "calls per minute");
    assert!(
        drain(&mut rx)
            .iter()
            .any(|r| r.kind() == "threshold_breached")
    );
}

#[derive(Default)]
struct Ended(Mutex<Vec<(Vec<CallHandle>, String)>>);

impl CallTerminator for Ended {
    fn end_calls(&self, calls: &[CallHandle], reason: &str) {
        self.0
            .lock()
            .unwrap()
            .push((calls.to_vec(), reason.to_owned()));
    }
}

#[test]
fn an_open_line_is_ended_through_the_terminator() {
    let (guard, _rx) = SecurityGuard::new(settings());
    let ended = Arc::new(Ended::default());
    guard.set_call_terminator(ended.clone());
    let CallVerdict::Allow {
        handle: Some(h), ..
    } = check(&guard, ClassOfService::National, "020 794 6000")
    else {
        panic!("allowed");
    };
    guard.call_answered(h);
    guard.housekeeping(unix_ms() + 60_000);
    assert!(ended.0.lock().unwrap().is_empty());
    // Nine hours later the call is still up: longer than the 8-hour open-line limit, and
    // 540 minutes are over the daily limits too.
    guard.housekeeping(unix_ms() + 9 * 3_600_000);
    let calls = ended.0.lock().unwrap().clone();
    assert!(calls.iter().any(|(c, _)| c.contains(&h)), "{calls:?}");
}
