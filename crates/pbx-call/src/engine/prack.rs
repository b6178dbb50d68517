//! RFC 3262 across the call: a fork's reliable provisionals relayed to the caller with our
//! own RSeq (or PRACKed by us), the caller's PRACK mapped to the fork that sent the
//! provisional, and offers in PRACK relayed. The state lives in [`crate::reliable`]; the
//! retransmission and give-up timers fire from the engine's `fire`.

use bytes::Bytes;
use pbx_sip::{HeaderName, Method, Request, Response, StatusCode};
use pbx_sip_engine::{AcceptedTransaction, Dialog, Endpoint};

use super::{CallEngine, CallKey, Role, Stage, TrunkRetry, late_offer};
use crate::call::{EarlyPeer, ForkState, Phase};
use crate::media::Side;
use crate::record::Now;
use crate::reliable::{self, Noted, Origin, Prack, RAck};
use crate::sdp::body_sdp;
use crate::sip::{our_contact, our_via};

impl<C: Clone> CallEngine<C> {
    /// A 18x from a fork. The first one rings the caller (180, or 183 with the early answer
    /// rewritten to our relay); later ones reach the caller only when they bring the first
    /// early answer. A reliable one (RFC 3262) is relayed reliably when the caller supports
    /// 100rel, with our own RSeq, and PRACKed when the caller PRACKs ours; otherwise, or
    /// when it is not relayed at all, we PRACK it ourselves at once.
    pub(super) fn on_fork_provisional(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        index: usize,
        response: &Response,
    ) {
        let t1 = endpoint.config().t1;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(index) else {
            return;
        };
        if call.phase != Phase::Ringing || fork.state != ForkState::Pending {
            return;
        }
        let mut origin = None;
        if let Some(rseq) = reliable::reliable_rseq(response) {
            let contact = our_contact(
                &self.config.contact_user,
                &fork.target.target.transport,
                fork.target.local,
            );
            match reliable::note(
                &mut fork.early,
                index,
                &fork.request,
                response,
                rseq,
                contact,
            ) {
                Noted::Fresh(fresh) => origin = Some(fresh),
                Noted::Stale => return,
                Noted::NoDialog => {}
            }
        }
        // The fork's early dialog this 18x belongs to, if we keep one (a reliable 18x opened it).
        let known = response
            .to()
            .ok()
            .and_then(|to| to.tag)
            .filter(|tag| fork.early.iter().any(|e| e.dialog.id().remote_tag == *tag));
        if call.record.ringing_at_ms.is_none() {
            call.record.ringing_at_ms = Some(now.unix_ms);
            self.records
                .push_back((Stage::Ringing, call.record.clone()));
        }
        // In a late-offer call an SDP in a 18x is the callee's offer: relayed reliably in
        // ours when it came reliably and the caller can PRACK (its answer comes in the
        // PRACK), else not at all (the caller gets it in the 2xx; see `late_offer`).
        let early = match body_sdp(response.headers(), response.body()) {
            Some(Ok(sdp)) if call.a_early_answer.is_none() && !call.late_offer() => {
                call.learn_remote(Side::B, &sdp);
                call.sdp_toward(Side::A, &sdp).ok()
            }
            Some(Ok(sdp)) if call.early_offer.is_none() && call.reliable.enabled() => {
                origin.as_ref().and_then(|origin| {
                    late_offer::relay_early_offer(call, origin, sdp, &self.config.codecs)
                })
            }
            _ => None,
        };
        if call.ringing_sent && early.is_none() {
            if let Some(origin) = origin {
                self.send_prack(endpoint, now, key, &origin, None, Role::Fire);
            }
            return;
        }
        let code = if early.is_some() { 183 } else { 180 };
        let Ok(mut reply) = endpoint.response(call.a_invite, StatusCode(code)) else {
            return;
        };
        let contact = our_contact(&self.config.contact_user, call.a.transport(), call.a.local);
        reply
            .headers_mut()
            .push(HeaderName::Contact, contact.to_bytes());
        // The caller's early dialog: joined to the fork's this 18x came in (RFC 3311 UPDATEs
        // pass between the two); an early answer from a dialog we do not keep unjoins it.
        match known {
            Some(to_tag) => {
                call.early_peer = Some(EarlyPeer {
                    fork: index,
                    to_tag,
                })
            }
            None if early.is_some() => call.early_peer = None,
            None => {}
        }
        if call.a.dialog.is_none()
            && let Ok(mut dialog) = Dialog::uas(&call.a_request, &reply)
        {
            dialog.set_local_contact(contact);
            call.a.dialog = Some(dialog);
        }
        if let Some(body) = &early {
            reply.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            reply.set_body(body.clone());
            call.a_early_answer = Some(body.clone());
        }
        call.ringing_sent = true;
        let reliably = call.reliable.required()
            || (origin.is_some()
                && call.reliable.enabled()
                && (!call.late_offer() || early.is_some()));
        if reliably {
            let with_sdp = early.is_some();
            if let Some(reply) = call.reliable.push(reply, with_sdp, origin, now.instant, t1) {
                let _ = endpoint.send_response(now.instant, call.a_invite, reply);
            }
            self.reschedule(key);
            return;
        }
        let _ = endpoint.send_response(now.instant, call.a_invite, reply);
        if let Some(origin) = origin {
            // The caller cannot PRACK it: acknowledge it ourselves, relay it unreliably.
            self.send_prack(endpoint, now, key, &origin, None, Role::Fire);
        }
    }

