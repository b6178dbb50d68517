//! Outbound calls through trunks on a virtual clock: the carrier's digest challenge answered
//! once in the same B-leg attempt, and sequential failover across the ordered trunk list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use pbx_call::{CallConfig, Direction, Disposition, HangupSide, TrunkCredentials};
use pbx_sip::{HeaderName, Method, Request};
use support::*;

fn config() -> CallConfig {
    config_ringing_for(secs(60))
}

fn account(password: &str) -> Option<TrunkCredentials> {
    Some(TrunkCredentials {
        username: "acct".into(),
        password: password.into(),
        realm: None,
    })
}

/// Alice calls out; the carriers are `carriers` (index 2, 3, ... of the world), each with the
/// credentials of the same index.
fn trunk_world(carriers: Vec<Ua>, credentials: Vec<Option<TrunkCredentials>>) -> World {
    let mut world = World::new(config(), carriers);
    world.pbx().trunks = Some(credentials);
    world
}

#[test]
fn carrier_challenge_is_answered_once_in_the_same_attempt() {
    for (status, credentials_header) in [
        (407, HeaderName::ProxyAuthorization),
        (401, HeaderName::Authorization),
    ] {
        let mut carrier = Ua::new(BOB, Answer::After(secs(1)), 21);
        carrier.challenge = Some((status, "s3cret"));
        let mut world = trunk_world(vec![carrier], vec![account("s3cret")]);
        world.call(secs(4));
        assert_eq!(world.alice().statuses().last(), Some(&200), "{status}");
        let carrier = world.bob();
        assert_eq!(carrier.auth_results, [None, Some(true)], "{status}");
        let invites = carrier.received_of(Method::Invite);
        let (first, second) = (invites[0].clone(), invites[1].clone());
        let (first, second) = (&first, &second);
        assert_eq!(first.uri().to_string(), "sip:+31201234567@192.168.2.20");
        // Same dialog attempt: Call-ID and From tag kept, CSeq + 1, a new branch.
        assert_eq!(first.call_id().unwrap(), second.call_id().unwrap());
        assert_eq!(first.from().unwrap().tag, second.from().unwrap().tag);
        assert_eq!(first.cseq().unwrap().seq + 1, second.cseq().unwrap().seq);
        assert_ne!(
            header(first, &HeaderName::Via),
            header(second, &HeaderName::Via)
        );
        assert!(header(second, &credentials_header).contains("username=\"acct\""));
        assert_eq!(
            header(second, &HeaderName::PAssertedIdentity),
            "<sip:+31851234567@carrier.example>"
        );
        // The 2xx is ACKed by the call with the answered INVITE's CSeq (the ACK of the
        // challenge is the transactions' business and absorbed by the carrier's).
        let acks = carrier.received_of(Method::Ack);
        assert_eq!(acks.len(), 1, "{:?}", carrier.methods());
        assert_eq!(acks[0].cseq().unwrap().seq, second.cseq().unwrap().seq);
        // In-dialog requests continue the CSeq of the answered INVITE.
        let now = world.now();
        world.alice().send_in_dialog(now, Method::Bye, None);
        world.run(secs(1));
        let bye = world.bob().received_of(Method::Bye)[0].clone();
        assert!(bye.cseq().unwrap().seq > second.cseq().unwrap().seq);
        let record = &world.pbx().records[0];
        assert_eq!(record.direction, Direction::Outbound);
        assert_eq!(record.trunk.as_deref(), Some("trunk-0"));
        assert_eq!(record.answered_by.as_deref(), Some("trunk-0"));
        assert_eq!(record.callee_normalised, "+31201234567");
        assert_eq!(record.disposition, Disposition::Answered);
    }
}

#[test]
fn wrong_password_is_not_retried_and_the_next_trunk_takes_the_call() {
    let mut first = Ua::new(BOB, Answer::After(secs(1)), 21);
    first.challenge = Some((407, "the-real-one"));
    let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut world = trunk_world(vec![first, second], vec![account("wrong"), None]);
    world.call(secs(5));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    assert_eq!(
        world.ua(2).auth_results,
        [None, Some(false)],
        "one answer, no loop"
    );
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 1);
    assert_eq!(world.pbx().records.len(), 0, "still up");
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn challenge_without_credentials_fails_over() {
    let mut first = Ua::new(BOB, Answer::After(secs(1)), 21);
    first.challenge = Some((407, "s3cret"));
    let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut world = trunk_world(vec![first, second], vec![None, None]);
    world.call(secs(5));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    assert_eq!(world.ua(2).received_of(Method::Invite).len(), 1);
}

