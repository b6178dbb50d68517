//! The state of one call: its legs, forks, media session and record.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pbx_sdp::{LegOrigin, SessionDescription};
use pbx_sip::{Request, Response, Transport};
use pbx_sip_engine::{
    AcceptedTransaction, ClientTransaction, Dialog, Invite, ServerTransaction, Target,
};

use crate::media::{MediaSession, Side};
use crate::record::CallRecord;
use crate::reliable::{EarlyDialog, Reliable};
use crate::sip::{ForkTarget, TrunkAttempt, TrunkCredentials};

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// B-legs ringing, no answer yet.
    Ringing,
    /// A fork answered; both dialogs confirmed (or confirming).
    Answered,
}

/// RFC 4028 session timer of one leg.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionTimer {
    /// The negotiated session interval.
    pub(crate) interval: Duration,
    /// Whether we refresh this leg (else the peer must, and silence ends the call).
    pub(crate) we_refresh: bool,
    /// When we refresh, or when the leg is considered dead.
    pub(crate) deadline: Instant,
}

impl SessionTimer {
    pub(crate) fn new(interval: Duration, we_refresh: bool, now: Instant) -> SessionTimer {
        let mut timer = SessionTimer {
            interval,
            we_refresh,
            deadline: now,
        };
        timer.refreshed(now);
        timer
    }

    /// A refresh went through at `now`: RFC 4028 §10 (refresh at half the interval) and §10
    /// (the other side gives up `min(32 s, interval / 3)` before expiry).
    pub(crate) fn refreshed(&mut self, now: Instant) {
        self.deadline = if self.we_refresh {
            now + self.interval / 2
        } else {
            now + self.interval - (self.interval / 3).min(Duration::from_secs(32))
        };
    }
}

/// One side's dialog and addressing.
#[derive(Debug)]
pub(crate) struct Leg {
    /// The dialog, once confirmed (A: our 2xx sent; B: the winning 2xx received).
    pub(crate) dialog: Option<Dialog>,
    /// Where in-dialog requests go (the peer's flow, never a private Contact).
    pub(crate) target: Target,
    /// Our address on this leg (Via, Contact).
    pub(crate) local: SocketAddr,
    /// Our `o=` towards this leg.
    pub(crate) origin: LegOrigin,
    /// The last description sent on this leg (re-offered by our own session refresh).
    pub(crate) last_sdp: Option<Bytes>,
    /// Session timer, when negotiated.
    pub(crate) timer: Option<SessionTimer>,
    /// The peer accepts UPDATE (refresh without an offer).
    pub(crate) allows_update: bool,
}

impl Leg {
    pub(crate) fn transport(&self) -> &Transport {
        &self.target.transport
    }
}

/// State of one fork (B-leg attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForkState {
    /// INVITE sent, no final response.
    Pending,
    /// Final failure received (or CANCEL sent).
    Done,
    /// This fork answered.
    Winner,
}

/// One B-leg INVITE of the fork set.
#[derive(Debug)]
pub(crate) struct Fork {
    pub(crate) transaction: ClientTransaction<Invite>,
    pub(crate) request: Request,
    pub(crate) target: ForkTarget,
    pub(crate) state: ForkState,
    pub(crate) call_id: Bytes,
    pub(crate) tag: Bytes,
    /// Our account at the carrier, for a trunk fork.
    pub(crate) credentials: Option<TrunkCredentials>,
    /// A challenge has been answered on this fork (a second one is a failure).
    pub(crate) challenged: bool,
    /// Early dialogs opened by the fork's reliable provisionals (one per To tag).
    pub(crate) early: Vec<EarlyDialog>,
}

impl Fork {
    /// A fork whose INVITE (`request`, Call-ID and From tag) was just sent on `transaction`.
    pub(crate) fn pending(
        transaction: ClientTransaction<Invite>,
        request: Request,
        target: ForkTarget,
        (call_id, tag): (Bytes, Bytes),
        credentials: Option<TrunkCredentials>,
    ) -> Fork {
        Fork {
            transaction,
            request,
            target,
            state: ForkState::Pending,
            call_id,
            tag,
            credentials,
            challenged: false,
            early: Vec::new(),
        }
    }
}

