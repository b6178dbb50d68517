//! Matching and the transport layer: RFC 2543 fallback, stray responses and ACKs, transport
//! errors, overload, received/rport, malformed requests.

use std::time::Instant;

use bytes::Bytes;
use pbx_sip::{Message, Method, StatusCode, Transport};
use pbx_sip_engine::{
    AcceptedTransaction, Config, Endpoint, Event, Incoming, Overload, Target, TransportInfo,
};
use pbx_test_support::VirtualClock;

use crate::support::*;

const PEER: &str = "198.51.100.7:5060";

fn udp(source: &str) -> TransportInfo {
    TransportInfo::udp(addr(source))
}

fn rfc2543_invite(extra_to_tag: &str) -> Bytes {
    Bytes::from(format!(
        "INVITE sip:bob@192.0.2.2 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060\r\n\
         From: <sip:old@198.51.100.7>;tag=2543\r\n\
         To: <sip:bob@192.0.2.2>{extra_to_tag}\r\n\
         Call-ID: legacy-1@198.51.100.7\r\nCSeq: 5 INVITE\r\n\
         Contact: <sip:old@198.51.100.7>\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn sent(endpoint: &mut Endpoint) -> Vec<Message> {
    std::iter::from_fn(|| endpoint.poll_transmit())
        .map(|t| Message::parse_datagram(t.contents).unwrap())
        .collect()
}

fn events(endpoint: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| endpoint.poll_event())
        .filter(|e| !matches!(e, Event::Terminated { .. }))
        .collect()
}

fn accept(
    endpoint: &mut Endpoint,
    now: Instant,
    incoming: Option<Incoming>,
) -> AcceptedTransaction {
    endpoint
        .accept(now, incoming.expect("a new request"))
        .unwrap()
}

#[test]
fn rfc2543_requests_match_by_dialog_fields() {
    let now = VirtualClock::start().now();
    let mut bob = Endpoint::new(Config::default(), 9);
    let incoming = bob.handle_datagram(now, udp(PEER), rfc2543_invite(""));
    assert!(incoming.as_ref().unwrap().is_rfc2543());
    let server = accept(&mut bob, now, incoming).invite().unwrap();
    assert_eq!(sent(&mut bob).len(), 1, "100 Trying");

    // The retransmission matches (no branch at all) and gets the 100 again.
    assert!(
        bob.handle_datagram(now, udp(PEER), rfc2543_invite(""))
            .is_none()
    );
    assert_eq!(
        sent(&mut bob)[0].as_response().unwrap().status(),
        StatusCode::TRYING
    );

    // A CANCEL matches the INVITE by the same fields.
    let cancel = String::from_utf8(rfc2543_invite("").to_vec())
        .unwrap()
        .replace("INVITE sip", "CANCEL sip")
        .replace("5 INVITE", "5 CANCEL");
    assert!(
        bob.handle_datagram(now, udp(PEER), Bytes::from(cancel))
            .is_none()
    );
    assert!(
        events(&mut bob)
            .iter()
            .any(|e| matches!(e, Event::Cancelled { invite, .. } if *invite == server))
    );
    let answers = sent(&mut bob);
    assert_eq!(answers[0].as_response().unwrap().status(), StatusCode::OK);

    bob.respond(now, server, StatusCode::REQUEST_TERMINATED)
        .unwrap();
    let final_response = sent(&mut bob).remove(0);
    let tag = final_response.to().unwrap().tag.unwrap();
    // The ACK matches when it carries the tag of our response...
    let ack = String::from_utf8(
        rfc2543_invite(&format!(";tag={}", String::from_utf8_lossy(&tag))).to_vec(),
    )
    .unwrap()
    .replace("INVITE sip", "ACK sip")
    .replace("5 INVITE", "5 ACK");
    assert!(
        bob.handle_datagram(now, udp(PEER), Bytes::from(ack))
            .is_none()
    );
    assert!(
        events(&mut bob).is_empty(),
        "absorbed by the transaction, not a stray ACK"
    );
    assert_eq!(bob.stats().stray_acks, 0);
    assert_eq!(
        bob.transaction_state(server),
        Some(pbx_sip_engine::TransactionState::ServerInvite(
            pbx_sip_engine::transaction::ServerInviteState::Confirmed
        ))
    );
}

#[test]
fn stray_response_is_reported() {
    let now = VirtualClock::start().now();
    let mut alice = Endpoint::new(Config::default(), 3);
    let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKunknown\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: nobody\r\nCSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";
    assert!(
        alice
            .handle_datagram(now, udp(PEER), Bytes::from(response))
            .is_none()
    );
    let events = events(&mut alice);
    assert!(
        matches!(&events[..], [Event::StrayResponse { response, info }]
        if response.status() == StatusCode::OK && info.source == addr(PEER))
    );
    assert_eq!(alice.stats().stray_responses, 1);
}

#[test]
fn stray_ack_reaches_the_tu() {
    let now = VirtualClock::start().now();
    let mut bob = Endpoint::new(Config::default(), 4);
    let ack = "ACK sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKgone\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: late\r\nCSeq: 1 ACK\r\n\
        Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    assert!(
        bob.handle_datagram(now, udp(PEER), Bytes::from(ack))
            .is_none()
    );
    let events = events(&mut bob);
    assert!(matches!(
        &events[..],
        [Event::Ack {
            transaction: None,
            ..
        }]
    ));
    assert!(sent(&mut bob).is_empty(), "ACK is never answered");
}

