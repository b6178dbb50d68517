//! `/api/v1/tenants/{tenant}/devices`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pbx_domain::DeviceId;
use pbx_store::IssuedCredential;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::model::{CreateDevice, DeviceCreatedView, DeviceView, SipSecretView, UpdateDevice};
use crate::state::{ApiState, Caller};

fn device_id(text: &str) -> ApiResult<DeviceId> {
    text.parse()
        .map_err(|_| ApiError::NotFound { what: "device" })
}

fn secret(issued: &IssuedCredential) -> SipSecretView {
    SipSecretView {
        sip_username: issued.credential.auth_username.to_string(),
        sip_password: issued.password.expose().to_owned(),
        realm: issued.credential.realm.to_string(),
    }
}

/// Lists a tenant's devices (with their SIP user names, never passwords).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices", tag = "devices", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = [DeviceView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_devices(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let devices = state.ops(&caller).devices(&scope).await?;
    Ok(Json(
        devices
            .into_iter()
            .map(|(device, credential)| DeviceView::new(device, credential.as_ref()))
            .collect(),
    ))
}

/// Creates a device and its SIP credential. The response carries the generated SIP user
/// name and password: the password is shown this once and never again.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices", tag = "devices", security(("bearer" = [])), request_body = CreateDevice,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = DeviceCreatedView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_device(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<CreateDevice>,
) -> ApiResult<(StatusCode, Json<DeviceCreatedView>)> {
    let scope = state.scope(&caller, &tenant).await?;
    let created = state
        .ops(&caller)
        .create_device(&scope, &request, &state.realm)
        .await?;
    state.written().await?;
    let credential = secret(&created.issued);
    let device = DeviceView::new(created.device, Some(&created.issued.credential));
    Ok((
        StatusCode::CREATED,
        Json(DeviceCreatedView { device, credential }),
    ))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}", tag = "devices", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("device" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_device(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, device)): Path<(String, String)>,
) -> ApiResult<Json<DeviceView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let (device, credential) = state
        .ops(&caller)
        .device(&scope, device_id(&device)?)
        .await?;
    Ok(Json(DeviceView::new(device, credential.as_ref())))
}

/// Changes a device's label, enables/disables its SIP credential, or exempts it from the IP
/// whitelist (`whitelist_exempt`: then TLS only from outside the whitelist).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/devices/{device}", tag = "devices", security(("bearer" = [])), request_body = UpdateDevice,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("device" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_device(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, device)): Path<(String, String)>,
    ApiJson(request): ApiJson<UpdateDevice>,
) -> ApiResult<Json<DeviceView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let (device, credential) = state
        .ops(&caller)
        .update_device(&scope, device_id(&device)?, &request)
        .await?;
    state.written().await?;
    Ok(Json(DeviceView::new(device, credential.as_ref())))
}

/// Gives the device's SIP credential a new password (same user name). The new password is
/// shown this once; the old one is refused as soon as the response is sent.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/credentials/rotate", tag = "devices", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("device" = String, Path, description = "Device id")),
    responses((status = 200, body = SipSecretView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_credentials(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, device)): Path<(String, String)>,
) -> ApiResult<Json<SipSecretView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let issued = state
        .ops(&caller)
        .rotate_device_password(&scope, device_id(&device)?, &state.realm)
        .await?;
    state.written().await?;
    Ok(Json(secret(&issued)))
}

/// Deletes a device with its credential and registrations.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/devices/{device}", tag = "devices", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("device" = String, Path, description = "Device id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_device(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, device)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    state
        .ops(&caller)
        .delete_device(&scope, device_id(&device)?)
        .await?;
    state.written().await?;
    Ok(StatusCode::NO_CONTENT)
}
