//! Per-tenant and per-account (user) overrides of the fraud guard's outbound usage limits
//! (issue 5, "Thresholds and baselines").
//!
//! The configured limits (`[security.tenant_limits]`, `[security.account_limits]`) apply to
//! every tenant and account; a row here changes some of them for one tenant or one user.
//! Per limit: `None` keeps the configured default, `Some(0)` means unlimited. The server
//! loads every row into the guard at start ([`LimitOverrides::all`]); the API writes them
//! and installs them in the running guard.

use pbx_domain::{Actor, TenantId, UserId};
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult};
use crate::rows::{int, int_opt, narrow, now_ms, parse};
use crate::store::{Store, TenantScope};

/// The limit columns, in the order every query binds and reads them.
macro_rules! limit_columns {
    () => {
        "max_concurrent_calls, calls_per_minute, calls_per_hour, minutes_per_day, \
         cost_per_day_millicents"
    };
}

/// The upsert's update list, shared by the tenant and the user table.
macro_rules! limit_updates {
    () => {
        "DO UPDATE SET max_concurrent_calls = excluded.max_concurrent_calls, \
         calls_per_minute = excluded.calls_per_minute, calls_per_hour = excluded.calls_per_hour, \
         minutes_per_day = excluded.minutes_per_day, \
         cost_per_day_millicents = excluded.cost_per_day_millicents, updated_at = excluded.updated_at"
    };
}

/// Outbound usage limits set for one tenant or one account. Each field: `None` keeps the
/// configured default, `Some(0)` is unlimited, otherwise the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageLimits {
    /// Outbound calls in progress at once.
    pub max_concurrent_calls: Option<u32>,
    /// Outbound call attempts in any 60 s.
    pub calls_per_minute: Option<u32>,
    /// Outbound call attempts in any hour.
    pub calls_per_hour: Option<u32>,
    /// Outbound minutes per UTC day.
    pub minutes_per_day: Option<u64>,
    /// Outbound cost per UTC day in milli-cents, at the default tariff.
    pub cost_per_day_millicents: Option<u64>,
}

/// A stored override: whose it is, the limits, when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitOverride {
    /// The tenant (of the user, for an account override).
    pub tenant_id: TenantId,
    /// The user, for an account override; `None` for the tenant's own limits.
    pub user_id: Option<UserId>,
    /// The limits.
    pub limits: UsageLimits,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

/// The usage-limit override repository.
#[derive(Debug, Clone, Copy)]
pub struct LimitOverrides<'a> {
    store: &'a Store,
}

impl Store {
    /// The usage-limit override repository.
    pub const fn limit_overrides(&self) -> LimitOverrides<'_> {
        LimitOverrides { store: self }
    }
}

