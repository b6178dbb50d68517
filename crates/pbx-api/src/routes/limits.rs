//! The fraud guard's outbound usage limits of one tenant and of one account (user):
//! `/api/v1/tenants/{tenant}/security/limits` and
//! `/api/v1/tenants/{tenant}/users/{user}/security/limits` (GET, PUT, DELETE).
//!
//! An override is stored (`tenant_usage_limits` / `user_usage_limits`), installed in the
//! running guard at once (in force for the next call) and loaded again at start; every
//! change is an audit event. The operator and the tenant's reseller may set any value; a
//! customer admin may only tighten: each value it sets must be at most the platform default
//! and never `0` (unlimited) — a stolen admin token must not be able to lift the limits that
//! stop toll fraud.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pbx_domain::{Actor, TenantId, UserId};
use pbx_store::{LimitOverride, TenantScope};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::security::audit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::ops::security::{EffectiveLimits, UsageLimits};
use crate::state::{ApiState, Caller};

/// The usage limits of a tenant or an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LimitsView {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The account, for an account's limits; `null` for the tenant's own.
    pub user_id: Option<Uuid>,
    /// The override as set: a `null` field keeps the platform default, `0` is unlimited.
    /// Every field is `null` when no override is set.
    pub limits: UsageLimits,
    /// The limits in force now (the override over the platform default): a `null` field is
    /// unlimited. An account's calls are also held to its tenant's limits. `null` when the
    /// guard does not run in this process.
    pub effective: Option<EffectiveLimits>,
    /// Last change of the override (Unix ms); `null` when none is set.
    pub updated_at_ms: Option<i64>,
}

/// Largest value of the call-count limits.
const MAX_CALLS: u32 = 1_000_000;
/// Largest minutes per day.
const MAX_MINUTES: u64 = 1_000_000_000;
/// Largest cost per day in milli-cents (€10 billion).
const MAX_COST: u64 = 1_000_000_000_000_000;

/// The tenant's own outbound usage limits (override and limits in force).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/security/limits", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = LimitsView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_tenant_limits(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<LimitsView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let stored = state.store.limit_overrides().tenant(&scope).await?;
    Ok(Json(view(&state, scope.tenant_id(), None, stored)))
}

/// Sets (replaces) the tenant's own outbound usage limits; in force for the next call,
/// audited. A customer admin may only tighten them (each at most the platform default).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/security/limits", tag = "security", security(("bearer" = [])),
    request_body = UsageLimits,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = LimitsView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_tenant_limits(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(limits): ApiJson<UsageLimits>,
) -> ApiResult<Json<LimitsView>> {
    let scope = state.scope(&caller, &tenant).await?;
    set(&state, &caller, &scope, None, limits).await
}

/// Removes the tenant's own limits: the platform defaults apply again (audited).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/security/limits", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 204, description = "removed"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_tenant_limits(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    let removed = state.store.limit_overrides().remove_tenant(&scope).await?;
    remove(&state, &caller, &scope, None, removed).await
}

/// An account's outbound usage limits (override and limits in force).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}/security/limits", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 200, body = LimitsView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user_limits(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<Json<LimitsView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let user = state.ops(&caller).user(&scope, &user).await?;
    let stored = state.store.limit_overrides().user(&scope, user.id).await?;
    Ok(Json(view(&state, scope.tenant_id(), Some(user.id), stored)))
}

/// Sets (replaces) an account's outbound usage limits; in force for its next call,
/// audited. A customer admin may only tighten them (each at most the platform default).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/users/{user}/security/limits", tag = "security", security(("bearer" = [])),
    request_body = UsageLimits,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 200, body = LimitsView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_user_limits(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
    ApiJson(limits): ApiJson<UsageLimits>,
) -> ApiResult<Json<LimitsView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let user = state.ops(&caller).user(&scope, &user).await?;
    set(&state, &caller, &scope, Some(user.id), limits).await
}

/// Removes an account's own limits: the platform defaults apply again (audited).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/users/{user}/security/limits", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 204, description = "removed"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_user_limits(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    let user = state.ops(&caller).user(&scope, &user).await?;
    let removed = state
        .store
        .limit_overrides()
        .remove_user(&scope, user.id)
        .await?;
    remove(&state, &caller, &scope, Some(user.id), removed).await
}

