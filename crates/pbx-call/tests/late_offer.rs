//! Late offer (RFC 3261 §13.2.1, RFC 3264) on the virtual clock: an INVITE without SDP, the
//! offer in the 2xx, the answer in the ACK; failures (no common codec, no ACK, an ACK
//! without answer), forking, 18x with SDP (an offer in a reliable 183 relayed to a caller
//! with 100rel, its answer in the PRACK; not relayed to one without), and re-INVITEs
//! without SDP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use pbx_call::{CallConfig, Disposition, HangupSide, Side};
use pbx_sip::{HeaderName, Method, Request};
use support::*;

fn config() -> CallConfig {
    config_ringing_for(secs(30))
}

/// Alice calls without an offer; the callees are `callees`.
fn late_world(callees: Vec<Ua>) -> World {
    let mut world = World::new(config(), callees);
    world.alice().offerless = true;
    world
}

/// The `m=audio` line of an SDP body.
fn m_line(body: &str) -> &str {
    body.lines()
        .find(|line| line.starts_with("m=audio"))
        .unwrap_or_else(|| panic!("no m=audio in {body:?}"))
}

/// The final response to Alice's INVITE.
fn invite_final(ua: &Ua) -> Option<u16> {
    ua.responses_to(Method::Invite)
        .iter()
        .map(|r| r.status().0)
        .find(|s| *s >= 200)
}

/// Alice's answer as Bob gets it: on the relay's B side, her address hidden.
fn assert_answer_toward_bob(answer: &str) {
    assert!(answer.contains(&format!("c=IN IP4 {RELAY_IP}")), "{answer}");
    assert_eq!(m_line(answer), "m=audio 30006 RTP/AVP 8 101", "{answer}");
    assert!(
        !answer.contains("192.168.1.10"),
        "Alice's address leaked: {answer}"
    );
}

/// Alice's INVITE was answered 200 without SDP (the offer and answer went in the 18x and
/// the PRACK).
fn assert_ok_without_sdp(alice: &Ua) {
    assert_eq!(invite_final(alice), Some(200));
    let ok = *alice.responses_to(Method::Invite).last().unwrap();
    assert!(ok.body().is_empty(), "{}", response_body(ok));
    assert!(ok.headers().get(&HeaderName::ContentType).is_none());
}

fn acks(ua: &Ua) -> Vec<Request> {
    ua.received_of(Method::Ack).into_iter().cloned().collect()
}

#[test]
fn the_offer_in_the_2xx_reaches_the_caller_and_the_answer_in_its_ack_the_callee() {
    let mut bob = Ua::new(BOB, Answer::After(secs(1)), 21);
    // G.729 is not relayed: the offer reaches Alice without it.
    bob.payload_types = vec!["18", "8", "101"];
    let mut world = late_world(vec![bob]);
    world.call(secs(3));
    // Bob's INVITE carries no offer.
    let invite = world.bob().received_of(Method::Invite)[0].clone();
    assert!(invite.body().is_empty(), "{}", body_text(&invite));
    assert!(invite.headers().get(&HeaderName::ContentType).is_none());
    // Alice's 200: Bob's offer, restricted to our codecs, pointed at the relay's A side.
    let alice = world.alice();
    assert_eq!(invite_final(alice), Some(200));
    let offer = response_body(alice.responses_to(Method::Invite).last().unwrap());
    assert!(offer.contains(&format!("c=IN IP4 {RELAY_IP}")), "{offer}");
    assert_eq!(m_line(&offer), "m=audio 30004 RTP/AVP 8 101", "{offer}");
    assert!(
        !offer.contains("192.168.2.20"),
        "Bob's address leaked: {offer}"
    );
    assert!(!offer.contains("G729"), "{offer}");
    // Alice's ACK carried her answer; Bob's ACK carries it rewritten to the relay's B side.
    assert!(body_text(&alice.acks_sent[0]).contains("m=audio 4000 "));
    let bob_acks = acks(world.bob());
    assert_eq!(bob_acks.len(), 1);
    assert_answer_toward_bob(&body_text(&bob_acks[0]));
    assert_eq!(
        bob_acks[0].headers().get(&HeaderName::ContentType),
        Some(&b"application/sdp"[..])
    );
    {
        let log = world.pbx().media.log.lock().unwrap();
        assert_eq!(log.allocated, 1);
        assert!(log.remotes.contains(&(Side::A, addr("192.168.1.10:4000"))));
        assert!(log.remotes.contains(&(Side::B, addr("192.168.2.20:4000"))));
    }
    // The call runs and is recorded like any other.
    let pbx = caller_talks_ten_seconds_and_hangs_up(&mut world);
    assert_eq!(pbx.records[0].hangup_status, 200);
}

