//! `/api/v1/tenants/{tenant}/cdrs`: a tenant's call detail records, filtered and paged.

use axum::Json;
use axum::extract::{Path, Query, State};
use pbx_domain::{CdrId, UserId};
use pbx_store::CdrFilter;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::model::{CdrPage, CdrQuery, CdrView};
use crate::state::{ApiState, Caller};

fn bad(parameter: &'static str, message: &str) -> ApiError {
    ApiError::InvalidParameter {
        parameter,
        message: message.to_owned(),
    }
}

fn parse_cursor(text: &str) -> ApiResult<(i64, CdrId)> {
    let (start, id) = text
        .split_once('_')
        .ok_or_else(|| bad("cursor", "not a cursor from a previous page"))?;
    let start = start
        .parse()
        .map_err(|_| bad("cursor", "not a cursor from a previous page"))?;
    let id = id
        .parse()
        .map_err(|_| bad("cursor", "not a cursor from a previous page"))?;
    Ok((start, id))
}

/// Lists the tenant's CDRs, newest first. Filters combine; page with `limit` and the
/// `next_cursor` of the previous page.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/cdrs", tag = "cdrs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), CdrQuery),
    responses((status = 200, body = CdrPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_cdrs(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<CdrQuery>,
) -> ApiResult<Json<CdrPage>> {
    let scope = state.scope(&caller, &tenant).await?;
    let user: Option<UserId> = match query.user.as_deref() {
        None => None,
        Some(user) => match state.ops(&caller).user(&scope, user).await {
            Ok(found) => Some(found.id),
            Err(ApiError::NotFound { .. }) => {
                return Err(bad("user", "no such user in this tenant"));
            }
            Err(other) => return Err(other),
        },
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit", "must be 1 to 1000"));
    }
    let filter = CdrFilter {
        from_ms: query.from,
        to_ms: query.to,
        user,
        direction: query
            .direction
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| bad("direction", "internal, outbound or inbound"))?,
        disposition: query
            .disposition
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| bad("disposition", "not a disposition"))?,
        state: query
            .state
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| bad("state", "open or closed"))?,
        number: query
            .number
            .clone()
            .filter(|number| !number.trim().is_empty()),
        after: query.cursor.as_deref().map(parse_cursor).transpose()?,
        limit,
    };
    let records = state.store.cdrs().list(&scope, &filter).await?;
    let next_cursor = (records.len() == limit as usize)
        .then(|| {
            records
                .last()
                .map(|last| format!("{}_{}", last.start_ms, last.id))
        })
        .flatten();
    Ok(Json(CdrPage {
        items: records.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One CDR of the tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/cdrs/{cdr}", tag = "cdrs", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("cdr" = String, Path, description = "CDR id")),
    responses((status = 200, body = CdrView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_cdr(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, cdr)): Path<(String, String)>,
) -> ApiResult<Json<CdrView>> {
    let scope = state.scope(&caller, &tenant).await?;
    let id: CdrId = cdr
        .parse()
        .map_err(|_| ApiError::NotFound { what: "CDR" })?;
    Ok(Json(state.store.cdrs().get(&scope, id).await?.into()))
}