    /// Sends a PRACK for `origin` in the fork's early dialog (with `body`, an offer from
    /// the caller's PRACK, when given); `role` says what its answer is for. A carrier's
    /// 401/407 to it is answered like any in-dialog request on a trunk. `false` when it
    /// could not be sent.
    pub(super) fn send_prack(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        origin: &Origin,
        body: Option<Bytes>,
        role: Role,
    ) -> bool {
        let Some(fork) = self
            .calls
            .get_mut(&key)
            .and_then(|call| call.forks.get_mut(origin.fork))
            // A fork that failed or was cancelled has no use for it.
            .filter(|fork| fork.state != ForkState::Done)
        else {
            return false;
        };
        let Some(early) = fork
            .early
            .iter_mut()
            .find(|e| e.dialog.id().remote_tag == origin.to_tag)
        else {
            return false;
        };
        let via = our_via(endpoint, &fork.target.target.transport, fork.target.local);
        let Ok(mut prack) = early.dialog.request(Method::Prack, &via) else {
            return false;
        };
        prack
            .headers_mut()
            .push(HeaderName::RAck, origin.rack.to_bytes());
        if let Some(body) = body {
            prack.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            prack.set_body(body);
        }
        let retry = fork.credentials.clone().map(|credentials| TrunkRetry {
            credentials,
            target: fork.target.target.clone(),
            local: fork.target.local,
        });
        let Ok(transaction) = endpoint.send_request(now.instant, prack, fork.target.target.clone())
        else {
            return false;
        };
        self.clients.insert(transaction.id(), (key, role));
        if let Some(retry) = retry {
            self.trunk_auth.insert(transaction.id(), retry);
        }
        true
    }

