//! RFC 3311 UPDATE in early dialogs across the B2BUA on the virtual clock: after a fork's
//! reliable 18x opened its early dialog, an UPDATE from the caller goes to that fork (and one
//! from the fork to the caller) with its SDP rewritten for the relay both ways; the dialogs'
//! CSeqs carry on into the confirmed dialogs; an offer against an offer gets 491; an UPDATE
//! from the caller after unreliable ringing is answered by us (488 with an offer, else 200).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use pbx_call::{CallConfig, Disposition, HangupSide, TrunkCredentials};
use pbx_sip::{HeaderName, Method, Response};
use pbx_test_support::network::Action as NetAction;
use support::*;

fn config() -> CallConfig {
    config_ringing_for(secs(60))
}

/// Alice calls with 100rel; `callees` send their provisionals; the network runs 2 s (Alice
/// has PRACKed the reliable 183 by then).
fn ringing(callees: Vec<Ua>) -> World {
    let mut world = World::new(config(), callees);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(2));
    world
}

fn statuses_to_update(ua: &Ua) -> Vec<u16> {
    ua.responses_to(Method::Update)
        .iter()
        .map(|r| r.status().0)
        .collect()
}

fn last_update_answer(ua: &Ua) -> Response {
    (*ua.responses_to(Method::Update)
        .last()
        .expect("an UPDATE answer"))
    .clone()
}

fn invite_final(alice: &Ua) -> Option<u16> {
    alice
        .responses_to(Method::Invite)
        .into_iter()
        .map(|r| r.status().0)
        .rfind(|s| *s >= 200)
}

#[test]
fn the_callers_early_update_goes_to_the_fork_with_sdp_rewritten_both_ways() {
    let bob = reliable_callee(BOB, 21, 1, Some(secs(5)));
    let mut world = ringing(vec![bob]);
    assert_eq!(invite_final(world.alice()), None, "still ringing");
    let now = world.now();
    world.alice().send_early_update(now, Some("sendonly"));
    world.run(secs(1));

    // Bob got it in his early dialog, after our PRACK, with the offer pointed at the relay.
    let bob = world.bob();
    let invite = bob.received_of(Method::Invite)[0].clone();
    let updates = bob.received_of(Method::Update);
    assert_eq!(updates.len(), 1, "{:?}", bob.methods());
    let update = updates[0].clone();
    assert_eq!(update.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(update.from().unwrap().tag, invite.from().unwrap().tag);
    assert!(update.to().unwrap().tag.is_some());
    assert_eq!(update.cseq().unwrap().seq, 3, "INVITE 1, PRACK 2, UPDATE 3");
    assert_eq!(update.uri().to_string(), format!("sip:ua@{BOB}"));
    let offer = body_text(&update);
    assert!(offer.contains(&format!("c=IN IP4 {RELAY_IP}")), "{offer}");
    assert!(offer.contains("m=audio 30006 "), "{offer}");
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(!offer.contains("192.168.1.10"), "Alice leaked: {offer}");

    // Alice's 200 carries Bob's answer pointed at the relay's A side, and our Contact.
    let alice = world.alice();
    assert_eq!(statuses_to_update(alice), [200]);
    let ok = last_update_answer(alice);
    let answer = response_body(&ok);
    assert!(answer.contains("m=audio 30004 "), "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(!answer.contains("192.168.2.20"), "Bob leaked: {answer}");
    assert!(ok.headers().get(&HeaderName::Contact).is_some());
    let log = world.pbx().media.log.lock().unwrap();
    assert_eq!(log.holds, [true], "the hold reached the relay");
    drop(log);

    // Bob answers; the confirmed dialog goes on above the UPDATE's CSeq.
    world.run(secs(5));
    assert_eq!(invite_final(world.alice()), Some(200));
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    let byes = world.bob().received_of(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].cseq().unwrap().seq, 4);
    let record = world.pbx().records[0].clone();
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.hangup_side, HangupSide::Caller);
}

