//! Attended transfer (RFC 3515 REFER with RFC 3891 Replaces) on the virtual clock: Alice
//! (the caller, Y) calls Bob (X, call 1: relay ports 30004/30006); Bob's second line calls
//! Carol (T, call 2: relay ports 30008/30010); Bob refers Alice to Carol replacing call 2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use pbx_call::{Disposition, HangupSide, Side, Stage};
use pbx_sip::{HeaderName, Method, Request};
use support::*;

const CAROL_INDEX: usize = 3;
const BOB2_INDEX: usize = 4;

/// Call 1 (Alice → Bob, Alice put on hold) and call 2 (Bob's second line → Carol)
/// answered; Carol answers after 1 s and re-INVITEs per `reinvite_status`.
fn two_calls(reinvite_status: Option<u16>) -> World {
    two_calls_with(config_ringing_for(secs(20)), reinvite_status)
}

fn two_calls_with(config: pbx_call::CallConfig, reinvite_status: Option<u16>) -> World {
    let mut carol = Ua::new(CAROL, Answer::After(secs(1)), 31);
    carol.reinvite_status = reinvite_status;
    let mut world = world_with(config, carol);
    world.call(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    // Bob puts Alice on hold and calls Carol on his second line.
    let now = world.now();
    world
        .bob()
        .send_in_dialog(now, Method::Invite, Some("sendonly"));
    world.run(secs(1));
    let now = world.now();
    world.ua(BOB2_INDEX).call(now);
    world.run(secs(2));
    assert_eq!(world.ua(BOB2_INDEX).statuses().last(), Some(&200));
    assert_eq!(world.pbx().calls.call_count(), 2);
    world
}

/// Alice, Bob (answering after 1 s), `carol` and Bob's second line, whose calls go to
/// Carol; no call yet.
fn world_with(config: pbx_call::CallConfig, carol: Ua) -> World {
    let bob = Ua::new(BOB, Answer::After(secs(1)), 21);
    let mut world = World::new(config, vec![bob]);
    assert_eq!(world.add_ua(carol), CAROL_INDEX);
    let mut bob2 = Ua::new(BOB2, Answer::Never, 41);
    bob2.call_id = "bob-call-2@192.168.2.21".into();
    bob2.from_tag = "bob2".into();
    assert_eq!(world.add_ua(bob2), BOB2_INDEX);
    world.pbx().routes = vec![(addr(BOB2), vec![addr(CAROL)])];
    world
}

/// The `Refer-To` naming Bob's dialog of call 2, our tag as the `to-tag` (`ours_as_to`)
/// or as the `from-tag`.
fn replaces_call_2(world: &mut World, ours_as_to: bool) -> String {
    replaces_of(world, BOB2_INDEX, "300", ours_as_to)
}

/// A `Refer-To` to `extension` replacing the dialog of user agent `index` (one of Bob's
/// lines), our tag as the `to-tag` (`ours_as_to`) or as the `from-tag`.
fn replaces_of(world: &mut World, index: usize, extension: &str, ours_as_to: bool) -> String {
    let dialog = world.ua(index).dialog.as_ref().unwrap().id().clone();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace('@', "%40");
    let (ours, bobs) = (text(&dialog.remote_tag), text(&dialog.local_tag));
    let (to, from) = if ours_as_to {
        (ours, bobs)
    } else {
        (bobs, ours)
    };
    format!(
        "<sip:{extension}@tenant.example?Replaces={}%3Bto-tag%3D{to}%3Bfrom-tag%3D{from}>",
        text(&dialog.call_id)
    )
}

fn refer(world: &mut World, refer_to: &str) {
    let now = world.now();
    world.bob().send_refer(now, &[refer_to]);
    world.run(Duration::from_millis(500));
}

fn frag(status: &str, state: &str) -> (String, String) {
    (format!("SIP/2.0 {status}"), state.to_owned())
}

/// The join done: Alice and Carol are in call 1, Bob is out of both calls.
fn assert_joined(world: &mut World) {
    assert_eq!(refer_statuses(world.bob()), [202]);
    assert_eq!(
        notifies(world.bob()),
        [
            frag("100 Trying", "active;expires=60"),
            frag("200 OK", "terminated;reason=noresource")
        ]
    );
    // Carol is re-INVITEd with call 1's relay side that Bob used, sendrecv, PCMA.
    let invites = world.ua(CAROL_INDEX).received_of(Method::Invite);
    assert_eq!(invites.len(), 2);
    let offer = body_text(invites[1]);
    assert!(offer.contains("c=IN IP4 10.0.0.1"), "{offer}");
    assert!(offer.contains("m=audio 30006 RTP/AVP 8 101"), "{offer}");
    assert!(offer.contains("a=sendrecv"), "{offer}");
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Ack).len(), 2);
    // Bob gets BYE on both of his legs.
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    assert_eq!(world.ua(BOB2_INDEX).received_of(Method::Bye).len(), 1);
    assert!(
        header(world.bob().received_of(Method::Bye)[0], &HeaderName::Reason)
            .contains("transferred")
    );
    // Alice, held by Bob, is resumed with sendrecv from call 1's relay side A.
    let reinvites = world.alice().received_of(Method::Invite);
    assert_eq!(reinvites.len(), 2);
    let resumed = body_text(reinvites[1]);
    assert!(resumed.contains("a=sendrecv"), "{resumed}");
    assert!(resumed.contains("m=audio 30004 "), "{resumed}");
    // The relay: call 1's B side now sends to Carol, call 2's session is released.
    {
        let log = world.pbx().media.log.lock().unwrap();
        let carol_media = addr("192.168.3.30:4000");
        let last_b = log
            .session_remotes
            .iter()
            .rev()
            .find(|(base, side, _)| *base == 30004 && *side == Side::B);
        assert_eq!(
            last_b.map(|r| r.2),
            Some(carol_media),
            "{:?}",
            log.session_remotes
        );
        assert_eq!(log.released, [30008]);
        assert_eq!(log.holds.last(), Some(&false));
    }
    assert_eq!(world.pbx().calls.call_count(), 1);
    // Both original records close for Bob, transferred.
    let records = world.pbx().records.clone();
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record.disposition, Disposition::Answered);
        assert_eq!(record.hangup_cause, "transferred");
        assert_eq!(record.transfer_of, None);
    }
    // Bob is call 1's callee and call 2's caller.
    assert_eq!(records[0].callee_normalised, "200");
    assert_eq!(records[0].hangup_side, HangupSide::Callee);
    assert_eq!(records[1].callee_normalised, "300");
    assert_eq!(records[1].hangup_side, HangupSide::Caller);
}

