//! RFC 3311 UPDATE before the answer: the caller's early dialog is joined to one fork's early
//! dialog (the one whose 18x it got last, see [`crate::call::EarlyPeer`]), and an UPDATE from
//! either passes to the other with its SDP rewritten for the relay, as in a confirmed dialog;
//! the answer comes back rewritten. An offer while another exchange is in progress gets 491.
//! The early dialogs we keep are those opened by a fork's reliable 18x (ours towards the
//! caller opens with our first 18x); an UPDATE in any other gets 481. An UPDATE from the caller
//! while its early dialog is joined to none (the forks rang unreliably) is answered by us:
//! 200 without an offer (a session refresh), 488 with one (RFC 3311 §5.1: no offer before the
//! initial exchange completed reliably).

use bytes::Bytes;
use pbx_sip::{HeaderName, Method, Request, Response, StatusCode};
use pbx_sip_engine::{AcceptedTransaction, Endpoint};

use super::{CallEngine, CallKey, Role, TrunkRetry, glare};
use crate::call::{Call, ForkState, Relay};
use crate::media::Side;
use crate::record::Now;
use crate::sdp::body_sdp;
use crate::sip::{copy_passed_headers, our_contact, our_via};

impl<C: Clone> CallEngine<C> {
    /// An UPDATE in an early dialog of a ringing call (from the caller, or from a fork).
    pub(super) fn on_early_update(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        from: Side,
        accepted: AcceptedTransaction,
        request: &Request,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let fork = match joined_fork(call, from, request) {
            Ok(Peer::Joined(fork)) => fork,
            Ok(Peer::None) => {
                let contact = our_contact_toward(&self.config, call, Side::A, 0);
                answer_unjoined(endpoint, now, accepted, request, contact);
                return;
            }
            Ok(Peer::Unjoined(fork)) => {
                // A fork's early dialog the caller is not joined to: there is nobody to pass
                // it to. Without an offer (a refresh) we answer it; an offer cannot be
                // answered for the caller, whose media goes elsewhere.
                let contact = our_contact_toward(&self.config, call, Side::B, fork);
                answer_unjoined(endpoint, now, accepted, request, contact);
                return;
            }
            Err(status) => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(status));
                return;
            }
        };
        let sdp = match body_sdp(request.headers(), request.body()) {
            Some(Ok(sdp)) => Some(sdp),
            Some(Err(_)) => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(400));
                return;
            }
            None => None,
        };
        let offer = sdp.is_some();
        if offer && call.offer_pending {
            glare(endpoint, now, accepted);
            return;
        }
        let to = from.other();
        let body = match &sdp {
            Some(sdp) => {
                call.learn_remote(from, sdp);
                call.media.set_hold(sdp.is_hold());
                let Ok(body) = call.sdp_toward(to, sdp) else {
                    let _ = endpoint.respond(now.instant, accepted, StatusCode(500));
                    return;
                };
                match to {
                    Side::A => remember_early_answer(call, &body),
                    Side::B => call.b_early_sdp = Some((fork, body.clone())),
                }
                Some(body)
            }
            None => None,
        };
        let Some((mut relayed, target, retry)) = early_request(endpoint, call, to, fork) else {
            let _ = endpoint.respond(now.instant, accepted, StatusCode(481));
            return;
        };
        copy_passed_headers(request.headers(), relayed.headers_mut());
        if let Some(body) = body {
            relayed.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            relayed.set_body(body);
        }
        let Ok(transaction) = endpoint.send_request(now.instant, relayed, target) else {
            let _ = endpoint.respond(now.instant, accepted, StatusCode(500));
            return;
        };
        if offer {
            call.offer_pending = true;
        }
        if let Some(retry) = retry {
            self.trunk_auth.insert(transaction.id(), retry);
        }
        let relay = Relay {
            server: accepted,
            from,
            invite: false,
            offer,
            late: false,
        };
        self.clients
            .insert(transaction.id(), (key, Role::Early(relay, fork)));
    }

    /// The final response to an UPDATE we relayed between early dialogs (`fork` is the
    /// fork's side): the dialog it went in learns it, an answer is rewritten for the side
    /// the UPDATE came from and goes back on its transaction.
    pub(super) fn on_early_response(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        relay: Relay,
        fork: usize,
        response: &Response,
    ) {
        if response.status().0 < 200 {
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let to = relay.from.other();
        if relay.offer {
            call.offer_pending = false;
        }
        let dialog = match to {
            Side::A => call.a.dialog.as_mut(),
            Side::B => response
                .to()
                .ok()
                .and_then(|to| to.tag)
                .and_then(|tag| call.fork_dialog_mut(fork, &tag)),
        };
        if let Some(dialog) = dialog {
            let _ = dialog.on_response(&Method::Update, response);
        }
        let success = response.status().is_success();
        let answer = body_sdp(response.headers(), response.body())
            .and_then(Result::ok)
            .filter(|_| success);
        let body = answer.and_then(|sdp| {
            call.learn_remote(to, &sdp);
            call.sdp_toward(relay.from, &sdp).ok()
        });
        if let Some(body) = &body {
            match relay.from {
                Side::A => remember_early_answer(call, body),
                Side::B => call.b_early_sdp = Some((fork, body.clone())),
            }
        }
        let Ok(mut reply) = endpoint.response(relay.server, response.status()) else {
            return;
        };
        copy_passed_headers(response.headers(), reply.headers_mut());
        if success && let Some(contact) = our_contact_toward(&self.config, call, relay.from, fork) {
            reply.headers_mut().push(HeaderName::Contact, contact);
        }
        if let Some(body) = body {
            reply.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            reply.set_body(body);
        }
        let _ = endpoint.send_response(now.instant, relay.server, reply);
        self.reschedule(key);
    }
}