#[test]
fn the_callees_early_update_goes_to_the_caller_with_sdp_rewritten_both_ways() {
    let bob = reliable_callee(BOB, 21, 1, Some(secs(5)));
    let mut world = ringing(vec![bob]);
    let now = world.now();
    world.bob().send_early_update(now, Some("sendonly"));
    world.run(secs(1));

    // Alice got it in her early dialog with us (our tag, her Call-ID), offer at the relay.
    let alice = world.alice();
    let updates = alice.received_of(Method::Update);
    assert_eq!(updates.len(), 1, "{:?}", alice.methods());
    let update = updates[0].clone();
    let invite = alice.invite.clone().unwrap();
    assert_eq!(update.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(update.to().unwrap().tag, invite.from().unwrap().tag);
    assert_eq!(update.cseq().unwrap().seq, 1, "our first request to Alice");
    assert_eq!(update.uri().to_string(), format!("sip:ua@{ALICE}"));
    let offer = body_text(&update);
    assert!(offer.contains(&format!("c=IN IP4 {RELAY_IP}")), "{offer}");
    assert!(offer.contains("m=audio 30004 "), "{offer}");
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(!offer.contains("192.168.2.20"), "Bob leaked: {offer}");

    // Bob's 200 carries Alice's answer pointed at the relay's B side.
    let bob = world.bob();
    assert_eq!(statuses_to_update(bob), [200]);
    let answer = response_body(&last_update_answer(bob));
    assert!(answer.contains("m=audio 30006 "), "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(!answer.contains("192.168.1.10"), "Alice leaked: {answer}");

    // Bob answers and hangs up: our BYE to Alice goes on above our UPDATE's CSeq.
    world.run(secs(5));
    assert_eq!(invite_final(world.alice()), Some(200));
    let now = world.now();
    world.bob().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    let byes = world.alice().received_of(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].cseq().unwrap().seq, 2);
    let record = world.pbx().records[0].clone();
    assert_eq!(record.hangup_side, HangupSide::Callee);
}

#[test]
fn an_early_update_without_sdp_passes_without_sdp() {
    let bob = reliable_callee(BOB, 21, 1, None);
    let mut world = ringing(vec![bob]);
    let now = world.now();
    world.alice().send_early_update(now, None);
    world.run(secs(1));
    let update = world.bob().received_of(Method::Update)[0].clone();
    assert!(update.body().is_empty());
    assert_eq!(statuses_to_update(world.alice()), [200]);
    assert!(last_update_answer(world.alice()).body().is_empty());
    assert!(world.pbx().media.log.lock().unwrap().holds.is_empty());
}

#[test]
fn crossing_early_offers_get_491_for_the_second() {
    let bob = reliable_callee(BOB, 21, 1, None);
    let mut world = ringing(vec![bob]);
    let now = world.now();
    world.alice().send_early_update(now, Some("sendonly"));
    world.bob().send_early_update(now, Some("inactive"));
    world.run(secs(1));
    let alice = statuses_to_update(world.alice());
    let bob = statuses_to_update(world.bob());
    let mut both = [alice.clone(), bob.clone()].concat();
    both.sort_unstable();
    assert_eq!(both, [200, 491], "alice {alice:?}, bob {bob:?}");
    let refused = if alice == [491] {
        last_update_answer(world.alice())
    } else {
        last_update_answer(world.bob())
    };
    assert!(refused.headers().get(&HeaderName::RetryAfter).is_some());
    // Only the first offer went across: one UPDATE in all reached a peer.
    let passed = world.alice().received_of(Method::Update).len()
        + world.bob().received_of(Method::Update).len();
    assert_eq!(passed, 1);

    // The exchange is over: the next offer passes.
    let now = world.now();
    world.alice().send_early_update(now, Some("sendrecv"));
    world.run(secs(1));
    assert_eq!(statuses_to_update(world.alice()).last(), Some(&200));
}

#[test]
fn an_early_update_after_unreliable_ringing_is_answered_by_us() {
    // Bob rings unreliably (no early dialog of his is kept); Alice's early dialog exists (our
    // 180 opened it). Her offer cannot be taken before a reliable answer (RFC 3311 §5.1): 488;
    // an UPDATE without one (a session refresh) gets 200 from us. Bob sees neither.
    let bob = Ua::new(BOB, Answer::Never, 21);
    let mut world = ringing(vec![bob]);
    let now = world.now();
    world.alice().send_early_update(now, Some("sendonly"));
    world.run(secs(1));
    let now = world.now();
    world.alice().send_early_update(now, None);
    world.run(secs(1));
    assert_eq!(statuses_to_update(world.alice()), [488, 200]);
    assert!(world.bob().received_of(Method::Update).is_empty());
    assert_eq!(world.pbx().calls.call_count(), 1, "the call rings on");
}

#[test]
fn an_offer_from_a_fork_the_caller_is_not_joined_to_gets_488() {
    // Bob2's reliable 180 rings Alice first; Bob's reliable 183 with SDP (5 ms later) brings
    // the early media, so Alice's early dialog is joined to Bob's. Bob2's offer cannot pass.
    let bob = reliable_callee(BOB, 21, 1, None);
    let mut bob2 = Ua::new(BOB2, Answer::Never, 22);
    bob2.reliably = Some(Reliably {
        with_sdp: false,
        regardless: false,
        rseq: 9,
        answer_after_prack: None,
    });
    let mut world = World::new(config(), vec![bob, bob2]);
    let bob_address = addr(BOB);
    world.net.add_rule(
        NetAction::Delay(Duration::from_millis(5)),
        Some(1),
        move |d| d.source == bob_address && d.bytes.starts_with(b"SIP/2.0 183"),
    );
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(2));
    let now = world.now();
    world.ua(3).send_early_update(now, Some("sendonly"));
    world.run(secs(1));
    assert_eq!(statuses_to_update(world.ua(3)), [488]);
    assert!(world.alice().received_of(Method::Update).is_empty());
    // Without an offer it is answered here; Bob's early dialog still reaches Alice.
    let now = world.now();
    world.ua(3).send_early_update(now, None);
    world.bob().send_early_update(now, None);
    world.run(secs(1));
    assert_eq!(statuses_to_update(world.ua(3)), [488, 200]);
    assert_eq!(statuses_to_update(world.bob()), [200]);
    assert_eq!(world.alice().received_of(Method::Update).len(), 1);
}

