//! Request bodies and query parameters.

use pbx_domain::{
    ApiRole, ClassOfService, DisplayName, E164, Extension, MacAddress, PhoneVendor, ResellerId,
    SipDomain, Slug, TenantStatus,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/resellers`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReseller {
    /// Company name (unique).
    #[schema(value_type = String, example = "Telco Reseller B.V.")]
    pub name: DisplayName,
}

/// `POST /api/v1/tenants`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Company name.
    #[schema(value_type = String, example = "Acme B.V.")]
    pub name: DisplayName,
    /// Short name: 2–63 of `a-z0-9-`, starting with a letter; unique.
    #[schema(value_type = String, example = "acme")]
    pub slug: Slug,
    /// SIP domain (a host name); unique.
    #[schema(value_type = String, example = "acme.pbx.example.com")]
    pub sip_domain: SipDomain,
    /// Owning reseller (operator only; a reseller's tenants are always its own).
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub reseller_id: Option<ResellerId>,
    /// Initial status (default `active`).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "active")]
    pub status: Option<TenantStatus>,
}

/// `PATCH /api/v1/tenants/{tenant}`: only the fields present change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// Company name.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Option<DisplayName>,
    /// SIP domain.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub sip_domain: Option<SipDomain>,
    /// `active`, `suspended` or `terminated` (operator and reseller only).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub status: Option<TenantStatus>,
}

/// `POST /api/v1/tenants/{tenant}/users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Extension: 2–8 digits, not starting with 0; unique in the tenant.
    #[schema(value_type = String, example = "201")]
    pub extension: Extension,
    /// Name shown to callees.
    #[schema(value_type = String, example = "Ann de Vries")]
    pub display_name: DisplayName,
    /// `internal_only`, `national` (default) or `international`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "national")]
    pub class_of_service: Option<ClassOfService>,
}

/// `PATCH /api/v1/tenants/{tenant}/users/{user}`: only the fields present change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// Extension.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub extension: Option<Extension>,
    /// Display name.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<DisplayName>,
    /// Class of service.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub class_of_service: Option<ClassOfService>,
}

/// The kind of a new device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKindName {
    /// A desk IP phone (needs `vendor`, `model`, `mac`).
    DeskPhone,
    /// A softphone on a computer.
    Softphone,
    /// A smartphone app.
    MobileApp,
}

/// `POST /api/v1/tenants/{tenant}/devices`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    /// The owning user: its id or its extension.
    #[schema(example = "201")]
    pub user: String,
    /// Device kind.
    pub kind: DeviceKindName,
    /// Desk phones: the brand (`yealink`, `polycom`, `snom`, `grandstream`, `cisco`, `other`).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "yealink")]
    pub vendor: Option<PhoneVendor>,
    /// Desk phones: the model.
    #[serde(default)]
    #[schema(example = "T54W")]
    pub model: Option<String>,
    /// Desk phones: the MAC address (unique on the platform).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "00:15:65:aa:bb:cc")]
    pub mac: Option<MacAddress>,
    /// Free label (at most 100 characters).
    #[serde(default)]
    pub label: Option<String>,
}

/// `PATCH /api/v1/tenants/{tenant}/devices/{device}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDevice {
    /// New label.
    #[serde(default)]
    pub label: Option<String>,
    /// Enable or disable the SIP credential (a disabled one is refused at once).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Exempt the device from the IP whitelist (a roaming mobile device), which then
    /// requires TLS: from outside the whitelist it may register and call over TLS only.
    #[serde(default)]
    pub whitelist_exempt: Option<bool>,
}

/// `POST /api/v1/tenants/{tenant}/ip-whitelist` (and the per-user variant).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWhitelistEntry {
    /// IPv4 or IPv6 network in CIDR notation, or a bare address.
    #[schema(example = "192.0.2.0/24")]
    pub network: String,
    /// Free text (at most 200 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Narrow one user's list instead of the tenant's: its id or extension.
    #[serde(default)]
    pub user: Option<String>,
}

/// `?user=` filter of whitelist and registration listings.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct UserFilter {
    /// Only entries of this user (id or extension).
    pub user: Option<String>,
}

/// `POST /api/v1/numbers`: add a number to the free inventory (operator).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNumber {
    /// The number in E.164 form (`+31201234567`).
    #[schema(value_type = String, example = "+31201234567")]
    pub number: E164,
}

/// `POST /api/v1/tenants/{tenant}/numbers`: assign a number to the tenant (operator). A
/// number not yet in the inventory is added.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignNumber {
    /// The number in E.164 form.
    #[schema(value_type = String, example = "+31201234567")]
    pub number: E164,
    /// Route it to this user (id or extension).
    #[serde(default)]
    pub user: Option<String>,
}

/// `PATCH /api/v1/tenants/{tenant}/numbers/{number}`: route to a user, or to none (`null`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteNumber {
    /// The user (id or extension), or `null` for tenant-level routing.
    #[serde(default)]
    pub user: Option<String>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for (1–100 characters).
    #[schema(example = "billing export")]
    pub name: String,
    /// `operator`, `reseller` or `customer_admin`.
    #[schema(value_type = String, example = "customer_admin")]
    pub role: ApiRole,
    /// Reseller tokens: the reseller.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub reseller_id: Option<ResellerId>,
    /// Customer admin tokens: the tenant (id or slug).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Optional expiry (Unix ms).
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
}

/// `?limit=` of event listings.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct EventQuery {
    /// At most this many events, newest first (1–1000, default 100).
    pub limit: Option<u32>,
}
