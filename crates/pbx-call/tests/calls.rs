//! The call engine on a virtual clock: a PBX node, a caller and scripted callees on the
//! in-memory network (10 ms latency).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use pbx_call::{CallConfig, Disposition, HangupSide, Side};
use pbx_sip::Method;
use support::*;

fn config() -> CallConfig {
    config_ringing_for(secs(30))
}

fn answered_world(config: CallConfig) -> World {
    let mut world = World::new(config, vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.call(secs(3));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    world
}

#[test]
fn call_is_answered_through_the_relay_with_topology_hidden() {
    let mut world = answered_world(config());
    let alice_statuses = world.alice().statuses();
    assert!(alice_statuses.contains(&180), "{alice_statuses:?}");
    // Alice's 200 carries Bob's answer pointed at the relay's A side.
    let answer = response_body(world.alice().responses.last().unwrap());
    assert!(answer.contains(&format!("c=IN IP4 {RELAY_IP}")), "{answer}");
    assert!(answer.contains("m=audio 30004 "), "{answer}");
    assert!(
        !answer.contains("192.168.2.20"),
        "Bob's address leaked: {answer}"
    );
    // Bob's INVITE: own Call-ID and tag, relay B side, nothing of Alice.
    let bob = world.bob();
    let invite = bob.received_of(Method::Invite)[0].clone();
    let text = String::from_utf8_lossy(&invite.to_bytes()).into_owned();
    assert!(
        !text.contains("192.168.1.10"),
        "Alice's address leaked: {text}"
    );
    assert!(
        !text.contains("alice-call-1"),
        "Alice's Call-ID leaked: {text}"
    );
    assert!(!text.contains("alice1"), "Alice's tag leaked: {text}");
    assert!(text.contains("m=audio 30006 "), "{text}");
    assert_eq!(invite.uri().to_string(), "sip:bob@172.16.0.1:5060");
    assert_eq!(
        bob.received_of(Method::Ack).len(),
        1,
        "Bob got the ACK of his 2xx"
    );
    // The relay learnt both sides from the SDP.
    let log = world.pbx().media.log.lock().unwrap();
    assert!(log.remotes.contains(&(Side::A, addr("192.168.1.10:4000"))));
    assert!(log.remotes.contains(&(Side::B, addr("192.168.2.20:4000"))));
}

#[test]
fn bye_from_caller_ends_both_legs_and_closes_the_record() {
    let mut world = answered_world(config());
    let record = caller_talks_ten_seconds_and_hangs_up(&mut world).records[0].clone();
    assert_eq!(record.hangup_cause, "BYE");
    assert_eq!(record.answered_by.as_deref(), Some("bob-device-0"));
    assert!(record.ringing_at_ms.is_some());
    assert_eq!(world.alice().statuses().last(), Some(&200));
}

#[test]
fn bye_from_callee_reaches_the_caller() {
    let mut world = answered_world(config());
    let now = world.now();
    world.bob().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    let record = &world.pbx().records[0];
    assert_eq!(record.hangup_side, HangupSide::Callee);
}

#[test]
fn forking_first_answer_wins_and_the_other_fork_is_cancelled() {
    let callees = vec![
        Ua::new(BOB, Answer::After(secs(2)), 21),
        Ua::new(BOB2, Answer::Never, 22),
    ];
    let mut world = World::new(config(), callees);
    world.call(secs(4));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    assert_eq!(world.ua(3).cancels, 1, "the ringing fork got CANCEL");
    assert_eq!(world.ua(3).statuses(), Vec::<u16>::new());
    // Both forks had their own Call-IDs.
    let a = world.ua(2).received_of(Method::Invite)[0]
        .call_id()
        .unwrap();
    let b = world.ua(3).received_of(Method::Invite)[0]
        .call_id()
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn a_late_second_2xx_gets_ack_and_bye() {
    let callees = vec![
        Ua::new(BOB, Answer::After(secs(1)), 21),
        Ua::new(BOB2, Answer::After(Duration::from_millis(1005)), 22),
    ];
    let mut world = World::new(config(), callees);
    // The CANCEL to the second fork is lost, so its 2xx arrives after the first answer.
    world.net.drop_containing(None, "CANCEL sip:bob@172.16.0.2");
    world.call(secs(3));
    assert_eq!(
        world
            .alice()
            .statuses()
            .iter()
            .filter(|s| **s == 200)
            .count(),
        1
    );
    let second = world.ua(3);
    assert_eq!(
        second.received_of(Method::Ack).len(),
        1,
        "{:?}",
        second.methods()
    );
    let bye = second.received_of(Method::Bye);
    assert_eq!(bye.len(), 1, "{:?}", second.methods());
    assert!(bye[0].headers().get(&pbx_sip::HeaderName::Reason).is_some());
    // The winner is still up.
    assert_eq!(world.ua(2).received_of(Method::Bye).len(), 0);
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn busy_callee_maps_to_486() {
    let mut world = World::new(
        config(),
        vec![Ua::new(BOB, Answer::Reject(486, secs(1)), 21)],
    );
    world.call(secs(3));
    assert_eq!(world.alice().statuses().last(), Some(&486));
    let record = &world.pbx().records[0];
    assert_eq!(record.disposition, Disposition::Busy);
    assert_eq!(record.hangup_status, 486);
}

#[test]
fn busy_on_one_fork_and_unavailable_on_the_other_gives_486() {
    let callees = vec![
        Ua::new(BOB, Answer::Reject(480, secs(1)), 21),
        Ua::new(BOB2, Answer::Reject(486, secs(2)), 22),
    ];
    let mut world = World::new(config(), callees);
    world.call(secs(4));
    assert_eq!(world.alice().statuses().last(), Some(&486));
}

#[test]
fn unreachable_callee_gives_408_and_no_targets_gives_480() {
    // The callee never answers anything: Timer B on the only fork.
    let mut world = World::new(config(), vec![Ua::new(BOB, Answer::Never, 21)]);
    world.net.drop_containing(None, "INVITE sip:bob@");
    world.call(secs(40));
    assert_eq!(
        world.alice().statuses().last(),
        Some(&480),
        "ring timeout first"
    );

    let mut config = config();
    config.ring_timeout = secs(60);
    let mut world = World::new(config, vec![Ua::new(BOB, Answer::Never, 21)]);
    world.net.drop_containing(None, "INVITE sip:bob@");
    world.call(secs(40));
    assert_eq!(world.alice().statuses().last(), Some(&408), "Timer B");
    assert_eq!(world.pbx().records[0].disposition, Disposition::NoAnswer);

    let mut world = World::new(self::config(), Vec::new());
    world.call(secs(1));
    assert_eq!(world.alice().statuses().last(), Some(&480));
    assert_eq!(world.pbx().records[0].disposition, Disposition::Unavailable);
}

#[test]
fn ring_timeout_answers_480_and_cancels_the_forks() {
    let mut config = config();
    config.ring_timeout = secs(5);
    let mut world = World::new(config, vec![Ua::new(BOB, Answer::Never, 21)]);
    world.call(secs(4));
    assert_eq!(world.alice().statuses().last(), Some(&180));
    world.run(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&480));
    assert_eq!(world.bob().cancels, 1);
    let record = &world.pbx().records[0];
    assert_eq!(record.disposition, Disposition::NoAnswer);
    assert_eq!(record.hangup_cause, "ring timeout");
    assert_eq!(record.hangup_side, HangupSide::System);
    assert_eq!(record.billable_secs, 0);
}

#[test]
fn caller_cancel_gives_487_and_cancels_every_fork() {
    let callees = vec![
        Ua::new(BOB, Answer::Never, 21),
        Ua::new(BOB2, Answer::Never, 22),
    ];
    let mut world = World::new(config(), callees);
    world.call(secs(2));
    let now = world.now();
    world.alice().cancel(now);
    world.run(secs(2));
    assert!(
        world.alice().statuses().contains(&487),
        "{:?}",
        world.alice().statuses()
    );
    assert_eq!(world.ua(2).cancels, 1);
    assert_eq!(world.ua(3).cancels, 1);
    let record = &world.pbx().records[0];
    assert_eq!(record.disposition, Disposition::Cancelled);
    assert_eq!(record.hangup_side, HangupSide::Caller);
    assert_eq!(world.pbx().calls.call_count(), 0);
}

#[test]
fn offer_without_a_relayed_codec_gets_488_without_forking() {
    let mut world = World::new(config(), vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.alice().payload_types = vec!["18"];
    world.call(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&488));
    assert!(world.bob().received.is_empty());
    assert_eq!(
        world.pbx().records[0].disposition,
        Disposition::Incompatible
    );
    assert_eq!(world.pbx().media.log.lock().unwrap().allocated, 0);
}

#[test]
fn callee_without_a_common_codec_gives_488() {
    let mut bob = Ua::new(BOB, Answer::After(secs(1)), 21);
    bob.payload_types = vec!["0"];
    let mut world = World::new(config(), vec![bob]);
    world.call(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&488));
    assert_eq!(
        world.pbx().records[0].disposition,
        Disposition::Incompatible
    );
}

#[test]
fn hold_and_resume_pass_across() {
    let mut world = answered_world(config());
    let now = world.now();
    world
        .alice()
        .send_in_dialog(now, Method::Invite, Some("sendonly"));
    world.run(secs(1));
    let reinvites = world.bob().received_of(Method::Invite);
    assert_eq!(reinvites.len(), 2);
    let hold = body_text(reinvites[1]);
    assert!(hold.contains("a=sendonly"), "{hold}");
    assert!(hold.contains(&format!("c=IN IP4 {RELAY_IP}")), "{hold}");
    assert!(hold.contains("o=cloudpbx"), "{hold}");
    let answer = response_body(world.alice().responses.last().unwrap());
    assert_eq!(world.alice().statuses().last(), Some(&200));
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(answer.contains("m=audio 30004 "), "{answer}");
    assert_eq!(
        world.bob().received_of(Method::Ack).len(),
        2,
        "the PBX ACKed Bob's 2xx"
    );

    let now = world.now();
    world
        .alice()
        .send_in_dialog(now, Method::Invite, Some("sendrecv"));
    world.run(secs(1));
    let resume = body_text(world.bob().received_of(Method::Invite)[2]);
    assert!(resume.contains("a=sendrecv"), "{resume}");
    assert_eq!(world.alice().statuses().last(), Some(&200));
    assert_eq!(world.pbx().media.log.lock().unwrap().holds, [true, false]);
}

#[test]
fn legacy_hold_becomes_sendonly() {
    let mut world = answered_world(config());
    let now = world.now();
    // c=0.0.0.0 hold (RFC 2543) reaches the callee as a hold.
    let alice = world.alice();
    let ip = alice.address.ip().to_string();
    alice.payload_types = vec!["8"];
    let original = alice.sdp("sendrecv");
    let held = original.replace(&format!("c=IN IP4 {ip}"), "c=IN IP4 0.0.0.0");
    let dialog = alice.dialog.as_mut().unwrap();
    let top = pbx_sip::Via::new(
        pbx_sip::Transport::Udp,
        pbx_sip::Host::from(addr(ALICE).ip()),
        Some(5060),
        "z9hG4bKlegacyhold1".to_owned(),
    );
    let mut request = dialog.request(Method::Invite, &top).unwrap();
    request.headers_mut().push(
        pbx_sip::HeaderName::ContentType,
        bytes::Bytes::from_static(b"application/sdp"),
    );
    request.set_body(held);
    alice
        .endpoint
        .send_invite(now, request, pbx_sip_engine::Target::udp(addr(PBX)))
        .unwrap();
    world.run(secs(1));
    let hold = body_text(world.bob().received_of(Method::Invite)[1]);
    // pbx-sdp keeps the 0.0.0.0 (no address leaks), and we add sendonly for peers that only
    // understand the RFC 3264 style.
    assert!(hold.contains("a=sendonly"), "{hold}");
    assert!(!hold.contains("192.168.1.10"), "{hold}");
}

#[test]
fn glare_gets_491() {
    let mut world = answered_world(config());
    let now = world.now();
    world
        .alice()
        .send_in_dialog(now, Method::Invite, Some("sendonly"));
    world
        .bob()
        .send_in_dialog(now, Method::Invite, Some("sendonly"));
    world.run(secs(2));
    let alice = world.alice().statuses();
    let bob = world.bob().statuses();
    assert!(
        alice.contains(&491) || bob.contains(&491),
        "alice {alice:?} bob {bob:?}"
    );
    // The call survives glare.
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn in_dialog_options_is_answered_and_info_is_relayed() {
    let mut world = answered_world(config());
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Options, None);
    world.run(secs(1));
    assert_eq!(world.alice().statuses().last(), Some(&200));
    assert!(world.bob().received_of(Method::Options).is_empty());
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Info, None);
    world.run(secs(1));
    let info = world.bob().received_of(Method::Info);
    assert_eq!(info.len(), 1);
    assert_eq!(body_text(info[0]), "Signal=5\r\nDuration=160\r\n");
    assert_eq!(world.alice().statuses().last(), Some(&200));
}

