//! Random operation sequences keep the registrar's bookkeeping consistent: one expiry timer
//! per binding, one keep-alive timer per flow, no binding outliving its expiry, the contact
//! limit respected, and the effects describing the table (replaying them into a map gives
//! the registrar's bindings).

use std::collections::HashMap;
use std::time::Duration;

use pbx_registrar::{Effect, PingId, RegistrarConfig};
use proptest::prelude::*;

use crate::support::*;

#[derive(Debug, Clone)]
enum Op {
    Register {
        account: usize,
        contact: usize,
        flow: usize,
        expires: u32,
    },
    Wildcard {
        account: usize,
    },
    Advance {
        secs: u64,
    },
    PingResult {
        ok: bool,
    },
    CloseFlow {
        flow: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..4usize, 0..3usize, prop::sample::select(vec![0u32, 30, 60, 300, 9999]))
            .prop_map(|(account, contact, flow, expires)| Op::Register { account, contact, flow, expires }),
        1 => (0..3usize).prop_map(|account| Op::Wildcard { account }),
        3 => (1..400u64).prop_map(|secs| Op::Advance { secs }),
        2 => any::<bool>().prop_map(|ok| Op::PingResult { ok }),
        1 => (0..3usize).prop_map(|flow| Op::CloseFlow { flow }),
    ]
}

fn flow(index: usize) -> pbx_registrar::FlowInfo {
    match index {
        0 => udp("203.0.113.7:40000"),
        1 => udp("203.0.113.8:40001"),
        _ => tcp("203.0.113.9:40002", 9),
    }
}

/// Applies effects to a model of the store; returns the pings sent.
fn apply(store: &mut HashMap<(String, String), i64>, effects: &[Effect]) -> Vec<PingId> {
    let mut pings = Vec::new();
    for effect in effects {
        match effect {
            Effect::PersistBinding(record) | Effect::RefreshBinding(record) => {
                store.insert((record.aor.clone(), record.key()), record.expires_at_ms);
            }
            Effect::DeleteBinding(key) => {
                store.remove(&(key.aor.clone(), key.key.clone()));
            }
            Effect::Ping(ping) => pings.push(ping.id),
            _ => {}
        }
    }
    pings
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn bookkeeping_stays_consistent(ops in prop::collection::vec(op(), 1..40)) {
        let mut config = RegistrarConfig::new("node-1");
        config.max_contacts_per_user = 3;
        let mut h = Harness::with_config(config);
        let accounts = [h.accounts.ann_desk.clone(), h.accounts.ann_mobile.clone(), h.accounts.bob.clone()];
        let mut store = HashMap::new();
        let mut cseq: HashMap<usize, u32> = HashMap::new();
        let mut pending: Vec<PingId> = Vec::new();
        for op in ops {
            match op {
                Op::Register { account, contact, flow: f, expires } => {
                    let a = &accounts[account];
                    let mut reg = Reg::new(a, "192.168.1.10:5060", &format!("<sip:c{contact}@192.168.1.10:5060>;expires={expires}"));
                    reg.call_id = format!("model-{account}");
                    reg.cseq = *cseq.get(&account).unwrap_or(&1);
                    let outcome = h.register(a, &mut reg, flow(f));
                    cseq.insert(account, reg.cseq);
                    let status = outcome.response.status().0;
                    prop_assert!(matches!(status, 200 | 423), "status {}", status);
                    prop_assert_eq!(status == 423, expires == 30);
                    apply(&mut store, &outcome.effects);
                }
                Op::Wildcard { account } => {
                    let a = &accounts[account];
                    let mut reg = Reg::new(a, "192.168.1.10:5060", "*");
                    reg.expires = Some(0);
                    reg.call_id = format!("model-{account}");
                    reg.cseq = *cseq.get(&account).unwrap_or(&1);
                    let outcome = h.register(a, &mut reg, flow(0));
                    cseq.insert(account, reg.cseq);
                    prop_assert_eq!(outcome.response.status().0, 200);
                    apply(&mut store, &outcome.effects);
                }
                Op::Advance { secs } => {
                    h.advance(Duration::from_secs(secs));
                    let now = h.now();
                    let effects = h.registrar.handle_timeout(now);
                    pending.extend(apply(&mut store, &effects));
                }
                Op::PingResult { ok } => {
                    if let Some(id) = pending.pop() {
                        let now = h.now();
                        let effects = h.registrar.handle_ping_result(id, ok, now);
                        apply(&mut store, &effects);
                    }
                }
                Op::CloseFlow { flow: f } => {
                    let now = h.now();
                    let effects = h.registrar.handle_flow_closed(&flow(f), now);
                    apply(&mut store, &effects);
                }
            }
            let bindings = h.registrar.binding_count();
            prop_assert_eq!(h.registrar.timer_count(), bindings + h.registrar.flow_count());
            prop_assert!(h.registrar.flow_count() <= bindings);
            prop_assert_eq!(store.len(), bindings, "effects describe the table");
            let now_ms = h.now().unix_ms;
            for account in &accounts {
                let records = h.registrar.bindings(account.user_id);
                prop_assert!(records.len() <= 3);
                prop_assert_eq!(h.registrar.lookup(account.user_id).len(), records.len());
                for record in records {
                    prop_assert!(record.expires_at_ms > now_ms, "expired binding kept");
                    // The store holds the binding, with an expiry that never outlives the
                    // live one (plain refreshes are written back only when the stored expiry
                    // would lapse before half the new lifetime).
                    let stored = store.get(&(record.aor.clone(), record.key()));
                    prop_assert!(stored.is_some_and(|at| *at <= record.expires_at_ms), "{:?} vs {}", stored, record.expires_at_ms);
                }
            }
        }
    }
}
