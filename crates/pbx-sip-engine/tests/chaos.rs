//! Many transactions over a lossy, duplicating, reordering network: whatever happens, every
//! client transaction ends exactly once (final response or timeout), the TU sees each final
//! response once per To tag, and both endpoints end with no state and no deadline.

use std::collections::HashMap;
use std::time::Duration;

use pbx_sip::{Method, Request, StatusCode};
use pbx_sip_engine::{Event, TransactionId};
use pbx_test_support::network::Action;

use crate::support::*;

/// xorshift64*: deterministic noise for the network rules.
fn noise(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn answer(request: &Request) -> StatusCode {
    // Decide from the CSeq number so retransmissions get the same answer.
    match (request.method(), request.cseq().unwrap().seq % 3) {
        (Method::Invite, 0) => StatusCode::OK,
        (Method::Invite, 1) => StatusCode::BUSY_HERE,
        (Method::Invite, _) => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

fn run(seed: u64, loss_percent: u64) {
    let mut pair = pair();
    pair.b().answer = Some(answer);
    pair.a().auto_ack = true;
    let mut drop = noise(seed);
    pair.add_rule(Action::Drop, None, move |_| drop() % 100 < loss_percent);
    let mut duplicate = noise(seed ^ 0xD0);
    pair.add_rule(Action::Duplicate, None, move |_| duplicate() % 100 < 10);
    let mut delay = noise(seed ^ 0xDE);
    pair.add_rule(Action::Delay(Duration::from_millis(700)), None, move |_| {
        delay() % 100 < 10
    });

    let mut sent: HashMap<TransactionId, Method> = HashMap::new();
    for n in 0..30u32 {
        let now = pair.now();
        let method = if n % 2 == 0 {
            Method::Invite
        } else {
            Method::Options
        };
        let mut request = pair.a().request(method.clone(), addr(BOB));
        request.set_header(pbx_sip::HeaderName::CSeq, format!("{n} {method}"));
        let target = pair.a().target(addr(BOB));
        let id = match method {
            Method::Invite => pair
                .a()
                .endpoint
                .send_invite(now, request, target)
                .unwrap()
                .id(),
            _ => pair
                .a()
                .endpoint
                .send_request(now, request, target)
                .unwrap()
                .id(),
        };
        sent.insert(id, method);
        pair.run_for(Duration::from_millis(37)).unwrap();
    }
    pair.run_until_idle().unwrap();

    let mut outcome: HashMap<TransactionId, Vec<String>> = HashMap::new();
    for (_, event) in &alice(&pair).events {
        match event {
            Event::Response {
                transaction,
                response,
            } if response.status().0 >= 200 => {
                let tag = response.to().unwrap().tag;
                outcome
                    .entry(*transaction)
                    .or_default()
                    .push(format!("{}{tag:?}", response.status().0));
            }
            Event::TimedOut { transaction, .. } => {
                outcome
                    .entry(*transaction)
                    .or_default()
                    .push("timeout".into());
            }
            _ => {}
        }
    }
    for (id, method) in &sent {
        let seen = outcome.get(id).cloned().unwrap_or_default();
        assert!(!seen.is_empty(), "seed {seed}: {method} {id} never ended");
        let timeouts = seen.iter().filter(|s| *s == "timeout").count();
        if timeouts > 0 {
            assert_eq!(
                seen.len(),
                1,
                "seed {seed}: {id} timed out and got a final: {seen:?}"
            );
            continue;
        }
        // Only 2xx to INVITE may repeat (RFC 6026: retransmissions go up); other finals once.
        let mut distinct = seen.clone();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            1,
            "seed {seed}: {id} got different finals: {seen:?}"
        );
        if !(*method == Method::Invite && seen[0].starts_with("200")) {
            assert_eq!(
                seen.len(),
                1,
                "seed {seed}: {id} final passed up twice: {seen:?}"
            );
        }
    }
    for (name, ua) in [("alice", alice(&pair)), ("bob", bob(&pair))] {
        assert_eq!(
            ua.endpoint.transaction_count(),
            0,
            "seed {seed}: {name} kept state"
        );
        assert_eq!(
            ua.endpoint.poll_timeout(),
            None,
            "seed {seed}: {name} kept a timer"
        );
    }
    // Bob admitted each request at most once.
    let mut call_ids: Vec<_> = bob(&pair)
        .accepted
        .iter()
        .map(|(_, r)| r.call_id().unwrap())
        .collect();
    let admitted = call_ids.len();
    call_ids.sort();
    call_ids.dedup();
    assert_eq!(
        call_ids.len(),
        admitted,
        "seed {seed}: a request was admitted twice"
    );
}

#[test]
fn lossy_network_ends_every_transaction_once() {
    for seed in 1..=12 {
        run(seed, 25);
    }
}

#[test]
fn very_lossy_network_still_cleans_up() {
    for seed in 100..=105 {
        run(seed, 60);
    }
}