#[test]
fn transport_error_ends_the_transaction() {
    let now = VirtualClock::start().now();
    let mut alice = Ua::new(addr(ALICE), Config::default(), 5);
    let request = alice.request(Method::Options, addr(BOB));
    let tx = alice
        .endpoint
        .send_request(now, request, Target::udp(addr(BOB)))
        .unwrap();
    let transmit = alice.endpoint.poll_transmit().unwrap();
    assert_eq!(transmit.transaction, Some(tx.id()));
    alice.endpoint.handle_transport_error(now, tx.id());
    let events = events(&mut alice.endpoint);
    assert!(
        matches!(&events[..], [Event::TransportError { transaction }] if *transaction == tx.id())
    );
    assert_eq!(alice.endpoint.transaction_state(tx), None);
    assert_eq!(alice.endpoint.poll_timeout(), None, "its timers are gone");
}

#[test]
fn overload_rejects_with_503_or_drops() {
    for overload in [Overload::Reject503, Overload::Drop] {
        let now = VirtualClock::start().now();
        let config = Config {
            max_transactions: 1,
            overload,
            ..Config::default()
        };
        let mut bob = Endpoint::new(config, 6);
        let mut alice = Ua::new(addr(ALICE), Config::default(), 7);
        let first = alice.request(Method::Invite, addr(BOB)).to_bytes();
        let second = alice.request(Method::Invite, addr(BOB)).to_bytes();
        let incoming = bob.handle_datagram(now, udp(ALICE), first);
        accept(&mut bob, now, incoming);
        sent(&mut bob);
        assert!(bob.handle_datagram(now, udp(ALICE), second).is_none());
        let answers = sent(&mut bob);
        match overload {
            Overload::Reject503 => {
                assert_eq!(answers.len(), 1);
                assert_eq!(
                    answers[0].as_response().unwrap().status(),
                    StatusCode::SERVICE_UNAVAILABLE
                );
            }
            _ => assert!(answers.is_empty()),
        }
        assert_eq!(bob.stats().overloaded, 1);
        assert_eq!(bob.transaction_count(), 1);
    }
}

