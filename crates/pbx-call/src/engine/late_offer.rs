//! Late offer (RFC 3261 §13.2.1, RFC 3264): an INVITE without SDP. The offer comes in the
//! 2xx of the side it was sent to and the answer in the ACK of the side that sent it, so
//! the B2BUA may ACK the 2xx only once the other side's ACK has brought the answer.
//!
//! - A caller's INVITE without SDP starts a call whose forks carry no offer either (with
//!   `Supported: 100rel` only when the caller supports it). The relay session is allocated
//!   up front, as for any call.
//! - The winning fork's 2xx offer is restricted to the configured codecs, tells the relay
//!   where the callee receives, and goes to the caller rewritten to our relay; the fork's
//!   2xx is not ACKed yet ([`LateAck`]). The other forks are CANCELled as usual.
//! - The caller's ACK brings the answer: the relay learns the caller's address, and the
//!   fork gets its ACK with the answer rewritten to our relay.
//! - Whatever ends the call first (no offer or no common codec in the 2xx: the caller gets
//!   488; an ACK without a usable answer; no ACK within 64·T1; any teardown) ACKs the fork
//!   with an answer rejecting every stream before its BYE (§13.2.1: a valid answer in the
//!   ACK, then BYE). A call that never completed its offer/answer is recorded as failed.
//! - Offer in a reliable 18x (RFC 3261 §13.2.1, RFC 3262 §5): when the caller supports
//!   100rel, a fork's first reliable 18x with SDP carries its offer. Restricted to our
//!   codecs and rewritten to our relay (which learns where the callee receives), it goes
//!   to the caller in our reliable 183 (our RSeq, `Require: 100rel`, retransmitted until
//!   PRACKed; the caller's 2xx is held until then). The caller's PRACK brings the answer:
//!   the relay learns the caller's address, the PRACK gets 200 and our PRACK to the fork
//!   carries the answer rewritten to our relay. The 2xx then completes nothing: a session
//!   in it (a repeat of the offer) is ignored, the fork is ACKed at once without SDP and
//!   the caller's 2xx carries none ([`EarlyOffer`]).
//!   A PRACK without an answer, or one sharing no codec with the offer, violates §5: the
//!   PRACK gets 200 (it acknowledges our 183), then the call fails like a late offer
//!   whose ACK had no answer: 488 to the caller's INVITE with a `Reason`, the forks
//!   CANCELled, the record failed (status 488, hangup side system, cause `PRACK without
//!   SDP answer` / `unusable SDP answer in PRACK`).
//!   A fork's 2xx before our PRACK (§3 forbids it) is not ACKed yet: the caller's 2xx
//!   (without SDP) is held until its PRACK, whose answer goes to the fork in the ACK.
//!   Another fork winning after the exchange (its 2xx brings its own offer) is ACKed with
//!   the caller's answer restricted to the codecs that offer shares with it (the relay
//!   points at that fork), the caller's 2xx again without SDP; sharing none, the fork gets
//!   an ACK rejecting its streams and BYE, the caller 488.
//! - Any other 18x with SDP in a late-offer call (the caller without 100rel, an unreliable
//!   18x, an offer without a codec we relay, a later fork's) is not relayed: the caller
//!   gets the offer in the 2xx. A reliable one is PRACKed by us without an answer (the 2xx
//!   then normally repeats the offer).
//! - A re-INVITE without SDP in a confirmed dialog passes across the same way: the other
//!   side's 2xx offer goes back (restricted when possible, rewritten) in the 2xx to the
//!   re-INVITE, and its ACK waits for the originator's ACK with the answer. No ACK, or one
//!   without an answer, ends the call (BYE both legs).

use bytes::Bytes;
use pbx_sdp::{Codec, SessionDescription};
use pbx_sip::{HeaderName, Request};
use pbx_sip_engine::{ClientTransaction, DialogId, Endpoint, Invite, ServerTransaction};

use super::{CallEngine, CallKey, reason};
use crate::call::{Call, EarlyOffer, LateAck, Phase};
use crate::media::Side;
use crate::record::{Disposition, HangupSide, Now};
use crate::reliable::Origin;
use crate::sdp::body_sdp;
use crate::sip::our_via;

/// The cause recorded when the caller's ACK carried no usable answer.
const NO_ANSWER: &str = "ACK without SDP answer";

