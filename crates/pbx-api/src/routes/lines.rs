//! `/api/v1/tenants/{tenant}/ip-whitelist` and the phone numbers.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use pbx_domain::{UserId, WhitelistEntryId};
use pbx_store::TenantScope;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::model::{
    AddNumber, AssignNumber, CreateWhitelistEntry, NumberView, RouteNumber, UserFilter,
    WhitelistEntryView,
};
use crate::ops::Ops;
use crate::state::{ApiState, Caller};

/// Resolves the `?user=` filter; an unknown user is a bad parameter.
async fn user_filter(
    ops: &Ops<'_>,
    scope: &TenantScope,
    filter: &UserFilter,
) -> ApiResult<Option<UserId>> {
    let Some(user) = filter.user.as_deref() else {
        return Ok(None);
    };
    match ops.user(scope, user).await {
        Ok(found) => Ok(Some(found.id)),
        Err(ApiError::NotFound { .. }) => Err(ApiError::InvalidParameter {
            parameter: "user",
            message: "no such user in this tenant".to_owned(),
        }),
        Err(other) => Err(other),
    }
}

async fn add_entry(
    state: &ApiState,
    caller: &Caller,
    scope: &TenantScope,
    user: Option<UserId>,
    request: &CreateWhitelistEntry,
) -> ApiResult<(StatusCode, Json<WhitelistEntryView>)> {
    let ops = state.ops(caller);
    let user = match (user, request.user.as_deref()) {
        (Some(user), _) => Some(user),
        (None, Some(named)) => Some(ops.user_field(scope, "user", named).await?.id),
        (None, None) => None,
    };
    let entry = ops
        .add_whitelist_entry(
            scope,
            user,
            &request.network,
            request.description.as_deref(),
        )
        .await?;
    state.written().await?;
    Ok((StatusCode::CREATED, Json(entry.into())))
}

/// Lists a tenant's IP whitelist: tenant-wide entries and per-user ones (`?user=` narrows).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/ip-whitelist", tag = "ip-whitelist", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), UserFilter),
    responses((status = 200, body = [WhitelistEntryView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_whitelist(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(filter): Query<UserFilter>,
) -> ApiResult<Json<Vec<WhitelistEntryView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let ops = state.ops(&caller);
    let user = user_filter(&ops, &scope, &filter).await?;
    let entries = ops.whitelist(&scope, user).await?;
    Ok(Json(entries.into_iter().map(Into::into).collect()))
}

/// Adds a network to the tenant's whitelist (or to one user's, with `user`). With a
/// whitelist, SIP traffic from other addresses is refused.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/ip-whitelist", tag = "ip-whitelist", security(("bearer" = [])), request_body = CreateWhitelistEntry,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = WhitelistEntryView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_whitelist_entry(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<CreateWhitelistEntry>,
) -> ApiResult<(StatusCode, Json<WhitelistEntryView>)> {
    let scope = state.scope(&caller, &tenant).await?;
    add_entry(&state, &caller, &scope, None, &request).await
}

/// Lists one user's whitelist entries.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}/ip-whitelist", tag = "ip-whitelist", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 200, body = [WhitelistEntryView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_user_whitelist(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<Json<Vec<WhitelistEntryView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let ops = state.ops(&caller);
    let user = ops.user(&scope, &user).await?;
    let entries = ops.whitelist(&scope, Some(user.id)).await?;
    Ok(Json(entries.into_iter().map(Into::into).collect()))
}

/// Adds a network to one user's whitelist.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users/{user}/ip-whitelist", tag = "ip-whitelist", security(("bearer" = [])), request_body = CreateWhitelistEntry,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 201, body = WhitelistEntryView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user_whitelist_entry(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
    ApiJson(request): ApiJson<CreateWhitelistEntry>,
) -> ApiResult<(StatusCode, Json<WhitelistEntryView>)> {
    let scope = state.scope(&caller, &tenant).await?;
    let user = state.ops(&caller).user(&scope, &user).await?;
    if request.user.is_some() {
        return Err(ApiError::invalid("user", "the user is given by the path"));
    }
    add_entry(&state, &caller, &scope, Some(user.id), &request).await
}

fn entry_id(text: &str) -> ApiResult<WhitelistEntryId> {
    text.parse().map_err(|_| ApiError::NotFound {
        what: "whitelist entry",
    })
}

