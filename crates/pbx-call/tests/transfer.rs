//! Blind transfer (RFC 3515 REFER) on the virtual clock: Alice (the caller, Y) calls Bob
//! (the callee, X); Bob transfers Alice to extension 300 (Carol, T).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use pbx_call::{Disposition, HangupSide, Side, Stage};
use pbx_sip::{HeaderName, Method, Request};
use support::*;

/// Alice calls Bob, Bob answers after 1 s; Carol (index 3) answers INVITEs per `carol`. The
/// PBX knows extension 300 = Carol.
fn answered_call(carol: Answer) -> World {
    let bob = Ua::new(BOB, Answer::After(secs(1)), 21);
    let mut world = World::new(config_ringing_for(secs(20)), vec![bob]);
    let index = world.add_ua(Ua::new(CAROL, carol, 31));
    assert_eq!(index, 3);
    world.pbx().transfer_targets = vec![("300".into(), vec![addr(CAROL)])];
    world.call(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    assert_eq!(world.pbx().calls.call_count(), 1);
    world
}

fn carol(world: &mut World) -> &mut Ua {
    world.ua(3)
}

fn refer(world: &mut World, from_bob: bool, refer_to: &[&str]) {
    let now = world.now();
    let ua = if from_bob { world.bob() } else { world.alice() };
    ua.send_refer(now, refer_to);
    world.run(Duration::from_millis(500));
}

fn hold(world: &mut World) {
    let now = world.now();
    world
        .bob()
        .send_in_dialog(now, Method::Invite, Some("sendonly"));
    world.run(secs(1));
    let held = world.alice().received_of(Method::Invite);
    assert_eq!(held.len(), 1);
    assert!(body_text(held[0]).contains("a=sendonly"));
}

#[test]
fn blind_transfer_from_the_callee_connects_the_caller_to_the_target() {
    let mut world = answered_call(Answer::After(secs(2)));
    hold(&mut world);
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [202]);
    // The target rings with an offer from the relay's B side (our ports 30006), sendrecv,
    // only the codecs in use, and the Referred-By of the REFER.
    let invites: Vec<Request> = carol(&mut world)
        .received_of(Method::Invite)
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(invites.len(), 1);
    let offer = body_text(&invites[0]);
    assert!(offer.contains("c=IN IP4 10.0.0.1"), "{offer}");
    assert!(offer.contains("m=audio 30006 RTP/AVP 8 101"), "{offer}");
    assert!(offer.contains("a=sendrecv"), "{offer}");
    assert!(!offer.contains("sendonly") && !offer.contains("recvonly"));
    assert!(header(&invites[0], &HeaderName::From).contains("sip:100@tenant.example"));
    assert!(header(&invites[0], &HeaderName::ReferredBy).contains("192.168.2.20"));
    assert_eq!(
        notifies(world.bob()),
        [
            (
                "SIP/2.0 100 Trying".to_owned(),
                "active;expires=60".to_owned()
            ),
            (
                "SIP/2.0 180 Ringing".to_owned(),
                "active;expires=60".to_owned()
            ),
        ]
    );
    assert!(world.bob().received_of(Method::Bye).is_empty());
    // Carol answers after 2 s.
    world.run(secs(3));
    assert_eq!(carol(&mut world).received_of(Method::Ack).len(), 1);
    let notified = notifies(world.bob());
    assert_eq!(
        notified.last().unwrap(),
        &(
            "SIP/2.0 200 OK".to_owned(),
            "terminated;reason=noresource".to_owned()
        )
    );
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    // Alice, held by Bob, is taken off hold: a re-INVITE with sendrecv from the relay.
    let reinvites = world.alice().received_of(Method::Invite);
    assert_eq!(reinvites.len(), 2);
    let resumed = body_text(reinvites[1]);
    assert!(resumed.contains("a=sendrecv"), "{resumed}");
    assert!(resumed.contains("c=IN IP4 10.0.0.1"), "{resumed}");
    assert!(resumed.contains("m=audio 30004 "), "{resumed}");
    // The relay's B side now sends to Carol.
    let carol_media = addr("192.168.3.30:4000");
    {
        let log = world.pbx().media.log.lock().unwrap();
        assert_eq!(log.remotes.last().map(|r| r.0), Some(Side::A));
        assert!(
            log.remotes.contains(&(Side::B, carol_media)),
            "{:?}",
            log.remotes
        );
        assert_eq!(log.holds.last(), Some(&false));
    }
    // The original call's record ends for Bob, transferred; the transferred call has a
    // record of its own.
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 1);
    assert_eq!(pbx.records.len(), 1);
    let first = pbx.records[0].clone();
    assert_eq!(first.disposition, Disposition::Answered);
    assert_eq!(first.hangup_cause, "transferred");
    assert_eq!(first.hangup_side, HangupSide::Callee);
    assert!(first.billable_secs >= 2, "{first:?}");
    // Alice and Carol talk, then Carol hangs up: Alice gets BYE, the second record closes.
    world.run(secs(10));
    let now = world.now();
    carol(&mut world).send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_eq!(pbx.records.len(), 2);
    let second = &pbx.records[1];
    assert_ne!(second.call_key, first.call_key);
    assert_eq!(first.transfer_of, None);
    assert_eq!(second.transfer_of, Some(first.call_key));
    assert_eq!(second.callee_normalised, "300");
    assert_eq!(second.caller, "100");
    assert_eq!(second.answered_by.as_deref(), Some("target-device-0"));
    assert_eq!(second.disposition, Disposition::Answered);
    assert_eq!(second.hangup_side, HangupSide::Callee);
    assert!((10..=12).contains(&second.billable_secs), "{second:?}");
    let second_key = second.call_key;
    let stages: Vec<Stage> = pbx
        .stages
        .iter()
        .filter(|(_, key)| *key == second_key)
        .map(|(stage, _)| *stage)
        .collect();
    assert_eq!(
        stages,
        [
            Stage::Started,
            Stage::Ringing,
            Stage::Answered,
            Stage::Ended
        ]
    );
}

