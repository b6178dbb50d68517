//! Per-account and per-tenant outbound usage limits, with the account baseline.
//!
//! Drive it like this, always passing `now` (Unix ms):
//! 1. [`UsageTracker::check_setup`] before routing an outbound call; on `Allow`,
//! 2. [`UsageTracker::call_started`] when the INVITE goes out (counts the attempt and the
//!    concurrency), [`UsageTracker::call_answered`] on 200 OK (minutes and cost accrue from
//!    here), [`UsageTracker::call_ended`] on BYE/failure;
//! 3. [`UsageTracker::check_running`] every few seconds: it accrues the running calls'
//!    minutes and cost, so a call left open for hours is caught while it runs, and returns
//!    the calls to end on a critical breach;
//! 4. [`UsageTracker::take_events`] to drain the audit/alert events.
//!
//! Days are UTC days. Accounts and tenants are keys of authenticated parties (not
//! attacker-controlled), so the maps are plain; idle entries are dropped by
//! [`UsageTracker::forget_idle`].

mod tariff;
mod tracker;

pub use tariff::{Limits, Tariff};
pub use tracker::{BreachEvent, CallHandle, UsageConfig, UsageState, UsageTracker};
