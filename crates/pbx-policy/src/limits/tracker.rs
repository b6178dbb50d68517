//! The usage tracker.

use std::collections::HashMap;

use pbx_domain::{TenantId, UserId};
use serde::{Deserialize, Serialize};

use super::{Limits, Tariff};
use crate::baseline::{Baseline, BaselineConfig};
use crate::decision::{BlockReason, Verdict};
use crate::destination::DestinationClass;
use crate::event::{LimitKind, Scope, SecurityEvent};
use crate::window::SlidingWindow;

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

/// Tracker configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageConfig {
    /// Limits for every account without an override.
    pub account: Limits,
    /// Limits for every tenant without an override.
    pub tenant: Limits,
    /// Prices.
    pub tariff: Tariff,
    /// Baseline anomaly detection.
    pub baseline: BaselineConfig,
    /// Minutes or cost at this multiple of the daily limit is critical: running calls of the
    /// account (or tenant) are ended (default 1.5).
    pub critical_factor: f64,
    /// A single call longer than this is ended (an open line), in ms (default 8 hours).
    pub max_call_ms: Option<u64>,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            account: Limits::account_default(),
            tenant: Limits::tenant_default(),
            tariff: Tariff::default(),
            baseline: BaselineConfig::default(),
            critical_factor: 1.5,
            max_call_ms: Some(8 * 3_600_000),
        }
    }
}

/// Identifies a call known to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallHandle(pub u64);

/// What [`UsageTracker::check_running`] asks the caller to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreachEvent {
    /// Tell the operator and customer (also queued in [`UsageTracker::take_events`]).
    Alert {
        /// The event.
        event: SecurityEvent,
    },
    /// End these calls now (critical breach or an open line).
    EndCalls {
        /// The calls.
        calls: Vec<CallHandle>,
        /// Why.
        reason: BlockReason,
    },
}

#[derive(Debug, Clone)]
struct Usage {
    concurrent: u32,
    per_minute: SlidingWindow,
    per_hour: SlidingWindow,
    day: u64,
    minutes_ms: u64,
    cost: u64,
    /// Limits already reported today (bit per `LimitKind`), so alerts are not repeated.
    reported: u8,
}

impl Usage {
    fn new() -> Self {
        Self {
            concurrent: 0,
            per_minute: SlidingWindow::new(MINUTE_MS),
            per_hour: SlidingWindow::new(60 * MINUTE_MS),
            day: 0,
            minutes_ms: 0,
            cost: 0,
            reported: 0,
        }
    }

    fn roll(&mut self, now: u64) {
        let day = now / DAY_MS;
        if day != self.day {
            self.day = day;
            self.minutes_ms = 0;
            self.cost = 0;
            self.reported = 0;
        }
    }

    /// The first limit reached for a new call, with its value and maximum.
    fn setup_breach(&self, now: u64, limits: &Limits) -> Option<(LimitKind, u64, u64)> {
        let over = |value: u64, max: Option<u64>| max.filter(|m| value >= *m).map(|m| (value, m));
        let checks = [
            (
                LimitKind::Concurrent,
                u64::from(self.concurrent),
                limits.max_concurrent.map(u64::from),
            ),
            (
                LimitKind::CallsPerMinute,
                u64::from(self.per_minute.count(now)),
                limits.calls_per_minute.map(u64::from),
            ),
            (
                LimitKind::CallsPerHour,
                u64::from(self.per_hour.count(now)),
                limits.calls_per_hour.map(u64::from),
            ),
            (
                LimitKind::MinutesPerDay,
                self.minutes_ms / MINUTE_MS,
                limits.minutes_per_day,
            ),
            (LimitKind::CostPerDay, self.cost, limits.cost_per_day),
        ];
        checks
            .into_iter()
            .find_map(|(kind, value, max)| over(value, max).map(|(v, m)| (kind, v, m)))
    }
}

