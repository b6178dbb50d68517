//! RFC 3262 (100rel/PRACK) across the B2BUA on the virtual clock: reliable provisionals are
//! relayed with our own RSeq, the caller's PRACK is mapped to the fork that sent the
//! provisional, retransmission and give-up follow T1 doubling up to 64·T1, the caller's 2xx
//! waits for the PRACK of a provisional with SDP, and a caller without 100rel never sees it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use pbx_call::{CallConfig, Disposition, HangupSide, TrunkCredentials};
use pbx_sip::{HeaderName, Method, Request, Response};
use pbx_test_support::network::Action as NetAction;
use support::*;

fn config() -> CallConfig {
    config_ringing_for(secs(60))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn header(headers: &pbx_sip::Headers, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn rseq(response: &Response) -> u32 {
    header(response.headers(), &HeaderName::RSeq)
        .expect("RSeq")
        .trim()
        .parse()
        .unwrap()
}

/// Alice's provisional responses to her INVITE (retransmissions absorbed by her UA are not
/// here: those are counted on the network log).
fn provisionals(alice: &Ua) -> Vec<Response> {
    alice
        .responses_to(Method::Invite)
        .into_iter()
        .filter(|r| (101..200).contains(&r.status().0))
        .cloned()
        .collect()
}

fn invite_final(alice: &Ua) -> Option<u16> {
    alice
        .responses_to(Method::Invite)
        .into_iter()
        .map(|r| r.status().0)
        .rfind(|s| *s >= 200)
}

/// Times (ms since the first) at which the PBX sent a 183 to Alice.
fn sent_183_to_alice(world: &World) -> Vec<u128> {
    let alice = addr(ALICE);
    let times: Vec<_> = world
        .net
        .sent_by(0)
        .filter(|r| r.datagram.destination == alice && r.text().starts_with("SIP/2.0 183"))
        .map(|r| r.sent_at)
        .collect();
    let Some(first) = times.first().copied() else {
        return Vec::new();
    };
    times.iter().map(|t| (*t - first).as_millis()).collect()
}

#[test]
fn reliable_183_is_relayed_with_our_rseq_and_the_prack_goes_to_the_fork() {
    let bob = reliable_callee(BOB, 21, 1, Some(secs(1)));
    let mut world = World::new(config(), vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(3));

    // The B-leg was offered 100rel because the caller supports it.
    let invite = world.bob().received_of(Method::Invite)[0].clone();
    let supported = header(invite.headers(), &HeaderName::Supported).unwrap_or_default();
    assert!(supported.contains("100rel"), "{supported}");
    assert!(header(invite.headers(), &HeaderName::Require).is_none());

    // Alice got a reliable 183 with our RSeq and Bob's answer rewritten to the relay.
    let alice = world.alice();
    let early = provisionals(alice);
    let reliable: Vec<&Response> = early
        .iter()
        .filter(|r| has_100rel(r.headers(), &HeaderName::Require))
        .collect();
    assert_eq!(reliable.len(), 1, "{:?}", alice.statuses());
    let ours = reliable[0];
    assert_eq!(ours.status().0, 183);
    let our_rseq = rseq(ours);
    assert!((1..(1 << 31)).contains(&our_rseq));
    let body = response_body(ours);
    assert!(body.contains(&format!("c=IN IP4 {RELAY_IP}")), "{body}");
    assert!(body.contains("m=audio 30004 "), "{body}");
    assert!(
        !body.contains("192.168.2.20"),
        "Bob's address leaked: {body}"
    );
    assert_eq!(alice.pracks_sent, 1);
    let prack_answers: Vec<u16> = alice
        .responses_to(Method::Prack)
        .iter()
        .map(|r| r.status().0)
        .collect();
    assert_eq!(prack_answers, [200]);
    assert_eq!(invite_final(alice), Some(200));

    // Bob got our PRACK for his RSeq, in his early dialog, at the next CSeq.
    let bob = world.bob();
    let pracks = bob.received_of(Method::Prack);
    assert_eq!(pracks.len(), 1, "{:?}", bob.methods());
    let prack = pracks[0];
    assert_eq!(
        header(prack.headers(), &HeaderName::RAck).as_deref(),
        Some("1 1 INVITE")
    );
    assert_eq!(prack.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(prack.cseq().unwrap().seq, 2);
    assert!(prack.to().unwrap().tag.is_some());
    assert_eq!(prack.uri().to_string(), format!("sip:ua@{BOB}"));
    // Bob's ACK carries the INVITE's CSeq; the BYE goes on after the PRACK's.
    assert_eq!(bob.received_of(Method::Ack)[0].cseq().unwrap().seq, 1);
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    let bye = world.bob().received_of(Method::Bye)[0].clone();
    assert_eq!(bye.cseq().unwrap().seq, 3);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_eq!(pbx.records[0].disposition, Disposition::Answered);
    assert_eq!(pbx.records[0].hangup_side, HangupSide::Caller);
}

#[test]
fn reliable_provisional_is_retransmitted_until_the_prack() {
    let bob = reliable_callee(BOB, 21, 1, Some(ms(500)));
    let mut world = World::new(config(), vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.alice().auto_prack = false;
    world.call(secs(4));
    // T1 = 500 ms, doubling: sent at 0, then 0.5, 1.5 and 3.5 s.
    assert_eq!(sent_183_to_alice(&world), [0, 500, 1500, 3500]);
    assert!(world.bob().received_of(Method::Prack).is_empty());
    assert_eq!(invite_final(world.alice()), None);

    let now = world.now();
    world.alice().send_prack(now);
    world.run(secs(10));
    // No more retransmissions after the PRACK; Bob got his PRACK and answered.
    assert_eq!(sent_183_to_alice(&world).len(), 4);
    assert_eq!(world.bob().received_of(Method::Prack).len(), 1);
    let alice = world.alice();
    assert_eq!(alice.responses_to(Method::Prack)[0].status().0, 200);
    assert_eq!(invite_final(alice), Some(200));
}

#[test]
fn no_prack_within_64_t1_gives_504_and_cancels_the_forks() {
    let bob = reliable_callee(BOB, 21, 1, None);
    let mut world = World::new(config(), vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.alice().auto_prack = false;
    world.call(secs(31));
    assert_eq!(invite_final(world.alice()), None, "not before 64*T1");
    world.run(secs(3));
    // 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; given up at 32 s.
    assert_eq!(
        sent_183_to_alice(&world),
        [0, 500, 1500, 3500, 7500, 15500, 31500]
    );
    assert_eq!(invite_final(world.alice()), Some(504));
    assert_eq!(world.bob().cancels, 1);
    assert!(world.bob().received_of(Method::Prack).is_empty());
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    let record = &pbx.records[0];
    assert_eq!(record.disposition, Disposition::Failed);
    assert_eq!(record.hangup_status, 504);
    assert_eq!(record.hangup_side, HangupSide::System);
    assert!(record.answered_at_ms.is_none());
}

#[test]
fn the_callers_2xx_waits_for_the_prack_of_a_183_with_sdp() {
    // Bob answers 1 s after his 183 whether PRACKed or not.
    let mut bob = reliable_callee(BOB, 21, 1, None);
    bob.answer = Answer::After(secs(1));
    let mut world = World::new(config(), vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.alice().auto_prack = false;
    world.call(secs(3));
    // Bob's 2xx was ACKed at once, but Alice's 2xx is held.
    assert_eq!(world.bob().received_of(Method::Ack).len(), 1);
    assert_eq!(invite_final(world.alice()), None);
    assert!(world.pbx().records.is_empty());
    let held_since = world.now();
    world.alice().send_prack(held_since);
    world.run(secs(1));
    let alice = world.alice();
    assert_eq!(alice.responses_to(Method::Prack)[0].status().0, 200);
    assert_eq!(invite_final(alice), Some(200));
    let answer = response_body(alice.responses_to(Method::Invite).last().unwrap());
    assert!(answer.contains("m=audio 30004 "), "{answer}");
    // The call is answered now, and hangs up normally.
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    let record = world.pbx().records[0].clone();
    assert_eq!(record.disposition, Disposition::Answered);
    let started = record.started_at_ms;
    assert!(
        record.answered_at_ms.unwrap() - started >= 3000,
        "{record:?}"
    );
}

#[test]
fn a_cancel_while_the_2xx_is_held_sends_bye_to_the_answered_fork() {
    let mut bob = reliable_callee(BOB, 21, 1, None);
    bob.answer = Answer::After(secs(1));
    let mut world = World::new(config(), vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.alice().auto_prack = false;
    world.call(secs(2));
    let now = world.now();
    world.alice().cancel(now);
    world.run(secs(2));
    assert_eq!(invite_final(world.alice()), Some(487));
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    let record = world.pbx().records[0].clone();
    assert_eq!(record.disposition, Disposition::Cancelled);
}

#[test]
fn each_forks_provisional_is_pracked_in_its_own_dialog_with_its_own_rseq() {
    // Bob sends a reliable 183 with SDP (RSeq 5) and never answers; Bob2 a reliable 180
    // (RSeq 9) and answers a second after its PRACK. Bob's 183 is delayed 5 ms so it
    // reaches the PBX while Bob2's 180 still awaits Alice's PRACK: it is queued.
    let bob = reliable_callee(BOB, 21, 5, None);
    let mut bob2 = Ua::new(BOB2, Answer::Never, 22);
    bob2.reliably = Some(Reliably {
        with_sdp: false,
        regardless: false,
        rseq: 9,
        answer_after_prack: Some(secs(1)),
    });
    let mut world = World::new(config(), vec![bob, bob2]);
    let bob_address = addr(BOB);
    world
        .net
        .add_rule(NetAction::Delay(ms(5)), Some(1), move |d| {
            d.source == bob_address && d.bytes.starts_with(b"SIP/2.0 183")
        });
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(3));

    // Alice: a reliable 180 then a reliable 183, RSeq consecutive, each PRACKed.
    let alice = world.alice();
    let early = provisionals(alice);
    let statuses: Vec<u16> = early.iter().map(|r| r.status().0).collect();
    assert_eq!(statuses, [180, 183]);
    assert_eq!(rseq(&early[1]), rseq(&early[0]) + 1);
    assert!(early[0].body().is_empty());
    assert!(response_body(&early[1]).contains("m=audio 30004 "));
    assert_eq!(alice.pracks_sent, 2);
    assert_eq!(invite_final(alice), Some(200));

    // Each fork got one PRACK, with its own RSeq, in its own Call-ID.
    for (index, rseq) in [(2, 5), (3, 9)] {
        let ua = world.ua(index);
        let invite = ua.received_of(Method::Invite)[0].clone();
        let pracks = ua.received_of(Method::Prack);
        assert_eq!(pracks.len(), 1, "fork {index}: {:?}", ua.methods());
        let expected = format!("{rseq} 1 INVITE");
        assert_eq!(
            header(pracks[0].headers(), &HeaderName::RAck).as_deref(),
            Some(expected.as_str())
        );
        assert_eq!(pracks[0].call_id().unwrap(), invite.call_id().unwrap());
    }
    // Bob2 answered; Bob was cancelled.
    assert_eq!(world.ua(2).cancels, 1);
    let record = world.pbx().records.first().cloned();
    assert!(record.is_none(), "call still up: {record:?}");
    assert_eq!(
        world.pbx().calls.call_count(),
        1,
        "the call is up with Bob2"
    );
}

#[test]
fn an_offer_in_the_prack_is_relayed_with_its_sdp_rewritten() {
    let bob = reliable_callee(BOB, 21, 1, Some(secs(1)));
    let mut world = World::new(config(), vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.alice().prack_offer = Some("sendonly");
    world.call(secs(3));
    // Bob's PRACK carries Alice's offer pointed at the relay's B side.
    let bob = world.bob();
    let prack = bob.received_of(Method::Prack)[0].clone();
    let offer = body_text(&prack);
    assert!(offer.contains(&format!("c=IN IP4 {RELAY_IP}")), "{offer}");
    assert!(offer.contains("m=audio 30006 "), "{offer}");
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(!offer.contains("192.168.1.10"), "Alice leaked: {offer}");
    // Alice's 200 to her PRACK carries Bob's answer pointed at the relay's A side.
    let alice = world.alice();
    let ok = alice.responses_to(Method::Prack)[0].clone();
    assert_eq!(ok.status().0, 200);
    let answer = response_body(&ok);
    assert!(answer.contains("m=audio 30004 "), "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(!answer.contains("192.168.2.20"), "Bob leaked: {answer}");
    assert_eq!(invite_final(alice), Some(200));
}

#[test]
fn a_caller_without_100rel_never_gets_require_100rel() {
    // A callee that honours our Supported: plain 180, and no 100rel offered to it.
    let mut bob = reliable_callee(BOB, 21, 1, None);
    bob.answer = Answer::After(secs(1));
    let mut world = World::new(config(), vec![bob]);
    world.call(secs(3));
    let invite = world.bob().received_of(Method::Invite)[0].clone();
    let supported = header(invite.headers(), &HeaderName::Supported).unwrap_or_default();
    assert!(!supported.contains("100rel"), "{supported}");
    let alice = world.alice();
    assert!(
        alice
            .responses
            .iter()
            .all(|r| !has_100rel(r.headers(), &HeaderName::Require)
                && r.headers().get(&HeaderName::RSeq).is_none())
    );
    assert_eq!(invite_final(alice), Some(200));
    assert!(world.bob().received_of(Method::Prack).is_empty());
}

#[test]
fn a_reliable_183_the_caller_cannot_take_is_pracked_by_us_and_relayed_unreliably() {
    // A broken callee sends a reliable 183 although nobody offered 100rel.
    let mut bob = Ua::new(BOB, Answer::Never, 21);
    bob.reliably = Some(Reliably {
        with_sdp: true,
        regardless: true,
        rseq: 7,
        answer_after_prack: Some(secs(1)),
    });
    let mut world = World::new(config(), vec![bob]);
    world.call(secs(3));
    let pracks = world.bob().received_of(Method::Prack);
    assert_eq!(pracks.len(), 1);
    assert_eq!(
        header(pracks[0].headers(), &HeaderName::RAck).as_deref(),
        Some("7 1 INVITE")
    );
    let alice = world.alice();
    let early = provisionals(alice);
    assert_eq!(early[0].status().0, 183);
    assert!(response_body(&early[0]).contains("m=audio 30004 "));
    assert!(alice.responses.iter().all(|r| {
        !has_100rel(r.headers(), &HeaderName::Require)
            && r.headers().get(&HeaderName::RSeq).is_none()
    }));
    assert_eq!(sent_183_to_alice(&world).len(), 1, "sent unreliably, once");
    assert_eq!(invite_final(world.alice()), Some(200));
}

#[test]
fn a_caller_that_requires_100rel_gets_every_provisional_reliably() {
    // Bob knows nothing of 100rel: a plain 180, then 200.
    let bob = Ua::new(BOB, Answer::After(secs(1)), 21);
    let mut world = World::new(config(), vec![bob]);
    world.alice().rel100 = Some(HeaderName::Require);
    world.call(secs(3));
    let invite = world.bob().received_of(Method::Invite)[0].clone();
    let supported = header(invite.headers(), &HeaderName::Supported).unwrap_or_default();
    assert!(supported.contains("100rel"), "{supported}");
    assert!(header(invite.headers(), &HeaderName::Require).is_none());
    let alice = world.alice();
    let early = provisionals(alice);
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].status().0, 180);
    assert!(has_100rel(early[0].headers(), &HeaderName::Require));
    assert_eq!(alice.responses_to(Method::Prack)[0].status().0, 200);
    assert_eq!(invite_final(alice), Some(200));
    assert!(world.bob().received_of(Method::Prack).is_empty());
}

#[test]
fn a_prack_matching_nothing_gets_481() {
    let bob = reliable_callee(BOB, 21, 1, None);
    let mut world = World::new(config(), vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(2));
    // A second PRACK for the same (already acknowledged) RSeq.
    let now = world.now();
    world.alice().send_prack(now);
    world.run(secs(1));
    let answers: Vec<u16> = world
        .alice()
        .responses_to(Method::Prack)
        .iter()
        .map(|r| r.status().0)
        .collect();
    assert_eq!(answers, [200, 481]);
    assert_eq!(world.bob().received_of(Method::Prack).len(), 1);
}

#[test]
fn a_carrier_challenge_to_our_prack_is_answered_once() {
    let mut carrier = reliable_callee(BOB, 21, 1, Some(secs(1)));
    carrier.challenge = Some((407, "s3cret"));
    carrier.challenge_in_dialog = true;
    let mut world = World::new(config(), vec![carrier]);
    world.pbx().trunks = Some(vec![Some(TrunkCredentials {
        username: "acct".into(),
        password: "s3cret".into(),
        realm: None,
    })]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(4));
    let carrier = world.bob();
    assert_eq!(
        carrier.in_dialog_auth,
        [("PRACK".to_owned(), None), ("PRACK".to_owned(), Some(true)),]
    );
    let pracks: Vec<Request> = carrier
        .received_of(Method::Prack)
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(
        pracks[0].cseq().unwrap().seq + 1,
        pracks[1].cseq().unwrap().seq
    );
    assert_eq!(invite_final(world.alice()), Some(200));
    // The dialog's CSeq goes on above the PRACKs.
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(2));
    let byes = world.bob().received_of(Method::Bye);
    assert!(byes[0].cseq().unwrap().seq > pracks[1].cseq().unwrap().seq);
}

#[test]
fn a_retransmitted_reliable_183_is_relayed_and_pracked_once() {
    let bob = reliable_callee(BOB, 21, 1, Some(secs(1)));
    let mut world = World::new(config(), vec![bob]);
    let bob_address = addr(BOB);
    world.net.add_rule(NetAction::Duplicate, Some(1), move |d| {
        d.source == bob_address && d.bytes.starts_with(b"SIP/2.0 183")
    });
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(3));
    // RFC 3262 §4: the copy (same RSeq) is neither processed nor PRACKed again.
    assert_eq!(sent_183_to_alice(&world).len(), 1);
    assert_eq!(world.bob().received_of(Method::Prack).len(), 1);
    assert_eq!(world.alice().pracks_sent, 1);
    assert_eq!(invite_final(world.alice()), Some(200));
}

#[test]
fn another_forks_answer_waits_for_the_prack_of_the_relayed_183() {
    // Bob's reliable 183 with SDP reaches Alice; Bob2 (no 100rel) answers a second later.
    let bob = reliable_callee(BOB, 21, 1, None);
    let bob2 = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut world = World::new(config(), vec![bob, bob2]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.alice().auto_prack = false;
    world.call(secs(3));
    assert_eq!(world.ua(3).received_of(Method::Ack).len(), 1, "Bob2 ACKed");
    assert_eq!(world.ua(2).cancels, 1, "Bob cancelled");
    assert_eq!(invite_final(world.alice()), None, "held until the PRACK");
    let now = world.now();
    world.alice().send_prack(now);
    world.run(secs(1));
    let alice = world.alice();
    assert_eq!(alice.responses_to(Method::Prack)[0].status().0, 200);
    assert_eq!(invite_final(alice), Some(200));
    // The cancelled fork gets no PRACK.
    assert!(world.ua(2).received_of(Method::Prack).is_empty());
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.ua(3).received_of(Method::Bye).len(), 1);
    let record = world.pbx().records[0].clone();
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.answered_by.as_deref(), Some("bob-device-1"));
}
