//! Transaction timers as deadlines (RFC 3261 §17, table 4; RFC 6026 §8.11).
//!
//! Nothing here waits: a timer is an [`Instant`] in a queue ordered by deadline. The endpoint
//! reports the earliest through `poll_timeout()` and fires every due timer in
//! `handle_timeout(now)`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Instant;

use crate::transaction::TransactionId;

/// The RFC 3261 / RFC 6026 transaction timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Timer {
    /// INVITE client: request retransmission (T1, doubling).
    A,
    /// INVITE client: transaction timeout (64·T1).
    B,
    /// INVITE client in Proceeding: no final response for [`crate::Config::timer_c`]
    /// (RFC 3261 §16.6 step 11, restarted by each provisional); the endpoint CANCELs.
    C,
    /// INVITE client: wait for response retransmissions after a non-2xx final (≥ 32 s).
    D,
    /// Non-INVITE client: request retransmission (T1, doubling, capped at T2).
    E,
    /// Non-INVITE client: transaction timeout (64·T1).
    F,
    /// INVITE server: final non-2xx response retransmission (T1, doubling, capped at T2).
    G,
    /// INVITE server: wait for ACK (64·T1).
    H,
    /// INVITE server: wait for ACK retransmissions (T4).
    I,
    /// Non-INVITE server: wait for request retransmissions (64·T1).
    J,
    /// Non-INVITE client: wait for response retransmissions (T4).
    K,
    /// INVITE server, Accepted (RFC 6026): wait for INVITE retransmissions (64·T1).
    L,
    /// INVITE client, Accepted (RFC 6026): wait for 2xx retransmissions (64·T1).
    M,
    /// INVITE client after its CANCEL went out: no final response within 64·T1 and the
    /// transaction is destroyed (RFC 3261 §9.1).
    CancelGuard,
    /// 2xx retransmission on behalf of the UAS core until the ACK arrives (RFC 3261
    /// §13.3.1.4: T1, doubling, capped at T2).
    Retransmit2xx,
}

impl Timer {
    /// Every timer, for bulk cancellation.
    pub const ALL: [Timer; 15] = [
        Timer::A,
        Timer::B,
        Timer::C,
        Timer::CancelGuard,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Retransmit2xx,
    ];
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timer::Retransmit2xx => f.write_str("2xx retransmission"),
            Timer::CancelGuard => f.write_str("CANCEL guard"),
            other => write!(f, "Timer {other:?}"),
        }
    }
}

/// All armed timers of an endpoint, ordered by deadline.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    by_deadline: BTreeMap<(Instant, u64), (TransactionId, Timer)>,
    armed: HashMap<(TransactionId, Timer), (Instant, u64)>,
    sequence: u64,
}

impl TimerQueue {
    /// Arm (or re-arm) `timer` of `transaction` for `deadline`.
    pub(crate) fn set(&mut self, transaction: TransactionId, timer: Timer, deadline: Instant) {
        self.cancel(transaction, timer);
        self.sequence += 1;
        let key = (deadline, self.sequence);
        self.by_deadline.insert(key, (transaction, timer));
        self.armed.insert((transaction, timer), key);
    }

    /// Disarm `timer` of `transaction` (no-op when not armed).
    pub(crate) fn cancel(&mut self, transaction: TransactionId, timer: Timer) {
        if let Some(key) = self.armed.remove(&(transaction, timer)) {
            self.by_deadline.remove(&key);
        }
    }

    /// Disarm every timer of `transaction`.
    pub(crate) fn cancel_all(&mut self, transaction: TransactionId) {
        for timer in Timer::ALL {
            self.cancel(transaction, timer);
        }
    }

    /// The deadline of `timer` of `transaction`, if armed.
    pub(crate) fn deadline(&self, transaction: TransactionId, timer: Timer) -> Option<Instant> {
        self.armed.get(&(transaction, timer)).map(|(at, _)| *at)
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.keys().next().map(|(at, _)| *at)
    }

    /// Remove and return the earliest timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TransactionId, Timer)> {
        let (&key, _) = self.by_deadline.iter().next()?;
        if key.0 > now {
            return None;
        }
        let (transaction, timer) = self.by_deadline.remove(&key)?;
        self.armed.remove(&(transaction, timer));
        Some((transaction, timer))
    }

    /// Number of armed timers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.armed.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[allow(clippy::disallowed_methods)] // a base instant for the test, never used as "now"
    fn base() -> Instant {
        Instant::now()
    }

    #[test]
    fn pops_in_deadline_order_and_cancels() {
        let t0 = base();
        let mut queue = TimerQueue::default();
        let (one, two) = (TransactionId::from_raw(1), TransactionId::from_raw(2));
        queue.set(one, Timer::B, t0 + Duration::from_secs(32));
        queue.set(two, Timer::E, t0 + Duration::from_millis(500));
        queue.set(one, Timer::A, t0 + Duration::from_millis(500));
        assert_eq!(queue.next_deadline(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(queue.pop_due(t0), None);
        let now = t0 + Duration::from_secs(1);
        assert_eq!(queue.pop_due(now), Some((two, Timer::E)));
        assert_eq!(queue.pop_due(now), Some((one, Timer::A)));
        assert_eq!(queue.pop_due(now), None);
        queue.set(one, Timer::B, t0 + Duration::from_secs(2));
        assert_eq!(queue.len(), 1, "re-arming replaces");
        queue.cancel_all(one);
        assert_eq!(queue.next_deadline(), None);
    }
}