#[test]
fn server_error_fails_over_to_the_next_trunk_in_order() {
    let first = Ua::new(BOB, Answer::Reject(503, secs(1)), 21);
    let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut world = trunk_world(vec![first, second], vec![None, None]);
    world.call(secs(1));
    // Sequential, not parallel: the second trunk has not been tried yet.
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 0);
    world.run(secs(4));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    let first_id = world.ua(2).received_of(Method::Invite)[0]
        .call_id()
        .unwrap();
    let second_invite = world.ua(3).received_of(Method::Invite)[0].clone();
    assert_ne!(first_id, second_invite.call_id().unwrap(), "a new B-leg");
    assert_eq!(
        second_invite.uri().to_string(),
        "sip:+31201234567@192.168.2.21"
    );
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.ua(3).received_of(Method::Bye).len(), 1);
    let record = &world.pbx().records[0];
    assert_eq!(record.trunk.as_deref(), Some("trunk-1"), "the trunk used");
    assert_eq!(record.answered_by.as_deref(), Some("trunk-1"));
}

#[test]
fn silent_trunk_is_given_up_after_the_response_timeout() {
    let first = Ua::new(BOB, Answer::Never, 21);
    let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut world = trunk_world(vec![first, second], vec![None, None]);
    world
        .net
        .drop_containing(None, "INVITE sip:+31201234567@192.168.2.20");
    world.call(secs(4));
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 0);
    // trunk_response_timeout (5 s by default), not Timer B (32 s).
    world.run(secs(2));
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 1);
    world.run(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    let record = world.pbx().calls.call_count();
    assert_eq!(record, 1);
}

#[test]
fn a_trunk_that_answers_100_is_not_given_up_early() {
    // The carrier rings for 20 s before answering: alive, so no failover at 5 s.
    let first = Ua::new(BOB, Answer::After(secs(20)), 21);
    let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut world = trunk_world(vec![first, second], vec![None, None]);
    world.call(secs(25));
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 0);
    assert_eq!(world.alice().statuses().last(), Some(&200));
}

#[test]
fn timeout_fails_over_to_the_next_trunk() {
    let first = Ua::new(BOB, Answer::Never, 21);
    let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut config = config();
    // Only Timer B ends the silent attempt here.
    config.trunk_response_timeout = secs(120);
    let mut world = World::new(config, vec![first, second]);
    world.pbx().trunks = Some(vec![None, None]);
    world
        .net
        .drop_containing(None, "INVITE sip:+31201234567@192.168.2.20");
    world.call(secs(31));
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 0);
    // Timer B (64 x T1 = 32 s) ends the first attempt.
    world.run(secs(4));
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 1);
    assert_eq!(world.alice().statuses().last(), Some(&200));
}

#[test]
fn client_error_from_a_carrier_ends_the_call_without_failover() {
    for status in [486, 404, 603] {
        let first = Ua::new(BOB, Answer::Reject(status, secs(1)), 21);
        let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
        let mut world = trunk_world(vec![first, second], vec![None, None]);
        world.call(secs(4));
        assert_eq!(world.alice().statuses().last(), Some(&status));
        assert_eq!(
            world.ua(3).received_of(Method::Invite).len(),
            0,
            "{status}: no failover"
        );
        let record = &world.pbx().records[0];
        assert_eq!(record.hangup_status, status);
        assert_eq!(record.hangup_side, HangupSide::Callee);
        assert_eq!(record.trunk.as_deref(), Some("trunk-0"));
    }
}

#[test]
fn every_trunk_failing_gives_503() {
    let first = Ua::new(BOB, Answer::Reject(500, secs(1)), 21);
    let second = Ua::new(BOB2, Answer::Reject(503, secs(1)), 22);
    let mut world = trunk_world(vec![first, second], vec![None, None]);
    world.call(secs(5));
    assert_eq!(world.alice().statuses().last(), Some(&503));
    let record = &world.pbx().records[0];
    assert_eq!(record.disposition, Disposition::Failed);
    assert_eq!(record.hangup_cause, "every trunk failed");
    assert_eq!(record.trunk.as_deref(), Some("trunk-1"));
    assert_eq!(world.pbx().calls.call_count(), 0);
}

