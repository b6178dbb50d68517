//! Memory per binding (issue 3: under 2 KiB): the heap the registrar keeps per registered
//! binding — the binding table, its expiry timer, the flow index, the AOR map, and the
//! nonce-count entry of the registration that made it — measured with a counting global
//! allocator in this test binary only. Deterministic (heap bytes, not RSS), so it is a test;
//! `cargo test -p pbx-registrar --test memory -- --nocapture` prints the figure.

// A panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "registrar/support.rs"]
#[allow(dead_code)]
mod support;

use pbx_domain::{DirectoryParts, DirectorySnapshot};
use pbx_registrar::RegistrarConfig;
use pbx_sip_auth::NonceCountTracker;

use pbx_test_support::alloc::{Counting, live_bytes};
use support::{Harness, Reg, udp};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bindings registered (one per user, each from its own NAT address, as phones do).
const BINDINGS: u32 = 20_000;

#[test]
fn a_binding_costs_less_than_2_kib_of_registrar_memory() {
    let tenant = support::tenant(1, "acme");
    let mut users = Vec::new();
    let mut credentials = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..BINDINGS {
        let user = support::user(1_000 + i, &tenant, &format!("{}", 100_000 + i));
        let (credential, account) = support::credential(1_000_000 + i, &tenant, &user);
        users.push(user);
        credentials.push(credential);
        accounts.push(account);
    }
    let directory = DirectorySnapshot::build(
        1,
        DirectoryParts {
            tenants: vec![tenant],
            users,
            devices: vec![],
            credentials,
            whitelist: vec![],
            numbers: vec![],
        },
    );
    let (_, fixture_accounts) = support::directory();
    let mut h =
        Harness::with_directory(RegistrarConfig::new("node-1"), directory, fixture_accounts);
    // Production keeps 100,000 nonce counts; here one per registration, none evicted.
    h.tracker = NonceCountTracker::new(usize::try_from(BINDINGS).unwrap() * 2);
    let requests: Vec<(Reg, pbx_registrar::FlowInfo)> = accounts
        .iter()
        .enumerate()
        .map(|(i, account)| {
            let i = u32::try_from(i).unwrap();
            let host = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            let device = "192.168.1.20:5060";
            let reg = Reg::new(
                account,
                device,
                &format!("<sip:{}@192.168.1.20:5060;line=x{i}>", account.extension),
            );
            (reg, udp(&format!("{host}:{}", 20_000 + (i % 40_000))))
        })
        .collect();

    let before = live_bytes();
    for ((reg, flow), account) in requests.into_iter().zip(&accounts) {
        let mut reg = reg;
        let outcome = h.register(account, &mut reg, flow);
        assert_eq!(outcome.response.status().0, 200, "{outcome:?}");
        // The effects go to the store writer and are gone once written.
        drop(outcome);
    }
    let after = live_bytes();
    assert_eq!(h.registrar.binding_count(), BINDINGS as usize);
    let per_binding = (after - before) / isize::try_from(BINDINGS).unwrap();
    println!(
        "registrar heap: {} bytes for {BINDINGS} bindings = {per_binding} bytes per binding",
        after - before
    );
    assert!(
        per_binding < 2_048,
        "{per_binding} bytes per binding (target: under 2 KiB)"
    );
}