#[test]
fn attended_transfer_joins_the_transferee_and_the_target_and_releases_the_transferor() {
    let mut world = two_calls(None);
    let refer_to = replaces_call_2(&mut world, true);
    refer(&mut world, &refer_to);
    assert_joined(&mut world);
    let first_key = world.pbx().records[0].call_key;
    // Alice and Carol talk; then Carol hangs up: Alice gets BYE, the joined record closes.
    world.run(secs(10));
    let now = world.now();
    world.ua(CAROL_INDEX).send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_eq!(pbx.records.len(), 3);
    let joined = pbx.records[2].clone();
    assert_eq!(joined.transfer_of, Some(first_key));
    assert_eq!(joined.caller, "100");
    assert_eq!(joined.callee_normalised, "300");
    assert_eq!(joined.answered_by.as_deref(), Some("carol-device-0"));
    assert_eq!(joined.disposition, Disposition::Answered);
    assert_eq!(joined.hangup_side, HangupSide::Callee);
    assert!((10..=12).contains(&joined.billable_secs), "{joined:?}");
    let stages: Vec<Stage> = pbx
        .stages
        .iter()
        .filter(|(_, key)| *key == joined.call_key)
        .map(|(stage, _)| *stage)
        .collect();
    assert_eq!(stages, [Stage::Started, Stage::Answered, Stage::Ended]);
    // It names call 2, which ends right after its answer.
    let call_2 = pbx.records[1].call_key;
    assert_eq!(joined.joined, Some(call_2));
    let at = |wanted: (Stage, u64)| pbx.stages.iter().position(|s| *s == wanted).unwrap();
    assert_eq!(
        at((Stage::Answered, joined.call_key)) + 1,
        at((Stage::Ended, call_2))
    );
    // Bob's late BYEs (crossing ours) would be answered, not 481: nothing else went out.
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Bye).len(), 0);
}

