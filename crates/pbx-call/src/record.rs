//! What a finished call leaves for billing and the CDR store.

use std::time::Instant;

use serde::Serialize;

use crate::media::StreamStats;

/// The current time, read once per step by the driver: monotonic for timers, wall clock
/// (Unix milliseconds) for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub instant: Instant,
    /// Wall-clock time in Unix milliseconds.
    pub unix_ms: i64,
}

impl Now {
    /// Pairs an instant with the wall-clock time read at the same moment.
    pub const fn new(instant: Instant, unix_ms: i64) -> Now {
        Now { instant, unix_ms }
    }
}

/// Where the call goes relative to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Direction {
    /// User to user of one tenant.
    Internal,
    /// User to the public network through a trunk.
    Outbound,
    /// Public network to a number of the tenant.
    Inbound,
}

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Disposition {
    /// Answered (billable).
    Answered,
    /// The callee was busy (486/600).
    Busy,
    /// Nobody answered before the ring timeout, or every fork timed out.
    NoAnswer,
    /// The caller hung up before an answer.
    Cancelled,
    /// The callee has no reachable device, or refused (480, 404, 403, 603).
    Unavailable,
    /// The sides share no codec (488).
    Incompatible,
    /// Any other failure (5xx, relay ports exhausted, ...).
    Failed,
    /// Refused by the platform's policy before anything was sent (fraud guard, class of
    /// service); only the driver files this (a refused transfer, see
    /// `CallEngine::refuse_transfer_target`).
    Blocked,
}

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupSide {
    /// The caller (BYE or CANCEL from the A-leg).
    Caller,
    /// The callee (BYE or final failure from the B-legs).
    Callee,
    /// The platform (timers, media timeout, policy).
    System,
}

/// One call attempt, from the INVITE to the last BYE: everything a CDR needs. `C` is the
/// driver's context of the call (tenant, user, device ids), carried through untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord<C> {
    /// What the driver attached to the call when it started.
    pub context: C,
    /// The record's key, unique per engine: the engine's key of the call (its `CallKey`),
    /// or, for the record of a transferred call, a key of its own.
    pub call_key: u64,
    /// For the record of a transferred call (transferee and target), the engine's key of
    /// the call it continues; `None` for a call's first record.
    pub transfer_of: Option<u64>,
    /// For the record of an attended transfer's joined call: the engine's key of the
    /// transferor's other call, whose party joined this one (that call ends at the join,
    /// its record is reported `Ended` right after this record's `Answered`).
    pub joined: Option<u64>,
    /// The caller's Call-ID (A-leg).
    pub a_call_id: String,
    /// Internal, outbound or inbound.
    pub direction: Direction,
    /// The caller's number or extension as presented.
    pub caller: String,
    /// The callee as dialled.
    pub callee_dialled: String,
    /// The callee normalised (extension or E.164).
    pub callee_normalised: String,
    /// The trunk used, for outbound and inbound calls.
    pub trunk: Option<String>,
    /// The binding (device contact) that answered.
    pub answered_by: Option<String>,
    /// Wall-clock times in Unix milliseconds.
    pub started_at_ms: i64,
    /// First ringing (180/183) from any fork.
    pub ringing_at_ms: Option<i64>,
    /// The 2xx from the callee.
    pub answered_at_ms: Option<i64>,
    /// The end of the call.
    pub ended_at_ms: i64,
    /// `ended - started`, milliseconds.
    pub duration_ms: i64,
    /// Whole seconds from answer to end (rounded up), 0 when unanswered or not ended as
    /// answered.
    pub billable_secs: i64,
    /// How it ended.
    pub disposition: Disposition,
    /// The SIP status that ended it (the final answer to the caller; 200 for answered calls
    /// ended by BYE).
    pub hangup_status: u16,
    /// Why, in words (`"BYE"`, `"ring timeout"`, `"session timer expired"`, ...).
    pub hangup_cause: String,
    /// Who ended it.
    pub hangup_side: HangupSide,
    /// RTP the caller sent through the relay.
    pub media_a: StreamStats,
    /// RTP the callee sent through the relay.
    pub media_b: StreamStats,
}

impl<C> CallRecord<C> {
    /// A record opened at `now` for a call attempt (times and outcome filled in at the end).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open(
        context: C,
        call_key: u64,
        a_call_id: String,
        direction: Direction,
        caller: String,
        callee_dialled: String,
        callee_normalised: String,
        now: Now,
    ) -> CallRecord<C> {
        CallRecord {
            context,
            call_key,
            transfer_of: None,
            joined: None,
            a_call_id,
            direction,
            caller,
            callee_dialled,
            callee_normalised,
            trunk: None,
            answered_by: None,
            started_at_ms: now.unix_ms,
            ringing_at_ms: None,
            answered_at_ms: None,
            ended_at_ms: now.unix_ms,
            duration_ms: 0,
            billable_secs: 0,
            disposition: Disposition::Failed,
            hangup_status: 500,
            hangup_cause: String::new(),
            hangup_side: HangupSide::System,
            media_a: StreamStats::default(),
            media_b: StreamStats::default(),
        }
    }

    /// Closes the record at `now`.
    pub(crate) fn close(
        &mut self,
        now: Now,
        disposition: Disposition,
        status: u16,
        cause: &str,
        side: HangupSide,
    ) {
        self.ended_at_ms = now.unix_ms.max(self.started_at_ms);
        self.duration_ms = self.ended_at_ms - self.started_at_ms;
        // A call answered but failed before its media was set up (a late offer whose answer
        // never came) is not billed.
        self.billable_secs = self
            .answered_at_ms
            .filter(|_| disposition == Disposition::Answered)
            .map(|answered| ((self.ended_at_ms - answered).max(0) + 999) / 1000)
            .unwrap_or(0);
        self.disposition = disposition;
        self.hangup_status = status;
        cause.clone_into(&mut self.hangup_cause);
        self.hangup_side = side;
    }
}

/// The disposition for a final failure status sent to the caller.
pub(crate) fn disposition_for(status: u16) -> Disposition {
    match status {
        486 | 600 => Disposition::Busy,
        408 => Disposition::NoAnswer,
        487 => Disposition::Cancelled,
        488 | 606 => Disposition::Incompatible,
        403 | 404 | 410 | 480 | 484 | 603 | 604 => Disposition::Unavailable,
        _ => Disposition::Failed,
    }
}
