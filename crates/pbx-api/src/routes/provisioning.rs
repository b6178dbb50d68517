//! `/api/v1/tenants/{tenant}/provisioning` and `/api/v1/tenants/{tenant}/devices/{device}/provisioning`:
//! phone auto-provisioning (enable a device, its URLs and files, the manual-settings view,
//! the fetch log, the tenant's time zone and language).
//!
//! Enabling provisioning re-keys the device's SIP password and keeps the new one sealed with
//! the server's provisioning key (see `pbx_provision::seal`), because config files must carry
//! it while the credential table holds only HA1 digests. Rotating the credential through
//! `.../credentials/rotate` afterwards makes the sealed copy stale: the files are then refused
//! (`stale_credentials` in the fetch log) until provisioning is enabled again.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use pbx_domain::{Device, DeviceId, DeviceKind, TenantId};
use pbx_provision::{Provisioner, TenantValues};
use pbx_store::{ProvisioningFetch, Store, TenantScope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::state::{ApiState, Caller};

type Prov = Option<Extension<Arc<Provisioner>>>;

fn provisioner(prov: Prov) -> ApiResult<Arc<Provisioner>> {
    prov.map(|Extension(p)| p).ok_or(ApiError::Conflict {
        field: "provisioning",
        message: "provisioning is off on this server ([provisioning] enabled = false)".into(),
    })
}

fn device_id(text: &str) -> ApiResult<DeviceId> {
    text.parse()
        .map_err(|_| ApiError::NotFound { what: "device" })
}

/// A tenant's provisioning values.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantProvisioningView {
    /// IANA time zone written into the files.
    pub time_zone: String,
    /// Language code written into the files.
    pub language: String,
    /// Whether these are the platform defaults (the tenant set none).
    pub defaults: bool,
    /// The address to give phones (or put into DHCP option 66).
    pub tftp_url: String,
}

/// Changes to a tenant's provisioning values.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantProvisioning {
    /// IANA time zone (`Europe/Amsterdam`).
    pub time_zone: Option<String>,
    /// Language code (`en`, `nl`, `de`, `fr`, `es`, `it`).
    pub language: Option<String>,
}

/// What a person types into a phone configured by hand.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ManualSettingsView {
    /// Registrar / outbound proxy.
    pub sip_server: String,
    /// Its port.
    pub sip_port: u16,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// SIP domain.
    pub domain: String,
    /// SIP user (extension).
    pub user: String,
    /// Authentication user name.
    pub auth_username: String,
    /// Password; absent unless provisioning is enabled and current for the device.
    pub password: Option<String>,
    /// Caller name.
    pub display_name: String,
    /// Line label.
    pub label: String,
    /// NAT keep-alive interval.
    pub nat_keepalive_secs: u32,
    /// Registration expiry.
    pub register_expiry_secs: u32,
    /// Codecs in order.
    pub codecs: Vec<String>,
    /// Time zone.
    pub time_zone: String,
    /// Language.
    pub language: String,
}

/// A device's provisioning state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceProvisioningView {
    /// `ready`, `not_enabled`, `stale_credentials`, `credential_disabled` or `no_credential`.
    pub state: String,
    /// TFTP base for the tenant (`tftp://host/company`).
    pub tftp_url: String,
    /// The device's own HTTPS URL (phones append the file names); only when enabled.
    pub https_url: Option<String>,
    /// The files the phone fetches, in boot order (desk phones of a supported brand).
    pub files: Vec<String>,
    /// The manual settings.
    pub manual: ManualSettingsView,
}

/// One fetch from the log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FetchView {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Device, when the request named one.
    pub device_id: Option<String>,
    /// `tftp` or `https`.
    pub protocol: String,
    /// Source address.
    pub source_ip: String,
    /// Source port.
    pub source_port: u16,
    /// Requested path.
    pub path: String,
    /// `served`, or why not (`not_whitelisted`, `not_enabled`, `stale_credentials`, ...).
    pub result: String,
    /// Bytes delivered.
    pub bytes: u64,
}

impl From<ProvisioningFetch> for FetchView {
    fn from(fetch: ProvisioningFetch) -> Self {
        Self {
            at_ms: fetch.at_ms,
            device_id: fetch.device_id.map(|id| id.to_string()),
            protocol: fetch.protocol,
            source_ip: fetch.source_ip,
            source_port: fetch.source_port,
            path: fetch.path,
            result: fetch.result,
            bytes: fetch.bytes,
        }
    }
}

/// `?limit=`
#[derive(Debug, Clone, Deserialize, IntoParams)]
pub struct FetchQuery {
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<u32>,
}

