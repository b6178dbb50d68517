//! Blind transfer (RFC 3515 REFER, RFC 4488 `Refer-Sub: false`).
//!
//! A REFER in a confirmed dialog from side X (the transferor) asks us to connect the other
//! side Y (the transferee) to the target of its `Refer-To`. The engine does not know who the
//! target is: it checks the request (400 without one parsable `Refer-To`, 403 from a trunk
//! leg, 491 while a transfer or an offer/answer exchange is in progress; a `Refer-To` with
//! a `Replaces` is an attended transfer, see `attended`) and reports a [`TransferRequest`] from
//! [`CallEngine::poll_transfer`]. The driver resolves the target with the same rules as a
//! call X would dial and, in the same step, calls [`CallEngine::start_transfer`] with the
//! target's bindings or [`CallEngine::refuse_transfer_target`] with a status (nothing is
//! sent anywhere for a target that is not ours).
//!
//! - Refused: the REFER gets the status, the call goes on untouched (its record too), and
//!   the attempted transferee–target call is filed as every refused call attempt is: one
//!   record of its own (new key, `transfer_of` = the call's key), reported `Stage::Ended`
//!   only, hangup side system, with the driver's disposition, status and cause.
//!
//! - Started: 202 to the REFER, a NOTIFY `SIP/2.0 100 Trying` (`Subscription-State:
//!   active;expires=60`) to X, and one INVITE per binding (parallel fork, first 2xx wins,
//!   the others get CANCEL, ring timeout as for calls) with an offer from the relay on X's
//!   side, restricted to the codecs in use on the call, `sendrecv`. A record of the
//!   transferee–target call is opened (its own CDR: `Stage::Started` with a new key).
//! - The target answers: it is ACKed and takes X's place (the relay's X side is pointed at
//!   its answer); X gets a NOTIFY `SIP/2.0 200 OK` (`terminated;reason=noresource`) and BYE;
//!   Y, if X had put it on hold, a re-INVITE with `sendrecv`. The original record closes
//!   (answered, cause `transferred`, hangup side X's); the new one is answered and goes on
//!   with the call.
//! - The target fails (busy, refusal, ring timeout, no binding): X gets a NOTIFY with the
//!   final status line and the call goes on as it was; its record closes with that status.
//! - X hangs up (BYE) while the target rings: this is a blind transfer, so Y stays and the
//!   target goes on ringing; the original record closes then (cause `transferred`). If the
//!   target then fails, Y gets BYE. A BYE from X crossing ours is answered 200.
//! - A number (the driver routed it as the transferor's own call): the target is reached
//!   through trunks with [`CallEngine::start_trunk_transfer`], one attempt at a time as for
//!   [`CallEngine::start_trunk_call`] (carrier 401/407 answered once, failover on 5xx, 408,
//!   no response within `trunk_response_timeout`; another 4xx/6xx ends the transfer; 503
//!   when every trunk failed). The new record is outbound and names the trunk; the side the
//!   carrier answered on is a trunk leg from then on (no REFER, its challenges answered).
//! - Either side may transfer (not a trunk's). The transferee is the new record's caller:
//!   after a transfer by the caller (A) it is on side B, which the record's hangup side and
//!   media counters follow (`Call::caller_side`).

use std::time::Duration;

use bytes::Bytes;
use pbx_sdp::{Direction as SdpDirection, LegOrigin, SessionDescription};
use pbx_sip::scan::percent_decode;
use pbx_sip::{HeaderName, Method, NameAddr, Replaces, Request, Response, StatusCode, Uri};
use pbx_sip_engine::{AcceptedTransaction, Dialog, Endpoint};

use super::{CallEngine, CallKey, Orphan, Role, best_failure, reason};
use crate::call::{ForkState, Leg, SessionTimer, Transfer};
use crate::media::Side;
use crate::record::{CallRecord, Disposition, HangupSide, Now, disposition_for};
use crate::sdp::body_sdp;
use crate::sip::{ForkTarget, TrunkAttempt, our_contact, our_via};

/// The cause recorded on the original call's record when the transferor leaves it.
pub(super) const TRANSFERRED: &str = "transferred";

/// How long a departed transferor's dialog is remembered, so that a BYE crossing ours (or
/// sent after the final NOTIFY) is answered 200 rather than 481.
const DEPARTED_FOR: Duration = Duration::from_secs(32);

/// A transfer asked for by a REFER, for the driver to resolve (see the module doc).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransferRequest<C> {
    /// The call.
    pub key: CallKey,
    /// The side that sent the REFER (the transferor).
    pub transferor: Side,
    /// The `Refer-To` URI (without its header parameters).
    pub target: Uri,
    /// The call's context, as the driver started it.
    pub context: C,
    /// The transferor is the current record's caller (else its callee): whose account a
    /// transfer to a number is placed for.
    pub transferor_is_caller: bool,
    /// The REFER (its `Privacy` and `From` say whether the transferor hides its identity).
    pub refer: Request,
    /// An attended transfer: the confirmed dialog of another call that the `Refer-To`'s
    /// `Replaces` names (see `attended`). The driver checks that it is the transferor's own
    /// and answers with [`CallEngine::start_attended_transfer`] or
    /// [`CallEngine::refuse_transfer`] (403); `target` is then not resolved.
    pub replaces: Option<ReplacedDialog<C>>,
}

