//! `/api/v1/resellers` and `/api/v1/tenants`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::model::{CreateReseller, CreateTenant, ResellerView, TenantView, UpdateTenant};
use crate::state::{ApiState, Caller};

/// Lists resellers (operator: all; reseller: itself).
#[utoipa::path(get, path = "/api/v1/resellers", tag = "resellers", security(("bearer" = [])),
    responses((status = 200, body = [ResellerView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_resellers(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ResellerView>>> {
    let resellers = state.ops(&caller).resellers().await?;
    Ok(Json(resellers.into_iter().map(Into::into).collect()))
}

/// Creates a reseller (operator only).
#[utoipa::path(post, path = "/api/v1/resellers", tag = "resellers", security(("bearer" = [])), request_body = CreateReseller,
    responses((status = 201, body = ResellerView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_reseller(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateReseller>,
) -> ApiResult<(StatusCode, Json<ResellerView>)> {
    let reseller = state.ops(&caller).create_reseller(&request).await?;
    state.written().await?;
    Ok((StatusCode::CREATED, Json(reseller.into())))
}

/// Lists the tenants the caller may see (operator: all; reseller: its own; customer admin: its tenant).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = [TenantView]), (status = 401, body = ErrorBody)))]
pub async fn list_tenants(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TenantView>>> {
    let tenants = state.ops(&caller).tenants().await?;
    Ok(Json(tenants.into_iter().map(Into::into).collect()))
}

/// Creates a tenant (operator, or a reseller for itself).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])), request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tenant(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    let tenant = state.ops(&caller).create_tenant(&request).await?;
    state.written().await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

/// One tenant, by id or slug.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TenantView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_tenant(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<TenantView>> {
    let scope = state.scope(&caller, &tenant).await?;
    Ok(Json(state.ops(&caller).tenant(&scope).await?.into()))
}

/// Changes a tenant's name, SIP domain or status (status: not for customer admins).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}", tag = "tenants", security(("bearer" = [])), request_body = UpdateTenant,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TenantView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_tenant(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<UpdateTenant>,
) -> ApiResult<Json<TenantView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let tenant = state.ops(&caller).update_tenant(&scope, &request).await?;
    state.written().await?;
    Ok(Json(tenant.into()))
}

/// Deletes a tenant with its users, devices, whitelist and registrations; its numbers return
/// to the free inventory (operator and reseller only).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_tenant(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    let live = state
        .control
        .clear_registrations(scope.tenant_id(), None)
        .await;
    state.ops(&caller).delete_tenant(&scope).await?;
    tracing::info!(tenant = %scope.tenant_id(), live_registrations_dropped = live, "tenant deleted");
    state.written().await?;
    Ok(StatusCode::NO_CONTENT)
}
