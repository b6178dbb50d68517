//! Trunks, outbound routes and calling settings: `/api/v1/trunks`, `/api/v1/routes`
//! (operator-wide) and `/api/v1/tenants/{tenant}/{trunks,routes,call-settings}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pbx_domain::{
    CallerIdentity, RouteId, RouteTrunk, Transport, TrunkId, TrunkMode, parse_network,
    parse_route_prefix,
};
use pbx_store::{Owner, TenantScope, TrunkSpec};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::model::{
    CallSettingsRequest, CallSettingsView, RouteRequest, RouteView, TrunkRequest, TrunkView,
};
use crate::ops::free_text;
use crate::state::{ApiState, Caller};

fn trunk_id(text: &str) -> ApiResult<TrunkId> {
    text.parse()
        .map_err(|_| ApiError::NotFound { what: "trunk" })
}

fn route_id(text: &str) -> ApiResult<RouteId> {
    text.parse()
        .map_err(|_| ApiError::NotFound { what: "route" })
}

fn optional_text(field: &str, value: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    value
        .map(|text| free_text(field, text, max))
        .transpose()
        .map(|text| text.filter(|text| !text.is_empty()))
}

/// Checks a trunk request and turns it into the store's spec.
fn trunk_spec(request: &TrunkRequest, creating: bool, has_key: bool) -> ApiResult<TrunkSpec> {
    let name = free_text("name", &request.name, 64)?;
    if name.is_empty() {
        return Err(ApiError::invalid("name", "must not be empty"));
    }
    let host = request.host.trim().to_owned();
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(ApiError::invalid(
            "host",
            "must be a host name or an IP address",
        ));
    }
    if request.port == 0 {
        return Err(ApiError::invalid("port", "must be 1 to 65535"));
    }
    let transport = request.transport.unwrap_or(Transport::Udp);
    if !matches!(transport, Transport::Udp | Transport::Tcp | Transport::Tls) {
        return Err(ApiError::invalid("transport", "must be udp, tcp or tls"));
    }
    if !(60..=86_400).contains(&request.register_expires_secs) {
        return Err(ApiError::invalid(
            "register_expires_secs",
            "must be 60 to 86400",
        ));
    }
    let auth_username = optional_text("auth_username", request.auth_username.as_deref(), 128)?;
    let auth_password = match request.auth_password.as_deref() {
        Some(password)
            if password.is_empty()
                || password.len() > 256
                || password.chars().any(char::is_control) =>
        {
            return Err(ApiError::invalid(
                "auth_password",
                "must be 1 to 256 printable characters",
            ));
        }
        other => other.map(str::to_owned),
    };
    if auth_password.is_some() && !has_key {
        return Err(ApiError::invalid(
            "auth_password",
            "this server has no key to store trunk passwords with",
        ));
    }
    if request.register && auth_username.is_none() {
        return Err(ApiError::invalid(
            "auth_username",
            "a registering trunk needs one",
        ));
    }
    if request.register && creating && auth_password.is_none() {
        return Err(ApiError::invalid(
            "auth_password",
            "a registering trunk needs one",
        ));
    }
    let inbound_networks = request
        .inbound_networks
        .iter()
        .enumerate()
        .map(|(index, network)| {
            parse_network(network).map_err(|_| {
                ApiError::invalid(&format!("inbound_networks.{index}"), "not an IP network")
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let caller_identity = match request.caller_identity.as_deref() {
        None => CallerIdentity::Pai,
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::invalid("caller_identity", "must be pai, from or rpid"))?,
    };
    Ok(TrunkSpec {
        name,
        host,
        port: request.port,
        transport,
        mode: request.mode.unwrap_or(TrunkMode::Digest),
        auth_username,
        auth_password,
        auth_realm: optional_text("auth_realm", request.auth_realm.as_deref(), 128)?,
        register_user: optional_text("register_user", request.register_user.as_deref(), 128)?,
        register: request.register,
        register_expires_secs: request.register_expires_secs,
        inbound_networks,
        priority: request.priority.unwrap_or(100),
        caller_identity,
        enabled: request.enabled,
    })
}

fn view(state: &ApiState, trunk: pbx_domain::Trunk) -> TrunkView {
    let status = state.calls.trunk_status.as_ref();
    let registration = status.and_then(|status| status.registration(trunk.id));
    let resolution = status.and_then(|status| status.resolution(&trunk));
    let mut view = TrunkView::new(trunk, registration);
    view.resolution = resolution;
    view
}

/// The key, or the error for a missing one (checked before by `trunk_spec`).
fn key(state: &ApiState) -> pbx_store::SecretKey {
    state
        .calls
        .trunk_key
        .clone()
        .unwrap_or_else(|| pbx_store::SecretKey::from_bytes(rand::random()))
}

async fn list_trunks_of(
    state: &ApiState,
    caller: &Caller,
    owner: Owner<'_>,
) -> ApiResult<Json<Vec<TrunkView>>> {
    let trunks = state.store.trunks().list(&caller.actor, owner).await?;
    Ok(Json(
        trunks.into_iter().map(|trunk| view(state, trunk)).collect(),
    ))
}

async fn create_trunk_for(
    state: &ApiState,
    caller: &Caller,
    owner: Owner<'_>,
    request: &TrunkRequest,
) -> ApiResult<(StatusCode, Json<TrunkView>)> {
    let spec = trunk_spec(request, true, state.calls.trunk_key.is_some())?;
    let trunk = state
        .store
        .trunks()
        .create(&caller.actor, owner, &spec, &key(state))
        .await?;
    state
        .ops(caller)
        .audit(
            owner.tenant_id(),
            "trunk.created",
            serde_json::json!({"trunk_id": trunk.id, "name": trunk.name}),
        )
        .await?;
    state.written().await?;
    Ok((StatusCode::CREATED, Json(view(state, trunk))))
}

async fn update_trunk_for(
    state: &ApiState,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
    request: &TrunkRequest,
) -> ApiResult<Json<TrunkView>> {
    let id = trunk_id(id)?;
    let spec = trunk_spec(request, false, state.calls.trunk_key.is_some())?;
    let trunk = state
        .store
        .trunks()
        .update(&caller.actor, owner, id, &spec, &key(state))
        .await?;
    state
        .ops(caller)
        .audit(owner.tenant_id(), "trunk.updated", serde_json::json!({"trunk_id": trunk.id, "password_changed": spec.auth_password.is_some()}))
        .await?;
    state.written().await?;
    Ok(Json(view(state, trunk)))
}

async fn delete_trunk_for(
    state: &ApiState,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
) -> ApiResult<StatusCode> {
    let id = trunk_id(id)?;
    state
        .store
        .trunks()
        .delete(&caller.actor, owner, id)
        .await?;
    state
        .ops(caller)
        .audit(
            owner.tenant_id(),
            "trunk.deleted",
            serde_json::json!({"trunk_id": id}),
        )
        .await?;
    state.written().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn route_body(request: &RouteRequest) -> ApiResult<(String, Vec<RouteTrunk>, String)> {
    let prefix = parse_route_prefix(&request.prefix)
        .map_err(|_| ApiError::invalid("prefix", "must be up to 15 digits (E.164 without '+')"))?;
    if request.trunks.len() > 16 {
        return Err(ApiError::invalid("trunks", "at most 16 trunks per route"));
    }
    let trunks = request
        .trunks
        .iter()
        .map(|entry| RouteTrunk {
            trunk_id: TrunkId::from_uuid(entry.trunk_id),
            priority: entry.priority,
        })
        .collect();
    let description = free_text(
        "description",
        request.description.as_deref().unwrap_or_default(),
        200,
    )?;
    Ok((prefix, trunks, description))
}

async fn create_route_for(
    state: &ApiState,
    caller: &Caller,
    owner: Owner<'_>,
    request: &RouteRequest,
) -> ApiResult<(StatusCode, Json<RouteView>)> {
    let (prefix, trunks, description) = route_body(request)?;
    let route = state
        .store
        .routes()
        .create(&caller.actor, owner, &prefix, &trunks, &description)
        .await?;
    state
        .ops(caller)
        .audit(
            owner.tenant_id(),
            "route.created",
            serde_json::json!({"route_id": route.id, "prefix": route.prefix}),
        )
        .await?;
    state.written().await?;
    Ok((StatusCode::CREATED, Json(route.into())))
}

async fn update_route_for(
    state: &ApiState,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
    request: &RouteRequest,
) -> ApiResult<Json<RouteView>> {
    let id = route_id(id)?;
    let (prefix, trunks, description) = route_body(request)?;
    let route = state
        .store
        .routes()
        .update(&caller.actor, owner, id, &prefix, &trunks, &description)
        .await?;
    state
        .ops(caller)
        .audit(
            owner.tenant_id(),
            "route.updated",
            serde_json::json!({"route_id": route.id, "prefix": route.prefix}),
        )
        .await?;
    state.written().await?;
    Ok(Json(route.into()))
}

async fn delete_route_for(
    state: &ApiState,
    caller: &Caller,
    owner: Owner<'_>,
    id: &str,
) -> ApiResult<StatusCode> {
    let id = route_id(id)?;
    state
        .store
        .routes()
        .delete(&caller.actor, owner, id)
        .await?;
    state
        .ops(caller)
        .audit(
            owner.tenant_id(),
            "route.deleted",
            serde_json::json!({"route_id": id}),
        )
        .await?;
    state.written().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tenant(state: &ApiState, caller: &Caller, tenant: &str) -> ApiResult<TenantScope> {
    state.scope(caller, tenant).await
}

/// Operator trunks (usable by every tenant's routes).
#[utoipa::path(get, path = "/api/v1/trunks", tag = "trunks", security(("bearer" = [])),
    responses((status = 200, body = [TrunkView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_operator_trunks(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TrunkView>>> {
    list_trunks_of(&state, &caller, Owner::Operator).await
}

/// Creates an operator trunk.
#[utoipa::path(post, path = "/api/v1/trunks", tag = "trunks", security(("bearer" = [])), request_body = TrunkRequest,
    responses((status = 201, body = TrunkView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_operator_trunk(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<TrunkRequest>,
) -> ApiResult<(StatusCode, Json<TrunkView>)> {
    create_trunk_for(&state, &caller, Owner::Operator, &request).await
}

/// One operator trunk, with its live registration state.
#[utoipa::path(get, path = "/api/v1/trunks/{trunk}", tag = "trunks", security(("bearer" = [])),
    params(("trunk" = String, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_operator_trunk(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TrunkView>> {
    let trunk = state
        .store
        .trunks()
        .get(&caller.actor, Owner::Operator, trunk_id(&id)?)
        .await?;
    Ok(Json(view(&state, trunk)))
}

/// Replaces an operator trunk's settings (an absent `auth_password` keeps the stored one).
#[utoipa::path(put, path = "/api/v1/trunks/{trunk}", tag = "trunks", security(("bearer" = [])), request_body = TrunkRequest,
    params(("trunk" = String, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_operator_trunk(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<TrunkRequest>,
) -> ApiResult<Json<TrunkView>> {
    update_trunk_for(&state, &caller, Owner::Operator, &id, &request).await
}

/// Deletes an operator trunk (and takes it off every route).
#[utoipa::path(delete, path = "/api/v1/trunks/{trunk}", tag = "trunks", security(("bearer" = [])),
    params(("trunk" = String, Path, description = "Trunk id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_operator_trunk(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete_trunk_for(&state, &caller, Owner::Operator, &id).await
}

/// A tenant's own trunks.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/trunks", tag = "trunks", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = [TrunkView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tenant_trunks(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_ref): Path<String>,
) -> ApiResult<Json<Vec<TrunkView>>> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    list_trunks_of(&state, &caller, Owner::Tenant(&scope)).await
}

/// Creates a trunk of the tenant.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/trunks", tag = "trunks", security(("bearer" = [])), request_body = TrunkRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = TrunkView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tenant_trunk(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_ref): Path<String>,
    ApiJson(request): ApiJson<TrunkRequest>,
) -> ApiResult<(StatusCode, Json<TrunkView>)> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    create_trunk_for(&state, &caller, Owner::Tenant(&scope), &request).await
}

/// One trunk of the tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/trunks/{trunk}", tag = "trunks", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("trunk" = String, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_tenant_trunk(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant_ref, id)): Path<(String, String)>,
) -> ApiResult<Json<TrunkView>> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    let trunk = state
        .store
        .trunks()
        .get(&caller.actor, Owner::Tenant(&scope), trunk_id(&id)?)
        .await?;
    Ok(Json(view(&state, trunk)))
}

/// Replaces a tenant trunk's settings.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/trunks/{trunk}", tag = "trunks", security(("bearer" = [])), request_body = TrunkRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("trunk" = String, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_tenant_trunk(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant_ref, id)): Path<(String, String)>,
    ApiJson(request): ApiJson<TrunkRequest>,
) -> ApiResult<Json<TrunkView>> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    update_trunk_for(&state, &caller, Owner::Tenant(&scope), &id, &request).await
}

/// Deletes a tenant trunk.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/trunks/{trunk}", tag = "trunks", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("trunk" = String, Path, description = "Trunk id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_tenant_trunk(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant_ref, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    delete_trunk_for(&state, &caller, Owner::Tenant(&scope), &id).await
}

/// Operator routes (the defaults for every tenant).
#[utoipa::path(get, path = "/api/v1/routes", tag = "trunks", security(("bearer" = [])),
    responses((status = 200, body = [RouteView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_operator_routes(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<RouteView>>> {
    let routes = state
        .store
        .routes()
        .list(&caller.actor, Owner::Operator)
        .await?;
    Ok(Json(routes.into_iter().map(Into::into).collect()))
}

/// Creates an operator route.
#[utoipa::path(post, path = "/api/v1/routes", tag = "trunks", security(("bearer" = [])), request_body = RouteRequest,
    responses((status = 201, body = RouteView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_operator_route(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<RouteRequest>,
) -> ApiResult<(StatusCode, Json<RouteView>)> {
    create_route_for(&state, &caller, Owner::Operator, &request).await
}

/// Replaces an operator route.
#[utoipa::path(put, path = "/api/v1/routes/{route}", tag = "trunks", security(("bearer" = [])), request_body = RouteRequest,
    params(("route" = String, Path, description = "Route id")),
    responses((status = 200, body = RouteView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_operator_route(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RouteRequest>,
) -> ApiResult<Json<RouteView>> {
    update_route_for(&state, &caller, Owner::Operator, &id, &request).await
}

/// Deletes an operator route.
#[utoipa::path(delete, path = "/api/v1/routes/{route}", tag = "trunks", security(("bearer" = [])),
    params(("route" = String, Path, description = "Route id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_operator_route(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete_route_for(&state, &caller, Owner::Operator, &id).await
}

/// A tenant's own routes (they win over operator routes of the same or shorter prefix).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/routes", tag = "trunks", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = [RouteView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tenant_routes(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_ref): Path<String>,
) -> ApiResult<Json<Vec<RouteView>>> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    let routes = state
        .store
        .routes()
        .list(&caller.actor, Owner::Tenant(&scope))
        .await?;
    Ok(Json(routes.into_iter().map(Into::into).collect()))
}

/// Creates a tenant route (its trunks: the tenant's own or operator trunks).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/routes", tag = "trunks", security(("bearer" = [])), request_body = RouteRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = RouteView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tenant_route(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_ref): Path<String>,
    ApiJson(request): ApiJson<RouteRequest>,
) -> ApiResult<(StatusCode, Json<RouteView>)> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    create_route_for(&state, &caller, Owner::Tenant(&scope), &request).await
}

/// Replaces a tenant route.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/routes/{route}", tag = "trunks", security(("bearer" = [])), request_body = RouteRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("route" = String, Path, description = "Route id")),
    responses((status = 200, body = RouteView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_tenant_route(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant_ref, id)): Path<(String, String)>,
    ApiJson(request): ApiJson<RouteRequest>,
) -> ApiResult<Json<RouteView>> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    update_route_for(&state, &caller, Owner::Tenant(&scope), &id, &request).await
}

/// Deletes a tenant route.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/routes/{route}", tag = "trunks", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("route" = String, Path, description = "Route id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_tenant_route(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant_ref, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    delete_route_for(&state, &caller, Owner::Tenant(&scope), &id).await
}

/// A tenant's calling settings (numbering plan country, main number).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/call-settings", tag = "trunks", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = CallSettingsView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_call_settings(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_ref): Path<String>,
) -> ApiResult<Json<CallSettingsView>> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    Ok(Json(state.store.trunks().settings(&scope).await?.into()))
}

/// Sets a tenant's calling settings.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/call-settings", tag = "trunks", security(("bearer" = [])), request_body = CallSettingsRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = CallSettingsView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_call_settings(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_ref): Path<String>,
    ApiJson(request): ApiJson<CallSettingsRequest>,
) -> ApiResult<Json<CallSettingsView>> {
    let scope = tenant(&state, &caller, &tenant_ref).await?;
    if pbx_routing::NumberPlan::for_country(&request.country).is_none() {
        return Err(ApiError::invalid(
            "country",
            "not an ISO 3166 country with a numbering plan",
        ));
    }
    let settings = state
        .store
        .trunks()
        .set_settings(&scope, &request.country, request.main_number.as_ref())
        .await?;
    state
        .ops(&caller)
        .audit(
            Some(scope.tenant_id()),
            "call_settings.updated",
            serde_json::json!({"country": settings.country, "main_number": settings.main_number}),
        )
        .await?;
    state.written().await?;
    Ok(Json(settings.into()))
}
