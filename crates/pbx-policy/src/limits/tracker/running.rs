//! Checks on calls in progress, admin lift/block, event drain.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::baseline::Baseline;

use pbx_domain::{TenantId, UserId};

use super::{BreachEvent, CallHandle, MINUTE_MS, UsageTracker, bit};
use crate::decision::BlockReason;
use crate::event::{LiftedBy, LimitKind, Scope, SecurityEvent};

impl UsageTracker {
    /// Accrues running calls up to `now` and checks minutes/day, cost/day, baselines and
    /// open lines. A breach is reported once per day per limit; a critical breach (over
    /// `critical_factor ×` the limit, a critical baseline anomaly, or a call longer than
    /// `max_call_ms`) returns [`BreachEvent::EndCalls`] every time until the calls end.
    pub fn check_running(&mut self, now: u64) -> Vec<BreachEvent> {
        let mut handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        handles.sort();
        for h in &handles {
            self.accrue(*h, now);
        }
        let mut out = Vec::new();
        // Calls by account and by tenant (sorted for deterministic output).
        let mut by_account: BTreeMap<UserId, (TenantId, Vec<CallHandle>)> = BTreeMap::new();
        let mut by_tenant: BTreeMap<TenantId, Vec<CallHandle>> = BTreeMap::new();
        let mut open_lines = Vec::new();
        for h in &handles {
            let Some(c) = self.calls.get(h) else { continue };
            by_account
                .entry(c.account)
                .or_insert_with(|| (c.tenant, Vec::new()))
                .1
                .push(*h);
            by_tenant.entry(c.tenant).or_default().push(*h);
            if let (Some(max), Some(answered)) = (self.config.max_call_ms, c.answered_at)
                && now.saturating_sub(answered) > max
            {
                open_lines.push(*h);
            }
        }
        if !open_lines.is_empty() {
            out.push(BreachEvent::EndCalls {
                calls: open_lines,
                reason: BlockReason::Limit {
                    limit: LimitKind::MinutesPerDay,
                },
            });
        }
        for (account, (tenant, calls)) in by_account {
            let limits = self.account_limits(&account);
            self.check_daily(Scope::Account { account }, &limits, calls.clone(), &mut out);
            let cfg = self.config.baseline.clone();
            let anomaly = self
                .baselines
                .get_mut(&account)
                .and_then(|b| b.anomaly(now, 0, &cfg));
            if let Some(a) = anomaly {
                let newly = !self.blocked.contains_key(&account);
                if newly {
                    self.block_for_anomaly(account, tenant, a);
                    let event = SecurityEvent::AccountBlocked { account, tenant };
                    out.push(BreachEvent::Alert { event });
                }
                if a.severity >= cfg.critical_factor {
                    out.push(BreachEvent::EndCalls {
                        calls,
                        reason: BlockReason::AccountBlocked,
                    });
                }
            }
        }
        for (tenant, calls) in by_tenant {
            let limits = self.tenant_limits(&tenant);
            self.check_daily(Scope::Tenant { tenant }, &limits, calls, &mut out);
        }
        out
    }

    fn check_daily(
        &mut self,
        scope: Scope,
        limits: &crate::limits::Limits,
        calls: Vec<CallHandle>,
        out: &mut Vec<BreachEvent>,
    ) {
        let usage = match scope {
            Scope::Account { account } => self.accounts.get_mut(&account),
            Scope::Tenant { tenant } => self.tenants.get_mut(&tenant),
        };
        let Some(usage) = usage else { return };
        let checks = [
            (
                LimitKind::MinutesPerDay,
                usage.minutes_ms / MINUTE_MS,
                limits.minutes_per_day,
            ),
            (LimitKind::CostPerDay, usage.cost, limits.cost_per_day),
        ];
        let mut critical = None;
        for (limit, value, max) in checks {
            let Some(max) = max else { continue };
            if value < max {
                continue;
            }
            if usage.reported & bit(limit) == 0 {
                usage.reported |= bit(limit);
                let event = SecurityEvent::ThresholdBreached {
                    scope,
                    limit,
                    value,
                    max,
                };
                self.events.push(event.clone());
                out.push(BreachEvent::Alert { event });
            }
            if value as f64 >= max as f64 * self.config.critical_factor {
                critical.get_or_insert(limit);
            }
        }
        if let Some(limit) = critical {
            out.push(BreachEvent::EndCalls {
                calls,
                reason: BlockReason::Limit { limit },
            });
        }
    }

