//! Expiry, keep-alive probes and failures, closed flows, restore after a restart.

use std::time::Duration;

use pbx_registrar::{
    Effect, Ping, PingKind, Registrar, RegistrarConfig, RegistrationEvent, RemovalReason,
};
use pbx_sip::{HeaderName, Method};

use crate::support::*;

fn pings(effects: &[Effect]) -> Vec<Ping> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Ping(ping) => Some(ping.clone()),
            _ => None,
        })
        .collect()
}

/// Jumps to the next deadline and runs the timers.
fn step(h: &mut Harness) -> Vec<Effect> {
    let deadline = h.registrar.poll_timeout().expect("a deadline");
    h.clock.jump_to(deadline);
    let now = h.now();
    h.registrar.handle_timeout(now)
}

#[test]
fn bindings_expire_through_handle_timeout() {
    let mut config = RegistrarConfig::new("node-1");
    config.udp_keepalive = Duration::from_secs(3600);
    let mut h = Harness::with_config(config);
    let ann = h.accounts.ann_desk.clone();
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    reg.expires = Some(120);
    assert_eq!(
        h.register(&ann, &mut reg, udp("203.0.113.7:5060"))
            .response
            .status()
            .0,
        200
    );
    let start = h.clock.now();
    assert_eq!(
        h.registrar.poll_timeout(),
        Some(start + Duration::from_secs(120))
    );

    h.advance(Duration::from_secs(119));
    let now = h.now();
    assert!(h.registrar.handle_timeout(now).is_empty(), "not yet");
    let effects = step(&mut h);
    assert_eq!(h.clock.since_start(h.clock.now()), Duration::from_secs(120));
    let gone = deleted(&effects);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].user_id, ann.user_id);
    assert!(matches!(
        events(&effects).as_slice(),
        [RegistrationEvent::Removed {
            reason: RemovalReason::Expired,
            ..
        }]
    ));
    assert!(h.registrar.lookup(ann.user_id).is_empty());
    assert_eq!(
        h.registrar.poll_timeout(),
        None,
        "keep-alive stops with the last binding"
    );
}

#[test]
fn udp_flows_get_options_pings_and_are_dropped_after_repeated_failures() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = udp("203.0.113.7:61234");
    let mut reg = Reg::new(&ann, "192.168.1.10:5060", "<sip:201@192.168.1.10:5060>");
    reg.extra = vec!["Path: <sip:edge.example.net;lr>".into()];
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 200);

    let effects = step(&mut h);
    assert_eq!(h.clock.since_start(h.clock.now()), Duration::from_secs(25));
    let sent = pings(&effects);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].flow, flow);
    let PingKind::Options(request) = &sent[0].kind else {
        panic!("UDP flows get OPTIONS");
    };
    assert_eq!(request.method(), &Method::Options);
    assert_eq!(request.uri().to_string(), "sip:201@192.168.1.10:5060");
    request.validate().unwrap();
    let via = request.top_via().unwrap();
    assert!(via.is_rfc3261_branch());
    assert_eq!(via.sent_by().1, Some(5060));
    assert_eq!(
        request.headers().get(&HeaderName::Route),
        Some(&b"<sip:edge.example.net;lr>"[..])
    );
    assert!(request.from().unwrap().tag.is_some());

    // A success resets the count; three failures in a row remove the binding.
    let now = h.now();
    assert!(
        h.registrar
            .handle_ping_result(sent[0].id, true, now)
            .is_empty()
    );
    let mut removed = Vec::new();
    for attempt in 0..3 {
        let effects = step(&mut h);
        let ping = pings(&effects).pop().expect("a ping each interval");
        let now = h.now();
        removed = h.registrar.handle_ping_result(ping.id, false, now);
        if attempt < 2 {
            assert!(removed.is_empty(), "attempt {attempt}");
            assert_eq!(h.registrar.binding_count(), 1);
        }
    }
    assert_eq!(deleted(&removed).len(), 1);
    assert!(matches!(
        events(&removed).as_slice(),
        [RegistrationEvent::Removed {
            reason: RemovalReason::Unreachable,
            ..
        }]
    ));
    assert_eq!(h.registrar.binding_count(), 0);
    assert_eq!(h.registrar.flow_count(), 0);
    assert_eq!(h.registrar.poll_timeout(), None);
}

