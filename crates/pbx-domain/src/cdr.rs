//! Call detail records: one per call attempt, opened when the call starts and closed when it
//! ends (or, after a crash, when the platform starts again).
//!
//! A [`CallRecord`] is built by the call engine with [`CallRecord::open`], updated with
//! [`CallRecord::rang`] / [`CallRecord::answered`] and finished with [`CallRecord::close`],
//! which computes the duration and the billable seconds. Times are Unix milliseconds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

use crate::ids::{CdrId, DeviceId, TenantId, TrunkId, UserId};
use crate::kinds::text_enum;

text_enum!(
    /// Which way a call goes.
    CallDirection, "call direction" {
        /// Between users of one tenant.
        Internal => "internal",
        /// From a user out through a trunk.
        Outbound => "outbound",
        /// From a trunk in to a user (a call to a DID).
        Inbound => "inbound",
    }
);

text_enum!(
    /// How a call attempt ended.
    Disposition, "disposition" {
        /// Answered (billable).
        Answered => "answered",
        /// The callee was busy (486/600).
        Busy => "busy",
        /// Nobody answered before the ring timeout (408/480 after ringing).
        NoAnswer => "no_answer",
        /// The caller hung up before an answer (CANCEL).
        Cancelled => "cancelled",
        /// The callee declined (603) or refused the call (403).
        Rejected => "rejected",
        /// The fraud guard refused the call at set-up (blocked destination, class of
        /// service, a usage limit, an account blocked for a baseline anomaly): 403 with a
        /// `Reason`, and a security event.
        Blocked => "blocked",
        /// The callee does not exist or is not registered (404/480/410).
        Unavailable => "unavailable",
        /// No trunk or callee could take the call (5xx, timeouts, 488).
        Failed => "failed",
        /// The platform stopped while the call was up; closed at the next start with the
        /// last time it was known to be alive.
        Interrupted => "interrupted",
    }
);

text_enum!(
    /// Which side ended the call.
    HangupSide, "hangup side" {
        /// The calling party.
        Caller => "caller",
        /// The called party (or the trunk towards it).
        Callee => "callee",
        /// The platform (ring timeout, media timeout, maximum duration, shutdown, crash).
        System => "system",
    }
);

text_enum!(
    /// Whether a record is still being written.
    CdrState, "CDR state" {
        /// The call is in progress (or the node died during it).
        Open => "open",
        /// Final.
        Closed => "closed",
    }
);

/// Media counters of one relayed RTP stream, as the relay kept them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStreamStats {
    /// Which leg this stream belongs to (`caller` / `callee`).
    pub leg: String,
    /// Media type (`audio`, `video`).
    pub media: String,
    /// Negotiated codec (`PCMA/8000`), if known.
    pub codec: Option<String>,
    /// RTP packets received from this leg.
    pub packets_in: u64,
    /// RTP packets sent to this leg.
    pub packets_out: u64,
    /// Payload bytes received from this leg.
    pub bytes_in: u64,
    /// Payload bytes sent to this leg.
    pub bytes_out: u64,
    /// Packets lost on the way in (from RTP sequence numbers).
    pub packets_lost: u64,
    /// Interarrival jitter (RFC 3550), microseconds.
    pub jitter_us: u64,
}

/// One call attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Id (UUID v7: sorts by start).
    pub id: CdrId,
    /// The tenant that is billed.
    pub tenant_id: TenantId,
    /// The tenant's user on the call (caller for internal/outbound, callee for inbound).
    pub user_id: Option<UserId>,
    /// The user's device that placed or answered the call.
    pub device_id: Option<DeviceId>,
    /// Direction.
    pub direction: CallDirection,
    /// The calling number or extension as presented.
    pub caller: String,
    /// The called number as dialled (Request-URI user part).
    pub callee_dialled: String,
    /// The called number normalised (E.164 `+...` or an extension).
    pub callee: String,
    /// The trunk used (outbound: the one that answered or was tried last; inbound: the one
    /// the call came from).
    pub trunk_id: Option<TrunkId>,
    /// The caller side's SIP Call-ID (for correlation with traces).
    pub sip_call_id: String,
    /// The node that handled the call.
    pub node_id: String,
    /// When the INVITE arrived.
    pub start_ms: i64,
    /// First ringing (180/183), if any.
    pub ring_ms: Option<i64>,
    /// Answer (2xx), if any.
    pub answer_ms: Option<i64>,
    /// End, once closed.
    pub end_ms: Option<i64>,
    /// The last time the call was known to be alive (start, ring, answer, heartbeat).
    pub last_seen_ms: i64,
    /// Whole call in seconds, start to end, rounded up (0 while open).
    pub duration_secs: i64,
    /// Answer to end in seconds, rounded up; 0 when not answered.
    pub billable_secs: i64,
    /// How it ended (`None` while open).
    pub disposition: Option<Disposition>,
    /// The final SIP status that ended the attempt, if any (486, 487, 200, ...).
    pub sip_status: Option<u16>,
    /// Free-text cause (`BYE`, `ring timeout`, `rtp timeout`, a Reason header, ...).
    pub hangup_cause: Option<String>,
    /// Who ended it.
    pub hangup_side: Option<HangupSide>,
    /// Per-stream media statistics.
    pub media: Vec<MediaStreamStats>,
    /// Open or closed.
    pub state: CdrState,
}

/// What the call engine knows when a call starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStart {
    /// Id (made by the caller, for example with `CdrId::from_parts`).
    pub id: CdrId,
    /// The tenant billed.
    pub tenant_id: TenantId,
    /// The tenant's user.
    pub user_id: Option<UserId>,
    /// The device.
    pub device_id: Option<DeviceId>,
    /// Direction.
    pub direction: CallDirection,
    /// The calling number or extension.
    pub caller: String,
    /// As dialled.
    pub callee_dialled: String,
    /// Normalised.
    pub callee: String,
    /// Trunk, if known at start.
    pub trunk_id: Option<TrunkId>,
    /// The caller side's Call-ID.
    pub sip_call_id: String,
    /// This node.
    pub node_id: String,
    /// Start time.
    pub start_ms: i64,
}