/// The cause recorded when the caller's PRACK of our 18x with an offer had no answer.
const NO_PRACK_ANSWER: &str = "PRACK without SDP answer";

impl<C: Clone> CallEngine<C> {
    /// The call whose owed ACK this ACK brings the answer for: by the INVITE server
    /// transaction it matched, or, when that is gone, by dialog and CSeq.
    pub(super) fn late_ack_call(
        &self,
        transaction: Option<&ServerTransaction<Invite>>,
        request: &Request,
    ) -> Option<CallKey> {
        // Every owed ACK is indexed here: no call waits for one (the usual case), so an
        // ordinary ACK costs no dialog-id parse.
        if self.late_acks.is_empty() {
            return None;
        }
        if let Some(key) = transaction.and_then(|t| self.late_acks.get(&t.id())) {
            return Some(*key);
        }
        let id = DialogId::of_incoming_request(request).ok()??;
        let (key, side) = *self.dialogs.get(&(id.call_id, id.local_tag))?;
        let late = self.calls.get(&key)?.late_ack.as_ref()?;
        let cseq = request.cseq().ok()?.seq;
        (late.to == side.other() && late.cseq == cseq).then_some(key)
    }

    /// The ACK that must carry the answer to the offer we relayed in a 2xx: the relay learns
    /// where its sender receives and the owed ACK goes to the other side with the answer
    /// rewritten. Without an answer (or, for the initial INVITE, one sharing no codec with
    /// the offer) the call ends.
    pub(super) fn on_late_ack(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        request: &Request,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(late) = call.late_ack.clone() else {
            return;
        };
        let answer = body_sdp(request.headers(), request.body())
            .and_then(Result::ok)
            .filter(|answer| {
                !late.initial
                    || late
                        .offer
                        .as_ref()
                        .is_some_and(|offer| !offer.common_audio_codecs(answer).is_empty())
            });
        let Some(answer) = answer else {
            let cause = if request.body().is_empty() {
                NO_ANSWER
            } else {
                "unusable SDP answer in ACK"
            };
            self.fail_late_offer(endpoint, now, key, cause, 488);
            return;
        };
        call.learn_remote(late.to.other(), &answer);
        let body = call.sdp_toward(late.to, &answer).ok();
        self.settle_late_ack(endpoint, now, key, None, body);
        self.reschedule(key);
    }

    /// The caller's PRACK of our 18x with an offer carried no usable answer (`request`):
    /// the call fails before its answer (see the module doc).
    pub(super) fn fail_early_answer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        request: &Request,
    ) {
        let cause = if request.body().is_empty() {
            NO_PRACK_ANSWER
        } else {
            "unusable SDP answer in PRACK"
        };
        let side = Some(HangupSide::System);
        self.fail_ringing_by(endpoint, now, key, 488, cause, Disposition::Failed, side);
    }

    /// The answer never came (no ACK within 64·T1, or Timer L on the transaction whose ACK
    /// should bring it): the call ends on both legs.
    pub(super) fn late_ack_missing(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey) {
        let initial = self
            .calls
            .get(&key)
            .and_then(|call| call.late_ack.as_ref())
            .map(|late| late.initial);
        let cause = match initial {
            Some(true) => "no ACK from caller",
            Some(false) => "no ACK with SDP answer",
            None => return,
        };
        self.fail_late_offer(endpoint, now, key, cause, 408);
    }

    /// Sends the ACK we owe (only when owed to `only_to`, if given) with `body`, or, when
    /// there is none, an answer rejecting every stream of the offer. The exchange is over.
    pub(super) fn settle_late_ack(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        only_to: Option<Side>,
        body: Option<Bytes>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let owed = call
            .late_ack
            .as_ref()
            .is_some_and(|late| only_to.is_none_or(|to| late.to == to));
        if !owed {
            return;
        }
        let Some(late) = call.late_ack.take() else {
            return;
        };
        self.late_acks.remove(&late.from.id());
        call.offer_pending = false;
        let local = call.media.local(late.to);
        let Some(leg) = call.leg_mut(late.to) else {
            return;
        };
        let body = body.or_else(|| {
            let offer = late.offer.as_ref()?;
            crate::sdp::rejecting(offer, local, &mut leg.origin).ok()
        });
        let via = our_via(endpoint, leg.transport(), leg.local);
        let Some(Ok(mut ack)) = leg.dialog.as_ref().map(|dialog| dialog.ack(&via)) else {
            return;
        };
        if let Some(body) = body {
            ack.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            ack.set_body(body);
        }
        let _ = endpoint.send_ack(now.instant, late.invite, ack, leg.target.clone());
    }

    /// Ends a call whose late offer/answer exchange failed: the owed ACK (with a rejecting
    /// answer), then BYE on both legs. A call whose initial exchange never completed is
    /// recorded as failed; one that failed in a re-INVITE as answered (it ran until then).
    fn fail_late_offer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        cause: &str,
        status: u16,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let initial = call.late_ack.as_ref().is_some_and(|late| late.initial);
        let header = reason("SIP", status, cause);
        let side = HangupSide::System;
        if call.phase != Phase::Answered {
            // The caller's 2xx is still held (RFC 3262): it gets the failure instead.
            let disposition = Disposition::Failed;
            self.fail_ringing_by(endpoint, now, key, status, cause, disposition, Some(side));
            return;
        }
        if !initial {
            self.end_answered(endpoint, now, key, None, cause, status, &header, side);
            return;
        }
        self.send_bye(endpoint, now, key, Side::B, &header);
        self.send_bye(endpoint, now, key, Side::A, &header);
        let Some(call) = self.remove_call(key) else {
            return;
        };
        self.close(now, call, Disposition::Failed, status, cause, side);
    }
}