fn bit(kind: LimitKind) -> u8 {
    match kind {
        LimitKind::Concurrent => 1,
        LimitKind::CallsPerMinute => 2,
        LimitKind::CallsPerHour => 4,
        LimitKind::MinutesPerDay => 8,
        LimitKind::CostPerDay => 16,
    }
}

#[derive(Debug, Clone)]
struct RunningCall {
    account: UserId,
    tenant: TenantId,
    rate: u64,
    answered_at: Option<u64>,
    accounted_until: u64,
}

/// Counts outbound usage and decides on limits and baseline anomalies.
#[derive(Debug, Clone)]
pub struct UsageTracker {
    config: UsageConfig,
    account_overrides: HashMap<UserId, Limits>,
    tenant_overrides: HashMap<TenantId, Limits>,
    accounts: HashMap<UserId, Usage>,
    tenants: HashMap<TenantId, Usage>,
    baselines: HashMap<UserId, Baseline>,
    blocked: HashMap<UserId, TenantId>,
    calls: HashMap<CallHandle, RunningCall>,
    next_call: u64,
    events: Vec<SecurityEvent>,
}

impl UsageTracker {
    /// An empty tracker.
    pub fn new(config: UsageConfig) -> Self {
        Self {
            config,
            account_overrides: HashMap::new(),
            tenant_overrides: HashMap::new(),
            accounts: HashMap::new(),
            tenants: HashMap::new(),
            baselines: HashMap::new(),
            blocked: HashMap::new(),
            calls: HashMap::new(),
            next_call: 0,
            events: Vec::new(),
        }
    }

    /// Sets an account's own limits (replacing the defaults for it).
    pub fn set_account_limits(&mut self, account: UserId, limits: Limits) {
        self.account_overrides.insert(account, limits);
    }

    /// Sets a tenant's own limits.
    pub fn set_tenant_limits(&mut self, tenant: TenantId, limits: Limits) {
        self.tenant_overrides.insert(tenant, limits);
    }

    /// Drops an account's own limits: the defaults apply to it again. Returns whether it
    /// had any.
    pub fn remove_account_limits(&mut self, account: UserId) -> bool {
        self.account_overrides.remove(&account).is_some()
    }

    /// Drops a tenant's own limits. Returns whether it had any.
    pub fn remove_tenant_limits(&mut self, tenant: TenantId) -> bool {
        self.tenant_overrides.remove(&tenant).is_some()
    }

    /// The limits in force for an account (its own, or the defaults).
    pub fn account_limits(&self, account: &UserId) -> Limits {
        self.account_overrides
            .get(account)
            .cloned()
            .unwrap_or_else(|| self.config.account.clone())
    }

