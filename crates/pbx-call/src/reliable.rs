//! RFC 3262 reliable provisional responses (100rel/PRACK) across the B2BUA.
//!
//! Each leg keeps its own RSeq space, exactly as it keeps its own CSeq space: towards the
//! caller we are the UAS and number our reliable provisionals ourselves ([`Reliable`]);
//! towards each fork we are the UAC, PRACK its reliable provisionals in its early dialog
//! ([`EarlyDialog`]) and remember, per provisional relayed to the caller, which fork, To tag
//! and RSeq/CSeq it came from ([`Origin`]), so the caller's PRACK is mapped to the fork that
//! sent it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pbx_sip::{HeaderName, Headers, Method, Request, Response};
use pbx_sip_engine::Dialog;

/// The option tag.
const TAG: &[u8] = b"100rel";

/// What the caller's INVITE said about 100rel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    /// Neither `Supported` nor `Require`: provisionals go unreliably, and the B-legs are not
    /// offered 100rel (so no callee sends a reliable provisional we would have to absorb).
    Absent,
    /// `Supported: 100rel`: a callee's reliable provisionals are relayed reliably.
    Supported,
    /// `Require: 100rel`: every provisional (but 100) goes reliably (RFC 3262 §3).
    Required,
}

impl Support {
    /// The caller's stance, from its INVITE.
    pub(crate) fn of(request: &Request) -> Support {
        if has_tag(request.headers(), &HeaderName::Require) {
            Support::Required
        } else if has_tag(request.headers(), &HeaderName::Supported) {
            Support::Supported
        } else {
            Support::Absent
        }
    }
}

/// The RSeq of a reliable provisional response (`Require: 100rel` and a valid RSeq, RFC 3262
/// §7.1); `None` for anything else.
pub(crate) fn reliable_rseq(response: &Response) -> Option<u32> {
    let status = response.status().0;
    if !(101..=199).contains(&status) || !has_tag(response.headers(), &HeaderName::Require) {
        return None;
    }
    sequence(response.headers().get(&HeaderName::RSeq)?)
}

/// The RAck header of a PRACK (RFC 3262 §7.2): the RSeq and CSeq of the provisional it
/// acknowledges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RAck {
    pub(crate) rseq: u32,
    pub(crate) cseq: u32,
    pub(crate) method: Method,
}

impl RAck {
    /// The RAck of `request`, when present and well formed.
    pub(crate) fn of(request: &Request) -> Option<RAck> {
        let value = request.headers().get(&HeaderName::RAck)?;
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.split_ascii_whitespace();
        let rseq = sequence(parts.next()?.as_bytes())?;
        let cseq = sequence(parts.next()?.as_bytes())?;
        let method = parts.next()?.parse().ok()?;
        parts
            .next()
            .is_none()
            .then_some(RAck { rseq, cseq, method })
    }

    /// The header value.
    pub(crate) fn to_bytes(&self) -> Bytes {
        Bytes::from(format!("{} {} {}", self.rseq, self.cseq, self.method))
    }
}

/// An early dialog with a fork, opened by its first reliable provisional: our PRACKs go in
/// it, and when the fork answers, its CSeq space carries on into the confirmed dialog.
#[derive(Debug)]
pub(crate) struct EarlyDialog {
    pub(crate) dialog: Dialog,
    /// The RSeq of the last reliable provisional taken from this dialog.
    pub(crate) last_rseq: u32,
}

/// A fork's reliable provisional relayed to the caller: PRACKed when the caller PRACKs ours.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// Index of the fork in the call's fork set.
    pub(crate) fork: usize,
    /// The fork's early dialog (To tag of its provisional).
    pub(crate) to_tag: Bytes,
    /// What our PRACK to the fork acknowledges.
    pub(crate) rack: RAck,
}

/// Whether a fork's reliable provisional is new, and so to be processed and PRACKed.
#[derive(Debug)]
pub(crate) enum Noted {
    /// The next one of its early dialog.
    Fresh(Origin),
    /// A retransmission or out of sequence (RFC 3262 §4: not PRACKed, not processed).
    Stale,
    /// No early dialog can be made of it (no To tag or Contact): treated as unreliable.
    NoDialog,
}