#[test]
fn a_busy_target_is_notified_and_the_original_call_goes_on() {
    let mut world = answered_call(Answer::Reject(486, secs(1)));
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [202]);
    world.run(secs(2));
    assert_eq!(
        notifies(world.bob()).last().unwrap(),
        &(
            "SIP/2.0 486 Busy Here".to_owned(),
            "terminated;reason=noresource".to_owned()
        )
    );
    assert!(world.bob().received_of(Method::Bye).is_empty());
    assert!(world.alice().received_of(Method::Bye).is_empty());
    // The failed attempt has its record; the call is still Alice and Bob's.
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 1);
    assert_eq!(pbx.records.len(), 1);
    assert_eq!(pbx.records[0].disposition, Disposition::Busy);
    assert_eq!(pbx.records[0].hangup_status, 486);
    assert_eq!(pbx.records[0].callee_normalised, "300");
    // Bob can still talk to Alice (a re-INVITE passes), and Alice's BYE reaches Bob.
    let now = world.now();
    world
        .bob()
        .send_in_dialog(now, Method::Invite, Some("sendrecv"));
    world.run(secs(1));
    assert_eq!(world.alice().received_of(Method::Invite).len(), 1);
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    let original = &pbx.records[1];
    assert_eq!(original.disposition, Disposition::Answered);
    assert_eq!(original.hangup_side, HangupSide::Caller);
    assert_eq!(original.callee_normalised, "200");
}