#[test]
fn unanswered_pings_count_as_failures_and_stale_results_are_ignored() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let mut reg = Reg::new(&ann, "192.168.1.10:5060", "<sip:201@192.168.1.10:5060>");
    assert_eq!(
        h.register(&ann, &mut reg, udp("203.0.113.7:61234"))
            .response
            .status()
            .0,
        200
    );
    let first = pings(&step(&mut h)).pop().unwrap();
    let second = pings(&step(&mut h)).pop().unwrap();
    assert_ne!(first.id, second.id);
    let now = h.now();
    assert!(
        h.registrar
            .handle_ping_result(first.id, false, now)
            .is_empty(),
        "superseded"
    );
    let third = step(&mut h);
    assert_eq!(pings(&third).len(), 1, "second failure, still below 3");
    let fourth = step(&mut h);
    assert_eq!(deleted(&fourth).len(), 1, "third unanswered ping");
    assert!(pings(&fourth).is_empty());
}

#[test]
fn stream_flows_get_crlf_pings_and_a_closed_connection_removes_its_outbound_bindings() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = tcp("203.0.113.7:50000", 42);
    let mut reg = Reg::new(
        &ann,
        "192.168.1.10:5060",
        "<sip:201@192.168.1.10:5060;transport=tcp>",
    );
    reg.vias = vec!["SIP/2.0/TCP 192.168.1.10:5060;branch=z9hG4bKt".into()];
    assert_eq!(h.register(&ann, &mut reg, flow).response.status().0, 200);
    let effects = step(&mut h);
    assert_eq!(h.clock.since_start(h.clock.now()), Duration::from_secs(60));
    let sent = pings(&effects);
    assert!(matches!(
        sent.as_slice(),
        [Ping {
            kind: PingKind::Crlf,
            ..
        }]
    ));
    assert_eq!(sent[0].flow.connection, Some(42));

    // A plain RFC 3261 binding outlives its connection (a request opens a new one; the
    // keep-alive removes it if the device is gone).
    let now = h.now();
    let closed = h.registrar.handle_flow_closed(&flow, now);
    assert!(deleted(&closed).is_empty());
    assert_eq!(h.registrar.lookup(ann.user_id).len(), 1);

    // An RFC 5626 outbound binding is the flow: it goes when the connection closes.
    let outbound_flow = tcp("203.0.113.7:50001", 43);
    let mut outbound = Reg::new(
        &ann,
        "192.168.1.10:5062",
        "<sip:201@192.168.1.10:5062;transport=tcp>;reg-id=1;\
         +sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000201>\"",
    );
    outbound.vias = vec!["SIP/2.0/TCP 192.168.1.10:5062;branch=z9hG4bKo".into()];
    assert_eq!(
        h.register(&ann, &mut outbound, outbound_flow)
            .response
            .status()
            .0,
        200
    );
    assert_eq!(h.registrar.lookup(ann.user_id).len(), 2);
    let now = h.now();
    let closed = h.registrar.handle_flow_closed(&outbound_flow, now);
    assert_eq!(deleted(&closed).len(), 1);
    assert!(matches!(
        events(&closed).as_slice(),
        [RegistrationEvent::Removed {
            reason: RemovalReason::FlowClosed,
            ..
        }]
    ));
    let left = h.registrar.lookup(ann.user_id);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].flow, flow);
}

#[test]
fn one_ping_per_flow_however_many_bindings_share_it() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let bob = h.accounts.bob.clone();
    let flow = udp("203.0.113.7:61234");
    let mut a = Reg::new(&ann, "192.168.1.10:5060", "<sip:201@192.168.1.10:5060>");
    a.contacts.push("<sip:201-line2@192.168.1.10:5060>".into());
    assert_eq!(h.register(&ann, &mut a, flow).response.status().0, 200);
    let mut b = Reg::new(&bob, "192.168.1.10:5060", "<sip:202@192.168.1.10:5060>");
    assert_eq!(h.register(&bob, &mut b, flow).response.status().0, 200);
    assert_eq!(h.registrar.binding_count(), 3);
    assert_eq!(h.registrar.flow_count(), 1);
    let effects = step(&mut h);
    assert_eq!(pings(&effects).len(), 1);
    // A refresh on the flow postpones the next probe.
    h.advance(Duration::from_secs(20));
    assert_eq!(h.register(&bob, &mut b, flow).response.status().0, 200);
    let refreshed_at = h.clock.now();
    assert_eq!(
        h.registrar.poll_timeout(),
        Some(refreshed_at + Duration::from_secs(25))
    );
}

