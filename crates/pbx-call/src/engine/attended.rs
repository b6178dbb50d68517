//! Attended transfer (RFC 3515 REFER with an RFC 3891 `Replaces` in its `Refer-To`),
//! handled here as a B2BUA does (like Asterisk): the transferor X talks to Y on call 1 and
//! to the target T on call 2, both through us, and sends on call 1 a REFER whose `Refer-To`
//! carries `?Replaces=<call 2's dialog>`. We join Y and T and release X from both calls;
//! no INVITE with `Replaces` is sent anywhere.
//!
//! - The `Replaces` names X's own leg of call 2 (its Call-ID and both tags; our tag may be
//!   its `to-tag` or its `from-tag`: both orientations are accepted). No confirmed dialog
//!   of an answered call of this engine with those three: 481. The dialog of call 1 itself
//!   or of a trunk leg, or `early-only`: 403 and 486 (RFC 3891 §3). Either call in an
//!   offer/answer exchange or a transfer: 491. Otherwise the engine reports a
//!   [`TransferRequest`](super::TransferRequest) with `replaces` set and the driver checks
//!   that the named leg is the same party (user, tenant) as the transferor: it answers with
//!   [`CallEngine::start_attended_transfer`], or [`CallEngine::refuse_transfer`] (403).
//! - Started: 202 to the REFER, NOTIFY `100 Trying` to X (as for a blind transfer), and a
//!   re-INVITE to T in its dialog of call 2 offering call 1's relay side that X used (its
//!   last description, restricted to the codecs in use on call 1, `sendrecv`; a carrier's
//!   401/407 to it is answered once with the trunk's account). Call 2 is marked as joining
//!   meanwhile (its re-INVITEs and REFERs get 491). A carrier target stays a trunk leg in
//!   call 1 (no REFER from it, its challenges answered).
//! - T accepts (2xx with a usable answer): it is ACKed and its leg moves into call 1 in
//!   X's place (the relay's X side is pointed at T's answer; latching learns it again); X
//!   gets NOTIFY `200 OK` (terminated) and BYE on call 1, BYE on call 2; Y, if held, a
//!   re-INVITE with `sendrecv`. Call 2 ends, which releases its relay ports. T's session
//!   timer goes on; call 1's maximum duration and RTP timeout apply to the joined call, and
//!   a BYE from Y or T ends it on both sides.
//! - T refuses the re-INVITE (or its answer has no codec in common): X gets NOTIFY with the
//!   final status and both calls go on as they were (after a 2xx without a usable answer, T
//!   is re-INVITEd back to call 2's relay). No response at all (408) or 481: T is gone and
//!   call 2 ends.
//! - Call 2 ends meanwhile: NOTIFY `487` to X, call 1 goes on. Call 1 ends meanwhile: a
//!   2xx of T is ACKed and T is re-INVITEd back to call 2's relay. X hangs up call 1 after
//!   the 202: as for a blind transfer, the join goes on (if it then fails, Y gets BYE).
//!
//! Records (as for a blind transfer): call 1's and call 2's records close when X leaves
//! them (answered, cause `transferred`, hangup side X's); the joined Y–T call gets a record
//! of its own, with a new key, `transfer_of` = call 1's key (the engine call that goes on),
//! the transferee Y as its caller and T as the callee (as call 2 named it), reported
//! `Started` and `Answered` when T accepts the re-INVITE (the talk time starts there; it is
//! `Started` earlier if X hangs up call 1 first) — never for a join that fails. Its
//! `joined` names call 2, whose `Ended` follows that `Answered`: a driver moves what it
//! counts per call (the fraud guard's concurrent calls and minutes) from call 2 to the
//! joined call. Direction: outbound through call 2's trunk when T is a carrier's leg, else
//! call 1's direction and trunk. Its context is the driver's.

use pbx_sdp::{Direction as SdpDirection, SessionDescription};
use pbx_sip::{Replaces, Response};
use pbx_sip_engine::{DialogState, Endpoint, TransactionId};

use super::transfer::{TRANSFERRED, accept_refer, held, transfer_offer, transferee};
use super::{CallEngine, CallKey, Role, call_party, is_trunk_leg, leg_answered, reason};
use crate::call::{Attended, Leg, Phase};
use crate::media::Side;
use crate::record::{CallRecord, Disposition, HangupSide, Now};
use crate::{ReplacedDialog, TransferError};