/// How a call ended, for [`CallRecord::close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    /// End time.
    pub end_ms: i64,
    /// Disposition.
    pub disposition: Disposition,
    /// Final SIP status, if any.
    pub sip_status: Option<u16>,
    /// Free-text cause.
    pub hangup_cause: Option<String>,
    /// Who hung up.
    pub hangup_side: HangupSide,
}

/// Milliseconds to whole seconds, rounded up; negative spans count as 0.
pub fn ceil_secs(millis: i64) -> i64 {
    if millis <= 0 {
        0
    } else {
        (millis + 999) / 1000
    }
}

impl CallRecord {
    /// An open record for a call that just started.
    pub fn open(start: CallStart) -> Self {
        Self {
            id: start.id,
            tenant_id: start.tenant_id,
            user_id: start.user_id,
            device_id: start.device_id,
            direction: start.direction,
            caller: start.caller,
            callee_dialled: start.callee_dialled,
            callee: start.callee,
            trunk_id: start.trunk_id,
            sip_call_id: start.sip_call_id,
            node_id: start.node_id,
            start_ms: start.start_ms,
            ring_ms: None,
            answer_ms: None,
            end_ms: None,
            last_seen_ms: start.start_ms,
            duration_secs: 0,
            billable_secs: 0,
            disposition: None,
            sip_status: None,
            hangup_cause: None,
            hangup_side: None,
            media: Vec::new(),
            state: CdrState::Open,
        }
    }

    /// Records the first ringing (later ones are ignored).
    pub fn rang(&mut self, at_ms: i64) {
        self.ring_ms.get_or_insert(at_ms);
        self.seen(at_ms);
    }

    /// Records the answer (a second answer is ignored).
    pub fn answered(&mut self, at_ms: i64) {
        self.answer_ms.get_or_insert(at_ms);
        self.seen(at_ms);
    }

    /// Moves the last-known-alive time forward.
    pub fn seen(&mut self, at_ms: i64) {
        self.last_seen_ms = self.last_seen_ms.max(at_ms);
    }

    /// Closes the record: end time, disposition, cause, durations.
    pub fn close(&mut self, end: CallEnd) {
        let end_ms = end.end_ms.max(self.start_ms);
        self.end_ms = Some(end_ms);
        self.seen(end_ms);
        self.duration_secs = ceil_secs(end_ms - self.start_ms);
        self.billable_secs = self
            .answer_ms
            .map_or(0, |answer| ceil_secs(end_ms - answer));
        self.disposition = Some(end.disposition);
        self.sip_status = end.sip_status;
        self.hangup_cause = end.hangup_cause;
        self.hangup_side = Some(end.hangup_side);
        self.state = CdrState::Closed;
    }

    /// Closes a record left open by a crash, at its last known time.
    pub fn close_interrupted(&mut self) {
        self.close(CallEnd {
            end_ms: self.last_seen_ms,
            disposition: Disposition::Interrupted,
            sip_status: None,
            hangup_cause: Some("platform restarted during the call".to_owned()),
            hangup_side: HangupSide::System,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> CallStart {
        CallStart {
            id: CdrId::from_parts(1_000, &[1; 10]),
            tenant_id: TenantId::from_parts(1, &[2; 10]),
            user_id: None,
            device_id: None,
            direction: CallDirection::Outbound,
            caller: "+31201234567".into(),
            callee_dialled: "0612345678".into(),
            callee: "+31612345678".into(),
            trunk_id: None,
            sip_call_id: "abc@host".into(),
            node_id: "node-1".into(),
            start_ms: 10_000,
        }
    }

    #[test]
    fn answered_call_durations_round_up() {
        let mut record = CallRecord::open(start());
        record.rang(11_000);
        record.rang(12_000);
        record.answered(14_000);
        record.close(CallEnd {
            end_ms: 74_001,
            disposition: Disposition::Answered,
            sip_status: Some(200),
            hangup_cause: Some("BYE".into()),
            hangup_side: HangupSide::Callee,
        });
        assert_eq!(record.ring_ms, Some(11_000));
        assert_eq!(record.duration_secs, 65);
        assert_eq!(record.billable_secs, 61);
        assert_eq!(record.state, CdrState::Closed);
    }

    #[test]
    fn unanswered_call_is_not_billable_and_interrupted_closes_at_last_seen() {
        let mut record = CallRecord::open(start());
        record.rang(11_500);
        record.close(CallEnd {
            end_ms: 30_000,
            disposition: Disposition::NoAnswer,
            sip_status: Some(480),
            hangup_cause: None,
            hangup_side: HangupSide::System,
        });
        assert_eq!(record.billable_secs, 0);
        assert_eq!(record.duration_secs, 20);

        let mut crashed = CallRecord::open(start());
        crashed.answered(12_000);
        crashed.seen(42_000);
        crashed.close_interrupted();
        assert_eq!(crashed.end_ms, Some(42_000));
        assert_eq!(crashed.billable_secs, 30);
        assert_eq!(crashed.disposition, Some(Disposition::Interrupted));
        assert_eq!(
            "no_answer".parse::<Disposition>().unwrap(),
            Disposition::NoAnswer
        );
        assert_eq!(
            "blocked".parse::<Disposition>().unwrap(),
            Disposition::Blocked
        );
        assert_eq!(Disposition::Blocked.as_str(), "blocked");
    }
}
