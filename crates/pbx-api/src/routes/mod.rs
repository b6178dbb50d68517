//! The router: every API path, the OpenAPI document, health and metrics.

mod cdrs;
mod devices;
mod limits;
mod lines;
mod provisioning;
mod registrations;
mod security;
mod tenants;
mod tokens;
mod trunks;
mod users;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::state::ApiState;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CloudPBX management API",
        description = "Tenants, users, devices, IP whitelists, numbers, registrations and API tokens. \
            Authenticate with `Authorization: Bearer <token>`. `{tenant}` is the tenant's id or slug. \
            Errors are `{\"error\": {\"code\", \"field\", \"message\"}}`; objects outside the caller's \
            scope are 404."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "resellers", description = "Resellers (operator)"),
        (name = "tenants", description = "Customer companies"),
        (name = "users", description = "Users (extensions) of a tenant"),
        (name = "devices", description = "Phones and apps, each with its own SIP credential"),
        (name = "ip-whitelist", description = "Networks SIP traffic of a tenant or user may come from"),
        (name = "numbers", description = "Phone numbers (DIDs)"),
        (name = "registrations", description = "Current SIP registrations"),
        (name = "tokens", description = "API tokens"),
        (name = "trunks", description = "SIP trunks to carriers, outbound routes, calling settings"),
        (name = "cdrs", description = "Call detail records"),
        (name = "events", description = "Audit log"),
        (name = "security", description = "Fraud guard: bans, throttles, outbound blocks, usage limits, security events"),
        (name = "provisioning", description = "Phone auto-provisioning: TFTP/HTTPS config files, manual settings, fetch log"),
        (name = "meta", description = "Health, metrics, this document")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(
            "An API token (`cpbx_...`) created with POST /api/v1/tokens or printed at bootstrap"
                .to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// The API and its OpenAPI document, before the state is attached.
fn api() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tenants::list_resellers, tenants::create_reseller))
        .routes(routes!(tenants::list_tenants, tenants::create_tenant))
        .routes(routes!(
            tenants::get_tenant,
            tenants::update_tenant,
            tenants::delete_tenant
        ))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(devices::list_devices, devices::create_device))
        .routes(routes!(
            devices::get_device,
            devices::update_device,
            devices::delete_device
        ))
        .routes(routes!(devices::rotate_credentials))
        .routes(routes!(
            lines::list_whitelist,
            lines::create_whitelist_entry
        ))
        .routes(routes!(
            lines::get_whitelist_entry,
            lines::delete_whitelist_entry
        ))
        .routes(routes!(
            lines::list_user_whitelist,
            lines::create_user_whitelist_entry
        ))
        .routes(routes!(lines::list_free_numbers, lines::add_number))
        .routes(routes!(lines::list_numbers, lines::assign_number))
        .routes(routes!(
            lines::get_number,
            lines::route_number,
            lines::unassign_number
        ))
        .routes(routes!(
            registrations::list_registrations,
            registrations::clear_registrations
        ))
        .routes(routes!(
            registrations::list_user_registrations,
            registrations::clear_user_registrations
        ))
        .routes(routes!(registrations::list_tenant_events))
        .routes(routes!(registrations::list_events))
        .routes(routes!(security::list_bans, security::create_ban))
        .routes(routes!(security::delete_ban))
        .routes(routes!(security::list_throttles))
        .routes(routes!(security::list_security_events))
        .routes(routes!(security::list_tenant_security_events))
        .routes(routes!(security::list_tenant_throttles))
        .routes(routes!(security::delete_tenant_throttle))
        .routes(routes!(
            security::list_tenant_blocks,
            security::create_tenant_block
        ))
        .routes(routes!(security::delete_tenant_block))
        .routes(routes!(
            security::get_destination_exceptions,
            security::put_destination_exceptions
        ))
        .routes(routes!(
            limits::get_tenant_limits,
            limits::put_tenant_limits,
            limits::delete_tenant_limits
        ))
        .routes(routes!(
            limits::get_user_limits,
            limits::put_user_limits,
            limits::delete_user_limits
        ))
        .routes(routes!(
            trunks::list_operator_trunks,
            trunks::create_operator_trunk
        ))
        .routes(routes!(
            trunks::get_operator_trunk,
            trunks::update_operator_trunk,
            trunks::delete_operator_trunk
        ))
        .routes(routes!(
            trunks::list_tenant_trunks,
            trunks::create_tenant_trunk
        ))
        .routes(routes!(
            trunks::get_tenant_trunk,
            trunks::update_tenant_trunk,
            trunks::delete_tenant_trunk
        ))
        .routes(routes!(
            trunks::list_operator_routes,
            trunks::create_operator_route
        ))
        .routes(routes!(
            trunks::update_operator_route,
            trunks::delete_operator_route
        ))
        .routes(routes!(
            trunks::list_tenant_routes,
            trunks::create_tenant_route
        ))
        .routes(routes!(
            trunks::update_tenant_route,
            trunks::delete_tenant_route
        ))
        .routes(routes!(
            trunks::get_call_settings,
            trunks::put_call_settings
        ))
        .routes(routes!(cdrs::list_cdrs))
        .routes(routes!(cdrs::get_cdr))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::get_token, tokens::revoke_token))
        .routes(routes!(
            provisioning::get_tenant_provisioning,
            provisioning::update_tenant_provisioning
        ))
        .routes(routes!(provisioning::list_tenant_fetches))
        .routes(routes!(
            provisioning::get_device_provisioning,
            provisioning::enable_device_provisioning,
            provisioning::disable_device_provisioning
        ))
        .routes(routes!(provisioning::list_device_fetches))
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .split_for_parts()
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut document) = api();
    add_document_path(&mut document);
    document
}

fn add_document_path(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::response::ResponseBuilder;
    let operation = OperationBuilder::new()
        .tag("meta")
        .summary(Some("This OpenAPI document"))
        .response(
            "200",
            ResponseBuilder::new().description("OpenAPI 3.1 document (JSON)"),
        )
        .build();
    document
        .paths
        .add_path_operation(OPENAPI_PATH, vec![HttpMethod::Get], operation);
}

/// Builds the API router on `state`. It binds no socket: the server serves it (or tests
/// call it through `tower::ServiceExt::oneshot`).
pub fn router(state: ApiState) -> Router {
    let (router, mut document) = api();
    add_document_path(&mut document);
    let document = Arc::new(document.to_json().unwrap_or_else(|error| {
        tracing::error!(%error, "cannot serialise the OpenAPI document");
        "{}".to_owned()
    }));
    router
        .route(
            OPENAPI_PATH,
            get(move || {
                let document = Arc::clone(&document);
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        document.as_str().to_owned(),
                    )
                }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

async fn count_responses(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.metrics.record_response(response.status().as_u16());
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound { what: "path" }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Liveness: 200 while the store answers.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "healthy", body = Object), (status = 503, description = "store unreachable", body = Object)))]
async fn healthz(State(state): State<ApiState>) -> Response {
    let store_ok = sqlx::query("SELECT 1")
        .fetch_one(state.store.pool())
        .await
        .is_ok();
    let snapshot = state.directory.snapshot();
    let body = serde_json::json!({
        "status": if store_ok { "ok" } else { "degraded" },
        "store": if store_ok { "ok" } else { "unreachable" },
        "directory_generation": snapshot.generation(),
    });
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "meta", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<ApiState>) -> Response {
    let mut text = state.metrics.render(&state.directory.snapshot());
    text.push_str(&state.security.metrics_text());
    for source in &state.metrics_sources {
        text.push_str(&source.render());
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
