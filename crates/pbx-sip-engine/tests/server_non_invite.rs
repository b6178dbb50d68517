//! Non-INVITE server transaction: Trying absorbs, Proceeding/Completed re-send, Timer J.

use pbx_sip::{Method, StatusCode};
use pbx_sip_engine::{Event, ResponseError};

use crate::support::*;

#[test]
fn completed_answers_retransmissions_until_timer_j() {
    let mut pair = pair();
    // Bob's 200 is lost twice: Alice keeps retransmitting, Bob re-sends the 200 each time.
    pair.drop_containing(Some(2), "SIP/2.0 200");
    let now = pair.now();
    let message = pair.a().request(Method::Message, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a()
        .endpoint
        .send_request(now, message, target)
        .unwrap();
    pair.step();
    let server = pair.b().last_accepted().non_invite().unwrap();
    let now = pair.now();
    assert!(pair.b().endpoint.request(server.id()).is_some());
    pair.b()
        .endpoint
        .respond(now, server, StatusCode::OK)
        .unwrap();
    // Completed over UDP: the request is released (memory for the 32 s of Timer J), the
    // transaction still answers retransmissions with its last response.
    assert!(pair.b().endpoint.request(server.id()).is_none());
    assert!(pair.b().endpoint.transaction_state(server.id()).is_some());
    assert_eq!(
        pair.b().endpoint.respond(now, server, StatusCode::OK),
        Err(ResponseError::AlreadyFinal)
    );
    pair.run_until_idle().unwrap();
    assert_eq!(send_times(&pair, ALICE, "MESSAGE "), [0, 500, 1500]);
    assert_eq!(send_times(&pair, BOB, "SIP/2.0 200"), [0, 500, 1500]);
    assert_eq!(pair.a().statuses(), [200]);
    let terminated = bob(&pair).events.iter().find_map(|(at, e)| match e {
        Event::Terminated { transaction } if *transaction == server.id() => Some(ms(&pair, *at)),
        _ => None,
    });
    assert_eq!(
        terminated,
        Some(32_000),
        "Timer J = 64*T1 from the final response"
    );
}

#[test]
fn trying_absorbs_retransmissions_silently() {
    let mut pair = pair();
    let now = pair.now();
    let message = pair.a().request(Method::Message, addr(BOB));
    let target = pair.a().target(addr(BOB));
    pair.a()
        .endpoint
        .send_request(now, message, target)
        .unwrap();
    pair.run_for(2 * SECOND).unwrap();
    // Bob's TU has not answered: retransmissions at 0.5 and 1.5 s get nothing back.
    assert_eq!(send_times(&pair, ALICE, "MESSAGE "), [0, 500, 1500]);
    assert!(send_times(&pair, BOB, "SIP/2.0").is_empty());
    assert_eq!(pair.b().accepted.len(), 1);
    assert_eq!(pair.b().endpoint.stats().absorbed, 2);
}
