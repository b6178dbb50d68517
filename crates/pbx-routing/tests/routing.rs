//! Routing snapshot: outbound routes with failover order, caller ID, inbound decisions.

// Reason: test code; helpers outside #[test] functions report failures by unwrapping.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use pbx_domain::{
    E164, NumberId, PhoneNumber, Route, RouteId, RouteTrunk, TenantCallSettings, TenantId,
    Transport, Trunk, TrunkAuth, TrunkId, TrunkMode, UserId, parse_network,
};
use pbx_routing::{
    Dialled, InboundDecision, NoRoute, RoutingParts, RoutingSnapshot, should_fail_over,
};

fn id<T>(make: fn(u64, &[u8; 10]) -> T, n: u8) -> T {
    make(1_700_000_000_000 + u64::from(n), &[n; 10])
}

fn trunk(n: u8, tenant: Option<TenantId>, priority: i32, networks: &[&str]) -> Trunk {
    Trunk {
        id: id(TrunkId::from_parts, n),
        tenant_id: tenant,
        name: format!("trunk-{n}"),
        host: format!("carrier{n}.example.net"),
        port: 5060,
        transport: Transport::Udp,
        mode: TrunkMode::Digest,
        auth_username: Some(format!("acct{n}")),
        has_password: true,
        auth_realm: None,
        register_user: None,
        register: n == 1,
        register_expires_secs: 300,
        caller_identity: pbx_domain::CallerIdentity::Pai,
        inbound_networks: networks.iter().map(|n| parse_network(n).unwrap()).collect(),
        priority,
        enabled: true,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn route(
    n: u8,
    tenant: Option<TenantId>,
    prefix: &str,
    trunks: &[(TrunkId, Option<i32>)],
) -> Route {
    Route {
        id: id(RouteId::from_parts, n),
        tenant_id: tenant,
        prefix: prefix.to_owned(),
        trunks: trunks
            .iter()
            .map(|(trunk_id, priority)| RouteTrunk {
                trunk_id: *trunk_id,
                priority: *priority,
            })
            .collect(),
        description: String::new(),
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn number(n: u8, e164: &str, tenant: TenantId, user: Option<UserId>) -> PhoneNumber {
    PhoneNumber {
        id: id(NumberId::from_parts, n),
        e164: E164::parse(e164).unwrap(),
        tenant_id: Some(tenant),
        user_id: user,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

struct World {
    acme: TenantId,
    other: TenantId,
    ann: UserId,
    bob: UserId,
    operator_a: TrunkId,
    operator_b: TrunkId,
    acme_own: TrunkId,
    other_own: TrunkId,
    snapshot: RoutingSnapshot,
}

fn world() -> World {
    let acme = id(TenantId::from_parts, 1);
    let other = id(TenantId::from_parts, 2);
    let ann = id(UserId::from_parts, 1);
    let bob = id(UserId::from_parts, 2);
    let t1 = trunk(1, None, 10, &["192.0.2.0/28"]);
    let t2 = trunk(2, None, 20, &["198.51.100.7"]);
    let t3 = trunk(3, Some(acme), 5, &["203.0.113.0/24"]);
    let t4 = trunk(4, Some(other), 5, &["2001:db8::/32"]);
    let mut disabled = trunk(5, None, 1, &["192.0.2.100"]);
    disabled.enabled = false;
    let auth = |n: u8| {
        Some(TrunkAuth {
            username: format!("acct{n}"),
            password: format!("pw{n}"),
        })
    };
    let parts = RoutingParts {
        routes: vec![
            // Operator default: everything via trunk 2 then trunk 1 (by trunk priority: 1 first).
            route(
                1,
                None,
                "",
                &[(t2.id, None), (t1.id, None), (disabled.id, None)],
            ),
            // Operator: UK only via trunk 2 (route priority overrides).
            route(2, None, "44", &[(t1.id, Some(50)), (t2.id, Some(1))]),
            // Acme: Dutch mobiles through its own trunk first, then the operator's trunk 1.
            route(3, Some(acme), "316", &[(t3.id, None), (t1.id, None)]),
            // Acme tries to use another tenant's trunk: skipped.
            route(4, Some(acme), "49", &[(t4.id, None)]),
            // Emergency route.
            route(5, None, "112", &[(t1.id, None)]),
        ],
        trunks: vec![
            (t1.clone(), auth(1)),
            (t2.clone(), auth(2)),
            (t3.clone(), auth(3)),
            (t4.clone(), None),
            (disabled, None),
        ],
        settings: vec![
            TenantCallSettings {
                tenant_id: acme,
                country: "NL".into(),
                main_number: Some(E164::parse("+31201110000").unwrap()),
            },
            TenantCallSettings {
                tenant_id: other,
                country: "DE".into(),
                main_number: None,
            },
        ],
        numbers: vec![
            number(1, "+31201110001", acme, Some(ann)),
            number(2, "+31201110002", acme, None),
            number(3, "+4930123456", other, Some(bob)),
        ],
    };
    World {
        acme,
        other,
        ann,
        bob,
        operator_a: t1.id,
        operator_b: t2.id,
        acme_own: t3.id,
        other_own: t4.id,
        snapshot: RoutingSnapshot::build(parts),
    }
}

fn order(world: &World, tenant: TenantId, digits: &str) -> Result<Vec<TrunkId>, NoRoute> {
    Ok(world
        .snapshot
        .outbound(tenant, digits)?
        .map(|target| target.trunk_id)
        .collect())
}

#[test]
fn longest_prefix_and_priority_order() {
    let w = world();
    // Default route, ordered by trunk priority (10 before 20), disabled trunk skipped.
    assert_eq!(
        order(&w, w.acme, "31201234567").unwrap(),
        vec![w.operator_a, w.operator_b]
    );
    // Operator UK route: route-entry priorities put trunk 2 first.
    assert_eq!(
        order(&w, w.acme, "442079460018").unwrap(),
        vec![w.operator_b, w.operator_a]
    );
    // Acme's own longer prefix.
    assert_eq!(
        order(&w, w.acme, "31612345678").unwrap(),
        vec![w.acme_own, w.operator_a]
    );
    // Another tenant does not see acme's route.
    assert_eq!(
        order(&w, w.other, "31612345678").unwrap(),
        vec![w.operator_a, w.operator_b]
    );
    // Acme's route to another tenant's trunk has nothing usable.
    assert_eq!(order(&w, w.acme, "4930123"), Err(NoRoute::NoUsableTrunk));
    assert_eq!(NoRoute::NoUsableTrunk.status(), 503);
    // The other tenant's own trunk is not on any of its routes: operator default applies.
    assert!(
        !order(&w, w.other, "4930123")
            .unwrap()
            .contains(&w.other_own)
    );
    // Emergency short code routed as dialled.
    let mut emergency = w.snapshot.outbound(w.acme, "112").unwrap();
    assert_eq!(emergency.remaining(), 1);
    let target = emergency.next().unwrap();
    // A name on the default port: RFC 3263 (NAPTR/SRV) picks the port, the URI has none.
    assert_eq!(target.request_uri, "sip:112@carrier1.example.net");
    assert!(emergency.next().is_none());
}

#[test]
fn no_route_without_default() {
    let snapshot = RoutingSnapshot::build(RoutingParts::default());
    let tenant = id(TenantId::from_parts, 9);
    assert_eq!(
        snapshot.outbound(tenant, "31201234567").err(),
        Some(NoRoute::NoMatchingRoute)
    );
    assert_eq!(NoRoute::NoMatchingRoute.status(), 404);
}

#[test]
fn targets_carry_credentials_and_uri() {
    let w = world();
    let mut targets = w.snapshot.outbound(w.acme, "31612345678").unwrap();
    let first = targets.next().unwrap();
    assert_eq!(first.request_uri, "sip:+31612345678@carrier3.example.net");
    assert_eq!(first.auth.as_ref().unwrap().username, "acct3");
    assert_eq!(first.transport, Transport::Udp);
}

#[test]
fn failover_statuses() {
    assert!(should_fail_over(None));
    assert!(should_fail_over(Some(503)));
    assert!(should_fail_over(Some(500)));
    assert!(should_fail_over(Some(408)));
    assert!(!should_fail_over(Some(486)));
    assert!(!should_fail_over(Some(404)));
    assert!(!should_fail_over(Some(603)));
    assert!(!should_fail_over(Some(200)));
}

#[test]
fn caller_id_selection() {
    let w = world();
    let ann = w
        .snapshot
        .caller_id(w.acme, Some(w.ann), Some("Ann"), false);
    assert_eq!(ann.number.unwrap().as_str(), "+31201110001");
    // A user without a DID presents the tenant's main number.
    let nobody = id(UserId::from_parts, 77);
    let main = w.snapshot.caller_id(w.acme, Some(nobody), None, true);
    assert_eq!(main.number.as_ref().unwrap().as_str(), "+31201110000");
    assert_eq!(main.privacy(), Some("id"));
    // Bob's number is another tenant's: never presented for acme.
    let cross = w.snapshot.caller_id(w.acme, Some(w.bob), None, false);
    assert_eq!(cross.number.unwrap().as_str(), "+31201110000");
    // Tenant without a main number and a user without DID: no number.
    assert_eq!(
        w.snapshot.caller_id(w.other, None, None, false).number,
        None
    );
}

#[test]
fn inbound_decisions() {
    let w = world();
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    assert_eq!(
        w.snapshot.inbound(ip("8.8.8.8"), "+31201110001"),
        InboundDecision::NotFromTrunk
    );
    assert_eq!(InboundDecision::NotFromTrunk.refusal(), Some(403));
    // Operator trunk, number in +, 00, bare and national form.
    for called in ["+31201110001", "0031201110001", "31201110001", "0201110001"] {
        assert_eq!(
            w.snapshot.inbound(ip("192.0.2.5"), called),
            InboundDecision::User {
                trunk_id: w.operator_a,
                tenant_id: w.acme,
                user_id: w.ann,
                number: E164::parse("+31201110001").unwrap(),
            },
            "{called}"
        );
    }
    // IPv4-mapped source.
    assert!(matches!(
        w.snapshot
            .inbound(ip("::ffff:198.51.100.7"), "+31201110001"),
        InboundDecision::User { .. }
    ));
    // Outside the /28.
    assert_eq!(
        w.snapshot.inbound(ip("192.0.2.16"), "+31201110001"),
        InboundDecision::NotFromTrunk
    );
    // Unassigned and unknown numbers: 404.
    let unassigned = w.snapshot.inbound(ip("192.0.2.5"), "+31201110002");
    assert!(matches!(unassigned, InboundDecision::Unassigned { .. }));
    assert_eq!(unassigned.refusal(), Some(404));
    assert!(matches!(
        w.snapshot.inbound(ip("192.0.2.5"), "+31209999999"),
        InboundDecision::UnknownNumber { .. }
    ));
    assert!(matches!(
        w.snapshot.inbound(ip("192.0.2.5"), "garbage"),
        InboundDecision::UnknownNumber { .. }
    ));
    // Acme's own trunk does not deliver the other tenant's number.
    assert!(matches!(
        w.snapshot.inbound(ip("203.0.113.9"), "+4930123456"),
        InboundDecision::UnknownNumber { .. }
    ));
    // The other tenant's IPv6 trunk delivers its own number.
    assert!(matches!(
        w.snapshot.inbound(ip("2001:db8::5"), "+4930123456"),
        InboundDecision::User { user_id, .. } if user_id == w.bob
    ));
    // The disabled trunk's address is not a trunk.
    assert_eq!(
        w.snapshot.inbound(ip("192.0.2.100"), "+31201110001"),
        InboundDecision::NotFromTrunk
    );
}

#[test]
fn tenant_plans() {
    let w = world();
    assert_eq!(w.snapshot.plan(w.other).country(), "DE");
    assert_eq!(
        w.snapshot.normalise(w.other, "030 1234567").unwrap(),
        Dialled::External(E164::parse("+49301234567").unwrap())
    );
    assert_eq!(
        w.snapshot.normalise(w.acme, "0201234567").unwrap(),
        Dialled::External(E164::parse("+31201234567").unwrap())
    );
    assert_eq!(w.snapshot.registering_trunks().count(), 1);
}

#[test]
fn a_trunk_port_is_explicit_unless_a_host_name_has_the_default() {
    use pbx_routing::explicit_port;
    let name = "carrier.example.net";
    assert_eq!(explicit_port(name, 5060, Transport::Udp), None);
    assert_eq!(
        explicit_port(name, 5060, Transport::Tls),
        None,
        "the API's default"
    );
    assert_eq!(explicit_port(name, 5061, Transport::Tls), None);
    assert_eq!(explicit_port(name, 5061, Transport::Udp), Some(5061));
    assert_eq!(explicit_port(name, 5080, Transport::Tcp), Some(5080));
    assert_eq!(explicit_port("192.0.2.1", 5060, Transport::Udp), Some(5060));
    assert_eq!(
        explicit_port("[2001:db8::1]", 5060, Transport::Udp),
        Some(5060)
    );
}
