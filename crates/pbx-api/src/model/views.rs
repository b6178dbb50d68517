//! Response bodies.

use pbx_domain::{
    ApiToken, Binding, Device, DeviceKind, Event, PhoneNumber, Reseller, SipCredential, Tenant,
    User, WhitelistEntry,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A reseller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResellerView {
    /// Id.
    pub id: Uuid,
    /// Company name.
    pub name: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl From<Reseller> for ResellerView {
    fn from(reseller: Reseller) -> Self {
        Self {
            id: reseller.id.as_uuid(),
            name: reseller.name.into(),
            created_at_ms: reseller.created_at_ms,
            updated_at_ms: reseller.updated_at_ms,
        }
    }
}

/// A tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantView {
    /// Id.
    pub id: Uuid,
    /// Owning reseller; absent for the operator's own customers.
    pub reseller_id: Option<Uuid>,
    /// Company name.
    pub name: String,
    /// Short name, unique on the platform (usable instead of the id in paths).
    pub slug: String,
    /// SIP domain.
    pub sip_domain: String,
    /// `active`, `suspended` or `terminated`.
    pub status: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl From<Tenant> for TenantView {
    fn from(tenant: Tenant) -> Self {
        Self {
            id: tenant.id.as_uuid(),
            reseller_id: tenant.reseller_id.map(|id| id.as_uuid()),
            name: tenant.name.into(),
            slug: tenant.slug.into(),
            sip_domain: tenant.sip_domain.into(),
            status: tenant.status.as_str().to_owned(),
            created_at_ms: tenant.created_at_ms,
            updated_at_ms: tenant.updated_at_ms,
        }
    }
}

/// A user (extension).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// Extension number (usable instead of the id in paths).
    pub extension: String,
    /// Display name.
    pub display_name: String,
    /// `internal_only`, `national` or `international`.
    pub class_of_service: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            tenant_id: user.tenant_id.as_uuid(),
            extension: user.extension.into(),
            display_name: user.display_name.into(),
            class_of_service: user.class_of_service.as_str().to_owned(),
            created_at_ms: user.created_at_ms,
            updated_at_ms: user.updated_at_ms,
        }
    }
}

/// A device. Its SIP password is never shown here (only once, on create and rotate).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    /// Id.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// The user it belongs to.
    pub user_id: Uuid,
    /// `desk_phone`, `softphone` or `mobile_app`.
    pub kind: String,
    /// Desk phones: the brand.
    pub vendor: Option<String>,
    /// Desk phones: the model.
    pub model: Option<String>,
    /// Desk phones: the MAC address (`00:15:65:aa:bb:cc`).
    pub mac: Option<String>,
    /// Free label.
    pub label: String,
    /// The SIP auth user name, if the device has a credential.
    pub sip_username: Option<String>,
    /// Whether the SIP credential is enabled.
    pub enabled: Option<bool>,
    /// Exempt from the IP whitelist (a roaming mobile device): from outside the whitelist
    /// it may register and call over TLS only.
    pub whitelist_exempt: bool,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl DeviceView {
    /// A device with its credential (if any).
    pub fn new(device: Device, credential: Option<&SipCredential>) -> Self {
        let (vendor, model, mac) = match &device.kind {
            DeviceKind::DeskPhone { vendor, model, mac } => (
                Some(vendor.as_str().to_owned()),
                Some(model.clone()),
                Some(mac.to_string()),
            ),
            _ => (None, None, None),
        };
        Self {
            id: device.id.as_uuid(),
            tenant_id: device.tenant_id.as_uuid(),
            user_id: device.user_id.as_uuid(),
            kind: device.kind.as_str().to_owned(),
            vendor,
            model,
            mac,
            label: device.label,
            sip_username: credential.map(|credential| credential.auth_username.to_string()),
            enabled: credential.map(|credential| credential.enabled),
            whitelist_exempt: device.whitelist_exempt,
            created_at_ms: device.created_at_ms,
            updated_at_ms: device.updated_at_ms,
        }
    }
}

/// A SIP password, shown once: on device creation and on rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SipSecretView {
    /// The SIP auth user name (globally unique, generated).
    pub sip_username: String,
    /// The SIP password. It is not stored and cannot be shown again.
    pub sip_password: String,
    /// The digest realm.
    pub realm: String,
}

/// A device just created, with its SIP credential.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceCreatedView {
    /// The device.
    pub device: DeviceView,
    /// The credential, shown once.
    pub credential: SipSecretView,
}

/// An IP whitelist entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WhitelistEntryView {
    /// Id.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// The user whose list this narrows; absent for the tenant-wide list.
    pub user_id: Option<Uuid>,
    /// The network in CIDR notation.
    pub network: String,
    /// Free text.
    pub description: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
}

