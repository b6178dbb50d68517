//! `/api/v1/tokens`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pbx_domain::ApiTokenId;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::model::{CreateToken, TokenCreatedView, TokenView};
use crate::state::{ApiState, Caller};

fn token_id(text: &str) -> ApiResult<ApiTokenId> {
    text.parse()
        .map_err(|_| ApiError::NotFound { what: "API token" })
}

/// Lists the tokens the caller may see (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = [TokenView]), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenView>>> {
    let tokens = state.ops(&caller).tokens().await?;
    Ok(Json(tokens.into_iter().map(Into::into).collect()))
}

/// Creates a token. The secret is in this response only; the platform keeps its SHA-256.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = TokenCreatedView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenCreatedView>)> {
    let (token, secret) = state.ops(&caller).create_token(&request).await?;
    state.metrics.record_write();
    Ok((
        StatusCode::CREATED,
        Json(TokenCreatedView {
            token: token.into(),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// One token.
#[utoipa::path(get, path = "/api/v1/tokens/{token}", tag = "tokens", security(("bearer" = [])),
    params(("token" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_token(
    State(state): State<ApiState>,
    caller: Caller,
    Path(token): Path<String>,
) -> ApiResult<Json<TokenView>> {
    Ok(Json(
        state.ops(&caller).token(token_id(&token)?).await?.into(),
    ))
}

/// Revokes a token: it is refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/tokens/{token}", tag = "tokens", security(("bearer" = [])),
    params(("token" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<ApiState>,
    caller: Caller,
    Path(token): Path<String>,
) -> ApiResult<Json<TokenView>> {
    let revoked = state.ops(&caller).revoke_token(token_id(&token)?).await?;
    state.metrics.record_write();
    Ok(Json(revoked.into()))
}