impl<C: Clone> CallEngine<C> {
    /// Starts an attended transfer the driver accepted (the `Replaces` names the
    /// transferor's own leg): 202, NOTIFY 100, and the re-INVITE moving the target to this
    /// call's relay; `context` is the joined call's record's (see the module doc).
    pub fn start_attended_transfer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        context: C,
    ) -> Result<(), TransferError> {
        let config = self.config.clone();
        let call = self.calls.get_mut(&key).ok_or(TransferError::NotWaiting)?;
        let transfer = call.transfer.as_mut().ok_or(TransferError::NotWaiting)?;
        let attended = transfer.attended.clone().ok_or(TransferError::NotWaiting)?;
        let refer = transfer.refer.take().ok_or(TransferError::NotWaiting)?;
        let x = transfer.transferor;
        accept_refer(endpoint, now, refer, transfer.subscribed);
        self.next_key += 1;
        let record_key = self.next_key;
        // The transferee is the joined call's caller.
        let transferee = transferee(&call.record, call.caller_side, x);
        let (direction, trunk) = (call.record.direction, call.record.trunk.clone());
        let a_call_id = call.record.a_call_id.clone();
        let offer = transfer_offer(call, x, &config.codecs);
        let local = call.media.local(x);
        self.notify(endpoint, now, key, 100, false);
        let target = attended.side.other();
        let Some(other) = self
            .calls
            .get_mut(&attended.other)
            .filter(|other| other.joining.as_ref().is_some_and(|j| j.into == key))
        else {
            self.join_failed(endpoint, now, key, 487, "transfer target's call ended");
            return Ok(());
        };
        // The target as call 2 named it.
        let (dialled, normalised) = if target == other.caller_side {
            (other.record.caller.clone(), other.record.caller.clone())
        } else {
            (
                other.record.callee_dialled.clone(),
                other.record.callee_normalised.clone(),
            )
        };
        let (direction, trunk) = if is_trunk_leg(other, target) {
            (crate::Direction::Outbound, other.record.trunk.clone())
        } else {
            (direction, trunk)
        };
        let mut record = CallRecord::open(
            context, record_key, a_call_id, direction, transferee, dialled, normalised, now,
        );
        record.trunk = trunk;
        record.transfer_of = Some(key.0);
        let Some(leg) = other.leg_mut(target) else {
            self.join_failed(endpoint, now, key, 500, "transfer offer");
            return Ok(());
        };
        let previous = leg.last_sdp.clone();
        let body = offer.and_then(|offer| crate::sdp::toward(offer, local, &mut leg.origin).ok());
        let Some(body) = body else {
            self.join_failed(endpoint, now, key, 500, "transfer offer");
            return Ok(());
        };
        if let Some(joining) = other.joining.as_mut() {
            joining.previous = previous;
        }
        let sent = !other.offer_pending;
        if sent {
            self.reinvite(
                endpoint,
                now,
                attended.other,
                target,
                body.clone(),
                Role::Join(key),
            );
        }
        let sent = sent
            && self
                .calls
                .get(&attended.other)
                .is_some_and(|other| other.offer_pending);
        if !sent {
            self.join_failed(endpoint, now, key, 500, "transfer re-INVITE not sent");
            return Ok(());
        }
        if let Some(transfer) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) {
            transfer.record = Some(record);
            if let Some(attended) = transfer.attended.as_mut() {
                attended.offer = Some(body);
            }
        }
        self.reschedule(key);
        Ok(())
    }

    /// The call and side whose confirmed dialog `replaces` names, for a REFER on call
    /// `key` (see the module doc for the statuses).
    pub(super) fn replaced_dialog(
        &self,
        key: CallKey,
        replaces: &Replaces,
    ) -> Result<ReplacedDialog<C>, u16> {
        let lookup = |local: &bytes::Bytes, remote: &bytes::Bytes| {
            let &(other, side) = self
                .dialogs
                .get(&(replaces.call_id.clone(), local.clone()))?;
            let call = self.calls.get(&other)?;
            let dialog = call.leg(side)?.dialog.as_ref()?;
            let id = dialog.id();
            let named = call.phase == Phase::Answered
                && dialog.state() != DialogState::Terminated
                && id.call_id == replaces.call_id
                && id.local_tag == *local
                && id.remote_tag == *remote;
            named.then_some((other, side))
        };
        let (other, side) = lookup(&replaces.to_tag, &replaces.from_tag)
            .or_else(|| lookup(&replaces.from_tag, &replaces.to_tag))
            .ok_or(481u16)?;
        let call = self.calls.get(&other).ok_or(481u16)?;
        if replaces.early_only {
            return Err(486);
        }
        if other == key || is_trunk_leg(call, side) {
            return Err(403);
        }
        if call.transfer.is_some()
            || call.late_ack.is_some()
            || call.offer_pending
            || call.joining.is_some()
        {
            return Err(491);
        }
        Ok(ReplacedDialog {
            key: other,
            side,
            context: call.record.context.clone(),
            side_is_caller: side == call.caller_side,
        })
    }

    /// The final response of the target (on call `key`) to our re-INVITE joining it to
    /// call `into`.
    pub(super) fn on_join_response(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        into: CallKey,
        transaction: TransactionId,
        response: &Response,
    ) {
        let status = response.status().0;
        if status < 200 {
            return;
        }
        let live = self
            .calls
            .get(&into)
            .and_then(|call| call.transfer.as_ref())
            .and_then(|transfer| transfer.attended.as_ref())
            .filter(|attended| attended.other == key)
            .map(|attended| (attended.side.other(), attended.offer.clone()));
        let Some(other) = self.calls.get_mut(&key) else {
            return;
        };
        other.offer_pending = false;
        let joining = other.joining.take();
        // The side we re-INVITEd.
        let target = match (&live, joining.as_ref()) {
            (Some((target, _)), _) => *target,
            (None, Some(joining)) => joining.target,
            (None, None) => return,
        };
        let answer = leg_answered(endpoint, now, other, target, transaction, response, true);
        let success = response.status().is_success();
        let Some((_, offer)) = live else {
            // Call `into` ended (or dropped the transfer) meanwhile: back to call 2's relay.
            if success {
                self.restore_target(endpoint, now, key, target, joining.and_then(|j| j.previous));
            }
            return;
        };
        if !success {
            if matches!(status, 408 | 481) {
                self.join_failed(endpoint, now, into, status, "transfer target gone");
                let header = reason("SIP", status, "transfer target gone");
                self.teardown(
                    endpoint,
                    now,
                    key,
                    "transfer target gone",
                    status,
                    &header,
                    HangupSide::System,
                );
                return;
            }
            self.join_failed(endpoint, now, into, status, "transfer target refused");
            return;
        }
        let offer = offer.and_then(|offer| SessionDescription::parse_bytes(offer).ok());
        let answer = match (offer, answer) {
            (Some(offer), Some(answer)) if !offer.common_audio_codecs(&answer).is_empty() => answer,
            _ => {
                self.restore_target(endpoint, now, key, target, joining.and_then(|j| j.previous));
                self.join_failed(endpoint, now, into, 488, "transfer target incompatible");
                return;
            }
        };
        self.joined(endpoint, now, into, key, target, &answer);
    }

    /// Our re-INVITE to the target got no response (Timer B) or a transport error: the
    /// target is gone, call `key` (its call) ends and the transfer fails.
    pub(super) fn join_unanswered(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        into: CallKey,
        status: u16,
    ) {
        if let Some(other) = self.calls.get_mut(&key) {
            other.offer_pending = false;
            other.joining = None;
        }
        self.join_failed(endpoint, now, into, status, "transfer target unreachable");
        let header = reason("SIP", status, "leg unreachable");
        let cause = "transfer target unreachable";
        self.teardown(
            endpoint,
            now,
            key,
            cause,
            status,
            &header,
            HangupSide::System,
        );
    }

    /// The attended transfer of call `into` failed with `status`: the transferor gets a
    /// NOTIFY with it and both calls go on (see `transfer_failed`).
    pub(super) fn join_failed(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        into: CallKey,
        status: u16,
        cause: &str,
    ) {
        let Some(transfer) = self
            .calls
            .get_mut(&into)
            .and_then(|call| call.transfer.as_mut())
        else {
            return;
        };
        let Some(attended) = transfer.attended.as_ref() else {
            return;
        };
        let other = attended.other;
        if !attended.started {
            // Never reported: no record of a joined call that never began.
            transfer.record = None;
        }
        if let Some(other) = self.calls.get_mut(&other)
            && other.joining.as_ref().is_some_and(|j| j.into == into)
        {
            other.joining = None;
        }
        self.transfer_failed(endpoint, now, into, status, cause);
    }

    /// Call `key` ends with an attended transfer of it pending: the target's call is
    /// released, unless our re-INVITE to the target is out (its answer restores it).
    pub(super) fn abandon_join(&mut self, key: CallKey, attended: &Attended) {
        if attended.offer.is_some() {
            return;
        }
        if let Some(other) = self.calls.get_mut(&attended.other)
            && other.joining.as_ref().is_some_and(|j| j.into == key)
        {
            other.joining = None;
        }
    }

    /// Reports the joined call's record as started (once), before the transferor leaves.
    pub(super) fn attended_record_started(&mut self, key: CallKey) {
        let Some(transfer) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) else {
            return;
        };
        let (Some(attended), Some(record)) = (transfer.attended.as_mut(), &transfer.record) else {
            return;
        };
        if !attended.started {
            attended.started = true;
            self.records
                .push_back((crate::Stage::Started, record.clone()));
        }
    }

    // ----- internals -----

    /// The target accepted: it takes the transferor's place in call `into`, call `key`
    /// ends (see the module doc).
    fn joined(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        into: CallKey,
        key: CallKey,
        target: Side,
        answer: &SessionDescription,
    ) {
        let Some(transfer) = self.calls.get(&into).and_then(|c| c.transfer.as_ref()) else {
            return;
        };
        let (x, present) = (transfer.transferor, transfer.transferor_present);
        let offer = transfer.attended.as_ref().and_then(|a| a.offer.clone());
        self.attended_record_started(into);
        let header = reason("SIP", 200, "call transferred");
        if present {
            self.notify(endpoint, now, into, 200, true);
            self.send_bye(endpoint, now, into, x, &header);
            self.transferor_leaves(now, into);
        }
        // The transferor leaves call 2 too; the target's leg moves out of it.
        let left = target.other();
        self.send_bye(endpoint, now, key, left, &header);
        let Some(mut other) = self.remove_call(key) else {
            return;
        };
        if let Some(dialog) = other.leg(left).and_then(|leg| leg.dialog.as_ref()) {
            let id = dialog.id();
            self.remember_departed(now, (id.call_id.clone(), id.local_tag.clone()));
        }
        let carrier = is_trunk_leg(&other, target).then(|| {
            let account = other.trunk_leg.as_ref().filter(|(s, _)| *s == target);
            match account {
                Some((_, account)) => account.clone(),
                None => other
                    .forks
                    .iter()
                    .find(|fork| fork.state == crate::call::ForkState::Winner)
                    .and_then(|fork| fork.credentials.clone())
                    .filter(|_| target == Side::B),
            }
        });
        let answered_by = if target == other.caller_side {
            None
        } else {
            other.record.answered_by.clone()
        };
        let Some(mut leg) = take_leg(&mut other, target) else {
            return;
        };
        leg.last_sdp = offer;
        let side = call_party(&other, left);
        let Some(call) = self.calls.get_mut(&into) else {
            self.close(now, other, Disposition::Answered, 200, TRANSFERRED, side);
            return;
        };
        call.transfer = None;
        call.learn_remote(x, answer);
        call.media.set_hold(false);
        if let Some(dialog) = &leg.dialog {
            let id = (dialog.id().call_id.clone(), dialog.id().local_tag.clone());
            self.dialogs.insert(id.clone(), (into, x));
            call.joined_dialogs.push(id);
        }
        match x {
            Side::A => call.a = leg,
            Side::B => call.b = Some(leg),
        }
        if let Some(account) = carrier {
            call.trunk_leg = Some((x, account));
        }
        call.record.answered_at_ms = Some(now.unix_ms);
        call.record.answered_by = answered_by;
        call.record.joined = Some(key.0);
        self.records
            .push_back((crate::Stage::Answered, call.record.clone()));
        // Call 2's record ends after the joined one's answer names it (a driver hands what
        // it counted for call 2 over to the joined call).
        self.close(now, other, Disposition::Answered, 200, TRANSFERRED, side);
        let Some(call) = self.calls.get_mut(&into) else {
            return;
        };
        // Y hears the target: back to sendrecv if the transferor had put it on hold.
        if held(call.leg(x.other())) && !call.offer_pending {
            let mut resumed = answer.clone();
            resumed.set_direction(SdpDirection::SendRecv);
            if let Ok(body) = call.sdp_toward_owned(x.other(), resumed) {
                let role = Role::Refresh(x.other());
                self.reinvite(endpoint, now, into, x.other(), body, role);
            }
        }
        self.reschedule(into);
    }

    /// Offers the target again what it had on call `key`'s relay before our re-INVITE (a
    /// join that failed after the target accepted it).
    fn restore_target(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        target: Side,
        previous: Option<bytes::Bytes>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let description = previous.and_then(|bytes| SessionDescription::parse_bytes(bytes).ok());
        let Some(description) = description else {
            return;
        };
        let Ok(body) = call.sdp_toward_owned(target, description) else {
            return;
        };
        self.reinvite(endpoint, now, key, target, body, Role::Refresh(target));
    }
}

/// Side `side`'s leg taken out of a call that is over (the A leg is rebuilt around its
/// dialog, the call keeps an empty one).
fn take_leg<C>(call: &mut crate::call::Call<C>, side: Side) -> Option<Leg> {
    match side {
        Side::B => call.b.take(),
        Side::A => Some(Leg {
            dialog: call.a.dialog.take(),
            target: call.a.target.clone(),
            local: call.a.local,
            origin: call.a.origin.clone(),
            last_sdp: call.a.last_sdp.take(),
            timer: call.a.timer.take(),
            allows_update: call.a.allows_update,
        }),
    }
}