/// Records a reliable provisional `response` with `rseq` from the fork whose INVITE was
/// `request`, opening its early dialog (with `contact` as ours) on the first one.
pub(crate) fn note(
    early: &mut Vec<EarlyDialog>,
    fork: usize,
    request: &Request,
    response: &Response,
    rseq: u32,
    contact: pbx_sip::NameAddr,
) -> Noted {
    let Some(to_tag) = response.to().ok().and_then(|to| to.tag) else {
        return Noted::NoDialog;
    };
    let Ok(cseq) = response.cseq() else {
        return Noted::NoDialog;
    };
    match early
        .iter_mut()
        .find(|e| e.dialog.id().remote_tag == to_tag)
    {
        Some(known) => {
            if Some(rseq) != known.last_rseq.checked_add(1) {
                return Noted::Stale;
            }
            known.last_rseq = rseq;
        }
        None => {
            let Ok(mut dialog) = Dialog::uac(request, response) else {
                return Noted::NoDialog;
            };
            dialog.set_local_contact(contact);
            early.push(EarlyDialog {
                dialog,
                last_rseq: rseq,
            });
        }
    }
    Noted::Fresh(Origin {
        fork,
        to_tag,
        rack: RAck {
            rseq,
            cseq: cseq.seq,
            method: cseq.method,
        },
    })
}

/// A provisional for the caller, to go reliably once the one before it is PRACKed.
#[derive(Debug)]
struct Pending {
    response: Response,
    with_sdp: bool,
    origin: Option<Origin>,
}

/// The reliable provisional sent to the caller and not PRACKed yet.
#[derive(Debug)]
struct Outstanding {
    rseq: u32,
    with_sdp: bool,
    origin: Option<Origin>,
    response: Response,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

/// What is due on the caller's side at a deadline.
#[derive(Debug)]
pub(crate) enum Due {
    /// Nothing yet.
    Nothing,
    /// Send this again (the interval has doubled).
    Retransmit(Response),
    /// 64·T1 without a PRACK: the caller gets a 5xx (RFC 3262 §3).
    GiveUp,
}

/// How a caller's PRACK matched.
#[derive(Debug)]
pub(crate) enum Prack {
    /// It acknowledges the outstanding provisional, which came from `origin` (if a fork's).
    Outstanding(Option<Origin>),
    /// It acknowledges one left unacknowledged when the final response went out.
    Late,
    /// Nothing unacknowledged matches (481).
    Unmatched,
}

/// The caller's side of RFC 3262 (we are its UAS): our RSeq space, the reliable provisional
/// awaiting its PRACK (retransmitted from T1, doubling, for 64·T1), and those waiting to be
/// sent after it (a UAS sends no second reliable provisional before the first is PRACKed).
#[derive(Debug)]
pub(crate) struct Reliable {
    pub(crate) support: Support,
    next_rseq: u32,
    outstanding: Option<Outstanding>,
    queue: VecDeque<Pending>,
    /// RSeqs still unacknowledged when the final response went out: a late PRACK gets 200.
    late: Vec<u32>,
}

impl Reliable {
    /// The caller's side for `support`; the first RSeq derives from `seed` (RFC 3262 §3
    /// recommends a random start, well below 2^31 - 1).
    pub(crate) fn new(support: Support, seed: u64) -> Reliable {
        let start = u32::try_from(seed % (1 << 30)).unwrap_or(0) + 1;
        Reliable {
            support,
            next_rseq: start,
            outstanding: None,
            queue: VecDeque::new(),
            late: Vec::new(),
        }
    }

    /// The caller supports (or requires) 100rel.
    pub(crate) fn enabled(&self) -> bool {
        self.support != Support::Absent
    }

    /// The caller requires 100rel: every provisional to it goes reliably.
    pub(crate) fn required(&self) -> bool {
        self.support == Support::Required
    }

    /// Queues `response` (a 18x for the caller) to go reliably; returns it stamped with
    /// `Require: 100rel` and our RSeq when it can go now (nothing outstanding).
    pub(crate) fn push(
        &mut self,
        response: Response,
        with_sdp: bool,
        origin: Option<Origin>,
        now: Instant,
        t1: Duration,
    ) -> Option<Response> {
        self.queue.push_back(Pending {
            response,
            with_sdp,
            origin,
        });
        self.next(now, t1)
    }

    /// The next queued provisional, stamped and now outstanding, when none is.
    pub(crate) fn next(&mut self, now: Instant, t1: Duration) -> Option<Response> {
        if self.outstanding.is_some() {
            return None;
        }
        let Pending {
            mut response,
            with_sdp,
            origin,
        } = self.queue.pop_front()?;
        let rseq = self.next_rseq;
        self.next_rseq = self.next_rseq.saturating_add(1);
        let headers = response.headers_mut();
        headers.push(HeaderName::Require, Bytes::from_static(TAG));
        headers.push(HeaderName::RSeq, Bytes::from(rseq.to_string()));
        self.outstanding = Some(Outstanding {
            rseq,
            with_sdp,
            origin,
            response: response.clone(),
            interval: t1,
            next: now + t1,
            give_up: now + t1 * 64,
        });
        Some(response)
    }