/// The other call of an attended transfer, as named by the `Replaces` of a REFER.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplacedDialog<C> {
    /// The call (the transferor's call with the target).
    pub key: CallKey,
    /// The side of that call whose dialog was named (the transferor's own leg, if the
    /// driver agrees); the target is on the other side.
    pub side: Side,
    /// That call's context, as the driver started it.
    pub context: C,
    /// The named side is that call's record caller (else its callee).
    pub side_is_caller: bool,
}

/// What the driver resolved a [`TransferRequest`] to.
#[derive(Debug, Clone)]
pub struct NewTransfer<C> {
    /// The context of the transferee–target call's record.
    pub context: C,
    /// The target as referred to (the `Refer-To` user part).
    pub callee_dialled: String,
    /// The target normalised (its extension).
    pub callee_normalised: String,
    /// The target's bindings (an empty list fails the transfer with 480).
    pub targets: Vec<ForkTarget>,
}

/// A blind transfer's target the driver refuses, and how the attempted transferee–target
/// call is filed (see [`CallEngine::refuse_transfer_target`]).
#[derive(Debug, Clone)]
pub struct RefusedTransfer<C> {
    /// The context of the attempt's record (as a [`NewTransfer`] would have had).
    pub context: C,
    /// The status the REFER gets (403 for a target that is not ours, 404 for an unknown
    /// one, the fraud guard's status, ...).
    pub status: u16,
    /// How the record is filed (`Failed`, `Unavailable`, `Blocked`, ...).
    pub disposition: Disposition,
    /// Why, in words (the record's hangup cause).
    pub cause: String,
    /// The target as referred to.
    pub callee_dialled: String,
    /// The target normalised, or as referred to when it could not be.
    pub callee_normalised: String,
    /// The attempt's direction (`None`: the call's, as for a transfer to an extension).
    pub direction: Option<crate::Direction>,
    /// The trunk, when one had been chosen.
    pub trunk: Option<String>,
}

/// Why [`CallEngine::start_transfer`] or [`CallEngine::refuse_transfer`] did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The call has no REFER waiting to be resolved (it ended, or it was resolved already).
    #[error("no transfer waiting for this call")]
    NotWaiting,
}

impl<C: Clone> CallEngine<C> {
    /// The next transfer asked for by a REFER (see the module doc): answer it in the same
    /// step with [`Self::start_transfer`] or [`Self::refuse_transfer`].
    pub fn poll_transfer(&mut self) -> Option<TransferRequest<C>> {
        self.transfers.pop_front()
    }

