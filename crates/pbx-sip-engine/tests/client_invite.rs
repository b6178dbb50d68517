//! INVITE client transaction: Timer A backoff, Timer B, ACK for non-2xx, Timer D, Accepted
//! state and Timer M (RFC 6026).

use pbx_sip::{Method, StatusCode, Transport};
use pbx_sip_engine::{Config, Event, Timer, TransactionState, transaction::ClientInviteState};

use crate::support::*;

#[test]
fn timer_a_backs_off_and_timer_b_times_out() {
    let mut pair = pair();
    pair.drop_containing(None, "INVITE ");
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.run_until_idle().unwrap();

    assert_eq!(
        send_times(&pair, ALICE, "INVITE "),
        [0, 500, 1500, 3500, 7500, 15500, 31500],
        "T1 doubling without cap"
    );
    let timed_out: Vec<_> = pair
        .a()
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::TimedOut { transaction, timer } => Some((*at, *transaction, *timer)),
            _ => None,
        })
        .collect();
    assert_eq!(timed_out.len(), 1);
    let (at, transaction, timer) = timed_out[0];
    assert_eq!((transaction, timer), (tx.id(), Timer::B));
    assert_eq!(ms(&pair, at), 32_000, "Timer B = 64*T1");
    assert_eq!(pair.a().endpoint.transaction_state(tx), None);
    assert_eq!(pair.a().endpoint.stats().timed_out, 1);
}

#[test]
fn configured_t1_scales_the_timers() {
    let config = Config {
        t1: std::time::Duration::from_millis(100),
        ..Config::default()
    };
    let mut pair = pair_with(config, Transport::Udp);
    pair.drop_containing(None, "INVITE ");
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.run_until_idle().unwrap();
    assert_eq!(
        send_times(&pair, ALICE, "INVITE "),
        [0, 100, 300, 700, 1500, 3100, 6300]
    );
    let (at, _) = alice(&pair)
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::TimedOut { .. }))
        .unwrap();
    assert_eq!(ms(&pair, *at), 6_400);
}

#[test]
fn reliable_transport_never_retransmits() {
    let mut pair = pair_with(Config::default(), Transport::Tcp);
    pair.drop_containing(None, "INVITE ");
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.run_until_idle().unwrap();
    assert_eq!(send_times(&pair, ALICE, "INVITE "), [0]);
    let (at, _) = alice(&pair)
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::TimedOut { .. }))
        .unwrap();
    assert_eq!(ms(&pair, *at), 32_000);
}

#[test]
fn provisional_stops_retransmission() {
    let mut pair = pair();
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.run_for(10 * SECOND).unwrap();
    // Bob accepted and sent 100 Trying at once: no INVITE retransmission, no timeout.
    assert_eq!(send_times(&pair, ALICE, "INVITE "), [0]);
    assert_eq!(pair.a().statuses(), [100]);
    assert_eq!(
        pair.a().endpoint.transaction_state(tx),
        Some(TransactionState::ClientInvite(
            ClientInviteState::Proceeding
        ))
    );
    // Releasing the request of an INVITE not yet accepted does nothing: a CANCEL needs it.
    pair.a().endpoint.release_request(tx);
    assert!(
        pair.a().endpoint.request(tx).is_some(),
        "kept while proceeding"
    );
    let now = pair.now();
    assert!(
        pair.a().endpoint.cancel(now, tx).is_ok(),
        "still cancellable"
    );
}

