//! RFC 3263 carrier resolution against a DNS responder on loopback (pbx-test-support's
//! `DnsServer`): IP literal, explicit port, NAPTR → SRV → A, SRV only, A only, SRV priority
//! and weight, the background refresh after the TTL, and the last good answer kept while
//! DNS fails. Nothing here asks a real name server.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use pbx_domain::Transport;
use pbx_server::dns::{CarrierKey, CarrierResolver, CarrierTargets, DnsSettings};
use pbx_test_support::dns::{DnsServer, Record, a, aaaa, naptr, srv};

fn settings(dns: &DnsServer) -> DnsSettings {
    DnsSettings {
        servers: vec![dns.addr()],
        min_ttl: Duration::from_secs(1),
        max_ttl: Duration::from_secs(60),
        query_timeout: Duration::from_millis(500),
    }
}

fn key(host: &str, port: u16, transport: Transport) -> CarrierKey {
    CarrierKey::of_trunk(host, port, transport)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

async fn resolved(resolver: &CarrierResolver, key: &CarrierKey) -> Vec<SocketAddr> {
    let resolution = resolver.resolve(key).await.unwrap();
    resolution
        .targets
        .iter()
        .map(|target| target.address)
        .collect()
}

/// A NAPTR rule ("s": go on with SRV), TTL 60, preference 10.
fn rule(host: &str, order: u16, service: &str, replacement: &str) -> Record {
    naptr(host, 60, order, 10, "s", service, replacement)
}

/// An SRV record of weight 0, TTL 60.
fn target(name: &str, priority: u16, port: u16, host: &str) -> Record {
    srv(name, 60, priority, 0, port, host)
}

const V4: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const V4B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

#[tokio::test]
async fn an_ip_literal_is_used_as_it_is_without_asking_dns() {
    let dns = DnsServer::start().await.unwrap();
    let resolver = CarrierResolver::new(&settings(&dns));
    let v4 = key("192.0.2.7", 5060, Transport::Udp);
    assert_eq!(v4.port, Some(5060), "a literal keeps its port");
    assert_eq!(resolved(&resolver, &v4).await, [addr("192.0.2.7:5060")]);
    let v6 = key("[2001:db8::7]", 5080, Transport::Tcp);
    assert_eq!(resolved(&resolver, &v6).await, [addr("[2001:db8::7]:5080")]);
    let table = CarrierTargets::new(settings(&dns));
    assert_eq!(table.targets(&v4)[0].address, addr("192.0.2.7:5060"));
    assert_eq!(dns.queries(), 0);
}

#[tokio::test]
async fn an_explicit_port_asks_only_for_addresses() {
    let dns = DnsServer::start().await.unwrap();
    dns.set(vec![
        rule("carrier.test.", 10, "SIP+D2U", "_sip._udp.carrier.test."),
        target("_sip._udp.carrier.test.", 10, 7000, "elsewhere.test."),
        a("elsewhere.test.", 60, V4B),
        a("carrier.test.", 60, V4),
        aaaa("carrier.test.", 60, Ipv6Addr::LOCALHOST),
    ]);
    let resolver = CarrierResolver::new(&settings(&dns));
    let explicit = key("Carrier.Test", 5080, Transport::Udp);
    assert_eq!(explicit.port, Some(5080));
    // IPv4 first, then IPv6, both on the trunk's port; NAPTR and SRV not followed.
    assert_eq!(
        resolved(&resolver, &explicit).await,
        [addr("127.0.0.2:5080"), addr("[::1]:5080")]
    );
}

#[tokio::test]
async fn naptr_leads_to_srv_for_the_trunks_transport_then_to_addresses() {
    let dns = DnsServer::start().await.unwrap();
    dns.set(vec![
        // The TCP rule comes first in order but is not the trunk's transport.
        rule("carrier.test.", 5, "SIP+D2T", "_sip._tcp.carrier.test."),
        rule("carrier.test.", 10, "SIP+D2U", "_sip._udp.pool.test."),
        target("_sip._tcp.carrier.test.", 10, 5090, "tcp.carrier.test."),
        target("_sip._udp.pool.test.", 10, 5070, "edge1.pool.test."),
        // The SRV name the trunk would ask without NAPTR: must not be used.
        target("_sip._udp.carrier.test.", 10, 5999, "wrong.test."),
        a("edge1.pool.test.", 60, V4),
        a("tcp.carrier.test.", 60, V4B),
        a("wrong.test.", 60, V4B),
    ]);
    let resolver = CarrierResolver::new(&settings(&dns));
    let udp = key("carrier.test", 5060, Transport::Udp);
    assert_eq!(udp.port, None, "5060 with a name: RFC 3263 decides");
    let resolution = resolver.resolve(&udp).await.unwrap();
    assert_eq!(resolution.targets.len(), 1);
    assert_eq!(resolution.targets[0].address, addr("127.0.0.2:5070"));
    assert_eq!(resolution.targets[0].name, "edge1.pool.test");
    assert_eq!(resolution.ttl, Duration::from_secs(60));
    let tcp = key("carrier.test", 5060, Transport::Tcp);
    assert_eq!(resolved(&resolver, &tcp).await, [addr("127.0.0.3:5090")]);
}

#[tokio::test]
async fn without_naptr_srv_is_asked_directly_and_without_srv_the_address_on_5060() {
    let dns = DnsServer::start().await.unwrap();
    dns.set(vec![
        target("_sip._tcp.srv-only.test.", 10, 5088, "edge.srv-only.test."),
        a("edge.srv-only.test.", 60, V4),
        a("srv-only.test.", 60, V4B),
        a("a-only.test.", 60, V4),
    ]);
    let resolver = CarrierResolver::new(&settings(&dns));
    assert_eq!(
        resolved(&resolver, &key("srv-only.test", 5060, Transport::Tcp)).await,
        [addr("127.0.0.2:5088")]
    );
    assert_eq!(
        resolved(&resolver, &key("a-only.test", 5060, Transport::Udp)).await,
        [addr("127.0.0.2:5060")]
    );
    // TLS without SRV: 5061 (RFC 3263 §4.2), also when the trunk kept the API's 5060.
    assert_eq!(
        resolved(&resolver, &key("a-only.test", 5060, Transport::Tls)).await,
        [addr("127.0.0.2:5061")]
    );
    let missing = resolver
        .resolve(&key("missing.test", 5060, Transport::Udp))
        .await;
    assert!(missing.is_err(), "{missing:?}");
}

#[tokio::test]
async fn srv_targets_come_in_priority_order_and_weight_shares_the_first_place() {
    let dns = DnsServer::start().await.unwrap();
    dns.set(vec![
        target("_sip._udp.pool.test.", 20, 5062, "backup.pool.test."),
        srv("_sip._udp.pool.test.", 60, 10, 90, 5060, "heavy.pool.test."),
        srv("_sip._udp.pool.test.", 60, 10, 10, 5061, "light.pool.test."),
        a("heavy.pool.test.", 60, V4),
        a("light.pool.test.", 60, V4B),
        a("backup.pool.test.", 60, Ipv4Addr::new(127, 0, 0, 4)),
        aaaa("backup.pool.test.", 60, Ipv6Addr::LOCALHOST),
    ]);
    let resolver = CarrierResolver::new(&settings(&dns));
    let pool = key("pool.test", 5060, Transport::Udp);
    let mut heavy_first = 0;
    for _ in 0..40 {
        let order = resolved(&resolver, &pool).await;
        assert_eq!(order.len(), 4, "{order:?}");
        // Priority 20 last, IPv4 before IPv6.
        assert_eq!(
            order[2..],
            [addr("127.0.0.4:5062"), addr("[::1]:5062")],
            "{order:?}"
        );
        let first_two: std::collections::HashSet<_> = order[..2].iter().copied().collect();
        assert_eq!(
            first_two,
            [addr("127.0.0.2:5060"), addr("127.0.0.3:5061")]
                .into_iter()
                .collect()
        );
        if order[0] == addr("127.0.0.2:5060") {
            heavy_first += 1;
        }
    }
    // Weight 90 against 10: first nine times in ten (40 draws: at least 25 is p > 0.999).
    assert!(heavy_first >= 25, "heavy first {heavy_first} of 40");
}

#[tokio::test]
async fn the_background_refresh_picks_up_a_change_after_the_ttl() {
    let dns = DnsServer::start().await.unwrap();
    dns.set(vec![
        srv("_sip._udp.moving.test.", 1, 10, 0, 5070, "old.moving.test."),
        a("old.moving.test.", 1, V4),
    ]);
    let table = CarrierTargets::new(settings(&dns));
    let moving = key("moving.test", 5060, Transport::Udp);
    table.track([moving.clone()]).await;
    assert_eq!(table.targets(&moving)[0].address, addr("127.0.0.2:5070"));
    let refresher = table.spawn_refresher();
    dns.set(vec![
        srv("_sip._udp.moving.test.", 1, 10, 0, 5072, "new.moving.test."),
        a("new.moving.test.", 1, V4B),
    ]);
    let changed = wait_for(&table, &moving, |targets| {
        targets == [addr("127.0.0.3:5072")]
    })
    .await;
    assert!(changed, "{:?}", table.view(&moving));
    // A host no trunk names any more is dropped.
    table.track([]).await;
    assert!(table.targets(&moving).is_empty());
    refresher.abort();
}

#[tokio::test]
async fn a_failing_resolver_keeps_the_last_good_answer() {
    let dns = DnsServer::start().await.unwrap();
    dns.set(vec![
        srv("_sip._udp.steady.test.", 1, 10, 0, 5070, "a.steady.test."),
        srv("_sip._udp.steady.test.", 1, 20, 0, 5071, "b.steady.test."),
        a("a.steady.test.", 1, V4),
        a("b.steady.test.", 1, V4B),
    ]);
    let table = CarrierTargets::new(settings(&dns));
    let steady = key("steady.test", 5060, Transport::Udp);
    table.track([steady.clone()]).await;
    let good = vec![addr("127.0.0.2:5070"), addr("127.0.0.3:5071")];
    assert_eq!(addresses(&table, &steady), good);
    dns.set_failing(true);
    let refresher = table.spawn_refresher();
    let asked = dns.queries();
    // Refreshes run (and fail) while the targets stay.
    let mut failed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let view = table.view(&steady).unwrap();
        assert_eq!(addresses(&table, &steady), good, "kept while failing");
        if view.last_error.is_some() && dns.queries() > asked {
            failed = true;
            break;
        }
    }
    assert!(failed, "a refresh failed: {:?}", table.view(&steady));
    // A host seen for the first time while DNS fails has no target (and is retried).
    let fresh = key("fresh.test", 5060, Transport::Udp);
    table.track([steady.clone(), fresh.clone()]).await;
    assert!(table.targets(&fresh).is_empty());
    assert_eq!(addresses(&table, &steady), good);
    // DNS back: the error clears.
    dns.set_failing(false);
    let recovered = wait_for(&table, &steady, |targets| targets == good.as_slice()).await
        && wait_until(|| table.view(&steady).is_some_and(|v| v.last_error.is_none())).await;
    assert!(recovered, "{:?}", table.view(&steady));
    refresher.abort();
}

