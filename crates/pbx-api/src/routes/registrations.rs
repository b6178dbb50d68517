//! Registrations (`/registrations`) and the audit log (`/events`).

use axum::Json;
use axum::extract::{Path, Query, State};
use pbx_domain::UserId;
use pbx_store::TenantScope;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::model::{ClearedView, EventQuery, EventView, RegistrationView};
use crate::state::{ApiState, Caller};

async fn list(
    state: &ApiState,
    caller: &Caller,
    scope: &TenantScope,
    user: Option<UserId>,
) -> ApiResult<Json<Vec<RegistrationView>>> {
    let bindings = state.ops(caller).registrations(scope, user).await?;
    Ok(Json(bindings.into_iter().map(Into::into).collect()))
}

async fn clear(
    state: &ApiState,
    caller: &Caller,
    scope: &TenantScope,
    user: Option<UserId>,
) -> ApiResult<Json<ClearedView>> {
    // The live registrar first, so a refresh racing with the delete cannot re-persist.
    let live = state
        .control
        .clear_registrations(scope.tenant_id(), user)
        .await;
    let cleared = state.ops(caller).clear_registrations(scope, user).await?;
    state.metrics.record_write();
    Ok(Json(ClearedView {
        cleared,
        live_cleared: u64::try_from(live).unwrap_or(u64::MAX),
    }))
}

/// Lists a tenant's current registrations.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/registrations", tag = "registrations", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = [RegistrationView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_registrations(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<RegistrationView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    list(&state, &caller, &scope, None).await
}

/// Clears all of a tenant's registrations (the phones must register again).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/registrations", tag = "registrations", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = ClearedView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn clear_registrations(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<ClearedView>> {
    let scope = state.scope(&caller, &tenant).await?;
    clear(&state, &caller, &scope, None).await
}

/// Lists one user's current registrations.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}/registrations", tag = "registrations", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 200, body = [RegistrationView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_user_registrations(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<Json<Vec<RegistrationView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let user = state.ops(&caller).user(&scope, &user).await?;
    list(&state, &caller, &scope, Some(user.id)).await
}

/// Clears one user's registrations.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/users/{user}/registrations", tag = "registrations", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 200, body = ClearedView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn clear_user_registrations(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<Json<ClearedView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let user = state.ops(&caller).user(&scope, &user).await?;
    clear(&state, &caller, &scope, Some(user.id)).await
}

fn limit(query: &EventQuery) -> ApiResult<u32> {
    match query.limit {
        None => Ok(100),
        Some(limit @ 1..=1000) => Ok(limit),
        Some(_) => Err(ApiError::InvalidParameter {
            parameter: "limit",
            message: "must be 1 to 1000".to_owned(),
        }),
    }
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/events", tag = "events", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), EventQuery),
    responses((status = 200, body = [EventView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tenant_events(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<EventQuery>,
) -> ApiResult<Json<Vec<EventView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let events = state.ops(&caller).events(&scope, limit(&query)?).await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}

/// The platform audit log, newest first (operator only).
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("bearer" = [])), params(EventQuery),
    responses((status = 200, body = [EventView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_events(
    State(state): State<ApiState>,
    caller: Caller,
    Query(query): Query<EventQuery>,
) -> ApiResult<Json<Vec<EventView>>> {
    let events = state.ops(&caller).all_events(limit(&query)?).await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}
