//! RFC 5626 flows (`+sip.instance`/`reg-id`), RFC 3327 Path, RFC 8599 push parameters.

use std::time::Duration;

use pbx_domain::PushParams;
use pbx_registrar::RegistrationEvent;

use crate::support::*;

const INSTANCE: &str = "urn:uuid:00000000-0000-1000-8000-000A95A0E128";

fn outbound_contact(host: &str, reg_id: u32) -> String {
    format!("<sip:201@{host};transport=tcp;ob>;reg-id={reg_id};+sip.instance=\"<{INSTANCE}>\"")
}

#[test]
fn outbound_registration_stores_the_flow_and_requires_outbound() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let flow = tcp("203.0.113.7:40000", 1);
    let mut reg = Reg::new(&ann, "10.0.0.5:5060", &outbound_contact("10.0.0.5:5060", 1));
    reg.vias = vec!["SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKob;rport".into()];
    reg.extra = vec!["Supported: outbound, path".into()];
    let ok = h.register(&ann, &mut reg, flow);
    assert_eq!(ok.response.status().0, 200, "{:?}", ok.response);
    assert_eq!(header(&ok.response, "Require"), vec!["outbound"]);
    assert_eq!(header(&ok.response, "Supported"), vec!["outbound"]);
    assert_eq!(
        contacts(&ok.response),
        vec![format!(
            "<sip:201@10.0.0.5:5060;transport=tcp;ob>;expires=3600;+sip.instance=\"<{INSTANCE}>\";reg-id=1"
        )]
    );
    let record = &persisted(&ok.effects)[0];
    assert_eq!(record.instance_id.as_deref(), Some(INSTANCE));
    assert_eq!(record.reg_id, Some(1));
    assert_eq!(record.key(), format!("instance:{INSTANCE};reg-id:1"));
    assert_eq!(record.flow.connection_id.as_deref(), Some("1"));
}

#[test]
fn same_instance_and_reg_id_on_a_new_flow_replaces_the_old_flow() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let mut reg = Reg::new(&ann, "10.0.0.5:5060", &outbound_contact("10.0.0.5:5060", 1));
    reg.vias = vec!["SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKob;rport".into()];
    reg.extra = vec!["Supported: outbound".into()];
    assert_eq!(
        h.register(&ann, &mut reg, tcp("203.0.113.7:40000", 1))
            .response
            .status()
            .0,
        200
    );

    // The phone moved networks: new address, new connection, same instance and reg-id.
    h.advance(Duration::from_secs(10));
    reg.contacts = vec![outbound_contact("192.168.1.20:5060", 1)];
    let moved = h.register(&ann, &mut reg, tcp("198.51.100.77:50000", 2));
    assert_eq!(moved.response.status().0, 200);
    assert!(
        deleted(&moved.effects).is_empty(),
        "same key: refreshed in place"
    );
    assert!(matches!(
        events(&moved.effects).as_slice(),
        [RegistrationEvent::Refreshed { .. }]
    ));
    let targets = h.registrar.lookup(ann.user_id);
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].flow.source, addr("198.51.100.77:50000"));
    assert_eq!(targets[0].flow.connection, Some(2));
    assert_eq!(
        targets[0].request_uri.to_string(),
        "sip:201@192.168.1.20:5060;transport=tcp;ob"
    );
    assert_eq!(
        h.registrar.flow_count(),
        1,
        "the old flow is no longer kept alive"
    );

    // A second reg-id is a second flow of the same instance.
    reg.contacts = vec![outbound_contact("192.168.1.20:5060", 2)];
    let second = h.register(&ann, &mut reg, tcp("198.51.100.77:50001", 3));
    assert_eq!(contacts(&second.response).len(), 2);
    assert_eq!(h.registrar.lookup(ann.user_id).len(), 2);
}

#[test]
fn path_is_stored_echoed_and_used_as_route_set() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let edge = udp("192.0.2.200:5060");
    let mut reg = Reg::new(&ann, "10.0.0.5:5060", "<sip:201@10.0.0.5:5060>");
    reg.vias = vec![
        "SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKedge".into(),
        "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKphone;rport".into(),
    ];
    reg.extra = vec![
        "Path: <sip:edge.example.net;lr;ob>".into(),
        "Supported: path".into(),
    ];
    let ok = h.register(&ann, &mut reg, edge);
    assert_eq!(ok.response.status().0, 200);
    assert_eq!(
        header(&ok.response, "Path"),
        vec!["<sip:edge.example.net;lr;ob>"]
    );
    assert_eq!(header(&ok.response, "Supported"), vec!["path"]);
    assert_eq!(
        persisted(&ok.effects)[0].path,
        vec!["<sip:edge.example.net;lr;ob>"]
    );
    let targets = h.registrar.lookup(ann.user_id);
    assert_eq!(targets[0].route, vec!["<sip:edge.example.net;lr;ob>"]);
    assert_eq!(targets[0].flow.source, addr("192.0.2.200:5060"));

    // Without `Supported: path` the Path is kept but not echoed.
    reg.extra = vec!["Path: <sip:edge.example.net;lr>".into()];
    let quiet = h.register(&ann, &mut reg, edge);
    assert!(header(&quiet.response, "Path").is_empty());
    assert_eq!(
        persisted(&quiet.effects)[0].path,
        vec!["<sip:edge.example.net;lr>"]
    );
}

#[test]
fn outbound_through_a_proxy_without_outbound_support_gets_439() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_desk.clone();
    let mut reg = Reg::new(&ann, "10.0.0.5:5060", &outbound_contact("10.0.0.5:5060", 1));
    reg.vias = vec![
        "SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKedge".into(),
        "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKphone;rport".into(),
    ];
    reg.extra = vec!["Supported: outbound".into()];
    let refused = h.register(&ann, &mut reg, udp("192.0.2.200:5060"));
    assert_eq!(refused.response.status().0, 439);
    assert_eq!(h.registrar.binding_count(), 0);
    reg.extra.push("Path: <sip:edge.example.net;lr;ob>".into());
    assert_eq!(
        h.register(&ann, &mut reg, udp("192.0.2.200:5060"))
            .response
            .status()
            .0,
        200
    );
}

#[test]
fn push_parameters_are_stored_with_the_binding() {
    let mut h = Harness::new();
    let ann = h.accounts.ann_mobile.clone();
    let contact = "<sip:201@10.1.2.3:5060;pn-provider=apns;pn-prid=00fc13adff78512;pn-param=ABCD1234.com.example.voip>";
    let mut reg = Reg::new(&ann, "10.1.2.3:5060", contact);
    let ok = h.register(&ann, &mut reg, udp("203.0.113.30:33000"));
    assert_eq!(ok.response.status().0, 200);
    let expected = PushParams {
        provider: "apns".into(),
        prid: "00fc13adff78512".into(),
        param: Some("ABCD1234.com.example.voip".into()),
    };
    assert_eq!(persisted(&ok.effects)[0].push.as_ref(), Some(&expected));
    assert_eq!(
        h.registrar.lookup(ann.user_id)[0].push.as_ref(),
        Some(&expected)
    );

    // Header-parameter form (some apps put them after the URI).
    let mut reg = Reg::new(
        &ann,
        "10.1.2.4:5060",
        "<sip:201@10.1.2.4:5060>;pn-provider=fcm;pn-prid=tok",
    );
    let ok = h.register(&ann, &mut reg, udp("203.0.113.31:33000"));
    let record = persisted(&ok.effects).pop().unwrap();
    assert_eq!(
        record.push.map(|p| (p.provider, p.prid, p.param)),
        Some(("fcm".into(), "tok".into(), None))
    );
}
