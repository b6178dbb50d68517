//! Fixed-size time structures: a sliding-window counter and a token bucket.
//!
//! Both are sans-IO (the caller passes `now` in Unix milliseconds) and take constant memory,
//! whatever the traffic.

use serde::{Deserialize, Serialize};

/// Number of slots in a [`SlidingWindow`]; the window is resolved to 1/`SLOTS` of its length.
pub const SLOTS: usize = 10;

/// Counts events in the last `window_ms` milliseconds, approximated by [`SLOTS`] slots.
///
/// Memory is fixed (`SLOTS` counters and one slot index); counts saturate instead of
/// overflowing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlidingWindow {
    /// Length of one slot in milliseconds (at least 1).
    slot_ms: u64,
    /// Absolute index (`now / slot_ms`) of the newest slot written.
    head: u64,
    /// Counters; slot `i` holds absolute slot `k` where `k % SLOTS == i`.
    slots: [u32; SLOTS],
}

impl SlidingWindow {
    /// A window of `window_ms` milliseconds (rounded up to a multiple of [`SLOTS`]).
    pub fn new(window_ms: u64) -> Self {
        Self {
            slot_ms: window_ms.div_ceil(SLOTS as u64).max(1),
            head: 0,
            slots: [0; SLOTS],
        }
    }

    fn advance(&mut self, now: u64) {
        let index = now / self.slot_ms;
        if index <= self.head {
            return;
        }
        let gap = index - self.head;
        if gap >= SLOTS as u64 {
            self.slots = [0; SLOTS];
        } else {
            for k in (self.head + 1)..=index {
                self.slots[(k % SLOTS as u64) as usize] = 0;
            }
        }
        self.head = index;
    }

    /// Adds `amount` events at `now` and returns the count in the window.
    pub fn add(&mut self, now: u64, amount: u32) -> u32 {
        self.advance(now);
        let slot = &mut self.slots[(self.head % SLOTS as u64) as usize];
        *slot = slot.saturating_add(amount);
        self.count(now)
    }

    /// Events in the window ending at `now` (events older than the window are not counted).
    /// A `now` earlier than the newest event counts as the newest event's time.
    pub fn count(&self, now: u64) -> u32 {
        let index = (now / self.slot_ms).max(self.head);
        let mut total: u32 = 0;
        for back in 0..SLOTS as u64 {
            let Some(k) = index.checked_sub(back) else {
                break;
            };
            if k > self.head || self.head - k >= SLOTS as u64 {
                continue;
            }
            total = total.saturating_add(self.slots[(k % SLOTS as u64) as usize]);
        }
        total
    }

    /// Forgets every event.
    pub fn clear(&mut self) {
        self.slots = [0; SLOTS];
    }
}

/// A token bucket in sans-IO form: `burst` tokens, refilled at `per_second` tokens a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenBucket {
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens at time `now`.
    pub fn full(burst: u32, now: u64) -> Self {
        Self {
            tokens: f64::from(burst),
            last_ms: now,
        }
    }

    /// Takes one token; returns `false` when the bucket is empty (the caller is flooding).
    pub fn take(&mut self, now: u64, burst: u32, per_second: u32) -> bool {
        let elapsed = now.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now);
        let refill = elapsed as f64 * f64::from(per_second) / 1000.0;
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_and_forgets() {
        let mut w = SlidingWindow::new(600_000);
        for i in 0..5 {
            w.add(i * 60_000, 1);
        }
        assert_eq!(w.count(240_000), 5);
        // The first event (t=0) leaves the window after 10 minutes.
        assert_eq!(w.count(600_000), 4);
        assert_eq!(w.count(10_000_000), 0);
        assert_eq!(w.add(10_000_000, 3), 3);
    }

    #[test]
    fn window_ignores_time_going_backwards() {
        let mut w = SlidingWindow::new(60_000);
        w.add(120_000, 1);
        assert_eq!(
            w.add(100_000, 1),
            2,
            "late events land in the head slot, not a panic"
        );
    }

    #[test]
    fn bucket_refills() {
        let mut b = TokenBucket::full(3, 0);
        assert!(b.take(0, 3, 1));
        assert!(b.take(0, 3, 1));
        assert!(b.take(0, 3, 1));
        assert!(!b.take(0, 3, 1));
        assert!(b.take(1000, 3, 1));
        assert!(!b.take(1000, 3, 1));
    }
}