/// One whitelist entry.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/ip-whitelist/{entry}", tag = "ip-whitelist", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("entry" = String, Path, description = "Entry id")),
    responses((status = 200, body = WhitelistEntryView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_whitelist_entry(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, entry)): Path<(String, String)>,
) -> ApiResult<Json<WhitelistEntryView>> {
    let scope = state.scope(&caller, &tenant).await?;
    Ok(Json(
        state
            .ops(&caller)
            .whitelist_entry(&scope, entry_id(&entry)?)
            .await?
            .into(),
    ))
}

/// Removes a whitelist entry.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/ip-whitelist/{entry}", tag = "ip-whitelist", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("entry" = String, Path, description = "Entry id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_whitelist_entry(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, entry)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    state
        .ops(&caller)
        .remove_whitelist_entry(&scope, entry_id(&entry)?)
        .await?;
    state.written().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The free number inventory (operator only).
#[utoipa::path(get, path = "/api/v1/numbers", tag = "numbers", security(("bearer" = [])),
    responses((status = 200, body = [NumberView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_free_numbers(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<NumberView>>> {
    let numbers = state.ops(&caller).free_numbers().await?;
    Ok(Json(numbers.into_iter().map(Into::into).collect()))
}

/// Adds a number to the free inventory (operator only).
#[utoipa::path(post, path = "/api/v1/numbers", tag = "numbers", security(("bearer" = [])), request_body = AddNumber,
    responses((status = 201, body = NumberView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_number(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<AddNumber>,
) -> ApiResult<(StatusCode, Json<NumberView>)> {
    let number = state.ops(&caller).add_number(&request.number).await?;
    state.written().await?;
    Ok((StatusCode::CREATED, Json(number.into())))
}

/// Lists a tenant's numbers.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/numbers", tag = "numbers", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = [NumberView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_numbers(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<NumberView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let numbers = state.ops(&caller).numbers(&scope).await?;
    Ok(Json(numbers.into_iter().map(Into::into).collect()))
}

/// Assigns a number to the tenant (operator only), optionally routed to a user.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/numbers", tag = "numbers", security(("bearer" = [])), request_body = AssignNumber,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = NumberView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign_number(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<AssignNumber>,
) -> ApiResult<(StatusCode, Json<NumberView>)> {
    let scope = state.scope(&caller, &tenant).await?;
    let ops = state.ops(&caller);
    let user = match request.user.as_deref() {
        Some(user) => Some(ops.user_field(&scope, "user", user).await?.id),
        None => None,
    };
    let number = ops.assign_number(&scope, &request.number, user).await?;
    state.written().await?;
    Ok((StatusCode::CREATED, Json(number.into())))
}

/// One number of the tenant, by id or E.164.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/numbers/{number}", tag = "numbers", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("number" = String, Path, description = "Number id or E.164")),
    responses((status = 200, body = NumberView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_number(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, number)): Path<(String, String)>,
) -> ApiResult<Json<NumberView>> {
    let scope = state.scope(&caller, &tenant).await?;
    Ok(Json(
        state.ops(&caller).number(&scope, &number).await?.into(),
    ))
}

/// Routes a number to a user of the tenant, or to none (`"user": null`).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/numbers/{number}", tag = "numbers", security(("bearer" = [])), request_body = RouteNumber,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("number" = String, Path, description = "Number id or E.164")),
    responses((status = 200, body = NumberView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn route_number(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, number)): Path<(String, String)>,
    ApiJson(request): ApiJson<RouteNumber>,
) -> ApiResult<Json<NumberView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let ops = state.ops(&caller);
    let number = ops.number(&scope, &number).await?;
    let user = match request.user.as_deref() {
        Some(user) => Some(ops.user_field(&scope, "user", user).await?.id),
        None => None,
    };
    let routed = ops.route_number(&scope, &number, user).await?;
    state.written().await?;
    Ok(Json(routed.into()))
}

/// Unassigns a number: it returns to the free inventory (operator only).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/numbers/{number}", tag = "numbers", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("number" = String, Path, description = "Number id or E.164")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unassign_number(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, number)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    let ops = state.ops(&caller);
    let number = ops.number(&scope, &number).await?;
    ops.release_number(&scope, &number).await?;
    state.written().await?;
    Ok(StatusCode::NO_CONTENT)
}
