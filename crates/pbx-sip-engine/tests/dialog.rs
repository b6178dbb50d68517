//! Dialogs: UAC/UAS construction, early → confirmed, route sets, CSeq spaces, target
//! refresh, in-dialog requests (BYE, re-INVITE, ACK for 2xx), and a whole call.

use bytes::Bytes;
use pbx_sip::{Message, Method, Request, Response, StatusCode, Via};
use pbx_sip_engine::{Dialog, DialogError, DialogId, DialogState, Event, Role};

use crate::support::*;

fn parse_request(text: &str) -> Request {
    Message::parse(Bytes::from(text.to_owned()))
        .unwrap()
        .into_request()
        .unwrap()
}

fn parse_response(text: &str) -> Response {
    Message::parse(Bytes::from(text.to_owned()))
        .unwrap()
        .into_response()
        .unwrap()
}

const INVITE: &str = "INVITE sip:bob@biloxi.example SIP/2.0\r\n\
    Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK74bf9\r\n\
    Via: SIP/2.0/UDP proxy.atlanta.example;branch=z9hG4bKp1\r\n\
    Max-Forwards: 70\r\n\
    Record-Route: <sip:p2.biloxi.example;lr>\r\n\
    Record-Route: <sip:p1.atlanta.example;lr>\r\n\
    From: Alice <sip:alice@atlanta.example>;tag=9fxced76sl\r\n\
    To: Bob <sip:bob@biloxi.example>\r\n\
    Call-ID: 3848276298220188511@atlanta.example\r\n\
    CSeq: 2 INVITE\r\n\
    Contact: <sip:alice@client.atlanta.example>\r\n\
    Content-Length: 0\r\n\r\n";