    /// The limits in force for a tenant (its own, or the defaults).
    pub fn tenant_limits(&self, tenant: &TenantId) -> Limits {
        self.tenant_overrides
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| self.config.tenant.clone())
    }

    /// Whether an account's outbound calls are blocked.
    pub fn is_blocked(&self, account: UserId) -> bool {
        self.blocked.contains_key(&account)
    }

    /// Decides on a new outbound call. Emergency calls are always allowed and never limited.
    pub fn check_setup(
        &mut self,
        account: UserId,
        tenant: TenantId,
        now: u64,
        class: &DestinationClass,
    ) -> Verdict {
        if *class == DestinationClass::Emergency {
            return Verdict::Allow;
        }
        if self.blocked.contains_key(&account) {
            return Verdict::Block {
                reason: BlockReason::AccountBlocked,
            };
        }
        let account_limits = self.account_limits(&account);
        let tenant_limits = self.tenant_limits(&tenant);
        let usage = self.accounts.entry(account).or_insert_with(Usage::new);
        usage.roll(now);
        if let Some((limit, value, max)) = usage.setup_breach(now, &account_limits) {
            self.events.push(SecurityEvent::ThresholdBreached {
                scope: Scope::Account { account },
                limit,
                value,
                max,
            });
            return Verdict::Block {
                reason: BlockReason::Limit { limit },
            };
        }
        let usage = self.tenants.entry(tenant).or_insert_with(Usage::new);
        usage.roll(now);
        if let Some((limit, value, max)) = usage.setup_breach(now, &tenant_limits) {
            self.events.push(SecurityEvent::ThresholdBreached {
                scope: Scope::Tenant { tenant },
                limit,
                value,
                max,
            });
            return Verdict::Block {
                reason: BlockReason::Limit { limit },
            };
        }
        let cfg = &self.config.baseline;
        let baseline = self.baselines.entry(account).or_default();
        if let Some(anomaly) = baseline.anomaly(now, 1, cfg) {
            self.block_for_anomaly(account, tenant, anomaly);
            return Verdict::Block {
                reason: BlockReason::AccountBlocked,
            };
        }
        Verdict::Allow
    }

    fn block_for_anomaly(
        &mut self,
        account: UserId,
        tenant: TenantId,
        a: crate::baseline::Anomaly,
    ) {
        self.events.push(SecurityEvent::BaselineAnomaly {
            account,
            hour_of_week: a.hour_of_week,
            minutes: a.minutes,
            calls: a.calls,
            baseline_minutes: a.baseline_minutes,
            baseline_calls: a.baseline_calls,
        });
        if self.blocked.insert(account, tenant).is_none() {
            self.events
                .push(SecurityEvent::AccountBlocked { account, tenant });
        }
    }

    /// An allowed outbound call was placed: counts the attempt and the concurrency.
    pub fn call_started(
        &mut self,
        account: UserId,
        tenant: TenantId,
        now: u64,
        class: &DestinationClass,
    ) -> CallHandle {
        self.next_call += 1;
        let handle = CallHandle(self.next_call);
        for usage in [
            self.accounts.entry(account).or_insert_with(Usage::new),
            self.tenants.entry(tenant).or_insert_with(Usage::new),
        ] {
            usage.roll(now);
            usage.concurrent = usage.concurrent.saturating_add(1);
            usage.per_minute.add(now, 1);
            usage.per_hour.add(now, 1);
        }
        self.baselines
            .entry(account)
            .or_default()
            .add_call(now, &self.config.baseline);
        let rate = self.config.tariff.per_minute(class);
        self.calls.insert(
            handle,
            RunningCall {
                account,
                tenant,
                rate,
                answered_at: None,
                accounted_until: now,
            },
        );
        handle
    }

    /// The call was answered: minutes and cost accrue from `now`.
    pub fn call_answered(&mut self, call: CallHandle, now: u64) {
        if let Some(c) = self.calls.get_mut(&call)
            && c.answered_at.is_none()
        {
            c.answered_at = Some(now);
            c.accounted_until = now;
        }
    }

    /// The call ended: accrues its last minutes and releases its concurrency slot.
    pub fn call_ended(&mut self, call: CallHandle, now: u64) {
        self.accrue(call, now);
        if let Some(c) = self.calls.remove(&call) {
            for usage in [
                self.accounts.get_mut(&c.account),
                self.tenants.get_mut(&c.tenant),
            ]
            .into_iter()
            .flatten()
            {
                usage.concurrent = usage.concurrent.saturating_sub(1);
            }
        }
    }

    fn accrue(&mut self, call: CallHandle, now: u64) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.answered_at.is_none() || now <= c.accounted_until {
            return;
        }
        let ms = now - c.accounted_until;
        c.accounted_until = now;
        let cost = ms.saturating_mul(c.rate) / MINUTE_MS;
        let (account, tenant) = (c.account, c.tenant);
        for usage in [
            self.accounts.get_mut(&account),
            self.tenants.get_mut(&tenant),
        ]
        .into_iter()
        .flatten()
        {
            usage.roll(now);
            usage.minutes_ms = usage.minutes_ms.saturating_add(ms);
            usage.cost = usage.cost.saturating_add(cost);
        }
        let minutes = ms as f32 / MINUTE_MS as f32;
        self.baselines
            .entry(account)
            .or_default()
            .add_minutes(now, minutes, &self.config.baseline);
    }
}

mod running;

pub use running::UsageState;