impl From<WhitelistEntry> for WhitelistEntryView {
    fn from(entry: WhitelistEntry) -> Self {
        Self {
            id: entry.id.as_uuid(),
            tenant_id: entry.tenant_id.as_uuid(),
            user_id: entry.user_id.map(|id| id.as_uuid()),
            network: entry.network.to_string(),
            description: entry.description,
            created_at_ms: entry.created_at_ms,
        }
    }
}

/// A phone number (DID).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NumberView {
    /// Id.
    pub id: Uuid,
    /// The number in E.164 form.
    pub number: String,
    /// Tenant it is assigned to; absent in the free inventory.
    pub tenant_id: Option<Uuid>,
    /// User it rings; absent for tenant-level routing.
    pub user_id: Option<Uuid>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl From<PhoneNumber> for NumberView {
    fn from(number: PhoneNumber) -> Self {
        Self {
            id: number.id.as_uuid(),
            number: number.e164.into(),
            tenant_id: number.tenant_id.map(|id| id.as_uuid()),
            user_id: number.user_id.map(|id| id.as_uuid()),
            created_at_ms: number.created_at_ms,
            updated_at_ms: number.updated_at_ms,
        }
    }
}

/// A registration (a binding of the location service).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationView {
    /// Id.
    pub id: Uuid,
    /// The registered user.
    pub user_id: Uuid,
    /// The device whose credential registered, if known.
    pub device_id: Option<Uuid>,
    /// Address of record.
    pub aor: String,
    /// Contact URI.
    pub contact: String,
    /// `udp`, `tcp`, `tls`, `ws` or `wss`.
    pub transport: String,
    /// Source address the REGISTER came from.
    pub source: String,
    /// The node holding the connection.
    pub node_id: String,
    /// The phone's User-Agent.
    pub user_agent: Option<String>,
    /// Expiry (Unix ms).
    pub expires_at_ms: i64,
    /// Whether a SIP ALG was detected on the path.
    pub sip_alg_detected: bool,
    /// Last refresh (Unix ms).
    pub updated_at_ms: i64,
}

impl From<Binding> for RegistrationView {
    fn from(binding: Binding) -> Self {
        let record = binding.record;
        Self {
            id: binding.id.as_uuid(),
            user_id: record.user_id.as_uuid(),
            device_id: record.device_id.map(|id| id.as_uuid()),
            aor: record.aor,
            contact: record.contact_uri,
            transport: record.flow.transport.as_str().to_owned(),
            source: record.flow.source.to_string(),
            node_id: record.flow.node_id,
            user_agent: record.user_agent,
            expires_at_ms: record.expires_at_ms,
            sip_alg_detected: record.sip_alg_detected,
            updated_at_ms: binding.updated_at_ms,
        }
    }
}

/// The result of clearing registrations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClearedView {
    /// Bindings removed from the store.
    pub cleared: u64,
    /// Bindings the live registrar dropped from memory.
    pub live_cleared: u64,
}

/// An API token (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: Uuid,
    /// What it is for.
    pub name: String,
    /// `operator`, `reseller` or `customer_admin`.
    pub role: String,
    /// Reseller tokens: the reseller.
    pub reseller_id: Option<Uuid>,
    /// Customer admin tokens: the tenant.
    pub tenant_id: Option<Uuid>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last use (Unix ms).
    pub last_used_at_ms: Option<i64>,
    /// Revocation time (Unix ms); a revoked token is refused.
    pub revoked_at_ms: Option<i64>,
    /// Expiry (Unix ms).
    pub expires_at_ms: Option<i64>,
}

impl From<ApiToken> for TokenView {
    fn from(token: ApiToken) -> Self {
        Self {
            id: token.id.as_uuid(),
            name: token.name,
            role: token.scope.role().as_str().to_owned(),
            reseller_id: token.scope.reseller_id().map(|id| id.as_uuid()),
            tenant_id: token.scope.tenant_id().map(|id| id.as_uuid()),
            created_at_ms: token.created_at_ms,
            last_used_at_ms: token.last_used_at_ms,
            revoked_at_ms: token.revoked_at_ms,
            expires_at_ms: token.expires_at_ms,
        }
    }
}

/// A token just created, with its secret (shown once; only a SHA-256 hash is stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenCreatedView {
    /// The token.
    pub token: TokenView,
    /// The bearer secret (`cpbx_...`).
    pub secret: String,
}

/// An audit event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    /// Id.
    pub id: Uuid,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The tenant concerned.
    pub tenant_id: Option<Uuid>,
    /// Dotted kind (`user.created`).
    pub kind: String,
    /// Details: the actor, the token and what changed.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<Event> for EventView {
    fn from(event: Event) -> Self {
        Self {
            id: event.id.as_uuid(),
            at_ms: event.at_ms,
            tenant_id: event.tenant_id.map(|id| id.as_uuid()),
            kind: event.kind,
            payload: event.payload,
        }
    }
}
