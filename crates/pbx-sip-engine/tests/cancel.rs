//! CANCEL: construction from the INVITE client transaction (§9.1), matching the INVITE on
//! the server side, 200 to the CANCEL, 487 to the INVITE (§9.2).

use std::time::Duration;

use pbx_sip::{Method, StatusCode, Transport};
use pbx_sip_engine::{CancelError, CancelOutcome, Config, Event, Timer};

use crate::support::*;

#[test]
fn cancel_matches_the_invite_and_the_invite_ends_with_487() {
    let mut pair = pair();
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair
        .a()
        .endpoint
        .send_invite(now, invite.clone(), target)
        .unwrap();
    pair.run_for(SECOND).unwrap();
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::RINGING)
        .unwrap();
    pair.run_for(SECOND).unwrap();

    let now = pair.now();
    let CancelOutcome::Sent(cancel_tx) = pair.a().endpoint.cancel(now, tx).unwrap() else {
        panic!("the INVITE is Proceeding: CANCEL goes out at once");
    };
    pair.step();
    // Bob's endpoint answered the CANCEL itself and told the TU.
    let cancelled = bob(&pair).events.iter().find_map(|(_, e)| match e {
        Event::Cancelled { invite, cancel } => Some((*invite, cancel.clone())),
        _ => None,
    });
    let (invite_server, cancel) = cancelled.expect("Cancelled event");
    assert_eq!(invite_server, server);
    assert_eq!(*cancel.method(), Method::Cancel);
    assert_eq!(
        cancel.top_via().unwrap().branch,
        invite.top_via().unwrap().branch
    );
    assert_eq!(cancel.cseq().unwrap().seq, invite.cseq().unwrap().seq);
    assert_eq!(cancel.uri(), invite.uri());
    assert_eq!(pair.b().accepted.len(), 1, "the CANCEL needs no admission");

    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::REQUEST_TERMINATED)
        .unwrap();
    pair.run_until_idle().unwrap();

    let alice: Vec<_> = alice(&pair)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Response {
                transaction,
                response,
            } => Some((*transaction, response.status().0)),
            _ => None,
        })
        .collect();
    assert_eq!(
        alice,
        [
            (tx.id(), 100),
            (tx.id(), 180),
            (cancel_tx.id(), 200),
            (tx.id(), 487)
        ]
    );
    // The 200 to the CANCEL carries the INVITE's To tag (§9.2 SHOULD).
    let tag_of = |prefix: &str| {
        let record = pair
            .log()
            .iter()
            .find(|r| r.datagram.bytes.starts_with(prefix.as_bytes()))
            .unwrap();
        message(record).to().unwrap().tag
    };
    assert_eq!(tag_of("SIP/2.0 200"), tag_of("SIP/2.0 487"));
    assert_eq!(
        send_times(&pair, ALICE, "ACK ").len(),
        1,
        "the 487 is ACKed by the transaction"
    );
    assert!(
        !pair
            .b()
            .reported()
            .iter()
            .any(|e| matches!(e, Event::AckNotReceived { .. }))
    );
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let mut pair = pair();
    pair.b().policy = Policy::Queue;
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair.a().endpoint.send_invite(now, invite, target).unwrap();
    assert_eq!(
        pair.a().endpoint.cancel(now, tx),
        Ok(CancelOutcome::Deferred)
    );
    pair.run_for(std::time::Duration::from_millis(700)).unwrap();
    assert_eq!(send_times(&pair, ALICE, "CANCEL "), Vec::<u128>::new());
    // Bob's policy accepts late; his 100 Trying releases the CANCEL.
    let incoming = pair.b().incoming.pop_front().unwrap();
    let now = pair.now();
    pair.b().endpoint.accept(now, incoming).unwrap();
    pair.run_for(SECOND).unwrap();
    assert_eq!(send_times(&pair, ALICE, "CANCEL "), [700]);
    assert!(
        pair.b()
            .reported()
            .iter()
            .any(|e| matches!(e, Event::Cancelled { .. }))
    );
}

#[test]
fn cancel_after_final_is_refused_and_cancel_without_invite_gets_481() {
    let mut pair = pair();
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair
        .a()
        .endpoint
        .send_invite(now, invite.clone(), target.clone())
        .unwrap();
    pair.step();
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::BUSY_HERE)
        .unwrap();
    pair.step();
    pair.step();
    let now = pair.now();
    assert_eq!(
        pair.a().endpoint.cancel(now, tx),
        Err(CancelError::AlreadyFinal)
    );

    // A CANCEL for an INVITE Bob never saw: stateless 481.
    let mut other = pair.a().request(Method::Invite, addr(BOB));
    other.set_method(Method::Cancel);
    other.set_header(pbx_sip::HeaderName::CSeq, "1 CANCEL");
    pair.a().endpoint.send_stateless(now, &other, &target);
    pair.run_for(SECOND).unwrap();
    assert_eq!(send_times(&pair, BOB, "SIP/2.0 481").len(), 1);
}

fn ringing_forever(
    timer_c: Duration,
) -> (
    pbx_test_support::Pair<Ua>,
    pbx_sip_engine::ClientTransaction<pbx_sip_engine::Invite>,
) {
    let config = Config {
        timer_c: Some(timer_c),
        ..Config::default()
    };
    let mut pair = pair_with(config, Transport::Udp);
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.step();
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::RINGING)
        .unwrap();
    pair.step();
    pair.step();
    (pair, tx)
}

#[test]
fn timer_c_cancels_an_invite_that_rings_too_long() {
    let (mut pair, tx) = ringing_forever(10 * SECOND);
    pair.run_for(11 * SECOND).unwrap();
    let timed_out: Vec<_> = alice(&pair)
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::TimedOut { transaction, timer } => Some((ms(&pair, *at), *transaction, *timer)),
            _ => None,
        })
        .collect();
    assert_eq!(timed_out, [(10_000, tx.id(), Timer::C)]);
    assert_eq!(send_times(&pair, ALICE, "CANCEL "), [10_000]);
    // Bob's TU ends the INVITE with 487 as it should; Alice's INVITE completes normally.
    let invite = bob(&pair)
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Cancelled { invite, .. } => Some(*invite),
            _ => None,
        })
        .unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, invite, StatusCode::REQUEST_TERMINATED)
        .unwrap();
    pair.run_until_idle().unwrap();
    assert_eq!(pair.a().statuses(), [100, 180, 200, 487]);
    assert_eq!(alice(&pair).endpoint.transaction_count(), 0);
}

#[test]
fn cancel_guard_destroys_an_invite_whose_peer_went_silent() {
    let (mut pair, tx) = ringing_forever(10 * SECOND);
    // Bob's side goes dark after the 180.
    pair.drop_matching(None, |d| d.source == addr(BOB));
    pair.run_until_idle().unwrap();
    let timed_out: Vec<_> = alice(&pair)
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::TimedOut { transaction, timer } => {
                Some((ms(&pair, *at), *transaction == tx.id(), *timer))
            }
            _ => None,
        })
        .collect();
    // C at 10 s; the CANCEL's own Timer F and the INVITE's guard both at 10 + 32 s.
    assert_eq!(timed_out.len(), 3);
    assert_eq!(timed_out[0], (10_000, true, Timer::C));
    assert!(timed_out.contains(&(42_000, true, Timer::CancelGuard)));
    assert!(timed_out.contains(&(42_000, false, Timer::F)));
    assert_eq!(alice(&pair).endpoint.transaction_count(), 0);
    assert_eq!(alice(&pair).endpoint.poll_timeout(), None);
}