#[test]
fn caller_cancel_during_a_trunk_attempt_cancels_it_and_tries_no_other() {
    let first = Ua::new(BOB, Answer::Never, 21);
    let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut world = trunk_world(vec![first, second], vec![None, None]);
    world.call(secs(2));
    let now = world.now();
    world.alice().cancel(now);
    world.run(secs(3));
    assert!(world.alice().statuses().contains(&487));
    assert_eq!(world.ua(2).cancels, 1);
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 0);
}

#[test]
fn a_late_2xx_from_an_abandoned_trunk_is_acked_and_sent_bye() {
    // The first carrier's provisional responses are lost, so it is given up at 5 s
    // (trunk_response_timeout) and the second carrier takes the call; the first one then
    // answers at 8 s. Its 2xx must not be left unanswered (the carrier would retransmit it
    // for 32 s and bill a call): ACK, then BYE, and the caller's call stays on the second.
    let first = Ua::new(BOB, Answer::After(secs(8)), 21);
    let second = Ua::new(BOB2, Answer::After(secs(1)), 22);
    let mut world = trunk_world(vec![first, second], vec![None, None]);
    world.net.drop_containing(None, "SIP/2.0 100 ");
    world.net.drop_containing(None, "SIP/2.0 180 ");
    world.call(secs(7));
    assert_eq!(world.ua(3).received_of(Method::Invite).len(), 1);
    assert_eq!(world.alice().statuses().last(), Some(&200));
    assert!(world.ua(2).received_of(Method::Bye).is_empty());
    world.run(secs(3));
    let abandoned = world.ua(2);
    let acks = abandoned.received_of(Method::Ack);
    assert_eq!(acks.len(), 1, "{:?}", abandoned.methods());
    let byes = abandoned.received_of(Method::Bye);
    assert_eq!(byes.len(), 1, "{:?}", abandoned.methods());
    let invite_id = abandoned.received_of(Method::Invite)[0].call_id().unwrap();
    assert_eq!(
        byes[0].call_id().unwrap(),
        invite_id,
        "the abandoned dialog"
    );
    assert!(header(byes[0], &HeaderName::Reason).contains("answered elsewhere"));
    // The caller saw one answer; the call is up through the second trunk, nothing filed yet.
    let answers = world
        .alice()
        .statuses()
        .iter()
        .filter(|s| **s == 200)
        .count();
    assert_eq!(answers, 1);
    assert_eq!(world.pbx().calls.call_count(), 1);
    assert!(
        world
            .pbx()
            .records
            .iter()
            .all(|r| r.answered_by.as_deref() != Some("trunk-0"))
    );
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.ua(3).received_of(Method::Bye).len(), 1);
    assert_eq!(
        world.ua(2).received_of(Method::Bye).len(),
        1,
        "no second BYE"
    );
    let record = world.pbx().records.last().unwrap().clone();
    assert_eq!(record.answered_by.as_deref(), Some("trunk-1"));
}

