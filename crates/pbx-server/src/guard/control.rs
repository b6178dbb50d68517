//! The management API's handle on the guard ([`pbx_api::ops::security::SecurityControl`]).

use std::net::IpAddr;
use std::sync::Arc;

use pbx_api::ops::security::{
    BanView, BlockView, EffectiveLimits, SecurityControl, ThrottleView, UsageLimits,
};
use pbx_domain::{TenantId, UserId};
use pbx_policy::Limits;
use pbx_policy::guard::BanInfo;
use pbx_store::Directory;

use super::{LimitsSection, SecurityGuard};

/// The guard as the API sees it.
#[derive(Debug)]
pub struct GuardControl {
    guard: Arc<SecurityGuard>,
    directory: Arc<Directory>,
}

impl GuardControl {
    /// The API view of `guard`; `directory` maps throttled user names to their tenant.
    pub fn new(guard: Arc<SecurityGuard>, directory: Arc<Directory>) -> Self {
        Self { guard, directory }
    }
}

fn ban_view(ban: BanInfo) -> BanView {
    let reason = serde_json::to_value(ban.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    BanView {
        source: ban.source.to_string(),
        since_ms: ban.since,
        until_ms: ban.until,
        level: ban.level,
        reason,
    }
}

/// An override over `defaults`, with the configuration's rules (a field left out keeps the
/// default, `0` is unlimited).
pub fn resolve_limits(limits: &UsageLimits, defaults: Limits) -> Limits {
    LimitsSection {
        max_concurrent_calls: limits.max_concurrent_calls,
        calls_per_minute: limits.calls_per_minute,
        calls_per_hour: limits.calls_per_hour,
        minutes_per_day: limits.minutes_per_day,
        cost_per_day_millicents: limits.cost_per_day_millicents,
    }
    .resolve(defaults)
}

fn effective(limits: Limits) -> EffectiveLimits {
    EffectiveLimits {
        max_concurrent_calls: limits.max_concurrent,
        calls_per_minute: limits.calls_per_minute,
        calls_per_hour: limits.calls_per_hour,
        minutes_per_day: limits.minutes_per_day,
        cost_per_day_millicents: limits.cost_per_day,
    }
}

impl SecurityControl for GuardControl {
    fn bans(&self) -> Vec<BanView> {
        self.guard.bans().into_iter().map(ban_view).collect()
    }

    fn ban(&self, address: IpAddr) -> Option<BanView> {
        self.guard.ban(address).map(ban_view)
    }

    fn unban(&self, source: &str) -> Option<bool> {
        let text = source.trim();
        let address = match text.split_once('/') {
            Some((addr, len)) => {
                len.parse::<u8>().ok()?;
                addr.parse::<IpAddr>().ok()?
            }
            None => text.parse::<IpAddr>().ok()?,
        };
        Some(self.guard.unban(self.guard.source_key(address)))
    }

    fn throttles(&self) -> Vec<ThrottleView> {
        let snapshot = self.directory.snapshot();
        self.guard
            .throttled_users()
            .into_iter()
            .map(|(user_name, until_ms)| ThrottleView {
                tenant_id: snapshot
                    .credential(&user_name)
                    .map(|c| c.tenant_id.as_uuid()),
                user_name,
                until_ms,
            })
            .collect()
    }

    fn unthrottle(&self, user_name: &str) -> bool {
        self.guard.unthrottle_user(user_name)
    }

    fn blocks(&self) -> Vec<BlockView> {
        self.guard
            .blocked_accounts()
            .into_iter()
            .map(|(user, tenant)| BlockView {
                user_id: user.as_uuid(),
                tenant_id: tenant.as_uuid(),
            })
            .collect()
    }

    fn lift_block(&self, tenant: TenantId, user: UserId) -> bool {
        let ours = self
            .guard
            .blocked_accounts()
            .iter()
            .any(|(u, t)| *u == user && *t == tenant);
        ours && self.guard.lift_block(user)
    }

    fn block(&self, tenant: TenantId, user: UserId) -> Option<bool> {
        Some(self.guard.block_account(tenant, user))
    }

    fn set_limits(&self, tenant: TenantId, user: Option<UserId>, limits: Option<UsageLimits>) {
        let settings = self.guard.settings();
        match user {
            Some(user) => {
                let defaults = settings.account_limits.clone();
                let limits = limits.map(|limits| resolve_limits(&limits, defaults));
                self.guard.set_account_limits(user, limits);
            }
            None => {
                let defaults = settings.tenant_limits.clone();
                let limits = limits.map(|limits| resolve_limits(&limits, defaults));
                self.guard.set_tenant_limits(tenant, limits);
            }
        }
    }

    fn effective_limits(&self, tenant: TenantId, user: Option<UserId>) -> Option<EffectiveLimits> {
        Some(effective(match user {
            Some(user) => self.guard.account_limits(user),
            None => self.guard.tenant_limits(tenant),
        }))
    }

    fn default_limits(&self, account: bool) -> Option<EffectiveLimits> {
        let settings = self.guard.settings();
        Some(effective(if account {
            settings.account_limits.clone()
        } else {
            settings.tenant_limits.clone()
        }))
    }

    fn metrics_text(&self) -> String {
        let stats = self.guard.stats();
        let transport = self.guard.transport_stats().unwrap_or_default();
        let received = transport.messages_received;
        let gauges = [
            (
                "cloudpbx_guard_active_bans",
                "Sources banned now",
                self.guard.bans().len() as u64,
            ),
            (
                "cloudpbx_guard_tracked_sources",
                "Sources with live counters",
                stats.sources as u64,
            ),
            (
                "cloudpbx_guard_throttled_users",
                "User names throttled now",
                self.guard.throttled_users().len() as u64,
            ),
            (
                "cloudpbx_guard_blocked_accounts",
                "Accounts blocked for outbound calls",
                self.guard.blocked_accounts().len() as u64,
            ),
            (
                "cloudpbx_guard_kernel_drop_entries",
                "Banned sources dropped in the kernel by the SIP UDP socket filter",
                self.guard.kernel_drop_entries() as u64,
            ),
            (
                "cloudpbx_sip_udp_kernel_drops",
                "Datagrams the kernel dropped on the SIP UDP listeners (drop set and buffer overflow)",
                self.guard.kernel_drops().unwrap_or(0),
            ),
            (
                "cloudpbx_sip_udp_messages_received",
                "SIP messages received over UDP",
                received[0],
            ),
            (
                "cloudpbx_sip_tcp_messages_received",
                "SIP messages received over TCP",
                received[1],
            ),
            (
                "cloudpbx_sip_tls_messages_received",
                "SIP messages received over TLS",
                received[2],
            ),
            (
                "cloudpbx_sip_udp_send_batches",
                "UDP send batches (one sendmmsg each) of several SIP messages",
                transport.batches_sent,
            ),
            (
                "cloudpbx_sip_udp_datagrams_batched",
                "SIP messages sent over UDP in batches",
                transport.datagrams_batched,
            ),
            (
                "cloudpbx_guard_running_calls",
                "Outbound calls tracked for limits",
                self.guard.running_calls() as u64,
            ),
        ];
        self.guard.metrics().render(&gauges)
    }

    fn set_destination_exceptions(&self, tenant: TenantId, allow: Vec<String>, block: Vec<String>) {
        self.guard
            .set_tenant_exceptions(tenant, pbx_policy::TenantExceptions { allow, block });
    }
}