#[test]
fn responses_follow_received_and_rport() {
    let now = VirtualClock::start().now();
    let mut bob = Endpoint::new(Config::default(), 8);
    // Alice is behind a NAT: her Via says 10.0.0.5:5060, the packet comes from 203.0.113.5:61000.
    let options = "OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKnat\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: nat\r\nCSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let incoming = bob
        .handle_datagram(now, udp("203.0.113.5:61000"), Bytes::from(options))
        .unwrap();
    let via = incoming.request().top_via().unwrap();
    assert_eq!(via.rport, Some(Some(61000)));
    assert_eq!(
        via.received.as_ref().and_then(|h| h.ip()),
        Some(addr("203.0.113.5:1").ip())
    );
    assert_eq!(
        incoming.response_target().address,
        addr("203.0.113.5:61000")
    );
    let server = accept(&mut bob, now, Some(incoming)).non_invite().unwrap();
    bob.respond(now, server, StatusCode::OK).unwrap();
    let transmit = bob.poll_transmit().unwrap();
    assert_eq!(transmit.destination, addr("203.0.113.5:61000"));
    let response = Message::parse_datagram(transmit.contents).unwrap();
    let via = response.top_via().unwrap();
    assert_eq!(
        via.rport,
        Some(Some(61000)),
        "the response carries the stamped Via"
    );

    // Over TCP the response goes back on the same flow.
    let info = TransportInfo::stream(
        Transport::Tcp,
        addr("203.0.113.5:40000"),
        pbx_sip_engine::FlowId(11),
    );
    let request = options_over_tcp();
    let incoming = bob.handle_datagram(now, info, request).unwrap();
    assert_eq!(
        incoming.response_target().flow,
        Some(pbx_sip_engine::FlowId(11))
    );
    bob.reject(now, incoming, StatusCode::FORBIDDEN);
    let transmit = bob.poll_transmit().unwrap();
    assert_eq!(transmit.flow, Some(pbx_sip_engine::FlowId(11)));
    assert_eq!(transmit.transaction, None, "stateless");
}

fn options_over_tcp() -> Bytes {
    Bytes::from_static(
        b"OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/TCP client.example;branch=z9hG4bKtcp\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: tcp\r\nCSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
    )
}

#[test]
fn malformed_request_gets_400_and_garbage_is_counted() {
    let now = VirtualClock::start().now();
    let mut bob = Endpoint::new(Config::default(), 10);
    let no_call_id = "OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKbad\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert!(
        bob.handle_datagram(now, udp(PEER), Bytes::from(no_call_id))
            .is_none()
    );
    let answers = sent(&mut bob);
    assert_eq!(
        answers[0].as_response().unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert!(
        bob.handle_datagram(now, udp(PEER), Bytes::from_static(b"\x00\x01garbage"))
            .is_none()
    );
    assert!(sent(&mut bob).is_empty());
    assert_eq!(bob.stats().malformed, 2);
    assert_eq!(bob.transaction_count(), 0);
}

#[test]
fn incoming_dropped_costs_nothing() {
    let now = VirtualClock::start().now();
    let mut bob = Endpoint::new(Config::default(), 12);
    let mut alice = Ua::new(addr(ALICE), Config::default(), 13);
    for _ in 0..1000 {
        let invite = alice.request(Method::Invite, addr(BOB)).to_bytes();
        let incoming = bob.handle_datagram(now, udp(ALICE), invite).unwrap();
        bob.ignore(incoming);
    }
    assert_eq!(bob.transaction_count(), 0);
    assert_eq!(bob.poll_timeout(), None);
    assert!(sent(&mut bob).is_empty());
}