    /// Refuses a transfer with `status` to the REFER and no record: for an attended
    /// transfer whose `Replaces` the driver does not accept (no call is attempted). A
    /// blind transfer's target is refused with [`Self::refuse_transfer_target`]. The call
    /// goes on untouched.
    pub fn refuse_transfer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        status: u16,
    ) -> Result<(), TransferError> {
        let call = self.calls.get_mut(&key).ok_or(TransferError::NotWaiting)?;
        let refer = call
            .transfer
            .as_ref()
            .and_then(|transfer| transfer.refer)
            .ok_or(TransferError::NotWaiting)?;
        let attended = call.transfer.take().and_then(|transfer| transfer.attended);
        if let Some(other) = attended.and_then(|attended| self.calls.get_mut(&attended.other)) {
            other.joining = None;
        }
        let _ = endpoint.respond(now.instant, refer, StatusCode(status));
        self.reschedule(key);
        Ok(())
    }

    /// Refuses a blind transfer's target (not ours, unknown, blocked, no route):
    /// `refused.status` to the REFER, and one closed record of the attempted
    /// transferee–target call (`Stage::Ended` only, as for a call refused before forking):
    /// a new key, `transfer_of` = `key`, the transferee as the caller, hangup side
    /// system, no billable time. The call goes on untouched and its record is unaffected.
    pub fn refuse_transfer_target(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        refused: RefusedTransfer<C>,
    ) -> Result<(), TransferError> {
        let call = self.calls.get(&key).ok_or(TransferError::NotWaiting)?;
        let x = call
            .transfer
            .as_ref()
            .filter(|transfer| transfer.refer.is_some())
            .ok_or(TransferError::NotWaiting)?
            .transferor;
        let mut record = CallRecord::open(
            refused.context,
            self.next_key + 1,
            call.record.a_call_id.clone(),
            refused.direction.unwrap_or(call.record.direction),
            transferee(&call.record, call.caller_side, x),
            refused.callee_dialled,
            refused.callee_normalised,
            now,
        );
        record.trunk = refused.trunk;
        record.transfer_of = Some(key.0);
        record.close(
            now,
            refused.disposition,
            refused.status,
            &refused.cause,
            HangupSide::System,
        );
        self.refuse_transfer(endpoint, now, key, refused.status)?;
        self.next_key += 1;
        self.records.push_back((crate::Stage::Ended, record));
        Ok(())
    }

    /// Starts a transfer the driver resolved: 202 to the REFER, NOTIFY 100 to the
    /// transferor, INVITEs to `new.targets` (see the module doc).
    pub fn start_transfer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        new: NewTransfer<C>,
    ) -> Result<(), TransferError> {
        self.begin_transfer(endpoint, now, key, new, None)
    }

    /// Starts a transfer to a number the driver routed: as [`Self::start_transfer`], but
    /// the target is reached through `trunks`, tried one at a time in order exactly as
    /// [`Self::start_trunk_call`] tries them (a 401/407 answered once with the attempt's
    /// credentials; 5xx, 408, no response within `trunk_response_timeout` or a transport
    /// error → the next trunk; other 4xx/6xx end the transfer; 503 when every trunk
    /// failed). Each INVITE carries the attempt's `From` and headers (caller ID), no
    /// `Referred-By`, and no REFER in `Allow`. The new record is outbound and names the trunk
    /// tried last; once answered, the target's side is a trunk leg (it may not transfer,
    /// its carrier's challenges to our in-dialog requests are answered). `new.targets` is
    /// not used.
    pub fn start_trunk_transfer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        new: NewTransfer<C>,
        trunks: Vec<TrunkAttempt>,
    ) -> Result<(), TransferError> {
        self.begin_transfer(endpoint, now, key, new, Some(trunks))
    }

    fn begin_transfer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        new: NewTransfer<C>,
        trunks: Option<Vec<TrunkAttempt>>,
    ) -> Result<(), TransferError> {
        self.next_key += 1;
        let record_key = self.next_key;
        let config = self.config.clone();
        let call = self.calls.get_mut(&key).ok_or(TransferError::NotWaiting)?;
        let transfer = call.transfer.as_mut().ok_or(TransferError::NotWaiting)?;
        let refer = transfer.refer.take().ok_or(TransferError::NotWaiting)?;
        let x = transfer.transferor;
        accept_refer(endpoint, now, refer, transfer.subscribed);
        let transferee = transferee(&call.record, call.caller_side, x);
        let direction = if trunks.is_some() {
            crate::Direction::Outbound
        } else {
            call.record.direction
        };
        let mut record = CallRecord::open(
            new.context,
            record_key,
            call.record.a_call_id.clone(),
            direction,
            transferee,
            new.callee_dialled,
            new.callee_normalised,
            now,
        );
        // A trunk on the call is the transferee's (trunk legs cannot transfer); a transfer
        // through trunks names its own.
        if trunks.is_none() {
            record.trunk.clone_from(&call.record.trunk);
        }
        record.transfer_of = Some(key.0);
        self.records
            .push_back((crate::Stage::Started, record.clone()));
        transfer.record = Some(record);
        transfer.deadline = Some(now.instant + config.ring_timeout);
        self.notify(endpoint, now, key, 100, false);
        let Some(call) = self.calls.get_mut(&key) else {
            return Ok(());
        };
        // Y's identity as the target sees it: the caller as presented to the callee (the
        // From of our INVITE to B), or the callee as the caller dialled it (its To).
        let winner = call.forks.iter().find(|f| f.state == ForkState::Winner);
        let from = match x {
            Side::B => winner.and_then(|fork| fork.request.from().ok()),
            Side::A => winner.map(|fork| fork.target.to.clone()),
        }
        .map(|mut from| {
            from.tag = None;
            from.params.remove("tag");
            from
        });
        let offer = transfer_offer(call, x, &config.codecs);
        let (Some(from), Some(offer)) = (from, offer) else {
            self.transfer_failed(endpoint, now, key, 500, "transfer offer");
            return Ok(());
        };
        let max_forwards = call.max_forwards;
        let local = call.media.local(x);
        let mut sent = Vec::new();
        if let Some(trunks) = trunks {
            if let Some(transfer) = call.transfer.as_mut()
                && let Ok(body) = crate::sdp::toward(offer, local, &mut transfer.origin)
            {
                transfer.trunks = trunks.into();
                transfer.through_trunks = true;
                transfer.body = body;
            }
            if !self.next_transfer_trunk(endpoint, now, key) {
                self.transfer_failed(endpoint, now, key, 503, "no trunk");
                return Ok(());
            }
            self.reschedule(key);
            return Ok(());
        }
        if let Some(transfer) = call.transfer.as_mut()
            && let Ok(body) = crate::sdp::toward(offer, local, &mut transfer.origin)
        {
            for target in new.targets {
                let (request, call_id, tag) = invite_for(
                    endpoint,
                    &config,
                    &target,
                    from.clone(),
                    body.clone(),
                    Extra {
                        referred_by: transfer.referred_by.clone(),
                        headers: &[],
                        allow: super::ALLOW_REFER,
                    },
                    max_forwards,
                );
                let Ok(transaction) =
                    endpoint.send_invite(now.instant, request.clone(), target.target.clone())
                else {
                    continue;
                };
                sent.push((
                    transaction.id(),
                    transfer.forks.len(),
                    call_id.clone(),
                    tag.clone(),
                ));
                transfer.forks.push(crate::call::Fork::pending(
                    transaction,
                    request,
                    target,
                    (call_id, tag),
                    None,
                ));
            }
        }
        if sent.is_empty() {
            self.transfer_failed(endpoint, now, key, 480, "not registered");
            return Ok(());
        }
        for (transaction, index, call_id, tag) in sent {
            self.clients
                .insert(transaction, (key, Role::Transfer(index)));
            self.dialogs.insert((call_id, tag), (key, x));
        }
        self.reschedule(key);
        Ok(())
    }

    /// A REFER in the confirmed dialog of side `from` (see the module doc).
    pub(super) fn on_refer(
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
        let status = if super::is_trunk_leg(call, from) {
            Some(403)
        } else if call.transfer.is_some()
            || call.late_ack.is_some()
            || call.offer_pending
            || call.joining.is_some()
        {
            // One thing at a time: the target takes over a side with no exchange in flight.
            Some(491)
        } else {
            None
        };
        if let Some(status) = status {
            let _ = endpoint.respond(now.instant, accepted, StatusCode(status));
            return;
        }
        let replaced = refer_to(request).and_then(|(target, replaces)| {
            let replaced = match replaces {
                Some(replaces) => Some(self.replaced_dialog(key, &replaces)?),
                None => None,
            };
            Ok((target, replaced))
        });
        let (target, replaced) = match replaced {
            Ok(found) => found,
            Err(status) => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(status));
                return;
            }
        };
        let attended = replaced.as_ref().map(|replaced| crate::call::Attended {
            other: replaced.key,
            side: replaced.side,
            offer: None,
            started: false,
        });
        if let Some(replaced) = &replaced
            && let Some(other) = self.calls.get_mut(&replaced.key)
        {
            other.joining = Some(crate::call::Joining {
                into: key,
                target: replaced.side.other(),
                previous: None,
            });
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let subscribed = !request
            .headers()
            .get(&HeaderName::Other(Bytes::from_static(b"Refer-Sub")))
            .is_some_and(|value| value.trim_ascii().eq_ignore_ascii_case(b"false"));
        let seed = key.0.wrapping_mul(0x2545_F491) ^ now.unix_ms.unsigned_abs();
        let local = call.media.local(from);
        call.transfer = Some(Transfer {
            transferor: from,
            refer: Some(accepted),
            transferor_present: true,
            subscribed,
            forks: Vec::new(),
            failures: Vec::new(),
            deadline: None,
            record: None,
            ringing: false,
            referred_by: request.headers().get_bytes(&HeaderName::ReferredBy),
            origin: LegOrigin::new(&self.config.sdp_user, seed, 1, local.ip()),
            trunks: std::collections::VecDeque::new(),
            through_trunks: false,
            body: Bytes::new(),
            attempt_deadline: None,
            attended,
        });
        self.transfers.push_back(TransferRequest {
            key,
            transferor: from,
            target,
            context: call.record.context.clone(),
            transferor_is_caller: from == call.caller_side,
            refer: request.clone(),
            replaces: replaced,
        });
    }

    /// A BYE from the transferor while its transfer runs: 200, and the call goes on without
    /// it (the target still rings). `false` when the BYE is not the transferor's.
    pub(super) fn on_transferor_bye(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        from: Side,
        accepted: AcceptedTransaction,
    ) -> bool {
        let running = self.calls.get(&key).and_then(|call| call.transfer.as_ref());
        if !running.is_some_and(|t| t.transferor == from && t.refer.is_none()) {
            return false;
        }
        let _ = endpoint.respond(now.instant, accepted, StatusCode::OK);
        self.attended_record_started(key);
        self.transferor_leaves(now, key);
        true
    }

    /// A response to one of the transfer's INVITEs.
    pub(super) fn on_transfer_response(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        index: usize,
        response: &Response,
    ) {
        let status = response.status().0;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(transfer) = call.transfer.as_mut() else {
            return;
        };
        let Some(fork) = transfer.forks.get_mut(index) else {
            return;
        };
        if fork.state == ForkState::Pending {
            // The carrier is alive: from now on its final answer (or Timer C) decides.
            transfer.attempt_deadline = None;
        }
        if transfer.through_trunks && status >= 300 && fork.state == ForkState::Pending {
            self.on_transfer_trunk_failure(endpoint, now, key, index, response);
            return;
        }
        match status {
            100 => {}
            101..=199 => {
                if fork.state != ForkState::Pending || transfer.ringing {
                    return;
                }
                transfer.ringing = true;
                let present = transfer.transferor_present;
                let record = match transfer.record.as_mut() {
                    Some(record) => record,
                    None => &mut call.record,
                };
                record.ringing_at_ms = Some(now.unix_ms);
                self.records
                    .push_back((crate::Stage::Ringing, record.clone()));
                if present {
                    self.notify(endpoint, now, key, 180, false);
                }
            }
            200..=299 => {
                if fork.state != ForkState::Pending {
                    if fork.state == ForkState::Done {
                        let (transaction, orphan) = Orphan::of(fork);
                        self.ack_and_bye(endpoint, now, transaction, &orphan, response);
                    }
                    return;
                }
                self.transfer_answered(endpoint, now, key, index, response);
            }
            _ => {
                if fork.state != ForkState::Pending {
                    return;
                }
                fork.state = ForkState::Done;
                transfer.failures.push(status);
                let all_done = transfer.forks.iter().all(|f| f.state == ForkState::Done);
                if (600..700).contains(&status) || all_done {
                    let answer = best_failure(&transfer.failures);
                    self.transfer_failed(endpoint, now, key, answer, "transfer target refused");
                }
            }
        }
    }

    /// A trunk of a transfer to a number answered with a failure (see
    /// [`Self::start_trunk_transfer`]).
    fn on_transfer_trunk_failure(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        index: usize,
        response: &Response,
    ) {
        let status = response.status().0;
        if matches!(status, 401 | 407)
            && self.answer_transfer_challenge(endpoint, now, key, index, response)
        {
            let deadline = now.instant + self.config.trunk_response_timeout;
            if let Some(transfer) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) {
                transfer.attempt_deadline = Some(deadline);
            }
            self.reschedule(key);
            return;
        }
        let Some(transfer) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) else {
            return;
        };
        if let Some(fork) = transfer.forks.get_mut(index) {
            fork.state = ForkState::Done;
        }
        transfer.failures.push(status);
        if super::trunk_fails_over(status) && self.next_transfer_trunk(endpoint, now, key) {
            self.reschedule(key);
            return;
        }
        let answer = super::trunk_failure(status);
        let cause = if super::trunk_fails_over(status) {
            "every trunk failed"
        } else {
            "carrier refused"
        };
        self.transfer_failed(endpoint, now, key, answer, cause);
    }

    /// The current trunk of a transfer did not respond in time: a timeout (408), so the
    /// next trunk is tried. Its transaction runs on; a late 2xx is ACKed and sent BYE.
    pub(super) fn transfer_trunk_silent(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
    ) {
        let pending = self
            .calls
            .get(&key)
            .and_then(|call| call.transfer.as_ref())
            .and_then(|transfer| {
                let index = transfer
                    .forks
                    .iter()
                    .position(|fork| fork.state == ForkState::Pending)?;
                Some((index, transfer.forks.get(index)?.request.clone()))
            });
        let Some((index, request)) = pending else {
            return;
        };
        let response = Response::for_request(&request, StatusCode(408));
        self.on_transfer_response(endpoint, now, key, index, &response);
    }

    /// Sends the transfer's INVITE to its next trunk that takes it; `false` when none is
    /// left.
    fn next_transfer_trunk(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey) -> bool {
        let config = self.config.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let max_forwards = call.max_forwards;
        let Some(transfer) = call.transfer.as_mut() else {
            return false;
        };
        let x = transfer.transferor;
        while let Some(attempt) = transfer.trunks.pop_front() {
            match transfer.record.as_mut() {
                Some(record) => record.trunk = Some(attempt.trunk.clone()),
                None => call.record.trunk = Some(attempt.trunk.clone()),
            }
            let TrunkAttempt {
                target,
                from,
                headers,
                credentials,
                ..
            } = attempt;
            let (request, call_id, tag) = invite_for(
                endpoint,
                &config,
                &target,
                from,
                transfer.body.clone(),
                Extra {
                    referred_by: None,
                    headers: &headers,
                    allow: super::ALLOW,
                },
                max_forwards,
            );
            let Ok(transaction) =
                endpoint.send_invite(now.instant, request.clone(), target.target.clone())
            else {
                continue;
            };
            let index = transfer.forks.len();
            self.clients
                .insert(transaction.id(), (key, Role::Transfer(index)));
            self.dialogs
                .insert((call_id.clone(), tag.clone()), (key, x));
            transfer.forks.push(crate::call::Fork::pending(
                transaction,
                request,
                target,
                (call_id, tag),
                credentials,
            ));
            transfer.attempt_deadline = Some(now.instant + config.trunk_response_timeout);
            return true;
        }
        false
    }

    /// A carrier challenged the transfer's INVITE (401/407): answered once with the trunk's
    /// credentials (same Call-ID and From tag, CSeq + 1, new branch). `false` when it
    /// cannot be answered (the fork has then failed).
    fn answer_transfer_challenge(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        index: usize,
        response: &Response,
    ) -> bool {
        let Some(fork) = self
            .calls
            .get_mut(&key)
            .and_then(|call| call.transfer.as_mut())
            .and_then(|transfer| transfer.forks.get_mut(index))
        else {
            return false;
        };
        let Some(id) = super::reinvite_with_credentials(endpoint, now, fork, response) else {
            return false;
        };
        self.clients.insert(id, (key, Role::Transfer(index)));
        true
    }

    /// The transfer's ring timeout.
    pub(super) fn transfer_timed_out(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey) {
        self.transfer_failed(endpoint, now, key, 408, "transfer ring timeout");
    }

    /// The call ends while a transfer runs: the target's INVITEs are cancelled and the
    /// transfer's own record, if still separate, closes as cancelled.
    pub(super) fn abandon_transfer(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(transfer) = call.transfer.take() else {
            return;
        };
        if let Some(refer) = transfer.refer {
            let _ = endpoint.respond(now.instant, refer, StatusCode(481));
        }
        if let Some(attended) = &transfer.attended {
            self.abandon_join(key, attended);
            if !attended.started {
                // Not reported yet: the joined call never began.
                return;
            }
        }
        if let Some(mut record) = transfer.record {
            record.close(
                now,
                Disposition::Cancelled,
                487,
                "call ended during transfer",
                HangupSide::System,
            );
            self.records.push_back((crate::Stage::Ended, record));
        }
        self.retire_transfer_forks(endpoint, now, key, transfer.forks, None);
    }

    /// Whether `id` (Call-ID, our tag) is a departed transferor's dialog, remembered for its
    /// late BYE.
    pub(super) fn departed(&mut self, now: Now, id: &(Bytes, Bytes)) -> bool {
        self.departed.retain(|_, until| *until > now.instant);
        self.departed.contains_key(id)
    }

    // ----- internals -----

    /// The target answered: it takes the transferor's place (see the module doc).
    fn transfer_answered(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        index: usize,
        response: &Response,
    ) {
        let config = self.config.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(transfer) = call.transfer.as_mut() else {
            return;
        };
        let x = transfer.transferor;
        let Some(fork) = transfer.forks.get_mut(index) else {
            return;
        };
        fork.state = ForkState::Winner;
        let transaction = fork.transaction;
        let target = fork.target.clone();
        let fork_key = (fork.call_id.clone(), fork.tag.clone());
        let offer = body_sdp(fork.request.headers(), fork.request.body()).and_then(Result::ok);
        let Ok(mut dialog) = Dialog::uac(&fork.request, response) else {
            return;
        };
        dialog.set_local_contact(our_contact(
            &config.contact_user,
            &target.target.transport,
            target.local,
        ));
        let via = our_via(endpoint, &target.target.transport, target.local);
        if let Ok(ack) = dialog.ack(&via) {
            let _ = endpoint.send_ack(now.instant, transaction, ack, target.target.clone());
        }
        let answer = body_sdp(response.headers(), response.body()).and_then(Result::ok);
        let usable = match (&offer, &answer) {
            (Some(offer), Some(answer)) => !offer.common_audio_codecs(answer).is_empty(),
            _ => false,
        };
        let origin = transfer.origin.clone();
        let present = transfer.transferor_present;
        let trunk_account = transfer.through_trunks.then(|| fork.credentials.clone());
        let last_sdp = fork.request.body().clone();
        let answer = match answer {
            Some(answer) if usable => answer,
            _ => {
                // Nothing Y could talk to: the target is let go, the transfer fails.
                let via = our_via(endpoint, &target.target.transport, target.local);
                if let Ok(mut bye) = dialog.request(Method::Bye, &via) {
                    bye.headers_mut()
                        .push(HeaderName::Reason, reason("SIP", 488, "no common codec"));
                    if let Ok(sent) = endpoint.send_request(now.instant, bye, target.target) {
                        self.clients.insert(sent.id(), (key, Role::Fire));
                    }
                }
                self.transfer_failed(endpoint, now, key, 488, "transfer target incompatible");
                return;
            }
        };
        // The transferor leaves: final NOTIFY and BYE (unless it has hung up already).
        if present {
            self.notify(endpoint, now, key, 200, true);
            let header = reason("SIP", 200, "call transferred");
            self.send_bye(endpoint, now, key, x, &header);
            self.transferor_leaves(now, key);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(mut transfer) = call.transfer.take() else {
            return;
        };
        // The target on the transferor's side of the relay.
        call.learn_remote(x, &answer);
        call.media.set_hold(false);
        let timer =
            config
                .session_expires
                .map(|ours| match response.session_expires().ok().flatten() {
                    Some(se) => SessionTimer::new(
                        Duration::from_secs(u64::from(se.delta.max(1))),
                        se.refresher != Some(pbx_sip::Refresher::Uas),
                        now.instant,
                    ),
                    None => SessionTimer::new(ours, true, now.instant),
                });
        let leg = Leg {
            dialog: Some(dialog),
            target: target.target.clone(),
            local: target.local,
            origin,
            last_sdp: Some(last_sdp),
            timer,
            allows_update: super::allows_update(response.headers()),
        };
        match x {
            Side::A => call.a = leg,
            Side::B => call.b = Some(leg),
        }
        if let Some(account) = trunk_account {
            call.trunk_leg = Some((x, account));
        }
        call.joined_dialogs.push(fork_key);
        call.record.answered_at_ms = Some(now.unix_ms);
        call.record.answered_by = Some(target.label.clone());
        self.records
            .push_back((crate::Stage::Answered, call.record.clone()));
        let forks = std::mem::take(&mut transfer.forks);
        self.retire_transfer_forks(endpoint, now, key, forks, Some(index));
        // Y hears the target: back to sendrecv if the transferor had put it on hold.
        if let Some(call) = self.calls.get_mut(&key)
            && held(call.leg(x.other()))
            && !call.offer_pending
        {
            let mut resumed = answer.clone();
            resumed.set_direction(SdpDirection::SendRecv);
            if let Ok(body) = call.sdp_toward(x.other(), &resumed) {
                self.reinvite(
                    endpoint,
                    now,
                    key,
                    x.other(),
                    body,
                    Role::Refresh(x.other()),
                );
            }
        }
        self.reschedule(key);
    }

    /// The target could not be reached: NOTIFY the transferor, which keeps its call; or,
    /// when it has left, the transferee gets BYE and the call ends.
    pub(super) fn transfer_failed(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        status: u16,
        cause: &str,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(transfer) = call.transfer.as_ref() else {
            return;
        };
        let present = transfer.transferor_present;
        let y = transfer.transferor.other();
        if present {
            self.notify(endpoint, now, key, status, true);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(mut transfer) = call.transfer.take() else {
            return;
        };
        let forks = std::mem::take(&mut transfer.forks);
        self.retire_transfer_forks(endpoint, now, key, forks, None);
        let side = if status == 408 {
            HangupSide::System
        } else {
            HangupSide::Callee
        };
        if let Some(mut record) = transfer.record.take() {
            record.close(now, disposition_for(status), status, cause, side);
            self.records.push_back((crate::Stage::Ended, record));
        }
        if !present {
            let header = reason("SIP", status, cause);
            self.send_bye(endpoint, now, key, y, &header);
            if let Some(call) = self.remove_call(key) {
                self.close(now, call, disposition_for(status), status, cause, side);
            }
            return;
        }
        self.reschedule(key);
    }

    /// The transferor is gone (its BYE, or ours): its record closes as transferred, the
    /// transfer's record becomes the call's, and its dialog is remembered for a late BYE.
    pub(super) fn transferor_leaves(&mut self, now: Now, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(transfer) = call.transfer.as_mut() else {
            return;
        };
        if !transfer.transferor_present {
            return;
        }
        transfer.transferor_present = false;
        let x = transfer.transferor;
        let Some(next) = transfer.record.take() else {
            return;
        };
        let stats = call.media.stats();
        let mut record = std::mem::replace(&mut call.record, next);
        let base = std::mem::replace(&mut call.media_base, stats);
        let (a, b) = (
            super::since(stats[0], base[0]),
            super::since(stats[1], base[1]),
        );
        (record.media_a, record.media_b) = match call.caller_side {
            Side::A => (a, b),
            Side::B => (b, a),
        };
        let side = super::call_party(call, x);
        // The new record's caller is the transferee.
        call.caller_side = x.other();
        record.close(now, Disposition::Answered, 200, TRANSFERRED, side);
        self.records.push_back((crate::Stage::Ended, record));
        let dialog = match x {
            Side::A => {
                call.a.timer = None;
                call.a.dialog.take()
            }
            Side::B => call.b.take().and_then(|leg| leg.dialog),
        };
        if let Some(mut dialog) = dialog {
            dialog.terminate();
            let id = dialog.id();
            self.remember_departed(now, (id.call_id.clone(), id.local_tag.clone()));
        }
    }

    /// A dialog (Call-ID, our tag) the transferor left: a BYE in it (crossing ours) is
    /// answered 200 for a while.
    pub(super) fn remember_departed(&mut self, now: Now, id: (Bytes, Bytes)) {
        self.dialogs.remove(&id);
        self.departed.retain(|_, until| *until > now.instant);
        self.departed.insert(id, now.instant + DEPARTED_FOR);
    }

    /// The transfer's INVITEs are over: pending ones get CANCEL, every one but the winner is
    /// forgotten (a late 2xx to it is ACKed and sent BYE).
    fn retire_transfer_forks(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        forks: Vec<crate::call::Fork>,
        winner: Option<usize>,
    ) {
        for (index, fork) in forks.into_iter().enumerate() {
            if Some(index) == winner {
                continue;
            }
            if fork.state == ForkState::Pending {
                let _ = endpoint.cancel(now.instant, fork.transaction);
            }
            let id = fork.transaction.id();
            if self.clients.get(&id).is_some_and(|(k, _)| *k == key) {
                self.clients.remove(&id);
            }
            self.dialogs.remove(&(fork.call_id, fork.tag));
            self.orphans.insert(
                id,
                Orphan {
                    request: fork.request,
                    target: fork.target.target,
                    local: fork.target.local,
                },
            );
        }
    }

    /// A NOTIFY of the transfer's progress (`status` of the target, as a sipfrag) to the
    /// transferor, if it is there and subscribed.
    pub(super) fn notify(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        status: u16,
        last: bool,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(transfer) = call.transfer.as_ref() else {
            return;
        };
        if !transfer.transferor_present || !transfer.subscribed {
            return;
        }
        let x = transfer.transferor;
        let Some(leg) = call.leg_mut(x) else {
            return;
        };
        let transport = leg.transport().clone();
        let local = leg.local;
        let target = leg.target.clone();
        let Some(dialog) = leg.dialog.as_mut() else {
            return;
        };
        let via = our_via(endpoint, &transport, local);
        let Ok(mut notify) = dialog.request(Method::Notify, &via) else {
            return;
        };
        let state = if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let headers = notify.headers_mut();
        headers.push(HeaderName::Event, Bytes::from_static(b"refer"));
        headers.push(
            HeaderName::SubscriptionState,
            Bytes::from_static(state.as_bytes()),
        );
        headers.push(
            HeaderName::ContentType,
            Bytes::from_static(b"message/sipfrag;version=2.0"),
        );
        let phrase = StatusCode(status).canonical_reason();
        notify.set_body(Bytes::from(format!("SIP/2.0 {status} {phrase}\r\n")));
        if let Ok(sent) = endpoint.send_request(now.instant, notify, target) {
            self.clients.insert(sent.id(), (key, Role::Fire));
        }
    }

    /// A re-INVITE of ours to `side` with `body` (its answer goes to `role`: a session
    /// refresh's is ACKed and the relay told).
    pub(super) fn reinvite(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        side: Side,
        body: Bytes,
        role: Role,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // A carrier's 401/407 to it is answered once, as to our session refresh.
        let retry = super::trunk_retry(call, side);
        let Some(leg) = call.leg_mut(side) else {
            return;
        };
        let transport = leg.transport().clone();
        let local = leg.local;
        let target = leg.target.clone();
        let timer = leg.timer;
        let Some(dialog) = leg.dialog.as_mut() else {
            return;
        };
        let via = our_via(endpoint, &transport, local);
        let Ok(mut request) = dialog.request(Method::Invite, &via) else {
            return;
        };
        let headers = request.headers_mut();
        if let Some(timer) = timer {
            headers.push(HeaderName::Supported, Bytes::from_static(b"timer"));
            headers.push(
                HeaderName::SessionExpires,
                Bytes::from(format!("{};refresher=uac", timer.interval.as_secs())),
            );
        }
        headers.push(
            HeaderName::ContentType,
            Bytes::from_static(b"application/sdp"),
        );
        request.set_body(body);
        if let Ok(sent) = endpoint.send_invite(now.instant, request, target) {
            call.offer_pending = true;
            self.clients.insert(sent.id(), (key, role));
            if let Some(retry) = retry {
                self.trunk_auth.insert(sent.id(), retry);
            }
        }
    }
}

/// 202 to a REFER (with `Refer-Sub: false` when the transferor declined the implicit
/// subscription).
pub(super) fn accept_refer(
    endpoint: &mut Endpoint,
    now: Now,
    refer: AcceptedTransaction,
    subscribed: bool,
) {
    if let Ok(mut accepted) = endpoint.response(refer, StatusCode(202)) {
        if !subscribed {
            accepted
                .headers_mut()
                .push(HeaderName::Other(Bytes::from_static(b"Refer-Sub")), "false");
        }
        let _ = endpoint.send_response(now.instant, refer, accepted);
    }
}

/// The `Refer-To` target: exactly one, a parsable URI (400 otherwise), with the `Replaces`
/// of an attended transfer when its URI carries one (400 when it does not parse; other
/// header parameters: 501).
fn refer_to(request: &Request) -> Result<(Uri, Option<Replaces>), u16> {
    let mut values = request.headers().get_all(&HeaderName::ReferTo);
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(400);
    };
    let name = NameAddr::parse(value).map_err(|_| 400u16)?;
    if matches!(name.uri, Uri::Absolute(_)) {
        return Err(400);
    }
    let Some(headers) = name.uri.as_sip().and_then(|sip| sip.headers.clone()) else {
        return Ok((name.uri, None));
    };
    // `?Replaces=<escaped value>`, alone or among other header parameters (`&`).
    let replaces = headers
        .split(|&b| b == b'&')
        .find_map(|pair| {
            let (field, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
            field
                .eq_ignore_ascii_case(b"Replaces")
                .then(|| value.get(1..).unwrap_or_default())
        })
        .ok_or(501u16)?;
    let replaces = Replaces::parse(&percent_decode(replaces)).map_err(|_| 400u16)?;
    Ok((name.uri, Some(replaces)))
}

/// The offer to the transfer target: the last description sent on the transferor's leg,
/// restricted to the codecs in use on the call (both legs' last descriptions have them),
/// `sendrecv` (the transferor may have put the call on hold).
/// The transferee (the side other than the transferor `x`) as a transfer record's caller,
/// as if it had called the target.
/// `record` is the call's current record, `caller_side` its caller's side.
pub(super) fn transferee<C>(record: &CallRecord<C>, caller_side: Side, x: Side) -> String {
    if x.other() == caller_side {
        record.caller.clone()
    } else {
        record.callee_normalised.clone()
    }
}

pub(super) fn transfer_offer<C>(
    call: &crate::call::Call<C>,
    x: Side,
    configured: &[pbx_sdp::Codec],
) -> Option<SessionDescription> {
    let parse = |side: Side| {
        call.leg(side)
            .and_then(|leg| leg.last_sdp.clone())
            .and_then(|bytes| SessionDescription::parse_bytes(bytes).ok())
    };
    let mut offer = parse(x)?;
    let in_use: Vec<pbx_sdp::Codec> = parse(x.other())
        .map(|other| {
            offer
                .common_audio_codecs(&other)
                .into_iter()
                .map(|format| format.codec)
                .collect()
        })
        .unwrap_or_default();
    if in_use.is_empty() || offer.restrict_to(&in_use).is_err() {
        offer.restrict_to(configured).ok()?;
    }
    offer.set_direction(SdpDirection::SendRecv);
    Some(offer)
}

/// Whether the last description we sent on `leg` put its peer on hold (we only send, or
/// nothing flows).
pub(super) fn held(leg: Option<&Leg>) -> bool {
    leg.and_then(|leg| leg.last_sdp.clone())
        .and_then(|bytes| SessionDescription::parse_bytes(bytes).ok())
        .is_some_and(|sdp| sdp.is_hold())
}

/// What differs between a transfer's INVITE to a binding and to a trunk.
struct Extra<'a> {
    /// `Referred-By` of the REFER (to a binding only).
    referred_by: Option<Bytes>,
    /// The trunk attempt's caller-ID headers.
    headers: &'a [(HeaderName, Bytes)],
    /// Our `Allow` (no REFER towards a trunk).
    allow: &'static str,
}

