//! Security events: what the server stores, lists, exports as metrics and posts to webhooks.

use pbx_domain::{TenantId, UserId};
use serde::{Deserialize, Serialize};

use crate::destination::DestinationClass;
use crate::source::SourceKey;

/// Why a source was banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BanReason {
    /// Too many failed authentications, unknown users or unanswered challenges.
    AuthFailures,
    /// A known scanner User-Agent.
    Scanner,
    /// Request rate above the flood limit.
    Flood,
    /// Banned by an operator.
    Manual,
}

/// Who lifted a ban or a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LiftedBy {
    /// An operator or customer admin through the management API.
    Admin,
    /// The ban ran out.
    Expired,
}

/// Which usage limit a call crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LimitKind {
    /// Concurrent outbound calls.
    Concurrent,
    /// Call attempts in the last minute.
    CallsPerMinute,
    /// Call attempts in the last hour.
    CallsPerHour,
    /// Outbound minutes today (UTC day).
    MinutesPerDay,
    /// Outbound cost today in milli-cents (UTC day).
    CostPerDay,
}

/// Whether a limit applies to one account or a whole tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Scope {
    /// One user account.
    Account {
        /// The account.
        account: UserId,
    },
    /// A whole tenant.
    Tenant {
        /// The tenant.
        tenant: TenantId,
    },
}

/// A security-relevant event. Every ban, unban, block and unblock produces one (audit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecurityEvent {
    /// A source was banned until `until` (Unix ms).
    SourceBanned {
        /// The source.
        source: SourceKey,
        /// End of the ban, Unix ms.
        until: u64,
        /// Escalation level (0 = first ban).
        level: u32,
        /// Why.
        reason: BanReason,
    },
    /// A ban was lifted.
    SourceUnbanned {
        /// The source.
        source: SourceKey,
        /// Who lifted it.
        by: LiftedBy,
    },
    /// A user name is throttled (its authentications are refused) until `until`.
    UserThrottled {
        /// The auth user name (truncated to 128 bytes).
        user: String,
        /// End of the throttle, Unix ms.
        until: u64,
    },
    /// A tenant sees many failures from many sources: a distributed attack.
    TenantUnderAttack {
        /// The tenant.
        tenant: TenantId,
        /// Failures in the window.
        failures: u32,
    },
    /// A request from a source outside the tenant's IP whitelist was refused.
    WhitelistRejected {
        /// The tenant.
        tenant: TenantId,
        /// The source.
        source: SourceKey,
    },
    /// An outbound call to a blocked destination was refused.
    DestinationBlocked {
        /// The tenant.
        tenant: Option<TenantId>,
        /// The calling account.
        account: Option<UserId>,
        /// The number in E.164 where known, else as dialled.
        number: String,
        /// Its class.
        class: DestinationClass,
        /// The rule that blocked it.
        reason: String,
    },
    /// A usage limit was crossed.
    ThresholdBreached {
        /// Account or tenant.
        scope: Scope,
        /// The limit.
        limit: LimitKind,
        /// The value reached.
        value: u64,
        /// The configured maximum.
        max: u64,
    },
    /// An account's usage this hour far exceeds its own baseline; its outbound calls are
    /// blocked until lifted.
    BaselineAnomaly {
        /// The account.
        account: UserId,
        /// Hour of the week (0 = Monday 00:00 UTC).
        hour_of_week: u8,
        /// Outbound minutes this hour.
        minutes: f32,
        /// Outbound calls this hour.
        calls: u32,
        /// Baseline minutes for this hour of week.
        baseline_minutes: f32,
        /// Baseline calls for this hour of week.
        baseline_calls: f32,
    },
    /// An account's outbound calls were blocked.
    AccountBlocked {
        /// The account.
        account: UserId,
        /// The tenant.
        tenant: TenantId,
    },
    /// An account's outbound block was lifted.
    AccountUnblocked {
        /// The account.
        account: UserId,
        /// Who lifted it.
        by: LiftedBy,
    },
}