/// A fork's reliable 18x (`origin`) of a late-offer call brought `sdp`, its offer: returns
/// it for the caller's reliable 18x (restricted to `codecs`, rewritten to our relay) and
/// awaits the answer in the caller's PRACK. `None` when it has no codec we relay (it is
/// then not relayed).
pub(super) fn relay_early_offer<C>(
    call: &mut Call<C>,
    origin: &Origin,
    mut offer: SessionDescription,
    codecs: &[Codec],
) -> Option<Bytes> {
    offer.restrict_to(codecs).ok()?;
    let body = call.sdp_toward(Side::A, &offer).ok()?;
    call.learn_remote(Side::B, &offer);
    call.offer_pending = true;
    call.early_offer = Some(EarlyOffer {
        origin: origin.clone(),
        offer,
        answer: None,
    });
    Some(body)
}

/// The winning fork's 2xx (our `invite` to B) came while the offer of its reliable 18x
/// still awaits the caller's PRACK: the ACK we owe B carries the answer that PRACK brings.
pub(super) fn owe_early_ack<C>(
    call: &mut Call<C>,
    invite: ClientTransaction<Invite>,
    deadline: std::time::Instant,
) {
    let offer = call.early_offer.as_ref().map(|early| early.offer.clone());
    call.late_ack = Some(LateAck {
        to: Side::B,
        invite,
        offer,
        from: call.a_invite,
        cseq: call.a_request.cseq().map(|cseq| cseq.seq).unwrap_or(0),
        initial: true,
        deadline,
    });
}

/// Another fork than the one whose offer the caller answered won (`note_owed_ack` recorded its
/// 2xx's offer): the caller's answer, restricted to the codecs that offer shares with it,
/// rewritten for that fork's ACK. `None` when they share none.
pub(super) fn answer_again<C>(call: &mut Call<C>) -> Option<Bytes> {
    let offer = call.late_ack.as_ref()?.offer.as_ref()?;
    let mut answer = call.early_offer.as_ref()?.answer.clone()?;
    let shared: Vec<Codec> = answer
        .common_audio_codecs(offer)
        .into_iter()
        .map(|format| format.codec)
        .collect();
    if shared.is_empty() {
        return None;
    }
    answer.restrict_to(&shared).ok()?;
    call.sdp_toward_owned(Side::B, answer).ok()
}

/// Whether the caller's PRACK of our provisional relayed from `origin` must bring the
/// answer to the offer it carried.
pub(super) fn awaits_early_answer<C>(call: &Call<C>, origin: &Origin) -> bool {
    call.early_offer.as_ref().is_some_and(|early| {
        early.answer.is_none()
            && early.origin.fork == origin.fork
            && early.origin.to_tag == origin.to_tag
            && early.origin.rack == origin.rack
    })
}