/// The INVITE to one binding of the transfer target, with `body` (our offer) and a new
/// Call-ID and tag; `None` when it cannot be built.
fn invite_for(
    endpoint: &mut Endpoint,
    config: &crate::CallConfig,
    target: &ForkTarget,
    mut from: NameAddr,
    body: Bytes,
    extra: Extra<'_>,
    max_forwards: u8,
) -> (Request, Bytes, Bytes) {
    let call_id = Bytes::from(endpoint.new_call_id(None));
    let tag = Bytes::from(endpoint.new_tag());
    from.set_tag(tag.clone());
    let via = our_via(endpoint, &target.target.transport, target.local);
    let contact = our_contact(&config.contact_user, &target.target.transport, target.local);
    let mut builder = pbx_sip::Request::builder(Method::Invite, target.request_uri.clone())
        .via(&via)
        .from(&from)
        .to(&target.to)
        .call_id(call_id.clone())
        .cseq(1)
        .max_forwards(Some(max_forwards))
        .contact(&contact);
    for route in &target.route {
        builder = builder.route(route);
    }
    for (name, value) in extra.headers {
        builder = builder.header(name.clone(), value.clone());
    }
    builder = builder.header(
        HeaderName::Allow,
        Bytes::from_static(extra.allow.as_bytes()),
    );
    if let Some(referred_by) = extra.referred_by {
        builder = builder.header(HeaderName::ReferredBy, referred_by);
    }
    if let Some(interval) = config.session_expires {
        builder = builder
            .header(HeaderName::Supported, Bytes::from_static(b"timer"))
            .header(
                HeaderName::SessionExpires,
                Bytes::from(interval.as_secs().to_string()),
            )
            .header(
                HeaderName::MinSe,
                Bytes::from(config.min_se.as_secs().to_string()),
            );
    }
    let request = builder.body("application/sdp", body).build();
    (request, call_id, tag)
}
