//! `/api/v1/tenants/{tenant}/users`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::model::{CreateUser, UpdateUser, UserView};
use crate::state::{ApiState, Caller};

/// Lists a tenant's users, by extension.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users", tag = "users", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = [UserView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<UserView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let users = state.ops(&caller).users(&scope).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users", tag = "users", security(("bearer" = [])), request_body = CreateUser,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = UserView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let scope = state.scope(&caller, &tenant).await?;
    let user = state.ops(&caller).create_user(&scope, &request).await?;
    state.written().await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// One user, by id or extension.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "users", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<Json<UserView>> {
    let scope = state.scope(&caller, &tenant).await?;
    Ok(Json(state.ops(&caller).user(&scope, &user).await?.into()))
}

/// Changes a user's extension, display name or class of service.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "users", security(("bearer" = [])), request_body = UpdateUser,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
    ApiJson(request): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let ops = state.ops(&caller);
    let user = ops.user(&scope, &user).await?;
    let updated = ops.update_user(&scope, &user, &request).await?;
    state.written().await?;
    Ok(Json(updated.into()))
}

/// Deletes a user with its devices, whitelist entries and registrations.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "users", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    let ops = state.ops(&caller);
    let user = ops.user(&scope, &user).await?;
    state
        .control
        .clear_registrations(scope.tenant_id(), Some(user.id))
        .await;
    ops.delete_user(&scope, &user).await?;
    state.written().await?;
    Ok(StatusCode::NO_CONTENT)
}
