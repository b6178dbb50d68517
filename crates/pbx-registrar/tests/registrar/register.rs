//! RFC 3261 §10.3 basics: add, refresh, remove, wildcard, expiry policy, several devices.

use std::time::Duration;

use pbx_registrar::{RegistrarConfig, RegistrationEvent, RemovalReason};

use crate::support::*;

#[test]
fn challenge_then_credentials_registers_and_lists_the_contact() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    let first = h.send(&reg.request(None), udp("203.0.113.7:5060"));
    assert_eq!(first.response.status().0, 401);
    let challenges = header(&first.response, "WWW-Authenticate");
    assert_eq!(challenges.len(), 2);
    assert!(
        challenges[0].contains("algorithm=SHA-256"),
        "{challenges:?}"
    );
    assert!(challenges[1].contains("algorithm=MD5"));
    assert!(challenges.iter().all(|c| c.contains("realm=\"cloudpbx\"")));
    assert!(first.effects.is_empty(), "a challenge is not an event");

    let authorization = h.authorization(
        &first.response,
        &ann.username,
        &ann.password,
        &reg.request_uri,
    );
    reg.cseq = 2;
    let ok = h.send(&reg.request(Some(&authorization)), udp("203.0.113.7:5060"));
    assert_eq!(ok.response.status().0, 200, "{:?}", ok.response);
    assert_eq!(
        contacts(&ok.response),
        vec!["<sip:201@203.0.113.7:5060>;expires=3600"]
    );
    let records = persisted(&ok.effects);
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.aor, ann.aor());
    assert_eq!(record.aor, "sip:201@acme.example.com");
    assert_eq!(record.tenant_id, ann.tenant_id);
    assert_eq!(record.user_id, ann.user_id);
    assert_eq!(record.device_id, Some(ann.device_id));
    assert_eq!(record.contact_uri, "sip:201@203.0.113.7:5060");
    assert_eq!(record.cseq, 2);
    assert_eq!(record.expires_at_ms, START_UNIX_MS + 3_600_000);
    assert_eq!(record.flow.node_id, "node-1");
    assert!(!record.sip_alg_detected);
    assert!(matches!(
        events(&ok.effects).as_slice(),
        [RegistrationEvent::Registered {
            expires_secs: 3600,
            behind_nat: false,
            ..
        }]
    ));
    assert!(ok.response.to().unwrap().tag.is_some(), "To tag added");
    assert_eq!(h.registrar.lookup(ann.user_id).len(), 1);
}

#[test]
fn refresh_keeps_one_binding_with_the_new_expiry() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    reg.expires = Some(600);
    let ok = h.register(&ann, &mut reg, flow);
    assert_eq!(
        contacts(&ok.response),
        vec!["<sip:201@203.0.113.7:5060>;expires=600"]
    );

    h.advance(Duration::from_secs(100));
    reg.expires = Some(1200);
    let refreshed = h.register(&ann, &mut reg, flow);
    assert_eq!(refreshed.response.status().0, 200);
    assert_eq!(
        contacts(&refreshed.response),
        vec!["<sip:201@203.0.113.7:5060>;expires=1200"]
    );
    assert!(deleted(&refreshed.effects).is_empty());
    assert_eq!(
        persisted(&refreshed.effects)[0].expires_at_ms,
        START_UNIX_MS + 1_300_000
    );
    assert!(
        matches!(
            refreshed.effects.as_slice(),
            [pbx_registrar::Effect::RefreshBinding(_), ..]
        ),
        "only the expiry moved on: the store may write it back lazily"
    );
    assert!(matches!(
        events(&refreshed.effects).as_slice(),
        [RegistrationEvent::Refreshed {
            expires_secs: 1200,
            ..
        }]
    ));
    assert_eq!(h.registrar.binding_count(), 1);

    // A reboot (new Call-ID) refreshes the same binding too.
    reg.call_id = "after-reboot".into();
    reg.cseq = 1;
    let after = h.register(&ann, &mut reg, flow);
    assert_eq!(after.response.status().0, 200);
    assert_eq!(h.registrar.binding_count(), 1);
    assert_eq!(h.registrar.bindings(ann.user_id)[0].call_id, "after-reboot");

    // The same contact from a new NAT port is a change, written at once.
    let moved = h.register(&ann, &mut reg, udp("203.0.113.7:40000"));
    assert_eq!(moved.response.status().0, 200);
    assert!(
        matches!(
            moved.effects.as_slice(),
            [pbx_registrar::Effect::PersistBinding(_), ..]
        ),
        "{:?}",
        moved.effects
    );
}