    /// An operator or customer admin lifts an account's outbound block. The current hour's
    /// usage is forgiven so the block does not come straight back. Returns the audit event,
    /// or `None` when the account was not blocked.
    pub fn lift(&mut self, account: UserId, _now: u64) -> Option<SecurityEvent> {
        self.blocked.remove(&account)?;
        if let Some(b) = self.baselines.get_mut(&account) {
            b.forgive_current_hour();
        }
        let event = SecurityEvent::AccountUnblocked {
            account,
            by: LiftedBy::Admin,
        };
        self.events.push(event.clone());
        Some(event)
    }

    /// An admin blocks an account's outbound calls by hand.
    pub fn block(&mut self, account: UserId, tenant: TenantId) -> Option<SecurityEvent> {
        if self.blocked.insert(account, tenant).is_some() {
            return None;
        }
        let event = SecurityEvent::AccountBlocked { account, tenant };
        self.events.push(event.clone());
        Some(event)
    }

    /// Blocked accounts, with their tenant.
    pub fn blocked_accounts(&self) -> Vec<(UserId, TenantId)> {
        let mut list: Vec<_> = self.blocked.iter().map(|(a, t)| (*a, *t)).collect();
        list.sort();
        list
    }

    /// The calls of `account` in progress (to end them when it is blocked by hand).
    pub fn account_calls(&self, account: UserId) -> Vec<CallHandle> {
        let mut calls: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, call)| call.account == account)
            .map(|(handle, _)| *handle)
            .collect();
        calls.sort();
        calls
    }

    /// Calls in progress.
    pub fn running_calls(&self) -> usize {
        self.calls.len()
    }

    /// Drains queued events (threshold breaches, anomalies, blocks, unblocks).
    pub fn take_events(&mut self) -> Vec<SecurityEvent> {
        std::mem::take(&mut self.events)
    }

    /// Drops counters of accounts and tenants with no running call whose day is over.
    /// Baselines are kept (they are the history).
    pub fn forget_idle(&mut self, now: u64) {
        let day = now / super::DAY_MS;
        self.accounts
            .retain(|_, u| u.concurrent > 0 || u.day == day);
        self.tenants.retain(|_, u| u.concurrent > 0 || u.day == day);
    }
}

/// What the tracker persists across restarts: the baselines (weeks of history) and the
/// account blocks (a restart must not lift a block). Day counters are not kept: after a
/// restart the day's limits start from zero (the CDRs are the record of cost).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageState {
    /// Baselines per account.
    pub baselines: Vec<(UserId, Baseline)>,
    /// Blocked accounts with their tenant.
    pub blocked: Vec<(UserId, TenantId)>,
}

impl UsageTracker {
    /// A snapshot to persist.
    pub fn export(&self) -> UsageState {
        let mut baselines: Vec<_> = self
            .baselines
            .iter()
            .map(|(a, b)| (*a, b.clone()))
            .collect();
        baselines.sort_by_key(|(a, _)| *a);
        UsageState {
            baselines,
            blocked: self.blocked_accounts(),
        }
    }

    /// Loads a snapshot (replacing baselines and blocks; running calls are untouched).
    pub fn import(&mut self, state: UsageState) {
        self.baselines = state.baselines.into_iter().collect();
        self.blocked = state.blocked.into_iter().collect();
    }
}
