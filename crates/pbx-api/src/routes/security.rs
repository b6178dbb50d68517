//! The fraud guard (`/security`): bans and throttles (operator), per-tenant security events,
//! user-name throttles, outbound blocks and outbound destination exceptions (operator,
//! reseller, customer admin of the tenant).

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use pbx_domain::Actor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::model::EventView;
use crate::ops::security::{BanView, BlockView, ThrottleView};
use crate::state::{ApiState, Caller, now_ms};

/// `?limit=&type=` of security event listings.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct SecurityEventQuery {
    /// At most this many events, newest first (1–1000, default 100).
    pub limit: Option<u32>,
    /// Only events of this type: `source_banned`, `source_unbanned`, `user_throttled`,
    /// `tenant_under_attack`, `whitelist_rejected`, `destination_blocked`,
    /// `threshold_breached`, `baseline_anomaly`, `account_blocked`, `account_unblocked`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
}

/// `POST /api/v1/security/bans`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBan {
    /// The address to ban (IPv6: its whole prefix, /64 by default).
    #[schema(example = "192.0.2.66")]
    pub address: String,
}

fn limit(query: &SecurityEventQuery) -> ApiResult<u32> {
    match query.limit {
        None => Ok(100),
        Some(limit @ 1..=1000) => Ok(limit),
        Some(_) => Err(ApiError::InvalidParameter {
            parameter: "limit",
            message: "must be 1 to 1000".to_owned(),
        }),
    }
}

pub(super) async fn audit(
    state: &ApiState,
    caller: &Caller,
    tenant: Option<pbx_domain::TenantId>,
    kind: &str,
    what: serde_json::Value,
) -> ApiResult<()> {
    let payload = serde_json::json!({
        "actor": format!("{:?}", caller.actor),
        "token_id": caller.token.id.to_string(),
        "target": what,
    });
    state
        .store
        .events()
        .append(now_ms(), tenant, kind, &payload)
        .await?;
    state.metrics.record_write();
    Ok(())
}

