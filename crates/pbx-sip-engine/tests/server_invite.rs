//! INVITE server transaction: retransmission absorption, Timers G/H/I, Accepted state with
//! 2xx retransmission until the ACK and Timer L (RFC 6026).

use pbx_sip::{Method, StatusCode};
use pbx_sip_engine::{Event, Timer, TransactionState, transaction::ServerInviteState};

use crate::support::*;

#[test]
fn retransmitted_invite_is_absorbed_and_gets_the_last_response() {
    let mut pair = pair();
    // Bob's 100 Trying and first 180 are lost, so Alice retransmits the INVITE.
    pair.drop_containing(Some(1), "SIP/2.0 100");
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.run_for(std::time::Duration::from_millis(200)).unwrap();
    let server = pair.b().last_accepted().invite().unwrap();
    pair.drop_containing(Some(1), "SIP/2.0 180");
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::RINGING)
        .unwrap();
    pair.run_for(2 * SECOND).unwrap();

    assert_eq!(pair.b().accepted.len(), 1, "one transaction, one admission");
    assert_eq!(send_times(&pair, ALICE, "INVITE "), [0, 500]);
    assert_eq!(
        send_times(&pair, BOB, "SIP/2.0 180"),
        [200, 500],
        "180 re-sent on the retransmission"
    );
    assert_eq!(pair.a().statuses(), [180]);
    assert_eq!(pair.b().endpoint.stats().absorbed, 1);
}

#[test]
fn timer_g_backs_off_to_t2_and_timer_h_reports_the_missing_ack() {
    let mut pair = pair();
    pair.drop_containing(None, "ACK ");
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.step();
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::NOT_FOUND)
        .unwrap();
    pair.run_until_idle().unwrap();

    assert_eq!(
        send_times(&pair, BOB, "SIP/2.0 404"),
        [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    let failures: Vec<_> = bob(&pair)
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::AckNotReceived { transaction, timer } => {
                Some((ms(&pair, *at), *transaction, *timer))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures, [(32_000, server, Timer::H)]);
    assert_eq!(
        pair.a().statuses(),
        [100, 404],
        "client absorbs the retransmissions"
    );
}

#[test]
fn ack_confirms_and_timer_i_absorbs_ack_retransmissions() {
    let mut pair = pair();
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.step();
    let server = pair.b().last_accepted().invite().unwrap();
    // The ACK arrives twice.
    pair.add_rule(pbx_test_support::network::Action::Duplicate, Some(1), |d| {
        d.bytes.starts_with(b"ACK ")
    });
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::FORBIDDEN)
        .unwrap();
    pair.step();
    pair.step();
    pair.step();
    assert_eq!(
        pair.b().endpoint.transaction_state(server),
        Some(TransactionState::ServerInvite(ServerInviteState::Confirmed))
    );
    pair.run_until_idle().unwrap();
    assert_eq!(
        send_times(&pair, BOB, "SIP/2.0 403"),
        [0],
        "no Timer G after the ACK"
    );
    let terminated = bob(&pair).events.iter().find_map(|(at, e)| match e {
        Event::Terminated { transaction } if *transaction == server.id() => Some(ms(&pair, *at)),
        _ => None,
    });
    assert_eq!(terminated, Some(5_000), "Timer I = T4");
    assert!(
        pair.b().reported().is_empty(),
        "ACKs for non-2xx never reach the TU"
    );
}

#[test]
fn two_hundred_is_retransmitted_until_the_ack_then_timer_l() {
    let mut pair = pair();
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair
        .a()
        .endpoint
        .send_invite(now, invite, target.clone())
        .unwrap();
    pair.step();
    let server = pair.b().last_accepted().invite().unwrap();
    let id = server.id();
    assert!(pair.b().endpoint.request(id).is_some());
    let now = pair.now();
    respond_ok(pair.b(), now, server);
    // Accepted: the INVITE is released at once (Timer L keeps the entry 32 s); the 200 is
    // retransmitted from the transaction's last response.
    assert!(pair.b().endpoint.request(id).is_none());
    assert!(pair.b().endpoint.transaction_state(id).is_some());
    // Alice only ACKs at 4 s (a slow TU): Bob retransmits at 0.5, 1.5, 3.5 s.
    pair.run_for(4 * SECOND).unwrap();
    let response = alice(&pair)
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Response { response, .. } if response.status() == StatusCode::OK => {
                Some(response.clone())
            }
            _ => None,
        })
        .unwrap();
    let dialog =
        pbx_sip_engine::Dialog::uac(pair.a().endpoint.request(tx).unwrap(), &response).unwrap();
    let via = pair.a().via();
    let ack = dialog.ack(&via).unwrap();
    let now = pair.now();
    pair.a().endpoint.send_ack(now, tx, ack, target).unwrap();
    pair.run_until_idle().unwrap();

    assert_eq!(send_times(&pair, BOB, "SIP/2.0 200"), [0, 500, 1500, 3500]);
    let acks: Vec<_> = bob(&pair)
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Ack { transaction, .. } => Some((ms(&pair, *at), *transaction)),
            _ => None,
        })
        .collect();
    assert_eq!(
        acks,
        [(4_000, Some(server))],
        "the 2xx ACK reaches the TU, matched"
    );
    let terminated = bob(&pair).events.iter().find_map(|(at, e)| match e {
        Event::Terminated { transaction } if *transaction == server.id() => Some(ms(&pair, *at)),
        _ => None,
    });
    assert_eq!(terminated, Some(32_000), "Timer L = 64*T1");
    assert!(
        !pair
            .b()
            .reported()
            .iter()
            .any(|e| matches!(e, Event::AckNotReceived { .. }))
    );
}

#[test]
fn two_hundred_without_ack_is_reported_at_timer_l() {
    let mut pair = pair();
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.step();
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::OK)
        .unwrap();
    // Alice's TU never ACKs; retransmitted INVITEs would be absorbed in Accepted.
    pair.run_until_idle().unwrap();
    assert_eq!(
        send_times(&pair, BOB, "SIP/2.0 200"),
        [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    let failures: Vec<_> = bob(&pair)
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::AckNotReceived { transaction, timer } => {
                Some((ms(&pair, *at), *transaction, *timer))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures, [(32_000, server, Timer::L)]);
    // Alice's client transaction passed every 2xx up (Accepted, Timer M).
    assert_eq!(
        pair.a().statuses().iter().filter(|s| **s == 200).count(),
        11
    );
}

#[test]
fn accepted_state_absorbs_invite_retransmissions() {
    let mut pair = pair();
    // Bob's 100 and 200 are both lost once: Alice retransmits the INVITE after Bob answered.
    pair.drop_containing(Some(1), "SIP/2.0 100");
    pair.drop_containing(Some(1), "SIP/2.0 200");
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.step();
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    let ok = pair.b().endpoint.response(server, StatusCode::OK).unwrap();
    pair.b().endpoint.send_response(now, server, ok).unwrap();
    pair.run_for(std::time::Duration::from_millis(600)).unwrap();
    // INVITE retransmission at 500 ms absorbed without a response; 2xx timer re-sent at 500 ms.
    assert_eq!(send_times(&pair, ALICE, "INVITE "), [0, 500]);
    assert_eq!(send_times(&pair, BOB, "SIP/2.0 200"), [0, 500]);
    assert_eq!(pair.b().accepted.len(), 1);
    assert_eq!(pair.a().statuses(), [200]);
}
