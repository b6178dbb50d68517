//! Non-INVITE client transaction: Timer E backoff capped at T2, Timer F, Timer K.

use pbx_sip::{Method, StatusCode, Transport};
use pbx_sip_engine::{Config, Event, Timer};

use crate::support::*;

#[test]
fn timer_e_backs_off_to_t2_and_timer_f_times_out() {
    let mut pair = pair();
    pair.drop_containing(None, "OPTIONS ");
    let now = pair.now();
    let options = pair.a().request(Method::Options, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair
        .a()
        .endpoint
        .send_request(now, options, target)
        .unwrap();
    pair.run_until_idle().unwrap();
    assert_eq!(
        send_times(&pair, ALICE, "OPTIONS "),
        [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    let timeouts: Vec<_> = alice(&pair)
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::TimedOut { transaction, timer } => Some((ms(&pair, *at), *transaction, *timer)),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, [(32_000, tx.id(), Timer::F)]);
}

#[test]
fn proceeding_retransmits_every_t2() {
    let mut pair = pair();
    pair.b().policy = Policy::Accept;
    let now = pair.now();
    let register = pair.a().request(Method::Register, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a()
        .endpoint
        .send_request(now, register, target)
        .unwrap();
    pair.run_for(std::time::Duration::from_millis(100)).unwrap();
    let server = pair.b().last_accepted().non_invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::TRYING)
        .unwrap();
    pair.run_for(std::time::Duration::from_millis(12_000))
        .unwrap();
    // 0, then E at 0.5 s (Trying→ still 1st interval), then every T2 while Proceeding.
    assert_eq!(send_times(&pair, ALICE, "REGISTER "), [0, 500, 4500, 8500]);
    // Bob's transaction re-sends the 100 for each retransmission.
    assert_eq!(send_times(&pair, BOB, "SIP/2.0 100").len(), 4);
    // Every provisional is passed up while Proceeding (§17.1.2.2).
    assert_eq!(pair.a().statuses(), [100, 100, 100, 100]);
}

#[test]
fn final_response_then_timer_k() {
    let mut pair = pair();
    let now = pair.now();
    let options = pair.a().request(Method::Options, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair
        .a()
        .endpoint
        .send_request(now, options, target)
        .unwrap();
    // Bob answers only after Alice retransmitted twice; his 200 is duplicated on the wire.
    pair.run_for(std::time::Duration::from_millis(2_000))
        .unwrap();
    pair.add_rule(pbx_test_support::network::Action::Duplicate, Some(1), |d| {
        d.bytes.starts_with(b"SIP/2.0 200")
    });
    let server = pair.b().last_accepted().non_invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::OK)
        .unwrap();
    pair.run_until_idle().unwrap();
    assert_eq!(pair.a().statuses(), [200], "the duplicate is absorbed");
    assert_eq!(pair.a().endpoint.stats().absorbed, 1);
    let terminated = alice(&pair).events.iter().find_map(|(at, e)| match e {
        Event::Terminated { transaction } if *transaction == tx.id() => Some(ms(&pair, *at)),
        _ => None,
    });
    assert_eq!(terminated, Some(2_000 + 5_000), "Timer K = T4");
    // Bob's non-INVITE server transaction: Timer J = 64*T1 after the 200.
    let bob_terminated = bob(&pair).events.iter().find_map(|(at, e)| match e {
        Event::Terminated { transaction } if *transaction == server.id() => Some(ms(&pair, *at)),
        _ => None,
    });
    assert_eq!(bob_terminated, Some(2_000 + 32_000));
}

#[test]
fn reliable_final_terminates_at_once() {
    let mut pair = pair_with(Config::default(), Transport::Tls);
    let now = pair.now();
    let options = pair.a().request(Method::Options, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair
        .a()
        .endpoint
        .send_request(now, options, target)
        .unwrap();
    pair.step();
    let server = pair.b().last_accepted().non_invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::OK)
        .unwrap();
    assert_eq!(
        pair.b().endpoint.transaction_state(server),
        None,
        "Timer J = 0"
    );
    pair.step();
    assert_eq!(pair.a().statuses(), [200]);
    assert_eq!(pair.a().endpoint.transaction_state(tx), None, "Timer K = 0");
    assert_eq!(pair.a().endpoint.poll_timeout(), None);
}