    /// A PRACK (RFC 3262 §3). From the caller, matching our outstanding reliable
    /// provisional: answered 200 (or, when it carries an offer, with the fork's answer to
    /// our PRACK carrying it), the fork's provisional PRACKed, then the next queued
    /// provisional or the held 2xx sent. Anything else that matches nothing gets 481.
    pub(super) fn on_prack(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        from: Side,
        accepted: AcceptedTransaction,
        request: &Request,
    ) {
        let t1 = endpoint.config().t1;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let invite_cseq = call.a_request.cseq().ok().map(|cseq| cseq.seq);
        let matched = match (from, RAck::of(request), invite_cseq) {
            (Side::A, Some(rack), Some(cseq)) => call.reliable.prack(&rack, cseq),
            _ => Prack::Unmatched,
        };
        let origin = match matched {
            Prack::Outstanding(origin) => origin,
            Prack::Late => {
                if let Some(dialog) = call.a.dialog.as_mut() {
                    let _ = dialog.on_request(request);
                }
                let _ = endpoint.respond(now.instant, accepted, StatusCode::OK);
                return;
            }
            Prack::Unmatched => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(481));
                return;
            }
        };
        if let Some(dialog) = call.a.dialog.as_mut() {
            let _ = dialog.on_request(request);
        }
        // The PRACK of our 18x with a late-offer call's offer brings the answer (see
        // `late_offer`); without a usable one the call fails.
        let early_answer = match &origin {
            Some(origin) if late_offer::awaits_early_answer(call, origin) => {
                Some(late_offer::take_early_answer(call, request))
            }
            _ => None,
        };
        if let Some(None) = early_answer {
            let _ = endpoint.respond(now.instant, accepted, StatusCode::OK);
            self.fail_early_answer(endpoint, now, key, request);
            return;
        }
        // An offer in the PRACK goes to the fork whose provisional it acknowledges.
        // (A PRACK that brought the early answer was parsed for it already.)
        let sdp = match (&origin, &early_answer) {
            (Some(_), None) => body_sdp(request.headers(), request.body()),
            _ => None,
        };
        let offer = match sdp {
            Some(Ok(sdp)) => {
                call.learn_remote(Side::A, &sdp);
                call.sdp_toward_owned(Side::B, sdp).ok()
            }
            _ => None,
        };
        if let Some(next) = call.reliable.next(now.instant, t1) {
            let _ = endpoint.send_response(now.instant, call.a_invite, next);
        }
        let release = if call.reliable.holds_final() {
            None
        } else {
            call.held_answer.take()
        };
        let relayed = match (&origin, offer, early_answer.flatten()) {
            (Some(origin), _, Some(answer)) => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode::OK);
                let owed = self
                    .calls
                    .get(&key)
                    .is_some_and(|call| call.late_ack.is_some());
                if owed {
                    // The fork answered before our PRACK: the answer goes in its ACK.
                    self.settle_late_ack(endpoint, now, key, Some(Side::B), Some(answer));
                } else {
                    self.send_prack(endpoint, now, key, origin, Some(answer), Role::Fire);
                }
                true
            }
            (Some(origin), Some(body), None) => self.send_prack(
                endpoint,
                now,
                key,
                origin,
                Some(body),
                Role::Prack(accepted),
            ),
            _ => false,
        };
        if !relayed {
            let _ = endpoint.respond(now.instant, accepted, StatusCode::OK);
            if let Some(origin) = &origin {
                self.send_prack(endpoint, now, key, origin, None, Role::Fire);
            }
        }
        if let Some(reply) = release {
            self.deliver_answer(endpoint, now, key, reply);
        }
        self.reschedule(key);
    }

    /// The fork's final response to the caller's PRACK we relayed with an offer: its status
    /// (and answer, rewritten to our relay) goes back on the caller's PRACK.
    pub(super) fn on_prack_response(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        server: AcceptedTransaction,
        response: &Response,
    ) {
        if response.status().0 < 200 {
            return;
        }
        let Ok(mut reply) = endpoint.response(server, response.status()) else {
            return;
        };
        let answer = match body_sdp(response.headers(), response.body()) {
            Some(Ok(sdp)) if response.status().is_success() => {
                self.calls.get_mut(&key).and_then(|call| {
                    call.learn_remote(Side::B, &sdp);
                    call.sdp_toward(Side::A, &sdp).ok()
                })
            }
            _ => None,
        };
        if let Some(body) = answer {
            reply.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            reply.set_body(body);
        }
        let _ = endpoint.send_response(now.instant, server, reply);
    }
}