/// Which fork's early dialog an early UPDATE concerns.
enum Peer {
    /// The one joined to the caller's: the UPDATE passes across.
    Joined(usize),
    /// An UPDATE from a fork's early dialog the caller is not joined to.
    Unjoined(usize),
    /// An UPDATE from the caller while no fork's early dialog is joined to its own.
    None,
}

/// The fork whose early dialog the UPDATE passes to or from, after checking the dialog it
/// came in (its CSeq); `Err(status)` when it cannot go on (481: no such early dialog, or
/// none joined to the caller's; 500: CSeq out of order).
fn joined_fork<C>(call: &mut Call<C>, from: Side, request: &Request) -> Result<Peer, u16> {
    let joined = call.early_peer.clone();
    match from {
        Side::A => {
            let Some(peer) = joined else {
                let dialog = call.a.dialog.as_mut().ok_or(481_u16)?;
                dialog.on_request(request).map_err(|_| 500_u16)?;
                return Ok(Peer::None);
            };
            // The joined fork must still be there (not failed or cancelled).
            call.fork_dialog_mut(peer.fork, &peer.to_tag)
                .ok_or(481_u16)?;
            let dialog = call.a.dialog.as_mut().ok_or(481_u16)?;
            dialog.on_request(request).map_err(|_| 500_u16)?;
            Ok(Peer::Joined(peer.fork))
        }
        Side::B => {
            let call_id = request.call_id().map_err(|_| 481_u16)?;
            let tag = request
                .from()
                .ok()
                .and_then(|from| from.tag)
                .ok_or(481_u16)?;
            let index = call
                .forks
                .iter()
                .position(|fork| fork.call_id == call_id)
                .ok_or(481_u16)?;
            let dialog = call.fork_dialog_mut(index, &tag).ok_or(481_u16)?;
            dialog.on_request(request).map_err(|_| 500_u16)?;
            if joined.is_some_and(|peer| peer.fork == index && peer.to_tag == tag) {
                Ok(Peer::Joined(index))
            } else {
                Ok(Peer::Unjoined(index))
            }
        }
    }
}

/// A new UPDATE in the early dialog of `to` (the caller's, or fork `fork`'s joined one), with
/// where it goes and, towards a trunk, the account to answer a challenge with.
fn early_request<C>(
    endpoint: &mut Endpoint,
    call: &mut Call<C>,
    to: Side,
    fork: usize,
) -> Option<(Request, pbx_sip_engine::Target, Option<TrunkRetry>)> {
    match to {
        Side::A => {
            let via = our_via(endpoint, call.a.transport(), call.a.local);
            let target = call.a.target.clone();
            let request = call.a.dialog.as_mut()?.request(Method::Update, &via).ok()?;
            Some((request, target, None))
        }
        Side::B => {
            let peer = call.early_peer.clone()?;
            let (target, retry, via) = {
                let fork = call
                    .forks
                    .get(fork)
                    .filter(|f| f.state != ForkState::Done)?;
                let retry = fork.credentials.clone().map(|credentials| TrunkRetry {
                    credentials,
                    target: fork.target.target.clone(),
                    local: fork.target.local,
                });
                let via = our_via(endpoint, &fork.target.target.transport, fork.target.local);
                (fork.target.target.clone(), retry, via)
            };
            let dialog = call.fork_dialog_mut(fork, &peer.to_tag)?;
            let request = dialog.request(Method::Update, &via).ok()?;
            Some((request, target, retry))
        }
    }
}

/// Answers an UPDATE from a fork's early dialog the caller is not joined to: 200 (with our
/// `contact`) without an offer, 488 with one.
fn answer_unjoined(
    endpoint: &mut Endpoint,
    now: Now,
    accepted: AcceptedTransaction,
    request: &Request,
    contact: Option<Bytes>,
) {
    if !request.body().is_empty() {
        let _ = endpoint.respond(now.instant, accepted, StatusCode(488));
        return;
    }
    let Ok(mut response) = endpoint.response(accepted, StatusCode::OK) else {
        return;
    };
    if let Some(contact) = contact {
        response.headers_mut().push(HeaderName::Contact, contact);
    }
    let _ = endpoint.send_response(now.instant, accepted, response);
}

/// Our Contact on the side an UPDATE came from (the caller's leg, or fork `fork`'s flow).
fn our_contact_toward<C>(
    config: &crate::config::CallConfig,
    call: &Call<C>,
    side: Side,
    fork: usize,
) -> Option<Bytes> {
    let (transport, local) = match side {
        Side::A => (call.a.transport(), call.a.local),
        Side::B => {
            let fork = call.forks.get(fork)?;
            (&fork.target.target.transport, fork.target.local)
        }
    };
    Some(our_contact(&config.contact_user, transport, local).to_bytes())
}

/// The description now in force towards the caller: repeated in its 2xx when the fork's 2xx
/// carries none (only once an early answer was given at all).
fn remember_early_answer<C>(call: &mut Call<C>, body: &Bytes) {
    if call.a_early_answer.is_some() {
        call.a_early_answer = Some(body.clone());
    }
}