/// An in-dialog request we relay to the other side: the server transaction it came in on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relay {
    pub(crate) server: AcceptedTransaction,
    /// The side the request came from.
    pub(crate) from: Side,
    pub(crate) invite: bool,
    /// It carried an offer: its final response ends the exchange (`offer_pending`).
    pub(crate) offer: bool,
    /// A re-INVITE without SDP: its 2xx brings an offer, answered in the originator's ACK.
    pub(crate) late: bool,
}

/// One call.
#[derive(Debug)]
pub(crate) struct Call<C> {
    pub(crate) record: CallRecord<C>,
    pub(crate) phase: Phase,
    pub(crate) a_invite: ServerTransaction<Invite>,
    pub(crate) a_request: Request,
    pub(crate) a_call_id: Bytes,
    pub(crate) a_tag: Bytes,
    pub(crate) a: Leg,
    /// The B-leg: before the answer, its addressing is the winning fork's (filled on 2xx).
    pub(crate) b: Option<Leg>,
    pub(crate) b_origin: Option<LegOrigin>,
    pub(crate) forks: Vec<Fork>,
    pub(crate) media: Box<dyn MediaSession>,
    pub(crate) ring_deadline: Option<Instant>,
    pub(crate) max_deadline: Option<Instant>,
    pub(crate) ringing_sent: bool,
    /// The early answer sent to A in a 183 (repeated in the 2xx when B's 2xx has none).
    pub(crate) a_early_answer: Option<Bytes>,
    /// An offer/answer exchange (re-INVITE, UPDATE with SDP) is in progress: another gets 491.
    pub(crate) offer_pending: bool,
    /// The deadline this call is filed under in the engine's timer set.
    pub(crate) scheduled: Option<Instant>,
    /// The A-leg's session timer request, used when answering.
    pub(crate) a_timer_request: Option<(u32, Option<pbx_sip::Refresher>)>,
    pub(crate) a_supports_timer: bool,
    /// What the caller offered (parsed), for the codec check against B's answer; `None` for
    /// a late-offer call (an INVITE without SDP: the offer comes in the fork's 2xx).
    pub(crate) a_offer: Option<SessionDescription>,
    /// Final failure statuses of the forks so far.
    pub(crate) fork_failures: Vec<u16>,
    /// An outbound call through trunks: forks are tried one at a time, in order.
    pub(crate) trunk_call: bool,
    /// The trunks not tried yet.
    pub(crate) trunks: std::collections::VecDeque<TrunkAttempt>,
    /// The offer sent to the B-legs (for the next trunk).
    pub(crate) b_body: Bytes,
    /// Max-Forwards of the B-leg INVITEs.
    pub(crate) max_forwards: u8,
    /// The current trunk attempt is given up when no response came by then.
    pub(crate) attempt_deadline: Option<Instant>,
    /// RFC 3262 towards the caller: our RSeq space and the provisional awaiting its PRACK.
    pub(crate) reliable: Reliable,
    /// The caller's 2xx, held while a reliable provisional with SDP awaits its PRACK.
    pub(crate) held_answer: Option<Response>,
    /// The fork's early dialog the caller's early dialog is joined to (RFC 3311 UPDATE
    /// before the answer passes between these two).
    pub(crate) early_peer: Option<EarlyPeer>,
    /// The last description sent in a fork's early dialog (an early UPDATE's offer or
    /// answer), with the fork's index: the B-leg's last description if that fork answers.
    pub(crate) b_early_sdp: Option<(usize, Bytes)>,
    /// The ACK we owe a side whose 2xx carried an offer, until the other side's ACK brings
    /// the answer (late offer, RFC 3261 §13.2.1).
    pub(crate) late_ack: Option<LateAck>,
    /// A late-offer call whose callee offered in a reliable 18x relayed to the caller
    /// (RFC 3262 §5): the answer comes in the caller's PRACK.
    pub(crate) early_offer: Option<EarlyOffer>,
    /// A blind transfer (REFER) in progress.
    pub(crate) transfer: Option<Transfer<C>>,
    /// Dialogs that joined the call later (a transfer target's), by (Call-ID, our tag):
    /// forgotten with the call.
    pub(crate) joined_dialogs: Vec<(Bytes, Bytes)>,
    /// The relay's counters when the current record began (a transfer starts a new record
    /// on the same relay session): the record counts only what came after.
    pub(crate) media_base: [crate::media::StreamStats; 2],
    /// The side of the current record's caller: A, or B after a transfer by the caller
    /// (the transferee, on side B, is the caller of the transferred call's record).
    pub(crate) caller_side: Side,
    /// A side that a transfer to a number connected to a trunk, with that trunk's account:
    /// it may not transfer, and its carrier's challenges to our in-dialog requests are
    /// answered with the account.
    pub(crate) trunk_leg: Option<(Side, Option<TrunkCredentials>)>,
    /// An attended transfer of another call is taking this call's target (its leg is being
    /// re-INVITEd towards that call's relay): no other exchange or transfer meanwhile.
    pub(crate) joining: Option<Joining>,
}