#[test]
fn remove_single_contact_keeps_the_others() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    reg.contacts
        .push("<sip:201-b@203.0.113.7:5060>;expires=300".into());
    let ok = h.register(&ann, &mut reg, flow);
    assert_eq!(
        contacts(&ok.response),
        vec![
            "<sip:201@203.0.113.7:5060>;expires=3600",
            "<sip:201-b@203.0.113.7:5060>;expires=300"
        ]
    );
    reg.contacts = vec!["<sip:201-b@203.0.113.7:5060>;expires=0".into()];
    let removed = h.register(&ann, &mut reg, flow);
    assert_eq!(removed.response.status().0, 200);
    assert_eq!(
        contacts(&removed.response),
        vec!["<sip:201@203.0.113.7:5060>;expires=3600"]
    );
    let gone = deleted(&removed.effects);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].key, "contact:sip:201-b@203.0.113.7:5060");
    assert_eq!(gone[0].aor, "sip:201@acme.example.com");
    assert!(matches!(
        events(&removed.effects).as_slice(),
        [RegistrationEvent::Removed {
            reason: RemovalReason::Unregistered,
            ..
        }]
    ));

    // Expires: 0 header removes a contact without its own expires.
    reg.contacts = vec!["<sip:201@203.0.113.7:5060>".into()];
    reg.expires = Some(0);
    let last = h.register(&ann, &mut reg, flow);
    assert_eq!(last.response.status().0, 200);
    assert!(contacts(&last.response).is_empty());
    assert!(h.registrar.lookup(ann.user_id).is_empty());
    assert_eq!(h.registrar.flow_count(), 0);
    assert_eq!(h.registrar.poll_timeout(), None, "no timers left");
}

#[test]
fn wildcard_removes_every_binding_and_requires_expires_zero() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    reg.contacts.push("<sip:201@203.0.113.7:5062>".into());
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 200);

    reg.contacts = vec!["*".into()];
    reg.expires = None;
    // Challenged first (RFC 3261 §10.3 authenticates before it reads the Contacts), then
    // refused once authenticated.
    assert_eq!(h.send(&reg.request(None), flow).response.status().0, 401);
    let bad = h.register(&ann, &mut reg, flow);
    assert_eq!(bad.response.status().0, 400, "* without Expires: 0");
    reg.expires = Some(3600);
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 400);
    assert_eq!(h.registrar.binding_count(), 2);

    reg.expires = Some(0);
    let removed = h.register(&ann, &mut reg, flow);
    assert_eq!(removed.response.status().0, 200);
    assert!(contacts(&removed.response).is_empty());
    assert_eq!(deleted(&removed.effects).len(), 2);
    assert!(events(&removed.effects).iter().all(|e| matches!(
        e,
        RegistrationEvent::Removed {
            reason: RemovalReason::Wildcard,
            ..
        }
    )));
    assert_eq!(h.registrar.binding_count(), 0);
}

#[test]
fn too_brief_gets_423_and_too_long_is_clamped() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(
        &ann,
        "203.0.113.7:5060",
        "<sip:201@203.0.113.7:5060>;expires=30",
    );
    let brief = h.register(&ann, &mut reg, flow);
    assert_eq!(brief.response.status().0, 423);
    assert_eq!(header(&brief.response, "Min-Expires"), vec!["60"]);
    assert_eq!(h.registrar.binding_count(), 0);

    reg.contacts = vec!["<sip:201@203.0.113.7:5060>".into()];
    reg.expires = Some(999_999);
    let clamped = h.register(&ann, &mut reg, flow);
    assert_eq!(
        contacts(&clamped.response),
        vec!["<sip:201@203.0.113.7:5060>;expires=7200"]
    );
    reg.expires = Some(60);
    let minimum = h.register(&ann, &mut reg, flow);
    assert_eq!(
        contacts(&minimum.response),
        vec!["<sip:201@203.0.113.7:5060>;expires=60"]
    );
}

#[test]
fn two_devices_of_one_user_are_both_bound_and_returned() {
    let mut h = Harness::new();
    let desk = h.accounts.ann_desk.clone();
    let mobile = h.accounts.ann_mobile.clone();
    let mut desk_reg = Reg::new(&desk, "10.0.0.10:5060", "<sip:201@10.0.0.10:5060>");
    assert_eq!(
        h.register(&desk, &mut desk_reg, udp("203.0.113.7:40001"))
            .response
            .status()
            .0,
        200
    );
    h.advance(Duration::from_secs(5));
    let mut mobile_reg = Reg::new(
        &mobile,
        "172.16.0.9:5070",
        "<sip:201@172.16.0.9:5070;transport=tcp>;q=0.5",
    );
    mobile_reg.vias = vec!["SIP/2.0/TCP 172.16.0.9:5070;branch=z9hG4bKm".into()];
    let ok = h.register(&mobile, &mut mobile_reg, tcp("192.0.2.50:61000", 7));
    assert_eq!(ok.response.status().0, 200);
    assert_eq!(
        contacts(&ok.response),
        vec![
            "<sip:201@10.0.0.10:5060>;expires=3595",
            "<sip:201@172.16.0.9:5070;transport=tcp>;expires=3600;q=0.500"
        ]
    );
    let targets = h.registrar.lookup(desk.user_id);
    assert_eq!(targets.len(), 2);
    assert_eq!(
        targets[0].flow.source,
        addr("203.0.113.7:40001"),
        "q=1 first"
    );
    assert_eq!(targets[1].flow.source, addr("192.0.2.50:61000"));
    assert_eq!(targets[1].flow.connection, Some(7));
    assert_eq!(targets[1].q_milli, Some(500));
    assert!(h.registrar.lookup(h.accounts.bob.user_id).is_empty());
}