/// Active source bans, longest remaining first (operator only).
#[utoipa::path(get, path = "/api/v1/security/bans", tag = "security", security(("bearer" = [])),
    responses((status = 200, body = [BanView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_bans(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<BanView>>> {
    caller.require_operator()?;
    Ok(Json(state.security.bans()))
}

/// Bans an address by hand (operator only). Audited like every ban.
#[utoipa::path(post, path = "/api/v1/security/bans", tag = "security", security(("bearer" = [])), request_body = CreateBan,
    responses((status = 201, body = BanView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_ban(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateBan>,
) -> ApiResult<(StatusCode, Json<BanView>)> {
    caller.require_operator()?;
    let address: IpAddr = request
        .address
        .trim()
        .parse()
        .map_err(|_| ApiError::InvalidField {
            field: "address".to_owned(),
            message: "not an IPv4 or IPv6 address".to_owned(),
        })?;
    let ban = state.security.ban(address).ok_or(ApiError::Conflict {
        field: "address",
        message: "the guard is not running in this process".to_owned(),
    })?;
    audit(
        &state,
        &caller,
        None,
        "security.ban_created",
        serde_json::json!(ban.source),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ban)))
}

/// Lifts a ban and forgets the source's escalation history (operator only). `source` is an
/// address or a listed IPv6 prefix (`2001:db8:1:2::%2F64`).
#[utoipa::path(delete, path = "/api/v1/security/bans/{source}", tag = "security", security(("bearer" = [])),
    params(("source" = String, Path, description = "Banned address or IPv6 prefix")),
    responses((status = 204, description = "lifted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_ban(
    State(state): State<ApiState>,
    caller: Caller,
    Path(source): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_operator()?;
    match state.security.unban(&source) {
        None => Err(ApiError::InvalidParameter {
            parameter: "source",
            message: "not an address or IPv6 prefix".to_owned(),
        }),
        Some(false) => Err(ApiError::NotFound { what: "ban" }),
        Some(true) => {
            audit(
                &state,
                &caller,
                None,
                "security.ban_lifted",
                serde_json::json!(source),
            )
            .await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// All throttled user names (operator only).
#[utoipa::path(get, path = "/api/v1/security/throttles", tag = "security", security(("bearer" = [])),
    responses((status = 200, body = [ThrottleView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_throttles(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ThrottleView>>> {
    caller.require_operator()?;
    Ok(Json(state.security.throttles()))
}

/// The platform's security events, newest first (operator only).
#[utoipa::path(get, path = "/api/v1/security/events", tag = "security", security(("bearer" = [])), params(SecurityEventQuery),
    responses((status = 200, body = [EventView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_security_events(
    State(state): State<ApiState>,
    caller: Caller,
    Query(query): Query<SecurityEventQuery>,
) -> ApiResult<Json<Vec<EventView>>> {
    caller.require_operator()?;
    let events = state
        .store
        .security()
        .list_all(&caller.actor, query.kind.as_deref(), limit(&query)?)
        .await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}

/// The tenant's security events (bans of sources attacking it, whitelist refusals, blocked
/// destinations, threshold breaches, baseline anomalies, blocks), newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/security/events", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), SecurityEventQuery),
    responses((status = 200, body = [EventView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tenant_security_events(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<SecurityEventQuery>,
) -> ApiResult<Json<Vec<EventView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let events = state
        .store
        .security()
        .list(&scope, query.kind.as_deref(), limit(&query)?)
        .await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}

/// The tenant's throttled SIP user names.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/security/throttles", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = [ThrottleView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tenant_throttles(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<ThrottleView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let id = Some(scope.tenant_id().as_uuid());
    Ok(Json(
        state
            .security
            .throttles()
            .into_iter()
            .filter(|t| t.tenant_id == id)
            .collect(),
    ))
}

/// Lifts the throttle of one of the tenant's SIP user names (audited).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/security/throttles/{user_name}", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user_name" = String, Path, description = "SIP auth user name")),
    responses((status = 204, description = "lifted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_tenant_throttle(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user_name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    let id = Some(scope.tenant_id().as_uuid());
    let ours = state
        .security
        .throttles()
        .iter()
        .any(|t| t.user_name == user_name && t.tenant_id == id);
    if !ours || !state.security.unthrottle(&user_name) {
        return Err(ApiError::NotFound { what: "throttle" });
    }
    audit(
        &state,
        &caller,
        Some(scope.tenant_id()),
        "security.user_unthrottled",
        serde_json::json!(user_name),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's accounts blocked for outbound calls (baseline anomaly or by hand).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/security/blocks", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = [BlockView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tenant_blocks(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<BlockView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let id = scope.tenant_id().as_uuid();
    Ok(Json(
        state
            .security
            .blocks()
            .into_iter()
            .filter(|b| b.tenant_id == id)
            .collect(),
    ))
}

/// `POST /api/v1/tenants/{tenant}/security/blocks`: block an account now.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBlock {
    /// The user to block: its id or extension, in this tenant.
    #[schema(example = "201")]
    pub user: String,
    /// Why (kept in the audit log), at most 500 characters.
    #[schema(example = "calls to Latvia at night, customer did not recognise them")]
    pub reason: Option<String>,
}

/// Longest block reason.
const MAX_REASON: usize = 500;

/// Blocks an account's outbound calls now (operator, reseller or the tenant's admin;
/// audited), exactly as a threshold breach does: every outbound call of the account but
/// emergency calls gets 403 until the block is lifted (`DELETE .../blocks/{user}`), its
/// outbound calls in progress are ended, an `account_blocked` security event is raised and
/// the block survives a restart. `201` when blocked now, `200` when it was blocked already.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/security/blocks", tag = "security", security(("bearer" = [])),
    request_body = CreateBlock,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = BlockView), (status = 200, body = BlockView, description = "blocked already"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tenant_block(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<CreateBlock>,
) -> ApiResult<(StatusCode, Json<BlockView>)> {
    let scope = state.scope(&caller, &tenant).await?;
    let reason = request.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError::InvalidField {
            field: "reason".to_owned(),
            message: format!("at most {MAX_REASON} characters, no control characters"),
        });
    }
    let user = state
        .ops(&caller)
        .user_field(&scope, "user", &request.user)
        .await?;
    let newly = state
        .security
        .block(scope.tenant_id(), user.id)
        .ok_or(ApiError::Conflict {
            field: "user",
            message: "the guard is not running in this process".to_owned(),
        })?;
    let view = BlockView {
        user_id: user.id.as_uuid(),
        tenant_id: scope.tenant_id().as_uuid(),
    };
    if !newly {
        return Ok((StatusCode::OK, Json(view)));
    }
    audit(
        &state,
        &caller,
        Some(scope.tenant_id()),
        "security.block_created",
        serde_json::json!({ "user_id": user.id.to_string(), "reason": reason }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Lifts a user's outbound block (operator or the tenant's admin; audited).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/security/blocks/{user}", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id or extension")),
    responses((status = 204, description = "lifted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_tenant_block(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    let user = state.ops(&caller).user(&scope, &user).await?;
    if !state.security.lift_block(scope.tenant_id(), user.id) {
        return Err(ApiError::NotFound { what: "block" });
    }
    audit(
        &state,
        &caller,
        Some(scope.tenant_id()),
        "security.block_lifted",
        serde_json::json!(user.id.to_string()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A tenant's explicit outbound destination exceptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DestinationExceptionsView {
    /// E.164 prefixes the tenant may call although blocked by default (premium rate,
    /// satellite, high-fraud ranges), normalised to `+digits`. The longest matching prefix
    /// of both lists wins; on a tie, block wins. Emergency numbers are never blocked.
    #[schema(example = json!(["+31909123"]))]
    pub allow: Vec<String>,
    /// Extra E.164 prefixes the tenant blocks.
    #[schema(example = json!(["+44", "+1900"]))]
    pub block: Vec<String>,
    /// Last change (Unix ms); `null` when never set.
    pub updated_at_ms: Option<i64>,
}

/// `PUT /api/v1/tenants/{tenant}/security/destination-exceptions`: replaces both lists.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetDestinationExceptions {
    /// E.164 prefixes to allow although blocked by default: `+` (optional) then 1 to 15
    /// digits, not starting with 0; at most 1000. Only the operator or the tenant's reseller
    /// may change this list (lifting a default block is a toll-fraud risk).
    #[schema(example = json!(["+31909123"]))]
    pub allow: Vec<String>,
    /// E.164 prefixes to block, same form; at most 1000.
    #[schema(example = json!(["+44", "+1900"]))]
    pub block: Vec<String>,
}

/// Most prefixes per list.
const MAX_PREFIXES: usize = 1000;

/// Validates and normalises one list (`+digits`, duplicates dropped, order kept).
fn prefix_list(field: &str, list: &[String]) -> ApiResult<Vec<String>> {
    if list.len() > MAX_PREFIXES {
        return Err(ApiError::InvalidField {
            field: field.to_owned(),
            message: format!("at most {MAX_PREFIXES} prefixes"),
        });
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (index, prefix) in list.iter().enumerate() {
        let text = prefix.trim();
        let digits = text.strip_prefix('+').unwrap_or(text);
        let valid = (1..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !valid {
            return Err(ApiError::InvalidField {
                field: format!("{field}.{index}"),
                message: "not an E.164 prefix: an optional '+' then 1 to 15 digits, not \
                          starting with 0"
                    .to_owned(),
            });
        }
        let normalised = format!("+{digits}");
        if !out.contains(&normalised) {
            out.push(normalised);
        }
    }
    Ok(out)
}

/// The tenant's outbound destination exceptions.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/security/destination-exceptions", tag = "security", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = DestinationExceptionsView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_destination_exceptions(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<DestinationExceptionsView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let stored = state
        .store
        .security()
        .destination_exceptions(&scope)
        .await?;
    Ok(Json(match stored {
        Some(stored) => DestinationExceptionsView {
            allow: stored.allow,
            block: stored.block,
            updated_at_ms: Some(stored.updated_at_ms),
        },
        None => DestinationExceptionsView {
            allow: Vec::new(),
            block: Vec::new(),
            updated_at_ms: None,
        },
    }))
}

/// Replaces the tenant's outbound destination exceptions (audited; in force for the next
/// call). A customer admin may change `block` only: `allow` must stay as it is.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/security/destination-exceptions", tag = "security", security(("bearer" = [])),
    request_body = SetDestinationExceptions,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = DestinationExceptionsView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_destination_exceptions(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<SetDestinationExceptions>,
) -> ApiResult<Json<DestinationExceptionsView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let allow = prefix_list("allow", &request.allow)?;
    let block = prefix_list("block", &request.block)?;
    if let Some(index) = block.iter().position(|prefix| allow.contains(prefix)) {
        return Err(ApiError::InvalidField {
            field: format!("block.{index}"),
            message: "the same prefix is in allow".to_owned(),
        });
    }
    let security = state.store.security();
    if matches!(caller.actor, Actor::CustomerAdmin(_)) {
        let current = security
            .destination_exceptions(&scope)
            .await?
            .map(|stored| stored.allow)
            .unwrap_or_default();
        if current != allow {
            return Err(ApiError::Forbidden {
                reason: "allow: only the operator or the tenant's reseller may lift default blocks",
            });
        }
    }
    let stored = security
        .set_destination_exceptions(&scope, &allow, &block)
        .await?;
    state
        .security
        .set_destination_exceptions(scope.tenant_id(), allow.clone(), block.clone());
    audit(
        &state,
        &caller,
        Some(scope.tenant_id()),
        "security.destination_exceptions_changed",
        serde_json::json!({ "allow": allow, "block": block }),
    )
    .await?;
    Ok(Json(DestinationExceptionsView {
        allow: stored.allow,
        block: stored.block,
        updated_at_ms: Some(stored.updated_at_ms),
    }))
}
