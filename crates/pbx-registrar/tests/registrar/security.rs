//! Enumeration safety, whitelists, malformed and stale credentials.

use std::time::Duration;

use pbx_registrar::{AuthFailure, RegisterOutcome, RegistrationEvent};
use pbx_sip::Response;

use crate::support::*;

/// The response bytes with every `nonce="..."` value blanked.
fn without_nonces(response: &Response) -> String {
    let text = String::from_utf8(response.to_bytes().to_vec()).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("nonce=\"") {
        let value_start = start + "nonce=\"".len();
        out.push_str(&rest[..value_start]);
        let end = rest[value_start..].find('"').unwrap();
        out.push_str("NONCE");
        rest = &rest[value_start + end..];
    }
    out.push_str(rest);
    out
}

/// Sends `reg` (CSeq 1 unauthenticated, CSeq 2 with credentials for `username`/`password`).
fn attempt(
    h: &mut Harness,
    reg: &Reg,
    username: &str,
    password: &str,
    flow: pbx_registrar::FlowInfo,
) -> RegisterOutcome {
    let mut reg = reg.clone();
    h.register_with(username, password, &mut reg, flow)
}

#[test]
fn unknown_user_and_wrong_password_get_identical_answers() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    let wrong_password = attempt(&mut h, &reg, &ann.username, "not-the-password", flow);
    let unknown_user = attempt(&mut h, &reg, "zzzzzzzzzzzzzzzz", "whatever", flow);
    assert_eq!(wrong_password.response.status().0, 401);
    assert_eq!(
        without_nonces(&wrong_password.response),
        without_nonces(&unknown_user.response)
    );
    assert_ne!(
        wrong_password.response.to_bytes(),
        unknown_user.response.to_bytes(),
        "fresh nonces differ"
    );
    let expected = |outcome: &RegisterOutcome| {
        matches!(
            events(&outcome.effects).as_slice(),
            [RegistrationEvent::AuthFailed {
                reason: AuthFailure::InvalidCredentials,
                tenant_id: None,
                user_id: None,
                ..
            }]
        )
    };
    assert!(expected(&wrong_password) && expected(&unknown_user));
    assert_eq!(h.registrar.binding_count(), 0);

    // A disabled-looking user: a name of the right shape that is not in the directory.
    let other_unknown = attempt(&mut h, &reg, "aaaaaaaaaaaaaaaa", "x", flow);
    assert_eq!(
        without_nonces(&other_unknown.response),
        without_nonces(&unknown_user.response)
    );
}

#[test]
fn whitelist_refuses_foreign_addresses_for_ipv4_and_ipv6_without_revealing_the_password() {
    let mut h = Harness::new();
    let carol = h.accounts.carol.clone();
    let cases = [
        ("198.51.100.7:5060", true),
        ("203.0.113.9:5060", false),
        ("[2001:db8:1::5]:5060", true),
        ("[2001:db8:2::5]:5060", false),
    ];
    for (source, allowed) in cases {
        let reg = Reg::new(&carol, source, &format!("<sip:301@{source}>"));
        let right = attempt(&mut h, &reg, &carol.username, &carol.password, udp(source));
        let wrong = attempt(&mut h, &reg, &carol.username, "wrong", udp(source));
        if allowed {
            assert_eq!(right.response.status().0, 200, "{source}");
            assert_eq!(wrong.response.status().0, 401, "{source}");
        } else {
            assert_eq!(right.response.status().0, 403, "{source}");
            assert_eq!(
                right.response.to_bytes(),
                wrong.response.to_bytes(),
                "{source}: same 403 whether or not the password was right"
            );
            assert!(matches!(
                events(&right.effects).as_slice(),
                [RegistrationEvent::AuthFailed {
                    reason: AuthFailure::NotWhitelisted,
                    tenant_id: Some(_),
                    ..
                }]
            ));
            assert!(right.effects.iter().all(|e| !matches!(
                e,
                pbx_registrar::Effect::PersistBinding(_) | pbx_registrar::Effect::RefreshBinding(_)
            )));
        }
    }
    assert_eq!(h.registrar.binding_count(), 2);
    // Tenants without a whitelist accept any address.
    let bob = h.accounts.bob.clone();
    let mut reg = Reg::new(&bob, "203.0.113.9:5060", "<sip:202@203.0.113.9:5060>");
    assert_eq!(
        h.register(&bob, &mut reg, udp("203.0.113.9:5060"))
            .response
            .status()
            .0,
        200
    );
}

#[test]
fn malformed_credentials_get_400_and_other_schemes_a_challenge() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    let malformed = h.send(&reg.request(Some("Digest username=")), flow);
    assert_eq!(malformed.response.status().0, 400);
    assert!(matches!(
        events(&malformed.effects).as_slice(),
        [RegistrationEvent::AuthFailed {
            reason: AuthFailure::MalformedCredentials,
            ..
        }]
    ));
    let basic = h.send(
        &reg.request(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")),
        flow,
    );
    assert_eq!(basic.response.status().0, 401);

    // Credentials made for another Request-URI.
    let challenge = h.send(&reg.request(None), flow);
    let authorization = h.authorization(
        &challenge.response,
        &ann.username,
        &ann.password,
        "sip:elsewhere.example",
    );
    let mismatch = h.send(&reg.request(Some(&authorization)), flow);
    assert_eq!(mismatch.response.status().0, 400);
}

#[test]
fn expired_nonce_with_right_password_gets_a_stale_challenge() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    let challenge = h.send(&reg.request(None), flow);
    let authorization = h.authorization(
        &challenge.response,
        &ann.username,
        &ann.password,
        &reg.request_uri,
    );
    h.advance(Duration::from_secs(400));
    reg.cseq = 2;
    let stale = h.send(&reg.request(Some(&authorization)), flow);
    assert_eq!(stale.response.status().0, 401);
    assert!(
        header(&stale.response, "WWW-Authenticate")
            .iter()
            .all(|c| c.contains("stale=true"))
    );
    // Replaying accepted credentials is refused too.
    reg.cseq = 3;
    let fresh = h.send(&reg.request(None), flow);
    let authorization = h.authorization(
        &fresh.response,
        &ann.username,
        &ann.password,
        &reg.request_uri,
    );
    reg.cseq = 4;
    assert_eq!(
        h.send(&reg.request(Some(&authorization)), flow)
            .response
            .status()
            .0,
        200
    );
    reg.cseq = 5;
    let replay = h.send(&reg.request(Some(&authorization)), flow);
    assert_eq!(replay.response.status().0, 401);
    assert!(matches!(
        events(&replay.effects).as_slice(),
        [RegistrationEvent::AuthFailed {
            reason: AuthFailure::Replay,
            ..
        }]
    ));
}