#[test]
fn non_2xx_final_is_acked_by_the_transaction_and_timer_d_absorbs_retransmissions() {
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
    // Bob answers 486; Alice's first ACK is lost, so Bob's Timer G retransmits the 486.
    pair.drop_containing(Some(1), "ACK ");
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::BUSY_HERE)
        .unwrap();
    pair.run_until_idle().unwrap();

    assert_eq!(
        pair.a().statuses(),
        [100, 486],
        "the retransmitted 486 is absorbed"
    );
    let acks: Vec<_> = pair
        .log()
        .iter()
        .filter(|r| r.datagram.bytes.starts_with(b"ACK "))
        .map(message)
        .collect();
    assert_eq!(acks.len(), 2, "ACK re-sent for the retransmitted 486");
    let ack = acks[0].as_request().unwrap();
    assert_eq!(
        ack.top_via().unwrap().branch,
        invite.top_via().unwrap().branch
    );
    assert_eq!(ack.cseq().unwrap().seq, invite.cseq().unwrap().seq);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    assert!(
        ack.to().unwrap().tag.is_some(),
        "To comes from the response"
    );
    assert_eq!(acks[0].to_bytes(), acks[1].to_bytes());
    // Timer D: the client transaction lives 32 s after the 486, then terminates.
    let terminated = alice(&pair).events.iter().find_map(|(at, e)| match e {
        Event::Terminated { transaction } if *transaction == tx.id() => Some(*at),
        _ => None,
    });
    assert_eq!(terminated.map(|at| ms(&pair, at)), Some(1_000 + 32_000));
    // Bob saw the (second) ACK: no H failure, no stray ACK.
    assert!(
        pair.b()
            .reported()
            .iter()
            .all(|e| !matches!(e, Event::AckNotReceived { .. } | Event::Ack { .. }))
    );
}

#[test]
fn timer_d_is_zero_on_reliable_transports() {
    let mut pair = pair_with(Config::default(), Transport::Tcp);
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair.a().endpoint.send_invite(now, invite, target).unwrap();
    pair.run_for(SECOND).unwrap();
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::DECLINE)
        .unwrap();
    pair.step();
    pair.step();
    assert_eq!(pair.a().statuses(), [100, 603]);
    assert_eq!(pair.a().endpoint.transaction_state(tx), None);
}

#[test]
fn accepted_state_passes_2xx_retransmissions_up_and_resends_the_ack_until_timer_m() {
    let mut pair = pair();
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair
        .a()
        .endpoint
        .send_invite(now, invite, target.clone())
        .unwrap();
    pair.run_for(SECOND).unwrap();
    let server = pair.b().last_accepted().invite().unwrap();
    let now = pair.now();
    respond_ok(pair.b(), now, server);
    // Alice's first two ACKs are lost: Bob retransmits the 2xx, Alice re-sends her ACK.
    pair.drop_containing(Some(2), "ACK ");
    pair.step();
    pair.step();
    let response = alice(&pair).events.iter().rev().find_map(|(_, e)| match e {
        Event::Response { response, .. } if response.status() == StatusCode::OK => {
            Some(response.clone())
        }
        _ => None,
    });
    let response = response.expect("200 passed up");
    let mut dialog =
        pbx_sip_engine::Dialog::uac(pair.a().endpoint.request(tx).unwrap(), &response).unwrap();
    let via = pair.a().via();
    let ack = dialog.ack(&via).unwrap();
    let now = pair.now();
    pair.a().endpoint.send_ack(now, tx, ack, target).unwrap();
    assert_eq!(
        pair.a().endpoint.transaction_state(tx),
        Some(TransactionState::ClientInvite(ClientInviteState::Accepted))
    );
    // The TU has its dialog: the accepted INVITE's request may go (as the call engine does);
    // the 2xx retransmissions below are still passed up and answered with the ACK.
    pair.a().endpoint.release_request(tx);
    assert!(
        pair.a().endpoint.request(tx).is_none(),
        "released once accepted"
    );
    pair.run_until_idle().unwrap();

    assert_eq!(
        pair.a().statuses(),
        [100, 200, 200, 200],
        "each 2xx goes up (RFC 6026)"
    );
    assert_eq!(
        send_times(&pair, ALICE, "ACK ").len(),
        3,
        "ACK, then one per 2xx retransmission"
    );
    let terminated = alice(&pair).events.iter().find_map(|(at, e)| match e {
        Event::Terminated { transaction } if *transaction == tx.id() => Some(*at),
        _ => None,
    });
    assert_eq!(
        terminated.map(|at| ms(&pair, at)),
        Some(1_000 + 32_000),
        "Timer M = 64*T1"
    );
    assert!(
        pair.b()
            .reported()
            .iter()
            .any(|e| matches!(e, Event::Ack { transaction: Some(t), .. } if *t == server))
    );
    let _ = &mut dialog;
}