#[test]
fn replaces_with_our_tag_as_from_tag_is_accepted_and_the_transferee_may_hang_up() {
    let mut world = two_calls(None);
    let refer_to = replaces_call_2(&mut world, false);
    refer(&mut world, &refer_to);
    assert_joined(&mut world);
    let pbx = alice_hangs_up_after(&mut world, secs(5));
    let joined = pbx.records.last().unwrap();
    assert_eq!(joined.hangup_side, HangupSide::Caller);
    assert_eq!(joined.hangup_cause, "BYE");
}

/// After `talk`, Alice (joined with Carol) hangs up: Carol gets the BYE, no call is left.
fn alice_hangs_up_after(world: &mut World, talk: Duration) -> &mut Pbx {
    world.run(talk);
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    pbx
}

#[test]
fn replaces_naming_no_dialog_of_ours_gets_481_and_nothing_moves() {
    let mut world = two_calls(None);
    refer(
        &mut world,
        "<sip:300@tenant.example?Replaces=unknown%40h%3Bto-tag%3Da%3Bfrom-tag%3Db>",
    );
    assert_eq!(refer_statuses(world.bob()), [481]);
    // Right Call-ID, wrong tags: 481 too.
    let refer_to = replaces_call_2(&mut world, true).replace("from-tag%3Dbob2", "from-tag%3Dx");
    refer(&mut world, &refer_to);
    assert_eq!(refer_statuses(world.bob()), [481, 481]);
    assert!(world.bob().received_of(Method::Notify).is_empty());
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Invite).len(), 1);
    assert_eq!(world.pbx().calls.call_count(), 2);
    assert!(world.pbx().transfer_requests.is_empty());
}

#[test]
fn replaces_naming_another_partys_dialog_is_refused() {
    let mut world = two_calls(None);
    world.pbx().attended_not_same_party = true;
    let refer_to = replaces_call_2(&mut world, true);
    refer(&mut world, &refer_to);
    assert_eq!(refer_statuses(world.bob()), [403]);
    let requests = world.pbx().transfer_requests.clone();
    assert_eq!(requests.len(), 1);
    let replaced = requests[0].replaces.as_ref().unwrap();
    assert_eq!(replaced.side, Side::A);
    assert!(replaced.side_is_caller);
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Invite).len(), 1);
    // Call 2 is free again: Carol may re-INVITE it.
    let now = world.now();
    world
        .ua(CAROL_INDEX)
        .send_in_dialog(now, Method::Invite, Some("sendrecv"));
    world.run(secs(1));
    assert_eq!(
        world
            .ua(CAROL_INDEX)
            .responses_to(Method::Invite)
            .last()
            .map(|r| r.status().0),
        Some(200)
    );
    assert_eq!(world.pbx().calls.call_count(), 2);
}

#[test]
fn replaces_of_the_call_itself_is_forbidden() {
    let mut world = two_calls(None);
    let refer_to = replaces_of(&mut world, 2, "300", false);
    refer(&mut world, &refer_to);
    assert_eq!(refer_statuses(world.bob()), [403]);
}

#[test]
fn glare_a_second_refer_or_an_exchange_on_the_other_call_gets_491() {
    let mut world = two_calls(None);
    // Carol's re-INVITE on call 2 is being relayed when the REFER arrives.
    let now = world.now();
    world
        .ua(CAROL_INDEX)
        .send_in_dialog(now, Method::Invite, Some("sendrecv"));
    world.run(Duration::from_millis(15));
    let refer_to = replaces_call_2(&mut world, true);
    refer(&mut world, &refer_to);
    assert_eq!(refer_statuses(world.bob()), [491]);
    assert_eq!(world.pbx().calls.call_count(), 2);
    // Two REFERs at once: the second one, during the transfer, gets 491.
    let now = world.now();
    world.bob().send_refer(now, &[&refer_to]);
    world.bob().send_refer(now, &[&refer_to]);
    world.run(secs(1));
    let mut statuses = refer_statuses(world.bob());
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 491, 491]);
    assert_joined_calls(&mut world);
}