fn response(status: &str, contact: &str) -> Response {
    parse_response(&format!(
        "SIP/2.0 {status}\r\n\
         Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK74bf9\r\n\
         Record-Route: <sip:p2.biloxi.example;lr>\r\n\
         Record-Route: <sip:p1.atlanta.example;lr>\r\n\
         From: Alice <sip:alice@atlanta.example>;tag=9fxced76sl\r\n\
         To: Bob <sip:bob@biloxi.example>;tag=8321234356\r\n\
         Call-ID: 3848276298220188511@atlanta.example\r\n\
         CSeq: 2 INVITE\r\n\
         Contact: {contact}\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

fn via(branch: &str) -> Via {
    Via::parse(format!("SIP/2.0/UDP client.atlanta.example;branch={branch}").as_bytes()).unwrap()
}

#[test]
fn uac_dialog_early_then_confirmed_with_reversed_route_set() {
    let invite = parse_request(INVITE);
    let ringing = response("180 Ringing", "<sip:bob@early.biloxi.example>");
    let mut dialog = Dialog::uac(&invite, &ringing).unwrap();
    assert_eq!(dialog.role(), Role::Uac);
    assert_eq!(dialog.state(), DialogState::Early);
    assert_eq!(dialog.id().local_tag, "9fxced76sl");
    assert_eq!(dialog.id().remote_tag, "8321234356");
    assert_eq!(
        DialogId::of_response(&ringing).unwrap().as_ref(),
        Some(dialog.id())
    );
    let routes: Vec<_> = dialog
        .route_set()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(
        routes,
        ["sip:p1.atlanta.example;lr", "sip:p2.biloxi.example;lr"]
    );
    assert_eq!(dialog.local_seq(), Some(2));
    assert_eq!(dialog.remote_seq(), None);

    let ok = response("200 OK", "<sip:bob@client.biloxi.example>");
    dialog.on_response(&Method::Invite, &ok).unwrap();
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(
        dialog.remote_target().to_string(),
        "sip:bob@client.biloxi.example"
    );
    assert_eq!(dialog.next_hop().to_string(), "sip:p1.atlanta.example;lr");

    // ACK for the 2xx: the INVITE's CSeq number, a new branch, the route set.
    let ack = dialog.ack(&via("z9hG4bKack1")).unwrap();
    assert_eq!(*ack.method(), Method::Ack);
    assert_eq!(ack.cseq().unwrap().seq, 2);
    assert_eq!(ack.to().unwrap().tag.as_deref(), Some(&b"8321234356"[..]));
    assert_eq!(ack.route().unwrap().len(), 2);
    ack.validate().unwrap();

    // BYE takes the next local CSeq and goes to the remote target through the routes.
    let bye = dialog.request(Method::Bye, &via("z9hG4bKbye1")).unwrap();
    assert_eq!(bye.cseq().unwrap().seq, 3);
    assert_eq!(bye.uri().to_string(), "sip:bob@client.biloxi.example");
    assert_eq!(bye.from().unwrap().tag.as_deref(), Some(&b"9fxced76sl"[..]));
    assert_eq!(
        bye.call_id().unwrap(),
        "3848276298220188511@atlanta.example"
    );
    assert!(
        bye.contacts().unwrap().is_empty(),
        "BYE is not a target refresh"
    );
    bye.validate().unwrap();
}

#[test]
fn failed_invite_terminates_the_early_dialog() {
    let invite = parse_request(INVITE);
    let mut dialog = Dialog::uac(&invite, &response("183 Session Progress", "<sip:b@x>")).unwrap();
    dialog
        .on_response(&Method::Invite, &response("486 Busy Here", "<sip:b@x>"))
        .unwrap();
    assert_eq!(dialog.state(), DialogState::Terminated);
    assert!(matches!(
        dialog.request(Method::Bye, &via("z9hG4bKx")),
        Err(DialogError::Terminated)
    ));
    assert!(matches!(
        Dialog::uac(&invite, &response("100 Trying", "<sip:b@x>")),
        Err(DialogError::NotDialogCreating(100))
    ));
}

#[test]
fn uas_dialog_route_set_in_order_and_remote_cseq() {
    let invite = parse_request(INVITE);
    let mut ok = Response::for_request(&invite, StatusCode::OK).with_to_tag("uas-tag");
    ok.set_header(
        pbx_sip::HeaderName::Contact,
        "<sip:bob@client.biloxi.example>",
    );
    let mut dialog = Dialog::uas(&invite, &ok).unwrap();
    assert_eq!(dialog.role(), Role::Uas);
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(dialog.id().local_tag, "uas-tag");
    assert_eq!(dialog.id().remote_tag, "9fxced76sl");
    let routes: Vec<_> = dialog
        .route_set()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(
        routes,
        ["sip:p2.biloxi.example;lr", "sip:p1.atlanta.example;lr"]
    );
    assert_eq!(
        dialog.remote_target().to_string(),
        "sip:alice@client.atlanta.example"
    );
    assert_eq!(dialog.remote_seq(), Some(2));
    assert_eq!(dialog.local_seq(), None);

    // A re-INVITE from Alice refreshes the target; an older CSeq is refused (500).
    let reinvite = INVITE
        .replace(
            "To: Bob <sip:bob@biloxi.example>",
            "To: Bob <sip:bob@biloxi.example>;tag=uas-tag",
        )
        .replace("CSeq: 2 INVITE", "CSeq: 3 INVITE")
        .replace("client.atlanta.example>", "moved.atlanta.example>");
    let reinvite = parse_request(&reinvite);
    assert_eq!(
        DialogId::of_incoming_request(&reinvite).unwrap().as_ref(),
        Some(dialog.id())
    );
    dialog.on_request(&reinvite).unwrap();
    assert_eq!(
        dialog.remote_target().to_string(),
        "sip:alice@moved.atlanta.example"
    );
    assert_eq!(dialog.remote_seq(), Some(3));
    let stale = parse_request(&INVITE.replace("CSeq: 2 INVITE", "CSeq: 1 INVITE"));
    assert_eq!(
        dialog.on_request(&stale),
        Err(DialogError::CSeqOutOfOrder {
            received: 1,
            last: 3
        })
    );

    // Bob's own requests start his local CSeq space; a re-INVITE carries his Contact.
    dialog.set_local_contact(pbx_sip::NameAddr::parse(b"<sip:bob@client.biloxi.example>").unwrap());
    let bobs = dialog.request(Method::Invite, &via("z9hG4bKre")).unwrap();
    assert_eq!(bobs.cseq().unwrap().seq, 1);
    assert_eq!(bobs.to().unwrap().tag.as_deref(), Some(&b"9fxced76sl"[..]));
    assert_eq!(bobs.contacts().unwrap().len(), 1);
    assert_eq!(bobs.uri().to_string(), "sip:alice@moved.atlanta.example");

    let bye = parse_request(
        &INVITE
            .replace("INVITE sip", "BYE sip")
            .replace("CSeq: 2 INVITE", "CSeq: 4 BYE"),
    );
    dialog.on_request(&bye).unwrap();
    assert_eq!(dialog.state(), DialogState::Terminated);
}

#[test]
fn strict_route_becomes_the_request_uri() {
    let invite =
        parse_request(&INVITE.replace("<sip:p1.atlanta.example;lr>", "<sip:p1.atlanta.example>"));
    // The response's Record-Route is what counts for a UAC; its first hop is strict.
    let strict = parse_response(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK74bf9\r\n\
             Record-Route: <sip:p2.biloxi.example;lr>\r\nRecord-Route: <sip:p1.atlanta.example>\r\n\
             From: Alice <sip:alice@atlanta.example>;tag=9fxced76sl\r\n\
             To: Bob <sip:bob@biloxi.example>;tag=8321234356\r\nCall-ID: 3848276298220188511@atlanta.example\r\n\
             CSeq: 2 INVITE\r\nContact: <sip:bob@client.biloxi.example>\r\nContent-Length: 0\r\n\r\n",
    );
    let mut dialog = Dialog::uac(&invite, &strict).unwrap();
    let bye = dialog.request(Method::Bye, &via("z9hG4bKs")).unwrap();
    assert_eq!(bye.uri().to_string(), "sip:p1.atlanta.example");
    let routes: Vec<_> = bye
        .route()
        .unwrap()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(
        routes,
        ["sip:p2.biloxi.example;lr", "sip:bob@client.biloxi.example"]
    );
}

#[test]
fn a_whole_call_over_the_engine() {
    let mut pair = pair();
    let now = pair.now();
    let invite = pair.a().request(Method::Invite, addr(BOB));
    let target = pair.a().target(addr(BOB));
    let tx = pair
        .a()
        .endpoint
        .send_invite(now, invite, target.clone())
        .unwrap();
    pair.step();

    // Bob: 180 creates the early dialog on both sides, 200 confirms it.
    let (accepted, request) = pair.b().accepted[0].clone();
    let server = accepted.invite().unwrap();
    let mut ringing = pair
        .b()
        .endpoint
        .response(server, StatusCode::RINGING)
        .unwrap();
    ringing.set_header(pbx_sip::HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    let mut bob_dialog = Dialog::uas(&request, &ringing).unwrap();
    assert_eq!(bob_dialog.state(), DialogState::Early);
    let now = pair.now();
    pair.b()
        .endpoint
        .send_response(now, server, ringing)
        .unwrap();
    pair.step();
    let now = pair.now();
    respond_ok(pair.b(), now, server);
    pair.step();
    pair.step();

    let responses: Vec<Response> = alice(&pair)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Response { response, .. } => Some(response.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        responses.iter().map(|r| r.status().0).collect::<Vec<_>>(),
        [100, 180, 200]
    );
    let invite = pair.a().endpoint.request(tx).unwrap().clone();
    let mut alice_dialog = Dialog::uac(&invite, &responses[1]).unwrap();
    assert_eq!(alice_dialog.state(), DialogState::Early);
    alice_dialog
        .on_response(&Method::Invite, &responses[2])
        .unwrap();
    assert_eq!(alice_dialog.state(), DialogState::Confirmed);
    assert_eq!(
        alice_dialog.remote_target().to_string(),
        format!("sip:bob@{BOB}")
    );

    let via = pair.a().via();
    let ack = alice_dialog.ack(&via).unwrap();
    let now = pair.now();
    pair.a()
        .endpoint
        .send_ack(now, tx, ack, target.clone())
        .unwrap();
    pair.step();
    let ack = bob(&pair)
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Ack {
                transaction: Some(t),
                request,
                ..
            } if *t == server => Some(request.clone()),
            _ => None,
        })
        .expect("Bob's TU gets the ACK");
    bob_dialog.on_request(&ack).unwrap();
    assert_eq!(bob_dialog.state(), DialogState::Confirmed);

    // Alice hangs up.
    let via = pair.a().via();
    let bye = alice_dialog.request(Method::Bye, &via).unwrap();
    let now = pair.now();
    let bye_tx = pair.a().endpoint.send_request(now, bye, target).unwrap();
    pair.step();
    let (accepted, bye) = pair.b().accepted.last().unwrap().clone();
    assert_eq!(
        DialogId::of_incoming_request(&bye).unwrap().as_ref(),
        Some(bob_dialog.id())
    );
    bob_dialog.on_request(&bye).unwrap();
    assert_eq!(bob_dialog.state(), DialogState::Terminated);
    let now = pair.now();
    pair.b()
        .endpoint
        .respond(now, accepted.non_invite().unwrap(), StatusCode::OK)
        .unwrap();
    pair.run_until_idle().unwrap();
    assert!(alice(&pair).events.iter().any(|(_, e)| matches!(e,
        Event::Response { transaction, response } if *transaction == bye_tx.id() && response.status() == StatusCode::OK)));
    assert_eq!(
        send_times(&pair, BOB, "SIP/2.0 200").len(),
        2,
        "2xx to INVITE not retransmitted after the ACK"
    );
    assert_eq!(pair.a().endpoint.transaction_count(), 0);
    assert_eq!(pair.b().endpoint.transaction_count(), 0);
}