#[test]
fn bindings_survive_a_restart() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let bob = h.accounts.bob.clone();
    let mut a = Reg::new(&ann, "192.168.1.10:5060", "<sip:201@192.168.1.10:5060>");
    a.expires = Some(3600);
    let mut stored = persisted(&h.register(&ann, &mut a, udp("203.0.113.7:61234")).effects);
    let mut b = Reg::new(
        &bob,
        "10.0.0.8:5060",
        "<sip:202@10.0.0.8:5060;transport=tcp>",
    );
    b.vias = vec!["SIP/2.0/TCP 10.0.0.8:5060;branch=z9hG4bKb".into()];
    b.expires = Some(120);
    stored.extend(persisted(
        &h.register(&bob, &mut b, tcp("198.51.100.9:40000", 5))
            .effects,
    ));
    assert_eq!(stored.len(), 2);

    // The process restarts 10 minutes later: bob's binding expired meanwhile.
    h.advance(Duration::from_secs(600));
    h.registrar = Registrar::new(RegistrarConfig::new("node-1"), REALM, 1234).unwrap();
    let now = h.now();
    let effects = h.registrar.restore(stored.clone(), now);
    let gone = deleted(&effects);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].user_id, bob.user_id);
    let targets = h.registrar.lookup(ann.user_id);
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0].flow.source,
        addr("203.0.113.7:61234"),
        "still reachable over its flow"
    );
    assert!(targets[0].behind_nat);
    let left = h.registrar.poll_timeout().unwrap();
    assert_eq!(
        left,
        h.clock.now() + Duration::from_secs(25),
        "keep-alive resumes"
    );

    // A refresh after the restart finds the restored binding (same Call-ID, higher CSeq).
    let ok = h.register(&ann, &mut a, udp("203.0.113.7:61234"));
    assert_eq!(
        contacts(&ok.response),
        vec!["<sip:201@192.168.1.10:5060>;expires=3600"]
    );
    assert!(matches!(
        events(&ok.effects).as_slice(),
        [RegistrationEvent::Refreshed { .. }]
    ));

    // Restored stream flows lose their (old process) connection id.
    let mut h2 = Harness::new();
    let mut record = stored[1].clone();
    record.expires_at_ms = START_UNIX_MS + 3_600_000;
    let now = h2.now();
    assert!(h2.registrar.restore(vec![record], now).is_empty());
    assert_eq!(h2.registrar.lookup(bob.user_id)[0].flow.connection, None);
}

#[test]
fn restored_flows_are_probed_spread_over_one_interval() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let mut stored = Vec::new();
    for port in 0..10u16 {
        let source = format!("203.0.113.7:{}", 40000 + port);
        let mut reg = Reg::new(
            &ann,
            "192.168.1.10:5060",
            &format!("<sip:201-{port}@192.168.1.10:5060>"),
        );
        stored.extend(persisted(&h.register(&ann, &mut reg, udp(&source)).effects));
    }
    h.registrar = Registrar::new(RegistrarConfig::new("node-1"), REALM, 5).unwrap();
    let now = h.now();
    assert!(h.registrar.restore(stored, now).is_empty());
    assert_eq!(h.registrar.binding_count(), 10);
    let start = h.clock.now();
    let mut times = Vec::new();
    while h.registrar.poll_timeout().unwrap() <= start + Duration::from_secs(25) {
        let effects = step(&mut h);
        times.extend(
            pings(&effects)
                .iter()
                .map(|_| h.clock.since_start(h.clock.now())),
        );
    }
    assert_eq!(times.len(), 10);
    assert_eq!(times[0], Duration::from_millis(2500));
    assert_eq!(times[9], Duration::from_secs(25));
}

#[test]
fn configuration_is_validated() {
    use pbx_registrar::ConfigError;
    let base = RegistrarConfig::new("node-1");
    let check = |config: RegistrarConfig| Registrar::new(config, REALM, 1).err();
    assert_eq!(check(base.clone()), None);
    assert_eq!(
        check(RegistrarConfig {
            node_id: String::new(),
            ..base.clone()
        }),
        Some(ConfigError::EmptyNodeId)
    );
    assert_eq!(
        check(RegistrarConfig {
            min_expires_secs: 4000,
            ..base.clone()
        }),
        Some(ConfigError::ExpiryOrder)
    );
    assert_eq!(
        check(RegistrarConfig {
            max_contacts_per_user: 0,
            ..base.clone()
        }),
        Some(ConfigError::NoContacts)
    );
    assert_eq!(
        check(RegistrarConfig {
            udp_keepalive: Duration::ZERO,
            ..base.clone()
        }),
        Some(ConfigError::ZeroKeepalive)
    );
    assert_eq!(
        check(RegistrarConfig {
            keepalive_failure_threshold: 0,
            ..base.clone()
        }),
        Some(ConfigError::ZeroFailureThreshold)
    );
    assert_eq!(
        check(RegistrarConfig {
            keepalive_from_user: "a b".into(),
            ..base.clone()
        }),
        Some(ConfigError::InvalidKeepaliveUser)
    );
    assert_eq!(
        Registrar::new(base, "bad realm", 1).err(),
        Some(ConfigError::InvalidRealm)
    );
}