#[test]
fn forked_2xx_each_go_up_and_each_ack_is_resent_for_its_own_retransmission() {
    let now = VirtualClock::start().now();
    let mut alice = Ua::new(addr(ALICE), Config::default(), 14);
    let invite = alice.request(Method::Invite, addr(BOB));
    let target = Target::udp(addr(BOB));
    let tx = alice
        .endpoint
        .send_invite(now, invite.clone(), target.clone())
        .unwrap();
    sent(&mut alice.endpoint);
    let ok = |tag: &str| {
        let mut response = pbx_sip::Response::for_request(&invite, StatusCode::OK).with_to_tag(tag);
        response.set_header(pbx_sip::HeaderName::Contact, format!("<sip:{tag}@{BOB}>"));
        response
    };
    let mut acked = Vec::new();
    for tag in ["fork1", "fork2"] {
        let response = ok(tag);
        alice
            .endpoint
            .handle_datagram(now, udp(BOB), response.to_bytes());
        let dialog = pbx_sip_engine::Dialog::uac(&invite, &response).unwrap();
        let via = alice.via();
        let ack = dialog.ack(&via).unwrap();
        alice
            .endpoint
            .send_ack(now, tx, ack, target.clone())
            .unwrap();
        acked.push(sent(&mut alice.endpoint).remove(0));
    }
    // fork2's 2xx is retransmitted: its own ACK goes out again, and the 2xx goes up.
    alice
        .endpoint
        .handle_datagram(now, udp(BOB), ok("fork2").to_bytes());
    let resent = sent(&mut alice.endpoint);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].to_bytes(), acked[1].to_bytes());
    assert_eq!(resent[0].to().unwrap().tag.as_deref(), Some(&b"fork2"[..]));
    let tags: Vec<_> = events(&mut alice.endpoint)
        .into_iter()
        .filter_map(|e| match e {
            Event::Response { response, .. } => response.to().unwrap().tag,
            _ => None,
        })
        .collect();
    assert_eq!(tags, ["fork1", "fork2", "fork2"]);
}

#[test]
fn transport_error_on_a_server_transaction() {
    let now = VirtualClock::start().now();
    let mut bob = Endpoint::new(Config::default(), 15);
    let mut alice = Ua::new(addr(ALICE), Config::default(), 16);
    let invite = alice.request(Method::Invite, addr(BOB)).to_bytes();
    let info = TransportInfo::stream(Transport::Tcp, addr(ALICE), pbx_sip_engine::FlowId(3));
    let incoming = bob.handle_datagram(now, info, invite);
    let server = accept(&mut bob, now, incoming).invite().unwrap();
    let trying = bob.poll_transmit().unwrap();
    assert_eq!(
        (trying.flow, trying.transaction),
        (Some(pbx_sip_engine::FlowId(3)), Some(server.id()))
    );
    // The connection broke before the 100 could be written.
    bob.handle_transport_error(now, server.id());
    let events = events(&mut bob);
    assert!(
        matches!(&events[..], [Event::TransportError { transaction }] if *transaction == server.id())
    );
    assert_eq!(
        bob.respond(now, server, StatusCode::OK),
        Err(pbx_sip_engine::ResponseError::UnknownTransaction)
    );
}

#[test]
fn ipv6_sources_are_stamped_and_answered() {
    let now = VirtualClock::start().now();
    let mut bob = Endpoint::new(Config::default(), 17);
    let options = "OPTIONS sip:bob@[2001:db8::2] SIP/2.0\r\n\
        Via: SIP/2.0/UDP [2001:db8::10]:5060;rport;branch=z9hG4bKv6\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: v6\r\nCSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let source = "[2001:db8::99]:40123";
    let incoming = bob
        .handle_datagram(now, udp(source), Bytes::from(options))
        .unwrap();
    assert_eq!(incoming.response_target().address, addr(source));
    bob.reject(now, incoming, StatusCode::FORBIDDEN);
    let transmit = bob.poll_transmit().unwrap();
    assert_eq!(transmit.destination, addr(source));
    let response = Message::parse_datagram(transmit.contents).unwrap();
    let via = response.top_via().unwrap();
    assert_eq!(via.received.and_then(|h| h.ip()), Some(addr(source).ip()));
    assert_eq!(via.rport, Some(Some(40123)));
}