async fn tenant_values(store: &Store, scope: &TenantScope) -> ApiResult<(TenantValues, bool)> {
    Ok(match store.provisioning().tenant_settings(scope).await? {
        Some(row) => (
            TenantValues {
                time_zone: Some(row.time_zone),
                language: Some(row.language),
            },
            false,
        ),
        None => (TenantValues::default(), true),
    })
}

fn tenant_of(state: &ApiState, tenant: TenantId) -> ApiResult<pbx_domain::Tenant> {
    state
        .directory
        .snapshot()
        .tenant(tenant)
        .cloned()
        .ok_or(ApiError::NotFound { what: "tenant" })
}

/// A tenant's provisioning values and TFTP address.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/provisioning", tag = "provisioning", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TenantProvisioningView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn get_tenant_provisioning(
    State(state): State<ApiState>,
    prov: Prov,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<TenantProvisioningView>> {
    let prov = provisioner(prov)?;
    let scope = state.scope(&caller, &tenant).await?;
    let tenant = tenant_of(&state, scope.tenant_id())?;
    let (values, defaults) = tenant_values(&state.store, &scope).await?;
    Ok(Json(TenantProvisioningView {
        time_zone: prov.platform.zone(&values).name,
        language: prov.platform.language(&values).code,
        defaults,
        tftp_url: prov.platform.tftp_base(&tenant),
    }))
}

/// Sets a tenant's time zone and language for its phones.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/provisioning", tag = "provisioning", security(("bearer" = [])), request_body = UpdateTenantProvisioning,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = TenantProvisioningView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_tenant_provisioning(
    State(state): State<ApiState>,
    prov: Prov,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<UpdateTenantProvisioning>,
) -> ApiResult<Json<TenantProvisioningView>> {
    let prov = provisioner(prov)?;
    let scope = state.scope(&caller, &tenant).await?;
    let tenant = tenant_of(&state, scope.tenant_id())?;
    let (current, _) = tenant_values(&state.store, &scope).await?;
    let time_zone = request
        .time_zone
        .or(current.time_zone)
        .unwrap_or_else(|| prov.platform.default_time_zone.clone());
    let language = request
        .language
        .or(current.language)
        .unwrap_or_else(|| prov.platform.default_language.clone())
        .to_ascii_lowercase();
    let zone = pbx_provision::ZoneSpellings::of(&time_zone).ok_or(ApiError::InvalidField {
        field: "time_zone".into(),
        message: format!("`{time_zone}` is not an IANA time zone"),
    })?;
    if pbx_provision::LanguageSpellings::of(&language).is_none() {
        let known: Vec<&str> = pbx_provision::locale::supported_languages().collect();
        return Err(ApiError::InvalidField {
            field: "language".into(),
            message: format!("use one of {}", known.join(", ")),
        });
    }
    state
        .store
        .provisioning()
        .set_tenant_settings(&scope, &zone.name, &language)
        .await?;
    Ok(Json(TenantProvisioningView {
        time_zone: zone.name,
        language,
        defaults: false,
        tftp_url: prov.platform.tftp_base(&tenant),
    }))
}

async fn device_view(
    state: &ApiState,
    prov: &Provisioner,
    caller: &Caller,
    scope: &TenantScope,
    device: DeviceId,
) -> ApiResult<DeviceProvisioningView> {
    let (device, credential): (Device, _) = state.ops(caller).device(scope, device).await?;
    let tenant = tenant_of(state, scope.tenant_id())?;
    let user = state.store.users().get(scope, device.user_id).await?;
    let (values, _) = tenant_values(&state.store, scope).await?;
    let secret = state
        .store
        .provisioning()
        .device_secret(scope, device.id)
        .await?;
    let (status, password, https_url) = match (&credential, &secret) {
        (None, _) => ("no_credential", None, None),
        (Some(_), None) => ("not_enabled", None, None),
        (Some(credential), Some(secret)) => {
            let url = prov.https_url(device.id, secret.provisioning.url_epoch);
            if !credential.enabled {
                ("credential_disabled", None, url)
            } else if credential.ha1_md5.as_hex() != secret.provisioning.sealed_ha1_md5 {
                ("stale_credentials", None, url)
            } else {
                let password = prov
                    .sealer
                    .open(device.id, &secret.provisioning.sealed_password)
                    .ok();
                let status = if password.is_some() {
                    "ready"
                } else {
                    "unseal_failed"
                };
                (status, password, url)
            }
        }
    };
    let auth_username = credential
        .as_ref()
        .map(|c| c.auth_username.to_string())
        .unwrap_or_default();
    let manual = prov
        .platform
        .manual(&tenant, &values, &user, &device, &auth_username, password);
    let files = if matches!(device.kind, DeviceKind::DeskPhone { .. }) {
        pbx_provision::platform::device_files(&device)
    } else {
        Vec::new()
    };
    Ok(DeviceProvisioningView {
        state: status.to_owned(),
        tftp_url: prov.platform.tftp_base(&tenant),
        https_url,
        files,
        manual: ManualSettingsView {
            sip_server: manual.sip_server,
            sip_port: manual.sip_port,
            transport: manual.transport,
            domain: manual.domain,
            user: manual.user,
            auth_username: manual.auth_username,
            password: manual.password,
            display_name: manual.display_name,
            label: manual.label,
            nat_keepalive_secs: manual.nat_keepalive_secs,
            register_expiry_secs: manual.register_expiry_secs,
            codecs: manual.codecs,
            time_zone: manual.time_zone,
            language: manual.language,
        },
    })
}

