//! Sans-IO B2BUA call engine.
//!
//! A [`CallEngine`] joins an A-leg (the caller's INVITE server transaction and dialog) to one
//! or more B-legs (our own INVITEs, with their own Call-IDs, tags and CSeqs: topology hiding),
//! forked in parallel to every target of the callee. It never reads a clock, opens a socket or
//! spawns: the driver passes `now` (a [`Now`]: monotonic instant + wall clock), the
//! transaction [`Endpoint`](pbx_sip_engine::Endpoint) the SIP messages go through, and a
//! [`MediaAllocator`] for relay ports; it reports finished calls as [`CallRecord`]s (the CDR
//! data) from [`CallEngine::poll_record`] and its next deadline from
//! [`CallEngine::poll_timeout`].
//!
//! # Driving it
//!
//! - A new INVITE the driver has authenticated and routed: [`CallEngine::start_call`] with the
//!   accepted server transaction, the caller's identity and the [`ForkTarget`]s (every binding
//!   of the callee; an empty list answers 480). An outbound call through trunks:
//!   [`CallEngine::start_trunk_call`] with the ordered [`TrunkAttempt`]s instead.
//! - A request with a To tag: [`CallEngine::handle_in_dialog`] (BYE, re-INVITE, UPDATE, INFO,
//!   OPTIONS, PRACK, REFER; 481 when no call knows the dialog). The caller's early dialog is
//!   known from the start, so its PRACKs find the call.
//! - A REFER (blind transfer, RFC 3515) in a confirmed call comes out of
//!   [`CallEngine::poll_transfer`] after `handle_in_dialog` as a [`TransferRequest`]: resolve
//!   its target in the same step and call [`CallEngine::start_transfer`] with the target's
//!   bindings, [`CallEngine::start_trunk_transfer`] with the trunks of a number, or
//!   [`CallEngine::refuse_transfer_target`] with a status (403 for a target that is not
//!   ours) and how to file the attempt. The transferor gets 202 and NOTIFYs
//!   (`message/sipfrag`), the target an INVITE from the relay, and takes the transferor's
//!   place when it answers; the transferee–target call has a record of its own
//!   (`Stage::Started` with a new key when the target is invited; a refused target's
//!   attempt only `Stage::Ended`, closed at once). A REFER from a trunk leg gets 403, a
//!   second one during a transfer 491.
//! - An attended transfer (the `Refer-To` carries `?Replaces=` naming the transferor's
//!   confirmed dialog of another call of this engine) comes out the same way with
//!   [`TransferRequest::replaces`] set: check that the named leg is the transferor's own
//!   party and call [`CallEngine::start_attended_transfer`] (or `refuse_transfer` with 403).
//!   The other call's party is re-INVITEd onto this call's relay in the transferor's place
//!   and the transferor is released from both calls (see `engine/attended.rs`).
//! - Engine events ([`pbx_sip_engine::Event`]): [`CallEngine::handle_event`] returns whether
//!   the event belonged to a call (responses to our client transactions, CANCEL and ACK for the
//!   A-leg INVITE, timeouts).
//! - Media events: [`CallEngine::media_timeout`] (RTP stopped: tear down with a Reason).
//! - Timers: when [`CallEngine::poll_timeout`] is reached, [`CallEngine::handle_timeout`]
//!   (ring timeout, maximum duration, session timers).
//! - A clean shutdown: [`CallEngine::shut_down`] (BYE to both legs of answered calls,
//!   503 and CANCEL for ringing ones, `Reason` "server shutting down", records closed with
//!   hangup side `system`); then let the endpoint finish those transactions.
//!
//! # What a call does
//!
//! Forking: one INVITE per target, first 2xx wins, the other forks get CANCEL, a late 2xx is
//! ACKed and sent BYE. Failure mapping when every fork has failed: a 6xx wins, then 486, then
//! 488, then the lowest other final status; 401/407 from a device and 5xx become 480; Timer B
//! on every fork gives 408. The ring timeout answers 480 and the caller's CANCEL 487.
//! Trunks: one attempt at a time, in order; a 401/407 from the carrier is answered once with
//! the attempt's [`TrunkCredentials`] (same Call-ID and From tag, CSeq + 1); a 5xx, 408,
//! timeout (no response at all within `trunk_response_timeout`, or Timer B), transport
//! error or an unanswerable challenge tries the next trunk, any other
//! 4xx/6xx ends the call with that status (503 when every trunk failed).
//! In-dialog: BYE ends both legs; re-INVITE and UPDATE are relayed with their SDP rewritten to
//! our relay (hold with `sendonly`/`inactive`, or `c=0.0.0.0`, passes across); a re-INVITE
//! while another is in progress gets 491 (glare); INFO is relayed; OPTIONS is answered here.
//! Before the answer (RFC 3311), an UPDATE passes the same way between the caller's early
//! dialog and the fork's early dialog it is joined to (the one whose 18x the caller got last,
//! opened by a reliable 18x), in either direction; an UPDATE from another fork's early dialog
//! is answered here (200, or 488 for an offer), one in an early dialog we do not keep gets 481.
//! RFC 4028 session timers run on each leg independently; a leg whose refresh does not come
//! is torn down on both sides with a `Reason` header, as are calls whose RTP stops and calls
//! reaching the configured maximum duration.
//!
//! # Reliable provisional responses (RFC 3262)
//!
//! 100rel passes across only when both sides support it; each leg keeps its own RSeq space.
//!
//! - The B-leg INVITEs carry `Supported: 100rel` only when the caller's INVITE had
//!   `Supported: 100rel` or `Require: 100rel`, so a callee has no reason to send reliable
//!   provisionals the caller could not PRACK. We never put `Require: 100rel` on a B-leg (a
//!   callee without 100rel would refuse the call with 420); a caller that requires it still
//!   gets every provisional reliably, because we make them reliable on the A-leg ourselves.
//! - A fork's reliable 18x (`Require: 100rel` + `RSeq`) opens its early dialog; a
//!   retransmission or an out-of-sequence RSeq is dropped (§4). When it is relayed to the
//!   caller (the first ringing, or the first early answer, as for any 18x) it goes with our
//!   own RSeq and `Require: 100rel`, its SDP rewritten to our relay, and is retransmitted
//!   from T1, doubling, until the caller PRACKs it; after 64·T1 the caller gets 504 and the
//!   forks CANCEL (or BYE). A second reliable provisional waits until the first is PRACKed.
//! - The caller's PRACK (RAck matching our RSeq and the INVITE's CSeq) is answered 200 and
//!   a PRACK with the fork's RSeq goes to the fork that sent the provisional, in its early
//!   dialog (a carrier's 401/407 to it is answered once, like other in-dialog requests on a
//!   trunk); the fork's 200 is absorbed. A PRACK carrying an offer is relayed to the fork
//!   with its SDP rewritten, and the fork's answer comes back, rewritten, in the 200 to the
//!   caller's PRACK. A PRACK that matches nothing gets 481.
//! - A reliable 18x the caller cannot take (no 100rel: a callee that ignored our Supported),
//!   or one not relayed at all (a later fork's ringing), is PRACKed by us at once and
//!   relayed, if at all, unreliably. Each fork has its own early dialogs and RSeq
//!   sequence, so several forks may send reliable provisionals.
//! - A fork's 2xx while the caller's reliable provisional with SDP is unacknowledged is
//!   ACKed at once, but the caller's 2xx is held until its PRACK (§3); the fork is sent BYE
//!   if the caller CANCELs or never PRACKs in the meantime.
//!
//! # Late offer (RFC 3261 §13.2.1, RFC 3264)
//!
//! An INVITE without SDP is not refused: its forks go without an offer too (with
//! `Supported: 100rel` only when the caller supports it); the relay session is allocated
//! up front as for any call.
//!
//! - The winning fork's 2xx carries the offer. Restricted to the configured codecs and
//!   rewritten to our relay, it goes to the caller in our 2xx; the fork's 2xx is not ACKed
//!   yet. The caller's ACK carries the answer: the relay learns the caller's address and
//!   the fork gets its ACK with the answer rewritten to our relay.
//! - A 2xx without an offer, or one without a codec we relay: the fork is ACKed with an
//!   answer rejecting every stream (port 0) and sent BYE, the caller gets 488
//!   (disposition incompatible), as when an ordinary answer shares no codec.
//! - No ACK within 64·T1, or an ACK without a usable answer: the fork gets its ACK (streams
//!   rejected) and BYE, the caller BYE; the record says failed (no billable seconds), cause
//!   `no ACK from caller` / `ACK without SDP answer`. Any other teardown while the answer
//!   is awaited also ACKs the fork before its BYE.
//! - The offer in a fork's first reliable 18x (RFC 3262 §5), when the caller supports
//!   100rel: restricted and rewritten to our relay, it goes to the caller in our reliable
//!   183 (our RSeq, `Require: 100rel`); the caller's PRACK carries the answer, which the
//!   relay learns and our PRACK to the fork carries on, rewritten. The fork's 2xx is then
//!   ACKed at once without SDP and the caller's 2xx carries none (a session repeated in the
//!   fork's 2xx is ignored); a fork's 2xx before our PRACK gets the answer in its ACK,
//!   and another fork winning with its own offer gets the caller's answer (restricted to
//!   the codecs it offered) in its ACK.
//!   A PRACK without a usable answer gets 200, then the caller 488 and the forks CANCEL
//!   (record failed, cause `PRACK without SDP answer`).
//! - Other SDP in a fork's 18x (the caller without 100rel, an unreliable 18x, an offer
//!   without a codec we relay) is not relayed: the caller gets the offer in the 2xx; a
//!   reliable 18x is then PRACKed by us without an answer.
//! - A re-INVITE without SDP in a confirmed dialog passes across the same way: the other
//!   side's 2xx offer goes back rewritten, the ACK to that 2xx waits for the originator's
//!   ACK with the answer; no such answer ends the call (BYE both legs, recorded answered).

mod call;
mod config;
mod engine;
mod media;
mod record;
mod reliable;
mod sdp;
mod sip;

pub use config::CallConfig;
pub use engine::{
    CallEngine, CallKey, NewCall, NewTransfer, RefusedTransfer, ReplacedDialog, Stage, StartError,
    TransferError, TransferRequest,
};
pub use media::{MediaAllocator, MediaSession, MediaUnavailable, Side, StreamStats};
pub use record::{CallRecord, Direction, Disposition, HangupSide, Now};
pub use sip::{ForkTarget, TrunkAttempt, TrunkCredentials};