    /// When the outstanding provisional is due again (or given up).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.outstanding.as_ref().map(|o| o.next.min(o.give_up))
    }

    /// What is due at `now`.
    pub(crate) fn due(&mut self, now: Instant) -> Due {
        let Some(outstanding) = self.outstanding.as_mut() else {
            return Due::Nothing;
        };
        if outstanding.give_up <= now {
            return Due::GiveUp;
        }
        if outstanding.next > now {
            return Due::Nothing;
        }
        outstanding.interval = outstanding.interval.saturating_mul(2);
        outstanding.next = (now + outstanding.interval).min(outstanding.give_up);
        Due::Retransmit(outstanding.response.clone())
    }

    /// A PRACK from the caller whose INVITE had CSeq `invite_cseq` (RFC 3262 §3: RSeq, CSeq
    /// and method must match).
    pub(crate) fn prack(&mut self, rack: &RAck, invite_cseq: u32) -> Prack {
        if rack.method != Method::Invite || rack.cseq != invite_cseq {
            return Prack::Unmatched;
        }
        if self
            .outstanding
            .as_ref()
            .is_some_and(|o| o.rseq == rack.rseq)
        {
            return match self.outstanding.take() {
                Some(outstanding) => Prack::Outstanding(outstanding.origin),
                None => Prack::Unmatched,
            };
        }
        match self.late.iter().position(|rseq| *rseq == rack.rseq) {
            Some(index) => {
                self.late.swap_remove(index);
                Prack::Late
            }
            None => Prack::Unmatched,
        }
    }

    /// A 2xx must wait: the unacknowledged provisional carried SDP (RFC 3262 §3).
    pub(crate) fn holds_final(&self) -> bool {
        self.outstanding.as_ref().is_some_and(|o| o.with_sdp)
    }

    /// The final response is going out: retransmissions stop, queued provisionals are
    /// dropped, the outstanding one may still be PRACKed late.
    pub(crate) fn finish(&mut self) {
        self.queue.clear();
        if let Some(outstanding) = self.outstanding.take() {
            self.late.push(outstanding.rseq);
        }
    }

    /// Drops the provisionals not sent yet (the call is answered).
    pub(crate) fn drop_queue(&mut self) {
        self.queue.clear();
    }
}

/// Whether `tag` 100rel is among the option tags of every `name` field.
fn has_tag(headers: &Headers, name: &HeaderName) -> bool {
    headers
        .values(name)
        .any(|value| value.is_ok_and(|v| v.trim_ascii().eq_ignore_ascii_case(TAG)))
}

/// An RSeq or CSeq number: 1 to 2^31 - 1, digits only.
fn sequence(text: &[u8]) -> Option<u32> {
    let text = text.trim_ascii();
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: u32 = std::str::from_utf8(text).ok()?.parse().ok()?;
    (1..(1 << 31)).contains(&value).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_bounded() {
        assert_eq!(sequence(b"1"), Some(1));
        assert_eq!(sequence(b" 2147483647 "), Some(2_147_483_647));
        assert_eq!(sequence(b"0"), None);
        assert_eq!(sequence(b"2147483648"), None);
        assert_eq!(sequence(b"-1"), None);
        assert_eq!(sequence(b""), None);
    }

    #[test]
    fn retransmission_doubles_without_cap_until_64_t1() {
        let t0 = pbx_test_support::VirtualClock::start().now();
        let t1 = Duration::from_millis(500);
        let mut reliable = Reliable::new(Support::Supported, 41);
        let response = Response::new(pbx_sip::StatusCode(183));
        let sent = reliable.push(response, true, None, t0, t1);
        assert!(sent.is_some());
        let mut at = Vec::new();
        while let Some(deadline) = reliable.deadline() {
            match reliable.due(deadline) {
                Due::Retransmit(_) => at.push((deadline - t0).as_millis()),
                Due::GiveUp => {
                    at.push((deadline - t0).as_millis());
                    break;
                }
                Due::Nothing => break,
            }
        }
        // T1, 2, 4, 8, 16 s after the first send: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5; give up at 32.
        assert_eq!(at, [500, 1500, 3500, 7500, 15500, 31500, 32000]);
    }
}