fn assert_joined_calls(world: &mut World) {
    assert_eq!(world.pbx().calls.call_count(), 1);
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    assert_eq!(world.ua(BOB2_INDEX).received_of(Method::Bye).len(), 1);
}

#[test]
fn target_refusing_the_reinvite_leaves_both_calls_as_they_were() {
    let mut world = two_calls(Some(488));
    let refer_to = replaces_call_2(&mut world, true);
    refer(&mut world, &refer_to);
    assert_eq!(refer_statuses(world.bob()), [202]);
    assert_eq!(
        notifies(world.bob()),
        [
            frag("100 Trying", "active;expires=60"),
            frag("488 Not Acceptable Here", "terminated;reason=noresource")
        ]
    );
    assert!(world.bob().received_of(Method::Bye).is_empty());
    assert!(world.ua(BOB2_INDEX).received_of(Method::Bye).is_empty());
    assert_eq!(world.alice().received_of(Method::Invite).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 2);
    assert!(pbx.records.is_empty());
    assert!(pbx.media.log.lock().unwrap().released.is_empty());
    // Both calls go on: Bob may try again later, Alice hangs up call 1 normally.
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 1);
    assert_eq!(pbx.records.len(), 1);
    assert_eq!(pbx.records[0].hangup_cause, "BYE");
    // Call 2 still carries Carol and Bob.
    let now = world.now();
    world.ua(BOB2_INDEX).send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Bye).len(), 1);
    assert_eq!(world.pbx().calls.call_count(), 0);
}

/// Bob refers; 5 ms later (while Carol's re-INVITE is out) user agent `index` sends BYE.
fn bye_during_the_join(index: usize) -> World {
    let mut world = two_calls(None);
    let refer_to = replaces_call_2(&mut world, true);
    let now = world.now();
    world.bob().send_refer(now, &[&refer_to]);
    world.run(Duration::from_millis(5));
    let now = world.now();
    world.ua(index).send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    world
}

#[test]
fn target_call_ending_during_the_join_notifies_487_and_call_1_goes_on() {
    // The REFER reaches us (Carol is being re-INVITEd) just before Bob's second line hangs
    // up call 2.
    let mut world = bye_during_the_join(BOB2_INDEX);
    assert_eq!(refer_statuses(world.bob()), [202]);
    assert_eq!(
        notifies(world.bob()).last().unwrap(),
        &frag("487 Request Terminated", "terminated;reason=noresource")
    );
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Bye).len(), 1);
    assert!(world.bob().received_of(Method::Bye).is_empty());
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 1);
    // Call 2's record only: no joined record for a join that never happened.
    assert_eq!(pbx.records.len(), 1);
    assert_eq!(pbx.records[0].hangup_cause, "BYE");
    assert_eq!(pbx.records[0].callee_normalised, "300");
}

#[test]
fn transferee_hanging_up_during_the_join_puts_the_target_back_on_its_call() {
    // Alice hangs up while Carol is being re-INVITEd to call 1's relay.
    let mut world = bye_during_the_join(1);
    assert_eq!(refer_statuses(world.bob()), [202]);
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    // Carol accepted the move, then is offered call 2's relay side again (B: 30010).
    let invites = world.ua(CAROL_INDEX).received_of(Method::Invite);
    assert_eq!(invites.len(), 3);
    assert!(body_text(invites[1]).contains("m=audio 30006 "));
    let back = body_text(invites[2]);
    assert!(back.contains("m=audio 30010 "), "{back}");
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Ack).len(), 3);
    assert!(world.ua(BOB2_INDEX).received_of(Method::Bye).is_empty());
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 1);
    assert_eq!(pbx.records.len(), 1);
    assert_eq!(pbx.records[0].callee_normalised, "200");
    assert!(pbx.media.log.lock().unwrap().released.contains(&30004));
    // Call 2 goes on between Bob and Carol.
    let now = world.now();
    world.ua(CAROL_INDEX).send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.ua(BOB2_INDEX).received_of(Method::Bye).len(), 1);
    assert_eq!(world.pbx().calls.call_count(), 0);
}