#[test]
fn an_offer_without_a_relayed_codec_gets_ack_with_rejected_streams_bye_and_488() {
    let mut bob = Ua::new(BOB, Answer::After(secs(1)), 21);
    bob.payload_types = vec!["18"];
    let mut world = late_world(vec![bob]);
    world.call(secs(3));
    assert_eq!(invite_final(world.alice()), Some(488));
    // Bob's 2xx was ACKed with a valid answer rejecting his stream, then BYE.
    let bob = world.bob();
    let bob_acks = acks(bob);
    assert_eq!(bob_acks.len(), 1);
    let answer = body_text(&bob_acks[0]);
    assert!(m_line(&answer).starts_with("m=audio 0 "), "{answer}");
    assert!(!answer.contains("192.168.2.20"), "{answer}");
    let methods = bob.methods();
    assert_eq!(methods, ["INVITE", "ACK", "BYE"], "{methods:?}");
    let bye = bob.received_of(Method::Bye)[0];
    assert!(bye.headers().get(&HeaderName::Reason).is_some());
    let record = &world.pbx().records[0];
    assert_eq!(record.disposition, Disposition::Incompatible);
    assert_eq!(record.hangup_status, 488);
    assert_eq!(record.hangup_cause, "offer without common codec");
    assert_eq!(record.billable_secs, 0);
    assert!(record.answered_at_ms.is_none());
    assert_eq!(world.pbx().calls.call_count(), 0);
}