/// A blind transfer (RFC 3515 REFER) in progress: the transferor's side leaves the call, the
/// target's bindings are invited with an offer from the relay on the transferor's side, and
/// the target takes that side's place when it answers.
#[derive(Debug)]
pub(crate) struct Transfer<C> {
    /// The side that sent the REFER (it leaves the call).
    pub(crate) transferor: Side,
    /// The REFER, until the driver has resolved its target (202 or a refusal).
    pub(crate) refer: Option<AcceptedTransaction>,
    /// The transferor is still in its dialog (no BYE yet).
    pub(crate) transferor_present: bool,
    /// The transferor asked for the implicit subscription (no `Refer-Sub: false`): it gets
    /// NOTIFYs with the progress.
    pub(crate) subscribed: bool,
    /// The INVITEs to the target's bindings.
    pub(crate) forks: Vec<Fork>,
    /// Final failure statuses of those forks.
    pub(crate) failures: Vec<u16>,
    /// When the target has rung too long.
    pub(crate) deadline: Option<Instant>,
    /// The record of the transferee–target call while the transferor is still in the call
    /// (afterwards it is the call's record).
    pub(crate) record: Option<CallRecord<C>>,
    /// A provisional came from the target.
    pub(crate) ringing: bool,
    /// `Referred-By` of the REFER, passed on to the target.
    pub(crate) referred_by: Option<Bytes>,
    /// Our `o=` towards the target.
    pub(crate) origin: LegOrigin,
    /// A transfer to a number: the trunks not tried yet (one attempt at a time, like
    /// `Call::trunks`); `through_trunks` stays set once the first one was tried.
    pub(crate) trunks: std::collections::VecDeque<TrunkAttempt>,
    pub(crate) through_trunks: bool,
    /// The offer sent to the target (again to the next trunk).
    pub(crate) body: Bytes,
    /// The current trunk attempt is given up when no response came by then.
    pub(crate) attempt_deadline: Option<Instant>,
    /// An attended transfer (the REFER's `Refer-To` carried `Replaces`): the target is
    /// the other party of another call, joined here instead of invited.
    pub(crate) attended: Option<Attended>,
}

/// An attended transfer (RFC 3891 `Replaces` in the `Refer-To`): see `engine/attended.rs`.
#[derive(Debug, Clone)]
pub(crate) struct Attended {
    /// The call whose dialog the `Replaces` named (the transferor's call with the target).
    pub(crate) other: crate::engine::CallKey,
    /// The transferor's side in that call (the target is on its other side).
    pub(crate) side: Side,
    /// The offer of our re-INVITE to the target.
    pub(crate) offer: Option<Bytes>,
    /// The joined call's record has been reported (`Stage::Started`).
    pub(crate) started: bool,
}