#[test]
fn tenant_comes_from_the_credentials_not_the_to_domain() {
    let mut h = Harness::new();
    let bob = h.accounts.bob.clone();
    let mut reg = Reg::new(&bob, "203.0.113.8:5060", "<sip:202@203.0.113.8:5060>");
    reg.to = "<sip:202@globex.example.com>".into();
    reg.request_uri = "sip:wrong.example.net".into();
    let ok = h.register(&bob, &mut reg, udp("203.0.113.8:5060"));
    assert_eq!(ok.response.status().0, 200, "{:?}", ok.response);
    let record = &persisted(&ok.effects)[0];
    assert_eq!(record.tenant_id, bob.tenant_id);
    assert_eq!(record.aor, "sip:202@acme.example.com");
    assert!(h.registrar.lookup(h.accounts.carol.user_id).is_empty());
}

#[test]
fn same_call_id_with_old_cseq_is_refused_and_changes_nothing() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    reg.cseq = 10;
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 200);
    let stored = h.registrar.bindings(ann.user_id)[0].clone();
    assert_eq!(stored.cseq, 11);

    // Answer a fresh challenge, then send with a CSeq at or below the stored one.
    let challenge = h.send(&reg.request(None), flow);
    let authorization = h.authorization(
        &challenge.response,
        &ann.username,
        &ann.password,
        &reg.request_uri,
    );
    reg.cseq = 11;
    reg.contacts = vec!["<sip:201@203.0.113.7:5060>;expires=0".into()];
    let stale = h.send(&reg.request(Some(&authorization)), flow);
    assert_eq!(stale.response.status().0, 500);
    assert!(stale.effects.is_empty());
    assert_eq!(h.registrar.bindings(ann.user_id)[0], &stored);
}

#[test]
fn plain_refreshes_are_persisted_only_when_the_stored_expiry_would_lapse_early() {
    let refreshes = |effects: &[pbx_registrar::Effect]| {
        effects
            .iter()
            .filter(|e| matches!(e, pbx_registrar::Effect::RefreshBinding(_)))
            .count()
    };
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    reg.expires = Some(3600);
    let first = h.register(&ann, &mut reg, flow);
    assert_eq!(persisted(&first.effects).len(), 1);

    // A NAT keep-alive re-registration a minute later: answered, live expiry moved on, but
    // the store's copy (59 minutes left of 60) is not rewritten.
    h.advance(Duration::from_secs(60));
    let again = h.register(&ann, &mut reg, flow);
    assert_eq!(
        contacts(&again.response),
        vec!["<sip:201@203.0.113.7:5060>;expires=3600"]
    );
    assert_eq!(refreshes(&again.effects), 0, "{:?}", again.effects);
    assert!(persisted(&again.effects).is_empty());

    // Once the stored copy has less than half the new lifetime left, the refresh is written.
    h.advance(Duration::from_secs(1_800));
    let later = h.register(&ann, &mut reg, flow);
    assert_eq!(refreshes(&later.effects), 1);
    assert_eq!(
        persisted(&later.effects)[0].expires_at_ms,
        h.now().unix_ms + 3_600_000
    );

    // A shorter expiry is written at once: the store must not outlive the binding.
    h.advance(Duration::from_secs(60));
    reg.expires = Some(600);
    let shorter = h.register(&ann, &mut reg, flow);
    assert_eq!(refreshes(&shorter.effects), 1);

    // With lazy persistence off, every refresh is written.
    let mut config = RegistrarConfig::new("node-1");
    config.persist_refreshes_lazily = false;
    let mut h = Harness::with_config(config);
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 200);
    h.advance(Duration::from_secs(60));
    assert_eq!(refreshes(&h.register(&ann, &mut reg, flow).effects), 1);
}

