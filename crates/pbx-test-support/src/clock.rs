//! A virtual clock for driving sans-IO state machines.
//!
//! Sans-IO crates never read the clock: their caller passes `now` in. Tests use a
//! [`VirtualClock`] instead of the wall clock, so a 32-second timer fires as soon as the test
//! asks for it: [`VirtualClock::advance`] moves time forward by a duration and
//! [`VirtualClock::jump_to`] moves it to a deadline reported by `poll_timeout()`.
//!
//! The clock never moves backwards: jumping to a deadline that has already passed leaves it
//! where it is (a deadline in the past means "fire now").

use std::time::{Duration, Instant};

/// Virtual time: a fixed [`Instant`] base plus an offset that only tests move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualClock {
    base: Instant,
    offset: Duration,
}

impl VirtualClock {
    /// A clock starting at `base` (any instant; tests usually take one once at start-up).
    pub fn new(base: Instant) -> Self {
        Self {
            base,
            offset: Duration::ZERO,
        }
    }

    /// A clock starting at an arbitrary fixed point. Reads the real clock exactly once, to get
    /// a valid `Instant` to count from; nothing afterwards depends on wall time.
    pub fn start() -> Self {
        Self::new(Instant::now())
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.base + self.offset
    }

    /// The instant the clock started at.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// How much virtual time has passed since the start.
    pub fn elapsed(&self) -> Duration {
        self.offset
    }

    /// Move time forward by `by` and return the new instant.
    pub fn advance(&mut self, by: Duration) -> Instant {
        self.offset += by;
        self.now()
    }

    /// Move time forward to `deadline` (never backwards) and return the new instant.
    pub fn jump_to(&mut self, deadline: Instant) -> Instant {
        if let Some(offset) = deadline.checked_duration_since(self.base)
            && offset > self.offset
        {
            self.offset = offset;
        }
        self.now()
    }

    /// Time since the start at which `instant` lies (zero for instants before the start).
    pub fn since_start(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_forward() {
        let mut clock = VirtualClock::start();
        let start = clock.now();
        let later = clock.advance(Duration::from_millis(500));
        assert_eq!(later - start, Duration::from_millis(500));
        assert_eq!(clock.elapsed(), Duration::from_millis(500));
    }

    #[test]
    fn jump_to_never_goes_back() {
        let mut clock = VirtualClock::start();
        let start = clock.now();
        clock.jump_to(start + Duration::from_secs(32));
        assert_eq!(clock.elapsed(), Duration::from_secs(32));
        clock.jump_to(start + Duration::from_secs(1));
        assert_eq!(clock.elapsed(), Duration::from_secs(32));
        assert_eq!(clock.since_start(clock.now()), Duration::from_secs(32));
    }
}