#[test]
fn the_transferor_hanging_up_while_the_target_rings_leaves_the_caller_to_the_target() {
    let mut world = answered_call(Answer::After(secs(5)));
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [202]);
    let now = world.now();
    world.bob().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.bob().responses_to(Method::Bye)[0].status().0, 200);
    assert!(world.alice().received_of(Method::Bye).is_empty());
    {
        let pbx = world.pbx();
        assert_eq!(pbx.calls.call_count(), 1);
        assert_eq!(pbx.records.len(), 1);
        assert_eq!(pbx.records[0].hangup_cause, "transferred");
        assert_eq!(pbx.records[0].hangup_side, HangupSide::Callee);
    }
    // Carol answers: Alice and Carol are connected, Bob hears nothing more.
    world.run(secs(5));
    assert_eq!(carol(&mut world).received_of(Method::Ack).len(), 1);
    let bob_notifies = notifies(world.bob());
    assert!(
        bob_notifies
            .iter()
            .all(|(line, _)| line != "SIP/2.0 200 OK")
    );
    assert!(world.bob().received_of(Method::Bye).is_empty());
    let carol_media = addr("192.168.3.30:4000");
    assert!(
        world
            .pbx()
            .media
            .log
            .lock()
            .unwrap()
            .remotes
            .contains(&(Side::B, carol_media))
    );
    // Alice hangs up: Carol gets the BYE; the transferred call's record is answered.
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(carol(&mut world).received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_eq!(pbx.records.len(), 2);
    assert_eq!(pbx.records[1].disposition, Disposition::Answered);
    assert_eq!(pbx.records[1].hangup_side, HangupSide::Caller);
    assert_eq!(pbx.records[1].callee_normalised, "300");
}

#[test]
fn the_target_failing_after_the_transferor_left_ends_the_callers_leg() {
    let mut world = answered_call(Answer::Reject(603, secs(3)));
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    let now = world.now();
    world.bob().send_in_dialog(now, Method::Bye, None);
    world.run(secs(4));
    let byes = world.alice().received_of(Method::Bye);
    assert_eq!(byes.len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_eq!(pbx.records.len(), 2);
    assert_eq!(pbx.records[0].hangup_cause, "transferred");
    assert_eq!(pbx.records[1].disposition, Disposition::Unavailable);
    assert_eq!(pbx.records[1].hangup_status, 603);
    assert_eq!(pbx.records[1].billable_secs, 0);
}

#[test]
fn the_target_not_answering_in_time_is_notified_as_a_timeout() {
    let mut world = answered_call(Answer::Never);
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    world.run(secs(21));
    assert_eq!(
        notifies(world.bob()).last().unwrap().0,
        "SIP/2.0 408 Request Timeout"
    );
    assert_eq!(carol(&mut world).cancels, 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 1);
    assert_eq!(pbx.records[0].disposition, Disposition::NoAnswer);
}

#[test]
fn a_target_without_bindings_fails_with_480() {
    let mut world = answered_call(Answer::Never);
    world.pbx().transfer_targets = vec![("300".into(), Vec::new())];
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [202]);
    assert_eq!(
        notifies(world.bob()).last().unwrap(),
        &(
            "SIP/2.0 480 Temporarily Unavailable".to_owned(),
            "terminated;reason=noresource".to_owned()
        )
    );
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn a_refer_to_a_foreign_or_unknown_target_is_refused_and_nothing_is_forwarded() {
    let mut world = answered_call(Answer::After(secs(1)));
    refer(&mut world, true, &["<sip:300@evil.example>"]);
    refer(&mut world, true, &["sip:+4420799999@carrier.example"]);
    refer(&mut world, true, &["<sip:999@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [403, 403, 404]);
    assert!(carol(&mut world).received.is_empty());
    assert!(world.bob().received_of(Method::Notify).is_empty());
    // Only the original call's INVITE anywhere: nothing was forwarded.
    assert_eq!(world.bob().received_of(Method::Invite).len(), 1);
    assert!(world.alice().received_of(Method::Invite).is_empty());
    assert_eq!(world.pbx().transfer_requests.len(), 3);
    // Every refused attempt is filed: one closed record each (only `Ended`), of Alice (the
    // transferee) calling the target, naming the call it belongs to.
    let pbx = world.pbx();
    let call = pbx.transfer_requests[0].key.0;
    assert_eq!(pbx.records.len(), 3);
    let expected = [
        (
            403,
            Disposition::Failed,
            "sip:300@evil.example",
            "not our domain",
        ),
        (
            403,
            Disposition::Failed,
            "sip:+4420799999@carrier.example",
            "not our domain",
        ),
        (404, Disposition::Unavailable, "999", "no such extension"),
    ];
    for (record, (status, disposition, callee, cause)) in pbx.records.iter().zip(expected) {
        assert_eq!(record.transfer_of, Some(call), "{record:?}");
        assert_ne!(record.call_key, call, "{record:?}");
        assert_eq!(record.caller, "100", "{record:?}");
        assert_eq!(record.callee_dialled, callee, "{record:?}");
        assert_eq!(record.callee_normalised, callee, "{record:?}");
        assert_eq!(record.hangup_status, status, "{record:?}");
        assert_eq!(record.disposition, disposition, "{record:?}");
        assert_eq!(record.hangup_cause, cause, "{record:?}");
        assert_eq!(record.hangup_side, HangupSide::System, "{record:?}");
        assert_eq!(
            record.direction,
            pbx_call::Direction::Internal,
            "{record:?}"
        );
        assert_eq!(record.trunk, None, "{record:?}");
        assert_eq!((record.billable_secs, record.duration_ms), (0, 0));
        assert_eq!(record.answered_at_ms, None, "{record:?}");
        assert_eq!(
            pbx.stages
                .iter()
                .filter(|(_, key)| *key == record.call_key)
                .collect::<Vec<_>>(),
            [&(Stage::Ended, record.call_key)]
        );
    }
    let keys: std::collections::BTreeSet<u64> = pbx.records.iter().map(|r| r.call_key).collect();
    assert_eq!(keys.len(), 3);
    // The call is untouched (still running, nothing of its own reported since it was
    // answered) and can still be transferred.
    assert_eq!(pbx.calls.call_count(), 1);
    assert!(
        !pbx.stages
            .iter()
            .any(|(stage, key)| *key == call && *stage == Stage::Ended)
    );
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [403, 403, 404, 202]);
    assert_eq!(carol(&mut world).received_of(Method::Invite).len(), 1);
    // Alice hangs up: the original call's record is as if nothing had been refused.
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    let pbx = world.pbx();
    let original = pbx
        .records
        .iter()
        .find(|record| record.call_key == call)
        .expect("the call's record");
    assert_eq!(original.transfer_of, None);
    assert_eq!(original.callee_normalised, "200");
    assert_eq!(original.disposition, Disposition::Answered);
    assert_eq!(original.hangup_side, HangupSide::Caller);
}

#[test]
fn a_refer_while_an_offer_answer_exchange_is_in_flight_gets_491() {
    let mut world = answered_call(Answer::Never);
    let now = world.now();
    world
        .bob()
        .send_in_dialog(now, Method::Invite, Some("sendonly"));
    world.bob().send_refer(now, &["<sip:300@tenant.example>"]);
    world.run(secs(1));
    assert_eq!(refer_statuses(world.bob()), [491]);
    assert!(world.pbx().transfer_requests.is_empty());
    // Once the hold is through, the transfer is accepted.
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [491, 202]);
}

#[test]
fn a_second_refer_during_a_transfer_gets_491() {
    let mut world = answered_call(Answer::Never);
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [202, 491]);
    assert_eq!(carol(&mut world).received_of(Method::Invite).len(), 1);
    assert_eq!(world.pbx().transfer_requests.len(), 1);
}