/// Validates, stores, installs and audits an override.
async fn set(
    state: &ApiState,
    caller: &Caller,
    scope: &TenantScope,
    user: Option<UserId>,
    limits: UsageLimits,
) -> ApiResult<Json<LimitsView>> {
    validate(&limits)?;
    if matches!(caller.actor, Actor::CustomerAdmin(_))
        && let Some(defaults) = state.security.default_limits(user.is_some())
    {
        tightens_only(&limits, &defaults)?;
    }
    let overrides = state.store.limit_overrides();
    let stored = match user {
        Some(user) => overrides.set_user(scope, user, &to_store(&limits)).await?,
        None => overrides.set_tenant(scope, &to_store(&limits)).await?,
    };
    state
        .security
        .set_limits(scope.tenant_id(), user, Some(limits));
    audit(
        state,
        caller,
        Some(scope.tenant_id()),
        "security.limits_changed",
        serde_json::json!({
            "user_id": user.map(|id| id.to_string()),
            "limits": limits,
        }),
    )
    .await?;
    Ok(Json(view(state, scope.tenant_id(), user, Some(stored))))
}

/// Uninstalls and audits a removed override; 404 when there was none.
async fn remove(
    state: &ApiState,
    caller: &Caller,
    scope: &TenantScope,
    user: Option<UserId>,
    removed: bool,
) -> ApiResult<StatusCode> {
    if !removed {
        return Err(ApiError::NotFound { what: "limits" });
    }
    state.security.set_limits(scope.tenant_id(), user, None);
    audit(
        state,
        caller,
        Some(scope.tenant_id()),
        "security.limits_removed",
        serde_json::json!({ "user_id": user.map(|id| id.to_string()) }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn view(
    state: &ApiState,
    tenant: TenantId,
    user: Option<UserId>,
    stored: Option<LimitOverride>,
) -> LimitsView {
    LimitsView {
        tenant_id: tenant.as_uuid(),
        user_id: user.map(|id| id.as_uuid()),
        limits: stored.map(|s| from_store(&s.limits)).unwrap_or_default(),
        effective: state.security.effective_limits(tenant, user),
        updated_at_ms: stored.map(|s| s.updated_at_ms),
    }
}

/// Each value within its range; errors name the field.
fn validate(limits: &UsageLimits) -> ApiResult<()> {
    let calls = [
        ("max_concurrent_calls", limits.max_concurrent_calls),
        ("calls_per_minute", limits.calls_per_minute),
        ("calls_per_hour", limits.calls_per_hour),
    ];
    for (field, value) in calls {
        if value.is_some_and(|value| value > MAX_CALLS) {
            return Err(out_of_range(field, u64::from(MAX_CALLS)));
        }
    }
    if limits.minutes_per_day.is_some_and(|v| v > MAX_MINUTES) {
        return Err(out_of_range("minutes_per_day", MAX_MINUTES));
    }
    if limits.cost_per_day_millicents.is_some_and(|v| v > MAX_COST) {
        return Err(out_of_range("cost_per_day_millicents", MAX_COST));
    }
    Ok(())
}

fn out_of_range(field: &str, max: u64) -> ApiError {
    ApiError::InvalidField {
        field: field.to_owned(),
        message: format!("must be 0 (unlimited) to {max}"),
    }
}

/// A customer admin's override: every value set is at most the platform default, and not
/// unlimited where the default is a limit.
fn tightens_only(limits: &UsageLimits, defaults: &EffectiveLimits) -> ApiResult<()> {
    let pairs = [
        (
            limits.max_concurrent_calls.map(u64::from),
            defaults.max_concurrent_calls.map(u64::from),
        ),
        (
            limits.calls_per_minute.map(u64::from),
            defaults.calls_per_minute.map(u64::from),
        ),
        (
            limits.calls_per_hour.map(u64::from),
            defaults.calls_per_hour.map(u64::from),
        ),
        (limits.minutes_per_day, defaults.minutes_per_day),
        (
            limits.cost_per_day_millicents,
            defaults.cost_per_day_millicents,
        ),
    ];
    let looser = pairs
        .into_iter()
        .any(|(set, default)| match (set, default) {
            (Some(0), Some(_)) => true,
            (Some(value), Some(default)) => value > default,
            _ => false,
        });
    if looser {
        return Err(ApiError::Forbidden {
            reason: "a customer admin may only lower limits (each at most the platform \
                     default, never 0 = unlimited); the operator or reseller can raise them",
        });
    }
    Ok(())
}

fn to_store(limits: &UsageLimits) -> pbx_store::UsageLimits {
    pbx_store::UsageLimits {
        max_concurrent_calls: limits.max_concurrent_calls,
        calls_per_minute: limits.calls_per_minute,
        calls_per_hour: limits.calls_per_hour,
        minutes_per_day: limits.minutes_per_day,
        cost_per_day_millicents: limits.cost_per_day_millicents,
    }
}

fn from_store(limits: &pbx_store::UsageLimits) -> UsageLimits {
    UsageLimits {
        max_concurrent_calls: limits.max_concurrent_calls,
        calls_per_minute: limits.calls_per_minute,
        calls_per_hour: limits.calls_per_hour,
        minutes_per_day: limits.minutes_per_day,
        cost_per_day_millicents: limits.cost_per_day_millicents,
    }
}