#[test]
fn a_retransmitted_register_gets_200_again_and_changes_nothing() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    let challenge = h.send(&reg.request(None), flow);
    assert_eq!(challenge.response.status().0, 401);
    let authorization = h.authorization(
        &challenge.response,
        &ann.username,
        &ann.password,
        &reg.request_uri,
    );
    let request = reg.request(Some(&authorization));
    let ok = h.send(&request, flow);
    assert_eq!(ok.response.status().0, 200);
    assert!(!ok.effects.is_empty());
    let stored = h.registrar.bindings(ann.user_id)[0].clone();

    // The 200 was lost; the phone retransmits the very same request a second later.
    h.advance(Duration::from_secs(1));
    for _ in 0..2 {
        let again = h.send(&request, flow);
        assert_eq!(again.response.status().0, 200, "{again:?}");
        assert!(again.effects.is_empty(), "{:?}", again.effects);
        assert_eq!(contacts(&again.response).len(), 1);
        assert_eq!(h.registrar.bindings(ann.user_id)[0], &stored);
    }

    // The same bytes from another address are a replay: refused, the binding keeps its flow.
    let replay = h.send(&request, udp("198.51.100.9:5060"));
    assert_eq!(replay.response.status().0, 401);
    assert_eq!(h.registrar.bindings(ann.user_id)[0], &stored);
}

#[test]
fn query_without_contact_lists_bindings_without_changing_them() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 200);
    h.advance(Duration::from_secs(600));
    reg.contacts.clear();
    let query = h.register(&ann, &mut reg, flow);
    assert_eq!(query.response.status().0, 200);
    assert_eq!(
        contacts(&query.response),
        vec!["<sip:201@203.0.113.7:5060>;expires=3000"]
    );
    assert!(query.effects.is_empty());
}

#[test]
fn contact_limit_evicts_the_oldest_or_refuses_an_oversized_request() {
    let mut config = RegistrarConfig::new("node-1");
    config.max_contacts_per_user = 2;
    let mut h = Harness::with_config(config);
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    for port in [5060, 5061, 5062] {
        let mut reg = Reg::new(
            &ann,
            "203.0.113.7:5060",
            &format!("<sip:201@203.0.113.7:{port}>"),
        );
        reg.call_id = format!("c{port}");
        let ok = h.register(&ann, &mut reg, flow);
        assert_eq!(ok.response.status().0, 200);
        h.advance(Duration::from_secs(1));
        if port == 5062 {
            assert_eq!(
                deleted(&ok.effects)[0].key,
                "contact:sip:201@203.0.113.7:5060"
            );
            assert!(events(&ok.effects).iter().any(|e| matches!(
                e,
                RegistrationEvent::Removed {
                    reason: RemovalReason::Evicted,
                    ..
                }
            )));
        }
    }
    let uris: Vec<String> = h
        .registrar
        .bindings(ann.user_id)
        .iter()
        .map(|r| r.contact_uri.clone())
        .collect();
    assert_eq!(
        uris,
        vec!["sip:201@203.0.113.7:5061", "sip:201@203.0.113.7:5062"]
    );

    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:6000>");
    reg.contacts.push("<sip:201@203.0.113.7:6001>".into());
    reg.contacts.push("<sip:201@203.0.113.7:6002>".into());
    let refused = h.register(&ann, &mut reg, flow);
    assert_eq!(refused.response.status().0, 403);
    assert_eq!(h.registrar.binding_count(), 2);
}

#[test]
fn control_plane_can_remove_one_binding_or_a_whole_user() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    reg.contacts.push("<sip:201-b@203.0.113.7:5060>".into());
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 200);
    let key = h.registrar.lookup(ann.user_id)[0].key.clone();
    let removed = h.registrar.remove_binding(&key);
    assert_eq!(deleted(&removed), vec![key.clone()]);
    assert!(matches!(
        events(&removed).as_slice(),
        [RegistrationEvent::Removed {
            reason: RemovalReason::Administrative,
            ..
        }]
    ));
    assert!(h.registrar.remove_binding(&key).is_empty(), "already gone");
    assert_eq!(h.registrar.binding_count(), 1);
    assert_eq!(deleted(&h.registrar.remove_user(ann.user_id)).len(), 1);
    assert_eq!(h.registrar.binding_count(), 0);
    assert_eq!(h.registrar.poll_timeout(), None);
}

#[test]
fn a_contact_refreshed_then_removed_in_one_request_leaves_no_timer_behind() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:5060");
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 200);
    reg.contacts = vec![
        "<sip:201@203.0.113.7:5060>;expires=600".into(),
        "<sip:201@203.0.113.7:5060>;expires=0".into(),
    ];
    let both = h.register(&ann, &mut reg, udp("203.0.113.7:5070"));
    assert_eq!(both.response.status().0, 200);
    assert!(contacts(&both.response).is_empty());
    assert_eq!(deleted(&both.effects).len(), 1);
    assert_eq!(h.registrar.flow_count(), 0);
    assert_eq!(h.registrar.timer_count(), 0);
}