/// The mark on the target's call of an attended transfer (see `Call::joining`).
#[derive(Debug, Clone)]
pub(crate) struct Joining {
    /// The call the target is being joined to (the transferor's call with the transferee).
    pub(crate) into: crate::engine::CallKey,
    /// The target's side of this call (the one re-INVITEd).
    pub(crate) target: Side,
    /// The last description sent to the target before our re-INVITE (once sent): offered
    /// again if the join fails after the target accepted it.
    pub(crate) previous: Option<Bytes>,
}

/// The offer of a fork's reliable 18x in a late-offer call, relayed to the caller in our
/// reliable 18x (see `engine/late_offer.rs`).
#[derive(Debug, Clone)]
pub(crate) struct EarlyOffer {
    /// The fork's provisional that carried it: the caller's PRACK of ours brings the
    /// answer, and our PRACK to this one carries it on.
    pub(crate) origin: crate::reliable::Origin,
    /// The offer as relayed (restricted to our codecs), for the answer's codec check.
    pub(crate) offer: SessionDescription,
    /// The usable answer the caller's PRACK brought (its own description), once it came:
    /// the exchange is then complete (the 2xx carries no new offer), and it answers another
    /// fork's offer too, if that fork wins.
    pub(crate) answer: Option<SessionDescription>,
}

/// An ACK we owe `to` for a 2xx to our INVITE that carried an offer (our INVITE had none):
/// it must carry the answer, which comes in the ACK of the side the offer was relayed to
/// (the caller's ACK for a late-offer call; the originator's for a re-INVITE without SDP).
#[derive(Debug, Clone)]
pub(crate) struct LateAck {
    /// The side whose 2xx we have not ACKed yet.
    pub(crate) to: Side,
    /// Our INVITE transaction on that side.
    pub(crate) invite: ClientTransaction<Invite>,
    /// The offer of the 2xx as relayed (restricted to our codecs, not yet rewritten); `None`
    /// when the 2xx carried none. A teardown answers it with every stream rejected.
    pub(crate) offer: Option<SessionDescription>,
    /// The INVITE server transaction on the other side whose 2xx carried the offer on:
    /// its ACK brings the answer.
    pub(crate) from: ServerTransaction<Invite>,
    /// The CSeq of that INVITE (the ACK carries the same number).
    pub(crate) cseq: u32,
    /// The initial INVITE (else a re-INVITE).
    pub(crate) initial: bool,
    /// When we stop waiting for the answer (64·T1 after the 2xx was relayed).
    pub(crate) deadline: Instant,
}

/// A fork's early dialog, joined to the caller's: the one whose 18x the caller got last
/// (with SDP: whose early media the caller hears).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EarlyPeer {
    /// Index of the fork in the call's fork set.
    pub(crate) fork: usize,
    /// The fork's To tag of that early dialog.
    pub(crate) to_tag: Bytes,
}

impl<C> Call<C> {
    /// The caller's INVITE carried no offer (RFC 3261 §13.2.1): the B-legs go without one,
    /// the offer comes in the winning fork's 2xx and the answer in the caller's ACK.
    pub(crate) fn late_offer(&self) -> bool {
        self.a_offer.is_none()
    }

    pub(crate) fn leg(&self, side: Side) -> Option<&Leg> {
        match side {
            Side::A => Some(&self.a),
            Side::B => self.b.as_ref(),
        }
    }

    pub(crate) fn leg_mut(&mut self, side: Side) -> Option<&mut Leg> {
        match side {
            Side::A => Some(&mut self.a),
            Side::B => self.b.as_mut(),
        }
    }

