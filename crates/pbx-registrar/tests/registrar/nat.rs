//! NAT traversal (requests go to the flow) and SIP ALG detection.

use pbx_registrar::{AlgReason, RegistrationEvent, detect_alg};

use crate::support::*;

/// A REGISTER from a device with this Via sent-by (and rport flag) and Contact.
fn request(via: &str, contact: &str) -> pbx_sip::Request {
    let (_, accounts) = directory();
    let mut reg = Reg::new(&accounts.ann_desk, "unused", contact);
    reg.vias = vec![format!("SIP/2.0/UDP {via};branch=z9hG4bKalg")];
    reg.request(None)
}

fn reason(via: &str, contact: &str, flow: pbx_registrar::FlowInfo) -> Option<AlgReason> {
    detect_alg(&request(via, contact), &flow).map(|s| s.reason)
}

#[test]
fn private_contact_behind_public_source_is_nat_not_alg() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let mut reg = Reg::new(&ann, "192.168.1.10:5060", "<sip:201@192.168.1.10:5060>");
    let ok = h.register(&ann, &mut reg, udp("203.0.113.7:61234"));
    assert_eq!(ok.response.status().0, 200);
    let record = &persisted(&ok.effects)[0];
    assert!(!record.sip_alg_detected);
    assert_eq!(record.sip_alg_reason, None);
    assert_eq!(record.flow.source, addr("203.0.113.7:61234"));
    assert!(matches!(
        events(&ok.effects).as_slice(),
        [RegistrationEvent::Registered {
            behind_nat: true,
            ..
        }]
    ));
    let target = &h.registrar.lookup(ann.user_id)[0];
    assert!(target.behind_nat);
    assert_eq!(
        target.flow.source,
        addr("203.0.113.7:61234"),
        "send to the NAT's public side"
    );
    assert_eq!(target.flow.local, addr(LOCAL));
    assert_eq!(target.request_uri.to_string(), "sip:201@192.168.1.10:5060");
}

#[test]
fn alg_patterns_are_recognised() {
    let public = udp("203.0.113.7:61234");
    // Via and Contact rewritten to the public IP, the device's port kept, no rport.
    assert_eq!(
        reason("203.0.113.7:5060", "<sip:201@203.0.113.7:5060>", public),
        Some(AlgReason::ViaPortRewritten)
    );
    // Contact rewritten, Via still private.
    assert_eq!(
        reason(
            "192.168.1.10:5060;rport",
            "<sip:201@203.0.113.7:61234>",
            public
        ),
        Some(AlgReason::PartialRewrite)
    );
    // Via rewritten, Contact still private.
    assert_eq!(
        reason(
            "203.0.113.7:61234;rport",
            "<sip:201@192.168.1.10:5060>",
            public
        ),
        Some(AlgReason::PartialRewrite)
    );
    // Only the Contact rewritten to the public IP with the device's port.
    assert_eq!(
        reason(
            "203.0.113.7:61234;rport",
            "<sip:201@203.0.113.7:5060>",
            public
        ),
        Some(AlgReason::ContactPortRewritten)
    );
    // A `received` naming another address: a middlebox stamped the Via.
    assert_eq!(
        reason(
            "192.168.1.10:5060;received=10.9.9.9",
            "<sip:201@192.168.1.10:5060>",
            public
        ),
        Some(AlgReason::ForeignReceived)
    );
    // A `received` the engine would not have added (sent-by equals the source, no rport).
    assert_eq!(
        reason(
            "203.0.113.7:61234;received=203.0.113.7",
            "<sip:201@203.0.113.7:61234>",
            public
        ),
        Some(AlgReason::ForeignReceived)
    );
}

#[test]
fn clean_messages_are_not_flagged() {
    let public = udp("203.0.113.7:61234");
    // Plain NAT: private everywhere, public source.
    assert_eq!(
        reason(
            "192.168.1.10:5060;rport",
            "<sip:201@192.168.1.10:5060>",
            public
        ),
        None
    );
    // The engine's own stamp (received + rport filled) on a NATed request.
    assert_eq!(
        reason(
            "192.168.1.10:5060;rport=61234;received=203.0.113.7",
            "<sip:201@192.168.1.10:5060>",
            public
        ),
        None
    );
    // A device on a public address.
    assert_eq!(
        reason("203.0.113.7:61234", "<sip:201@203.0.113.7:61234>", public),
        None
    );
    // rport requested: the device knows it may be NATed (STUN-aware phones).
    assert_eq!(
        reason(
            "203.0.113.7:5060;rport",
            "<sip:201@203.0.113.7:61234>",
            public
        ),
        None
    );
    // TCP: the source port is ephemeral, the Via/Contact port is the listening port.
    assert_eq!(
        reason(
            "203.0.113.7:5060",
            "<sip:201@203.0.113.7:5060;transport=tcp>",
            tcp("203.0.113.7:49152", 1)
        ),
        None
    );
    // Host names are not compared.
    assert_eq!(
        reason(
            "phone.example.com:5060",
            "<sip:201@phone.example.com>",
            public
        ),
        None
    );
    // A LAN deployment: private source, private headers.
    assert_eq!(
        reason(
            "10.0.0.5:5060",
            "<sip:201@10.0.0.5:5060>",
            udp("10.0.0.5:5060")
        ),
        None
    );
}

#[test]
fn alg_suspicion_is_recorded_on_the_binding_and_published() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let mut reg = Reg::new(&ann, "203.0.113.7:5060", "<sip:201@203.0.113.7:5060>");
    reg.vias = vec!["SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKalg".into()];
    let ok = h.register(&ann, &mut reg, udp("203.0.113.7:61234"));
    assert_eq!(ok.response.status().0, 200);
    let record = &persisted(&ok.effects)[0];
    assert!(record.sip_alg_detected);
    assert_eq!(
        record.sip_alg_reason.as_deref(),
        Some("via_public_ip_with_unmapped_port")
    );
    let events = events(&ok.effects);
    assert!(events.iter().any(|e| matches!(
        e,
        RegistrationEvent::AlgSuspected {
            reason: AlgReason::ViaPortRewritten,
            ..
        }
    )));
    let alg_event = events
        .iter()
        .find(|e| e.kind() == "registration.alg_suspected")
        .unwrap();
    let entry = alg_event.to_domain_event(pbx_domain::EventId::from_parts(1, &[1; 10]), 5);
    assert_eq!(entry.tenant_id, Some(ann.tenant_id));
    assert_eq!(entry.payload["reason"], "via_port_rewritten");

    // The router's ALG was switched off: the next refresh clears the flag.
    reg.vias = vec!["SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKalg;rport".into()];
    reg.contacts = vec!["<sip:201@192.168.1.10:5060>".into()];
    let clean = h.register(&ann, &mut reg, udp("203.0.113.7:61234"));
    let record = persisted(&clean.effects).pop().unwrap();
    assert!(!record.sip_alg_detected);
}