#[test]
fn a_caller_that_never_acks_is_sent_bye_and_the_callee_ack_and_bye() {
    let mut world = late_world(vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.net.drop_containing(None, "ACK sip:cloudpbx@");
    world.call(secs(3));
    assert_eq!(invite_final(world.alice()), Some(200));
    // Bob is not ACKed while the answer is awaited.
    assert!(acks(world.bob()).is_empty());
    assert_eq!(world.pbx().calls.call_count(), 1);
    world.run(secs(40));
    let bob = world.bob();
    let bob_acks = acks(bob);
    assert_eq!(bob_acks.len(), 1, "{:?}", bob.methods());
    assert!(m_line(&body_text(&bob_acks[0])).starts_with("m=audio 0 "));
    assert_eq!(bob.received_of(Method::Bye).len(), 1);
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    let record = &pbx.records[0];
    assert_failed_unanswered(record, 408, "no ACK from caller");
    // Given up at 64·T1 after the 2xx (about 1 s after the call started).
    let ended = record.ended_at_ms - record.started_at_ms;
    assert!((32_000..34_500).contains(&ended), "{record:?}");
}

#[test]
fn an_ack_without_an_answer_ends_the_call_on_both_legs() {
    let mut world = late_world(vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.alice().ack_without_answer = true;
    world.call(secs(3));
    assert_eq!(invite_final(world.alice()), Some(200));
    let bob = world.bob();
    assert_eq!(bob.methods(), ["INVITE", "ACK", "BYE"]);
    let ack = &acks(bob)[0];
    assert!(m_line(&body_text(ack)).starts_with("m=audio 0 "));
    let alice_bye = world.alice().received_of(Method::Bye);
    assert_eq!(alice_bye.len(), 1);
    let reason = alice_bye[0].headers().get(&HeaderName::Reason).unwrap();
    assert!(
        String::from_utf8_lossy(reason).contains("cause=488"),
        "{reason:?}"
    );
    let record = &world.pbx().records[0];
    assert_eq!(record.disposition, Disposition::Failed);
    assert_eq!(record.hangup_status, 488);
    assert_eq!(record.hangup_cause, "ACK without SDP answer");
    assert_eq!(record.billable_secs, 0);
}

#[test]
fn forking_without_an_offer_the_first_2xx_wins_and_the_other_fork_is_cancelled() {
    let mut bob2 = Ua::new(BOB2, Answer::Never, 22);
    bob2.payload_types = vec!["0", "101"];
    let callees = vec![Ua::new(BOB, Answer::After(secs(2)), 21), bob2];
    let mut world = late_world(callees);
    world.call(secs(4));
    for index in [2, 3] {
        let invite = world.ua(index).received_of(Method::Invite)[0].clone();
        assert!(invite.body().is_empty(), "fork {index} got an offer");
    }
    assert_eq!(world.ua(3).cancels, 1, "the ringing fork got CANCEL");
    assert!(acks(world.ua(3)).is_empty());
    // Alice got the winner's offer (PCMA), the winner Alice's answer.
    let offer = response_body(world.alice().responses_to(Method::Invite).last().unwrap());
    assert_eq!(m_line(&offer), "m=audio 30004 RTP/AVP 8 101");
    let bob_acks = acks(world.bob());
    assert_eq!(bob_acks.len(), 1);
    assert_eq!(
        m_line(&body_text(&bob_acks[0])),
        "m=audio 30006 RTP/AVP 8 101"
    );
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 1);
    assert!(pbx.records.is_empty());
}

#[test]
fn sdp_in_a_18x_of_a_late_offer_call_is_not_relayed_to_a_caller_without_100rel() {
    // Bob puts his offer in a reliable 183 although we did not offer 100rel (Alice has
    // none); we PRACK it and Alice gets the offer in the 2xx, as before.
    let mut bob = Ua::new(BOB, Answer::After(secs(1)), 21);
    bob.reliably = Some(Reliably {
        with_sdp: true,
        regardless: true,
        rseq: 1,
        answer_after_prack: None,
    });
    let mut world = late_world(vec![bob]);
    world.call(secs(3));
    let invite = world.bob().received_of(Method::Invite)[0].clone();
    assert!(!has_100rel(invite.headers(), &HeaderName::Supported));
    let pracks = world.bob().received_of(Method::Prack);
    assert_eq!(pracks.len(), 1);
    assert!(pracks[0].body().is_empty());
    let alice = world.alice();
    let provisional: Vec<_> = alice
        .responses_to(Method::Invite)
        .into_iter()
        .filter(|r| (180..200).contains(&r.status().0))
        .collect();
    assert!(!provisional.is_empty());
    assert!(provisional.iter().all(|r| r.body().is_empty()));
    assert!(
        provisional
            .iter()
            .all(|r| !has_100rel(r.headers(), &HeaderName::Require))
    );
    assert_eq!(alice.pracks_sent, 0);
    // The offer comes in the 2xx, the answer goes in Bob's ACK.
    assert_eq!(invite_final(alice), Some(200));
    let offer = response_body(alice.responses_to(Method::Invite).last().unwrap());
    assert_eq!(m_line(&offer), "m=audio 30004 RTP/AVP 8 101");
    let bob_acks = acks(world.bob());
    assert_eq!(
        m_line(&body_text(&bob_acks[0])),
        "m=audio 30006 RTP/AVP 8 101"
    );
}

/// Alice calls without an offer and with `Supported: 100rel`; Bob offers in a reliable 183
/// (G.729 first, which we do not relay) and answers 500 ms after our PRACK.
fn early_offer_world() -> World {
    let mut bob = reliable_callee(BOB, 21, 1, Some(std::time::Duration::from_millis(500)));
    bob.payload_types = vec!["18", "8", "101"];
    let mut world = late_world(vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world
}

/// Alice's reliable provisional responses.
fn reliable_provisionals(alice: &Ua) -> Vec<pbx_sip::Response> {
    alice
        .responses_to(Method::Invite)
        .into_iter()
        .filter(|r| (101..200).contains(&r.status().0))
        .filter(|r| has_100rel(r.headers(), &HeaderName::Require))
        .cloned()
        .collect()
}

#[test]
fn an_offer_in_a_reliable_183_reaches_the_caller_reliably_and_its_prack_brings_the_answer() {
    let mut world = early_offer_world();
    world.call(secs(1));
    // Bob's INVITE: no offer, but 100rel (Alice supports it).
    let invite = world.bob().received_of(Method::Invite)[0].clone();
    assert!(invite.body().is_empty());
    assert!(has_100rel(invite.headers(), &HeaderName::Supported));
    // Alice's 183: reliable (our RSeq), Bob's offer restricted to our codecs, on the relay.
    let alice = world.alice();
    let reliable = reliable_provisionals(alice);
    assert_eq!(reliable.len(), 1, "{reliable:?}");
    assert_eq!(reliable[0].status().0, 183);
    assert!(reliable[0].headers().get(&HeaderName::RSeq).is_some());
    let offer = response_body(&reliable[0]);
    assert!(offer.contains(&format!("c=IN IP4 {RELAY_IP}")), "{offer}");
    assert_eq!(m_line(&offer), "m=audio 30004 RTP/AVP 8 101", "{offer}");
    assert!(
        !offer.contains("192.168.2.20"),
        "Bob's address leaked: {offer}"
    );
    assert_eq!(alice.pracks_sent, 1);
    assert_eq!(
        alice.responses_to(Method::Prack)[0].status().0,
        200,
        "Alice's PRACK"
    );
    // Alice's 200: no SDP (the exchange is complete); her ACK carries none either.
    assert_ok_without_sdp(alice);
    assert!(alice.acks_sent[0].body().is_empty());
    // Bob's PRACK carries Alice's answer rewritten to the relay's B side.
    let pracks = world.bob().received_of(Method::Prack);
    assert_eq!(pracks.len(), 1);
    assert_answer_toward_bob(&body_text(pracks[0]));
    assert_eq!(
        pracks[0].headers().get(&HeaderName::RAck),
        Some(&b"1 1 INVITE"[..])
    );
    // Bob's ACK (at once, to his 2xx that repeated his session) carries no SDP.
    let bob_acks = acks(world.bob());
    assert_eq!(bob_acks.len(), 1);
    assert!(bob_acks[0].body().is_empty(), "{}", body_text(&bob_acks[0]));
    // The relay learnt both sides: Bob's from his 183, Alice's from her PRACK.
    {
        let pbx = world.pbx();
        let log = pbx.media.log.lock().unwrap();
        assert!(log.remotes.contains(&(Side::B, addr("192.168.2.20:4000"))));
        assert!(log.remotes.contains(&(Side::A, addr("192.168.1.10:4000"))));
    }
    assert_eq!(world.pbx().calls.call_count(), 1);
    // The call runs and ends as any other.
    caller_talks_ten_seconds_and_hangs_up(&mut world);
}

#[test]
fn a_2xx_before_our_prack_gets_its_ack_with_the_answer_from_the_callers_prack() {
    // Bob answers 200 ms after his reliable 183 with the offer, without waiting for our
    // PRACK (RFC 3262 §3 forbids it); Alice PRACKs late.
    let mut bob = Ua::new(
        BOB,
        Answer::After(std::time::Duration::from_millis(200)),
        21,
    );
    bob.reliably = Some(Reliably {
        with_sdp: true,
        regardless: false,
        rseq: 1,
        answer_after_prack: None,
    });
    let mut world = late_world(vec![bob]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.alice().auto_prack = false;
    world.call(secs(1));
    // Bob's 2xx is not ACKed yet and Alice's 2xx is held until her PRACK.
    assert!(acks(world.bob()).is_empty());
    assert_eq!(invite_final(world.alice()), None);
    assert!(!reliable_provisionals(world.alice()).is_empty());
    let now = world.now();
    world.alice().send_prack(now);
    world.run(secs(1));
    // Her answer reaches Bob in his ACK (no PRACK: his early dialog is confirmed).
    assert!(world.bob().received_of(Method::Prack).is_empty());
    let bob_acks = acks(world.bob());
    assert_eq!(bob_acks.len(), 1);
    assert_answer_toward_bob(&body_text(&bob_acks[0]));
    // Alice's 2xx carries no new offer, her ACK no SDP.
    let alice = world.alice();
    assert_ok_without_sdp(alice);
    assert!(alice.acks_sent[0].body().is_empty());
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn another_fork_winning_after_the_183_exchange_gets_the_callers_answer_in_its_ack() {
    // Bob offers in a reliable 183 (relayed, answered in Alice's PRACK) but never answers;
    // Bob2 rings and answers with its own offer (PCMU first, PCMA).
    let bob = reliable_callee(BOB, 21, 1, None);
    let mut bob2 = Ua::new(BOB2, Answer::After(secs(1)), 22);
    bob2.payload_types = vec!["0", "8", "101"];
    let mut world = late_world(vec![bob, bob2]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(3));
    assert_eq!(world.bob().received_of(Method::Prack).len(), 1);
    assert_eq!(world.bob().cancels, 1, "the losing fork got CANCEL");
    // Bob2's ACK: Alice's answer (PCMA), restricted to what Bob2 offered, on the relay.
    let bob2_acks = acks(world.ua(3));
    assert_eq!(bob2_acks.len(), 1);
    assert_answer_toward_bob(&body_text(&bob2_acks[0]));
    // Alice's 2xx carries no new offer; the relay's B side points at Bob2.
    let alice = world.alice();
    assert_ok_without_sdp(alice);
    let bob2_media = addr(&format!("{}:4000", addr(BOB2).ip()));
    let pbx = world.pbx();
    let log = pbx.media.log.lock().unwrap();
    assert_eq!(
        log.remotes.last(),
        Some(&(Side::B, bob2_media)),
        "{:?}",
        log.remotes
    );
    drop(log);
    // Bob2's own offer was never sent to Alice: her next description (Bob2 holds) is the
    // version after the 183's, not one further (RFC 3264 §8: one increment per change she
    // sees, or she may take a changed description for the one she has).
    let early = world
        .alice()
        .responses_to(Method::Invite)
        .into_iter()
        .find(|r| r.status().0 == 183)
        .map(response_body)
        .expect("the reliable 183");
    let now = world.now();
    world
        .ua(3)
        .send_in_dialog(now, Method::Invite, Some("sendonly"));
    world.run(secs(1));
    let reinvites = world.alice().received_of(Method::Invite);
    let hold = body_text(reinvites.last().expect("the hold re-INVITE"));
    assert!(hold.contains("a=sendonly"), "{hold}");
    assert_eq!(
        origin_version(&hold),
        origin_version(&early) + 1,
        "183: {early}\nhold: {hold}"
    );
}

/// The session version of a description's `o=` line.
fn origin_version(sdp: &str) -> u64 {
    let origin = sdp
        .lines()
        .find(|line| line.starts_with("o="))
        .unwrap_or_else(|| panic!("no o= in {sdp}"));
    origin
        .split_whitespace()
        .nth(2)
        .and_then(|version| version.parse().ok())
        .unwrap_or_else(|| panic!("no version in {origin}"))
}

#[test]
fn a_prack_without_the_answer_to_the_183_offer_fails_the_call_with_488() {
    let mut world = early_offer_world();
    world.alice().prack_without_answer = true;
    world.call(secs(3));
    let alice = world.alice();
    assert_eq!(alice.pracks_sent, 1);
    // The PRACK is acknowledged (it stops our 183's retransmissions), the INVITE fails.
    assert_eq!(alice.responses_to(Method::Prack)[0].status().0, 200);
    assert_eq!(invite_final(alice), Some(488));
    assert!(alice.acks_sent.is_empty());
    // Bob gets no PRACK of ours (his offer was never answered) but a CANCEL.
    assert!(world.bob().received_of(Method::Prack).is_empty());
    assert_eq!(world.bob().cancels, 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_failed_unanswered(&pbx.records[0], 488, "PRACK without SDP answer");
}

/// The call's record: failed by the platform with `status` and `cause`, nothing billed.
fn assert_failed_unanswered<C: std::fmt::Debug>(
    record: &pbx_call::CallRecord<C>,
    status: u16,
    cause: &str,
) {
    assert_eq!(record.disposition, Disposition::Failed, "{record:?}");
    assert_eq!(record.hangup_status, status, "{record:?}");
    assert_eq!(record.hangup_cause, cause, "{record:?}");
    assert_eq!(record.hangup_side, HangupSide::System, "{record:?}");
    assert_eq!(record.billable_secs, 0, "{record:?}");
}

#[test]
fn a_prack_answer_without_a_common_codec_fails_the_call_with_488() {
    let mut world = early_offer_world();
    // Alice answers PCMU only, which Bob's (restricted) offer does not have.
    world.alice().payload_types = vec!["0"];
    world.call(secs(3));
    assert_eq!(invite_final(world.alice()), Some(488));
    assert_eq!(world.bob().cancels, 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_failed_unanswered(&pbx.records[0], 488, "unusable SDP answer in PRACK");
}

#[test]
fn a_reinvite_without_sdp_passes_across_with_the_answer_in_the_ack() {
    let mut world = World::new(config(), vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.call(secs(3));
    assert_eq!(invite_final(world.alice()), Some(200));
    // Alice refreshes with a re-INVITE without SDP.
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Invite, None);
    world.run(secs(2));
    let reinvite = world.bob().received_of(Method::Invite)[1].clone();
    assert!(reinvite.body().is_empty(), "{}", body_text(&reinvite));
    // Bob's 2xx offer reached Alice rewritten; her answer reached Bob in the ACK.
    let alice = world.alice();
    let ok = (*alice.responses_to(Method::Invite).last().unwrap()).clone();
    assert_eq!(ok.cseq().unwrap().seq, 2);
    let offer = response_body(&ok);
    assert_eq!(m_line(&offer), "m=audio 30004 RTP/AVP 8 101", "{offer}");
    assert!(!offer.contains("192.168.2.20"));
    let bob_acks = acks(world.bob());
    assert_eq!(bob_acks.len(), 2);
    let answer = body_text(&bob_acks[1]);
    assert_eq!(m_line(&answer), "m=audio 30006 RTP/AVP 8 101", "{answer}");
    assert!(!answer.contains("192.168.1.10"));
    // And the other way: Bob re-INVITEs without SDP, Alice's offer comes back to him.
    let now = world.now();
    world.bob().send_in_dialog(now, Method::Invite, None);
    world.run(secs(2));
    let offer = response_body(world.bob().responses_to(Method::Invite).last().unwrap());
    assert_eq!(m_line(&offer), "m=audio 30006 RTP/AVP 8 101", "{offer}");
    let alice_acks = acks(world.alice());
    let answer = body_text(alice_acks.last().unwrap());
    assert_eq!(m_line(&answer), "m=audio 30004 RTP/AVP 8 101", "{answer}");
    // The call is still up and ends normally.
    assert_eq!(world.pbx().calls.call_count(), 1);
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    let record = &world.pbx().records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.hangup_cause, "BYE");
}

#[test]
fn a_reinvite_without_sdp_whose_ack_brings_no_answer_ends_the_call() {
    let mut world = World::new(config(), vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.call(secs(3));
    world.alice().ack_without_answer = true;
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Invite, None);
    world.run(secs(2));
    let bob = world.bob();
    let bob_acks = acks(bob);
    assert_eq!(bob_acks.len(), 2);
    assert!(m_line(&body_text(&bob_acks[1])).starts_with("m=audio 0 "));
    assert_eq!(bob.received_of(Method::Bye).len(), 1);
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    let record = &world.pbx().records[0];
    // The call ran before the failed refresh: answered, ended by the platform.
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.hangup_cause, "ACK without SDP answer");
    assert_eq!(record.hangup_side, HangupSide::System);
}

#[test]
fn a_bye_from_the_caller_before_its_ack_reaches_the_callee_after_an_ack() {
    let mut world = late_world(vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.net.drop_containing(None, "ACK sip:cloudpbx@");
    world.call(secs(3));
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    // RFC 3261 §13.2.1: Bob's 2xx is ACKed (streams rejected) before the BYE.
    let bob = world.bob();
    assert_eq!(bob.methods(), ["INVITE", "ACK", "BYE"]);
    assert!(m_line(&body_text(&acks(bob)[0])).starts_with("m=audio 0 "));
    let record = &world.pbx().records[0];
    assert_eq!(record.hangup_side, HangupSide::Caller);
    assert_eq!(world.pbx().calls.call_count(), 0);
}

#[test]
fn a_trunk_call_without_an_offer_is_challenged_and_answered_the_same_way() {
    let mut carrier = Ua::new(BOB, Answer::After(secs(1)), 21);
    carrier.challenge = Some((407, "s3cret"));
    let mut world = late_world(vec![carrier]);
    world.pbx().trunks = Some(vec![Some(pbx_call::TrunkCredentials {
        username: "acct".into(),
        password: "s3cret".into(),
        realm: None,
    })]);
    world.call(secs(4));
    assert_eq!(invite_final(world.alice()), Some(200));
    let carrier = world.bob();
    assert_eq!(carrier.auth_results, [None, Some(true)]);
    let invites: Vec<Request> = carrier
        .received_of(Method::Invite)
        .into_iter()
        .cloned()
        .collect();
    assert!(invites.iter().all(|invite| invite.body().is_empty()));
    // The ACK of the answered INVITE carries Alice's answer, rewritten.
    let carrier_acks = acks(carrier);
    assert_eq!(carrier_acks.len(), 1);
    assert_eq!(
        carrier_acks[0].cseq().unwrap().seq,
        invites[1].cseq().unwrap().seq
    );
    assert_eq!(
        m_line(&body_text(&carrier_acks[0])),
        "m=audio 30006 RTP/AVP 8 101"
    );
}