#[tokio::test]
async fn a_silent_name_server_does_not_hold_up_tracking() {
    let dns = DnsServer::start().await.unwrap();
    dns.set(vec![a("late.test.", 60, V4)]);
    dns.set_silent(true);
    let mut settings = settings(&dns);
    settings.query_timeout = Duration::from_millis(200);
    let table = CarrierTargets::new(settings);
    let late = key("late.test", 5060, Transport::Udp);
    let started = std::time::Instant::now();
    table.track([late.clone()]).await;
    // Bounded by twice the query timeout, not by the whole resolution.
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "{:?}",
        started.elapsed()
    );
    assert!(table.targets(&late).is_empty());
    assert!(table.view(&late).unwrap().last_error.is_some());
    // The server comes back: the lookup that was left running fails, and the retry after
    // min_ttl fills the entry in.
    dns.set_silent(false);
    let refresher = table.spawn_refresher();
    assert!(
        wait_for(&table, &late, |targets| targets == [addr("127.0.0.2:5060")]).await,
        "{:?}",
        table.view(&late)
    );
    refresher.abort();
}

fn addresses(table: &CarrierTargets, key: &CarrierKey) -> Vec<SocketAddr> {
    table
        .targets(key)
        .iter()
        .map(|target| target.address)
        .collect()
}

/// Polls (bounded: 6 s) until the targets of `key` satisfy `done`.
async fn wait_for(
    table: &Arc<CarrierTargets>,
    key: &CarrierKey,
    done: impl Fn(&[SocketAddr]) -> bool,
) -> bool {
    wait_until(|| done(&addresses(table, key))).await
}

async fn wait_until(done: impl Fn() -> bool) -> bool {
    for _ in 0..120 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
