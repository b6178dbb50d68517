//! Guard counters, rendered in the Prometheus text format for `/metrics`.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the guard. All monotonic.
#[derive(Debug, Default)]
pub struct GuardMetrics {
    dropped: AtomicU64,
    throttled: AtomicU64,
    auth_failures: AtomicU64,
    failures: AtomicU64,
    events_dropped: AtomicU64,
    webhook_delivered: AtomicU64,
    webhook_failed: AtomicU64,
    webhook_dropped: AtomicU64,
    /// Events by type (few distinct names, so a small locked vector).
    events: Mutex<Vec<(&'static str, u64)>>,
}

impl GuardMetrics {
    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Failure observations (wrong password, unknown user, unanswered challenge, scanner
    /// User-Agent when not banned at once) of sources that were not banned yet.
    pub fn failures_before_ban(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub(crate) fn count_event_dropped(&self) {
        self.events_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_webhook(&self, delivered: bool) {
        if delivered {
            self.webhook_delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.webhook_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_webhook_dropped(&self) {
        self.webhook_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_event(&self, kind: &'static str) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        match events.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => events.push((kind, 1)),
        }
    }

    /// Packets and connections dropped because their source was banned or flooding.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Security events of `kind` so far.
    pub fn events_of(&self, kind: &str) -> u64 {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// Webhook posts delivered (2xx) and failed attempts.
    pub fn webhook(&self) -> (u64, u64) {
        (
            self.webhook_delivered.load(Ordering::Relaxed),
            self.webhook_failed.load(Ordering::Relaxed),
        )
    }

    /// Prometheus text: counters plus the given gauges (active bans, tracked sources,
    /// throttled users, blocked accounts, running calls).
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        let counters = [
            (
                "cloudpbx_guard_dropped_total",
                "Datagrams and connections dropped before parsing (banned or flooding source)",
                self.dropped.load(Ordering::Relaxed),
            ),
            (
                "cloudpbx_guard_throttled_total",
                "REGISTERs of throttled user names challenged again",
                self.throttled.load(Ordering::Relaxed),
            ),
            (
                "cloudpbx_guard_auth_failures_total",
                "Failed authentications seen by the guard",
                self.auth_failures.load(Ordering::Relaxed),
            ),
            (
                "cloudpbx_guard_events_dropped_total",
                "Security events lost because the event queue was full",
                self.events_dropped.load(Ordering::Relaxed),
            ),
            (
                "cloudpbx_guard_webhook_delivered_total",
                "Security events delivered to the webhook",
                self.webhook_delivered.load(Ordering::Relaxed),
            ),
            (
                "cloudpbx_guard_webhook_failures_total",
                "Failed webhook delivery attempts",
                self.webhook_failed.load(Ordering::Relaxed),
            ),
            (
                "cloudpbx_guard_webhook_dropped_total",
                "Security events dropped from the full webhook queue or after the last attempt",
                self.webhook_dropped.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let name = "cloudpbx_security_events_total";
        let _ = writeln!(
            out,
            "# HELP {name} Security events by type\n# TYPE {name} counter"
        );
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        events.sort_unstable();
        for (kind, n) in events {
            let _ = writeln!(out, "{name}{{type=\"{kind}\"}} {n}");
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}
