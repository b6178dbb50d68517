//! What the API needs from the live fraud guard ([`SecurityControl`], implemented by the
//! server), and the views of its state.
//!
//! Bans live in the guard's memory (persisted by the server); the API lists and lifts them
//! through this trait. Security events are read from the store (`security_events`).
//! Usage-limit overrides are stored by the API (`tenant_usage_limits`, `user_usage_limits`)
//! and installed in the live guard through [`SecurityControl::set_limits`].

use std::fmt::Debug;
use std::net::IpAddr;

use pbx_domain::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An active ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BanView {
    /// The banned source: an IPv4 address or an IPv6 prefix (`2001:db8:1:2::/64`).
    pub source: String,
    /// Start (Unix ms).
    pub since_ms: u64,
    /// End (Unix ms).
    pub until_ms: u64,
    /// Escalation level (0 = first ban; each level ×4 longer).
    pub level: u32,
    /// Why: `auth_failures`, `scanner`, `flood`, `manual`.
    pub reason: String,
}

/// A throttled SIP user name (its authentications are refused for now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ThrottleView {
    /// The auth user name.
    pub user_name: String,
    /// End (Unix ms).
    pub until_ms: u64,
    /// The tenant of that user name, when it is a real account.
    pub tenant_id: Option<Uuid>,
}

/// An account whose outbound calls are blocked (baseline anomaly or by hand).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BlockView {
    /// The user.
    pub user_id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
}

/// Outbound usage limits as set for one tenant or one account (`PUT .../security/limits`).
/// A field left out or `null` keeps the platform default (`[security.tenant_limits]` /
/// `[security.account_limits]`); `0` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageLimits {
    /// Outbound calls in progress at once (0 to 1,000,000).
    #[schema(example = 2)]
    pub max_concurrent_calls: Option<u32>,
    /// Outbound call attempts in any 60 s (0 to 1,000,000).
    #[schema(example = 5)]
    pub calls_per_minute: Option<u32>,
    /// Outbound call attempts in any hour (0 to 1,000,000).
    pub calls_per_hour: Option<u32>,
    /// Outbound minutes per UTC day (0 to 1,000,000,000).
    pub minutes_per_day: Option<u64>,
    /// Outbound cost per UTC day in milli-cents (1 cent = 1,000) at the default tariff
    /// (0 to 10^15).
    pub cost_per_day_millicents: Option<u64>,
}

/// The limits in force for a tenant or an account: `null` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct EffectiveLimits {
    /// Outbound calls in progress at once.
    pub max_concurrent_calls: Option<u32>,
    /// Outbound call attempts in any 60 s.
    pub calls_per_minute: Option<u32>,
    /// Outbound call attempts in any hour.
    pub calls_per_hour: Option<u32>,
    /// Outbound minutes per UTC day.
    pub minutes_per_day: Option<u64>,
    /// Outbound cost per UTC day in milli-cents.
    pub cost_per_day_millicents: Option<u64>,
}

/// The live guard, as the API sees it.
pub trait SecurityControl: Send + Sync + Debug + 'static {
    /// Active bans, longest remaining first.
    fn bans(&self) -> Vec<BanView>;
    /// Bans the source of `address` by hand.
    fn ban(&self, address: IpAddr) -> Option<BanView>;
    /// Lifts the ban of `source` (an address, or an IPv6 prefix as listed). `None` when the
    /// text is not a source; `Some(false)` when it was not banned.
    fn unban(&self, source: &str) -> Option<bool>;
    /// Throttled user names.
    fn throttles(&self) -> Vec<ThrottleView>;
    /// Lifts a user-name throttle; `false` when it was not throttled.
    fn unthrottle(&self, user_name: &str) -> bool;
    /// Accounts blocked for outbound calls.
    fn blocks(&self) -> Vec<BlockView>;
    /// Lifts an account's outbound block; `false` when it was not blocked.
    fn lift_block(&self, tenant: TenantId, user: UserId) -> bool;
    /// Blocks an account's outbound calls by hand, as a threshold breach does (an
    /// `account_blocked` event; its running outbound calls are ended). `None` when the
    /// guard does not run in this process; `Some(false)` when it was blocked already.
    fn block(&self, tenant: TenantId, user: UserId) -> Option<bool>;
    /// Installs a tenant's own limits (`user: None`) or an account's in the live guard,
    /// after the API stored them; `limits: None` removes them (the defaults apply again).
    fn set_limits(&self, tenant: TenantId, user: Option<UserId>, limits: Option<UsageLimits>);
    /// The limits in force for a tenant (`user: None`) or an account; `None` when the guard
    /// does not run in this process.
    fn effective_limits(&self, tenant: TenantId, user: Option<UserId>) -> Option<EffectiveLimits>;
    /// The platform defaults for tenants (`account: false`) or accounts, as configured;
    /// `None` when the guard does not run in this process.
    fn default_limits(&self, account: bool) -> Option<EffectiveLimits>;
    /// Prometheus text of the guard's counters and gauges.
    fn metrics_text(&self) -> String;
    /// Installs a tenant's outbound destination exceptions in the live guard (after the API
    /// stored them): `allow` lifts default blocks for these E.164 prefixes, `block` adds
    /// blocks.
    fn set_destination_exceptions(&self, tenant: TenantId, allow: Vec<String>, block: Vec<String>);
}

/// The guard when no SIP side runs in this process: nothing is banned.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecurity;

impl SecurityControl for NoSecurity {
    fn bans(&self) -> Vec<BanView> {
        Vec::new()
    }
    fn ban(&self, _address: IpAddr) -> Option<BanView> {
        None
    }
    fn unban(&self, _source: &str) -> Option<bool> {
        Some(false)
    }
    fn throttles(&self) -> Vec<ThrottleView> {
        Vec::new()
    }
    fn unthrottle(&self, _user_name: &str) -> bool {
        false
    }
    fn blocks(&self) -> Vec<BlockView> {
        Vec::new()
    }
    fn lift_block(&self, _tenant: TenantId, _user: UserId) -> bool {
        false
    }
    fn block(&self, _tenant: TenantId, _user: UserId) -> Option<bool> {
        None
    }
    fn set_limits(&self, _tenant: TenantId, _user: Option<UserId>, _limits: Option<UsageLimits>) {}
    fn effective_limits(
        &self,
        _tenant: TenantId,
        _user: Option<UserId>,
    ) -> Option<EffectiveLimits> {
        None
    }
    fn default_limits(&self, _account: bool) -> Option<EffectiveLimits> {
        None
    }
    fn metrics_text(&self) -> String {
        String::new()
    }
    fn set_destination_exceptions(
        &self,
        _tenant: TenantId,
        _allow: Vec<String>,
        _block: Vec<String>,
    ) {
    }
}