#[test]
fn unknown_dialog_gets_481() {
    let mut world = answered_world(config());
    let now = world.now();
    let alice = world.alice();
    let mut dialog = alice.dialog.clone().unwrap();
    alice.dialog = None;
    // A BYE with a To tag the PBX never issued.
    let top = pbx_sip::Via::new(
        pbx_sip::Transport::Udp,
        pbx_sip::Host::from(addr(ALICE).ip()),
        Some(5060),
        "z9hG4bKunknowndialog".to_owned(),
    );
    let mut bye = dialog.request(Method::Bye, &top).unwrap();
    bye.set_header(pbx_sip::HeaderName::CallId, "no-such-call@x");
    alice
        .endpoint
        .send_request(now, bye, pbx_sip_engine::Target::udp(addr(PBX)))
        .unwrap();
    world.run(secs(1));
    assert_eq!(world.alice().statuses().last(), Some(&481));
    assert_eq!(world.pbx().calls.call_count(), 1);
}

#[test]
fn session_timer_expiry_tears_down_both_legs_with_reason() {
    let mut config = config();
    config.session_expires = Some(secs(90));
    let mut world = World::new(config, vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.alice().session_timer = true;
    world.call(secs(2));
    let ok = world.alice().responses.last().unwrap().clone();
    let se = ok.session_expires().unwrap().unwrap();
    assert_eq!(se.delta, 90);
    assert_eq!(se.refresher, Some(pbx_sip::Refresher::Uac));
    // Bob's 2xx had no Session-Expires: we refresh the B-leg at half the interval.
    world.run(secs(50));
    let refreshes = world.bob().received_of(Method::Invite).len()
        + world.bob().received_of(Method::Update).len();
    assert!(refreshes >= 2, "{:?}", world.bob().methods());
    assert_eq!(world.pbx().calls.call_count(), 1);
    // Alice (the refresher) stays silent: the call ends 32 s before the interval runs out.
    world.run(secs(20));
    assert_eq!(world.pbx().calls.call_count(), 0);
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    let bye_b = world.bob().received_of(Method::Bye);
    assert_eq!(bye_b.len(), 1);
    let reason = bye_b[0]
        .headers()
        .get(&pbx_sip::HeaderName::Reason)
        .unwrap();
    assert!(String::from_utf8_lossy(reason).contains("session timer"));
    let record = &world.pbx().records[0];
    assert_eq!(record.hangup_cause, "session timer expired");
    assert_eq!(record.hangup_side, HangupSide::System);
}

#[test]
fn refreshes_from_the_caller_keep_the_call_up() {
    let mut config = config();
    config.session_expires = Some(secs(90));
    let mut world = World::new(config, vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.alice().session_timer = true;
    world.call(secs(2));
    for _ in 0..4 {
        world.run(secs(40));
        let now = world.now();
        world
            .alice()
            .send_in_dialog(now, Method::Invite, Some("sendrecv"));
    }
    world.run(secs(1));
    assert_eq!(
        world.pbx().calls.call_count(),
        1,
        "{:?}",
        world.pbx().records
    );
    assert!(world.alice().received_of(Method::Bye).is_empty());
}

#[test]
fn maximum_duration_ends_the_call() {
    let mut config = config();
    config.max_duration = Some(secs(10));
    let mut world = answered_world(config);
    world.run(secs(12));
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    let record = &world.pbx().records[0];
    assert_eq!(record.hangup_cause, "maximum call duration");
    assert_eq!(record.disposition, Disposition::Answered);
    assert!((9..=11).contains(&record.billable_secs), "{record:?}");
}

#[test]
fn media_timeout_ends_the_call_with_reason() {
    let mut world = answered_world(config());
    let now = world.now();
    let pbx = world.pbx();
    let pair = pbx_call::Now::new(now, 1);
    let key = pbx_call::CallKey(1);
    pbx.calls.media_timeout(&mut pbx.endpoint, pair, key);
    world.run(secs(1));
    let bye = world.bob().received_of(Method::Bye);
    assert_eq!(bye.len(), 1);
    let reason = bye[0].headers().get(&pbx_sip::HeaderName::Reason).unwrap();
    assert!(String::from_utf8_lossy(reason).contains("RTP timeout"));
    assert_eq!(world.alice().received_of(Method::Bye).len(), 1);
}

#[test]
fn relay_exhaustion_gives_503() {
    let mut world = World::new(config(), vec![Ua::new(BOB, Answer::After(secs(1)), 21)]);
    world.pbx().media.exhausted = true;
    world.call(secs(1));
    assert_eq!(world.alice().statuses().last(), Some(&503));
    assert!(world.bob().received.is_empty());
}

/// The engine's clean shutdown at `world`'s current time.
fn shut_down(world: &mut World) {
    let now = world.now();
    let pbx = world.pbx();
    let pair = pbx_call::Now::new(now, 1_700_000_100_000);
    pbx.calls.shut_down(&mut pbx.endpoint, pair);
}

#[test]
fn shutdown_sends_bye_with_reason_to_both_legs_and_closes_the_record() {
    let mut world = answered_world(config());
    world.run(secs(2));
    shut_down(&mut world);
    world.run(secs(1));
    for index in [1, 2] {
        let ua = world.ua(index);
        let byes = ua.received_of(Method::Bye);
        assert_eq!(byes.len(), 1, "ua {index}: {:?}", ua.methods());
        let reason = byes[0].headers().get(&pbx_sip::HeaderName::Reason).unwrap();
        assert_eq!(
            String::from_utf8_lossy(reason),
            "SIP;cause=503;text=\"server shutting down\""
        );
    }
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    assert_eq!(pbx.records.len(), 1);
    let record = &pbx.records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.hangup_side, HangupSide::System);
    assert_eq!(record.hangup_cause, "server shutting down");
    assert_eq!(record.hangup_status, 200);
}

#[test]
fn shutdown_answers_503_to_a_ringing_call_and_cancels_its_forks() {
    let callees = vec![
        Ua::new(BOB, Answer::Never, 21),
        Ua::new(BOB2, Answer::Never, 22),
    ];
    let mut world = World::new(config(), callees);
    world.call(secs(2));
    shut_down(&mut world);
    world.run(secs(2));
    assert_eq!(world.alice().statuses().last(), Some(&503));
    assert_eq!(world.ua(2).cancels, 1);
    assert_eq!(world.ua(3).cancels, 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    let record = &pbx.records[0];
    assert_eq!(record.disposition, Disposition::Failed);
    assert_eq!(record.hangup_side, HangupSide::System);
    assert_eq!(record.hangup_cause, "server shutting down");
    assert_eq!(record.hangup_status, 503);
}