    /// The earliest deadline of the call.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let legs = [self.a.timer, self.b.as_ref().and_then(|b| b.timer)];
        [
            self.ring_deadline,
            self.max_deadline,
            self.attempt_deadline,
            self.reliable.deadline(),
            self.late_ack.as_ref().map(|late| late.deadline),
            self.transfer
                .as_ref()
                .and_then(|transfer| transfer.deadline),
            self.transfer
                .as_ref()
                .and_then(|transfer| transfer.attempt_deadline),
        ]
        .into_iter()
        .chain(legs.into_iter().map(|t| t.map(|t| t.deadline)))
        .flatten()
        .min()
    }

    /// The dialog with a fork that our in-dialog `request` was sent in (a PRACK or an UPDATE
    /// in its early dialog, or any request in the B-leg dialog it became), by Call-ID and To
    /// tag.
    pub(crate) fn sent_in_dialog_mut(&mut self, request: &Request) -> Option<&mut Dialog> {
        let call_id = request.call_id().ok()?;
        let to_tag = request.to().ok()?.tag?;
        let Some(index) = self.forks.iter().position(|fork| fork.call_id == call_id) else {
            // A leg a transfer joined (its dialog is not one of the call's forks).
            let side = self.trunk_leg.as_ref()?.0;
            return self
                .leg_mut(side)?
                .dialog
                .as_mut()
                .filter(|dialog| dialog.id().call_id == call_id);
        };
        self.fork_dialog_mut(index, &to_tag)
    }

    /// The dialog with fork `index` whose remote tag is `remote_tag`: still early, or, once
    /// the fork answered, the B-leg's dialog it became. `None` for a fork that failed or was
    /// cancelled.
    pub(crate) fn fork_dialog_mut(
        &mut self,
        index: usize,
        remote_tag: &Bytes,
    ) -> Option<&mut Dialog> {
        let fork = self.forks.get(index)?;
        match fork.state {
            ForkState::Done => None,
            ForkState::Pending => {
                let at = fork
                    .early
                    .iter()
                    .position(|early| early.dialog.id().remote_tag == *remote_tag)?;
                let fork = self.forks.get_mut(index)?;
                fork.early.get_mut(at).map(|early| &mut early.dialog)
            }
            ForkState::Winner => self
                .b
                .as_mut()?
                .dialog
                .as_mut()
                .filter(|dialog| dialog.id().remote_tag == *remote_tag),
        }
    }

    /// `sdp` rewritten for `side` (our relay address facing it, its leg origin); remembered
    /// as the last description sent on that leg.
    pub(crate) fn sdp_toward(
        &mut self,
        side: Side,
        sdp: &SessionDescription,
    ) -> Result<Bytes, pbx_sdp::EditError> {
        self.sdp_toward_owned(side, sdp.clone())
    }

    /// [`Call::sdp_toward`] for a description the caller no longer needs: rewritten in
    /// place, without a copy (an INVITE's offer toward the forks).
    pub(crate) fn sdp_toward_owned(
        &mut self,
        side: Side,
        sdp: SessionDescription,
    ) -> Result<Bytes, pbx_sdp::EditError> {
        let local = self.media.local(side);
        let bytes = match side {
            Side::A => crate::sdp::toward(sdp, local, &mut self.a.origin)?,
            Side::B => match (&mut self.b, &mut self.b_origin) {
                (Some(leg), _) => crate::sdp::toward(sdp, local, &mut leg.origin)?,
                (None, Some(origin)) => crate::sdp::toward(sdp, local, origin)?,
                (None, None) => {
                    let mut origin = LegOrigin::new("cloudpbx", 1, 1, local.ip());
                    crate::sdp::toward(sdp, local, &mut origin)?
                }
            },
        };
        if let Some(leg) = self.leg_mut(side) {
            leg.last_sdp = Some(bytes.clone());
        }
        Ok(bytes)
    }

    /// Tells the relay where the peer of `side` receives, from a description it sent.
    pub(crate) fn learn_remote(&mut self, side: Side, sdp: &SessionDescription) {
        if let Some((rtp, rtcp)) = crate::sdp::remote_rtp(sdp) {
            self.media.set_remote(side, rtp, rtcp);
        }
    }
}