/// The answer in the caller's PRACK (`request`) to the offer of our reliable 18x: the relay
/// learns where the caller receives and the answer is returned rewritten for our PRACK to
/// the fork (and remembered as the B-leg's last description). `None` without an answer
/// sharing a codec with the offer.
pub(super) fn take_early_answer<C>(call: &mut Call<C>, request: &Request) -> Option<Bytes> {
    let early = call.early_offer.as_ref()?;
    let answer = body_sdp(request.headers(), request.body())
        .and_then(Result::ok)
        .filter(|answer| !early.offer.common_audio_codecs(answer).is_empty())?;
    let fork = early.origin.fork;
    call.offer_pending = false;
    call.learn_remote(Side::A, &answer);
    let body = call.sdp_toward(Side::B, &answer);
    if let Some(early) = call.early_offer.as_mut() {
        early.answer = Some(answer);
    }
    let body = body.ok()?;
    call.b_early_sdp = Some((fork, body.clone()));
    Some(body)
}

/// A late-offer call's winning 2xx (our `invite` to B) with `offer`: records the ACK we owe
/// B until the caller's ACK brings the answer, tells the relay where B receives, and
/// returns the offer for the caller (restricted to `codecs`, rewritten to our relay);
/// `None` when the 2xx had no offer or one without a codec we relay.
pub(super) fn owe_ack<C>(
    call: &mut Call<C>,
    invite: ClientTransaction<Invite>,
    offer: Option<&SessionDescription>,
    codecs: &[Codec],
    deadline: std::time::Instant,
) -> Option<Bytes> {
    let restricted = note_owed_ack(call, invite, offer, codecs, deadline)?;
    call.sdp_toward_owned(Side::A, restricted).ok()
}

/// [`owe_ack`] without the offer for the caller: records the ACK owed B and tells the
/// relay where B receives; returns the offer restricted to `codecs` (`None` as there).
/// Alone for another fork's offer after the caller answered one in its PRACK (the
/// caller's answer serves it, its offer never goes to the caller).
pub(super) fn note_owed_ack<C>(
    call: &mut Call<C>,
    invite: ClientTransaction<Invite>,
    offer: Option<&SessionDescription>,
    codecs: &[Codec],
    deadline: std::time::Instant,
) -> Option<SessionDescription> {
    let restricted = offer.cloned().and_then(|mut offer| {
        offer.restrict_to(codecs).ok()?;
        Some(offer)
    });
    call.late_ack = Some(LateAck {
        to: Side::B,
        invite,
        offer: restricted.clone().or_else(|| offer.cloned()),
        from: call.a_invite,
        cseq: call.a_request.cseq().map(|cseq| cseq.seq).unwrap_or(0),
        initial: true,
        deadline,
    });
    call.offer_pending = true;
    let restricted = restricted?;
    call.learn_remote(Side::B, &restricted);
    Some(restricted)
}

/// The 2xx of side `to` (our re-INVITE `invite` there) brought `offer` for a re-INVITE
/// without SDP from the other side (`server`): records the ACK we owe `to` and returns the
/// offer for the originator, restricted to `codecs` when they have one in common (else as
/// it came: the originator decides) and rewritten to our relay. `None` when it cannot be
/// rewritten (the caller then settles the ACK at once, rejecting the offer).
pub(super) fn owe_reinvite_ack<C>(
    call: &mut Call<C>,
    (to, invite): (Side, ClientTransaction<Invite>),
    server: ServerTransaction<Invite>,
    offer: SessionDescription,
    codecs: &[Codec],
    deadline: std::time::Instant,
) -> Option<Bytes> {
    let mut restricted = offer.clone();
    let offer = if restricted.restrict_to(codecs).is_ok() {
        restricted
    } else {
        offer
    };
    call.media.set_hold(offer.is_hold());
    let cseq = call
        .leg(to.other())
        .and_then(|leg| leg.dialog.as_ref())
        .and_then(|dialog| dialog.remote_seq())
        .unwrap_or(0);
    let body = call.sdp_toward(to.other(), &offer).ok();
    call.late_ack = Some(LateAck {
        to,
        invite,
        offer: Some(offer),
        from: server,
        cseq,
        initial: false,
        deadline,
    });
    call.offer_pending = true;
    body
}