#[test]
fn a_carrier_challenge_to_an_early_update_is_answered_once_in_its_early_dialog() {
    let mut carrier = reliable_callee(BOB, 21, 1, None);
    carrier.challenge = Some((407, "s3cret"));
    carrier.challenge_in_dialog = true;
    let mut world = World::new(config(), vec![carrier]);
    world.pbx().trunks = Some(vec![Some(TrunkCredentials {
        username: "acct".into(),
        password: "s3cret".into(),
        realm: None,
    })]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(3));
    let now = world.now();
    world.alice().send_early_update(now, Some("sendonly"));
    world.run(secs(2));
    let carrier = world.bob();
    let updates: Vec<_> = carrier
        .in_dialog_auth
        .iter()
        .filter(|(method, _)| method == "UPDATE")
        .cloned()
        .collect();
    assert_eq!(
        updates,
        [
            ("UPDATE".to_owned(), None),
            ("UPDATE".to_owned(), Some(true))
        ]
    );
    // The retry takes the early dialog's next CSeq (above both PRACKs and the first UPDATE).
    let seqs: Vec<u32> = carrier
        .received_of(Method::Update)
        .iter()
        .map(|r| r.cseq().unwrap().seq)
        .collect();
    let pracks: Vec<u32> = carrier
        .received_of(Method::Prack)
        .iter()
        .map(|r| r.cseq().unwrap().seq)
        .collect();
    assert_eq!(seqs.len(), 2);
    assert_eq!(seqs[1], seqs[0] + 1);
    assert!(
        seqs[0] > *pracks.iter().max().unwrap(),
        "{pracks:?} {seqs:?}"
    );
    assert_eq!(statuses_to_update(world.alice()), [200]);
}

#[test]
fn our_session_refresh_after_the_answer_repeats_the_description_of_the_early_update() {
    let mut config = config();
    config.session_expires = Some(secs(90));
    let mut world = World::new(config, vec![reliable_callee(BOB, 21, 1, Some(secs(2)))]);
    world.alice().rel100 = Some(HeaderName::Supported);
    world.call(secs(1));
    let now = world.now();
    world.alice().send_early_update(now, Some("sendonly"));
    world.run(secs(3));
    assert_eq!(invite_final(world.alice()), Some(200));
    // Bob's 2xx had no Session-Expires: we refresh his leg at half the interval, with a
    // re-INVITE (he did not say Allow: UPDATE) repeating what he was sent last: the hold.
    world.run(secs(50));
    let bob = world.bob();
    let invites = bob.received_of(Method::Invite);
    assert_eq!(invites.len(), 2, "{:?}", bob.methods());
    let refresh = body_text(invites[1]);
    assert!(refresh.contains("a=sendonly"), "{refresh}");
    assert!(refresh.contains("m=audio 30006 "), "{refresh}");
}