impl LimitOverrides<'_> {
    /// The scoped tenant's own limits (`None` when never set or removed).
    pub async fn tenant(&self, scope: &TenantScope) -> StoreResult<Option<LimitOverride>> {
        let row = sqlx::query(concat!(
            "SELECT tenant_id, ",
            limit_columns!(),
            ", updated_at FROM tenant_usage_limits WHERE tenant_id = $1"
        ))
        .bind(scope.tenant_id().to_string())
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref()
            .map(|row| from_row(row, "tenant_usage_limits", None))
            .transpose()
    }

    /// The limits of one of the scoped tenant's users (`None` when never set, removed, or
    /// the user is not the tenant's).
    pub async fn user(
        &self,
        scope: &TenantScope,
        user: UserId,
    ) -> StoreResult<Option<LimitOverride>> {
        let row = sqlx::query(concat!(
            "SELECT tenant_id, user_id, ",
            limit_columns!(),
            ", updated_at FROM user_usage_limits WHERE tenant_id = $1 AND user_id = $2"
        ))
        .bind(scope.tenant_id().to_string())
        .bind(user.to_string())
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref()
            .map(|row| from_row(row, "user_usage_limits", Some("user_id")))
            .transpose()
    }

    /// Sets (replaces) the scoped tenant's own limits.
    pub async fn set_tenant(
        &self,
        scope: &TenantScope,
        limits: &UsageLimits,
    ) -> StoreResult<LimitOverride> {
        let stored = LimitOverride {
            tenant_id: scope.tenant_id(),
            user_id: None,
            limits: *limits,
            updated_at_ms: now_ms(),
        };
        let [concurrent, per_minute, per_hour, minutes, cost] = columns(limits);
        sqlx::query(concat!(
            "INSERT INTO tenant_usage_limits (tenant_id, ",
            limit_columns!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id) ",
            limit_updates!()
        ))
        .bind(scope.tenant_id().to_string())
        .bind(concurrent)
        .bind(per_minute)
        .bind(per_hour)
        .bind(minutes)
        .bind(cost)
        .bind(stored.updated_at_ms)
        .execute(self.store.pool())
        .await?;
        Ok(stored)
    }

    /// Sets (replaces) the limits of one of the scoped tenant's users. A user of another
    /// tenant is an [`StoreError::InvalidReference`].
    pub async fn set_user(
        &self,
        scope: &TenantScope,
        user: UserId,
        limits: &UsageLimits,
    ) -> StoreResult<LimitOverride> {
        let stored = LimitOverride {
            tenant_id: scope.tenant_id(),
            user_id: Some(user),
            limits: *limits,
            updated_at_ms: now_ms(),
        };
        let [concurrent, per_minute, per_hour, minutes, cost] = columns(limits);
        sqlx::query(concat!(
            "INSERT INTO user_usage_limits (tenant_id, user_id, ",
            limit_columns!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, user_id) ",
            limit_updates!()
        ))
        .bind(scope.tenant_id().to_string())
        .bind(user.to_string())
        .bind(concurrent)
        .bind(per_minute)
        .bind(per_hour)
        .bind(minutes)
        .bind(cost)
        .bind(stored.updated_at_ms)
        .execute(self.store.pool())
        .await?;
        Ok(stored)
    }

    /// Removes the scoped tenant's own limits (the defaults apply again). Returns whether
    /// there were any.
    pub async fn remove_tenant(&self, scope: &TenantScope) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tenant_usage_limits WHERE tenant_id = $1")
            .bind(scope.tenant_id().to_string())
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a user's limits. Returns whether there were any.
    pub async fn remove_user(&self, scope: &TenantScope, user: UserId) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM user_usage_limits WHERE tenant_id = $1 AND user_id = $2")
                .bind(scope.tenant_id().to_string())
                .bind(user.to_string())
                .execute(self.store.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every override, tenants' first (the guard loads them at start). System or operator
    /// only.
    pub async fn all(&self, actor: &Actor) -> StoreResult<Vec<LimitOverride>> {
        if !matches!(actor, Actor::System | Actor::Operator) {
            return Err(StoreError::Forbidden {
                reason: "every tenant's limits are the platform's",
            });
        }
        let tenants = sqlx::query(concat!(
            "SELECT tenant_id, ",
            limit_columns!(),
            ", updated_at FROM tenant_usage_limits ORDER BY tenant_id"
        ))
        .fetch_all(self.store.pool())
        .await?;
        let users = sqlx::query(concat!(
            "SELECT tenant_id, user_id, ",
            limit_columns!(),
            ", updated_at FROM user_usage_limits ORDER BY tenant_id, user_id"
        ))
        .fetch_all(self.store.pool())
        .await?;
        let tenants = tenants
            .iter()
            .map(|row| from_row(row, "tenant_usage_limits", None));
        let users = users
            .iter()
            .map(|row| from_row(row, "user_usage_limits", Some("user_id")));
        tenants.chain(users).collect()
    }
}

/// The limit columns' values (`BIGINT`, NULL for "keep the default"). A limit above 2^63
/// is stored as 2^63 - 1: no usage reaches either (the API caps limits far below).
fn columns(limits: &UsageLimits) -> [Option<i64>; 5] {
    let wide = |value: Option<u64>| value.map(|value| i64::try_from(value).unwrap_or(i64::MAX));
    [
        limits.max_concurrent_calls.map(i64::from),
        limits.calls_per_minute.map(i64::from),
        limits.calls_per_hour.map(i64::from),
        wide(limits.minutes_per_day),
        wide(limits.cost_per_day_millicents),
    ]
}

fn from_row(
    row: &AnyRow,
    table: &'static str,
    user_column: Option<&'static str>,
) -> StoreResult<LimitOverride> {
    let column = |name: &'static str| -> StoreResult<Option<i64>> { int_opt(row, name) };
    let small = |name: &'static str| -> StoreResult<Option<u32>> {
        column(name)?
            .map(|value| narrow(value, table, name))
            .transpose()
    };
    let large = |name: &'static str| -> StoreResult<Option<u64>> {
        column(name)?
            .map(|value| narrow(value, table, name))
            .transpose()
    };
    Ok(LimitOverride {
        tenant_id: parse(row, table, "tenant_id")?,
        user_id: user_column
            .map(|name| parse(row, table, name))
            .transpose()?,
        limits: UsageLimits {
            max_concurrent_calls: small("max_concurrent_calls")?,
            calls_per_minute: small("calls_per_minute")?,
            calls_per_hour: small("calls_per_hour")?,
            minutes_per_day: large("minutes_per_day")?,
            cost_per_day_millicents: large("cost_per_day_millicents")?,
        },
        updated_at_ms: int(row, "updated_at")?,
    })
}
