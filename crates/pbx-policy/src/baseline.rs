//! Per-account rolling baseline of outbound usage by hour of week.
//!
//! Each account keeps 168 buckets (Monday 00:00 UTC = 0) of exponentially weighted outbound
//! minutes and calls: when an hour ends, its usage `x` is folded into its bucket as
//! `b += (x - b) / weeks`, so the bucket is a moving average over roughly the last `weeks`
//! weeks. Memory: 2 × 168 `f32` = 1344 bytes per account, plus the current hour.
//!
//! An anomaly is usage in the current hour above **both** `multiplier ×` its bucket **and**
//! an absolute floor (so a quiet account is not blocked for two calls, and a new account
//! with no history is judged by the floor alone).

use serde::{Deserialize, Serialize};

/// Hours in a week.
pub const HOURS_PER_WEEK: usize = 168;
const HOUR_MS: u64 = 3_600_000;

/// Baseline tunables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BaselineConfig {
    /// Averaging horizon in weeks (default 4).
    pub weeks: f32,
    /// Usage above this multiple of the baseline is anomalous (default 3).
    pub multiplier: f32,
    /// ... and only when also above this many minutes in the hour (default 60).
    pub floor_minutes: f32,
    /// ... or above this many calls in the hour (default 30).
    pub floor_calls: u32,
    /// A breach this many times over the threshold is critical: running calls are ended
    /// (default 2).
    pub critical_factor: f32,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            weeks: 4.0,
            multiplier: 3.0,
            floor_minutes: 60.0,
            floor_calls: 30,
            critical_factor: 2.0,
        }
    }
}

/// Hour of the week of `now` (Unix ms), 0 = Monday 00:00 UTC. 1970-01-01 was a Thursday.
pub fn hour_of_week(now: u64) -> u8 {
    ((now / HOUR_MS + 72) % HOURS_PER_WEEK as u64) as u8
}

/// How far usage is over its threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    /// Hour of week.
    pub hour_of_week: u8,
    /// Minutes this hour.
    pub minutes: f32,
    /// Calls this hour.
    pub calls: u32,
    /// Baseline minutes.
    pub baseline_minutes: f32,
    /// Baseline calls.
    pub baseline_calls: f32,
    /// Usage ÷ threshold on the worse of the two measures (> 1).
    pub severity: f32,
}

/// One account's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    minutes: Vec<f32>,
    calls: Vec<f32>,
    /// Absolute hour (`now / 1 h`) of the current counters.
    hour: u64,
    current_minutes: f32,
    current_calls: u32,
}

impl Default for Baseline {
    fn default() -> Self {
        Self::new()
    }
}

impl Baseline {
    /// An empty baseline.
    pub fn new() -> Self {
        Self {
            minutes: vec![0.0; HOURS_PER_WEEK],
            calls: vec![0.0; HOURS_PER_WEEK],
            hour: 0,
            current_minutes: 0.0,
            current_calls: 0,
        }
    }

    /// Folds finished hours into their buckets (hours without use fold as zero).
    pub fn roll(&mut self, now: u64, config: &BaselineConfig) {
        let hour = now / HOUR_MS;
        if hour <= self.hour {
            return;
        }
        let alpha = 1.0 / config.weeks.max(1.0);
        let steps = (hour - self.hour).min(HOURS_PER_WEEK as u64);
        let first = hour - steps;
        for h in first..hour {
            let (m, c) = if h == self.hour {
                (self.current_minutes, self.current_calls as f32)
            } else {
                (0.0, 0.0)
            };
            let slot = ((h + 72) % HOURS_PER_WEEK as u64) as usize;
            self.minutes[slot] += (m - self.minutes[slot]) * alpha;
            self.calls[slot] += (c - self.calls[slot]) * alpha;
        }
        self.hour = hour;
        self.current_minutes = 0.0;
        self.current_calls = 0;
    }

    /// Adds outbound minutes used at `now`.
    pub fn add_minutes(&mut self, now: u64, minutes: f32, config: &BaselineConfig) {
        self.roll(now, config);
        self.current_minutes += minutes.max(0.0);
    }

    /// Adds one outbound call at `now`.
    pub fn add_call(&mut self, now: u64, config: &BaselineConfig) {
        self.roll(now, config);
        self.current_calls = self.current_calls.saturating_add(1);
    }

    /// Forgets the current hour's usage (after an admin lifted a block).
    pub fn forgive_current_hour(&mut self) {
        self.current_minutes = 0.0;
        self.current_calls = 0;
    }

    /// The baseline (minutes, calls) for an hour of week.
    pub fn expected(&self, hour_of_week: u8) -> (f32, f32) {
        let slot = usize::from(hour_of_week) % HOURS_PER_WEEK;
        (self.minutes[slot], self.calls[slot])
    }

    /// Checks the current hour, with `extra_calls` not yet counted (a call being set up).
    pub fn anomaly(
        &mut self,
        now: u64,
        extra_calls: u32,
        config: &BaselineConfig,
    ) -> Option<Anomaly> {
        self.roll(now, config);
        let how = hour_of_week(now);
        let (base_m, base_c) = self.expected(how);
        let calls = self.current_calls.saturating_add(extra_calls);
        let limit_m = (config.multiplier * base_m)
            .max(config.floor_minutes)
            .max(f32::EPSILON);
        let limit_c = (config.multiplier * base_c)
            .max(config.floor_calls as f32)
            .max(f32::EPSILON);
        let severity = (self.current_minutes / limit_m).max(calls as f32 / limit_c);
        (severity > 1.0).then_some(Anomaly {
            hour_of_week: how,
            minutes: self.current_minutes,
            calls,
            baseline_minutes: base_m,
            baseline_calls: base_c,
            severity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_thursday() {
        assert_eq!(hour_of_week(0), 72);
        // 1970-01-05 00:00 UTC was a Monday.
        assert_eq!(hour_of_week(4 * 24 * HOUR_MS), 0);
    }

    #[test]
    fn learns_and_flags() {
        let cfg = BaselineConfig {
            floor_minutes: 10.0,
            floor_calls: 5,
            ..Default::default()
        };
        let mut b = Baseline::new();
        let week = 168 * HOUR_MS;
        // Eight weeks of 20 minutes and 4 calls in the same hour each week.
        for w in 0..8u64 {
            let t = w * week + 10 * HOUR_MS;
            b.add_minutes(t, 20.0, &cfg);
            for _ in 0..4 {
                b.add_call(t, &cfg);
            }
        }
        b.roll(8 * week, &cfg);
        let (m, c) = b.expected(hour_of_week(10 * HOUR_MS));
        assert!(m > 15.0 && m <= 20.0, "{m}");
        assert!(c > 3.0 && c <= 4.0, "{c}");
        let t = 8 * week + 10 * HOUR_MS;
        b.add_minutes(t, 50.0, &cfg);
        assert!(b.anomaly(t, 0, &cfg).is_none(), "50 < 3 x ~18.6");
        b.add_minutes(t, 20.0, &cfg);
        assert!(
            b.anomaly(t, 0, &cfg).is_some(),
            "70 > 3 x ~18.6 and > floor"
        );
    }
}