#[test]
fn the_joined_call_keeps_session_timers_and_the_maximum_duration() {
    let mut config = config_ringing_for(secs(20));
    config.session_expires = Some(secs(90));
    config.max_duration = Some(secs(300));
    let mut world = two_calls_with(config, None);
    let refer_to = replaces_call_2(&mut world, true);
    refer(&mut world, &refer_to);
    assert_eq!(world.pbx().calls.call_count(), 1);
    let carol_call_id = world
        .ua(CAROL_INDEX)
        .dialog
        .as_ref()
        .unwrap()
        .id()
        .call_id
        .clone();
    let before = refreshes(world.ua(CAROL_INDEX));
    // We refresh Carol's leg (our session timer from call 2) within its interval, in her
    // dialog of call 2, now part of call 1.
    world.run(secs(100));
    let refreshed: Vec<&Request> = world
        .ua(CAROL_INDEX)
        .received
        .iter()
        .filter(|r| matches!(r.method(), Method::Invite | Method::Update))
        .skip(before)
        .collect();
    assert!(!refreshed.is_empty());
    assert!(
        refreshed
            .iter()
            .all(|r| r.call_id().unwrap() == carol_call_id)
    );
    assert_eq!(world.pbx().calls.call_count(), 1);
    // Call 1's maximum duration (300 s from its start) ends the joined call on both sides.
    world.run(secs(200));
    assert_eq!(world.pbx().calls.call_count(), 0);
    let bye = world.ua(CAROL_INDEX).received_of(Method::Bye);
    assert_eq!(bye.len(), 1);
    assert!(header(bye[0], &HeaderName::Reason).contains("maximum call duration"));
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    let joined = world.pbx().records.last().unwrap().clone();
    assert_eq!(joined.hangup_cause, "maximum call duration");
    assert!(joined.transfer_of.is_some());
}

fn refreshes(ua: &Ua) -> usize {
    ua.received
        .iter()
        .filter(|r| matches!(r.method(), Method::Invite | Method::Update))
        .count()
}

#[test]
fn the_second_line_may_transfer_and_the_caller_of_call_1_moves_over() {
    // Bob transfers from his second line: Carol (call 2's callee) is the transferee and
    // Alice, call 1's caller (its A leg), the target.
    let mut world = two_calls(None);
    let refer_to = replaces_of(&mut world, 2, "100", true);
    let now = world.now();
    world.ua(BOB2_INDEX).send_refer(now, &[&refer_to]);
    world.run(secs(1));
    assert_eq!(refer_statuses(world.ua(BOB2_INDEX)), [202]);
    assert_eq!(
        notifies(world.ua(BOB2_INDEX)).last().unwrap(),
        &frag("200 OK", "terminated;reason=noresource")
    );
    // Alice is re-INVITEd (after Bob's hold) with call 2's relay side A, which Bob's second
    // line used, sendrecv.
    let invites = world.alice().received_of(Method::Invite);
    assert_eq!(invites.len(), 2);
    let offer = body_text(invites[1]);
    assert!(offer.contains("m=audio 30008 RTP/AVP 8 101"), "{offer}");
    assert!(offer.contains("a=sendrecv"), "{offer}");
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    assert_eq!(world.ua(BOB2_INDEX).received_of(Method::Bye).len(), 1);
    assert_eq!(world.ua(CAROL_INDEX).received_of(Method::Invite).len(), 1);
    {
        let log = world.pbx().media.log.lock().unwrap();
        assert_eq!(log.released, [30004]);
        let alice_media = addr("192.168.1.10:4000");
        assert_eq!(
            log.session_remotes.last(),
            Some(&(30008, Side::A, alice_media))
        );
    }
    // Alice and Carol talk; Alice's BYE (in her dialog of call 1) reaches Carol.
    let pbx = alice_hangs_up_after(&mut world, secs(3));
    assert_eq!(pbx.records.len(), 3);
    let joined = &pbx.records[2];
    assert_eq!(joined.caller, "300");
    assert_eq!(joined.callee_normalised, "100");
    assert_eq!(joined.hangup_side, HangupSide::Callee);
    // Call 2 (the transferee's) goes on in the engine: the joined record is its transfer.
    assert_eq!(pbx.records[0].callee_normalised, "300");
    assert_eq!(pbx.records[0].hangup_side, HangupSide::Caller);
    assert_eq!(pbx.records[1].callee_normalised, "200");
    assert_eq!(pbx.records[1].hangup_side, HangupSide::Callee);
    assert_eq!(joined.transfer_of, Some(pbx.records[0].call_key));
}