#[test]
fn carrier_challenges_on_in_dialog_requests_are_answered_once() {
    for status in [407, 401] {
        let mut carrier = Ua::new(BOB, Answer::After(secs(1)), 21);
        carrier.challenge = Some((status, "s3cret"));
        carrier.challenge_in_dialog = true;
        let mut world = trunk_world(vec![carrier], vec![account("s3cret")]);
        world.call(secs(3));
        assert_eq!(world.alice().statuses().last(), Some(&200), "{status}");
        // Hold: the relayed re-INVITE is challenged, answered with the trunk's account at the
        // next CSeq of the dialog, and the caller gets the carrier's 200 (not the 407).
        let now = world.now();
        world
            .alice()
            .send_in_dialog(now, Method::Invite, Some("sendonly"));
        world.run(secs(2));
        assert_eq!(world.alice().statuses().last(), Some(&200), "{status}");
        let carrier = world.bob();
        let reinvites: Vec<Request> = carrier
            .received_of(Method::Invite)
            .into_iter()
            .skip(2)
            .cloned()
            .collect();
        assert_eq!(reinvites.len(), 2, "{status}: {:?}", carrier.methods());
        let (first, second) = (&reinvites[0], &reinvites[1]);
        assert_eq!(first.call_id().unwrap(), second.call_id().unwrap());
        assert_eq!(first.cseq().unwrap().seq + 1, second.cseq().unwrap().seq);
        let acks = carrier.received_of(Method::Ack);
        assert_eq!(
            acks.last().unwrap().cseq().unwrap().seq,
            second.cseq().unwrap().seq
        );
        // The caller hangs up: the BYE is challenged and answered once; the call is over.
        let now = world.now();
        world.alice().send_in_dialog(now, Method::Bye, None);
        world.run(secs(2));
        let carrier = world.bob();
        let byes = carrier.received_of(Method::Bye);
        assert_eq!(byes.len(), 2, "{status}");
        assert_eq!(byes[0].cseq().unwrap().seq + 1, byes[1].cseq().unwrap().seq);
        assert!(byes[0].cseq().unwrap().seq > second.cseq().unwrap().seq);
        assert_eq!(
            carrier.in_dialog_auth,
            [
                ("INVITE".to_owned(), None),
                ("INVITE".to_owned(), Some(true)),
                ("BYE".to_owned(), None),
                ("BYE".to_owned(), Some(true)),
            ],
            "{status}"
        );
        assert_eq!(world.pbx().calls.call_count(), 0);
        assert_eq!(world.pbx().records[0].disposition, Disposition::Answered);
    }
}

#[test]
fn a_carrier_challenge_to_our_session_refresh_is_answered_once() {
    let mut carrier = Ua::new(BOB, Answer::After(secs(1)), 21);
    carrier.challenge = Some((407, "s3cret"));
    carrier.challenge_in_dialog = true;
    let mut config = config();
    config.session_expires = Some(secs(90));
    let mut world = World::new(config, vec![carrier]);
    world.pbx().trunks = Some(vec![account("s3cret")]);
    world.call(secs(3));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    // Neither side asked for session timers: we refresh both legs at half the interval, and
    // the carrier challenges every in-dialog request it gets — all of them ours.
    world.run(secs(100));
    let carrier = world.bob();
    let refreshes: Vec<(String, Option<bool>)> = carrier
        .in_dialog_auth
        .iter()
        .filter(|(method, _)| method == "INVITE" || method == "UPDATE")
        .cloned()
        .collect();
    // Each refresh: challenged without credentials, then sent again with the right ones.
    assert!(refreshes.len() >= 4, "{:?}", carrier.methods());
    for pair in refreshes.chunks(2) {
        assert_eq!(pair[0].1, None, "{refreshes:?}");
        if let Some(second) = pair.get(1) {
            assert_eq!(second.1, Some(true), "{refreshes:?}");
        }
    }
    // The call survived its refreshes: no teardown, no BYE either way.
    let methods = carrier.methods();
    assert!(carrier.received_of(Method::Bye).is_empty(), "{methods:?}");
    assert_eq!(world.pbx().calls.call_count(), 1, "{methods:?}");
    assert!(world.alice().received_of(Method::Bye).is_empty());
}

#[test]
fn a_second_in_dialog_challenge_is_not_answered_again() {
    let mut carrier = Ua::new(BOB, Answer::After(secs(1)), 21);
    carrier.challenge = Some((407, "s3cret"));
    carrier.challenge_in_dialog = true;
    // The INVITE is accepted with the right password; in-dialog requests then meet a
    // carrier that rejects it (password rotated): one answer each, no loop.
    let mut world = trunk_world(vec![carrier], vec![account("s3cret")]);
    world.call(secs(3));
    world.bob().challenge = Some((407, "rotated"));
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(40));
    let carrier = world.bob();
    assert_eq!(
        carrier.received_of(Method::Bye).len(),
        2,
        "{:?}",
        carrier.methods()
    );
    assert_eq!(
        carrier.in_dialog_auth,
        [("BYE".to_owned(), None), ("BYE".to_owned(), Some(false))]
    );
    assert_eq!(world.pbx().calls.call_count(), 0);
}