#[test]
fn a_refer_without_a_usable_refer_to_gets_400() {
    let mut world = answered_call(Answer::Never);
    refer(&mut world, true, &[]);
    refer(&mut world, true, &["<sip:300@tenant.example"]);
    refer(
        &mut world,
        true,
        &["<sip:300@tenant.example>", "<sip:301@tenant.example>"],
    );
    assert_eq!(refer_statuses(world.bob()), [400, 400, 400]);
    assert!(world.pbx().transfer_requests.is_empty());
    assert!(carol(&mut world).received.is_empty());
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn blind_transfer_from_the_caller_connects_the_callee_to_the_target() {
    let mut world = answered_call(Answer::After(secs(2)));
    // Alice holds Bob, then transfers him to 300.
    let now = world.now();
    world
        .alice()
        .send_in_dialog(now, Method::Invite, Some("sendonly"));
    world.run(secs(1));
    assert_eq!(world.bob().received_of(Method::Invite).len(), 2);
    refer(&mut world, false, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.alice()), [202]);
    let invites: Vec<Request> = carol(&mut world)
        .received_of(Method::Invite)
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(invites.len(), 1);
    // From the relay's A side, with Bob's identity as the caller dialled it.
    let offer = body_text(&invites[0]);
    assert!(offer.contains("m=audio 30004 RTP/AVP 8 101"), "{offer}");
    assert!(offer.contains("a=sendrecv"), "{offer}");
    assert!(header(&invites[0], &HeaderName::From).contains("sip:200@tenant.example"));
    world.run(secs(3));
    assert_eq!(carol(&mut world).received_of(Method::Ack).len(), 1);
    assert_eq!(
        notifies(world.alice()),
        [
            (
                "SIP/2.0 100 Trying".to_owned(),
                "active;expires=60".to_owned()
            ),
            (
                "SIP/2.0 180 Ringing".to_owned(),
                "active;expires=60".to_owned()
            ),
            (
                "SIP/2.0 200 OK".to_owned(),
                "terminated;reason=noresource".to_owned()
            ),
        ]
    );
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    // Bob, held by Alice, is resumed towards the relay's B side.
    let reinvites = world.bob().received_of(Method::Invite);
    assert_eq!(reinvites.len(), 3);
    let resumed = body_text(reinvites[2]);
    assert!(resumed.contains("a=sendrecv"), "{resumed}");
    assert!(resumed.contains("m=audio 30006 "), "{resumed}");
    let carol_media = addr("192.168.3.30:4000");
    assert!(
        world
            .pbx()
            .media
            .log
            .lock()
            .unwrap()
            .remotes
            .contains(&(Side::A, carol_media))
    );
    {
        let pbx = world.pbx();
        assert_eq!(pbx.records.len(), 1);
        assert_eq!(pbx.records[0].hangup_cause, "transferred");
        assert_eq!(pbx.records[0].hangup_side, HangupSide::Caller);
    }
    // Carol and Bob talk; Bob (the transferee, the new record's caller) hangs up.
    world.run(secs(5));
    let now = world.now();
    world.bob().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(carol(&mut world).received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    let second = &pbx.records[1];
    assert_eq!(second.caller, "200");
    assert_eq!(second.callee_normalised, "300");
    assert_eq!(second.disposition, Disposition::Answered);
    assert_eq!(second.hangup_side, HangupSide::Caller);
    assert!((5..=7).contains(&second.billable_secs), "{second:?}");
}

#[test]
fn a_crossing_bye_from_the_departed_transferor_gets_200() {
    let mut world = answered_call(Answer::After(secs(1)));
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    // Carol answers: the PBX sends Bob the final NOTIFY and its BYE; Bob's own BYE, sent
    // before ours arrived, crosses it.
    // (10 ms a hop: Carol's 200 reaches the PBX 1.03 s after the REFER was sent, our
    // NOTIFY and BYE reach Bob 10 ms later.)
    world.run(Duration::from_millis(535));
    assert!(world.bob().received_of(Method::Bye).is_empty());
    let now = world.now();
    world.bob().send_in_dialog(now, Method::Bye, None);
    world.run(secs(2));
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    assert_eq!(carol(&mut world).received_of(Method::Ack).len(), 1);
    assert_eq!(world.bob().responses_to(Method::Bye)[0].status().0, 200);
    assert!(world.alice().received_of(Method::Bye).is_empty());
    assert_eq!(world.pbx().calls.call_count(), 1);
    assert_eq!(world.pbx().records[0].hangup_cause, "transferred");
}

#[test]
fn the_caller_hanging_up_while_the_target_rings_cancels_the_target() {
    let mut world = answered_call(Answer::Never);
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(carol(&mut world).cancels, 1);
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_eq!(pbx.records.len(), 2);
    let transfer = pbx
        .records
        .iter()
        .find(|r| r.callee_normalised == "300")
        .unwrap();
    assert_eq!(transfer.disposition, Disposition::Cancelled);
    let original = pbx
        .records
        .iter()
        .find(|r| r.callee_normalised == "200")
        .unwrap();
    assert_eq!(original.disposition, Disposition::Answered);
    assert_eq!(original.hangup_side, HangupSide::Caller);
}

#[test]
fn a_refer_from_a_trunk_leg_is_forbidden_and_trunk_legs_are_not_offered_refer() {
    let carrier = Ua::new(BOB, Answer::After(secs(1)), 21);
    let mut world = World::new(config_ringing_for(secs(20)), vec![carrier]);
    world.add_ua(Ua::new(CAROL, Answer::After(secs(1)), 31));
    world.pbx().transfer_targets = vec![("300".into(), vec![addr(CAROL)])];
    world.pbx().trunks = Some(vec![None]);
    world.call(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    let invite = world.bob().received_of(Method::Invite)[0].clone();
    assert!(!header(&invite, &HeaderName::Allow).contains("REFER"));
    refer(&mut world, true, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [403]);
    assert!(world.pbx().transfer_requests.is_empty());
    assert!(carol(&mut world).received.is_empty());
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn refer_sub_false_transfers_without_notifies() {
    let mut world = answered_call(Answer::After(secs(1)));
    let invite = world.bob().received_of(Method::Invite)[0].clone();
    assert!(header(&invite, &HeaderName::Allow).contains("REFER"));
    let now = world.now();
    let refer_sub = HeaderName::Other(bytes::Bytes::from_static(b"Refer-Sub"));
    world.bob().send_in_dialog_with(
        now,
        Method::Refer,
        None,
        &[
            (HeaderName::ReferTo, "<sip:300@tenant.example>".to_owned()),
            (refer_sub.clone(), "false".to_owned()),
        ],
    );
    world.run(secs(3));
    let accepted = world.bob().responses_to(Method::Refer)[0].clone();
    assert_eq!(accepted.status().0, 202);
    assert_eq!(accepted.headers().get(&refer_sub), Some(&b"false"[..]));
    assert!(world.bob().received_of(Method::Notify).is_empty());
    assert_eq!(carol(&mut world).received_of(Method::Ack).len(), 1);
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    assert_eq!(world.pbx().records[0].hangup_cause, "transferred");
}

#[test]
fn the_device_on_a_trunk_call_may_transfer_the_carrier_leg_and_the_trunk_stays_on_record() {
    let carrier = Ua::new(BOB, Answer::After(secs(1)), 21);
    let mut world = World::new(config_ringing_for(secs(20)), vec![carrier]);
    world.add_ua(Ua::new(CAROL, Answer::After(secs(1)), 31));
    world.pbx().transfer_targets = vec![("300".into(), vec![addr(CAROL)])];
    world.pbx().trunks = Some(vec![None]);
    world.call(secs(2));
    refer(&mut world, false, &["<sip:300@tenant.example>"]);
    assert_eq!(refer_statuses(world.alice()), [202]);
    // Carol sees the carrier's party (the number Alice dialled) calling.
    let invite = carol(&mut world).received_of(Method::Invite)[0].clone();
    assert!(header(&invite, &HeaderName::From).contains("+31201234567"));
    world.run(secs(2));
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    let now = world.now();
    carol(&mut world).send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.records.len(), 2);
    assert_eq!(pbx.records[0].hangup_cause, "transferred");
    assert_eq!(pbx.records[0].hangup_side, HangupSide::Caller);
    let transferred = &pbx.records[1];
    assert_eq!(transferred.caller, "+31201234567");
    assert_eq!(transferred.callee_normalised, "300");
    assert_eq!(transferred.trunk.as_deref(), Some("trunk-0"));
    assert_eq!(transferred.disposition, Disposition::Answered);
    // Carol (on side A) hung up: the callee of the transferred call.
    assert_eq!(transferred.hangup_side, HangupSide::Callee);
}

/// CAROL and DAVE are carriers here: a transfer to a number goes out through `trunk-0`
/// (CAROL) then `trunk-1` (DAVE), the second authenticating with digest.
const DAVE: &str = "192.168.3.31:5060";

fn trunk_account(password: &str) -> Option<pbx_call::TrunkCredentials> {
    Some(pbx_call::TrunkCredentials {
        username: "acct".into(),
        password: password.into(),
        realm: None,
    })
}

/// Alice calls Bob, Bob answers; the PBX routes numbers through `first` (index 3) and
/// `second` (index 4), in that order.
fn answered_call_with_trunks(first: Ua, second: Ua) -> World {
    let bob = Ua::new(BOB, Answer::After(secs(1)), 21);
    let mut world = World::new(config_ringing_for(secs(20)), vec![bob]);
    assert_eq!(world.add_ua(first), 3);
    assert_eq!(world.add_ua(second), 4);
    world.pbx().transfer_trunks = vec![(addr(CAROL), None), (addr(DAVE), trunk_account("s3cret"))];
    world.call(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    world
}

#[test]
fn a_transfer_to_a_number_fails_over_from_a_503_trunk_and_answers_the_carriers_407_once() {
    let first = Ua::new(CAROL, Answer::Reject(503, Duration::from_millis(200)), 31);
    let mut second = Ua::new(DAVE, Answer::After(secs(1)), 32);
    second.challenge = Some((407, "s3cret"));
    let mut world = answered_call_with_trunks(first, second);
    refer(&mut world, true, &["<sip:0612345678@tenant.example>"]);
    assert_eq!(refer_statuses(world.bob()), [202]);
    // One trunk at a time, in order: the first got the INVITE with the E.164 number.
    let first_invite = world.ua(3).received_of(Method::Invite)[0].clone();
    assert_eq!(
        first_invite.uri().to_string(),
        "sip:+31612345678@192.168.3.30"
    );
    world.run(secs(3));
    assert_eq!(
        world.ua(3).received_of(Method::Invite).len(),
        1,
        "no retry of the 503 trunk"
    );
    let dave = world.ua(4);
    assert_eq!(
        dave.auth_results,
        [None, Some(true)],
        "the 407 answered once"
    );
    let invites: Vec<Request> = dave
        .received_of(Method::Invite)
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(invites.len(), 2);
    assert_eq!(
        invites[0].uri().to_string(),
        "sip:+31612345678@192.168.3.31"
    );
    assert_eq!(invites[0].call_id().unwrap(), invites[1].call_id().unwrap());
    assert_eq!(
        invites[0].cseq().unwrap().seq + 1,
        invites[1].cseq().unwrap().seq
    );
    assert!(header(&invites[1], &HeaderName::ProxyAuthorization).contains("username=\"acct\""));
    assert_ne!(
        first_invite.call_id().unwrap(),
        invites[0].call_id().unwrap()
    );
    // The carrier sees the caller ID the driver chose, never our internal identities.
    for invite in [&first_invite, &invites[1]] {
        assert_eq!(
            header(invite, &HeaderName::From).split(';').next().unwrap(),
            "<sip:+31851234567@carrier.example>"
        );
        assert_eq!(
            header(invite, &HeaderName::PAssertedIdentity),
            "<sip:+31851234567@carrier.example>"
        );
        assert!(invite.headers().get(&HeaderName::ReferredBy).is_none());
        assert!(!header(invite, &HeaderName::Allow).contains("REFER"));
        assert!(body_text(invite).contains("m=audio 30006 RTP/AVP 8 101"));
    }
    // Dave answered: Bob is told and leaves, Alice talks to the carrier.
    let notified = notifies(world.bob());
    assert_eq!(notified.first().unwrap().0, "SIP/2.0 100 Trying");
    assert_eq!(
        notified.last().unwrap(),
        &(
            "SIP/2.0 200 OK".to_owned(),
            "terminated;reason=noresource".to_owned()
        )
    );
    assert!(!notified.iter().any(|(line, _)| line.contains("503")));
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    assert_eq!(world.ua(4).received_of(Method::Ack).len(), 1);
    // The carrier's side is a trunk leg now: it may not transfer.
    let now = world.now();
    world.ua(4).send_refer(now, &["<sip:300@tenant.example>"]);
    world.run(secs(1));
    let refused: Vec<u16> = world
        .ua(4)
        .responses_to(Method::Refer)
        .iter()
        .map(|r| r.status().0)
        .collect();
    assert_eq!(refused, [403]);
    // Alice hangs up: the carrier gets BYE; two records.
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.ua(4).received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_eq!(pbx.records.len(), 2);
    assert_eq!(pbx.records[0].hangup_cause, "transferred");
    assert_eq!(pbx.records[0].trunk, None);
    let transferred = &pbx.records[1];
    assert_eq!(transferred.direction, pbx_call::Direction::Outbound);
    assert_eq!(transferred.caller, "100");
    assert_eq!(transferred.callee_dialled, "0612345678");
    assert_eq!(transferred.callee_normalised, "+31612345678");
    assert_eq!(transferred.trunk.as_deref(), Some("trunk-1"));
    assert_eq!(transferred.answered_by.as_deref(), Some("trunk-1"));
    assert_eq!(transferred.disposition, Disposition::Answered);
    assert_eq!(transferred.hangup_side, HangupSide::Caller);
}

#[test]
fn a_transfer_to_a_number_whose_trunks_all_fail_leaves_the_call_and_notifies_503() {
    let first = Ua::new(CAROL, Answer::Reject(503, Duration::from_millis(200)), 31);
    let second = Ua::new(DAVE, Answer::Reject(500, Duration::from_millis(200)), 32);
    let mut world = answered_call_with_trunks(first, second);
    world.pbx().transfer_trunks[1].1 = None;
    refer(
        &mut world,
        true,
        &["<sip:+31612345678@tenant.example;user=phone>"],
    );
    assert_eq!(refer_statuses(world.bob()), [202]);
    world.run(secs(2));
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 1);
    assert_eq!(world.ua(4).received_of(Method::Invite).len(), 1);
    assert_eq!(
        notifies(world.bob()).last().unwrap(),
        &(
            "SIP/2.0 503 Service Unavailable".to_owned(),
            "terminated;reason=noresource".to_owned()
        )
    );
    assert!(world.bob().received_of(Method::Bye).is_empty());
    assert!(world.alice().received_of(Method::Bye).is_empty());
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 1, "the original call goes on");
    assert_eq!(pbx.records.len(), 1);
    let failed = &pbx.records[0];
    assert_eq!(failed.hangup_status, 503);
    assert_eq!(failed.hangup_cause, "every trunk failed");
    assert_eq!(failed.trunk.as_deref(), Some("trunk-1"));
    assert_eq!(failed.callee_normalised, "+31612345678");
    // Alice and Bob still talk: a re-INVITE passes, Bob's BYE reaches Alice.
    let now = world.now();
    world
        .bob()
        .send_in_dialog(now, Method::Invite, Some("sendrecv"));
    world.run(secs(1));
    assert_eq!(world.alice().received_of(Method::Invite).len(), 1);
    let now = world.now();
    world.bob().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    assert_eq!(world.pbx().calls.call_count(), 0);
}

#[test]
fn a_carrier_refusing_the_transfer_ends_it_without_failover_and_a_silent_one_is_skipped() {
    // 404 from the first carrier: no failover, NOTIFY 404.
    let first = Ua::new(CAROL, Answer::Reject(404, Duration::from_millis(200)), 31);
    let second = Ua::new(DAVE, Answer::After(secs(1)), 32);
    let mut world = answered_call_with_trunks(first, second);
    refer(&mut world, true, &["<sip:0612345678@tenant.example>"]);
    world.run(secs(2));
    assert!(world.ua(4).received_of(Method::Invite).is_empty());
    assert_eq!(
        notifies(world.bob()).last().unwrap().0,
        "SIP/2.0 404 Not Found"
    );
    assert_eq!(world.pbx().calls.call_count(), 1);

    // A carrier that never answers (its INVITEs are lost) is given up after the trunk
    // response timeout (5 s) and the next one takes the call.
    let first = Ua::new(CAROL, Answer::Never, 31);
    let second = Ua::new(DAVE, Answer::After(secs(1)), 32);
    let mut world = answered_call_with_trunks(first, second);
    world.pbx().transfer_trunks[1].1 = None;
    world
        .net
        .drop_containing(None, "INVITE sip:+31612345678@192.168.3.30");
    refer(&mut world, true, &["<sip:0612345678@tenant.example>"]);
    world.run(secs(4));
    assert!(world.ua(4).received_of(Method::Invite).is_empty());
    world.run(secs(3));
    assert_eq!(world.ua(4).received_of(Method::Invite).len(), 1);
    assert_eq!(notifies(world.bob()).last().unwrap().0, "SIP/2.0 200 OK");
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    assert_eq!(world.pbx().records[0].hangup_cause, "transferred");
}