#[test]
fn a_carrier_target_joins_with_its_challenge_answered_and_stays_a_trunk_leg() {
    // Bob's second line calls out through a trunk; the carrier (Carol) challenges every
    // in-dialog request.
    let mut carrier = Ua::new(CAROL, Answer::After(secs(1)), 31);
    carrier.challenge = Some((407, "s3cret"));
    carrier.challenge_in_dialog = true;
    let mut world = world_with(config_ringing_for(secs(20)), carrier);
    world.pbx().trunks = Some(vec![Some(pbx_call::TrunkCredentials {
        username: "acct".into(),
        password: "s3cret".into(),
        realm: None,
    })]);
    world.call(secs(2));
    let now = world.now();
    world.ua(BOB2_INDEX).call(now);
    world.run(secs(3));
    assert_eq!(world.ua(BOB2_INDEX).statuses().last(), Some(&200));
    let refer_to = replaces_call_2(&mut world, true);
    refer(&mut world, &refer_to);
    assert_eq!(
        notifies(world.bob()).last().unwrap(),
        &frag("200 OK", "terminated;reason=noresource")
    );
    // The joining re-INVITE was challenged once and answered with the trunk's account.
    let auth: Vec<(String, Option<bool>)> = world.ua(CAROL_INDEX).in_dialog_auth.clone();
    assert_eq!(
        auth,
        [
            ("INVITE".to_owned(), None),
            ("INVITE".to_owned(), Some(true))
        ]
    );
    assert_eq!(world.pbx().calls.call_count(), 1);
    // The carrier stays a trunk leg of the joined call: Alice's BYE to it is challenged
    // and answered too.
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(2));
    let auth = world.ua(CAROL_INDEX).in_dialog_auth.clone();
    assert_eq!(
        auth[2..],
        [("BYE".to_owned(), None), ("BYE".to_owned(), Some(true))]
    );
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    let joined = pbx.records.last().unwrap();
    assert_eq!(joined.direction, pbx_call::Direction::Outbound);
    assert_eq!(joined.trunk.as_deref(), Some("trunk-0"));
    assert_eq!(joined.callee_normalised, "+31201234567");
}

#[test]
fn a_malformed_or_early_only_replaces_is_refused() {
    let mut world = two_calls(None);
    // No from-tag: 400.
    refer(
        &mut world,
        "<sip:300@tenant.example?Replaces=bob-call-2%40192.168.2.21%3Bto-tag%3Dx>",
    );
    // early-only names a confirmed dialog: 486 (RFC 3891 §3).
    let refer_to = replaces_call_2(&mut world, true).replace('>', "%3Bearly-only>");
    refer(&mut world, &refer_to);
    // Another URI header beside Replaces is ignored.
    let refer_to = replaces_call_2(&mut world, true).replace('>', "&Require=replaces>");
    refer(&mut world, &refer_to);
    assert_eq!(refer_statuses(world.bob()), [400, 486, 202]);
    world.run(secs(1));
    assert_eq!(world.pbx().calls.call_count(), 1);
}