/// A device's provisioning state, URLs, files and manual settings.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/provisioning", tag = "provisioning", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("device" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceProvisioningView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn get_device_provisioning(
    State(state): State<ApiState>,
    prov: Prov,
    caller: Caller,
    Path((tenant, device)): Path<(String, String)>,
) -> ApiResult<Json<DeviceProvisioningView>> {
    let prov = provisioner(prov)?;
    let scope = state.scope(&caller, &tenant).await?;
    let view = device_view(&state, &prov, &caller, &scope, device_id(&device)?).await?;
    Ok(Json(view))
}

/// Enables provisioning for a device: re-keys its SIP password (the old one stops working),
/// keeps the new one sealed for the config files, and issues a new HTTPS URL (the previous
/// URL stops working). Call it again after rotating the credential elsewhere.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/provisioning", tag = "provisioning", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("device" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceProvisioningView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn enable_device_provisioning(
    State(state): State<ApiState>,
    prov: Prov,
    caller: Caller,
    Path((tenant, device)): Path<(String, String)>,
) -> ApiResult<Json<DeviceProvisioningView>> {
    let prov = provisioner(prov)?;
    let scope = state.scope(&caller, &tenant).await?;
    let device = device_id(&device)?;
    let issued = state
        .ops(&caller)
        .rotate_device_password(&scope, device, &state.realm)
        .await?;
    let sealed = prov
        .sealer
        .seal(device, issued.password.expose(), rand::random());
    state
        .store
        .provisioning()
        .enable_device(&scope, device, &sealed, issued.credential.ha1_md5.as_hex())
        .await?;
    state.written().await?;
    let view = device_view(&state, &prov, &caller, &scope, device).await?;
    Ok(Json(view))
}

/// Disables provisioning for a device: its sealed password is forgotten and its URL stops
/// working (the SIP credential itself is unchanged).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/devices/{device}/provisioning", tag = "provisioning", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("device" = String, Path, description = "Device id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable_device_provisioning(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, device)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = state.scope(&caller, &tenant).await?;
    let device = device_id(&device)?;
    state.ops(&caller).device(&scope, device).await?;
    state
        .store
        .provisioning()
        .disable_device(&scope, device)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The fetch log of one device, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/provisioning/fetches", tag = "provisioning", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("device" = String, Path, description = "Device id"), FetchQuery),
    responses((status = 200, body = [FetchView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_device_fetches(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, device)): Path<(String, String)>,
    Query(query): Query<FetchQuery>,
) -> ApiResult<Json<Vec<FetchView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let device = device_id(&device)?;
    state.ops(&caller).device(&scope, device).await?;
    let fetches = state
        .store
        .provisioning()
        .list_fetches(&scope, Some(device), query.limit.unwrap_or(100).min(1000))
        .await?;
    Ok(Json(fetches.into_iter().map(FetchView::from).collect()))
}

/// The fetch log of a tenant (all its devices, and refused requests attributed to it),
/// newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/provisioning/fetches", tag = "provisioning", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug"), FetchQuery),
    responses((status = 200, body = [FetchView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tenant_fetches(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(query): Query<FetchQuery>,
) -> ApiResult<Json<Vec<FetchView>>> {
    let scope = state.scope(&caller, &tenant).await?;
    let fetches = state
        .store
        .provisioning()
        .list_fetches(&scope, None, query.limit.unwrap_or(100).min(1000))
        .await?;
    Ok(Json(fetches.into_iter().map(FetchView::from).collect()))
}
